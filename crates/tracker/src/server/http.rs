//! The in-process tracker's HTTP side: a minimal HTTP/1.x server (one
//! request per connection, `Connection: close`) over tokio, bounded in head
//! size and time, answering announces and scrapes from [`Swarms`].
use super::query::{parse_request_target, TrackerQuery};
use super::swarm::Swarms;
use crate::http_reply::{encode_announce_reply, encode_failure_reply, encode_scrape_reply};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn serve(listener: TcpListener, swarms: Arc<Mutex<Swarms>>) {
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let swarms = swarms.clone();
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(READ_TIMEOUT, handle(stream, remote, swarms)).await
            {
                tracing::debug!(%remote, error = %e, "tracker HTTP client too slow");
            }
        });
    }
}

async fn handle(mut stream: TcpStream, remote: SocketAddr, swarms: Arc<Mutex<Swarms>>) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or(&[])),
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (status, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => ("200 OK", answer(target, remote, &swarms)),
        _ => ("400 Bad Request", encode_failure_reply("bad request")),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

fn answer(target: &str, remote: SocketAddr, swarms: &Mutex<Swarms>) -> Vec<u8> {
    let q = match parse_request_target(target) {
        Ok(q) => q,
        Err(e) => return encode_failure_reply(&e.to_string()),
    };
    let Ok(mut s) = swarms.lock() else {
        return encode_failure_reply("internal error");
    };
    match q {
        TrackerQuery::Announce(req) => {
            let peer = SocketAddr::new(remote.ip(), req.port);
            match s.announce(Instant::now(), peer, &req) {
                Ok(r) => encode_announce_reply(&r),
                Err(e) => encode_failure_reply(&e.to_string()),
            }
        }
        TrackerQuery::Scrape(h) if h.is_empty() => {
            encode_failure_reply("full scrape not supported")
        }
        TrackerQuery::Scrape(h) => encode_scrape_reply(&s.scrape(&h)),
    }
}
