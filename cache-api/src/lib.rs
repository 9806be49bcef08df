//! Verdict's Gatekeeper external-data API: Ratify-compatible `verify` (v1 and v2 value shapes) and
//! `mutate` (tag → digest) over HTTPS (TLS 1.3, optional mTLS, certificates hot-reloaded), plus
//! `/healthz`, `/readyz` and `/metrics` on a separate plain-HTTP port.
//!
//! - [`wire`]: the Gatekeeper and Ratify wire formats, and only there: the envelope and request
//!   limits, key parsing (`[namespace]` prefix, Docker normalisation, dedupe) in [`wire::keys`],
//!   Ratify's v1/v2 item values (rendered once per verdict) in [`wire::ratify`].
//! - [`service`]: [`VerdictService`], the lookup core: memory, then the store (bounded, on the
//!   blocking pool), then inline verification (deadline, single-flight, bounded per registry).
//! - [`cache`]: the [`VerdictCache`] trait and [`ServedVerdict`]; [`store_cache`]: the signed
//!   sled store behind it, with [`verdict_map`]'s bounded memory maps in front.
//! - [`verification`]: the miss path's ports and the scanner behind them; [`tag_map`]: tag →
//!   digest answers for a bounded time, fed by push events and HEAD answers.
//! - [`error`]: the one [`Error`] type (startup, whole-request and per-key failures).
//! - [`tls`]: rustls server configuration (aws-lc-rs, TLS 1.3 only) reloaded from PEM files.
//! - [`ops`]: health, readiness and Prometheus metrics; [`upkeep`]: store sweeps.
//! - [`server`]: [`CacheApi`], binding both listeners and serving until cancelled.

pub mod cache;
pub mod config;
pub mod error;
pub mod metrics;
pub mod ops;
pub mod revalidate;
pub mod server;
pub mod service;
mod single_flight;
pub mod store_cache;
pub mod tag_map;
pub mod tls;
pub mod upkeep;
pub mod verdict_map;
pub mod verification;
pub mod wire;

pub use cache::{MemoryVerdictCache, ServedVerdict, VerdictCache};
pub use config::{Config, Limits, ServiceConfig, TlsSettings};
pub use error::Error;
pub use ops::{Ops, Readiness};
pub use server::CacheApi;
pub use service::{Endpoint, VerdictService};
pub use verdict_scanner::subject::SubjectKey;
pub use verification::{InlineVerifier, TagResolver};

/// Caps glibc's malloc arenas at `n` (`mallopt(M_ARENA_MAX)`); call before starting threads.
/// A no-op elsewhere than glibc Linux.
pub fn limit_malloc_arenas(n: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX with a positive value is valid.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = n;
}
