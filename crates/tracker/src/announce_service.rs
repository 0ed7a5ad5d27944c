//! One task announcing for every torrent of a session.
//!
//! Each registered torrent is an [`Announcer`] (the sans-IO scheduler), a
//! closure giving its current statistics and a sink taking the trackers'
//! answers; the service's task keeps them all in one map, wakes for the
//! earliest due announce through one timer heap, and makes the announces
//! through one [`TrackerClient`] (a task per announce in flight, so trackers
//! never wait for each other). A torrent then holds only its
//! [`Registration`], not a task, a future and channels of its own: a daemon
//! with thousands of torrents, most of them idle, announces for all of them
//! from one place.
//!
//! Shape (DESIGN.md, one actor shape): a cloneable handle around an
//! unbounded message channel (registration and control messages are small
//! and rare; they must not wait); the run loop `select!`s over messages,
//! finished announces and the heap's next deadline.
//!
//! Invariants: a registration's entry lives until its `stopped` announces
//! are done or its stop deadline passed (then its [`Registration::stop`]
//! returns), or at once when the service ends. The heap may hold stale
//! times; an entry is polled only at the time it last asked for.
use crate::announce_task::AnnounceOutcome;
use crate::announcer::{Announcer, TrackerKey, TrackerStatus};
use crate::client::TrackerClient;
use shoal_base::VecMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// Announces under way at once, for all torrents together. A session that
/// restores or stops thousands of torrents would otherwise start thousands
/// of announces in the same instant (each a task with its buffers); the
/// others wait their turn, in order.
pub const MAX_IN_FLIGHT: usize = 64;

/// Gives a torrent's current statistics for an announce (its `event` is
/// replaced by the scheduler's).
pub type StatsFn = Box<dyn Fn() -> crate::AnnounceRequest + Send>;
/// Takes each answer (or failure) of a torrent's trackers; must not wait.
pub type OutcomeSink = Box<dyn Fn(AnnounceOutcome) + Send>;

enum Msg {
    Add(u64, Box<Entry>),
    Completed(u64),
    Now(u64),
    /// Send `stopped`, then forget it (and say so on the sender, if one).
    Stop(u64, Option<oneshot::Sender<()>>),
    /// Hand its trackers' status to the callback (not called if it is gone).
    Status(u64, StatusFn),
}

/// Takes a torrent's trackers' status ([`Registration::status`]).
pub type StatusFn = Box<dyn FnOnce(Vec<TrackerStatus>) + Send>;

struct Entry {
    ann: Announcer,
    stats: StatsFn,
    sink: OutcomeSink,
    /// The time the heap holds for it (`None`: not in the heap).
    wake: Option<Instant>,
    /// Stopping: the deadline, and who waits for the end (boxed: an entry
    /// lives as long as its torrent, and stops only at its end).
    stop: Option<Box<(Instant, Option<oneshot::Sender<()>>)>>,
}

/// The announcing service of a session; cloneable. Its task ends when the
/// last handle and the last [`Registration`] are dropped and every entry
/// stopped.
#[derive(Debug, Clone)]
pub struct AnnounceService {
    tx: mpsc::UnboundedSender<Msg>,
    ids: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// One torrent's place in the [`AnnounceService`]. Dropping it stops the
/// torrent's announces as [`Registration::stop`] would, without waiting.
#[derive(Debug)]
pub struct Registration {
    id: u64,
    tx: Option<mpsc::UnboundedSender<Msg>>,
}

impl AnnounceService {
    /// Spawns the service's task on the current runtime. `stop_timeout`
    /// bounds each torrent's `stopped` phase.
    pub fn spawn(client: TrackerClient, stop_timeout: Duration) -> AnnounceService {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(client, rx, stop_timeout));
        AnnounceService {
            tx,
            ids: Default::default(),
        }
    }

    /// Starts announcing for one torrent: `announcer` schedules, `stats`
    /// fills each request, `sink` takes each result. The first announces are
    /// due at once (as the announcer says).
    pub fn register(
        &self,
        announcer: Announcer,
        stats: StatsFn,
        sink: OutcomeSink,
    ) -> Registration {
        let id = self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = Entry {
            ann: announcer,
            stats,
            sink,
            wake: None,
            stop: None,
        };
        let _ = self.tx.send(Msg::Add(id, Box::new(entry)));
        Registration {
            id,
            tx: Some(self.tx.clone()),
        }
    }
}

impl Registration {
    fn send(&self, m: Msg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(m);
        }
    }

    /// Tells the trackers the download completed (`completed` event).
    pub fn completed(&self) {
        self.send(Msg::Completed(self.id));
    }

    /// Asks for peers as soon as the trackers' `min interval` allows.
    pub fn announce_now(&self) {
        self.send(Msg::Now(self.id));
    }

    /// Hands the status of the torrent's trackers (what each said last,
    /// tier by tier) to `reply`, from the service's task; `reply` is dropped
    /// uncalled when the registration is no longer known there.
    pub fn status(&self, reply: StatusFn) {
        self.send(Msg::Status(self.id, reply));
    }

    /// Sends `stopped` to the trackers that saw `started` and waits until
    /// they answered or the service's stop timeout passed.
    pub async fn stop(mut self) {
        let (done, wait) = oneshot::channel();
        if let Some(tx) = self.tx.take() {
            if tx.send(Msg::Stop(self.id, Some(done))).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Stop(self.id, None));
        }
    }
}

/// One announce under way: whose, which tracker, and what it sent.
type Job = (u64, TrackerKey, std::sync::Arc<str>, crate::Event);
type JobResult = (Job, Result<crate::AnnounceResponse, crate::TrackerError>);

