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
use serde_json::Value;

/// Ratify's config-policy result version (`verifierReports` is a flat list of reports).
pub const RATIFY_CONFIG_POLICY_VERSION: &str = "0.2.0";

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

    /// Ratify v1 JSON of this report: `name`/`type` repeat `verifierName`/`verifierType`
    /// (deprecated in Ratify 1.3 but still read by older templates), empty fields omitted.
    pub fn ratify_v1_json(&self) -> Value {
        // Serialising strings, booleans and JSON values into a Value cannot fail.
        serde_json::to_value(V1Report::new(self)).unwrap_or(Value::Null)
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

    /// This result as presented for `subject` (the caller's spelling, or a tag of the verified
    /// digest), like Ratify's `Original`: the result and every top-level report about its subject
    /// name `subject` instead.
    pub fn presented_as(mut self, subject: &str) -> Self {
        if self.subject != subject {
            for report in &mut self.reports {
                if report.subject == self.subject {
                    report.subject = subject.to_owned();
                }
            }
            self.subject = subject.to_owned();
        }
        self
    }

    /// Ratify's v1 external-data item value (config policy, version `0.2.0`).
    pub fn ratify_v1_value(&self, trace_id: &str, now: DateTime<Utc>) -> Value {
        // Serialising strings, booleans and JSON values into a Value cannot fail.
        serde_json::to_value(self.ratify_v1(trace_id, now)).unwrap_or(Value::Null)
    }

    /// [`Self::ratify_v1_value`] as a serialiser over this result (no `Value` tree).
    pub fn ratify_v1<'a>(&'a self, trace_id: &'a str, now: DateTime<Utc>) -> impl Serialize + 'a {
        RatifyV1Value {
            result: self,
            trace_id,
            timestamp: ratify_timestamp(now),
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
    ///
    /// Both values carry the other version's decision too (v1 `succeeded`; v2 `isSuccess`,
    /// `traceID`, `timestamp` and v1's `verifierReports`), so a template written for either
    /// endpoint and pointed at the other still denies a failed verdict (with Ratify it admits
    /// everything: Ratify #2669). The v1 templates' deny message formats `timestamp` and
    /// `traceID`: without them the rule is undefined and the image admitted. Ratify's templates
    /// ignore fields they do not read.
    pub fn ratify_v2_value(&self, trace_id: &str, now: DateTime<Utc>) -> Value {
        serde_json::to_value(self.ratify_v2(trace_id, now)).unwrap_or(Value::Null)
    }

    /// [`Self::ratify_v2_value`] as a serialiser over this result.
    pub fn ratify_v2<'a>(&'a self, trace_id: &'a str, now: DateTime<Utc>) -> impl Serialize + 'a {
        RatifyV2Value {
            result: self,
            trace_id,
            timestamp: ratify_timestamp(now),
        }
    }

    /// Reports grouped by referrer (`referenceDigest`), in order of first appearance: v2's
    /// `artifactReports`.
    fn artifact_groups(&self) -> Vec<(&str, Vec<&VerifierReport>)> {
        let mut groups: Vec<(&str, Vec<&VerifierReport>)> = Vec::new();
        for r in &self.reports {
            let artifact = r.reference_digest.as_str();
            match groups.iter_mut().find(|(a, _)| *a == artifact) {
                Some((_, reports)) => reports.push(r),
                None => groups.push((artifact, vec![r])),
            }
        }
        groups
    }

    /// Renders the v1 and v2 values once, leaving open what changes per request (see
    /// [`RenderedVerdict`]).
    pub fn render(&self) -> Result<RenderedVerdict, serde_json::Error> {
        let mut v1 = Pieces::default();
        if !self.reports.is_empty() {
            v1.text(",\"verifierReports\":[");
            for (i, r) in self.reports.iter().enumerate() {
                if i > 0 {
                    v1.text(",");
                }
                if r.subject == self.subject {
                    v1.text("{\"subject\":");
                    v1.subject()?;
                    v1.rest_of_map(&V1Report {
                        report: r,
                        with_subject: false,
                    })?;
                } else {
                    v1.json(&V1Report::new(r))?;
                }
            }
            v1.text("]");
        }
        v1.text("}");

        // v2 after the stamp (`write_v2` writes the decision and the stamp).
        let mut v2 = Pieces::default();
        v2.text(",\"artifactReports\":[");
        for (i, (artifact, reports)) in self.artifact_groups().into_iter().enumerate() {
            if i > 0 {
                v2.text(",");
            }
            v2.text("{\"subject\":");
            v2.subject()?;
            v2.rest_of_map(&V2Artifact {
                subject: None,
                artifact,
                reports,
            })?;
        }
        // v2 ends with v1's reports (`v1_tail`, written after it), closing the object.
        v2.text("]");

        Ok(RenderedVerdict {
            is_success: self.is_success,
            v1_tail: v1.done(),
            v2: v2.done(),
        })
    }
}

/// Ratify's `timestamp` format (RFC 3339, nanoseconds, `Z`).
pub fn ratify_timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A [`VerificationResult`] rendered once into its Ratify v1 and v2 item values, with the
/// places that name the subject and v1's per-request `traceID` and `timestamp` left open, so
/// answering from it is a few copies. What [`Self::write_v1`] / [`Self::write_v2`] write for
/// `subject` is byte for byte what [`VerificationResult::ratify_v1`] / `ratify_v2` write for
/// the result [`presented_as`](VerificationResult::presented_as) `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedVerdict {
    is_success: bool,
    /// v1 after `timestamp`: `,"verifierReports":[…]}` or `}`.
    v1_tail: Template,
    v2: Template,
}

/// JSON text with the subject left out at `slots` (byte offsets into `text`, ascending). One
/// exact-size allocation each: these are held for every verdict kept in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    text: Box<str>,
    slots: Box<[u32]>,
}

