//! Gatekeeper's external-data wire format: request parsing with limits, key parsing and dedupe,
//! and the one builder of `ProviderResponse` envelopes.
//!
//! Gatekeeper does not check the HTTP status: it unmarshals the body and hands `system_error`,
//! per-key `errors` and the status code to Rego (an unparseable body becomes a generic
//! "failed to unmarshal" error). So every answer is a valid `ProviderResponse`, and problems with
//! the whole request (bad JSON, wrong kind, limits) go to `systemError` with HTTP 200, which
//! Ratify's templates turn into a deny that shows our message. A 413 would carry no more meaning
//! to Gatekeeper and only hide the explanation from curl users who check the status first.
//!
//! Responses use `apiVersion: externaldata.gatekeeper.sh/v1beta1`: Gatekeeper ignores the
//! response's apiVersion (its own dummy provider answers v1alpha1, Ratify v1 answers v1alpha1,
//! Ratify v2 v1beta1); v1beta1 is the served storage version and what Gatekeeper itself sends.
//!
//! Submodules: [`keys`] (key parsing, `[namespace]` prefixes, dedupe) and [`ratify`] (Ratify's v1
//! and v2 item values). This module is the only place that knows Gatekeeper's and Ratify's formats.

pub mod keys;
pub mod ratify;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use keys::{ItemKey, KeyPlan, MAX_KEY_BYTES, ParsedKey, parse_key};

use crate::error::Error;

/// The apiVersion of every response and the one Gatekeeper sends.
pub const API_VERSION: &str = "externaldata.gatekeeper.sh/v1beta1";
/// Request apiVersions accepted (v1alpha1 is deprecated but still served by Gatekeeper).
pub const ACCEPTED_API_VERSIONS: [&str; 2] = [API_VERSION, "externaldata.gatekeeper.sh/v1alpha1"];
pub const REQUEST_KIND: &str = "ProviderRequest";
pub const RESPONSE_KIND: &str = "ProviderResponse";

/// A parsed and checked `ProviderRequest`, borrowing from the body what needed no unescaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest<'a> {
    pub api_version: Cow<'a, str>,
    pub keys: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(rename = "apiVersion", default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request: Option<RawInner<'a>>,
}

#[derive(Deserialize, Default)]
struct RawInner<'a> {
    #[serde(default, borrow)]
    keys: Option<Vec<Cow<'a, str>>>,
}

/// Parses a `ProviderRequest`: JSON with the right `kind` and `apiVersion`, at most `max_keys`
/// string keys. Missing `request`/`keys` (Go's `omitempty` for an empty list) means no keys.
pub fn parse_request(body: &[u8], max_keys: usize) -> Result<ProviderRequest<'_>, Error> {
    // The plain parser first; only a body it refuses is parsed again for the error's path.
    let raw: RawRequest = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(plain) => {
            let de = &mut serde_json::Deserializer::from_slice(body);
            return Err(
                match serde_path_to_error::deserialize::<_, RawRequest>(de) {
                    Err(e) => {
                        let path = e.path().to_string();
                        let inner = e.into_inner();
                        if path == "." || path.is_empty() {
                            Error::InvalidJson(inner.to_string())
                        } else {
                            Error::InvalidJson(format!("at {path}: {inner}"))
                        }
                    }
                    Ok(_) => Error::InvalidJson(plain.to_string()),
                },
            );
        }
    };
    let kind = raw.kind.unwrap_or_default();
    if kind != REQUEST_KIND {
        return Err(Error::WrongKind {
            found: kind.into_owned(),
        });
    }
    let api_version = raw.api_version.unwrap_or_default();
    if !ACCEPTED_API_VERSIONS.contains(&api_version.as_ref()) {
        return Err(Error::WrongApiVersion {
            found: api_version.into_owned(),
        });
    }
    let keys = raw.request.unwrap_or_default().keys.unwrap_or_default();
    if keys.len() > max_keys {
        return Err(Error::TooManyKeys {
            count: keys.len(),
            limit: max_keys,
        });
    }
    Ok(ProviderRequest { api_version, keys })
}

