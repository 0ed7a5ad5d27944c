//! The daemon's settings: built-in defaults, then a TOML file, then
//! overrides (the command line's flags and `SHOAL_…` environment variables,
//! which the binary merges, flags first). [`DaemonConfig::resolve`] applies
//! the layers and checks the result; [`DaemonConfig::to_toml`] prints it
//! (`--print-config`), the password masked.
//!
//! Defaults need no setup: the HTTP port on `127.0.0.1:9091` (Transmission's),
//! state in `$XDG_DATA_HOME/shoal`, downloads in the XDG download directory.
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (with the line).
        message: String,
    },
    /// A setting has an unusable value.
    #[error("{key}: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// One layer of settings: every field optional (a TOML file, or the
/// overrides from flags and the environment). Keys are kebab-case.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigLayer {
    /// HTTP address of the API, the RPC and the status page.
    pub http: Option<SocketAddr>,
    /// Address to accept peers on.
    pub listen: Option<SocketAddr>,
    /// Directory of the state database.
    pub state_dir: Option<PathBuf>,
    /// Default directory of new torrents.
    pub download_dir: Option<PathBuf>,
    /// Run a DHT node.
    pub dht: Option<bool>,
    /// DHT bootstrap nodes (`HOST:PORT`).
    pub dht_bootstrap: Option<Vec<SocketAddr>>,
    /// Use the public DHT routers as well.
    pub default_bootstrap: Option<bool>,
    /// `USER:PASS` for HTTP Basic auth.
    pub auth: Option<String>,
    /// Allow running without auth on a non-loopback address.
    pub no_auth: Option<bool>,
    /// Host names accepted in the `Host` header besides `localhost` and
    /// IP addresses.
    pub allowed_hosts: Option<Vec<String>>,
    /// A directory whose new .torrent files are added.
    pub watch_dir: Option<PathBuf>,
    /// Directories torrents may be saved under (empty: any absolute path).
    pub download_roots: Option<Vec<PathBuf>>,
    /// Largest request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Session download limit, bytes/s.
    pub max_download_rate: Option<u64>,
    /// Session upload limit, bytes/s.
    pub max_upload_rate: Option<u64>,
    /// Downloads transferring at once.
    pub download_queue_size: Option<usize>,
    /// Default seeding ratio goal.
    pub seed_ratio: Option<f64>,
    /// Default seeding idle goal, minutes.
    pub seed_idle_minutes: Option<u64>,
    /// Most connections per torrent.
    pub peer_limit_per_torrent: Option<usize>,
    /// Most connections in all.
    pub peer_limit_global: Option<usize>,
    /// Start torrents as soon as they are added.
    pub start_added_torrents: Option<bool>,
    /// Per-torrent series in `/metrics`.
    pub metrics_per_torrent: Option<bool>,
    /// Peer connections over uTP (BEP 29).
    pub utp: Option<bool>,
    /// Peer connections over TCP.
    pub tcp: Option<bool>,
    /// Local peer discovery (BEP 14).
    pub lsd: Option<bool>,
    /// Reserve each file's space at its first write (`false`: sparse files).
    pub preallocate: Option<bool>,
    /// Flooding search among connected shoal peers (answering theirs too).
    pub flood: Option<bool>,
    /// Publish the public torrents in the DHT keyword index, and keep
    /// republishing them.
    pub dht_publish: Option<bool>,
    /// Seconds between two publications of one torrent (default 1800).
    pub dht_publish_interval_secs: Option<u64>,
    /// MSE/PE encryption of peer connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Run a tracker: HTTP announces, scrapes, its page and search here.
    pub tracker_http: Option<SocketAddr>,
    /// Run a tracker: UDP announces and scrapes (BEP 15) here.
    pub tracker_udp: Option<SocketAddr>,
    /// The tracker tracks only the info-hashes in this file.
    pub tracker_allow: Option<PathBuf>,
    /// The tracker indexes the names of announced torrents (default true).
    pub tracker_index: Option<bool>,
}

