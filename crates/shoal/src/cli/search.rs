//! `shoal search` and `shoal publish`: thin clients of `shoal_search`.
//!
//! `search` asks every source at once, within `--timeout`: the central index
//! of each `--tracker`, the DHT keyword index (unless `--no-dht`), and the
//! local indexes (`--index DIR`, default the crawler's index when it
//! exists); merges and ranks the hits, and prints each with the
//! `shoal download` command that fetches it. A source that fails is
//! reported on stderr; the command fails (exit 1) only when every source did.
//!
//! With `--daemon URL`, the search runs in that `shoal daemon` instead
//! (`GET /api/v1/search`: flooding among its shoal peers, its torrents,
//! its DHT and trackers) and is printed the same way.
//!
//! `publish` makes a torrent findable: uploaded to each `--tracker`'s
//! central index, and its keywords stored in the DHT keyword index.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use shoal_search::{rank, SearchHit, TorrentIndex};

use super::InvalidInput;

/// Arguments of `shoal search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The words to look for.
    #[arg(required = true, value_name = "QUERY")]
    pub query: Vec<String>,
    /// Ask the central index of the tracker behind this announce URL (repeatable).
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Local index to search (repeatable; default: the `shoal crawl` index, if any).
    #[arg(long = "index", value_name = "DIR")]
    pub indexes: Vec<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Most results shown.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Bound on the whole search, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// DHT options (the keyword index).
    #[command(flatten)]
    pub dht: SearchDhtArgs,
    /// Ask this running `shoal daemon` (its HTTP URL) instead; `--tracker`
    /// is passed on, the local sources are not asked.
    #[arg(long = "daemon", value_name = "URL")]
    pub daemon: Option<String>,
    /// HTTP Basic auth for `--daemon`.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "SHOAL_AUTH",
        hide_env_values = true
    )]
    pub auth: Option<String>,
}

/// DHT options of `shoal search`, `shoal publish` and `shoal crawl`.
#[derive(Debug, Clone, Args)]
pub struct SearchDhtArgs {
    /// A DHT node to join through (repeatable); replaces the public routers.
    #[arg(long = "dht-bootstrap", value_name = "ADDR:PORT")]
    pub dht_bootstrap: Vec<SocketAddr>,
    /// Do not contact the public DHT bootstrap routers.
    #[arg(long, env = "SHOAL_NO_DEFAULT_BOOTSTRAP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_default_bootstrap: bool,
    /// Do not use the DHT.
    #[arg(long)]
    pub no_dht: bool,
    /// UDP address of the local DHT node.
    #[arg(
        long = "dht-bind",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:0"
    )]
    pub dht_bind: SocketAddr,
}

/// Arguments of `shoal publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The .torrent file to make findable.
    #[arg(value_name = "TORRENT")]
    pub torrent: PathBuf,
    /// Upload it to the central index of the tracker behind this announce URL (repeatable).
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Bound on the whole command, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// DHT options (the keyword index).
    #[command(flatten)]
    pub dht: SearchDhtArgs,
}

/// `$XDG_DATA_HOME/shoal/index` (the crawler's local index).
pub fn default_index_dir() -> Option<PathBuf> {
    super::dht::default_state_file().and_then(|f| f.parent().map(|d| d.join("index")))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("starting the HTTP client")
}

/// One source's answer: its name and hits, or its error.
type Answer = (String, anyhow::Result<Vec<SearchHit>>);

