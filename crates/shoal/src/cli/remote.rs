//! The clients of a running `shoal daemon`: `shoal add`, `ls`, `rm`,
//! `pause`, `resume` and `watch`, over its REST API (`/api/v1`).
//!
//! `--url` (or `SHOAL_URL`) names the daemon, `http://127.0.0.1:9091` by
//! default; `--auth USER:PASS` (or `SHOAL_AUTH`) when it asks for it.
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Args;
use serde_json::{json, Value};

use super::InvalidInput;

/// How to reach the daemon.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The daemon's HTTP address.
    #[arg(
        long,
        value_name = "URL",
        env = "SHOAL_URL",
        default_value = "http://127.0.0.1:9091"
    )]
    pub url: String,
    /// HTTP Basic auth.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "SHOAL_AUTH",
        hide_env_values = true
    )]
    pub auth: Option<String>,
}

/// Arguments of `shoal add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// A .torrent file, a magnet URI or an http(s) URL of a .torrent.
    pub source: String,
    /// Where to save it (default: the daemon's download directory).
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<String>,
    /// Add it stopped.
    #[arg(long)]
    pub paused: bool,
    /// The daemon.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `shoal ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print the daemon's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The daemon.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `shoal rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The torrent: its id or info-hash.
    pub id: String,
    /// Delete its downloaded data as well.
    #[arg(long)]
    pub delete: bool,
    /// The daemon.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `shoal pause` and `shoal resume`.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The torrent: its id or info-hash.
    pub id: String,
    /// The daemon.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `shoal watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only these torrents (ids or info-hashes); with them, exit once all are complete.
    pub ids: Vec<String>,
    /// The daemon.
    #[command(flatten)]
    pub remote: Remote,
}

impl Remote {
    fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
    }

    /// One request to `/api/v1/PATH`; the JSON answer, or the daemon's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.call_within(method, path, body, Duration::from_secs(30))
    }

    /// [`Remote::call`] bounded by `timeout`.
    pub(crate) fn call_within(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/{path}", self.url.trim_end_matches('/'));
        let mut headers = Vec::new();
        if let Some(a) = &self.auth {
            let b = base64::engine::general_purpose::STANDARD.encode(a);
            headers.push(("Authorization", format!("Basic {b}")));
        }
        let body = match body {
            Some(v) => {
                headers.push(("Content-Type", "application/json".to_owned()));
                serde_json::to_vec(&v)?
            }
            None => Vec::new(),
        };
        let r = Self::runtime()?
            .block_on(shoal_daemon::client::request(
                method,
                &url,
                &headers,
                body,
                64 << 20,
                timeout,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!("{method} {url} (is `shoal daemon` running? --url names it)")
            })?;
        let v: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).trim().to_owned()));
        if r.status >= 300 {
            let msg = v["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            if r.status < 500 && r.status != 401 && r.status != 421 {
                return Err(
                    InvalidInput(format!("{method} {url}: HTTP {}: {msg}", r.status)).into(),
                );
            }
            bail!("{method} {url}: HTTP {}: {msg}", r.status);
        }
        Ok(v)
    }
}

/// Runs `shoal add`.
pub fn add(args: AddArgs) -> anyhow::Result<()> {
    let s = args.source.as_str();
    let mut body = if s.starts_with("magnet:") {
        json!({ "magnet": s })
    } else if s.starts_with("http://") || s.starts_with("https://") {
        json!({ "url": s })
    } else {
        let bytes = std::fs::read(s).with_context(|| format!("reading {s}"))?;
        json!({ "metainfo": base64::engine::general_purpose::STANDARD.encode(bytes) })
    };
    if let Some(d) = &args.download_dir {
        let abs = std::path::absolute(d).with_context(|| d.clone())?;
        body["download_dir"] = json!(abs.to_string_lossy());
    }
    if args.paused {
        body["paused"] = json!(true);
    }
    let v = args.remote.call("POST", "torrents", Some(body))?;
    let what = if v["duplicate"] == true {
        "already there"
    } else {
        "added"
    };
    println!(
        "{} {what}: {} ({})",
        v["id"],
        v["name"].as_str().unwrap_or(""),
        v["info_hash"].as_str().unwrap_or("")
    );
    Ok(())
}

