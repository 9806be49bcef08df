//! Public keys for Cosign verification: PEM/SPKI parsing, the signature schemes each key type
//! accepts, and the fingerprint (`sha256:<hex of SubjectPublicKeyInfo DER>`) that evidence and
//! revocation use.
//!
//! Schemes per key type, matching what cosign and Ratify produce and accept:
//! - ECDSA P-256: SHA-256, ASN.1 DER signatures (cosign's default key type).
//! - ECDSA P-384: SHA-384 (KMS signers hash by curve) or SHA-256 (cosign key files), DER.
//! - ECDSA P-521: SHA-512, DER.
//! - RSA ≥ 2048: PKCS#1 v1.5 with SHA-256 (cosign) or SHA-384/512 (Key Vault hashes by key
//!   size), RSASSA-PSS with SHA-256/384/512 (salt = hash length). A signature that is a DER
//!   `SEQUENCE { INTEGER, INTEGER }` instead of a modulus-sized octet string is unwrapped first:
//!   sigstore's Azure Key Vault signer wraps RSA signatures that way (sigstore/sigstore#1384).
//! - Ed25519: pure Ed25519 over the message.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as X509PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::der;

const OID_EC_P256: &str = "1.2.840.10045.3.1.7";
const OID_EC_P384: &str = "1.3.132.0.34";
const OID_EC_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";

/// Why a public key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// The type of a public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa { bits: usize },
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyType::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyType::EcdsaP521 => f.write_str("ECDSA P-521"),
            KeyType::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyType::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A signature scheme a key verified with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    EcdsaP384Sha256,
    EcdsaP521Sha512,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    Ed25519,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::EcdsaP256Sha256 => "ECDSA P-256 SHA-256",
            Scheme::EcdsaP384Sha384 => "ECDSA P-384 SHA-384",
            Scheme::EcdsaP384Sha256 => "ECDSA P-384 SHA-256",
            Scheme::EcdsaP521Sha512 => "ECDSA P-521 SHA-512",
            Scheme::RsaPkcs1Sha256 => "RSA PKCS#1 v1.5 SHA-256",
            Scheme::RsaPkcs1Sha384 => "RSA PKCS#1 v1.5 SHA-384",
            Scheme::RsaPkcs1Sha512 => "RSA PKCS#1 v1.5 SHA-512",
            Scheme::RsaPssSha256 => "RSASSA-PSS SHA-256",
            Scheme::RsaPssSha384 => "RSASSA-PSS SHA-384",
            Scheme::RsaPssSha512 => "RSASSA-PSS SHA-512",
            Scheme::Ed25519 => "Ed25519",
        }
    }

    fn algorithm(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Scheme::EcdsaP256Sha256 => &sig::ECDSA_P256_SHA256_ASN1,
            Scheme::EcdsaP384Sha384 => &sig::ECDSA_P384_SHA384_ASN1,
            Scheme::EcdsaP384Sha256 => &sig::ECDSA_P384_SHA256_ASN1,
            Scheme::EcdsaP521Sha512 => &sig::ECDSA_P521_SHA512_ASN1,
            Scheme::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Scheme::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Scheme::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Scheme::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
            Scheme::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
            Scheme::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
            Scheme::Ed25519 => &sig::ED25519,
        }
    }

    /// The digest the scheme signs, for pre-hashed verification (`None` for Ed25519).
    fn digest_algorithm(self) -> Option<&'static digest::Algorithm> {
        match self {
            Scheme::EcdsaP256Sha256
            | Scheme::EcdsaP384Sha256
            | Scheme::RsaPkcs1Sha256
            | Scheme::RsaPssSha256 => Some(&digest::SHA256),
            Scheme::EcdsaP384Sha384 | Scheme::RsaPkcs1Sha384 | Scheme::RsaPssSha384 => {
                Some(&digest::SHA384)
            }
            Scheme::EcdsaP521Sha512 | Scheme::RsaPkcs1Sha512 | Scheme::RsaPssSha512 => {
                Some(&digest::SHA512)
            }
            Scheme::Ed25519 => None,
        }
    }
}

