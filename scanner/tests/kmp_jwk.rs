//! The keys of recorded Azure Key Vault responses (`../shared/reference/examples/akv/`) become
//! the verifying keys Verdict trusts.

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
