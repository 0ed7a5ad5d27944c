//! How the store encodes what it keeps: a torrent's key (its two hashes),
//! its record (JSON, without its metainfo) and its resume data.
use serde::{Deserialize, Serialize};
use shoal_engine::persist::{ResumeRecord, SeedGoal};
use shoal_engine::{TorrentLimits, TorrentRecord};
use shoal_metainfo::{InfoHashV1, InfoHashV2, InfoHashes};
use shoal_storage::ResumeData;
use std::path::PathBuf;
use std::time::Duration;

/// The table key of a torrent.
pub fn key_of(h: &InfoHashes) -> [u8; 52] {
    let mut k = [0u8; 52];
    if let Some(v1) = h.v1 {
        k[..20].copy_from_slice(&v1.0);
    }
    if let Some(v2) = h.v2 {
        k[20..].copy_from_slice(&v2.0);
    }
    k
}

pub(super) fn hashes_of(k: &[u8]) -> Option<InfoHashes> {
    if k.len() != 52 {
        return None;
    }
    let v1 = (k[..20] != [0u8; 20])
        .then(|| InfoHashV1::from_slice(&k[..20]))
        .flatten();
    let v2 = (k[20..] != [0u8; 32])
        .then(|| InfoHashV2::from_slice(&k[20..]))
        .flatten();
    (v1.is_some() || v2.is_some()).then_some(InfoHashes { v1, v2 })
}

/// A seeding goal as stored: absent (the session's), `-1` (none), or a value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredGoal {
    Session,
    Unlimited,
    Limit(f64),
}

impl StoredGoal {
    fn ratio(g: SeedGoal<f64>) -> Self {
        match g {
            SeedGoal::Session => StoredGoal::Session,
            SeedGoal::Unlimited => StoredGoal::Unlimited,
            SeedGoal::Limit(v) => StoredGoal::Limit(v),
        }
    }
    fn idle(g: SeedGoal<Duration>) -> Self {
        match g {
            SeedGoal::Session => StoredGoal::Session,
            SeedGoal::Unlimited => StoredGoal::Unlimited,
            SeedGoal::Limit(v) => StoredGoal::Limit(v.as_secs_f64()),
        }
    }
    fn to_ratio(self) -> SeedGoal<f64> {
        match self {
            StoredGoal::Session => SeedGoal::Session,
            StoredGoal::Unlimited => SeedGoal::Unlimited,
            StoredGoal::Limit(v) => SeedGoal::Limit(v),
        }
    }
    fn to_idle(self) -> SeedGoal<Duration> {
        match self {
            StoredGoal::Session => SeedGoal::Session,
            StoredGoal::Unlimited => SeedGoal::Unlimited,
            StoredGoal::Limit(v) => {
                SeedGoal::Limit(Duration::try_from_secs_f64(v).unwrap_or(Duration::ZERO))
            }
        }
    }
}

/// A torrent's record as stored (its metainfo lives in its own table).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredTorrent {
    magnet: Option<String>,
    name: Option<String>,
    save_path: PathBuf,
    #[serde(default)]
    file_priorities: Vec<u8>,
    #[serde(default)]
    extra_trackers: Vec<String>,
    #[serde(default)]
    tracker_list: Option<Vec<Vec<String>>>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    bypass_session_limits: bool,
    max_upload_rate: Option<u64>,
    max_download_rate: Option<u64>,
    max_peers: Option<usize>,
    seed_ratio: StoredGoal,
    seed_idle: StoredGoal,
    added_at: u64,
    queue_position: i64,
}

impl StoredTorrent {
    pub(super) fn from_record(r: &TorrentRecord) -> Self {
        StoredTorrent {
            magnet: r.magnet.clone(),
            name: r.name.clone(),
            save_path: r.save_path.clone(),
            file_priorities: r.file_priorities.clone(),
            extra_trackers: r.extra_trackers.clone(),
            tracker_list: r.tracker_list.clone(),
            paused: r.paused,
            labels: r.labels.clone(),
            group: r.group.clone(),
            bypass_session_limits: r.limits.bypass_session_limits,
            max_upload_rate: r.limits.max_upload_rate,
            max_download_rate: r.limits.max_download_rate,
            max_peers: r.limits.max_peers,
            seed_ratio: StoredGoal::ratio(r.limits.seed_ratio),
            seed_idle: StoredGoal::idle(r.limits.seed_idle),
            added_at: r.added_at,
            queue_position: r.queue_position,
        }
    }

    pub(super) fn into_record(
        self,
        info_hashes: InfoHashes,
        metainfo: Option<Vec<u8>>,
    ) -> TorrentRecord {
        TorrentRecord {
            info_hashes,
            metainfo,
            magnet: self.magnet,
            name: self.name,
            save_path: self.save_path,
            file_priorities: self.file_priorities,
            extra_trackers: self.extra_trackers,
            tracker_list: self.tracker_list,
            paused: self.paused,
            labels: self.labels,
            limits: TorrentLimits {
                max_upload_rate: self.max_upload_rate,
                max_download_rate: self.max_download_rate,
                max_peers: self.max_peers,
                seed_ratio: self.seed_ratio.to_ratio(),
                seed_idle: self.seed_idle.to_idle(),
                bypass_session_limits: self.bypass_session_limits,
            },
            group: self.group,
            added_at: self.added_at,
            queue_position: self.queue_position,
        }
    }
}

pub(super) fn encode_resume(r: &ResumeRecord) -> Vec<u8> {
    let data = r.data.encode();
    let mut v = Vec::with_capacity(16 + data.len());
    v.extend_from_slice(&r.uploaded.to_le_bytes());
    v.extend_from_slice(&r.downloaded.to_le_bytes());
    v.extend_from_slice(&data);
    v
}

/// Why a stored resume record cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ResumeRecordError {
    #[error("resume record of {0} bytes, too short")]
    Short(usize),
    #[error("resume data: {0}")]
    Data(#[from] shoal_storage::ResumeError),
}

pub(super) fn decode_resume(b: &[u8]) -> Result<ResumeRecord, ResumeRecordError> {
    if b.len() < 16 {
        return Err(ResumeRecordError::Short(b.len()));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&b[..8]);
    let uploaded = u64::from_le_bytes(n);
    n.copy_from_slice(&b[8..16]);
    let downloaded = u64::from_le_bytes(n);
    let data = ResumeData::decode(&b[16..])?;
    Ok(ResumeRecord {
        data,
        uploaded,
        downloaded,
    })
}
