//! Sigstore bundles (cosign v3: `application/vnd.dev.sigstore.bundle.v0.3+json` referrers) found
//! through the referrers API (in-process registry) and through the tag-schema fallback (real
//! docker-registry), with transparency-log entries checked offline against a test Rekor key.

mod cosign_support;

use chrono::Utc;
use cosign_support::*;
use serde_json::json;
use verdict_scanner::cosign::SigstoreTrustRoot;
use verdict_testkit::DockerRegistry;
use verdict_testkit::inproc_registry::InprocRegistry;
use verdict_testkit::oci::{Descriptor, OciClient};
use verdict_testkit::pki::{KeyAlg, SignAlg, TestKey};
use verdict_testkit::ratify::inline_kmp_yaml;

/// Cosign verifier for both artifact types, one global policy with key `kmp`.
fn config(key: &TestKey, tlog_verify: Option<bool>) -> String {
    let tlog = tlog_verify
        .map(|b| format!("        tLogVerify: {b}\n"))
        .unwrap_or_default();
    format!(
        "{}---\n{}---\n{}",
        store_yaml(),
        cosign_verifier_yaml(
            &format!("{SIG_ARTIFACT},{BUNDLE_ARTIFACT}"),
            &format!(
                "      - name: default\n        scopes: [\"*\"]\n        keys: [{{provider: kmp}}]\n{tlog}"
            )
        ),
        inline_kmp_yaml("kmp", None, "key", &key.public_key_pem())
    )
}

struct Signed {
    statement: Vec<u8>,
    signature: Vec<u8>,
}

fn sign_statement(key: &TestKey, repo_ref: &str, subject: &Descriptor) -> Signed {
    let statement = cosign_statement(repo_ref, &subject.digest);
    let signature = key
        .sign(
            cosign_alg(key),
            &pae("application/vnd.in-toto+json", &statement),
        )
        .unwrap();
    Signed {
        statement,
        signature,
    }
}

fn key_bundle(
    s: &Signed,
    sigstore: &TestSigstore,
    key: &TestKey,
    promise: bool,
    proof: bool,
) -> Vec<u8> {
    let body = TestSigstore::dsse_body(&s.statement, &s.signature, &key.public_key_pem());
    let entry = sigstore.bundle_entry(&body, Utc::now().timestamp() - 60, promise, proof);
    dsse_bundle(
        &s.statement,
        &s.signature,
        json!({"publicKey": {"hint": "test"}}),
        vec![entry],
    )
}

#[tokio::test]
async fn bundle_referrer_verifies_through_the_referrers_api() {
    let reg = InprocRegistry::start().await.unwrap();
    let host = reg.host_port();
    let oci = OciClient::new(&host).with_referrers_tag_schema(false);
    let sigstore = TestSigstore::new();
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let img = oci.push_image("app", "v1").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/app"), &img);
    let bundle = push_bundle(
        &oci,
        "app",
        &img,
        key_bundle(&s, &sigstore, &key, true, true),
    )
    .await;
    assert!(reg.count_requests("/referrers/") == 0);

    let r = verify(
        &host,
        trust_with(&config(&key, None), sigstore.trust_root()),
        &format!("{host}/app:v1"),
    )
    .await;
    assert!(r.is_success, "{}", reasons(&r));
    assert!(
        reg.count_requests("/referrers/") > 0,
        "found via the referrers API"
    );
    let [rep] = r.reports.as_slice() else {
        panic!("{}", reasons(&r))
    };
    assert_eq!(rep.artifact_type, BUNDLE_ARTIFACT);
    assert_eq!(rep.reference_digest, bundle.digest);
    let v = &rep.extensions.as_ref().unwrap()["signatures"][0]["verifications"][0];
    assert_eq!(v["isSuccess"], true, "{v}");
    assert_eq!(v["bundleVerified"], true, "{v}");
    let fps = &r.evidence[0].fingerprints;
    assert!(fps.contains(&format!(
        "sha256:{}",
        sha256_hex(&sigstore.rekor.public_key_der())
    )));
    assert!(fps.contains("kmp:kmp"));
}

