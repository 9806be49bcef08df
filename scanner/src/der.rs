//! A small, strict DER reader and encoder shared by the Notation and Cosign verifiers: CMS
//! `SignedData`, RFC 3161 `TSTInfo`, ESS attributes, and the certificate surgery Cosign needs
//! (SCT precertificate form, ECDSA `r || s`).
//!
//! Hand-written because `x509-tsp`/`der` 0.7 reject `GeneralizedTime` with fractional seconds,
//! which RFC 3161 explicitly allows (Microsoft's and DigiCert's TSAs emit them), and because signed
//! attributes must be verified over their original bytes.

use chrono::{DateTime, NaiveDate, Utc};

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn ctx_cons(n: u8) -> u8 {
    0xA0 | n
}

/// Context-specific primitive tag `[n]`.
pub(crate) const fn ctx_prim(n: u8) -> u8 {
    0x80 | n
}

/// One decoded TLV: its tag, its content and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the content of a constructed value.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
}

/// Sequential reader over concatenated TLVs.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads the next TLV whatever its tag.
    pub fn read_any(&mut self, what: &str) -> Result<Tlv<'a>, String> {
        let data = self.data;
        let tag = *data
            .first()
            .ok_or_else(|| format!("{what}: unexpected end of data"))?;
        if tag & 0x1F == 0x1F {
            return Err(format!("{what}: multi-byte ASN.1 tags are not supported"));
        }
        let first = *data
            .get(1)
            .ok_or_else(|| format!("{what}: truncated length"))?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2usize)
        } else if first == 0x80 {
            return Err(format!(
                "{what}: indefinite-length (BER) encoding is not allowed, DER is required"
            ));
        } else {
            let n = usize::from(first & 0x7F);
            if n > 4 {
                return Err(format!("{what}: length field too large"));
            }
            let bytes = data
                .get(2..2 + n)
                .ok_or_else(|| format!("{what}: truncated length"))?;
            let mut len = 0usize;
            for b in bytes {
                len = (len << 8) | usize::from(*b);
            }
            (len, 2 + n)
        };
        let end = header
            .checked_add(len)
            .ok_or_else(|| format!("{what}: length overflow"))?;
        if end > data.len() {
            return Err(format!(
                "{what}: value of {len} bytes exceeds the {} bytes available",
                data.len() - header.min(data.len())
            ));
        }
        self.data = &data[end..];
        Ok(Tlv {
            tag,
            value: &data[header..end],
            raw: &data[..end],
        })
    }

    /// Reads the next TLV and checks its tag.
    pub fn read(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, String> {
        let tlv = self.read_any(what)?;
        if tlv.tag != tag {
            return Err(format!(
                "{what}: expected ASN.1 tag 0x{tag:02x}, found 0x{:02x}",
                tlv.tag
            ));
        }
        Ok(tlv)
    }

    /// Reads the next TLV only if it carries `tag`.
    pub fn read_optional(&mut self, tag: u8, what: &str) -> Result<Option<Tlv<'a>>, String> {
        if self.peek_tag() == Some(tag) {
            self.read(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails when bytes remain (strict parsing of fixed structures).
    pub fn finish(&self, what: &str) -> Result<(), String> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what}: {} unexpected trailing bytes",
                self.data.len()
            ))
        }
    }
}

/// Reads one TLV from the front of `data` and returns it with the rest. Unlike [`Reader`], also
/// rejects non-minimal length encodings (Cosign's SCT and signature checks are byte-exact).
pub(crate) fn read_tlv(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let mut r = Reader::new(data);
    let tlv = r.read_any("DER")?;
    let len = tlv.value.len();
    let len_bytes = tlv.raw.len() - len - 2;
    let minimal = len_bytes == 0
        || (len >= 0x80 && len_bytes == (usize::BITS - len.leading_zeros()).div_ceil(8) as usize);
    if !minimal {
        return Err("DER: non-minimal length encoding".into());
    }
    Ok((tlv, r.data))
}

