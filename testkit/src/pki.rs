//! Test PKI: RSA/EC keys, root and intermediate CAs, code-signing, TSA and TLS-server leaves,
//! deliberately bad certificates (wrong EKU, no digitalSignature, CA:true leaf, expired,
//! not yet valid), and signers for Notation (RSASSA-PSS, ECDSA r||s) and Cosign (ECDSA DER).
//!
//! Over 600 lines because every certificate shape the tests need comes from one builder.

use std::fmt;

use anyhow::{Context, Result, anyhow, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
pub use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyPair, PublicKeyData, RsaKeySize, SanType, SerialNumber,
};
use sha2::{Digest as _, Sha256};
pub use time::{self, Duration, OffsetDateTime};

/// Key type and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// RSA 2048 (Notation: PS256).
    Rsa2048,
    /// RSA 3072 (PS384).
    Rsa3072,
    /// RSA 4096 (PS512).
    Rsa4096,
    /// ECDSA P-256 (ES256).
    EcP256,
    /// ECDSA P-384 (ES384).
    EcP384,
    /// ECDSA P-521 (ES512).
    EcP521,
}

impl KeyAlg {
    /// Every supported key type.
    pub const ALL: [KeyAlg; 6] = [
        KeyAlg::Rsa2048,
        KeyAlg::Rsa3072,
        KeyAlg::Rsa4096,
        KeyAlg::EcP256,
        KeyAlg::EcP384,
        KeyAlg::EcP521,
    ];

    /// The signature algorithm Notation requires for this key (RSA n → PS256/384/512,
    /// P-256/384/521 → ES256/384/512).
    pub fn notation_alg(self) -> SignAlg {
        match self {
            KeyAlg::Rsa2048 => SignAlg::Ps256,
            KeyAlg::Rsa3072 => SignAlg::Ps384,
            KeyAlg::Rsa4096 => SignAlg::Ps512,
            KeyAlg::EcP256 => SignAlg::Es256,
            KeyAlg::EcP384 => SignAlg::Es384,
            KeyAlg::EcP521 => SignAlg::Es512,
        }
    }

    /// `true` for RSA keys.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096)
    }

    /// Certificate signature algorithm used when this key signs certificates.
    fn rcgen_alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlg::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
            KeyAlg::Rsa3072 => &rcgen::PKCS_RSA_SHA384,
            KeyAlg::Rsa4096 => &rcgen::PKCS_RSA_SHA512,
            KeyAlg::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlg::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlg::EcP521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        }
    }

    fn curve(self) -> Option<&'static str> {
        match self {
            KeyAlg::EcP256 => Some("P-256"),
            KeyAlg::EcP384 => Some("P-384"),
            KeyAlg::EcP521 => Some("P-521"),
            _ => None,
        }
    }
}

/// Signature algorithms the signer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignAlg {
    /// RSASSA-PSS SHA-256, MGF1 SHA-256, salt 32 (JWS PS256, COSE -37).
    Ps256,
    /// RSASSA-PSS SHA-384 (PS384, -38).
    Ps384,
    /// RSASSA-PSS SHA-512 (PS512, -39).
    Ps512,
    /// RSASSA-PKCS1-v1_5 SHA-256 (cosign RSA keys).
    Rs256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    Rs512,
    /// ECDSA P-256 SHA-256, fixed-width r||s (JWS ES256, COSE -7).
    Es256,
    /// ECDSA P-384 SHA-384, r||s (ES384, -35).
    Es384,
    /// ECDSA P-521 SHA-512, r||s (ES512, -36).
    Es512,
    /// ECDSA P-256 SHA-256, ASN.1 DER (cosign).
    Es256Der,
    /// ECDSA P-384 SHA-384, ASN.1 DER.
    Es384Der,
    /// ECDSA P-521 SHA-512, ASN.1 DER.
    Es512Der,
}

