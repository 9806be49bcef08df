//! Notation verification with the project's own fixtures (generated keys and certificates):
//! every allowed key type and size in JWS and COSE, intermediates, certificate requirement
//! violations, identities, scope precedence, expiry and validity windows, critical headers,
//! algorithm/key mismatches.
//!
//! Over 600 lines because one test per verification rule, with the fixtures each one signs.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
use serde_json::json;
use verdict_scanner::notation::*;

fn now() -> chrono::DateTime<Utc> {
    utc(2026, 11, 23)
}

type Build = fn(&TestKey, &[Vec<u8>], &TargetArtifact, &Opts) -> Vec<u8>;
const FORMATS: [(&str, Build); 2] = [(MEDIA_TYPE_JWS, jws), (MEDIA_TYPE_COSE, cose)];

fn root_store(chain: &Chain) -> TrustStores {
    stores(&[(TrustStoreType::Ca, "root", &chain.root.der)])
}

fn strict() -> TrustPolicyDocument {
    global_policy("strict", &["ca:root"], &["*"])
}

fn check(
    chain: &Chain,
    x5c: &[Vec<u8>],
    opts: &Opts,
    policy: &TrustPolicyDocument,
    stores: &TrustStores,
    expect: Result<(), (Validation, &str)>,
) {
    for (mt, build) in FORMATS {
        let env = build(&chain.leaf.key, x5c, &subject(), opts);
        let out = verify_signature(&env, mt, &subject(), REFERENCE, policy, stores, now());
        match &expect {
            Ok(()) => assert!(out.verified, "{mt}: {}", out.message),
            Err((validation, reason)) => {
                assert!(
                    !out.verified,
                    "{mt}: expected {validation} failure: {}",
                    out.message
                );
                let f = out.failure.as_ref().unwrap();
                assert_eq!(f.validation, Some(*validation), "{mt}: {}", out.message);
                assert!(
                    f.reason.contains(reason),
                    "{mt}: {:?} lacks {reason:?}",
                    f.reason
                );
            }
        }
    }
}

#[test]
fn every_allowed_key_kind_verifies_through_an_intermediate() {
    for kind in KeyKind::ALL {
        let chain = Chain::new(kind);
        for (mt, build) in FORMATS {
            let env = build(&chain.leaf.key, &chain.x5c(), &subject(), &Opts::default());
            let out = verify_signature(
                &env,
                mt,
                &subject(),
                REFERENCE,
                &strict(),
                &root_store(&chain),
                now(),
            );
            assert!(out.verified, "{kind:?} {mt}: {}", out.message);
            assert_eq!(
                out.evidence.signature_algorithm.unwrap().name(),
                kind.jws_alg()
            );
            assert_eq!(out.evidence.cert_chain_sha256.len(), 3);
            assert_eq!(out.evidence.trust_anchors.len(), 1);
            assert_eq!(
                out.evidence.trust_anchors[0].sha256,
                out.evidence.cert_chain_sha256[2]
            );
            let signer = out.signer.unwrap();
            assert_eq!(
                signer.subject,
                "CN=verdict-signer,O=Verdict Test,L=Seattle,ST=WA,C=US"
            );
            assert_eq!(
                signer.issuer,
                "CN=Verdict Test Intermediate,O=Verdict Test,L=Seattle,ST=WA,C=US"
            );
        }
    }
}

#[test]
fn pinned_intermediate_and_self_signed_leaf() {
    let chain = Chain::new(KeyKind::P256);
    // The intermediate alone in the store also anchors (notation compares chain members).
    let s = stores(&[(TrustStoreType::Ca, "root", &chain.intermediate.der)]);
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &strict(),
        &s,
        Ok(()),
    );
    // A single self-signed code-signing certificate trusted as itself.
    let leaf = Issued::self_signed(&CertSpec::leaf("solo"), TestKey::generate(KeyKind::Rsa3072));
    let s = stores(&[(TrustStoreType::Ca, "root", &leaf.der)]);
    for (mt, build) in FORMATS {
        let env = build(
            &leaf.key,
            std::slice::from_ref(&leaf.der),
            &subject(),
            &Opts::default(),
        );
        let out = verify_signature(&env, mt, &subject(), REFERENCE, &strict(), &s, now());
        assert!(out.verified, "{}", out.message);
    }
}

