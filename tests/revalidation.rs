//! Configuration changes applied to a running `verdict serve` (contract 6): a certificate that
//! leaves the trust store (the file rewritten as a ConfigMap update does) revokes the verdicts
//! resting on it at once, a narrowed Verifier flips exactly the affected verdicts in one
//! background pass, an invalid change is rejected while the last good configuration serves,
//! and `verdict revalidate` re-verifies on demand. Real docker-registry, real binary.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use verdict_testkit::DockerRegistry;
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::oci::Descriptor;
use verdict_testkit::pki::{CertBuilder, KeyAlg, TestCert};
use verdict_testkit::ratify::{NotationVerifier, inline_kmp_yaml};
use verdict_testkit::serve::{ServeOptions, VerdictServer};

const ALICE: &str = "C=US, ST=WA, O=Verdict Test, CN=alice";
const BOB: &str = "C=US, ST=WA, O=Verdict Test, CN=bob";

fn signer(subject: &str) -> Result<TestCert> {
    CertBuilder::code_signing(subject)
        .key_alg(KeyAlg::EcP256)
        .self_signed()
}

/// Inline providers `kmp-<i>` for `certs`, and one Notation verifier trusting all of them for
/// `identities`.
fn config(certs: &[&TestCert], identities: &[&str]) -> String {
    let mut docs = Vec::new();
    let mut names = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let name = format!("kmp-{i}");
        docs.push(inline_kmp_yaml(&name, None, "certificate", &c.pem()));
        names.push(name);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids: Vec<String> = identities
        .iter()
        .map(|s| match *s {
            "*" => "*".to_owned(),
            subject => format!("x509.subject: {subject}"),
        })
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    docs.push(
        NotationVerifier::new("verifier-notation", names[0])
            .typed_cert_store("ca", "certs", &names)
            .trusted_identities(&ids)
            .yaml(),
    );
    docs.join("---\n")
}

/// What kubelet does to a mounted ConfigMap: the new content in a fresh timestamped directory,
/// `..data` swapped to it atomically, the file a symlink through `..data`.
fn configmap_update(file: &Path, yaml: &str, generation: u32) -> Result<()> {
    let dir = file.parent().context("config dir")?;
    let name = file.file_name().context("config file name")?;
    let gen_dir = dir.join(format!("..2026_12_07_{generation}"));
    std::fs::create_dir_all(&gen_dir)?;
    std::fs::write(gen_dir.join(name), yaml)?;
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(gen_dir.file_name().context("gen dir")?, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    let is_link = std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        std::fs::remove_file(file)?;
        std::os::unix::fs::symlink(Path::new("..data").join(name), file)?;
    }
    Ok(())
}

async fn push_signed(
    registry: &DockerRegistry,
    repo: &str,
    cert: &TestCert,
) -> Result<(Descriptor, String)> {
    let client = registry.client();
    let image = client.push_image(repo, "v1").await?;
    push_notation_signature(&client, repo, &image, cert).await?;
    let key = format!("{}/{repo}@{}", registry.host_port(), image.digest);
    Ok((image, key))
}

async fn serve(registry: &DockerRegistry, yaml: String, extra: &[&str]) -> Result<VerdictServer> {
    VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), yaml)
            .plain_http(&registry.host_port())
            .args(["--config-poll-ms", "200", "--deny-ttl-secs", "1"])
            .args(extra.iter().copied()),
    )
    .await
}