fn rate(b: u64) -> String {
    match b {
        0 => "-".into(),
        b if b < 1 << 20 => format!("{:.0} KiB/s", b as f64 / 1024.0),
        b => format!("{:.1} MiB/s", b as f64 / f64::from(1 << 20)),
    }
}

/// Runs `shoal ls`.
pub fn ls(args: LsArgs) -> anyhow::Result<()> {
    let v = args.remote.call("GET", "torrents", None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:>4}  {:>6}  {:<12} {:>11} {:>11}  NAME",
        "ID", "DONE", "STATE", "DOWN", "UP"
    );
    for t in v.as_array().into_iter().flatten() {
        println!(
            "{:>4}  {:>5.1}%  {:<12} {:>11} {:>11}  {}",
            t["id"],
            t["progress"].as_f64().unwrap_or(0.0) * 100.0,
            t["state"].as_str().unwrap_or("?"),
            rate(t["download_rate"].as_u64().unwrap_or(0)),
            rate(t["upload_rate"].as_u64().unwrap_or(0)),
            t["name"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Runs `shoal rm`.
pub fn rm(args: RmArgs) -> anyhow::Result<()> {
    let path = format!("torrents/{}?delete_data={}", args.id, args.delete);
    args.remote.call("DELETE", &path, None)?;
    println!(
        "{} removed{}",
        args.id,
        if args.delete { " with its data" } else { "" }
    );
    Ok(())
}

/// Runs `shoal pause` (`resume == false`) or `shoal resume`.
pub fn pause_resume(args: IdArgs, resume: bool) -> anyhow::Result<()> {
    let action = if resume { "resume" } else { "pause" };
    args.remote
        .call("POST", &format!("torrents/{}/{action}", args.id), None)?;
    println!("{} {}d", args.id, action);
    Ok(())
}

/// Runs `shoal watch`: one progress bar per torrent, refreshed every second.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let multi = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template("{prefix:>4} {bar:30} {percent:>3}% {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let mut bars: std::collections::BTreeMap<u64, indicatif::ProgressBar> = Default::default();
    loop {
        let v = args.remote.call("GET", "torrents", None)?;
        let mut all_done = true;
        let mut seen = 0;
        for t in v.as_array().into_iter().flatten() {
            let id = t["id"].as_u64().unwrap_or(0);
            let hash = t["info_hash"].as_str().unwrap_or("");
            if !args.ids.is_empty()
                && !args
                    .ids
                    .iter()
                    .any(|k| k == &id.to_string() || k.eq_ignore_ascii_case(hash))
            {
                continue;
            }
            seen += 1;
            let bar = bars.entry(id).or_insert_with(|| {
                let b = multi.add(indicatif::ProgressBar::new(1000));
                b.set_style(style.clone());
                b.set_prefix(id.to_string());
                b
            });
            let p = t["progress"].as_f64().unwrap_or(0.0);
            bar.set_position((p * 1000.0) as u64);
            bar.set_message(format!(
                "{:<11} down {} up {} {}",
                t["state"].as_str().unwrap_or("?"),
                rate(t["download_rate"].as_u64().unwrap_or(0)),
                rate(t["upload_rate"].as_u64().unwrap_or(0)),
                t["name"].as_str().unwrap_or("")
            ));
            all_done &= p >= 1.0;
        }
        if !args.ids.is_empty() && seen == 0 {
            return Err(InvalidInput(format!("no torrent {}", args.ids.join(", "))).into());
        }
        if !args.ids.is_empty() && all_done {
            for b in bars.values() {
                b.finish();
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
