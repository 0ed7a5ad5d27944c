//! [`TorrentCore`]: the sans-IO state machine of one torrent.
//!
//! It owns the piece picker, the choker, smart ban, the peer set (connected
//! peers and candidate addresses) and peer exchange. Peer events, disk
//! verdicts, tracker answers and the current time go in; commands to peers,
//! dials, disk jobs and the next deadline come out ([`TorrentCore::poll_action`],
//! [`TorrentCore::poll_timeout`]). Nothing here reads a clock, touches a socket
//! or spawns a task, so a torrent runs the same under a tokio driver
//! ([`super::driver`]) and under the virtual clock of a test or a simulation.
//!
//! Idle costs nothing: with no peer connected, no candidate to dial and no
//! resume data to save, [`TorrentCore::poll_timeout`] is `None`.
mod action;
mod deadline;
mod layers;
mod metadata;
mod peers;
mod pieces;
mod slow_start;
mod superseed;
#[cfg(test)]
mod tests;

pub(crate) use action::{Action, DiskVerdict};
pub(crate) use peers::PeerSource;
pub(crate) use slow_start::SlowStart;

use crate::choker::Choker;
use crate::error::TorrentError;
use crate::peer::{PeerCmd, PeerMsg};
use crate::pex::PeerExchange;
use crate::picker::{PeerKey, PiecePicker};
use crate::smartban::{BlockDigest, SmartBan};
use crate::status::{TorrentState, TorrentStatus};
use rand::rngs::StdRng;
use shoal_wire::Bitfield;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Tunables of a torrent core.
#[derive(Debug, Clone)]
pub(crate) struct CoreLimits {
    /// Most connections (connecting or connected).
    pub max_peers: usize,
    /// Most outgoing connections being set up at once.
    pub max_connecting: usize,
    /// Regular upload slots (plus one optimistic).
    pub upload_slots: usize,
    /// Super-seed (BEP 16) when the torrent starts complete, until another
    /// seed connects (module `superseed`).
    pub super_seed: bool,
    /// Time between two saves of the resume data while pieces are verified
    /// (a save also follows completion).
    pub resume_interval: Duration,
}

/// Most requests outstanding to one peer (libtorrent's
/// `max_out_request_queue`). One second's worth at a peer's rate reaches
/// it only above 8 MB/s; a seeder that answers in bursts on a timer
/// (Transmission 3.00, every half second) sends at most this many blocks
/// per burst: at 128, a Transmission seeder could not pass 4 MB/s to us.
const MAX_PIPELINE: usize = 500;
/// Fewest requests kept outstanding to a peer that unchoked us.
const MIN_PIPELINE: usize = 4;
/// Housekeeping period while peers are connected (rates, refills, closing).
const TICK: Duration = Duration::from_millis(250);
/// Time between two rechokes.
pub(crate) const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);
/// A piece whose blocks all arrived but whose verdict has not come after
/// this long is fetched again (its data was lost on the way to the disk,
/// e.g. with a peer that closed before handing it over).
pub(crate) const VERDICT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most candidate addresses remembered.
pub(crate) const MAX_KNOWN_ADDRS: usize = 2000;

/// Who sent one block of a piece in progress, and its digest if kept.
type Sender = (SocketAddr, Option<BlockDigest>);

/// One connection as the core sees it.
#[derive(Debug)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub has: Bitfield,
    pub seed: bool,
    pub peer_id: Option<shoal_base::PeerId>,
    pub choking_us: bool,
    pub interested_in_us: bool,
    pub am_interested: bool,
    pub am_choking: bool,
    pub in_flight: HashSet<(u32, u32)>,
    pub pipeline_cap: u32,
    pub down_rate: u64,
    /// The download rate over the last second or two (pipeline sizing).
    pub recent_down_rate: u64,
    /// The pipeline's depth until a rate can size it.
    pub slow_start: SlowStart,
    pub up_rate: u64,
    pub snubbed: bool,
    /// Wanted pieces the peer has that we lack.
    pub interesting: u32,
    /// Close requested; waiting for its task to report `Closed`.
    pub closing: bool,
    /// Where we learnt of it.
    pub origin: crate::info::PeerOrigin,
    /// The connection is RC4-encrypted (MSE/PE).
    pub encrypted: bool,
    /// The connection is uTP (else TCP).
    pub utp: bool,
    /// What we revealed to it while super-seeding (`None`: it was told
    /// every piece we have).
    pub reveal: Option<superseed::Reveal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrState {
    Idle,
    Connected,
    /// Never again (ourselves).
    Never,
}

