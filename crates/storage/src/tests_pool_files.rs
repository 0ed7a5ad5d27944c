//! Tests of the disk pool's whole-torrent file operations: deleting and
//! moving a torrent's data, and a full disk reported through the sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::tests::torrent;
use crate::tests_pool::{blocks, events, open, put, rt, sink, verified};
use crate::*;

/// Every file under `dir` (relative paths, sorted).
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push(p.strip_prefix(base).unwrap().join(""));
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn paths(v: &[&str]) -> Vec<PathBuf> {
    let mut p: Vec<PathBuf> = v.iter().map(PathBuf::from).collect();
    p.sort();
    p
}

/// Downloads every piece of `data` through `disk` and waits for the
/// verdicts.
async fn download(
    disk: &TorrentDisk,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<DiskEvent>,
    data: &Bytes,
    pl: usize,
    pieces: std::ops::Range<u32>,
) {
    let n = pieces.len();
    for p in pieces {
        put(disk, blocks(data, pl, p, 1024)).await;
    }
    assert_eq!(verified(&events(rx, n).await).len(), n);
}

#[test]
fn delete_removes_only_the_torrents_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (la, da) = torrent(
        4096,
        &[
            ("a/x.bin", 5000, false),
            ("a/sub/y.bin", 3000, false),
            ("a/z.bin", 2000, false),
        ],
        1,
    );
    let (lb, db) = torrent(4096, &[("b.bin", 7000, false)], 2);
    std::fs::write(root.join("keep.txt"), b"not a torrent's").unwrap();
    let opts = |name: &str| StorageOptions {
        name: name.into(),
        ..StorageOptions::default()
    };
    let sa = Arc::new(Storage::open(la.clone(), root, opts("a")).unwrap());
    let sb = Arc::new(Storage::open(lb.clone(), root, opts("b")).unwrap());
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (ka, mut ra) = sink();
            let (kb, mut rb) = sink();
            let a = pool.add_torrent(sa.clone(), &[false; 3], ka).unwrap();
            let b = pool.add_torrent(sb.clone(), &[false; 2], kb).unwrap();
            let (da, db) = (Bytes::from(da.clone()), Bytes::from(db.clone()));
            // z.bin unwanted: its boundary bytes go to a's parts file.
            a.set_file_wanted(2, false).await.unwrap();
            download(&a, &mut ra, &da, 4096, 0..3).await;
            download(&b, &mut rb, &db, 4096, 0..2).await;
            a.save_resume(vec![true; 3]).await.unwrap();
            b.save_resume(vec![true; 2]).await.unwrap();
            assert!(sa.parts_path().exists() && sa.resume_path().exists());
            a.delete_files().await.unwrap();
            assert!(matches!(a.read(0, 0, 10).await, Err(DiskError::Closed)));
            assert_eq!(
                tree(root),
                paths(&[".shoal/", ".shoal/b.resume", "b.bin", "keep.txt"])
            );
            // The other torrent is untouched and still served.
            assert_eq!(b.read(1, 0, 100).await.unwrap(), db.slice(4096..4196));
            b.delete_files().await.unwrap();
            assert_eq!(tree(root), paths(&["keep.txt"]));
            assert!(root.exists());
        })
        .await
        .unwrap();
    });
}

#[test]
fn delete_refuses_files_behind_a_symlinked_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(outside.path().join("x"), b"precious").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("evil")).unwrap();
    let (layout, _) = torrent(64, &[("evil/x", 8, false)], 1);
    let s = open(&layout, &root);
    rt().block_on(async {
        let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
        let (k, _rx) = sink();
        let disk = pool.add_torrent(s, &[true], k).unwrap();
        let err = disk.delete_files().await.unwrap_err();
        assert!(
            matches!(err, DiskError::Storage(StorageError::PathEscape { .. })),
            "{err}"
        );
    });
    assert_eq!(
        std::fs::read(outside.path().join("x")).unwrap(),
        b"precious"
    );
}

/// A torrent with nested files, its data, and the files' relative paths.
fn nested() -> (StorageLayout, Vec<u8>) {
    torrent(
        4096,
        &[
            ("t/a.bin", 5000, false),
            ("t/d/e/b.bin", 7000, false),
            ("t/empty", 0, false),
            ("t/z.bin", 4000, false),
        ],
        4,
    )
}

