//! The testkit's Notation signer, checked by Verdict's own verifier: envelopes it writes verify
//! under a strict policy trusting the signing certificate, and fail when anything is off.

use chrono::Utc;
use serde_json::json;
use verdict_scanner::notation::{
    MEDIA_TYPE_JWS, TargetArtifact as ScanDescriptor, TrustPolicyDocument, TrustStoreType,
    TrustStores, verify_signature,
};
use verdict_testkit::notation::{THUMBPRINT_ANNOTATION, push_notation_signature, sign_jws};
use verdict_testkit::oci::{Descriptor, NOTATION_SIGNATURE};
use verdict_testkit::pki::{CertBuilder, KeyAlg, TestCert, notation_thumbprints};
use verdict_testkit::{DockerRegistry, oci};

const REFERENCE: &str = "registry.example.com/demo/app@sha256:0000";

fn subject() -> Descriptor {
    Descriptor::of(oci::OCI_MANIFEST, b"{\"schemaVersion\":2}")
}

fn scan_subject(d: &Descriptor) -> ScanDescriptor {
    ScanDescriptor::new(d.media_type.clone(), d.digest.clone(), d.size)
}

fn strict(identity: &str) -> TrustPolicyDocument {
    TrustPolicyDocument::from_json(&json!({"version": "1.0", "trustPolicies": [{
        "name": "default", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:certs"], "trustedIdentities": [identity]}]}))
    .unwrap()
}

fn trusting(cert: &TestCert) -> TrustStores {
    let mut s = TrustStores::new();
    s.add_certificates(TrustStoreType::Ca, "certs", cert.pem().as_bytes())
        .unwrap();
    s
}

fn cert(alg: KeyAlg) -> TestCert {
    CertBuilder::code_signing("C=US, ST=WA, O=Verdict Demo, CN=demo")
        .key_alg(alg)
        .self_signed()
        .unwrap()
}

#[test]
fn envelopes_verify_for_every_key_type_and_identity() {
    for alg in KeyAlg::ALL {
        let cert = cert(alg);
        let env = sign_jws(&subject(), &cert).unwrap();
        let out = verify_signature(
            &env,
            MEDIA_TYPE_JWS,
            &scan_subject(&subject()),
            REFERENCE,
            &strict("x509.subject: C=US, ST=WA, O=Verdict Demo, CN=demo"),
            &trusting(&cert),
            Utc::now(),
        );
        assert!(out.verified, "{alg:?}: {}", out.message);
    }
}

#[test]
fn envelopes_fail_for_another_subject_untrusted_cert_or_tampering() {
    let cert = cert(KeyAlg::EcP256);
    let env = sign_jws(&subject(), &cert).unwrap();
    let policy = strict("*");

    let other = Descriptor::of(oci::OCI_MANIFEST, b"{\"other\":true}");
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &scan_subject(&other),
        REFERENCE,
        &policy,
        &trusting(&cert),
        Utc::now(),
    );
    assert!(
        !out.verified,
        "signature of another subject must not verify"
    );

    let stranger = self::cert(KeyAlg::EcP256);
    let out = verify_signature(
        &env,
        MEDIA_TYPE_JWS,
        &scan_subject(&subject()),
        REFERENCE,
        &policy,
        &trusting(&stranger),
        Utc::now(),
    );
    assert!(!out.verified, "untrusted certificate must not verify");

    let mut v: serde_json::Value = serde_json::from_slice(&env).unwrap();
    let sig = v["signature"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    v["signature"] = json!(format!("{flipped}{}", &sig[1..]));
    let out = verify_signature(
        &serde_json::to_vec(&v).unwrap(),
        MEDIA_TYPE_JWS,
        &scan_subject(&subject()),
        REFERENCE,
        &policy,
        &trusting(&cert),
        Utc::now(),
    );
    assert!(!out.verified, "tampered signature must not verify");
}

#[tokio::test]
async fn pushed_signature_is_a_notation_referrer_of_the_subject() {
    let registry = DockerRegistry::start().await.expect("docker-registry");
    let client = registry.client();
    let image = client.push_image("demo/app", "v1").await.unwrap();
    let cert = cert(KeyAlg::Rsa3072);
    let sig = push_notation_signature(&client, "demo/app", &image, &cert)
        .await
        .unwrap();

    let manifest = client
        .get_manifest("demo/app", &sig.digest)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(manifest["artifactType"], NOTATION_SIGNATURE);
    assert_eq!(manifest["subject"]["digest"], image.digest);
    assert_eq!(manifest["layers"][0]["mediaType"], MEDIA_TYPE_JWS);
    assert_eq!(
        manifest["annotations"][THUMBPRINT_ANNOTATION],
        notation_thumbprints(&[cert.der()])
    );

    let layer = client
        .get_blob(
            "demo/app",
            manifest["layers"][0]["digest"].as_str().unwrap(),
        )
        .await
        .unwrap();
    let out = verify_signature(
        &layer,
        MEDIA_TYPE_JWS,
        &scan_subject(&image),
        REFERENCE,
        &strict("*"),
        &trusting(&cert),
        Utc::now(),
    );
    assert!(out.verified, "{}", out.message);
}
