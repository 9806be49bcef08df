//! JSON Web Keys (RFC 7517/7518) to SubjectPublicKeyInfo: `kty` `EC` / `EC-HSM` (P-256, P-384,
//! P-521; `x`, `y`) and `RSA` / `RSA-HSM` (`n`, `e`), the kinds Azure Key Vault returns. Private
//! members are ignored; symmetric (`oct`) and unknown kinds are refused with the reason.

use base64::Engine as _;
use serde_json::Value;

use crate::cosign::PublicKey;
use crate::der::{TAG_INTEGER, TAG_SEQUENCE, encode_tlv, oid_der};

const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Why a JWK cannot be a trusted key. Always definitive: the same key fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSON Web Key{}: {reason}", kid.as_ref().map(|k| format!(" {k}")).unwrap_or_default())]
pub struct JwkError {
    /// The key's `kid`, when it has one.
    pub kid: Option<String>,
    pub reason: String,
}

impl JwkError {
    pub fn is_transient(&self) -> bool {
        false
    }
}

fn member<'a>(jwk: &'a Value, name: &str) -> Result<&'a str, String> {
    jwk.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("has no {name:?} member"))
}

/// base64url without padding (padding tolerated), as JWK numbers are written.
fn b64url(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = member(jwk, name)?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("member {name:?} is not base64url: {e}"))
}

/// A DER INTEGER holding the unsigned big-endian `magnitude`.
fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let first = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        &magnitude[first..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    encode_tlv(TAG_INTEGER, &content)
}

fn spki(algorithm: Vec<u8>, key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    encode_tlv(
        TAG_SEQUENCE,
        &[
            encode_tlv(TAG_SEQUENCE, &algorithm),
            encode_tlv(TAG_BIT_STRING, &bits),
        ]
        .concat(),
    )
}

fn ec_spki(jwk: &Value) -> Result<Vec<u8>, String> {
    let crv = member(jwk, "crv")?;
    let (curve_oid, size) = match crv {
        "P-256" => ("1.2.840.10045.3.1.7", 32),
        "P-384" => ("1.3.132.0.34", 48),
        "P-521" => ("1.3.132.0.35", 66),
        other => {
            return Err(format!(
                "curve {other:?} is not supported (P-256, P-384 and P-521 are)"
            ));
        }
    };
    let mut point = vec![0x04];
    for name in ["x", "y"] {
        let c = b64url(jwk, name)?;
        // RFC 7518 §6.2.1.2: exactly the field size; some encoders drop leading zeros.
        if c.len() > size {
            return Err(format!(
                "member {name:?} has {} bytes, more than the {size} of {crv}",
                c.len()
            ));
        }
        point.extend(std::iter::repeat_n(0u8, size - c.len()));
        point.extend_from_slice(&c);
    }
    Ok(spki(
        [oid_der(OID_EC_PUBLIC_KEY), oid_der(curve_oid)].concat(),
        &point,
    ))
}

fn rsa_spki(jwk: &Value) -> Result<Vec<u8>, String> {
    let (n, e) = (b64url(jwk, "n")?, b64url(jwk, "e")?);
    let public = encode_tlv(
        TAG_SEQUENCE,
        &[unsigned_integer(&n), unsigned_integer(&e)].concat(),
    );
    Ok(spki(
        [oid_der(OID_RSA_ENCRYPTION), encode_tlv(TAG_NULL, &[])].concat(),
        &public,
    ))
}

/// The SubjectPublicKeyInfo DER of a JWK (an object, e.g. Key Vault's `key` member).
pub fn spki_der_from_jwk(jwk: &Value) -> Result<Vec<u8>, JwkError> {
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
    let fail = |reason: String| JwkError {
        kid: kid.clone(),
        reason,
    };
    let kty = member(jwk, "kty").map_err(fail)?;
    match kty {
        "EC" | "EC-HSM" => ec_spki(jwk).map_err(fail),
        "RSA" | "RSA-HSM" => rsa_spki(jwk).map_err(fail),
        "oct" | "oct-HSM" => Err(fail(
            "is a symmetric key (kty oct): it cannot verify signatures for others".into(),
        )),
        other => Err(fail(format!(
            "key type {other:?} is not supported (EC, EC-HSM, RSA, RSA-HSM are)"
        ))),
    }
}

/// The JWK as a verifying key (its SPKI checked like any configured key: curve, RSA size).
pub fn public_key_from_jwk(jwk: &Value) -> Result<PublicKey, JwkError> {
    let der = spki_der_from_jwk(jwk)?;
    PublicKey::from_spki_der(&der).map_err(|e| JwkError {
        kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
        reason: e.to_string(),
    })
}

/// The JWK as a `PUBLIC KEY` PEM (what KeyManagementProvider key material holds).
pub fn spki_pem_from_jwk(jwk: &Value) -> Result<String, JwkError> {
    let key = public_key_from_jwk(jwk)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.spki_der());
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::KeyType;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
    use serde_json::json;

    fn b64u(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    #[test]
    fn an_ec_jwk_verifies_what_its_private_key_signed() {
        let rng = SystemRandom::new();
        for (alg, verify_alg, crv, size, ty) in [
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1,
                "P-384",
                48,
                KeyType::EcdsaP384,
            ),
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_ASN1,
                "P-256",
                32,
                KeyType::EcdsaP256,
            ),
        ] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
            let point = pair.public_key().as_ref();
            let (x, y) = point[1..].split_at(size);
            let jwk = json!({"kty": "EC-HSM", "crv": crv, "x": b64u(x), "y": b64u(y), "kid": "k"});
            let key = public_key_from_jwk(&jwk).unwrap();
            assert_eq!(key.key_type(), ty);
            let sig = pair.sign(&rng, b"payload").unwrap();
            assert!(key.verify(b"payload", sig.as_ref()).is_some());
            // The SPKI is the one aws-lc-rs reads back as the same point.
            let der = spki_der_from_jwk(&jwk).unwrap();
            let ours = signature::UnparsedPublicKey::new(verify_alg, point);
            assert!(ours.verify(b"payload", sig.as_ref()).is_ok());
            assert!(der.ends_with(point));
            assert!(
                spki_pem_from_jwk(&jwk)
                    .unwrap()
                    .starts_with("-----BEGIN PUBLIC KEY-----\n")
            );
        }
    }

    #[test]
    fn bad_jwks_are_refused_with_the_reason() {
        let cases = [
            (json!({"kty": "oct", "k": "AAAA"}), "symmetric"),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"}),
                "\"OKP\" is not supported",
            ),
            (
                json!({"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"}),
                "\"P-192\"",
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "y": "AA"}),
                "no \"x\" member",
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}),
                "not base64url",
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": b64u(&[1; 40]), "y": "AA"}),
                "more than the 32",
            ),
            (
                json!({"kty": "RSA", "n": b64u(&[0xc5; 64]), "e": "AQAB"}),
                "too small",
            ),
            (json!({"n": "AA"}), "no \"kty\" member"),
        ];
        for (jwk, says) in cases {
            let e = public_key_from_jwk(&jwk).unwrap_err().to_string();
            assert!(e.contains(says), "{jwk}: {e}");
        }
        let e =
            public_key_from_jwk(&json!({"kid": "https://v/keys/k/1", "kty": "oct"})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("JSON Web Key https://v/keys/k/1:"),
            "{e}"
        );
    }
}
