//! Session settings that change at run time (`session-set`, the REST
//! API): the default download directory, the speed limits, the download
//! queue, the seeding goals. They start from the configuration; a value a
//! client saved is kept in the database and comes back at the next start,
//! unless the configuration (file, environment, flags) names that setting,
//! which then wins.
use crate::config::DaemonConfig;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Transmission's speed unit: 1 kB/s = 1000 bytes/s.
pub const KB: u64 = 1000;

/// See the module docs. Speeds in kB/s (Transmission's unit), idle time in
/// minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Where new torrents go by default.
    pub download_dir: PathBuf,
    /// Download limit, kB/s (kept while disabled).
    pub speed_limit_down: u64,
    /// Whether the download limit applies.
    pub speed_limit_down_enabled: bool,
    /// Upload limit, kB/s (kept while disabled).
    pub speed_limit_up: u64,
    /// Whether the upload limit applies.
    pub speed_limit_up_enabled: bool,
    /// Whether the download queue applies.
    pub download_queue_enabled: bool,
    /// Downloads transferring at once.
    pub download_queue_size: usize,
    /// Default seeding ratio goal.
    pub seed_ratio_limit: f64,
    /// Whether the ratio goal applies.
    pub seed_ratio_limited: bool,
    /// Default idle seeding goal, minutes.
    pub idle_seeding_limit: u64,
    /// Whether the idle goal applies.
    pub idle_seeding_limit_enabled: bool,
    /// Start torrents as soon as they are added.
    pub start_added_torrents: bool,
}

impl Settings {
    /// From the configuration alone.
    pub fn from_config(c: &DaemonConfig) -> Settings {
        let kb = |b: u64| b.div_ceil(KB);
        Settings {
            download_dir: c.download_dir.clone(),
            speed_limit_down: c.max_download_rate.map_or(100, kb),
            speed_limit_down_enabled: c.max_download_rate.is_some(),
            speed_limit_up: c.max_upload_rate.map_or(100, kb),
            speed_limit_up_enabled: c.max_upload_rate.is_some(),
            download_queue_enabled: c.download_queue_size.is_some(),
            download_queue_size: c.download_queue_size.unwrap_or(5),
            seed_ratio_limit: c.seed_ratio.unwrap_or(2.0),
            seed_ratio_limited: c.seed_ratio.is_some(),
            idle_seeding_limit: c.seed_idle_minutes.unwrap_or(30),
            idle_seeding_limit_enabled: c.seed_idle_minutes.is_some(),
            start_added_torrents: c.start_added_torrents,
        }
    }

    /// From the configuration, then what clients saved (where the
    /// configuration does not name the setting).
    pub fn load(c: &DaemonConfig, store: &Store) -> Settings {
        let mut s = Self::from_config(c);
        let saved = match store.settings() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "reading saved settings");
                return s;
            }
        };
        let g = &c.given;
        let get = |k: &str| saved.get(k);
        macro_rules! take {
            ($field:ident, $given:expr, $as:ident) => {
                if !$given {
                    if let Some(v) = get(stringify!($field)).and_then(|v| v.$as()) {
                        s.$field = v.into();
                    }
                }
            };
        }
        if g.download_dir.is_none() {
            if let Some(v) = get("download_dir").and_then(|v| v.as_str()) {
                s.download_dir = PathBuf::from(v);
            }
        }
        take!(speed_limit_down, g.max_download_rate.is_some(), as_u64);
        take!(
            speed_limit_down_enabled,
            g.max_download_rate.is_some(),
            as_bool
        );
        take!(speed_limit_up, g.max_upload_rate.is_some(), as_u64);
        take!(speed_limit_up_enabled, g.max_upload_rate.is_some(), as_bool);
        take!(
            download_queue_enabled,
            g.download_queue_size.is_some(),
            as_bool
        );
        if g.download_queue_size.is_none() {
            if let Some(v) = get("download_queue_size").and_then(|v| v.as_u64()) {
                s.download_queue_size = usize::try_from(v).unwrap_or(usize::MAX);
            }
        }
        take!(seed_ratio_limit, g.seed_ratio.is_some(), as_f64);
        take!(seed_ratio_limited, g.seed_ratio.is_some(), as_bool);
        take!(idle_seeding_limit, g.seed_idle_minutes.is_some(), as_u64);
        take!(
            idle_seeding_limit_enabled,
            g.seed_idle_minutes.is_some(),
            as_bool
        );
        take!(
            start_added_torrents,
            g.start_added_torrents.is_some(),
            as_bool
        );
        s
    }

    /// Every setting as (snake_case name, value), as saved.
    pub fn entries(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::json;
        vec![
            ("download_dir", json!(self.download_dir.to_string_lossy())),
            ("speed_limit_down", json!(self.speed_limit_down)),
            (
                "speed_limit_down_enabled",
                json!(self.speed_limit_down_enabled),
            ),
            ("speed_limit_up", json!(self.speed_limit_up)),
            ("speed_limit_up_enabled", json!(self.speed_limit_up_enabled)),
            ("download_queue_enabled", json!(self.download_queue_enabled)),
            ("download_queue_size", json!(self.download_queue_size)),
            ("seed_ratio_limit", json!(self.seed_ratio_limit)),
            ("seed_ratio_limited", json!(self.seed_ratio_limited)),
            ("idle_seeding_limit", json!(self.idle_seeding_limit)),
            (
                "idle_seeding_limit_enabled",
                json!(self.idle_seeding_limit_enabled),
            ),
            ("start_added_torrents", json!(self.start_added_torrents)),
        ]
    }

    /// The session download limit in bytes/s.
    pub fn download_rate(&self) -> Option<u64> {
        self.speed_limit_down_enabled
            .then(|| self.speed_limit_down.saturating_mul(KB))
    }

    /// The session upload limit in bytes/s.
    pub fn upload_rate(&self) -> Option<u64> {
        self.speed_limit_up_enabled
            .then(|| self.speed_limit_up.saturating_mul(KB))
    }

    /// The download queue's size, when it applies.
    pub fn queue_size(&self) -> Option<usize> {
        self.download_queue_enabled
            .then_some(self.download_queue_size.max(1))
    }

    /// The default ratio goal, when it applies.
    pub fn seed_ratio(&self) -> Option<f64> {
        self.seed_ratio_limited.then_some(self.seed_ratio_limit)
    }

    /// The default idle goal, when it applies.
    pub fn seed_idle(&self) -> Option<Duration> {
        self.idle_seeding_limit_enabled
            .then(|| Duration::from_secs(self.idle_seeding_limit.saturating_mul(60)))
    }

    /// Applies these settings to the session and saves them.
    pub async fn apply(&self, shared: &crate::Shared) -> Result<(), ApplyError> {
        let session = &shared.session;
        session.set_rate_limits(self.upload_rate(), self.download_rate());
        session
            .set_live_settings(shoal_engine::LiveSettings {
                max_active_downloads: self.queue_size(),
                seed_ratio: self.seed_ratio(),
                seed_idle: self.seed_idle(),
            })
            .await;
        *shared.settings.write().unwrap_or_else(|e| e.into_inner()) = self.clone();
        let store = shared.store.clone();
        let entries = self.entries();
        tokio::task::spawn_blocking(move || store.save_settings(&entries)).await??;
        Ok(())
    }
}

/// Why new settings were applied but not saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The database refused them.
    #[error(transparent)]
    Save(#[from] shoal_engine::persist::PersistError),
    /// The blocking save task did not finish.
    #[error("saving the settings: {0}")]
    Join(#[from] tokio::task::JoinError),
}
