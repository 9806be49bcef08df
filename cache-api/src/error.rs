//! The cache API's one error type. Three kinds of failure, each answered its own way:
//!
//! - starting and running the API (configuration, certificates, listeners): returned to the
//!   binary, which exits naming the fix;
//! - a request as a whole (body too large or too slow, not a `ProviderRequest`, too many keys,
//!   overload): answered as the response's `systemError` (Gatekeeper denies the admission and
//!   shows the message);
//! - one key (invalid, tag not found, registry unavailable, timeout, ...): answered as that item's
//!   `error`, `CODE: message` in Ratify's style, and counted by [`Error::code`].
//!
//! Each is classified by [`Error::is_transient`]: a transient failure may pass if asked again.
//! Failures that come from the scanner keep it as their source (shared, so that one verification's
//! failure can answer every request waiting for it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use verdict_scanner::registry::RegistryError;

use crate::wire::{ACCEPTED_API_VERSIONS, API_VERSION, MAX_KEY_BYTES, REQUEST_KIND};

/// Every failure of the cache API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    // ---- Starting and running the API.
    /// A configuration value cannot work.
    #[error("invalid cache API configuration: {field} {reason}")]
    Config { field: &'static str, reason: String },

    /// A TLS file could not be read.
    #[error("reading {what} {}: {source}; check the path and that the secret is mounted", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
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
        source: Arc<std::io::Error>,
    },

    /// The Prometheus recorder could not be installed.
    #[error("installing the Prometheus metrics recorder: {reason}")]
    Metrics { reason: String },

    /// A listener failed while serving.
    #[error("the {what} server failed: {reason}")]
    Serve { what: &'static str, reason: String },

    // ---- A request as a whole: answered as `systemError`.
    #[error(
        "request body is larger than the {limit}-byte limit{}; send fewer keys per request or raise --max-request-bytes",
        size.map(|s| format!(" (at least {s} bytes)")).unwrap_or_default()
    )]
    BodyTooLarge { limit: usize, size: Option<u64> },

    #[error(
        "request body was not received within {0:?}; the client must send the whole body promptly"
    )]
    BodyTimeout(Duration),

    #[error("reading the request body failed: {0}")]
    BodyRead(String),

    #[error("Verdict is overloaded: {0}; Gatekeeper denies this admission, retry shortly")]
    Overloaded(String),

    #[error(
        "request body is not a valid ProviderRequest: {0}; expected {{\"apiVersion\":\"{API_VERSION}\",\"kind\":\"{REQUEST_KIND}\",\"request\":{{\"keys\":[\"<image>\", ...]}}}}"
    )]
    InvalidJson(String),

    #[error("kind is {found:?}; this endpoint accepts kind \"{REQUEST_KIND}\"")]
    WrongKind { found: String },

    #[error(
        "apiVersion is {found:?}; this endpoint accepts \"{}\" or \"{}\"",
        ACCEPTED_API_VERSIONS[0],
        ACCEPTED_API_VERSIONS[1]
    )]
    WrongApiVersion { found: String },

    #[error(
        "request has {count} keys, more than the limit of {limit}; split the request or raise --max-request-keys"
    )]
    TooManyKeys { count: usize, limit: usize },

    // ---- One key: answered as that item's `error`, `CODE: message`.
    #[error("INVALID_KEY: key is empty; send [namespace]registry/repository[:tag][@digest]")]
    EmptyKey,

    #[error(
        "INVALID_KEY: key is {0} bytes, longer than any valid image reference ({MAX_KEY_BYTES} bytes); send [namespace]registry/repository[:tag][@digest]"
    )]
    KeyTooLong(usize),

    #[error(
        "INVALID_KEY: key starts a [namespace] prefix without the closing ']'; send [namespace]image"
    )]
    UnterminatedPrefix,

    #[error(
        "INVALID_KEY: namespace {0:?} in the key prefix is not a DNS-1123 label (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit); send [namespace]image with a Kubernetes namespace name"
    )]
    InvalidNamespace(String),

    #[error(
        "INVALID_KEY: key has a namespace prefix but no image reference; send [namespace]registry/repository[:tag][@digest]"
    )]
    MissingReference,

    #[error("INVALID_KEY: {0}")]
    InvalidReference(#[source] Arc<RegistryError>),

    /// Resolving a tag failed in the scanner (the registry said no, or could not be reached).
    #[error("{}: resolving {reference}: {source}", resolution_code(source))]
    Resolution {
        reference: String,
        #[source]
        source: Arc<verdict_scanner::Error>,
    },

    /// Verifying a subject failed in the scanner without a verdict (not "unsigned": that is a
    /// deny verdict, not an error).
    #[error("{}: verifying {subject}: {source}", verification_code(source))]
    Verification {
        subject: String,
        #[source]
        source: Arc<verdict_scanner::Error>,
    },

    /// The verdict store failed (read: the subject is verified inline; write: logged).
    #[error("STORE_UNAVAILABLE: {context}: {source}")]
    Store {
        context: String,
        #[source]
        source: Arc<verdict_scanner::Error>,
    },

    #[error("TAG_NOT_FOUND: {0}")]
    TagNotFound(String),
    #[error("RESOLVE_FAILED: {0}")]
    ResolveFailed(String),
    #[error("REGISTRY_UNAVAILABLE: {0}")]
    RegistryUnavailable(String),
    #[error("VERIFY_UNAVAILABLE: {0}")]
    VerifyUnavailable(String),
    #[error("VERIFY_FAILED: {0}")]
    VerifyFailed(String),
    #[error("VERIFY_TIMEOUT: {0}")]
    Timeout(String),
    #[error("STORE_UNAVAILABLE: {0}")]
    StoreUnavailable(String),
    #[error("VERIFIER_BUSY: {0}")]
    Busy(String),
    #[error("INTERNAL: {0}")]
    Internal(String),
}

