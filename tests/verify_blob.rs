//! `verdict verify-blob` against bundles signed by the public Sigstore instances
//! (../shared/vectors/sigstore-public): every row of that directory's README gives the result
//! sigstore-python gives, and a few inputs that are not bundles at all are usage errors.

use std::path::{Path, PathBuf};

use verdict_testkit::shared_dir;

const WHL_IDENTITY: &str =
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2";
const GITHUB_ACTIONS: &str = "https://token.actions.githubusercontent.com";
const GITHUB_LOGIN: &str = "https://github.com/login/oauth";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Root {
    Production,
    Staging,
}

struct Case {
    what: &'static str,
    blob: &'static str,
    root: Root,
    identity: Option<&'static str>,
    issuer: Option<&'static str>,
    /// 0 valid, 1 invalid.
    exit: i32,
    /// Text the output must contain (the reason, for an invalid bundle).
    says: &'static str,
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case {
            what: "GitHub Actions release signature, production",
            blob: "bundle_v3_github.whl",
            root: Root::Production,
            identity: Some(WHL_IDENTITY),
            issuer: Some(GITHUB_ACTIONS),
            exit: 0,
            says: "SET and inclusion proof",
        },
        Case {
            what: "wrong issuer",
            blob: "bundle_v3_github.whl",
            root: Root::Production,
            identity: Some(WHL_IDENTITY),
            issuer: Some("https://accounts.google.com"),
            exit: 1,
            says: "OIDC issuer \"https://token.actions.githubusercontent.com\" does not match",
        },
        Case {
            what: "wrong identity (SAN)",
            blob: "bundle_v3_github.whl",
            root: Root::Production,
            identity: Some(
                "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v9",
            ),
            issuer: Some(GITHUB_ACTIONS),
            exit: 1,
            says: "the certificate identity [",
        },
        Case {
            what: "production bundle under the staging root",
            blob: "bundle_v3_github.whl",
            root: Root::Staging,
            identity: Some(WHL_IDENTITY),
            issuer: Some(GITHUB_ACTIONS),
            exit: 1,
            says: "INVALID",
        },
        Case {
            what: "bundle v0.1, staging",
            blob: "bundle.txt",
            root: Root::Staging,
            identity: Some("a@tny.town"),
            issuer: Some(GITHUB_LOGIN),
            exit: 0,
            says: "VALID",
        },
        Case {
            what: "bundle v0.3, staging",
            blob: "bundle_v3.txt",
            root: Root::Staging,
            identity: Some("william@yossarian.net"),
            issuer: Some(GITHUB_LOGIN),
            exit: 0,
            says: "SET and inclusion proof",
        },
        Case {
            what: "bundle v0.3 with the alternate media type spelling, staging",
            blob: "bundle_v3_alt.txt",
            root: Root::Staging,
            identity: Some("william@yossarian.net"),
            issuer: Some(GITHUB_LOGIN),
            exit: 0,
            says: "VALID",
        },
        Case {
            what: "CVE-2022-36056: the log entry records another signature",
            blob: "bundle_cve_2022_36056.txt",
            root: Root::Staging,
            identity: None,
            issuer: None,
            exit: 1,
            says: "records a different signature",
        },
    ];
    for blob in ["bundle.txt", "bundle_v3.txt", "bundle_v3_alt.txt"] {
        cases.push(Case {
            what: "staging bundle under the production root",
            blob,
            root: Root::Production,
            identity: Some("william@yossarian.net"),
            issuer: Some(GITHUB_LOGIN),
            exit: 1,
            says: "INVALID",
        });
    }
    for root in [Root::Production, Root::Staging] {
        // Under the other instance's root the log key is unknown first; the reason differs.
        let own = |says| {
            if root == Root::Staging {
                says
            } else {
                "INVALID"
            }
        };
        for (what, blob, says) in [
            (
                "no transparency-log entry",
                "bundle_no_log_entry.txt",
                own("carries no transparency-log entry"),
            ),
            (
                "bundle v0.2 whose inclusion proof has no checkpoint",
                "bundle_no_checkpoint.txt",
                own("inclusion proof has no checkpoint"),
            ),
            (
                "bundle v0.1 with an empty certificate chain",
                "bundle_no_cert_v1.txt",
                "certificate chain is empty",
            ),
        ] {
            cases.push(Case {
                what,
                blob,
                root,
                identity: None,
                issuer: None,
                exit: 1,
                says,
            });
        }
    }
    cases
}

fn verdict(args: &[&str]) -> (i32, String, String) {
    verdict_testkit::process::run_to_end(env!("CARGO_BIN_EXE_verdict"), args)
}

fn vectors() -> Option<PathBuf> {
    Some(shared_dir()?.join("vectors/sigstore-public"))
}

fn root_file(dir: &Path, root: Root) -> String {
    dir.join(match root {
        Root::Production => "trusted_root.production.json",
        Root::Staging => "trusted_root.staging.json",
    })
    .display()
    .to_string()
}

