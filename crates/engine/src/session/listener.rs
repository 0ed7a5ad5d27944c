//! The session's TCP listener: reads each incoming connection's handshake
//! prefix (bounded in time and in number) and hands the stream to the
//! torrent it names — by v1 hash or truncated v2 hash, so a hybrid torrent
//! is found by either. Connections beyond the session's limit are refused.
use super::registry::Registry;
use super::SessionCtx;
use crate::torrent::{Incoming, TorrentCmd};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Most connections reading their handshake at once.
const MAX_HANDSHAKING: usize = 64;
/// Time allowed for an incoming connection's first 48 bytes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run(
    listener: TcpListener,
    registry: Arc<Registry>,
    ctx: Arc<SessionCtx>,
    cancel: CancellationToken,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            acc = listener.accept() => match acc {
                Ok((mut stream, addr)) => {
                    if handshakes.len() >= MAX_HANDSHAKING {
                        continue;
                    }
                    let Ok(permit) = ctx.conns.total.clone().try_acquire_owned() else {
                        tracing::debug!(peer = %addr, "session connection limit: refused");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let registry = registry.clone();
                    handshakes.spawn(async move {
                        let r = tokio::time::timeout(
                            HANDSHAKE_TIMEOUT,
                            shoal_wire::tokio_io::read_handshake_prefix(&mut stream),
                        )
                        .await;
                        let Ok(Ok(prefix)) = r else { return };
                        let Some(h) = registry.find(&prefix.info_hash) else {
                            tracing::debug!(peer = %addr, "incoming connection for an unknown torrent");
                            return;
                        };
                        // The permit is the connection's until its task ends.
                        drop(permit);
                        let _ = h.tx.try_send(TorrentCmd::Incoming(Box::new(Incoming {
                            stream: Box::new(stream),
                            prefix,
                            addr,
                        })));
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    handshakes.abort_all();
}
