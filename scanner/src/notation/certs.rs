//! X.509 certificates as the Notary Project evaluates them: parsing (x509-parser), the certificate
//! requirements of the signature specification (basic constraints, key usage, extended key usage,
//! key sizes, no SHA-1) and validation of ordered chains (leaf first, self-signed root last).
//!
//! Only basic constraints, key usage and extended key usage are evaluated; every other extension
//! is ignored ("fail open") as the specification requires — which is why chain validation is done
//! here rather than by rustls-webpki (which rejects unknown critical extensions and ties validity
//! to one verification time, while Notation judges validity in the authentic-timestamp step).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::crypto::{self, AlgorithmId, Curve, PublicKeyInfo};
use super::names::{self, ParsedName};
use crate::der::{self, Reader};

pub(crate) const EKU_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
pub(crate) const EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
pub(crate) const EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
pub(crate) const EKU_EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
pub(crate) const EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
pub(crate) const EKU_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
pub(crate) const EKU_ANY: &str = "2.5.29.37.0";

/// Key usage bits as x509-parser numbers them (bit 0 = digitalSignature).
const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;
const KU_DATA_ENCIPHERMENT: u16 = 1 << 3;
const KU_KEY_AGREEMENT: u16 = 1 << 4;
const KU_KEY_CERT_SIGN: u16 = 1 << 5;
const KU_CRL_SIGN: u16 = 1 << 6;
const KU_ENCIPHER_ONLY: u16 = 1 << 7;
const KU_DECIPHER_ONLY: u16 = 1 << 8;

/// An extension value with its criticality.
#[derive(Clone, Debug)]
pub(crate) struct Ext<T> {
    pub critical: bool,
    pub value: T,
}

/// A parsed certificate owning its DER.
#[derive(Clone, Debug)]
pub(crate) struct Certificate {
    pub der: Vec<u8>,
    tbs: Range<usize>,
    sig_alg: AlgorithmId,
    signature: Vec<u8>,
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    pub subject: ParsedName,
    /// Go `pkix.Name.String()` of the subject (what Ratify reports as `SN`).
    pub subject_string: String,
    /// Go `pkix.Name.String()` of the issuer (what Ratify reports as `Issuer`).
    pub issuer_string: String,
    /// Serial number magnitude, big-endian.
    pub serial: Vec<u8>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key: PublicKeyInfo,
    pub key_usage: Option<Ext<u16>>,
    /// (cA, pathLenConstraint)
    pub basic_constraints: Option<Ext<(bool, Option<u32>)>>,
    pub extended_key_usage: Option<Ext<Vec<String>>>,
    pub subject_key_id: Option<Vec<u8>>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
}

fn ts(t: i64, what: &str) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(t, 0).ok_or_else(|| format!("{what} is out of range"))
}

impl Certificate {
    /// Parses one DER certificate (trailing data is rejected).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, String> {
        // Outer structure with our reader, to keep the exact to-be-signed bytes.
        let outer = der::parse_single(der_bytes, der::TAG_SEQUENCE, "certificate")?;
        let mut r = outer.reader();
        let tbs = r.read(der::TAG_SEQUENCE, "tbsCertificate")?;
        let sig_alg = AlgorithmId::parse(&mut r, "signatureAlgorithm")?;
        let sig_bits = r.read(0x03, "signatureValue")?;
        r.finish("certificate")?;
        let signature = match sig_bits.value.split_first() {
            Some((0, rest)) => rest.to_vec(),
            _ => return Err("signatureValue has unused bits".into()),
        };
        let tbs_start = tbs.raw.as_ptr() as usize - der_bytes.as_ptr() as usize;
        let tbs_range = tbs_start..tbs_start + tbs.raw.len();

        let (rest, cert) = X509Certificate::from_der(der_bytes)
            .map_err(|e| format!("malformed certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing data after the certificate".into());
        }
        let subject_raw = cert.subject().as_raw().to_vec();
        let issuer_raw = cert.issuer().as_raw().to_vec();
        let subject = names::parse_name(&subject_raw).map_err(|e| format!("subject: {e}"))?;
        let issuer = names::parse_name(&issuer_raw).map_err(|e| format!("issuer: {e}"))?;
        let key = parse_spki(cert.public_key().raw)?;

