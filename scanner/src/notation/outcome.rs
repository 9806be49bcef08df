//! The result of verifying one Notation signature: a value, never an error.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::crypto::SignatureAlgorithm;
use super::envelope::{EnvelopeFormat, SigningScheme};
use super::payload::TargetArtifact;
use super::policy::{Action, Validation};

/// How one validation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "message", rename_all = "camelCase")]
pub enum StepStatus {
    /// Performed and succeeded.
    Passed,
    /// Performed and failed; whether that failed the signature depends on the action.
    Failed(String),
    /// Not performed, by policy or because nothing applied (the message says which).
    Skipped(String),
    /// Required by policy but not implemented by this verifier: neither passed nor failed.
    NotChecked(String),
}

/// One validation of the workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub validation: Validation,
    /// Enforce / log / skip, from the trust policy level and overrides.
    pub action: Action,
    #[serde(flatten)]
    pub status: StepStatus,
}

impl StepResult {
    /// A failure under `enforce`.
    pub fn is_enforced_failure(&self) -> bool {
        self.action == Action::Enforce && matches!(self.status, StepStatus::Failed(_))
    }

    /// A failure under `log` (a warning).
    pub fn is_logged_failure(&self) -> bool {
        self.action == Action::Log && matches!(self.status, StepStatus::Failed(_))
    }

    /// The failure message, if failed.
    pub fn failure(&self) -> Option<&str> {
        match &self.status {
            StepStatus::Failed(m) => Some(m),
            _ => None,
        }
    }
}

/// Why a signature did not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The enforced validation that failed; `None` when no trust policy applies.
    pub validation: Option<Validation>,
    pub reason: String,
}

/// The trust policy statement that was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPolicy {
    pub name: String,
    /// "strict", "permissive", "audit", "skip", or e.g. "strict (custom)".
    pub level: String,
}

/// The signer facts Ratify reports for Notation (`extensions.Issuer` / `extensions.SN`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerFacts {
    /// Leaf issuer DN as Go prints it (Ratify `Issuer`).
    pub issuer: String,
    /// Leaf subject DN as Go prints it (Ratify `SN`).
    pub subject: String,
    /// Leaf serial number, lowercase hex.
    pub serial_number: String,
}

/// A trust store certificate that anchored a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAnchorRef {
    /// `ca:<name>`, `signingAuthority:<name>` or `tsa:<name>`.
    pub store: String,
    /// SHA-256 of the certificate DER, lowercase hex.
    pub sha256: String,
}

/// The verified RFC 3161 timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampEvidence {
    pub gen_time: DateTime<Utc>,
    pub accuracy_micros: i64,
    /// TSA chain fingerprints, signing certificate first.
    pub tsa_chain_sha256: Vec<String>,
    pub tsa_anchor: TrustAnchorRef,
}

/// What is needed to re-verify later without the registry and to revoke on trust changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEvidence {
    /// `sha256:<hex>` of the envelope bytes (the signature blob digest).
    pub envelope_digest: String,
    pub envelope_media_type: String,
    pub envelope_format: Option<EnvelopeFormat>,
    pub signing_scheme: Option<SigningScheme>,
    pub signature_algorithm: Option<SignatureAlgorithm>,
    /// SHA-256 of every certificate of the envelope chain, leaf first.
    pub cert_chain_sha256: Vec<String>,
    /// Trust store certificates found in the chain (empty when authenticity failed).
    pub trust_anchors: Vec<TrustAnchorRef>,
    /// Signing time as claimed (`notary.x509`) or vouched (`signingAuthority`).
    pub signing_time: Option<DateTime<Utc>>,
    pub expiry: Option<DateTime<Utc>>,
    /// Earliest `notAfter` in the envelope chain.
    pub chain_not_after: Option<DateTime<Utc>>,
    pub timestamp: Option<TimestampEvidence>,
    /// The signed `targetArtifact`.
    pub payload: Option<TargetArtifact>,
}

/// The outcome of verifying one signature envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureOutcome {
    /// True when no enforced validation failed.
    pub verified: bool,
    pub policy: Option<AppliedPolicy>,
    /// Validations in the order performed (a verification stops at the first enforced failure).
    pub steps: Vec<StepResult>,
    /// The enforced failure, when not verified.
    pub failure: Option<Failure>,
    /// One line for people: success, the failure, or success with warnings.
    pub message: String,
    pub signer: Option<SignerFacts>,
    pub evidence: SignatureEvidence,
    /// When the time alone may turn this verdict: the enforced expiry, or — when validity was
    /// judged at verification time — the earliest certificate expiry. `None`: time-independent.
    pub valid_until: Option<DateTime<Utc>>,
    /// The time the verification was evaluated at.
    pub evaluated_at: DateTime<Utc>,
}

impl SignatureOutcome {
    /// The step result of a validation, if it ran.
    pub fn step(&self, validation: Validation) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.validation == validation)
    }

    /// Messages of failures that were only logged.
    pub fn warnings(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.is_logged_failure())
            .filter_map(|s| {
                s.failure()
                    .map(|m| format!("{} (logged): {m}", s.validation))
            })
            .collect()
    }
}
