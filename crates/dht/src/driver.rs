//! The tokio UDP driver: one task owns a [`Node`] and its socket; [`Dht`] is a cheap
//! `Clone` handle that sends it commands over a bounded channel and awaits replies.
//!
//! The task loop: receive a datagram, or a command, or the node's next deadline; then
//! flush datagrams to send and hand finished operations to whoever waits for them.
//! The routing table is saved to `state_file` periodically and on shutdown (never
//! while it is empty, so a run without network does not wipe a good table).
use crate::compact::NodeInfo;
use crate::id::Id20;
use crate::item::{self, Item, ItemError};
use crate::lookup::{LookupId, LookupKind, LookupResult};
use crate::node::{Config, Event, Node, PingId, StartError};
use crate::persist::{self, PersistError, SavedTable};
use crate::Counters;
use ed25519_dalek::SigningKey;
use shoal_base::InfoHash;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Driver settings.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// UDP address to bind (its family selects the IPv4 or IPv6 table for lookups).
    pub bind: SocketAddr,
    /// Core settings.
    pub node: Config,
    /// Where to load the routing table from at start and save it to (its directory
    /// is created when missing; a file that cannot be read is logged and ignored, and
    /// replaced at the next save).
    pub state_file: Option<PathBuf>,
    /// How often to save the routing table.
    pub save_interval: Duration,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 6881)),
            node: Config::default(),
            state_file: None,
            save_interval: Duration::from_secs(300),
        }
    }
}