#[derive(Debug)]
pub(crate) struct AddrInfo {
    pub state: AddrState,
    /// The first source that named it (for logs).
    pub source: PeerSource,
    /// Named by the user, the DHT or a tracker (kept until it fails for good).
    pub direct: bool,
    /// The connections whose `ut_pex` named it (bounded); a PEX-only
    /// candidate is forgotten when all of them drop it.
    pub pex_from: Vec<PeerKey>,
    pub failures: u32,
    pub retry_at: Instant,
}

/// Most connections remembered as having named one address by PEX.
pub(crate) const MAX_PEX_SOURCES: usize = 8;

/// Everything a core starts from.
pub(crate) struct CoreInit {
    /// Our peer id (to recognise connections to ourselves).
    pub peer_id: shoal_base::PeerId,
    /// Pieces, priorities and what is verified already.
    pub picker: PiecePicker,
    /// Limits.
    pub limits: CoreLimits,
    /// Seeded randomness (tie-breaking, optimistic unchoke).
    pub rng: StdRng,
    /// The status to start from (state, counters of earlier runs).
    pub status: TorrentStatus,
    /// Peer exchange (disabled for private torrents).
    pub pex: PeerExchange,
}

/// The sans-IO torrent. See the module docs.
pub(crate) struct TorrentCore {
    peer_id: shoal_base::PeerId,
    picker: PiecePicker,
    choker: Choker,
    ban: SmartBan<SocketAddr>,
    limits: CoreLimits,
    rng: StdRng,
    status: TorrentStatus,
    have: Bitfield,
    /// Ordered by key so that iterating it (fills, rechokes, haves) is the
    /// same in every run of a seeded core.
    peers: BTreeMap<PeerKey, Peer>,
    addrs: HashMap<SocketAddr, AddrInfo>,
    key_addr: HashMap<PeerKey, SocketAddr>,
    banned: HashSet<SocketAddr>,
    senders: HashMap<u32, Vec<Option<Sender>>>,
    next_key: PeerKey,
    actions: VecDeque<Action>,
    /// Pieces whose blocks all arrived, waiting for their verdict: since when.
    awaiting: HashMap<u32, Instant>,
    /// Keep per-block digests from now on (after the first hash failure).
    digests: bool,
    was_complete_at_start: bool,
    completed: bool,
    resume_dirty: bool,
    next_rechoke: Instant,
    last_resume: Instant,
    next_tick: Instant,
    last_rate: (Instant, u64, u64),
    pex: PeerExchange,
    /// The `ut_metadata` fetch of a magnet link (until the metadata is set).
    meta: Option<metadata::MetadataFetch>,
    /// The fetch of missing v2 piece layers.
    layers: Option<layers::LayerFetch>,
    /// Super-seeding (BEP 16).
    superseed: superseed::SuperSeed,
    /// Time-critical pieces of open readers.
    deadlines: deadline::Deadlines,
}