/// Every TLV of `data`, in order (minimal lengths required, as [`read_tlv`]).
pub(crate) fn read_all(mut data: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tlv, rest) = read_tlv(data)?;
        out.push(tlv);
        data = rest;
    }
    Ok(out)
}

/// Parses a whole buffer as exactly one TLV.
pub(crate) fn parse_single<'a>(data: &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, String> {
    let mut r = Reader::new(data);
    let tlv = r.read(tag, what)?;
    r.finish(what)?;
    Ok(tlv)
}

/// Dotted-decimal form of an OBJECT IDENTIFIER's content octets.
pub(crate) fn oid_to_string(content: &[u8]) -> Result<String, String> {
    if content.is_empty() {
        return Err("empty object identifier".into());
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if acc > (u64::MAX >> 7) {
            return Err("object identifier arc too large".into());
        }
        acc = (acc << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i == content.len() - 1 {
            return Err("truncated object identifier".into());
        }
    }
    Ok(arcs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("."))
}

/// Reads an OBJECT IDENTIFIER as a dotted string.
pub(crate) fn read_oid(r: &mut Reader<'_>, what: &str) -> Result<String, String> {
    let tlv = r.read(TAG_OID, what)?;
    oid_to_string(tlv.value).map_err(|e| format!("{what}: {e}"))
}

/// Reads a small non-negative INTEGER.
pub(crate) fn read_small_uint(r: &mut Reader<'_>, what: &str) -> Result<u64, String> {
    let tlv = r.read(TAG_INTEGER, what)?;
    integer_to_u64(tlv.value).map_err(|e| format!("{what}: {e}"))
}

pub(crate) fn integer_to_u64(content: &[u8]) -> Result<u64, String> {
    if content.is_empty() {
        return Err("empty integer".into());
    }
    if content[0] & 0x80 != 0 {
        return Err("negative integer where a non-negative one is required".into());
    }
    let trimmed: &[u8] = {
        let mut c = content;
        while c.len() > 1 && c[0] == 0 {
            c = &c[1..];
        }
        c
    };
    if trimmed.len() > 8 {
        return Err("integer too large".into());
    }
    Ok(trimmed
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Canonical big-endian magnitude of a non-negative INTEGER (leading zero bytes removed).
pub(crate) fn integer_magnitude(content: &[u8]) -> &[u8] {
    let mut c = content;
    while c.len() > 1 && c[0] == 0 {
        c = &c[1..];
    }
    c
}

/// Parses `GeneralizedTime` content: `YYYYMMDDHHMMSS[.f+]Z` (UTC only, as DER requires).
pub(crate) fn parse_generalized_time(content: &[u8]) -> Result<DateTime<Utc>, String> {
    let s = std::str::from_utf8(content).map_err(|_| "GeneralizedTime is not ASCII".to_string())?;
    let body = s
        .strip_suffix('Z')
        .ok_or_else(|| format!("GeneralizedTime {s:?} must be in UTC (end with 'Z')"))?;
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "GeneralizedTime {s:?} is not YYYYMMDDHHMMSS[.fff]Z"
        ));
    }
    let num = |a: usize, b: usize| -> u32 { main[a..b].parse::<u32>().unwrap_or(u32::MAX) };
    let year = i32::try_from(num(0, 4)).map_err(|_| format!("bad year in {s:?}"))?;
    let nanos = match frac {
        None => 0u32,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("GeneralizedTime {s:?} has an invalid fraction"));
            }
            let mut padded = f.to_string();
            while padded.len() < 9 {
                padded.push('0');
            }
            padded
                .parse::<u32>()
                .map_err(|_| format!("GeneralizedTime {s:?} has an invalid fraction"))?
        }
    };
    NaiveDate::from_ymd_opt(year, num(4, 6), num(6, 8))
        .and_then(|d| d.and_hms_nano_opt(num(8, 10), num(10, 12), num(12, 14), nanos))
        .map(|dt| dt.and_utc())
        .ok_or_else(|| format!("GeneralizedTime {s:?} is not a valid date/time"))
}