#[test]
fn untrusted_root_fails_authenticity() {
    let chain = Chain::new(KeyKind::Rsa2048);
    let other = Chain::new(KeyKind::Rsa2048);
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &strict(),
        &root_store(&other),
        Err((Validation::Authenticity, "not produced by a trusted signer")),
    );
    // Audit only logs it.
    let audit = global_policy("audit", &["ca:root"], &["*"]);
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &audit,
        &root_store(&other),
        Ok(()),
    );
    // An empty store: nothing to trust.
    let mut empty = TrustStores::new();
    empty.create_store(TrustStoreType::Ca, "root").unwrap();
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &strict(),
        &empty,
        Err((
            Validation::Authenticity,
            "no trusted certificates are found",
        )),
    );
}

#[test]
fn trusted_identities_match_subject_rdns() {
    let chain = Chain::new(KeyKind::P384);
    let s = root_store(&chain);
    let with = |ids: &[&str]| global_policy("strict", &["ca:root"], ids);
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &with(&["x509.subject: C=US, ST=WA, O=Verdict Test"]),
        &s,
        Ok(()),
    );
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &with(&["x509.subject: CN=verdict-signer,O=Verdict Test,L=Seattle,ST=WA,C=US"]),
        &s,
        Ok(()),
    );
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &with(&[
            "x509.subject: C=US, ST=WA, O=Someone Else",
            "x509.subject: C=US, ST=WA, O=Verdict Test, CN=verdict-signer",
        ]),
        &s,
        Ok(()),
    );
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &with(&["x509.subject: C=US, ST=OR, O=Verdict Test"]),
        &s,
        Err((
            Validation::Authenticity,
            "does not match the X.509 trusted identities",
        )),
    );
    // Identities match the leaf, not the intermediate or root.
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &with(&["x509.subject: CN=Verdict Test Root,O=Verdict Test,ST=WA,C=US"]),
        &s,
        Err((
            Validation::Authenticity,
            "\"CN=verdict-signer,O=Verdict Test,L=Seattle,ST=WA,C=US\"",
        )),
    );
}

#[test]
fn wrong_subject_digest_fails_integrity() {
    let chain = Chain::new(KeyKind::P256);
    for (mt, build) in FORMATS {
        let env = build(&chain.leaf.key, &chain.x5c(), &subject(), &Opts::default());
        let mut other = subject();
        other.digest =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111".into();
        let out = verify_signature(
            &env,
            mt,
            &other,
            REFERENCE,
            &strict(),
            &root_store(&chain),
            now(),
        );
        assert_eq!(
            out.failure.as_ref().unwrap().validation,
            Some(Validation::Integrity)
        );
        assert!(
            out.message.contains("content descriptor mismatch"),
            "{}",
            out.message
        );
        // Integrity is enforced even under audit.
        let audit = global_policy("audit", &["ca:root"], &["*"]);
        let out = verify_signature(
            &env,
            mt,
            &other,
            REFERENCE,
            &audit,
            &root_store(&chain),
            now(),
        );
        assert!(!out.verified);
    }
}

