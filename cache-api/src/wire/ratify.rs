//! Ratify's external-data item values, built here and nowhere else: v1 (config policy `0.2.0`:
//! `isSuccess`, `verifierReports`) and v2 (`succeeded`, `artifactReports`), from scanner's
//! [`VerificationResult`].
//!
//! Both values carry the other version's decision too (v1 `succeeded`; v2 `isSuccess`, `traceID`,
//! `timestamp` and v1's `verifierReports`), so a template written for either endpoint and pointed
//! at the other still denies a failed verdict (with Ratify it admits everything: Ratify #2669).
//! The v1 templates' deny message formats `timestamp` and `traceID`: without them the rule is
//! undefined and the image admitted. Ratify's templates ignore fields they do not read.
//!
//! The hot path does not serialise per request: [`render`] writes a verdict's values once into a
//! [`RenderedVerdict`] with the subject and the per-request stamp left open, and answering is a
//! few copies. [`v1`] / [`v2`] are the plain serialisers the rendered bytes are tested against.
//!
//! Over 600 lines because half of it is those byte-for-byte tests, which belong next to the
//! two writers they hold equal.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use verdict_scanner::report::{VerificationResult, VerifierReport};

/// Ratify's config-policy result version (`verifierReports` is a flat list of reports).
pub const RATIFY_CONFIG_POLICY_VERSION: &str = "0.2.0";

/// Ratify's v1 item value (config policy, version `0.2.0`) as a JSON tree (the CLI's output).
pub fn v1_value(result: &VerificationResult, trace_id: &str, now: DateTime<Utc>) -> Value {
    // Serialising strings, booleans and JSON values into a Value cannot fail.
    serde_json::to_value(v1(result, trace_id, now)).unwrap_or(Value::Null)
}

/// [`v1_value`] as a serialiser over `result` (no `Value` tree).
pub fn v1<'a>(
    result: &'a VerificationResult,
    trace_id: &'a str,
    now: DateTime<Utc>,
) -> impl Serialize + 'a {
    RatifyV1Value {
        result,
        trace_id,
        timestamp: timestamp(now),
    }
}

/// Ratify v2's item value: `succeeded` and one artifact report per referrer, with the verifier
/// extensions as a JSON-encoded `detail` string (see the module documentation for the v1 fields
/// it carries too).
pub fn v2_value(result: &VerificationResult, trace_id: &str, now: DateTime<Utc>) -> Value {
    serde_json::to_value(v2(result, trace_id, now)).unwrap_or(Value::Null)
}

/// [`v2_value`] as a serialiser over `result`.
pub fn v2<'a>(
    result: &'a VerificationResult,
    trace_id: &'a str,
    now: DateTime<Utc>,
) -> impl Serialize + 'a {
    RatifyV2Value {
        result,
        trace_id,
        timestamp: timestamp(now),
    }
}

