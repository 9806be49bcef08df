//! Fixture PKI and Notation envelope signing for the notation tests and benchmark: keys of every
//! size the Notary Project allows, certificates with chosen extensions (rcgen), and JWS / COSE
//! envelopes signed like notation does. (To be consolidated with verdict-testkit's PKI.)
#![allow(dead_code)]

pub mod tsa;

use std::path::PathBuf;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use coset::cbor::value::Value as Cbor;
use coset::{CborSerializable as _, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose,
};
use serde_json::{Value, json};
use verdict_scanner::notation::{TargetArtifact, TrustPolicyDocument, TrustStoreType, TrustStores};

/// Directory of the third-party vectors, or `None` (the test recorded as skipped) when absent.
pub fn vectors_dir() -> Option<PathBuf> {
    Some(verdict_testkit::shared_dir()?.join("vectors"))
}

/// The date the vector README judges verdicts at.
pub fn vectors_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
}

pub fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// Key types the Notary Project allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    P521,
}

impl KeyKind {
    pub const ALL: [KeyKind; 6] = [
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::P521,
    ];

    pub fn jws_alg(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "PS256",
            KeyKind::Rsa3072 => "PS384",
            KeyKind::Rsa4096 => "PS512",
            KeyKind::P256 => "ES256",
            KeyKind::P384 => "ES384",
            KeyKind::P521 => "ES512",
        }
    }

    pub fn cose_alg(self) -> iana::Algorithm {
        match self {
            KeyKind::Rsa2048 => iana::Algorithm::PS256,
            KeyKind::Rsa3072 => iana::Algorithm::PS384,
            KeyKind::Rsa4096 => iana::Algorithm::PS512,
            KeyKind::P256 => iana::Algorithm::ES256,
            KeyKind::P384 => iana::Algorithm::ES384,
            KeyKind::P521 => iana::Algorithm::ES512,
        }
    }
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key usable both for certificates (rcgen) and Notation signatures (aws-lc-rs).
pub struct TestKey {
    pub kind: KeyKind,
    signer: Signer,
    pub rcgen: rcgen::KeyPair,
}

