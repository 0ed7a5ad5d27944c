//! Who a transfer's bytes are charged to: the session's limits, a torrent's
//! own, and bandwidth groups (Transmission's `group-set`): named limits
//! shared by every torrent put in the group, for example "all torrents of
//! this tracker at 1 MB/s together".
//!
//! Every peer of a torrent charges its bytes to one [`TorrentRates`]; the
//! wait before they may move is the longest of the buckets that apply. A
//! group is created when first named and lives as long as the session
//! (torrents hold it by `Arc`, so changing its limits reaches them at once).
use crate::rate::TokenBucket;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most groups a session holds (names come from RPC clients).
pub const MAX_GROUPS: usize = 256;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 128;

/// A rate limiter shared by tasks (tiny critical section).
pub(crate) type SharedBucket = Arc<Mutex<TokenBucket>>;

/// The limits of one bandwidth group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandwidthGroup {
    /// Upload limit in bytes/s shared by the group's torrents (`None`: none).
    pub max_upload_rate: Option<u64>,
    /// Download limit in bytes/s shared by the group's torrents.
    pub max_download_rate: Option<u64>,
    /// Whether the session's limits also apply to the group's torrents.
    pub honors_session_limits: bool,
}

impl Default for BandwidthGroup {
    /// No limits of its own; the session's apply.
    fn default() -> Self {
        BandwidthGroup {
            max_upload_rate: None,
            max_download_rate: None,
            honors_session_limits: true,
        }
    }
}

/// Why a group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Empty, too long, or with control characters.
    #[error("bad bandwidth group name {0:?}: 1 to 128 bytes, no control characters")]
    BadName(String),
    /// The session already has [`MAX_GROUPS`] groups.
    #[error("too many bandwidth groups (at most {MAX_GROUPS})")]
    TooMany,
}

/// Checks a group name from a client.
pub fn check_group_name(name: &str) -> Result<(), GroupError> {
    if name.is_empty() || name.len() > MAX_GROUP_NAME || name.chars().any(char::is_control) {
        return Err(GroupError::BadName(
            name.chars().take(MAX_GROUP_NAME).collect(),
        ));
    }
    Ok(())
}

/// Which way bytes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// To the peer.
    Up,
    /// From the peer.
    Down,
}

/// One bucket per direction.
#[derive(Debug)]
struct Pair {
    up: Mutex<TokenBucket>,
    down: Mutex<TokenBucket>,
}

impl Pair {
    fn new(up: Option<u64>, down: Option<u64>) -> Self {
        Pair {
            up: Mutex::new(TokenBucket::new(up)),
            down: Mutex::new(TokenBucket::new(down)),
        }
    }