impl SignAlg {
    /// JWS `alg` name (DER ECDSA variants map to the same name; they are not valid in JWS).
    pub fn jws_name(self) -> &'static str {
        match self {
            SignAlg::Ps256 => "PS256",
            SignAlg::Ps384 => "PS384",
            SignAlg::Ps512 => "PS512",
            SignAlg::Rs256 => "RS256",
            SignAlg::Rs384 => "RS384",
            SignAlg::Rs512 => "RS512",
            SignAlg::Es256 | SignAlg::Es256Der => "ES256",
            SignAlg::Es384 | SignAlg::Es384Der => "ES384",
            SignAlg::Es512 | SignAlg::Es512Der => "ES512",
        }
    }

    /// COSE algorithm identifier (RFC 9053 / RFC 8230).
    pub fn cose_alg(self) -> i64 {
        match self {
            SignAlg::Ps256 => -37,
            SignAlg::Ps384 => -38,
            SignAlg::Ps512 => -39,
            SignAlg::Rs256 => -257,
            SignAlg::Rs384 => -258,
            SignAlg::Rs512 => -259,
            SignAlg::Es256 | SignAlg::Es256Der => -7,
            SignAlg::Es384 | SignAlg::Es384Der => -35,
            SignAlg::Es512 | SignAlg::Es512Der => -36,
        }
    }

    /// The aws-lc-rs verification algorithm for signatures made with this algorithm.
    pub fn verification_alg(self) -> &'static dyn sig::VerificationAlgorithm {
        match self {
            SignAlg::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
            SignAlg::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
            SignAlg::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
            SignAlg::Rs256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            SignAlg::Rs384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            SignAlg::Rs512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            SignAlg::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
            SignAlg::Es384 => &sig::ECDSA_P384_SHA384_FIXED,
            SignAlg::Es512 => &sig::ECDSA_P521_SHA512_FIXED,
            SignAlg::Es256Der => &sig::ECDSA_P256_SHA256_ASN1,
            SignAlg::Es384Der => &sig::ECDSA_P384_SHA384_ASN1,
            SignAlg::Es512Der => &sig::ECDSA_P521_SHA512_ASN1,
        }
    }

    fn curve(self) -> Option<&'static str> {
        match self {
            SignAlg::Es256 | SignAlg::Es256Der => Some("P-256"),
            SignAlg::Es384 | SignAlg::Es384Der => Some("P-384"),
            SignAlg::Es512 | SignAlg::Es512Der => Some("P-521"),
            _ => None,
        }
    }
}

/// A private key with its PKCS#8 encoding. `Debug` does not print the key.
pub struct TestKey {
    alg: KeyAlg,
    pkcs8: Vec<u8>,
    rcgen: KeyPair,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("pkcs8", &"<redacted>")
            .finish()
    }
}

impl Clone for TestKey {
    fn clone(&self) -> Self {
        Self::from_pkcs8_der(self.alg, &self.pkcs8).expect("re-parsing our own PKCS#8 key")
    }
}

impl TestKey {
    /// Generates a fresh key (aws-lc-rs; RSA generation takes up to a few seconds for 4096).
    pub fn generate(alg: KeyAlg) -> Result<Self> {
        let rcgen = match alg {
            KeyAlg::Rsa2048 => KeyPair::generate_rsa_for(alg.rcgen_alg(), RsaKeySize::_2048),
            KeyAlg::Rsa3072 => KeyPair::generate_rsa_for(alg.rcgen_alg(), RsaKeySize::_3072),
            KeyAlg::Rsa4096 => KeyPair::generate_rsa_for(alg.rcgen_alg(), RsaKeySize::_4096),
            _ => KeyPair::generate_for(alg.rcgen_alg()),
        }
        .with_context(|| format!("generating a {alg:?} key"))?;
        let pkcs8 = rcgen.serialize_der();
        Ok(Self { alg, pkcs8, rcgen })
    }

    /// Imports a PKCS#8 DER private key of type `alg`.
    pub fn from_pkcs8_der(alg: KeyAlg, der: &[u8]) -> Result<Self> {
        let rcgen =
            KeyPair::from_pem_and_sign_algo(&pem_encode("PRIVATE KEY", der), alg.rcgen_alg())
                .with_context(|| format!("PKCS#8 key is not a valid {alg:?} key"))?;
        let key = Self {
            alg,
            pkcs8: der.to_vec(),
            rcgen,
        };
        key.check_size()?;
        Ok(key)
    }

    fn check_size(&self) -> Result<()> {
        if self.alg.is_rsa() {
            let want = match self.alg {
                KeyAlg::Rsa2048 => 256,
                KeyAlg::Rsa3072 => 384,
                _ => 512,
            };
            let got = RsaKeyPair::from_pkcs8(&self.pkcs8)
                .map_err(|e| anyhow!("RSA PKCS#8 key: {e}"))?
                .public_modulus_len();
            if got != want {
                bail!("key has a {}-bit modulus, not {:?}", got * 8, self.alg);
            }
        }
        Ok(())
    }

