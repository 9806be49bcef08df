//! Every Store / KeyManagementProvider / Verifier YAML of the seed documents, as a user copying
//! it would get it (list indentation stripped, shell variables expanded).

mod common;

use common::*;
use serde_json::json;
use verdict_crds::{
    AuthProvider, CertStoreEntry, KmpParameters, OrasParameters, Resource, StoreParameters,
    VerifierParameters, load_str,
};
use verdict_testkit::seeds::resource_blocks;
use verdict_testkit::shared_file;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const TENANT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const KEY_ID: &str = "0123456789abcdef0123456789abcdef";
const KEY_VER: &str = "fedcba9876543210fedcba9876543210";
const KEY_VER_NEW: &str = "00112233445566778899aabbccddeeff";
const SUBJECT_DN: &str = "C=US, ST=WA, L=Seattle, O=Example, CN=example.com";

fn vars(key_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("IDENTITY_CLIENT_ID", CLIENT_ID.into()),
        ("CLIENT_ID", CLIENT_ID.into()),
        ("TENANT_ID", TENANT_ID.into()),
        ("AKV_NAME", "myvault".into()),
        ("CERT_NAME", "signing-cert".into()),
        ("KEY_ID", key_id.into()),
        ("KEY_NAME", "cosign-key".into()),
        ("KEY_VER_NEW", KEY_VER_NEW.into()),
        ("KEY_VER", KEY_VER.into()),
        ("SUBJECT_DN", SUBJECT_DN.into()),
        ("ACR_NAME1", "registryone".into()),
        ("ACR_NAME2", "registrytwo".into()),
    ]
}

/// What `sh` does to an unquoted heredoc: `${X}` and `$X` replaced by their values.
fn expand(text: &str, key_id: &str) -> String {
    let mut out = text.to_string();
    for (k, v) in vars(key_id) {
        out = out.replace(&format!("${{{k}}}", k = k), &v);
    }
    // Longest names first so `$KEY_VER_NEW` is not read as `$KEY_VER` + `_NEW`.
    let mut vs = vars(key_id);
    vs.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in vs {
        out = out.replace(&format!("${k}"), &v);
    }
    assert!(
        !out.contains('$'),
        "a shell variable has no test value:\n{out}"
    );
    out
}

fn seed_blocks() -> Vec<String> {
    let path = shared_file("seeds/ratify-on-azure.md");
    let md = std::fs::read_to_string(path).unwrap();
    let blocks = resource_blocks(&md);
    assert_eq!(
        blocks.len(),
        8,
        "the seed's Ratify YAML blocks changed:\n{}",
        blocks.join("\n----\n")
    );
    blocks
}

#[test]
fn second_seed_has_no_ratify_resource_yaml() {
    let path = shared_file("seeds/image-verification-gatekeeper-ratify.md");
    let md = std::fs::read_to_string(path).unwrap();
    assert!(
        resource_blocks(&md).is_empty(),
        "new Ratify YAML in the second seed needs a test"
    );
}

#[test]
fn store_oras_loads_with_every_field() {
    let blocks = seed_blocks();
    let text = expand(&blocks[0], KEY_ID);
    let r = load_str("store_config.yaml", &text);
    assert!(r.diagnostics.is_empty(), "{}", dump(&r));
    let Resource::Store(s) = &r.resources[0].resource else {
        panic!("a Store expected")
    };
    assert_eq!(s.name(), "store-oras");
    assert_eq!(s.spec.name, "oras");
    assert_eq!(
        s.spec.parameters,
        Some(StoreParameters::Oras(OrasParameters {
            auth_provider: Some(AuthProvider {
                name: Some("azureWorkloadIdentity".into()),
                client_id: Some(CLIENT_ID.into()),
                ..Default::default()
            }),
            cosign_enabled: Some(true),
            ..Default::default()
        }))
    );
    assert_eq!(
        r.resources[0].resource.to_json(),
        json!({
            "apiVersion": "config.ratify.deislabs.io/v1beta1",
            "kind": "Store",
            "metadata": {"name": "store-oras"},
            "spec": {"name": "oras", "parameters": {
                "authProvider": {"name": "azureWorkloadIdentity", "clientID": CLIENT_ID},
                "cosignEnabled": true
            }}
        })
    );
}