impl Template {
    fn write(&self, subject: &JsonString, out: &mut String) {
        let mut from = 0;
        for &slot in &self.slots {
            let slot = slot as usize;
            out.push_str(&self.text[from..slot]);
            out.push_str(subject.as_str());
            from = slot;
        }
        out.push_str(&self.text[from..]);
    }
}

#[derive(Default)]
struct Pieces {
    text: String,
    slots: Vec<u32>,
}

impl Pieces {
    fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn subject(&mut self) -> Result<(), serde_json::Error> {
        let at = u32::try_from(self.text.len())
            .map_err(|_| serde::ser::Error::custom("a verdict rendered to more than 4 GiB"))?;
        self.slots.push(at);
        Ok(())
    }

    fn json(&mut self, value: &impl Serialize) -> Result<(), serde_json::Error> {
        self.text(&serde_json::to_string(value)?);
        Ok(())
    }

    /// `value` serialises as a non-empty JSON object; appends `,` and its members and `}`.
    fn rest_of_map(&mut self, value: &impl Serialize) -> Result<(), serde_json::Error> {
        let json = serde_json::to_string(value)?;
        match json.strip_prefix('{') {
            Some(members) if members != "}" => {
                self.text(",");
                self.text(members);
                Ok(())
            }
            _ => Err(serde::ser::Error::custom(
                "a report rendered as something other than a non-empty object",
            )),
        }
    }

    fn done(self) -> Template {
        Template {
            text: self.text.into_boxed_str(),
            slots: self.slots.into_boxed_slice(),
        }
    }
}

impl RenderedVerdict {
    pub fn is_success(&self) -> bool {
        self.is_success
    }

    /// Appends the v1 value for `subject` with the request's `stamp`.
    pub fn write_v1(&self, subject: &JsonString, stamp: &V1Stamp, out: &mut String) {
        out.push_str("{\"version\":\"");
        out.push_str(RATIFY_CONFIG_POLICY_VERSION);
        out.push_str(if self.is_success {
            "\",\"isSuccess\":true,\"succeeded\":true"
        } else {
            "\",\"isSuccess\":false,\"succeeded\":false"
        });
        stamp.write(out);
        self.v1_tail.write(subject, out);
    }

    /// Appends the v2 value for `subject` with the request's `stamp`.
    pub fn write_v2(&self, subject: &JsonString, stamp: &V1Stamp, out: &mut String) {
        out.push_str(if self.is_success {
            "{\"succeeded\":true,\"isSuccess\":true"
        } else {
            "{\"succeeded\":false,\"isSuccess\":false"
        });
        stamp.write(out);
        self.v2.write(subject, out);
        self.v1_tail.write(subject, out);
    }
}

/// Text encoded as a JSON string literal (quotes included), ready to be copied into JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonString(String);

impl JsonString {
    pub fn new(text: &str) -> Self {
        // Serialising a &str into a String cannot fail; the fallback keeps the output JSON.
        JsonString(serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\"")))
    }

    /// The JSON literal, quotes included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a v1 value carries per request: Ratify's `traceID` (omitted when empty) and `timestamp`.
#[derive(Debug, Clone)]
pub struct V1Stamp {
    trace_id: Option<JsonString>,
    timestamp: JsonString,
}

impl V1Stamp {
    pub fn new(trace_id: &str, now: DateTime<Utc>) -> Self {
        V1Stamp {
            trace_id: (!trace_id.is_empty()).then(|| JsonString::new(trace_id)),
            timestamp: JsonString::new(&ratify_timestamp(now)),
        }
    }

