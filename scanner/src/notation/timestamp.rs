//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`): CMS SignedData
//! parsing, `TSTInfo`, the signer's signature over its signed attributes, the ESS
//! signing-certificate-v2 binding, and the TSA chain to a `tsa` trust store.
//!
//! TSA revocation (OCSP/CRL) is not checked; the verification workflow reports that.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::certs::{self, Certificate, Purpose};
use super::crypto::{AlgorithmId, HashAlg, verify_with_algorithm_id};
use super::der::{self, Reader, Tlv};

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_ATTR_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_ATTR_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
/// ETSI baseline time-stamp policy (RFC 3628): implies an accuracy of one second.
const OID_BASELINE_TIMESTAMP_POLICY: &str = "0.4.0.2023.1.1";

/// How a SignerInfo names its certificate.
#[derive(Debug)]
enum SignerId {
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    SubjectKeyId(Vec<u8>),
}

#[derive(Debug)]
struct Attribute<'a> {
    oid: String,
    values: Vec<Tlv<'a>>,
}

#[derive(Debug)]
struct SignerInfo<'a> {
    sid: SignerId,
    digest_alg: AlgorithmId,
    /// Signed attributes re-tagged as `SET OF` (what the signature covers).
    signed_attrs_der: Option<Vec<u8>>,
    signed_attrs: Vec<Attribute<'a>>,
    signature_alg: AlgorithmId,
    signature: &'a [u8],
}

/// `TSTInfo` fields Notation uses.
#[derive(Debug, Clone)]
pub(crate) struct TstInfo {
    pub policy: String,
    pub imprint_hash: String,
    pub hashed_message: Vec<u8>,
    pub gen_time: DateTime<Utc>,
    pub accuracy: Option<Duration>,
}

/// A parsed timestamp token (not yet verified).
struct Token<'a> {
    econtent: &'a [u8],
    econtent_type: String,
    certificates: Vec<Certificate>,
    signer_infos: Vec<SignerInfo<'a>>,
    tst: TstInfo,
}

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

fn parse_attributes<'a>(set_content: &'a [u8]) -> Result<Vec<Attribute<'a>>, String> {
    let mut out = Vec::new();
    let mut r = Reader::new(set_content);
    while !r.is_empty() {
        let attr = r.read(der::TAG_SEQUENCE, "attribute")?;
        let mut ar = attr.reader();
        let oid = der::read_oid(&mut ar, "attribute type")?;
        let set = ar.read(der::TAG_SET, "attribute values")?;
        ar.finish("attribute")?;
        let mut values = Vec::new();
        let mut vr = set.reader();
        while !vr.is_empty() {
            values.push(vr.read_any("attribute value")?);
        }
        out.push(Attribute { oid, values });
    }
    Ok(out)
}

fn parse_signer_info<'a>(tlv: Tlv<'a>) -> Result<SignerInfo<'a>, String> {
    let mut r = tlv.reader();
    let version = der::read_small_uint(&mut r, "SignerInfo version")?;
    let sid = match r.peek_tag() {
        Some(der::TAG_SEQUENCE) => {
            let ias = r.read(der::TAG_SEQUENCE, "issuerAndSerialNumber")?;
            let mut ir = ias.reader();
            let issuer = ir.read(der::TAG_SEQUENCE, "issuer")?;
            let serial = ir.read(der::TAG_INTEGER, "serialNumber")?;
            ir.finish("issuerAndSerialNumber")?;
            SignerId::IssuerSerial {
                issuer: issuer.raw.to_vec(),
                serial: der::integer_magnitude(serial.value).to_vec(),
            }
        }
        Some(t) if t == der::ctx_prim(0) => {
            SignerId::SubjectKeyId(r.read(t, "subjectKeyIdentifier")?.value.to_vec())
        }
        _ => return Err("SignerInfo has an unsupported signer identifier".into()),
    };
    if !matches!(version, 1 | 3) {
        return Err(format!("unsupported SignerInfo version {version}"));
    }
    let digest_alg = AlgorithmId::parse(&mut r, "SignerInfo digestAlgorithm")?;
    let (signed_attrs_der, signed_attrs) = match r.read_optional(der::ctx_cons(0), "signedAttrs")? {
        Some(t) => {
            let mut der_bytes = t.raw.to_vec();
            der_bytes[0] = der::TAG_SET;
            (Some(der_bytes), parse_attributes(t.value)?)
        }
        None => (None, Vec::new()),
    };
    let signature_alg = AlgorithmId::parse(&mut r, "SignerInfo signatureAlgorithm")?;
    let signature = r.read(der::TAG_OCTET_STRING, "SignerInfo signature")?.value;
    r.read_optional(der::ctx_cons(1), "unsignedAttrs")?;
    r.finish("SignerInfo")?;
    Ok(SignerInfo {
        sid,
        digest_alg,
        signed_attrs_der,
        signed_attrs,
        signature_alg,
        signature,
    })
}