/// `ProviderResponse` as Gatekeeper reads it (Go field names; empty fields omitted like `omitempty`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderResponse {
    #[serde(rename = "apiVersion")]
    pub api_version: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    pub response: Response,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Gatekeeper's mutation refuses answers without `idempotent: true`; validation ignores it.
    #[serde(default)]
    pub idempotent: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(
        rename = "systemError",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub system_error: String,
}

/// One answered key: a `value` or an `error`, never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(with = "item_key")]
    pub key: ItemKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ItemValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An item's value: one complete JSON value, either text written when the item was built, or a
/// verdict's pre-rendered Ratify value ([`ratify::RenderedVerdict`]) for a subject, written by
/// [`ProviderResponse::to_json`] straight into the response (no copy per key, no
/// `serde_json::Value` tree, no re-parse). Cloning shares, never copies.
#[derive(Clone)]
pub struct ItemValue(Repr);

#[derive(Clone)]
enum Repr {
    Json(Box<str>),
    Verdict {
        rendered: Arc<ratify::RenderedVerdict>,
        v2: bool,
        /// The key whose normalised reference names the subject.
        subject: Arc<ParsedKey>,
        stamp: Arc<ratify::Stamp>,
    },
}

impl ItemValue {
    pub fn new(value: &impl Serialize) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(|s| ItemValue(Repr::Json(s.into_boxed_str())))
    }

    /// The value `write` appends to an empty buffer; `write` must append exactly one JSON value
    /// (checked in debug builds, so in every test).
    pub fn write_with(write: impl FnOnce(&mut String)) -> Self {
        let mut out = String::with_capacity(1024);
        write(&mut out);
        debug_assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(&out).is_ok(),
            "not one JSON value: {out}"
        );
        ItemValue(Repr::Json(out.into_boxed_str()))
    }

    /// `rendered`'s Ratify v1 value (v2 when `v2`) for `subject` with the request's `stamp`.
    pub fn verdict(
        rendered: Arc<ratify::RenderedVerdict>,
        v2: bool,
        subject: Arc<ParsedKey>,
        stamp: Arc<ratify::Stamp>,
    ) -> Self {
        ItemValue(Repr::Verdict {
            rendered,
            v2,
            subject,
            stamp,
        })
    }

    /// Appends the JSON text to `out`.
    fn write(&self, out: &mut impl ratify::JsonSink) {
        match &self.0 {
            Repr::Json(text) => out.push(text),
            Repr::Verdict {
                rendered,
                v2: true,
                subject,
                stamp,
            } => rendered.write_v2(&subject.normalised_json, stamp, out),
            Repr::Verdict {
                rendered,
                v2: false,
                subject,
                stamp,
            } => rendered.write_v1(&subject.normalised_json, stamp, out),
        }
    }

    /// About how many bytes [`Self::write`] appends.
    fn len_hint(&self) -> usize {
        match &self.0 {
            Repr::Json(text) => text.len(),
            Repr::Verdict {
                rendered, subject, ..
            } => rendered.len_hint(subject.normalised_json.as_str().len()),
        }
    }

    /// The JSON text.
    pub fn get(&self) -> Cow<'_, str> {
        match &self.0 {
            Repr::Json(text) => Cow::Borrowed(text),
            Repr::Verdict { .. } => {
                let mut out = String::with_capacity(self.len_hint());
                self.write(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Parsed (tests, diagnostics).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.get())
    }
}

impl PartialEq for ItemValue {
    /// Equal JSON text.
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for ItemValue {
    /// Through serde (not the response's own path, [`ProviderResponse::to_json`]): re-parsed.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::value::RawValue::from_string(self.get().into_owned())
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ItemValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(ItemValue(Repr::Json(Box::<str>::from(raw))))
    }
}

impl fmt::Debug for ItemValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.get())
    }
}

/// An [`ItemKey`] on the wire: a JSON string.
mod item_key {
    use super::ItemKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &ItemKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(key.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ItemKey, D::Error> {
        String::deserialize(d).map(ItemKey::Text)
    }
}

impl Item {
    pub fn value(key: impl Into<ItemKey>, value: Value) -> Self {
        Self::json(key, &value)
    }