    /// Key type.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// PKCS#8 DER private key.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn pkcs8_pem(&self) -> String {
        self.rcgen.serialize_pem()
    }

    /// SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.rcgen.subject_public_key_info()
    }

    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`, what cosign's `--key` reads).
    pub fn public_key_pem(&self) -> String {
        self.rcgen.public_key_pem()
    }

    /// Raw public key as aws-lc-rs `UnparsedPublicKey` wants it (RSA: PKCS#1 RSAPublicKey DER;
    /// EC: uncompressed point).
    pub fn public_key_raw(&self) -> &[u8] {
        self.rcgen.der_bytes()
    }

    /// Signs `msg` with `alg`. RSA keys take PS*/RS*, EC keys the ES* of their own curve.
    pub fn sign(&self, alg: SignAlg, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        if self.alg.is_rsa() {
            let padding: &'static dyn sig::RsaEncoding = match alg {
                SignAlg::Ps256 => &sig::RSA_PSS_SHA256,
                SignAlg::Ps384 => &sig::RSA_PSS_SHA384,
                SignAlg::Ps512 => &sig::RSA_PSS_SHA512,
                SignAlg::Rs256 => &sig::RSA_PKCS1_SHA256,
                SignAlg::Rs384 => &sig::RSA_PKCS1_SHA384,
                SignAlg::Rs512 => &sig::RSA_PKCS1_SHA512,
                other => bail!("{other:?} cannot be made with an RSA key ({:?})", self.alg),
            };
            let kp = RsaKeyPair::from_pkcs8(&self.pkcs8).map_err(|e| anyhow!("RSA key: {e}"))?;
            let mut out = vec![0u8; kp.public_modulus_len()];
            kp.sign(padding, &rng, msg, &mut out)
                .map_err(|e| anyhow!("RSA signing failed: {e}"))?;
            return Ok(out);
        }
        let key_curve = self.alg.curve();
        if alg.curve().is_none() || alg.curve() != key_curve {
            bail!(
                "{alg:?} cannot be made with a {} key",
                key_curve.unwrap_or("non-EC")
            );
        }
        let signing: &'static sig::EcdsaSigningAlgorithm = match alg {
            SignAlg::Es256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            SignAlg::Es384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            SignAlg::Es512 => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
            SignAlg::Es256Der => &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            SignAlg::Es384Der => &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
            _ => &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
        };
        let kp =
            EcdsaKeyPair::from_pkcs8(signing, &self.pkcs8).map_err(|e| anyhow!("EC key: {e}"))?;
        let s = kp
            .sign(&rng, msg)
            .map_err(|e| anyhow!("ECDSA signing failed: {e}"))?;
        debug_assert_eq!(kp.public_key().as_ref(), self.public_key_raw());
        Ok(s.as_ref().to_vec())
    }

    /// Signs with [`KeyAlg::notation_alg`].
    pub fn sign_notation(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.sign(self.alg.notation_alg(), msg)
    }

    /// Verifies `signature` over `msg` with this key's public half.
    pub fn verify(&self, alg: SignAlg, msg: &[u8], signature: &[u8]) -> Result<()> {
        sig::UnparsedPublicKey::new(alg.verification_alg(), self.public_key_raw())
            .verify(msg, signature)
            .map_err(|_| anyhow!("{alg:?} signature does not verify"))
    }
}

/// PEM-encodes `der` with `label` (64-column base64).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Lowercase hex SHA-256 of `der` (e.g. a certificate fingerprint).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The value of Notation's `io.cncf.notary.x509chain.thumbprint#S256` annotation for a chain
/// (leaf first): a JSON array string of lowercase hex SHA-256 fingerprints, as notation writes it.
pub fn notation_thumbprints(chain_der: &[&[u8]]) -> String {
    let prints: Vec<String> = chain_der.iter().map(|d| sha256_fingerprint(d)).collect();
    serde_json::to_string(&prints).unwrap_or_default()
}

/// Extended key usages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Eku {
    /// id-kp-codeSigning 1.3.6.1.5.5.7.3.3.
    CodeSigning,
    /// id-kp-timeStamping 1.3.6.1.5.5.7.3.8.
    TimeStamping,
    /// id-kp-serverAuth 1.3.6.1.5.5.7.3.1.
    ServerAuth,
    /// id-kp-clientAuth 1.3.6.1.5.5.7.3.2.
    ClientAuth,
    /// id-kp-emailProtection 1.3.6.1.5.5.7.3.4.
    EmailProtection,
    /// anyExtendedKeyUsage 2.5.29.37.0.
    Any,
    /// Any other OID, as arcs.
    Other(Vec<u64>),
}