impl TorrentCore {
    /// A core at `now`; the state is `Seeding` when nothing wanted is missing.
    pub(crate) fn new(init: CoreInit, now: Instant) -> Self {
        let n = init.picker.num_pieces();
        let mut have = Bitfield::new(n);
        let mut status = init.status;
        status.pieces = n;
        status.pieces_have = 0;
        status.wanted_bytes = 0;
        status.verified_wanted_bytes = 0;
        for p in 0..n {
            if init.picker.has(p) {
                let _ = have.set(p);
                status.pieces_have += 1;
            }
            if init.picker.priority(p) > 0 {
                let len = u64::from(init.picker.piece_len(p));
                status.wanted_bytes += len;
                if init.picker.has(p) {
                    status.verified_wanted_bytes += len;
                }
            }
        }
        let complete = init.picker.is_complete();
        if matches!(
            status.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            status.state = if complete {
                TorrentState::Seeding
            } else {
                TorrentState::Downloading
            };
        }
        let mut core = TorrentCore {
            peer_id: init.peer_id,
            choker: Choker::new(init.limits.upload_slots),
            superseed: superseed::SuperSeed::new(init.limits.super_seed && complete, n),
            deadlines: deadline::Deadlines::default(),
            ban: SmartBan::new(),
            picker: init.picker,
            limits: init.limits,
            rng: init.rng,
            status,
            have,
            peers: BTreeMap::new(),
            addrs: HashMap::new(),
            key_addr: HashMap::new(),
            banned: HashSet::new(),
            senders: HashMap::new(),
            next_key: 1,
            actions: VecDeque::new(),
            awaiting: HashMap::new(),
            digests: false,
            was_complete_at_start: complete,
            completed: complete,
            resume_dirty: false,
            next_rechoke: now + RECHOKE_INTERVAL,
            last_resume: now,
            next_tick: now,
            last_rate: (now, 0, 0),
            pex: init.pex,
            meta: None,
            layers: None,
        };
        // Readers opened before the start (during the check) have raised
        // priorities in the picker already: their pieces get deadlines now.
        core.update_deadlines(now);
        core
    }

    // ------------------------------------------------------------- queries

    /// The current status (rates as of the last tick).
    pub(crate) fn status(&self) -> &TorrentStatus {
        &self.status
    }

    /// The pieces we have.
    pub(crate) fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether block digests should be computed for smart ban.
    pub(crate) fn wants_block_digests(&self) -> bool {
        self.digests
    }

