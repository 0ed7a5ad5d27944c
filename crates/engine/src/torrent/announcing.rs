//! A torrent's trackers: the list it announces to ([`tiers`]) and its place
//! in the session's announce service while it announces ([`Announcing`]).
//! The service keeps what each tracker said; the torrent hears only of the
//! peers they give.
use super::cmd::TorrentCmd;
use super::cmd_queue::WeakCmdSender;
use super::handle::TorrentMeta;
use super::task::{unix_now, Counters};
use crate::info::TrackerInfo;
use crate::session::SessionCtx;
use shoal_metainfo::{InfoHashes, Magnet, Torrent};
use shoal_tracker::{
    AnnounceOutcome, AnnounceRequest, AnnounceResponse, AnnouncerConfig, Event, Registration,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// The trackers to announce to, by tier: the stored list if the user
/// replaced it, else the metainfo's (or the magnet's) and the added ones,
/// each URL once.
pub(super) fn tiers(
    meta: &TorrentMeta,
    torrent: Option<&Torrent>,
    magnet: Option<&Magnet>,
) -> Vec<Vec<String>> {
    if let Some(list) = &meta.tracker_list {
        return list.clone();
    }
    let mut tiers = torrent.map(Torrent::tracker_urls).unwrap_or_default();
    let magnet = magnet.into_iter().flat_map(|m| &m.trackers);
    for u in magnet.chain(&meta.extra_trackers) {
        if !tiers.iter().flatten().any(|x| x == u) {
            tiers.push(vec![u.clone()]);
        }
    }
    tiers
}

/// The trackers of `tiers` with nothing heard from them.
fn listed(tiers: Vec<Vec<String>>) -> Vec<TrackerInfo> {
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    for (tier, urls) in tiers.into_iter().enumerate() {
        for url in urls {
            if !url.is_empty() && seen.insert(url.clone()) {
                v.push(TrackerInfo::listed(url, tier));
            }
        }
    }
    v
}

/// A tracker's answer, if it gave one; a failure is logged.
fn answer_of(o: AnnounceOutcome) -> Option<AnnounceResponse> {
    match o.result {
        Ok(resp) => Some(resp),
        Err(e) => {
            tracing::info!(url = %o.url, error = %e, "announce failed");
            None
        }
    }
}

/// Who announces: what [`Announcing::start`] needs of the torrent.
pub(super) struct Announcer<'a> {
    pub ctx: &'a SessionCtx,
    pub hashes: InfoHashes,
    /// The byte counts each announce reports.
    pub counters: &'a Arc<Counters>,
    /// The torrent's queue, for the peers trackers give (weak: announcing
    /// does not keep it open).
    pub own: &'a WeakCmdSender<TorrentCmd>,
}

/// A torrent's registration with the session's announce service, while
/// it announces (it does while it transfers, fetches its metadata or sleeps
/// dormant; not while paused, queued or stopped).
#[derive(Debug, Default)]
pub(super) struct Announcing(Option<Registration>);

