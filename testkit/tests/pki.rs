//! Test PKI: chains parse with the intended extensions and validity, signatures verify with
//! aws-lc-rs from the certificate's public key, bad-certificate variants are really bad.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use verdict_testkit::pki::{
    CertBuilder, DEFAULT_LEAF_SUBJECT, Eku, KeyAlg, OffsetDateTime, SignAlg, TestChain, TestKey,
    notation_thumbprints, sha256_fingerprint,
};
use x509_parser::prelude::*;

const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
const EKU_OID: &str = "2.5.29.37";

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

/// Verifies `cert`'s signature with `issuer`'s public key using aws-lc-rs directly.
fn verify_issued(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) {
    let alg_oid = cert.signature_algorithm.algorithm.to_id_string();
    let spki = issuer.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let alg: &dyn sig::VerificationAlgorithm = match (alg_oid.as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.11", _) => &sig::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", _) => &sig::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", _) => &sig::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", Some("1.2.840.10045.3.1.7")) => &sig::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some("1.3.132.0.34")) => &sig::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", Some("1.3.132.0.35")) => &sig::ECDSA_P521_SHA512_ASN1,
        other => panic!("unexpected certificate signature algorithm {other:?}"),
    };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .expect("certificate signature verifies with the issuer key");
    assert_eq!(cert.issuer(), issuer.subject());
}

fn ekus(cert: &X509Certificate<'_>) -> (bool, Vec<String>) {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == EKU_OID)
        .expect("EKU extension");
    let ParsedExtension::ExtendedKeyUsage(eku) = ext.parsed_extension() else {
        panic!("EKU does not parse")
    };
    let mut oids = Vec::new();
    if eku.code_signing {
        oids.push(CODE_SIGNING.to_string());
    }
    if eku.time_stamping {
        oids.push(TIME_STAMPING.to_string());
    }
    if eku.server_auth {
        oids.push("serverAuth".to_string());
    }
    if eku.any {
        oids.push("any".to_string());
    }
    oids.extend(eku.other.iter().map(|o| o.to_id_string()));
    (ext.critical, oids)
}

/// ("RSA", modulus bits) or ("EC", curve size from the curve OID).
fn key_bits(cert: &X509Certificate<'_>) -> (String, usize) {
    match cert.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(rsa) => ("RSA".into(), rsa.key_size()),
        x509_parser::public_key::PublicKey::EC(_) => {
            let curve = cert
                .public_key()
                .algorithm
                .parameters
                .as_ref()
                .unwrap()
                .as_oid()
                .unwrap();
            let bits = match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" => 256,
                "1.3.132.0.34" => 384,
                "1.3.132.0.35" => 521,
                other => panic!("unexpected curve {other}"),
            };
            ("EC".into(), bits)
        }
        other => panic!("unexpected key {other:?}"),
    }
}

fn algs_for(alg: KeyAlg) -> Vec<SignAlg> {
    match alg {
        KeyAlg::EcP256 => vec![SignAlg::Es256, SignAlg::Es256Der],
        KeyAlg::EcP384 => vec![SignAlg::Es384, SignAlg::Es384Der],
        KeyAlg::EcP521 => vec![SignAlg::Es512, SignAlg::Es512Der],
        _ => vec![
            SignAlg::Ps256,
            SignAlg::Ps384,
            SignAlg::Ps512,
            SignAlg::Rs256,
            SignAlg::Rs384,
            SignAlg::Rs512,
        ],
    }
}

