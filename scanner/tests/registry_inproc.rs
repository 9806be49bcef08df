//! Registry layer against the in-process registry (referrers API, faults, auth).
//!
//! Over 600 lines because one test per registry behaviour against the one in-process registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use verdict_scanner::registry::{
    Anonymous, AuthProvider, Credentials, Digest, DockerConfig, ImageReference, ReferrersSource,
    RegistryClient, RegistryConfig, RegistryError, Repository, RetryPolicy, StaticCredentials,
    media_type,
};
use verdict_testkit::inproc_registry::{InprocRegistry, RegistryAuth};
use verdict_testkit::oci::{self, OciClient};

const SBOM: &str = "application/spdx+json";
const THUMBPRINT: &str = "io.cncf.notary.x509chain.thumbprint#S256";

fn config(reg: &InprocRegistry) -> RegistryConfig {
    RegistryConfig {
        plain_http_registries: vec![reg.host_port()],
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_retries: 3,
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        },
        ..RegistryConfig::default()
    }
}

fn client(reg: &InprocRegistry) -> RegistryClient {
    RegistryClient::anonymous(config(reg)).unwrap()
}

fn client_with(reg: &InprocRegistry, f: impl FnOnce(&mut RegistryConfig)) -> RegistryClient {
    let mut c = config(reg);
    f(&mut c);
    RegistryClient::anonymous(c).unwrap()
}

fn pusher(reg: &InprocRegistry) -> OciClient {
    OciClient::new(&reg.host_port()).with_referrers_tag_schema(false)
}

fn repo(reg: &InprocRegistry, name: &str) -> Repository {
    Repository::new(&reg.host_port(), name).unwrap()
}

fn digest(d: &oci::Descriptor) -> Digest {
    Digest::parse(&d.digest).unwrap()
}

/// Pushes a Notation-like signature: current form (artifactType) or legacy (config.mediaType).
async fn push_notation(
    p: &OciClient,
    name: &str,
    subject: &oci::Descriptor,
    legacy: bool,
    n: usize,
) -> oci::Descriptor {
    let mut ann = BTreeMap::new();
    ann.insert(THUMBPRINT.to_string(), format!("[\"{n:064X}\"]"));
    let envelope = format!("{{\"payload\":\"sig-{n}\"}}").into_bytes();
    let (at, config_mt) = if legacy {
        (None, oci::NOTATION_SIGNATURE)
    } else {
        (Some(oci::NOTATION_SIGNATURE), oci::OCI_EMPTY)
    };
    p.push_artifact(
        name,
        subject,
        at,
        config_mt,
        vec![("application/jose+json".to_string(), envelope)],
        ann,
    )
    .await
    .unwrap()
}

async fn push_sbom(p: &OciClient, name: &str, subject: &oci::Descriptor) -> oci::Descriptor {
    p.push_artifact(
        name,
        subject,
        Some(SBOM),
        oci::OCI_EMPTY,
        vec![(SBOM.to_string(), b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec())],
        BTreeMap::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn resolves_tags_and_fetches_verified_content_in_nested_repos() {
    let reg = InprocRegistry::start().await.unwrap();
    let p = pusher(&reg);
    let image = p.push_image("team/app/web", "v1").await.unwrap();
    let c = client(&reg);
    reg.clear_log();

    let r = ImageReference::parse(&format!("{}/team/app/web:v1", reg.host_port())).unwrap();
    let d = c.resolve(&r).await.unwrap();
    assert_eq!(d.digest.to_string(), image.digest);
    assert_eq!(d.size, image.size);
    assert_eq!(d.media_type, media_type::OCI_MANIFEST);
    let methods: Vec<String> = reg.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD"], "a tag resolves with one HEAD");

    let m = c.fetch_manifest(r.repository(), &d.digest).await.unwrap();
    assert_eq!(m.media_type, media_type::OCI_MANIFEST);
    assert!(d.digest.matches(&m.bytes));
    let parsed = m.image_manifest().unwrap();
    let config = c.fetch_blob(r.repository(), &parsed.config).await.unwrap();
    assert!(parsed.config.digest.matches(&config));

    // Missing tag: NotFound (definitive), not a transport error.
    let missing = ImageReference::parse(&format!("{}/team/app/web:nope", reg.host_port())).unwrap();
    let err = c.resolve(&missing).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn resolve_hashes_the_manifest_when_the_digest_header_is_missing() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    reg.omit_digest_header(true);
    reg.clear_log();
    let c = client(&reg);
    let r = ImageReference::parse(&format!("{}/app:v1", reg.host_port())).unwrap();
    let d = c.resolve(&r).await.unwrap();
    assert_eq!(d.digest.to_string(), image.digest);
    let methods: Vec<String> = reg.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "GET"]);

    // A digest reference is checked against the bytes, too.
    let by_digest = ImageReference::with_digest(r.repository().clone(), digest(&image));
    assert_eq!(c.resolve(&by_digest).await.unwrap().digest, digest(&image));
}

