//! Bandwidth groups as clients see them (Transmission's `group-set` and
//! `group-get`): speeds in kB/s, kept while a limit is disabled, saved in
//! the database under one settings key and given to the engine's groups,
//! which the torrents put in a group draw from.
use crate::settings::KB;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use shoal_engine::{BandwidthGroup, GroupError, Session};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The settings key holding every group.
const KEY: &str = "bandwidth_groups";

/// One group as saved and as `group-get` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    /// The group's name.
    pub name: String,
    /// Download limit, kB/s (kept while disabled).
    pub speed_limit_down: u64,
    /// Whether the download limit applies.
    pub speed_limit_down_enabled: bool,
    /// Upload limit, kB/s (kept while disabled).
    pub speed_limit_up: u64,
    /// Whether the upload limit applies.
    pub speed_limit_up_enabled: bool,
    /// Whether the session's limits also apply to the group's torrents.
    pub honors_session_limits: bool,
}

impl GroupSettings {
    /// A group without limits of its own, as one named for the first time.
    pub fn new(name: &str) -> Self {
        GroupSettings {
            name: name.to_owned(),
            speed_limit_down: 0,
            speed_limit_down_enabled: false,
            speed_limit_up: 0,
            speed_limit_up_enabled: false,
            honors_session_limits: true,
        }
    }

    /// What the engine enforces (a limit of 0 kB/s enabled stops the
    /// transfer almost entirely: 1 byte/s, as Transmission's 0 does).
    pub fn engine(&self) -> BandwidthGroup {
        let rate = |on: bool, kb: u64| on.then(|| kb.saturating_mul(KB).max(1));
        BandwidthGroup {
            max_upload_rate: rate(self.speed_limit_up_enabled, self.speed_limit_up),
            max_download_rate: rate(self.speed_limit_down_enabled, self.speed_limit_down),
            honors_session_limits: self.honors_session_limits,
        }
    }

    /// A group the engine holds but no client configured (named only by
    /// `torrent-set`).
    fn from_engine(name: &str, g: BandwidthGroup) -> Self {
        let kb = |r: Option<u64>| r.map_or(0, |b| b.div_ceil(KB));
        GroupSettings {
            name: name.to_owned(),
            speed_limit_down: kb(g.max_download_rate),
            speed_limit_down_enabled: g.max_download_rate.is_some(),
            speed_limit_up: kb(g.max_upload_rate),
            speed_limit_up_enabled: g.max_upload_rate.is_some(),
            honors_session_limits: g.honors_session_limits,
        }
    }
}

/// Why a group could not be set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupSetError {
    /// The engine refused the name (or holds too many groups).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// Applied, but saving failed.
    #[error("saving the bandwidth groups: {0}")]
    Save(#[from] shoal_engine::persist::PersistError),
    /// The saving thread failed.
    #[error("saving the bandwidth groups: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The groups clients configured, by name.
#[derive(Debug, Default)]
pub struct GroupBook {
    groups: Mutex<BTreeMap<String, GroupSettings>>,
}

impl GroupBook {
    /// The groups saved in `store` (a bad entry is logged and skipped).
    pub fn load(store: &Store) -> GroupBook {
        let saved = match store.settings() {
            Ok(mut m) => m.remove(KEY),
            Err(e) => {
                tracing::warn!(error = %e, "reading saved bandwidth groups");
                None
            }
        };
        let list: Vec<GroupSettings> = match saved.map(serde_json::from_value) {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "saved bandwidth groups are unreadable; ignored");
                Vec::new()
            }
            None => Vec::new(),
        };
        GroupBook {
            groups: Mutex::new(list.into_iter().map(|g| (g.name.clone(), g)).collect()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, GroupSettings>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives every group to the engine (at start).
    pub fn apply_all(&self, session: &Session) {
        for g in self.lock().values() {
            if let Err(e) = session.set_bandwidth_group(&g.name, g.engine()) {
                tracing::warn!(group = %g.name, error = %e, "a saved bandwidth group was refused");
            }
        }
    }

    /// The group `name` as configured, or as the engine holds it, or new.
    pub fn get_or_new(&self, session: &Session, name: &str) -> GroupSettings {
        if let Some(g) = self.lock().get(name) {
            return g.clone();
        }
        session
            .bandwidth_groups()
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or_else(
                || GroupSettings::new(name),
                |(n, g)| GroupSettings::from_engine(&n, g),
            )
    }

    /// Applies `g` to the engine, then saves every group.
    pub async fn set(
        &self,
        session: &Session,
        store: &Store,
        g: GroupSettings,
    ) -> Result<(), GroupSetError> {
        session.set_bandwidth_group(&g.name, g.engine())?;
        let list: Vec<GroupSettings> = {
            let mut m = self.lock();
            m.insert(g.name.clone(), g);
            m.values().cloned().collect()
        };
        let value = serde_json::to_value(list).unwrap_or_default();
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.save_settings(&[(KEY, value)])).await??;
        Ok(())
    }

    /// Every group: the configured ones and those the engine created when
    /// a torrent named them, by name.
    pub fn list(&self, session: &Session) -> Vec<GroupSettings> {
        let mut all = self.lock().clone();
        for (n, g) in session.bandwidth_groups() {
            all.entry(n.clone())
                .or_insert_with(|| GroupSettings::from_engine(&n, g));
        }
        all.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_are_kilobytes_and_disabled_means_unlimited() {
        let mut g = GroupSettings::new("tv");
        g.speed_limit_up = 250;
        assert_eq!(g.engine().max_upload_rate, None);
        g.speed_limit_up_enabled = true;
        assert_eq!(g.engine().max_upload_rate, Some(250_000));
        g.speed_limit_down_enabled = true;
        assert_eq!(g.engine().max_download_rate, Some(1));
        let back = GroupSettings::from_engine("tv", g.engine());
        assert_eq!(back.speed_limit_up, 250);
        assert!(back.speed_limit_up_enabled && back.speed_limit_down_enabled);
    }
}
