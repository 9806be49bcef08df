//! RFC 3161 countersignatures built with the project's own TSA fixture: a valid token rescues an
//! expired signing certificate; accuracy and the baseline policy bound the timestamp; every
//! property of the token the verifier checks is broken once.

mod common;

use chrono::{TimeZone, Utc};
use common::tsa::{BASELINE_POLICY, TstSpec, timestamp_token};
use common::*;
use serde_json::json;
use verdict_scanner::notation::*;

struct Fixture {
    chain: Chain,
    tsa_ica: Issued,
    tsa: Issued,
    stores: TrustStores,
}

fn fixture_with_tsa(tsa_spec: CertSpec) -> Fixture {
    // Signing leaf valid during 2024 only: expired at verification time.
    let mut leaf = CertSpec::leaf("timestamped-signer");
    leaf.not_before = (2024, 1, 1);
    leaf.not_after = (2025, 1, 1);
    let chain = Chain::with_leaf(KeyKind::Rsa2048, leaf);
    let tsa_root = Issued::self_signed(
        &CertSpec::ca("Verdict Test TSA Root"),
        TestKey::generate(KeyKind::P384),
    );
    let tsa_ica = tsa_root.issue(
        &CertSpec::ca("Verdict Test TSA CA"),
        TestKey::generate(KeyKind::P256),
    );
    let tsa = tsa_ica.issue(&tsa_spec, TestKey::generate(KeyKind::P256));
    let stores = stores(&[
        (TrustStoreType::Ca, "root", &chain.root.der),
        (TrustStoreType::Tsa, "tsa", &tsa_root.der),
    ]);
    Fixture {
        chain,
        tsa_ica,
        tsa,
        stores,
    }
}

fn fixture() -> Fixture {
    fixture_with_tsa(CertSpec::tsa("Verdict Test TSA"))
}

fn strict_tsa() -> TrustPolicyDocument {
    policy(json!({"version": "1.0", "trustPolicies": [{
        "name": "ts", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict", "verifyTimestamp": "always"},
        "trustStores": ["ca:root", "tsa:tsa"], "trustedIdentities": ["*"]}]}))
}

fn signed_at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 10, 0, 0).unwrap()
}

/// Signs an envelope, then timestamps its signature with a token shaped by `shape`.
fn run(f: &Fixture, mt: &str, shape: impl Fn(&mut TstSpec<'_>)) -> SignatureOutcome {
    let opts = Opts {
        signing_time: Some(signed_at()),
        ..Opts::default()
    };
    let env = if mt == MEDIA_TYPE_JWS {
        jws(&f.chain.leaf.key, &f.chain.x5c(), &subject(), &opts)
    } else {
        cose(&f.chain.leaf.key, &f.chain.x5c(), &subject(), &opts)
    };
    let sig = envelope_signature(&env, mt);
    let mut spec = TstSpec::new(&f.tsa, "20240601100005Z", &sig);
    spec.certs = vec![f.tsa.der.clone(), f.tsa_ica.der.clone()];
    shape(&mut spec);
    let env = with_timestamp(&env, mt, &timestamp_token(&spec));
    verify_signature(
        &env,
        mt,
        &subject(),
        REFERENCE,
        &strict_tsa(),
        &f.stores,
        utc(2026, 11, 23),
    )
}

fn fails(out: &SignatureOutcome, reason: &str) {
    assert!(
        !out.verified,
        "expected an authenticTimestamp failure: {}",
        out.message
    );
    let f = out.failure.as_ref().unwrap();
    assert_eq!(
        f.validation,
        Some(Validation::AuthenticTimestamp),
        "{}",
        out.message
    );
    assert!(f.reason.contains(reason), "{:?} lacks {reason:?}", f.reason);
}

#[test]
fn valid_timestamp_rescues_an_expired_signing_certificate() {
    let f = fixture();
    for mt in [MEDIA_TYPE_JWS, MEDIA_TYPE_COSE] {
        let out = run(&f, mt, |_| {});
        assert!(out.verified, "{mt}: {}", out.message);
        let ts = out.evidence.timestamp.as_ref().unwrap();
        assert_eq!(
            ts.gen_time,
            Utc.with_ymd_and_hms(2024, 6, 1, 10, 0, 5).unwrap()
        );
        assert_eq!(ts.accuracy_micros, 0);
        assert_eq!(ts.tsa_anchor.store, "tsa:tsa");
        assert_eq!(ts.tsa_chain_sha256.len(), 3);
        assert_eq!(ts.tsa_chain_sha256[2], ts.tsa_anchor.sha256);
        assert_eq!(
            out.valid_until, None,
            "a timestamped verdict does not expire with the certificate"
        );
        // The timestamp is ignored without a tsa store: the certificate expired in 2025.
        let no_tsa = global_policy("strict", &["ca:root"], &["*"]);
        let opts = Opts {
            signing_time: Some(signed_at()),
            ..Opts::default()
        };
        let env = jws(&f.chain.leaf.key, &f.chain.x5c(), &subject(), &opts);
        let sig = envelope_signature(&env, MEDIA_TYPE_JWS);
        let token = timestamp_token(&TstSpec {
            certs: vec![f.tsa.der.clone(), f.tsa_ica.der.clone()],
            ..TstSpec::new(&f.tsa, "20240601100005Z", &sig)
        });
        let env = with_timestamp(&env, MEDIA_TYPE_JWS, &token);
        let out = verify_signature(
            &env,
            MEDIA_TYPE_JWS,
            &subject(),
            REFERENCE,
            &no_tsa,
            &f.stores,
            utc(2026, 11, 23),
        );
        fails(&out, "is not valid anymore, it was expired");
    }
    // The TSA root alone in a ca store does not make it a TSA anchor and vice versa.
    let wrong = stores(&[
        (TrustStoreType::Ca, "root", &f.chain.root.der),
        (TrustStoreType::Tsa, "tsa", &f.chain.root.der),
    ]);
    let f2 = Fixture { stores: wrong, ..f };
    fails(
        &run(&f2, MEDIA_TYPE_JWS, |_| {}),
        "does not lead to a trusted certificate",
    );
}

#[test]
fn accuracy_bounds_the_timestamp() {
    let f = fixture();
    // The signing certificate expires at 2025-01-01T00:00:00Z.
    let near_end = |s: &mut TstSpec<'_>| s.gen_time = "20241231235959Z".into();
    assert!(run(&f, MEDIA_TYPE_JWS, near_end).verified);
    // ±5 s reaches past notAfter.
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| {
            near_end(s);
            s.accuracy = Some((5, 0));
        }),
        "timestamp upper limit \"Wed, 01 Jan 2025 00:00:04 +0000\" is after certificate",
    );
    // ±500 ms from 23:59:59.600 also does; from 23:59:59.400 it does not.
    fails(
        &run(&f, MEDIA_TYPE_COSE, |s| {
            s.gen_time = "20241231235959.6Z".into();
            s.accuracy = Some((0, 500));
        }),
        "upper limit",
    );
    assert!(
        run(&f, MEDIA_TYPE_COSE, |s| {
            s.gen_time = "20241231235959.4Z".into();
            s.accuracy = Some((0, 500));
        })
        .verified
    );
    // The baseline policy without accuracy means ±1 s.
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| {
            s.gen_time = "20241231235959.5Z".into();
            s.policy = BASELINE_POLICY;
        }),
        "upper limit",
    );
    assert!(
        run(&f, MEDIA_TYPE_JWS, |s| s.gen_time =
            "20241231235959.5Z".into())
        .verified
    );
    // A timestamp earlier than the signing time the signer claims (10:00:00) is accepted, as
    // notation-go accepts it: the claim is not authenticated, the timestamp is, and the
    // certificate checks above use the timestamp. (Sigstore's TSA truncates genTime to the
    // second, so a real `notation sign --timestamp-url` often produces exactly this; the interop
    // suite caught a false denial here.)
    assert!(
        run(&f, MEDIA_TYPE_JWS, |s| {
            s.gen_time = "20240601095959Z".into()
        })
        .verified
    );
}

