//! `shoal`: a BitTorrent-compatible peer-to-peer node. This file only parses
//! the command line, sets up logging and maps errors to exit codes; each
//! command lives in its own module under `cli/`.
//!
//! Exit codes: 0 success; 1 the operation failed (I/O, network);
//! 2 invalid input or usage (a torrent or magnet that does not parse, a bad option).
//! Errors are printed as one line on stderr: `error: <what>: <why>`.
use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_logging(args.verbose);
    match cli::run(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the level chosen by `-v`.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
