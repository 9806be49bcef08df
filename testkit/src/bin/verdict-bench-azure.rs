//! `verdict-bench-azure`: what the Azure path costs a verification (benches/README.md, "Azure").
//!
//! The Entra ID, Key Vault and ACR token-server fakes (HTTPS, test CA) and a real
//! docker-registry with token auth behind the ACR fake; Cosign-signed images whose key is a Key
//! Vault key version; a real `verdict serve` (the binary given, normally the release build) with
//! the pod's workload-identity environment.
//!
//! - **cold**: `--restarts` times, a fresh server (empty store, no tokens, no keys): the time to
//!   ready (Entra token for Key Vault, version listing, key fetch) and its first lookup (Entra
//!   token for ACR, exchange, refresh-token grant, registry reads, verification).
//! - **warm**: one server after its first lookup: misses in the same repository (tokens and keys
//!   warm: registry reads and verification only), misses in new repositories (plus one
//!   refresh-token grant for the new scope), and cache hits.
//!
//! The fakes answer locally, so the figures are Verdict's own cost of the token dance (TLS
//! handshakes, JSON, signature checks), not Azure's latency; the counts show how often it is paid.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use serde_json::json;
use verdict_testkit::azure::{AzureWorld, cosign_signer};
use verdict_testkit::serve::{ServeOptions, VerdictServer};
use verdict_testkit::stats::summary;

const KEY: &str = "cosign-signing";

#[derive(Debug, Parser)]
#[command(
    name = "verdict-bench-azure",
    about = "Cold (Entra + ACR exchange + Key Vault) versus warm verification"
)]
struct Args {
    /// The `verdict` binary (the release build for figures).
    #[arg(long)]
    verdict: PathBuf,
    /// Fresh servers started for the cold figures.
    #[arg(long, default_value_t = 10)]
    restarts: usize,
    /// Images per warm series.
    #[arg(long, default_value_t = 40)]
    images: usize,
    /// Where to write `azure.json`.
    #[arg(long, default_value = "target/bench-azure")]
    out: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict-bench-azure: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn lookup(server: &VerdictServer, key: &str) -> Result<f64> {
    let start = Instant::now();
    let verdict = server.verify_one(key).await?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    ensure!(
        verdict == Ok(true),
        "{key}: {verdict:?}\n{}",
        server.log_tail()
    );
    Ok(ms)
}

async fn run(args: Args) -> Result<()> {
    let world = AzureWorld::start().await?;
    let signer = cosign_signer("bench")?;
    world.add_key(KEY, &signer)?;
    let repos: Vec<String> = (0..args.restarts + args.images + 1)
        .map(|i| format!("bench/r{i}"))
        .collect();
    let repo_refs: Vec<&str> = repos.iter().map(String::as_str).collect();
    let push = world.pusher(&repo_refs).await?;
    eprintln!("pushing {} signed images ...", repos.len() + args.images);
    let mut per_repo = Vec::new();
    for repo in &repos {
        let d = world.push_cosign_signed(&push, repo, "v1", &signer).await?;
        per_repo.push(format!("{}/{repo}@{}", world.registry_host(), d.digest));
    }
    let same_repo = &repos[repos.len() - 1];
    let mut same = Vec::new();
    for i in 0..args.images {
        let d = world
            .push_cosign_signed(&push, same_repo, &format!("s{i}"), &signer)
            .await?;
        same.push(format!(
            "{}/{same_repo}@{}",
            world.registry_host(),
            d.digest
        ));
    }
    let yaml = world.ratify_yaml_keys_only(KEY, "1h");
    let options = || {
        ServeOptions::new(&args.verdict, yaml.clone())
            .envs(world.pod_env())
            .args(world.serve_args())
    };

    // Cold: a fresh server each time.
    let (mut ready, mut first) = (Vec::new(), Vec::new());
    let entra_before = world.entra.requests().len();
    let exchanges_before = world.acr.exchanges();
    for (i, key) in per_repo.iter().take(args.restarts).enumerate() {
        let start = Instant::now();
        let mut server = VerdictServer::start(options()).await?;
        ready.push(start.elapsed().as_secs_f64() * 1000.0);
        first.push(lookup(&server, key).await?);
        server.terminate(Duration::from_secs(5));
        eprintln!(
            "cold {}/{}: ready {:.0} ms, first lookup {:.1} ms",
            i + 1,
            args.restarts,
            ready[i],
            first[i]
        );
    }
    let cold_entra = world.entra.requests().len() - entra_before;
    let cold_exchanges = world.acr.exchanges() - exchanges_before;

    // Warm: one server, after its first lookup.
    let server = VerdictServer::start(options()).await?;
    lookup(&server, &same[0]).await?;
    let entra_before = world.entra.requests().len();
    let exchanges_before = world.acr.exchanges();
    let token_requests_before = world.acr.token_requests();
    let mut warm_same = Vec::new();
    for key in &same[1..] {
        warm_same.push(lookup(&server, key).await?);
    }
    let mut warm_new_repo = Vec::new();
    for key in per_repo.iter().skip(args.restarts).take(args.images) {
        warm_new_repo.push(lookup(&server, key).await?);
    }
    let mut hits = Vec::new();
    for key in same.iter().chain(per_repo.iter().skip(args.restarts)) {
        hits.push(lookup(&server, key).await?);
    }
    let warm_entra = world.entra.requests().len() - entra_before;
    let warm_exchanges = world.acr.exchanges() - exchanges_before;
    let warm_token_requests = world.acr.token_requests() - token_requests_before;

    let report = json!({
        "cold": {
            "restarts": args.restarts,
            "time_to_ready_ms": summary(&mut ready),
            "first_lookup_ms": summary(&mut first),
            "entra_requests": cold_entra,
            "acr_exchanges": cold_exchanges,
        },
        "warm": {
            "miss_same_repository_ms": summary(&mut warm_same),
            "miss_new_repository_ms": summary(&mut warm_new_repo),
            "hit_ms": summary(&mut hits),
            "entra_requests": warm_entra,
            "acr_exchanges": warm_exchanges,
            "acr_token_requests": warm_token_requests,
        },
    });
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("azure.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
