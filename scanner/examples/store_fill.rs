//! Fills a verdict store with N realistic verdicts, then restarts (a fresh process) and reports
//! time-to-ready and RSS after random lookups — the "1 M verdicts, ≤ 150 MiB, ready ≤ 2 s" check.
//!
//! `cargo run -p verdict-scanner --release --example store_fill -- --count 1000000 --dir /tmp/x`

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use store_support::{TRUST, allow, fp, key};
use verdict_scanner::store::{
    Lookup, SignerKind, SledStore, StoreOptions, VerdictSigner, VerdictStore,
};

#[derive(Parser, Debug)]
struct Args {
    /// Number of verdicts to store.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Store directory (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Verdict key file (generated if missing); default `<dir>.key`.
    #[arg(long)]
    key: Option<PathBuf>,
    /// sled cache capacity in MiB.
    #[arg(long, default_value_t = StoreOptions::default().cache_capacity_bytes / (1024 * 1024))]
    cache_mib: u64,
    /// Verdicts per durable batch while filling.
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Certificate fingerprints per verdict (each is an index entry): leaf, intermediate, root.
    #[arg(long, default_value_t = 3)]
    fingerprints: usize,
    /// Random lookups after reopening.
    #[arg(long, default_value_t = 100_000)]
    gets: u64,
    /// Only reopen and look up (what the fill step runs in a fresh process).
    #[arg(long)]
    reopen_only: bool,
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let args = Args::parse();
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.key", args.dir.display())));
    let (signer, _) = VerdictSigner::generate_if_missing(&key_path, SignerKind::HmacSha256)?;
    let opts = StoreOptions {
        cache_capacity_bytes: args.cache_mib * 1024 * 1024,
        ..StoreOptions::default()
    };
    if args.reopen_only {
        return reopen(&args, signer, opts, started);
    }
    fill(&args, signer, opts)?;
    // Restart: a fresh process, so the fill's allocations do not count.
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .arg("--reopen-only")
        .status()
        .context("re-running for the reopen step")?;
    if !status.success() {
        bail!("the reopen step failed: {status}");
    }
    Ok(())
}

fn fill(args: &Args, signer: VerdictSigner, opts: StoreOptions) -> anyhow::Result<()> {
    let store = SledStore::open(&args.dir, signer, opts)?;
    println!(
        "fill: opened {} ({:?})",
        args.dir.display(),
        store.open_outcome()
    );
    let pb = ProgressBar::new(args.count);
    pb.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} verdicts ({per_sec}, eta {eta})",
    )?);
    let fps: Vec<String> = ["leaf", "intermediate", "root", "tsa-leaf", "tsa-root"]
        .iter()
        .cycle()
        .take(args.fingerprints)
        .enumerate()
        .map(|(i, name)| fp(&format!("{name}-{i}")))
        .collect();
    let valid_until = Utc::now() + chrono::Duration::days(365);
    let t = Instant::now();
    let mut n = 0;
    while n < args.count {
        let end = (n + args.batch).min(args.count);
        let batch: Vec<_> = (n..end)
            .map(|i| (key(i), allow(&key(i), &fps, Some(valid_until))))
            .collect();
        store.put_many(&batch)?;
        pb.inc(end - n);
        n = end;
    }
    pb.finish();
    let took = t.elapsed();
    println!(
        "fill: {} verdicts in {:.1} s ({:.0}/s, batches of {}), {} stored, {:.0} MiB on disk, RSS {}",
        args.count,
        took.as_secs_f64(),
        args.count as f64 / took.as_secs_f64(),
        args.batch,
        store.len(),
        store.size_on_disk()? as f64 / 1048576.0,
        rss()
    );
    Ok(())
}

fn reopen(
    args: &Args,
    signer: VerdictSigner,
    opts: StoreOptions,
    started: Instant,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let store = SledStore::open(&args.dir, signer, opts)?;
    let open_took = t.elapsed();
    println!(
        "reopen: ready in {:.3} s (open {:.3} s, process start to ready {:.3} s), {} verdicts, {:?}, RSS {}",
        open_took.as_secs_f64(),
        open_took.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        store.len(),
        short(store.open_outcome()),
        rss()
    );
    let total = store.len().max(1);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let now = Utc::now();
    let (mut hits, mut misses) = (0u64, 0u64);
    let t = Instant::now();
    for _ in 0..args.gets {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match store.get(&key(x % total), TRUST, now)? {
            Lookup::Hit(_) => hits += 1,
            Lookup::Miss(_) => misses += 1,
        }
    }
    let took = t.elapsed().max(Duration::from_nanos(1));
    println!(
        "reopen: {} random gets in {:.2} s ({:.0}/s, {:.1} µs each): {hits} hits, {misses} misses; RSS {}",
        args.gets,
        took.as_secs_f64(),
        args.gets as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / args.gets.max(1) as f64,
        rss()
    );
    if misses > 0 {
        bail!("{misses} lookups missed: every key 0..count was stored");
    }
    Ok(())
}

fn short(o: &verdict_scanner::store::OpenOutcome) -> String {
    format!("{o:?}").chars().take(120).collect()
}

/// `VmRSS (peak VmHWM)` from /proc/self/status.
fn rss() -> String {
    let status = std::fs::read_to_string(Path::new("/proc/self/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} MiB", kb / 1024.0))
            .unwrap_or_else(|| "?".to_owned())
    };
    format!("{} (peak {})", field("VmRSS:"), field("VmHWM:"))
}
