//! Extra HTTP routes served beside the tracker's own (`/announce`,
//! `/scrape`, `/`, `/metrics`): a search index, for instance, answers
//! `/search` and `/upload` on the tracker's port. The driver reads a
//! request's body only for an extension's route, and at most
//! [`HttpExtension::max_body`] bytes of it (a larger body is answered 413).
use crate::http::HttpAnswer;
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// The future an extension answers with.
pub type AnswerFuture = Pin<Box<dyn Future<Output = HttpAnswer> + Send>>;

/// One request for an extension.
#[derive(Debug, Clone)]
pub struct ExtensionRequest {
    /// The client's address.
    pub remote: SocketAddr,
    /// The method (`GET`, `POST` …).
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// The body (empty for a GET), at most [`HttpExtension::max_body`] bytes.
    pub body: Bytes,
}

/// Routes served by something other than the tracker.
pub trait HttpExtension: Send + Sync + 'static {
    /// True if this extension answers requests for `path` (no query).
    fn serves(&self, path: &str) -> bool;
    /// Largest request body read for this extension.
    fn max_body(&self) -> usize;
    /// Answers one request.
    fn respond(&self, req: ExtensionRequest) -> AnswerFuture;
    /// Lines in Prometheus text format appended to the tracker's
    /// `/metrics` (each ending in a newline; none by default). Called on
    /// the async threads: it must not block.
    fn metrics(&self) -> String {
        String::new()
    }
}
