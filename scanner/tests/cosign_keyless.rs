//! Keyless Cosign verification offline: Fulcio certificates (test CA) with embedded SCTs, Rekor
//! signed entry timestamps as proof of signing time, RFC 3161 timestamps, identity and issuer
//! policies — in the `.sig` layout (certificate, chain and bundle annotations) and in bundles.

mod cosign_support;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cosign_support::*;
use serde_json::json;
use verdict_scanner::cosign::SigstoreTrustRoot;
use verdict_scanner::trust::TrustConfig;
use verdict_testkit::inproc_registry::InprocRegistry;
use verdict_testkit::oci::{Descriptor, OciClient, cosign_payload};
use verdict_testkit::pki::{KeyAlg, SignAlg, TestKey, pem_encode};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const IDENTITY: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

fn keyless_config(keyless: &str, extra: &str) -> String {
    format!(
        "{}---\n{}",
        store_yaml(),
        cosign_verifier_yaml(
            &format!("{SIG_ARTIFACT},{BUNDLE_ARTIFACT}"),
            &format!(
                "      - name: keyless\n        scopes: [\"*\"]\n        keyless:\n{keyless}{extra}"
            )
        )
    )
}

fn exact() -> String {
    format!(
        "          certificateIdentity: \"{IDENTITY}\"\n          certificateOIDCIssuer: \"{ISSUER}\"\n"
    )
}

struct Env {
    _reg: InprocRegistry,
    host: String,
    oci: OciClient,
    sigstore: TestSigstore,
}

impl Env {
    async fn start() -> Env {
        let reg = InprocRegistry::start().await.unwrap();
        let host = reg.host_port();
        let oci = OciClient::new(&host).with_referrers_tag_schema(false);
        Env {
            _reg: reg,
            host,
            oci,
            sigstore: TestSigstore::new(),
        }
    }

    fn trust(&self, cfg: &str) -> TrustConfig {
        trust_with(cfg, self.sigstore.trust_root())
    }

    async fn run(
        &self,
        repo: &str,
        trust: TrustConfig,
    ) -> verdict_scanner::report::VerificationResult {
        verify(&self.host, trust, &format!("{}/{repo}:v1", self.host)).await
    }

    fn leaf(&self, key: &TestKey, not_before: DateTime<Utc>) -> Vec<u8> {
        self.sigstore.fulcio_leaf(
            key,
            &LeafSpec {
                email: None,
                uri: Some(IDENTITY),
                issuer: ISSUER,
                not_before,
                not_after: not_before + Duration::minutes(10),
                sct: true,
                sct_signer: None,
            },
        )
    }

