//! `shoal crawl`: a thin client of `shoal_search::crawl`. Joins the DHT,
//! samples it (BEP 51), fetches the metadata of the torrents found (BEP 9)
//! and adds them to a local index (`--index DIR`, default
//! `$XDG_DATA_HOME/shoal/index`) that `shoal search` reads.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use shoal_search::crawl::{crawl, CrawlConfig};
use shoal_search::{IndexConfig, TorrentIndex};

use super::search::{start_dht, SearchDhtArgs};
use super::InvalidInput;

/// Arguments of `shoal crawl`.
#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// The index to fill (default: `$XDG_DATA_HOME/shoal/index`).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub duration: u64,
    /// Stop after indexing this many torrents.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_torrents: usize,
    /// Least time between two sampling queries, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub sample_interval: u64,
    /// Most torrents kept in the index.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub index_max: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// DHT options.
    #[command(flatten)]
    pub dht: SearchDhtArgs,
}

/// Runs `shoal crawl`.
pub fn run(args: CrawlArgs) -> anyhow::Result<()> {
    let dir = args
        .index
        .clone()
        .or_else(super::search::default_index_dir)
        .ok_or_else(|| InvalidInput("no index directory: give --index DIR".into()))?;
    if args.dht.no_dht {
        return Err(InvalidInput("shoal crawl needs the DHT (drop --no-dht)".into()).into());
    }
    let index = Arc::new(
        TorrentIndex::open(&IndexConfig {
            dir: Some(dir.clone()),
            max_docs: args.index_max,
        })
        .with_context(|| format!("opening the index {}", dir.display()))?,
    );
    let cfg = CrawlConfig {
        duration: Duration::from_secs(args.duration.max(1)),
        max_torrents: args.max_torrents.max(1),
        sample_interval: Duration::from_millis(args.sample_interval.max(10)),
        seed: rand::random(),
        ..CrawlConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(async {
        let dht = start_dht(&args.dht)
            .await?
            .ok_or_else(|| InvalidInput("no DHT node to join: give --dht-bootstrap".into()))?;
        let r = crawl(&dht, index.clone(), &cfg).await;
        let _ = dht.shutdown().await;
        anyhow::Ok(r?)
    })?;
    if args.json {
        println!(
            "{}",
            json!({"index": dir, "torrents": index.len(), "crawl": report})
        );
    } else {
        for n in &report.names {
            println!("indexed {n}");
        }
        println!(
            "{} sampling queries, {} info-hashes seen, {} indexed, {} failed; {} torrents in {}",
            report.samples_queried,
            report.info_hashes_seen,
            report.indexed,
            report.failed,
            index.len(),
            dir.display()
        );
    }
    Ok(())
}
