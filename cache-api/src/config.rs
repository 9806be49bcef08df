//! Every knob of the cache API, with defaults chosen from Gatekeeper's and Ratify's behaviour.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::CacheApiError;

/// The whole cache-API configuration (listeners, TLS, request limits, lookup behaviour).
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPS listener for Gatekeeper (Ratify uses `:6001`).
    pub listen: SocketAddr,
    /// Plain-HTTP listener for `/healthz`, `/readyz` and `/metrics`.
    pub ops_listen: SocketAddr,
    pub tls: TlsSettings,
    /// Largest accepted request body. Default 1 MiB: Gatekeeper sends one request per
    /// `external_data` call with the images of one object (Ratify's load test: 10 images per pod);
    /// a key is at most ~850 bytes (`[ns]` + host + 255-byte name + tag + sha512 digest), so
    /// 1 MiB holds over 1,000 worst-case keys, 100× a large pod, and bounds memory per request.
    pub max_body_bytes: usize,
    /// Time allowed to receive the request body after its headers.
    pub body_read_timeout: Duration,
    /// Time allowed to receive a request's headers (hyper's header read timeout; Ratify: 5 s).
    pub header_read_timeout: Duration,
    /// Concurrent TLS connections; more are closed at once (Gatekeeper keeps ≤ 10 idle per host).
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests (Ratify waits 6 s).
    pub shutdown_grace: Duration,
    pub service: ServiceConfig,
    /// Per-registry request rate limit for inline verification. Consumed by the registry client
    /// the [`InlineVerifier`](crate::InlineVerifier) uses (it also honours `Retry-After`); this
    /// crate only carries it so one `Config` holds every serve-time knob.
    pub registry_rate_limit: RegistryRateLimit,
}

impl Config {
    /// Defaults with the given server certificate chain and key (PEM files).
    pub fn new(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 6001)),
            ops_listen: SocketAddr::from(([0, 0, 0, 0], 9099)),
            tls: TlsSettings {
                cert_path: cert_path.into(),
                key_path: key_path.into(),
                client_ca_path: None,
                reload_interval: Duration::from_secs(10),
                handshake_timeout: Duration::from_secs(5),
            },
            max_body_bytes: 1024 * 1024,
            body_read_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(5),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(6),
            service: ServiceConfig::default(),
            registry_rate_limit: RegistryRateLimit::default(),
        }
    }

    /// Rejects values that cannot work, naming the field and the fix.
    pub fn validate(&self) -> Result<(), CacheApiError> {
        let positive = |field: &'static str, d: Duration| {
            if d.is_zero() {
                Err(CacheApiError::Config {
                    field,
                    reason: "must be greater than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("tls.reload_interval", self.tls.reload_interval)?;
        positive("tls.handshake_timeout", self.tls.handshake_timeout)?;
        positive("body_read_timeout", self.body_read_timeout)?;
        positive("header_read_timeout", self.header_read_timeout)?;
        if self.max_body_bytes == 0 {
            return Err(CacheApiError::Config {
                field: "max_body_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_connections == 0 {
            return Err(CacheApiError::Config {
                field: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if self.listen == self.ops_listen && self.listen.port() != 0 {
            return Err(CacheApiError::Config {
                field: "ops_listen",
                reason: format!(
                    "{} is also the HTTPS listen address; use another port for health and metrics",
                    self.ops_listen
                ),
            });
        }
        self.service.validate()
    }
}

/// Server certificate, key and optional client CA (mTLS), all PEM files re-read on change.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate chain, leaf first (`tls.crt`).
    pub cert_path: PathBuf,
    /// Private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`tls.key`).
    pub key_path: PathBuf,
    /// When set, clients must present a certificate issued by one of these CAs (Gatekeeper's
    /// `ca.crt` from the `gatekeeper-webhook-server-cert` secret).
    pub client_ca_path: Option<PathBuf>,
    /// How often the files are checked for new content (kubelet updates secrets within 60–90 s).
    pub reload_interval: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
}

/// Lookup behaviour: limits, deadlines, concurrency and negative caching.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Most keys per request; more → `systemError` (Gatekeeper then denies). Default 1,000.
    pub max_keys: usize,
    /// Budget for answering a verify request when keys miss the cache. Default 2.8 s: inside
    /// Gatekeeper's default 3 s validating-webhook timeout (Ratify historically used 2.8–2.9 s).
    /// Keep it below the Provider's `spec.timeout`.
    pub verify_deadline: Duration,
    /// Budget for a mutate request. Default 950 ms: Gatekeeper's mutating webhook times out after
    /// 1 s by default (Ratify's default is 950 ms too).
    pub mutate_deadline: Duration,
    /// Inline verifications running at once; further misses queue for a slot.
    pub max_concurrent_verifications: usize,
    /// Distinct subjects being verified or waiting for a slot; beyond that a miss is answered
    /// at once with `VERIFIER_BUSY` instead of queueing without bound.
    pub max_pending_verifications: usize,
    /// Hard limit for one inline verification, which continues in the background after the
    /// request's deadline so that the next request finds the verdict.
    pub verification_timeout: Duration,
    /// How long a definitive deny is cached (zero: never). Transient failures are never cached.
    pub deny_ttl: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            max_keys: 1000,
            verify_deadline: Duration::from_millis(2800),
            mutate_deadline: Duration::from_millis(950),
            max_concurrent_verifications: 16,
            max_pending_verifications: 256,
            verification_timeout: Duration::from_secs(30),
            deny_ttl: Duration::from_secs(30),
        }
    }
}

impl ServiceConfig {
    /// Rejects values that cannot work, naming the field and the fix.
    pub fn validate(&self) -> Result<(), CacheApiError> {
        let nonzero = |field: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(CacheApiError::Config {
                    field,
                    reason: "must be greater than zero".into(),
                })
            }
        };
        nonzero("service.max_keys", self.max_keys > 0)?;
        nonzero("service.verify_deadline", !self.verify_deadline.is_zero())?;
        nonzero("service.mutate_deadline", !self.mutate_deadline.is_zero())?;
        nonzero(
            "service.max_concurrent_verifications",
            self.max_concurrent_verifications > 0,
        )?;
        nonzero(
            "service.max_pending_verifications",
            self.max_pending_verifications > 0,
        )?;
        nonzero(
            "service.verification_timeout",
            !self.verification_timeout.is_zero(),
        )?;
        if self.verification_timeout < self.verify_deadline {
            return Err(CacheApiError::Config {
                field: "service.verification_timeout",
                reason: format!(
                    "{:?} is shorter than service.verify_deadline {:?}; a verification must be allowed to outlive the request",
                    self.verification_timeout, self.verify_deadline
                ),
            });
        }
        Ok(())
    }
}

/// Per-registry request rate for inline verification (token bucket); `Retry-After` from a 429
/// always wins over it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistryRateLimit {
    /// Sustained requests per second to one registry host.
    pub requests_per_second: f64,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
}

impl Default for RegistryRateLimit {
    /// ACR Basic allows 1,000 ReadOps/min (≈ 16/s); stay under it by default.
    fn default() -> Self {
        RegistryRateLimit {
            requests_per_second: 15.0,
            burst: 30,
        }
    }
}