    /// Signs `img` keylessly in the `.sig` layout with certificate, chain and (optionally) a
    /// Rekor bundle integrated at `integrated`, and an optional RFC 3161 timestamp.
    async fn sign_sig(
        &self,
        repo: &str,
        img: &Descriptor,
        leaf: &[u8],
        key: &TestKey,
        integrated: Option<DateTime<Utc>>,
        timestamp: Option<DateTime<Utc>>,
    ) {
        let payload = cosign_payload(&format!("{}/{repo}", self.host), &img.digest);
        let sig = key.sign(SignAlg::Es256Der, &payload).unwrap();
        let cert_pem = pem_encode("CERTIFICATE", leaf);
        let mut ann = BTreeMap::from([
            (
                "dev.sigstore.cosign/certificate".to_string(),
                cert_pem.clone(),
            ),
            (
                "dev.sigstore.cosign/chain".to_string(),
                self.sigstore.fulcio_chain_pem(),
            ),
        ]);
        if let Some(t) = integrated {
            let body = TestSigstore::hashedrekord_body(&payload, &sig, &cert_pem);
            ann.insert(
                "dev.sigstore.cosign/bundle".into(),
                self.sigstore.legacy_bundle(&body, t.timestamp(), 12345),
            );
        }
        if let Some(t) = timestamp {
            ann.insert(
                "dev.sigstore.cosign/rfc3161timestamp".into(),
                json!({"SignedRFC3161Timestamp": b64(&self.sigstore.timestamp(&sig, t))})
                    .to_string(),
            );
        }
        self.oci
            .push_cosign_signature(repo, img, &payload, &b64(&sig), ann)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn keyless_sig_layout_with_rekor_bundle() {
    let env = Env::start().await;
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let now = Utc::now();
    let img = env.oci.push_image("app", "v1").await.unwrap();
    let leaf = env.leaf(&key, now - Duration::minutes(2));
    env.sign_sig(
        "app",
        &img,
        &leaf,
        &key,
        Some(now - Duration::minutes(1)),
        None,
    )
    .await;

    let r = env
        .run("app", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(r.is_success, "{}", reasons(&r));
    let ext = r.reports[0].extensions.as_ref().unwrap();
    assert_eq!(ext["trustPolicy"], "keyless");
    let v = &ext["signatures"][0]["verifications"][0];
    assert_eq!(v["bundleVerified"], true);
    assert_eq!(
        v["keyInformation"],
        json!({}),
        "Ratify writes an empty object: {v}"
    );
    assert!(v["summary"].to_string().contains(IDENTITY), "{v}");
    let fps = &r.evidence[0].fingerprints;
    for (what, der) in [
        ("leaf", leaf.clone()),
        ("intermediate", env.sigstore.fulcio_int_der.clone()),
        ("root", env.sigstore.fulcio_root_der.clone()),
        ("rekor key", env.sigstore.rekor.public_key_der()),
        ("ct log key", env.sigstore.ctlog.public_key_der()),
    ] {
        assert!(
            fps.contains(&format!("sha256:{}", sha256_hex(&der))),
            "{what}: {fps:?}"
        );
    }
    assert_eq!(
        r.evidence[0].valid_until, None,
        "the SET proves the signing time"
    );

    // Regular expressions (unanchored, as cosign) for identity and issuer.
    let re = "          certificateIdentityRegExp: \"^https://github.com/acme/.*\"\n          certificateOIDCIssuerRegExp: \"githubusercontent\"\n";
    let r = env.run("app", env.trust(&keyless_config(re, ""))).await;
    assert!(r.is_success, "{}", reasons(&r));

    // Another identity or issuer: denied, naming what did not match.
    let wrong_id = exact().replace("acme/app", "evil/app");
    let r = env
        .run("app", env.trust(&keyless_config(&wrong_id, "")))
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("identity") && reasons(&r).contains("does not match"),
        "{}",
        reasons(&r)
    );
    let wrong_issuer = exact().replace(ISSUER, "https://accounts.google.com");
    let r = env
        .run("app", env.trust(&keyless_config(&wrong_issuer, "")))
        .await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("OIDC issuer"), "{}", reasons(&r));

    // The same material from a trusted_root.json.
    let from_json =
        SigstoreTrustRoot::from_trusted_root_json(&env.sigstore.trusted_root_json()).unwrap();
    let r = env
        .run("app", trust_with(&keyless_config(&exact(), ""), from_json))
        .await;
    assert!(r.is_success, "{}", reasons(&r));
}

#[tokio::test]
async fn signing_time_comes_from_the_log_not_from_now() {
    let env = Env::start().await;
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let then = Utc::now() - Duration::hours(3);
    let leaf = env.leaf(&key, then);

    // The certificate expired hours ago, but the SET proves the signature was made in time.
    let img = env.oci.push_image("old", "v1").await.unwrap();
    env.sign_sig(
        "old",
        &img,
        &leaf,
        &key,
        Some(then + Duration::minutes(5)),
        None,
    )
    .await;
    let r = env
        .run("old", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(r.is_success, "{}", reasons(&r));

    // Integrated after the certificate expired: denied.
    let img = env.oci.push_image("late", "v1").await.unwrap();
    env.sign_sig(
        "late",
        &img,
        &leaf,
        &key,
        Some(then + Duration::minutes(30)),
        None,
    )
    .await;
    let r = env
        .run("late", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("does not chain"), "{}", reasons(&r));

    // No log entry: keyless cannot be verified offline with tLogVerify on.
    let img = env.oci.push_image("nolog", "v1").await.unwrap();
    env.sign_sig("nolog", &img, &leaf, &key, None, None).await;
    let r = env
        .run("nolog", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("no transparency-log entry"),
        "{}",
        reasons(&r)
    );

    // tLogVerify off: an RFC 3161 timestamp within the certificate's validity proves the time.
    let img = env.oci.push_image("tsa", "v1").await.unwrap();
    env.sign_sig(
        "tsa",
        &img,
        &leaf,
        &key,
        None,
        Some(then + Duration::minutes(5)),
    )
    .await;
    let no_tlog = keyless_config(&exact(), "        tLogVerify: false\n");
    let r = env.run("tsa", env.trust(&no_tlog)).await;
    assert!(r.is_success, "{}", reasons(&r));
    let fps = &r.evidence[0].fingerprints;
    assert!(fps.contains(&format!("sha256:{}", sha256_hex(env.sigstore.tsa.der()))));

    // … and without a timestamp the expired certificate is judged now: denied.
    let r = env.run("nolog", env.trust(&no_tlog)).await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("does not chain"), "{}", reasons(&r));

    // A timestamp over another signature is rejected.
    let img = env.oci.push_image("tsa-other", "v1").await.unwrap();
    let payload = cosign_payload(&format!("{}/tsa-other", env.host), &img.digest);
    let sig = key.sign(SignAlg::Es256Der, &payload).unwrap();
    let ann = BTreeMap::from([
        ("dev.sigstore.cosign/certificate".to_string(), pem_encode("CERTIFICATE", &leaf)),
        ("dev.sigstore.cosign/chain".to_string(), env.sigstore.fulcio_chain_pem()),
        (
            "dev.sigstore.cosign/rfc3161timestamp".to_string(),
            json!({"SignedRFC3161Timestamp": b64(&env.sigstore.timestamp(b"another signature", then))}).to_string(),
        ),
    ]);
    env.oci
        .push_cosign_signature("tsa-other", &img, &payload, &b64(&sig), ann)
        .await
        .unwrap();
    let r = env.run("tsa-other", env.trust(&no_tlog)).await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("message imprint"), "{}", reasons(&r));
}