impl TestKey {
    pub fn generate(kind: KeyKind) -> Self {
        let (signer, pkcs8): (Signer, Vec<u8>) = match kind {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
                let size = match kind {
                    KeyKind::Rsa2048 => KeySize::Rsa2048,
                    KeyKind::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size).unwrap();
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
                    .unwrap()
                    .as_ref()
                    .to_vec();
                (Signer::Rsa(kp), der)
            }
            _ => {
                let alg = match kind {
                    KeyKind::P256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    KeyKind::P384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                    _ => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
                };
                let kp = EcdsaKeyPair::generate(alg).unwrap();
                let der = kp.to_pkcs8v1().unwrap().as_ref().to_vec();
                (Signer::Ec(kp), der)
            }
        };
        let rcgen_alg = match kind {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::P521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        };
        let rcgen =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), rcgen_alg)
                .unwrap();
        Self {
            kind,
            signer,
            rcgen,
        }
    }

    /// Signs with the Notation algorithm of the key (PSS salt = hash length, ECDSA r||s).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(kp) => {
                let enc: &'static dyn sig::RsaEncoding = match self.kind {
                    KeyKind::Rsa2048 => &sig::RSA_PSS_SHA256,
                    KeyKind::Rsa3072 => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                self.rsa_sign(kp, enc, msg)
            }
            Signer::Ec(kp) => kp
                .sign(&SystemRandom::new(), msg)
                .unwrap()
                .as_ref()
                .to_vec(),
        }
    }

    /// RSA-PSS with an explicit hash (to build algorithm/key mismatches).
    pub fn sign_rsa_pss_sha256(&self, msg: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(kp) => self.rsa_sign(kp, &sig::RSA_PSS_SHA256, msg),
            Signer::Ec(_) => panic!("not an RSA key"),
        }
    }

    fn rsa_sign(&self, kp: &RsaKeyPair, enc: &'static dyn sig::RsaEncoding, msg: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; kp.public_modulus_len()];
        kp.sign(enc, &SystemRandom::new(), msg, &mut out).unwrap();
        out
    }

    /// Public key bytes as aws-lc-rs verifies them (PKCS#1 RSAPublicKey / SEC1 point).
    pub fn public_key_raw(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(kp) => kp.public_key().as_ref().to_vec(),
            Signer::Ec(kp) => kp.public_key().as_ref().to_vec(),
        }
    }

    /// The aws-lc-rs verification algorithm matching [`Self::sign`].
    pub fn verification_alg(&self) -> &'static dyn sig::VerificationAlgorithm {
        match self.kind {
            KeyKind::Rsa2048 => &sig::RSA_PSS_2048_8192_SHA256,
            KeyKind::Rsa3072 => &sig::RSA_PSS_2048_8192_SHA384,
            KeyKind::Rsa4096 => &sig::RSA_PSS_2048_8192_SHA512,
            KeyKind::P256 => &sig::ECDSA_P256_SHA256_FIXED,
            KeyKind::P384 => &sig::ECDSA_P384_SHA384_FIXED,
            KeyKind::P521 => &sig::ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// Certificate contents.
#[derive(Clone)]
pub struct CertSpec {
    pub cn: String,
    pub org: String,
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
    pub key_usages: Vec<KeyUsagePurpose>,
    /// Key usage as a non-critical custom extension instead (digitalSignature only).
    pub key_usage_non_critical: bool,
    pub ekus: Vec<ExtendedKeyUsagePurpose>,
    /// `Some(critical)`: an EKU extension with only timeStamping, with that criticality.
    pub tsa_eku: Option<bool>,
    pub is_ca: IsCa,
}

impl CertSpec {
    /// A code-signing leaf: KU digitalSignature (critical), EKU codeSigning, no BC.
    pub fn leaf(cn: &str) -> Self {
        Self {
            cn: cn.into(),
            org: "Verdict Test".into(),
            not_before: (2020, 1, 1),
            not_after: (2100, 1, 1),
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            key_usage_non_critical: false,
            ekus: vec![ExtendedKeyUsagePurpose::CodeSigning],
            tsa_eku: None,
            is_ca: IsCa::NoCa,
        }
    }

    /// A CA: BC cA=true (critical), KU keyCertSign+cRLSign (critical).
    pub fn ca(cn: &str) -> Self {
        Self {
            cn: cn.into(),
            org: "Verdict Test".into(),
            not_before: (2020, 1, 1),
            not_after: (2100, 1, 1),
            key_usages: vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
            key_usage_non_critical: false,
            ekus: vec![],
            tsa_eku: None,
            is_ca: IsCa::Ca(BasicConstraints::Unconstrained),
        }
    }

    fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::StateOrProvinceName, "WA");
        dn.push(DnType::LocalityName, "Seattle");
        dn.push(DnType::OrganizationName, self.org.as_str());
        dn.push(DnType::CommonName, self.cn.as_str());
        p.distinguished_name = dn;
        p.not_before =
            rcgen::date_time_ymd(self.not_before.0, self.not_before.1, self.not_before.2);
        p.not_after = rcgen::date_time_ymd(self.not_after.0, self.not_after.1, self.not_after.2);
        p.is_ca = self.is_ca;
        if self.key_usage_non_critical {
            let mut ext =
                CustomExtension::from_oid_content(&[2, 5, 29, 15], vec![0x03, 0x02, 0x07, 0x80]);
            ext.set_criticality(false);
            p.custom_extensions.push(ext);
        } else {
            p.key_usages = self.key_usages.clone();
        }
        p.extended_key_usages = self.ekus.clone();
        if let Some(critical) = self.tsa_eku {
            // SEQUENCE { id-kp-timeStamping }
            let content = vec![
                0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
            ];
            let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], content);
            ext.set_criticality(critical);
            p.custom_extensions.push(ext);
        }
        p
    }

    /// A TSA signing certificate: KU digitalSignature (critical), EKU timeStamping (critical).
    pub fn tsa(cn: &str) -> Self {
        Self {
            ekus: vec![],
            tsa_eku: Some(true),
            ..Self::leaf(cn)
        }
    }
}

/// An issued certificate with its key and parameters (so it can issue further certificates).
pub struct Issued {
    pub der: Vec<u8>,
    pub key: TestKey,
    params: CertificateParams,
}

impl Issued {
    pub fn self_signed(spec: &CertSpec, key: TestKey) -> Self {
        let params = spec.params();
        let der = params.self_signed(&key.rcgen).unwrap().der().to_vec();
        Self { der, key, params }
    }

    pub fn issue(&self, spec: &CertSpec, key: TestKey) -> Issued {
        let params = spec.params();
        let issuer = Issuer::from_params(&self.params, &self.key.rcgen);
        let der = params
            .signed_by(&key.rcgen, &issuer)
            .unwrap()
            .der()
            .to_vec();
        Issued { der, key, params }
    }
}

/// root → intermediate → leaf, all with `kind` keys.
pub struct Chain {
    pub root: Issued,
    pub intermediate: Issued,
    pub leaf: Issued,
}

impl Chain {
    pub fn new(kind: KeyKind) -> Self {
        Self::with_leaf(kind, CertSpec::leaf("verdict-signer"))
    }

    pub fn with_leaf(kind: KeyKind, leaf: CertSpec) -> Self {
        let root = Issued::self_signed(&CertSpec::ca("Verdict Test Root"), TestKey::generate(kind));
        let mut ica = CertSpec::ca("Verdict Test Intermediate");
        ica.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let intermediate = root.issue(&ica, TestKey::generate(kind));
        let leaf = intermediate.issue(&leaf, TestKey::generate(kind));
        Self {
            root,
            intermediate,
            leaf,
        }
    }

