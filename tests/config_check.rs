//! `verdict config check` run as a user runs it.

use std::process::Command;

const GOOD: &str = "apiVersion: config.ratify.deislabs.io/v1beta1
kind: Store
metadata:
  name: store-oras
spec:
  name: oras
  parameters:
    authProvider:
      name: azureWorkloadIdentity
      clientID: 11111111-2222-3333-4444-555555555555
    cosignEnabled: true
";

// The seed's Notation verifier with its mis-indented `signatureVerification`.
const BAD: &str = "apiVersion: config.ratify.deislabs.io/v1beta1
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
      version: \"1.0\"
      trustPolicies:
        - name: default
          registryScopes:
            - \"*\"
        signatureVerification:
            level: strict
        trustStores:
            - ca:certs
        trustedIdentities:
            - \"x509.subject: C=US, ST=WA, O=Example, CN=example.com\"
";

fn verdict() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_verdict"));
    c.env_remove("VERDICT_CONFIG")
        .env_remove("VERDICT_OUTPUT")
        .env_remove("VERDICT_LOG")
        .env_remove("VERDICT_LOG_FORMAT");
    c
}

#[test]
fn one_good_and_one_bad_file_prints_both_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-store.yaml"), GOOD).unwrap();
    std::fs::write(dir.path().join("b-notation.yaml"), BAD).unwrap();
    let out = verdict()
        .args(["config", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let store_file = dir.path().join("a-store.yaml");
    let bad_file = dir.path().join("b-notation.yaml");
    assert!(
        stdout.contains(&format!(
            "ok       Store/store-oras ({}:1)",
            store_file.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{}:18:9: error: spec.parameters.trustPolicyDoc.trustPolicies[0]: `signatureVerification` at line 18",
            bad_file.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("aligned with `registryScopes`"), "{stdout}");
    assert!(
        stdout.contains("summary: 1 resource in 2 files (0 invalid), 1 error, 0 warnings"),
        "{stdout}"
    );
}

#[test]
fn good_configuration_exits_0_and_path_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("store.yml"), GOOD).unwrap();
    let out = verdict()
        .args(["config", "check"])
        .env("VERDICT_CONFIG", dir.path())
        .env("VERDICT_OUTPUT", "json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"], 0);
    assert_eq!(v["resources"][0]["kind"], "Store");
    assert_eq!(v["resources"][0]["name"], "store-oras");
    assert_eq!(v["resources"][0]["valid"], true);
}

#[test]
fn json_output_carries_positions_and_fixes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), BAD).unwrap();
    let out = verdict()
        .args(["config", "check", "--output", "json"])
        .arg(dir.path().join("bad.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "yaml-indentation");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(18), Some(9))
    );
    assert_eq!(d["path"], "spec.parameters.trustPolicyDoc.trustPolicies[0]");
    assert!(d["fix"].as_str().unwrap().contains("registryScopes"));
}

#[test]
fn unreadable_path_and_bad_usage_exit_2() {
    let out = verdict()
        .args(["config", "check", "/nonexistent/verdict-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/verdict-config"), "{stderr}");

    let out = verdict().args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "missing PATH is a usage error");

    let out = verdict()
        .args(["--log", "not==valid", "config", "check", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
