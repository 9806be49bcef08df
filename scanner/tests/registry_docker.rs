//! Registry layer against the real Debian `docker-registry` (distribution 2.8, no referrers API).

use std::collections::BTreeMap;
use std::time::Duration;

use verdict_scanner::registry::{
    Digest, ImageReference, ReferrersSource, RegistryClient, RegistryConfig, RegistryError,
    Repository, RetryPolicy, media_type,
};
use verdict_testkit::DockerRegistry;
use verdict_testkit::oci::{self, OciClient};

fn client(reg: &DockerRegistry) -> RegistryClient {
    RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: vec![reg.host_port()],
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_retries: 2,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        ..RegistryConfig::default()
    })
    .unwrap()
}

fn digest(d: &oci::Descriptor) -> Digest {
    Digest::parse(&d.digest).unwrap()
}

async fn push_notation(
    p: &OciClient,
    repo: &str,
    subject: &oci::Descriptor,
    legacy: bool,
) -> oci::Descriptor {
    let (at, config_mt) = if legacy {
        (None, oci::NOTATION_SIGNATURE)
    } else {
        (Some(oci::NOTATION_SIGNATURE), oci::OCI_EMPTY)
    };
    p.push_artifact(
        repo,
        subject,
        at,
        config_mt,
        vec![(
            "application/jose+json".to_string(),
            b"{\"payload\":\"x\"}".to_vec(),
        )],
        BTreeMap::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn docker_registry_tags_manifests_tag_schema_referrers_and_cosign() {
    let mut reg = DockerRegistry::start().await.unwrap();
    let p: OciClient = reg.client();
    let name = "verdict/app/web";
    let image = p.push_image(name, "v1").await.unwrap();
    let docker_image = p.push_docker_image(name, "docker").await.unwrap();
    let c = client(&reg);
    let repo = Repository::new(&reg.host_port(), name).unwrap();

    // Tag resolution (OCI and Docker manifests) and verified fetches.
    let r = ImageReference::parse(&format!("{}/{name}:v1", reg.host_port())).unwrap();
    let d = c.resolve(&r).await.unwrap();
    assert_eq!(d.digest, digest(&image));
    assert_eq!(d.media_type, media_type::OCI_MANIFEST);
    assert_eq!(d.size, image.size);
    let r2 = ImageReference::with_tag(repo.clone(), "docker").unwrap();
    let d2 = c.resolve(&r2).await.unwrap();
    assert_eq!(d2.digest, digest(&docker_image));
    assert_eq!(d2.media_type, media_type::DOCKER_MANIFEST);
    let m = c.fetch_manifest(&repo, &d.digest).await.unwrap();
    let layer = &m.image_manifest().unwrap().layers[0];
    let blob = c.fetch_blob(&repo, layer).await.unwrap();
    assert_eq!(blob.len() as u64, layer.size);

    // docker-registry has no referrers API: discovery falls back to the sha256-<hex> index,
    // with both Notation manifest forms and client-side artifactType filtering.
    let current = push_notation(&p, name, &image, false).await;
    let legacy = push_notation(&p, name, &image, true).await;
    p.push_artifact(
        name,
        &image,
        Some("application/spdx+json"),
        oci::OCI_EMPTY,
        vec![("application/spdx+json".to_string(), b"{}".to_vec())],
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let refs = c
        .referrers(&repo, &d.digest, Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(refs.source, ReferrersSource::TagSchema);
    let got: Vec<String> = refs
        .manifests
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    assert_eq!(got, [current.digest.clone(), legacy.digest.clone()]);
    for desc in &refs.manifests {
        let sig = c.fetch_manifest(&repo, &desc.digest).await.unwrap();
        assert_eq!(
            sig.artifact_type().unwrap().as_deref(),
            Some(media_type::NOTATION_SIGNATURE)
        );
    }
    let all = c.referrers(&repo, &d.digest, None).await.unwrap();
    assert_eq!(all.manifests.len(), 3);

    // An unsigned image: no index tag → no referrers (not an error).
    let none = c.referrers(&repo, &d2.digest, None).await.unwrap();
    assert_eq!(none.source, ReferrersSource::TagSchema);
    assert!(none.manifests.is_empty());

    // Cosign legacy `.sig` tag.
    let payload = oci::cosign_payload(&format!("{}/{name}", reg.host_port()), &image.digest);
    let sig = p
        .push_cosign_signature(name, &image, &payload, "c2ln", BTreeMap::new())
        .await
        .unwrap();
    let found = c
        .cosign_signature_tag(&repo, &d.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.digest.to_string(), sig.digest);
    assert!(
        c.cosign_signature_tag(&repo, &d2.digest)
            .await
            .unwrap()
            .is_none()
    );

    // The registry goes down: a transient Unavailable, never "no referrers".
    reg.kill();
    let err = c.referrers(&repo, &d.digest, None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    let err = c.cosign_signature_tag(&repo, &d.digest).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");

    // And comes back with the same storage.
    reg.restart().await.unwrap();
    let again = c
        .referrers(&repo, &d.digest, Some(media_type::NOTATION_SIGNATURE))
        .await
        .unwrap();
    assert_eq!(again.manifests.len(), 2);
}
