//! What tests put into the fake vault: certificate versions with their backing secret, PEM
//! secret values, public JWKs of testkit keys.

use anyhow::{Result, anyhow, bail, ensure};
use serde_json::{Value, json};

use super::super::b64url;
use crate::pki::{KeyAlg, TestKey, pem_encode};

/// One version of a certificate, with its backing secret (`/secrets/{name}/{version}`).
#[derive(Clone, Debug)]
pub struct CertificateVersion {
    /// DER of the leaf (`cer`).
    pub leaf_der: Vec<u8>,
    /// Value of the backing secret: a PEM bundle ([`pem_secret_value`]) or base64 PFX.
    pub secret_value: String,
    /// `application/x-pem-file` or `application/x-pkcs12`.
    pub content_type: String,
    /// `attributes.enabled`.
    pub enabled: bool,
    /// `attributes.nbf` (unix seconds).
    pub nbf: Option<i64>,
    /// `attributes.exp` (unix seconds).
    pub exp: Option<i64>,
}

impl CertificateVersion {
    /// An enabled PEM certificate (`application/x-pem-file`) whose secret holds
    /// `private_key_pem` (may be empty: non-exportable key) and the chain leaf first.
    pub fn pem(private_key_pem: &str, chain_der_leaf_first: &[Vec<u8>]) -> Self {
        Self {
            leaf_der: chain_der_leaf_first.first().cloned().unwrap_or_default(),
            secret_value: pem_secret_value(private_key_pem, chain_der_leaf_first),
            content_type: "application/x-pem-file".to_string(),
            enabled: true,
            nbf: None,
            exp: None,
        }
    }
}

/// PEM secret value like Key Vault stores for a certificate: "-----BEGIN PRIVATE KEY-----..."
/// first (a dummy/real key PEM; omitted when empty), then CERTIFICATE blocks leaf → root.
pub fn pem_secret_value(private_key_pem: &str, chain_der_leaf_first: &[Vec<u8>]) -> String {
    let mut out = String::new();
    let key = private_key_pem.trim();
    if !key.is_empty() {
        out.push_str(key);
        out.push('\n');
    }
    for der in chain_der_leaf_first {
        out.push_str(&pem_encode("CERTIFICATE", der));
    }
    out
}

/// A public JWK (kty/crv/x/y or kty/n/e, base64url without padding, `key_ops` sign/verify) from
/// a testkit pki key (EC P-256/P-384/P-521 and RSA), so tests can sign with the private half.
pub fn public_jwk(key: &TestKey) -> Result<Value> {
    let raw = key.public_key_raw();
    let crv = match key.alg() {
        KeyAlg::EcP256 => "P-256",
        KeyAlg::EcP384 => "P-384",
        KeyAlg::EcP521 => "P-521",
        KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096 => {
            // PKCS#1 RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
            let (seq, _) = der_take(raw, 0x30)?;
            let (n, rest) = der_take(seq, 0x02)?;
            let (e, _) = der_take(rest, 0x02)?;
            return Ok(json!({
                "kty": "RSA",
                "key_ops": ["sign", "verify"],
                "n": b64url(strip_leading_zeros(n)),
                "e": b64url(strip_leading_zeros(e)),
            }));
        }
    };
    // Uncompressed point 04 || x || y, coordinates of equal, fixed width.
    ensure!(
        raw.len() % 2 == 1 && raw.first() == Some(&0x04),
        "{crv} public key is not an uncompressed point"
    );
    let width = (raw.len() - 1) / 2;
    Ok(json!({
        "kty": "EC",
        "key_ops": ["sign", "verify"],
        "crv": crv,
        "x": b64url(&raw[1..1 + width]),
        "y": b64url(&raw[1 + width..]),
    }))
}

fn strip_leading_zeros(int: &[u8]) -> &[u8] {
    let zeros = int
        .iter()
        .take(int.len().saturating_sub(1))
        .take_while(|b| **b == 0)
        .count();
    &int[zeros..]
}

/// Splits one DER TLV with tag `tag` off `input`: (content, rest).
fn der_take(input: &[u8], tag: u8) -> Result<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first().ok_or_else(|| anyhow!("DER: empty"))?;
    ensure!(t == tag, "DER: tag {t:#04x}, expected {tag:#04x}");
    let (&first, rest) = rest
        .split_first()
        .ok_or_else(|| anyhow!("DER: no length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            bail!("DER: bad length");
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    ensure!(rest.len() >= len, "DER: truncated");
    Ok((&rest[..len], &rest[len..]))
}
