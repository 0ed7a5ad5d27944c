//! Interop on loopback with real seeders. With libtorrent (Debian
//! `python3-libtorrent`), like a magnet download: shoal's `PeerConnection`
//! handshakes, fetches the info dictionary over `ut_metadata` (verified by
//! `MetadataAssembler`, by SHA-1 on a v1 connection and SHA-256 on a v2 one),
//! then requests every block and checks each piece's SHA-1. Then the same
//! download from aria2 and from Transmission seeding a v1 .torrent of the data.
//!
//! Each client is skipped (with a note) when it is not installed. Each run is
//! bounded to 60 s; seeders are killed when the test ends.

use sha1::{Digest, Sha1};
use shoal_wire::metadata::metadata_piece_count;
use shoal_wire::{
    BlockRequest, ConnectionConfig, Event, MetadataAssembler, MetadataHash, MetadataMessage,
    MetadataProgress, PeerConnection, BLOCK_SIZE,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Seeder(Child);
impl Drop for Seeder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have_libtorrent() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Info {
    piece_len: u64,
    length: u64,
    hashes: Vec<[u8; 20]>,
}

fn parse_info(raw: &[u8]) -> Info {
    let v = shoal_bencode::decode(raw, &shoal_bencode::Limits::default()).unwrap();
    let d = v.as_dict().unwrap();
    let pieces = d.get(b"pieces").unwrap().as_bytes().unwrap();
    Info {
        piece_len: d.get(b"piece length").unwrap().as_int().unwrap() as u64,
        length: d.get(b"length").unwrap().as_int().unwrap() as u64,
        hashes: pieces
            .chunks_exact(20)
            .map(|c| c.try_into().unwrap())
            .collect(),
    }
}

fn expected_data() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| ((i * 31 + 7) % 251) as u8)
        .collect()
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn download_from_real_seeders() {
    if !have_libtorrent() {
        eprintln!("skipping: python3-libtorrent not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/libtorrent_seed.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let seeder = Seeder(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "seeder said {line:?}");
    let v1: [u8; 20] = unhex(parts[0]);
    let v2: [u8; 32] = unhex(parts[1]);
    let port: u16 = parts[2].parse().unwrap();
    // v1 connection: metadata checked by SHA-1, then the whole download
    let data = run(
        port,
        v1,
        MetadataSource::Fetch(MetadataHash::V1(shoal_wire::InfoHash(v1))),
        true,
    );
    assert_eq!(data, expected_data());
    // v2 connection (truncated hash in the handshake): metadata checked by SHA-256
    let mut v2_short = [0u8; 20];
    v2_short.copy_from_slice(&v2[..20]);
    run(
        port,
        v2_short,
        MetadataSource::Fetch(MetadataHash::V2(shoal_base::InfoHashV2(v2))),
        false,
    );
    drop(seeder);

    // aria2 seeding the v1 torrent of the same data
    if Command::new("aria2c").arg("--version").output().is_err() {
        eprintln!("skipping aria2: aria2c not available");
        return;
    }
    let torrent = std::fs::read(dir.path().join("v1.torrent")).unwrap();
    let tv = shoal_bencode::decode(&torrent, &shoal_bencode::Limits::default()).unwrap();
    let info_raw = tv
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap()
        .raw()
        .unwrap()
        .to_vec();
    let ih: [u8; 20] = Sha1::digest(&info_raw).into();
    assert_ne!(ih, v1, "a v1-only info dict differs from the hybrid one");
    let port = free_port();
    let aria = Seeder(
        Command::new("aria2c")
            .args([
                "--no-conf",
                "--seed-time=1",
                "--enable-dht=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--interface=127.0.0.1",
                "--disable-ipv6=true",
                "--check-integrity=true",
                "--summary-interval=0",
                "--console-log-level=warn",
            ])
            .arg(format!("--listen-port={port}"))
            .arg(format!("--dir={}", dir.path().display()))
            .arg(dir.path().join("v1.torrent"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let data = run(port, ih, MetadataSource::Known(info_raw.clone()), true);
    assert_eq!(data, expected_data());
    drop(aria);

    // Transmission seeding the same v1 torrent
    if Command::new("transmission-cli")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping transmission: transmission-cli not available");
        return;
    }
    let cfg = dir.path().join("transmission");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("settings.json"),
        r#"{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
            "utp-enabled": false, "port-forwarding-enabled": false,
            "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
            "rpc-enabled": false}"#,
    )
    .unwrap();
    let port = free_port();
    let tr = Seeder(
        Command::new("transmission-cli")
            .arg("-g")
            .arg(&cfg)
            .arg("-w")
            .arg(dir.path())
            .arg("-p")
            .arg(port.to_string())
            .arg(dir.path().join("v1.torrent"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let data = run(port, ih, MetadataSource::Known(info_raw), true);
    assert_eq!(data, expected_data());
    drop(tr);
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Where the info dictionary comes from.
enum MetadataSource {
    /// Fetched over `ut_metadata`, checked against this hash.
    Fetch(MetadataHash),
    /// Already known (from the .torrent file).
    Known(Vec<u8>),
}

/// Download bookkeeping of the test driver.
#[derive(Default)]
struct Download {
    info: Option<Info>,
    pieces: Vec<Vec<u8>>,
    received: Vec<usize>,
    pending: Vec<BlockRequest>,
    verified: usize,
}

impl Download {
    fn start(&mut self, raw: &[u8], conn: &mut PeerConnection, now: Instant) {
        let i = parse_info(raw);
        let n = i.hashes.len() as u32;
        self.pieces = (0..n)
            .map(|p| {
                let start = u64::from(p) * i.piece_len;
                vec![0u8; (i.length - start).min(i.piece_len) as usize]
            })
            .collect();
        self.received = vec![0; self.pieces.len()];
        for (p, data) in self.pieces.iter().enumerate() {
            let mut off = 0u32;
            while (off as usize) < data.len() {
                let len = (data.len() as u32 - off).min(BLOCK_SIZE);
                self.pending.push(BlockRequest {
                    piece: shoal_wire::PieceIndex(p as u32),
                    offset: off,
                    length: len,
                });
                off += len;
            }
        }
        self.info = Some(i);
        conn.set_num_pieces(n).unwrap();
        conn.set_interested(now, true).unwrap();
    }

    fn done(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| self.verified == i.hashes.len())
    }

    fn on_block(&mut self, piece: u32, offset: u32, data: &[u8]) {
        let p = &mut self.pieces[piece as usize];
        p[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        self.received[piece as usize] += data.len();
        if self.received[piece as usize] == p.len() {
            let i = self.info.as_ref().unwrap();
            assert_eq!(
                Sha1::digest(&p[..]).as_slice(),
                &i.hashes[piece as usize],
                "piece {piece} hash"
            );
            self.verified += 1;
        }
    }
}

fn connect_with_retry(port: u16, deadline: Instant) -> TcpStream {
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect to {port}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("connect to {port}: {e}"),
        }
    }
}

/// Connects to a seeder on `port`, gets the info dictionary, and (when
/// `download`) fetches and verifies every piece. Returns the file's bytes.
fn run(port: u16, info_hash: [u8; 20], source: MetadataSource, download: bool) -> Vec<u8> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut sock = connect_with_retry(port, start + Duration::from_secs(20));
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut conn = PeerConnection::outgoing(
        ConnectionConfig::default(),
        shoal_wire::InfoHash(info_hash),
        shoal_wire::PeerId(*b"-SH0001-interoptest1"),
        None,
        start,
    );
    let mut assembler: Option<MetadataAssembler> = None;
    let mut dl = Download::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got_info = false;

    while !(dl.done() || (got_info && !download)) {
        assert!(Instant::now() < deadline, "interop test timed out");
        while let Some(chunk) = conn.poll_transmit() {
            sock.write_all(&chunk).unwrap();
        }
        match sock.read(&mut buf) {
            Ok(0) => panic!("the seeder closed the connection"),
            Ok(n) => conn.handle_bytes(Instant::now(), &buf[..n]).unwrap(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
        let now = Instant::now();
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now).unwrap();
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::HandshakeComplete { .. } => {
                    if let MetadataSource::Known(raw) = &source {
                        got_info = true;
                        if download {
                            dl.start(raw, &mut conn, now);
                        }
                    }
                }
                Event::ExtensionHandshake(h) => {
                    let MetadataSource::Fetch(hash) = source else {
                        continue;
                    };
                    let size = h.metadata_size.expect("seeder sends metadata_size");
                    let mut a = MetadataAssembler::new(hash, size, 16 << 20).unwrap();
                    assert_eq!(metadata_piece_count(size), a.piece_count());
                    while let Some(p) = a.next_request(now) {
                        conn.send_metadata(now, &MetadataMessage::Request { piece: p })
                            .unwrap();
                    }
                    assembler = Some(a);
                }
                Event::Metadata(MetadataMessage::Data { piece, data, .. }) => {
                    let a = assembler.as_mut().expect("metadata after handshake");
                    if let MetadataProgress::Complete(raw) = a.on_data(piece, data).unwrap() {
                        got_info = true;
                        if download {
                            dl.start(&raw, &mut conn, now);
                        }
                    }
                }
                Event::Metadata(MetadataMessage::Reject { piece }) => {
                    panic!("seeder rejected metadata piece {piece}")
                }
                Event::Block {
                    piece,
                    offset,
                    data,
                } => dl.on_block(piece.0, offset, &data),
                Event::RequestFailed { request, reason } => {
                    eprintln!("request {request:?} failed: {reason:?}; retrying");
                    dl.pending.push(request);
                }
                _ => {}
            }
        }
        // fill the pipeline
        while conn.request_slots() > 0 && !conn.peer_choking() {
            let Some(r) = dl.pending.pop() else { break };
            conn.send_request(Instant::now(), r).unwrap();
        }
    }
    if download {
        assert!(conn.stats().payload_downloaded >= 300_000);
    }
    dl.pieces.concat()
}

/// The other direction: libtorrent downloads from shoal's `PeerConnection`
/// (incoming connection, two-step handshake, bitfield or have-all, extension
/// handshake, unchoke on interest, serving requests with `send_piece`).
#[test]
fn serve_to_libtorrent_leecher() {
    if !have_libtorrent() {
        eprintln!("skipping: python3-libtorrent not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let save_dir = dir.path().join("save");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::create_dir_all(&save_dir).unwrap();
    let content = bytes::Bytes::from(expected_data());
    std::fs::write(data_dir.join("data.bin"), &content).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/libtorrent_leech.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(&data_dir)
        .arg(&save_dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut leecher = Seeder(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let torrent = std::fs::read(data_dir.join("v1.torrent")).unwrap();
    let tv = shoal_bencode::decode(&torrent, &shoal_bencode::Limits::default()).unwrap();
    let info_raw = tv
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap()
        .raw()
        .unwrap();
    let info_hash: [u8; 20] = Sha1::digest(info_raw).into();
    let info = parse_info(info_raw);
    let n = info.hashes.len() as u32;

    let start = Instant::now();
    let deadline = start + Duration::from_secs(40);
    // libtorrent tries an encrypted (BEP 8 / MSE) handshake first by default;
    // shoal refuses it, and libtorrent retries in plain text.
    let mut refused = 0;
    let (mut sock, p) = loop {
        let mut sock = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "libtorrent never connected");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => panic!("accept: {e}"),
        };
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // step one: the 48-byte prefix picks the torrent
        let mut prefix = [0u8; 48];
        if sock.read_exact(&mut prefix).is_err() {
            continue;
        }
        match shoal_wire::HandshakePrefix::parse(&prefix) {
            Ok(Some(p)) => break (sock, p),
            Ok(None) => unreachable!("48 bytes are a whole prefix"),
            Err(_) => refused += 1,
        }
    };
    eprintln!("refused {refused} non-BitTorrent handshakes before the plain one");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(p.info_hash.0, info_hash);
    assert!(p.reserved.fast() && p.reserved.extension_protocol());
    let mut conn = PeerConnection::incoming(
        ConnectionConfig::default(),
        p,
        shoal_wire::PeerId(*b"-SH0001-interopseed1"),
        Some(shoal_wire::Bitfield::full(n)),
        Instant::now(),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let status = loop {
        assert!(Instant::now() < deadline, "libtorrent did not finish");
        if let Some(st) = leecher.0.try_wait().unwrap() {
            break st;
        }
        while let Some(chunk) = conn.poll_transmit() {
            if sock.write_all(&chunk).is_err() {
                break;
            }
        }
        match sock.read(&mut buf) {
            Ok(0) => {
                // libtorrent closes connections to seeds once it is a seed
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Ok(k) => conn.handle_bytes(Instant::now(), &buf[..k]).unwrap(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => panic!("read: {e}"),
        }
        let now = Instant::now();
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now).unwrap();
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Interested => conn.unchoke(now).unwrap(),
                Event::Request(r) => {
                    let at = u64::from(r.piece.0) * info.piece_len + u64::from(r.offset);
                    let end = at + u64::from(r.length);
                    assert!(end <= info.length, "request past the end: {r:?}");
                    let block = content.slice(at as usize..end as usize);
                    conn.send_piece(now, r.piece.0, r.offset, block).unwrap();
                }
                _ => {}
            }
        }
    };
    assert!(status.success(), "libtorrent leecher exited with {status}");
    assert!(conn.stats().payload_uploaded >= content.len() as u64);
    assert_eq!(
        std::fs::read(save_dir.join("data.bin")).unwrap(),
        &content[..]
    );
}