impl Announcing {
    /// Whether it announces.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Starts announcing to `tiers` (nothing when it does already or there
    /// is no tracker). Answers with peers reach the torrent as
    /// [`TorrentCmd::Announced`]; others do not wake it.
    pub fn start(&mut self, tiers: Vec<Vec<String>>, who: Announcer<'_>) {
        if self.0.is_some() || tiers.iter().all(|t| t.is_empty()) {
            return;
        }
        let ctx = who.ctx;
        let mut rng = ctx.torrent_rng();
        let ann = shoal_tracker::Announcer::new(
            tiers,
            AnnouncerConfig::shared_default(),
            &mut rng,
            Instant::now(),
        );
        let c = who.counters.clone();
        let info_hash = who.hashes.primary().0;
        let peer_id = ctx.peer_id;
        let port = ctx.local_addr.port();
        let key: u32 = rand::Rng::gen(&mut rng);
        let own = who.own.clone();
        let reg = ctx.announces.register(
            ann,
            Box::new(move || {
                let mut r =
                    AnnounceRequest::new(info_hash, peer_id, port, c.left.load(Ordering::Relaxed));
                r.uploaded = c.uploaded.load(Ordering::Relaxed);
                r.downloaded = c.downloaded.load(Ordering::Relaxed);
                r.key = key;
                r.numwant = Some(50);
                r
            }),
            Box::new(move |o: AnnounceOutcome| {
                // The answers to `stopped` are not wanted (it is stopping).
                if o.event == Event::Stopped {
                    return;
                }
                // Only peers concern the torrent (the service keeps what
                // each tracker said): an answer without any, the common
                // case for a seed, does not wake a dormant torrent.
                let Some(resp) = answer_of(o) else {
                    return;
                };
                if resp.peers.is_empty() {
                    return;
                }
                if let Some(tx) = own.upgrade() {
                    // (A full queue drops it: the next one comes.)
                    let _ = tx.try_send(TorrentCmd::Announced(Box::new(resp)));
                }
            }),
        );
        self.0 = Some(reg);
    }

    /// Stops announcing: `stopped` goes out in the background (bounded).
    pub fn stop(&mut self) {
        if let Some(reg) = self.0.take() {
            tokio::spawn(reg.stop());
        }
    }

    /// Stops announcing and waits for the `stopped` announces (bounded).
    pub async fn finish(&mut self) {
        if let Some(reg) = self.0.take() {
            reg.stop().await;
        }
    }

    /// The download completed: the trackers hear `completed`.
    pub fn completed(&self) {
        if let Some(reg) = &self.0 {
            reg.completed();
        }
    }

    /// Asks the trackers for peers as soon as their `min interval` allows.
    pub fn announce_now(&self) {
        if let Some(reg) = &self.0 {
            reg.announce_now();
        }
    }

    /// Answers `tx` with what each tracker said: the service answers while
    /// it announces, else the list from `tiers` with nothing heard.
    pub fn answer(
        &self,
        tx: oneshot::Sender<Vec<TrackerInfo>>,
        tiers: impl FnOnce() -> Vec<Vec<String>>,
    ) {
        match &self.0 {
            Some(reg) => reg.status(Box::new(move |st| {
                let (now, unix) = (Instant::now(), unix_now());
                let v = st
                    .into_iter()
                    .map(|s| TrackerInfo::from_status(s, now, unix))
                    .collect();
                let _ = tx.send(v);
            })),
            None => {
                let _ = tx.send(listed(tiers()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TorrentMeta {
        TorrentMeta::default()
    }

    #[test]
    fn tiers_add_the_magnets_and_the_added_trackers_once() {
        let magnet = Magnet {
            trackers: vec!["udp://a/1".into(), "udp://b/1".into()],
            ..Magnet::default()
        };
        let mut m = meta();
        m.extra_trackers = vec!["udp://b/1".into(), "http://c/".into()];
        let t = tiers(&m, None, Some(&magnet));
        assert_eq!(t, [["udp://a/1"], ["udp://b/1"], ["http://c/"]]);
        // A list the user set replaces every other.
        m.tracker_list = Some(vec![vec!["http://only/".into()]]);
        assert_eq!(tiers(&m, None, Some(&magnet)), [["http://only/"]]);
    }

    #[test]
    fn a_torrent_not_announcing_lists_its_trackers_with_nothing_heard() {
        let (tx, mut rx) = oneshot::channel();
        let list = || {
            vec![
                vec!["udp://a/1".to_string(), "".into()],
                vec!["udp://a/1".into(), "http://c/".into()],
            ]
        };
        Announcing::default().answer(tx, list);
        let got = rx.try_recv().unwrap();
        let urls: Vec<(&str, usize)> = got.iter().map(|t| (t.url.as_str(), t.tier)).collect();
        assert_eq!(urls, [("udp://a/1", 0), ("http://c/", 1)]);
        assert!(got
            .iter()
            .all(|t| t.announces_ok == 0 && t.last_announce.is_none()));
    }
}
