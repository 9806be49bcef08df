//! `verdict config check`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use verdict_crds::{LoadReport, Loaded, Resource, load_path};

use super::EXIT_INVALID;
use crate::cli::{CheckArgs, OutputFormat};

fn label(l: &Loaded<Resource>) -> String {
    let r = &l.resource;
    match r.namespace() {
        Some(ns) => format!("{}/{ns}/{}", r.kind(), r.name()),
        None => format!("{}/{}", r.kind(), r.name()),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn text(report: &LoadReport, out: &mut impl Write) -> std::io::Result<()> {
    for l in &report.resources {
        let state = if l.has_errors { "invalid" } else { "ok" };
        writeln!(out, "{state:<8} {} ({})", label(l), l.source)?;
    }
    for d in &report.diagnostics {
        writeln!(out, "{d}")?;
    }
    let invalid = report.resources.iter().filter(|l| l.has_errors).count();
    writeln!(
        out,
        "summary: {} in {} ({invalid} invalid), {}, {}",
        plural(report.resources.len(), "resource"),
        plural(report.files.len(), "file"),
        plural(report.error_count(), "error"),
        plural(report.warning_count(), "warning"),
    )
}

fn json_report(report: &LoadReport) -> serde_json::Value {
    let resources: Vec<_> = report
        .resources
        .iter()
        .map(|l| {
            json!({
                "kind": l.resource.kind().as_str(),
                "name": l.resource.name(),
                "namespace": l.resource.namespace(),
                "file": l.source.file,
                "line": l.source.line,
                "valid": !l.has_errors,
            })
        })
        .collect();
    json!({
        "files": report.files,
        "resources": resources,
        "diagnostics": report.diagnostics,
        "errors": report.error_count(),
        "warnings": report.warning_count(),
    })
}

pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let report =
        load_path(&args.path).with_context(|| "cannot check the configuration".to_string())?;
    tracing::debug!(
        files = report.files.len(),
        resources = report.resources.len(),
        "configuration loaded"
    );
    let live = if args.live && !report.has_errors() {
        Some(live(args)?)
    } else {
        None
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Text => {
            text(&report, &mut out)?;
            if let Some(live) = &live {
                live_text(live, &mut out)?;
            }
        }
        OutputFormat::Json => {
            let mut value = json_report(&report);
            if let Some(live) = &live {
                value["trustConfiguration"] = json!(live.trust.as_ref().map_err(String::clone));
                value["keyManagementProviders"] = json!(live.statuses);
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?
        }
    }
    let live_failed = live
        .as_ref()
        .is_some_and(|l| l.trust.is_err() || l.statuses.iter().any(|s| !s.issuccess));
    Ok(if report.has_errors() || live_failed {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `--live` found: each Key Vault provider's status and whether the trust configuration
/// builds (its fingerprints when it does).
struct Live {
    statuses: Vec<verdict_scanner::kmp::KmpStatus>,
    trust: Result<Vec<String>, String>,
}

fn live(args: &CheckArgs) -> anyhow::Result<Live> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let loaded = runtime.block_on(super::trust::TrustRuntime::load(
        &args.path,
        &args.trust,
        &args.registry,
    ));
    Ok(match loaded {
        Ok(rt) => Live {
            statuses: rt.statuses(),
            trust: Ok(rt
                .current()
                .configs()
                .map(|(scope, c)| {
                    let mut line = format!("{} {}", scope.unwrap_or("cluster"), c.fingerprint);
                    if !c.unavailable.is_empty() {
                        line.push_str(" (no verdicts until its key material can be fetched)");
                    }
                    line
                })
                .collect()),
        },
        Err(e) => Live {
            statuses: Vec::new(),
            trust: Err(format!("{e:#}")),
        },
    })
}

fn live_text(live: &Live, out: &mut impl Write) -> std::io::Result<()> {
    for s in &live.statuses {
        let state = if s.issuccess { "fetched" } else { "FAILED" };
        writeln!(
            out,
            "{state:<8} KeyManagementProvider/{} (azurekeyvault)",
            s.name
        )?;
        if !s.issuccess {
            writeln!(out, "         error: {}", s.error)?;
        }
        for p in &s.properties {
            writeln!(
                out,
                "         {:?} {} version {}: {:?}{}",
                p.kind,
                p.name,
                p.version,
                p.state,
                p.fingerprint
                    .as_deref()
                    .map(|f| format!(" {f}"))
                    .unwrap_or_default()
            )?;
        }
    }
    match &live.trust {
        Ok(lines) => {
            for l in lines {
                writeln!(out, "trust configuration {l}")?;
            }
        }
        Err(e) => writeln!(out, "trust configuration: {e}")?,
    }
    Ok(())
}
