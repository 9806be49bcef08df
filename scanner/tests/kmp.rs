//! Key Vault material as the future provider will receive it: the keys of recorded Azure Key Vault
//! responses (`../shared/reference/examples/akv/`) become the verifying keys Verdict trusts, and
//! Ratify's secret-bundle vectors give Ratify's results.

use verdict_scanner::cosign::KeyType;
use verdict_scanner::kmp::{public_key_from_jwk, spki_pem_from_jwk};
use verdict_testkit::shared_file;

#[test]
fn recorded_key_vault_keys_become_verifying_keys() {
    for (file, expected) in [
        ("get-key-ec-p256.json", KeyType::EcdsaP256),
        ("get-key-ec-p521.json", KeyType::EcdsaP521),
        ("get-key-rsa.json", KeyType::Rsa { bits: 2048 }),
    ] {
        let path = shared_file(&format!("reference/examples/akv/{file}"));
        let response: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let key = public_key_from_jwk(&response["key"]).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.key_type(), expected, "{file}");
        // The PEM form reads back as the same key (what a KeyManagementProvider would hold).
        let pem = spki_pem_from_jwk(&response["key"]).unwrap();
        let again = verdict_scanner::cosign::PublicKey::from_pem(&pem).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint(), "{file}");
    }
}

/// ../shared/vectors/ratify-akv-secretbundles: Ratify's secret-bundle cases and the result its
/// provider gives (`expected.json`: name, contentType, ok|error).
#[test]
fn key_vault_secret_bundles_give_ratifys_results_except_pkcs12_not_read_yet() {
    let Some(shared) = verdict_testkit::shared_dir() else {
        return;
    };
    let dir = shared.join("vectors/ratify-akv-secretbundles");
    let expected: Vec<(String, String, String)> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 5);
    for (name, _content_type, result) in expected {
        let bundle: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("secretbundle-{name}.json"))).unwrap(),
        )
        .unwrap();
        let got = verdict_scanner::kmp::certificates_from_secret_bundle(&bundle);
        match (name.as_str(), result.as_str()) {
            // Known gap (issue 15): PKCS#12 bundles are refused until the Key Vault provider
            // reads them; Ratify reads this one.
            ("pkcs12-content-type", "ok") => {
                let e = got.unwrap_err();
                assert!(e.reason.contains("does not read yet"), "{e}");
            }
            (_, "ok") => {
                let certs = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(certs.len(), 2, "{name}: leaf and its issuer");
            }
            (_, _) => assert!(got.is_err(), "{name} must be refused"),
        }
    }
}
