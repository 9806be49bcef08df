//! Cosign through the whole pipeline against a real docker-registry, configured with the seed's
//! Store and Verifier YAML (ratify-on-azure.md) as a user copies it. The seed's KeyManagement
//! Providers are `azurekeyvault` (not available yet); `inline` providers of the same names hold
//! the test keys.
//!
//! Signing: the `.sig` layout real cosign writes (tag `sha256-<hex>.sig`, one simple-signing
//! layer per signature, ECDSA DER / RSA PKCS#1 signature in `dev.cosignproject.cosign/signature`)
//! produced by the testkit with aws-lc-rs — the sigstore crate is not a dependency (see the
//! `cosign` module docs); the sigstore-rs vectors in `cosign_vectors.rs` cover real cosign output.

mod cosign_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use cosign_support::*;
use verdict_scanner::registry::{ImageReference, RegistryConfig};
use verdict_scanner::verify::ImageVerifier;
use verdict_testkit::inproc_registry::InprocRegistry;
use verdict_testkit::oci::{OciClient, cosign_payload};
use verdict_testkit::pki::{KeyAlg, TestKey};
use verdict_testkit::ratify::inline_kmp_yaml;
use verdict_testkit::{DockerRegistry, shared_file};

/// The seed (part of the test environment: a missing one fails the test).
fn seed() -> String {
    let path = shared_file("seeds/ratify-on-azure.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of the heredoc `cat <<EOF > <file>` in the seed, with list indentation removed.
fn heredoc(md: &str, file: &str) -> String {
    let start = md
        .find(&format!("cat <<EOF > {file}"))
        .unwrap_or_else(|| panic!("seed has no heredoc for {file}"));
    let mut out = String::new();
    for line in md[start..].lines().skip(1) {
        if line.trim() == "EOF" {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The fenced yaml block of the "Fine-tuned trust policy" section.
fn fine_tuned_block(md: &str) -> String {
    let section = &md[md
        .find("### Fine-tuned trust policy for Cosign verifier")
        .expect("fine-tuned section")..];
    let start = section.find("```yaml").expect("yaml block") + "```yaml".len();
    let end = section[start..].find("```").expect("end of block") + start;
    section[start..end].trim_start_matches('\n').to_owned()
}

/// The seed's Store and Cosign Verifier (as written) + an inline `keymanagementprovider-akv`.
fn seed_config(md: &str, key_pem: &str) -> String {
    let store = heredoc(md, "store_config.yaml").replace(
        "$IDENTITY_CLIENT_ID",
        "11111111-2222-3333-4444-555555555555",
    );
    let verifier = heredoc(md, "cosign_config.yaml");
    assert!(verifier.contains("artifactTypes: application/vnd.dev.cosign.artifact.sig.v1+json"));
    format!(
        "{store}---\n{verifier}---\n{}",
        inline_kmp_yaml("keymanagementprovider-akv", None, "key", key_pem)
    )
}

fn annotations() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[tokio::test]
async fn seed_verifier_allows_the_signed_image_and_denies_the_unsigned_one() {
    let md = seed();
    let reg = DockerRegistry::start().await.expect("docker-registry");
    let host = reg.host_port();
    let oci = reg.client();
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let signed = oci.push_image("demo/signed", "v1").await.unwrap();
    let unsigned = oci.push_image("demo/unsigned", "v1").await.unwrap();
    let sig = push_signed(
        &oci,
        "demo/signed",
        &format!("{host}/demo/signed"),
        &signed,
        &key,
        annotations(),
    )
    .await;
    let cfg = seed_config(&md, &key.public_key_pem());

    let r = verify(&host, trust(&cfg), &format!("{host}/demo/signed:v1")).await;
    assert!(r.is_success, "{}", reasons(&r));
    assert_eq!(r.digest, signed.digest);
    let [rep] = r.reports.as_slice() else {
        panic!("{}", reasons(&r))
    };
    assert_eq!(rep.verifier_name, "verifier-cosign");
    assert_eq!(rep.verifier_type, "cosign");
    assert_eq!(rep.artifact_type, SIG_ARTIFACT);
    assert_eq!(rep.reference_digest, sig.digest, "the .sig manifest");
    let ext = rep.extensions.as_ref().expect("cosign extensions");
    assert_eq!(ext["trustPolicy"], "default");
    let v = &ext["signatures"][0]["verifications"][0];
    assert_eq!(v["isSuccess"], true);
    assert_eq!(v["bundleVerified"], false);
    assert_eq!(v["keyInformation"]["provider"], "keymanagementprovider-akv");
    assert!(v["summary"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(
        ext["signatures"][0]["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    // Evidence: the key's SPKI fingerprint and the provider key identity.
    let [ev] = r.evidence.as_slice() else {
        panic!("{:?}", r.evidence)
    };
    assert_eq!(ev.verifier_name, "verifier-cosign");
    assert_eq!(ev.artifact_type, SIG_ARTIFACT);
    assert!(
        ev.fingerprints
            .contains(&format!("sha256:{}", sha256_hex(&key.public_key_der())))
    );
    assert!(ev.fingerprints.contains("kmp:keymanagementprovider-akv"));
    let payload = cosign_payload(&format!("{host}/demo/signed"), &signed.digest);
    assert_eq!(
        ev.envelope_digest,
        format!("sha256:{}", sha256_hex(&payload))
    );
    assert_eq!(ev.valid_until, None, "key-based signatures do not expire");

    // The report's extensions (what Ratify's v1 JSON carries) name the verification.
    let extensions = r.reports[0].extensions.as_ref().expect("extensions");
    assert_eq!(
        extensions["signatures"][0]["verifications"][0]["isSuccess"],
        true
    );

    let r = verify(&host, trust(&cfg), &format!("{host}/demo/unsigned:v1")).await;
    assert!(!r.is_success);
    assert_eq!(r.digest, unsigned.digest);
    assert_eq!(
        r.reports[0].error_reason,
        "NO_VERIFIER_REPORT",
        "{}",
        reasons(&r)
    );

    // Without `cosignEnabled` the `.sig` tag is not looked at, as in Ratify.
    let no_store = cfg.replace("    cosignEnabled: true\n", "");
    let r = verify(&host, trust(&no_store), &format!("{host}/demo/signed:v1")).await;
    assert!(!r.is_success, "{}", reasons(&r));
}

#[tokio::test]
async fn denials_name_their_reason() {
    let md = seed();
    let reg = DockerRegistry::start().await.expect("docker-registry");
    let host = reg.host_port();
    let oci = reg.client();
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let other_key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let cfg = seed_config(&md, &key.public_key_pem());

    // Signed with the trusted key, but for another digest (a signature copied between images).
    let a = oci.push_image("app/a", "v1").await.unwrap();
    let b = oci.push_image("app/b", "v1").await.unwrap();
    assert_ne!(a.digest, b.digest);
    let payload_for_b = cosign_payload(&format!("{host}/app/b"), &b.digest);
    oci.push_cosign_signature(
        "app/a",
        &a,
        &payload_for_b,
        &cosign_sign(&key, &payload_for_b),
        annotations(),
    )
    .await
    .unwrap();
    let r = verify(&host, trust(&cfg), &format!("{host}/app/a:v1")).await;
    assert!(!r.is_success);
    assert_eq!(r.reports[0].error_reason, "COSIGN_NO_VALID_SIGNATURE");
    assert!(
        r.reports[0]
            .message
            .contains(&format!("is for image {}", b.digest)),
        "{}",
        reasons(&r)
    );

    // Signed by an untrusted key.
    push_signed(
        &oci,
        "app/b",
        &format!("{host}/app/b"),
        &b,
        &other_key,
        annotations(),
    )
    .await;
    let r = verify(&host, trust(&cfg), &format!("{host}/app/b:v1")).await;
    assert!(!r.is_success);
    assert!(
        r.reports[0]
            .message
            .contains("does not verify with key kmp:keymanagementprovider-akv"),
        "{}",
        reasons(&r)
    );
    assert!(r.evidence.is_empty());

    // A second, valid signature in the same `.sig` manifest makes it pass (any signature).
    push_signed(
        &oci,
        "app/b",
        &format!("{host}/app/b"),
        &b,
        &key,
        annotations(),
    )
    .await;
    let r = verify(&host, trust(&cfg), &format!("{host}/app/b:v1")).await;
    assert!(r.is_success, "{}", reasons(&r));
    let sigs = r.reports[0].extensions.as_ref().unwrap()["signatures"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0]["verifications"][0]["isSuccess"], false);
    assert_eq!(sigs[1]["verifications"][0]["isSuccess"], true);
    assert_eq!(
        r.evidence.len(),
        1,
        "only the verified signature is evidence"
    );

    // RSA (PKCS#1 v1.5 SHA-256, what cosign does with RSA keys) and P-384 keys.
    for alg in [KeyAlg::Rsa2048, KeyAlg::EcP384] {
        let k = TestKey::generate(alg).unwrap();
        let repo = format!("app/{alg:?}").to_lowercase();
        let img = oci.push_image(&repo, "v1").await.unwrap();
        push_signed(
            &oci,
            &repo,
            &format!("{host}/{repo}"),
            &img,
            &k,
            annotations(),
        )
        .await;
        let r = verify(
            &host,
            trust(&seed_config(&md, &k.public_key_pem())),
            &format!("{host}/{repo}:v1"),
        )
        .await;
        assert!(r.is_success, "{alg:?}: {}", reasons(&r));
    }
}

#[tokio::test]
async fn fine_tuned_policies_pick_the_key_by_registry_scope() {
    let md = seed();
    let reg1 = DockerRegistry::start().await.expect("docker-registry 1");
    let reg2 = DockerRegistry::start().await.expect("docker-registry 2");
    let (h1, h2) = (reg1.host_port(), reg2.host_port());
    let key1 = TestKey::generate(KeyAlg::EcP256).unwrap();
    let key2 = TestKey::generate(KeyAlg::EcP256).unwrap();

    // The seed's YAML after the shell expanded $ACR_NAME1/2 (our registries stand in for ACR).
    let verifier = fine_tuned_block(&md)
        .replace("$ACR_NAME1.azurecr.io", &h1)
        .replace("$ACR_NAME2.azurecr.io", &h2)
        .replace("$ACR_NAME1", "registryone")
        .replace("$ACR_NAME2", "registrytwo");
    let cfg = format!(
        "{}---\n{verifier}---\n{}---\n{}",
        store_yaml(),
        inline_kmp_yaml(
            "keymanagementprovider-akv1",
            None,
            "key",
            &key1.public_key_pem()
        ),
        inline_kmp_yaml(
            "keymanagementprovider-akv2",
            None,
            "key",
            &key2.public_key_pem()
        ),
    );
    let tc = trust(&cfg);

    let img1 = reg1.client().push_image("app", "v1").await.unwrap();
    let img2 = reg2.client().push_image("app", "v1").await.unwrap();
    let img1b = reg1.client().push_image("other", "v1").await.unwrap();
    push_signed(
        &reg1.client(),
        "app",
        &format!("{h1}/app"),
        &img1,
        &key1,
        annotations(),
    )
    .await;
    push_signed(
        &reg2.client(),
        "app",
        &format!("{h2}/app"),
        &img2,
        &key2,
        annotations(),
    )
    .await;
    // Signed with registry two's key, pushed to registry one.
    push_signed(
        &reg1.client(),
        "other",
        &format!("{h1}/other"),
        &img1b,
        &key2,
        annotations(),
    )
    .await;

    let verifier = ImageVerifier::new(client(&[&h1, &h2]), Arc::new(tc));
    let run = |r: String| {
        let verifier = verifier.clone();
        async move {
            verifier
                .verify(&ImageReference::parse(&r).unwrap(), Utc::now())
                .await
                .unwrap()
        }
    };
    let r = run(format!("{h1}/app:v1")).await;
    assert!(r.is_success, "{}", reasons(&r));
    assert_eq!(
        r.reports[0].extensions.as_ref().unwrap()["trustPolicy"],
        "registryone"
    );
    let r = run(format!("{h2}/app:v1")).await;
    assert!(r.is_success, "{}", reasons(&r));
    assert_eq!(
        r.reports[0].extensions.as_ref().unwrap()["trustPolicy"],
        "registrytwo"
    );
    assert!(
        r.evidence[0]
            .fingerprints
            .contains("kmp:keymanagementprovider-akv2")
    );

    // The key of the other scope is not trusted here.
    let r = run(format!("{h1}/other:v1")).await;
    assert!(!r.is_success);
    assert!(
        r.reports[0].message.contains("trust policy registryone")
            && r.reports[0]
                .message
                .contains("does not verify with key kmp:keymanagementprovider-akv1"),
        "{}",
        reasons(&r)
    );
}

#[test]
fn overlapping_scopes_are_rejected_with_both_scopes_named() {
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let cfg = format!(
        "{}---\n{}---\n{}",
        store_yaml(),
        cosign_verifier_yaml(
            SIG_ARTIFACT,
            "      - name: team
        scopes: [\"myacr.azurecr.io/team/*\"]
        keys: [{provider: kmp}]
      - name: app
        scopes: [\"myacr.azurecr.io/team/app\"]
        keys: [{provider: kmp}]
"
        ),
        inline_kmp_yaml("kmp", None, "key", &key.public_key_pem())
    );
    let report = verdict_crds::load_str("verifier.yaml", &cfg);
    let d = report
        .diagnostics
        .iter()
        .find(|d| d.code == "overlapping-scopes")
        .expect("overlap diagnosed");
    assert!(d.is_error());
    assert!(
        d.message.contains("`myacr.azurecr.io/team/app`")
            && d.message.contains("`myacr.azurecr.io/team/*`"),
        "{d}"
    );
}

#[tokio::test]
async fn a_throttled_sig_tag_lookup_is_transient_not_unsigned() {
    let reg = InprocRegistry::start().await.unwrap();
    let host = reg.host_port();
    let oci = OciClient::new(&host).with_referrers_tag_schema(false);
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let img = oci.push_image("app", "v1").await.unwrap();
    push_signed(
        &oci,
        "app",
        &format!("{host}/app"),
        &img,
        &key,
        annotations(),
    )
    .await;
    let cfg = format!(
        "{}---\n{}---\n{}",
        store_yaml(),
        cosign_verifier_yaml(
            SIG_ARTIFACT,
            "      - name: default\n        scopes: [\"*\"]\n        keys: [{provider: kmp}]\n"
        ),
        inline_kmp_yaml("kmp", None, "key", &key.public_key_pem())
    );
    let registry = verdict_scanner::registry::RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: vec![host.clone()],
        request_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap();
    let verifier = ImageVerifier::new(registry, Arc::new(trust(&cfg)));
    let reference = ImageReference::parse(&format!("{host}/app:v1")).unwrap();
    assert!(
        verifier
            .verify(&reference, Utc::now())
            .await
            .unwrap()
            .is_success
    );

    reg.fail_next_matching(".sig", 100, 429, Some("1"));
    let err = verifier
        .verify(&reference, Utc::now())
        .await
        .expect_err("a throttled signature lookup cannot produce a verdict");
    assert!(err.is_transient(), "{err}");
    reg.clear_faults();

    // The signature payload blob unavailable: also transient.
    let sig = oci
        .get_manifest(
            "app",
            &verdict_testkit::oci::cosign_signature_tag(&img.digest).unwrap(),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    let layer = sig["layers"][0]["digest"].as_str().unwrap().to_owned();
    reg.fail_next_matching(&layer, 100, 503, None);
    let err = verifier
        .verify(&reference, Utc::now())
        .await
        .expect_err("an unavailable payload cannot produce a verdict");
    assert!(err.is_transient(), "{err}");
}