#[tokio::test]
async fn referrers_api_filters_by_artifact_type_and_accepts_both_notation_forms() {
    let reg = InprocRegistry::start().await.unwrap();
    let p = pusher(&reg);
    let name = "org/signed";
    let image = p.push_image(name, "v1").await.unwrap();
    let current = push_notation(&p, name, &image, false, 1).await;
    let legacy = push_notation(&p, name, &image, true, 2).await;
    let sbom = push_sbom(&p, name, &image).await;
    let c = client(&reg);
    let repo = repo(&reg, name);

    let refs = c
        .referrers(&repo, &digest(&image), Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(refs.source, ReferrersSource::Api);
    assert!(!refs.truncated);
    let got: Vec<String> = refs
        .manifests
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    assert_eq!(got, [current.digest.clone(), legacy.digest.clone()]);
    for d in &refs.manifests {
        assert_eq!(
            d.artifact_type.as_deref(),
            Some(media_type::NOTATION_SIGNATURE)
        );
        assert!(
            d.annotations.contains_key(THUMBPRINT),
            "annotations not copied: {d:?}"
        );
        // The caller classifies the fetched manifest; both forms are Notation signatures.
        let m = c.fetch_manifest(&repo, &d.digest).await.unwrap();
        assert_eq!(
            m.artifact_type().unwrap().as_deref(),
            Some(media_type::NOTATION_SIGNATURE)
        );
        assert_eq!(
            m.image_manifest().unwrap().subject.unwrap().digest,
            digest(&image)
        );
    }
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.path.contains("/referrers/") && r.path.contains("artifactType=")),
        "filter not sent to the registry"
    );

    // Unfiltered: all three.
    let all = c.referrers(&repo, &digest(&image), None).await.unwrap();
    let mut types: Vec<String> = all
        .manifests
        .iter()
        .filter_map(|d| d.artifact_type.clone())
        .collect();
    types.sort();
    assert_eq!(types.len(), 3);
    assert!(
        all.manifests
            .iter()
            .any(|d| d.digest.to_string() == sbom.digest)
    );

    // A registry that ignores the filter (no OCI-Filters-Applied): the client re-filters.
    reg.disable_referrers_filtering(true);
    let refiltered = c
        .referrers(&repo, &digest(&image), Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(refiltered.manifests.len(), 2);
    assert!(
        refiltered
            .manifests
            .iter()
            .all(|d| d.digest.to_string() != sbom.digest)
    );

    // A subject without referrers: an empty list from the API.
    let other = p.push_image(name, "v2").await.unwrap();
    let none = c.referrers(&repo, &digest(&other), None).await.unwrap();
    assert!(none.manifests.is_empty());
    assert_eq!(none.source, ReferrersSource::Api);
}

