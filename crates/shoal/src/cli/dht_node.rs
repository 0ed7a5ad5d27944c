//! DHT options of `shoal download` and `shoal seed`, turned into the
//! session's [`DhtSettings`]: the engine runs the node (bound next to the
//! peer listener, routing table from the state file — `--dht-state`, default
//! [`default_state_file`], the same file as `shoal dht`; `--no-dht-state` for
//! none — bootstrapped from `--dht-bootstrap` plus the saved nodes, the
//! public routers only when neither `--dht-bootstrap` nor
//! `--no-default-bootstrap` is given) and finds peers for every public
//! torrent. `--no-dht` runs no node at all.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use shoal_engine::DhtSettings;

pub use super::dht::default_state_file;

/// DHT options shared by `shoal download` (torrent files and magnets) and `shoal seed`.
#[derive(Debug, Clone, Default, Args)]
pub struct DhtNodeArgs {
    /// A DHT node to bootstrap from (repeatable); replaces the public routers.
    #[arg(long = "dht-bootstrap", value_name = "ADDR:PORT")]
    pub dht_bootstrap: Vec<SocketAddr>,
    /// Do not contact the public DHT bootstrap routers (also set by the environment
    /// variable, e.g. `SHOAL_NO_DEFAULT_BOOTSTRAP=1` for test runs).
    #[arg(long, env = "SHOAL_NO_DEFAULT_BOOTSTRAP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_default_bootstrap: bool,
    /// DHT routing table file, loaded at start and saved periodically and at exit
    /// (default: $XDG_DATA_HOME/shoal/dht.json, as `shoal dht`).
    #[arg(long, value_name = "FILE", conflicts_with = "no_dht_state")]
    pub dht_state: Option<PathBuf>,
    /// Neither load nor save a DHT routing table file.
    #[arg(long)]
    pub no_dht_state: bool,
    /// Do not run a DHT node (peers only from trackers, magnet `x.pe` and --peer).
    #[arg(long)]
    pub no_dht: bool,
}

impl DhtNodeArgs {
    /// The routing table file to use, if any.
    pub fn state_file(&self) -> Option<PathBuf> {
        if self.no_dht_state {
            None
        } else {
            self.dht_state.clone().or_else(default_state_file)
        }
    }
}

impl DhtNodeArgs {
    /// The session's DHT settings, `None` with `--no-dht`.
    pub fn settings(&self) -> Option<DhtSettings> {
        if self.no_dht {
            return None;
        }
        Some(DhtSettings {
            bootstrap: self.dht_bootstrap.clone(),
            public_routers: !self.no_default_bootstrap,
            state_file: self.state_file(),
        })
    }
}

/// Prints `dht on ADDR: N nodes` once the session's DHT node joined (tests
/// and people read where it listens).
pub async fn report_bootstrap(session: &shoal_engine::Session) {
    session.dht_bootstrapped().await;
    if let Some(d) = session.dht() {
        let nodes = d.nodes().await.map(|n| n.len()).unwrap_or(0);
        eprintln!("dht on {}: {nodes} nodes", d.local_addr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dht: DhtNodeArgs,
    }

    fn parse(args: &[&str]) -> DhtNodeArgs {
        let mut v = vec!["x"];
        v.extend_from_slice(args);
        Cli::parse_from(v).dht
    }

    #[test]
    fn state_file_flags() {
        let a = parse(&["--dht-state", "/tmp/x.json"]);
        assert_eq!(a.state_file(), Some(PathBuf::from("/tmp/x.json")));
        assert_eq!(parse(&["--no-dht-state"]).state_file(), None);
        assert_eq!(parse(&[]).state_file(), default_state_file());
        assert!(Cli::try_parse_from(["x", "--dht-state", "a", "--no-dht-state"]).is_err());
        assert!(parse(&["--no-dht"]).no_dht);
    }

    #[test]
    fn the_environment_can_disable_the_routers() {
        let cli = <Cli as clap::CommandFactory>::command();
        let arg = cli
            .get_arguments()
            .find(|a| a.get_id() == "no_default_bootstrap")
            .unwrap();
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some("SHOAL_NO_DEFAULT_BOOTSTRAP")
        );
    }

    #[test]
    fn settings_follow_the_flags() {
        assert_eq!(parse(&["--no-dht"]).settings(), None);
        let s = parse(&["--dht-bootstrap", "127.0.0.1:7000", "--no-dht-state"])
            .settings()
            .unwrap();
        assert_eq!(s.bootstrap, vec!["127.0.0.1:7000".parse().unwrap()]);
        assert_eq!(s.state_file, None);
        assert!(
            !parse(&["--no-default-bootstrap"])
                .settings()
                .unwrap()
                .public_routers
        );
    }
}
