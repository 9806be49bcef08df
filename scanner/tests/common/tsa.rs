//! RFC 3161 timestamp tokens for tests: CMS SignedData over a TSTInfo, signed by a fixture TSA,
//! with knobs to break each property the verifier checks.

use rcgen::SigningKey as _;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Issued, KeyKind};

fn len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let b = n.to_be_bytes();
        let skip = b.iter().take_while(|x| **x == 0).count();
        out.push(0x80 | (b.len() - skip) as u8);
        out.extend_from_slice(&b[skip..]);
    }
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

pub fn set(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &items.concat())
}

pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut content = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        content.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    tlv(0x06, &content)
}

pub fn int(v: u64) -> Vec<u8> {
    let mut b: Vec<u8> = v
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|x| *x == 0)
        .collect();
    if b.is_empty() || b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    tlv(0x02, &b)
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
pub const BASELINE_POLICY: &str = "0.4.0.2023.1.1";
pub const OTHER_POLICY: &str = "1.3.6.1.4.1.4146.2.3.1.2";

/// What to put in the token (defaults: a correct token).
pub struct TstSpec<'a> {
    pub tsa: &'a Issued,
    /// Certificates carried in the token (signing certificate first usually).
    pub certs: Vec<Vec<u8>>,
    /// `YYYYMMDDHHMMSS[.fff]Z`
    pub gen_time: String,
    pub policy: &'static str,
    pub accuracy: Option<(u64, u64)>,
    /// The data the message imprint hashes (the envelope signature).
    pub imprinted: Vec<u8>,
    pub signing_certificate_v2: bool,
    pub wrong_cert_hash: bool,
    pub wrong_message_digest: bool,
    pub tamper_signature: bool,
}

impl<'a> TstSpec<'a> {
    pub fn new(tsa: &'a Issued, gen_time: &str, imprinted: &[u8]) -> Self {
        Self {
            tsa,
            certs: vec![tsa.der.clone()],
            gen_time: gen_time.into(),
            policy: OTHER_POLICY,
            accuracy: None,
            imprinted: imprinted.to_vec(),
            signing_certificate_v2: true,
            wrong_cert_hash: false,
            wrong_message_digest: false,
            tamper_signature: false,
        }
    }
}

/// A DER TimeStampToken (ContentInfo with SignedData).
pub fn timestamp_token(s: &TstSpec<'_>) -> Vec<u8> {
    let alg_sha256 = seq(&[oid(SHA256)]);
    let mut tst = vec![
        int(1),
        oid(s.policy),
        seq(&[alg_sha256.clone(), tlv(0x04, &sha256(&s.imprinted))]),
        int(42),
        tlv(0x18, s.gen_time.as_bytes()),
    ];
    if let Some((secs, millis)) = s.accuracy {
        let mut acc = Vec::new();
        if secs > 0 {
            acc.push(int(secs));
        }
        if millis > 0 {
            let i = int(millis);
            acc.push(tlv(0x80, &i[2..]));
        }
        tst.push(seq(&acc));
    }
    let tst_info = seq(&tst);

    let (_, cert) = X509Certificate::from_der(&s.tsa.der).unwrap();
    let issuer = cert.issuer().as_raw().to_vec();
    let serial = cert.raw_serial().to_vec();

    let mut cert_hash = sha256(&s.tsa.der);
    if s.wrong_cert_hash {
        cert_hash[0] ^= 1;
    }
    let mut digest = sha256(&tst_info);
    if s.wrong_message_digest {
        digest[0] ^= 1;
    }
    let mut attrs = vec![
        seq(&[
            oid("1.2.840.113549.1.9.3"),
            set(&[oid("1.2.840.113549.1.9.16.1.4")]),
        ]),
        seq(&[oid("1.2.840.113549.1.9.4"), set(&[tlv(0x04, &digest)])]),
    ];
    if s.signing_certificate_v2 {
        // SigningCertificateV2 { certs: [ESSCertIDv2 { certHash, issuerSerial }] } (SHA-256 default)
        let issuer_serial = seq(&[seq(&[tlv(0xa4, &issuer)]), tlv(0x02, &serial)]);
        let ess = seq(&[tlv(0x04, &cert_hash), issuer_serial]);
        attrs.push(seq(&[
            oid("1.2.840.113549.1.9.16.2.47"),
            set(&[seq(&[seq(&[ess])])]),
        ]));
    }
    attrs.sort();
    let signed_attrs = set(&attrs);
    let mut signature = s.tsa.key.rcgen.sign(&signed_attrs).unwrap();
    if s.tamper_signature {
        let last = signature.len() - 1;
        signature[last] ^= 1;
    }
    let sig_alg = match s.tsa.key.kind {
        KeyKind::P256 => seq(&[oid("1.2.840.10045.4.3.2")]),
        KeyKind::P384 => seq(&[oid("1.2.840.10045.4.3.3")]),
        KeyKind::P521 => seq(&[oid("1.2.840.10045.4.3.4")]),
        _ => seq(&[oid("1.2.840.113549.1.1.11"), vec![0x05, 0x00]]),
    };
    let mut signed_attrs_implicit = signed_attrs.clone();
    signed_attrs_implicit[0] = 0xa0;
    let signer_info = seq(&[
        int(1),
        seq(&[issuer, tlv(0x02, &serial)]),
        alg_sha256.clone(),
        signed_attrs_implicit,
        sig_alg,
        tlv(0x04, &signature),
    ]);
    let signed_data = seq(&[
        int(3),
        set(&[alg_sha256]),
        seq(&[
            oid("1.2.840.113549.1.9.16.1.4"),
            tlv(0xa0, &tlv(0x04, &tst_info)),
        ]),
        tlv(0xa0, &s.certs.concat()),
        set(&[signer_info]),
    ]);
    seq(&[oid("1.2.840.113549.1.7.2"), tlv(0xa0, &signed_data)])
}