struct Service {
    client: TrackerClient,
    stop_timeout: Duration,
    /// By registration id ([`VecMap`]: one entry per torrent, thousands).
    entries: VecMap<u64, Entry>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    jobs: JoinSet<JobResult>,
    /// The job of each announce task (to hand a panicked one back).
    running: HashMap<tokio::task::Id, (u64, TrackerKey)>,
    /// Entries with announces due while [`MAX_IN_FLIGHT`] were under way,
    /// in order (an entry may be here more than once: polling is idempotent).
    waiting: std::collections::VecDeque<u64>,
}

async fn run(client: TrackerClient, mut rx: mpsc::UnboundedReceiver<Msg>, stop_timeout: Duration) {
    let mut s = Service {
        client,
        stop_timeout,
        entries: VecMap::new(),
        heap: BinaryHeap::new(),
        jobs: JoinSet::new(),
        running: HashMap::new(),
        waiting: Default::default(),
    };
    let mut open = true;
    loop {
        s.due(Instant::now());
        if !open && s.entries.is_empty() {
            break;
        }
        let next = s.heap.peek().map(|Reverse((t, _))| *t);
        tokio::select! {
            m = rx.recv(), if open => match m {
                Some(m) => s.on_msg(m, Instant::now()),
                None => {
                    // Every handle and registration is gone: stop them all.
                    open = false;
                    let now = Instant::now();
                    let ids: Vec<u64> = s.entries.keys().copied().collect();
                    for id in ids {
                        s.on_msg(Msg::Stop(id, None), now);
                    }
                }
            },
            Some(done) = s.jobs.join_next_with_id(), if !s.jobs.is_empty() => s.on_done(done),
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {}
        }
    }
    s.jobs.abort_all();
}

impl Service {
    /// Polls every entry whose time came.
    fn due(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            // A stale time (the entry asked for another since) is skipped.
            let fire = match self.entries.get_mut(&id) {
                Some(e) if e.wake == Some(t) => {
                    e.wake = None;
                    true
                }
                _ => false,
            };
            if fire {
                self.poll(id, now);
            }
        }
    }

    fn on_msg(&mut self, m: Msg, now: Instant) {
        let id = match m {
            Msg::Add(id, e) => {
                self.entries.insert(id, *e);
                id
            }
            Msg::Completed(id) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.ann.completed(now);
                }
                id
            }
            Msg::Now(id) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.ann.announce_now(now);
                }
                id
            }
            Msg::Status(id, reply) => {
                if let Some(e) = self.entries.get(&id) {
                    reply(e.ann.status());
                }
                // Nothing is due because of a look.
                return;
            }
            Msg::Stop(id, done) => {
                match self.entries.get_mut(&id) {
                    Some(e) if e.stop.is_none() => {
                        e.ann.stop();
                        e.stop = Some(Box::new((now + self.stop_timeout, done)));
                    }
                    // Stopping already: the later waiter is told at once.
                    Some(_) | None => drop(done),
                }
                id
            }
        };
        self.poll(id, now);
    }

    fn on_done(&mut self, done: Result<(tokio::task::Id, JobResult), tokio::task::JoinError>) {
        let now = Instant::now();
        match done {
            Ok((tid, ((id, key, url, event), result))) => {
                self.running.remove(&tid);
                let Some(e) = self.entries.get_mut(&id) else {
                    return;
                };
                match &result {
                    Ok(resp) => e.ann.handle_success(key, now, resp),
                    Err(err) => {
                        tracing::debug!(%url, error = %err, "announce failed");
                        e.ann.handle_failure(key, now, &err.to_string());
                    }
                }
                (e.sink)(AnnounceOutcome { url, event, result });
                self.poll(id, now);
                self.resume_waiting(now);
            }
            Err(err) => {
                if let Some((id, key)) = self.running.remove(&err.id()) {
                    if let Some(e) = self.entries.get_mut(&id) {
                        e.ann.handle_failure(key, now, "announce task failed");
                    }
                    self.poll(id, now);
                }
                self.resume_waiting(now);
            }
        }
    }

    /// Polls the entries that waited for room, while there is room.
    fn resume_waiting(&mut self, now: Instant) {
        while self.jobs.len() < MAX_IN_FLIGHT {
            let Some(id) = self.waiting.pop_front() else {
                break;
            };
            self.poll(id, now);
        }
    }

    /// Starts the announces entry `id` owes now, ends it when its stop is
    /// done, or puts it in the heap for its next time.
    fn poll(&mut self, id: u64, now: Instant) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        if self.jobs.len() >= MAX_IN_FLIGHT {
            // Its announces wait for room (its stop deadline still runs).
            self.waiting.push_back(id);
            if let Some((deadline, _)) = e.stop.as_deref() {
                if now >= *deadline {
                    self.entries.remove(&id);
                    return;
                }
                if e.wake != Some(*deadline) {
                    self.heap.push(Reverse((*deadline, id)));
                    e.wake = Some(*deadline);
                }
            }
            return;
        }
        while let Some(job) = e.ann.poll_announce(now) {
            let req = job.request(&(e.stats)());
            let c = self.client.clone();
            let h = self.jobs.spawn(async move {
                let r = c.announce(&job.url, &req, job.tracker_id.as_deref()).await;
                ((id, job.key, job.url, job.event), r)
            });
            self.running.insert(h.id(), (id, job.key));
        }
        let next = match e.stop.as_deref() {
            Some((deadline, _)) => {
                if e.ann.is_stopped() || now >= *deadline {
                    self.entries.remove(&id);
                    return;
                }
                Some(*deadline)
            }
            None => e.ann.poll_timeout(),
        };
        if next != e.wake {
            if let Some(t) = next {
                self.heap.push(Reverse((t, id)));
            }
            e.wake = next;
        }
    }
}

#[cfg(test)]
#[path = "announce_service_tests.rs"]
mod tests;
