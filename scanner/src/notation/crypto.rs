//! Signature algorithms: the six Notary Project envelope algorithms and the X.509/CMS algorithm
//! identifiers met in certificate chains and timestamp tokens. All verification uses aws-lc-rs.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use serde::{Deserialize, Serialize};

pub(crate) use crate::der::AlgorithmId;
use crate::der::{self, Reader};
pub(crate) use crate::rfc3161::HashAlg;

/// The Notary Project signature algorithms (spec "Signature Algorithm Requirements").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
}

impl SignatureAlgorithm {
    /// From a JWS `alg` value.
    pub fn from_jws(alg: &str) -> Option<Self> {
        Some(match alg {
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            _ => return None,
        })
    }

    /// From a COSE algorithm identifier (RFC 9053 / RFC 8230).
    pub fn from_cose(alg: i64) -> Option<Self> {
        Some(match alg {
            -37 => Self::PS256,
            -38 => Self::PS384,
            -39 => Self::PS512,
            -7 => Self::ES256,
            -35 => Self::ES384,
            -36 => Self::ES512,
            _ => return None,
        })
    }

    /// The JOSE name, also used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
        }
    }

    /// The only algorithm a signing key may use (spec "Algorithm Selection").
    pub(crate) fn for_key(key: &PublicKeyInfo) -> Result<Self, String> {
        match key {
            PublicKeyInfo::Rsa { bits, .. } => match bits {
                2048 => Ok(Self::PS256),
                3072 => Ok(Self::PS384),
                4096 => Ok(Self::PS512),
                other => Err(format!(
                    "RSA key size {other} bits is not supported (2048, 3072 or 4096 are)"
                )),
            },
            PublicKeyInfo::Ec { curve, .. } => Ok(match curve {
                Curve::P256 => Self::ES256,
                Curve::P384 => Self::ES384,
                Curve::P521 => Self::ES512,
            }),
            PublicKeyInfo::Other { algorithm } => Err(format!(
                "public key algorithm {algorithm} is not supported (RSA or ECDSA P-256/P-384/P-521 are)"
            )),
        }
    }

    fn verification_algorithm(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            Self::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Self::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            Self::ES512 => &sig::ECDSA_P521_SHA512_FIXED,
        }
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// SHA-256 of `data` as lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// Named elliptic curves allowed by the Notary Project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

/// A certificate's public key in the form aws-lc-rs verifies with.
#[derive(Clone, Debug)]
pub(crate) enum PublicKeyInfo {
    /// `der` is the PKCS#1 `RSAPublicKey`; `bits` is the modulus size as Go computes it.
    Rsa {
        bits: usize,
        der: Vec<u8>,
    },
    /// `point` is the uncompressed SEC1 point.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Other {
        algorithm: String,
    },
}

impl PublicKeyInfo {
    /// Human description, e.g. "RSA 3072" or "EC P-256".
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa { bits, .. } => format!("RSA {bits}"),
            Self::Ec { curve, .. } => match curve {
                Curve::P256 => "EC P-256".into(),
                Curve::P384 => "EC P-384".into(),
                Curve::P521 => "EC P-521".into(),
            },
            Self::Other { algorithm } => format!("unsupported key algorithm {algorithm}"),
        }
    }
}

