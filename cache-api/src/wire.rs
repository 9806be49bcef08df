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

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use verdict_scanner::registry::ImageReference;

/// The apiVersion of every response and the one Gatekeeper sends.
pub const API_VERSION: &str = "externaldata.gatekeeper.sh/v1beta1";
/// Request apiVersions accepted (v1alpha1 is deprecated but still served by Gatekeeper).
pub const ACCEPTED_API_VERSIONS: [&str; 2] = [API_VERSION, "externaldata.gatekeeper.sh/v1alpha1"];
pub const REQUEST_KIND: &str = "ProviderRequest";
pub const RESPONSE_KIND: &str = "ProviderResponse";
/// Longest key accepted: `[` + 63-byte namespace + `]` + 255-byte host + `/` + 255-byte name +
/// `:` + 128-byte tag + `@sha512:` + 128 hex digits is ~850 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A parsed and checked `ProviderRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub api_version: String,
    pub keys: Vec<String>,
}

/// Why a whole request is refused; answered as `systemError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "request body is larger than the {limit}-byte limit{}; send fewer keys per request or raise --max-request-bytes",
        size.map(|s| format!(" (at least {s} bytes)")).unwrap_or_default()
    )]
    TooLarge { limit: usize, size: Option<u64> },
    #[error(
        "request body was not received within {0:?}; the client must send the whole body promptly"
    )]
    ReadTimeout(std::time::Duration),
    #[error("reading the request body failed: {0}")]
    Read(String),
    #[error(
        "request body is not a valid ProviderRequest: {0}; expected {{\"apiVersion\":\"{API_VERSION}\",\"kind\":\"{REQUEST_KIND}\",\"request\":{{\"keys\":[\"<image>\", ...]}}}}"
    )]
    InvalidJson(String),
    #[error("kind is {found:?}; this endpoint accepts kind \"{REQUEST_KIND}\"")]
    WrongKind { found: String },
    #[error(
        "apiVersion is {found:?}; this endpoint accepts \"{}\" or \"{}\"",
        ACCEPTED_API_VERSIONS[0],
        ACCEPTED_API_VERSIONS[1]
    )]
    WrongApiVersion { found: String },
    #[error(
        "request has {count} keys, more than the limit of {limit}; split the request or raise --max-request-keys"
    )]
    TooManyKeys { count: usize, limit: usize },
}

impl RequestError {
    /// Transient: the body did not arrive (a retry may succeed); everything else is the request's own fault.
    pub fn is_transient(&self) -> bool {
        matches!(self, RequestError::ReadTimeout(_) | RequestError::Read(_))
    }
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    request: Option<RawInner>,
}

#[derive(Deserialize, Default)]
struct RawInner {
    #[serde(default)]
    keys: Option<Vec<String>>,
}

/// Parses a `ProviderRequest`: JSON with the right `kind` and `apiVersion`, at most `max_keys`
/// string keys. Missing `request`/`keys` (Go's `omitempty` for an empty list) means no keys.
pub fn parse_request(body: &[u8], max_keys: usize) -> Result<ProviderRequest, RequestError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let raw: RawRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            RequestError::InvalidJson(inner.to_string())
        } else {
            RequestError::InvalidJson(format!("at {path}: {inner}"))
        }
    })?;
    let kind = raw.kind.unwrap_or_default();
    if kind != REQUEST_KIND {
        return Err(RequestError::WrongKind { found: kind });
    }
    let api_version = raw.api_version.unwrap_or_default();
    if !ACCEPTED_API_VERSIONS.contains(&api_version.as_str()) {
        return Err(RequestError::WrongApiVersion { found: api_version });
    }
    let keys = raw.request.unwrap_or_default().keys.unwrap_or_default();
    if keys.len() > max_keys {
        return Err(RequestError::TooManyKeys {
            count: keys.len(),
            limit: max_keys,
        });
    }
    Ok(ProviderRequest { api_version, keys })
}

/// A key split into its optional `[namespace]` prefix and its normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// `None` without a prefix or with an empty one (`[]`), as in Ratify: cluster-wide configuration.
    pub namespace: Option<String>,
    /// Docker-style normalised (`nginx` → `docker.io/library/nginx:latest`).
    pub reference: ImageReference,
    /// The key without its prefix, exactly as sent (mutate echoes it for digest references).
    pub reference_text: String,
}

/// Why one key cannot be answered; becomes that item's `error` with code `INVALID_KEY`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is empty; send [namespace]registry/repository[:tag][@digest]")]
    Empty,
    #[error(
        "key is {0} bytes, longer than any valid image reference ({MAX_KEY_BYTES} bytes); send [namespace]registry/repository[:tag][@digest]"
    )]
    TooLong(usize),
    #[error("key starts a [namespace] prefix without the closing ']'; send [namespace]image")]
    UnterminatedPrefix,
    #[error(
        "namespace {0:?} in the key prefix is not a DNS-1123 label (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit); send [namespace]image with a Kubernetes namespace name"
    )]
    InvalidNamespace(String),
    #[error("{0}")]
    InvalidReference(String),
}

