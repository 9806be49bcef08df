//! `verdict-bench`: setup and measurement steps of Verdict's load benchmark (benches/load/).
//!
//! - `env --dir DIR --verdict BIN`: a docker-registry with N Notation-signed images
//!   (`bench/app-<i>:v1`), a real `verdict serve` (data dir `DIR/data`) trusting their signer,
//!   and the store warmed: for the request bodies `DIR/body-1.json` (one key) and
//!   `DIR/body-N.json` (all N keys) the first POST is a miss verified inline, the second must be
//!   answered from the store (checked on `/metrics`) and its bytes are saved as
//!   `DIR/answer-1.json` / `DIR/answer-N.json`. Writes `DIR/env.sh` (URLs, pid, TLS files) and
//!   runs until SIGTERM/SIGINT, then stops Verdict and the registry. Used by run.sh.
//! - `lookups --ops URL`: prints `hits=<n> misses=<n>` from Verdict's `/metrics`.
//! - `rss --dir DIR --verdict BIN --fill BIN`: the memory/restart check: warm N real verdicts,
//!   stop Verdict, add `--count` copies with `verdict-bench-fill`, restart and time `/readyz`,
//!   check random stored subjects are hits, load it with wrk over random subjects, and report
//!   VmRSS/VmHWM. Used by rss.sh.
//!
//! Over 600 lines because one binary for every step of the load benchmark (environment, fill,
//! measure), so the script drives one tool and the steps share their setup code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use verdict_testkit::demo;
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::registry::DockerRegistry;
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VerdictServer};

const LOOKUP_COUNT: &str = "verdict_lookup_duration_seconds_count{";

#[derive(Debug, Parser)]
#[command(
    name = "verdict-bench",
    about = "Setup steps of Verdict's load benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Registry, signed images, a warmed `verdict serve` and the captured answers; runs until SIGTERM.
    Env {
        /// Output directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// The `verdict` binary.
        #[arg(long)]
        verdict: PathBuf,
        /// Number of signed images (the batch request asks for all of them).
        #[arg(long, default_value_t = 10)]
        images: usize,
    },
    /// Print Verdict's cache hit and miss counts.
    Lookups {
        /// Verdict's operations URL (`http://host:port`).
        #[arg(long)]
        ops: String,
    },
    /// RSS and time to ready of `verdict serve` with `--count` more stored verdicts.
    Rss {
        /// Working directory (created; the store lands in `DIR/data/store`).
        #[arg(long)]
        dir: PathBuf,
        /// The `verdict` binary.
        #[arg(long)]
        verdict: PathBuf,
        /// The `verdict-bench-fill` binary.
        #[arg(long)]
        fill: PathBuf,
        /// Verdicts to add to the store.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Restarts to time.
        #[arg(long, default_value_t = 3)]
        restarts: usize,
        /// The wrk Lua script asking for random stored subjects (benches/load/random-keys.lua).
        #[arg(long)]
        wrk_script: PathBuf,
        /// Length of the wrk run, seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// wrk connections.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// An extra argument for `verdict serve` (repeatable), e.g. `--serve-arg=--memory-cache-entries=0`.
        #[arg(long = "serve-arg", allow_hyphen_values = true)]
        serve_args: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Env {
            dir,
            verdict,
            images,
        } => env(&dir, &verdict, images).await,
        Command::Lookups { ops } => lookups(&ops).await.map(|l| {
            println!("hits={} misses={}", l.hits, l.misses);
        }),
        Command::Rss {
            dir,
            verdict,
            fill,
            count,
            restarts,
            wrk_script,
            seconds,
            connections,
            serve_args,
        } => {
            rss(RssArgs {
                dir,
                verdict,
                fill,
                count,
                restarts,
                wrk_script,
                seconds,
                connections,
                serve_args,
            })
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A registry with signed images and a `verdict serve` trusting their signer.
struct Setup {
    registry: DockerRegistry,
    server: VerdictServer,
    /// `registry/repository@digest` of each signed image.
    refs: Vec<String>,
}

async fn setup(dir: &Path, verdict: &Path, images: usize, serve_args: &[String]) -> Result<Setup> {
    ensure!(images >= 1, "--images must be at least 1");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let registry = DockerRegistry::start().await?;
    let host = registry.host_port();
    let client = registry.client();
    let cert = CertBuilder::code_signing(demo::SIGNER_SUBJECT)
        .key_alg(KeyAlg::Rsa3072)
        .self_signed()
        .context("generating the signing certificate")?;
    let mut refs = Vec::with_capacity(images);
    for i in 0..images {
        let repo = format!("bench/app-{i}");
        let image = client
            .push_image(&repo, "v1")
            .await
            .with_context(|| format!("pushing {repo}:v1"))?;
        push_notation_signature(&client, &repo, &image, &cert).await?;
        refs.push(format!("{host}/{repo}@{}", image.digest));
    }
    let data_dir = dir.join("data");
    let server = VerdictServer::start(
        ServeOptions::new(verdict, demo::ratify_config(&cert))
            .plain_http(&host)
            .data_dir(&data_dir)
            .args(serve_args),
    )
    .await?;
    eprintln!(
        "verdict-bench: registry {host} with {images} signed images; verdict serve on {} (ops {}), data {}",
        server.listen(),
        server.ops(),
        data_dir.display()
    );
    Ok(Setup {
        registry,
        server,
        refs,
    })
}

/// A Gatekeeper ProviderRequest for `keys`, as bytes.
fn provider_request(keys: &[String]) -> Vec<u8> {
    json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": keys},
    })
    .to_string()
    .into_bytes()
}

