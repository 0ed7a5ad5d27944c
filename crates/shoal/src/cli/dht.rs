//! `shoal dht …`: query and use the mainline DHT (BEP 5, 44, 51) from the command
//! line, and run the deterministic DHT simulator.
//!
//! Every network command starts a short-lived, read-only (BEP 43) [`shoal_dht::Dht`]
//! node, loads its routing table from the state file, runs one or two lookups seeded
//! with the bootstrap addresses, prints the result (one JSON object with `--json`,
//! lines of text otherwise), saves the table and stops. `--timeout` bounds the whole
//! command. Bad input exits with 2 (one line on stderr) before any packet is sent;
//! when no node answers, the command exits with 1.
//!
//! Submodules: [`input`] parses user input, [`key`] owns the ed25519 key file,
//! [`ops`] runs the network commands, [`sample`] queries BEP 51 counters directly,
//! [`simulate`] maps options to [`shoal_dht::SimConfig`].
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

pub mod input;
pub mod key;
pub mod ops;
pub mod sample;
pub mod simulate;

use super::InvalidInput;

/// Default of `--timeout`, seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 60;
/// Longest `--timeout` accepted, seconds (one day).
pub const MAX_TIMEOUT_S: u64 = 86_400;
/// How long saving the table and stopping the node may take at exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Arguments of `shoal dht`.
#[derive(Debug, Args)]
pub struct DhtArgs {
    /// Options shared by the subcommands.
    #[command(flatten)]
    pub opts: NetOpts,
    /// The DHT command.
    #[command(subcommand)]
    pub command: DhtCommand,
}

/// Options every `shoal dht` subcommand accepts (they may follow the subcommand).
#[derive(Debug, Clone, Args)]
pub struct NetOpts {
    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// A DHT node to join through, IP:PORT (repeatable).
    #[arg(long = "bootstrap", value_name = "ADDR:PORT", global = true)]
    pub bootstrap: Vec<String>,
    /// Do not use the public bootstrap routers (they are used only when no --bootstrap is given).
    #[arg(long, global = true, env = "SHOAL_NO_DEFAULT_BOOTSTRAP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_default_bootstrap: bool,
    /// UDP address of the local DHT node (default 0.0.0.0:0).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub bind: Option<String>,
    /// Routing table file, loaded at start and saved at exit (default: $XDG_DATA_HOME/shoal/dht.json).
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "no_state")]
    pub state: Option<PathBuf>,
    /// Neither load nor save a routing table file.
    #[arg(long, global = true)]
    pub no_state: bool,
    /// Bound on the whole command, seconds.
    #[arg(long, value_name = "SECS", global = true, default_value_t = DEFAULT_TIMEOUT_S)]
    pub timeout: u64,
}

/// The `shoal dht` subcommands.
#[derive(Debug, Subcommand)]
pub enum DhtCommand {
    /// Ping a DHT node: its node ID and the round-trip time.
    Ping(ops::PingArgs),
    /// Find the nodes closest to a node ID (40 hex digits).
    FindNode(ops::FindNodeArgs),
    /// Find peers of a torrent by info-hash (40 hex digits).
    GetPeers(ops::GetPeersArgs),
    /// Announce a torrent to the nodes closest to its info-hash.
    Announce(ops::AnnounceArgs),
    /// Store a BEP 44 item (immutable, or mutable signed with a key file).
    Put(ops::PutArgs),
    /// Fetch a BEP 44 item (immutable by target, or mutable by public key and salt).
    Get(ops::GetArgs),
    /// Make an ed25519 key file for mutable items and print its public key.
    Keygen(key::KeygenArgs),
    /// BEP 51: sample the info-hashes stored near a hex prefix.
    Sample(ops::SampleArgs),
    /// Run the deterministic in-process DHT simulation and report its figures.
    Simulate(simulate::SimulateArgs),
}

/// Runs `shoal dht`.
pub fn run(args: DhtArgs) -> anyhow::Result<()> {
    let opts = args.opts;
    match args.command {
        DhtCommand::Keygen(a) => key::run_keygen(&opts, a),
        DhtCommand::Simulate(a) => simulate::run(&opts, a),
        cmd => ops::run(opts, cmd),
    }
}

