//! The Sigstore trust material used offline: Fulcio certificate authorities, Rekor and CT log
//! public keys, timestamp authorities.
//!
//! Ratify (and cosign) fetch this material through Sigstore's TUF repository at verification
//! time. Verdict never fetches while verifying: the material comes from configuration, either a
//! Sigstore `trusted_root.json` (the file `cosign trusted-root create` writes and the public-good
//! TUF repository distributes, media type `application/vnd.dev.sigstore.trustedroot+json`) or
//! PEM pieces. Each piece may carry a validity window (`validFor`): a log key only vouches for
//! entries integrated inside its window, a CA only for certificates issued inside its window.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::error::CosignError;
use super::keys::PublicKey;

/// A validity window; open ends are unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validity {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Validity {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }

    fn describe(&self) -> String {
        let f = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or("-".into());
        format!("{}..{}", f(self.start), f(self.end))
    }
}

/// A transparency log (Rekor) or certificate transparency log key.
#[derive(Clone, Debug)]
pub struct LogKey {
    /// The log ID: SHA-256 of the key's SPKI DER unless configured otherwise.
    pub log_id: Vec<u8>,
    pub key: PublicKey,
    pub valid_for: Validity,
    pub base_url: String,
}

/// A certificate authority (Fulcio) or timestamp authority: its chain, root last.
#[derive(Clone)]
pub struct CertAuthority {
    /// DER certificates, the issuing (leaf-most) CA first, the root last.
    pub chain: Vec<Vec<u8>>,
    pub valid_for: Validity,
    pub uri: String,
    pub(crate) anchor: TrustAnchor<'static>,
    pub(crate) intermediates: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority")
            .field("uri", &self.uri)
            .field("chain_len", &self.chain.len())
            .field("valid_for", &self.valid_for)
            .finish()
    }
}

impl CertAuthority {
    /// From DER certificates, leaf-most CA first and root last.
    pub fn from_chain(
        chain: Vec<Vec<u8>>,
        valid_for: Validity,
        uri: &str,
    ) -> Result<Self, CosignError> {
        let Some(root) = chain.last() else {
            return Err(CosignError::trust_root(format!(
                "certificate authority {uri:?} has an empty certificate chain"
            )));
        };
        for (i, der) in chain.iter().enumerate() {
            x509_parser::parse_x509_certificate(der).map_err(|e| {
                CosignError::trust_root(format!(
                    "certificate {i} of authority {uri:?} is not a valid X.509 certificate: {e}"
                ))
            })?;
        }
        let root_der = CertificateDer::from(root.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&root_der)
            .map_err(|e| {
                CosignError::trust_root(format!(
                    "the root of authority {uri:?} cannot be a trust anchor: {e}"
                ))
            })?
            .to_owned();
        let intermediates = chain[..chain.len() - 1]
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect();
        Ok(CertAuthority {
            chain,
            valid_for,
            uri: uri.to_owned(),
            anchor,
            intermediates,
        })
    }

    /// `sha256:<hex>` of the root certificate.
    pub fn root_fingerprint(&self) -> String {
        self.chain
            .last()
            .map(|d| sha256_fingerprint(d))
            .unwrap_or_default()
    }
}

/// All Sigstore trust material of one deployment.
#[derive(Clone, Debug, Default)]
pub struct SigstoreTrustRoot {
    /// Rekor keys.
    pub tlogs: Vec<LogKey>,
    /// Certificate transparency log keys (SCTs in Fulcio certificates).
    pub ctlogs: Vec<LogKey>,
    /// Fulcio certificate authorities.
    pub certificate_authorities: Vec<CertAuthority>,
    /// RFC 3161 timestamp authorities.
    pub timestamp_authorities: Vec<CertAuthority>,
}