impl Eku {
    /// OID arcs.
    pub fn oid(&self) -> Vec<u64> {
        match self {
            Eku::CodeSigning => vec![1, 3, 6, 1, 5, 5, 7, 3, 3],
            Eku::TimeStamping => vec![1, 3, 6, 1, 5, 5, 7, 3, 8],
            Eku::ServerAuth => vec![1, 3, 6, 1, 5, 5, 7, 3, 1],
            Eku::ClientAuth => vec![1, 3, 6, 1, 5, 5, 7, 3, 2],
            Eku::EmailProtection => vec![1, 3, 6, 1, 5, 5, 7, 3, 4],
            Eku::Any => vec![2, 5, 29, 37, 0],
            Eku::Other(arcs) => arcs.clone(),
        }
    }

    fn to_rcgen(&self) -> ExtendedKeyUsagePurpose {
        match self {
            Eku::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            Eku::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Eku::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            Eku::Any => ExtendedKeyUsagePurpose::Any,
            Eku::Other(arcs) => ExtendedKeyUsagePurpose::Other(arcs.clone()),
        }
    }
}

/// DER of an OBJECT IDENTIFIER.
fn der_oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push_base128 = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend(tmp);
    };
    if arcs.len() >= 2 {
        push_base128(arcs[0] * 40 + arcs[1]);
        for &a in &arcs[2..] {
            push_base128(a);
        }
    }
    der_tlv(0x06, &body)
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

/// Parses "C=US, ST=WA, L=Seattle, O=Notary, CN=test" (C, ST/S, L, O, OU, CN; order kept).
pub fn parse_dn(dn: &str) -> Result<DistinguishedName> {
    let mut out = DistinguishedName::new();
    for part in dn.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("DN part {part:?} in {dn:?} is not KEY=value"))?;
        let ty = match k.trim().to_ascii_uppercase().as_str() {
            "C" => DnType::CountryName,
            "ST" | "S" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "CN" => DnType::CommonName,
            other => {
                bail!("unsupported DN attribute {other:?} in {dn:?} (use C, ST, L, O, OU, CN)")
            }
        };
        out.push(ty, v.trim());
    }
    Ok(out)
}

/// What a certificate is for; sets the defaults of [`CertBuilder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    RootCa,
    IntermediateCa,
    CodeSigning,
    Tsa,
    TlsServer,
}

/// Builds a certificate. Start from a profile, adjust, then [`self_signed`](Self::self_signed)
/// or [`signed_by`](Self::signed_by).
#[derive(Clone, Debug)]
pub struct CertBuilder {
    profile: Profile,
    subject: String,
    key_alg: KeyAlg,
    key: Option<TestKey>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_usages: Vec<KeyUsagePurpose>,
    ekus: Vec<Eku>,
    eku_critical: bool,
    is_ca: IsCa,
    sans: Vec<SanType>,
}

/// Default subject of code-signing leaves.
pub const DEFAULT_LEAF_SUBJECT: &str = "C=US, ST=WA, L=Seattle, O=Notary, CN=test";