fn resolution_code(source: &verdict_scanner::Error) -> &'static str {
    match source {
        verdict_scanner::Error::Registry(e) if e.is_not_found() => "TAG_NOT_FOUND",
        e if e.is_transient() => "REGISTRY_UNAVAILABLE",
        _ => "RESOLVE_FAILED",
    }
}

fn verification_code(source: &verdict_scanner::Error) -> &'static str {
    if source.is_transient() {
        "REGISTRY_UNAVAILABLE"
    } else {
        "VERIFY_FAILED"
    }
}

impl Error {
    /// A key's failure code (the text before the colon of an item's `error`; the `code` label of
    /// `verdict_key_errors_total`), or `None` for failures that are not about one key.
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            Error::EmptyKey
            | Error::KeyTooLong(_)
            | Error::UnterminatedPrefix
            | Error::InvalidNamespace(_)
            | Error::MissingReference
            | Error::InvalidReference(_) => "INVALID_KEY",
            Error::Resolution { source, .. } => resolution_code(source),
            Error::Verification { source, .. } => verification_code(source),
            Error::Store { .. } | Error::StoreUnavailable(_) => "STORE_UNAVAILABLE",
            Error::TagNotFound(_) => "TAG_NOT_FOUND",
            Error::ResolveFailed(_) => "RESOLVE_FAILED",
            Error::RegistryUnavailable(_) => "REGISTRY_UNAVAILABLE",
            Error::VerifyUnavailable(_) => "VERIFY_UNAVAILABLE",
            Error::VerifyFailed(_) => "VERIFY_FAILED",
            Error::Timeout(_) => "VERIFY_TIMEOUT",
            Error::Busy(_) => "VERIFIER_BUSY",
            Error::Internal(_) => "INTERNAL",
            _ => return None,
        })
    }

    /// True when the same operation may succeed later: a file being rotated or mounted, a port
    /// still held, a body that did not arrive, overload, an unreachable registry or store, a
    /// timeout. False when the input or configuration itself is wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Resolution { source, .. }
            | Error::Verification { source, .. }
            | Error::Store { source, .. } => source.is_transient(),
            Error::ReadFile { .. }
            | Error::Bind { .. }
            | Error::Serve { .. }
            | Error::BodyTimeout(_)
            | Error::BodyRead(_)
            | Error::Overloaded(_)
            | Error::RegistryUnavailable(_)
            | Error::VerifyUnavailable(_)
            | Error::Timeout(_)
            | Error::StoreUnavailable(_)
            | Error::Busy(_)
            | Error::Internal(_) => true,
            Error::Config { .. }
            | Error::InvalidPem { .. }
            | Error::Tls { .. }
            | Error::Metrics { .. }
            | Error::BodyTooLarge { .. }
            | Error::InvalidJson(_)
            | Error::WrongKind { .. }
            | Error::WrongApiVersion { .. }
            | Error::TooManyKeys { .. }
            | Error::EmptyKey
            | Error::KeyTooLong(_)
            | Error::UnterminatedPrefix
            | Error::InvalidNamespace(_)
            | Error::MissingReference
            | Error::InvalidReference(_)
            | Error::TagNotFound(_)
            | Error::ResolveFailed(_)
            | Error::VerifyFailed(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_failures_keep_their_source_and_class() {
        let throttled = Error::Verification {
            subject: "r.io/a@sha256:00".into(),
            source: Arc::new(
                RegistryError::Throttled {
                    registry: "r.io".into(),
                    retry_after: None,
                }
                .into(),
            ),
        };
        assert!(throttled.is_transient());
        assert_eq!(throttled.code(), Some("REGISTRY_UNAVAILABLE"));
        assert!(throttled.to_string().starts_with("REGISTRY_UNAVAILABLE: "));
        assert!(std::error::Error::source(&throttled).is_some());

        let missing = Error::Resolution {
            reference: "r.io/a:v1".into(),
            source: Arc::new(
                RegistryError::NotFound {
                    registry: "r.io".into(),
                    what: "tag v1".into(),
                }
                .into(),
            ),
        };
        assert!(!missing.is_transient());
        assert_eq!(missing.code(), Some("TAG_NOT_FOUND"));
        assert!(
            missing.to_string().starts_with("TAG_NOT_FOUND: "),
            "{missing}"
        );
    }

    #[test]
    fn every_key_failure_is_written_code_first() {
        for e in [
            Error::EmptyKey,
            Error::KeyTooLong(2000),
            Error::UnterminatedPrefix,
            Error::InvalidNamespace("A".into()),
            Error::MissingReference,
            Error::Timeout("t".into()),
            Error::Busy("b".into()),
            Error::StoreUnavailable("s".into()),
        ] {
            let code = e.code().expect("a key failure has a code");
            assert!(e.to_string().starts_with(&format!("{code}: ")), "{e}");
        }
        assert_eq!(Error::Overloaded("x".into()).code(), None);
    }
}