    /// An item whose value is `value`'s JSON; should encoding fail, an `INTERNAL` error item
    /// (fail closed: Gatekeeper treats an error item as not verified).
    pub fn json(key: impl Into<ItemKey>, value: &impl Serialize) -> Self {
        match ItemValue::new(value) {
            Ok(v) => Self::raw(key, v),
            Err(e) => Self::error(key, format!("INTERNAL: encoding the value failed: {e}")),
        }
    }

    pub fn raw(key: impl Into<ItemKey>, value: ItemValue) -> Self {
        Item {
            key: key.into(),
            value: Some(value),
            error: None,
        }
    }

    pub fn error(key: impl Into<ItemKey>, error: impl fmt::Display) -> Self {
        Item {
            key: key.into(),
            value: None,
            error: Some(error.to_string()),
        }
    }
}

impl ProviderResponse {
    /// A response answering keys (in the order given).
    pub fn items(items: Vec<Item>, idempotent: bool) -> Self {
        Self::envelope(Response {
            idempotent,
            items,
            system_error: String::new(),
        })
    }

    /// A response refusing the whole request; Gatekeeper reports `message` as `system_error`.
    pub fn system_error(message: impl fmt::Display, idempotent: bool) -> Self {
        let mut message = message.to_string();
        if message.is_empty() {
            message = "unspecified error".into();
        }
        Self::envelope(Response {
            idempotent,
            items: Vec::new(),
            system_error: message,
        })
    }

    fn envelope(response: Response) -> Self {
        ProviderResponse {
            api_version: Cow::Borrowed(API_VERSION),
            kind: Cow::Borrowed(RESPONSE_KIND),
            response,
        }
    }