/// The effective settings of a daemon.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonConfig {
    /// HTTP address of the API, the RPC and the status page.
    pub http: SocketAddr,
    /// Address to accept peers on.
    pub listen: SocketAddr,
    /// Directory of the state database.
    pub state_dir: PathBuf,
    /// Default directory of new torrents.
    pub download_dir: PathBuf,
    /// Run a DHT node.
    pub dht: bool,
    /// DHT bootstrap nodes (`HOST:PORT`).
    pub dht_bootstrap: Vec<SocketAddr>,
    /// Use the public DHT routers as well.
    pub default_bootstrap: bool,
    /// `USER:PASS` for HTTP Basic auth.
    #[serde(serialize_with = "mask")]
    pub auth: Option<String>,
    /// Allow running without auth on a non-loopback address.
    pub no_auth: bool,
    /// Host names accepted besides `localhost` and IP addresses.
    pub allowed_hosts: Vec<String>,
    /// A directory whose new .torrent files are added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_dir: Option<PathBuf>,
    /// Directories torrents may be saved under (empty: any absolute path).
    pub download_roots: Vec<PathBuf>,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Session download limit, bytes/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_download_rate: Option<u64>,
    /// Session upload limit, bytes/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upload_rate: Option<u64>,
    /// Downloads transferring at once (`None`: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_queue_size: Option<usize>,
    /// Default seeding ratio goal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_ratio: Option<f64>,
    /// Default seeding idle goal, minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_idle_minutes: Option<u64>,
    /// Most connections per torrent.
    pub peer_limit_per_torrent: usize,
    /// Most connections in all.
    pub peer_limit_global: usize,
    /// Start torrents as soon as they are added.
    pub start_added_torrents: bool,
    /// Per-torrent series in `/metrics`.
    pub metrics_per_torrent: bool,
    /// Peer connections over uTP (BEP 29).
    pub utp: bool,
    /// Peer connections over TCP.
    pub tcp: bool,
    /// Local peer discovery (BEP 14).
    pub lsd: bool,
    /// Reserve each file's whole size (`fallocate`) at its first write, so
    /// a download does not fragment or run out of room half-way; `false`
    /// makes sparse files (libtorrent's and Transmission's default).
    pub preallocate: bool,
    /// Flooding search among connected shoal peers: the `shoal_search`
    /// extension is advertised on every connection, their queries are
    /// answered from our (non-private) torrents and forwarded, and
    /// `/api/v1/search` floods ours.
    pub flood: bool,
    /// Publish the public torrents in the DHT keyword index and republish
    /// them every `dht_publish_interval` (see [`crate::publish`]); off by
    /// default, as it tells the DHT what this daemon shares.
    pub dht_publish: bool,
    /// Time between two publications of one torrent.
    pub dht_publish_interval: std::time::Duration,
    /// MSE/PE encryption of peer connections.
    pub encryption: Encryption,
    /// The built-in tracker's HTTP address (with `tracker_udp`: `None` for
    /// both runs no tracker). See [`crate::tracker`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_http: Option<SocketAddr>,
    /// The built-in tracker's UDP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_udp: Option<SocketAddr>,
    /// The built-in tracker tracks only the info-hashes in this file (40
    /// hex digits a line); `None`: an open tracker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_allow: Option<PathBuf>,
    /// The built-in tracker indexes the names of the torrents announced to
    /// it (the central index: `/search` on its HTTP port).
    pub tracker_index: bool,
    /// What the file, the environment and the flags gave (a setting given
    /// there wins over the value a client saved with `session-set`).
    #[serde(skip)]
    pub given: ConfigLayer,
}

fn mask<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v.as_deref().and_then(|a| a.split_once(':')) {
        Some((user, _)) => s.serialize_str(&format!("{user}:********")),
        None => s.serialize_none(),
    }
}

/// MSE/PE (message stream encryption) of peer connections: the config
/// file's `encryption = "prefer" | "require" | "disable"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// Try encrypted, fall back to plain; accept both (the default).
    #[default]
    Prefer,
    /// Encrypted (RC4) connections only.
    Require,
    /// Plain connections only.
    Disable,
}

impl From<Encryption> for shoal_engine::EncryptionPolicy {
    fn from(e: Encryption) -> Self {
        match e {
            Encryption::Prefer => shoal_engine::EncryptionPolicy::Prefer,
            Encryption::Require => shoal_engine::EncryptionPolicy::Require,
            Encryption::Disable => shoal_engine::EncryptionPolicy::Disable,
        }
    }
}