#[test]
fn scope_precedence_exact_over_global() {
    let trusted = Chain::new(KeyKind::P256);
    let other = Chain::new(KeyKind::P256);
    let mut s = stores(&[(TrustStoreType::Ca, "team", &trusted.root.der)]);
    s.add_certificate_der(TrustStoreType::Ca, "everyone", &other.root.der)
        .unwrap();
    let p = policy(json!({"version": "1.0", "trustPolicies": [
        {"name": "global", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
         "trustStores": ["ca:everyone"], "trustedIdentities": ["*"]},
        {"name": "team", "registryScopes": ["registry.example.com/team/app"],
         "signatureVerification": {"level": "strict"}, "trustStores": ["ca:team"], "trustedIdentities": ["*"]},
        {"name": "legacy", "registryScopes": ["registry.example.com/legacy/old"],
         "signatureVerification": {"level": "skip"}}
    ]}));
    let env = jws(
        &trusted.leaf.key,
        &trusted.x5c(),
        &subject(),
        &Opts::default(),
    );
    let out = verify_signature(&env, MEDIA_TYPE_JWS, &subject(), REFERENCE, &p, &s, now());
    assert!(out.verified, "{}", out.message);
    assert_eq!(out.policy.unwrap().name, "team");
    // Another repository falls to the global statement, whose store does not trust this signer.
    let elsewhere = REFERENCE.replace("team/app", "team/other");
    let out = verify_signature(&env, MEDIA_TYPE_JWS, &subject(), &elsewhere, &p, &s, now());
    assert_eq!(out.policy.as_ref().unwrap().name, "global");
    assert_eq!(
        out.failure.unwrap().validation,
        Some(Validation::Authenticity)
    );
    // A skip statement: no verification, reported as skipped.
    let legacy = REFERENCE.replace("team/app", "legacy/old");
    let out = verify_signature(
        b"not even an envelope",
        MEDIA_TYPE_JWS,
        &subject(),
        &legacy,
        &p,
        &s,
        now(),
    );
    assert!(out.verified);
    assert!(out.steps.iter().all(|s| s.action == Action::Skip));
    assert!(out.message.contains("skip"));
    assert_eq!(
        prefilter(&p, &s, &legacy, None),
        Prefilter::SkippedByPolicy(
            "trust policy statement \"legacy\" is configured to skip signature verification".into()
        )
    );
}

#[test]
fn certificate_validity_window() {
    // Leaf expired in 2025, no timestamp: fails under strict, logged under permissive.
    let mut spec = CertSpec::leaf("expired");
    spec.not_before = (2020, 1, 1);
    spec.not_after = (2025, 1, 1);
    let chain = Chain::with_leaf(KeyKind::P256, spec);
    let opts = Opts {
        signing_time: Some(utc(2024, 6, 1)),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &opts,
        &strict(),
        &root_store(&chain),
        Err((
            Validation::AuthenticTimestamp,
            "is not valid anymore, it was expired at \"Wed, 01 Jan 2025 00:00:00 +0000\"",
        )),
    );
    check(
        &chain,
        &chain.x5c(),
        &opts,
        &global_policy("permissive", &["ca:root"], &["*"]),
        &root_store(&chain),
        Ok(()),
    );
    // Not yet valid.
    let mut spec = CertSpec::leaf("future");
    spec.not_before = (2030, 1, 1);
    let chain = Chain::with_leaf(KeyKind::P256, spec);
    check(
        &chain,
        &chain.x5c(),
        &Opts::default(),
        &strict(),
        &root_store(&chain),
        Err((
            Validation::AuthenticTimestamp,
            "verification time is before certificate",
        )),
    );
    // An expired root counts too (anchors are not exempt).
    let root = Issued::self_signed(
        &CertSpec {
            not_after: (2026, 1, 1),
            ..CertSpec::ca("Old Root")
        },
        TestKey::generate(KeyKind::P256),
    );
    let leaf = root.issue(
        &CertSpec::leaf("under-old-root"),
        TestKey::generate(KeyKind::P256),
    );
    let s = stores(&[(TrustStoreType::Ca, "root", &root.der)]);
    let env = jws(
        &leaf.key,
        &[leaf.der.clone(), root.der.clone()],
        &subject(),
        &Opts::default(),
    );
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &subject(),
        REFERENCE,
        &strict(),
        &s,
        now(),
    );
    assert_eq!(
        out.failure.unwrap().validation,
        Some(Validation::AuthenticTimestamp)
    );
    assert!(out.message.contains("CN=Old Root"), "{}", out.message);
}