/// Why a DHT operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// Binding the socket failed.
    #[error("dht: cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The node task has stopped.
    #[error("dht: node stopped")]
    Stopped,
    /// The node refused to start the operation.
    #[error("{0}")]
    Start(#[from] StartError),
    /// The item is invalid.
    #[error("{0}")]
    Item(#[from] ItemError),
    /// The node did not answer the ping.
    #[error("dht: no answer from {0}")]
    NoAnswer(SocketAddr),
    /// Loading or saving the routing table failed.
    #[error("{0}")]
    Persist(#[from] PersistError),
}

enum Cmd {
    Ping(SocketAddr, oneshot::Sender<Option<(Id20, Duration)>>),
    Lookup {
        kind: LookupKind,
        target: Id20,
        seeds: Vec<SocketAddr>,
        reply: oneshot::Sender<Result<LookupResult, StartError>>,
    },
    AddNodes(Vec<NodeInfo>),
    Nodes(oneshot::Sender<Vec<NodeInfo>>),
    Counters(oneshot::Sender<Counters>),
    Shutdown(oneshot::Sender<()>),
}

/// A handle to a running DHT node.
#[derive(Clone, Debug)]
pub struct Dht {
    tx: mpsc::Sender<Cmd>,
    local_addr: SocketAddr,
    id: Id20,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

impl Dht {
    /// Binds the socket, loads the saved routing table (its ID is reused when the
    /// config gives none) and starts the node task.
    pub async fn bind(cfg: DhtConfig) -> Result<Dht, DhtError> {
        let socket = UdpSocket::bind(cfg.bind)
            .await
            .map_err(|source| DhtError::Bind {
                addr: cfg.bind,
                source,
            })?;
        Self::start(cfg, Arc::new(socket), None)
    }

    /// Runs the node on a socket another protocol shares (uTP): it sends
    /// from `socket` and receives only what the socket's owner hands it on
    /// `inbound` (sender, datagram), never reading the socket itself.
    /// `cfg.bind` is ignored; the state file is loaded as by [`Dht::bind`].
    pub fn with_socket(
        mut cfg: DhtConfig,
        socket: Arc<UdpSocket>,
        inbound: mpsc::Receiver<(SocketAddr, bytes::Bytes)>,
    ) -> Result<Dht, DhtError> {
        if let Ok(addr) = socket.local_addr() {
            cfg.bind = addr;
        }
        Self::start(cfg, socket, Some(inbound))
    }

    fn start(
        mut cfg: DhtConfig,
        socket: Arc<UdpSocket>,
        inbound: Option<mpsc::Receiver<(SocketAddr, bytes::Bytes)>>,
    ) -> Result<Dht, DhtError> {
        let local_addr = socket.local_addr().map_err(|source| DhtError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let mut saved = Vec::new();
        if let Some(path) = &cfg.state_file {
            if path.exists() {
                match persist::load(path) {
                    Ok(t) => {
                        let (id, nodes) = t.parsed();
                        if cfg.node.id.is_none() {
                            cfg.node.id = id;
                        }
                        saved = nodes;
                    }
                    Err(e) => tracing::warn!(error = %e, "dht: ignoring the state file"),
                }
            }
        }
        let start = Instant::now();
        let mut node = Node::new(cfg.node.clone(), Duration::ZERO);
        for n in saved {
            node.add_node(n, Duration::ZERO);
        }
        let id = node.id();
        let (tx, rx) = mpsc::channel(256);
        let task = Task {
            node,
            socket,
            inbound,
            start,
            rx,
            v6: local_addr.is_ipv6(),
            pings: HashMap::new(),
            lookups: HashMap::new(),
            state_file: cfg.state_file.clone(),
            save_interval: cfg.save_interval,
        };
        tokio::spawn(task.run());
        Ok(Dht { tx, local_addr, id })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's ID.
    pub fn id(&self) -> Id20 {
        self.id
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| DhtError::Stopped)?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// Runs a lookup of any kind; `seeds` are extra address-only nodes to query.
    pub async fn lookup(
        &self,
        kind: LookupKind,
        target: Id20,
        seeds: Vec<SocketAddr>,
    ) -> Result<LookupResult, DhtError> {
        Ok(self
            .call(|reply| Cmd::Lookup {
                kind,
                target,
                seeds,
                reply,
            })
            .await??)
    }

    /// Pings `addr`: its node ID and the round-trip time.
    pub async fn ping(&self, addr: SocketAddr) -> Result<(Id20, Duration), DhtError> {
        self.call(|r| Cmd::Ping(addr, r))
            .await?
            .ok_or(DhtError::NoAnswer(addr))
    }

    /// Joins the network through `addrs` (a `find_node` lookup of the own ID seeded
    /// with them); returns the number of nodes then in the routing table.
    pub async fn bootstrap(&self, addrs: &[SocketAddr]) -> Result<usize, DhtError> {
        self.lookup(LookupKind::FindNode, self.id, addrs.to_vec())
            .await?;
        Ok(self.nodes().await?.len())
    }

    /// The k closest nodes to `id` that answered.
    pub async fn find_node(&self, id: Id20) -> Result<Vec<NodeInfo>, DhtError> {
        let r = self.lookup(LookupKind::FindNode, id, Vec::new()).await?;
        Ok(r.closest.into_iter().map(|c| c.node).collect())
    }

    /// Peers for `info_hash` (in `peers`) and the closest nodes (in `closest`).
    pub async fn get_peers(&self, info_hash: InfoHash) -> Result<LookupResult, DhtError> {
        let kind = LookupKind::GetPeers {
            announce: None,
            implied_port: false,
        };
        self.lookup(kind, info_hash.into(), Vec::new()).await
    }

    /// Announces that we have `info_hash` on `port` (`None`: the DHT socket's port,
    /// through `implied_port`) to the k closest nodes; peers found on the way are in
    /// the result, `stored` counts acknowledgements.
    pub async fn announce(
        &self,
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<LookupResult, DhtError> {
        let kind = LookupKind::GetPeers {
            announce: Some(port.unwrap_or(self.local_addr.port())),
            implied_port: port.is_none(),
        };
        self.lookup(kind, info_hash.into(), Vec::new()).await
    }

    /// Stores an immutable BEP 44 item (`v` is bencoded); returns its target and the
    /// number of nodes that stored it.
    pub async fn put_immutable(&self, v: Vec<u8>) -> Result<(Id20, usize), DhtError> {
        let item = Item::immutable(v)?;
        let target = item.target();
        let r = self
            .lookup(LookupKind::PutItem { item, cas: None }, target, Vec::new())
            .await?;
        Ok((target, r.stored))
    }

    /// Fetches an immutable item (its bencoded value), verified against `target`.
    pub async fn get_immutable(&self, target: Id20) -> Result<Option<Vec<u8>>, DhtError> {
        let kind = LookupKind::GetItem {
            seq: None,
            salt: Vec::new(),
        };
        let r = self.lookup(kind, target, Vec::new()).await?;
        Ok(r.item.filter(|i| i.mutable.is_none()).map(|i| i.v))
    }

    /// Signs and stores a mutable item; `cas` is the seq it must replace. Returns the
    /// target and the store result (`stored`, and `store_errors` with codes such as 301
    /// CAS mismatch or 302 seq too low).
    pub async fn put_mutable(
        &self,
        key: &SigningKey,
        salt: Vec<u8>,
        seq: i64,
        v: Vec<u8>,
        cas: Option<i64>,
    ) -> Result<(Id20, LookupResult), DhtError> {
        let item = Item::mutable(key, salt, seq, v)?;
        let target = item.target();
        let r = self
            .lookup(LookupKind::PutItem { item, cas }, target, Vec::new())
            .await?;
        Ok((target, r))
    }

    /// Fetches the newest mutable item for `pubkey` and `salt` (signature verified).
    pub async fn get_mutable(
        &self,
        pubkey: [u8; 32],
        salt: Vec<u8>,
    ) -> Result<Option<Item>, DhtError> {
        if salt.len() > crate::krpc::MAX_SALT {
            return Err(ItemError::SaltTooBig(salt.len()).into());
        }
        let target = item::mutable_target(&pubkey, &salt);
        let r = self
            .lookup(LookupKind::GetItem { seq: None, salt }, target, Vec::new())
            .await?;
        Ok(r.item
            .filter(|i| i.mutable.as_ref().is_some_and(|m| m.k == pubkey)))
    }

    /// BEP 51: info-hash samples from the nodes near `target`.
    pub async fn sample_infohashes(&self, target: Id20) -> Result<LookupResult, DhtError> {
        self.lookup(LookupKind::Sample, target, Vec::new()).await
    }

    /// Adds known nodes (e.g. from another source) to the routing table.
    pub async fn add_nodes(&self, nodes: Vec<NodeInfo>) -> Result<(), DhtError> {
        self.tx
            .send(Cmd::AddNodes(nodes))
            .await
            .map_err(|_| DhtError::Stopped)
    }

    /// Every node in the routing table.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, DhtError> {
        self.call(Cmd::Nodes).await
    }

    /// Packet and error counters.
    pub async fn counters(&self) -> Result<Counters, DhtError> {
        self.call(Cmd::Counters).await
    }

    /// Saves the routing table to `path` (creating its directory).
    pub async fn save_table(&self, path: &std::path::Path) -> Result<(), DhtError> {
        let nodes = self.nodes().await?;
        save_nodes(path, self.id, &nodes)?;
        Ok(())
    }

    /// Stops the node (saving its table if configured) and closes its socket.
    pub async fn shutdown(&self) -> Result<(), DhtError> {
        self.call(Cmd::Shutdown).await
    }
}

/// Writes `nodes` to `path`, creating the parent directory first.
fn save_nodes(path: &std::path::Path, own: Id20, nodes: &[NodeInfo]) -> Result<(), PersistError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PersistError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    persist::save(path, &SavedTable::new(own, nodes))
}

/// The next handed-over datagram (never, without a channel or once it closed).
async fn recv_inbound(
    inbound: &mut Option<mpsc::Receiver<(SocketAddr, bytes::Bytes)>>,
) -> Option<(SocketAddr, bytes::Bytes)> {
    match inbound {
        Some(rx) => match rx.recv().await {
            Some(d) => Some(d),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

struct Task {
    node: Node,
    socket: Arc<UdpSocket>,
    /// Datagrams handed over by the socket's owner (a shared socket).
    inbound: Option<mpsc::Receiver<(SocketAddr, bytes::Bytes)>>,
    start: Instant,
    rx: mpsc::Receiver<Cmd>,
    v6: bool,
    pings: HashMap<PingId, oneshot::Sender<Option<(Id20, Duration)>>>,
    lookups: HashMap<LookupId, oneshot::Sender<Result<LookupResult, StartError>>>,
    state_file: Option<PathBuf>,
    save_interval: Duration,
}

impl Task {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; crate::krpc::MAX_PACKET + 1];
        let mut next_save = Instant::now() + self.save_interval;
        loop {
            let deadline = self.start + self.node.poll_timeout();
            tokio::select! {
                r = self.socket.recv_from(&mut buf), if self.inbound.is_none() => {
                    match r {
                        Ok((len, from)) => {
                            let now = self.now();
                            self.node.handle_packet(now, from, &buf[..len]);
                        }
                        Err(e) => tracing::debug!(error = %e, "dht: recv failed"),
                    }
                }
                Some((from, data)) = recv_inbound(&mut self.inbound) => {
                    let now = self.now();
                    let len = data.len().min(buf.len());
                    self.node.handle_packet(now, from, &data[..len]);
                }
                cmd = self.rx.recv() => {
                    match cmd {
                        None => {
                            // Every handle was dropped.
                            self.save();
                            break;
                        }
                        Some(Cmd::Shutdown(ack)) => {
                            self.save();
                            let _ = ack.send(());
                            break;
                        }
                        Some(c) => self.command(c),
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
                _ = tokio::time::sleep_until(next_save), if self.state_file.is_some() => {
                    self.save();
                    next_save = Instant::now() + self.save_interval;
                }
            }
            self.flush().await;
        }
    }

    /// Saves the table to the state file, unless it is empty.
    fn save(&self) {
        if let Some(path) = &self.state_file {
            let mut nodes = self.node.table(false).nodes();
            nodes.extend(self.node.table(true).nodes());
            if nodes.is_empty() {
                return;
            }
            if let Err(e) = save_nodes(path, self.node.id(), &nodes) {
                tracing::warn!(error = %e, "dht: saving the routing table failed");
            }
        }
    }

    fn command(&mut self, c: Cmd) {
        let now = self.now();
        match c {
            Cmd::Ping(addr, reply) => match self.node.ping(now, addr) {
                Ok(id) => {
                    self.pings.insert(id, reply);
                }
                Err(_) => {
                    let _ = reply.send(None);
                }
            },
            Cmd::Lookup {
                kind,
                target,
                seeds,
                reply,
            } => match self.node.start_lookup(now, kind, target, self.v6, &seeds) {
                Ok(id) => {
                    self.lookups.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Cmd::AddNodes(nodes) => {
                for n in nodes {
                    self.node.add_node(n, now);
                }
            }
            Cmd::Nodes(reply) => {
                let mut nodes = self.node.table(false).nodes();
                nodes.extend(self.node.table(true).nodes());
                let _ = reply.send(nodes);
            }
            Cmd::Counters(reply) => {
                let _ = reply.send(*self.node.counters());
            }
            Cmd::Shutdown(_) => {}
        }
    }

    async fn flush(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if let Err(e) = self.socket.send_to(&t.data, t.to).await {
                tracing::debug!(to = %t.to, error = %e, "dht: send failed");
            }
        }
        while let Some(ev) = self.node.poll_event() {
            match ev {
                Event::LookupDone(id, r) => {
                    if let Some(tx) = self.lookups.remove(&id) {
                        let _ = tx.send(Ok(*r));
                    }
                }
                Event::PingDone(id, r) => {
                    if let Some(tx) = self.pings.remove(&id) {
                        let _ = tx.send(r);
                    }
                }
            }
        }
    }
}