/// Splits `[ns]reference` and normalises the reference.
pub fn parse_key(key: &str) -> Result<ParsedKey, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong(key.len()));
    }
    let (namespace, rest) = match key.strip_prefix('[') {
        Some(after) => {
            let (ns, rest) = after.split_once(']').ok_or(KeyError::UnterminatedPrefix)?;
            if ns.is_empty() {
                (None, rest)
            } else if is_dns1123_label(ns) {
                (Some(ns.to_owned()), rest)
            } else {
                return Err(KeyError::InvalidNamespace(ns.to_owned()));
            }
        }
        None => (None, key),
    };
    if rest.is_empty() {
        return Err(KeyError::InvalidReference(
            "key has a namespace prefix but no image reference; send [namespace]registry/repository[:tag][@digest]".into(),
        ));
    }
    let reference = parsed_reference(rest)?;
    Ok(ParsedKey {
        namespace,
        reference,
        reference_text: rest.to_owned(),
    })
}

/// Entries per shard of the parsed-reference memo (16 shards: 4,096 references, well under 4 MiB).
const PARSED_PER_SHARD: usize = 256;
const PARSED_SHARDS: usize = 16;

type ParsedShard = std::sync::Mutex<HashMap<String, ImageReference>>;

/// `ImageReference::parse` memoised: Gatekeeper asks for the same keys over and over, and the
/// full parser (a regex) was 15–27 % of a cache hit's CPU (benches/README.md). Parsing is a pure
/// function of the text, so a memoised answer is the parser's answer; only successes are kept.
/// A full shard is emptied (bounded, O(1) amortised).
fn parsed_reference(text: &str) -> Result<ImageReference, KeyError> {
    use std::hash::BuildHasher;
    static MEMO: std::sync::LazyLock<(std::hash::RandomState, Vec<ParsedShard>)> =
        std::sync::LazyLock::new(|| {
            (
                std::hash::RandomState::new(),
                (0..PARSED_SHARDS).map(|_| ParsedShard::default()).collect(),
            )
        });
    let (hasher, shards) = &*MEMO;
    let shard = &shards[(hasher.hash_one(text) as usize) % PARSED_SHARDS];
    if let Some(r) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(text) {
        return Ok(r.clone());
    }
    let reference =
        ImageReference::parse(text).map_err(|e| KeyError::InvalidReference(e.to_string()))?;
    let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= PARSED_PER_SHARD {
        map.clear();
    }
    map.insert(text.to_owned(), reference.clone());
    Ok(reference)
}

/// Kubernetes namespace names: RFC 1123 labels.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|&c| alnum(c) || c == b'-')
        && alnum(b[0])
        && alnum(b[b.len() - 1])
}

/// The request's keys in order, each answered once, with every distinct subject computed once.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// Distinct keys in first-seen order, each pointing to its subject in `subjects` or failing.
    pub items: Vec<(String, Result<usize, KeyError>)>,
    /// Distinct (namespace, normalised reference) pairs: `nginx` and
    /// `docker.io/library/nginx:latest` are two items but one subject.
    pub subjects: Vec<ParsedKey>,
}

