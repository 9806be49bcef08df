//! The sigstore-rs vectors (../shared/vectors/cosign-sigstore-rs, README §3) through the Cosign
//! verifier as the pipeline calls it: real cosign simple-signing payloads and signatures, keys
//! from an inline KeyManagementProvider.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use verdict_crds::model::CosignParameters;
use verdict_scanner::cosign::{
    CosignVerifier, KeyResolver, ProviderKey, SignatureLayer, SigstoreTrustRoot, Subject,
};
use verdict_testkit::shared_dir;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

struct Inline(String);

impl KeyResolver for Inline {
    fn provider_keys(&self, provider: &str) -> Option<Vec<ProviderKey>> {
        (provider == "kmp").then(|| {
            vec![ProviderKey {
                name: String::new(),
                version: String::new(),
                pem: self.0.clone(),
            }]
        })
    }
    fn read_key_file(&self, _: &str) -> Result<String, String> {
        Err("no files".into())
    }
}

fn dir() -> Option<PathBuf> {
    Some(shared_dir()?.join("vectors/cosign-sigstore-rs"))
}

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn verifier(pem: &str) -> CosignVerifier {
    let params: CosignParameters = serde_json::from_value(serde_json::json!({
        "trustPolicies": [{"name": "default", "scopes": ["*"], "keys": [{"provider": "kmp"}]}]
    }))
    .unwrap();
    CosignVerifier::from_parameters(
        &params,
        &Inline(pem.to_owned()),
        Arc::new(SigstoreTrustRoot::new()),
    )
    .expect("verifier")
}

/// Verifies `payload` + `signature_b64` for `subject_digest`; returns (ok, first error).
fn check(pem: &str, payload: &[u8], signature_b64: &str, subject_digest: &str) -> (bool, String) {
    let annotations = BTreeMap::from([(SIG_ANNOTATION.to_owned(), signature_b64.to_owned())]);
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(payload))
    );
    let layer = SignatureLayer {
        media_type: SIMPLE_SIGNING,
        digest: &digest,
        payload,
        annotations: &annotations,
    };
    let outcome = verifier(pem).verify_layers(
        &Subject {
            reference: "registry-testing.svc.lan/busybox:latest",
            repository: "registry-testing.svc.lan/busybox",
            digest: subject_digest,
        },
        &[layer],
        Utc::now(),
    );
    let err = outcome
        .signatures
        .iter()
        .flat_map(|s| &s.verifications)
        .filter_map(|v| v.error.clone())
        .next()
        .unwrap_or_default();
    (outcome.is_success, err)
}

fn subject_of(payload: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap();
    v["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn ecdsa_p256_vector_is_valid() {
    let Some(d) = dir() else { return };
    let payload = read(&d, "ecdsa-p256.payload.json");
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.pub"),
        payload.as_bytes(),
        read(&d, "ecdsa-p256.sig.b64").trim(),
        &subject_of(&payload),
    );
    assert!(ok, "{err}");
    // The payload digest is the layer digest the README states.
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(payload.as_bytes())),
        "3af4414d20c9e1cb76ccc72aae8b242166dabe6af531a4a790db8e2f0e5ee7c9"
    );
}

#[test]
fn rsa_pkcs1_vector_is_valid() {
    let Some(d) = dir() else { return };
    let payload = read(&d, "rsa-pkcs1-sha256.payload.json");
    let (ok, err) = check(
        &read(&d, "rsa-pkcs1-sha256.pub"),
        payload.as_bytes(),
        read(&d, "rsa-pkcs1-sha256.sig.b64").trim(),
        &subject_of(&payload),
    );
    assert!(ok, "{err}");
}

#[test]
fn wrong_key_is_invalid() {
    let Some(d) = dir() else { return };
    let payload = read(&d, "ecdsa-p256.payload.json");
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.wrong-key.pub"),
        payload.as_bytes(),
        read(&d, "ecdsa-p256.sig.b64").trim(),
        &subject_of(&payload),
    );
    assert!(!ok);
    assert!(err.contains("does not verify with key kmp:kmp"), "{err}");
}

#[test]
fn tampered_payload_is_invalid() {
    let Some(d) = dir() else { return };
    let payload = read(&d, "ecdsa-p256.payload.json");
    let subject = subject_of(&payload);
    // Any changed byte: here the docker-reference, which keeps the payload well-formed.
    let tampered = payload.replace("busybox", "busyb0x");
    assert_ne!(tampered, payload);
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.pub"),
        tampered.as_bytes(),
        read(&d, "ecdsa-p256.sig.b64").trim(),
        &subject,
    );
    assert!(!ok);
    assert!(err.contains("does not verify"), "{err}");
    // sigstore-rs's own negative case: a different message altogether.
    let (ok, _) = check(
        &read(&d, "ecdsa-p256.pub"),
        b"hello world",
        read(&d, "ecdsa-p256.sig.b64").trim(),
        &subject,
    );
    assert!(!ok);
}

#[test]
fn malformed_signature_is_an_error_not_a_panic() {
    let Some(d) = dir() else { return };
    let payload = read(&d, "ecdsa-p256.payload.json");
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.pub"),
        payload.as_bytes(),
        "this@is@a@signature",
        &subject_of(&payload),
    );
    assert!(!ok);
    assert!(err.contains("not valid base64"), "{err}");
    // Valid base64 that is not a DER signature, and an empty annotation.
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.pub"),
        payload.as_bytes(),
        "AAAA",
        &subject_of(&payload),
    );
    assert!(!ok && err.contains("does not verify"), "{err}");
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.pub"),
        payload.as_bytes(),
        "",
        &subject_of(&payload),
    );
    assert!(
        !ok && err.contains("no dev.cosignproject.cosign/signature"),
        "{err}"
    );
}

#[test]
fn valid_signature_for_another_image_is_invalid() {
    let Some(d) = dir() else { return };
    let payload = read(&d, "ecdsa-p256.payload.json");
    let other = format!("sha256:{}", "0".repeat(64));
    let (ok, err) = check(
        &read(&d, "ecdsa-p256.pub"),
        payload.as_bytes(),
        read(&d, "ecdsa-p256.sig.b64").trim(),
        &other,
    );
    assert!(!ok);
    assert!(
        err.contains("is for image sha256:f3cfc9d0") && err.contains(&other),
        "{err}"
    );
}

#[test]
fn private_key_files_are_refused_as_trusted_keys() {
    let Some(d) = dir() else { return };
    let params: CosignParameters = serde_json::from_value(serde_json::json!({
        "trustPolicies": [{"name": "default", "scopes": ["*"], "keys": [{"provider": "kmp"}]}]
    }))
    .unwrap();
    let e = CosignVerifier::from_parameters(
        &params,
        &Inline(read(&d, "sigstore-rs-test-ecdsa_private.key")),
        Arc::new(SigstoreTrustRoot::new()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no `PUBLIC KEY` block"), "{e}");
}
