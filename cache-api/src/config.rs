//! Every knob of the cache API, with defaults chosen from Gatekeeper's and Ratify's behaviour.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

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
    pub limits: Limits,
}

/// Load limits of the HTTPS listener, sized for Gatekeeper: it keeps a few connections per
/// replica and sends one request per admission (10 keys for a 10-image pod).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive and
    /// HTTP/2 alike). Default 90 s, as Ratify's server.
    pub idle_timeout: Duration,
    /// Concurrent streams on one HTTP/2 connection. Default 128.
    pub max_concurrent_streams: u32,
    /// Requests being answered at once across all connections; more get a `systemError` answer
    /// at once. Default 1,024.
    pub max_in_flight_requests: usize,
    /// Request-body bytes buffered at once across all requests; a request that would pass it gets
    /// a `systemError` answer. Default 64 MiB.
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle_timeout: Duration::from_secs(90),
            max_concurrent_streams: 128,
            max_in_flight_requests: 1024,
            max_buffered_bytes: 64 * 1024 * 1024,
        }
    }
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
            limits: Limits::default(),
        }
    }

    /// Rejects values that cannot work, naming the field and the fix.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = |field: &'static str, d: Duration| {
            if d.is_zero() {
                Err(Error::Config {
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
        positive("limits.idle_timeout", self.limits.idle_timeout)?;
        for (field, ok) in [
            (
                "limits.max_concurrent_streams",
                self.limits.max_concurrent_streams > 0,
            ),
            (
                "limits.max_in_flight_requests",
                self.limits.max_in_flight_requests > 0,
            ),
            (
                "limits.max_buffered_bytes",
                self.limits.max_buffered_bytes > 0,
            ),
        ] {
            if !ok {
                return Err(Error::Config {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.max_body_bytes == 0 {
            return Err(Error::Config {
                field: "max_body_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_connections == 0 {
            return Err(Error::Config {
                field: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if self.listen == self.ops_listen && self.listen.port() != 0 {
            return Err(Error::Config {
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
    /// How long a deny that may change within seconds is cached: no signature yet, or the image
    /// not found (zero: never). Default 3 s, so an image a CI pipeline signs right after pushing
    /// it is admitted seconds later instead of after `deny_ttl`.
    pub pending_deny_ttl: Duration,
    /// Most inline verifications against one registry host at once (of
    /// `max_concurrent_verifications`): one slow registry cannot take every slot.
    pub max_verifications_per_registry: usize,
    /// Longest a store read or write on the request path may take; past it the key fails closed
    /// (`STORE_UNAVAILABLE`). Default 1 s (reads take microseconds, writes an fsync).
    pub store_timeout: Duration,
    /// Store operations in flight at once (each holds a blocking thread while it runs); more wait
    /// for a slot within `store_timeout`.
    pub max_store_operations: usize,
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
            pending_deny_ttl: Duration::from_secs(3),
            max_verifications_per_registry: 8,
            store_timeout: Duration::from_secs(1),
            max_store_operations: 32,
        }
    }
}

impl ServiceConfig {
    /// Rejects values that cannot work, naming the field and the fix.
    pub fn validate(&self) -> Result<(), Error> {
        let nonzero = |field: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::Config {
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
        nonzero(
            "service.max_verifications_per_registry",
            self.max_verifications_per_registry > 0,
        )?;
        nonzero("service.store_timeout", !self.store_timeout.is_zero())?;
        nonzero(
            "service.max_store_operations",
            self.max_store_operations > 0,
        )?;
        if self.verification_timeout < self.verify_deadline {
            return Err(Error::Config {
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