impl SigstoreTrustRoot {
    /// An empty trust root (no keyless verification, no Rekor or timestamp checks possible).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a Sigstore `trusted_root.json` (protobuf-specs `TrustedRoot`, version 0.1/0.2).
    pub fn from_trusted_root_json(bytes: &[u8]) -> Result<Self, CosignError> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| CosignError::trust_root(format!("not JSON: {e}")))?;
        let media_type = v.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if !media_type.starts_with("application/vnd.dev.sigstore.trustedroot") {
            return Err(CosignError::trust_root(format!(
                "mediaType {media_type:?} is not application/vnd.dev.sigstore.trustedroot+json"
            )));
        }
        let mut root = SigstoreTrustRoot::new();
        for (field, out) in [("tlogs", &mut root.tlogs), ("ctlogs", &mut root.ctlogs)] {
            for (i, entry) in array(&v, field).iter().enumerate() {
                out.push(
                    log_key_from_json(entry)
                        .map_err(|e| CosignError::trust_root(format!("{field}[{i}]: {e}")))?,
                );
            }
        }
        for (field, out) in [
            ("certificateAuthorities", &mut root.certificate_authorities),
            ("timestampAuthorities", &mut root.timestamp_authorities),
        ] {
            for (i, entry) in array(&v, field).iter().enumerate() {
                out.push(authority_from_json(entry).map_err(|e| match e {
                    CosignError::TrustRoot { reason } => {
                        CosignError::trust_root(format!("{field}[{i}]: {reason}"))
                    }
                    other => other,
                })?);
            }
        }
        Ok(root)
    }

    /// Adds a Fulcio CA from PEM certificates (issuing CA first, root last).
    pub fn with_fulcio_pem(mut self, chain_pem: &str) -> Result<Self, CosignError> {
        let chain = pem_certificates(chain_pem)?;
        self.certificate_authorities.push(CertAuthority::from_chain(
            chain,
            Validity::default(),
            "fulcio (configured PEM)",
        )?);
        Ok(self)
    }

    /// Adds a Rekor public key from PEM.
    pub fn with_rekor_key_pem(mut self, pem: &str) -> Result<Self, CosignError> {
        self.tlogs
            .push(log_key_from_pem(pem, "rekor (configured PEM)")?);
        Ok(self)
    }

    /// Adds a certificate transparency log public key from PEM.
    pub fn with_ctlog_key_pem(mut self, pem: &str) -> Result<Self, CosignError> {
        self.ctlogs
            .push(log_key_from_pem(pem, "ctlog (configured PEM)")?);
        Ok(self)
    }

    /// Adds a timestamp authority from PEM certificates (signing certificate first, root last).
    pub fn with_tsa_pem(mut self, chain_pem: &str) -> Result<Self, CosignError> {
        let chain = pem_certificates(chain_pem)?;
        self.timestamp_authorities.push(CertAuthority::from_chain(
            chain,
            Validity::default(),
            "tsa (configured PEM)",
        )?);
        Ok(self)
    }

    /// The Rekor key with `log_id`.
    pub fn rekor_key(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.tlogs.iter().find(|k| k.log_id == log_id)
    }

    /// The CT log key with `log_id`.
    pub fn ctlog_key(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.ctlogs.iter().find(|k| k.log_id == log_id)
    }

    pub fn is_empty(&self) -> bool {
        self.tlogs.is_empty()
            && self.ctlogs.is_empty()
            && self.certificate_authorities.is_empty()
            && self.timestamp_authorities.is_empty()
    }

    /// Canonical text of everything that can change a verdict (for the trust fingerprint).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (kind, logs) in [("tlog", &self.tlogs), ("ctlog", &self.ctlogs)] {
            for k in logs {
                out.push_str(&format!(
                    "{kind} {} {} {}\n",
                    hex::encode(&k.log_id),
                    k.key.fingerprint(),
                    k.valid_for.describe()
                ));
            }
        }
        for (kind, cas) in [
            ("ca", &self.certificate_authorities),
            ("tsa", &self.timestamp_authorities),
        ] {
            for ca in cas {
                let fps: Vec<String> = ca.chain.iter().map(|d| sha256_fingerprint(d)).collect();
                out.push_str(&format!(
                    "{kind} {} {}\n",
                    fps.join(","),
                    ca.valid_for.describe()
                ));
            }
        }
        out
    }
}

/// `sha256:<hex>` of DER bytes.
pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

fn array<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

fn validity_from_json(v: Option<&Value>) -> Result<Validity, String> {
    let Some(v) = v else {
        return Ok(Validity::default());
    };
    let time = |field: &str| -> Result<Option<DateTime<Utc>>, String> {
        match v.get(field).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("validFor.{field} {s:?} is not an RFC 3339 time: {e}")),
        }
    };
    Ok(Validity {
        start: time("start")?,
        end: time("end")?,
    })
}