#[test]
fn kmp_for_notation_certificates_loads_with_every_field() {
    let blocks = seed_blocks();
    let r = load_str("kmp_config.yaml", &expand(&blocks[1], KEY_ID));
    assert!(r.diagnostics.is_empty(), "{}", dump(&r));
    let k = r.resources[0]
        .resource
        .as_key_management_provider()
        .unwrap();
    assert_eq!(k.name(), "keymanagementprovider-akv");
    assert_eq!(k.spec.type_, "azurekeyvault");
    let KmpParameters::AzureKeyVault(a) = k.spec.parameters.as_ref().unwrap() else {
        panic!("typed azurekeyvault parameters expected")
    };
    assert_eq!(
        a.vault_uri.as_deref(),
        Some("https://myvault.vault.azure.net/")
    );
    assert_eq!(a.tenant_id.as_deref(), Some(TENANT_ID));
    assert_eq!(a.client_id.as_deref(), Some(CLIENT_ID));
    let certs = a.certificates.as_ref().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].name.as_deref(), Some("signing-cert"));
    assert_eq!(certs[0].version.as_deref(), Some(KEY_ID));
    assert_eq!(
        r.resources[0].resource.to_json()["spec"],
        json!({"type": "azurekeyvault", "parameters": {
            "vaultURI": "https://myvault.vault.azure.net/",
            "certificates": [{"name": "signing-cert", "version": KEY_ID}],
            "tenantID": TENANT_ID, "clientID": CLIENT_ID
        }})
    );

    // `# Optional`: with KEY_ID unset the shell leaves `version:` empty, which means "latest".
    let r = load_str("kmp_config.yaml", &expand(&blocks[1], ""));
    assert!(r.diagnostics.is_empty(), "{}", dump(&r));
    let k = r.resources[0]
        .resource
        .as_key_management_provider()
        .unwrap();
    let certs = k
        .spec
        .parameters
        .as_ref()
        .unwrap()
        .as_azure_key_vault()
        .unwrap()
        .certificates
        .clone()
        .unwrap();
    assert_eq!(certs[0].version, None);
}