#[test]
fn signature_expiry() {
    let chain = Chain::new(KeyKind::Rsa2048);
    let expired = Opts {
        expiry: Some(utc(2026, 1, 1)),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &expired,
        &strict(),
        &root_store(&chain),
        Err((
            Validation::Expiry,
            "digital signature has expired on \"Thu, 01 Jan 2026 00:00:00 +0000\"",
        )),
    );
    check(
        &chain,
        &chain.x5c(),
        &expired,
        &global_policy("permissive", &["ca:root"], &["*"]),
        &root_store(&chain),
        Ok(()),
    );
    // Exactly at the expiry instant the signature is expired.
    let at = Opts {
        expiry: Some(now()),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &at,
        &strict(),
        &root_store(&chain),
        Err((Validation::Expiry, "has expired")),
    );
    // A future expiry bounds the verdict.
    let later = Opts {
        expiry: Some(utc(2027, 3, 1)),
        ..Opts::default()
    };
    let env = cose(&chain.leaf.key, &chain.x5c(), &subject(), &later);
    let out = verify_signature(
        &env,
        MEDIA_TYPE_COSE,
        &subject(),
        REFERENCE,
        &strict(),
        &root_store(&chain),
        now(),
    );
    assert!(out.verified);
    assert_eq!(out.valid_until, Some(utc(2027, 3, 1)));
    // Expiry must be after the signing time.
    let bad = Opts {
        expiry: Some(utc(2025, 1, 1)),
        signing_time: Some(utc(2025, 6, 1)),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &bad,
        &strict(),
        &root_store(&chain),
        Err((
            Validation::Integrity,
            "expiry cannot be equal or before the signing time",
        )),
    );
}

#[test]
fn leaf_certificate_requirements() {
    let cases: Vec<(CertSpec, &str)> = vec![
        (
            CertSpec {
                ekus: vec![ExtendedKeyUsagePurpose::ServerAuth],
                ..CertSpec::leaf("tls")
            },
            "must not contain serverAuth",
        ),
        (
            CertSpec {
                ekus: vec![
                    ExtendedKeyUsagePurpose::CodeSigning,
                    ExtendedKeyUsagePurpose::TimeStamping,
                ],
                ..CertSpec::leaf("ts")
            },
            "must not contain timeStamping",
        ),
        (
            CertSpec {
                ekus: vec![ExtendedKeyUsagePurpose::Any],
                ..CertSpec::leaf("any")
            },
            "must not contain anyExtendedKeyUsage",
        ),
        (
            CertSpec {
                key_usages: vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ],
                ..CertSpec::leaf("enc")
            },
            "also has keyEncipherment",
        ),
        (
            CertSpec {
                key_usages: vec![KeyUsagePurpose::ContentCommitment],
                ..CertSpec::leaf("nods")
            },
            "digitalSignature bit",
        ),
        (
            CertSpec {
                key_usages: vec![],
                ..CertSpec::leaf("noku")
            },
            "key usage extension must be present",
        ),
        (
            CertSpec {
                key_usage_non_critical: true,
                ..CertSpec::leaf("noncrit")
            },
            "must be marked critical",
        ),
        (
            CertSpec {
                is_ca: IsCa::Ca(BasicConstraints::Unconstrained),
                ..CertSpec::leaf("ca-leaf")
            },
            "must not be a CA",
        ),
    ];
    for (spec, reason) in cases {
        let chain = Chain::with_leaf(KeyKind::P256, spec);
        check(
            &chain,
            &chain.x5c(),
            &Opts::default(),
            &strict(),
            &root_store(&chain),
            Err((Validation::Integrity, reason)),
        );
    }
    // Allowed: no EKU at all, explicit cA=false, nonRepudiation alongside digitalSignature.
    for spec in [
        CertSpec {
            ekus: vec![],
            ..CertSpec::leaf("noeku")
        },
        CertSpec {
            is_ca: IsCa::ExplicitNoCa,
            ..CertSpec::leaf("explicit")
        },
        CertSpec {
            key_usages: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
            ..CertSpec::leaf("nr")
        },
    ] {
        let chain = Chain::with_leaf(KeyKind::P256, spec);
        check(
            &chain,
            &chain.x5c(),
            &Opts::default(),
            &strict(),
            &root_store(&chain),
            Ok(()),
        );
    }
}

