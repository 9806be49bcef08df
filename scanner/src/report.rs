//! The verification result model, shaped like Ratify's so its Gatekeeper templates read it unchanged.
//!
//! One [`VerifierReport`] per (referrer, verifier) pair, Ratify's config-policy rule
//! ([`ArtifactPolicy`]) turns the reports into the overall decision, and [`Evidence`] keeps what
//! is needed to re-verify later without the registry (envelope digests, key and certificate
//! fingerprints). How a verdict is answered on the wire (Ratify's v1 and v2 item values) is the
//! API's business: `verdict-cache-api`'s `wire::ratify`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `errorReason` of a subject with no signature a verifier handles (Ratify's code).
pub const ERROR_NO_VERIFIER_REPORT: &str = "NO_VERIFIER_REPORT";
/// `errorReason` of a subject the registry does not have.
pub const ERROR_SUBJECT_NOT_FOUND: &str = "SUBJECT_NOT_FOUND";

/// One verifier's verdict on one referrer (signature) of the subject, in Ratify's v1 field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifierReport {
    /// The subject reference as the caller gave it (a tag stays a tag, as in Ratify).
    pub subject: String,
    pub is_success: bool,
    /// The Verifier resource's `metadata.name`.
    pub verifier_name: String,
    /// The Verifier's type (`notation`, `cosign`).
    pub verifier_type: String,
    /// Digest of the referrer (signature manifest) this report is about; empty for subject-level failures.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference_digest: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remediation: String,
    /// Verifier-specific facts (`Issuer`/`SN` for Notation, `signatures`/`trustPolicy` for Cosign).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested_results: Vec<VerifierReport>,
}

impl VerifierReport {
    /// The report Ratify emits when verification of the subject could not even start or found
    /// nothing to verify (no `verifierName`; `isSuccess: false`).
    pub fn subject_failure(
        subject: &str,
        message: impl Into<String>,
        error_reason: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        VerifierReport {
            subject: subject.to_owned(),
            is_success: false,
            verifier_name: String::new(),
            verifier_type: String::new(),
            reference_digest: String::new(),
            artifact_type: String::new(),
            message: message.into(),
            error_reason: error_reason.into(),
            remediation: remediation.into(),
            extensions: None,
            nested_results: Vec::new(),
        }
    }
}

/// How the reports of one artifact type combine (Ratify config policy `artifactVerificationPolicies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// At least one report of the type must succeed.
    Any,
    /// Every report of the type must succeed (and there must be one).
    All,
}

/// Ratify's `config-policy`: a rule per artifact type plus a default (`all` unless configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactPolicy {
    pub default: Rule,
    /// Explicitly listed artifact types; each must have at least one successful report.
    pub per_type: BTreeMap<String, Rule>,
}

impl Default for ArtifactPolicy {
    fn default() -> Self {
        ArtifactPolicy {
            default: Rule::All,
            per_type: BTreeMap::new(),
        }
    }
}

impl ArtifactPolicy {
    /// Build from Ratify's `artifactVerificationPolicies` map (`default` is the fallback key).
    pub fn from_map<'a>(entries: impl IntoIterator<Item = (&'a str, Rule)>) -> Self {
        let mut policy = ArtifactPolicy::default();
        for (artifact_type, rule) in entries {
            if artifact_type == "default" {
                policy.default = rule;
            } else {
                policy.per_type.insert(artifact_type.to_owned(), rule);
            }
        }
        policy
    }

    fn rule_for(&self, artifact_type: &str) -> Rule {
        self.per_type
            .get(artifact_type)
            .copied()
            .unwrap_or(self.default)
    }

    /// The overall decision, failing closed: no reports → deny; a type under `all` with any failed
    /// report → deny; a type under `any` with no success → deny; every explicitly listed type
    /// needs at least one successful report.
    pub fn decide(&self, reports: &[VerifierReport]) -> bool {
        if reports.is_empty() {
            return false;
        }
        let mut seen: BTreeMap<&str, (usize, usize)> = BTreeMap::new(); // type -> (total, ok)
        for report in reports {
            let entry = seen.entry(report.artifact_type.as_str()).or_default();
            entry.0 += 1;
            if report.is_success {
                entry.1 += 1;
            }
        }
        let types_ok = seen
            .iter()
            .all(|(ty, (total, ok))| match self.rule_for(ty) {
                Rule::All => ok == total,
                Rule::Any => *ok > 0,
            });
        let listed_ok = self
            .per_type
            .keys()
            .all(|ty| seen.get(ty.as_str()).is_some_and(|(_, ok)| *ok > 0));
        types_ok && listed_ok
    }
}

