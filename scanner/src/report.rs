//! The verification result model, shaped like Ratify's so its Gatekeeper templates read it unchanged.
//!
//! One [`VerifierReport`] per (referrer, verifier) pair, Ratify's config-policy rule
//! ([`ArtifactPolicy`]) turns the reports into the overall decision, and [`Evidence`] keeps what
//! is needed to re-verify later without the registry (envelope digests, key and certificate
//! fingerprints). This module is the one place that builds the Ratify v1 (`0.2.0`) and v2 value
//! shapes ([`VerificationResult::ratify_v1_value`], [`VerificationResult::ratify_v2_value`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Ratify's config-policy result version (`verifierReports` is a flat list of reports).
pub const RATIFY_CONFIG_POLICY_VERSION: &str = "0.2.0";

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

    /// Ratify v1 JSON of this report: `name`/`type` repeat `verifierName`/`verifierType`
    /// (deprecated in Ratify 1.3 but still read by older templates), empty fields omitted.
    pub fn ratify_v1_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("subject".into(), json!(self.subject));
        m.insert("isSuccess".into(), json!(self.is_success));
        if !self.verifier_name.is_empty() {
            m.insert("name".into(), json!(self.verifier_name));
            m.insert("verifierName".into(), json!(self.verifier_name));
        }
        if !self.verifier_type.is_empty() {
            m.insert("type".into(), json!(self.verifier_type));
            m.insert("verifierType".into(), json!(self.verifier_type));
        }
        for (k, v) in [
            ("referenceDigest", &self.reference_digest),
            ("artifactType", &self.artifact_type),
            ("message", &self.message),
            ("errorReason", &self.error_reason),
            ("remediation", &self.remediation),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        if let Some(ext) = &self.extensions {
            m.insert("extensions".into(), ext.clone());
        }
        if !self.nested_results.is_empty() {
            m.insert(
                "nestedResults".into(),
                Value::Array(
                    self.nested_results
                        .iter()
                        .map(Self::ratify_v1_json)
                        .collect(),
                ),
            );
        }
        Value::Object(m)
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

    /// Earliest `valid_until` over the evidence (only verified signatures carry evidence).
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.evidence.iter().filter_map(|e| e.valid_until).min()
    }

    /// Ratify's v1 external-data item value (config policy, version `0.2.0`).
    pub fn ratify_v1_value(&self, trace_id: &str, now: DateTime<Utc>) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("version".into(), json!(RATIFY_CONFIG_POLICY_VERSION));
        m.insert("isSuccess".into(), json!(self.is_success));
        if !trace_id.is_empty() {
            m.insert("traceID".into(), json!(trace_id));
        }
        m.insert(
            "timestamp".into(),
            json!(now.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        );
        if !self.reports.is_empty() {
            m.insert(
                "verifierReports".into(),
                Value::Array(
                    self.reports
                        .iter()
                        .map(VerifierReport::ratify_v1_json)
                        .collect(),
                ),
            );
        }
        Value::Object(m)
    }

    /// The same JSON as [`Self::ratify_v1_value`], serialised straight from this result (no
    /// `Value` tree): the cache API's hot path. A test checks both give identical bytes.
    pub fn ratify_v1<'a>(&'a self, trace_id: &'a str, now: DateTime<Utc>) -> impl Serialize + 'a {
        RatifyV1Value {
            result: self,
            trace_id,
            timestamp: now.to_rfc3339_opts(SecondsFormat::Nanos, true),
        }
    }

    /// Appends [`Self::ratify_v1`]'s JSON to `out`.
    pub fn write_ratify_v1_value(
        &self,
        trace_id: &str,
        now: DateTime<Utc>,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, &self.ratify_v1(trace_id, now))
    }

    /// Ratify v2's external-data item value: `succeeded` and one artifact report per referrer,
    /// with the verifier extensions as a JSON-encoded `detail` string.
    pub fn ratify_v2_value(&self) -> Value {
        let mut by_artifact: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for r in &self.reports {
            let key = r.reference_digest.as_str();
            if !by_artifact.contains_key(key) {
                order.push(key);
            }
            let mut result = serde_json::Map::new();
            if !r.verifier_name.is_empty() {
                result.insert("verifierName".into(), json!(r.verifier_name));
            }
            result.insert("description".into(), json!(r.message));
            if let Some(ext) = &r.extensions {
                result.insert("detail".into(), json!(ext.to_string()));
            }
            if !r.error_reason.is_empty() {
                result.insert("errorReason".into(), json!(r.error_reason));
            }
            by_artifact
                .entry(key)
                .or_default()
                .push(Value::Object(result));
        }
        let artifact_reports: Vec<Value> = order
            .into_iter()
            .map(|artifact| {
                let mut m = serde_json::Map::new();
                m.insert("subject".into(), json!(self.subject));
                if !artifact.is_empty() {
                    m.insert("artifact".into(), json!(artifact));
                }
                m.insert(
                    "results".into(),
                    Value::Array(by_artifact.remove(artifact).unwrap_or_default()),
                );
                Value::Object(m)
            })
            .collect();
        json!({ "succeeded": self.is_success, "artifactReports": artifact_reports })
    }
}