#[test]
fn move_keeps_every_byte_and_leaves_the_old_root_clean() {
    let base = tempfile::tempdir().unwrap();
    // Across filesystems too when /dev/shm (tmpfs) is there.
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let r0 = base.path().join("r0");
    let r1 = base.path().join("r1");
    let r2 = base.path().join("r2");
    std::fs::create_dir(&r0).unwrap();
    std::fs::write(r0.join("other.txt"), b"someone else's").unwrap();
    let (layout, data) = nested();
    let s = open(&layout, &r0);
    let n = s.map().piece_count();
    let pl = 4096;
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (k, mut rx) = sink();
            let disk = pool
                .add_torrent(s.clone(), &vec![false; n as usize], k)
                .unwrap();
            let data = Bytes::from(data.clone());
            download(&disk, &mut rx, &data, pl, 0..n - 1).await;
            disk.save_resume(vec![true; n as usize]).await.unwrap();
            // Half of the last piece waits in memory across the moves.
            let mut last = blocks(&data, pl, n - 1, 1024);
            let tail = last.split_off(2);
            put(&disk, tail).await;
            let files = paths(&[
                ".shoal/",
                ".shoal/torrent.resume",
                "t/",
                "t/a.bin",
                "t/d/",
                "t/d/e/",
                "t/d/e/b.bin",
                "t/empty",
                "t/z.bin",
            ]);
            // Same filesystem: renames.
            disk.move_to(&r1).await.unwrap();
            assert_eq!(tree(&r0), paths(&["other.txt"]));
            assert_eq!(tree(&r1), files);
            assert_eq!(disk.storage().root(), r1);
            // Forced copy (the cross-filesystem path).
            disk.move_with(r2.clone(), true).await.unwrap();
            assert!(tree(&r1).is_empty());
            assert_eq!(tree(&r2), files);
            if let Some(shm) = &shm {
                let r3 = shm.path().join("r3");
                disk.move_to(&r3).await.unwrap();
                assert!(tree(&r2).is_empty());
                assert_eq!(tree(&r3), files);
            }
            // The held-back half of the last piece completes it there.
            assert_eq!(
                put(&disk, last).await.last(),
                Some(&BlockOutcome::Completed)
            );
            assert_eq!(verified(&events(&mut rx, 1).await), [n - 1]);
            for p in 0..n {
                assert!(disk.hash_piece(p).await.unwrap(), "piece {p}");
                let plen = disk.storage().map().piece_len(p).unwrap() as usize;
                let got = disk.read(p, 0, plen).await.unwrap();
                assert_eq!(got, data.slice(p as usize * pl..p as usize * pl + plen));
            }
            let root = disk.storage().root().to_path_buf();
            disk.close().await.unwrap();
            let s2 = Storage::open(layout.clone(), &root, StorageOptions::default()).unwrap();
            let r = s2.resume_or_check(&|_| {}).unwrap();
            assert!(r.verified.iter().all(|&v| v));
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_failed_move_leaves_the_old_data_in_use() {
    let base = tempfile::tempdir().unwrap();
    let r0 = base.path().join("r0");
    let (layout, data) = nested();
    let s = open(&layout, &r0);
    let n = s.map().piece_count();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (k, mut rx) = sink();
            let disk = pool
                .add_torrent(s.clone(), &vec![false; n as usize], k)
                .unwrap();
            let data = Bytes::from(data.clone());
            download(&disk, &mut rx, &data, 4096, 0..n).await;
            let before = tree(&r0);
            // 1. An existing target: refused before anything moves.
            let r1 = base.path().join("r1");
            std::fs::create_dir_all(r1.join("t")).unwrap();
            std::fs::write(r1.join("t/z.bin"), b"mine").unwrap();
            let err = disk.move_to(&r1).await.unwrap_err();
            assert!(matches!(err, DiskError::TargetExists { .. }), "{err}");
            assert_eq!(std::fs::read(r1.join("t/z.bin")).unwrap(), b"mine");
            assert_eq!(tree(&r1), paths(&["t/", "t/z.bin"]));
            // 2. A failure after some files moved: they go back.
            let r2 = base.path().join("r2");
            std::fs::create_dir_all(r2.join("t")).unwrap();
            std::fs::write(r2.join("t/d"), b"a file where a directory goes").unwrap();
            for copy in [false, true] {
                let err = disk.move_with(r2.clone(), copy).await.unwrap_err();
                assert!(matches!(err, DiskError::Storage(_)), "{err}");
                assert_eq!(tree(&r2), paths(&["t/", "t/d"]), "copy {copy}");
                assert_eq!(tree(&r0), before);
            }
            // The old data is whole and still in use.
            assert_eq!(disk.storage().root(), r0);
            for p in 0..n {
                assert!(disk.hash_piece(p).await.unwrap());
            }
            assert_eq!(disk.read(0, 0, 100).await.unwrap(), data.slice(..100));
            disk.close().await.unwrap();
        })
        .await
        .unwrap();
    });
}

/// A small tmpfs mounted for the test (root only), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let target = CString::new(dir.as_os_str().as_bytes()).ok()?;
        let opts = CString::new(format!("size={size}")).ok()?;
        // SAFETY: valid NUL-terminated strings; mounts on a fresh temporary
        // directory only.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        (rc == 0).then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(t) = std::ffi::CString::new(self.0.as_os_str().as_bytes()) {
            // SAFETY: unmounts what `mount` mounted.
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

#[test]
fn a_full_disk_reaches_the_sink_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("small");
    std::fs::create_dir(&root).unwrap();
    let mounted = Tmpfs::mount(&root, "128k");
    if mounted.is_none() {
        eprintln!("a_full_disk_reaches_the_sink_with_its_kind: cannot mount a tmpfs (not root?), using /dev/full");
        std::os::unix::fs::symlink("/dev/full", root.join("big")).unwrap();
    }
    let (layout, data) = torrent(64 << 10, &[("big", 1 << 20, false)], 7);
    let s = open(&layout, &root);
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (k, mut rx) = sink();
            let disk = pool.add_torrent(s.clone(), &[false; 16], k).unwrap();
            let data = Bytes::from(data.clone());
            let mut full = None;
            for p in 0..16 {
                put(&disk, blocks(&data, 64 << 10, p, 16 << 10)).await;
                match events(&mut rx, 1).await.pop() {
                    Some(DiskEvent::PieceVerified(_)) => continue,
                    Some(DiskEvent::Error { piece, error }) => {
                        full = Some((piece, error));
                        break;
                    }
                    e => panic!("unexpected {e:?}"),
                }
            }
            let (piece, error) = full.expect("128 KiB cannot hold 1 MiB");
            assert!(piece.is_some());
            assert!(error.is_disk_full(), "{error}");
            assert!(error.should_pause() && !error.is_permission_denied());
            // The piece is open again: its blocks are taken.
            let p = piece.unwrap_or(0);
            let o = put(&disk, blocks(&data, 64 << 10, p, 16 << 10)[..1].to_vec()).await;
            assert_eq!(o, [BlockOutcome::Accepted]);
            disk.close().await.ok();
        })
        .await
        .unwrap();
    });
    drop(s);
    drop(mounted);
}