/// What a verdict rested on, kept so it can be revoked or re-verified without the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub verifier_name: String,
    pub artifact_type: String,
    /// Digest of the referrer manifest the signature came from.
    pub reference_digest: String,
    /// `sha256:<hex>` of the signature envelope (or Cosign payload) bytes that were verified.
    pub envelope_digest: String,
    /// `sha256:<hex>` fingerprints of every key and certificate that the positive result used:
    /// the signing chain, the trust anchor, TSA certificates, public keys. Revocation looks these up.
    pub fingerprints: BTreeSet<String>,
    /// The earliest instant at which this evidence stops being valid (certificate or signature expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
}

/// The verdict for one subject under one trust configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationResult {
    /// The reference as the caller gave it.
    pub subject: String,
    /// The manifest digest that was verified (tags are resolved before verification).
    pub digest: String,
    pub is_success: bool,
    pub reports: Vec<VerifierReport>,
    pub evidence: Vec<Evidence>,
    /// Fingerprint of the trust configuration (verifiers, policies, keys) the verdict was computed under.
    pub trust_config_fingerprint: String,
    pub verified_at: DateTime<Utc>,
}

impl VerificationResult {
    /// Combine reports under `policy`; the decision is computed here and nowhere else.
    pub fn decide(
        subject: String,
        digest: String,
        reports: Vec<VerifierReport>,
        evidence: Vec<Evidence>,
        policy: &ArtifactPolicy,
        trust_config_fingerprint: String,
        verified_at: DateTime<Utc>,
    ) -> Self {
        let is_success = policy.decide(&reports);
        VerificationResult {
            subject,
            digest,
            is_success,
            reports,
            evidence,
            trust_config_fingerprint,
            verified_at,
        }
    }

    /// A deny that may turn into an allow within seconds without any configuration change: the
    /// image has no signature yet (`NO_VERIFIER_REPORT`: a CI pipeline signs right after it
    /// pushes) or was not found (`SUBJECT_NOT_FOUND`: not pushed yet). Such denies are kept only
    /// briefly; other denies are definitive for their lifetime.
    pub fn is_provisional_deny(&self) -> bool {
        !self.is_success
            && !self.reports.is_empty()
            && self.reports.iter().all(|r| {
                matches!(
                    r.error_reason.as_str(),
                    ERROR_NO_VERIFIER_REPORT | ERROR_SUBJECT_NOT_FOUND
                )
            })
    }

    /// Earliest `valid_until` over the evidence (only verified signatures carry evidence).
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.evidence.iter().filter_map(|e| e.valid_until).min()
    }

    /// Until when this verdict, computed at `now`, may be served: an allow until its evidence
    /// expires; a deny for its lifetime in `denies` (provisional or definitive), never past its
    /// evidence. [`Retention::Discard`] when it must not be kept at all (a zero lifetime, or
    /// evidence that has already expired). The one place verdict lifetimes are decided.
    pub fn retention(&self, now: DateTime<Utc>, denies: &DenyLifetimes) -> Retention {
        let evidence = self.valid_until();
        let expires_at = if self.is_success {
            evidence
        } else {
            let ttl = if self.is_provisional_deny() {
                denies.provisional
            } else {
                denies.definitive
            };
            if ttl.is_zero() {
                return Retention::Discard;
            }
            let cap = chrono::Duration::from_std(ttl)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            Some(evidence.map_or(cap, |e| e.min(cap)))
        };
        match expires_at {
            Some(at) if at <= now => Retention::Discard,
            expires_at => Retention::Keep { expires_at },
        }
    }

    /// Whether this verdict, kept until `expires_at` (from [`Self::retention`]), may be served
    /// at `now` to a caller whose trust configuration has fingerprint `current_fingerprint`. Every
    /// layer that holds verdicts (memory maps, the store) asks this and nothing else.
    pub fn servable(
        &self,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        current_fingerprint: &str,
    ) -> Result<(), Unservable> {
        if self.trust_config_fingerprint != current_fingerprint {
            Err(Unservable::OtherTrustConfig)
        } else if expires_at.is_some_and(|e| now >= e) {
            Err(Unservable::Expired)
        } else {
            Ok(())
        }
    }
}

/// How long denies are kept (allows are bounded by their evidence alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenyLifetimes {
    /// A deny that will not change without a configuration change (bad signature, untrusted key).
    pub definitive: std::time::Duration,
    /// A deny that may turn into an allow within seconds ([`VerificationResult::is_provisional_deny`]).
    pub provisional: std::time::Duration,
}

/// What [`VerificationResult::retention`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Do not keep the verdict: answer it once.
    Discard,
    /// Keep it until `expires_at` (`None`: no bound, an allow resting on non-expiring keys).
    Keep { expires_at: Option<DateTime<Utc>> },
}

