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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Text => text(&report, &mut out)?,
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json_report(&report))?
        )?,
    }
    Ok(if report.has_errors() {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}