/// Reports grouped by referrer (`referenceDigest`), in order of first appearance: v2's
/// `artifactReports`.
fn artifact_groups(result: &VerificationResult) -> Vec<(&str, Vec<&VerifierReport>)> {
    let mut groups: Vec<(&str, Vec<&VerifierReport>)> = Vec::new();
    for r in &result.reports {
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
pub fn render(result: &VerificationResult) -> Result<RenderedVerdict, serde_json::Error> {
    let mut v1 = Pieces::default();
    if !result.reports.is_empty() {
        v1.text(",\"verifierReports\":[");
        for (i, r) in result.reports.iter().enumerate() {
            if i > 0 {
                v1.text(",");
            }
            if r.subject == result.subject {
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
    for (i, (artifact, reports)) in artifact_groups(result).into_iter().enumerate() {
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
        is_success: result.is_success,
        v1_tail: v1.done(),
        v2: v2.done(),
    })
}

/// Ratify's `timestamp` format (RFC 3339, nanoseconds, `Z`).
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A [`VerificationResult`] rendered once into its Ratify v1 and v2 item values, with the
/// places that name the subject and v1's per-request `traceID` and `timestamp` left open, so
/// answering from it is a few copies. What [`Self::write_v1`] / [`Self::write_v2`] write for
/// `subject` is byte for byte what [`v1`] / [`v2`] write for the result presented as `subject`
/// (its own subject and the top-level reports about it renamed, as Ratify names the key's
/// spelling; tested below).
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
    fn write(&self, subject: &JsonString, out: &mut impl JsonSink) {
        let mut from = 0;
        for &slot in &self.slots {
            let slot = slot as usize;
            out.push(&self.text[from..slot]);
            out.push(subject.as_str());
            from = slot;
        }
        out.push(&self.text[from..]);
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

    /// About the length of a value written for a subject of `subject_len` bytes (a capacity
    /// hint).
    pub fn len_hint(&self, subject_len: usize) -> usize {
        let t = |t: &Template| t.text.len() + t.slots.len() * subject_len;
        160 + t(&self.v1_tail) + t(&self.v2)
    }

    /// Appends the v1 value for `subject` with the request's `stamp`.
    pub fn write_v1(&self, subject: &JsonString, stamp: &Stamp, out: &mut impl JsonSink) {
        out.push("{\"version\":\"");
        out.push(RATIFY_CONFIG_POLICY_VERSION);
        out.push(if self.is_success {
            "\",\"isSuccess\":true,\"succeeded\":true"
        } else {
            "\",\"isSuccess\":false,\"succeeded\":false"
        });
        stamp.write(out);
        self.v1_tail.write(subject, out);
    }

    /// Appends the v2 value for `subject` with the request's `stamp`.
    pub fn write_v2(&self, subject: &JsonString, stamp: &Stamp, out: &mut impl JsonSink) {
        out.push(if self.is_success {
            "{\"succeeded\":true,\"isSuccess\":true"
        } else {
            "{\"succeeded\":false,\"isSuccess\":false"
        });
        stamp.write(out);
        self.v2.write(subject, out);
        self.v1_tail.write(subject, out);
    }
}

/// Where rendered JSON is written: a `String` (single values, tests) or the response's bytes
/// ([`super::ProviderResponse::to_json`] writes verdicts straight into its buffer).
pub trait JsonSink {
    fn push(&mut self, s: &str);
}

impl JsonSink for String {
    fn push(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl JsonSink for Vec<u8> {
    fn push(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
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
pub struct Stamp {
    trace_id: Option<JsonString>,
    timestamp: JsonString,
}

impl Stamp {
    pub fn new(trace_id: &str, now: DateTime<Utc>) -> Self {
        Stamp {
            trace_id: (!trace_id.is_empty()).then(|| JsonString::new(trace_id)),
            timestamp: JsonString::new(&timestamp(now)),
        }
    }

    /// `,"traceID":…,"timestamp":…` (no `traceID` when empty).
    fn write(&self, out: &mut impl JsonSink) {
        if let Some(trace_id) = &self.trace_id {
            out.push(",\"traceID\":");
            out.push(trace_id.as_str());
        }
        out.push(",\"timestamp\":");
        out.push(self.timestamp.as_str());
    }
}

/// [`v1`].
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

/// [`v2`].
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
        let artifacts: Vec<V2Artifact<'_>> = artifact_groups(result)
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

/// `result` as presented for `subject` (the caller's spelling, or a tag of the verified digest),
/// like Ratify's `Original`: the result and every top-level report about its subject name
/// `subject` instead. What [`RenderedVerdict`] writes for a subject is this, serialised.
#[cfg(test)]
fn presented_as(mut result: VerificationResult, subject: &str) -> VerificationResult {
    if result.subject != subject {
        for report in &mut result.reports {
            if report.subject == result.subject {
                report.subject = subject.to_owned();
            }
        }
        result.subject = subject.to_owned();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use verdict_scanner::report::ArtifactPolicy;

    const NOTATION: &str = "application/vnd.cncf.notary.signature";
    const COSIGN: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

    /// A report by verifier `v` on referrer `sha256:11` (success) or `sha256:22` (failure).
    fn report(artifact_type: &str, ok: bool) -> VerifierReport {
        VerifierReport {
            is_success: ok,
            verifier_name: "v".into(),
            verifier_type: "notation".into(),
            reference_digest: format!("sha256:{}", if ok { "11" } else { "22" }),
            artifact_type: artifact_type.into(),
            ..VerifierReport::subject_failure("r.io/app@sha256:aa", "m", "", "")
        }
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
        let v = v1_value(&result, "trace-1", Utc::now());
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
        let v2 = v2_value(&result, "trace-1", Utc::now());
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
            let rendered = render(&result).unwrap();
            assert_eq!(rendered.is_success(), result.is_success);
            for subject in [
                "r.io/app:v1",
                "r.io/app@sha256:aa",
                "odd \"subject\" \\ \u{e9}\n\u{1}",
            ] {
                let presented = presented_as(result.clone(), subject);
                let quoted = JsonString::new(subject);
                for trace in ["", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"] {
                    let want = serde_json::to_string(&v1(&presented, trace, now)).unwrap();
                    let mut got = String::new();
                    rendered.write_v1(&quoted, &Stamp::new(trace, now), &mut got);
                    assert_eq!(got, want);
                }
                for trace in ["", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"] {
                    let want = serde_json::to_string(&v2(&presented, trace, now)).unwrap();
                    let mut got = String::new();
                    rendered.write_v2(&quoted, &Stamp::new(trace, now), &mut got);
                    assert_eq!(got, want);
                }
            }
        }
    }

    #[test]
    fn presenting_renames_only_reports_about_the_subject() {
        let result = varied_results().pop().unwrap();
        let presented = presented_as(result, "r.io/app:latest");
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
            serde_json::to_string(&v2(&result, "t-1", now)).unwrap(),
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