async fn env(dir: &Path, verdict: &Path, images: usize) -> Result<()> {
    let _ = std::fs::remove_file(dir.join("env.sh"));
    let s = setup(dir, verdict, images, &[]).await?;
    let ops = format!("http://{}", s.server.ops());
    let url = s.server.url(VERIFY_V1);
    let mut sizes = vec![1];
    if images > 1 {
        sizes.push(images);
    }
    for n in sizes {
        let body = provider_request(&s.refs[..n]);
        write(&dir.join(format!("body-{n}.json")), &body)?;
        let answer = warm_and_capture(&s.server, &ops, &body, &s.refs[..n]).await?;
        write(&dir.join(format!("answer-{n}.json")), &answer)?;
        eprintln!(
            "verdict-bench: {n} key(s): {} request bytes, {} answer bytes (all allowed, all hits)",
            body.len(),
            answer.len()
        );
    }
    let tls = s.server.data_dir().join("tls");
    let env = format!(
        "VERDICT_URL='{url}'\nVERDICT_OPS='{ops}'\nVERDICT_PID='{}'\nTLS_CERT='{}'\nTLS_KEY='{}'\nREGISTRY='{}'\nIMAGES='{images}'\n",
        s.server.pid().context("verdict serve is not running")?,
        tls.join("tls.crt").display(),
        tls.join("tls.key").display(),
        s.registry.host_port(),
    );
    // Written last: its presence tells run.sh that everything is ready.
    write(&dir.join("env.sh.tmp"), env)?;
    std::fs::rename(dir.join("env.sh.tmp"), dir.join("env.sh")).context("publishing env.sh")?;
    wait_for_signal().await?;
    let Setup {
        registry,
        mut server,
        ..
    } = s;
    server.terminate(Duration::from_secs(10));
    drop(registry);
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    Ok(())
}

fn write(path: &Path, content: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}

/// POSTs `body` (a miss the first time: verified inline and stored), then again, requiring the
/// second answer to come from the store; returns the second answer's bytes.
async fn warm_and_capture(
    server: &VerdictServer,
    ops: &str,
    body: &[u8],
    keys: &[String],
) -> Result<Vec<u8>> {
    let first = post(server.https_client(), &server.url(VERIFY_V1), body).await?;
    check_all_allowed(&first, keys).context("the warming request")?;
    expect_hits(server, ops, body, keys)
        .await
        .context("the second request")
}

/// POSTs `body` and requires every key to be allowed and answered from the store (the hit count
/// grew by the number of keys, the miss count did not); returns the answer's bytes.
async fn expect_hits(
    server: &VerdictServer,
    ops: &str,
    body: &[u8],
    keys: &[String],
) -> Result<Vec<u8>> {
    let before = lookups(ops).await?;
    let answer = post(server.https_client(), &server.url(VERIFY_V1), body).await?;
    check_all_allowed(&answer, keys)?;
    let after = lookups(ops).await?;
    ensure!(
        after.misses == before.misses && after.hits >= before.hits + keys.len() as u64,
        "not answered from the store: {before:?} -> {after:?} for {} keys",
        keys.len()
    );
    Ok(answer)
}

async fn post(client: &reqwest::Client, url: &str, body: &[u8]) -> Result<Vec<u8>> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        bail!(
            "POST {url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes.to_vec())
}