#[test]
fn chains_for_every_key_type_parse_verify_and_sign() {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for alg in KeyAlg::ALL {
        let chain = TestChain::new(alg).unwrap();
        let root = parse(chain.root.der());
        let inter = parse(chain.intermediate.der());
        let leaf = parse(chain.leaf.der());
        verify_issued(&root, &root);
        verify_issued(&inter, &root);
        verify_issued(&leaf, &inter);

        // CAs: basicConstraints critical CA:true, KU keyCertSign critical.
        for (ca, path_len) in [(&root, None), (&inter, Some(0))] {
            let bc = ca.basic_constraints().unwrap().unwrap();
            assert!(bc.critical && bc.value.ca);
            assert_eq!(bc.value.path_len_constraint, path_len);
            let ku = ca.key_usage().unwrap().unwrap();
            assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
        }

        // Leaf: CA:false, KU digitalSignature only (critical), EKU codeSigning only.
        let bc = leaf.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca);
        let ku = leaf.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.digital_signature());
        assert!(!ku.value.key_encipherment() && !ku.value.key_cert_sign());
        assert_eq!(ekus(&leaf), (false, vec![CODE_SIGNING.to_string()]));
        assert_eq!(
            leaf.subject().to_string(),
            "C=US, ST=WA, L=Seattle, O=Notary, CN=test"
        );
        assert_eq!(DEFAULT_LEAF_SUBJECT, leaf.subject().to_string());
        for c in [&root, &inter, &leaf] {
            assert!(c.validity().not_before.timestamp() < now);
            assert!(c.validity().not_after.timestamp() > now);
        }

        let (kind, bits) = key_bits(&leaf);
        let want = match alg {
            KeyAlg::Rsa2048 => ("RSA", 2048),
            KeyAlg::Rsa3072 => ("RSA", 3072),
            KeyAlg::Rsa4096 => ("RSA", 4096),
            KeyAlg::EcP256 => ("EC", 256),
            KeyAlg::EcP384 => ("EC", 384),
            KeyAlg::EcP521 => ("EC", 521),
        };
        assert_eq!((kind.as_str(), bits), want, "{alg:?}");

        // Every signature the signer makes verifies against the certificate's public key.
        let public = &leaf.public_key().subject_public_key.data;
        let msg = b"eyJhbGciOiJQUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319";
        for s in algs_for(alg) {
            let signature = chain.leaf.sign(s, msg).unwrap();
            UnparsedPublicKey::new(s.verification_alg(), public)
                .verify(msg, &signature)
                .unwrap_or_else(|_| panic!("{alg:?}/{s:?} does not verify"));
            assert!(
                UnparsedPublicKey::new(s.verification_alg(), public)
                    .verify(b"tampered", &signature)
                    .is_err()
            );
        }
        // Fixed-width r||s for JWS/COSE.
        let fixed_len = match alg {
            KeyAlg::EcP256 => Some(64),
            KeyAlg::EcP384 => Some(96),
            KeyAlg::EcP521 => Some(132),
            _ => None,
        };
        if let Some(n) = fixed_len {
            assert_eq!(chain.leaf.key().sign_notation(msg).unwrap().len(), n);
        }

        // PKCS#8 round trip, PEM forms.
        let key = chain.leaf.key();
        assert!(key.pkcs8_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            key.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(chain.leaf.pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(key.public_key_der(), leaf.public_key().raw);
        let again = TestKey::from_pkcs8_der(alg, key.pkcs8_der()).unwrap();
        let s = again.sign_notation(msg).unwrap();
        key.verify(alg.notation_alg(), msg, &s).unwrap();
        assert_eq!(chain.x5c()[0], chain.leaf.der());
        let pems = x509_parser::pem::Pem::iter_from_buffer(chain.chain_pem().as_bytes())
            .map(|p| p.unwrap().contents)
            .collect::<Vec<_>>();
        assert_eq!(pems, chain.x5c());
    }
}

#[test]
fn signer_rejects_algorithms_that_do_not_fit_the_key() {
    let ec = TestKey::generate(KeyAlg::EcP256).unwrap();
    assert!(ec.sign(SignAlg::Es384, b"m").is_err());
    assert!(ec.sign(SignAlg::Ps256, b"m").is_err());
    let rsa = TestKey::generate(KeyAlg::Rsa2048).unwrap();
    assert!(rsa.sign(SignAlg::Es256, b"m").is_err());
    assert!(TestKey::from_pkcs8_der(KeyAlg::Rsa3072, rsa.pkcs8_der()).is_err());
    assert!(!format!("{rsa:?}").contains(&hex::encode(&rsa.pkcs8_der()[..16])));
    assert_eq!(KeyAlg::Rsa3072.notation_alg().jws_name(), "PS384");
    assert_eq!(KeyAlg::EcP521.notation_alg().cose_alg(), -36);
}