/// Parses `UTCTime` content `YYMMDDHHMMSSZ` (RFC 5280 two-digit-year rule).
pub(crate) fn parse_utc_time(content: &[u8]) -> Result<DateTime<Utc>, String> {
    let s = std::str::from_utf8(content).map_err(|_| "UTCTime is not ASCII".to_string())?;
    let body = s
        .strip_suffix('Z')
        .ok_or_else(|| format!("UTCTime {s:?} must end with 'Z'"))?;
    if body.len() != 12 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("UTCTime {s:?} is not YYMMDDHHMMSSZ"));
    }
    let num = |a: usize, b: usize| -> u32 { body[a..b].parse::<u32>().unwrap_or(u32::MAX) };
    let yy = num(0, 2);
    let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    NaiveDate::from_ymd_opt(year as i32, num(2, 4), num(4, 6))
        .and_then(|d| d.and_hms_opt(num(6, 8), num(8, 10), num(10, 12)))
        .map(|dt| dt.and_utc())
        .ok_or_else(|| format!("UTCTime {s:?} is not a valid date/time"))
}

/// Encodes a DER length prefix.
pub(crate) fn encode_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes one TLV.
pub(crate) fn encode_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    encode_length(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// An X.509 / CMS `AlgorithmIdentifier`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AlgorithmId {
    pub oid: String,
    /// Raw DER of the parameters, if any.
    pub params: Option<Vec<u8>>,
}

impl AlgorithmId {
    /// Parses an `AlgorithmIdentifier` SEQUENCE.
    pub fn parse(r: &mut Reader<'_>, what: &str) -> Result<Self, String> {
        let seq = r.read(TAG_SEQUENCE, what)?;
        let mut inner = seq.reader();
        let oid = read_oid(&mut inner, what)?;
        let params = if inner.is_empty() {
            None
        } else {
            Some(inner.read_any(what)?.raw.to_vec())
        };
        inner.finish(what)?;
        Ok(Self { oid, params })
    }
}

/// `[3] EXPLICIT` — the extensions of a `TBSCertificate`.
const TAG_TBS_EXTENSIONS: u8 = 0xA3;

/// The certificate's `TBSCertificate` re-encoded without the extension whose DER-encoded OID is
/// `oid_der` (tag and length included). Errors when the certificate has no such extension.
pub(crate) fn tbs_without_extension(cert_der: &[u8], oid_der: &[u8]) -> Result<Vec<u8>, String> {
    let (cert, _) = read_tlv(cert_der)?;
    if cert.tag != TAG_SEQUENCE {
        return Err("certificate is not a SEQUENCE".into());
    }
    let (tbs, _) = read_tlv(cert.value)?;
    if tbs.tag != TAG_SEQUENCE {
        return Err("TBSCertificate is not a SEQUENCE".into());
    }
    let mut removed = false;
    let mut content = Vec::with_capacity(tbs.value.len());
    for field in read_all(tbs.value)? {
        if field.tag != TAG_TBS_EXTENSIONS {
            content.extend_from_slice(field.raw);
            continue;
        }
        let (list, _) = read_tlv(field.value)?;
        let mut kept = Vec::with_capacity(list.value.len());
        for ext in read_all(list.value)? {
            let (oid, _) = read_tlv(ext.value)?;
            if oid.raw == oid_der {
                removed = true;
            } else {
                kept.extend_from_slice(ext.raw);
            }
        }
        content.extend(encode_tlv(
            TAG_TBS_EXTENSIONS,
            &encode_tlv(TAG_SEQUENCE, &kept),
        ));
    }
    if !removed {
        return Err("the certificate has no such extension".into());
    }
    Ok(encode_tlv(TAG_SEQUENCE, &content))
}

