//! X.509 distinguished names: the string form Go's `pkix.Name.String()` prints (which Ratify puts
//! in a Notation report's `extensions.Issuer` / `extensions.SN` and notation uses for identity
//! matching), and the RFC 4514 parser for `x509.subject:` trusted identities.

use std::collections::BTreeMap;

use crate::der::{self, Reader};

/// Go's fixed attribute-type names (crypto/x509/pkix `attributeTypeNames`).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

/// One attribute of a name, with its value decoded as Go decodes it (all values are strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameAttr {
    pub oid: String,
    pub value: String,
}

/// A parsed `Name` (RDNSequence) kept in certificate order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedName {
    pub rdns: Vec<Vec<NameAttr>>,
}

/// Parses the DER of an X.509 `Name`.
pub(crate) fn parse_name(raw: &[u8]) -> Result<ParsedName, String> {
    let seq = der::parse_single(raw, der::TAG_SEQUENCE, "name")?;
    let mut rdns = Vec::new();
    let mut r = seq.reader();
    while !r.is_empty() {
        let set = r.read(der::TAG_SET, "relative distinguished name")?;
        let mut attrs = Vec::new();
        let mut sr = set.reader();
        while !sr.is_empty() {
            let atv = sr.read(der::TAG_SEQUENCE, "attribute type and value")?;
            let mut ar = atv.reader();
            let oid = der::read_oid(&mut ar, "attribute type")?;
            let value = ar.read_any("attribute value")?;
            ar.finish("attribute type and value")?;
            let value = decode_string(value.tag, value.value)
                .map_err(|e| format!("attribute {oid}: {e}"))?;
            attrs.push(NameAttr { oid, value });
        }
        rdns.push(attrs);
    }
    Ok(ParsedName { rdns })
}

/// Decodes the ASN.1 string types Go's certificate parser accepts in names.
fn decode_string(tag: u8, content: &[u8]) -> Result<String, String> {
    match tag {
        0x0c => String::from_utf8(content.to_vec()).map_err(|_| "invalid UTF8String".into()),
        0x13 | 0x16 | 0x12 => {
            if content.is_ascii() {
                Ok(String::from_utf8_lossy(content).into_owned())
            } else {
                Err("non-ASCII bytes in a PrintableString/IA5String/NumericString".into())
            }
        }
        0x14 => Ok(String::from_utf8_lossy(content).into_owned()),
        0x1e => {
            if !content.len().is_multiple_of(2) {
                return Err("BMPString with an odd number of bytes".into());
            }
            let units: Vec<u16> = content
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| "invalid BMPString".into())
        }
        other => Err(format!(
            "unsupported ASN.1 string type 0x{other:02x} in a distinguished name"
        )),
    }
}

/// Go's view of a name: the nine standard attributes collected into fields, the rest kept apart.
struct GoName<'a> {
    country: Vec<&'a str>,
    province: Vec<&'a str>,
    locality: Vec<&'a str>,
    street: Vec<&'a str>,
    postal_code: Vec<&'a str>,
    organization: Vec<&'a str>,
    organizational_unit: Vec<&'a str>,
    common_name: Option<&'a str>,
    serial_number: Option<&'a str>,
    extra: Vec<&'a NameAttr>,
}