#[test]
fn chain_structure_requirements() {
    let chain = Chain::new(KeyKind::P256);
    let s = root_store(&chain);
    // Missing intermediate: the leaf is not issued by the root.
    check(
        &chain,
        &[chain.leaf.der.clone(), chain.root.der.clone()],
        &Opts::default(),
        &strict(),
        &s,
        Err((Validation::Integrity, "is not issued by")),
    );
    // Wrong order.
    check(
        &chain,
        &[
            chain.leaf.der.clone(),
            chain.root.der.clone(),
            chain.intermediate.der.clone(),
        ],
        &Opts::default(),
        &strict(),
        &s,
        Err((Validation::Integrity, "certificate chain is invalid")),
    );
    // No root: the chain must end self-signed.
    check(
        &chain,
        &[chain.leaf.der.clone(), chain.intermediate.der.clone()],
        &Opts::default(),
        &strict(),
        &s,
        Err((Validation::Integrity, "not self-signed")),
    );
    // Intermediate with pathLen 0 below which another CA sits.
    let root = Issued::self_signed(&CertSpec::ca("R"), TestKey::generate(KeyKind::P256));
    let i1 = root.issue(
        &CertSpec {
            is_ca: IsCa::Ca(BasicConstraints::Constrained(0)),
            ..CertSpec::ca("I1")
        },
        TestKey::generate(KeyKind::P256),
    );
    let i2 = i1.issue(&CertSpec::ca("I2"), TestKey::generate(KeyKind::P256));
    let leaf = i2.issue(&CertSpec::leaf("deep"), TestKey::generate(KeyKind::P256));
    let s2 = stores(&[(TrustStoreType::Ca, "root", &root.der)]);
    let env = jws(
        &leaf.key,
        &[
            leaf.der.clone(),
            i2.der.clone(),
            i1.der.clone(),
            root.der.clone(),
        ],
        &subject(),
        &Opts::default(),
    );
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &subject(),
        REFERENCE,
        &strict(),
        &s2,
        now(),
    );
    assert!(
        out.message.contains("path length constraint 0"),
        "{}",
        out.message
    );
    // An intermediate that is not a CA.
    let root = Issued::self_signed(&CertSpec::ca("R2"), TestKey::generate(KeyKind::P256));
    let notca = root.issue(
        &CertSpec {
            is_ca: IsCa::ExplicitNoCa,
            ..CertSpec::ca("NotCA")
        },
        TestKey::generate(KeyKind::P256),
    );
    let leaf = notca.issue(
        &CertSpec::leaf("under-notca"),
        TestKey::generate(KeyKind::P256),
    );
    let s3 = stores(&[(TrustStoreType::Ca, "root", &root.der)]);
    let env = cose(
        &leaf.key,
        &[leaf.der.clone(), notca.der.clone(), root.der.clone()],
        &subject(),
        &Opts::default(),
    );
    let out = verify_signature(
        &env,
        MEDIA_TYPE_COSE,
        &subject(),
        REFERENCE,
        &strict(),
        &s3,
        now(),
    );
    assert_eq!(
        out.failure.as_ref().unwrap().validation,
        Some(Validation::Integrity)
    );
    assert!(out.message.contains("cA set to true"), "{}", out.message);
}

#[test]
fn algorithm_must_match_the_key() {
    let chain = Chain::new(KeyKind::Rsa3072);
    // PS256 declared and really used on an RSA-3072 key: notation requires PS384.
    let o = Opts {
        alg: Some(KeyKind::Rsa2048),
        force_pss_sha256: true,
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &root_store(&chain),
        Err((
            Validation::Integrity,
            "mismatch between the signature algorithm derived from the signing certificate (PS384",
        )),
    );
    // ES256 declared with an RSA key.
    let o = Opts {
        alg: Some(KeyKind::P256),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &root_store(&chain),
        Err((Validation::Integrity, "mismatch")),
    );
    let ec = Chain::new(KeyKind::P384);
    let o = Opts {
        alg: Some(KeyKind::P256),
        ..Opts::default()
    };
    check(
        &ec,
        &ec.x5c(),
        &o,
        &strict(),
        &root_store(&ec),
        Err((Validation::Integrity, "(ES384, EC P-384 key)")),
    );
}

