//! `verdict verify` against a real docker-registry with notation's e2e layout (signed) and an
//! image of our own (unsigned), configured with Ratify CRs.

use std::path::Path;

use verdict_testkit::ratify::{NotationVerifier, inline_kmp_yaml};
use verdict_testkit::{DockerRegistry, shared_dir};

fn write_config(dir: &Path, shared: &Path) {
    let cert =
        std::fs::read_to_string(shared.join("vectors/notation-e2e/config/localkeys/e2e.crt"))
            .expect("e2e.crt");
    std::fs::write(
        dir.join("kmp.yaml"),
        inline_kmp_yaml("kmp-e2e", None, "certificate", &cert),
    )
    .unwrap();
    // The seed's Notation verifier, correctly indented, trusting the e2e certificate.
    std::fs::write(
        dir.join("verifier.yaml"),
        NotationVerifier::new("verifier-notation", "kmp-e2e").yaml(),
    )
    .unwrap();
}

fn verdict(args: &[&str]) -> (i32, String, String) {
    verdict_testkit::process::run_to_end(env!("CARGO_BIN_EXE_verdict"), args)
}

#[tokio::test]
async fn verify_allows_signed_denies_unsigned_and_errors_when_the_registry_is_down() {
    let Some(shared) = shared_dir() else {
        return;
    };
    let mut registry = DockerRegistry::start().await.expect("docker-registry");
    let host = registry.host_port();
    let client = registry.client();
    client
        .push_oci_layout(
            &shared.join("vectors/notation-e2e/oci_layout/e2e-valid-signature"),
            "net-monitor",
        )
        .await
        .expect("push signed");
    client
        .push_image("net-watcher", "v1")
        .await
        .expect("push unsigned");

    let cfg = tempfile::tempdir().unwrap();
    write_config(cfg.path(), &shared);
    let cfg_arg = cfg.path().to_str().unwrap();

    let signed = format!("{host}/net-monitor:v1");
    let (code, out, err) = verdict(&[
        "verify",
        &signed,
        "--config",
        cfg_arg,
        "--plain-http",
        &host,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "signed image must be allowed\n{out}\n{err}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(value["version"], "0.2.0");
    assert_eq!(value["isSuccess"], true);
    assert!(value["traceID"].is_string() && value["timestamp"].is_string());
    let report = &value["verifierReports"][0];
    assert_eq!(report["subject"], signed);
    assert_eq!(report["verifierName"], "verifier-notation");
    assert_eq!(report["name"], "verifier-notation");
    assert_eq!(report["verifierType"], "notation");
    assert_eq!(
        report["artifactType"],
        "application/vnd.cncf.notary.signature"
    );
    assert_eq!(
        report["extensions"]["SN"],
        "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"
    );

    let unsigned = format!("{host}/net-watcher:v1");
    let (code, out, err) = verdict(&[
        "verify",
        &unsigned,
        "--config",
        cfg_arg,
        "--plain-http",
        &host,
    ]);
    assert_eq!(code, 1, "unsigned image must be denied\n{out}\n{err}");
    assert!(
        out.contains("DENIED") && out.contains("NO_VERIFIER_REPORT"),
        "{out}"
    );

    let (code, _, err) = verdict(&["verify", "UPPER/Case::bad", "--config", cfg_arg]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid image reference"), "{err}");

    registry.kill();
    let (code, out, err) = verdict(&[
        "verify",
        &signed,
        "--config",
        cfg_arg,
        "--plain-http",
        &host,
        "--registry-timeout-secs",
        "2",
    ]);
    assert_eq!(
        code, 2,
        "a dead registry is no verdict, not a deny\n{out}\n{err}"
    );
    assert!(err.contains("transient"), "{err}");
}
