//! uTP interop with libtorrent 2.0 (Debian `python3-libtorrent`, run with
//! `/usr/bin/python3`), TCP off on its side: our [`UtpStream`] connects to
//! libtorrent's uTP listener and downloads a torrent over a BitTorrent
//! connection (`shoal-wire`'s `PeerConnection`); then libtorrent connects to
//! our [`UtpSocket`] listener and we download again. Every piece is checked
//! against its SHA-1, and libtorrent reports the peer as a uTP one.
//!
//! Skipped (with a note) without libtorrent. Bounded in time; the Python
//! process is killed when the test ends.
use sha1::{Digest, Sha1};
use shoal_utp::{UtpSocket, UtpSocketConfig, UtpStream};
use shoal_wire::{BlockRequest, ConnectionConfig, Event, PeerConnection, BLOCK_SIZE};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Python {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<std::process::ChildStdout>,
}

impl Drop for Python {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Python {
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l
    }

    fn send(&mut self, cmd: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{cmd}").unwrap();
        s.flush().unwrap();
    }

    /// libtorrent's peers as "ip:port utp=N client" lines.
    fn peers(&mut self) -> Vec<String> {
        self.send("peers");
        assert_eq!(self.line().trim(), "peers");
        let mut v = Vec::new();
        loop {
            let l = self.line();
            if l.trim() == "end" || l.is_empty() {
                return v;
            }
            v.push(l.trim().to_string());
        }
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

struct Torrent {
    info_hash: shoal_wire::InfoHash,
    port: u16,
    piece_len: u32,
    length: u64,
    hashes: Vec<[u8; 20]>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn start(dir: &std::path::Path, size: usize) -> (Python, Torrent) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lt_utp.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(dir)
        .arg(size.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut py = Python {
        stdin: child.stdin.take(),
        out: BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    let line = py.line();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 5, "libtorrent said {line:?}");
    let t = Torrent {
        info_hash: shoal_wire::InfoHash(unhex(f[0]).try_into().unwrap()),
        port: f[1].parse().unwrap(),
        piece_len: f[2].parse().unwrap(),
        length: f[3].parse().unwrap(),
        hashes: unhex(f[4])
            .chunks(20)
            .map(|c| c.try_into().unwrap())
            .collect(),
    };
    (py, t)
}

/// Downloads and checks every piece of `t` from the peer on `stream`.
async fn download(mut stream: UtpStream, t: &Torrent, outgoing: bool) -> u64 {
    let start = Instant::now();
    let peer_id = shoal_wire::PeerId(*b"-SH0100-utpinterop01");
    let mut conn = if outgoing {
        PeerConnection::outgoing(
            ConnectionConfig::default(),
            t.info_hash,
            peer_id,
            None,
            start,
        )
    } else {
        let mut prefix = [0u8; 48];
        stream.read_exact(&mut prefix).await.unwrap();
        let p = shoal_wire::HandshakePrefix::parse(&prefix)
            .unwrap()
            .unwrap();
        assert_eq!(p.info_hash, t.info_hash);
        PeerConnection::incoming(ConnectionConfig::default(), p, peer_id, None, start)
    };
    let n = t.hashes.len();
    let mut pieces: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let s = i as u64 * t.piece_len as u64;
            vec![0u8; (t.length - s).min(t.piece_len as u64) as usize]
        })
        .collect();
    let mut got = vec![0usize; n];
    let mut pending: Vec<BlockRequest> = Vec::new();
    for (p, data) in pieces.iter().enumerate().rev() {
        let mut off = 0u32;
        while (off as usize) < data.len() {
            let len = (data.len() as u32 - off).min(BLOCK_SIZE);
            pending.push(BlockRequest {
                piece: shoal_wire::PieceIndex(p as u32),
                offset: off,
                length: len,
            });
            off += len;
        }
    }
    let mut verified = 0;
    let mut started = false;
    let mut buf = vec![0u8; 1 << 16];
    while verified < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "download timed out"
        );
        while let Some(chunk) = conn.poll_transmit() {
            stream.write_all(&chunk).await.unwrap();
        }
        let r = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await;
        let now = Instant::now();
        if let Ok(r) = r {
            let k = r.unwrap();
            assert!(k > 0, "libtorrent closed the connection");
            conn.handle_bytes(now, &buf[..k]).unwrap();
        }
        if conn.poll_timeout().is_some_and(|d| d <= now) {
            conn.handle_timeout(now).unwrap();
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::HandshakeComplete { .. } if !started => {
                    started = true;
                    conn.set_num_pieces(n as u32).unwrap();
                    conn.set_interested(now, true).unwrap();
                }
                Event::Block {
                    piece,
                    offset,
                    data,
                } => {
                    let p = &mut pieces[piece.as_usize()];
                    p[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
                    got[piece.as_usize()] += data.len();
                    if got[piece.as_usize()] == p.len() {
                        let h: [u8; 20] = Sha1::digest(&p[..]).into();
                        assert_eq!(h, t.hashes[piece.as_usize()], "piece {piece}");
                        verified += 1;
                    }
                }
                Event::RequestFailed { request, .. } => pending.push(request),
                _ => {}
            }
        }
        while started && conn.request_slots() > 0 && !conn.peer_choking() {
            let Some(r) = pending.pop() else { break };
            conn.send_request(Instant::now(), r).unwrap();
        }
    }
    conn.stats().payload_downloaded
}

#[tokio::test]
async fn bittorrent_over_utp_with_libtorrent_both_ways() {
    if !have_libtorrent() {
        eprintln!("skipping: python3-libtorrent not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 4 << 20;
    let (mut py, t) = start(dir.path(), size);
    let socket = UtpSocket::bind("127.0.0.1:0".parse().unwrap(), UtpSocketConfig::default())
        .await
        .unwrap();

    // We connect to libtorrent's uTP listener.
    let addr = format!("127.0.0.1:{}", t.port).parse().unwrap();
    let started = Instant::now();
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("libtorrent accepted our SYN");
    let stats_handle = stream.peer_addr();
    let got = download(stream, &t, true).await;
    assert!(got >= size as u64);
    println!("outgoing: {size} bytes in {:?}", started.elapsed());
    let peers = py.peers();
    assert!(
        peers.iter().any(|p| p.contains("utp=1")),
        "libtorrent saw {peers:?} (we were {stats_handle})"
    );

    // libtorrent connects to our listener, on a second socket: an endpoint
    // libtorrent has not seen (it waits `min_reconnect_time` before calling
    // back one it was just connected to).
    let listener = UtpSocket::bind("127.0.0.1:0".parse().unwrap(), UtpSocketConfig::default())
        .await
        .unwrap();
    py.send(&format!("connect {}", listener.local_addr().port()));
    let (stream, from) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("libtorrent never connected over uTP")
        .unwrap();
    assert_eq!(
        from.port(),
        t.port,
        "libtorrent's uTP comes from its listen port"
    );
    let started = Instant::now();
    let got = download(stream, &t, false).await;
    assert!(got >= size as u64);
    println!("incoming: {size} bytes in {:?}", started.elapsed());
}
