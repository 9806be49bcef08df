//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`): CMS SignedData
//! parsing, `TSTInfo`, the signer's signature over its signed attributes, the ESS
//! signing-certificate-v2 binding, and the TSA chain to a `tsa` trust store.
//!
//! TSA revocation (OCSP/CRL) is not checked; the verification workflow reports that.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::certs::{self, Certificate, Purpose};
use super::crypto::{HashAlg, verify_with_algorithm_id};
use crate::der::{self, AlgorithmId};
use crate::rfc3161::{self, OID_DATA, SignerId, SignerInfo, Token};
const OID_ATTR_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_ATTR_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
/// ETSI baseline time-stamp policy (RFC 3628): implies an accuracy of one second.
const OID_BASELINE_TIMESTAMP_POLICY: &str = "0.4.0.2023.1.1";

/// A verified timestamp.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedTimestamp {
    pub gen_time: DateTime<Utc>,
    pub accuracy: Duration,
    /// TSA chain, signing certificate first, trust anchor last.
    pub chain: Vec<Certificate>,
    /// `tsa:<name>` of the store holding the anchor.
    pub anchor_store: String,
}

impl VerifiedTimestamp {
    pub fn lower(&self) -> DateTime<Utc> {
        self.gen_time - self.accuracy
    }
    pub fn upper(&self) -> DateTime<Utc> {
        self.gen_time + self.accuracy
    }
}

/// A certificate of a `tsa` trust store.
pub(crate) struct TsaAnchor {
    pub store: String,
    pub cert: Arc<Certificate>,
}

/// A parsed token with its certificates in Notation's form.
struct Parsed<'a> {
    token: Token<'a>,
    certificates: Vec<Certificate>,
}

