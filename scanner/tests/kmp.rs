//! Key Vault material as the provider receives it: the keys of recorded Azure Key Vault
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
fn key_vault_secret_bundles_give_ratifys_results() {
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
            // A PFX with an empty password, 3DES/SHA-1 PBE for the certificate and the key bag.
            ("pkcs12-content-type", "ok") => {
                let certs = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(certs.len(), 1, "{name}: one self-signed certificate");
                let (_, cert) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
                assert_eq!(
                    cert.subject().to_string(),
                    "C=US, ST=WA, L=Seattle, O=Notary, CN=wabbit-networks.io",
                    "{name}"
                );
            }
            (_, "ok") => {
                let certs = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(certs.len(), 2, "{name}: leaf and its issuer");
            }
            (_, _) => assert!(got.is_err(), "{name} must be refused"),
        }
    }
}

/// PKCS#12 as OpenSSL 3 writes it by default (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC, SHA-256
/// MAC) and in the legacy 3DES form, both without a password, read back to the same chain.
#[test]
fn pkcs12_archives_from_openssl_give_their_certificates() {
    use base64::Engine as _;
    use verdict_testkit::pki::CertBuilder;
    let root = CertBuilder::root_ca("CN=P12 Root").self_signed().unwrap();
    let leaf = CertBuilder::code_signing("CN=p12 leaf")
        .signed_by(&root)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, format!("{}{}", leaf.pem(), root.pem())).unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, leaf.key().pkcs8_pem()).unwrap();
    for (label, extra) in [
        ("openssl-3-default", vec![]),
        (
            "3des",
            vec![
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
        ),
    ] {
        let out = dir.path().join(format!("{label}.p12"));
        let status = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:", "-in"])
            .arg(&chain)
            .arg("-inkey")
            .arg(&key)
            .arg("-out")
            .arg(&out)
            .args(&extra)
            .status()
            .expect("openssl must be installed (apt-get install openssl)");
        assert!(status.success(), "{label}: openssl pkcs12 -export failed");
        let bundle = serde_json::json!({
            "id": format!("https://v.vault.azure.net/secrets/{label}/1"),
            "contentType": "application/x-pkcs12",
            "value": base64::engine::general_purpose::STANDARD.encode(std::fs::read(&out).unwrap()),
        });
        let certs = verdict_scanner::kmp::certificates_from_secret_bundle(&bundle)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut got = certs.clone();
        got.sort();
        let mut want = vec![leaf.der().to_vec(), root.der().to_vec()];
        want.sort();
        assert_eq!(got, want, "{label}: the chain, private key left out");
    }
}