    /// `,"traceID":…,"timestamp":…` (no `traceID` when empty).
    fn write(&self, out: &mut String) {
        if let Some(trace_id) = &self.trace_id {
            out.push_str(",\"traceID\":");
            out.push_str(trace_id.as_str());
        }
        out.push_str(",\"timestamp\":");
        out.push_str(self.timestamp.as_str());
    }
}

/// [`VerificationResult::ratify_v1`].
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
        m.serialize_entry("succeeded", &self.result.is_success)?;
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
        s.collect_seq(self.0.iter().map(V1Report::new))
    }
}

/// One v1 report; the one place its fields are written.
struct V1Report<'a> {
    report: &'a VerifierReport,
    /// False only while rendering a [`RenderedVerdict`] (the subject is written separately).
    with_subject: bool,
}

impl<'a> V1Report<'a> {
    fn new(report: &'a VerifierReport) -> Self {
        V1Report {
            report,
            with_subject: true,
        }
    }
}

impl Serialize for V1Report<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.report;
        let mut m = s.serialize_map(None)?;
        if self.with_subject {
            m.serialize_entry("subject", &r.subject)?;
        }
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

/// [`VerificationResult::ratify_v2`].
struct RatifyV2Value<'a> {
    result: &'a VerificationResult,
    trace_id: &'a str,
    timestamp: String,
}

impl Serialize for RatifyV2Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let result = self.result;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("succeeded", &result.is_success)?;
        m.serialize_entry("isSuccess", &result.is_success)?;
        if !self.trace_id.is_empty() {
            m.serialize_entry("traceID", &self.trace_id)?;
        }
        m.serialize_entry("timestamp", &self.timestamp)?;
        let artifacts: Vec<V2Artifact<'_>> = result
            .artifact_groups()
            .into_iter()
            .map(|(artifact, reports)| V2Artifact {
                subject: Some(&result.subject),
                artifact,
                reports,
            })
            .collect();
        m.serialize_entry("artifactReports", &artifacts)?;
        if !result.reports.is_empty() {
            m.serialize_entry("verifierReports", &V1Reports(&result.reports))?;
        }
        m.end()
    }
}

/// One v2 artifact report: the reports of one referrer.
struct V2Artifact<'a> {
    /// None only while rendering a [`RenderedVerdict`].
    subject: Option<&'a str>,
    artifact: &'a str,
    reports: Vec<&'a VerifierReport>,
}

impl Serialize for V2Artifact<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(subject) = self.subject {
            m.serialize_entry("subject", subject)?;
        }
        if !self.artifact.is_empty() {
            m.serialize_entry("artifact", self.artifact)?;
        }
        m.serialize_entry(
            "results",
            &self.reports.iter().map(|r| V2Result(r)).collect::<Vec<_>>(),
        )?;
        m.end()
    }
}

/// One verifier result in v2 (`description`, extensions as a JSON-encoded `detail`).
struct V2Result<'a>(&'a VerifierReport);

