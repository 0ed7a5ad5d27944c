//! `shoal download MAGNET-URI`: trackerless magnet downloads.
//!
//! Flow: parse the magnet; start the peer session and the DHT node
//! ([`super::dht_node`]: bound next to `--listen`, routing table from the state
//! file, bootstrapped from `--dht-bootstrap`, the saved nodes or the public
//! routers); look up peers for the info-hash repeatedly; fetch the info
//! dictionary (BEP 9) from those peers, the magnet's `x.pe` peers and `--peer`,
//! verified against the info-hash; then download as for a .torrent while the
//! DHT keeps finding peers and announcing our port; a v2-only torrent first
//! gets its piece layers from the peers by BEP 52 hash requests
//! ([`shoal_engine::piece_layers`]). Private torrents (BEP 27)
//! stop using the DHT once the metadata says so; `--no-dht` never starts it.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use shoal_engine::dht_peers::{DhtPeerFinder, DhtPeersConfig};
use shoal_engine::metadata::{fetch_metadata, FetchProgress, MetadataFetchConfig, MetadataTarget};
use shoal_engine::piece_layers::{fetch_piece_layers, LayerFetchConfig};
use shoal_engine::{AddTorrentParams, FileSelection, Session, SessionConfig};
use shoal_metainfo::{Magnet, ParseLimits, Torrent};
use shoal_wire::MetadataHash;
use tokio::sync::mpsc;

use super::dht_node::DhtNode;
use super::download::{follow, runtime, DownloadArgs, Signals};
use super::InvalidInput;

/// Options of `shoal download` that only matter for magnet links (the DHT
/// options are in [`super::dht_node::DhtNodeArgs`]).
#[derive(Debug, Clone, Args)]
pub struct MagnetArgs {
    /// Give up when no peer gave the metadata within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub metadata_timeout: u64,
}

/// How often the DHT is asked for peers while the metadata is missing.
const METADATA_LOOKUP_INTERVAL: Duration = Duration::from_secs(5);
/// Most of the magnet's `tr` trackers asked for peers while the metadata is missing.
const MAX_METADATA_TRACKERS: usize = 8;
/// Fallback time between two announces to one tracker while the metadata is missing.
const METADATA_TRACKER_INTERVAL: Duration = Duration::from_secs(30);

/// Runs `shoal download` for a magnet URI.
pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let magnet = Magnet::parse(&args.torrent).context("download")?;
    let target = target_of(&magnet)?;
    runtime()?.block_on(download(args, magnet, target))
}

/// The handshake hash and the metadata hash a magnet names.
fn target_of(m: &Magnet) -> anyhow::Result<MetadataTarget> {
    if let Some(v1) = m.v1 {
        return Ok(MetadataTarget {
            info_hash: *v1.as_bytes(),
            hash: MetadataHash::V1(*v1.as_bytes()),
        });
    }
    if let Some(v2) = m.v2 {
        return Ok(MetadataTarget {
            info_hash: *v2.truncated().as_bytes(),
            hash: MetadataHash::V2(*v2.as_bytes()),
        });
    }
    Err(InvalidInput("download: the magnet names no info-hash".into()).into())
}

/// The file selection: `--only` wins, then the magnet's `so` (BEP 53), else all.
fn selection(args: &DownloadArgs, magnet: &Magnet, torrent: &Torrent) -> FileSelection {
    if let Some(s) = &args.only {
        return FileSelection::parse(s);
    }
    if magnet.select_only.is_empty() {
        return FileSelection::All;
    }
    let n = torrent.files().len() as u32;
    let mut idx: Vec<usize> = magnet
        .select_only
        .iter()
        .flat_map(|r| *r.start()..=(*r.end()).min(n.saturating_sub(1)))
        .filter(|i| *i < n)
        .map(|i| i as usize)
        .collect();
    idx.sort_unstable();
    idx.dedup();
    FileSelection::Indices(idx)
}

/// The magnet's `x.pe` peers and `--peer`s (host names resolved; failures skipped).
async fn explicit_peers(args: &DownloadArgs, magnet: &Magnet) -> Vec<SocketAddr> {
    let mut out = args.peers.clone();
    for hp in &magnet.peers {
        match hp.to_socket_addr() {
            Some(a) => out.push(a),
            None => match tokio::net::lookup_host((hp.host.as_str(), hp.port)).await {
                Ok(mut addrs) => out.extend(addrs.next()),
                Err(e) => tracing::warn!(host = %hp.host, error = %e, "x.pe peer not resolved"),
            },
        }
    }
    out
}