/// [`VerificationResult::ratify_v1`]: field for field what `ratify_v1_value` builds.
struct RatifyV1Value<'a> {
    result: &'a VerificationResult,
    trace_id: &'a str,
    timestamp: String,
}

impl Serialize for RatifyV1Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("version", RATIFY_CONFIG_POLICY_VERSION)?;
        m.serialize_entry("isSuccess", &self.result.is_success)?;
        if !self.trace_id.is_empty() {
            m.serialize_entry("traceID", &self.trace_id)?;
        }
        m.serialize_entry("timestamp", &self.timestamp)?;
        if !self.result.reports.is_empty() {
            m.serialize_entry("verifierReports", &V1Reports(&self.result.reports))?;
        }
        m.end()
    }
}

struct V1Reports<'a>(&'a [VerifierReport]);

impl Serialize for V1Reports<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(V1Report))
    }
}

/// [`VerifierReport::ratify_v1_json`] without the `Value` tree.
struct V1Report<'a>(&'a VerifierReport);

impl Serialize for V1Report<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("subject", &r.subject)?;
        m.serialize_entry("isSuccess", &r.is_success)?;
        if !r.verifier_name.is_empty() {
            m.serialize_entry("name", &r.verifier_name)?;
            m.serialize_entry("verifierName", &r.verifier_name)?;
        }
        if !r.verifier_type.is_empty() {
            m.serialize_entry("type", &r.verifier_type)?;
            m.serialize_entry("verifierType", &r.verifier_type)?;
        }
        for (k, v) in [
            ("referenceDigest", &r.reference_digest),
            ("artifactType", &r.artifact_type),
            ("message", &r.message),
            ("errorReason", &r.error_reason),
            ("remediation", &r.remediation),
        ] {
            if !v.is_empty() {
                m.serialize_entry(k, v)?;
            }
        }
        if let Some(ext) = &r.extensions {
            m.serialize_entry("extensions", ext)?;
        }
        if !r.nested_results.is_empty() {
            m.serialize_entry("nestedResults", &V1Reports(&r.nested_results))?;
        }
        m.end()
    }
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

    #[test]
    fn v1_value_has_ratify_field_names() {
        let mut r = report(NOTATION, true);
        r.extensions = Some(json!({"Issuer": "CN=x", "SN": "CN=y"}));
        let result = VerificationResult::decide(
            "r.io/app:v1".into(),
            "sha256:aa".into(),
            vec![r],
            vec![],
            &ArtifactPolicy::default(),
            "tc".into(),
            Utc::now(),
        );
        let v = result.ratify_v1_value("trace-1", Utc::now());
        assert_eq!(v["version"], "0.2.0");
        assert_eq!(v["isSuccess"], true);
        assert_eq!(v["traceID"], "trace-1");
        let rep = &v["verifierReports"][0];
        assert_eq!(rep["name"], "v");
        assert_eq!(rep["verifierName"], "v");
        assert_eq!(rep["type"], "notation");
        assert_eq!(rep["verifierType"], "notation");
        assert_eq!(rep["extensions"]["Issuer"], "CN=x");
        assert!(rep.get("errorReason").is_none(), "empty fields are omitted");

        let v2 = result.ratify_v2_value();
        assert_eq!(v2["succeeded"], true);
        assert_eq!(v2["artifactReports"][0]["artifact"], "sha256:11");
        assert_eq!(
            v2["artifactReports"][0]["results"][0]["detail"],
            r#"{"Issuer":"CN=x","SN":"CN=y"}"#
        );
    }

    #[test]
    fn fast_v1_serialiser_writes_the_value_builders_bytes() {
        let mut full = report(NOTATION, true);
        full.subject = "r.io/app@sha256:aa \"quoted\" \u{e9}\n".into();
        full.error_reason = "reason".into();
        full.remediation = "fix <it> & retry".into();
        full.extensions =
            Some(json!({"Issuer": "CN=x", "nested": {"z": 1, "a": [true, null, 2.5]}}));
        let mut nested = report(COSIGN, false);
        nested.nested_results = vec![report(NOTATION, true)];
        full.nested_results = vec![nested];
        let mut bare = report("", false);
        bare.verifier_name.clear();
        bare.verifier_type.clear();
        bare.reference_digest.clear();
        bare.message.clear();
        let cases = [
            vec![],
            vec![report(NOTATION, true)],
            vec![full, bare, report(COSIGN, true)],
        ];
        let now = Utc::now();
        for reports in cases {
            for ok in [true, false] {
                let mut result = VerificationResult::decide(
                    "r.io/app:v1".into(),
                    "sha256:aa".into(),
                    reports.clone(),
                    vec![],
                    &ArtifactPolicy::default(),
                    "tc".into(),
                    now,
                );
                result.is_success = ok;
                for trace in ["", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"] {
                    let old = serde_json::to_vec(&result.ratify_v1_value(trace, now)).unwrap();
                    let mut fast = Vec::new();
                    result.write_ratify_v1_value(trace, now, &mut fast).unwrap();
                    assert_eq!(
                        String::from_utf8(fast).unwrap(),
                        String::from_utf8(old).unwrap()
                    );
                }
            }
        }
    }
}