/// Polls until `key` answers `want`; the time it took.
async fn until(
    server: &VerdictServer,
    key: &str,
    want: bool,
    within: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let got = server.verify_one(key).await?;
        if got == Ok(want) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            bail!(
                "{key}: wanted {want} within {within:?}, got {got:?}\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_certificate_leaving_the_trust_store_revokes_at_once_and_returning_restores() -> Result<()>
{
    let registry = DockerRegistry::start().await?;
    let alice = signer(ALICE)?;
    let other = signer(BOB)?;
    let (_, key) = push_signed(&registry, "team/app", &alice).await?;
    let server = serve(&registry, config(&[&alice], &[ALICE]), &[]).await?;
    assert_eq!(server.verify_one(&key).await?, Ok(true));
    assert_eq!(server.verify_one(&key).await?, Ok(true), "a stored allow");

    // The trust store loses alice's certificate (another one takes its place).
    configmap_update(server.config_file(), &config(&[&other], &[ALICE, BOB]), 1)?;
    let took = until(&server, &key, false, Duration::from_secs(5)).await?;
    eprintln!("denied {took:?} after the ConfigMap update");
    // Never an allow again while the certificate is out.
    for _ in 0..15 {
        assert_eq!(
            server.verify_one(&key).await?,
            Ok(false),
            "allowed after a deny"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoked = server.metric("verdict_revoked_verdicts_total", &[]).await?;
    assert!(revoked >= 1.0, "the stored allow was revoked: {revoked}");

    // It comes back: allowed again within 5 s, no restart.
    configmap_update(server.config_file(), &config(&[&alice], &[ALICE]), 2)?;
    let took = until(&server, &key, true, Duration::from_secs(5)).await?;
    eprintln!("allowed again {took:?} after the certificate returned");
    let status = server.status().await?;
    assert_eq!(status["configuration"]["ok"], true, "{status}");
    Ok(())
}

#[tokio::test]
async fn a_narrowed_verifier_flips_only_the_affected_verdicts_in_one_pass() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let alice = signer(ALICE)?;
    let bob = signer(BOB)?;
    let (_, by_alice) = push_signed(&registry, "team/alice", &alice).await?;
    let (_, by_bob) = push_signed(&registry, "team/bob", &bob).await?;
    let server = serve(&registry, config(&[&alice, &bob], &[ALICE, BOB]), &[]).await?;
    assert_eq!(server.verify_one(&by_alice).await?, Ok(true));
    assert_eq!(server.verify_one(&by_bob).await?, Ok(true));

    // Bob's identity is removed from the trust policy (his certificate stays in the store).
    configmap_update(server.config_file(), &config(&[&alice, &bob], &[ALICE]), 1)?;
    let start = Instant::now();
    let mut flipped = false;
    while start.elapsed() < Duration::from_secs(8) {
        // Alice's image is allowed at every moment, before, during and after the pass.
        assert_eq!(
            server.verify_one(&by_alice).await?,
            Ok(true),
            "alice's image"
        );
        let runs: Value = reqwest::get(format!("http://{}/revalidate", server.ops()))
            .await?
            .json()
            .await?;
        let done = runs.as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["reason"] == "change" && r["state"] == "done")
        });
        if done {
            // One pass decided bob's image: denied from the store's point of view already.
            assert_eq!(server.verify_one(&by_bob).await?, Ok(false), "bob's image");
            let run = runs
                .as_array()
                .and_then(|r| r.iter().rev().find(|r| r["reason"] == "change"))
                .context("the change run")?;
            assert_eq!(run["revoked"], 1, "{run}");
            assert_eq!(run["allowed"], 1, "{run}");
            flipped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        flipped,
        "no revalidation pass finished\n{}",
        server.log_tail()
    );
    // After the pass alice's verdict is a hit again: no inline verification for it.
    let misses = server
        .metric(
            "verdict_lookup_duration_seconds_count",
            &["result=\"miss\""],
        )
        .await?;
    assert_eq!(server.verify_one(&by_alice).await?, Ok(true));
    let after = server
        .metric(
            "verdict_lookup_duration_seconds_count",
            &["result=\"miss\""],
        )
        .await?;
    assert_eq!(misses, after, "alice's lookup after the pass was a miss");
    Ok(())
}

/// A rotation that only adds a certificate: stored verdicts are carried over from their evidence
/// (no registry read, no inline verification) and stay hits; one resting on a certificate that
/// left is revoked, while the others carry over.
#[tokio::test]
async fn material_changes_carry_verdicts_over_from_evidence() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let alice = signer(ALICE)?;
    let bob = signer(BOB)?;
    let carol = signer("C=US, ST=WA, O=Verdict Test, CN=carol")?;
    let (_, by_alice) = push_signed(&registry, "c/alice", &alice).await?;
    let (_, by_bob) = push_signed(&registry, "c/bob", &bob).await?;
    let any = ["*"];
    let server = serve(
        &registry,
        config(&[&alice, &bob], &any),
        &["--revalidate-on-change", "false"],
    )
    .await?;
    assert_eq!(server.verify_one(&by_alice).await?, Ok(true));
    assert_eq!(server.verify_one(&by_bob).await?, Ok(true));
    let inline = || server.metric("verdict_inline_verifications_total", &[]);

    // carol's certificate joins, bob's leaves.
    configmap_update(server.config_file(), &config(&[&alice, &carol], &any), 1)?;
    until(&server, &by_bob, false, Duration::from_secs(5)).await?;
    let after_bob = inline().await?;
    assert_eq!(
        server.verify_one(&by_alice).await?,
        Ok(true),
        "alice's carried over"
    );
    assert_eq!(
        inline().await?,
        after_bob,
        "alice's verdict came from its evidence, not a new verification"
    );
    let carried = server
        .metric("verdict_verdicts_carried_over_total", &[])
        .await?;
    assert!(carried >= 1.0, "{carried}");
    Ok(())
}

