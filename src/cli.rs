//! Command-line interface: every flag can also be set with a `VERDICT_*` environment variable.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "verdict",
    version,
    about = "Pre-verifies container image signatures and answers OPA Gatekeeper from a signed verdict store"
)]
pub struct Cli {
    /// Log filter, e.g. `info` or `verdict=debug,warn`.
    #[arg(long, global = true, env = "VERDICT_LOG", default_value = "warn")]
    pub log: String,

    /// Log format on standard error.
    #[arg(long, global = true, env = "VERDICT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with Ratify configuration resources (Store, Verifier, KeyManagementProvider, Policy).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load Ratify v1beta1 resources from a file or directory and report every problem.
    ///
    /// Exit status: 0 when there is no error (warnings allowed), 1 when there are errors,
    /// 2 when the path cannot be read.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A YAML file or a directory of `*.yaml` / `*.yml` files.
    #[arg(env = "VERDICT_CONFIG")]
    pub path: PathBuf,

    /// Output format.
    #[arg(long, env = "VERDICT_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Logs go to standard error so command output on standard out stays clean.
pub fn init_tracing(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter `{filter}` (--log / VERDICT_LOG)"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot initialise logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_check_parses_path_and_output() {
        let cli =
            Cli::try_parse_from(["verdict", "config", "check", "dir", "--output", "json"]).unwrap();
        let Command::Config(ConfigCommand::Check(args)) = cli.command;
        assert_eq!(args.path, PathBuf::from("dir"));
        assert_eq!(args.output, OutputFormat::Json);
    }
}
