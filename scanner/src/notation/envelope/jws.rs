//! JWS JSON flattened serialization (`application/jose+json`) as the Notary Project profiles it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    Envelope, EnvelopeFormat, HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY, HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME, HEADER_TIMESTAMP_SIGNATURE, HEADER_VERIFICATION_PLUGIN, SignedHeaders,
    check_headers,
};
use crate::notation::crypto::SignatureAlgorithm;

/// Protected header names with a defined meaning (everything else is an extended attribute).
const KNOWN: [&str; 7] = [
    "alg",
    "cty",
    "crit",
    HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME,
    HEADER_AUTHENTIC_SIGNING_TIME,
    HEADER_EXPIRY,
];

fn b64url(field: &str, s: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("JWS \"{field}\" is not valid unpadded base64url: {e}"))
}

fn time_header(obj: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                format!("protected header {key:?} value {s:?} is not an RFC 3339 time: {e}")
            }),
        Some(other) => Err(format!(
            "protected header {key:?} must be an RFC 3339 string, found {other}"
        )),
    }
}

pub(super) fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the JWS envelope is not valid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the JWS envelope must be a JSON object (flattened JSON serialization)")?;
    let field = |k: &str| -> Result<&str, String> {
        obj.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the JWS envelope has no string \"{k}\" member"))
    };
    let protected_b64 = field("protected")?;
    let payload_b64 = field("payload")?;
    let signature_b64 = field("signature")?;
    let header = obj
        .get("header")
        .and_then(Value::as_object)
        .ok_or("the JWS envelope has no unprotected \"header\" object (it carries x5c)")?;

    let protected_json = b64url("protected", protected_b64)?;
    let protected: Value = serde_json::from_slice(&protected_json)
        .map_err(|e| format!("the JWS protected header is not valid JSON: {e}"))?;
    let p = protected
        .as_object()
        .ok_or("the JWS protected header must be a JSON object")?;

    let alg_name = p
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("the JWS protected header has no \"alg\"")?;
    let alg = SignatureAlgorithm::from_jws(alg_name).ok_or_else(|| {
        format!("signature algorithm {alg_name:?} is not supported (PS256, PS384, PS512, ES256, ES384, ES512 are)")
    })?;
    let content_type = p
        .get("cty")
        .and_then(Value::as_str)
        .ok_or("the JWS protected header has no \"cty\" (payload content type)")?
        .to_string();
    let crit = match p.get("crit") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("\"crit\" entries must be strings, found {i}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "\"crit\" must be an array of strings, found {other}"
            ));
        }
    };
    let signing_scheme = match p.get(HEADER_SIGNING_SCHEME) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "{HEADER_SIGNING_SCHEME:?} must be a string, found {other}"
            ));
        }
    };
    let verification_plugin = match p.get(HEADER_VERIFICATION_PLUGIN) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let checked = check_headers(SignedHeaders {
        crit,
        signing_scheme,
        signing_time: time_header(p, HEADER_SIGNING_TIME)?,
        authentic_signing_time: time_header(p, HEADER_AUTHENTIC_SIGNING_TIME)?,
        expiry: time_header(p, HEADER_EXPIRY)?,
        extended: p
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .cloned()
            .collect(),
        verification_plugin,
    })?;

    let x5c = header
        .get("x5c")
        .and_then(Value::as_array)
        .ok_or("the JWS unprotected header has no \"x5c\" certificate chain")?;
    if x5c.is_empty() {
        return Err("the JWS \"x5c\" certificate chain is empty".into());
    }
    let cert_chain = x5c
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = c
                .as_str()
                .ok_or_else(|| format!("x5c[{i}] is not a string"))?;
            STANDARD
                .decode(s)
                .map_err(|e| format!("x5c[{i}] is not valid base64: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timestamp_token = match header.get(HEADER_TIMESTAMP_SIGNATURE) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            STANDARD
                .decode(s)
                .map_err(|e| format!("{HEADER_TIMESTAMP_SIGNATURE} is not valid base64: {e}"))?,
        ),
        Some(other) => {
            return Err(format!(
                "{HEADER_TIMESTAMP_SIGNATURE} must be a base64 string, found {other}"
            ));
        }
    };

    let payload = b64url("payload", payload_b64)?;
    let signature = b64url("signature", signature_b64)?;
    if signature.is_empty() {
        return Err("the JWS signature is empty".into());
    }
    let mut signed_bytes = Vec::with_capacity(protected_b64.len() + payload_b64.len() + 1);
    signed_bytes.extend_from_slice(protected_b64.as_bytes());
    signed_bytes.push(b'.');
    signed_bytes.extend_from_slice(payload_b64.as_bytes());

    Ok(Envelope {
        format: EnvelopeFormat::Jws,
        alg,
        content_type,
        payload,
        scheme: checked.scheme,
        signing_time: checked.signing_time,
        authentic_signing_time: checked.authentic_signing_time,
        expiry: checked.expiry,
        verification_plugin: checked.verification_plugin,
        unknown_critical: checked.unknown_critical,
        cert_chain,
        timestamp_token,
        signature,
        signed_bytes,
    })
}
