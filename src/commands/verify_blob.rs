//! `verdict verify-blob FILE --bundle B --sigstore-trusted-root R`: one Sigstore bundle over a
//! file, verified offline, printed for people or as JSON.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use regex::Regex;
use serde_json::json;
use verdict_scanner::cosign::{
    BlobOutcome, KeylessRequirements, Matcher, SigstoreTrustRoot, verify_blob,
};

use super::{EXIT_INVALID, EXIT_USAGE};
use crate::cli::{OutputFormat, VerifyBlobArgs};

pub fn run(args: &VerifyBlobArgs) -> anyhow::Result<ExitCode> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
    };
    let blob = read(&args.file, "file")?;
    let bundle = read(&args.bundle, "bundle")?;
    let root = SigstoreTrustRoot::from_trusted_root_json(&read(
        &args.sigstore_trusted_root,
        "Sigstore trusted root",
    )?)
    .with_context(|| format!("{}", args.sigstore_trusted_root.display()))?;
    if root.certificate_authorities.is_empty() {
        anyhow::bail!(
            "the trusted root {} has no certificateAuthorities: it cannot verify a Fulcio certificate",
            args.sigstore_trusted_root.display()
        );
    }
    let identity = matcher(
        args.certificate_identity.as_deref(),
        args.certificate_identity_regexp.as_deref(),
        "--certificate-identity-regexp",
    )?;
    let issuer = matcher(
        args.certificate_oidc_issuer.as_deref(),
        args.certificate_oidc_issuer_regexp.as_deref(),
        "--certificate-oidc-issuer-regexp",
    )?;
    let unconstrained = [
        identity.is_none().then_some("identity"),
        issuer.is_none().then_some("OIDC issuer"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let any = || Matcher::Pattern(Regex::new("").unwrap_or_else(|_| unreachable!()));
    let req = KeylessRequirements {
        identity: identity.unwrap_or_else(any),
        issuer: issuer.unwrap_or_else(any),
        ct_log_verify: true,
    };

    let outcome = match verify_blob(&blob, &bundle, Arc::new(root), req, Utc::now()) {
        BlobOutcome::Checked(o) => o,
        BlobOutcome::NotASignature { predicate_type } => {
            eprintln!(
                "verdict: {} is an attestation ({predicate_type}), not a signature of {}",
                args.bundle.display(),
                args.file.display()
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        BlobOutcome::NotABundle { reason } => {
            eprintln!(
                "verdict: {} is not a Sigstore bundle: {reason}",
                args.bundle.display()
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Json => {
            let value = json!({
                "isSuccess": outcome.is_success,
                "message": outcome.message,
                "errorReason": outcome.error_reason,
                "extensions": outcome.extensions(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "{}: {}",
                args.file.display(),
                if outcome.is_success {
                    "VALID"
                } else {
                    "INVALID"
                }
            )?;
            for v in outcome.signatures.iter().flat_map(|s| &s.verifications) {
                for line in &v.summary {
                    writeln!(out, "  {line}")?;
                }
                if let Some(e) = &v.error {
                    writeln!(out, "  error: {e}")?;
                }
            }
            if outcome.signatures.is_empty() {
                writeln!(out, "  error: {}", outcome.message)?;
            }
        }
    }
    if !unconstrained.is_empty() {
        eprintln!(
            "verdict: warning: the signer's {} was not checked (pass --certificate-identity and --certificate-oidc-issuer to require them)",
            unconstrained.join(" and ")
        );
    }
    Ok(if outcome.is_success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn matcher(
    exact: Option<&str>,
    pattern: Option<&str>,
    flag: &str,
) -> anyhow::Result<Option<Matcher>> {
    Ok(match (exact, pattern) {
        (Some(s), _) => Some(Matcher::Exact(s.to_owned())),
        (None, Some(p)) => {
            Some(Matcher::Pattern(Regex::new(p).with_context(|| {
                format!("{flag} {p:?} is not a regular expression")
            })?))
        }
        (None, None) => None,
    })
}
