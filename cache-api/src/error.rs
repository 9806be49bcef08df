//! Errors of starting and running the cache API (per-request problems never surface here: they
//! are answered on the wire).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Startup and runtime failures of the cache API, classified by [`CacheApiError::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum CacheApiError {
    /// A configuration value cannot work.
    #[error("invalid cache API configuration: {field} {reason}")]
    Config { field: &'static str, reason: String },

    /// A TLS file could not be read.
    #[error("reading {what} {}: {source}; check the path and that the secret is mounted", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A TLS file was read but its content is unusable.
    #[error("{what} {}: {reason}", path.display())]
    InvalidPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// The files parsed but rustls refused the combination (e.g. key does not match certificate).
    #[error("building the TLS configuration from {}: {reason}", cert_path.display())]
    Tls { cert_path: PathBuf, reason: String },

    /// A listener could not be bound.
    #[error(
        "binding the {what} listener on {addr}: {source}; choose a free port or stop the other process"
    )]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The Prometheus recorder could not be installed.
    #[error("installing the Prometheus metrics recorder: {reason}")]
    Metrics { reason: String },

    /// A listener failed while serving.
    #[error("the {what} server failed: {reason}")]
    Serve { what: &'static str, reason: String },
}

impl CacheApiError {
    /// True when retrying the same operation later may succeed (a file that is being rotated or
    /// mounted, a port still held by a previous process, an I/O failure while serving).
    pub fn is_transient(&self) -> bool {
        match self {
            CacheApiError::ReadFile { .. }
            | CacheApiError::Bind { .. }
            | CacheApiError::Serve { .. } => true,
            CacheApiError::Config { .. }
            | CacheApiError::InvalidPem { .. }
            | CacheApiError::Tls { .. }
            | CacheApiError::Metrics { .. } => false,
        }
    }
}
