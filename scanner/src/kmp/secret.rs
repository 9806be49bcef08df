//! Certificates out of an Azure Key Vault secret bundle (`GET /secrets/{name}/{version}` of a
//! certificate: the certificate and its chain, with the private key, which is never kept).
//! `contentType` says the encoding: `application/x-pem-file` or `application/x-pkcs12` (base64
//! PKCS#12 with an empty password, as Key Vault exports it; its 3DES/SHA-1 PBE is read too).

use base64::Engine as _;
use serde_json::Value;
use x509_parser::prelude::FromDer as _;

/// Why a secret bundle gives no certificates. Definitive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Key Vault secret {id}: {reason}")]
pub struct SecretError {
    /// The secret's `id` (its URL with version), or `(no id)`.
    pub id: String,
    pub reason: String,
}

impl SecretError {
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// The DER certificates of a secret bundle, in the order stored (the leaf first, as Key Vault
/// keeps a certificate's chain); private-key blocks are skipped, never returned.
pub fn certificates_from_secret_bundle(bundle: &Value) -> Result<Vec<Vec<u8>>, SecretError> {
    let id = bundle
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("(no id)")
        .to_owned();
    let fail = |reason: String| SecretError {
        id: id.clone(),
        reason,
    };
    let value = bundle
        .get("value")
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| fail("has no value".into()))?;
    let content_type = bundle
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("");
    match content_type {
        "application/x-pem-file" => pem_certificates(value).map_err(fail),
        "application/x-pkcs12" => {
            let der = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|e| fail(format!("its PKCS#12 value is not base64: {e}")))?;
            pkcs12_certificates(&der).map_err(fail)
        }
        other => Err(fail(format!(
            "has content type {other:?}; a certificate's secret is application/x-pem-file or \
             application/x-pkcs12 (is this a plain secret rather than a certificate?)"
        ))),
    }
}

fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.trim().as_bytes()) {
        let block = block.map_err(|e| format!("its PEM value is malformed: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue; // the private key (and anything else) is not trust material
        }
        x509_parser::certificate::X509Certificate::from_der(&block.contents).map_err(|e| {
            format!(
                "certificate {} of its PEM value is not valid X.509: {e}",
                out.len() + 1
            )
        })?;
        out.push(block.contents);
    }
    if out.is_empty() {
        return Err("its PEM value holds no CERTIFICATE block".into());
    }
    Ok(out)
}

/// Every certificate of a PKCS#12 archive (no password, as Key Vault writes them).
fn pkcs12_certificates(der: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let certs = super::pkcs12::certificates(der)
        .map_err(|e| format!("its PKCS#12 value cannot be read: {e}"))?;
    for (i, c) in certs.iter().enumerate() {
        x509_parser::certificate::X509Certificate::from_der(c).map_err(|e| {
            format!(
                "certificate {} of its PKCS#12 value is not valid X.509: {e}",
                i + 1
            )
        })?;
    }
    if certs.is_empty() {
        return Err("its PKCS#12 value holds no certificate".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_keys_are_skipped_and_problems_named() {
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        let pem = format!("{}{}", cert.signing_key.serialize_pem(), cert.cert.pem());
        let bundle = json!({"id": "https://v/secrets/c/1", "contentType": "application/x-pem-file", "value": pem});
        let certs = certificates_from_secret_bundle(&bundle).unwrap();
        assert_eq!(certs, vec![cert.cert.der().to_vec()]);

        let key_only = json!({"id": "s", "contentType": "application/x-pem-file", "value": cert.signing_key.serialize_pem()});
        let e = certificates_from_secret_bundle(&key_only).unwrap_err();
        assert!(e.reason.contains("no CERTIFICATE block"), "{e}");
        let p12 = json!({"id": "s", "contentType": "application/x-pkcs12", "value": "MIIK"});
        let e = certificates_from_secret_bundle(&p12).unwrap_err();
        assert!(e.reason.contains("cannot be read"), "{e}");
    }
}