/// Every key has an item with `isSuccess: true` and no error, and there is no system error.
fn check_all_allowed(answer: &[u8], keys: &[String]) -> Result<()> {
    let v: Value = serde_json::from_slice(answer).with_context(|| {
        format!(
            "the answer is not JSON: {}",
            String::from_utf8_lossy(answer)
        )
    })?;
    let r = &v["response"];
    if let Some(e) = r["systemError"].as_str().filter(|e| !e.is_empty()) {
        bail!("system error: {e}");
    }
    let items = r["items"].as_array().context("the answer has no items")?;
    for key in keys {
        let item = items
            .iter()
            .find(|i| i["key"] == key.as_str())
            .with_context(|| format!("no item for {key}"))?;
        if let Some(e) = item["error"].as_str().filter(|e| !e.is_empty()) {
            bail!("{key}: error {e}");
        }
        ensure!(
            item["value"]["isSuccess"] == true,
            "{key} was not allowed: {}",
            item["value"]
        );
    }
    Ok(())
}

/// Verdict's lookup counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lookups {
    hits: u64,
    misses: u64,
}

/// Reads the lookup counts from `<ops>/metrics`.
async fn lookups(ops: &str) -> Result<Lookups> {
    let url = format!("{}/metrics", ops.trim_end_matches('/'));
    let client = verdict_testkit::process::http_client(Duration::from_secs(5))?;
    let text = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("GET {url}"))?
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    Ok(Lookups {
        hits: lookup_count(&text, "hit"),
        misses: lookup_count(&text, "miss"),
    })
}

fn lookup_count(metrics: &str, result: &str) -> u64 {
    let label = format!("result=\"{result}\"");
    verdict_testkit::serve::metric_sum(metrics, LOOKUP_COUNT, &[&label]) as u64
}

struct RssArgs {
    dir: PathBuf,
    verdict: PathBuf,
    fill: PathBuf,
    count: u64,
    restarts: usize,
    wrk_script: PathBuf,
    seconds: u64,
    connections: u32,
    serve_args: Vec<String>,
}

/// Memory of a process from `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss: f64,
    hwm: f64,
    anon: f64,
    file: f64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {:.1} MiB (anon {:.1}, file {:.1}), VmHWM {:.1} MiB",
            self.rss, self.anon, self.file, self.hwm
        )
    }
}