impl CertBuilder {
    fn new(profile: Profile, subject: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        let (years, key_usages, ekus, is_ca) = match profile {
            Profile::RootCa => (
                20,
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
                vec![],
                IsCa::Ca(BasicConstraints::Unconstrained),
            ),
            Profile::IntermediateCa => (
                10,
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
                vec![],
                IsCa::Ca(BasicConstraints::Constrained(0)),
            ),
            Profile::CodeSigning => (
                1,
                vec![KeyUsagePurpose::DigitalSignature],
                vec![Eku::CodeSigning],
                IsCa::ExplicitNoCa,
            ),
            Profile::Tsa => (
                5,
                vec![KeyUsagePurpose::DigitalSignature],
                vec![Eku::TimeStamping],
                IsCa::ExplicitNoCa,
            ),
            Profile::TlsServer => (
                1,
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ],
                vec![Eku::ServerAuth],
                IsCa::ExplicitNoCa,
            ),
        };
        Self {
            profile,
            subject: subject.to_string(),
            key_alg: KeyAlg::EcP256,
            key: None,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(365 * years),
            key_usages,
            ekus,
            eku_critical: profile == Profile::Tsa,
            is_ca,
            sans: Vec::new(),
        }
    }

    /// Root CA: CA:true (critical), KU keyCertSign+cRLSign (critical), 20 years.
    pub fn root_ca(subject: &str) -> Self {
        Self::new(Profile::RootCa, subject)
    }

    /// Intermediate CA: like a root with pathLen 0, 10 years.
    pub fn intermediate_ca(subject: &str) -> Self {
        Self::new(Profile::IntermediateCa, subject)
    }

    /// Code-signing leaf: CA:false, KU digitalSignature (critical), EKU codeSigning, 1 year.
    pub fn code_signing(subject: &str) -> Self {
        Self::new(Profile::CodeSigning, subject)
    }

    /// TSA leaf: KU digitalSignature, EKU timeStamping only, **critical**.
    pub fn tsa(subject: &str) -> Self {
        Self::new(Profile::Tsa, subject)
    }

    /// TLS server leaf for HTTPS fakes: SAN 127.0.0.1 and localhost, EKU serverAuth.
    pub fn tls_server() -> Self {
        let mut b = Self::new(Profile::TlsServer, "CN=localhost");
        b.sans = vec![
            SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            SanType::DnsName("localhost".try_into().expect("valid DNS name")),
        ];
        b
    }

    /// Key type for a freshly generated key (default EC P-256).
    pub fn key_alg(mut self, alg: KeyAlg) -> Self {
        self.key_alg = alg;
        self
    }

    /// Uses an existing key (e.g. to re-issue a certificate for the same key).
    pub fn key(mut self, key: TestKey) -> Self {
        self.key_alg = key.alg();
        self.key = Some(key);
        self
    }

    /// Sets the validity period.
    pub fn validity(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Expired: valid from 30 days ago until yesterday.
    pub fn expired(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.validity(now - Duration::days(30), now - Duration::days(1))
    }

    /// Not yet valid: valid from tomorrow for 30 days.
    pub fn not_yet_valid(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.validity(now + Duration::days(1), now + Duration::days(30))
    }

    /// Replaces the extended key usages (empty = no EKU extension).
    pub fn ekus(mut self, ekus: Vec<Eku>) -> Self {
        self.ekus = ekus;
        self
    }

    /// Marks the EKU extension critical (default only for TSA leaves).
    pub fn eku_critical(mut self, critical: bool) -> Self {
        self.eku_critical = critical;
        self
    }

    /// Wrong EKU for code signing: serverAuth instead of codeSigning.
    pub fn wrong_eku_server_auth(self) -> Self {
        self.ekus(vec![Eku::ServerAuth])
    }

    /// Replaces the key usages (empty = no KU extension). rcgen always marks KU critical.
    pub fn key_usages(mut self, usages: Vec<KeyUsagePurpose>) -> Self {
        self.key_usages = usages;
        self
    }

    /// KU without digitalSignature (only contentCommitment, which Notation does not forbid).
    pub fn no_digital_signature(self) -> Self {
        self.key_usages(vec![KeyUsagePurpose::ContentCommitment])
    }

    /// Makes this certificate claim CA:true (a "leaf" that is a CA).
    pub fn ca_true(mut self) -> Self {
        self.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        self
    }

    /// Sets basic constraints directly (`IsCa::NoCa` omits the extension).
    pub fn basic_constraints(mut self, is_ca: IsCa) -> Self {
        self.is_ca = is_ca;
        self
    }

    /// Adds a DNS SAN.
    pub fn san_dns(mut self, name: &str) -> Result<Self> {
        self.sans.push(SanType::DnsName(
            name.try_into()
                .map_err(|e| anyhow!("invalid DNS SAN {name:?}: {e}"))?,
        ));
        Ok(self)
    }

    /// Adds an IP SAN.
    pub fn san_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.sans.push(SanType::IpAddress(ip));
        self
    }

    fn params(&self) -> Result<CertificateParams> {
        let mut p = CertificateParams::default();
        p.distinguished_name = parse_dn(&self.subject)?;
        p.not_before = self.not_before;
        p.not_after = self.not_after;
        p.key_usages = self.key_usages.clone();
        p.is_ca = self.is_ca;
        p.subject_alt_names = self.sans.clone();
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| anyhow!("random serial"))?;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        if self.eku_critical && !self.ekus.is_empty() {
            let body: Vec<u8> = self.ekus.iter().flat_map(|e| der_oid(&e.oid())).collect();
            let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], der_tlv(0x30, &body));
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        } else {
            p.extended_key_usages = self.ekus.iter().map(Eku::to_rcgen).collect();
        }
        Ok(p)
    }

    fn take_key(&mut self) -> Result<TestKey> {
        match self.key.take() {
            Some(k) => Ok(k),
            None => TestKey::generate(self.key_alg),
        }
    }

    /// Self-signed certificate (roots; also self-signed leaves).
    pub fn self_signed(mut self) -> Result<TestCert> {
        let key = self.take_key()?;
        let params = self.params()?;
        let cert = params
            .self_signed(&key.rcgen)
            .with_context(|| format!("self-signing {:?} {}", self.profile, self.subject))?;
        Ok(TestCert::new(cert.der().to_vec(), key, params))
    }

    /// Certificate issued by `issuer` (with an authority key identifier).
    pub fn signed_by(mut self, issuer: &TestCert) -> Result<TestCert> {
        let key = self.take_key()?;
        let mut params = self.params()?;
        params.use_authority_key_identifier_extension = true;
        let iss = Issuer::from_params(&issuer.params, &issuer.key.rcgen);
        let cert = params
            .signed_by(&key.rcgen, &iss)
            .with_context(|| format!("issuing {:?} {}", self.profile, self.subject))?;
        Ok(TestCert::new(cert.der().to_vec(), key, params))
    }
}