    /// x5c order: leaf, intermediate, root.
    pub fn x5c(&self) -> Vec<Vec<u8>> {
        vec![
            self.leaf.der.clone(),
            self.intermediate.der.clone(),
            self.root.der.clone(),
        ]
    }
}

/// The subject manifest the fixtures sign.
pub fn subject() -> TargetArtifact {
    TargetArtifact::new(
        "application/vnd.oci.image.manifest.v1+json",
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
        517,
    )
}

pub const REFERENCE: &str = "registry.example.com/team/app@sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// Envelope contents; `Default` gives a valid notary.x509 signature.
#[derive(Clone)]
pub struct Opts {
    pub scheme: String,
    pub signing_time: Option<DateTime<Utc>>,
    pub authentic_signing_time: Option<DateTime<Utc>>,
    pub expiry: Option<DateTime<Utc>>,
    /// Replaces the computed `crit` list.
    pub crit: Option<Vec<String>>,
    /// Extra protected headers (extended attributes), string-valued.
    pub extra: Vec<(String, String)>,
    pub content_type: String,
    /// Overrides the algorithm written in the envelope.
    pub alg: Option<KeyKind>,
    /// Signs RSA keys with PSS-SHA256 whatever their size.
    pub force_pss_sha256: bool,
    pub payload: Option<Vec<u8>>,
    pub timestamp: Option<Vec<u8>>,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            scheme: "notary.x509".into(),
            signing_time: Some(Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()),
            authentic_signing_time: None,
            expiry: None,
            crit: None,
            extra: vec![],
            content_type: "application/vnd.cncf.notary.payload.v1+json".into(),
            alg: None,
            force_pss_sha256: false,
            payload: None,
            timestamp: None,
        }
    }
}

impl Opts {
    fn crit(&self) -> Vec<String> {
        if let Some(c) = &self.crit {
            return c.clone();
        }
        let mut c = vec!["io.cncf.notary.signingScheme".to_string()];
        if self.expiry.is_some() {
            c.push("io.cncf.notary.expiry".into());
        }
        if self.authentic_signing_time.is_some() {
            c.push("io.cncf.notary.authenticSigningTime".into());
        }
        c
    }