/// The request-body limit by default: a large .torrent in base64.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 9091)),
            listen: SocketAddr::from(([0, 0, 0, 0], 51413)),
            state_dir: default_state_dir(),
            download_dir: default_download_dir(),
            dht: true,
            dht_bootstrap: Vec::new(),
            default_bootstrap: true,
            auth: None,
            no_auth: false,
            allowed_hosts: Vec::new(),
            watch_dir: None,
            download_roots: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY,
            max_download_rate: None,
            max_upload_rate: None,
            download_queue_size: None,
            seed_ratio: None,
            seed_idle_minutes: None,
            peer_limit_per_torrent: 50,
            peer_limit_global: 500,
            start_added_torrents: true,
            metrics_per_torrent: false,
            utp: true,
            tcp: true,
            lsd: true,
            preallocate: true,
            flood: true,
            dht_publish: false,
            dht_publish_interval: shoal_search::kad::REPUBLISH,
            encryption: Encryption::Prefer,
            tracker_http: None,
            tracker_udp: None,
            tracker_allow: None,
            tracker_index: true,
            given: ConfigLayer::default(),
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => home().unwrap_or_else(|| PathBuf::from(".")).join(fallback),
    }
}

/// `$XDG_DATA_HOME/shoal` (`~/.local/share/shoal`).
pub fn default_state_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("shoal")
}

/// `$XDG_CONFIG_HOME/shoal/daemon.toml`, read when it exists and no
/// `--config` is given.
pub fn default_config_file() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config")
        .join("shoal")
        .join("daemon.toml")
}

/// The XDG download directory: `$XDG_DOWNLOAD_DIR`, else the one named in
/// `$XDG_CONFIG_HOME/user-dirs.dirs`, else `~/Downloads`.
pub fn default_download_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let dirs = xdg("XDG_CONFIG_HOME", ".config").join("user-dirs.dirs");
    if let Ok(text) = std::fs::read_to_string(dirs) {
        if let Some(d) = parse_user_dirs(&text, home().as_deref()) {
            return d;
        }
    }
    home()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("Downloads")
}

/// `XDG_DOWNLOAD_DIR="$HOME/..."` from a `user-dirs.dirs` file.
fn parse_user_dirs(text: &str, home: Option<&Path>) -> Option<PathBuf> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("XDG_DOWNLOAD_DIR="))?;
    let v = line["XDG_DOWNLOAD_DIR=".len()..].trim_matches('"');
    if let Some(rest) = v.strip_prefix("$HOME") {
        let rest = rest.trim_start_matches('/');
        return Some(home?.join(rest));
    }
    v.starts_with('/').then(|| PathBuf::from(v))
}

impl ConfigLayer {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// This layer with `top`'s values where `top` has them.
    pub fn under(self, top: &ConfigLayer) -> ConfigLayer {
        macro_rules! pick {
            ($($f:ident),*) => { ConfigLayer { $($f: top.$f.clone().or(self.$f),)* } };
        }
        pick!(
            http,
            listen,
            state_dir,
            download_dir,
            dht,
            dht_bootstrap,
            default_bootstrap,
            auth,
            no_auth,
            allowed_hosts,
            watch_dir,
            download_roots,
            max_body_bytes,
            max_download_rate,
            max_upload_rate,
            download_queue_size,
            seed_ratio,
            seed_idle_minutes,
            peer_limit_per_torrent,
            peer_limit_global,
            start_added_torrents,
            metrics_per_torrent,
            utp,
            tcp,
            lsd,
            preallocate,
            flood,
            dht_publish,
            dht_publish_interval_secs,
            encryption,
            tracker_http,
            tracker_udp,
            tracker_allow,
            tracker_index
        )
    }
}

impl DaemonConfig {
    /// Defaults, then `file` (when given), then `overrides`; checked.
    pub fn resolve(
        file: Option<&Path>,
        overrides: &ConfigLayer,
    ) -> Result<DaemonConfig, ConfigError> {
        let base = match file {
            Some(p) => ConfigLayer::from_file(p)?,
            None => ConfigLayer::default(),
        };
        Self::from_layer(base.under(overrides))
    }