/// Why [`VerificationResult::servable`] refuses a kept verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unservable {
    /// Its lifetime has ended.
    Expired,
    /// It was computed under another trust configuration.
    OtherTrustConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTATION: &str = "application/vnd.cncf.notary.signature";
    const COSIGN: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

    fn report(artifact_type: &str, ok: bool) -> VerifierReport {
        VerifierReport {
            subject: "r.io/app@sha256:aa".into(),
            is_success: ok,
            verifier_name: "v".into(),
            verifier_type: "notation".into(),
            reference_digest: format!("sha256:{}", if ok { "11" } else { "22" }),
            artifact_type: artifact_type.into(),
            message: "m".into(),
            error_reason: String::new(),
            remediation: String::new(),
            extensions: None,
            nested_results: vec![],
        }
    }

    #[test]
    fn no_reports_is_a_deny() {
        assert!(!ArtifactPolicy::default().decide(&[]));
    }

    #[test]
    fn default_all_denies_when_any_signature_fails() {
        let p = ArtifactPolicy::default();
        assert!(p.decide(&[report(NOTATION, true)]));
        assert!(!p.decide(&[report(NOTATION, true), report(NOTATION, false)]));
    }

    #[test]
    fn any_needs_one_success_per_type() {
        let p = ArtifactPolicy::from_map([("default", Rule::Any)]);
        assert!(p.decide(&[report(NOTATION, false), report(NOTATION, true)]));
        assert!(!p.decide(&[report(NOTATION, false)]));
        // Each type seen must be satisfied on its own.
        assert!(!p.decide(&[report(NOTATION, true), report(COSIGN, false)]));
    }

    #[test]
    fn listed_types_must_be_present_and_succeed() {
        let p = ArtifactPolicy::from_map([(NOTATION, Rule::Any), ("default", Rule::All)]);
        assert!(!p.decide(&[report(COSIGN, true)]), "notation is required");
        assert!(p.decide(&[report(COSIGN, true), report(NOTATION, true)]));
    }

    fn decided(
        reports: Vec<VerifierReport>,
        valid_until: Option<DateTime<Utc>>,
    ) -> VerificationResult {
        let evidence = valid_until
            .map(|v| Evidence {
                verifier_name: "v".into(),
                artifact_type: NOTATION.into(),
                reference_digest: "sha256:11".into(),
                envelope_digest: "sha256:22".into(),
                fingerprints: BTreeSet::new(),
                valid_until: Some(v),
            })
            .into_iter()
            .collect();
        VerificationResult::decide(
            "r.io/app@sha256:aa".into(),
            "sha256:aa".into(),
            reports,
            evidence,
            &ArtifactPolicy::default(),
            "fp".into(),
            Utc::now(),
        )
    }

    #[test]
    fn retention_bounds_allows_by_evidence_and_denies_by_their_lifetime() {
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let denies = DenyLifetimes {
            definitive: std::time::Duration::from_secs(60),
            provisional: std::time::Duration::from_secs(3),
        };
        let allow = decided(vec![report(NOTATION, true)], Some(now + hour));
        assert_eq!(
            allow.retention(now, &denies),
            Retention::Keep {
                expires_at: Some(now + hour)
            }
        );
        let unbounded = decided(vec![report(NOTATION, true)], None);
        assert_eq!(
            unbounded.retention(now, &denies),
            Retention::Keep { expires_at: None }
        );
        let expired = decided(vec![report(NOTATION, true)], Some(now));
        assert_eq!(expired.retention(now, &denies), Retention::Discard);

        let deny = decided(vec![report(NOTATION, false)], None);
        assert_eq!(
            deny.retention(now, &denies),
            Retention::Keep {
                expires_at: Some(now + chrono::Duration::seconds(60))
            }
        );
        let soon = decided(
            vec![report(NOTATION, false)],
            Some(now + chrono::Duration::seconds(5)),
        );
        assert_eq!(
            soon.retention(now, &denies),
            Retention::Keep {
                expires_at: Some(now + chrono::Duration::seconds(5))
            },
            "a lifetime never outlives the evidence"
        );
        let mut unsigned = report("", false);
        unsigned.error_reason = ERROR_NO_VERIFIER_REPORT.into();
        let provisional = decided(vec![unsigned], None);
        assert_eq!(
            provisional.retention(now, &denies),
            Retention::Keep {
                expires_at: Some(now + chrono::Duration::seconds(3))
            }
        );
        let none = DenyLifetimes {
            provisional: std::time::Duration::ZERO,
            ..denies
        };
        assert_eq!(provisional.retention(now, &none), Retention::Discard);
    }

    #[test]
    fn servable_needs_the_current_configuration_and_an_unexpired_lifetime() {
        let now = Utc::now();
        let v = decided(vec![report(NOTATION, true)], None);
        assert_eq!(v.servable(None, now, "fp"), Ok(()));
        assert_eq!(
            v.servable(Some(now + chrono::Duration::seconds(1)), now, "fp"),
            Ok(())
        );
        assert_eq!(v.servable(Some(now), now, "fp"), Err(Unservable::Expired));
        assert_eq!(
            v.servable(None, now, "other"),
            Err(Unservable::OtherTrustConfig)
        );
    }
}