impl Serialize for V2Result<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        if !r.verifier_name.is_empty() {
            m.serialize_entry("verifierName", &r.verifier_name)?;
        }
        m.serialize_entry("description", &r.message)?;
        if let Some(ext) = &r.extensions {
            m.serialize_entry("detail", &ext.to_string())?;
        }
        if !r.error_reason.is_empty() {
            m.serialize_entry("errorReason", &r.error_reason)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

        assert_eq!(v["succeeded"], true, "v1 values answer v2 templates too");
        let v2 = result.ratify_v2_value("trace-1", Utc::now());
        assert_eq!(v2["succeeded"], true);
        assert_eq!(v2["isSuccess"], true, "v2 values answer v1 templates too");
        assert_eq!(v2["verifierReports"], v["verifierReports"]);
        assert_eq!(v2["artifactReports"][0]["artifact"], "sha256:11");
        assert_eq!(
            v2["artifactReports"][0]["results"][0]["detail"],
            r#"{"Issuer":"CN=x","SN":"CN=y"}"#
        );
    }

    fn varied_results() -> Vec<VerificationResult> {
        let mut full = report(NOTATION, true);
        full.subject = "r.io/app:v1".into();
        full.error_reason = "reason".into();
        full.remediation = "fix <it> & retry".into();
        full.extensions =
            Some(json!({"Issuer": "CN=x \"q\"", "nested": {"z": 1, "a": [true, null, 2.5]}}));
        let mut nested = report(COSIGN, false);
        nested.subject = "r.io/app:v1".into();
        nested.nested_results = vec![report(NOTATION, true)];
        full.nested_results = vec![nested];
        let mut bare = report("", false);
        bare.subject = "r.io/app:v1".into();
        bare.verifier_name.clear();
        bare.verifier_type.clear();
        bare.reference_digest.clear();
        bare.message.clear();
        let mut same_artifact = report(COSIGN, true);
        same_artifact.subject = "r.io/app:v1".into();
        same_artifact.reference_digest = "sha256:11".into();
        // `report()` names another subject: a report about something else stays as it is.
        let cases = [
            vec![],
            vec![report(NOTATION, true)],
            vec![full, bare, report(COSIGN, true), same_artifact],
        ];
        let mut out = Vec::new();
        for reports in cases {
            for ok in [true, false] {
                let mut result = VerificationResult::decide(
                    "r.io/app:v1".into(),
                    "sha256:aa".into(),
                    reports.clone(),
                    vec![],
                    &ArtifactPolicy::default(),
                    "tc".into(),
                    Utc::now(),
                );
                result.is_success = ok;
                out.push(result);
            }
        }
        out
    }

    #[test]
    fn rendered_verdicts_write_the_serialisers_bytes_for_any_subject() {
        let now = Utc::now();
        for result in varied_results() {
            let rendered = result.render().unwrap();
            assert_eq!(rendered.is_success(), result.is_success);
            for subject in [
                "r.io/app:v1",
                "r.io/app@sha256:aa",
                "odd \"subject\" \\ \u{e9}\n\u{1}",
            ] {
                let presented = result.clone().presented_as(subject);
                let quoted = JsonString::new(subject);
                for trace in ["", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"] {
                    let mut want = Vec::new();
                    presented
                        .write_ratify_v1_value(trace, now, &mut want)
                        .unwrap();
                    let mut got = String::new();
                    rendered.write_v1(&quoted, &V1Stamp::new(trace, now), &mut got);
                    assert_eq!(got, String::from_utf8(want).unwrap());
                }
                for trace in ["", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"] {
                    let want = serde_json::to_string(&presented.ratify_v2(trace, now)).unwrap();
                    let mut got = String::new();
                    rendered.write_v2(&quoted, &V1Stamp::new(trace, now), &mut got);
                    assert_eq!(got, want);
                }
            }
        }
    }

    #[test]
    fn presenting_renames_only_reports_about_the_subject() {
        let result = varied_results().pop().unwrap();
        let presented = result.presented_as("r.io/app:latest");
        assert_eq!(presented.subject, "r.io/app:latest");
        let subjects: Vec<&str> = presented
            .reports
            .iter()
            .map(|r| r.subject.as_str())
            .collect();
        assert_eq!(
            subjects,
            [
                "r.io/app:latest",
                "r.io/app:latest",
                "r.io/app@sha256:aa",
                "r.io/app:latest"
            ]
        );
        assert_eq!(
            presented.reports[0].nested_results[0].subject, "r.io/app:v1",
            "nested results are about their own artifacts"
        );
    }

    #[test]
    fn v2_value_bytes() {
        let mut ok = report(NOTATION, true);
        ok.subject = "r.io/app:v1".into();
        ok.extensions = Some(json!({"Issuer": "CN=x"}));
        let mut second = report(COSIGN, false);
        second.subject = "r.io/app:v1".into();
        second.reference_digest = "sha256:11".into();
        second.error_reason = "E".into();
        let mut bare = report("", false);
        bare.verifier_name.clear();
        bare.reference_digest.clear();
        let result = VerificationResult::decide(
            "r.io/app:v1".into(),
            "sha256:aa".into(),
            vec![ok, second, bare],
            vec![],
            &ArtifactPolicy::default(),
            "tc".into(),
            Utc::now(),
        );
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            serde_json::to_string(&result.ratify_v2("t-1", now)).unwrap(),
            concat!(
                r#"{"succeeded":false,"isSuccess":false,"traceID":"t-1","#,
                r#""timestamp":"2026-12-07T10:00:00.500000000Z","artifactReports":["#,
                r#"{"subject":"r.io/app:v1","artifact":"sha256:11","results":["#,
                r#"{"verifierName":"v","description":"m","detail":"{\"Issuer\":\"CN=x\"}"},"#,
                r#"{"verifierName":"v","description":"m","errorReason":"E"}]},"#,
                r#"{"subject":"r.io/app:v1","results":[{"description":"m"}]}],"#,
                r#""verifierReports":["#,
                r#"{"subject":"r.io/app:v1","isSuccess":true,"name":"v","verifierName":"v","type":"notation","verifierType":"notation","referenceDigest":"sha256:11","artifactType":"application/vnd.cncf.notary.signature","message":"m","extensions":{"Issuer":"CN=x"}},"#,
                r#"{"subject":"r.io/app:v1","isSuccess":false,"name":"v","verifierName":"v","type":"notation","verifierType":"notation","referenceDigest":"sha256:11","artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","message":"m","errorReason":"E"},"#,
                r#"{"subject":"r.io/app@sha256:aa","isSuccess":false,"type":"notation","verifierType":"notation","message":"m"}]}"#
            )
        );
    }
}
