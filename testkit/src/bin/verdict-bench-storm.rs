//! `verdict-bench-storm`: Ratify's 2023 AKS load test replayed on one machine (benches/README.md,
//! "Headline: the admission storm").
//!
//! An in-process registry that behaves like a remote ACR (`--latency-ms` per request, 429 with
//! `Retry-After` beyond `--rate` requests per second) holds `--images` images, each with
//! `--referrers` referrers of which one is a Notation signature (the rest SBOM- and scan-like
//! artifacts). Two runs against one release `verdict serve` each:
//!
//! - **warm**: every image is announced first by an ACR push webhook (through NATS JetStream to the
//!   workers), then the storm;
//! - **cold**: a fresh server with no events, so every first lookup is verified inline.
//!
//! The storm: `--pods` admission requests of `--per-pod` images each (`registry/repo:v1`, as pod
//! specs name them), `--concurrency` at a time, each with Gatekeeper's `--timeout-ms`. Counted: a
//! timeout (the request took longer, or an item says the deadline passed), a wrong answer (any
//! image not allowed: every image is signed), the server's peak RSS. Writes `storm.json` (the
//! summary) and `storm-<run>.csv` (start offset, latency, outcome of every request) to `--out`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use verdict_testkit::NatsServer;
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::inproc_registry::InprocRegistry;
use verdict_testkit::notation::{MEDIA_TYPE_JWS, THUMBPRINT_ANNOTATION, sign_jws};
use verdict_testkit::oci::{Descriptor, EMPTY_JSON, NOTATION_SIGNATURE, OCI_EMPTY, OCI_MANIFEST};
use verdict_testkit::pki::{CertBuilder, KeyAlg, TestCert, notation_thumbprints};
use verdict_testkit::process::free_port;
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VerdictServer};
use verdict_testkit::stats::quantile;

const SECRET: &str = "verdict-bench-storm-secret";

#[derive(Debug, Parser)]
#[command(
    name = "verdict-bench-storm",
    about = "Ratify's AKS load test, warm and cold"
)]
struct Args {
    #[arg(long)]
    verdict: PathBuf,
    #[arg(long, default_value_t = 1000)]
    images: usize,
    #[arg(long, default_value_t = 50)]
    referrers: usize,
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    #[arg(long, default_value_t = 10)]
    per_pod: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Gatekeeper's external-data deadline for one admission request.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    #[arg(long, default_value_t = 100)]
    rate: u32,
    #[arg(long, default_value = "target/bench-storm")]
    out: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict-bench-storm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn put_image(registry: &InprocRegistry, repo: &str, n: usize) -> Descriptor {
    let layer = format!("storm layer {n}").into_bytes();
    let layer_digest = registry.put_blob(repo, layer.clone());
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap_or_default();
    registry.put_blob(repo, config.clone());
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor::of("application/vnd.oci.image.config.v1+json", &config).plain_json(),
        "layers": [Descriptor::of("application/vnd.oci.image.layer.v1.tar", &layer).plain_json()],
    }))
    .unwrap_or_default();
    registry.put_manifest(repo, Some("v1"), OCI_MANIFEST, manifest.clone());
    Descriptor::of(OCI_MANIFEST, &manifest)
}

fn put_referrer(
    registry: &InprocRegistry,
    repo: &str,
    subject: &Descriptor,
    artifact_type: &str,
    layer: (&str, Vec<u8>),
    annotations: Value,
) {
    registry.put_blob(repo, EMPTY_JSON.to_vec());
    registry.put_blob(repo, layer.1.clone());
    let mut config = Descriptor::of(OCI_EMPTY, EMPTY_JSON).plain_json();
    config["data"] = json!("e30=");
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config,
        "layers": [Descriptor::of(layer.0, &layer.1).plain_json()],
        "subject": subject.plain_json(),
    });
    if !annotations.is_null() {
        manifest["annotations"] = annotations;
    }
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    registry.put_manifest(repo, None, OCI_MANIFEST, bytes);
}

fn populate(registry: &InprocRegistry, args: &Args, cert: &TestCert) -> Result<Vec<String>> {
    let host = registry.host_port();
    let thumbprints = notation_thumbprints(&[cert.der()]);
    let mut images = Vec::with_capacity(args.images);
    for n in 0..args.images {
        let repo = format!("storm/app-{n}");
        let image = put_image(registry, &repo, n);
        // The signature sits among the other referrers (here: in the middle).
        let signature_at = args.referrers / 2;
        for r in 0..args.referrers.max(1) {
            if r == signature_at {
                let envelope = sign_jws(&image, cert)?;
                put_referrer(
                    registry,
                    &repo,
                    &image,
                    NOTATION_SIGNATURE,
                    (MEDIA_TYPE_JWS, envelope),
                    json!({THUMBPRINT_ANNOTATION: thumbprints}),
                );
            } else {
                let (ty, mt) = if r % 2 == 0 {
                    ("application/spdx+json", "application/spdx+json")
                } else {
                    ("application/sarif+json", "application/sarif+json")
                };
                put_referrer(
                    registry,
                    &repo,
                    &image,
                    ty,
                    (mt, format!("{{\"n\":{n},\"r\":{r}}}").into_bytes()),
                    Value::Null,
                );
            }
        }
        images.push((repo, image.digest));
    }
    Ok(images
        .into_iter()
        .map(|(repo, _)| format!("{host}/{repo}:v1"))
        .collect())
}

