//! The announces of one torrent on their own: [`spawn_announcer`], an
//! [`AnnounceService`] with a single registration (for a tool or a test
//! with one torrent), and the [`AnnounceOutcome`] every driver reports.
use crate::announce_service::{AnnounceService, Registration};
use crate::announcer::Announcer;
use crate::client::TrackerClient;
use crate::error::TrackerError;
use crate::types::{AnnounceRequest, AnnounceResponse, Event};
use std::time::Duration;

/// The result of one announce made by the task.
#[derive(Debug)]
pub struct AnnounceOutcome {
    /// The tracker URL.
    pub url: std::sync::Arc<str>,
    /// The event that was sent.
    pub event: Event,
    /// The tracker's answer (peers, counts) or why it failed.
    pub result: Result<AnnounceResponse, TrackerError>,
}

/// Controls the announces of one torrent started by [`spawn_announcer`].
/// Dropping it stops them as [`AnnouncerHandle::stop`] would, without
/// waiting.
#[derive(Debug)]
pub struct AnnouncerHandle {
    reg: Registration,
}

impl AnnouncerHandle {
    /// Tells the trackers the download completed (`completed` event).
    pub async fn completed(&self) {
        self.reg.completed();
    }

    /// Asks for peers as soon as the trackers' `min interval` allows.
    pub async fn announce_now(&self) {
        self.reg.announce_now();
    }

    /// Sends `stopped` to the trackers that saw `started` and waits until
    /// they answered or the stop timeout passed.
    pub async fn stop(self) {
        self.reg.stop().await;
    }
}

/// Announces for one torrent on a service of its own (see
/// [`AnnounceService`]; a session with many torrents registers them all
/// with one instead).
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
    let service = AnnounceService::spawn(client, stop_timeout);
    AnnouncerHandle {
        reg: service.register(announcer, Box::new(stats), Box::new(results)),
    }
}