/// A parsed public key, ready to verify. Cheap to clone.
#[derive(Clone)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    key_type: KeyType,
    fingerprint: String,
    /// One parsed key per accepted scheme, in the order they are tried.
    candidates: Vec<(Scheme, ParsedPublicKey)>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("type", &self.key_type)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl PublicKey {
    /// Parses the first `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1) PEM block of `pem`.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let mut saw_block = false;
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.trim().as_bytes()) {
            let block = block.map_err(|e| KeyError(format!("the PEM text is malformed: {e}")))?;
            saw_block = true;
            match block.label.as_str() {
                "PUBLIC KEY" => return Self::from_spki_der(&block.contents),
                "RSA PUBLIC KEY" => {
                    return Self::from_spki_der(&rsa_pkcs1_to_spki(&block.contents));
                }
                _ => continue,
            }
        }
        Err(KeyError(if saw_block {
            "the PEM text has no `PUBLIC KEY` block (a certificate or private key was given?)"
                .into()
        } else {
            "the text is not PEM (expected `-----BEGIN PUBLIC KEY-----`)".into()
        }))
    }

    /// Parses a DER PKCS#1 `RSAPublicKey` (what a trusted root's `PKCS1_RSA_*` keys hold).
    pub fn from_pkcs1_rsa_der(pkcs1_der: &[u8]) -> Result<Self, KeyError> {
        Self::from_spki_der(&rsa_pkcs1_to_spki(pkcs1_der))
    }

    /// Parses a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, KeyError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| KeyError(format!("not a SubjectPublicKeyInfo: {e}")))?;
        if !rest.is_empty() {
            return Err(KeyError(
                "trailing bytes after the SubjectPublicKeyInfo".into(),
            ));
        }
        let alg_oid = spki.algorithm.algorithm.to_id_string();
        let key_bytes: &[u8] = &spki.subject_public_key.data;
        let (key_type, schemes): (KeyType, &[Scheme]) = if alg_oid == OID_ED25519 {
            (KeyType::Ed25519, &[Scheme::Ed25519])
        } else {
            match spki.parsed() {
                Ok(X509PublicKey::RSA(rsa)) => {
                    let modulus = match rsa.modulus {
                        [0, rest @ ..] => rest,
                        m => m,
                    };
                    let bits = modulus.len() * 8;
                    if bits < 2048 {
                        return Err(KeyError(format!(
                            "RSA-{bits} keys are too small; at least 2048 bits are required"
                        )));
                    }
                    (
                        KeyType::Rsa { bits },
                        &[
                            Scheme::RsaPkcs1Sha256,
                            Scheme::RsaPkcs1Sha384,
                            Scheme::RsaPkcs1Sha512,
                            Scheme::RsaPssSha256,
                            Scheme::RsaPssSha384,
                            Scheme::RsaPssSha512,
                        ],
                    )
                }
                Ok(X509PublicKey::EC(_)) => {
                    let curve = spki
                        .algorithm
                        .parameters
                        .as_ref()
                        .and_then(|p| p.as_oid().ok())
                        .map(|o| o.to_id_string())
                        .unwrap_or_default();
                    match curve.as_str() {
                        OID_EC_P256 => (KeyType::EcdsaP256, &[Scheme::EcdsaP256Sha256][..]),
                        OID_EC_P384 => (
                            KeyType::EcdsaP384,
                            &[Scheme::EcdsaP384Sha384, Scheme::EcdsaP384Sha256][..],
                        ),
                        OID_EC_P521 => (KeyType::EcdsaP521, &[Scheme::EcdsaP521Sha512][..]),
                        other => {
                            return Err(KeyError(format!(
                                "elliptic curve {other:?} is not supported (use P-256, P-384 or P-521)"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(KeyError(format!(
                        "key algorithm {alg_oid} is not supported (use ECDSA, RSA or Ed25519)"
                    )));
                }
            }
        };
        // The BIT STRING content is what aws-lc-rs takes: PKCS#1 RSAPublicKey for RSA, the
        // uncompressed point for EC, the 32 raw bytes for Ed25519.
        let raw = key_bytes;
        let mut candidates = Vec::with_capacity(schemes.len());
        for &scheme in schemes {
            let parsed = ParsedPublicKey::new(scheme.algorithm(), raw)
                .map_err(|e| KeyError(format!("the {key_type} key is invalid: {e}")))?;
            candidates.push((scheme, parsed));
        }
        Ok(PublicKey {
            spki_der: spki_der.to_vec(),
            key_type,
            fingerprint: spki_fingerprint(spki_der),
            candidates,
        })
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `sha256:<hex>` of the SPKI DER.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Verifies `signature` over `message`; the scheme that matched, or `None`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Option<Scheme> {
        let unwrapped = self.rsa_unwrapped(signature);
        let signature = unwrapped.as_deref().unwrap_or(signature);
        self.candidates
            .iter()
            .find(|(_, key)| key.verify_sig(message, signature).is_ok())
            .map(|(scheme, _)| *scheme)
    }

    /// Verifies `signature` over a message of which only the digest is known
    /// (`algorithm` = `sha256`, `sha384` or `sha512`). Ed25519 cannot verify pre-hashed messages.
    pub fn verify_prehashed(
        &self,
        algorithm: &str,
        message_digest: &[u8],
        signature: &[u8],
    ) -> Option<Scheme> {
        let unwrapped = self.rsa_unwrapped(signature);
        let signature = unwrapped.as_deref().unwrap_or(signature);
        self.candidates.iter().find_map(|(scheme, key)| {
            let alg = scheme.digest_algorithm()?;
            if digest_name(alg) != algorithm {
                return None;
            }
            let d = digest::Digest::import_less_safe(message_digest, alg).ok()?;
            key.verify_digest_sig(&d, signature).ok().map(|_| *scheme)
        })
    }

    fn rsa_unwrapped(&self, signature: &[u8]) -> Option<Vec<u8>> {
        let KeyType::Rsa { bits } = self.key_type else {
            return None;
        };
        let modulus_len = bits / 8;
        if signature.len() == modulus_len || modulus_len % 2 != 0 {
            return None;
        }
        der::integer_pair_to_fixed(signature, modulus_len / 2)
    }
}

fn digest_name(alg: &'static digest::Algorithm) -> &'static str {
    if alg == &digest::SHA384 {
        "sha384"
    } else if alg == &digest::SHA512 {
        "sha512"
    } else {
        "sha256"
    }
}

/// `sha256:<hex>` of SPKI DER bytes.
pub fn spki_fingerprint(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// Wraps a PKCS#1 `RSAPublicKey` in an SPKI with `rsaEncryption` (NULL parameters).
fn rsa_pkcs1_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = Vec::with_capacity(pkcs1.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(pkcs1);
    let mut content = ALG.to_vec();
    content.extend(der::encode_tlv(0x03, &bits));
    der::encode_tlv(der::TAG_SEQUENCE, &content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut s = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).unwrap());
            s.push('\n');
        }
        s.push_str(&format!("-----END {label}-----\n"));
        s
    }

    fn ec_spki(point: &[u8], curve_oid: &str) -> Vec<u8> {
        let mut alg = der::oid_der("1.2.840.10045.2.1");
        alg.extend(der::oid_der(curve_oid));
        let mut content = der::encode_tlv(der::TAG_SEQUENCE, &alg);
        let mut bits = vec![0u8];
        bits.extend_from_slice(point);
        content.extend(der::encode_tlv(0x03, &bits));
        der::encode_tlv(der::TAG_SEQUENCE, &content)
    }

    #[test]
    fn ecdsa_p384_plain_and_prehashed() {
        let rng = SystemRandom::new();
        let signing = &sig::ECDSA_P384_SHA384_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).unwrap();
        let key =
            PublicKey::from_spki_der(&ec_spki(kp.public_key().as_ref(), OID_EC_P384)).unwrap();
        assert_eq!(key.key_type(), KeyType::EcdsaP384);
        let s = kp.sign(&rng, b"payload").unwrap();
        assert_eq!(
            key.verify(b"payload", s.as_ref()),
            Some(Scheme::EcdsaP384Sha384)
        );
        assert_eq!(key.verify(b"payloaX", s.as_ref()), None);
        let d = digest::digest(&digest::SHA384, b"payload");
        assert_eq!(
            key.verify_prehashed("sha384", d.as_ref(), s.as_ref()),
            Some(Scheme::EcdsaP384Sha384)
        );
    }

    #[test]
    fn ed25519_and_pem_labels() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut spki = der::encode_tlv(der::TAG_SEQUENCE, &der::oid_der(OID_ED25519));
        let mut bits = vec![0u8];
        bits.extend_from_slice(kp.public_key().as_ref());
        spki.extend(der::encode_tlv(0x03, &bits));
        let spki = der::encode_tlv(der::TAG_SEQUENCE, &spki);
        let key = PublicKey::from_pem(&pem("PUBLIC KEY", &spki)).unwrap();
        assert_eq!(key.key_type(), KeyType::Ed25519);
        let s = kp.sign(b"m");
        assert_eq!(key.verify(b"m", s.as_ref()), Some(Scheme::Ed25519));
        assert!(
            key.verify_prehashed("sha256", &[0; 32], s.as_ref())
                .is_none()
        );

        let err = PublicKey::from_pem(&pem("CERTIFICATE", b"xx")).unwrap_err();
        assert!(err.0.contains("no `PUBLIC KEY` block"), "{err}");
        let err = PublicKey::from_pem("hello").unwrap_err();
        assert!(err.0.contains("not PEM"), "{err}");
    }

    #[test]
    fn rsa_pkcs1_pem_asn1_wrapped_and_prehashed() {
        let rng = SystemRandom::new();
        let kp = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs1 = kp.public_key().as_ref().to_vec();
        let key = PublicKey::from_pem(&pem("RSA PUBLIC KEY", &pkcs1)).unwrap();
        assert_eq!(key.key_type(), KeyType::Rsa { bits: 2048 });
        assert_eq!(key.spki_der(), rsa_pkcs1_to_spki(&pkcs1).as_slice());

        let mut s = vec![0u8; kp.public_modulus_len()];
        kp.sign(&sig::RSA_PKCS1_SHA384, &rng, b"msg", &mut s)
            .unwrap();
        assert_eq!(key.verify(b"msg", &s), Some(Scheme::RsaPkcs1Sha384));
        kp.sign(&sig::RSA_PSS_SHA256, &rng, b"msg", &mut s).unwrap();
        assert_eq!(key.verify(b"msg", &s), Some(Scheme::RsaPssSha256));
        let d = Sha256::digest(b"msg");
        assert_eq!(
            key.verify_prehashed("sha256", &d, &s),
            Some(Scheme::RsaPssSha256)
        );
        assert_eq!(key.verify_prehashed("sha512", &d, &s), None);

        // Key Vault's signer: SEQUENCE { INTEGER(first half), INTEGER(second half) }.
        kp.sign(&sig::RSA_PKCS1_SHA256, &rng, b"msg", &mut s)
            .unwrap();
        let half = s.len() / 2;
        let int = |b: &[u8]| {
            let mut v = b.to_vec();
            while v.len() > 1 && v[0] == 0 {
                v.remove(0);
            }
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            der::encode_tlv(der::TAG_INTEGER, &v)
        };
        let mut pair = int(&s[..half]);
        pair.extend(int(&s[half..]));
        let wrapped = der::encode_tlv(der::TAG_SEQUENCE, &pair);
        assert_eq!(key.verify(b"msg", &wrapped), Some(Scheme::RsaPkcs1Sha256));
        assert_eq!(key.verify(b"other", &wrapped), None);
    }

    #[test]
    fn small_rsa_and_unknown_curves_are_rejected() {
        let spki = ec_spki(&[4; 65], "1.3.132.0.10"); // secp256k1
        let err = PublicKey::from_spki_der(&spki).unwrap_err();
        assert!(err.0.contains("not supported"), "{err}");
        assert!(PublicKey::from_spki_der(b"\x30\x00").is_err());
    }
}
