//! Runs the deterministic DHT simulation and prints the report as JSON.
//!
//! `cargo run --release -p shoal-dht --example simulate -- --nodes 10000 --lookups 1000
//! [--churn 0.3] [--rtt-ms 50..150] [--loss 0.0] [--seed 1] [--interval-ms 10]
//! [--plain-table]`
use shoal_dht::{simulate, SimConfig};

fn main() -> Result<(), String> {
    let mut cfg = SimConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--nodes" => cfg.nodes = val()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--lookups" => cfg.lookups = val()?.parse().map_err(|e| format!("--lookups: {e}"))?,
            "--churn" => cfg.churn = val()?.parse().map_err(|e| format!("--churn: {e}"))?,
            "--loss" => cfg.loss = val()?.parse().map_err(|e| format!("--loss: {e}"))?,
            "--seed" => cfg.seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--interval-ms" => {
                cfg.lookup_interval_ms =
                    val()?.parse().map_err(|e| format!("--interval-ms: {e}"))?
            }
            "--rtt-ms" => {
                let v = val()?;
                let (a, b) = v.split_once("..").unwrap_or((&v, &v));
                cfg.rtt_ms = (
                    a.parse().map_err(|e| format!("--rtt-ms: {e}"))?,
                    b.parse().map_err(|e| format!("--rtt-ms: {e}"))?,
                );
            }
            "--plain-table" => cfg.extended_table = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let report = simulate(&cfg);
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}
