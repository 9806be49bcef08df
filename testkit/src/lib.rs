//! Dev-only test infrastructure for Verdict: real servers as child processes, test PKI, fixtures.
//!
//! - [`process`]: child-process servers (log capture, kill/restart, readiness, free ports).
//! - [`registry`]: Debian `docker-registry` (no referrers API → tag-schema fallback).
//! - [`nats`]: `nats-server -js` with a temp store that survives restarts.
//! - [`oci`]: a registry client for tests (images, artifacts with `subject`, layouts, cosign tags).
//! - [`pki`]: CA chains, code-signing/TSA/TLS leaves, bad certificates, signers.
//! - [`notation`]: Notation JWS signatures pushed as referrers.
//! - [`demo`]: `make demo`: a signed and an unsigned image judged by a real `verdict serve`.

pub mod demo;
pub mod inproc_registry;
pub mod nats;
pub mod notation;
pub mod oci;
pub mod pki;
pub mod process;
pub mod registry;
pub mod serve;

pub use nats::NatsServer;
pub use oci::{Descriptor, FetchedManifest, OciClient};
pub use registry::DockerRegistry;

/// The shared reference/vector directory: `$VERDICT_SHARED_DIR`, else `../shared` next to the
/// repository. `None` (and a "skipped: ..." line on stderr) when it does not exist, so tests
/// that need vectors can return early.
pub fn shared_dir() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("VERDICT_SHARED_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.join("vectors").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: ../shared/vectors not found ({}); set VERDICT_SHARED_DIR",
            dir.display()
        );
        None
    }
}
