//! Validation errors and warnings: each names the field, its position and a fix.
//!
//! Over 600 lines because one test per family of diagnostics, each with the YAML a user writes;
//! split, the catalogue of errors would be scattered.

mod common;

use common::*;
use verdict_crds::{Diagnostic, LoadReport, Severity, load_str};

const HEAD: &str = "apiVersion: config.ratify.deislabs.io/v1beta1\n";

fn load(text: &str) -> LoadReport {
    load_str("test.yaml", text)
}

/// The one diagnostic with `code` at `path`, with a fix.
fn find<'a>(r: &'a LoadReport, code: &str, path: &str) -> &'a Diagnostic {
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.code == code && d.path.to_string() == path)
        .unwrap_or_else(|| panic!("no `{code}` at `{path}` in:\n{}", dump(r)));
    assert!(
        d.fix.as_deref().is_some_and(|f| !f.is_empty()),
        "no fix: {d}"
    );
    assert!(d.line > 0, "no position: {d}");
    assert_eq!(d.file.as_deref(), Some(std::path::Path::new("test.yaml")));
    d
}

// The seed's Notation verifier, as printed (mis-indented `signatureVerification`).
const NOTATION_AS_PRINTED: &str = r#"apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-notation
spec:
  name: notation
  artifactTypes: application/vnd.cncf.notary.signature
  parameters:
    verificationCertStores:
      certs:
        - keymanagementprovider-akv
    trustPolicyDoc:
      version: "1.0"
      trustPolicies:
        - name: default
          registryScopes:
            - "*"
        signatureVerification:
            level: strict
        trustStores:
            - ca:certs
        trustedIdentities:
            - "x509.subject: C=US, ST=WA, O=Example, CN=example.com"
"#;

// The seed's key rotation example, as a user copies it out of the list item.
const ROTATION_AS_PRINTED: &str = r#"apiVersion: config.ratify.deislabs.io/v1beta1
kind: KeyManagementProvider
metadata:
name: keymanagementprovider-akv
spec:
type: azurekeyvault
parameters:
    vaultURI: https://myvault.vault.azure.net/
    keys:
    - name: cosign-key
        version: fedcba9876543210fedcba9876543210 
        version: 00112233445566778899aabbccddeeff
    tenantID: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    clientID: 11111111-2222-3333-4444-555555555555
"#;

#[test]
fn misindented_notation_policy_is_explained() {
    let r = load(NOTATION_AS_PRINTED);
    assert!(r.resources.is_empty());
    assert_eq!(r.diagnostics.len(), 1, "{}", dump(&r));
    let d = find(
        &r,
        "yaml-indentation",
        "spec.parameters.trustPolicyDoc.trustPolicies[0]",
    );
    assert_eq!((d.line, d.column), (18, 9));
    assert_eq!(
        d.to_string(),
        "test.yaml:18:9: error: spec.parameters.trustPolicyDoc.trustPolicies[0]: `signatureVerification` at line 18 \
         is not indented under the list item `- name: default` (line 15) of \
         `spec.parameters.trustPolicyDoc.trustPolicies[0]`: it starts in the column of that item's `-`, where YAML \
         expects the next `- ` item (so are `trustStores` at line 20 and `trustedIdentities` at line 22 below it) \
         — fix: indent `signatureVerification:` and the keys below it that belong to the same item by 2 more \
         spaces so they start in column 11, aligned with `registryScopes` (line 16)"
    );
}

#[test]
fn rotation_example_reports_indentation_duplicates_and_flattened_metadata() {
    let r = load(ROTATION_AS_PRINTED);
    assert!(r.resources.is_empty());
    let d = find(&r, "yaml-indentation", "parameters.keys[0]");
    assert_eq!((d.line, d.column), (11, 9));
    assert!(
        d.message
            .contains("`version` is indented deeper than `name` (line 10, column 7)"),
        "{d}"
    );
    let dup = find(&r, "duplicate-key", "parameters.keys[0].version");
    assert_eq!((dup.line, dup.column), (12, 9));
    assert!(dup.message.contains("line 11 and line 12"), "{dup}");
    let m = find(&r, "flattened-metadata", "metadata.name");
    assert_eq!((m.line, m.column), (4, 1));
    let s = find(&r, "flattened-spec", "spec");
    assert_eq!((s.line, s.column), (6, 1));
    assert_eq!(r.error_count(), 4, "{}", dump(&r));
}

