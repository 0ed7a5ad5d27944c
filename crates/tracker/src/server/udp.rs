//! The in-process tracker's UDP side (BEP 15): connection ids issued per
//! source address (valid 2 minutes, table bounded), announces and scrapes
//! answered from [`Swarms`]. Peers of the socket's address family only.
use super::swarm::Swarms;
use crate::types::ScrapeStats;
use crate::udp_codec::{Request, Response, MAX_DATAGRAM};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
const MAX_CONNECTIONS: usize = 65_536;

pub(super) async fn serve(socket: UdpSocket, swarms: Arc<Mutex<Swarms>>, seed: u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut connections: HashMap<SocketAddr, (u64, Instant)> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let now = Instant::now();
        let Ok(req) = Request::decode(buf.get(..n).unwrap_or(&[])) else {
            continue;
        };
        let valid = |cid: u64, c: &HashMap<SocketAddr, (u64, Instant)>| {
            c.get(&from)
                .is_some_and(|&(id, at)| id == cid && now.duration_since(at) < CONNECTION_LIFETIME)
        };
        let resp = match req {
            Request::Connect { transaction_id } => {
                if connections.len() >= MAX_CONNECTIONS {
                    connections.retain(|_, (_, at)| now.duration_since(*at) < CONNECTION_LIFETIME);
                    if connections.len() >= MAX_CONNECTIONS {
                        continue;
                    }
                }
                let connection_id = rng.gen();
                connections.insert(from, (connection_id, now));
                Response::Connect {
                    transaction_id,
                    connection_id,
                }
            }
            Request::Announce {
                connection_id,
                transaction_id,
                request,
            } => {
                if !valid(connection_id, &connections) {
                    Response::Error {
                        transaction_id,
                        message: "bad connection id".into(),
                    }
                } else {
                    let peer = SocketAddr::new(from.ip(), request.port);
                    let r = swarms
                        .lock()
                        .map_err(|_| "internal error".to_owned())
                        .and_then(|mut s| {
                            s.announce(now, peer, &request).map_err(|e| e.to_string())
                        });
                    match r {
                        Ok(a) => Response::Announce {
                            transaction_id,
                            interval: a.interval,
                            leechers: a.incomplete.unwrap_or(0),
                            seeders: a.complete.unwrap_or(0),
                            peers: a.peers.into_iter().filter(|p| p.is_ipv6() == v6).collect(),
                        },
                        Err(message) => Response::Error {
                            transaction_id,
                            message,
                        },
                    }
                }
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                if !valid(connection_id, &connections) {
                    Response::Error {
                        transaction_id,
                        message: "bad connection id".into(),
                    }
                } else {
                    let stats = match swarms.lock() {
                        Ok(s) => {
                            let r = s.scrape(&info_hashes);
                            info_hashes
                                .iter()
                                .map(|h| r.get(h).copied().unwrap_or(ScrapeStats::default()))
                                .collect()
                        }
                        Err(_) => Vec::new(),
                    };
                    Response::Scrape {
                        transaction_id,
                        stats,
                    }
                }
            }
        };
        let _ = socket.send_to(&resp.encode(), from).await;
    }
}
