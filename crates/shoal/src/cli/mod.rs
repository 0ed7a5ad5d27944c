//! The command line: the argument types, dispatch to one module per command,
//! and the mapping of errors to exit codes and one-line messages.
//!
//! To add a command: a sibling module with an `Args` struct and a `run`
//! function, a variant in [`Command`], an arm in [`run`].
use clap::{Parser, Subcommand};

pub mod crawl;
pub mod create;
pub mod daemon;
pub mod dht;
pub mod dht_node;
pub mod download;
pub mod info;
pub mod remote;
pub mod save_path;
pub mod search;
pub mod seed;
pub mod tracker;
pub mod verify;

/// `--encryption`: MSE/PE (message stream encryption) of peer connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Encryption {
    /// Try MSE on outgoing connections (plain reconnect if it fails); accept
    /// both. Offered both, pick plaintext after the obfuscated handshake (as
    /// libtorrent does).
    #[default]
    Prefer,
    /// MSE with RC4 only, both ways.
    Require,
    /// Plain BitTorrent only.
    Disable,
}

impl From<Encryption> for shoal_engine::EncryptionPolicy {
    fn from(e: Encryption) -> Self {
        match e {
            Encryption::Prefer => shoal_engine::EncryptionPolicy::Prefer,
            Encryption::Require => shoal_engine::EncryptionPolicy::Require,
            Encryption::Disable => shoal_engine::EncryptionPolicy::Disable,
        }
    }
}

impl From<Encryption> for shoal_daemon::config::Encryption {
    fn from(e: Encryption) -> Self {
        match e {
            Encryption::Prefer => shoal_daemon::config::Encryption::Prefer,
            Encryption::Require => shoal_daemon::config::Encryption::Require,
            Encryption::Disable => shoal_daemon::config::Encryption::Disable,
        }
    }
}

/// Exit code when the operation failed (I/O, network).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code when the input or the options are invalid (same as clap's usage errors).
pub const EXIT_INVALID: u8 = 2;

/// shoal: a BitTorrent-compatible peer-to-peer node.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a .torrent file or a magnet URI holds.
    Info(info::InfoArgs),
    /// Make a .torrent of a file or a directory.
    Create(create::CreateArgs),
    /// Download a torrent from its swarm (then exit, or keep seeding with --seed).
    Download(download::DownloadArgs),
    /// Check a torrent's data, then serve it until interrupted.
    Seed(seed::SeedArgs),
    /// Check a torrent's data against its piece hashes and report bad and missing pieces.
    Verify(verify::VerifyArgs),
    /// Query and use the mainline DHT (BEP 5, 44, 51).
    Dht(dht::DhtArgs),
    /// Run a BitTorrent tracker (HTTP and UDP announces and scrapes, statistics).
    Tracker(tracker::TrackerArgs),
    /// Run the service: many torrents, Transmission RPC and a REST API over HTTP, state in a database.
    Daemon(Box<daemon::DaemonArgs>),
    /// Add a torrent to a running daemon (a .torrent file, a magnet or a URL).
    Add(remote::AddArgs),
    /// List a running daemon's torrents.
    Ls(remote::LsArgs),
    /// Remove a torrent from a running daemon.
    Rm(remote::RmArgs),
    /// Pause a torrent of a running daemon.
    Pause(remote::IdArgs),
    /// Resume a torrent of a running daemon.
    Resume(remote::IdArgs),
    /// Follow a running daemon's torrents with progress bars.
    Watch(remote::WatchArgs),
    /// Find torrents by keywords: trackers' indexes, the DHT keyword index, local indexes.
    Search(search::SearchArgs),
    /// Make a torrent findable: upload it to trackers' indexes, store its keywords in the DHT.
    Publish(search::PublishArgs),
    /// Sample the DHT for torrents (BEP 51), fetch their names (BEP 9) into a local index.
    Crawl(crawl::CrawlArgs),
}

/// Runs one command.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Info(args) => info::run(args),
        Command::Create(args) => create::run(args),
        Command::Download(args) => download::run(args),
        Command::Seed(args) => seed::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Dht(args) => dht::run(args),
        Command::Tracker(args) => tracker::run(args),
        Command::Daemon(args) => daemon::run(*args),
        Command::Add(args) => remote::add(args),
        Command::Ls(args) => remote::ls(args),
        Command::Rm(args) => remote::rm(args),
        Command::Pause(args) => remote::pause_resume(args, false),
        Command::Resume(args) => remote::pause_resume(args, true),
        Command::Watch(args) => remote::watch(args),
        Command::Search(args) => search::run(args),
        Command::Publish(args) => search::run_publish(args),
        Command::Crawl(args) => crawl::run(args),
    }
}

/// An error caused by what the user gave (exit code [`EXIT_INVALID`]).
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// The exit code for an error: [`EXIT_INVALID`] when any error in its chain is
/// about the input (a torrent, a magnet, an option), else [`EXIT_FAILURE`].
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use shoal_metainfo::CreateError;
    let invalid = e.chain().any(|c| {
        c.is::<InvalidInput>()
            || c.is::<shoal_metainfo::MetainfoError>()
            || c.is::<shoal_metainfo::MagnetError>()
            || c.is::<shoal_bencode::Error>()
            || c.downcast_ref::<CreateError>().is_some_and(|ce| {
                !matches!(ce, CreateError::Io { .. } | CreateError::FileChanged { .. })
            })
    });
    if invalid {
        EXIT_INVALID
    } else {
        EXIT_FAILURE
    }
}

/// The whole error chain on one line (`outer: inner: cause`), control characters
/// replaced. A link that repeats its neighbour (a context naming the same path
/// as the error it wraps, an error whose message already ends with its source)
/// is printed once.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for link in e.chain() {
        let s = link.to_string();
        match parts.last_mut() {
            Some(prev) if *prev == s || prev.ends_with(&format!(": {s}")) => {}
            Some(prev) if s.starts_with(&format!("{prev}: ")) => *prev = s,
            _ => parts.push(s),
        }
    }
    parts
        .join(": ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[test]
    fn repeated_links_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "not found");
        let e = anyhow::Error::new(io)
            .context("/x: not found")
            .context("/x");
        assert_eq!(one_line(&e), "/x: not found");
        let e = anyhow::anyhow!("inner\nline").context("outer");
        assert_eq!(one_line(&e), "outer: inner line");
    }
}
