//! OCI registry access: tag resolution, manifests and blobs by digest, referrer discovery, auth.
//!
//! Why not oci-client's `Client` (the design card names oci-client): we use its `Reference` for
//! parsing and Docker-style normalisation, but do HTTP on reqwest ourselves because oci-client 0.18
//! - turns any 4xx with an error body on the referrers tag-schema fallback (401, 403, 429
//!   `TOOMANYREQUESTS`) into "no referrers", i.e. reports a throttled registry as an unsigned image;
//! - does not expose 429's `Retry-After` or the status of failures as types;
//! - reads referrers bodies without a size cap, ignores `Link` paging and drops fallback entries
//!   that lack `artifactType` when filtering;
//! - stores auth per registry once and never replaces it (no credential rotation), and has no
//!   per-call deadline.
//!
//! Guarantees here: every public call has a deadline ([`RegistryConfig::request_timeout`]);
//! manifests and blobs are digest-verified and size-capped while reading; registry failures are
//! typed ([`RegistryError`]) and never look like an empty result; plain HTTP only for listed hosts.

mod acr;
mod auth;
mod client;
mod digest;
mod error;
mod media;
mod reference;
mod referrers;
mod token;
mod transport;

pub use acr::{AcrAuthProvider, DEFAULT_ACR_ENDPOINTS};
pub use auth::{
    Anonymous, AuthProvider, Credentials, DockerConfig, StaticCredentials, TokenEndpoint,
    normalize_registry_key,
};
pub use client::{RegistryClient, RegistryConfig, RetryPolicy};
pub use digest::{Digest, DigestAlgorithm};
pub use error::RegistryError;
pub use media::{
    Descriptor, ImageIndex, ImageManifest, Manifest, media_type, parse_image_manifest, parse_index,
};
pub use reference::{DOCKER_HUB_API_HOST, ImageReference, Repository, api_host};
pub use referrers::{Referrers, ReferrersSource};
pub use token::jwt_lifetime;
pub use transport::{METRIC_REQUESTS, METRIC_RETRIES};