#[test]
fn bad_certificate_variants() {
    let root = CertBuilder::root_ca("CN=Bad Root").self_signed().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();

    let expired = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .expired()
        .signed_by(&root)
        .unwrap();
    let c = parse(expired.der());
    assert!(c.validity().not_after.timestamp() < now);
    assert!(!c.validity().is_valid());

    let future = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .not_yet_valid()
        .signed_by(&root)
        .unwrap();
    let c = parse(future.der());
    assert!(c.validity().not_before.timestamp() > now);

    let nb = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let na = OffsetDateTime::from_unix_timestamp(4_100_000_000).unwrap();
    let custom = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .validity(nb, na)
        .signed_by(&root)
        .unwrap();
    let c = parse(custom.der());
    assert_eq!(c.validity().not_before.timestamp(), 1_700_000_000);
    assert_eq!(c.validity().not_after.timestamp(), 4_100_000_000);

    let wrong_eku = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .wrong_eku_server_auth()
        .signed_by(&root)
        .unwrap();
    assert_eq!(
        ekus(&parse(wrong_eku.der())).1,
        vec!["serverAuth".to_string()]
    );

    let no_ds = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .no_digital_signature()
        .signed_by(&root)
        .unwrap();
    let c = parse(no_ds.der());
    let ku = c.key_usage().unwrap().unwrap();
    assert!(!ku.value.digital_signature());
    assert!(ku.value.non_repudiation());

    let ca_leaf = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .ca_true()
        .signed_by(&root)
        .unwrap();
    assert!(
        parse(ca_leaf.der())
            .basic_constraints()
            .unwrap()
            .unwrap()
            .value
            .ca
    );

    let any = CertBuilder::code_signing(DEFAULT_LEAF_SUBJECT)
        .ekus(vec![Eku::CodeSigning, Eku::Any])
        .signed_by(&root)
        .unwrap();
    assert_eq!(
        ekus(&parse(any.der())).1,
        vec![CODE_SIGNING.to_string(), "any".to_string()]
    );

    let self_signed_leaf = CertBuilder::code_signing("C=US, ST=WA, O=Self, CN=self")
        .self_signed()
        .unwrap();
    let c = parse(self_signed_leaf.der());
    verify_issued(&c, &c);
}

#[test]
fn tsa_leaf_has_critical_time_stamping_eku_only() {
    let root = CertBuilder::root_ca("CN=TSA Root")
        .key_alg(KeyAlg::Rsa2048)
        .self_signed()
        .unwrap();
    let tsa = CertBuilder::tsa("C=US, O=Test TSA, CN=tsa")
        .signed_by(&root)
        .unwrap();
    let c = parse(tsa.der());
    verify_issued(&c, &parse(root.der()));
    assert_eq!(ekus(&c), (true, vec![TIME_STAMPING.to_string()]));
    assert!(c.key_usage().unwrap().unwrap().value.digital_signature());
}

#[test]
fn tls_server_cert_covers_loopback() {
    let ca = CertBuilder::root_ca("CN=TLS Root").self_signed().unwrap();
    let srv = CertBuilder::tls_server().signed_by(&ca).unwrap();
    let c = parse(srv.der());
    let san = c.subject_alternative_name().unwrap().unwrap();
    let names = &san.value.general_names;
    assert!(
        names
            .iter()
            .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == [127, 0, 0, 1]))
    );
    assert!(
        names
            .iter()
            .any(|n| matches!(n, GeneralName::DNSName("localhost")))
    );
    assert_eq!(ekus(&c).1, vec!["serverAuth".to_string()]);
}

#[test]
fn fingerprints_match_notation_vectors() {
    let Some(shared) = verdict_testkit::shared_dir() else {
        return;
    };
    let pem = std::fs::read(shared.join("vectors/notation-e2e/config/localkeys/e2e.crt")).unwrap();
    let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    assert_eq!(
        sha256_fingerprint(&p.contents),
        "e38aea13f2b051f7183cca64a51ee676f4d4456f41d9fecf15eb367efc7343b9"
    );
    // Same string as the signature manifest annotation in e2e-valid-signature.
    let manifest = std::fs::read(shared.join(
        "vectors/notation-e2e/oci_layout/e2e-valid-signature/blobs/sha256/\
         90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
    ))
    .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"],
        notation_thumbprints(&[&p.contents])
    );
}