impl ParsedName {
    fn go_name(&self) -> GoName<'_> {
        let mut n = GoName {
            country: vec![],
            province: vec![],
            locality: vec![],
            street: vec![],
            postal_code: vec![],
            organization: vec![],
            organizational_unit: vec![],
            common_name: None,
            serial_number: None,
            extra: vec![],
        };
        for attr in self.rdns.iter().flatten() {
            let v = attr.value.as_str();
            match attr.oid.as_str() {
                "2.5.4.6" => n.country.push(v),
                "2.5.4.8" => n.province.push(v),
                "2.5.4.7" => n.locality.push(v),
                "2.5.4.9" => n.street.push(v),
                "2.5.4.17" => n.postal_code.push(v),
                "2.5.4.10" => n.organization.push(v),
                "2.5.4.11" => n.organizational_unit.push(v),
                "2.5.4.3" => n.common_name = Some(v),
                "2.5.4.5" => n.serial_number = Some(v),
                _ => n.extra.push(attr),
            }
        }
        n
    }

    /// The string Go's `pkix.Name.String()` prints for a parsed certificate name, e.g.
    /// `CN=ratify-bats-test,O=Notary,L=Seattle,ST=WA,C=US`.
    pub fn go_string(&self) -> String {
        let n = self.go_name();
        // RDN sequence in Go's order: non-standard attributes first, then C, ST, L, STREET,
        // POSTALCODE, O, OU, CN, SERIALNUMBER; printed in reverse.
        let mut rdns: Vec<Vec<String>> = Vec::new();
        for attr in &n.extra {
            rdns.push(vec![format!(
                "{}=#{}",
                attr.oid,
                hex::encode(go_marshal_string(&attr.value))
            )]);
        }
        let mut push = |name: &str, values: &[&str]| {
            if !values.is_empty() {
                rdns.push(
                    values
                        .iter()
                        .map(|v| format!("{name}={}", go_escape(v)))
                        .collect(),
                );
            }
        };
        push("C", &n.country);
        push("ST", &n.province);
        push("L", &n.locality);
        push("STREET", &n.street);
        push("POSTALCODE", &n.postal_code);
        push("O", &n.organization);
        push("OU", &n.organizational_unit);
        if let Some(cn) = n.common_name.filter(|c| !c.is_empty()) {
            push("CN", &[cn]);
        }
        if let Some(sn) = n.serial_number.filter(|s| !s.is_empty()) {
            push("SERIALNUMBER", &[sn]);
        }
        rdns.iter()
            .rev()
            .map(|rdn| rdn.join("+"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The attribute map notation matches trusted identities against (what `ldap.ParseDN`
    /// yields for [`Self::go_string`]). Fails like notation when an attribute type repeats.
    pub fn identity_map(&self) -> Result<BTreeMap<String, String>, String> {
        let n = self.go_name();
        let mut map = BTreeMap::new();
        let mut put = |name: &str, values: &[&str]| -> Result<(), String> {
            match values {
                [] => Ok(()),
                [v] => {
                    map.insert(name.to_string(), (*v).to_string());
                    Ok(())
                }
                _ => Err(format!(
                    "the signing certificate subject has {} values for {name} (a multi-valued RDN), which trusted identities cannot match",
                    values.len()
                )),
            }
        };
        put("C", &n.country)?;
        put("ST", &n.province)?;
        put("L", &n.locality)?;
        put("STREET", &n.street)?;
        put("POSTALCODE", &n.postal_code)?;
        put("O", &n.organization)?;
        put("OU", &n.organizational_unit)?;
        if let Some(cn) = n.common_name.filter(|c| !c.is_empty()) {
            put("CN", &[cn])?;
        }
        if let Some(sn) = n.serial_number.filter(|s| !s.is_empty()) {
            put("SERIALNUMBER", &[sn])?;
        }
        for attr in n.extra {
            if map.insert(attr.oid.clone(), attr.value.clone()).is_some() {
                return Err(format!(
                    "the signing certificate subject repeats attribute {}, which trusted identities cannot match",
                    attr.oid
                ));
            }
        }
        Ok(map)
    }
}

/// Go's RFC 2253-style value escaping in `RDNSequence.String()`.
fn go_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.len().saturating_sub(1);
    for (k, c) in v.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `asn1.Marshal` of a Go string: PrintableString when every byte is printable, else UTF8String.
fn go_marshal_string(v: &str) -> Vec<u8> {
    let printable = v.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    });
    der::encode_tlv(if printable { 0x13 } else { 0x0c }, v.as_bytes())
}

/// Canonical attribute-type name used on both sides of identity matching.
fn normalize_type(t: &str) -> String {
    if let Some(name) = short_name(t) {
        return name.to_string();
    }
    let upper = t.to_ascii_uppercase();
    match upper.as_str() {
        "S" => "ST".to_string(),
        "C" | "O" | "OU" | "CN" | "SERIALNUMBER" | "L" | "ST" | "STREET" | "POSTALCODE" => upper,
        _ => t.to_string(),
    }
}

/// Parses an RFC 4514 distinguished name as a trusted identity (`x509.subject:` value) and applies
/// the Notary Project rules: no multi-valued RDNs, no repeated types, and C, ST and O present.
pub(crate) fn parse_trusted_identity_dn(dn: &str) -> Result<BTreeMap<String, String>, String> {
    let rdns = parse_rfc4514(dn).map_err(|e| {
        format!(
            "distinguished name (DN) {dn:?} is not valid ({e}); it must follow RFC 4514 and contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"
        )
    })?;
    let mut map = BTreeMap::new();
    for rdn in rdns {
        if rdn.len() > 1 {
            return Err(format!(
                "distinguished name (DN) {dn:?} has multi-valued RDN attributes, remove multi-valued RDN attributes as they are not supported"
            ));
        }
        for (t, v) in rdn {
            let t = normalize_type(&t);
            if map.contains_key(&t) {
                return Err(format!(
                    "distinguished name (DN) {dn:?} has duplicate RDN attribute for {t:?}, DN can only have unique RDN attributes"
                ));
            }
            map.insert(t, v);
        }
    }
    for field in ["C", "ST", "O"] {
        if map.get(field).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "distinguished name (DN) {dn:?} has no mandatory RDN attribute for {field:?}, it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"
            ));
        }
    }
    Ok(map)
}

