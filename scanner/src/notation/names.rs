//! X.509 distinguished names: the string form Go's `pkix.Name.String()` prints (which Ratify puts
//! in a Notation report's `extensions.Issuer` / `extensions.SN` and notation uses for identity
//! matching), and the RFC 4514 parser for `x509.subject:` trusted identities.

use std::collections::BTreeMap;

use verdict_crds::dn::decode_string;

use crate::der;

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
}