/// Verifies an envelope signature (JWS / COSE: PSS with salt = hash length, ECDSA as fixed r||s).
pub(crate) fn verify_envelope_signature(
    alg: SignatureAlgorithm,
    key: &PublicKeyInfo,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key_bytes = match (alg, key) {
        (
            SignatureAlgorithm::PS256 | SignatureAlgorithm::PS384 | SignatureAlgorithm::PS512,
            PublicKeyInfo::Rsa { der, .. },
        ) => der.as_slice(),
        (
            SignatureAlgorithm::ES256 | SignatureAlgorithm::ES384 | SignatureAlgorithm::ES512,
            PublicKeyInfo::Ec { point, .. },
        ) => point.as_slice(),
        _ => {
            return Err(format!(
                "signature algorithm {alg} cannot be used with a {} key",
                key.describe()
            ));
        }
    };
    UnparsedPublicKey::new(alg.verification_algorithm(), key_bytes)
        .verify(message, signature)
        .map_err(|_| {
            format!("the {alg} signature does not verify with the signing certificate's public key")
        })
}

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// Verifies an X.509 or CMS signature described by an `AlgorithmIdentifier`.
/// `digest_hint` is the CMS `digestAlgorithm`, needed when the signature algorithm is a bare
/// key algorithm (rsaEncryption / id-ecPublicKey).
pub(crate) fn verify_with_algorithm_id(
    alg: &AlgorithmId,
    digest_hint: Option<HashAlg>,
    key: &PublicKeyInfo,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    enum Kind {
        Pkcs1(HashAlg),
        Pss(HashAlg),
        Ecdsa(HashAlg),
    }
    let kind = match alg.oid.as_str() {
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => {
            return Err("SHA-1 based signatures are not allowed".into());
        }
        "1.2.840.113549.1.1.11" => Kind::Pkcs1(HashAlg::Sha256),
        "1.2.840.113549.1.1.12" => Kind::Pkcs1(HashAlg::Sha384),
        "1.2.840.113549.1.1.13" => Kind::Pkcs1(HashAlg::Sha512),
        OID_RSA_ENCRYPTION => Kind::Pkcs1(
            digest_hint.ok_or("rsaEncryption signature algorithm without a digest algorithm")?,
        ),
        OID_RSASSA_PSS => Kind::Pss(parse_pss_params(alg.params.as_deref())?),
        "1.2.840.10045.4.3.2" => Kind::Ecdsa(HashAlg::Sha256),
        "1.2.840.10045.4.3.3" => Kind::Ecdsa(HashAlg::Sha384),
        "1.2.840.10045.4.3.4" => Kind::Ecdsa(HashAlg::Sha512),
        OID_EC_PUBLIC_KEY => Kind::Ecdsa(
            digest_hint.ok_or("id-ecPublicKey signature algorithm without a digest algorithm")?,
        ),
        other => return Err(format!("unsupported signature algorithm {other}")),
    };
    let (algorithm, key_bytes): (&'static dyn VerificationAlgorithm, &[u8]) = match (kind, key) {
        (Kind::Pkcs1(h), PublicKeyInfo::Rsa { der, .. }) => (
            match h {
                HashAlg::Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                HashAlg::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                HashAlg::Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            },
            der,
        ),
        (Kind::Pss(h), PublicKeyInfo::Rsa { der, .. }) => (
            match h {
                HashAlg::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
                HashAlg::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
                HashAlg::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
            },
            der,
        ),
        (Kind::Ecdsa(h), PublicKeyInfo::Ec { curve, point }) => (
            match (curve, h) {
                (Curve::P256, HashAlg::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, HashAlg::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
                (Curve::P256, HashAlg::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
                (Curve::P384, HashAlg::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, HashAlg::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
                (Curve::P384, HashAlg::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
                (Curve::P521, HashAlg::Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
                (Curve::P521, HashAlg::Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
                (Curve::P521, HashAlg::Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
            },
            point,
        ),
        (_, key) => {
            return Err(format!(
                "signature algorithm {} does not match the issuer's {} key",
                alg.oid,
                key.describe()
            ));
        }
    };
    UnparsedPublicKey::new(algorithm, key_bytes)
        .verify(message, signature)
        .map_err(|_| "signature verification failed".to_string())
}

/// RSASSA-PSS-params: only hash ∈ {SHA-256, SHA-384, SHA-512}, MGF1 with the same hash and
/// salt length = hash length (what aws-lc-rs and Go's x509 verify).
fn parse_pss_params(params: Option<&[u8]>) -> Result<HashAlg, String> {
    let params = params.ok_or("RSASSA-PSS without parameters (SHA-1 default) is not allowed")?;
    let seq = der::parse_single(params, der::TAG_SEQUENCE, "RSASSA-PSS parameters")?;
    let mut r = seq.reader();
    let hash_tlv = r
        .read_optional(der::ctx_cons(0), "RSASSA-PSS hashAlgorithm")?
        .ok_or("RSASSA-PSS with the default SHA-1 hash is not allowed")?;
    let hash_alg = AlgorithmId::parse(&mut hash_tlv.reader(), "RSASSA-PSS hashAlgorithm")?;
    let hash = HashAlg::from_oid(&hash_alg.oid)?;
    let mgf_tlv = r
        .read_optional(der::ctx_cons(1), "RSASSA-PSS maskGenAlgorithm")?
        .ok_or("RSASSA-PSS with the default MGF1-SHA-1 is not allowed")?;
    let mgf = AlgorithmId::parse(&mut mgf_tlv.reader(), "RSASSA-PSS maskGenAlgorithm")?;
    if mgf.oid != OID_MGF1 {
        return Err(format!(
            "unsupported RSASSA-PSS mask generation function {}",
            mgf.oid
        ));
    }
    let mgf_hash_params = mgf.params.ok_or("MGF1 without a hash algorithm")?;
    let mgf_hash = AlgorithmId::parse(&mut Reader::new(&mgf_hash_params), "MGF1 hash")?;
    if HashAlg::from_oid(&mgf_hash.oid)? != hash {
        return Err("RSASSA-PSS uses different hashes for the message and MGF1".into());
    }
    let salt = match r.read_optional(der::ctx_cons(2), "RSASSA-PSS saltLength")? {
        Some(t) => der::read_small_uint(&mut t.reader(), "RSASSA-PSS saltLength")?,
        None => 20,
    };
    if salt != hash.output_len() as u64 {
        return Err(format!(
            "RSASSA-PSS salt length {salt} differs from the hash length {}",
            hash.output_len()
        ));
    }
    Ok(hash)
}
