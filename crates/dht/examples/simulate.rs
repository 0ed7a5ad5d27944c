//! Runs the deterministic DHT simulation and prints the report as JSON.
//!
//! `cargo run --release -p shoal-dht --example simulate -- --nodes 10000 --lookups 1000
//! [--churn 0.3] [--rtt-ms 50..150] [--loss 0.0] [--seed 1] [--interval-ms 10]
//! [--plain-table]`
use shoal_dht::{simulate, SimConfig};

/// Why the command line or the report failed.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("{flag}: {source}")]
    Bad {
        flag: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unknown argument {0}")]
    Unknown(String),
    #[error("report: {0}")]
    Json(#[from] serde_json::Error),
}

/// A parse error, tagged with the option it came from.
fn bad<E: std::error::Error + Send + Sync + 'static>(flag: &'static str) -> impl Fn(E) -> ArgError {
    move |e| ArgError::Bad {
        flag,
        source: Box::new(e),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("simulate: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), ArgError> {
    let mut cfg = SimConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| ArgError::MissingValue(a.clone()));
        match a.as_str() {
            "--nodes" => cfg.nodes = val()?.parse().map_err(bad("--nodes"))?,
            "--lookups" => cfg.lookups = val()?.parse().map_err(bad("--lookups"))?,
            "--churn" => cfg.churn = val()?.parse().map_err(bad("--churn"))?,
            "--loss" => cfg.loss = val()?.parse().map_err(bad("--loss"))?,
            "--seed" => cfg.seed = val()?.parse().map_err(bad("--seed"))?,
            "--interval-ms" => {
                cfg.lookup_interval_ms = val()?.parse().map_err(bad("--interval-ms"))?
            }
            "--rtt-ms" => {
                let v = val()?;
                let (a, b) = v.split_once("..").unwrap_or((&v, &v));
                cfg.rtt_ms = (
                    a.parse().map_err(bad("--rtt-ms"))?,
                    b.parse().map_err(bad("--rtt-ms"))?,
                );
            }
            "--plain-table" => cfg.extended_table = false,
            other => return Err(ArgError::Unknown(other.to_owned())),
        }
    }
    let report = simulate(&cfg);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