/// Asks the magnet's trackers (`tr`, and `--tracker`) for peers while the
/// metadata is missing (the engine announces to them once the torrent runs);
/// peers go to `sink`. Abort the returned task when done.
fn tracker_peers(
    magnet: &Magnet,
    args: &DownloadArgs,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    port: u16,
    sink: mpsc::Sender<Vec<SocketAddr>>,
) -> tokio::task::JoinHandle<()> {
    let urls: Vec<String> = magnet
        .trackers
        .iter()
        .chain(args.trackers.iter())
        .take(MAX_METADATA_TRACKERS)
        .cloned()
        .collect();
    tokio::spawn(async move {
        if urls.is_empty() {
            return;
        }
        let client = match shoal_tracker::TrackerClient::new(Default::default()) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::warn!(error = %e, "tracker client");
                return;
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for url in urls {
            let client = client.clone();
            let sink = sink.clone();
            set.spawn(async move {
                // The size is unknown until the metadata arrives: say something is left.
                let mut req = shoal_tracker::AnnounceRequest::new(info_hash, peer_id, port, 1);
                req.event = shoal_tracker::Event::Started;
                req.numwant = Some(50);
                loop {
                    let wait = match client.announce(&url, &req, None).await {
                        Ok(r) => {
                            req.event = shoal_tracker::Event::None;
                            if !r.peers.is_empty() && sink.send(r.peers).await.is_err() {
                                return;
                            }
                            Duration::from_secs(u64::from(r.interval.clamp(5, 300)))
                        }
                        Err(e) => {
                            tracing::warn!(%url, error = %e, "tracker announce failed");
                            METADATA_TRACKER_INTERVAL
                        }
                    };
                    tokio::time::sleep(wait.min(METADATA_TRACKER_INTERVAL)).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
    })
}

async fn download(
    args: DownloadArgs,
    magnet: Magnet,
    target: MetadataTarget,
) -> anyhow::Result<()> {
    let mut session = Session::start(SessionConfig {
        listen: args.listen,
        max_upload_rate: args.max_upload_rate,
        max_download_rate: args.max_download_rate,
        direct_io: !args.buffered_writes,
        ..SessionConfig::default()
    })
    .await
    .context("download")?;
    eprintln!("listening on {}", session.local_addr());
    let node = match DhtNode::start(&args.dht, session.local_addr()).await {
        Ok(d) => d,
        Err(e) => {
            session.shutdown().await;
            return Err(e.context("download"));
        }
    };
    let result = with_dht(&args, &magnet, target, &mut session, node.as_ref()).await;
    if let Some(n) = node {
        n.shutdown().await;
    }
    session.shutdown().await;
    result
}

async fn with_dht(
    args: &DownloadArgs,
    magnet: &Magnet,
    target: MetadataTarget,
    session: &mut Session,
    node: Option<&DhtNode>,
) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    if let Some(n) = node {
        tokio::select! {
            sig = signals.recv() => bail!("download interrupted by {sig} while joining the DHT"),
            _ = n.bootstrapped() => {}
        }
    }
    let explicit = explicit_peers(args, magnet).await;
    let (tx, mut rx) = mpsc::channel(16);
    let tx_trackers = tx.clone();
    let finder = node.map(|n| {
        DhtPeerFinder::spawn(
            n.dht().clone(),
            target.info_hash,
            DhtPeersConfig {
                interval: METADATA_LOOKUP_INTERVAL,
                announce_port: None,
                ..DhtPeersConfig::default()
            },
            tx,
        )
    });
    let trackers_task = tracker_peers(
        magnet,
        args,
        target.info_hash,
        session.peer_id(),
        session.local_addr().port(),
        tx_trackers,
    );
    let config = MetadataFetchConfig {
        peer_id: session.peer_id(),
        overall_timeout: Duration::from_secs(args.magnet.metadata_timeout),
        ..MetadataFetchConfig::default()
    };
    let mut last_line: Option<Instant> = None;
    let mut last_known = usize::MAX;
    let report = |p: FetchProgress| {
        let due = last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if p.known != last_known || due {
            last_known = p.known;
            last_line = Some(Instant::now());
            eprintln!(
                "fetching metadata from {} peers… ({} trying, {} failed)",
                p.known, p.active, p.failed
            );
        }
    };
    eprintln!("fetching metadata from {} peers…", explicit.len());
    let fetched = tokio::select! {
        sig = signals.recv() => {
            if let Some(f) = finder {
                f.stop().await;
            }
            trackers_task.abort();
            bail!("download interrupted by {sig} while fetching metadata");
        }
        r = fetch_metadata(target, config, explicit.clone(), &mut rx, report) => r,
    };
    if let Some(f) = finder {
        f.stop().await;
    }
    trackers_task.abort();
    let fetched = fetched.context("download: fetching metadata")?;
    let mut torrent = Torrent::from_info_bytes(&fetched.info, &ParseLimits::default())
        .context("download: the metadata")?;
    let missing = (0..torrent.files().len())
        .filter(|&i| torrent.needs_piece_layer(i))
        .count();
    if missing > 0 {
        // A v2-only torrent: its info dict has no piece layers; ask peers (BEP 52).
        eprintln!("fetching the piece layers of {missing} files…");
        // The peer that gave the metadata first; a private torrent (BEP 27)
        // asks only it and the peers given by hand.
        let others = if torrent.is_private() {
            &explicit
        } else {
            &fetched.candidates
        };
        let mut peers = vec![fetched.from];
        peers.extend(others.iter().filter(|a| **a != fetched.from));
        let config = LayerFetchConfig {
            peer_id: session.peer_id(),
            overall_timeout: Duration::from_secs(args.magnet.metadata_timeout),
            ..LayerFetchConfig::default()
        };
        tokio::select! {
            sig = signals.recv() => bail!("download interrupted by {sig} while fetching piece layers"),
            r = fetch_piece_layers(&mut torrent, target.info_hash, &peers, &config) => {
                r.context("download: fetching piece layers")?;
            }
        }
    }
    let torrent = Arc::new(torrent);
    eprintln!(
        "metadata: {} ({} bytes of info from {})",
        torrent.name(),
        fetched.info.len(),
        fetched.from
    );
    let private = torrent.is_private();
    // BEP 27: a private torrent uses only its trackers (and peers given by hand).
    let peers = if private {
        eprintln!("private torrent: not using the DHT");
        explicit
    } else {
        fetched.candidates
    };
    let mut trackers = magnet.trackers.clone();
    trackers.extend(args.trackers.iter().cloned());
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let params = AddTorrentParams {
        torrent: torrent.clone(),
        save_path: args.output.clone(),
        selection: selection(args, magnet, &torrent),
        peers,
        extra_trackers: trackers,
    };
    let handle = match session.add_torrent(params, Arc::new(|_| {})).await {
        Ok(h) => h,
        Err(e) => {
            return Err(match e {
                shoal_engine::AddTorrentError::NoSuchFile { .. }
                | shoal_engine::AddTorrentError::EmptySelection
                | shoal_engine::AddTorrentError::V2Only => {
                    anyhow::Error::new(InvalidInput(format!("download: {e}")))
                }
                e => anyhow::Error::new(e).context("download"),
            })
        }
    };
    // Keep finding peers on the DHT and announce our port (never for private torrents).
    let feed = node.filter(|_| !private).map(|n| {
        n.feed(
            target.info_hash,
            session.local_addr().port(),
            handle.clone(),
        )
    });
    let outcome = follow(args, &torrent, &handle, &mut signals).await;
    if let Some(f) = feed {
        f.stop().await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A three-file torrent (10 bytes each) from its info dictionary.
    fn three_files() -> Torrent {
        let info = b"d5:filesld6:lengthi10e4:pathl1:aeed6:lengthi10e4:pathl1:beed6:lengthi10e4:pathl1:ceee4:name1:x12:piece lengthi16384e6:pieces20:xxxxxxxxxxxxxxxxxxxxe";
        Torrent::from_info_bytes(info, &ParseLimits::default()).unwrap()
    }

    fn args(extra: &[&str]) -> DownloadArgs {
        let mut v = vec![
            "shoal",
            "download",
            "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
        ];
        v.extend_from_slice(extra);
        match super::super::Cli::parse_from(v).command {
            super::super::Command::Download(a) => a,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn select_only_becomes_the_selection_unless_only_is_given() {
        let t = three_files();
        let m =
            Magnet::parse("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&so=2-7,0")
                .unwrap();
        // Out-of-range indices are dropped, the rest sorted.
        assert_eq!(
            selection(&args(&[]), &m, &t),
            FileSelection::Indices(vec![0, 2])
        );
        assert_eq!(
            selection(&args(&["--only", "1"]), &m, &t),
            FileSelection::Indices(vec![1])
        );
        let plain =
            Magnet::parse("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a").unwrap();
        assert_eq!(selection(&args(&[]), &plain, &t), FileSelection::All);
    }

    #[test]
    fn magnet_options_parse() {
        let a = args(&[
            "--dht-bootstrap",
            "127.0.0.1:7000",
            "--no-default-bootstrap",
            "--metadata-timeout",
            "5",
        ]);
        assert_eq!(a.dht.dht_bootstrap, vec!["127.0.0.1:7000".parse().unwrap()]);
        assert!(a.dht.no_default_bootstrap);
        assert_eq!(a.magnet.metadata_timeout, 5);
        assert_eq!(args(&[]).magnet.metadata_timeout, 120);
    }

    #[test]
    fn v1_and_v2_targets() {
        let h = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{h}")).unwrap();
        let t = target_of(&m).unwrap();
        assert_eq!(hex::encode(t.info_hash), h);
        assert_eq!(t.hash, MetadataHash::V1(t.info_hash));
        let h2 = "1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
        let m = Magnet::parse(&format!("magnet:?xt=urn:btmh:{h2}")).unwrap();
        let t = target_of(&m).unwrap();
        assert_eq!(hex::encode(t.info_hash), &h2[4..44]);
        assert!(matches!(t.hash, MetadataHash::V2(full) if hex::encode(full) == h2[4..]));
    }
}
