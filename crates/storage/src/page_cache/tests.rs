//! Page-cache probes against a real file.

use super::*;

#[test]
fn mincore_tells_cached_pages_as_cachestat_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![3u8; 1 << 20]).unwrap();
    let f = File::open(&path).unwrap();
    let Some(_) = mincore_pages(&f, 0, 1) else {
        eprintln!("skipped: mincore is not available here");
        return;
    };
    // Just written: cached, in a small range and over all 256 pages.
    assert_eq!(mincore_pages(&f, 4095, 2), Some((2, 2)));
    assert_eq!(mincore_pages(&f, 0, 1 << 20), Some((256, 256)));
    assert!(fully_cached(&f, 0, 1 << 20));
    // Past the end of the file: not cached (and no SIGBUS: never touched).
    assert_eq!(mincore_pages(&f, (1 << 20) - 10, 8192), Some((1, 3)));
    f.sync_all().unwrap();
    // SAFETY: the descriptor is open; fadvise has no memory arguments.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0);
    assert_eq!(mincore_pages(&f, 0, 1 << 20), Some((0, 256)));
    assert!(!fully_cached(&f, 0, 1 << 20));
    if let Some(c) = cachestat(&f, 0, 1 << 20) {
        assert!(!c, "cachestat agrees");
    }
}
