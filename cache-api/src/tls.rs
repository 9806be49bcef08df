//! TLS for the Gatekeeper listener: rustls with the aws-lc-rs provider (passed explicitly, never
//! the process default), TLS 1.3 only (Gatekeeper's client requires it), and optional mTLS
//! (`WebPkiClientVerifier` requiring a client certificate issued by the configured CA).
//!
//! [`TlsReloader`] re-reads the certificate, key and client-CA files every `reload_interval` and
//! swaps in a new `ServerConfig` when their content changed; new connections use it, open ones
//! keep theirs. Content (not mtime) is compared, so Kubernetes' symlink swaps and quick
//! successive writes are both seen. A new set that fails to load (half-written rotation, key
//! not matching the certificate) keeps the previous configuration, logs one error per distinct
//! failure and sets `verdict_tls_reload_failing` to 1 until a good set appears.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::TlsSettings;
use crate::error::Error;
use crate::metrics as m;

/// ALPN protocols offered: HTTP/2 and HTTP/1.1 (Gatekeeper's Go client uses HTTP/1.1).
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The current server configuration, reloaded from files.
pub struct TlsReloader {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<ServerConfig>>,
    state: Mutex<ReloadState>,
}

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert_path", &self.settings.cert_path)
            .field("key_path", &self.settings.key_path)
            .field("client_ca_path", &self.settings.client_ca_path)
            .finish_non_exhaustive()
    }
}

struct ReloadState {
    /// SHA-256 over the loaded files' content.
    loaded: [u8; 32],
    /// The last failure (content fingerprint or read error text), to log each failure once.
    failing: Option<String>,
}

/// What one [`TlsReloader::check`] did.
#[derive(Debug)]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded,
    /// The files changed but do not load; the previous configuration stays in use.
    Failed(Error),
}

struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Files {
    fn read(settings: &TlsSettings) -> Result<Self, Error> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| Error::ReadFile {
                what,
                path: path.to_owned(),
                source: Arc::new(source),
            })
        };
        Ok(Files {
            cert: read("server certificate", &settings.cert_path)?,
            key: read("server private key", &settings.key_path)?,
            client_ca: settings
                .client_ca_path
                .as_deref()
                .map(|p| read("client CA bundle", p))
                .transpose()?,
        })
    }

    fn fingerprint(&self) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [
            Some(self.cert.as_slice()),
            Some(self.key.as_slice()),
            self.client_ca.as_deref(),
        ] {
            match part {
                Some(bytes) => {
                    ctx.update(&(bytes.len() as u64 + 1).to_be_bytes());
                    ctx.update(bytes);
                }
                None => ctx.update(&0u64.to_be_bytes()),
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

impl TlsReloader {
    /// Loads the files; fails if they do not make a valid configuration (the server must not
    /// start without one).
    pub fn load(settings: &TlsSettings) -> Result<Arc<Self>, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let files = Files::read(settings)?;
        let config = build_server_config(&files, settings, &provider)?;
        metrics::gauge!(m::TLS_RELOAD_FAILING).set(0.0);
        Ok(Arc::new(TlsReloader {
            settings: settings.clone(),
            provider,
            current: RwLock::new(Arc::new(config)),
            state: Mutex::new(ReloadState {
                loaded: files.fingerprint(),
                failing: None,
            }),
        }))
    }

    /// The configuration for the next connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the files and swaps in a new configuration if their content changed and loads.
    pub fn check(&self) -> ReloadOutcome {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // On failure: a marker of what failed (read error text or content fingerprint), so the
        // same bad files are logged and counted once, not at every interval.
        let attempt = match Files::read(&self.settings) {
            Err(e) => Err((format!("read:{e}"), e)),
            Ok(files) => {
                let fp = files.fingerprint();
                if fp == state.loaded {
                    Ok(None)
                } else {
                    build_server_config(&files, &self.settings, &self.provider)
                        .map(|cfg| Some((fp, cfg)))
                        .map_err(|e| (format!("content:{}", hex(&fp)), e))
                }
            }
        };
        match attempt {
            Ok(None) => {
                if state.failing.take().is_some() {
                    // The files are back to the loaded content.
                    metrics::gauge!(m::TLS_RELOAD_FAILING).set(0.0);
                }
                ReloadOutcome::Unchanged
            }
            Ok(Some((fp, cfg))) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
                state.loaded = fp;
                state.failing = None;
                metrics::counter!(m::TLS_RELOADS, "result" => "ok").increment(1);
                metrics::gauge!(m::TLS_RELOAD_FAILING).set(0.0);
                info!(
                    cert = %self.settings.cert_path.display(),
                    client_ca = ?self.settings.client_ca_path,
                    "reloaded the TLS certificate, key and client CA"
                );
                ReloadOutcome::Reloaded
            }
            Err((marker, e)) => {
                if state.failing.as_deref() != Some(marker.as_str()) {
                    state.failing = Some(marker);
                    metrics::counter!(m::TLS_RELOADS, "result" => "error").increment(1);
                    metrics::gauge!(m::TLS_RELOAD_FAILING).set(1.0);
                    error!(error = %e, "new TLS files do not load; still serving the previous configuration");
                }
                ReloadOutcome::Failed(e)
            }
        }
    }

    /// Checks the files every `reload_interval` until `cancel`.
    pub fn spawn(self: Arc<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.settings.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        let me = Arc::clone(&self);
                        // Small file reads; kept off the async workers anyway.
                        let _ = tokio::task::spawn_blocking(move || me.check()).await;
                    }
                }
            }
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn build_server_config(
    files: &Files,
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<ServerConfig, Error> {
    let certs = parse_certs(&files.cert, "server certificate", &settings.cert_path)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| Error::InvalidPem {
        what: "server private key",
        path: settings.key_path.clone(),
        reason: match e {
            pem::Error::NoItemsFound => {
                "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block".into()
            }
            other => format!("unreadable PEM: {other}"),
        },
    })?;
    let tls_err = |reason: String| Error::Tls {
        cert_path: settings.cert_path.clone(),
        reason,
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.to_string()))?;
    let builder = match (&files.client_ca, &settings.client_ca_path) {
        (Some(ca_pem), Some(ca_path)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in parse_certs(ca_pem, "client CA bundle", ca_path)? {
                roots.add(cert).map_err(|e| Error::InvalidPem {
                    what: "client CA bundle",
                    path: ca_path.clone(),
                    reason: format!("a certificate is not a usable trust anchor: {e}"),
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                    .build()
                    .map_err(|e| tls_err(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => tls_err(format!(
            "the private key in {} does not belong to the certificate",
            settings.key_path.display()
        )),
        other => tls_err(other.to_string()),
    })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn parse_certs(
    pem_bytes: &[u8],
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let invalid = |reason: String| Error::InvalidPem {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(
            "no CERTIFICATE block; expected PEM certificates (a chain starts with the leaf)".into(),
        ));
    }
    Ok(certs)
}
