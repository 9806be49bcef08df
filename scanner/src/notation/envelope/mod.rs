//! Notary Project signature envelopes: JWS (`application/jose+json`, flattened JSON
//! serialization) and COSE (`application/cose`, `COSE_Sign1_Tagged`), parsed into one form.

mod cose;
mod jws;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::crypto::SignatureAlgorithm;

pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
pub const MEDIA_TYPE_COSE: &str = "application/cose";

pub(crate) const HEADER_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub(crate) const HEADER_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub(crate) const HEADER_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub(crate) const HEADER_EXPIRY: &str = "io.cncf.notary.expiry";
pub(crate) const HEADER_VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub(crate) const HEADER_VERIFICATION_PLUGIN_MIN_VERSION: &str =
    "io.cncf.notary.verificationPluginMinVersion";
pub(crate) const HEADER_TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";

/// The Notary Project signing schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningScheme {
    /// `notary.x509`: signing time is a claim; an RFC 3161 timestamp makes it authentic.
    #[serde(rename = "notary.x509")]
    X509,
    /// `notary.x509.signingAuthority`: the signing authority vouches for the signing time.
    #[serde(rename = "notary.x509.signingAuthority")]
    X509SigningAuthority,
}

impl SigningScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }
}

/// Envelope format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvelopeFormat {
    Jws,
    Cose,
}

/// A parsed, header-validated envelope whose signature is not yet verified.
#[derive(Clone, Debug)]
pub(crate) struct Envelope {
    pub format: EnvelopeFormat,
    pub alg: SignatureAlgorithm,
    pub content_type: String,
    pub payload: Vec<u8>,
    pub scheme: SigningScheme,
    /// `io.cncf.notary.signingTime` (a claim, notary.x509 only).
    pub signing_time: Option<DateTime<Utc>>,
    /// `io.cncf.notary.authenticSigningTime` (signingAuthority only).
    pub authentic_signing_time: Option<DateTime<Utc>>,
    pub expiry: Option<DateTime<Utc>>,
    pub verification_plugin: Option<String>,
    /// Critical extended attributes this verifier does not understand (plugin ones excluded).
    pub unknown_critical: Vec<String>,
    pub cert_chain: Vec<Vec<u8>>,
    pub timestamp_token: Option<Vec<u8>>,
    pub signature: Vec<u8>,
    /// The bytes the signature covers.
    pub signed_bytes: Vec<u8>,
}

impl Envelope {
    /// The time the signer claims (signingTime) or the signing authority vouches for.
    pub fn signing_time(&self) -> Option<DateTime<Utc>> {
        self.signing_time.or(self.authentic_signing_time)
    }
}

/// Parses an envelope according to the signature manifest's layer media type.
pub(crate) fn parse(media_type: &str, bytes: &[u8]) -> Result<Envelope, String> {
    match media_type {
        MEDIA_TYPE_JWS => jws::parse(bytes),
        MEDIA_TYPE_COSE => cose::parse(bytes),
        other => Err(format!(
            "unsupported signature envelope media type {other:?} (supported: {MEDIA_TYPE_JWS}, {MEDIA_TYPE_COSE})"
        )),
    }
}

/// Signed attributes common to both formats, before validation.
#[derive(Default)]
struct SignedHeaders {
    crit: Vec<String>,
    signing_scheme: Option<String>,
    signing_time: Option<DateTime<Utc>>,
    authentic_signing_time: Option<DateTime<Utc>>,
    expiry: Option<DateTime<Utc>>,
    /// Names of protected headers that are neither standard nor Notary Project attributes.
    extended: Vec<String>,
    verification_plugin: Option<String>,
}

/// Validated signed attributes.
struct CheckedHeaders {
    scheme: SigningScheme,
    signing_time: Option<DateTime<Utc>>,
    authentic_signing_time: Option<DateTime<Utc>>,
    expiry: Option<DateTime<Utc>>,
    verification_plugin: Option<String>,
    unknown_critical: Vec<String>,
}

/// The Notary Project rules on signed attributes and critical headers (shared by JWS and COSE).
fn check_headers(h: SignedHeaders) -> Result<CheckedHeaders, String> {
    let scheme = match h.signing_scheme.as_deref() {
        Some("notary.x509") => SigningScheme::X509,
        Some("notary.x509.signingAuthority") => SigningScheme::X509SigningAuthority,
        Some(other) => return Err(format!("unsupported signing scheme {other:?}")),
        None => return Err(format!("the {HEADER_SIGNING_SCHEME} header is missing")),
    };
    match scheme {
        SigningScheme::X509 => {
            if h.authentic_signing_time.is_some() {
                return Err(format!(
                    "{HEADER_AUTHENTIC_SIGNING_TIME:?} header must not be present for the notary.x509 signing scheme"
                ));
            }
            if h.signing_time.is_none() {
                return Err(format!(
                    "the {HEADER_SIGNING_TIME} header is required for the notary.x509 signing scheme"
                ));
            }
        }
        SigningScheme::X509SigningAuthority => {
            if h.signing_time.is_some() {
                return Err(format!(
                    "{HEADER_SIGNING_TIME:?} header must not be present for the notary.x509.signingAuthority signing scheme"
                ));
            }
            if h.authentic_signing_time.is_none() {
                return Err(format!(
                    "the {HEADER_AUTHENTIC_SIGNING_TIME} header is required for the notary.x509.signingAuthority signing scheme"
                ));
            }
        }
    }
    if h.crit.is_empty() {
        return Err(
            "missing \"crit\" header (it must list at least io.cncf.notary.signingScheme)".into(),
        );
    }
    let mut must_be_critical = vec![HEADER_SIGNING_SCHEME];
    if h.expiry.is_some() {
        must_be_critical.push(HEADER_EXPIRY);
    }
    if scheme == SigningScheme::X509SigningAuthority {
        must_be_critical.push(HEADER_AUTHENTIC_SIGNING_TIME);
    }
    let mut unknown_critical = Vec::new();
    for name in &h.crit {
        if let Some(pos) = must_be_critical.iter().position(|m| m == name) {
            must_be_critical.remove(pos);
        } else if h.extended.iter().any(|e| e == name) {
            if name != HEADER_VERIFICATION_PLUGIN && name != HEADER_VERIFICATION_PLUGIN_MIN_VERSION
            {
                unknown_critical.push(name.clone());
            }
        } else {
            return Err(format!(
                "{name:?} header is marked critical but not present"
            ));
        }
    }
    if !must_be_critical.is_empty() {
        return Err(format!(
            "these required headers are not marked as critical: {}",
            must_be_critical.join(", ")
        ));
    }
    let signed_at = h.signing_time.or(h.authentic_signing_time);
    if let (Some(expiry), Some(signed_at)) = (h.expiry, signed_at)
        && expiry <= signed_at
    {
        return Err("expiry cannot be equal or before the signing time".into());
    }
    Ok(CheckedHeaders {
        scheme,
        signing_time: h.signing_time,
        authentic_signing_time: h.authentic_signing_time,
        expiry: h.expiry,
        verification_plugin: h.verification_plugin,
        unknown_critical,
    })
}
