//! Dev-only test infrastructure for Verdict: real servers as child processes, test PKI, fixtures.
//!
//! - [`process`]: child-process servers (log capture, kill/restart, readiness, free ports).
//! - [`registry`]: Debian `docker-registry` (no referrers API → tag-schema fallback).
//! - [`nats`]: `nats-server -js` with a temp store that survives restarts.
//! - [`oci`]: a registry client for tests (images, artifacts with `subject`, layouts, cosign tags).
//! - [`pki`]: CA chains, code-signing/TSA/TLS leaves, bad certificates, signers.
//! - [`notation`]: Notation JWS signatures pushed as referrers.
//! - [`oracles`]: the upstream `notation` and `oras` CLIs and a referrers-API registry, for the
//!   interop tests (built by `scripts/install-deps.sh --oracles`).
//! - [`ratify`]: Ratify CRs as users write them (inline KeyManagementProvider, Notation Verifier).
//! - [`shared`]: `../shared` (reference files required, vectors optional) and recorded skips.
//! - [`azure`]: HTTPS fakes of Entra ID, Key Vault and ACR's token server on a test CA.
//! - [`demo`]: `make demo`: a signed and an unsigned image judged by a real `verdict serve`.

pub mod azure;
pub mod demo;
pub mod inproc_registry;
pub mod nats;
pub mod notation;
pub mod oci;
pub mod oracles;
pub mod pki;
pub mod process;
pub mod ratify;
pub mod registry;
pub mod seeds;
pub mod serve;
pub mod shared;
pub mod stats;

pub use nats::NatsServer;
pub use oci::{Descriptor, FetchedManifest, OciClient};
pub use registry::DockerRegistry;
pub use shared::{shared_dir, shared_file, shared_root, skip};
