//! The tokio driver of an [`Announcer`]: a task that runs the scheduler with
//! the real clock, makes the announces through a [`TrackerClient`] (one task
//! per announce, so trackers never wait for each other), hands each result
//! to its caller's sink, and on stop sends the `stopped` announces within a short
//! deadline before it ends.
//!
//! Shape (DESIGN.md, one actor shape): a handle around a bounded command
//! channel; the run loop `select!`s over in-flight announces, commands and
//! the scheduler's next deadline.
use crate::announcer::{Announcer, TrackerKey};
use crate::client::TrackerClient;
use crate::error::TrackerError;
use crate::types::{AnnounceRequest, AnnounceResponse, Event};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// The result of one announce made by the task.
#[derive(Debug)]
pub struct AnnounceOutcome {
    /// The tracker URL.
    pub url: String,
    /// The event that was sent.
    pub event: Event,
    /// The tracker's answer (peers, counts) or why it failed.
    pub result: Result<AnnounceResponse, TrackerError>,
}

#[derive(Debug, Clone, Copy)]
enum Command {
    Completed,
    AnnounceNow,
    Stop,
}

/// Controls a running announce task. Dropping it stops the task as [`AnnouncerHandle::stop`] would,
/// without waiting for it.
#[derive(Debug)]
pub struct AnnouncerHandle {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl AnnouncerHandle {
    /// Tells the trackers the download completed (`completed` event).
    pub async fn completed(&self) {
        let _ = self.commands.send(Command::Completed).await;
    }

    /// Asks for peers as soon as the trackers' `min interval` allows.
    pub async fn announce_now(&self) {
        let _ = self.commands.send(Command::AnnounceNow).await;
    }

    /// Sends `stopped` to the trackers that saw `started` and waits until
    /// they answered or the task's stop timeout passed.
    pub async fn stop(self) {
        let _ = self.commands.send(Command::Stop).await;
        let _ = self.task.await;
    }
}

/// Spawns the announce task for one torrent.
///
/// `stats` gives our current statistics (info-hash, peer id, port, byte
/// counts, key) for each announce; its `event` is replaced by the
/// scheduler's. Each result is handed to `results`, which must not wait
/// (for a channel: `try_send`, dropping the result when it is full).
/// `stop_timeout` bounds the `stopped` phase.
pub fn spawn_announcer<F, R>(
    announcer: Announcer,
    client: TrackerClient,
    stats: F,
    results: R,
    stop_timeout: Duration,
) -> AnnouncerHandle
where
    F: Fn() -> AnnounceRequest + Send + 'static,
    R: Fn(AnnounceOutcome) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(run(announcer, client, stats, results, rx, stop_timeout));
    AnnouncerHandle { commands: tx, task }
}

type JobResult = (
    TrackerKey,
    String,
    Event,
    Result<AnnounceResponse, TrackerError>,
);

async fn run<F, R>(
    mut ann: Announcer,
    client: TrackerClient,
    stats: F,
    results: R,
    mut commands: mpsc::Receiver<Command>,
    stop_timeout: Duration,
) where
    F: Fn() -> AnnounceRequest,
    R: Fn(AnnounceOutcome),
{
    let mut jobs: JoinSet<JobResult> = JoinSet::new();
    let mut keys: HashMap<tokio::task::Id, TrackerKey> = HashMap::new();
    let mut stop_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        while let Some(job) = ann.poll_announce(now) {
            let req = job.request(&stats());
            let c = client.clone();
            let key = job.key;
            let h = jobs.spawn(async move {
                let r = c.announce(&job.url, &req, job.tracker_id.as_deref()).await;
                (job.key, job.url, job.event, r)
            });
            keys.insert(h.id(), key);
        }
        if stop_deadline.is_some() && ann.is_stopped() {
            break;
        }
        let wake = stop_deadline.or_else(|| ann.poll_timeout());
        tokio::select! {
            Some(done) = jobs.join_next_with_id(), if !jobs.is_empty() => {
                let now = Instant::now();
                match done {
                    Ok((id, (key, url, event, result))) => {
                        keys.remove(&id);
                        match &result {
                            Ok(resp) => ann.handle_success(key, now, resp),
                            Err(e) => {
                                tracing::debug!(%url, error = %e, "announce failed");
                                ann.handle_failure(key, now, &e.to_string());
                            }
                        }
                        results(AnnounceOutcome { url, event, result });
                    }
                    Err(e) => {
                        if let Some(key) = keys.remove(&e.id()) {
                            ann.handle_failure(key, now, "announce task failed");
                        }
                    }
                }
            }
            cmd = commands.recv(), if stop_deadline.is_none() => match cmd {
                Some(Command::Completed) => ann.completed(Instant::now()),
                Some(Command::AnnounceNow) => ann.announce_now(Instant::now()),
                Some(Command::Stop) | None => {
                    ann.stop();
                    stop_deadline = Some(Instant::now() + stop_timeout);
                }
            },
            _ = tokio::time::sleep_until(wake.unwrap_or(now).into()), if wake.is_some() => {
                if stop_deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
    }
    jobs.abort_all();
}