/// An issued certificate with its private key.
#[derive(Clone, Debug)]
pub struct TestCert {
    der: Vec<u8>,
    key: TestKey,
    params: CertificateParams,
}

impl TestCert {
    fn new(der: Vec<u8>, key: TestKey, params: CertificateParams) -> Self {
        Self { der, key, params }
    }

    /// Certificate DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Certificate PEM.
    pub fn pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// The private key.
    pub fn key(&self) -> &TestKey {
        &self.key
    }

    /// Signs with the certificate's key (see [`TestKey::sign`]).
    pub fn sign(&self, alg: SignAlg, msg: &[u8]) -> Result<Vec<u8>> {
        self.key.sign(alg, msg)
    }

    /// Lowercase hex SHA-256 of the DER.
    pub fn sha256_fingerprint(&self) -> String {
        sha256_fingerprint(&self.der)
    }

    /// Writes the PEM to `path`.
    pub fn write_pem(&self, path: &std::path::Path) -> Result<()> {
        std::fs::write(path, self.pem()).with_context(|| format!("writing {}", path.display()))
    }
}

/// Root → intermediate → code-signing leaf, all with keys of one type.
#[derive(Clone, Debug)]
pub struct TestChain {
    /// Self-signed root CA.
    pub root: TestCert,
    /// Intermediate CA issued by the root.
    pub intermediate: TestCert,
    /// Code-signing leaf ([`DEFAULT_LEAF_SUBJECT`]) issued by the intermediate.
    pub leaf: TestCert,
}

impl TestChain {
    /// A fresh chain with keys of type `alg`.
    pub fn new(alg: KeyAlg) -> Result<Self> {
        let root = CertBuilder::root_ca("C=US, ST=WA, O=Verdict Test, CN=Test Root")
            .key_alg(alg)
            .self_signed()?;
        let intermediate =
            CertBuilder::intermediate_ca("C=US, ST=WA, O=Verdict Test, CN=Test Intermediate")
                .key_alg(alg)
                .signed_by(&root)?;
        let leaf = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
            .key_alg(alg)
            .signed_by(&intermediate)?;
        Ok(Self {
            root,
            intermediate,
            leaf,
        })
    }

    /// DER certificates leaf first (JWS `x5c` / COSE `x5chain` order).
    pub fn x5c(&self) -> Vec<Vec<u8>> {
        vec![
            self.leaf.der.clone(),
            self.intermediate.der.clone(),
            self.root.der.clone(),
        ]
    }

    /// PEM bundle leaf first.
    pub fn chain_pem(&self) -> String {
        format!(
            "{}{}{}",
            self.leaf.pem(),
            self.intermediate.pem(),
            self.root.pem()
        )
    }

    /// Notation thumbprint annotation for this chain.
    pub fn notation_thumbprints(&self) -> String {
        notation_thumbprints(&[&self.leaf.der, &self.intermediate.der, &self.root.der])
    }
}