#[tokio::test]
async fn an_invalid_change_is_rejected_and_the_last_good_configuration_serves() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let alice = signer(ALICE)?;
    let (_, key) = push_signed(&registry, "team/app", &alice).await?;
    let server = serve(&registry, config(&[&alice], &[ALICE]), &[]).await?;
    assert_eq!(server.verify_one(&key).await?, Ok(true));

    let broken = config(&[&alice], &[ALICE]).replace("kind: Verifier", "kind: Verifer");
    configmap_update(server.config_file(), &broken, 1)?;
    let start = Instant::now();
    loop {
        let status = server.status().await?;
        if status["configuration"]["ok"] == false {
            let error = status["configuration"]["error"]
                .as_str()
                .unwrap_or_default();
            assert!(error.contains("error"), "{status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(5) {
            bail!("the broken change was not reported: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let readyz = reqwest::get(format!("http://{}/readyz", server.ops())).await?;
    assert_eq!(
        readyz.status(),
        200,
        "still ready: the last good configuration serves"
    );
    let body = readyz.text().await?;
    assert!(body.contains("rejected"), "{body}");
    assert_eq!(
        server.verify_one(&key).await?,
        Ok(true),
        "last good configuration"
    );
    let rejected = server
        .metric("verdict_config_reloads_total", &["result=\"rejected\""])
        .await?;
    assert!(rejected >= 1.0);

    // Fixed: applied, and the readiness detail is gone.
    configmap_update(server.config_file(), &config(&[&alice], &[ALICE]), 2)?;
    let start = Instant::now();
    loop {
        let body = reqwest::get(format!("http://{}/readyz", server.ops()))
            .await?
            .text()
            .await?;
        if !body.contains("rejected") {
            break;
        }
        if start.elapsed() > Duration::from_secs(5) {
            bail!("the fixed change was not applied: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn verdict_revalidate_reverifies_on_demand_with_a_summary() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let alice = signer(ALICE)?;
    let mut keys = Vec::new();
    for repo in ["r/one", "r/two", "r/three"] {
        keys.push(push_signed(&registry, repo, &alice).await?.1);
    }
    let server = serve(&registry, config(&[&alice], &[ALICE]), &[]).await?;
    for k in &keys {
        assert_eq!(server.verify_one(k).await?, Ok(true));
    }
    let ops = format!("http://{}", server.ops());
    let run = |extra: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
            .arg("revalidate")
            .args(extra)
            .args(["--ops", &ops])
            .output()
    };
    let out = run(&["--all"]).await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("revalidated 3 of 3 (all): 3 allowed, 0 revoked"),
        "{stdout}"
    );
    let out = run(&[
        "--scope",
        &format!("{}/r/two", registry.host_port()),
        "-o",
        "json",
    ])
    .await?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["total"], 1, "{report}");
    assert_eq!(report["allowed"], 1, "{report}");
    let fp = format!("sha256:{}", alice.sha256_fingerprint());
    let out = run(&["--key", &fp, "-o", "json"]).await?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        report["total"], 3,
        "every verdict rests on alice's certificate: {report}"
    );

    // No selection: a usage error; no server: exit 2 naming the address.
    let out = run(&[]).await?;
    assert_eq!(out.status.code(), Some(2));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["revalidate", "--all", "--ops", "http://127.0.0.1:1"])
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
    Ok(())
}

#[test]
fn an_invalid_schedule_is_refused_at_start_naming_the_field() -> Result<()> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args([
            "serve",
            "--config",
            "/nonexistent",
            "--revalidate-schedule",
            "0 3 * 13 1-5",
        ])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("month field: 13 is out of range 1-12"),
        "{stderr}"
    );
    Ok(())
}
