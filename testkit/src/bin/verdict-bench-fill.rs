//! `verdict-bench-fill --data-dir DIR --count N`: adds N verdicts to the store of a stopped
//! `verdict serve` (benches/load/rss.sh: "RSS with 1 M stored verdicts, ready after restart").
//!
//! Each new verdict is a copy of a real one already in `DIR/store` (written by `verdict serve`
//! after verifying a signed image), so it carries the same reports, evidence, expiry and trust
//! configuration fingerprint as the server's own; only the subject changes. Subject `n` is
//! `<registry>/bench/fill-<n % 100>@sha256:<n as 64 decimal digits>` with the registry of the
//! copied verdict, which is what benches/load/random-keys.lua asks for. Entries are signed with
//! `DIR/verdict.key`, so `verdict serve --data-dir DIR` serves them as hits.
//!
//! Built only with `--features verdict-testkit/bench-store`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use verdict_scanner::store::{
    SledStore, StoreOptions, StoredVerdict, SubjectKey, VerdictSigner, VerdictStore,
};

#[derive(Debug, Parser)]
#[command(
    name = "verdict-bench-fill",
    about = "Adds N copies of a real stored verdict under synthetic subjects"
)]
struct Args {
    /// `verdict serve --data-dir` of a stopped server holding at least one allowed verdict.
    #[arg(long)]
    data_dir: PathBuf,
    /// Verdicts to add.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Verdicts per durable batch.
    #[arg(long, default_value_t = 1000)]
    batch: u64,
}

/// The subject of synthetic verdict `n` under `registry` (see the module docs).
fn subject(registry: &str, n: u64) -> Result<SubjectKey> {
    SubjectKey::from_parts(
        None,
        registry,
        &format!("bench/fill-{}", n % 100),
        &format!("sha256:{n:064}"),
    )
    .with_context(|| format!("synthetic subject {n}"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.batch >= 1, "--batch must be at least 1");
    let key_path = args.data_dir.join("verdict.key");
    let signer = VerdictSigner::load(&key_path).with_context(|| {
        format!(
            "loading {}: run `verdict serve --data-dir {}` once first",
            key_path.display(),
            args.data_dir.display()
        )
    })?;
    let store_dir = args.data_dir.join("store");
    let store =
        SledStore::open(&store_dir, signer, StoreOptions::default()).with_context(|| {
            format!(
                "opening {} (is verdict serve still running?)",
                store_dir.display()
            )
        })?;
    let (template_key, template) = store
        .iter_all()
        .filter_map(|e| e.ok())
        .find_map(|e| match (e.key, e.verdict) {
            (Some(k), Ok(v)) if k.namespace().is_none() && v.result.is_success => Some((k, v)),
            _ => None,
        })
        .with_context(|| {
            format!(
                "{} holds no allowed verdict to copy: let verdict serve verify a signed image first",
                store_dir.display()
            )
        })?;
    let registry = template_key.registry().to_owned();
    println!(
        "fill: copying the verdict of {} (trust configuration {}) to {} subjects under {registry}/bench/fill-*",
        template_key, template.result.trust_config_fingerprint, args.count
    );
    let before = store.len();
    let started = Instant::now();
    let mut n = 0;
    while n < args.count {
        let end = (n + args.batch).min(args.count);
        let batch = (n..end)
            .map(|i| {
                let key = subject(&registry, i)?;
                Ok((key.clone(), copy_for(&template, &key)))
            })
            .collect::<Result<Vec<_>>>()?;
        store.put_many(&batch).context("writing a batch")?;
        n = end;
        if n % 100_000 == 0 || n == args.count {
            println!(
                "fill: {n}/{} in {:.1} s",
                args.count,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let after = store.len();
    if after < before + args.count {
        bail!(
            "the store holds {after} verdicts after adding {} to {before}: some subjects collided",
            args.count
        );
    }
    println!(
        "fill: {after} verdicts stored ({:.0} MiB on disk) in {:.1} s",
        store.size_on_disk()? as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `template` re-addressed to `key`: subject and digest change, everything else is kept.
fn copy_for(template: &StoredVerdict, key: &SubjectKey) -> StoredVerdict {
    let mut v = template.clone();
    let subject = format!("{}/{}@{}", key.registry(), key.repository(), key.digest());
    for report in &mut v.result.reports {
        if report.subject == v.result.subject {
            report.subject = subject.clone();
        }
    }
    v.result.subject = subject;
    v.result.digest = key.digest().to_string();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_subjects_match_verdict_bench_and_the_lua_script() {
        // Same literal as verdict-bench's test and benches/load/random-keys.lua's format.
        let key = subject("127.0.0.1:5000", 107).unwrap();
        assert_eq!(
            key.to_string(),
            format!("127.0.0.1:5000/bench/fill-7@sha256:{}107", "0".repeat(61))
        );
    }
}
