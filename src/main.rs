//! `verdict`: pre-verifies container image signatures and answers OPA Gatekeeper.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Both ring and aws-lc-rs are in the dependency tree: pick one provider before any TLS use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    if let Err(e) = cli::init_tracing(&cli.log, cli.log_format) {
        eprintln!("verdict: {e:#}");
        return ExitCode::from(commands::EXIT_USAGE);
    }
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("verdict: {e:#}");
            ExitCode::from(commands::EXIT_USAGE)
        }
    }
}