/// Prints a command's result: `value` with `--json`, else `text`.
pub fn print_result(opts: &NetOpts, value: &Value, text: &str) {
    if opts.json {
        println!("{value}");
    } else {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
}

/// The validated network settings of one command.
#[derive(Debug, Clone)]
pub struct NetPlan {
    /// Local UDP address.
    pub bind: SocketAddr,
    /// Explicit bootstrap nodes (empty: use the defaults unless disabled).
    pub bootstrap: Vec<SocketAddr>,
    /// Whether the public routers may be resolved and used.
    pub default_bootstrap: bool,
    /// Routing table file, if any.
    pub state: Option<PathBuf>,
    /// Bound on the whole command.
    pub timeout: Duration,
}

impl NetPlan {
    /// Validates the shared options (exit code 2 on bad input).
    pub fn from_opts(opts: &NetOpts) -> anyhow::Result<NetPlan> {
        let bind = match &opts.bind {
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
            Some(s) => input::parse_socket_addr("--bind", s)?,
        };
        let mut bootstrap = Vec::with_capacity(opts.bootstrap.len());
        for b in &opts.bootstrap {
            let a = input::parse_socket_addr("--bootstrap", b)?;
            if a.is_ipv6() != bind.is_ipv6() {
                return Err(InvalidInput(format!(
                    "--bootstrap {b}: address family differs from --bind {bind}"
                ))
                .into());
            }
            bootstrap.push(a);
        }
        if opts.timeout == 0 || opts.timeout > MAX_TIMEOUT_S {
            return Err(InvalidInput(format!(
                "--timeout {}: must be 1..={MAX_TIMEOUT_S} seconds",
                opts.timeout
            ))
            .into());
        }
        let state = if opts.no_state {
            None
        } else {
            opts.state.clone().or_else(default_state_file)
        };
        Ok(NetPlan {
            bind,
            bootstrap,
            default_bootstrap: !opts.no_default_bootstrap,
            state,
            timeout: Duration::from_secs(opts.timeout),
        })
    }

    /// The addresses to join through: the explicit ones, else the public routers
    /// (resolved now, filtered to the bind family) unless disabled.
    pub async fn bootstrap_addrs(&self) -> anyhow::Result<Vec<SocketAddr>> {
        if !self.bootstrap.is_empty() || !self.default_bootstrap {
            return Ok(self.bootstrap.clone());
        }
        let mut out = Vec::new();
        for host in shoal_dht::DEFAULT_BOOTSTRAP {
            match tokio::net::lookup_host(host).await {
                Ok(addrs) => out.extend(addrs.filter(|a| a.is_ipv6() == self.bind.is_ipv6())),
                Err(e) => tracing::info!(host, error = %e, "dht: cannot resolve bootstrap router"),
            }
        }
        Ok(out)
    }
}

/// `$XDG_DATA_HOME/shoal/dht.json`, else `~/.local/share/shoal/dht.json`.
pub fn default_state_file() -> Option<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = nonempty("XDG_DATA_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| nonempty("HOME").map(|h| h.join(".local").join("share")))?;
    Some(base.join("shoal").join("dht.json"))
}

/// A current-thread tokio runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Starts the local node for a command: read-only, random seed, with the ID and
/// nodes of the state file (a file that cannot be read is reported and ignored).
/// The driver itself gets no state file: [`with_node`] saves the table at exit, and
/// only when it holds nodes, so a run without network never wipes a good table.
pub async fn start_node(plan: &NetPlan) -> anyhow::Result<shoal_dht::Dht> {
    let mut saved = (None, Vec::new());
    if let Some(p) = plan.state.as_deref().filter(|p| p.exists()) {
        match shoal_dht::persist::load(p) {
            Ok(t) => saved = t.parsed(),
            Err(e) => eprintln!("warning: ignoring the DHT state file: {e}"),
        }
    }
    let cfg = shoal_dht::DhtConfig {
        bind: plan.bind,
        node: shoal_dht::Config {
            id: saved.0,
            seed: rand::random(),
            read_only: true,
            ..shoal_dht::Config::default()
        },
        state_file: None,
        save_interval: Duration::from_secs(300),
    };
    let dht = shoal_dht::Dht::bind(cfg).await?;
    if !saved.1.is_empty() {
        dht.add_nodes(saved.1).await?;
    }
    Ok(dht)
}

/// Saves the routing table to the plan's state file when it holds any node.
async fn save_state(plan: &NetPlan, dht: &shoal_dht::Dht) {
    let Some(path) = &plan.state else { return };
    match dht.nodes().await {
        Ok(nodes) if !nodes.is_empty() => {}
        _ => return,
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("warning: cannot save the DHT state: {}: {e}", dir.display());
            return;
        }
    }
    if let Err(e) = dht.save_table(path).await {
        eprintln!("warning: cannot save the DHT state: {e}");
    }
}

/// Runs `op` on a fresh node within the plan's timeout, then stops the node (saving
/// its table) whatever the outcome.
pub fn with_node<T, F>(plan: &NetPlan, op: F) -> anyhow::Result<T>
where
    F: for<'a> FnOnce(
        &'a shoal_dht::Dht,
        Vec<SocketAddr>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = anyhow::Result<T>> + 'a>,
    >,
{
    runtime()?.block_on(async {
        let dht = start_node(plan).await?;
        let outcome = tokio::time::timeout(plan.timeout, async {
            let boot = plan.bootstrap_addrs().await?;
            op(&dht, boot).await
        })
        .await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            save_state(plan, &dht).await;
            let _ = dht.shutdown().await;
        })
        .await;
        match outcome {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "dht: timed out after {} s",
                plan.timeout.as_secs()
            )),
        }
    })
}