fn run_case(dir: &Path, blob: &str, bundle: &str, c: &Case) -> (i32, String, String) {
    let root = root_file(dir, c.root);
    let mut args = vec![
        "verify-blob",
        blob,
        "--bundle",
        bundle,
        "--sigstore-trusted-root",
        &root,
    ];
    if let Some(i) = c.identity {
        args.extend(["--certificate-identity", i]);
    }
    if let Some(i) = c.issuer {
        args.extend(["--certificate-oidc-issuer", i]);
    }
    verdict(&args)
}

#[test]
fn every_public_sigstore_bundle_gets_the_documented_result() {
    let Some(dir) = vectors() else { return };
    let mut failures = Vec::new();
    for c in cases() {
        let blob = dir.join(c.blob).display().to_string();
        let bundle = format!("{blob}.sigstore");
        let (code, out, err) = run_case(&dir, &blob, &bundle, &c);
        if code != c.exit || !out.contains(c.says) {
            failures.push(format!(
                "{} ({}, {:?}): exit {code}, expected {} with {:?}\nstdout: {out}\nstderr: {err}",
                c.what, c.blob, c.root, c.exit, c.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_blob_changed_by_one_byte_is_invalid() {
    let Some(dir) = vectors() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(dir.join("bundle_v3_github.whl")).unwrap();
    bytes.push(b'\n');
    let blob = tmp.path().join("bundle_v3_github.whl");
    std::fs::write(&blob, bytes).unwrap();
    let bundle = dir.join("bundle_v3_github.whl.sigstore");
    let c = Case {
        what: "tampered",
        blob: "",
        root: Root::Production,
        identity: Some(WHL_IDENTITY),
        issuer: Some(GITHUB_ACTIONS),
        exit: 1,
        says: "",
    };
    let (code, out, err) = run_case(
        &dir,
        &blob.display().to_string(),
        &bundle.display().to_string(),
        &c,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("(the subject's digest)"), "{out}");
}

#[test]
fn without_an_identity_the_signer_is_shown_and_a_warning_says_it_was_not_checked() {
    let Some(dir) = vectors() else { return };
    let blob = dir.join("bundle_v3.txt").display().to_string();
    let bundle = format!("{blob}.sigstore");
    let root = root_file(&dir, Root::Staging);
    let (code, out, err) = verdict(&[
        "verify-blob",
        &blob,
        "--bundle",
        &bundle,
        "--sigstore-trusted-root",
        &root,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("identity \"william@yossarian.net\""), "{out}");
    assert!(
        err.contains("identity and OIDC issuer was not checked"),
        "{err}"
    );

    // A regular expression works where an exact value would.
    let (code, out, _) = verdict(&[
        "verify-blob",
        &blob,
        "--bundle",
        &bundle,
        "--sigstore-trusted-root",
        &root,
        "--certificate-identity-regexp",
        "^william@",
        "--certificate-oidc-issuer-regexp",
        "^https://github\\.com/",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["isSuccess"], true);
}

#[test]
fn inputs_that_cannot_be_verified_are_usage_errors() {
    let Some(dir) = vectors() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let blob = dir.join("bundle_v3.txt").display().to_string();
    let staging = root_file(&dir, Root::Staging);
    let not_json = tmp.path().join("not-json.sigstore");
    std::fs::write(&not_json, "hello").unwrap();
    let not_bundle = tmp.path().join("not-bundle.sigstore");
    std::fs::write(&not_bundle, r#"{"mediaType":"application/json"}"#).unwrap();
    let bundle = format!("{blob}.sigstore");
    for (args, says) in [
        (
            vec![
                &*blob,
                "--bundle",
                not_json.to_str().unwrap(),
                "--sigstore-trusted-root",
                &staging,
            ],
            "is not a Sigstore bundle: it is not JSON",
        ),
        (
            vec![
                &*blob,
                "--bundle",
                not_bundle.to_str().unwrap(),
                "--sigstore-trusted-root",
                &staging,
            ],
            "is not a Sigstore bundle type",
        ),
        (
            vec![
                &*blob,
                "--bundle",
                &bundle,
                "--sigstore-trusted-root",
                not_json.to_str().unwrap(),
            ],
            "invalid Sigstore trusted root",
        ),
        (
            vec![
                "/nonexistent/blob",
                "--bundle",
                &bundle,
                "--sigstore-trusted-root",
                &staging,
            ],
            "cannot read the file /nonexistent/blob",
        ),
        (
            vec![
                &*blob,
                "--bundle",
                &bundle,
                "--sigstore-trusted-root",
                &staging,
                "--certificate-identity-regexp",
                "(",
            ],
            "--certificate-identity-regexp \"(\" is not a regular expression",
        ),
    ] {
        let mut full = vec!["verify-blob"];
        full.extend(args);
        let (code, out, err) = verdict(&full);
        assert_eq!(code, 2, "{full:?}: {out}{err}");
        assert!(err.contains(says), "{full:?}: {err}");
    }
}