#[test]
fn flattened_metadata_alone_is_reported_without_syntax_errors() {
    let r = load(&format!(
        "{HEAD}kind: Store\nmetadata:\nname: s\nspec:\n  name: oras\n"
    ));
    let m = find(&r, "flattened-metadata", "metadata.name");
    assert_eq!((m.line, m.column), (4, 1));
    assert!(
        m.fix
            .as_deref()
            .unwrap()
            .contains("indent `name` two spaces")
    );
    assert!(r.resources.is_empty());
}

#[test]
fn duplicate_keys_in_a_valid_document_name_both_lines() {
    let text = format!(
        "{HEAD}kind: KeyManagementProvider\nmetadata:\n  name: k\nspec:\n  type: azurekeyvault\n  parameters:\n    vaultURI: https://v.vault.azure.net/\n    tenantID: t\n    clientID: c\n    keys:\n      - name: k1\n        version: aaaa\n        version: bbbb\n"
    );
    let r = load(&text);
    let d = find(&r, "duplicate-key", "spec.parameters.keys[0].version");
    assert_eq!((d.line, d.column), (14, 9));
    assert!(d.message.contains("line 13 and line 14"));
    assert!(r.resources[0].has_errors);
}

#[test]
fn tabs_are_rejected_with_a_fix() {
    let r = load(&format!("{HEAD}kind: Store\nmetadata:\n\tname: s\n"));
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.code == "yaml-indentation")
        .expect("tab diagnostic");
    assert_eq!(d.line, 4);
    assert!(d.message.contains("tab"), "{d}");
}

#[test]
fn a_bad_document_does_not_hide_good_ones() {
    let text = format!(
        "{HEAD}kind: Store\nmetadata:\n  name: broken\nspec:\n  name: [oras\n---\n{HEAD}kind: Store\nmetadata:\n  name: good\nspec:\n  name: oras\n"
    );
    let r = load(&text);
    assert_eq!(r.resources.len(), 1);
    assert_eq!(r.resources[0].resource.name(), "good");
    assert_eq!(r.resources[0].source.line, 8);
    assert!(!r.resources[0].has_errors);
    assert!(r.has_errors());
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.code == "yaml-syntax" && d.document == Some(0))
    );
}

#[test]
fn type_errors_say_how_to_write_the_value() {
    let text = format!(
        "{HEAD}kind: Verifier\nmetadata:\n  name: v\n  labels:\n    enabled: yes\nspec:\n  name: notation\n  artifactTypes: application/vnd.cncf.notary.signature\n"
    );
    let r = load(&text);
    let d = find(&r, "invalid-type", "metadata.labels.enabled");
    assert_eq!((d.line, d.column), (6, 14));
    assert!(d.fix.as_deref().unwrap().contains("\"true\""), "{d}");

    let text = format!(
        "{HEAD}kind: Verifier\nmetadata:\n  name: v\nspec:\n  name: notation\n  artifactTypes: application/vnd.cncf.notary.signature\n  parameters:\n    verificationCertStores:\n      certs: [k]\n    trustPolicyDoc:\n      version: 1.0\n"
    );
    let r = load(&text);
    let d = find(&r, "invalid-type", "spec.parameters.trustPolicyDoc.version");
    assert_eq!((d.line, d.column), (12, 16));
    assert!(
        d.fix
            .as_deref()
            .unwrap()
            .contains("double quotes (`\"1.0\"`)"),
        "{d}"
    );

    let text = format!(
        "{HEAD}kind: Store\nmetadata:\n  name: s\nspec:\n  name: oras\n  parameters:\n    cosignEnabled: \"yes\"\n"
    );
    let r = load(&text);
    let d = find(&r, "invalid-type", "spec.parameters.cosignEnabled");
    assert!(d.fix.as_deref().unwrap().contains("`true` or `false`"));
}

fn verifier(params: &str) -> String {
    format!(
        "{HEAD}kind: Verifier\nmetadata:\n  name: v\nspec:\n  name: cosign\n  artifactTypes: application/vnd.dev.cosign.artifact.sig.v1+json\n  parameters:\n{params}"
    )
}

#[test]
fn verifier_required_fields() {
    let r = load(&format!(
        "{HEAD}kind: Verifier\nmetadata:\n  name: v\nspec:\n  name: notation\n"
    ));
    let d = find(&r, "missing-field", "spec.artifactTypes");
    assert!(
        d.fix
            .as_deref()
            .unwrap()
            .contains("application/vnd.cncf.notary.signature")
    );
    find(&r, "missing-field", "spec.parameters");
    let r = load(&format!(
        "{HEAD}kind: Verifier\nmetadata:\n  name: v\nspec:\n  type: notation\n  artifactTypes: x\n"
    ));
    find(&r, "missing-field", "spec.name");
    let t = find(&r, "unknown-field", "spec.type");
    assert!(
        t.fix
            .as_deref()
            .unwrap()
            .contains("rename `type:` to `name:`"),
        "{t}"
    );
}

