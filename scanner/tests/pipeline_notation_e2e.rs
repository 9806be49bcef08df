//! The whole pipeline against a real docker-registry (no referrers API: the tag-schema fallback)
//! with notation's e2e OCI layouts pushed byte-exact, configured through Ratify CRs as a user
//! would write them. Expected verdicts: ../shared/vectors/README.md §1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use verdict_scanner::registry::{ImageReference, RegistryClient, RegistryConfig};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::trust::TrustConfig;
use verdict_scanner::verify::ImageVerifier;
use verdict_testkit::inproc_registry::InprocRegistry;
use verdict_testkit::ratify::{
    NOTATION_ARTIFACT_TYPE, NotationVerifier, config_policy_yaml, inline_kmp_yaml,
};
use verdict_testkit::{DockerRegistry, OciClient, shared_dir};

const SUBJECT: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn e2e_dir(shared: &Path) -> PathBuf {
    shared.join("vectors/notation-e2e")
}

/// Ratify CRs: an inline KMP with `cert_file`, a Notation verifier using `policy_file`, and an
/// optional config Policy.
fn config_yaml(shared: &Path, cert_file: &str, policy_file: &str, policy: Option<&str>) -> String {
    let cert = std::fs::read_to_string(e2e_dir(shared).join("config/localkeys").join(cert_file))
        .expect("cert");
    let doc = std::fs::read_to_string(
        e2e_dir(shared)
            .join("config/trustpolicies")
            .join(policy_file),
    )
    .expect("policy");
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("policy json");
    let mut yaml = format!(
        "{}---\n{}",
        inline_kmp_yaml("kmp-e2e", None, "certificate", &cert),
        NotationVerifier::new("verifier-notation", "kmp-e2e")
            .typed_cert_store("ca", "e2e", &["kmp-e2e"])
            .trust_policy_doc(doc)
            .yaml()
    );
    if let Some(rule) = policy {
        yaml.push_str("---\n");
        yaml.push_str(&config_policy_yaml(&[(NOTATION_ARTIFACT_TYPE, rule)]));
    }
    yaml
}

fn trust(yaml: &str) -> TrustConfig {
    let report = verdict_crds::load_str("test.yaml", yaml);
    assert!(
        !report.has_errors(),
        "config must load: {:#?}",
        report.diagnostics
    );
    TrustConfig::from_resources(report.valid_resources().map(|l| &l.resource)).expect("trust")
}

struct Env {
    registry: DockerRegistry,
    shared: PathBuf,
}

impl Env {
    async fn start() -> Option<Env> {
        let shared = shared_dir()?;
        let registry = DockerRegistry::start().await.expect("docker-registry");
        let client = registry.client();
        for layout in [
            "e2e-valid-signature",
            "e2e-invalid-signature",
            "e2e-expired-signature",
            "e2e-with-expired-cert",
            "e2e-valid-multiple-signatures",
        ] {
            client
                .push_oci_layout(&e2e_dir(&shared).join("oci_layout").join(layout), layout)
                .await
                .expect("push layout");
        }
        Some(Env { registry, shared })
    }

    async fn verify(&self, repo: &str, cfg: String) -> VerificationResult {
        verify_at(&self.registry.host_port(), repo, cfg).await
    }

    fn cfg(&self, cert: &str, policy: &str, rule: Option<&str>) -> String {
        config_yaml(&self.shared, cert, policy, rule)
    }
}

async fn verify_at(host: &str, repo: &str, cfg: String) -> VerificationResult {
    let registry = RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: vec![host.to_owned()],
        ..Default::default()
    })
    .expect("client");
    let verifier = ImageVerifier::new(registry, Arc::new(trust(&cfg)));
    let reference = ImageReference::parse(&format!("{host}/{repo}:v1")).unwrap();
    // The README judges the vectors at 2026-11-23.
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    verifier
        .verify(&reference, now)
        .await
        .expect("verification")
}

