//! Shared helpers of the daemon's integration tests: an in-process daemon
//! on loopback, an engine session seeding a torrent, and RPC calls with the
//! session-id handshake.
#![allow(dead_code)]

use base64::Engine as _;
use rand::{RngCore, SeedableRng};
use serde_json::Value;
use shoal_daemon::client::{request, Response};
use shoal_daemon::{Daemon, DaemonConfig};
use shoal_engine::{AddTorrentParams, Session, SessionConfig, TorrentState};
use shoal_metainfo::{CreateOptions, Torrent};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long any wait in these tests may take.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The settings of a test daemon under `root` (no DHT, loopback only).
pub fn config(root: &Path) -> DaemonConfig {
    DaemonConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: root.join("state"),
        download_dir: root.join("downloads"),
        dht: false,
        default_bootstrap: false,
        ..DaemonConfig::default()
    }
}

/// A torrent of one random file of `len` bytes under `root/src/NAME`:
/// (its .torrent bytes, the parsed torrent, the directory holding the file).
pub fn make_torrent(
    root: &Path,
    name: &str,
    len: usize,
    seed: u64,
) -> (Vec<u8>, Arc<Torrent>, PathBuf) {
    let parent = root.join("src").join(name);
    std::fs::create_dir_all(&parent).unwrap();
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    let file = parent.join(name);
    std::fs::write(&file, data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&file, &opts, &|_| {}).unwrap();
    let t = Arc::new(Torrent::from_bytes(&bytes).unwrap());
    (bytes, t, parent)
}

/// An engine session seeding `t` from `parent`; returns it and its address.
pub async fn seeder(t: &Arc<Torrent>, parent: &Path) -> (Session, SocketAddr) {
    let s = Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let h = s
        .add(AddTorrentParams::torrent(t.clone(), parent))
        .await
        .unwrap();
    tokio::time::timeout(LIMIT, h.wait_for(|st| st.state == TorrentState::Seeding))
        .await
        .expect("the seeder checks its data");
    let addr = s.local_addr();
    (s, addr)
}

/// A magnet of `t` naming the peer `at` (`x.pe`).
pub fn magnet_with_peer(t: &Torrent, at: SocketAddr) -> String {
    format!(
        "magnet:?xt=urn:btih:{}&dn={}&x.pe={at}",
        t.info_hashes().v1.unwrap().to_hex(),
        t.name()
    )
}

/// Base64 of a .torrent, as `torrent-add`'s `metainfo`.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An RPC client keeping the session id, as the *arr apps do.
pub struct Rpc {
    /// `http://127.0.0.1:PORT/transmission/rpc`.
    pub url: String,
    /// The session id learned from a 409.
    pub sid: String,
    /// `Authorization` header value, if any.
    pub auth: Option<String>,
}

impl Rpc {
    /// A client of `d`.
    pub fn new(d: &Daemon) -> Rpc {
        Rpc {
            url: format!("http://{}/transmission/rpc", d.http_addr()),
            sid: String::new(),
            auth: None,
        }
    }

    /// One POST with the current session id.
    pub async fn raw(&self, body: Vec<u8>, extra: &[(&str, String)]) -> Response {
        let mut h: Vec<(&str, String)> = vec![
            ("X-Transmission-Session-Id", self.sid.clone()),
            ("Content-Type", "application/json".into()),
        ];
        if let Some(a) = &self.auth {
            h.push(("Authorization", a.clone()));
        }
        h.extend(extra.iter().cloned());
        request("POST", &self.url, &h, body, 64 << 20, LIMIT)
            .await
            .unwrap()
    }

    /// Calls `method` with `args`; on 409 learns the id and retries once.
    /// Returns the whole answer (`result`, `arguments`).
    pub async fn call(&mut self, method: &str, args: Value) -> Value {
        let body =
            serde_json::to_vec(&serde_json::json!({"method": method, "arguments": args})).unwrap();
        let mut r = self.raw(body.clone(), &[]).await;
        if r.status == 409 {
            self.sid = r.headers["x-transmission-session-id"]
                .to_str()
                .unwrap()
                .to_owned();
            r = self.raw(body, &[]).await;
        }
        assert_eq!(
            r.status,
            200,
            "{method}: {}",
            String::from_utf8_lossy(&r.body)
        );
        serde_json::from_slice(&r.body).unwrap()
    }

    /// A JSON-RPC 2.0 call (Transmission 4.1), asserting it succeeded;
    /// returns `result`.
    pub async fn jsonrpc(&mut self, method: &str, params: Value) -> Value {
        self.ok("session-stats", Value::Null).await; // learns the session id
        let body = serde_json::to_vec(
            &serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 7}),
        )
        .unwrap();
        let r = self.raw(body, &[]).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["id"], 7, "{v}");
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// Like [`Rpc::call`], asserting `result` is `success`; returns `arguments`.
    pub async fn ok(&mut self, method: &str, args: Value) -> Value {
        let v = self.call(method, args).await;
        assert_eq!(v["result"], "success", "{method}: {v}");
        v["arguments"].clone()
    }
}

/// Polls `f` every 50 ms until it gives `Some`, within [`LIMIT`].
pub async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let end = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
