//! Keyless (Fulcio certificate) checks: the chain to a configured Fulcio CA at the signing time,
//! the code-signing usage, the embedded SCT from a configured CT log, and the signer identity
//! (SAN) and OIDC issuer (Fulcio extensions `1.3.6.1.4.1.57264.1.8`, or the deprecated `.1.1`).
//!
//! Identity and issuer patterns follow cosign: exact string equality, or a regular expression
//! that matches anywhere in the value unless anchored with `^…$` (Go's `MatchString`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use regex::Regex;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use sha2::{Digest as _, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::keys::PublicKey;
use super::trust_root::{SigstoreTrustRoot, sha256_fingerprint};
use crate::der;

const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
const OID_FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_FULCIO_OTHERNAME_SAN: &str = "1.3.6.1.4.1.57264.1.7";
/// id-kp-codeSigning, DER content of the OID.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

static SIG_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA512,
    webpki::aws_lc_rs::ECDSA_P521_SHA512,
    webpki::aws_lc_rs::ED25519,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// An exact value or a regular expression.
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Pattern(Regex),
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Pattern(r) => r.is_match(value),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Matcher::Exact(s) => format!("{s:?}"),
            Matcher::Pattern(r) => format!("/{}/", r.as_str()),
        }
    }
}

/// The keyless requirements of a trust policy.
#[derive(Clone, Debug)]
pub struct KeylessRequirements {
    pub identity: Matcher,
    pub issuer: Matcher,
    /// Require a valid embedded SCT from a configured CT log (Ratify's `ctLogVerify`, default true).
    pub ct_log_verify: bool,
}

/// A Fulcio certificate that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedCert {
    pub key: PublicKey,
    pub identity: String,
    pub issuer: String,
    /// `sha256:<hex>` of the leaf, the intermediates and the root, leaf first.
    pub fingerprints: Vec<String>,
    pub not_after: DateTime<Utc>,
    /// `sha256:<hex>` of the CT log key whose SCT verified, if checked.
    pub ct_log_fingerprint: Option<String>,
}

/// Checks `leaf_der` (with optional `extra_chain` intermediates from the signature) as a Fulcio
/// certificate valid at `at`.
pub(crate) fn verify_certificate(
    leaf_der: &[u8],
    extra_chain: &[Vec<u8>],
    root: &SigstoreTrustRoot,
    at: DateTime<Utc>,
    req: &KeylessRequirements,
) -> Result<VerifiedCert, String> {
    let (_, leaf) = X509Certificate::from_der(leaf_der)
        .map_err(|e| format!("the signing certificate is not valid X.509: {e}"))?;
    let key = PublicKey::from_spki_der(leaf.public_key().raw)
        .map_err(|e| format!("the signing certificate's key cannot be used: {e}"))?;
    if let Ok(Some(ku)) = leaf.key_usage()
        && !ku.value.digital_signature()
    {
        return Err("the signing certificate's key usage lacks digitalSignature".into());
    }
    // webpki applies its EKU rule to every certificate of the path, so it is told "codeSigning
    // if present" (CAs often have no EKU) and the leaf must name codeSigning itself.
    if !leaf
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|e| e.value.code_signing)
    {
        return Err("the signing certificate is not for code signing (no codeSigning EKU)".into());
    }

    let cas: Vec<_> = root
        .certificate_authorities
        .iter()
        .filter(|ca| ca.valid_for.contains(at))
        .collect();
    if cas.is_empty() {
        return Err(if root.certificate_authorities.is_empty() {
            "no Fulcio certificate authority is configured".to_owned()
        } else {
            format!("no configured Fulcio certificate authority was valid at {at}")
        });
    }
    let secs = u64::try_from(at.timestamp()).map_err(|_| "signing time before 1970")?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let leaf_cert = CertificateDer::from(leaf_der);
    let ee = webpki::EndEntityCert::try_from(&leaf_cert).map_err(|e| {
        format!("the signing certificate cannot be parsed for path validation: {e}")
    })?;
    let extra: Vec<CertificateDer<'_>> = extra_chain
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let mut last_err = String::new();
    for ca in cas {
        let anchors = [ca.anchor.clone()];
        let mut intermediates = ca.intermediates.clone();
        intermediates.extend(extra.iter().map(|c| c.clone().into_owned()));
        let path = match ee.verify_for_usage(
            SIG_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::required_if_present(EKU_CODE_SIGNING),
            None,
            None,
        ) {
            Ok(p) => p,
            Err(e) => {
                last_err = format!("{e:?}");
                continue;
            }
        };
        let mut fingerprints = vec![sha256_fingerprint(leaf_der)];
        fingerprints.extend(
            path.intermediate_certificates()
                .map(|c| sha256_fingerprint(c.der().as_ref())),
        );
        fingerprints.push(ca.root_fingerprint());
        let ct_log_fingerprint = if req.ct_log_verify {
            Some(verify_embedded_sct(
                leaf_der,
                &leaf,
                path.issuer_spki().as_ref(),
                root,
            )?)
        } else {
            None
        };
        let identities = san_identities(&leaf);
        let identity = identities
            .iter()
            .find(|i| req.identity.matches(i))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "the certificate identity {:?} does not match {}",
                    identities,
                    req.identity.describe()
                )
            })?;
        let issuer =
            oidc_issuer(&leaf).ok_or("the certificate has no Fulcio OIDC issuer extension")?;
        if !req.issuer.matches(&issuer) {
            return Err(format!(
                "the certificate OIDC issuer {issuer:?} does not match {}",
                req.issuer.describe()
            ));
        }
        return Ok(VerifiedCert {
            key,
            identity,
            issuer,
            fingerprints,
            not_after: DateTime::from_timestamp(leaf.validity().not_after.timestamp(), 0)
                .unwrap_or(at),
            ct_log_fingerprint,
        });
    }
    Err(format!(
        "the signing certificate does not chain to a configured Fulcio CA at {at}: {last_err}"
    ))
}

