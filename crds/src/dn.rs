//! X.509 distinguished names as trust policies write them: the RFC 4514 parser for
//! `x509.subject:` trusted identities with the Notary Project's rules, and the attribute names and
//! string types it shares with the certificate side (`verdict-scanner`'s `notation::names`).

use std::collections::BTreeMap;

/// Go's fixed attribute-type names (crypto/x509/pkix `attributeTypeNames`).
pub fn short_name(oid: &str) -> Option<&'static str> {
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

/// Decodes the ASN.1 string types Go's certificate parser accepts in names.
pub fn decode_string(tag: u8, content: &[u8]) -> Result<String, String> {
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
pub fn parse_trusted_identity_dn(dn: &str) -> Result<BTreeMap<String, String>, String> {
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
pub fn is_subset_dn(subset: &BTreeMap<String, String>, set: &BTreeMap<String, String>) -> bool {
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

/// `#hex` attribute values: the BER of one string.
fn decode_hex_value(v: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(&v[1..]).map_err(|_| "bad hex value")?;
    let bytes = hex_decode(text).ok_or_else(|| format!("bad hex value #{text}"))?;
    let (&tag, rest) = bytes.split_first().ok_or("empty hex value")?;
    let (&first, rest) = rest.split_first().ok_or("hex value without a length")?;
    let (len, content) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => match rest.split_first() {
            Some((&n, content)) if n >= 0x80 => (usize::from(n), content),
            _ => return Err("hex value with a badly encoded length".into()),
        },
        _ => return Err("hex value longer than 255 bytes".into()),
    };
    if content.len() != len {
        return Err("hex value length does not match its content".into());
    }
    decode_string(tag, content)
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn hex_values_are_ber_strings() {
        let m = parse_trusted_identity_dn("C=#13025553,ST=WA,O=#0c03616263").unwrap();
        assert_eq!(m["C"], "US");
        assert_eq!(m["O"], "abc");
        assert!(parse_trusted_identity_dn("C=#1302555,ST=WA,O=x").is_err());
        assert!(parse_trusted_identity_dn("C=#130355,ST=WA,O=x").is_err());
    }
}
