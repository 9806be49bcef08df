//! Subcommands.

mod config;
mod events;
mod push;
mod registry;
mod revalidate;
mod scan;
mod serve;
mod trust;
mod verify;
mod verify_blob;

use std::process::ExitCode;

use crate::cli::{Command, ConfigCommand};

/// Exit status for configuration errors found by a check.
pub const EXIT_INVALID: u8 = 1;
/// Exit status for usage errors and paths that cannot be read.
pub const EXIT_USAGE: u8 = 2;

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Config(ConfigCommand::Check(args)) => config::check(&args),
        Command::Verify(args) => verify::run(&args),
        Command::VerifyBlob(args) => verify_blob::run(&args),
        Command::Scan(args) => scan::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Revalidate(args) => revalidate::run(&args),
    }
}