/// Runs `shoal search`.
pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let query = args.query.join(" ");
    if shoal_search::query_keywords(&query).is_empty() {
        return Err(InvalidInput(format!(
            "{query:?}: no keyword (words of 3 or more letters or digits that are not stop words)"
        ))
        .into());
    }
    let limit = args.limit.clamp(1, shoal_search::index::MAX_RESULTS);
    let timeout = Duration::from_secs(args.timeout.max(1));
    if let Some(url) = &args.daemon {
        let answers = via_daemon(&args, url, &query, limit, timeout);
        return report(&args, &query, limit, answers);
    }
    let indexes: Vec<PathBuf> = if args.indexes.is_empty() {
        default_index_dir()
            .filter(|d| d.join("meta.json").exists())
            .into_iter()
            .collect()
    } else {
        args.indexes.clone()
    };
    let answers: Vec<Answer> = runtime()?.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let http = http_client()?;
        for t in &args.trackers {
            let (http, t, q) = (http.clone(), t.clone(), query.clone());
            set.spawn(async move {
                let r = shoal_search::client::search_tracker(&http, &t, &q, limit, timeout).await;
                (format!("tracker {t}"), r.map_err(anyhow::Error::from))
            });
        }
        if uses_dht(&args.dht) {
            let (d, q) = (args.dht.clone(), query.clone());
            set.spawn(async move {
                let r = async {
                    let Some(dht) = start_dht(&d).await? else {
                        return Ok(Vec::new());
                    };
                    let cfg = shoal_search::kad::KadConfig::default();
                    let r = shoal_search::kad::search(&dht, &q, &cfg).await;
                    let _ = dht.shutdown().await;
                    Ok(r?)
                };
                ("dht".to_string(), r.await)
            });
        }
        for d in &indexes {
            let (d, q) = (d.clone(), query.clone());
            set.spawn(async move {
                let name = format!("index {}", d.display());
                let r = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<SearchHit>> {
                    let ix = TorrentIndex::open_read_only(&d)?;
                    let found = format!("index {}", d.display());
                    Ok(ix
                        .search(&q, limit)?
                        .iter()
                        .map(|h| h.to_hit(&found))
                        .collect())
                })
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("index task: {e}")));
                (name, r)
            });
        }
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while !set.is_empty() {
            match tokio::time::timeout_at(deadline, set.join_next()).await {
                Ok(Some(Ok(a))) => answers.push(a),
                Ok(Some(Err(e))) => answers.push(("task".into(), Err(anyhow::anyhow!("{e}")))),
                Ok(None) => break,
                Err(_) => {
                    answers.push(("search".into(), Err(anyhow::anyhow!("timed out"))));
                    set.abort_all();
                    break;
                }
            }
        }
        anyhow::Ok(answers)
    })?;
    report(&args, &query, limit, answers)
}

/// Percent-encodes a query-string component.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The daemon's answer as the answers of its sources (its own errors each
/// as one failed source).
fn via_daemon(
    args: &SearchArgs,
    url: &str,
    query: &str,
    limit: usize,
    timeout: Duration,
) -> Vec<Answer> {
    // The daemon bounds a search to 30 s.
    let ms = timeout.as_millis().min(30_000);
    let mut path = format!("search?q={}&timeout_ms={ms}&limit={limit}", encode(query));
    for t in &args.trackers {
        path.push_str(&format!("&tracker={}", encode(t)));
    }
    let remote = super::remote::Remote {
        url: url.to_string(),
        auth: args.auth.clone(),
    };
    let name = format!("daemon {url}");
    let v = match remote.call_within("GET", &path, None, timeout + Duration::from_secs(5)) {
        Ok(v) => v,
        Err(e) => return vec![(name, Err(e))],
    };
    let hits: Vec<SearchHit> = v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| serde_json::from_value(h.clone()).ok())
        .collect();
    let mut answers = vec![(name, Ok(hits))];
    for e in v["errors"].as_array().into_iter().flatten() {
        let source = e["source"].as_str().unwrap_or("?");
        let msg = e["error"].as_str().unwrap_or("?").to_string();
        answers.push((format!("daemon {source}"), Err(anyhow::anyhow!(msg))));
    }
    answers
}

fn human_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn report(
    args: &SearchArgs,
    query: &str,
    limit: usize,
    answers: Vec<Answer>,
) -> anyhow::Result<()> {
    let mut hits = Vec::new();
    let mut errors = Vec::new();
    let sources = answers.len();
    if sources == 0 {
        return Err(InvalidInput(
            "nothing to search: give --tracker, --index or a DHT (no source was usable)".into(),
        )
        .into());
    }
    for (name, r) in answers {
        match r {
            Ok(h) => hits.extend(h),
            Err(e) => errors.push((name, super::one_line(&e))),
        }
    }
    let mut ranked = rank(query, hits);
    ranked.truncate(limit);
    for (name, e) in &errors {
        eprintln!("warning: {name}: {e}");
    }
    if args.json {
        let results: Vec<_> = ranked.iter().map(SearchHit::to_json).collect();
        let errs: Vec<_> = errors
            .iter()
            .map(|(n, e)| json!({"source": n, "error": e}))
            .collect();
        println!(
            "{}",
            json!({"query": query, "results": results, "errors": errs})
        );
    } else if ranked.is_empty() {
        println!("no results for {query:?}");
    } else {
        for (i, h) in ranked.iter().enumerate() {
            let mut facts = Vec::new();
            if let Some(s) = h.size {
                facts.push(human_size(s));
            }
            if let Some(f) = h.files {
                facts.push(format!("{f} file{}", if f == 1 { "" } else { "s" }));
            }
            if let Some(s) = h.seeds {
                facts.push(format!("{s} seed{}", if s == 1 { "" } else { "s" }));
            }
            facts.push(format!("found: {}", h.found.join(", ")));
            println!("{:>2}. {}", i + 1, h.name);
            println!("    {}  {}", h.info_hash, facts.join(" · "));
            println!("    {}", h.download_command());
        }
    }
    if errors.len() == sources {
        anyhow::bail!("every source failed");
    }
    Ok(())
}