#[tokio::test]
async fn certificate_chain_and_sct_are_enforced() {
    let env = Env::start().await;
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let now = Utc::now();

    // SCT signed by a key that is not the CT log's.
    let forger = TestKey::generate(KeyAlg::EcP256).unwrap();
    let forged = env.sigstore.fulcio_leaf(
        &key,
        &LeafSpec {
            email: Some("dev@acme.example"),
            uri: None,
            issuer: ISSUER,
            not_before: now - Duration::minutes(2),
            not_after: now + Duration::minutes(8),
            sct: true,
            sct_signer: Some(&forger),
        },
    );
    let img = env.oci.push_image("forged-sct", "v1").await.unwrap();
    env.sign_sig("forged-sct", &img, &forged, &key, Some(now), None)
        .await;
    let email = format!(
        "          certificateIdentity: dev@acme.example\n          certificateOIDCIssuer: \"{ISSUER}\"\n"
    );
    let r = env
        .run("forged-sct", env.trust(&keyless_config(&email, "")))
        .await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("SCT"), "{}", reasons(&r));
    // ctLogVerify: false skips the SCT check (and only that).
    let no_ct = format!("{email}          ctLogVerify: false\n");
    let r = env
        .run("forged-sct", env.trust(&keyless_config(&no_ct, "")))
        .await;
    assert!(r.is_success, "{}", reasons(&r));

    // A certificate from another CA with the right identity: denied.
    let rogue = TestSigstore::new();
    let leaf = rogue.fulcio_leaf(
        &key,
        &LeafSpec {
            email: None,
            uri: Some(IDENTITY),
            issuer: ISSUER,
            not_before: now - Duration::minutes(2),
            not_after: now + Duration::minutes(8),
            sct: true,
            sct_signer: None,
        },
    );
    let img = env.oci.push_image("rogue", "v1").await.unwrap();
    env.sign_sig("rogue", &img, &leaf, &key, Some(now), None)
        .await;
    let r = env
        .run("rogue", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("does not chain to a configured Fulcio CA"),
        "{}",
        reasons(&r)
    );

    // The certificate's key did not make the signature.
    let other = TestKey::generate(KeyAlg::EcP256).unwrap();
    let leaf = env.leaf(&other, now - Duration::minutes(2));
    let img = env.oci.push_image("mismatch", "v1").await.unwrap();
    env.sign_sig("mismatch", &img, &leaf, &key, Some(now), None)
        .await;
    let r = env
        .run("mismatch", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("with the signing certificate's key")
            || reasons(&r).contains("different key or certificate"),
        "{}",
        reasons(&r)
    );
}