#[test]
fn critical_headers() {
    let chain = Chain::new(KeyKind::P256);
    let s = root_store(&chain);
    // crit must list the signing scheme.
    let o = Opts {
        crit: Some(vec![]),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((Validation::Integrity, "crit")),
    );
    let o = Opts {
        crit: Some(vec!["io.cncf.notary.expiry".into()]),
        expiry: Some(utc(2100, 1, 1)),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((
            Validation::Integrity,
            "not marked as critical: io.cncf.notary.signingScheme",
        )),
    );
    // Expiry present but not critical.
    let o = Opts {
        crit: Some(vec!["io.cncf.notary.signingScheme".into()]),
        expiry: Some(utc(2100, 1, 1)),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((
            Validation::Integrity,
            "not marked as critical: io.cncf.notary.expiry",
        )),
    );
    // A critical header that is not present.
    let o = Opts {
        crit: Some(vec![
            "io.cncf.notary.signingScheme".into(),
            "com.example.missing".into(),
        ]),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((
            Validation::Integrity,
            "\"com.example.missing\" header is marked critical but not present",
        )),
    );
    // An unknown critical extended attribute fails; a non-critical one is ignored.
    let o = Opts {
        crit: Some(vec![
            "io.cncf.notary.signingScheme".into(),
            "com.example.policy".into(),
        ]),
        extra: vec![("com.example.policy".into(), "v1".into())],
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((
            Validation::Integrity,
            "does not understand: com.example.policy",
        )),
    );
    let o = Opts {
        extra: vec![("com.example.note".into(), "hello".into())],
        ..Opts::default()
    };
    check(&chain, &chain.x5c(), &o, &strict(), &s, Ok(()));
    // A verification plugin requirement.
    let o = Opts {
        crit: Some(vec![
            "io.cncf.notary.signingScheme".into(),
            "io.cncf.notary.verificationPlugin".into(),
        ]),
        extra: vec![(
            "io.cncf.notary.verificationPlugin".into(),
            "com.example.plugin".into(),
        )],
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((Validation::Integrity, "verification plugin not supported")),
    );
    // Unsupported payload content type and signing scheme.
    let o = Opts {
        content_type: "application/vnd.cncf.oci.descriptor.v1+json".into(),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((Validation::Integrity, "payload content type")),
    );
    let o = Opts {
        scheme: "notary.x509.other".into(),
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((Validation::Integrity, "unsupported signing scheme")),
    );
    // notary.x509 needs a signing time.
    let o = Opts {
        signing_time: None,
        ..Opts::default()
    };
    check(
        &chain,
        &chain.x5c(),
        &o,
        &strict(),
        &s,
        Err((
            Validation::Integrity,
            "io.cncf.notary.signingTime header is required",
        )),
    );
}

#[test]
fn signing_authority_scheme() {
    let chain = Chain::new(KeyKind::P384);
    let sa = stores(&[(TrustStoreType::SigningAuthority, "sa", &chain.root.der)]);
    let p = global_policy("strict", &["signingAuthority:sa"], &["*"]);
    let o = Opts {
        scheme: "notary.x509.signingAuthority".into(),
        signing_time: None,
        authentic_signing_time: Some(utc(2024, 5, 1)),
        ..Opts::default()
    };
    check(&chain, &chain.x5c(), &o, &p, &sa, Ok(()));
    // The authentic signing time must fall in the chain's validity (leaf from 2020).
    let o2 = Opts {
        authentic_signing_time: Some(utc(2019, 5, 1)),
        ..o.clone()
    };
    check(
        &chain,
        &chain.x5c(),
        &o2,
        &p,
        &sa,
        Err((
            Validation::AuthenticTimestamp,
            "was not valid when the digital signature was produced",
        )),
    );
    // signingTime is not allowed with the signingAuthority scheme.
    let o3 = Opts {
        signing_time: Some(utc(2024, 5, 1)),
        ..o.clone()
    };
    check(
        &chain,
        &chain.x5c(),
        &o3,
        &p,
        &sa,
        Err((Validation::Integrity, "must not be present")),
    );
    // authenticSigningTime must be critical.
    let o4 = Opts {
        crit: Some(vec!["io.cncf.notary.signingScheme".into()]),
        ..o
    };
    check(
        &chain,
        &chain.x5c(),
        &o4,
        &p,
        &sa,
        Err((Validation::Integrity, "io.cncf.notary.authenticSigningTime")),
    );
}