    /// Defaults with `l`'s values; checked.
    pub fn from_layer(l: ConfigLayer) -> Result<DaemonConfig, ConfigError> {
        let d = DaemonConfig::default();
        let given = l.clone();
        let c = DaemonConfig {
            given,
            http: l.http.unwrap_or(d.http),
            listen: l.listen.unwrap_or(d.listen),
            state_dir: l.state_dir.unwrap_or(d.state_dir),
            download_dir: l.download_dir.unwrap_or(d.download_dir),
            dht: l.dht.unwrap_or(d.dht),
            dht_bootstrap: l.dht_bootstrap.unwrap_or(d.dht_bootstrap),
            default_bootstrap: l.default_bootstrap.unwrap_or(d.default_bootstrap),
            auth: l.auth.filter(|a| !a.is_empty()),
            no_auth: l.no_auth.unwrap_or(d.no_auth),
            allowed_hosts: l.allowed_hosts.unwrap_or(d.allowed_hosts),
            watch_dir: l.watch_dir,
            download_roots: l.download_roots.unwrap_or(d.download_roots),
            max_body_bytes: l.max_body_bytes.unwrap_or(d.max_body_bytes),
            max_download_rate: l.max_download_rate,
            max_upload_rate: l.max_upload_rate,
            download_queue_size: l.download_queue_size,
            seed_ratio: l.seed_ratio,
            seed_idle_minutes: l.seed_idle_minutes,
            peer_limit_per_torrent: l.peer_limit_per_torrent.unwrap_or(d.peer_limit_per_torrent),
            peer_limit_global: l.peer_limit_global.unwrap_or(d.peer_limit_global),
            start_added_torrents: l.start_added_torrents.unwrap_or(d.start_added_torrents),
            metrics_per_torrent: l.metrics_per_torrent.unwrap_or(d.metrics_per_torrent),
            utp: l.utp.unwrap_or(d.utp),
            tcp: l.tcp.unwrap_or(d.tcp),
            lsd: l.lsd.unwrap_or(d.lsd),
            preallocate: l.preallocate.unwrap_or(d.preallocate),
            flood: l.flood.unwrap_or(d.flood),
            dht_publish: l.dht_publish.unwrap_or(d.dht_publish),
            dht_publish_interval: l
                .dht_publish_interval_secs
                .map_or(d.dht_publish_interval, |s| {
                    std::time::Duration::from_secs(s.max(1))
                }),
            encryption: l.encryption.unwrap_or(d.encryption),
            tracker_http: l.tracker_http,
            tracker_udp: l.tracker_udp,
            tracker_allow: l.tracker_allow,
            tracker_index: l.tracker_index.unwrap_or(d.tracker_index),
        };
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(a) = &self.auth {
            match a.split_once(':') {
                Some((u, p)) if !u.is_empty() && !p.is_empty() => {}
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "auth",
                        message: "expected USER:PASS".into(),
                    })
                }
            }
        }
        if !self.http.ip().is_loopback() && self.auth.is_none() && !self.no_auth {
            return Err(ConfigError::Invalid {
                key: "http",
                message: format!(
                    "{} is reachable from other machines: set --auth USER:PASS (or turn auth off explicitly with --no-auth)",
                    self.http
                ),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max-body-bytes",
                message: "at least 1024".into(),
            });
        }
        if let Some(r) = self.seed_ratio {
            if !r.is_finite() || r < 0.0 {
                return Err(ConfigError::Invalid {
                    key: "seed-ratio",
                    message: "a non-negative number".into(),
                });
            }
        }
        for (key, p) in [
            ("state-dir", &self.state_dir),
            ("download-dir", &self.download_dir),
        ] {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::Invalid {
                    key,
                    message: "empty path".into(),
                });
            }
        }
        Ok(())
    }

    /// The settings as TOML (the password masked).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the settings: {e}\n"))
    }

    /// Whether the built-in tracker runs.
    pub fn runs_tracker(&self) -> bool {
        self.tracker_http.is_some() || self.tracker_udp.is_some()
    }

    /// The `user`, `pass` of the auth setting.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_deref().and_then(|a| a.split_once(':'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.toml");
        std::fs::write(
            &f,
            "http = \"127.0.0.1:7000\"\ndownload-dir = \"/from/file\"\nseed-ratio = 2\n",
        )
        .unwrap();
        let over = ConfigLayer {
            http: Some("127.0.0.1:8000".parse().unwrap()),
            ..ConfigLayer::default()
        };
        let c = DaemonConfig::resolve(Some(&f), &over).unwrap();
        assert_eq!(c.http.port(), 8000, "the override wins");
        assert_eq!(c.download_dir, PathBuf::from("/from/file"), "then the file");
        assert_eq!(c.seed_ratio, Some(2.0));
        assert_eq!(c.peer_limit_per_torrent, 50, "then the default");
        assert!(c.flood, "flooding search is on by default");
        assert!(!c.dht_publish, "publishing in the DHT index is opt-in");
        assert!(c.preallocate, "files are preallocated by default");
        std::fs::write(&f, "flood = false\npreallocate = false\n").unwrap();
        let off = DaemonConfig::resolve(Some(&f), &ConfigLayer::default()).unwrap();
        assert!(!off.flood);
        assert!(!off.preallocate);
        assert!(off.to_toml().contains("preallocate = false"));
        let printed = c.to_toml();
        assert!(printed.contains("http = \"127.0.0.1:8000\""), "{printed}");
        assert!(!c.runs_tracker(), "no tracker unless asked");
        std::fs::write(
            &f,
            "tracker-udp = \"127.0.0.1:6969\"\ntracker-index = false\n",
        )
        .unwrap();
        let t = DaemonConfig::resolve(Some(&f), &ConfigLayer::default()).unwrap();
        assert!(t.runs_tracker() && !t.tracker_index && t.tracker_http.is_none());
        assert!(t.to_toml().contains("tracker-udp = \"127.0.0.1:6969\""));
    }

    #[test]
    fn bad_files_and_values_are_explained() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.toml");
        std::fs::write(&f, "htp = \"x\"\n").unwrap();
        let e = DaemonConfig::resolve(Some(&f), &ConfigLayer::default()).unwrap_err();
        assert!(e.to_string().contains("htp"), "{e}");
        std::fs::write(&f, "http = 5\n").unwrap();
        assert!(DaemonConfig::resolve(Some(&f), &ConfigLayer::default()).is_err());
        std::fs::write(&f, "encryption = \"sometimes\"\n").unwrap();
        let e = DaemonConfig::resolve(Some(&f), &ConfigLayer::default()).unwrap_err();
        assert!(
            e.to_string().contains("prefer"),
            "the choices are named: {e}"
        );
        std::fs::write(&f, "encryption = \"require\"\n").unwrap();
        let c = DaemonConfig::resolve(Some(&f), &ConfigLayer::default()).unwrap();
        assert_eq!(c.encryption, Encryption::Require);
        assert!(c.to_toml().contains("encryption = \"require\""));
        let open = ConfigLayer {
            http: Some("0.0.0.0:9091".parse().unwrap()),
            ..ConfigLayer::default()
        };
        let e = DaemonConfig::from_layer(open.clone()).unwrap_err();
        assert!(e.to_string().contains("--auth"), "{e}");
        let ok = ConfigLayer {
            auth: Some("me:secret".into()),
            ..open.clone()
        };
        let c = DaemonConfig::from_layer(ok).unwrap();
        assert!(c.to_toml().contains("me:********"));
        assert!(!c.to_toml().contains("secret"));
        let off = ConfigLayer {
            no_auth: Some(true),
            ..open
        };
        assert!(DaemonConfig::from_layer(off).is_ok());
        let bad = ConfigLayer {
            auth: Some("nocolon".into()),
            ..ConfigLayer::default()
        };
        assert!(DaemonConfig::from_layer(bad).is_err());
    }

    #[test]
    fn user_dirs_file() {
        let home = Path::new("/home/u");
        assert_eq!(
            parse_user_dirs("# x\nXDG_DOWNLOAD_DIR=\"$HOME/Dl\"\n", Some(home)),
            Some(PathBuf::from("/home/u/Dl"))
        );
        assert_eq!(
            parse_user_dirs("XDG_DOWNLOAD_DIR=\"/srv/dl\"", None),
            Some(PathBuf::from("/srv/dl"))
        );
        assert_eq!(parse_user_dirs("XDG_DOWNLOAD_DIR=\"rel\"", None), None);
    }
}