/// True when every attribute of `subset` has the same value in `set`.
pub(crate) fn is_subset_dn(
    subset: &BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
) -> bool {
    subset.iter().all(|(k, v)| set.get(k) == Some(v))
}

type Rdn = Vec<(String, String)>;

/// RFC 4514 string → RDNs (also accepting ';' as a separator and spaces around separators).
fn parse_rfc4514(s: &str) -> Result<Vec<Rdn>, String> {
    let bytes = s.as_bytes();
    let mut rdns: Vec<Rdn> = Vec::new();
    let mut rdn: Rdn = Vec::new();
    let mut i = 0usize;
    if s.trim().is_empty() {
        return Ok(rdns);
    }
    loop {
        // attribute type
        let eq = s[i..]
            .find('=')
            .map(|p| p + i)
            .ok_or_else(|| format!("{:?} has no '=' between type and value", &s[i..]))?;
        let attr_type = s[i..eq].trim();
        if attr_type.is_empty() {
            return Err("empty attribute type".into());
        }
        if !attr_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(format!("invalid attribute type {attr_type:?}"));
        }
        i = eq + 1;
        // attribute value
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let mut value: Vec<u8> = Vec::new();
        let mut significant = 0usize; // length up to the last escaped or non-space byte
        let hex_form = i < bytes.len() && bytes[i] == b'#';
        let mut end_sep: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'\\' => {
                    let next = *bytes.get(i + 1).ok_or("dangling escape at the end")?;
                    if next.is_ascii_hexdigit()
                        && bytes.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
                    {
                        let h = &s[i + 1..i + 3];
                        value.push(u8::from_str_radix(h, 16).map_err(|_| "bad hex escape")?);
                        i += 3;
                    } else {
                        value.push(next);
                        i += 2;
                    }
                    significant = value.len();
                }
                b',' | b';' | b'+' => {
                    end_sep = Some(b);
                    i += 1;
                    break;
                }
                _ => {
                    value.push(b);
                    i += 1;
                    if b != b' ' {
                        significant = value.len();
                    }
                }
            }
        }
        value.truncate(significant);
        let value = if hex_form {
            decode_hex_value(&value)?
        } else {
            String::from_utf8(value).map_err(|_| "value is not valid UTF-8".to_string())?
        };
        rdn.push((attr_type.to_string(), value));
        match end_sep {
            Some(b'+') => {}
            Some(_) => {
                rdns.push(std::mem::take(&mut rdn));
                if s[i..].trim().is_empty() {
                    return Err("trailing separator".into());
                }
            }
            None => {
                rdns.push(std::mem::take(&mut rdn));
                return Ok(rdns);
            }
        }
    }
}