    /// The JSON body: the bytes serde would write for this value (a test checks it), with each
    /// item's value copied in as written.
    pub fn to_json(&self) -> Vec<u8> {
        let r = &self.response;
        let mut out = Vec::with_capacity(
            160 + r.system_error.len()
                + r.items
                    .iter()
                    .map(|i| {
                        34 + i.key.as_str().len()
                            + i.value.as_ref().map_or(0, ItemValue::len_hint)
                            + i.error.as_ref().map_or(0, String::len)
                    })
                    .sum::<usize>(),
        );
        out.extend_from_slice(b"{\"apiVersion\":");
        json_str(&mut out, &self.api_version);
        out.extend_from_slice(b",\"kind\":");
        json_str(&mut out, &self.kind);
        out.extend_from_slice(if r.idempotent {
            b",\"response\":{\"idempotent\":true"
        } else {
            b",\"response\":{\"idempotent\":false"
        });
        if !r.items.is_empty() {
            out.extend_from_slice(b",\"items\":[");
            for (n, item) in r.items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"key\":");
                match &item.key {
                    ItemKey::Parsed(p) => out.extend_from_slice(p.key_json.as_str().as_bytes()),
                    ItemKey::Text(t) => json_str(&mut out, t),
                }
                if let Some(value) = &item.value {
                    out.extend_from_slice(b",\"value\":");
                    value.write(&mut out);
                }
                if let Some(error) = &item.error {
                    out.extend_from_slice(b",\"error\":");
                    json_str(&mut out, error);
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        if !r.system_error.is_empty() {
            out.extend_from_slice(b",\"systemError\":");
            json_str(&mut out, &r.system_error);
        }
        out.extend_from_slice(b"}}");
        out
    }
}

/// Appends `s` as a JSON string.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail; should it, the answer must still be JSON.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(keys: &str) -> String {
        format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"ProviderRequest","request":{{"keys":{keys}}}}}"#
        )
    }

    #[test]
    fn parses_gatekeeper_request() {
        let body = req(r#"["a","b"]"#);
        let r = parse_request(body.as_bytes(), 10).unwrap();
        assert_eq!(r.keys, vec!["a", "b"]);
        let r = parse_request(
            br#"{"apiVersion":"externaldata.gatekeeper.sh/v1alpha1","kind":"ProviderRequest","request":{}}"#,
            10,
        )
        .unwrap();
        assert!(r.keys.is_empty());
    }

    #[test]
    fn request_errors_name_the_problem() {
        let e = parse_request(b"{not json", 10).unwrap_err();
        assert!(matches!(e, Error::InvalidJson(_)), "{e}");
        let e = parse_request(req(r#"["a", 5]"#).as_bytes(), 10).unwrap_err();
        assert!(e.to_string().contains("request.keys[1]"), "{e}");
        let e = parse_request(
            br#"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse"}"#,
            10,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::WrongKind { found } if found == "ProviderResponse"),
            "{e}"
        );
        let e = parse_request(br#"{"apiVersion":"v1","kind":"ProviderRequest"}"#, 10).unwrap_err();
        assert!(e.to_string().contains("\"v1\""), "{e}");
        let e = parse_request(req(r#"["a","b","c"]"#).as_bytes(), 2).unwrap_err();
        assert!(e.to_string().contains("--max-request-keys"), "{e}");
    }

    #[test]
    fn to_json_writes_what_serde_writes() {
        let odd = "k\"ey\\ \u{e9}\u{1}\n</script>";
        let value = ItemValue::write_with(|out| out.push_str(r#"{"isSuccess":true,"s":"\u00e9"}"#));
        // A verdict's rendered values, written straight into the response.
        let key = parse_key("[team-a]r.io/app@sha256:aa00000000000000000000000000000000000000000000000000000000000000").unwrap();
        let result = verdict_scanner::report::VerificationResult::decide(
            "r.io/app:v1".into(),
            "sha256:aa".into(),
            vec![verdict_scanner::report::VerifierReport::subject_failure(
                "r.io/app:v1",
                "no signature \"here\"",
                "NO_VERIFIER_REPORT",
                "sign it",
            )],
            vec![],
            &verdict_scanner::report::ArtifactPolicy::default(),
            "fp".into(),
            chrono::Utc::now(),
        );
        let rendered = Arc::new(ratify::render(&result).unwrap());
        let stamp = Arc::new(ratify::Stamp::new("t-1", chrono::Utc::now()));
        let v1 = ItemValue::verdict(
            Arc::clone(&rendered),
            false,
            Arc::clone(&key),
            Arc::clone(&stamp),
        );
        let v2 = ItemValue::verdict(rendered, true, key, stamp);
        assert!(v1.to_value().unwrap()["verifierReports"].is_array());
        assert!(v2.to_value().unwrap()["artifactReports"].is_array());
        let responses = [
            ProviderResponse::items(vec![], false),
            ProviderResponse::items(
                vec![
                    Item::value(odd, serde_json::json!({"a": [1, "x"], "b": null})),
                    Item::raw("raw", value),
                    Item::error(odd, format!("INVALID_KEY: {odd}")),
                    Item::value("s", Value::String("r.io/a@sha256:00".into())),
                    Item::raw(odd, v1.clone()),
                    Item::raw("v2", v2),
                    Item::raw("v1 again", v1),
                ],
                true,
            ),
            ProviderResponse::system_error(format!("bad {odd}"), false),
            ProviderResponse::system_error("", true),
        ];
        for r in responses {
            let fast = r.to_json();
            assert_eq!(
                String::from_utf8(fast.clone()).unwrap(),
                String::from_utf8(serde_json::to_vec(&r).unwrap()).unwrap()
            );
            let back: ProviderResponse = serde_json::from_slice(&fast).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn response_envelope() {
        let r = ProviderResponse::items(
            vec![
                Item::value("k", serde_json::json!({"a": 1})),
                Item::error("e", "INVALID_KEY: x"),
            ],
            true,
        );
        let v: Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], "ProviderResponse");
        assert_eq!(v["response"]["idempotent"], true);
        assert_eq!(v["response"]["items"][1]["error"], "INVALID_KEY: x");
        assert!(v["response"].get("systemError").is_none());
        let s: Value =
            serde_json::from_slice(&ProviderResponse::system_error("boom", false).to_json())
                .unwrap();
        assert_eq!(s["response"]["systemError"], "boom");
        assert!(s["response"].get("items").is_none());
    }
}