#[test]
fn trust_store_and_policy_errors_are_precise() {
    let leaf = Chain::new(KeyKind::P256).leaf;
    let mut s = TrustStores::new();
    let e = s
        .add_certificate_der(TrustStoreType::Ca, "roots", &leaf.der)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("neither a CA certificate nor a self-signed"),
        "{e}"
    );
    let e = s
        .add_certificates(TrustStoreType::Ca, "bad name!", b"x")
        .unwrap_err();
    assert!(e.to_string().contains("[a-zA-Z0-9_.-]+"), "{e}");
    let e = s
        .add_certificates(
            TrustStoreType::Ca,
            "roots",
            b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
    assert!(e.to_string().contains("ca:roots"), "{e}");
    let e = s
        .add_certificates(TrustStoreType::Ca, "roots", b"not a certificate")
        .unwrap_err();
    assert!(
        e.to_string().contains("certificate 0 cannot be used"),
        "{e}"
    );
    assert!(!e.is_transient());

    let bad = |v: serde_json::Value| TrustPolicyDocument::from_json(&v).unwrap_err().to_string();
    assert!(
        bad(json!({"version": "2.0", "trustPolicies": []})).contains("unsupported version \"2.0\"")
    );
    assert!(
        bad(json!({"version": "1.0", "trustPolicies": []}))
            .contains("zero trust policy statements")
    );
    assert!(bad(json!({"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict", "overide": {}}, "trustStores": ["ca:x"], "trustedIdentities": ["*"]}]}))
        .contains("unknown field \"overide\""));
    assert!(bad(json!({"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict", "override": {"expiry": "skip"}}, "trustStores": ["ca:x"], "trustedIdentities": ["*"]}]}))
        .contains("\"expiry\" verification can not be skipped"));
    assert!(bad(json!({"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict", "verifyTimestamp": "sometimes"}, "trustStores": ["ca:x"], "trustedIdentities": ["*"]}]}))
        .contains("verifyTimestamp"));
    assert!(bad(json!({"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"}, "trustStores": ["tsa:x"], "trustedIdentities": ["*"]}]}))
        .contains("only lists tsa trust stores"));
    assert!(bad(json!({"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"}, "trustStores": ["ca:x"], "trustedIdentities": ["x509.subject: C=US,ST=WA,O=A+OU=B"]}]}))
        .contains("multi-valued"));
    // Revocation may be skipped; the outcome then says so.
    let p = policy(
        json!({"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict", "override": {"revocation": "skip"}}, "trustStores": ["ca:root"], "trustedIdentities": ["*"]}]}),
    );
    let chain = Chain::new(KeyKind::P256);
    let env = jws(&chain.leaf.key, &chain.x5c(), &subject(), &Opts::default());
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &subject(),
        REFERENCE,
        &p,
        &root_store(&chain),
        now(),
    );
    let rev = out.step(Validation::Revocation).unwrap();
    assert_eq!(rev.action, Action::Skip);
    assert!(
        matches!(&rev.status, StepStatus::Skipped(m) if m.contains("skipped by the trust policy"))
    );
}

#[test]
fn outcome_round_trips_through_json() {
    let chain = Chain::new(KeyKind::P256);
    let o = Opts {
        expiry: Some(utc(2026, 1, 1)),
        ..Opts::default()
    };
    let env = jws(&chain.leaf.key, &chain.x5c(), &subject(), &o);
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &subject(),
        REFERENCE,
        &global_policy("permissive", &["ca:root"], &["*"]),
        &root_store(&chain),
        now(),
    );
    assert!(out.verified);
    assert_eq!(out.warnings().len(), 1);
    let text = serde_json::to_string(&out).unwrap();
    assert!(text.contains("\"validation\":\"expiry\""), "{text}");
    assert!(text.contains("\"status\":\"failed\""), "{text}");
    let back: SignatureOutcome = serde_json::from_str(&text).unwrap();
    assert_eq!(back, out);
    assert_eq!(out.evaluated_at, now());
    assert!(
        out.evidence.signing_time.unwrap() == Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    );
    assert!(out.evidence.chain_not_after.unwrap() - now() > Duration::days(365));
}
