//! A Sigstore bundle over a file (what `cosign verify-blob --bundle` checks), for
//! `verdict verify-blob`: the same Fulcio, SCT, Rekor and timestamp checks as an image's keyless
//! signature, with the file's SHA-256 as the subject. Operators use it to debug a keyless policy
//! against material they have in hand; the test suite uses it to check those checks against
//! bundles signed by the public Sigstore instances.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::fulcio::KeylessRequirements;
use super::policy::{CosignVerifier, Trust, TrustPolicy};
use super::trust_root::SigstoreTrustRoot;
use super::verify::{BundleOutcome, CosignOutcome, Subject};

/// Name of the one trust policy a blob verification runs under (shown in its report).
pub const BLOB_POLICY: &str = "verify-blob";

/// What a blob verification concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobOutcome {
    /// Checked: valid or not, with the reasons (`outcome.is_success`).
    Checked(CosignOutcome),
    /// The bundle is an attestation (another in-toto predicate), not a signature of the file.
    NotASignature { predicate_type: String },
    /// The bundle file is not JSON or not a Sigstore bundle at all (a bundle that is one but
    /// lacks what verification needs is `Checked` and invalid).
    NotABundle { reason: String },
}

/// Verifies `bundle_json` as a keyless signature of `blob` under `root`, requiring `req`'s
/// identity and issuer; transparency-log entries are required and checked offline.
pub fn verify_blob(
    blob: &[u8],
    bundle_json: &[u8],
    root: Arc<SigstoreTrustRoot>,
    req: KeylessRequirements,
    now: DateTime<Utc>,
) -> BlobOutcome {
    let media_type = serde_json::from_slice::<serde_json::Value>(bundle_json)
        .map_err(|e| format!("it is not JSON: {e}"))
        .and_then(|v| match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(m) if m.starts_with(super::BUNDLE_MEDIA_TYPE_PREFIX) => Ok(()),
            other => Err(format!(
                "its mediaType {other:?} is not a Sigstore bundle type ({}…)",
                super::BUNDLE_MEDIA_TYPE_PREFIX
            )),
        });
    if let Err(reason) = media_type {
        return BlobOutcome::NotABundle { reason };
    }
    let verifier = CosignVerifier {
        policies: vec![TrustPolicy {
            name: BLOB_POLICY.to_owned(),
            scopes: vec!["*".to_owned()],
            trust: Trust::Keyless(req),
            tlog_verify: true,
        }],
        trust_root: root,
    };
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(blob)));
    let subject = Subject {
        reference: "blob",
        repository: "blob",
        digest: &digest,
    };
    let bundle_digest = format!("sha256:{}", hex::encode(Sha256::digest(bundle_json)));
    match verifier.verify_bundle(&subject, bundle_json, &bundle_digest, now) {
        BundleOutcome::Verified(outcome) => BlobOutcome::Checked(outcome),
        BundleOutcome::NotASignature { predicate_type } => {
            BlobOutcome::NotASignature { predicate_type }
        }
    }
}
