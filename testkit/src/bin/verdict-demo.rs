//! `verdict-demo [VERDICT_BIN]`: runs [`verdict_testkit::demo`] and exits 0 only when the signed
//! image is allowed and the unsigned one denied. `make demo` builds and runs it.

use std::path::PathBuf;
use std::process::ExitCode;

use verdict_testkit::demo;

#[tokio::main]
async fn main() -> ExitCode {
    let bin = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(demo::default_verdict_bin);
    let outcome = tokio::select! {
        r = demo::run(&bin, |line| println!("{line}")) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("verdict-demo: interrupted; stopped the registry and verdict, removed temp dirs");
            return ExitCode::from(130);
        }
    };
    match outcome {
        Ok(o) if o.succeeded() => {
            println!("demo passed: the signed image was allowed, the unsigned one denied");
            ExitCode::SUCCESS
        }
        Ok(o) => {
            for p in o.problems() {
                eprintln!("demo FAILED: {p}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("demo FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}