#[derive(Default)]
struct Tally {
    ok: usize,
    timeouts: usize,
    /// Requests with a per-key error other than a deadline (throttled, registry unavailable):
    /// Gatekeeper denies those pods too.
    errors: usize,
    error_codes: std::collections::BTreeMap<String, usize>,
    wrong: usize,
    latencies_ms: Vec<f64>,
    rows: Vec<String>,
}

async fn storm(server: &VerdictServer, images: &[String], args: &Args) -> Result<(Tally, f64)> {
    let client = server.https_client().clone();
    let url = server.url(VERIFY_V1);
    let timeout = Duration::from_millis(args.timeout_ms);
    let started = Instant::now();
    let n = images.len();
    let results = futures::stream::iter(0..args.pods)
        .map(|pod| {
            let keys: Vec<String> = (0..args.per_pod)
                .map(|j| images[(pod.wrapping_mul(7919) + j * 131) % n].clone())
                .collect();
            let (client, url) = (client.clone(), url.clone());
            async move {
                let offset = started.elapsed().as_secs_f64();
                let body = json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": keys}});
                let t = Instant::now();
                let answer = tokio::time::timeout(timeout, async {
                    let resp = client.post(&url).json(&body).send().await?;
                    resp.json::<Value>().await
                })
                .await;
                (offset, t.elapsed().as_secs_f64() * 1000.0, keys, answer)
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut tally = Tally::default();
    for (offset, ms, keys, answer) in results {
        let tally = &mut tally;
        let (outcome, codes) = match answer {
            Err(_) => ("timeout", Vec::new()),
            Ok(Err(_)) => ("wrong", Vec::new()),
            Ok(Ok(v)) => {
                let items = v["response"]["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut outcome = "ok";
                let mut codes = Vec::new();
                for key in &keys {
                    let item = items.iter().find(|i| i["key"] == *key);
                    let error = item.and_then(|i| i["error"].as_str()).unwrap_or("");
                    match item {
                        Some(i) if i["value"]["isSuccess"] == true && error.is_empty() => {}
                        Some(_) if error.contains("TIMEOUT") || error.contains("within") => {
                            outcome = "timeout";
                        }
                        Some(_) if !error.is_empty() => {
                            if outcome == "ok" {
                                outcome = "error";
                            }
                            codes.push(error.split([':', ' ']).next().unwrap_or("").to_owned());
                        }
                        _ => {
                            outcome = "wrong";
                            break;
                        }
                    }
                }
                (outcome, codes)
            }
        };
        for code in codes {
            *tally.error_codes.entry(code).or_default() += 1;
        }
        match outcome {
            "ok" => tally.ok += 1,
            "timeout" => tally.timeouts += 1,
            "error" => tally.errors += 1,
            _ => tally.wrong += 1,
        }
        tally.latencies_ms.push(ms);
        tally.rows.push(format!("{offset:.4},{ms:.3},{outcome}"));
    }
    Ok((tally, seconds))
}

fn vm_hwm_kib(server: &VerdictServer) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn report(
    name: &str,
    tally: &mut Tally,
    seconds: f64,
    rss_kib: Option<u64>,
    extra: Value,
) -> Value {
    tally.latencies_ms.sort_by(f64::total_cmp);
    let l = &tally.latencies_ms;
    json!({
        "run": name,
        "requests": l.len(),
        "ok": tally.ok,
        "timeouts": tally.timeouts,
        "errors": tally.errors,
        "error_codes": tally.error_codes,
        "wrong": tally.wrong,
        "seconds": seconds,
        "requests_per_s": l.len() as f64 / seconds,
        "p50_ms": quantile(l, 0.5),
        "p95_ms": quantile(l, 0.95),
        "p99_ms": quantile(l, 0.99),
        "max_ms": l.last().copied().unwrap_or(f64::NAN),
        "peak_rss_mib": rss_kib.map(|k| k as f64 / 1024.0),
        "setup": extra,
    })
}

/// Waits until `n` verdicts are stored (each image verified on push), at most `limit`.
async fn wait_stored(server: &VerdictServer, n: usize, limit: Duration) -> Result<f64> {
    let started = Instant::now();
    loop {
        let done = server.metric("verdict_store_entries", &[]).await?;
        if done >= n as f64 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > limit {
            bail!("{done} of {n} images stored on push within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(args: Args) -> Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    std::fs::create_dir_all(&args.out)?;
    let registry = InprocRegistry::start().await?;
    let host = registry.host_port();
    let cert = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let t = Instant::now();
    let images = populate(&registry, &args, &cert)?;
    eprintln!(
        "registry: {} images x {} referrers in {:.1} s",
        args.images,
        args.referrers,
        t.elapsed().as_secs_f64()
    );
    registry.set_latency(Duration::from_millis(args.latency_ms));
    registry.set_rate_limit(Some(args.rate));
    let serve_args = |o: ServeOptions| {
        o.plain_http(&host)
            .args([
                "--verify-deadline-ms",
                &(args.timeout_ms.saturating_sub(200)).to_string(),
            ])
            .args(["--log", "info"])
    };
    let mut summaries = Vec::new();

    // Warm: push events first.
    {
        let nats = NatsServer::start().await?;
        let secret_dir = tempfile::tempdir()?;
        let secret = secret_dir.path().join("webhook.secret");
        std::fs::write(&secret, SECRET)?;
        let events = format!("127.0.0.1:{}", free_port()?);
        let server = VerdictServer::start(serve_args(
            ServeOptions::new(&args.verdict, ratify_config(&cert))
                .args(["--nats-url", &nats.url(), "--events-listen", &events])
                .args([
                    std::ffi::OsStr::new("--webhook-secret-file"),
                    secret.as_os_str(),
                ]),
        ))
        .await?;
        let client = server.https_client().clone();
        let url = format!("https://{events}/events/acr");
        let sent = Instant::now();
        let bodies: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let (repo_tag, _) = image.split_once(":v1").unwrap_or((image, ""));
                let repo = repo_tag.trim_start_matches(&format!("{host}/")).to_owned();
                let digest = registry.manifest_digest(&repo, "v1").unwrap_or_default();
                json!({"id": format!("storm-{i}"), "timestamp": "2026-12-07T00:00:00Z", "action": "push",
                       "target": {"mediaType": OCI_MANIFEST, "digest": digest, "repository": repo, "tag": "v1"},
                       "request": {"id": "r", "host": host, "method": "PUT"}})
            })
            .collect();
        let accepted = futures::stream::iter(bodies)
            .map(|body| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let r = client
                        .post(&url)
                        .header("authorization", format!("Bearer {SECRET}"))
                        .json(&body)
                        .send()
                        .await?;
                    anyhow::Ok(r.status().is_success())
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let accepted = accepted
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        let send_s = sent.elapsed().as_secs_f64();
        let applied_s = wait_stored(&server, args.images, Duration::from_secs(1800)).await?;
        eprintln!(
            "warm: {accepted} events accepted in {send_s:.1} s, all applied {applied_s:.1} s later"
        );
        let metrics = server.metrics().await?;
        for l in metrics.lines().filter(|l| {
            [
                "verdict_store_entries",
                "verdict_push_verifications_total",
                "verdict_events_processed_total",
                "verdict_replica_messages_total",
            ]
            .iter()
            .any(|m| l.starts_with(m))
        }) {
            eprintln!("  {l}");
        }
        let (mut tally, seconds) = storm(&server, &images, &args).await?;
        let rss = vm_hwm_kib(&server);
        let _ = std::fs::copy(
            server.data_dir().join("verdict.log"),
            args.out.join("verdict-warm.log"),
        );
        std::fs::write(
            args.out.join("storm-warm.csv"),
            format!("offset_s,latency_ms,outcome\n{}\n", tally.rows.join("\n")),
        )?;
        summaries.push(report(
            "warm (push events first)",
            &mut tally,
            seconds,
            rss,
            json!({"events_accepted": accepted, "events_sent_s": send_s, "events_applied_after_s": applied_s}),
        ));
        eprintln!(
            "{}",
            serde_json::to_string(summaries.last().unwrap_or(&Value::Null))?
        );
    }

    // Cold: no events; every first lookup verified inline.
    {
        let server = VerdictServer::start(serve_args(ServeOptions::new(
            &args.verdict,
            ratify_config(&cert),
        )))
        .await?;
        let (mut tally, seconds) = storm(&server, &images, &args).await?;
        let rss = vm_hwm_kib(&server);
        std::fs::write(
            args.out.join("storm-cold.csv"),
            format!("offset_s,latency_ms,outcome\n{}\n", tally.rows.join("\n")),
        )?;
        summaries.push(report(
            "cold (no events)",
            &mut tally,
            seconds,
            rss,
            Value::Null,
        ));
    }

    let summary = json!({
        "images": args.images, "referrers_per_image": args.referrers, "pods": args.pods,
        "images_per_pod": args.per_pod, "concurrency": args.concurrency, "timeout_ms": args.timeout_ms,
        "registry": {"latency_ms": args.latency_ms, "rate_limit_per_s": args.rate,
                     "requests_429": registry.count_status(429), "requests": registry.requests().len()},
        "runs": summaries,
    });
    std::fs::write(
        args.out.join("storm.json"),
        serde_json::to_vec_pretty(&summary)?,
    )
    .context("writing storm.json")?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
