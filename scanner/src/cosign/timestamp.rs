//! RFC 3161 timestamps attached to Cosign signatures (the `dev.sigstore.cosign/rfc3161timestamp`
//! annotation, or `timestampVerificationData` of a bundle): the token's message imprint must be
//! the hash of the raw signature bytes, its CMS signature must verify with a certificate that
//! chains (EKU timeStamping) to a configured timestamp authority at the token's time.
//!
//! Token parsing, the imprint check and the signed-attribute binding are shared with Notation
//! ([`crate::rfc3161`]); the trust decision against the Sigstore trust root is made here.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};

use super::keys::PublicKey;
use super::trust_root::{SigstoreTrustRoot, sha256_fingerprint};
use crate::rfc3161::{self, SignerInfo, Token};

/// id-kp-timeStamping, DER content of the OID.
const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

static SIG_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
    webpki::aws_lc_rs::ECDSA_P521_SHA512,
    webpki::aws_lc_rs::ED25519,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Why a timestamp was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimestampError {
    /// No timestamp authority is configured, so the timestamp cannot be judged.
    NoAuthority,
    Invalid(String),
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::NoAuthority => f.write_str(
                "an RFC 3161 timestamp is attached but no timestamp authority is configured to check it",
            ),
            TimestampError::Invalid(why) => write!(f, "the RFC 3161 timestamp is invalid: {why}"),
        }
    }
}

/// A timestamp that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedTimestamp {
    pub gen_time: DateTime<Utc>,
    /// TSA signing certificate and root.
    pub fingerprints: Vec<String>,
}

/// Cosign's annotation: `{"SignedRFC3161Timestamp": "<base64 DER TimeStampResp>"}`.
pub(crate) fn parse_cosign_annotation(json: &str) -> Result<Vec<u8>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let b64 = v
        .get("SignedRFC3161Timestamp")
        .and_then(serde_json::Value::as_str)
        .ok_or("no `SignedRFC3161Timestamp`")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("`SignedRFC3161Timestamp` is not base64: {e}"))
}

fn invalid(s: impl Into<String>) -> TimestampError {
    TimestampError::Invalid(s.into())
}

/// Verifies a DER `TimeStampResp` (or bare `TimeStampToken`) over `signature`.
pub(crate) fn verify(
    der_bytes: &[u8],
    signature: &[u8],
    root: &SigstoreTrustRoot,
) -> Result<VerifiedTimestamp, TimestampError> {
    if root.timestamp_authorities.is_empty() {
        return Err(TimestampError::NoAuthority);
    }
    let token_raw = rfc3161::token_from_response(der_bytes).map_err(invalid)?;
    let token = rfc3161::parse_token(token_raw).map_err(invalid)?;
    if !token.imprint_matches(signature).map_err(invalid)? {
        return Err(invalid(
            "its message imprint is not the hash of this signature",
        ));
    }
    // Whole seconds: the trust root's validity windows and webpki work at that precision.
    let gen_time = DateTime::from_timestamp(token.tst.gen_time.timestamp(), 0)
        .ok_or(invalid("genTime is out of range"))?;

    let mut problems = Vec::new();
    for si in &token.signer_infos {
        match verify_signer(&token, si, root, gen_time) {
            Ok(fps) => {
                return Ok(VerifiedTimestamp {
                    gen_time,
                    fingerprints: fps,
                });
            }
            Err(e) => problems.push(e),
        }
    }
    Err(invalid(if problems.is_empty() {
        "the token has no SignerInfo".to_owned()
    } else {
        problems.join("; ")
    }))
}

fn verify_signer(
    token: &Token<'_>,
    si: &SignerInfo<'_>,
    root: &SigstoreTrustRoot,
    gen_time: DateTime<Utc>,
) -> Result<Vec<String>, String> {
    let signed = si
        .signed_attrs_der
        .as_deref()
        .ok_or("SignerInfo has no signed attributes")?;
    token
        .check_signed_attrs(si)
        .map_err(|e| format!("the signed attributes do not bind the TSTInfo: {e}"))?;
    let signature = si.signature;

    let mut candidates: Vec<&[u8]> = token.certificates.clone();
    for tsa in &root.timestamp_authorities {
        candidates.extend(tsa.chain.iter().map(Vec::as_slice));
    }
    let signer = candidates
        .into_iter()
        .find(|c| {
            x509_parser::parse_x509_certificate(c)
                .ok()
                .and_then(|(_, cert)| PublicKey::from_spki_der(cert.public_key().raw).ok())
                .is_some_and(|k| k.verify(signed, signature).is_some())
        })
        .ok_or("no certificate in the token or the configured TSA chains verifies its signature")?;

    // RFC 3161 §2.3: the TSA certificate has exactly the timeStamping EKU. webpki applies its EKU
    // rule to the whole path, so it checks "if present" and the leaf is checked here.
    let is_tsa = x509_parser::parse_x509_certificate(signer)
        .ok()
        .and_then(|(_, c)| {
            c.extended_key_usage()
                .ok()
                .flatten()
                .map(|e| e.value.time_stamping)
        })
        .unwrap_or(false);
    if !is_tsa {
        return Err("the certificate that signed the timestamp is not a TSA certificate (no timeStamping EKU)".into());
    }
    let secs = u64::try_from(gen_time.timestamp()).map_err(|_| "genTime before 1970")?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let signer_der = CertificateDer::from(signer);
    let ee = webpki::EndEntityCert::try_from(&signer_der)
        .map_err(|e| format!("the TSA certificate cannot be parsed: {e}"))?;
    let extra: Vec<CertificateDer<'static>> = token
        .certificates
        .iter()
        .map(|c| CertificateDer::from(c.to_vec()))
        .collect();
    let mut last = String::from("no timestamp authority was valid at the token's time");
    for tsa in root
        .timestamp_authorities
        .iter()
        .filter(|t| t.valid_for.contains(gen_time))
    {
        let anchors = [tsa.anchor.clone()];
        let mut intermediates = tsa.intermediates.clone();
        intermediates.extend(extra.iter().cloned());
        match ee.verify_for_usage(
            SIG_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::required_if_present(EKU_TIME_STAMPING),
            None,
            None,
        ) {
            Ok(_) => return Ok(vec![sha256_fingerprint(signer), tsa.root_fingerprint()]),
            Err(e) => last = format!("{e:?}"),
        }
    }
    Err(format!(
        "the TSA certificate does not chain to a configured timestamp authority at {gen_time}: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_and_missing_authority() {
        assert_eq!(
            parse_cosign_annotation(r#"{"SignedRFC3161Timestamp":"AAEC"}"#).unwrap(),
            vec![0, 1, 2]
        );
        assert!(parse_cosign_annotation("{}").is_err());
        assert_eq!(
            verify(&[0x30, 0x00], b"sig", &SigstoreTrustRoot::new()).unwrap_err(),
            TimestampError::NoAuthority
        );
    }
}