impl KeyPlan {
    pub fn new(keys: Vec<String>) -> Self {
        let mut seen_keys: HashSet<String> = HashSet::with_capacity(keys.len());
        let mut subject_index: HashMap<(Option<String>, ImageReference), usize> = HashMap::new();
        let mut items = Vec::with_capacity(keys.len());
        let mut subjects = Vec::new();
        for key in keys {
            if !seen_keys.insert(key.clone()) {
                continue;
            }
            let slot = parse_key(&key).map(|parsed| {
                match subject_index.entry((parsed.namespace.clone(), parsed.reference.clone())) {
                    Entry::Occupied(o) => *o.get(),
                    Entry::Vacant(v) => {
                        subjects.push(parsed);
                        *v.insert(subjects.len() - 1)
                    }
                }
            });
            items.push((key, slot));
        }
        KeyPlan { items, subjects }
    }
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
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ItemValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An item's value as JSON text: serialised once when the item is built and written into the
/// response as is (no `serde_json::Value` tree on the hot path).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ItemValue(Box<serde_json::value::RawValue>);

impl ItemValue {
    pub fn new(value: &impl Serialize) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(ItemValue)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parsed (tests, diagnostics).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for ItemValue {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for ItemValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Item {
    pub fn value(key: String, value: Value) -> Self {
        Self::json(key, &value)
    }

    /// An item whose value is `value`'s JSON; should encoding fail, an `INTERNAL` error item
    /// (fail closed: Gatekeeper treats an error item as not verified).
    pub fn json(key: String, value: &impl Serialize) -> Self {
        match ItemValue::new(value) {
            Ok(v) => Self::raw(key, v),
            Err(e) => Self::error(key, format!("INTERNAL: encoding the value failed: {e}")),
        }
    }

    pub fn raw(key: String, value: ItemValue) -> Self {
        Item {
            key,
            value: Some(value),
            error: None,
        }
    }

    pub fn error(key: String, error: impl fmt::Display) -> Self {
        Item {
            key,
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

    /// The JSON body. Serialising these types cannot fail (string keys, JSON values); should it
    /// ever, the answer is still a valid `systemError` envelope.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|e| {
            format!(
                "{{\"apiVersion\":\"{API_VERSION}\",\"kind\":\"{RESPONSE_KIND}\",\"response\":{{\"idempotent\":{},\"systemError\":{}}}}}",
                self.response.idempotent,
                serde_json::Value::String(format!("encoding the response failed: {e}"))
            )
            .into_bytes()
        })
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
        let r = parse_request(req(r#"["a","b"]"#).as_bytes(), 10).unwrap();
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
        assert!(matches!(e, RequestError::InvalidJson(_)), "{e}");
        let e = parse_request(req(r#"["a", 5]"#).as_bytes(), 10).unwrap_err();
        assert!(e.to_string().contains("request.keys[1]"), "{e}");
        let e = parse_request(
            br#"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse"}"#,
            10,
        )
        .unwrap_err();
        assert_eq!(
            e,
            RequestError::WrongKind {
                found: "ProviderResponse".into()
            }
        );
        let e = parse_request(br#"{"apiVersion":"v1","kind":"ProviderRequest"}"#, 10).unwrap_err();
        assert!(e.to_string().contains("\"v1\""), "{e}");
        let e = parse_request(req(r#"["a","b","c"]"#).as_bytes(), 2).unwrap_err();
        assert!(e.to_string().contains("--max-request-keys"), "{e}");
    }

    #[test]
    fn keys_with_namespace_prefix() {
        let k = parse_key("[team-a]nginx").unwrap();
        assert_eq!(k.namespace.as_deref(), Some("team-a"));
        assert_eq!(k.reference.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(k.reference_text, "nginx");
        assert_eq!(parse_key("[]nginx").unwrap().namespace, None);
        for bad in [
            "[Team]nginx",
            "[a b]nginx",
            "[-a]nginx",
            "[a.b]nginx",
            "[ns/x]nginx",
            "[naïve]nginx",
        ] {
            assert!(
                matches!(parse_key(bad), Err(KeyError::InvalidNamespace(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_key("[ns"), Err(KeyError::UnterminatedPrefix));
        assert!(matches!(
            parse_key("[ns]"),
            Err(KeyError::InvalidReference(_))
        ));
        assert!(matches!(
            parse_key(&"a".repeat(2000)),
            Err(KeyError::TooLong(2000))
        ));
    }

    #[test]
    fn plan_dedupes_keys_and_subjects() {
        let plan = KeyPlan::new(
            [
                "nginx",
                "docker.io/library/nginx:latest",
                "nginx",
                "[ns]nginx",
                "B@D",
            ]
            .map(String::from)
            .to_vec(),
        );
        let keys: Vec<&str> = plan.items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "nginx",
                "docker.io/library/nginx:latest",
                "[ns]nginx",
                "B@D"
            ]
        );
        assert_eq!(plan.subjects.len(), 2);
        assert_eq!(plan.items[0].1, Ok(0));
        assert_eq!(plan.items[1].1, Ok(0));
        assert_eq!(plan.items[2].1, Ok(1));
        assert!(plan.items[3].1.is_err());
    }

    #[test]
    fn response_envelope() {
        let r = ProviderResponse::items(
            vec![
                Item::value("k".into(), serde_json::json!({"a": 1})),
                Item::error("e".into(), "INVALID_KEY: x"),
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

#[cfg(test)]
mod memo_tests {
    use super::*;

    #[test]
    fn memoised_parses_equal_the_parser_beyond_the_memo_size() {
        // More distinct references than the memo holds, each asked twice: every answer is the
        // full parser's, including after shards were emptied.
        for round in 0..2 {
            for n in 0..(PARSED_PER_SHARD * PARSED_SHARDS + 300) {
                let text = match n % 3 {
                    0 => format!("reg.example:5000/team/app{n}@sha256:{n:064x}"),
                    1 => format!("app{n}:v{n}"),
                    _ => format!("ghcr.io/o/app{n}:t@sha256:{n:064x}"),
                };
                let memo = parsed_reference(&text).unwrap();
                assert_eq!(
                    memo,
                    ImageReference::parse(&text).unwrap(),
                    "round {round}: {text}"
                );
            }
        }
        assert!(parsed_reference("UPPER/Case:bad tag").is_err());
        assert!(
            parsed_reference("UPPER/Case:bad tag").is_err(),
            "a failure was memoised"
        );
    }
}