        let mut key_usage = None;
        let mut basic_constraints = None;
        let mut extended_key_usage = None;
        let mut subject_key_id = None;
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            let critical = ext.critical;
            match ext.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => {
                    key_usage = Some(Ext {
                        critical,
                        value: ku.flags,
                    })
                }
                ParsedExtension::BasicConstraints(bc) => {
                    basic_constraints = Some(Ext {
                        critical,
                        value: (bc.ca, bc.path_len_constraint),
                    })
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let mut oids = Vec::new();
                    let flags = [
                        (eku.any, EKU_ANY),
                        (eku.server_auth, EKU_SERVER_AUTH),
                        (eku.client_auth, EKU_CLIENT_AUTH),
                        (eku.code_signing, EKU_CODE_SIGNING),
                        (eku.email_protection, EKU_EMAIL_PROTECTION),
                        (eku.time_stamping, EKU_TIME_STAMPING),
                        (eku.ocsp_signing, EKU_OCSP_SIGNING),
                    ];
                    for (set, o) in flags {
                        if set {
                            oids.push(o.to_string());
                        }
                    }
                    oids.extend(eku.other.iter().map(|o| o.to_id_string()));
                    extended_key_usage = Some(Ext {
                        critical,
                        value: oids,
                    })
                }
                ParsedExtension::SubjectKeyIdentifier(kid) => subject_key_id = Some(kid.0.to_vec()),
                ParsedExtension::ParseError { error } => {
                    // Only the evaluated extensions must parse; others fail open.
                    if matches!(oid.as_str(), "2.5.29.15" | "2.5.29.19" | "2.5.29.37") {
                        return Err(format!("malformed extension {oid}: {error}"));
                    }
                }
                _ => {}
            }
        }

        let validity = cert.validity();
        Ok(Self {
            der: der_bytes.to_vec(),
            tbs: tbs_range,
            sig_alg,
            signature,
            subject_string: subject.go_string(),
            issuer_string: issuer.go_string(),
            subject_raw,
            issuer_raw,
            subject,
            serial: der::integer_magnitude(cert.raw_serial()).to_vec(),
            not_before: ts(validity.not_before.timestamp(), "notBefore")?,
            not_after: ts(validity.not_after.timestamp(), "notAfter")?,
            key,
            key_usage,
            basic_constraints,
            extended_key_usage,
            subject_key_id,
            sha256: crypto::sha256_hex(der_bytes),
        })
    }

    /// Verifies that `issuer`'s key signed this certificate.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), String> {
        crypto::verify_with_algorithm_id(
            &self.sig_alg,
            None,
            &issuer.key,
            &self.der[self.tbs.clone()],
            &self.signature,
        )
    }

    /// Subject and issuer names are byte-identical and the certificate verifies with its own key.
    pub fn is_self_signed(&self) -> bool {
        self.subject_raw == self.issuer_raw && self.verify_signed_by(self).is_ok()
    }

    /// `notBefore <= t <= notAfter`.
    pub fn valid_at(&self, t: DateTime<Utc>) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    fn has_eku(&self, oid: &str) -> bool {
        self.extended_key_usage
            .as_ref()
            .is_some_and(|e| e.value.iter().any(|o| o == oid))
    }
}

impl AsRef<Certificate> for Certificate {
    fn as_ref(&self) -> &Certificate {
        self
    }
}

/// Parsed certificates by SHA-256 of their DER: a signer's chain is parsed once per process.
type ParseCache = Mutex<HashMap<String, Arc<Certificate>>>;
const PARSE_CACHE_CAPACITY: usize = 4096;

