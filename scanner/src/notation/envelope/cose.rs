//! COSE_Sign1 (`application/cose`) as the Notary Project profiles it.

use chrono::{DateTime, Utc};
use coset::cbor::value::Value;
use coset::{
    Algorithm, ContentType, CoseSign1, Label, RegisteredLabelWithPrivate, TaggedCborSerializable,
};

use super::{
    Envelope, EnvelopeFormat, HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY, HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME, HEADER_TIMESTAMP_SIGNATURE, HEADER_VERIFICATION_PLUGIN, SignedHeaders,
    check_headers,
};
use crate::notation::crypto::SignatureAlgorithm;

/// COSE header label of `x5chain` (RFC 9360).
const LABEL_X5CHAIN: i64 = 33;

fn label_name(l: &Label) -> String {
    match l {
        Label::Text(t) => t.clone(),
        Label::Int(i) => format!("label {i}"),
    }
}

fn time_value(label: &str, v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::Tag(1, inner) => match inner.as_ref() {
            Value::Integer(i) => {
                let secs =
                    i64::try_from(*i).map_err(|_| format!("{label:?}: epoch time out of range"))?;
                DateTime::from_timestamp(secs, 0)
                    .ok_or_else(|| format!("{label:?}: epoch time out of range"))
            }
            other => Err(format!(
                "{label:?} must be an integer epoch time (CBOR tag 1), found {other:?}"
            )),
        },
        other => Err(format!(
            "{label:?} must be a CBOR tag 1 epoch date/time, found {other:?}"
        )),
    }
}

pub(super) fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let msg = CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| format!("the envelope is not a valid COSE_Sign1_Tagged structure: {e:?}"))?;
    let p = &msg.protected.header;

    let alg = match &p.alg {
        Some(Algorithm::Assigned(a)) => {
            let id = *a as i64;
            SignatureAlgorithm::from_cose(id).ok_or_else(|| {
                format!("COSE algorithm {id} is not supported (PS256/384/512, ES256/384/512 are)")
            })?
        }
        Some(other) => return Err(format!("COSE algorithm {other:?} is not supported")),
        None => return Err("the COSE protected header has no algorithm (label 1)".into()),
    };
    let content_type = match &p.content_type {
        Some(ContentType::Text(t)) => t.clone(),
        Some(ContentType::Assigned(_)) => {
            return Err("the COSE content type (label 3) must be a text string".into());
        }
        None => return Err("the COSE protected header has no content type (label 3)".into()),
    };
    let crit: Vec<String> = p
        .crit
        .iter()
        .map(|c| match c {
            RegisteredLabelWithPrivate::Text(t) => t.clone(),
            RegisteredLabelWithPrivate::Assigned(a) => format!("label {}", *a as i64),
            RegisteredLabelWithPrivate::PrivateUse(i) => format!("label {i}"),
        })
        .collect();

    let mut headers = SignedHeaders {
        crit,
        ..SignedHeaders::default()
    };
    for (label, value) in &p.rest {
        match label {
            Label::Text(t) if t == HEADER_SIGNING_SCHEME => match value {
                Value::Text(s) => headers.signing_scheme = Some(s.clone()),
                other => {
                    return Err(format!(
                        "{HEADER_SIGNING_SCHEME:?} must be a text string, found {other:?}"
                    ));
                }
            },
            Label::Text(t) if t == HEADER_SIGNING_TIME => {
                headers.signing_time = Some(time_value(t, value)?)
            }
            Label::Text(t) if t == HEADER_AUTHENTIC_SIGNING_TIME => {
                headers.authentic_signing_time = Some(time_value(t, value)?)
            }
            Label::Text(t) if t == HEADER_EXPIRY => headers.expiry = Some(time_value(t, value)?),
            other => {
                let name = label_name(other);
                if name == HEADER_VERIFICATION_PLUGIN {
                    headers.verification_plugin = Some(match value {
                        Value::Text(s) => s.clone(),
                        v => format!("{v:?}"),
                    });
                }
                headers.extended.push(name);
            }
        }
    }
    // Standard COSE headers this profile does not use are not extended attributes but would
    // still be "understood"; a crit entry naming them is reported as not present.
    let checked = check_headers(headers)?;

    let find = |label: &Label| -> Option<&Value> {
        msg.unprotected
            .rest
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v)
            .or_else(|| p.rest.iter().find(|(l, _)| l == label).map(|(_, v)| v))
    };
    let x5chain = find(&Label::Int(LABEL_X5CHAIN))
        .ok_or("the COSE envelope has no x5chain (label 33) certificate chain")?;
    let cert_chain: Vec<Vec<u8>> = match x5chain {
        Value::Bytes(b) => vec![b.clone()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Bytes(b) => Ok(b.clone()),
                other => Err(format!(
                    "x5chain[{i}] must be a byte string, found {other:?}"
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "x5chain must be an array of byte strings, found {other:?}"
            ));
        }
    };
    if cert_chain.is_empty() {
        return Err("the COSE x5chain certificate chain is empty".into());
    }
    let timestamp_token = match msg
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| matches!(l, Label::Text(t) if t == HEADER_TIMESTAMP_SIGNATURE))
    {
        None => None,
        Some((_, Value::Bytes(b))) => Some(b.clone()),
        Some((_, other)) => {
            return Err(format!(
                "{HEADER_TIMESTAMP_SIGNATURE} must be a byte string, found {other:?}"
            ));
        }
    };

    let payload = msg
        .payload
        .clone()
        .ok_or("the COSE envelope has a detached payload; Notation signatures embed it")?;
    if msg.signature.is_empty() {
        return Err("the COSE signature is empty".into());
    }
    if msg.protected.original_data.is_none() && !msg.protected.header.is_empty() {
        return Err("the COSE protected header bytes are missing".into());
    }
    let signed_bytes = msg.tbs_data(&[]);

    Ok(Envelope {
        format: EnvelopeFormat::Cose,
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
        signature: msg.signature,
        signed_bytes,
    })
}
