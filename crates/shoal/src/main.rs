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
    raise_open_file_limit();
    match cli::run(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

/// Raises the soft limit on open files to the hard limit (at most 2^20).
/// Each peer connection takes a socket and, on plain TCP, a second
/// descriptor for `sendfile`; with the daemon's 500 peers and its open data
/// files, the common soft limit of 1024 is too low, and running out would
/// refuse connections and fail file opens.
fn raise_open_file_limit() {
    #[cfg(target_os = "linux")]
    {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read or write only `l`, a valid
        // rlimit for the call.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return;
            }
            let want = l.rlim_max.min(1 << 20);
            if l.rlim_cur < want {
                l.rlim_cur = want;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    tracing::debug!("could not raise the open-file limit");
                }
            }
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
