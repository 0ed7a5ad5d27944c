//! Tracker clients for shoal: HTTP(S) (BEP 3, 7, 23, 24, 48) and UDP (BEP 15),
//! and the announce-list tier logic (BEP 12).
//!
//! Layers, bottom up:
//! - sans-IO codecs: [`http_url`] (announce and scrape URLs), [`http_reply`]
//!   (bencoded replies), [`udp_codec`] (BEP 15 packets);
//! - the sans-IO UDP exchange [`UdpSession`] and the sans-IO tier scheduler
//!   [`Announcer`], both taking time (and a seed) as input;
//! - tokio drivers: [`HttpTrackerClient`] (reqwest + rustls), [`UdpTrackerClient`],
//!   [`TrackerClient`], which picks one by URL scheme, and the
//!   [`AnnounceService`], one task that runs the [`Announcer`]s of every
//!   torrent of a session ([`spawn_announcer`]: one torrent on its own).
//!
//! The tracker server is the `shoal-tracker-server` crate.
//!
//! For the engine: one [`AnnounceService`] per session; per torrent, build
//! an [`Announcer`] from its announce-list and [`AnnounceService::register`]
//! it with a closure returning the current [`AnnounceRequest`] and one
//! taking each [`AnnounceOutcome`] (peers, counts, errors); call
//! [`Registration::completed`] when the download finishes and
//! [`Registration::stop`] on shutdown.
#![deny(missing_docs)]

mod announce_service;
mod announce_task;
mod announcer;
mod client;
mod error;
mod http_client;
pub mod http_reply;
pub mod http_url;
mod peers;
mod types;
mod udp_client;
pub mod udp_codec;
mod udp_mux;
mod udp_session;

pub use announce_service::{AnnounceService, OutcomeSink, Registration, StatsFn, StatusFn};
pub use announce_task::{spawn_announcer, AnnounceOutcome, AnnouncerHandle};
pub use announcer::{AnnounceJob, Announcer, AnnouncerConfig, TrackerKey, TrackerStatus};
pub use client::{ClientConfig, TrackerClient, TrackerKind};
pub use error::{ReplyError, TrackerError, UdpPacketError, UdpTrackerError, UrlError};
pub use http_client::{HttpConfig, HttpTrackerClient};
pub use http_reply::{parse_announce_reply, parse_scrape_reply, ReplyLimits};
pub use http_url::{announce_url, scrape_url};
pub use types::{AnnounceRequest, AnnounceResponse, Event, ScrapeResponse, ScrapeStats};
pub use udp_client::{resolve_udp_url, UdpTrackerClient};
pub use udp_mux::{is_udp_tracker_reply, SharedUdpSocket};
pub use udp_session::{UdpConfig, UdpOutcome, UdpSession};
