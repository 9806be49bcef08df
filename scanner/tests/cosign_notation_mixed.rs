//! One image, a Notation signature and Cosign signatures, a Verifier for each: both verifiers
//! report, and Ratify's config policy (`all` / `any` per artifact type) decides.

mod cosign_support;

use std::collections::BTreeMap;

use cosign_support::*;
use serde_json::json;
use verdict_testkit::DockerRegistry;
use verdict_testkit::demo::ratify_config;
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::oci::{Descriptor, OCI_EMPTY, OciClient, cosign_payload};
use verdict_testkit::pki::{CertBuilder, KeyAlg, TestKey};
use verdict_testkit::ratify::inline_kmp_yaml;

/// Cosign's OCI 1.1 mode: the simple-signing manifest pushed as a referrer (artifactType
/// `application/vnd.dev.cosign.artifact.sig.v1+json`), listed in the tag-schema index.
async fn push_sig_referrer(
    oci: &OciClient,
    repo: &str,
    repo_ref: &str,
    subject: &Descriptor,
    key: &TestKey,
) {
    let payload = cosign_payload(repo_ref, &subject.digest);
    oci.push_blob(repo, &payload).await.unwrap();
    oci.push_blob(repo, b"{}").await.unwrap();
    let mut layer =
        Descriptor::of("application/vnd.dev.cosign.simplesigning.v1+json", &payload).plain_json();
    layer["annotations"] =
        json!({"dev.cosignproject.cosign/signature": cosign_sign(key, &payload)});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SIG_ARTIFACT,
        "config": {"mediaType": OCI_EMPTY, "digest": verdict_testkit::oci::EMPTY_JSON_DIGEST, "size": 2},
        "layers": [layer],
        "subject": subject.plain_json(),
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let mut desc = Descriptor::of("application/vnd.oci.image.manifest.v1+json", &bytes);
    oci.push_manifest(repo, &desc.digest, &desc.media_type, &bytes)
        .await
        .unwrap();
    desc.artifact_type = Some(SIG_ARTIFACT.into());
    oci.add_to_referrers_tag(repo, &subject.digest, &desc)
        .await
        .unwrap();
}

#[tokio::test]
async fn notation_and_cosign_both_report_and_the_policy_decides() {
    let reg = DockerRegistry::start().await.expect("docker-registry");
    let host = reg.host_port();
    let oci = reg.client();
    let img = oci.push_image("app", "v1").await.unwrap();
    let repo_ref = format!("{host}/app");

    let cert = CertBuilder::code_signing(verdict_testkit::demo::SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()
        .unwrap();
    push_notation_signature(&oci, "app", &img, &cert)
        .await
        .unwrap();
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    push_signed(&oci, "app", &repo_ref, &img, &key, BTreeMap::new()).await;

    let base = format!(
        "{}---\n{}---\n{}---\n{}",
        ratify_config(&cert),
        store_yaml(),
        cosign_verifier_yaml(
            SIG_ARTIFACT,
            "      - name: default\n        scopes: [\"*\"]\n        keys: [{provider: kmp-cosign}]\n"
        ),
        inline_kmp_yaml("kmp-cosign", None, "key", &key.public_key_pem()),
    );
    let reference = format!("{host}/app:v1");

    let r = verify(&host, trust(&base), &reference).await;
    assert!(r.is_success, "{}", reasons(&r));
    let mut types: Vec<(&str, &str)> = r
        .reports
        .iter()
        .map(|x| (x.verifier_type.as_str(), x.artifact_type.as_str()))
        .collect();
    types.sort();
    assert_eq!(
        types,
        [("cosign", SIG_ARTIFACT), ("notation", NOTATION_ARTIFACT)]
    );
    assert_eq!(r.evidence.len(), 2);

    // A second Cosign signature (OCI 1.1 referrer) by an untrusted key.
    let stranger = TestKey::generate(KeyAlg::EcP256).unwrap();
    push_sig_referrer(&oci, "app", &repo_ref, &img, &stranger).await;

    // Default rule `all`: one failed report of a type denies.
    let r = verify(&host, trust(&base), &reference).await;
    assert_eq!(r.reports.len(), 3, "{}", reasons(&r));
    assert!(!r.is_success, "{}", reasons(&r));

    // `any` for Cosign signatures: one valid Cosign signature suffices, Notation still `all`.
    let any = format!(
        "{base}---\n{}",
        policy_yaml(&[(SIG_ARTIFACT, "any"), ("default", "all")])
    );
    let r = verify(&host, trust(&any), &reference).await;
    assert!(r.is_success, "{}", reasons(&r));

    // Explicit `all` for both types: denied again.
    let all = format!(
        "{base}---\n{}",
        policy_yaml(&[(SIG_ARTIFACT, "all"), (NOTATION_ARTIFACT, "all")])
    );
    let r = verify(&host, trust(&all), &reference).await;
    assert!(!r.is_success, "{}", reasons(&r));

    // Notation listed as required but its verifier's trust fails: `any` for Cosign cannot save it.
    let other_cert = CertBuilder::code_signing(verdict_testkit::demo::SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()
        .unwrap();
    let wrong_notation = format!(
        "{}---\n{}---\n{}---\n{}---\n{}",
        ratify_config(&other_cert),
        store_yaml(),
        cosign_verifier_yaml(
            SIG_ARTIFACT,
            "      - name: default\n        scopes: [\"*\"]\n        keys: [{provider: kmp-cosign}]\n"
        ),
        inline_kmp_yaml("kmp-cosign", None, "key", &key.public_key_pem()),
        policy_yaml(&[(SIG_ARTIFACT, "any"), (NOTATION_ARTIFACT, "any")]),
    );
    let r = verify(&host, trust(&wrong_notation), &reference).await;
    assert!(!r.is_success, "{}", reasons(&r));
    assert!(
        r.reports
            .iter()
            .any(|x| x.verifier_type == "cosign" && x.is_success),
        "{}",
        reasons(&r)
    );
}
