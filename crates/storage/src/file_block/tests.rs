//! File blocks against a real filesystem and a socket pair.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::*;
use crate::tests::torrent;
use crate::{StorageLayout, StorageOptions};

/// 3 pieces of 32 KiB: piece 1 holds the end of `a.bin`, a pad file and
/// the start of `b.bin`.
fn layout() -> (StorageLayout, Vec<u8>) {
    torrent(
        32 << 10,
        &[
            ("a.bin", 40_000, false),
            (".pad/1000", 1000, true),
            ("b.bin", 57_304, false),
        ],
        11,
    )
}

fn written(root: &Path) -> (Storage, Vec<u8>) {
    let (l, data) = layout();
    let s = Storage::open(l, root, StorageOptions::default()).unwrap();
    let plen = s.map().layout().piece_length as usize;
    for (p, chunk) in data.chunks(plen).enumerate() {
        s.write(p as u32, 0, chunk).unwrap();
    }
    (s, data)
}

/// Sends `b` from `sent` through a socket with a small buffer (so it fills
/// up) while a thread reads the other end; returns what arrived.
fn send_through_socket(b: &FileBlock) -> std::io::Result<Vec<u8>> {
    let (tx, mut rx) = UnixStream::pair().unwrap();
    tx.set_nonblocking(true).unwrap();
    let want = b.len() as usize;
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; want];
        rx.read_exact(&mut got).map(|_| got)
    });
    let mut sent = 0u64;
    let r = loop {
        match b.send_to(tx.as_fd(), &mut sent) {
            Ok(()) => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(e) => break Err(e),
        }
    };
    drop(tx);
    r?;
    assert_eq!(sent, b.len());
    reader.join().unwrap()
}

#[test]
fn cached_blocks_go_out_whole_across_files_and_pads() {
    let dir = tempfile::tempdir().unwrap();
    let (s, data) = written(dir.path());
    let f = File::open(dir.path().join("a.bin")).unwrap();
    if !residency_known(&f) {
        eprintln!("skipped: which pages are cached is unknown here");
        assert!(FileBlock::resident(&s, 0, 0, 100).unwrap().is_none());
        return;
    }
    let plen = 32u64 << 10;
    // With cachestat where the kernel has it, then with mincore (as on
    // kernels before 6.5; other tests in this process then use it too,
    // which answers the same).
    for mincore in [false, true] {
        if mincore {
            crate::page_cache::NO_CACHESTAT.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        for p in 0..s.map().piece_count() {
            let len = s.map().piece_len(p).unwrap();
            // Whole pieces and an odd block inside each.
            for (off, n) in [(0, len), (5, len - 9)] {
                let b = FileBlock::resident(&s, p, off, n)
                    .unwrap()
                    .unwrap_or_else(|| panic!("piece {p} was just written: cached"));
                assert_eq!(b.len(), n);
                let start = (u64::from(p) * plen + off) as usize;
                let got = send_through_socket(&b).unwrap();
                assert!(got == data[start..start + n as usize], "piece {p} at {off}");
            }
        }
    }
    assert!(
        FileBlock::resident(&s, 0, plen - 10, 20).is_err(),
        "a block leaving its piece"
    );
}

#[test]
fn blocks_of_closed_or_uncached_files_are_not_resident() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = written(dir.path());
    let a = File::open(dir.path().join("a.bin")).unwrap();
    if !residency_known(&a) {
        eprintln!("skipped: which pages are cached is unknown here");
        return;
    }
    // Another storage over the same files has opened nothing yet.
    let (l, _) = layout();
    let fresh = Storage::open(l, dir.path(), StorageOptions::default()).unwrap();
    assert!(FileBlock::resident(&fresh, 0, 0, 100).unwrap().is_none());
    // Pages dropped from the page cache (clean ones go at once).
    a.sync_all().unwrap();
    // SAFETY: the descriptor is open; fadvise has no memory arguments.
    let r = unsafe { libc::posix_fadvise(a.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0);
    assert!(
        FileBlock::resident(&s, 0, 0, 4096).unwrap().is_none(),
        "a.bin's pages were dropped"
    );
    assert!(
        FileBlock::resident(&s, 2, 0, 4096).unwrap().is_some(),
        "b.bin's are still cached"
    );
}

#[test]
fn a_file_cut_short_after_the_check_fails_the_send() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = written(dir.path());
    let b_path = dir.path().join("b.bin");
    if !residency_known(&File::open(&b_path).unwrap()) {
        eprintln!("skipped: which pages are cached is unknown here");
        return;
    }
    let last = s.map().piece_count() - 1;
    let len = s.map().piece_len(last).unwrap();
    let b = FileBlock::resident(&s, last, 0, len).unwrap().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b_path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let e = send_through_socket(&b).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
}