#[tokio::test]
async fn keyless_bundle_referrer() {
    let env = Env::start().await;
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let now = Utc::now();
    let img = env.oci.push_image("app", "v1").await.unwrap();
    let leaf = env.leaf(&key, now - Duration::minutes(2));
    let statement = cosign_statement(&format!("{}/app", env.host), &img.digest);
    let sig = key
        .sign(
            SignAlg::Es256Der,
            &pae("application/vnd.in-toto+json", &statement),
        )
        .unwrap();
    let body = TestSigstore::dsse_body(&statement, &sig, &pem_encode("CERTIFICATE", &leaf));
    let entry =
        env.sigstore
            .bundle_entry(&body, (now - Duration::minutes(1)).timestamp(), true, true);
    let bundle = dsse_bundle(
        &statement,
        &sig,
        json!({"certificate": {"rawBytes": b64(&leaf)}}),
        vec![entry],
    );
    push_bundle(&env.oci, "app", &img, bundle).await;
    let r = env
        .run("app", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(r.is_success, "{}", reasons(&r));
    assert_eq!(r.reports[0].artifact_type, BUNDLE_ARTIFACT);

    // Only an inclusion proof: inclusion is proven but not the time, so the 10-minute
    // certificate is judged now — fine while it is valid, denied once it has expired.
    let img = env.oci.push_image("proof-only", "v1").await.unwrap();
    let old_leaf = env.leaf(&key, now - Duration::hours(2));
    let statement = cosign_statement(&format!("{}/proof-only", env.host), &img.digest);
    let sig = key
        .sign(
            SignAlg::Es256Der,
            &pae("application/vnd.in-toto+json", &statement),
        )
        .unwrap();
    let body = TestSigstore::dsse_body(&statement, &sig, &pem_encode("CERTIFICATE", &old_leaf));
    let entry =
        env.sigstore
            .bundle_entry(&body, (now - Duration::hours(2)).timestamp(), false, true);
    push_bundle(
        &env.oci,
        "proof-only",
        &img,
        dsse_bundle(
            &statement,
            &sig,
            json!({"certificate": {"rawBytes": b64(&old_leaf)}}),
            vec![entry],
        ),
    )
    .await;
    let r = env
        .run("proof-only", env.trust(&keyless_config(&exact(), "")))
        .await;
    assert!(!r.is_success);
    assert!(reasons(&r).contains("does not chain"), "{}", reasons(&r));
}

#[test]
fn keyless_without_sigstore_material_is_a_configuration_error() {
    let report = verdict_crds::load_str("v.yaml", &keyless_config(&exact(), ""));
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    let err = TrustConfig::from_resources(report.valid_resources().map(|l| &l.resource))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"verifier-cosign\"")
            && err.contains("Fulcio certificate authority")
            && err.contains("trusted_root.json"),
        "{err}"
    );
}