    /// Whether `addr` is banned for sending corrupt data.
    pub(crate) fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned.contains(&ban_key(addr))
    }

    /// Whether peer exchange is on (never for private torrents).
    pub(crate) fn pex_enabled(&self) -> bool {
        self.pex.enabled()
    }

    /// Our listen port as advertised in extension handshakes (`None`: 0).
    pub(crate) fn listen_port(&self) -> Option<u16> {
        Some(self.pex.own_addr().port()).filter(|&p| p != 0)
    }

    /// The connections, for display.
    pub(crate) fn peer_infos(&self) -> Vec<crate::info::PeerInfo> {
        let n = self.picker.num_pieces().max(1) as f32;
        let mut v: Vec<crate::info::PeerInfo> = self
            .peers
            .values()
            .map(|p| crate::info::PeerInfo {
                addr: p.addr,
                client: p
                    .peer_id
                    .map(|id| crate::info::client_name(&id))
                    .unwrap_or_default(),
                origin: p.origin,
                connected: p.peer_id.is_some(),
                am_choking: p.am_choking,
                am_interested: p.am_interested,
                peer_choking: p.choking_us,
                peer_interested: p.interested_in_us,
                snubbed: p.snubbed,
                download_rate: p.down_rate,
                upload_rate: p.up_rate,
                progress: if p.seed {
                    1.0
                } else {
                    p.has.count_ones() as f32 / n
                },
                requests: p.in_flight.len(),
                transport: if p.utp { "utp" } else { "tcp" },
                encrypted: p.encrypted,
            })
            .collect();
        v.sort_by_key(|p| p.addr);
        v
    }

    /// The candidate addresses known (not ourselves, not banned), for a
    /// later core of the same torrent.
    pub(crate) fn known_addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .filter(|(a, i)| i.state != AddrState::Never && !self.banned.contains(&ban_key(**a)))
            .map(|(a, _)| *a)
            .collect()
    }

    /// The verified-piece set, for resume data.
    pub(crate) fn verified(&self) -> Vec<bool> {
        (0..self.picker.num_pieces())
            .map(|p| self.picker.has(p))
            .collect()
    }

    /// The peer holding the optimistic unchoke.
    #[cfg(test)]
    pub(crate) fn optimistic(&self) -> Option<PeerKey> {
        self.choker.optimistic()
    }

    fn active(&self) -> bool {
        matches!(
            self.status.state,
            TorrentState::Downloading | TorrentState::Seeding | TorrentState::FetchingMetadata
        )
    }

    // ------------------------------------------------------------- outputs

    /// The next thing for the driver to do.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`TorrentCore::handle_timeout`] should next be called; `None`
    /// while there is nothing to do until an input arrives.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        let rates_moving = self.status.download_rate > 0 || self.status.upload_rate > 0;
        if !self.peers.is_empty() || rates_moving {
            at(self.next_tick);
        }
        if self.resume_dirty {
            at(self.last_resume + self.limits.resume_interval);
        }
        if let Some(t) = self.awaiting.values().min() {
            at(*t + VERDICT_TIMEOUT);
        }
        if self.active() && self.peers.len() < self.limits.max_peers {
            if let Some(t) = self
                .addrs
                .iter()
                .filter(|(a, i)| i.state == AddrState::Idle && !self.banned.contains(&ban_key(**a)))
                .map(|(_, i)| i.retry_at)
                .min()
            {
                at(t.max(self.next_tick));
            }
        }
        next
    }

    /// Runs what is due at `now`: housekeeping, peer exchange, dialling,
    /// rechoking, request refills, resume saves and rates.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.resume_dirty && now >= self.last_resume + self.limits.resume_interval {
            self.save_resume(now);
        }
        let lost: Vec<u32> = self
            .awaiting
            .iter()
            .filter(|(_, &t)| now >= t + VERDICT_TIMEOUT)
            .map(|(&p, _)| p)
            .collect();
        for p in lost {
            tracing::warn!(
                piece = p,
                "no verdict for a complete piece; fetching it again"
            );
            self.on_disk(now, DiskVerdict::Lost(p));
        }
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.request_metadata(now);
        self.request_layers(now);
        self.send_pex(now);
        self.connect_more(now);
        self.check_idle_reveals(now);
        if now >= self.next_rechoke {
            self.rechoke(now);
        }
        self.request_time_critical(now);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill(k);
        }
        let (t0, d0, u0) = self.last_rate;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        if dt >= 1.0 {
            self.status.download_rate =
                ((self.status.downloaded.saturating_sub(d0)) as f64 / dt) as u64;
            self.status.upload_rate =
                ((self.status.uploaded.saturating_sub(u0)) as f64 / dt) as u64;
            self.last_rate = (now, self.status.downloaded, self.status.uploaded);
        }
    }

    // ------------------------------------------------------------- inputs

    /// An event from peer `key`'s connection.
    pub(crate) fn on_peer(&mut self, now: Instant, key: PeerKey, msg: PeerMsg) {
        if !self.peers.contains_key(&key) {
            return;
        }
        match msg {
            PeerMsg::TcpConnected => {}
            PeerMsg::Handshake {
                peer_id,
                encrypted,
                utp,
            } => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.encrypted = encrypted;
                    p.utp = utp;
                }
                if utp {
                    self.pex.set_utp(key);
                }
                self.on_handshake(now, key, peer_id);
                self.request_layers(now);
            }
            PeerMsg::PipelineLimit(n) => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.pipeline_cap = n.max(1);
                }
            }
            PeerMsg::Extensions {
                port,
                pex,
                your_ip,
                metadata_size,
            } => {
                self.pex.on_extensions(key, now, port, pex, your_ip);
                self.on_metadata_offer(key, metadata_size);
                self.request_metadata(now);
            }
            PeerMsg::Metadata(m) => self.on_metadata_message(now, key, m),
            PeerMsg::Hashes { request, hashes } => self.on_hashes(now, key, *request, &hashes),
            PeerMsg::HashReject(r) => self.on_hash_reject(now, key, *r),
            PeerMsg::Pex(m) => self.on_pex(now, key, &m),
            PeerMsg::Bitfield(bf) => self.on_bitfield(key, bf),
            PeerMsg::Have(i) => self.on_have(key, i),
            PeerMsg::Choked => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.choking_us = true;
                    p.slow_start.end();
                }
            }
            PeerMsg::Unchoked => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.choking_us = false;
                }
                self.fill(key);
            }
            PeerMsg::Interest(i) => {
                let changed = self
                    .peers
                    .get_mut(&key)
                    .map(|p| std::mem::replace(&mut p.interested_in_us, i) != i)
                    .unwrap_or(false);
                if changed {
                    self.refill_unchokes(now);
                }
            }
            PeerMsg::Blocks(blocks) => {
                for (block, digest) in blocks {
                    self.on_block(now, key, block, digest);
                }
                self.fill(key);
            }
            PeerMsg::RequestsFailed(blocks) => {
                for b in blocks {
                    let removed = self
                        .peers
                        .get_mut(&key)
                        .is_some_and(|p| p.in_flight.remove(&(b.piece, b.offset)));
                    if removed {
                        self.picker.on_request_failed(key, &b);
                    }
                }
            }
            PeerMsg::Stats {
                down_rate,
                recent_down_rate,
                up_rate,
                uploaded,
                snubbed,
            } => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.down_rate = down_rate;
                    p.recent_down_rate = recent_down_rate;
                    p.slow_start.on_rate(recent_down_rate);
                    p.up_rate = up_rate;
                    p.snubbed = snubbed;
                }
                self.status.uploaded += uploaded;
            }
            PeerMsg::Closed { reason } => self.on_closed(now, key, &reason),
        }
    }

    /// A verdict of the disk about a piece, or a storage failure.
    pub(crate) fn on_disk(&mut self, now: Instant, v: DiskVerdict) {
        match v {
            DiskVerdict::Verified(p) => self.on_verified(now, p),
            DiskVerdict::Failed(p) => self.on_failed(p),
            DiskVerdict::Lost(p) => {
                self.awaiting.remove(&p);
                let _ = self.picker.on_piece_failed(p);
                self.senders.remove(&p);
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for k in keys {
                    self.fill(k);
                }
            }
            DiskVerdict::Error(e) => self.pause(Some(e)),
        }
    }

    /// The block digests of a verified piece, as asked by
    /// [`Action::ReadDigests`]: convicts the senders of bad blocks.
    pub(crate) fn on_digests(&mut self, piece: u32, good: &[BlockDigest]) {
        let guilty = self.ban.on_piece_passed(piece, good);
        for ip in guilty {
            self.ban_ip(ip);
        }
    }

    /// Stops transferring: every connection is closed. With `error`, the
    /// torrent stops on a failure ([`TorrentState::Error`]) and says why.
    pub(crate) fn pause(&mut self, error: Option<TorrentError>) {
        if matches!(
            self.status.state,
            TorrentState::Paused | TorrentState::Error
        ) && (error.is_none() || self.status.error.is_some())
        {
            return;
        }
        match &error {
            Some(e) => tracing::error!(error = %e, "stopping the torrent"),
            None => tracing::info!("pausing torrent"),
        }
        let state = if error.is_some() {
            TorrentState::Error
        } else {
            TorrentState::Paused
        };
        self.stop_transfer(state, error);
    }

    /// Waits for a download slot of the session: like a pause, in state
    /// [`TorrentState::Queued`]. [`TorrentCore::resume`] starts it again.
    pub(crate) fn queue(&mut self) {
        if self.status.state == TorrentState::Downloading {
            tracing::info!("queued");
            self.stop_transfer(TorrentState::Queued, None);
        }
    }

    fn stop_transfer(&mut self, state: TorrentState, error: Option<TorrentError>) {
        self.status.state = state;
        self.status.error = error;
        self.status.download_rate = 0;
        self.status.upload_rate = 0;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.close_peer(k);
        }
    }

    /// Starts transferring again after [`TorrentCore::pause`]; candidates are
    /// dialled at once.
    pub(crate) fn resume(&mut self, now: Instant) {
        if self.active() {
            return;
        }
        self.status.error = None;
        self.status.state = if self.meta.is_some() {
            TorrentState::FetchingMetadata
        } else if self.picker.is_complete() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        };
        for a in self.addrs.values_mut() {
            if a.state != AddrState::Never {
                a.state = AddrState::Idle;
                a.retry_at = now;
            }
        }
        self.next_tick = now;
    }

    /// New piece priorities (0: skip). Interest, requests and the state follow.
    /// Before the picker exists (metadata or the check still to come) this
    /// does nothing: the picker is built with the priorities then, and an
    /// empty picker would count as complete (seeding with nothing).
    pub(crate) fn set_priorities(&mut self, now: Instant, prio: &[u8]) {
        if self.picker.num_pieces() == 0 {
            return;
        }
        for (i, &p) in prio
            .iter()
            .enumerate()
            .take(self.picker.num_pieces() as usize)
        {
            self.picker.set_priority(i as u32, p);
        }
        self.status.wanted_bytes = 0;
        self.status.verified_wanted_bytes = 0;
        for p in 0..self.picker.num_pieces() {
            if self.picker.priority(p) > 0 {
                let len = u64::from(self.picker.piece_len(p));
                self.status.wanted_bytes += len;
                if self.picker.has(p) {
                    self.status.verified_wanted_bytes += len;
                }
            }
        }
        let complete = self.picker.is_complete();
        self.completed = complete;
        if self.active() {
            let state = if complete {
                TorrentState::Seeding
            } else {
                TorrentState::Downloading
            };
            if state != self.status.state {
                self.status.state = state;
                self.rechoke(now);
            }
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            let interesting = self
                .peers
                .get(&k)
                .map(|p| p.has.iter_ones().filter(|&i| self.wanted(i)).count() as u32);
            if let (Some(n), Some(p)) = (interesting, self.peers.get_mut(&k)) {
                p.interesting = n;
            }
            self.update_interest(k);
        }
        // Readers' pieces first, each to the peer expected soonest; then
        // the ordinary refills.
        self.update_deadlines(now);
        self.request_time_critical(now);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill(k);
        }
    }

    /// Closes every connection and returns the verified-piece set for a
    /// final save. The core is done after this.
    pub(crate) fn shutdown(&mut self) -> Vec<bool> {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.close_peer(k);
        }
        self.status.state = TorrentState::Stopped;
        self.status.download_rate = 0;
        self.status.upload_rate = 0;
        self.resume_dirty = false;
        self.verified()
    }

    // ------------------------------------------------------------- helpers

    fn send(&mut self, key: PeerKey, cmd: PeerCmd) {
        if self.peers.get(&key).is_some_and(|p| !p.closing) {
            self.actions.push_back(Action::Peer(key, cmd));
        }
    }

    fn close_peer(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            if !p.closing {
                p.closing = true;
                self.actions.push_back(Action::Close(key));
            }
        }
    }

    fn wanted(&self, piece: u32) -> bool {
        !self.picker.has(piece) && self.picker.priority(piece) > 0
    }

    fn save_resume(&mut self, now: Instant) {
        self.resume_dirty = false;
        self.last_resume = now;
        let v = self.verified();
        self.actions.push_back(Action::SaveResume(v));
    }

    fn new_key(&mut self) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        key
    }
}

/// The identity a ban applies to: the IP address, or the whole socket
/// address for loopback peers (they all share one IP).
pub(crate) fn ban_key(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_loopback() {
        addr
    } else {
        SocketAddr::new(addr.ip(), 0)
    }
}

/// Pipeline depth for a peer delivering `down_rate` bytes/s (its recent
/// rate: the 10-s average would make the pipeline lag a rising rate, and a
/// seeder answering in timed bursts then delivers one pipeline per burst,
/// a rate that grows only linearly): one second's worth of blocks, within
/// bounds. Short enough that a slow peer does not
/// hold every block of a piece that faster ones could share (in the swarm
/// simulator's 1 seed + 100 leechers, two seconds' worth and at least 16
/// blocks made the last completion 6% later): pieces complete, and are
/// relayed, sooner.
fn pipeline_target(down_rate: u64, cap: u32) -> usize {
    let by_rate = (down_rate / u64::from(crate::picker::BLOCK_SIZE)) as usize;
    by_rate.clamp(MIN_PIPELINE, MAX_PIPELINE).min(cap as usize)
}