/// [`Certificate::from_der`], memoized (successes only).
pub(crate) fn parse_cached(der_bytes: &[u8]) -> Result<Arc<Certificate>, String> {
    static CACHE: OnceLock<ParseCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let fp = crypto::sha256_hex(der_bytes);
    if let Ok(c) = cache.lock()
        && let Some(cert) = c.get(&fp)
    {
        return Ok(cert.clone());
    }
    let cert = Arc::new(Certificate::from_der(der_bytes)?);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= PARSE_CACHE_CAPACITY {
            c.clear();
        }
        c.insert(fp, cert.clone());
    }
    Ok(cert)
}

/// SubjectPublicKeyInfo → key in aws-lc-rs form.
fn parse_spki(raw: &[u8]) -> Result<PublicKeyInfo, String> {
    let seq = der::parse_single(raw, der::TAG_SEQUENCE, "subjectPublicKeyInfo")?;
    let mut r = seq.reader();
    let alg = AlgorithmId::parse(&mut r, "subjectPublicKeyInfo algorithm")?;
    let bits = r.read(0x03, "subjectPublicKey")?;
    r.finish("subjectPublicKeyInfo")?;
    let key = match bits.value.split_first() {
        Some((0, rest)) => rest,
        _ => return Err("subjectPublicKey has unused bits".into()),
    };
    match alg.oid.as_str() {
        "1.2.840.113549.1.1.1" => {
            let rsa = der::parse_single(key, der::TAG_SEQUENCE, "RSAPublicKey")?;
            let mut rr = rsa.reader();
            let n = rr.read(der::TAG_INTEGER, "RSA modulus")?;
            rr.read(der::TAG_INTEGER, "RSA public exponent")?;
            rr.finish("RSAPublicKey")?;
            let modulus = der::integer_magnitude(n.value);
            Ok(PublicKeyInfo::Rsa {
                bits: modulus.len() * 8,
                der: key.to_vec(),
            })
        }
        "1.2.840.10045.2.1" => {
            let params = alg.params.ok_or("EC public key without curve parameters")?;
            let curve_oid = der::read_oid(&mut Reader::new(&params), "EC curve")?;
            let curve = match curve_oid.as_str() {
                "1.2.840.10045.3.1.7" => Curve::P256,
                "1.3.132.0.34" => Curve::P384,
                "1.3.132.0.35" => Curve::P521,
                other => {
                    return Ok(PublicKeyInfo::Other {
                        algorithm: format!("EC curve {other}"),
                    });
                }
            };
            Ok(PublicKeyInfo::Ec {
                curve,
                point: key.to_vec(),
            })
        }
        other => Ok(PublicKeyInfo::Other {
            algorithm: other.to_string(),
        }),
    }
}

/// What a chain is validated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    CodeSigning,
    Timestamping,
}

/// Results of [`validate_chain`] by purpose and SHA-256 over the chain's DER. Validation is a
/// pure function of those bytes (no time, no trust store), so a signer's chain is checked once
/// per process instead of once per signature; bounded, cleared when full.
type ChainCache = Mutex<HashMap<(Purpose, [u8; 32]), Result<(), String>>>;
const CHAIN_CACHE_CAPACITY: usize = 4096;

fn chain_cache() -> &'static ChainCache {
    static CACHE: OnceLock<ChainCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// [`validate_chain`], memoized.