/// Verifies a timestamp token over `signature` (the envelope's raw signature bytes) against the
/// `tsa` anchors. Timestamp-vs-signing-chain bounds are checked by the caller.
pub(crate) fn verify(
    token_der: &[u8],
    signature: &[u8],
    anchors: &[TsaAnchor],
) -> Result<VerifiedTimestamp, String> {
    let parse_failed = |e: String| format!("failed to parse the timestamp countersignature: {e}");
    let token = rfc3161::parse_token(token_der).map_err(parse_failed)?;
    let certificates = token
        .certificates
        .iter()
        .map(|c| {
            Certificate::from_der(c)
                .map_err(|e| parse_failed(format!("certificate in the timestamp token: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let token = Parsed {
        token,
        certificates,
    };
    let tst = &token.token.tst;

    // The timestamp must cover exactly the envelope signature.
    if !token
        .token
        .imprint_matches(signature)
        .map_err(|e| format!("timestamp message imprint: {e}"))?
    {
        return Err(
            "the timestamp's message imprint does not match the envelope signature (mismatched message)"
                .into(),
        );
    }
    let accuracy = match tst.accuracy {
        Some(a) if a > Duration::zero() => a,
        _ if tst.policy == OID_BASELINE_TIMESTAMP_POLICY => Duration::seconds(1),
        Some(a) => a,
        None => Duration::zero(),
    };

    if anchors.is_empty() {
        return Err("no trusted TSA certificate found in the tsa trust stores".into());
    }
    if token.token.signer_infos.is_empty() {
        return Err("the timestamp token has no SignerInfo".into());
    }
    let mut last_err = String::new();
    for si in &token.token.signer_infos {
        match verify_signer(&token, si, anchors) {
            Ok((chain, anchor_store)) => {
                return Ok(VerifiedTimestamp {
                    gen_time: tst.gen_time,
                    accuracy,
                    chain,
                    anchor_store,
                });
            }
            Err(e) => last_err = e,
        }
    }
    Err(format!(
        "failed to verify the timestamp countersignature: {last_err}"
    ))
}

fn verify_signer(
    token: &Parsed<'_>,
    si: &SignerInfo<'_>,
    anchors: &[TsaAnchor],
) -> Result<(Vec<Certificate>, String), String> {
    let signing_cert = signing_certificate(token, si)?;

    // TSA chain to a tsa trust store, valid at genTime.
    let (chain, anchor_store) = build_chain(signing_cert, &token.certificates, anchors)?;
    let at = token.token.tst.gen_time;
    for c in &chain {
        if !c.valid_at(at) {
            return Err(format!(
                "TSA certificate {:?} was not valid at the timestamp time {} (valid {} to {})",
                c.subject_string,
                at.to_rfc3339(),
                c.not_before.to_rfc3339(),
                c.not_after.to_rfc3339()
            ));
        }
    }
    certs::chain_allows_timestamping(&chain)?;

    // Signer signature over the signed attributes.
    let digest = HashAlg::from_oid(&si.digest_alg.oid)
        .map_err(|e| format!("SignerInfo digest algorithm: {e}"))?;
    let signed_attrs = si.signed_attrs_der.as_deref().ok_or_else(|| {
        if token.token.econtent_type == OID_DATA {
            "signed attributes are required".to_string()
        } else {
            "missing signed attributes".to_string()
        }
    })?;
    verify_with_algorithm_id(
        &si.signature_alg,
        Some(digest),
        &signing_cert.key,
        signed_attrs,
        si.signature,
    )
    .map_err(|e| format!("the TSA signature over the signed attributes is invalid: {e}"))?;

    token.token.check_signed_attrs(si)?;
    if let Some(st) = si.attribute(OID_ATTR_SIGNING_TIME) {
        let v = st.values.first().ok_or("empty signing-time attribute")?;
        let t = match v.tag {
            der::TAG_UTC_TIME => der::parse_utc_time(v.value)?,
            der::TAG_GENERALIZED_TIME => der::parse_generalized_time(v.value)?,
            _ => return Err("invalid signing-time attribute".into()),
        };
        if chain.iter().any(|c| !c.valid_at(t)) {
            return Err(format!(
                "signing time {} is outside the TSA certificate chain's validity period",
                t.to_rfc3339()
            ));
        }
    }
    certs::validate_chain(&chain, Purpose::Timestamping)
        .map_err(|e| format!("invalid timestamping certificate chain: {e}"))?;
    Ok((chain, anchor_store))
}

/// The TSA certificate bound by the ESS signing-certificate-v2 attribute (RFC 5816).
fn signing_certificate<'t>(
    token: &'t Parsed<'_>,
    si: &SignerInfo<'_>,
) -> Result<&'t Certificate, String> {
    let attr = si
        .attribute(OID_ATTR_SIGNING_CERTIFICATE_V2)
        .ok_or("the signing-certificate-v2 signed attribute is missing")?;
    let value = attr
        .values
        .first()
        .ok_or("empty signing-certificate-v2 attribute")?;
    if value.tag != der::TAG_SEQUENCE {
        return Err("malformed signing-certificate-v2 attribute".into());
    }
    let mut r = value.reader();
    let certs_seq = r.read(der::TAG_SEQUENCE, "SigningCertificateV2 certs")?;
    let mut cr = certs_seq.reader();
    let first = cr
        .read(der::TAG_SEQUENCE, "ESSCertIDv2")
        .map_err(|_| "signing-certificate-v2 does not contain any certificate".to_string())?;
    let mut er = first.reader();
    let hash = if er.peek_tag() == Some(der::TAG_SEQUENCE) {
        let alg = AlgorithmId::parse(&mut er, "ESSCertIDv2 hashAlgorithm")?;
        HashAlg::from_oid(&alg.oid).map_err(|e| format!("signing-certificate-v2: {e}"))?
    } else {
        HashAlg::Sha256
    };
    let cert_hash = er
        .read(der::TAG_OCTET_STRING, "ESSCertIDv2 certHash")?
        .value;
    let issuer_serial = er.read_optional(der::TAG_SEQUENCE, "ESSCertIDv2 issuerSerial")?;

    let candidate = match issuer_serial {
        Some(is) => {
            let mut ir = is.reader();
            let general_names = ir.read(der::TAG_SEQUENCE, "IssuerSerial issuer")?;
            let serial = ir.read(der::TAG_INTEGER, "IssuerSerial serialNumber")?;
            let mut gr = general_names.reader();
            let dir_name = gr
                .read(der::ctx_cons(4), "IssuerSerial directoryName")
                .map_err(|_| "issuer name is missing in IssuerSerial".to_string())?;
            let name = dir_name.value;
            let serial = der::integer_magnitude(serial.value);
            token
                .certificates
                .iter()
                .find(|c| c.issuer_raw == name && c.serial == serial)
        }
        None => find_by_sid(token, &si.sid),
    }
    .ok_or("signing certificate not found in the timestamp token")?;
    if hash.digest(&candidate.der) != cert_hash {
        return Err(
            "signing certificate hash does not match the certHash in signing-certificate-v2".into(),
        );
    }
    // The unsigned sid must name the same certificate.
    if let Some(by_sid) = find_by_sid(token, &si.sid)
        && by_sid.der != candidate.der
    {
        return Err(
            "the SignerInfo identifier and signing-certificate-v2 name different certificates"
                .into(),
        );
    }
    Ok(candidate)
}

fn find_by_sid<'t>(token: &'t Parsed<'_>, sid: &SignerId) -> Option<&'t Certificate> {
    token.certificates.iter().find(|c| match sid {
        SignerId::IssuerSerial { issuer, serial } => &c.issuer_raw == issuer && &c.serial == serial,
        SignerId::SubjectKeyId(kid) => c.subject_key_id.as_ref() == Some(kid),
    })
}

/// Builds signing cert → … → anchor using the token's certificates as intermediates.
fn build_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[TsaAnchor],
) -> Result<(Vec<Certificate>, String), String> {
    fn extend(
        path: &mut Vec<Certificate>,
        intermediates: &[Certificate],
        anchors: &[TsaAnchor],
    ) -> Option<String> {
        let cur = path.last()?.clone();
        if let Some(a) = anchors.iter().find(|a| a.cert.der == cur.der) {
            return Some(a.store.clone());
        }
        if path.len() > 8 {
            return None;
        }
        for a in anchors {
            if a.cert.subject_raw == cur.issuer_raw && cur.verify_signed_by(&a.cert).is_ok() {
                path.push((*a.cert).clone());
                return Some(a.store.clone());
            }
        }
        for i in intermediates {
            if i.subject_raw == cur.issuer_raw
                && !path.iter().any(|p| p.der == i.der)
                && cur.verify_signed_by(i).is_ok()
            {
                path.push(i.clone());
                if let Some(store) = extend(path, intermediates, anchors) {
                    return Some(store);
                }
                path.pop();
            }
        }
        None
    }
    let mut path = vec![leaf.clone()];
    match extend(&mut path, intermediates, anchors) {
        Some(store) => Ok((path, store)),
        None => Err(format!(
            "the TSA certificate chain of {:?} does not lead to a trusted certificate in the tsa trust stores ({})",
            leaf.subject_string,
            anchors
                .iter()
                .map(|a| a.store.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
