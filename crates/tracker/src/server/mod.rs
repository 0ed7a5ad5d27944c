//! A small in-process BitTorrent tracker (HTTP and UDP) answering from
//! memory: for tests, and for `shoal tracker` later. Not a production
//! tracker: no full scrape, one request per HTTP connection, a std mutex
//! around the swarm table (held only for one announce).
mod http;
pub mod query;
pub mod swarm;
mod udp;

pub use swarm::{AnnounceRefused, SwarmConfig, Swarms};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A running tracker. Its tasks stop when it is dropped.
#[derive(Debug)]
pub struct TrackerServer {
    http_addr: Option<SocketAddr>,
    udp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl TrackerServer {
    /// Starts an HTTP tracker on `http` and/or a UDP tracker on `udp`
    /// (port 0 picks a free port), sharing one swarm table.
    pub async fn start(
        http: Option<SocketAddr>,
        udp: Option<SocketAddr>,
        config: SwarmConfig,
    ) -> std::io::Result<TrackerServer> {
        let swarms = Arc::new(Mutex::new(Swarms::new(config)));
        let mut s = TrackerServer {
            http_addr: None,
            udp_addr: None,
            tasks: Vec::new(),
        };
        if let Some(a) = http {
            let l = TcpListener::bind(a).await?;
            s.http_addr = Some(l.local_addr()?);
            s.tasks.push(tokio::spawn(http::serve(l, swarms.clone())));
        }
        if let Some(a) = udp {
            let sock = UdpSocket::bind(a).await?;
            s.udp_addr = Some(sock.local_addr()?);
            s.tasks.push(tokio::spawn(udp::serve(
                sock,
                swarms.clone(),
                rand::random(),
            )));
        }
        Ok(s)
    }

    /// The HTTP announce URL (`http://ADDR/announce`), if HTTP is served.
    pub fn http_url(&self) -> Option<String> {
        self.http_addr.map(|a| format!("http://{a}/announce"))
    }

    /// The UDP announce URL (`udp://ADDR/announce`), if UDP is served.
    pub fn udp_url(&self) -> Option<String> {
        self.udp_addr.map(|a| format!("udp://{a}/announce"))
    }
}

impl Drop for TrackerServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
