//! Notary Project (Notation) signature verification: JWS and COSE envelopes, certificate chains
//! with the Notary Project certificate requirements, trust policy document v1.0, trust stores
//! (`ca`, `signingAuthority`, `tsa`) and RFC 3161 timestamp countersignatures.
//!
//! Entry points: [`TrustPolicyDocument::from_document`] (the rules live in `verdict-crds`),
//! [`TrustStores`], [`verify_signature`]
//! (returns a [`SignatureOutcome`] value — a bad signature is an outcome, not an error) and
//! [`prefilter`] (skip signature blobs no configured trust store can match).
//!
//! Not implemented: revocation (OCSP/CRL) — reported as "not checked" in the outcome's
//! revocation step, never as passed — and verification plugins (signatures that require one fail
//! integrity with "verification plugin not supported").

mod certs;
mod crypto;
pub(crate) mod envelope;
mod error;
mod names;
mod outcome;
pub(crate) mod payload;
mod policy;
mod timestamp;
mod truststore;
mod verify;

pub use crypto::SignatureAlgorithm;
pub use envelope::{EnvelopeFormat, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, SigningScheme};
pub use error::NotationError;
pub use outcome::{
    AppliedPolicy, Failure, SignatureEvidence, SignatureOutcome, SignerFacts, StepResult,
    StepStatus, TimestampEvidence, TrustAnchorRef,
};
pub use payload::{PAYLOAD_CONTENT_TYPE, TargetArtifact};
pub use policy::{
    Action, Level, PolicyError, TrustPolicyDocument, TrustPolicyStatement, TrustStoreRef,
    TrustedIdentity, Validation, VerifyTimestamp,
};
pub use truststore::{TrustStoreType, TrustStores};
pub use verify::{Prefilter, REVOCATION_NOT_IMPLEMENTED, prefilter, verify_signature};

/// `artifactType` (or legacy `config.mediaType`) of Notation signature manifests.
pub const ARTIFACT_TYPE_SIGNATURE: &str = "application/vnd.cncf.notary.signature";

/// Signature manifest annotation listing the SHA-256 fingerprints of the envelope's chain.
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