fn log_key_from_json(entry: &Value) -> Result<LogKey, String> {
    let pk = entry.get("publicKey").ok_or("no publicKey")?;
    let raw = pk
        .get("rawBytes")
        .and_then(Value::as_str)
        .ok_or("publicKey.rawBytes is missing")?;
    let der = b64(raw, "publicKey.rawBytes")?;
    // `keyDetails` says how rawBytes is encoded: PKCS#1 for the `PKCS1_RSA_*` kinds (the
    // staging CT log of 2021–22), SubjectPublicKeyInfo for every other kind.
    let details = pk.get("keyDetails").and_then(Value::as_str).unwrap_or("");
    let key = if details.starts_with("PKCS1_RSA") {
        PublicKey::from_pkcs1_rsa_der(&der)
    } else {
        PublicKey::from_spki_der(&der)
    }
    .map_err(|e| format!("publicKey ({details}): {e}"))?;
    let log_id = match entry
        .get("logId")
        .and_then(|l| l.get("keyId"))
        .and_then(Value::as_str)
    {
        Some(id) => b64(id, "logId.keyId")?,
        None => Sha256::digest(key.spki_der()).to_vec(),
    };
    Ok(LogKey {
        log_id,
        key,
        valid_for: validity_from_json(pk.get("validFor"))?,
        base_url: entry
            .get("baseUrl")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

fn authority_from_json(entry: &Value) -> Result<CertAuthority, CosignError> {
    let uri = entry.get("uri").and_then(Value::as_str).unwrap_or("");
    let certs = entry
        .get("certChain")
        .and_then(|c| c.get("certificates"))
        .and_then(Value::as_array)
        .ok_or_else(|| CosignError::trust_root("certChain.certificates is missing"))?;
    let mut chain = Vec::with_capacity(certs.len());
    for (i, c) in certs.iter().enumerate() {
        let raw = c.get("rawBytes").and_then(Value::as_str).ok_or_else(|| {
            CosignError::trust_root(format!("certChain.certificates[{i}].rawBytes is missing"))
        })?;
        chain.push(
            b64(raw, &format!("certChain.certificates[{i}].rawBytes"))
                .map_err(CosignError::trust_root)?,
        );
    }
    let valid_for = validity_from_json(entry.get("validFor")).map_err(CosignError::trust_root)?;
    CertAuthority::from_chain(chain, valid_for, uri)
}

fn log_key_from_pem(pem: &str, name: &str) -> Result<LogKey, CosignError> {
    let key = PublicKey::from_pem(pem)
        .map_err(|e| CosignError::trust_root(format!("{name} public key: {e}")))?;
    Ok(LogKey {
        log_id: Sha256::digest(key.spki_der()).to_vec(),
        key,
        valid_for: Validity::default(),
        base_url: String::new(),
    })
}

/// Every `CERTIFICATE` block of `pem`, in order.
pub(crate) fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, CosignError> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.trim().as_bytes()) {
        let block = block.map_err(|e| CosignError::trust_root(format!("malformed PEM: {e}")))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(CosignError::trust_root(
            "no `CERTIFICATE` PEM block found".to_owned(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_media_type_and_bad_entries() {
        let e = SigstoreTrustRoot::from_trusted_root_json(br#"{"mediaType":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("mediaType"), "{e}");
        let e = SigstoreTrustRoot::from_trusted_root_json(
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"publicKey":{"rawBytes":"@@"}}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("tlogs[0]"), "{e}");
        let empty = SigstoreTrustRoot::from_trusted_root_json(
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
        )
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn validity_windows() {
        let v = validity_from_json(Some(&serde_json::json!({"start": "2021-01-01T00:00:00Z"})))
            .unwrap();
        assert!(v.contains("2022-01-01T00:00:00Z".parse().unwrap()));
        assert!(!v.contains("2020-01-01T00:00:00Z".parse().unwrap()));
        assert!(validity_from_json(Some(&serde_json::json!({"end": "never"}))).is_err());
    }
}