    fn bucket(&self, d: Direction) -> &Mutex<TokenBucket> {
        match d {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    fn take(&self, d: Direction, bytes: u64, now: Instant) -> Duration {
        take(self.bucket(d), bytes, now)
    }

    fn set(&self, up: Option<u64>, down: Option<u64>) {
        lock(&self.up).set_rate(up);
        lock(&self.down).set_rate(down);
    }

    fn rates(&self) -> (Option<u64>, Option<u64>) {
        (lock(&self.up).rate(), lock(&self.down).rate())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn take(bucket: &Mutex<TokenBucket>, bytes: u64, now: Instant) -> Duration {
    lock(bucket).take(bytes, now)
}

/// A group's buckets, shared by the torrents in it.
#[derive(Debug)]
pub(crate) struct GroupRates {
    pair: Pair,
    honors_session: AtomicBool,
}

impl GroupRates {
    fn new(g: BandwidthGroup) -> Self {
        GroupRates {
            pair: Pair::new(g.max_upload_rate, g.max_download_rate),
            honors_session: AtomicBool::new(g.honors_session_limits),
        }
    }

    fn get(&self) -> BandwidthGroup {
        let (up, down) = self.pair.rates();
        BandwidthGroup {
            max_upload_rate: up,
            max_download_rate: down,
            honors_session_limits: self.honors_session.load(Ordering::Relaxed),
        }
    }
}

/// The session's groups by name.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    map: Mutex<BTreeMap<String, Arc<GroupRates>>>,
}

impl Groups {
    /// The group `name`, created without limits if it does not exist.
    pub fn get(&self, name: &str) -> Result<Arc<GroupRates>, GroupError> {
        check_group_name(name)?;
        let mut map = lock(&self.map);
        if let Some(g) = map.get(name) {
            return Ok(g.clone());
        }
        if map.len() >= MAX_GROUPS {
            return Err(GroupError::TooMany);
        }
        let g = Arc::new(GroupRates::new(BandwidthGroup::default()));
        map.insert(name.to_owned(), g.clone());
        Ok(g)
    }

    /// Creates or changes the group `name`.
    pub fn set(&self, name: &str, g: BandwidthGroup) -> Result<(), GroupError> {
        let rates = self.get(name)?;
        rates.pair.set(g.max_upload_rate, g.max_download_rate);
        rates
            .honors_session
            .store(g.honors_session_limits, Ordering::Relaxed);
        Ok(())
    }

    /// Every group, by name.
    pub fn list(&self) -> Vec<(String, BandwidthGroup)> {
        lock(&self.map)
            .iter()
            .map(|(n, g)| (n.clone(), g.get()))
            .collect()
    }
}

/// What one torrent's peers charge their bytes to: the torrent's own
/// buckets, its group's, and the session's (unless the torrent or its
/// group opts out of them).
#[derive(Debug)]
pub(crate) struct TorrentRates {
    own: Pair,
    group: Mutex<Option<Arc<GroupRates>>>,
    /// The torrent ignores the session's limits.
    bypass_session: AtomicBool,
    session_up: SharedBucket,
    session_down: SharedBucket,
}

impl TorrentRates {
    /// Rates for a torrent limited to `up`/`down` bytes/s of its own, under
    /// the session's buckets.
    pub fn new(
        session_up: SharedBucket,
        session_down: SharedBucket,
        up: Option<u64>,
        down: Option<u64>,
        bypass_session: bool,
    ) -> Self {
        TorrentRates {
            own: Pair::new(up, down),
            group: Mutex::new(None),
            bypass_session: AtomicBool::new(bypass_session),
            session_up,
            session_down,
        }
    }

    /// Changes the torrent's own limits.
    pub fn set_limits(&self, up: Option<u64>, down: Option<u64>, bypass_session: bool) {
        self.own.set(up, down);
        self.bypass_session.store(bypass_session, Ordering::Relaxed);
    }

    /// Puts the torrent in `group` (`None`: in none).
    pub fn set_group(&self, group: Option<Arc<GroupRates>>) {
        *lock(&self.group) = group;
    }

    /// Takes `bytes` moving in direction `d` from every bucket that
    /// applies; returns how long to wait before they may move (the longest
    /// wait of them).
    pub fn take(&self, d: Direction, bytes: u64) -> Duration {
        let now = Instant::now();
        let mut wait = self.own.take(d, bytes, now);
        let mut honors = !self.bypass_session.load(Ordering::Relaxed);
        // Lock order: the torrent's group slot, then the group's bucket
        // (nothing takes them the other way round).
        if let Some(g) = lock(&self.group).as_ref() {
            wait = wait.max(g.pair.take(d, bytes, now));
            honors &= g.honors_session.load(Ordering::Relaxed);
        }
        if honors {
            let session = match d {
                Direction::Up => &self.session_up,
                Direction::Down => &self.session_down,
            };
            wait = wait.max(take(session, bytes, now));
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(rate: Option<u64>) -> SharedBucket {
        Arc::new(Mutex::new(TokenBucket::new(rate)))
    }

    /// Seconds to move `total` bytes in 16 KiB blocks through `r`, honouring
    /// the waits (virtual: the buckets see real `Instant`s, but the waits
    /// are summed, and a burst is at most one second's worth).
    fn wait_for(r: &TorrentRates, d: Direction, total: u64) -> f64 {
        let mut waited = Duration::ZERO;
        let mut sent = 0;
        while sent < total {
            waited = waited.max(r.take(d, 16_384));
            sent += 16_384;
        }
        waited.as_secs_f64()
    }

    #[test]
    fn names_are_checked_and_groups_bounded() {
        assert!(check_group_name("movies").is_ok());
        assert!(check_group_name("").is_err());
        assert!(check_group_name(&"x".repeat(129)).is_err());
        assert!(check_group_name("a\nb").is_err());
        let groups = Groups::default();
        for i in 0..MAX_GROUPS {
            groups.get(&format!("g{i}")).unwrap();
        }
        assert!(matches!(groups.get("one more"), Err(GroupError::TooMany)));
        // An existing one is still found.
        assert!(groups.get("g7").is_ok());
    }

    #[test]
    fn a_group_limits_its_torrents_together_and_changes_reach_them() {
        let groups = Groups::default();
        groups
            .set(
                "slow",
                BandwidthGroup {
                    max_upload_rate: Some(100_000),
                    ..Default::default()
                },
            )
            .unwrap();
        let a = TorrentRates::new(bucket(None), bucket(None), None, None, false);
        let b = TorrentRates::new(bucket(None), bucket(None), None, None, false);
        assert_eq!(wait_for(&a, Direction::Up, 1_000_000), 0.0);
        a.set_group(Some(groups.get("slow").unwrap()));
        b.set_group(Some(groups.get("slow").unwrap()));
        // 100 KB burst, then both torrents draw from one 100 KB/s bucket:
        // 2 MB more between them takes about 20 s.
        let wa = wait_for(&a, Direction::Up, 1_100_000);
        let wb = wait_for(&b, Direction::Up, 1_000_000);
        assert!((19.0..22.0).contains(&wa.max(wb)), "{wa} {wb}");
        // Downloads are not limited by an upload cap.
        assert_eq!(wait_for(&a, Direction::Down, 1_000_000), 0.0);
        // Lifting the group's limit frees them at once.
        groups.set("slow", BandwidthGroup::default()).unwrap();
        assert_eq!(wait_for(&a, Direction::Up, 1_000_000), 0.0);
        assert_eq!(
            groups.list(),
            vec![("slow".to_owned(), BandwidthGroup::default())]
        );
    }

    #[test]
    fn session_limits_apply_unless_the_torrent_or_its_group_opts_out() {
        let groups = Groups::default();
        let session_up = bucket(Some(100_000));
        let r = TorrentRates::new(session_up.clone(), bucket(None), None, None, false);
        assert!(wait_for(&r, Direction::Up, 1_100_000) > 9.0);
        // The torrent opts out.
        let r = TorrentRates::new(session_up.clone(), bucket(None), None, None, true);
        assert_eq!(wait_for(&r, Direction::Up, 1_000_000), 0.0);
        // Its group opts out.
        groups
            .set(
                "free",
                BandwidthGroup {
                    honors_session_limits: false,
                    ..Default::default()
                },
            )
            .unwrap();
        let r = TorrentRates::new(session_up, bucket(None), None, None, false);
        r.set_group(Some(groups.get("free").unwrap()));
        assert_eq!(wait_for(&r, Direction::Up, 1_000_000), 0.0);
        // Its own limit still applies.
        r.set_limits(Some(100_000), None, false);
        assert!(wait_for(&r, Direction::Up, 1_100_000) > 9.0);
    }
}