#[tokio::test]
async fn bundle_referrer_verifies_through_the_tag_schema_fallback() {
    let reg = DockerRegistry::start().await.expect("docker-registry");
    let host = reg.host_port();
    let oci = reg.client();
    let sigstore = TestSigstore::new();
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let img = oci.push_image("app", "v1").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/app"), &img);
    // Inclusion proof + checkpoint only (Rekor v2 style): proves inclusion, no SET.
    push_bundle(
        &oci,
        "app",
        &img,
        key_bundle(&s, &sigstore, &key, false, true),
    )
    .await;
    assert!(
        oci.referrers_tag_index("app", &img.digest)
            .await
            .unwrap()
            .is_some()
    );

    let r = verify(
        &host,
        trust_with(&config(&key, None), sigstore.trust_root()),
        &format!("{host}/app:v1"),
    )
    .await;
    assert!(r.is_success, "{}", reasons(&r));
    let v = &r.reports[0].extensions.as_ref().unwrap()["signatures"][0]["verifications"][0];
    assert!(v["summary"].to_string().contains("inclusion proof"), "{v}");

    // A `.sig` signature and a bundle on one image: two reports, both must pass (default `all`).
    let other = TestKey::generate(KeyAlg::EcP256).unwrap();
    push_signed(
        &oci,
        "app",
        &format!("{host}/app"),
        &img,
        &other,
        Default::default(),
    )
    .await;
    let r = verify(
        &host,
        trust_with(&config(&key, None), sigstore.trust_root()),
        &format!("{host}/app:v1"),
    )
    .await;
    assert_eq!(r.reports.len(), 2, "{}", reasons(&r));
    assert!(!r.is_success, "the untrusted .sig signature fails `all`");
}

#[tokio::test]
async fn bundle_failures() {
    let reg = InprocRegistry::start().await.unwrap();
    let host = reg.host_port();
    let oci = OciClient::new(&host).with_referrers_tag_schema(false);
    let sigstore = TestSigstore::new();
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let cfg = config(&key, None);
    let run = |repo: &'static str, trust: verdict_scanner::trust::TrustConfig| {
        let host = host.clone();
        async move { verify(&host, trust, &format!("{host}/{repo}:v1")).await }
    };

    // A forged SET (signed by another key) beside a genuine inclusion proof.
    let img = oci.push_image("forged", "v1").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/forged"), &img);
    let mut bad = TestSigstore::new();
    bad.rekor = TestKey::generate(KeyAlg::EcP256).unwrap();
    let body = TestSigstore::dsse_body(&s.statement, &s.signature, &key.public_key_pem());
    let mut entry = sigstore.bundle_entry(&body, Utc::now().timestamp(), false, true);
    entry["inclusionPromise"] =
        json!({"signedEntryTimestamp": b64(&bad.rekor.sign(SignAlg::Es256Der, b"x").unwrap())});
    let bundle = dsse_bundle(
        &s.statement,
        &s.signature,
        json!({"publicKey": {}}),
        vec![entry],
    );
    push_bundle(&oci, "forged", &img, bundle).await;
    let r = run("forged", trust_with(&cfg, sigstore.trust_root())).await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("SET) does not verify"),
        "{}",
        reasons(&r)
    );

    // A genuine log entry that records a different signature.
    let img = oci.push_image("swapped", "v1").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/swapped"), &img);
    let other = sign_statement(&key, &format!("{host}/swapped"), &img);
    let body = TestSigstore::dsse_body(&other.statement, &other.signature, &key.public_key_pem());
    let entry = sigstore.bundle_entry(&body, Utc::now().timestamp(), true, true);
    push_bundle(
        &oci,
        "swapped",
        &img,
        dsse_bundle(
            &s.statement,
            &s.signature,
            json!({"publicKey": {}}),
            vec![entry],
        ),
    )
    .await;
    let r = run("swapped", trust_with(&cfg, sigstore.trust_root())).await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("records a different signature"),
        "{}",
        reasons(&r)
    );

    // A v0.3 bundle whose entry has only a SET: bundles from v0.2 on must prove inclusion with
    // a proof and a signed checkpoint (sigstore-go and sigstore-python refuse it too).
    let img = oci.push_image("promise-only", "v1").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/promise-only"), &img);
    push_bundle(
        &oci,
        "promise-only",
        &img,
        key_bundle(&s, &sigstore, &key, true, false),
    )
    .await;
    let r = run("promise-only", trust_with(&cfg, sigstore.trust_root())).await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("the entry has no inclusion proof"),
        "{}",
        reasons(&r)
    );

    // A statement about another image.
    let img = oci.push_image("elsewhere", "v1").await.unwrap();
    let other_img = oci.push_image("elsewhere", "v2").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/elsewhere"), &other_img);
    push_bundle(
        &oci,
        "elsewhere",
        &img,
        key_bundle(&s, &sigstore, &key, true, true),
    )
    .await;
    let r = run("elsewhere", trust_with(&cfg, sigstore.trust_root())).await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("not the image"), "{}", reasons(&r));

    // A log entry but no Rekor key configured: fail closed unless tLogVerify is off.
    let img = oci.push_image("nokey", "v1").await.unwrap();
    let s = sign_statement(&key, &format!("{host}/nokey"), &img);
    push_bundle(
        &oci,
        "nokey",
        &img,
        key_bundle(&s, &sigstore, &key, true, true),
    )
    .await;
    let r = run("nokey", trust_with(&cfg, SigstoreTrustRoot::new())).await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("no Rekor public key is configured"),
        "{}",
        reasons(&r)
    );
    let r = run(
        "nokey",
        trust_with(&config(&key, Some(false)), SigstoreTrustRoot::new()),
    )
    .await;
    assert!(r.is_success, "{}", reasons(&r));
    let v = &r.reports[0].extensions.as_ref().unwrap()["signatures"][0]["verifications"][0];
    assert_eq!(v["bundleVerified"], false);

    // An attestation bundle (SLSA provenance) is not a signature: not reported.
    let img = oci.push_image("attested", "v1").await.unwrap();
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": img.hex()}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    }))
    .unwrap();
    let sig = key
        .sign(
            SignAlg::Es256Der,
            &pae("application/vnd.in-toto+json", &statement),
        )
        .unwrap();
    push_bundle(
        &oci,
        "attested",
        &img,
        dsse_bundle(&statement, &sig, json!({"publicKey": {}}), vec![]),
    )
    .await;
    let r = run("attested", trust_with(&cfg, sigstore.trust_root())).await;
    assert!(!r.is_success);
    assert_eq!(
        r.reports[0].error_reason,
        "NO_VERIFIER_REPORT",
        "{}",
        reasons(&r)
    );

    // Garbage instead of a bundle: a failed report, not an error.
    let img = oci.push_image("garbage", "v1").await.unwrap();
    push_bundle(&oci, "garbage", &img, b"not json".to_vec()).await;
    let r = run("garbage", trust_with(&cfg, sigstore.trust_root())).await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("malformed"), "{}", reasons(&r));
}