fn parse_tst_info(content: &[u8]) -> Result<TstInfo, String> {
    let seq = der::parse_single(content, der::TAG_SEQUENCE, "TSTInfo")?;
    let mut r = seq.reader();
    let version = der::read_small_uint(&mut r, "TSTInfo version")?;
    if version != 1 {
        return Err(format!(
            "timestamp token info version must be 1, but got {version}"
        ));
    }
    let policy = der::read_oid(&mut r, "TSTInfo policy")?;
    let mi = r.read(der::TAG_SEQUENCE, "messageImprint")?;
    let mut mr = mi.reader();
    let imprint_alg = AlgorithmId::parse(&mut mr, "messageImprint hashAlgorithm")?;
    let hashed_message = mr
        .read(der::TAG_OCTET_STRING, "messageImprint hashedMessage")?
        .value
        .to_vec();
    mr.finish("messageImprint")?;
    r.read(der::TAG_INTEGER, "TSTInfo serialNumber")?;
    let gen_tlv = r.read(der::TAG_GENERALIZED_TIME, "TSTInfo genTime")?;
    let gen_time = der::parse_generalized_time(gen_tlv.value)?;
    let accuracy = match r.read_optional(der::TAG_SEQUENCE, "TSTInfo accuracy")? {
        None => None,
        Some(acc) => {
            let mut ar = acc.reader();
            let seconds = match ar.read_optional(der::TAG_INTEGER, "accuracy seconds")? {
                Some(t) => der::integer_to_u64(t.value)?,
                None => 0,
            };
            let millis = match ar.read_optional(der::ctx_prim(0), "accuracy millis")? {
                Some(t) => der::integer_to_u64(t.value)?,
                None => 0,
            };
            let micros = match ar.read_optional(der::ctx_prim(1), "accuracy micros")? {
                Some(t) => der::integer_to_u64(t.value)?,
                None => 0,
            };
            ar.finish("accuracy")?;
            if millis > 999 || micros > 999 || seconds > 86_400 * 366 {
                return Err("TSTInfo accuracy is out of range".into());
            }
            Some(
                Duration::seconds(seconds as i64)
                    + Duration::milliseconds(millis as i64)
                    + Duration::microseconds(micros as i64),
            )
        }
    };
    Ok(TstInfo {
        policy,
        imprint_hash: imprint_alg.oid,
        hashed_message,
        gen_time,
        accuracy,
    })
}

fn parse_token(data: &[u8]) -> Result<Token<'_>, String> {
    let ci = der::parse_single(data, der::TAG_SEQUENCE, "ContentInfo")?;
    let mut r = ci.reader();
    let ct = der::read_oid(&mut r, "ContentInfo contentType")?;
    if ct != OID_SIGNED_DATA {
        return Err(format!(
            "the token is not CMS SignedData (content type {ct})"
        ));
    }
    let explicit = r.read(der::ctx_cons(0), "ContentInfo content")?;
    r.finish("ContentInfo")?;
    let sd = der::parse_single(explicit.value, der::TAG_SEQUENCE, "SignedData")?;
    let mut sr = sd.reader();
    der::read_small_uint(&mut sr, "SignedData version")?;
    sr.read(der::TAG_SET, "SignedData digestAlgorithms")?;
    let eci = sr.read(der::TAG_SEQUENCE, "encapContentInfo")?;
    let mut er = eci.reader();
    let econtent_type = der::read_oid(&mut er, "eContentType")?;
    let econtent = match er.read_optional(der::ctx_cons(0), "eContent")? {
        Some(t) => der::parse_single(t.value, der::TAG_OCTET_STRING, "eContent")?.value,
        None => return Err("the timestamp token has no encapsulated TSTInfo".into()),
    };
    er.finish("encapContentInfo")?;
    if econtent_type != OID_TST_INFO {
        return Err(format!(
            "unexpected content type {econtent_type} (a timestamp token encapsulates id-ct-TSTInfo {OID_TST_INFO})"
        ));
    }
    let mut certificates = Vec::new();
    if let Some(certs) = sr.read_optional(der::ctx_cons(0), "certificates")? {
        let mut cr = certs.reader();
        while !cr.is_empty() {
            let c = cr.read_any("certificate")?;
            if c.tag != der::TAG_SEQUENCE {
                // Other CertificateChoices (attribute certificates...) are not used.
                continue;
            }
            certificates.push(
                Certificate::from_der(c.raw)
                    .map_err(|e| format!("certificate in the timestamp token: {e}"))?,
            );
        }
    }
    sr.read_optional(der::ctx_cons(1), "crls")?;
    let sis = sr.read(der::TAG_SET, "signerInfos")?;
    sr.finish("SignedData")?;
    let mut signer_infos = Vec::new();
    let mut sir = sis.reader();
    while !sir.is_empty() {
        signer_infos.push(parse_signer_info(
            sir.read(der::TAG_SEQUENCE, "SignerInfo")?,
        )?);
    }
    let tst = parse_tst_info(econtent)?;
    Ok(Token {
        econtent,
        econtent_type,
        certificates,
        signer_infos,
        tst,
    })
}