/// SAN values cosign matches identities against: e-mail, URI, Fulcio's username otherName.
fn san_identities(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::RFC822Name(s) | GeneralName::URI(s) => out.push((*s).to_owned()),
                GeneralName::OtherName(oid, value)
                    if oid.to_id_string() == OID_FULCIO_OTHERNAME_SAN =>
                {
                    if let Some(s) = der_utf8(value) {
                        out.push(s);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The OIDC issuer: the v2 extension (DER UTF8String), else the v1 extension (raw bytes).
fn oidc_issuer(cert: &X509Certificate<'_>) -> Option<String> {
    let mut v1 = None;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == OID_FULCIO_ISSUER_V2 {
            return der_utf8(ext.value);
        }
        if oid == OID_FULCIO_ISSUER_V1 {
            v1 = std::str::from_utf8(ext.value).ok().map(str::to_owned);
        }
    }
    v1
}

/// The string of a DER UTF8String, possibly wrapped in an explicit `[0]` (otherName value).
fn der_utf8(mut value: &[u8]) -> Option<String> {
    loop {
        let (tlv, _) = der::read_tlv(value).ok()?;
        match tlv.tag {
            0x0c | 0x16 | 0x13 => return std::str::from_utf8(tlv.value).ok().map(str::to_owned),
            0xa0 => value = tlv.value,
            _ => return None,
        }
    }
}

/// Verifies one embedded SCT against the configured CT logs (RFC 6962 §3.2, precertificate
/// entry). Returns the CT log key's fingerprint.
fn verify_embedded_sct(
    leaf_der: &[u8],
    leaf: &X509Certificate<'_>,
    issuer_spki: &[u8],
    root: &SigstoreTrustRoot,
) -> Result<String, String> {
    let scts = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SCT(list) => Some(list.clone()),
            _ => None,
        })
        .ok_or(
            "the certificate has no embedded SCT (ctLogVerify is on; set `ctLogVerify: false` to skip)",
        )?;
    if root.ctlogs.is_empty() {
        return Err(
            "no certificate transparency log key is configured to check the certificate's SCT"
                .into(),
        );
    }
    let tbs = der::tbs_without_extension(leaf_der, &der::oid_der(OID_SCT_LIST))
        .map_err(|e| format!("cannot rebuild the precertificate: {e}"))?;
    let issuer_key_hash = Sha256::digest(issuer_spki);
    let mut problems = Vec::new();
    for sct in &scts {
        let Some(log) = root.ctlog_key(sct.id.key_id) else {
            problems.push(format!(
                "SCT from unknown log {}",
                hex::encode(sct.id.key_id)
            ));
            continue;
        };
        let mut msg = Vec::with_capacity(tbs.len() + 64);
        msg.push(0); // v1
        msg.push(0); // certificate_timestamp
        msg.extend_from_slice(&sct.timestamp.to_be_bytes());
        msg.extend_from_slice(&[0, 1]); // precert_entry
        msg.extend_from_slice(&issuer_key_hash);
        let len = tbs.len() as u32;
        msg.extend_from_slice(&len.to_be_bytes()[1..]);
        msg.extend_from_slice(&tbs);
        msg.extend_from_slice(&(sct.extensions.0.len() as u16).to_be_bytes());
        msg.extend_from_slice(sct.extensions.0);
        if log.key.verify(&msg, sct.signature.data).is_some() {
            let ts = DateTime::from_timestamp_millis(sct.timestamp as i64);
            if ts.is_some_and(|t| !log.valid_for.contains(t)) {
                problems.push("SCT issued outside the CT log key's validity".into());
                continue;
            }
            return Ok(log.key.fingerprint().to_owned());
        }
        problems.push(format!(
            "SCT signature from log {} does not verify",
            hex::encode(sct.id.key_id)
        ));
    }
    Err(format!(
        "no embedded SCT verifies with a configured CT log key: {}",
        problems.join("; ")
    ))
}