#[test]
fn cosign_trust_policy_rules() {
    let r = load(&verifier(
        "    trustPolicies:
      - name: both
        scopes: [\"a.io/x\"]
        keys: [{file: /k.pub}]
        keyless: {certificateIdentity: me, certificateOIDCIssuer: https://i}
      - name: neither
        scopes: [\"b.io/x\"]
      - name: keys
        scopes: [\"c.io/x\"]
        keys:
          - {provider: p, file: /k.pub}
          - {version: abc, provider: p}
          - {name: only-name}
      - name: keyless
        scopes: [\"d.io/x\"]
        keyless:
          certificateIdentity: me
          certificateIdentityRegExp: \"^me$\"
          certificateOIDCIssuerRegExp: \"(unclosed\"
",
    ));
    find(
        &r,
        "conflicting-fields",
        "spec.parameters.trustPolicies[0].keyless",
    );
    find(&r, "missing-field", "spec.parameters.trustPolicies[1].keys");
    find(
        &r,
        "conflicting-fields",
        "spec.parameters.trustPolicies[2].keys[0].file",
    );
    find(
        &r,
        "missing-field",
        "spec.parameters.trustPolicies[2].keys[1].name",
    );
    find(
        &r,
        "missing-field",
        "spec.parameters.trustPolicies[2].keys[2].provider",
    );
    find(
        &r,
        "conflicting-fields",
        "spec.parameters.trustPolicies[3].keyless.certificateIdentityRegExp",
    );
    find(
        &r,
        "invalid-regexp",
        "spec.parameters.trustPolicies[3].keyless.certificateOIDCIssuerRegExp",
    );
}

#[test]
fn cosign_scope_rules() {
    let r = load(&verifier(
        "    trustPolicies:
      - name: one
        scopes: [\"*\"]
        keys: [{file: /k.pub}]
      - name: two
        scopes: [\"*\", \"MyRegistry.io/app\"]
        keys: [{file: /k.pub}]
      - name: three
        scopes: [\"reg.io/team/*\", \"reg.io/team/app\"]
        keys: [{file: /k.pub}]
      - name: three
        scopes: [\"reg.io/*\"]
        keys: [{file: /k.pub}]
",
    ));
    let g = find(
        &r,
        "global-scope",
        "spec.parameters.trustPolicies[1].scopes[0]",
    );
    assert!(
        r.diagnostics
            .iter()
            .filter(|d| d.code == "global-scope")
            .count()
            >= 2,
        "{}",
        dump(&r)
    );
    let _ = g;
    find(
        &r,
        "invalid-scope",
        "spec.parameters.trustPolicies[1].scopes[1]",
    );
    let o = find(
        &r,
        "overlapping-scopes",
        "spec.parameters.trustPolicies[2].scopes[1]",
    );
    assert!(
        o.message.contains("`reg.io/team/app`") && o.message.contains("`reg.io/team/*`"),
        "{o}"
    );
    let o2 = find(
        &r,
        "overlapping-scopes",
        "spec.parameters.trustPolicies[3].scopes[0]",
    );
    assert!(o2.message.contains("trust policy `three`"), "{o2}");
    find(
        &r,
        "duplicate-value",
        "spec.parameters.trustPolicies[3].name",
    );
}

fn notation(params: &str) -> String {
    format!(
        "{HEAD}kind: Verifier\nmetadata:\n  name: v\nspec:\n  name: notation\n  artifactTypes: application/vnd.cncf.notary.signature\n  parameters:\n{params}"
    )
}

#[test]
fn notation_trust_policy_rules() {
    let r = load(&notation(
        "    verificationCertStores:
      ca:
        certs: [k]
    trustPolicyDoc:
      version: \"1.0\"
      trustPolicies:
        - name: p1
          registryScopes: [\"myreg.io/*\", \"myreg.io/app:v1\"]
          signatureVerification:
            level: strictest
            override: {integrity: skip, expiry: maybe}
          trustStores: [\"foo:certs\", \"ca:missing\"]
          trustedIdentities: [\"x509.subject: CN=signer\", \"bogus\"]
        - name: p2
          registryScopes: [\"*\"]
          signatureVerification: {level: skip}
          trustStores: [\"ca:certs\"]
",
    ));
    find(
        &r,
        "invalid-scope",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].registryScopes[0]",
    );
    find(
        &r,
        "invalid-scope",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].registryScopes[1]",
    );
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].signatureVerification.level",
    );
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].signatureVerification.override.integrity",
    );
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].signatureVerification.override.expiry",
    );
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].trustStores[0]",
    );
    let u = find(
        &r,
        "undefined-trust-store",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].trustStores[1]",
    );
    assert!(u.fix.as_deref().unwrap().contains("`ca:certs`"), "{u}");
    let dn = find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].trustedIdentities[0]",
    );
    assert!(dn.message.contains("'C', 'ST' or 'S', and 'O'"), "{dn}");
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].trustedIdentities[1]",
    );
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.trustPolicies[1].trustStores",
    );
}