#[tokio::test]
async fn message_signature_bundle_over_the_manifest_digest() {
    let reg = InprocRegistry::start().await.unwrap();
    let host = reg.host_port();
    let oci = OciClient::new(&host).with_referrers_tag_schema(false);
    let key = TestKey::generate(KeyAlg::Rsa2048).unwrap();
    let img = oci.push_image("app", "v1").await.unwrap();
    let manifest = oci.get_manifest("app", &img.digest).await.unwrap().bytes;
    let sig = key.sign(SignAlg::Ps256, &manifest).unwrap();
    let bundle = serde_json::to_vec(&json!({
        "mediaType": BUNDLE_ARTIFACT,
        "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": []},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&hex::decode(img.hex()).unwrap())},
            "signature": b64(&sig),
        },
    }))
    .unwrap();
    push_bundle(&oci, "app", &img, bundle).await;
    let r = verify(&host, trust(&config(&key, None)), &format!("{host}/app:v1")).await;
    assert!(r.is_success, "{}", reasons(&r));
    let summary =
        r.reports[0].extensions.as_ref().unwrap()["signatures"][0]["verifications"][0]["summary"]
            .to_string();
    assert!(summary.contains("RSASSA-PSS SHA-256"), "{summary}");

    // Stale: the same signature attached to a new image.
    let img2 = oci.push_image("app", "v2").await.unwrap();
    let bundle2 = serde_json::to_vec(&json!({
        "mediaType": BUNDLE_ARTIFACT,
        "verificationMaterial": {"publicKey": {"hint": "k"}},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&hex::decode(img.hex()).unwrap())},
            "signature": b64(&sig),
        },
    }))
    .unwrap();
    push_bundle(&oci, "app", &img2, bundle2).await;
    let r = verify(&host, trust(&config(&key, None)), &format!("{host}/app:v2")).await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("(the subject's digest)"),
        "{}",
        reasons(&r)
    );
}