/// `SEQUENCE { INTEGER r, INTEGER s }` → `r || s`, each left-padded to `half` bytes. `None` when
/// `sig` is not exactly that structure or an integer does not fit.
pub(crate) fn integer_pair_to_fixed(sig: &[u8], half: usize) -> Option<Vec<u8>> {
    let (seq, rest) = read_tlv(sig).ok()?;
    if seq.tag != TAG_SEQUENCE || !rest.is_empty() {
        return None;
    }
    let ints = read_all(seq.value).ok()?;
    let [r, s] = ints.as_slice() else {
        return None;
    };
    let mut out = Vec::with_capacity(half * 2);
    for int in [r, s] {
        if int.tag != TAG_INTEGER {
            return None;
        }
        let v = match int.value {
            [0, rest @ ..] => rest,
            v => v,
        };
        if v.len() > half {
            return None;
        }
        out.extend(std::iter::repeat_n(0u8, half - v.len()));
        out.extend_from_slice(v);
    }
    Some(out)
}

/// DER encoding of an OID given as dotted text (for comparisons with raw extension OIDs).
pub(crate) fn oid_der(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut body = Vec::new();
    if arcs.len() >= 2 {
        push_base128(&mut body, arcs[0] * 40 + arcs[1]);
        for &a in &arcs[2..] {
            push_base128(&mut body, a);
        }
    }
    encode_tlv(TAG_OID, &body)
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    tmp.reverse();
    out.extend(tmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_round_trip() {
        // 1.2.840.113549.1.9.16.1.4 (id-ct-TSTInfo)
        let content = [
            0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
        ];
        assert_eq!(
            oid_to_string(&content).unwrap(),
            "1.2.840.113549.1.9.16.1.4"
        );
        assert_eq!(oid_to_string(&[0x55, 0x04, 0x03]).unwrap(), "2.5.4.3");
    }

    #[test]
    fn generalized_time_with_fraction() {
        let t = parse_generalized_time(b"20250121091746.641Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-21T09:17:46.641+00:00");
        let t = parse_generalized_time(b"20240618062937Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-06-18T06:29:37+00:00");
        assert!(parse_generalized_time(b"20240618062937+0100").is_err());
        assert!(parse_generalized_time(b"20241318062937Z").is_err());
        assert!(parse_generalized_time(b"20240618062937").is_err());
        assert!(parse_generalized_time(b"2024061806293Z").is_err());
    }

    #[test]
    fn rejects_indefinite_length_and_truncation() {
        let mut r = Reader::new(&[0x30, 0x80, 0x00, 0x00]);
        assert!(r.read_any("x").unwrap_err().contains("indefinite"));
        let mut r = Reader::new(&[0x04, 0x05, 0x01]);
        assert!(r.read_any("x").unwrap_err().contains("exceeds"));
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; n];
            let enc = encode_tlv(0x04, &content);
            let (tlv, rest) = read_tlv(&enc).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.value.len(), n);
            assert_eq!(tlv.raw, enc.as_slice());
        }
    }

    #[test]
    fn rejects_truncated_and_non_minimal() {
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_err());
        assert!(read_tlv(&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err());
        assert!(read_tlv(&[0x30]).is_err());
    }

    #[test]
    fn integer_pair_unwraps_with_padding() {
        // SEQUENCE { INTEGER 0x00ff, INTEGER 0x01 }
        let sig = [0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x01];
        assert_eq!(
            integer_pair_to_fixed(&sig, 3).unwrap(),
            vec![0, 0, 0xff, 0, 0, 1]
        );
        assert!(integer_pair_to_fixed(&sig, 0).is_none());
        assert!(integer_pair_to_fixed(&[0x30, 0x00], 2).is_none());
    }

    #[test]
    fn oid_encoding() {
        assert_eq!(
            oid_der("1.3.6.1.4.1.11129.2.4.2"),
            vec![
                0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02
            ]
        );
    }
}
