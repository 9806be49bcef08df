//! RFC 3161 timestamp tokens, shared by the Notation and Cosign verifiers: CMS `SignedData` →
//! `TSTInfo` parsing, the message-imprint check and the signer's signed-attribute binding. Trust
//! decisions (which TSA roots, validity windows, accuracy policy) stay with the callers.

use aws_lc_rs::digest;
use chrono::{DateTime, Duration, Utc};

use crate::der::{self, AlgorithmId, Reader, Tlv};

pub(crate) const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// Hash functions accepted for digests and message imprints (SHA-1 never is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn from_oid(oid: &str) -> Result<Self, String> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Ok(Self::Sha256),
            "2.16.840.1.101.3.4.2.2" => Ok(Self::Sha384),
            "2.16.840.1.101.3.4.2.3" => Ok(Self::Sha512),
            "1.3.14.3.2.26" => Err("SHA-1 is not allowed".into()),
            other => Err(format!("unsupported hash algorithm {other}")),
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// How a SignerInfo names its certificate.
#[derive(Debug)]
pub(crate) enum SignerId {
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    SubjectKeyId(Vec<u8>),
}

/// One signed attribute: its type and values.
#[derive(Debug)]
pub(crate) struct Attribute<'a> {
    pub oid: String,
    pub values: Vec<Tlv<'a>>,
}

/// A CMS `SignerInfo`.
#[derive(Debug)]
pub(crate) struct SignerInfo<'a> {
    pub sid: SignerId,
    pub digest_alg: AlgorithmId,
    /// Signed attributes re-tagged as `SET OF` (what the signature covers).
    pub signed_attrs_der: Option<Vec<u8>>,
    pub signed_attrs: Vec<Attribute<'a>>,
    pub signature_alg: AlgorithmId,
    pub signature: &'a [u8],
}

/// The `TSTInfo` fields the verifiers use.
#[derive(Debug, Clone)]
pub(crate) struct TstInfo {
    pub policy: String,
    pub imprint_hash: String,
    pub hashed_message: Vec<u8>,
    pub gen_time: DateTime<Utc>,
    pub accuracy: Option<Duration>,
}

/// A parsed timestamp token (not yet verified).
pub(crate) struct Token<'a> {
    pub econtent: &'a [u8],
    pub econtent_type: String,
    /// DER of the certificates carried by the token (X.509 `CertificateChoices` only).
    pub certificates: Vec<&'a [u8]>,
    pub signer_infos: Vec<SignerInfo<'a>>,
    pub tst: TstInfo,
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

pub(crate) fn parse_token(data: &[u8]) -> Result<Token<'_>, String> {
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
            certificates.push(c.raw);
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

impl Token<'_> {
    /// Whether the token's message imprint is the hash of `message`; `Err` when the imprint's
    /// hash algorithm is not accepted.
    pub fn imprint_matches(&self, message: &[u8]) -> Result<bool, String> {
        let hash = HashAlg::from_oid(&self.tst.imprint_hash)?;
        Ok(hash.digest(message) == self.tst.hashed_message)
    }

    /// Checks that a signer's signed attributes bind this token's `TSTInfo` (content-type and
    /// message-digest attributes, RFC 5652 §5.3).
    pub fn check_signed_attrs(&self, si: &SignerInfo<'_>) -> Result<(), String> {
        let digest = HashAlg::from_oid(&si.digest_alg.oid)
            .map_err(|e| format!("SignerInfo digest algorithm: {e}"))?;
        let ct = si
            .attribute(OID_ATTR_CONTENT_TYPE)
            .ok_or("signed attributes lack content-type")?;
        let ct_value = ct
            .values
            .first()
            .filter(|v| v.tag == der::TAG_OID)
            .ok_or("invalid content-type attribute")?;
        let ct_oid = der::oid_to_string(ct_value.value)?;
        if ct_oid != self.econtent_type {
            return Err(format!(
                "mismatch content type: {ct_oid} in signer info, {} in signed data",
                self.econtent_type
            ));
        }
        let md = si
            .attribute(OID_ATTR_MESSAGE_DIGEST)
            .ok_or("signed attributes lack message-digest")?;
        let md_value = md
            .values
            .first()
            .filter(|v| v.tag == der::TAG_OCTET_STRING)
            .ok_or("invalid message-digest attribute")?;
        if md_value.value != digest.digest(self.econtent).as_slice() {
            return Err(
                "mismatch message digest: the TSTInfo does not match the signed message-digest"
                    .into(),
            );
        }
        Ok(())
    }
}

impl SignerInfo<'_> {
    /// The signed attribute of type `oid`, if present.
    pub fn attribute(&self, oid: &str) -> Option<&Attribute<'_>> {
        self.signed_attrs.iter().find(|a| a.oid == oid)
    }
}

/// The `TimeStampToken` inside a DER `TimeStampResp`, or `der_bytes` itself when it already is a
/// bare token (a `ContentInfo`). Fails unless the response's status is granted (0) or
/// grantedWithMods (1).
pub(crate) fn token_from_response(der_bytes: &[u8]) -> Result<&[u8], String> {
    let (outer, _) = der::read_tlv(der_bytes).map_err(|e| format!("timestamp: {e}"))?;
    if outer.tag != der::TAG_SEQUENCE {
        return Err("timestamp is not a SEQUENCE".into());
    }
    let fields = der::read_all(outer.value).map_err(|e| format!("timestamp: {e}"))?;
    // TimeStampResp = SEQUENCE { PKIStatusInfo SEQUENCE, token ContentInfo }; a ContentInfo
    // starts with its OID.
    match fields.first().map(|t| t.tag) {
        Some(der::TAG_OID) => Ok(outer.raw),
        Some(der::TAG_SEQUENCE) => {
            let status = der::read_all(fields[0].value)?;
            let code = status.first().map(|s| s.value).unwrap_or(&[]);
            if code != [0] && code != [1] {
                return Err("the timestamp response's status is not `granted`".into());
            }
            Ok(fields
                .get(1)
                .ok_or("the timestamp response holds no token")?
                .raw)
        }
        _ => Err("not a TimeStampResp or TimeStampToken".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        der::encode_tlv(der::TAG_SEQUENCE, &parts.concat())
    }

    #[test]
    fn response_wrapper_is_unwrapped_only_when_granted() {
        let token = seq(&[der::oid_der(OID_SIGNED_DATA), der::encode_tlv(0xA0, &[])]);
        assert_eq!(token_from_response(&token).unwrap(), token.as_slice());
        let status = |code: u8| seq(&[der::encode_tlv(der::TAG_INTEGER, &[code])]);
        let granted = seq(&[status(0), token.clone()]);
        assert_eq!(token_from_response(&granted).unwrap(), token.as_slice());
        let rejection = seq(&[status(2), token.clone()]);
        assert!(
            token_from_response(&rejection)
                .unwrap_err()
                .contains("not `granted`")
        );
        assert!(
            token_from_response(&seq(&[status(0)]))
                .unwrap_err()
                .contains("no token")
        );
    }

    #[test]
    fn non_signed_data_is_rejected() {
        let data = seq(&[der::oid_der(OID_DATA), der::encode_tlv(0xA0, &[])]);
        let err = parse_token(&data).err().unwrap();
        assert!(err.contains("not CMS SignedData"), "{err}");
    }
}