#[test]
fn kmp_for_cosign_keys_loads_with_every_field() {
    let blocks = seed_blocks();
    let r = load_str("kmp_config.yaml", &expand(&blocks[2], KEY_ID));
    assert!(r.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(
        r.resources[0].resource.to_json()["spec"],
        json!({"type": "azurekeyvault", "parameters": {
            "vaultURI": "https://myvault.vault.azure.net/",
            "keys": [{"name": "cosign-key", "version": KEY_VER}],
            "tenantID": TENANT_ID, "clientID": CLIENT_ID
        }})
    );
}

#[test]
fn notation_verifier_as_printed_fails_at_the_misindented_key() {
    let blocks = seed_blocks();
    let text = expand(&blocks[3], KEY_ID);
    let r = load_str("notation_config.yaml", &text);
    assert!(r.resources.is_empty());
    let d = only(&r, "yaml-indentation");
    assert_eq!(errors(&r).len(), 1, "{}", dump(&r));
    assert_eq!(
        d.file.as_deref(),
        Some(std::path::Path::new("notation_config.yaml"))
    );
    assert_eq!(d.line, line_of(&text, "signatureVerification:"));
    assert_eq!(d.column, 9);
    assert_eq!(
        d.path.to_string(),
        "spec.parameters.trustPolicyDoc.trustPolicies[0]"
    );
    assert!(d.message.contains("`signatureVerification`"), "{d}");
    assert!(d.message.contains("`- name: default`"), "{d}");
    assert!(
        d.message.contains("`trustStores`") && d.message.contains("`trustedIdentities`"),
        "{d}"
    );
    let fix = d.fix.as_deref().unwrap();
    assert!(
        fix.contains("aligned with `registryScopes`") && fix.contains("column 11"),
        "{fix}"
    );
}

/// The notation block with the indentation fixed as the diagnostic says.
fn fixed_notation(block: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in block.lines() {
        if line.trim_start().starts_with("signatureVerification:") {
            inside = true;
        }
        if inside && !line.trim().is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn notation_verifier_with_fixed_indentation_loads_with_every_field() {
    let blocks = seed_blocks();
    let text = format!(
        "{}---\n{}",
        expand(&blocks[1], KEY_ID),
        expand(&fixed_notation(&blocks[3]), KEY_ID)
    );
    let r = load_str("notation.yaml", &text);
    assert!(r.diagnostics.is_empty(), "{}", dump(&r));
    let v = r.resources[1].resource.as_verifier().unwrap();
    assert_eq!(v.spec.name, "notation");
    assert_eq!(
        v.spec.artifact_types(),
        vec!["application/vnd.cncf.notary.signature"]
    );
    let VerifierParameters::Notation(n) = v.spec.parameters.as_ref().unwrap() else {
        panic!("typed notation parameters expected")
    };
    assert_eq!(
        n.verification_cert_stores.as_ref().unwrap()["certs"],
        CertStoreEntry::Refs(vec!["keymanagementprovider-akv".into()])
    );
    let doc = n.trust_policy_doc.as_ref().unwrap();
    assert_eq!(doc.version.as_deref(), Some("1.0"));
    let pol = &doc.trust_policies.as_ref().unwrap()[0];
    assert_eq!(pol.name.as_deref(), Some("default"));
    assert_eq!(pol.registry_scopes, Some(vec!["*".to_string()]));
    assert_eq!(
        pol.signature_verification
            .as_ref()
            .unwrap()
            .level
            .as_deref(),
        Some("strict")
    );
    assert_eq!(pol.trust_stores, Some(vec!["ca:certs".to_string()]));
    assert_eq!(
        pol.trusted_identities,
        Some(vec![format!("x509.subject: {SUBJECT_DN}")])
    );
    assert_eq!(
        r.resources[1].resource.to_json()["spec"]["parameters"],
        json!({
            "verificationCertStores": {"certs": ["keymanagementprovider-akv"]},
            "trustPolicyDoc": {"version": "1.0", "trustPolicies": [{
                "name": "default", "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:certs"],
                "trustedIdentities": [format!("x509.subject: {SUBJECT_DN}")]
            }]}
        })
    );
}

#[test]
fn cosign_verifier_loads_and_resolves_its_provider() {
    let blocks = seed_blocks();
    let text = format!(
        "{}---\n{}",
        expand(&blocks[2], KEY_ID),
        expand(&blocks[4], KEY_ID)
    );
    let r = load_str("cosign.yaml", &text);
    assert!(r.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(
        r.resources[1].resource.to_json()["spec"],
        json!({"name": "cosign", "artifactTypes": "application/vnd.dev.cosign.artifact.sig.v1+json",
               "parameters": {"trustPolicies": [{"name": "default", "scopes": ["*"],
                   "keys": [{"provider": "keymanagementprovider-akv"}]}]}})
    );
    // On its own, the reference to the provider cannot be resolved.
    let alone = load_str("cosign_config.yaml", &expand(&blocks[4], KEY_ID));
    let d = only(&alone, "unknown-provider");
    assert!(d.is_error());
    assert!(
        d.message.contains("`verifier-cosign`")
            && d.message.contains("`keymanagementprovider-akv`"),
        "{d}"
    );
    assert_eq!(
        d.path.to_string(),
        "spec.parameters.trustPolicies[0].keys[0].provider"
    );
    assert_eq!(d.line, line_of(&blocks[4], "- provider:"));
}

#[test]
fn fine_tuned_cosign_policies_load_and_name_their_missing_providers() {
    let blocks = seed_blocks();
    let text = expand(&blocks[5], KEY_ID);
    let r = load_str("verifier.yaml", &text);
    let missing = all(&r, "unknown-provider");
    assert_eq!(missing.len(), 2, "{}", dump(&r));
    assert!(missing[0].message.contains("`keymanagementprovider-akv1`"));
    assert!(missing[1].message.contains("`keymanagementprovider-akv2`"));
    assert_eq!(errors(&r).len(), 2, "{}", dump(&r));
    let c = r.resources[0]
        .resource
        .as_verifier()
        .unwrap()
        .spec
        .parameters
        .as_ref()
        .unwrap()
        .as_cosign()
        .unwrap()
        .clone();
    let pols = c.trust_policies.unwrap();
    assert_eq!(pols[0].name.as_deref(), Some("registryone"));
    assert_eq!(
        pols[0].scopes,
        Some(vec!["registryone.azurecr.io/*".to_string()])
    );
    assert_eq!(
        pols[1].keys.as_ref().unwrap()[0].provider.as_deref(),
        Some("keymanagementprovider-akv2")
    );

    // With both providers defined, it is accepted.
    let kmps = "apiVersion: config.ratify.deislabs.io/v1beta1\nkind: KeyManagementProvider\nmetadata:\n  name: keymanagementprovider-akv1\nspec:\n  type: inline\n  parameters:\n    contentType: key\n    value: |\n      -----BEGIN PUBLIC KEY-----\n      MFkw\n      -----END PUBLIC KEY-----\n";
    let both = format!("{text}---\n{kmps}---\n{}", kmps.replace("akv1", "akv2"));
    let r = load_str("verifier.yaml", &both);
    assert!(errors(&r).is_empty(), "{}", dump(&r));

    // Not expanded by a shell: warnings say so, and the scopes are invalid.
    let raw = load_str("verifier.yaml", &blocks[5]);
    let unexpanded = all(&raw, "unexpanded-variable");
    assert!(
        unexpanded.iter().any(|d| d.path.to_string()
            == "spec.parameters.trustPolicies[0].scopes[0]"
            && d.message.contains("$ACR_NAME1")),
        "{}",
        dump(&raw)
    );
    assert!(!all(&raw, "invalid-scope").is_empty());
}

fn check_rotation_example(block: &str, versions: &[&str]) {
    let text = expand(block, KEY_ID);
    let r = load_str("kmp.yaml", &text);
    assert!(r.resources.is_empty());
    // `version:` is indented under `- name:` deeper than `name`.
    let d = only(&r, "yaml-indentation");
    assert_eq!(
        (d.line, d.column),
        (line_of(&text, &format!("version: {}", versions[0])), 9)
    );
    assert_eq!(d.path.to_string(), "parameters.keys[0]");
    assert!(
        d.message
            .contains("`version` is indented deeper than `name`"),
        "{d}"
    );
    assert!(
        d.fix
            .as_deref()
            .unwrap()
            .contains("align `version:` with `name:`")
    );
    // `metadata:` and `spec:` are flattened.
    let m = only(&r, "flattened-metadata");
    assert_eq!(m.path.to_string(), "metadata.name");
    assert_eq!(
        (m.line, m.column),
        (line_of(&text, "name: keymanagementprovider-akv"), 1)
    );
    assert!(m.message.contains("`metadata:` has no value"), "{m}");
    assert!(m.fix.as_deref().unwrap().contains("under `metadata:`"));
    let s = only(&r, "flattened-spec");
    assert_eq!(
        (s.line, s.column),
        (line_of(&text, "type: azurekeyvault"), 1)
    );
    assert!(s.message.contains("`type`, `parameters`"), "{s}");
    if versions.len() == 2 {
        let dup = only(&r, "duplicate-key");
        assert_eq!(dup.path.to_string(), "parameters.keys[0].version");
        let (l1, l2) = (line_of(&text, versions[0]), line_of(&text, versions[1]));
        assert!(
            dup.message.contains(&format!("line {l1} and line {l2}")),
            "{dup}"
        );
        assert_eq!(dup.line, l2);
        assert!(dup.fix.as_deref().unwrap().contains("repeat the item"));
    } else {
        assert!(all(&r, "duplicate-key").is_empty());
    }
}

#[test]
fn key_rotation_example_as_printed_fails_precisely() {
    let blocks = seed_blocks();
    check_rotation_example(&blocks[6], &[KEY_VER, KEY_VER_NEW]);
}

#[test]
fn disable_key_version_example_as_printed_fails_precisely() {
    let blocks = seed_blocks();
    check_rotation_example(&blocks[7], &[KEY_VER_NEW]);
}
