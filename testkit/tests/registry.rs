//! Real docker-registry: images, artifacts with `subject`, tag-schema referrers index, cosign
//! tags, OCI layouts, restart, push notifications.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use verdict_testkit::oci::{
    COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLESIGNING, NOTATION_SIGNATURE, OCI_EMPTY, OCI_INDEX,
    OCI_MANIFEST, cosign_payload, referrers_tag, sha256_digest,
};
use verdict_testkit::registry::NotificationEndpoint;
use verdict_testkit::{DockerRegistry, shared_dir};

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn image_and_artifact_with_subject_round_trip_and_tag_schema_index() {
    let reg = DockerRegistry::start().await.unwrap();
    let client = reg.client();

    let image = client.push_image("team/app", "v1").await.unwrap();
    assert_eq!(image.media_type, OCI_MANIFEST);
    let by_tag = client.get_manifest("team/app", "v1").await.unwrap();
    assert_eq!(by_tag.digest, image.digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.bytes.len() as u64, image.size);
    let by_digest = client
        .get_manifest("team/app", &image.digest)
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, by_tag.bytes);
    let m = by_tag.json().unwrap();
    let layer_digest = m["layers"][0]["digest"].as_str().unwrap();
    let layer = client.get_blob("team/app", layer_digest).await.unwrap();
    assert_eq!(layer.len(), 512);
    let head = client
        .head_manifest("team/app", "v1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest, image.digest);
    assert_eq!(head.size, image.size);

    // Current Notation form: artifactType + empty config.
    let sig_blob = br#"{"payload":"x","protected":"y","signature":"z"}"#.to_vec();
    let notes = annotations(&[("io.cncf.notary.x509chain.thumbprint#S256", "[\"ab\"]")]);
    let art = client
        .push_artifact(
            "team/app",
            &image,
            Some(NOTATION_SIGNATURE),
            OCI_EMPTY,
            vec![("application/jose+json".into(), sig_blob.clone())],
            notes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(art.artifact_type.as_deref(), Some(NOTATION_SIGNATURE));
    let fetched = client.get_manifest("team/app", &art.digest).await.unwrap();
    assert_eq!(sha256_digest(&fetched.bytes), art.digest);
    assert_eq!(fetched.bytes.len() as u64, art.size);
    let am = fetched.json().unwrap();
    assert_eq!(am["artifactType"], NOTATION_SIGNATURE);
    assert_eq!(am["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(am["subject"]["digest"], image.digest.as_str());
    assert_eq!(am["subject"]["size"], image.size);
    assert_eq!(
        am["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"],
        "[\"ab\"]"
    );
    let layer_digest = am["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        client.get_blob("team/app", layer_digest).await.unwrap(),
        sig_blob
    );

    // Legacy Notation form: no artifactType, config.mediaType is the type.
    let legacy = client
        .push_artifact(
            "team/app",
            &image,
            None,
            NOTATION_SIGNATURE,
            vec![("application/jose+json".into(), b"legacy".to_vec())],
            BTreeMap::new(),
        )
        .await
        .unwrap();
    let lm = client
        .get_manifest("team/app", &legacy.digest)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert!(lm.get("artifactType").is_none());
    assert_eq!(lm["config"]["mediaType"], NOTATION_SIGNATURE);

    // The same artifact again must not duplicate the index entry.
    let again = client
        .push_artifact(
            "team/app",
            &image,
            Some(NOTATION_SIGNATURE),
            OCI_EMPTY,
            vec![("application/jose+json".into(), sig_blob.clone())],
            notes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(again.digest, art.digest);

    let tag = referrers_tag(&image.digest).unwrap();
    assert_eq!(tag, format!("sha256-{}", image.hex()));
    let idx_manifest = client.get_manifest("team/app", &tag).await.unwrap();
    assert_eq!(idx_manifest.media_type, OCI_INDEX);
    let idx = idx_manifest.json().unwrap();
    let entries = idx["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{idx}");
    assert_eq!(entries[0]["digest"], art.digest.as_str());
    assert_eq!(entries[0]["artifactType"], NOTATION_SIGNATURE);
    assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(entries[0]["size"], art.size);
    assert_eq!(
        entries[0]["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"],
        "[\"ab\"]"
    );
    assert_eq!(entries[1]["digest"], legacy.digest.as_str());
    assert_eq!(entries[1]["artifactType"], NOTATION_SIGNATURE);

    // docker-registry 2.8 has no referrers API: the tag schema is what clients must use.
    let (status, _, _) = client
        .referrers_api("team/app", &image.digest)
        .await
        .unwrap();
    assert_eq!(status, 404);

    let mut tags = client.list_tags("team/app").await.unwrap();
    tags.sort();
    assert_eq!(tags, vec![tag.clone(), "v1".to_string()]);
}

#[tokio::test]
async fn tag_schema_maintenance_can_be_turned_off() {
    let reg = DockerRegistry::start().await.unwrap();
    let client = reg.client().with_referrers_tag_schema(false);
    let image = client.push_image("app", "v1").await.unwrap();
    let art = client
        .push_artifact(
            "app",
            &image,
            Some("application/example"),
            OCI_EMPTY,
            vec![("application/octet-stream".into(), b"x".to_vec())],
            BTreeMap::new(),
        )
        .await
        .unwrap();
    assert!(
        client
            .head_manifest("app", &art.digest)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        client
            .referrers_tag_index("app", &image.digest)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        client.list_tags("app").await.unwrap(),
        vec!["v1".to_string()]
    );
}

#[tokio::test]
async fn cosign_sig_tag_appends_layers() {
    let reg = DockerRegistry::start().await.unwrap();
    let client = reg.client();
    let image = client.push_image("cos", "v1").await.unwrap();
    let payload = cosign_payload(&format!("{}/cos", reg.host_port()), &image.digest);
    let p: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        p["critical"]["image"]["docker-manifest-digest"],
        image.digest.as_str()
    );

    let first = client
        .push_cosign_signature("cos", &image, &payload, "c2lnMQ==", BTreeMap::new())
        .await
        .unwrap();
    let extra = annotations(&[(
        "dev.sigstore.cosign/certificate",
        "-----BEGIN CERTIFICATE-----",
    )]);
    let second = client
        .push_cosign_signature("cos", &image, &payload, "c2lnMg==", extra)
        .await
        .unwrap();
    assert_ne!(first.digest, second.digest);
    // Re-pushing an identical signature changes nothing.
    let third = client
        .push_cosign_signature("cos", &image, &payload, "c2lnMQ==", BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(third.digest, second.digest);

    let tag = format!("sha256-{}.sig", image.hex());
    let sig = client.get_manifest("cos", &tag).await.unwrap();
    assert_eq!(sig.digest, second.digest);
    let m = sig.json().unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["mediaType"], COSIGN_SIMPLESIGNING);
    assert_eq!(
        layers[0]["annotations"][COSIGN_SIGNATURE_ANNOTATION],
        "c2lnMQ=="
    );
    assert_eq!(
        layers[1]["annotations"][COSIGN_SIGNATURE_ANNOTATION],
        "c2lnMg=="
    );
    assert_eq!(
        layers[1]["annotations"]["dev.sigstore.cosign/certificate"],
        "-----BEGIN CERTIFICATE-----"
    );
    let blob = client
        .get_blob("cos", layers[0]["digest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(blob, payload);
}

#[tokio::test]
async fn notation_e2e_layout_pushes_byte_exact() {
    let Some(shared) = shared_dir() else { return };
    let layout = shared.join("vectors/notation-e2e/oci_layout/e2e-valid-signature");
    let reg = DockerRegistry::start().await.unwrap();
    let client = reg.client();
    let pushed = client.push_oci_layout(&layout, "e2e").await.unwrap();
    // Manifests first, the referrers index last.
    assert_eq!(pushed.last().unwrap().descriptor.media_type, OCI_INDEX);

    let subject = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
    let signature = "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f";
    let blob = |d: &str| std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap();
    let s = client.get_manifest("e2e", subject).await.unwrap();
    assert_eq!(s.bytes, blob(subject));
    assert_eq!(
        client.get_manifest("e2e", "v1").await.unwrap().digest,
        subject
    );
    let sig = client.get_manifest("e2e", signature).await.unwrap();
    assert_eq!(sig.bytes, blob(signature));
    let sm = sig.json().unwrap();
    assert_eq!(sm["subject"]["digest"], subject);
    assert_eq!(sm["config"]["mediaType"], NOTATION_SIGNATURE);
    let jws = sm["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(client.get_blob("e2e", jws).await.unwrap(), blob(jws));

    let idx = client
        .referrers_tag_index("e2e", subject)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(idx["manifests"][0]["digest"], signature);
    assert_eq!(idx["manifests"][0]["artifactType"], NOTATION_SIGNATURE);
}

#[tokio::test]
async fn registry_restart_keeps_content_and_port() {
    let mut reg = DockerRegistry::start().await.unwrap();
    let client = reg.client().with_timeout(Duration::from_secs(2));
    let image = client.push_image("r", "v1").await.unwrap();
    let url = reg.url();
    reg.kill();
    assert!(
        client.head_manifest("r", "v1").await.is_err(),
        "registry should be down"
    );
    reg.restart().await.unwrap();
    assert_eq!(reg.url(), url);
    let head = client.head_manifest("r", "v1").await.unwrap().unwrap();
    assert_eq!(head.digest, image.digest);
}

#[tokio::test]
async fn push_notifications_reach_the_configured_endpoint() {
    use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
    type Seen = tokio::sync::mpsc::UnboundedSender<(HeaderMap, Bytes)>;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/events",
            post(
                |State(tx): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    let _ = tx.send((headers, body));
                    "ok"
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let endpoint = NotificationEndpoint::new("test", &format!("http://{addr}/events"))
        .header("Authorization", "Bearer s3cret");
    let reg = DockerRegistry::builder()
        .notification(endpoint)
        .start()
        .await
        .unwrap();
    let image = reg.client().push_image("notify/app", "v1").await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (headers, body) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("no manifest push event within 15 s")
            .unwrap();
        assert_eq!(headers["authorization"], "Bearer s3cret");
        assert_eq!(
            headers["content-type"],
            "application/vnd.docker.distribution.events.v1+json"
        );
        let env: Value = serde_json::from_slice(&body).unwrap();
        let hit = env["events"].as_array().unwrap().iter().any(|e| {
            e["action"] == "push"
                && e["target"]["digest"] == image.digest.as_str()
                && e["target"]["repository"] == "notify/app"
                && e["target"]["tag"] == "v1"
        });
        if hit {
            break;
        }
    }
}

#[tokio::test]
async fn token_auth_challenges_and_accepts_a_signed_jwt() {
    use base64::Engine as _;
    use verdict_testkit::pki::{CertBuilder, KeyAlg, SignAlg};
    use verdict_testkit::registry::TokenAuth;

    let root = CertBuilder::root_ca("CN=Token Root").self_signed().unwrap();
    let signer = CertBuilder::code_signing("CN=token-signer")
        .key_alg(KeyAlg::EcP256)
        .signed_by(&root)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    root.write_pem(&bundle).unwrap();
    let reg = DockerRegistry::builder()
        .token_auth(TokenAuth {
            realm: "http://127.0.0.1:1/oauth2/token".into(),
            service: "testkit.registry".into(),
            issuer: "testkit-issuer".into(),
            rootcertbundle: bundle,
        })
        .start()
        .await
        .unwrap();

    let http = reqwest::Client::new();
    let resp = http.get(format!("{}/v2/", reg.url())).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"realm="http://127.0.0.1:1/oauth2/token""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"service="testkit.registry""#),
        "{challenge}"
    );

    // Without a token pushes fail; with a JWT signed by a key chaining to the bundle they work.
    assert!(reg.client().push_image("locked/app", "v1").await.is_err());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let std64 = base64::engine::general_purpose::STANDARD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header =
        serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [std64.encode(signer.der())]});
    let claims = serde_json::json!({
        "iss": "testkit-issuer", "sub": "tester", "aud": "testkit.registry",
        "exp": now + 300, "nbf": now - 60, "iat": now, "jti": "1",
        "access": [{"type": "repository", "name": "locked/app", "actions": ["pull", "push"]}],
    });
    let input = format!(
        "{}.{}",
        b64.encode(serde_json::to_vec(&header).unwrap()),
        b64.encode(serde_json::to_vec(&claims).unwrap())
    );
    let signature = signer.sign(SignAlg::Es256, input.as_bytes()).unwrap();
    let token = format!("{input}.{}", b64.encode(signature));
    let client = reg.client().with_bearer_token(&token);
    let image = client.push_image("locked/app", "v1").await.unwrap();
    assert_eq!(
        client
            .get_manifest("locked/app", "v1")
            .await
            .unwrap()
            .digest,
        image.digest
    );
}