pub(crate) fn validate_chain_cached<C: AsRef<Certificate>>(
    chain: &[C],
    purpose: Purpose,
) -> Result<(), String> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for c in chain {
        ctx.update(c.as_ref().sha256.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    if let Ok(cache) = chain_cache().lock()
        && let Some(result) = cache.get(&(purpose, key))
    {
        return result.clone();
    }
    let result = validate_chain(chain, purpose);
    if let Ok(mut cache) = chain_cache().lock() {
        if cache.len() >= CHAIN_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert((purpose, key), result.clone());
    }
    result
}

/// Validates an ordered chain (leaf first, root last) against the Notary Project certificate
/// requirements: issuance, self-signed root, no self-signed leaf/intermediate, leaf and CA rules.
pub(crate) fn validate_chain<C: AsRef<Certificate>>(
    chain: &[C],
    purpose: Purpose,
) -> Result<(), String> {
    let chain: Vec<&Certificate> = chain.iter().map(AsRef::as_ref).collect();
    let Some(&leaf) = chain.first() else {
        return Err("certificate chain is empty".into());
    };
    if chain.len() == 1 {
        if leaf.subject_raw != leaf.issuer_raw {
            return Err(format!(
                "the chain has a single certificate {:?} that is not self-issued (issuer {:?}); the chain must end with a self-signed root",
                leaf.subject_string, leaf.issuer_string
            ));
        }
        leaf.verify_signed_by(leaf).map_err(|e| {
            format!(
                "invalid self-signed certificate {:?}: {e}",
                leaf.subject_string
            )
        })?;
        return validate_leaf(leaf, purpose)
            .map_err(|e| format!("invalid self-signed certificate: {e}"));
    }
    for (i, cert) in chain.iter().enumerate() {
        if i == chain.len() - 1 {
            if cert.subject_raw != cert.issuer_raw {
                return Err(format!(
                    "root certificate {:?} is not self-signed (issuer {:?}); the certificate chain must end with a self-signed root certificate",
                    cert.subject_string, cert.issuer_string
                ));
            }
            cert.verify_signed_by(cert).map_err(|e| {
                format!(
                    "root certificate {:?} is not validly self-signed: {e}",
                    cert.subject_string
                )
            })?;
        } else {
            if cert.is_self_signed() {
                let role = if i == 0 { "leaf" } else { "intermediate" };
                return Err(format!(
                    "{role} certificate {:?} is self-signed; only the last certificate of the chain may be",
                    cert.subject_string
                ));
            }
            let parent = chain[i + 1];
            if cert.issuer_raw != parent.subject_raw {
                return Err(format!(
                    "certificate {:?} is not issued by {:?} (issuer name {:?}); the chain must be ordered leaf to root",
                    cert.subject_string, parent.subject_string, cert.issuer_string
                ));
            }
            cert.verify_signed_by(parent).map_err(|e| {
                format!(
                    "certificate {:?} is not issued by {:?}: {e}",
                    cert.subject_string, parent.subject_string
                )
            })?;
        }
        if i == 0 {
            validate_leaf(cert, purpose)?;
        } else {
            validate_ca(cert, (i - 1) as u32, purpose)?;
        }
    }
    Ok(())
}

fn validate_ca(cert: &Certificate, expected_path_len: u32, purpose: Purpose) -> Result<(), String> {
    let subject = &cert.subject_string;
    match &cert.basic_constraints {
        Some(Ext {
            critical: true,
            value: (true, path_len),
        }) => {
            if let Some(max) = path_len
                && *max < expected_path_len
            {
                return Err(format!(
                    "certificate {subject:?}: path length constraint {max} is exceeded by {expected_path_len} intermediate CA certificate(s) below it"
                ));
            }
        }
        _ => {
            return Err(format!(
                "certificate {subject:?}: CA certificates need a basic constraints extension that is present, critical, and has cA set to true"
            ));
        }
    }
    match &cert.key_usage {
        None => Err(format!(
            "certificate {subject:?}: the key usage extension must be present on CA certificates"
        )),
        Some(ku) if purpose == Purpose::CodeSigning && !ku.critical => Err(format!(
            "certificate {subject:?}: the key usage extension must be marked critical"
        )),
        Some(ku) if ku.value & KU_KEY_CERT_SIGN == 0 => Err(format!(
            "certificate {subject:?}: key usage must have the keyCertSign bit set on CA certificates"
        )),
        Some(_) => Ok(()),
    }
}

fn validate_leaf(cert: &Certificate, purpose: Purpose) -> Result<(), String> {
    let subject = &cert.subject_string;
    if let Some(Ext {
        value: (true, _), ..
    }) = &cert.basic_constraints
    {
        return Err(format!(
            "certificate {subject:?}: the signing certificate has basic constraints cA=true; a {} certificate must not be a CA",
            purpose_name(purpose)
        ));
    }
    let ku = cert.key_usage.as_ref().ok_or_else(|| {
        format!("certificate {subject:?}: the key usage extension must be present")
    })?;
    if purpose == Purpose::CodeSigning && !ku.critical {
        return Err(format!(
            "certificate {subject:?}: the key usage extension must be marked critical"
        ));
    }
    if ku.value & KU_DIGITAL_SIGNATURE == 0 {
        return Err(format!(
            "certificate {subject:?}: key usage must have the digitalSignature bit set"
        ));
    }
    let forbidden = [
        (KU_KEY_ENCIPHERMENT, "keyEncipherment"),
        (KU_DATA_ENCIPHERMENT, "dataEncipherment"),
        (KU_KEY_AGREEMENT, "keyAgreement"),
        (KU_KEY_CERT_SIGN, "keyCertSign"),
        (KU_CRL_SIGN, "cRLSign"),
        (KU_ENCIPHER_ONLY, "encipherOnly"),
        (KU_DECIPHER_ONLY, "decipherOnly"),
    ];
    let bad: Vec<&str> = forbidden
        .iter()
        .filter(|(bit, _)| ku.value & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "certificate {subject:?}: key usage must be digitalSignature only, but also has {}",
            bad.join(", ")
        ));
    }
    match purpose {
        Purpose::CodeSigning => {
            if let Some(eku) = &cert.extended_key_usage {
                let excluded = [
                    (EKU_ANY, "anyExtendedKeyUsage"),
                    (EKU_SERVER_AUTH, "serverAuth"),
                    (EKU_CLIENT_AUTH, "clientAuth"),
                    (EKU_EMAIL_PROTECTION, "emailProtection"),
                    (EKU_TIME_STAMPING, "timeStamping"),
                    (EKU_OCSP_SIGNING, "OCSPSigning"),
                ];
                for (oid, name) in excluded {
                    if eku.value.iter().any(|o| o == oid) {
                        return Err(format!(
                            "certificate {subject:?}: extended key usage must not contain {name} for code signing (codeSigning is allowed)"
                        ));
                    }
                }
            }
        }
        Purpose::Timestamping => {
            let only_ts = cert
                .extended_key_usage
                .as_ref()
                .is_some_and(|e| e.value.len() == 1 && e.value[0] == EKU_TIME_STAMPING);
            if !only_ts {
                return Err(format!(
                    "timestamp signing certificate {subject:?} must have timeStamping as its only extended key usage"
                ));
            }
            if !cert.extended_key_usage.as_ref().is_some_and(|e| e.critical) {
                return Err(format!(
                    "timestamp signing certificate {subject:?} must have its extended key usage extension marked critical"
                ));
            }
        }
    }
    match &cert.key {
        PublicKeyInfo::Rsa {
            bits: 2048 | 3072 | 4096,
            ..
        } => Ok(()),
        PublicKeyInfo::Rsa { bits, .. } => Err(format!(
            "certificate {subject:?}: RSA key size {bits} bits is not supported (2048, 3072 or 4096 are)"
        )),
        PublicKeyInfo::Ec { .. } => Ok(()),
        PublicKeyInfo::Other { algorithm } => Err(format!(
            "certificate {subject:?}: unsupported public key algorithm {algorithm}"
        )),
    }
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::CodeSigning => "code signing",
        Purpose::Timestamping => "timestamping",
    }
}

/// For TSA chains: every certificate that carries an EKU extension must allow timeStamping (or
/// any usage), as Go's `x509.Verify` with `ExtKeyUsageTimeStamping` requires.
pub(crate) fn chain_allows_timestamping(chain: &[Certificate]) -> Result<(), String> {
    for cert in chain {
        if cert.extended_key_usage.is_some()
            && !cert.has_eku(EKU_TIME_STAMPING)
            && !cert.has_eku(EKU_ANY)
        {
            return Err(format!(
                "certificate {:?} in the TSA chain has an extended key usage that does not allow timestamping",
                cert.subject_string
            ));
        }
    }
    Ok(())
}
