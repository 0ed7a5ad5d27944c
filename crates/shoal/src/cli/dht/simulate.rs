//! `shoal dht simulate`: runs [`shoal_dht::simulate`] (the same DHT core over a
//! virtual clock, seeded latency, loss and churn) and prints its [`shoal_dht::SimReport`].
//! Same options and seed, same output apart from the wall-clock fields `build_s` and
//! `wall_s`.
use clap::Args;
use shoal_dht::{simulate, SimConfig, SimReport};

use super::{input, print_result, NetOpts};
use crate::cli::InvalidInput;

/// Most simulated nodes accepted.
pub const MAX_NODES: usize = 1_000_000;
/// Most lookups accepted.
pub const MAX_LOOKUPS: usize = 1_000_000;

/// Arguments of `shoal dht simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Number of lookups.
    #[arg(long, default_value_t = 100)]
    pub lookups: usize,
    /// Fraction of nodes that die silently before the lookups (0 <= F < 1).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub churn: f64,
    /// Round-trip time range in milliseconds, A..B.
    #[arg(long, value_name = "A..B", default_value = "50..150")]
    pub rtt_ms: String,
    /// Probability that a datagram is lost (0 <= P < 1).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub loss: f64,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Virtual milliseconds between lookup starts.
    #[arg(long, value_name = "MS", default_value_t = 10)]
    pub interval_ms: u64,
    /// Plain k=8 buckets everywhere (no larger far buckets).
    #[arg(long)]
    pub plain_table: bool,
}

/// Checks the options and builds the simulator's configuration.
pub fn config(a: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let bad = |m: String| -> anyhow::Error { InvalidInput(m).into() };
    if !(2..=MAX_NODES).contains(&a.nodes) {
        return Err(bad(format!("--nodes {}: must be 2..={MAX_NODES}", a.nodes)));
    }
    if !(1..=MAX_LOOKUPS).contains(&a.lookups) {
        return Err(bad(format!(
            "--lookups {}: must be 1..={MAX_LOOKUPS}",
            a.lookups
        )));
    }
    if !(0.0..1.0).contains(&a.churn) {
        return Err(bad(format!(
            "--churn {}: must be at least 0 and below 1",
            a.churn
        )));
    }
    if !(0.0..1.0).contains(&a.loss) {
        return Err(bad(format!(
            "--loss {}: must be at least 0 and below 1",
            a.loss
        )));
    }
    if a.interval_ms > 60_000 {
        return Err(bad(format!(
            "--interval-ms {}: at most 60000",
            a.interval_ms
        )));
    }
    Ok(SimConfig {
        nodes: a.nodes,
        lookups: a.lookups,
        churn: a.churn,
        rtt_ms: input::parse_rtt(&a.rtt_ms)?,
        loss: a.loss,
        seed: a.seed,
        lookup_interval_ms: a.interval_ms,
        extended_table: !a.plain_table,
    })
}

/// Runs `shoal dht simulate`.
pub fn run(opts: &NetOpts, a: SimulateArgs) -> anyhow::Result<()> {
    let cfg = config(&a)?;
    let report = simulate(&cfg);
    let value = serde_json::to_value(&report)?;
    print_result(opts, &value, &text(&report));
    Ok(())
}

/// The report as a few lines of text.
pub fn text(r: &SimReport) -> String {
    let p = |x: &shoal_dht::Percentiles| format!("{} / {} / {}", x.p50, x.p90, x.p99);
    format!(
        "nodes {}, lookups {}, churn {}, loss {}, seed {}\n\
         success rate {:.4}\n\
         hops p50/p90/p99 {}\n\
         latency ms p50/p90/p99 {}\n\
         messages per lookup {:.1}, timeouts per lookup {:.2}, retransmits per lookup {:.2}\n\
         bytes per node {:.0}, table entries per node {:.1}\n\
         wall {:.2} s (building {:.2} s)\n",
        r.nodes,
        r.lookups,
        r.churn,
        r.loss,
        r.seed,
        r.success_rate,
        p(&r.hops),
        p(&r.latency_ms),
        r.messages_per_lookup,
        r.timeouts_per_lookup,
        r.retransmits_per_lookup,
        r.bytes_per_node,
        r.table_entries_per_node,
        r.wall_s,
        r.build_s,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: SimulateArgs,
    }

    fn cfg(args: &[&str]) -> anyhow::Result<SimConfig> {
        let t = T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))?;
        config(&t.a)
    }

    #[test]
    fn options_map_to_config() {
        let c = cfg(&[
            "--nodes",
            "300",
            "--lookups",
            "7",
            "--churn",
            "0.3",
            "--rtt-ms",
            "100..100",
            "--seed",
            "9",
        ])
        .unwrap();
        assert_eq!(
            (c.nodes, c.lookups, c.churn, c.rtt_ms, c.seed),
            (300, 7, 0.3, (100, 100), 9)
        );
        assert!(c.extended_table);
        for bad in [
            &["--nodes", "1"][..],
            &["--churn", "1.0"],
            &["--churn=-0.1"],
            &["--loss", "1.5"],
            &["--rtt-ms", "9..1"],
            &["--lookups", "0"],
        ] {
            assert!(cfg(bad).unwrap_err().is::<InvalidInput>(), "{bad:?}");
        }
    }
}
