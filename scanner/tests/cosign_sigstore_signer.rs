//! Compatibility with what the sigstore ecosystem writes: an image signed and pushed by the
//! sigstore crate (its key-based signer and its OCI client, the `.sig` layout real cosign uses)
//! against a real docker-registry. sigstore is a dev-dependency only; Verdict's verifier does not
//! use it. sigstore writes `docker-reference` with the tag (`host/app:v1`), real cosign without.

mod cosign_support;

use std::str::FromStr;

use cosign_support::*;
use sigstore::cosign::constraint::{Constraint, PrivateKeySigner};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::crypto::SigningScheme;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use verdict_testkit::DockerRegistry;
use verdict_testkit::oci::cosign_signature_tag;
use verdict_testkit::ratify::inline_kmp_yaml;

fn config(key_pem: &str) -> String {
    format!(
        "{}---\n{}---\n{}",
        store_yaml(),
        cosign_verifier_yaml(
            SIG_ARTIFACT,
            "      - name: default\n        scopes: [\"*\"]\n        keys: [{provider: kmp}]\n"
        ),
        inline_kmp_yaml("kmp", None, "key", key_pem)
    )
}

#[tokio::test]
async fn image_signed_by_the_sigstore_crate_verifies() {
    let reg = DockerRegistry::start().await.expect("docker-registry");
    let host = reg.host_port();
    let oci = reg.client();
    let image = oci.push_image("app", "v1").await.unwrap();

    // Sign and push with sigstore, as `cosign sign --key` does.
    let mut client = ClientBuilder::default()
        .with_oci_client_config(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![host.clone()]),
            ..Default::default()
        })
        .build()
        .unwrap();
    let auth = Auth::Anonymous;
    let image_ref = OciReference::from_str(&format!("{host}/app:v1")).unwrap();
    let (sig_ref, digest) = client.triangulate(&image_ref, &auth).await.unwrap();
    assert_eq!(digest, image.digest);
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .unwrap();
    let key_pem = signer
        .to_sigstore_keypair()
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let mut layer = SignatureLayer::new_unsigned(&image_ref, &digest).unwrap();
    assert!(
        PrivateKeySigner::new_with_signer(signer)
            .add_constraint(&mut layer)
            .unwrap()
    );
    client
        .push_signature(None, &auth, &sig_ref, vec![layer])
        .await
        .unwrap();

    // The `.sig` manifest is where cosign puts it, and its payload names the tagged reference.
    let sig = oci
        .get_manifest("app", &cosign_signature_tag(&image.digest).unwrap())
        .await
        .expect("sigstore pushed the sha256-<hex>.sig tag");
    let manifest = sig.json().unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&oci.get_blob("app", layer_digest).await.unwrap()).unwrap();
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        format!("{host}/app:v1")
    );

    let r = verify(&host, trust(&config(&key_pem)), &format!("{host}/app:v1")).await;
    assert!(r.is_success, "{}", reasons(&r));
    assert_eq!(r.digest, image.digest);
    let [rep] = r.reports.as_slice() else {
        panic!("{}", reasons(&r))
    };
    assert_eq!(rep.verifier_type, "cosign");
    assert_eq!(rep.artifact_type, SIG_ARTIFACT);
    assert_eq!(rep.reference_digest, sig.digest, "the .sig manifest");

    // Only an unrelated key trusted: denied.
    let other = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .unwrap()
        .to_sigstore_keypair()
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let r = verify(&host, trust(&config(&other)), &format!("{host}/app:v1")).await;
    assert!(!r.is_success, "{}", reasons(&r));
    assert_eq!(
        r.reports[0].error_reason,
        "COSIGN_NO_VALID_SIGNATURE",
        "{}",
        reasons(&r)
    );
}
