//! `verdict verify IMAGE --config DIR`: one verification, now, printed for people or as Ratify's
//! v1 external-data value.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use verdict_scanner::registry::ImageReference;
use verdict_scanner::report::VerificationResult;
use verdict_scanner::verify::ImageVerifier;

use super::{EXIT_INVALID, EXIT_USAGE};
use crate::cli::{OutputFormat, VerifyArgs};

pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let reference = ImageReference::parse(&args.image)
        .with_context(|| format!("invalid image reference {:?}", args.image))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let trust = runtime
        .block_on(super::trust::TrustRuntime::load(
            &args.config,
            &args.trust,
            &args.registry,
        ))?
        .current();
    let config = Arc::clone(trust.for_namespace(args.namespace.as_deref())?);
    let registry = super::registry::client(&args.registry, &config.store)?;
    let verifier = ImageVerifier::new(registry, config);
    let result = match runtime.block_on(verifier.verify(&reference, Utc::now())) {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_transient() {
                "no verdict (transient; retry later)"
            } else {
                "no verdict"
            };
            eprintln!("verdict: {kind}: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Text => table(&result, &mut out)?,
        OutputFormat::Json => {
            let trace_id = format!("verify-{}", Utc::now().timestamp_nanos_opt().unwrap_or(0));
            let value = verdict_cache_api::wire::ratify::v1_value(&result, &trace_id, Utc::now());
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
    }
    Ok(if result.is_success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn table(result: &VerificationResult, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "subject:  {}", result.subject)?;
    writeln!(out, "digest:   {}", result.digest)?;
    writeln!(
        out,
        "verdict:  {}",
        if result.is_success {
            "ALLOWED"
        } else {
            "DENIED"
        }
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<6} {:<20} {:<20} {:<46} message",
        "result", "verifier", "signature", "artifact type"
    )?;
    for r in &result.reports {
        let digest: String = r.reference_digest.chars().take(19).collect();
        let verifier = if r.verifier_name.is_empty() {
            "-"
        } else {
            &r.verifier_name
        };
        writeln!(
            out,
            "{:<6} {:<20} {:<20} {:<46} {}{}",
            if r.is_success { "ok" } else { "FAIL" },
            verifier,
            if digest.is_empty() { "-" } else { &digest },
            if r.artifact_type.is_empty() {
                "-"
            } else {
                &r.artifact_type
            },
            r.message,
            if r.error_reason.is_empty() {
                String::new()
            } else {
                format!(" [{}]", r.error_reason)
            }
        )?;
    }
    Ok(())
}
