//! `verdict serve` under the inputs an attacker or a busy CI pipeline sends: a flood of random
//! digests and namespaces must not grow the store or the process, and an image signed seconds
//! after it was first looked up is admitted seconds later, not after the definitive-deny TTL.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sha2::Digest as _;
use verdict_testkit::DockerRegistry;
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VerdictServer, item_verdict};

/// Bytes under `dir`.
fn disk_usage(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A docker-registry, a code-signing certificate, and `verdict serve` trusting it.
async fn start() -> Result<(
    DockerRegistry,
    verdict_testkit::pki::TestCert,
    VerdictServer,
)> {
    let registry = DockerRegistry::start().await?;
    let cert = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let server = VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), ratify_config(&cert))
            .plain_http(&registry.host_port())
            .args(["--verify-deadline-ms", "10000"]),
    )
    .await?;
    Ok((registry, cert, server))
}

/// Keys flooded, as the issue asks: random digests under random namespaces.
const FLOOD_KEYS: usize = 100_000;
/// Keys per request and requests in flight (200 pending verifications, under the 256 limit).
const BATCH: usize = 100;
const CLIENTS: usize = 2;
/// Growth allowed while flooding: the store may not grow at all beyond sled's own bookkeeping,
/// and the process stays within the memory target of the design (150 MiB).
const MAX_STORE_GROWTH: u64 = 1024 * 1024;
const MAX_RSS_KIB: u64 = 150 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_digests_and_namespaces_grows_neither_store_nor_memory() -> Result<()> {
    let (registry, cert, server) = start().await?;
    let host = registry.host_port();
    let client = registry.client();
    let pushed = client.push_image("flood/signed", "v1").await?;
    push_notation_signature(&client, "flood/signed", &pushed, &cert).await?;
    let signed = format!("{host}/flood/signed@{}", pushed.digest);
    let r = server.post_keys(VERIFY_V1, &[&signed]).await?;
    assert_eq!(item_verdict(&r, &signed)?, Ok(true), "{r}");

    let pid = server.pid().context("server pid")?;
    let store_before = disk_usage(&server.store_dir());
    let started = Instant::now();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut peak_rss = 0;
    for round in 0..FLOOD_KEYS / (BATCH * CLIENTS) {
        let requests = (0..CLIENTS).map(|c| {
            let keys: Vec<String> = (0..BATCH)
                .map(|i| {
                    let n = (round * CLIENTS + c) * BATCH + i;
                    let hex = hex::encode(sha2::Sha256::digest(n.to_le_bytes()));
                    format!("[ns-{}]{host}/flood/app@sha256:{hex}", &hex[..12])
                })
                .collect();
            let server = &server;
            async move {
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let r = server.post_keys(VERIFY_V1, &refs).await?;
                keys.iter()
                    .map(|k| item_verdict(&r, k))
                    .collect::<Result<Vec<_>>>()
            }
        });
        for answers in futures::future::join_all(requests).await {
            for a in answers? {
                let label = match a {
                    Ok(true) => "allowed".to_string(),
                    Ok(false) => "denied".to_string(),
                    Err(e) => e.split(':').next().unwrap_or_default().to_string(),
                };
                *outcomes.entry(label).or_default() += 1;
            }
        }
        if round % 50 == 0 {
            // The signed image keeps being answered from the store, under any namespace.
            let key = format!("[ns-round-{round}]{signed}");
            let r = server.post_keys(VERIFY_V1, &[&key]).await?;
            assert_eq!(item_verdict(&r, &key)?, Ok(true), "during the flood: {r}");
            peak_rss = peak_rss.max(memory_kib(pid)?.0);
        }
    }
    let elapsed = started.elapsed();
    let store_after = disk_usage(&server.store_dir());
    let (rss, hwm) = memory_kib(pid)?;
    eprintln!(
        "flood: {FLOOD_KEYS} keys in {elapsed:?}: {outcomes:?}; store {store_before} -> {store_after} bytes; RSS {rss} KiB (peak sampled {peak_rss}, HWM {hwm})"
    );
    assert_eq!(
        outcomes.get("allowed"),
        None,
        "a random digest was allowed: {outcomes:?}"
    );
    assert!(
        outcomes.get("denied").copied().unwrap_or(0) > FLOOD_KEYS / 2,
        "the flood was not verified (so it proves nothing): {outcomes:?}"
    );
    assert!(
        store_after <= store_before + MAX_STORE_GROWTH,
        "the store grew from {store_before} to {store_after} bytes"
    );
    assert!(
        hwm <= MAX_RSS_KIB,
        "peak RSS {hwm} KiB over {MAX_RSS_KIB} KiB"
    );
    let metrics = server.metrics().await?;
    let stored = metrics
        .lines()
        .find_map(|l| l.strip_prefix("verdict_store_entries "))
        .context("verdict_store_entries in /metrics")?;
    assert_eq!(stored.trim(), "1", "store entries after the flood");
    drop(registry);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_signed_two_seconds_after_its_first_lookup_is_admitted_five_seconds_later()
-> Result<()> {
    let (registry, cert, server) = start().await?;
    let host = registry.host_port();
    let client = registry.client();
    // Pushed, not yet signed: the CI pipeline signs right after.
    let pushed = client.push_image("late/app", "v1").await?;
    let key = format!("{host}/late/app:v1");
    let first = Instant::now();
    let r = server.post_keys(VERIFY_V1, &[&key]).await?;
    assert_eq!(item_verdict(&r, &key)?, Ok(false), "unsigned yet: {r}");

    tokio::time::sleep_until((first + Duration::from_secs(2)).into()).await;
    push_notation_signature(&client, "late/app", &pushed, &cert).await?;
    tokio::time::sleep_until((first + Duration::from_secs(5)).into()).await;
    let r = server.post_keys(VERIFY_V1, &[&key]).await?;
    assert_eq!(
        item_verdict(&r, &key)?,
        Ok(true),
        "signed 2 s after the first lookup, still denied 5 s after it: {r}\n{}",
        server.log_tail()
    );
    drop(registry);
    Ok(())
}
