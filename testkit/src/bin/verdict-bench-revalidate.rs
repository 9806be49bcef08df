//! `verdict-bench-revalidate`: a key rotation over a store of `--count` verdicts
//! (benches/README.md, "Revalidation after a rotation").
//!
//! A real docker-registry with one Notation-signed image (EC P-256); `verdict serve` (the binary
//! given, normally the release build) verifies it, stops, and `verdict-bench-fill` copies that
//! verdict under `--count` synthetic subjects. The server starts again on that store; then:
//!
//! - **idle**: cache-hit lookups of random stored subjects from `--clients` concurrent clients;
//! - **rotation**: one provider's certificate is replaced (the configuration file rewritten, as
//!   a ConfigMap update does; the Verifier is unchanged, as in a Key Vault key rotation). Every stored verdict is now of an earlier configuration; the server
//!   carries each over from its evidence (at its lookup, and by a pass over the store) — the
//!   same lookups run meanwhile, and each must still be an allow;
//! - **baseline**: the raw rate of the same signature verification (ECDSA P-256 / SHA-256,
//!   aws-lc-rs, one core), measured in the same run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::json;
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg, SignAlg, TestCert};
use verdict_testkit::ratify::{NotationVerifier, inline_kmp_yaml};
use verdict_testkit::registry::DockerRegistry;
use verdict_testkit::serve::{ServeOptions, VerdictServer};
use verdict_testkit::stats::summary;