#[test]
fn broken_tokens_fail_the_authentic_timestamp() {
    let f = fixture();
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| {
            s.imprinted = b"something else".to_vec()
        }),
        "mismatched message",
    );
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| s.signing_certificate_v2 = false),
        "signing-certificate-v2 signed attribute is missing",
    );
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| s.wrong_cert_hash = true),
        "certHash",
    );
    fails(
        &run(&f, MEDIA_TYPE_COSE, |s| s.wrong_message_digest = true),
        "mismatch message digest",
    );
    fails(
        &run(&f, MEDIA_TYPE_COSE, |s| s.tamper_signature = true),
        "signature over the signed attributes is invalid",
    );
    // The token lacks the intermediate: no path to the TSA root.
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| s.certs = vec![f.tsa.der.clone()]),
        "does not lead to a trusted certificate",
    );
    // The signing certificate is not in the token at all.
    fails(
        &run(&f, MEDIA_TYPE_JWS, |s| {
            s.certs = vec![f.tsa_ica.der.clone()]
        }),
        "signing certificate not found",
    );
    // The TSA certificate had expired at genTime.
    let mut old = CertSpec::tsa("Old TSA");
    old.not_after = (2024, 1, 1);
    let f_old = fixture_with_tsa(old);
    fails(
        &run(&f_old, MEDIA_TYPE_JWS, |_| {}),
        "was not valid at the timestamp time",
    );
}

#[test]
fn tsa_certificate_requirements() {
    // EKU present but not critical.
    let mut spec = CertSpec::tsa("Lax TSA");
    spec.tsa_eku = Some(false);
    fails(
        &run(&fixture_with_tsa(spec), MEDIA_TYPE_JWS, |_| {}),
        "marked critical",
    );
    // A code-signing certificate acting as TSA.
    fails(
        &run(
            &fixture_with_tsa(CertSpec::leaf("Not a TSA")),
            MEDIA_TYPE_JWS,
            |_| {},
        ),
        "extended key usage",
    );
    // No key usage.
    let mut spec = CertSpec::tsa("No KU TSA");
    spec.key_usages = vec![];
    fails(
        &run(&fixture_with_tsa(spec), MEDIA_TYPE_JWS, |_| {}),
        "key usage extension must be present",
    );
    // Garbage instead of a token.
    let f = fixture();
    let env = with_timestamp(
        &jws(
            &f.chain.leaf.key,
            &f.chain.x5c(),
            &subject(),
            &Opts {
                signing_time: Some(signed_at()),
                ..Opts::default()
            },
        ),
        MEDIA_TYPE_JWS,
        b"\x30\x03\x02\x01\x01",
    );
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &subject(),
        REFERENCE,
        &strict_tsa(),
        &f.stores,
        utc(2026, 11, 23),
    );
    fails(&out, "failed to parse the timestamp countersignature");
}