    fn payload(&self, subject: &TargetArtifact) -> Vec<u8> {
        self.payload.clone().unwrap_or_else(|| {
            serde_json::to_vec(&json!({"targetArtifact": {
                "mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}}))
            .unwrap()
        })
    }

    fn sign(&self, key: &TestKey, msg: &[u8]) -> Vec<u8> {
        if self.force_pss_sha256 {
            key.sign_rsa_pss_sha256(msg)
        } else {
            key.sign(msg)
        }
    }
}

/// A JWS envelope (flattened JSON) as notation writes it.
pub fn jws(key: &TestKey, chain: &[Vec<u8>], subject: &TargetArtifact, o: &Opts) -> Vec<u8> {
    let mut protected = serde_json::Map::new();
    protected.insert("alg".into(), json!(o.alg.unwrap_or(key.kind).jws_alg()));
    protected.insert("crit".into(), json!(o.crit()));
    protected.insert("cty".into(), json!(o.content_type));
    protected.insert("io.cncf.notary.signingScheme".into(), json!(o.scheme));
    if let Some(t) = o.signing_time {
        protected.insert("io.cncf.notary.signingTime".into(), json!(t.to_rfc3339()));
    }
    if let Some(t) = o.authentic_signing_time {
        protected.insert(
            "io.cncf.notary.authenticSigningTime".into(),
            json!(t.to_rfc3339()),
        );
    }
    if let Some(t) = o.expiry {
        protected.insert("io.cncf.notary.expiry".into(), json!(t.to_rfc3339()));
    }
    for (k, v) in &o.extra {
        protected.insert(k.clone(), json!(v));
    }
    let protected_b64 =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Value::Object(protected)).unwrap());
    let payload_b64 = URL_SAFE_NO_PAD.encode(o.payload(subject));
    let signature = o.sign(key, format!("{protected_b64}.{payload_b64}").as_bytes());
    let mut header = json!({
        "x5c": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
        "io.cncf.notary.signingAgent": "verdict-tests",
    });
    if let Some(ts) = &o.timestamp {
        header["io.cncf.notary.timestampSignature"] = json!(STANDARD.encode(ts));
    }
    serde_json::to_vec(&json!({
        "payload": payload_b64,
        "protected": protected_b64,
        "header": header,
        "signature": URL_SAFE_NO_PAD.encode(signature),
    }))
    .unwrap()
}

fn cose_time(t: DateTime<Utc>) -> Cbor {
    Cbor::Tag(1, Box::new(Cbor::Integer(t.timestamp().into())))
}

/// A COSE_Sign1_Tagged envelope as notation writes it.
pub fn cose(key: &TestKey, chain: &[Vec<u8>], subject: &TargetArtifact, o: &Opts) -> Vec<u8> {
    let mut p = HeaderBuilder::new()
        .algorithm(o.alg.unwrap_or(key.kind).cose_alg())
        .content_type(o.content_type.clone())
        .text_value(
            "io.cncf.notary.signingScheme".into(),
            Cbor::Text(o.scheme.clone()),
        );
    for c in o.crit() {
        p = p.add_critical_label(coset::RegisteredLabelWithPrivate::Text(c));
    }
    if let Some(t) = o.signing_time {
        p = p.text_value("io.cncf.notary.signingTime".into(), cose_time(t));
    }
    if let Some(t) = o.authentic_signing_time {
        p = p.text_value("io.cncf.notary.authenticSigningTime".into(), cose_time(t));
    }
    if let Some(t) = o.expiry {
        p = p.text_value("io.cncf.notary.expiry".into(), cose_time(t));
    }
    for (k, v) in &o.extra {
        p = p.text_value(k.clone(), Cbor::Text(v.clone()));
    }
    let mut u = HeaderBuilder::new()
        .value(
            33,
            Cbor::Array(chain.iter().map(|c| Cbor::Bytes(c.clone())).collect()),
        )
        .text_value(
            "io.cncf.notary.signingAgent".into(),
            Cbor::Text("verdict-tests".into()),
        );
    if let Some(ts) = &o.timestamp {
        u = u.text_value(
            "io.cncf.notary.timestampSignature".into(),
            Cbor::Bytes(ts.clone()),
        );
    }
    CoseSign1Builder::new()
        .protected(p.build())
        .unprotected(u.build())
        .payload(o.payload(subject))
        .create_signature(&[], |tbs| o.sign(key, tbs))
        .build()
        .to_tagged_vec()
        .unwrap()
}

/// Decodes a COSE envelope, lets `f` change it, re-encodes (without re-signing).
pub fn tamper_cose(bytes: &[u8], f: impl FnOnce(&mut coset::CoseSign1)) -> Vec<u8> {
    let mut msg = coset::CoseSign1::from_tagged_slice(bytes).unwrap();
    f(&mut msg);
    msg.to_tagged_vec().unwrap()
}

/// Ensures coset's untagged serializer is linked (used by callers comparing encodings).
pub fn cose_untagged(msg: coset::CoseSign1) -> Vec<u8> {
    msg.to_vec().unwrap()
}

/// A trust policy document from JSON (panics on invalid: tests build valid ones).
pub fn policy(v: Value) -> TrustPolicyDocument {
    TrustPolicyDocument::from_json(&v).unwrap()
}

/// One global statement at `level` over `stores` with `identities`.
pub fn global_policy(level: &str, stores: &[&str], identities: &[&str]) -> TrustPolicyDocument {
    policy(json!({"version": "1.0", "trustPolicies": [{
        "name": "test", "registryScopes": ["*"], "signatureVerification": {"level": level},
        "trustStores": stores, "trustedIdentities": identities}]}))
}

/// Trust stores from `(type, name, DER or PEM)`.
pub fn stores(entries: &[(TrustStoreType, &str, &[u8])]) -> TrustStores {
    let mut s = TrustStores::new();
    for (ty, name, data) in entries {
        s.add_certificates(*ty, name, data).unwrap();
    }
    s
}

/// The raw signature bytes of an envelope (what an RFC 3161 timestamp covers).
pub fn envelope_signature(env: &[u8], media_type: &str) -> Vec<u8> {
    if media_type == "application/jose+json" {
        let v: Value = serde_json::from_slice(env).unwrap();
        URL_SAFE_NO_PAD
            .decode(v["signature"].as_str().unwrap())
            .unwrap()
    } else {
        coset::CoseSign1::from_tagged_slice(env).unwrap().signature
    }
}

/// Adds `io.cncf.notary.timestampSignature` to the unprotected header; the signature stays valid.
pub fn with_timestamp(env: &[u8], media_type: &str, token: &[u8]) -> Vec<u8> {
    if media_type == "application/jose+json" {
        let mut v: Value = serde_json::from_slice(env).unwrap();
        v["header"]["io.cncf.notary.timestampSignature"] = json!(STANDARD.encode(token));
        serde_json::to_vec(&v).unwrap()
    } else {
        tamper_cose(env, |m| {
            m.unprotected.rest.push((
                coset::Label::Text("io.cncf.notary.timestampSignature".into()),
                Cbor::Bytes(token.to_vec()),
            ))
        })
    }
}