/// Whether the DHT is to be asked at all.
fn uses_dht(d: &SearchDhtArgs) -> bool {
    !d.no_dht && (!d.dht_bootstrap.is_empty() || !d.no_default_bootstrap)
}

/// Starts a read-only DHT node and joins through `--dht-bootstrap` (else the
/// public routers unless disabled); `None` with `--no-dht` or nowhere to join.
pub async fn start_dht(d: &SearchDhtArgs) -> anyhow::Result<Option<shoal_dht::Dht>> {
    if d.no_dht {
        return Ok(None);
    }
    let plan = super::dht::NetPlan {
        bind: d.dht_bind,
        bootstrap: d.dht_bootstrap.clone(),
        default_bootstrap: !d.no_default_bootstrap,
        state: None,
        timeout: Duration::from_secs(60),
    };
    let boot = plan.bootstrap_addrs().await?;
    if boot.is_empty() {
        return Ok(None);
    }
    let dht = super::dht::start_node(&plan).await?;
    let n = dht.bootstrap(&boot).await.context("joining the DHT")?;
    if n == 0 {
        let _ = dht.shutdown().await;
        anyhow::bail!("no DHT node answered");
    }
    Ok(Some(dht))
}

/// Runs `shoal publish`.
pub fn run_publish(args: PublishArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.torrent)
        .with_context(|| format!("reading {}", args.torrent.display()))?;
    let doc = shoal_search::TorrentDoc::from_torrent_file(&bytes)
        .with_context(|| args.torrent.display().to_string())?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut done = Vec::new();
    let mut errors = Vec::new();
    runtime()?.block_on(async {
        let http = http_client()?;
        for t in &args.trackers {
            match shoal_search::client::upload_torrent(&http, t, bytes.clone(), timeout).await {
                Ok(_) => done.push(format!("tracker {t}")),
                Err(e) => errors.push(format!("tracker {t}: {e}")),
            }
        }
        match start_dht(&args.dht).await {
            Ok(Some(dht)) => {
                let cfg = shoal_search::kad::KadConfig::default();
                let r = tokio::time::timeout(timeout, shoal_search::kad::publish(&dht, &doc, &cfg))
                    .await;
                match r {
                    Ok(Ok(r)) => done.push(format!(
                        "dht (keywords: {}; {} slots, record {})",
                        r.keywords.join(" "),
                        r.slots_stored,
                        if r.record_stored {
                            "stored"
                        } else {
                            "not stored"
                        }
                    )),
                    Ok(Err(e)) => errors.push(format!("dht: {e}")),
                    Err(_) => errors.push("dht: timed out".to_string()),
                }
                let _ = dht.shutdown().await;
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("dht: {}", super::one_line(&e))),
        }
        anyhow::Ok(())
    })?;
    for e in &errors {
        eprintln!("warning: {e}");
    }
    if args.json {
        println!(
            "{}",
            json!({"info_hash": doc.hex(), "name": doc.name, "published": done, "errors": errors})
        );
    } else {
        for d in &done {
            println!("published {:?} ({}) to {d}", doc.name, doc.hex());
        }
    }
    if done.is_empty() {
        if errors.is_empty() {
            return Err(InvalidInput("nowhere to publish: give --tracker or a DHT".into()).into());
        }
        anyhow::bail!("publishing failed everywhere");
    }
    Ok(())
}
