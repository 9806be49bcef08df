//! `verdict-bench-push`: push event → verdict visible, at a fixed rate (benches/README.md, "Verify
//! on push").
//!
//! A real docker-registry with `--images` Notation-signed images, a real nats-server, and a real
//! `verdict serve --nats-url … --events-listen …` (the binary given, normally the release
//! build). ACR push webhooks for the images are sent over HTTPS at `--rate` per second; for each,
//! Verdict logs the time from its receiver accepting the event to the verdict being stored (and
//! published to the replicas) — the moment a lookup on this replica is a hit. The tool reads
//! those from the log, and checks afterwards that every image is answered allowed from the store
//! (no inline verification). Baseline in the same run: the same kind of image verified inline on
//! a miss (`--baseline` images asked once each, one at a time), i.e. what the first admission
//! costs without the push path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use verdict_testkit::NatsServer;
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::process::free_port;
use verdict_testkit::registry::DockerRegistry;
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VerdictServer, item_verdict};
use verdict_testkit::stats::summary;

const SECRET: &str = "verdict-bench-push-secret";

#[derive(Debug, Parser)]
#[command(
    name = "verdict-bench-push",
    about = "Push event → verdict visible, at a fixed rate"
)]
struct Args {
    /// The `verdict` binary (the release build for figures).
    #[arg(long)]
    verdict: PathBuf,
    /// Images pushed and announced (one webhook each).
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Webhooks per second.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Images verified inline on a miss for the same-run baseline.
    #[arg(long, default_value_t = 50)]
    baseline: usize,
    /// Where to write `push-latency.json` (the per-event latencies and the summary).
    #[arg(long, default_value = "target/bench-push")]
    out: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict-bench-push: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    std::fs::create_dir_all(&args.out)?;
    let registry = DockerRegistry::start().await?;
    let nats = NatsServer::start().await?;
    let host = registry.host_port();
    let client = registry.client();
    let cert = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;

    let setup = Instant::now();
    let total = args.images + args.baseline;
    let pushed: Vec<(String, String)> = futures::stream::iter(0..total)
        .map(|i| {
            let (client, cert) = (client.clone(), &cert);
            async move {
                let repo = format!("bench/push-{i}");
                let image = client.push_image(&repo, "v1").await?;
                push_notation_signature(&client, &repo, &image, cert).await?;
                anyhow::Ok((repo, image.digest))
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    eprintln!(
        "pushed {total} signed images in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let secret_dir = tempfile::tempdir()?;
    let secret = secret_dir.path().join("webhook.secret");
    std::fs::write(&secret, SECRET)?;
    let events = format!("127.0.0.1:{}", free_port()?);
    let server = VerdictServer::start(
        ServeOptions::new(&args.verdict, ratify_config(&cert))
            .plain_http(&host)
            .args(["--nats-url", &nats.url(), "--events-listen", &events])
            .args([
                std::ffi::OsStr::new("--webhook-secret-file"),
                secret.as_os_str(),
            ])
            .args([
                "--log",
                "info",
                "--log-format",
                "json",
                "--verify-deadline-ms",
                "10000",
            ]),
    )
    .await?;
    let https = server.https_client().clone();

    // Baseline: the same images' first admission without the push path (inline, one at a time).
    let mut inline_ms = Vec::new();
    for (repo, digest) in &pushed[args.images..] {
        let key = format!("{host}/{repo}@{digest}");
        let started = Instant::now();
        let response = server.post_keys(VERIFY_V1, &[&key]).await?;
        inline_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(item_verdict(&response, &key)? == Ok(true), "{response}");
    }

    // The push path at a fixed rate.
    let url = format!("https://{events}/events/acr");
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let sending = Instant::now();
    let mut sends = Vec::new();
    for (i, (repo, digest)) in pushed[..args.images].iter().enumerate() {
        ticker.tick().await;
        let body = json!({
            "id": format!("bench-{i}"),
            "timestamp": "2026-12-07T00:00:00Z",
            "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "repository": repo, "tag": "v1"},
            "request": {"id": "r", "host": host, "method": "PUT"},
        });
        let (https, url) = (https.clone(), url.clone());
        sends.push(tokio::spawn(async move {
            let resp = https
                .post(&url)
                .header("authorization", format!("Bearer {SECRET}"))
                .json(&body)
                .send()
                .await?;
            ensure!(
                resp.status().is_success(),
                "webhook answered {}",
                resp.status()
            );
            anyhow::Ok(())
        }));
    }
    for s in sends {
        s.await??;
    }
    let send_seconds = sending.elapsed().as_secs_f64();

    // Wait for every event to be applied, then read the latencies from the log.
    let log = server.data_dir().join("verdict.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    let latencies = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let ms: Vec<f64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "verified on push")
            .filter_map(|v| v["fields"]["latency_ms"].as_f64())
            .collect();
        if ms.len() >= args.images {
            break ms;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} events applied within 120 s",
                ms.len(),
                args.images
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Every pushed image is now a hit, and allowed.
    let inline_before = inline_count(&server).await?;
    let keys: Vec<String> = pushed[..args.images]
        .iter()
        .map(|(repo, digest)| format!("{host}/{repo}@{digest}"))
        .collect();
    for chunk in keys.chunks(100) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let response = server.post_keys(VERIFY_V1, &refs).await?;
        for key in chunk {
            ensure!(
                item_verdict(&response, key)? == Ok(true),
                "{key} not allowed"
            );
        }
    }
    ensure!(
        inline_count(&server).await? == inline_before,
        "some pushed images were verified inline at lookup"
    );

    let mut latencies = latencies;
    let result = json!({
        "images": args.images,
        "rate_per_s": args.rate,
        "send_seconds": send_seconds,
        "event_to_verdict": summary(&mut latencies),
        "baseline_inline_miss": summary(&mut inline_ms),
        "machine": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())),
    });
    std::fs::write(
        args.out.join("push-latency.json"),
        serde_json::to_vec_pretty(&json!({"summary": result, "event_to_verdict_ms": latencies}))?,
    )?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

async fn inline_count(server: &VerdictServer) -> Result<f64> {
    server
        .metric("verdict_inline_verifications_total", &[])
        .await
        .context("metrics")
}