/// Verifies a timestamp token over `signature` (the envelope's raw signature bytes) against the
/// `tsa` anchors. Timestamp-vs-signing-chain bounds are checked by the caller.
pub(crate) fn verify(
    token_der: &[u8],
    signature: &[u8],
    anchors: &[TsaAnchor],
) -> Result<VerifiedTimestamp, String> {
    let token = parse_token(token_der)
        .map_err(|e| format!("failed to parse the timestamp countersignature: {e}"))?;
    let tst = &token.tst;

    // The timestamp must cover exactly the envelope signature.
    let imprint_hash = HashAlg::from_oid(&tst.imprint_hash)
        .map_err(|e| format!("timestamp message imprint: {e}"))?;
    if imprint_hash.digest(signature) != tst.hashed_message {
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
    if token.signer_infos.is_empty() {
        return Err("the timestamp token has no SignerInfo".into());
    }
    let mut last_err = String::new();
    for si in &token.signer_infos {
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
    token: &Token<'_>,
    si: &SignerInfo<'_>,
    anchors: &[TsaAnchor],
) -> Result<(Vec<Certificate>, String), String> {
    let signing_cert = signing_certificate(token, si)?;

    // TSA chain to a tsa trust store, valid at genTime.
    let (chain, anchor_store) = build_chain(signing_cert, &token.certificates, anchors)?;
    let at = token.tst.gen_time;
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
        if token.econtent_type == OID_DATA {
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

    let attr = |oid: &str| si.signed_attrs.iter().find(|a| a.oid == oid);
    let ct = attr(OID_ATTR_CONTENT_TYPE).ok_or("signed attributes lack content-type")?;
    let ct_value = ct
        .values
        .first()
        .filter(|v| v.tag == der::TAG_OID)
        .ok_or("invalid content-type attribute")?;
    let ct_oid = der::oid_to_string(ct_value.value)?;
    if ct_oid != token.econtent_type {
        return Err(format!(
            "mismatch content type: {ct_oid} in signer info, {} in signed data",
            token.econtent_type
        ));
    }
    let md = attr(OID_ATTR_MESSAGE_DIGEST).ok_or("signed attributes lack message-digest")?;
    let md_value = md
        .values
        .first()
        .filter(|v| v.tag == der::TAG_OCTET_STRING)
        .ok_or("invalid message-digest attribute")?;
    if md_value.value != digest.digest(token.econtent).as_slice() {
        return Err(
            "mismatch message digest: the TSTInfo does not match the signed message-digest".into(),
        );
    }
    if let Some(st) = attr(OID_ATTR_SIGNING_TIME) {
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
    token: &'t Token<'_>,
    si: &SignerInfo<'_>,
) -> Result<&'t Certificate, String> {
    let attr = si
        .signed_attrs
        .iter()
        .find(|a| a.oid == OID_ATTR_SIGNING_CERTIFICATE_V2)
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

fn find_by_sid<'t>(token: &'t Token<'_>, sid: &SignerId) -> Option<&'t Certificate> {
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