fn reasons(r: &VerificationResult) -> String {
    r.reports
        .iter()
        .map(|r| format!("{} {}: {}", r.error_reason, r.reference_digest, r.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn notation_e2e_layouts_give_the_upstream_verdicts() {
    let Some(env) = Env::start().await else {
        return;
    };

    // Valid signature, trusted certificate: allow, with Ratify's extensions.
    let r = env
        .verify(
            "e2e-valid-signature",
            env.cfg("e2e.crt", "trustpolicy.json", None),
        )
        .await;
    assert!(r.is_success, "{}", reasons(&r));
    assert_eq!(r.digest, SUBJECT);
    assert_eq!(r.reports.len(), 1);
    let rep = &r.reports[0];
    assert_eq!(rep.verifier_name, "verifier-notation");
    assert_eq!(rep.verifier_type, "notation");
    assert_eq!(rep.artifact_type, "application/vnd.cncf.notary.signature");
    assert_eq!(
        rep.extensions.as_ref().unwrap()["SN"],
        "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"
    );
    assert_eq!(r.evidence.len(), 1);
    assert!(
        r.evidence[0]
            .fingerprints
            .contains("sha256:e38aea13f2b051f7183cca64a51ee676f4d4456f41d9fecf15eb367efc7343b9"),
        "the trust anchor is part of the evidence: {:?}",
        r.evidence[0].fingerprints
    );

    // Same signature, unrelated trust store: authenticity failure → deny.
    let r = env
        .verify(
            "e2e-valid-signature",
            env.cfg("new_e2e.crt", "trustpolicy.json", None),
        )
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("SIGNATURE_UNTRUSTED") || reasons(&r).contains("AUTHENTICITY"),
        "{}",
        reasons(&r)
    );

    // Garbage layer instead of an envelope: integrity failure under strict and permissive.
    for policy in ["trustpolicy.json", "permissive_trustpolicy.json"] {
        let r = env
            .verify("e2e-invalid-signature", env.cfg("e2e.crt", policy, None))
            .await;
        assert!(!r.is_success, "{policy}");
        assert!(
            reasons(&r).to_lowercase().contains("integrity")
                || reasons(&r).contains("SIGNATURE_ARTIFACT_INVALID"),
            "{policy}: {}",
            reasons(&r)
        );
    }

    // Expired signature: strict denies (expiry), permissive allows (logged).
    let r = env
        .verify(
            "e2e-expired-signature",
            env.cfg("e2e.crt", "trustpolicy.json", None),
        )
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("NOTATION_EXPIRY_FAILURE"),
        "{}",
        reasons(&r)
    );
    let r = env
        .verify(
            "e2e-expired-signature",
            env.cfg("e2e.crt", "permissive_trustpolicy.json", None),
        )
        .await;
    assert!(r.is_success, "{}", reasons(&r));

    // Expired certificate, no timestamp: strict denies, permissive allows.
    let r = env
        .verify(
            "e2e-with-expired-cert",
            env.cfg("expired_e2e.crt", "trustpolicy.json", None),
        )
        .await;
    assert!(!r.is_success);
    assert!(
        reasons(&r).contains("NOTATION_AUTHENTICTIMESTAMP_FAILURE"),
        "{}",
        reasons(&r)
    );
    let r = env
        .verify(
            "e2e-with-expired-cert",
            env.cfg("expired_e2e.crt", "permissive_trustpolicy.json", None),
        )
        .await;
    assert!(r.is_success, "{}", reasons(&r));

    // The multi-signature layout's tag-schema index lists only the first signature (the second
    // was pushed to a registry with the referrers API), so the fallback finds one, trusted.
    let r = env
        .verify(
            "e2e-valid-multiple-signatures",
            env.cfg("e2e.crt", "trustpolicy.json", None),
        )
        .await;
    assert_eq!(r.reports.len(), 1, "{}", reasons(&r));
    assert!(r.is_success, "{}", reasons(&r));
}

#[tokio::test]
async fn multiple_signatures_through_the_referrers_api_follow_the_config_policy_rule() {
    let Some(shared) = shared_dir() else {
        return;
    };
    let registry = InprocRegistry::start().await.expect("in-process registry");
    let host = registry.host_port();
    OciClient::new(&host)
        .with_referrers_tag_schema(false)
        .push_oci_layout(
            &e2e_dir(&shared).join("oci_layout/e2e-valid-multiple-signatures"),
            "multi",
        )
        .await
        .expect("push");
    // Two signatures found through the referrers API; one is signed by a certificate no trust
    // store holds. Ratify's default rule ("all") denies, "any" allows.
    let r = verify_at(
        &host,
        "multi",
        config_yaml(&shared, "e2e.crt", "trustpolicy.json", None),
    )
    .await;
    assert_eq!(r.reports.len(), 2, "{}", reasons(&r));
    assert_eq!(r.reports.iter().filter(|r| r.is_success).count(), 1);
    assert!(!r.is_success, "default rule is all: {}", reasons(&r));
    let r = verify_at(
        &host,
        "multi",
        config_yaml(&shared, "e2e.crt", "trustpolicy.json", Some("any")),
    )
    .await;
    assert!(r.is_success, "{}", reasons(&r));
    assert!(
        registry.count_requests("/referrers/") > 0,
        "the referrers API was used"
    );
}

#[tokio::test]
async fn unsigned_image_is_denied_and_a_dead_registry_is_an_error_not_unsigned() {
    let Some(env) = Env::start().await else {
        return;
    };
    let client = env.registry.client();
    client.push_image("unsigned", "v1").await.expect("push");
    let r = env
        .verify("unsigned", env.cfg("e2e.crt", "trustpolicy.json", None))
        .await;
    assert!(!r.is_success);
    assert_eq!(r.reports.len(), 1);
    assert_eq!(r.reports[0].error_reason, "NO_VERIFIER_REPORT");

    let missing = env
        .verify(
            "does-not-exist",
            env.cfg("e2e.crt", "trustpolicy.json", None),
        )
        .await;
    assert!(!missing.is_success);
    assert_eq!(missing.reports[0].error_reason, "SUBJECT_NOT_FOUND");

    // Registry down: a transient error, never a verdict.
    let mut env = env;
    env.registry.kill();
    let registry = RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: vec![env.registry.host_port()],
        request_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap();
    let verifier = ImageVerifier::new(
        registry,
        Arc::new(trust(&env.cfg("e2e.crt", "trustpolicy.json", None))),
    );
    let reference = ImageReference::parse(&format!(
        "{}/e2e-valid-signature:v1",
        env.registry.host_port()
    ))
    .unwrap();
    let err = verifier
        .verify(&reference, Utc::now())
        .await
        .expect_err("a dead registry cannot produce a verdict");
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_throttling_registry_is_a_transient_error_not_an_unsigned_image() {
    let Some(shared) = shared_dir() else {
        return;
    };
    let registry = InprocRegistry::start().await.expect("in-process registry");
    let host = registry.host_port();
    OciClient::new(&host)
        .push_oci_layout(
            &e2e_dir(&shared).join("oci_layout/e2e-valid-signature"),
            "throttled",
        )
        .await
        .expect("push");
    // Referrer discovery answers 429 with a Retry-After longer than the call's deadline.
    registry.fail_next_matching("/referrers/", 100, 429, Some("30"));
    let client = RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: vec![host.clone()],
        request_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap();
    let verifier = ImageVerifier::new(
        client,
        Arc::new(trust(&config_yaml(
            &shared,
            "e2e.crt",
            "trustpolicy.json",
            None,
        ))),
    );
    let reference = ImageReference::parse(&format!("{host}/throttled:v1")).unwrap();
    let err = verifier
        .verify(&reference, Utc::now())
        .await
        .expect_err("a throttled registry cannot produce a verdict");
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("throttl") || err.to_string().contains("429"),
        "{err}"
    );

    // Once the registry recovers, the same image verifies.
    registry.clear_faults();
    let r = verify_at(
        &host,
        "throttled",
        config_yaml(&shared, "e2e.crt", "trustpolicy.json", None),
    )
    .await;
    assert!(r.is_success, "{}", reasons(&r));
}