/// `#hex` attribute values: BER of a string type.
fn decode_hex_value(v: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(&v[1..]).map_err(|_| "bad hex value")?;
    let bytes = hex::decode(text).map_err(|_| format!("bad hex value #{text}"))?;
    let mut r = Reader::new(&bytes);
    let tlv = r.read_any("hex value")?;
    r.finish("hex value")?;
    decode_string(tlv.tag, tlv.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(attrs: &[(&str, u8, &str)]) -> Vec<u8> {
        let mut seq = Vec::new();
        for (oid, tag, v) in attrs {
            let oid_der = match *oid {
                "C" => vec![0x55, 4, 6],
                "ST" => vec![0x55, 4, 8],
                "L" => vec![0x55, 4, 7],
                "O" => vec![0x55, 4, 10],
                "OU" => vec![0x55, 4, 11],
                "CN" => vec![0x55, 4, 3],
                "E" => vec![0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
                _ => unreachable!(),
            };
            let mut atv = der::encode_tlv(0x06, &oid_der);
            atv.extend(der::encode_tlv(*tag, v.as_bytes()));
            let atv = der::encode_tlv(0x30, &atv);
            seq.extend(der::encode_tlv(0x31, &atv));
        }
        der::encode_tlv(0x30, &seq)
    }

    #[test]
    fn go_string_uses_go_order_not_der_order() {
        // DER order O, ST, C (like notation's expired_e2e.crt) prints as Go does.
        let raw = name(&[
            ("O", 0x0c, "Internet Widgits Pty Ltd"),
            ("ST", 0x0c, "Some-State"),
            ("C", 0x13, "AU"),
        ]);
        let n = parse_name(&raw).unwrap();
        assert_eq!(
            n.go_string(),
            "O=Internet Widgits Pty Ltd,ST=Some-State,C=AU"
        );
        let raw = name(&[
            ("C", 0x13, "US"),
            ("ST", 0x13, "WA"),
            ("L", 0x13, "Seattle"),
            ("O", 0x13, "Notary"),
            ("CN", 0x13, "ratify-bats-test"),
        ]);
        assert_eq!(
            parse_name(&raw).unwrap().go_string(),
            "CN=ratify-bats-test,O=Notary,L=Seattle,ST=WA,C=US"
        );
    }

    #[test]
    fn go_string_escapes_and_extras() {
        let raw = name(&[
            ("C", 0x13, "US"),
            ("OU", 0x0c, "a,b"),
            ("OU", 0x0c, " lead"),
            ("E", 0x16, "a@b.c"),
            ("CN", 0x0c, "#x"),
        ]);
        let n = parse_name(&raw).unwrap();
        assert_eq!(
            n.go_string(),
            "CN=\\#x,OU=a\\,b+OU=\\ lead,C=US,1.2.840.113549.1.9.1=#0c056140622e63"
        );
        assert!(n.identity_map().unwrap_err().contains("multi-valued"));
    }

    #[test]
    fn trusted_identity_parsing() {
        let m = parse_trusted_identity_dn(
            " C=US, ST=WA, L=Seattle, O=wabbit-networks.io, OU=Security Tools",
        )
        .unwrap();
        assert_eq!(m["OU"], "Security Tools");
        assert_eq!(m["C"], "US");
        let m = parse_trusted_identity_dn("CN=a\\,b\\\\c,O=x\\;y,S=WA,C=US").unwrap();
        assert_eq!(m["CN"], "a,b\\c");
        assert_eq!(m["O"], "x;y");
        assert_eq!(m["ST"], "WA");
        let e = parse_trusted_identity_dn(" CN=e2e,L=Seattle,ST=WA,C=US").unwrap_err();
        assert!(e.contains("no mandatory RDN attribute for \"O\""), "{e}");
        let e = parse_trusted_identity_dn("C=US,ST=WA,O=a+OU=b").unwrap_err();
        assert!(e.contains("multi-valued"), "{e}");
        let e = parse_trusted_identity_dn("C=US,ST=WA,O=a,O=b").unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        assert!(parse_trusted_identity_dn("C=US,ST=WA,O").is_err());
    }
}