#[derive(Debug, Parser)]
#[command(
    name = "verdict-bench-revalidate",
    about = "Revalidation after a key rotation over many stored verdicts"
)]
struct Args {
    /// The `verdict` binary (the release build for figures).
    #[arg(long)]
    verdict: PathBuf,
    /// `verdict-bench-fill` (default: beside `--verdict`).
    #[arg(long)]
    fill: Option<PathBuf>,
    /// Stored verdicts.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Concurrent lookup clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of idle lookups.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Where to write `revalidate.json`.
    #[arg(long, default_value = "target/bench-revalidate")]
    out: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict-bench-revalidate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn signer(cn: &str) -> Result<TestCert> {
    CertBuilder::code_signing(&format!("C=US, O=Verdict Bench, CN={cn}"))
        .key_alg(KeyAlg::EcP256)
        .self_signed()
}

fn config(certs: &[&TestCert]) -> String {
    let mut docs = Vec::new();
    let mut names = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let name = format!("kmp-{i}");
        docs.push(inline_kmp_yaml(&name, None, "certificate", &c.pem()));
        names.push(name);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    docs.push(
        NotationVerifier::new("verifier-notation", names[0])
            .typed_cert_store("ca", "certs", &names)
            .yaml(),
    );
    docs.join("---\n")
}

/// Lookups of random stored subjects until `stop`: `(started, latency ms, allowed)`.
async fn lookups(
    server: Arc<VerdictServer>,
    registry: String,
    count: u64,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> Result<Vec<(Instant, f64, bool)>> {
    let mut out = Vec::new();
    let mut x = seed | 1;
    while !stop.load(Ordering::Relaxed) {
        // xorshift: cheap, deterministic per client.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = x % count;
        let key = format!("{registry}/bench/fill-{}@sha256:{n:064}", n % 100);
        let start = Instant::now();
        let got = server.verify_one(&key).await?;
        out.push((
            start,
            start.elapsed().as_secs_f64() * 1000.0,
            got == Ok(true),
        ));
    }
    Ok(out)
}

/// The raw rate of ECDSA P-256 / SHA-256 verification on one core, signatures per second.
fn raw_verify_rate() -> Result<f64> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    let cert = signer("raw")?;
    let message = b"the payload of a Notation signature, about this long: {\"targetArtifact\":{}}";
    let signature = cert.sign(SignAlg::Es256Der, message)?;
    let spki = cert.key().public_key_der();
    // SubjectPublicKeyInfo → the uncompressed point aws-lc-rs wants: the last 65 bytes.
    ensure!(spki.len() >= 65, "unexpected P-256 public key encoding");
    let point = spki[spki.len() - 65..].to_vec();
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point);
    key.verify(message, &signature)
        .map_err(|_| anyhow::anyhow!("the baseline signature does not verify"))?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            key.verify(message, &signature)
                .map_err(|_| anyhow::anyhow!("verification failed"))?;
        }
        n += 100;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn run(args: Args) -> Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    let fill = args.fill.clone().unwrap_or_else(|| {
        args.verdict
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("verdict-bench-fill")
    });
    ensure!(
        fill.is_file(),
        "{} not found: build it with `cargo build --release -p verdict-testkit --features verdict-testkit/bench-store --bins`",
        fill.display()
    );
    let registry = DockerRegistry::start().await?;
    let host = registry.host_port();
    let alice = signer("alice")?;
    let bob = signer("bob")?;
    let carol = signer("carol")?;
    let client = registry.client();
    let image = client.push_image("bench/seed", "v1").await?;
    push_notation_signature(&client, "bench/seed", &image, &alice).await?;
    let data = tempfile::Builder::new()
        .prefix("verdict-bench-reval-")
        .tempdir()?;
    let options = || {
        ServeOptions::new(&args.verdict, config(&[&alice, &bob]))
            .plain_http(&host)
            .data_dir(data.path())
            .args(["--config-poll-ms", "200", "--revalidate-on-change", "false"])
    };

    // The seed verdict, then `count` copies of it.
    let mut first = VerdictServer::start(options()).await?;
    let seed = format!("{host}/bench/seed@{}", image.digest);
    ensure!(
        first.verify_one(&seed).await? == Ok(true),
        "the seed image is not allowed"
    );
    first.terminate(Duration::from_secs(10));
    drop(first);
    eprintln!("filling {} verdicts ...", args.count);
    let status = tokio::process::Command::new(&fill)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--count", &args.count.to_string()])
        .status()
        .await
        .with_context(|| format!("running {}", fill.display()))?;
    ensure!(status.success(), "verdict-bench-fill failed");

    let server = Arc::new(VerdictServer::start(options()).await?);
    let raw_rate = tokio::task::spawn_blocking(raw_verify_rate).await??;
    eprintln!("raw ECDSA P-256 verification: {raw_rate:.0}/s on one core");

    // Idle.
    let stop = Arc::new(AtomicBool::new(false));
    let spawn_clients = |stop: &Arc<AtomicBool>, salt: u64| {
        (0..args.clients)
            .map(|i| {
                tokio::spawn(lookups(
                    Arc::clone(&server),
                    host.clone(),
                    args.count,
                    Arc::clone(stop),
                    0x9e37_79b9_7f4a_7c15 ^ (salt + i as u64),
                ))
            })
            .collect::<Vec<_>>()
    };
    let tasks = spawn_clients(&stop, 1);
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut idle = Vec::new();
    for t in tasks {
        idle.extend(t.await??);
    }
    ensure!(
        idle.iter().all(|(_, _, ok)| *ok),
        "an idle lookup was not an allow"
    );

    // The rotation, with the same lookups running.
    let passes = || server.metric("verdict_carry_over_passes_total", &[]);
    let passes_before = passes().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = spawn_clients(&stop, 1000);
    let rotated_at = Instant::now();
    // The second provider's certificate is rotated (bob's out, carol's in): the Verifier is
    // unchanged, only trust material moved — as a Key Vault key rotation does.
    std::fs::write(server.config_file(), config(&[&alice, &carol]))?;
    let (carried, seconds) = loop {
        if passes().await? > passes_before {
            let carried = server
                .metric("verdict_carry_over_last_pass_carried", &[])
                .await?;
            let seconds = server
                .metric("verdict_carry_over_last_pass_seconds", &[])
                .await?;
            break (carried, seconds);
        }
        if rotated_at.elapsed() > Duration::from_secs(300) {
            bail!(
                "no carry-over pass finished within 300 s\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pass_end = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut during = Vec::new();
    for t in tasks {
        during.extend(t.await??);
    }
    let not_allowed = during.iter().filter(|(_, _, ok)| !ok).count();
    // Lookups that started after the change was written and before the pass ended.
    let mut in_pass: Vec<f64> = during
        .iter()
        .filter(|(at, _, _)| *at >= rotated_at && *at <= pass_end)
        .map(|(_, ms, _)| *ms)
        .collect();
    let mut idle_ms: Vec<f64> = idle.iter().map(|(_, ms, _)| *ms).collect();
    let pass_rate = carried / seconds.max(1e-9);
    let report = json!({
        "stored_verdicts": args.count + 1,
        "clients": args.clients,
        "raw_ecdsa_p256_verifications_per_second": raw_rate,
        "carry_over": {
            "carried": carried,
            "seconds": seconds,
            "per_second": pass_rate,
            "ratio_to_raw_verification": pass_rate / raw_rate,
        },
        "hit_idle_ms": summary(&mut idle_ms),
        "hit_during_pass_ms": summary(&mut in_pass),
        "lookups_not_allowed_during_rotation": not_allowed,
    });
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("revalidate.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    ensure!(
        not_allowed == 0,
        "{not_allowed} lookups were not allowed during the rotation"
    );
    Ok(())
}