#[test]
fn notation_cert_store_formats_cannot_be_mixed() {
    let r = load(&notation(
        "    verificationCertStores:\n      ca:\n        certs: [k]\n      legacy: [k]\n",
    ));
    let d = find(
        &r,
        "mixed-cert-store-formats",
        "spec.parameters.verificationCertStores",
    );
    assert!(
        d.message.contains("`legacy`") && d.message.contains("`ca`"),
        "{d}"
    );
    let r = load(&notation("    verificationCertStores:\n      certs: k\n"));
    find(
        &r,
        "invalid-type",
        "spec.parameters.verificationCertStores.certs",
    );
}

#[test]
fn notation_requires_a_trust_policy_document() {
    let r = load(&notation("    verificationCertStores:\n      certs: [k]\n"));
    find(&r, "missing-field", "spec.parameters.trustPolicyDoc");
    let r = load(&notation(
        "    verificationCertStores:\n      certs: [k]\n    trustPolicyDoc:\n      version: \"2.0\"\n      trustPolicies:\n        - name: p\n          registryScopes: [\"*\"]\n",
    ));
    find(
        &r,
        "invalid-value",
        "spec.parameters.trustPolicyDoc.version",
    );
    find(
        &r,
        "missing-field",
        "spec.parameters.trustPolicyDoc.trustPolicies[0].signatureVerification",
    );
}

fn kmp(spec: &str) -> String {
    format!("{HEAD}kind: KeyManagementProvider\nmetadata:\n  name: k\nspec:\n{spec}")
}

#[test]
fn key_management_provider_rules() {
    let r = load(&kmp(
        "  type: azurekeyvault\n  refreshInterval: 5 minutes\n  parameters:\n    vaultURI: http://v.vault.azure.net/\n",
    ));
    find(&r, "invalid-value", "spec.refreshInterval");
    find(&r, "invalid-value", "spec.parameters.vaultURI");
    find(&r, "missing-field", "spec.parameters.tenantID");
    find(&r, "missing-field", "spec.parameters.clientID");
    find(&r, "missing-field", "spec.parameters.certificates");

    let r = load(&kmp(
        "  type: inline\n  parameters:\n    contentType: key\n    value: not a pem\n",
    ));
    find(&r, "invalid-value", "spec.parameters.value");
    let r = load(&kmp(
        "  type: inline\n  parameters:\n    contentType: cert\n",
    ));
    find(&r, "invalid-value", "spec.parameters.contentType");
    find(&r, "missing-field", "spec.parameters.value");
    let r = load(&kmp("  type: hashicorp\n"));
    find(&r, "invalid-value", "spec.type");
}

#[test]
fn unexpanded_shell_variables_are_warnings_at_the_value() {
    let text = kmp(
        "  type: azurekeyvault\n  parameters:\n    vaultURI: https://$AKV_NAME.vault.azure.net/\n    tenantID: ${TENANT_ID}\n    clientID: c\n    keys: [{name: k}]\n",
    );
    let r = load(&text);
    let d = find(&r, "unexpanded-variable", "spec.parameters.vaultURI");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!((d.line, d.column), (8, 15));
    assert!(
        d.message.contains("`$AKV_NAME`") && d.message.contains("did not expand"),
        "{d}"
    );
    assert!(d.fix.as_deref().unwrap().contains("export AKV_NAME"));
    find(&r, "unexpanded-variable", "spec.parameters.tenantID");
}

#[test]
fn policy_rules() {
    let r = load(&format!(
        "{HEAD}kind: Policy\nmetadata:\n  name: my-policy\nspec:\n  type: config-policy\n  parameters:\n    artifactVerificationPolicies:\n      default: most\n"
    ));
    find(&r, "policy-name", "metadata.name");
    find(
        &r,
        "invalid-value",
        "spec.parameters.artifactVerificationPolicies.default",
    );
    let r = load(&format!(
        "{HEAD}kind: Policy\nmetadata:\n  name: ratify-policy\nspec:\n  type: rego-policy\n  parameters:\n    passthroughEnabled: false\n"
    ));
    find(&r, "missing-field", "spec.parameters.policy");
}