fn memory_of(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<f64> {
        let kb = status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .with_context(|| format!("no {name} in {path}"))?;
        Ok(kb / 1024.0)
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

fn server_pid(server: &VerdictServer) -> Result<u32> {
    server.pid().context("verdict serve is not running")
}

/// The synthetic subject `n` written by `verdict-bench-fill` (and asked by random-keys.lua).
fn fill_subject(registry: &str, n: u64) -> String {
    format!("{registry}/bench/fill-{}@sha256:{n:064}", n % 100)
}

async fn rss(a: RssArgs) -> Result<()> {
    for (what, p) in [("--fill", &a.fill), ("--wrk-script", &a.wrk_script)] {
        ensure!(p.is_file(), "{what} {} does not exist", p.display());
    }
    ensure!(
        a.count >= 1 && a.restarts >= 1,
        "--count and --restarts must be at least 1"
    );
    let data = a.dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("removing the previous run's {}", data.display()))?;
    }
    let Setup {
        registry,
        mut server,
        refs,
    } = setup(&a.dir, &a.verdict, 10, &a.serve_args).await?;
    let host = registry.host_port();
    let ops = format!("http://{}", server.ops());
    warm_and_capture(&server, &ops, &provider_request(&refs), &refs).await?;
    let small = memory_of(server_pid(&server)?)?;
    println!(
        "rss: verdict serve with {} stored verdicts: {small}",
        refs.len()
    );

    server.terminate(Duration::from_secs(10));
    let status = std::process::Command::new(&a.fill)
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(["--count", &a.count.to_string()])
        .status()
        .with_context(|| format!("running {}", a.fill.display()))?;
    ensure!(status.success(), "{} failed: {status}", a.fill.display());

    let mut ready = Vec::new();
    for i in 0..a.restarts {
        if i > 0 {
            server.terminate(Duration::from_secs(10));
        }
        let t = Instant::now();
        server
            .restart()
            .await
            .with_context(|| format!("restart:\n{}", server.log_tail()))?;
        let took = t.elapsed().as_secs_f64();
        let mem = memory_of(server_pid(&server)?)?;
        println!(
            "rss: restart {}: /readyz 200 after {took:.3} s (process start to ready, 50 ms polling); {mem}",
            i + 1
        );
        ready.push(took);
    }

    // The restarted server must serve the filled store: real and synthetic subjects are hits.
    let mut sample: Vec<String> = refs.clone();
    let wanted = sample.len() + a.count.min(90) as usize;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while sample.len() < wanted {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let subject = fill_subject(&host, x % a.count);
        if !sample.contains(&subject) {
            sample.push(subject);
        }
    }
    expect_hits(&server, &ops, &provider_request(&sample), &sample)
        .await
        .context("after the restart, stored subjects must be hits")?;
    let before = lookups(&ops).await?;

    let pid = server_pid(&server)?;
    let out_path = a.dir.join("wrk-rss.txt");
    let out_file = std::fs::File::create(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let mut wrk = std::process::Command::new("wrk")
        .args([
            "-c",
            &a.connections.to_string(),
            "-t",
            "2",
            "-d",
            &format!("{}s", a.seconds),
            "--latency",
            "-s",
        ])
        .arg(&a.wrk_script)
        .arg(server.url(VERIFY_V1))
        .env("BENCH_REGISTRY", &host)
        .env("BENCH_COUNT", a.count.to_string())
        .stdout(out_file.try_clone()?)
        .stderr(out_file)
        .spawn()
        .context("running wrk (apt-get install -y wrk)")?;
    // Memory over the run, every 5 s, to show whether it levels off.
    let started = Instant::now();
    let mut next = Duration::from_secs(5);
    let status = loop {
        if let Some(status) = wrk.try_wait()? {
            break status;
        }
        if started.elapsed() >= next {
            println!("rss: load t={:>3} s: {}", next.as_secs(), memory_of(pid)?);
            next += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let wrk_out = std::fs::read_to_string(&out_path)
        .with_context(|| format!("reading {}", out_path.display()))?;
    print!("{wrk_out}");
    ensure!(status.success(), "wrk failed: {status}");
    let after = lookups(&ops).await?;
    let mem = memory_of(pid)?;
    println!("rss: after the load run: {mem}");
    let served = after.hits - before.hits;
    ensure!(
        after.misses == before.misses,
        "{} lookups missed during the load run: every asked subject was stored",
        after.misses - before.misses
    );
    ensure!(served > 0, "the load run made no lookups");
    let worst = ready.iter().cloned().fold(0.0, f64::max);
    println!(
        "RSSRESULT stored={} ready_max_s={worst:.3} ready_s={} rss_mib={:.1} hwm_mib={:.1} anon_mib={:.1} file_mib={:.1} hits={served} misses=0 baseline_rss_mib={:.1}",
        a.count + refs.len() as u64,
        ready
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(","),
        mem.rss,
        mem.hwm,
        mem.anon,
        mem.file,
        small.rss,
    );
    server.terminate(Duration::from_secs(10));
    drop(registry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_counts_come_from_the_histogram_count_lines() {
        let text = "# TYPE verdict_lookup_duration_seconds summary\n\
            verdict_lookup_duration_seconds{result=\"hit\",quantile=\"0.5\"} 0.00001\n\
            verdict_lookup_duration_seconds_sum{result=\"hit\"} 0.5\n\
            verdict_lookup_duration_seconds_count{result=\"hit\"} 12345\n\
            verdict_lookup_duration_seconds_count{result=\"miss\"} 10\n";
        assert_eq!(lookup_count(text, "hit"), 12345);
        assert_eq!(lookup_count(text, "miss"), 10);
        assert_eq!(lookup_count("", "hit"), 0);
    }

    #[test]
    fn only_answers_allowing_every_key_pass() {
        let keys = vec!["r/a@sha256:1".to_string(), "r/b@sha256:2".to_string()];
        let ok = br#"{"response":{"systemError":"","items":[
            {"key":"r/a@sha256:1","value":{"isSuccess":true}},
            {"key":"r/b@sha256:2","value":{"isSuccess":true}}]}}"#;
        check_all_allowed(ok, &keys).unwrap();
        let denied = br#"{"response":{"items":[
            {"key":"r/a@sha256:1","value":{"isSuccess":true}},
            {"key":"r/b@sha256:2","value":{"isSuccess":false}}]}}"#;
        assert!(check_all_allowed(denied, &keys).is_err());
        let errored = br#"{"response":{"items":[
            {"key":"r/a@sha256:1","value":{"isSuccess":true}},
            {"key":"r/b@sha256:2","error":"VERIFY_TIMEOUT: x","value":{"isSuccess":true}}]}}"#;
        assert!(check_all_allowed(errored, &keys).is_err());
        let missing =
            br#"{"response":{"items":[{"key":"r/a@sha256:1","value":{"isSuccess":true}}]}}"#;
        assert!(check_all_allowed(missing, &keys).is_err());
        let system = br#"{"response":{"systemError":"boom","items":[]}}"#;
        assert!(check_all_allowed(system, &keys).is_err());
    }

    #[test]
    fn synthetic_subjects_match_the_fill_and_the_lua_script() {
        // Same literal as verdict-bench-fill's test and benches/load/random-keys.lua's format.
        assert_eq!(
            fill_subject("127.0.0.1:5000", 107),
            format!("127.0.0.1:5000/bench/fill-7@sha256:{}107", "0".repeat(61))
        );
    }
}
