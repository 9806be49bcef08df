//! `verdict revalidate`: asks a running server to re-verify stored verdicts (`POST /revalidate`
//! on its ops port) and follows the run (`GET /revalidate/{id}`) with a progress bar.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::EXIT_USAGE;
use crate::cli::{OutputFormat, RevalidateArgs};

pub fn run(args: &RevalidateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(revalidate(args)) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("verdict: {e:#}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

async fn revalidate(args: &RevalidateArgs) -> anyhow::Result<ExitCode> {
    let selection = match (&args.key, &args.scope) {
        (Some(k), _) => json!({"key": k}),
        (None, Some(s)) => json!({"scope": s}),
        (None, None) => json!("all"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;
    let base = args.ops.trim_end_matches('/');
    let resp = http
        .post(format!("{base}/revalidate"))
        .json(&selection)
        .send()
        .await
        .with_context(|| format!("cannot reach the server's ops port {base} (--ops)"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{base}/revalidate answered {status}: {}", body.trim());
    }
    let started: Value = serde_json::from_str(&body)
        .with_context(|| format!("{base}/revalidate answered non-JSON: {body}"))?;
    let id = started["id"].as_u64().context("the answer has no run id")?;
    let bar = match args.output {
        OutputFormat::Text => ProgressBar::new(0),
        OutputFormat::Json => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("revalidation run {id}"));
    let report = loop {
        let report: Value = http
            .get(format!("{base}/revalidate/{id}"))
            .send()
            .await
            .with_context(|| format!("cannot follow run {id} at {base}"))?
            .error_for_status()
            .with_context(|| format!("following run {id}"))?
            .json()
            .await
            .context("the run report is not JSON")?;
        bar.set_length(report["total"].as_u64().unwrap_or(0));
        bar.set_position(report["done"].as_u64().unwrap_or(0));
        if report["state"] != "running" {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => {
            println!(
                "revalidated {} of {} ({}): {} allowed, {} revoked, {} denied, {} without a verdict{}",
                n("done"),
                n("total"),
                report["selection"].as_str().unwrap_or_default(),
                n("allowed"),
                n("revoked"),
                n("denied"),
                n("errors"),
                if report["truncated"] == true {
                    " — more matched than one run takes (--revalidate-max); the rest are verified at lookup"
                } else {
                    ""
                }
            );
            if let Some(e) = report["lastError"].as_str() {
                println!("last error: {e}");
            }
        }
    }
    Ok(if n("errors") > 0 {
        ExitCode::from(super::EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}