#[tokio::test]
async fn referrers_follow_link_pages_and_stop_at_max_referrers() {
    let reg = InprocRegistry::start().await.unwrap();
    reg.set_referrers_page_size(Some(2));
    let p = pusher(&reg);
    let name = "paged";
    let image = p.push_image(name, "v1").await.unwrap();
    let mut pushed = Vec::new();
    for n in 0..7 {
        pushed.push(push_notation(&p, name, &image, n % 2 == 1, n).await.digest);
    }
    let repo = repo(&reg, name);
    reg.clear_log();
    let refs = client(&reg)
        .referrers(&repo, &digest(&image), Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    let got: Vec<String> = refs
        .manifests
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    assert_eq!(got, pushed, "all pages, in order");
    assert!(!refs.truncated);
    assert_eq!(
        reg.count_requests("/referrers/"),
        4,
        "7 entries at 2 per page"
    );

    let capped = client_with(&reg, |c| c.max_referrers = 5)
        .referrers(&repo, &digest(&image), Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(capped.manifests.len(), 5);
    assert!(capped.truncated);

    // Exactly at the limit is not truncation.
    let exact = client_with(&reg, |c| c.max_referrers = 7)
        .referrers(&repo, &digest(&image), None)
        .await
        .unwrap();
    assert_eq!(exact.manifests.len(), 7);
    assert!(!exact.truncated);

    // A page limit also reports truncation instead of silently dropping entries.
    let few_pages = client_with(&reg, |c| c.max_referrer_pages = 2)
        .referrers(&repo, &digest(&image), None)
        .await
        .unwrap();
    assert_eq!(few_pages.manifests.len(), 4);
    assert!(few_pages.truncated);
}

#[tokio::test]
async fn without_referrers_api_the_tag_schema_index_is_used() {
    let reg = InprocRegistry::start().await.unwrap();
    reg.disable_referrers_api(true);
    let p = OciClient::new(&reg.host_port()).with_referrers_tag_schema(true);
    let image = p.push_image("old", "v1").await.unwrap();
    let sig = push_notation(&p, "old", &image, false, 1).await;
    push_sbom(&p, "old", &image).await;
    let c = client(&reg);
    let repo = repo(&reg, "old");
    let refs = c
        .referrers(&repo, &digest(&image), Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(refs.source, ReferrersSource::TagSchema);
    let got: Vec<String> = refs
        .manifests
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    assert_eq!(got, [sig.digest]);

    let unsigned = p.push_image("old", "v2").await.unwrap();
    let none = c.referrers(&repo, &digest(&unsigned), None).await.unwrap();
    assert_eq!(none.source, ReferrersSource::TagSchema);
    assert!(none.manifests.is_empty());
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after_within_the_deadline() {
    let reg = InprocRegistry::start().await.unwrap();
    pusher(&reg).push_image("app", "v1").await.unwrap();
    let c = client(&reg);
    let r = ImageReference::parse(&format!("{}/app:v1", reg.host_port())).unwrap();
    reg.clear_log();
    reg.fail_next(1, 429, Some("1"));
    let start = Instant::now();
    c.resolve(&r).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After not honoured"
    );
    let statuses: Vec<u16> = reg.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn throttling_beyond_the_deadline_is_a_transient_throttled_error() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    let c = client_with(&reg, |c| c.request_timeout = Duration::from_secs(2));
    reg.fail_next(100, 429, Some("30"));
    let start = Instant::now();
    let err = c
        .referrers(&repo(&reg, "app"), &digest(&image), None)
        .await
        .unwrap_err();
    match &err {
        RegistryError::Throttled { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(30)))
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(err.is_transient());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited although Retry-After exceeds the deadline"
    );
    assert!(err.to_string().contains("429"), "{err}");
}

#[tokio::test]
async fn server_errors_are_unavailable_after_bounded_retries() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    let c = client(&reg);
    reg.clear_log();
    reg.fail_next(100, 503, None);
    let err = c
        .referrers(&repo(&reg, "app"), &digest(&image), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(reg.requests().len(), 4, "1 attempt + 3 retries");

    // One transient 502 is absorbed by a retry.
    reg.clear_faults();
    reg.clear_log();
    reg.fail_next(1, 502, None);
    let refs = c
        .referrers(&repo(&reg, "app"), &digest(&image), None)
        .await
        .unwrap();
    assert!(refs.manifests.is_empty());
    assert_eq!(
        reg.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [502, 200]
    );
}

#[tokio::test]
async fn a_stopped_registry_is_unavailable_never_an_empty_result() {
    let mut reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    let c = client(&reg);
    let repo = repo(&reg, "app");
    c.referrers(&repo, &digest(&image), None).await.unwrap();
    reg.stop().await;
    let err = c.referrers(&repo, &digest(&image), None).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    let r = ImageReference::parse(&format!("{}/app:v1", reg.host_port())).unwrap();
    let err = c.resolve(&r).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");
    let err = c
        .cosign_signature_tag(&repo, &digest(&image))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_slow_registry_hits_the_call_deadline() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    reg.set_latency(Duration::from_secs(3));
    let c = client_with(&reg, |c| c.request_timeout = Duration::from_millis(300));
    let start = Instant::now();
    let err = c
        .fetch_manifest(&repo(&reg, "app"), &digest(&image))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(start.elapsed() < Duration::from_secs(2));
    // A per-call override on a clone.
    let err = client(&reg)
        .with_request_timeout(Duration::from_millis(200))
        .referrers(&repo(&reg, "app"), &digest(&image), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_bytes_are_a_digest_mismatch() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    let c = client(&reg);
    let repo = repo(&reg, "app");
    let m = c.fetch_manifest(&repo, &digest(&image)).await.unwrap();
    let config = m.image_manifest().unwrap().config;

    let mut tampered = m.bytes.to_vec();
    tampered.extend_from_slice(b" ");
    reg.serve_wrong_bytes(&image.digest, tampered);
    let err = c.fetch_manifest(&repo, &digest(&image)).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());

    let mut blob = c.fetch_blob(&repo, &config).await.unwrap().to_vec();
    blob[0] ^= 1;
    reg.serve_wrong_bytes(&config.digest.to_string(), blob);
    let err = c.fetch_blob(&repo, &config).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_manifests_and_blobs_are_refused() {
    let reg = InprocRegistry::start().await.unwrap();
    let p = pusher(&reg);
    let image = p.push_image("app", "v1").await.unwrap();
    let mut ann = BTreeMap::new();
    ann.insert("padding".to_string(), "x".repeat(8 * 1024));
    let big = p
        .push_artifact(
            "app",
            &image,
            Some(media_type::NOTATION_SIGNATURE),
            oci::OCI_EMPTY,
            vec![("application/jose+json".into(), vec![b'a'; 4096])],
            ann,
        )
        .await
        .unwrap();
    let c = client_with(&reg, |c| {
        c.max_manifest_bytes = 4096;
        c.max_blob_bytes = 1024;
    });
    let repo = repo(&reg, "app");
    let err = c.fetch_manifest(&repo, &digest(&big)).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 4096, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());

    let layer = client(&reg)
        .fetch_manifest(&repo, &digest(&big))
        .await
        .unwrap()
        .image_manifest()
        .unwrap()
        .layers
        .remove(0);
    reg.clear_log();
    let err = c.fetch_blob(&repo, &layer).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::TooLarge {
                limit: 1024,
                size: Some(4096),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(reg.requests().is_empty(), "refused before any request");

    // A descriptor that understates the size: the body is cut off at the limit.
    let mut lying = layer.clone();
    lying.size = 10;
    let err = c.fetch_blob(&repo, &lying).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 1024, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn cosign_signature_tags_are_found_and_absent_ones_are_none() {
    let reg = InprocRegistry::start().await.unwrap();
    let p = pusher(&reg);
    let signed = p.push_image("app", "signed").await.unwrap();
    let unsigned = p.push_image("app", "unsigned").await.unwrap();
    let payload = oci::cosign_payload(&format!("{}/app", reg.host_port()), &signed.digest);
    let sig = p
        .push_cosign_signature("app", &signed, &payload, "c2ln", BTreeMap::new())
        .await
        .unwrap();
    let c = client(&reg);
    let repo = repo(&reg, "app");
    let found = c
        .cosign_signature_tag(&repo, &digest(&signed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.digest.to_string(), sig.digest);
    assert!(
        c.cosign_signature_tag(&repo, &digest(&unsigned))
            .await
            .unwrap()
            .is_none()
    );
}

fn write_docker_config(
    dir: &tempfile::TempDir,
    host: &str,
    entry: serde_json::Value,
) -> std::path::PathBuf {
    let path = dir.path().join("config.json");
    let cfg = serde_json::json!({"auths": {host: entry}});
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn basic_auth_from_a_docker_config() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("private", "v1").await.unwrap();
    reg.set_auth(RegistryAuth::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    });
    let r = ImageReference::parse(&format!("{}/private:v1", reg.host_port())).unwrap();

    let err = client(&reg).resolve(&r).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(
        err.is_transient(),
        "auth failures are never cached as definitive"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = write_docker_config(
        &dir,
        &reg.host_port(),
        serde_json::json!({"auth": b64("alice:s3cret")}),
    );
    let auth: Arc<dyn AuthProvider> = Arc::new(DockerConfig::from_file(&path).unwrap());
    let c = RegistryClient::new(config(&reg), auth).unwrap();
    assert_eq!(c.resolve(&r).await.unwrap().digest, digest(&image));
    reg.clear_log();
    c.fetch_manifest(r.repository(), &digest(&image))
        .await
        .unwrap();
    assert_eq!(
        reg.requests().len(),
        1,
        "Basic sent up front once the challenge is known"
    );

    let wrong = write_docker_config(
        &dir,
        &reg.host_port(),
        serde_json::json!({"username": "alice", "password": "nope"}),
    );
    let c = RegistryClient::new(
        config(&reg),
        Arc::new(DockerConfig::from_file(&wrong).unwrap()),
    )
    .unwrap();
    let err = c.resolve(&r).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn bearer_token_flow_caches_tokens_and_refreshes_after_401() {
    let reg = InprocRegistry::start().await.unwrap();
    let p = pusher(&reg);
    let image = p.push_image("team/private", "v1").await.unwrap();
    let sig = push_notation(&p, "team/private", &image, false, 1).await;
    reg.set_auth(RegistryAuth::Bearer {
        username: "bob".into(),
        password: "pw".into(),
        refresh_token: Some("refresh-123".into()),
        token_ttl: Duration::from_secs(300),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write_docker_config(
        &dir,
        &reg.host_port(),
        serde_json::json!({"auth": b64("bob:pw")}),
    );
    let c = RegistryClient::new(
        config(&reg),
        Arc::new(DockerConfig::from_file(&path).unwrap()),
    )
    .unwrap();
    let repo = repo(&reg, "team/private");
    let r = ImageReference::with_tag(repo.clone(), "v1").unwrap();

    assert_eq!(c.resolve(&r).await.unwrap().digest, digest(&image));
    let refs = c
        .referrers(&repo, &digest(&image), Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(refs.manifests[0].digest.to_string(), sig.digest);
    c.fetch_manifest(&repo, &digest(&sig)).await.unwrap();
    assert_eq!(
        reg.count_requests("/token"),
        1,
        "one token per repository, cached"
    );
    let token_req = reg
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/token"))
        .unwrap();
    assert_eq!(token_req.method, "GET");
    assert!(
        token_req
            .path
            .contains("scope=repository%3Ateam%2Fprivate%3Apull"),
        "{}",
        token_req.path
    );

    // Tokens invalidated server-side: one 401, a fresh token, success.
    reg.revoke_tokens();
    c.fetch_manifest(&repo, &digest(&image)).await.unwrap();
    assert_eq!(reg.count_requests("/token"), 2);

    // identitytoken: refresh-token grant by POST.
    let path = write_docker_config(
        &dir,
        &reg.host_port(),
        serde_json::json!({"identitytoken": "refresh-123"}),
    );
    let c2 = RegistryClient::new(
        config(&reg),
        Arc::new(DockerConfig::from_file(&path).unwrap()),
    )
    .unwrap();
    reg.clear_log();
    assert_eq!(c2.resolve(&r).await.unwrap().digest, digest(&image));
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/token")
    );

    // Wrong credentials at the token server: Unauthorized, transient.
    let bad = StaticCredentials::new().with(
        &reg.host_port(),
        Credentials::Basic {
            username: "bob".into(),
            password: "wrong".into(),
        },
    );
    let c3 = RegistryClient::new(config(&reg), Arc::new(bad)).unwrap();
    let err = c3.resolve(&r).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("token server"), "{err}");

    // Anonymous against a private registry: Unauthorized, not NotFound or empty.
    let anon = RegistryClient::new(config(&reg), Arc::new(Anonymous)).unwrap();
    let err = anon
        .referrers(&repo, &digest(&image), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn credentials_rotate_without_a_new_client() {
    let reg = InprocRegistry::start().await.unwrap();
    let image = pusher(&reg).push_image("app", "v1").await.unwrap();
    reg.set_auth(RegistryAuth::Bearer {
        username: "u".into(),
        password: "old".into(),
        refresh_token: None,
        token_ttl: Duration::from_secs(300),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write_docker_config(
        &dir,
        &reg.host_port(),
        serde_json::json!({"auth": b64("u:old")}),
    );
    let c = RegistryClient::new(
        config(&reg),
        Arc::new(DockerConfig::from_file(&path).unwrap()),
    )
    .unwrap();
    let repo = repo(&reg, "app");
    c.fetch_manifest(&repo, &digest(&image)).await.unwrap();

    // The password rotates at the registry and in the mounted secret.
    reg.set_auth(RegistryAuth::Bearer {
        username: "u".into(),
        password: "rotated-password".into(),
        refresh_token: None,
        token_ttl: Duration::from_secs(300),
    });
    reg.revoke_tokens();
    write_docker_config(
        &dir,
        &reg.host_port(),
        serde_json::json!({"auth": b64("u:rotated-password")}),
    );
    c.fetch_manifest(&repo, &digest(&image)).await.unwrap();
}