#[test]
fn api_versions_and_foreign_documents() {
    let r = load(
        "apiVersion: config.ratify.deislabs.io/v1alpha1\nkind: Store\nmetadata:\n  name: s\nspec:\n  name: oras\n",
    );
    let d = find(&r, "deprecated-api-version", "apiVersion");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(r.resources.len(), 1);
    let r = load(
        "apiVersion: config.ratify.deislabs.io/v1alpha1\nkind: KeyManagementProvider\nmetadata:\n  name: k\nspec:\n  type: inline\n",
    );
    assert!(find(&r, "wrong-api-version", "apiVersion").is_error());
    let r = load("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
    assert_eq!(find(&r, "not-ratify", "kind").severity, Severity::Warning);
    assert!(r.resources.is_empty());
    let r = load(&format!("{HEAD}kind: Verifer\nmetadata:\n  name: v\n"));
    assert!(
        find(&r, "unknown-kind", "kind")
            .fix
            .as_deref()
            .unwrap()
            .contains("`Verifier`")
    );
}

#[test]
fn certificate_store_is_read_with_a_deprecation_warning() {
    let r = load(&format!(
        "{HEAD}kind: CertificateStore\nmetadata:\n  name: certstore-inline\n  namespace: gatekeeper-system\nspec:\n  provider: inline\n  parameters:\n    value: x\n"
    ));
    assert!(!r.has_errors(), "{}", dump(&r));
    let d = find(&r, "deprecated-kind", "kind");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(
        r.resources[0].resource.namespace(),
        Some("gatekeeper-system")
    );
}

#[test]
fn duplicate_resources_and_provider_access() {
    let store = format!("{HEAD}kind: Store\nmetadata:\n  name: same\nspec:\n  name: oras\n");
    let r = load(&format!("{store}---\n{store}"));
    let d = find(&r, "duplicate-resource", "metadata.name");
    assert_eq!(d.line, 11);
    assert!(d.message.contains("(see test.yaml:1)"), "{d}");

    let nkmp = "apiVersion: config.ratify.deislabs.io/v1beta1\nkind: NamespacedKeyManagementProvider\nmetadata:\n  name: k\n  namespace: team-a\nspec:\n  type: inline\n  parameters:\n    contentType: key\n    value: \"-----BEGIN PUBLIC KEY-----\\nAA\\n-----END PUBLIC KEY-----\"\n";
    let cluster_verifier = verifier(
        "    trustPolicies:\n      - name: p\n        scopes: [\"*\"]\n        keys: [{provider: team-a/k}]\n",
    );
    let r = load(&format!("{nkmp}---\n{cluster_verifier}"));
    let d = find(
        &r,
        "provider-access",
        "spec.parameters.trustPolicies[0].keys[0].provider",
    );
    assert!(d.message.contains("cluster-scoped Verifier"), "{d}");
    let ns_verifier = cluster_verifier
        .replace("kind: Verifier", "kind: NamespacedVerifier")
        .replace("  name: v\n", "  name: v\n  namespace: team-a\n");
    let r = load(&format!("{nkmp}---\n{ns_verifier}"));
    assert!(!r.has_errors(), "{}", dump(&r));
}

#[test]
fn truncated_or_mangled_input_never_panics() {
    let sources = [NOTATION_AS_PRINTED, ROTATION_AS_PRINTED];
    for src in sources {
        let chars: Vec<char> = src.chars().collect();
        for end in 0..chars.len() {
            let prefix: String = chars[..end].iter().collect();
            let _ = load(&prefix);
            // Shift every line by one space from here on, and insert a tab.
            let shifted = format!(
                "{prefix} {}",
                chars[end..].iter().collect::<String>().replace('\n', "\n ")
            );
            let _ = load(&shifted);
            let tabbed = format!("{prefix}\t{}", chars[end..].iter().collect::<String>());
            let _ = load(&tabbed);
        }
    }
    for odd in [
        "",
        "---",
        "--- |\n  text\n",
        "- a\n- b\n",
        "just text",
        "{a: [1, 2",
        "a: *nope\n",
        "? [a]\n: b\n",
        "%YAML 1.2\n---\na: 1\n",
        "\u{feff}a: 1\n",
        "a: !!int x\n",
    ] {
        let r = load(odd);
        assert!(r.resources.is_empty(), "{odd:?}");
    }
}
