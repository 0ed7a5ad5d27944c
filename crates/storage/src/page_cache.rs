//! Which pages of a file are in the page cache, without reading them:
//! `cachestat(2)` (Linux 6.5 and later) or `mincore(2)` over a mapping that
//! is never touched. Used to send only cached blocks with `sendfile`
//! ([`crate::FileBlock`]) and to choose how [`crate::verify`] reads.
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// `cachestat(2)`'s system call number: 451 on every Linux architecture
/// (it came after the tables were unified); the `libc` crate does not name
/// it for x86-64 glibc.
#[cfg(target_os = "linux")]
const SYS_CACHESTAT: libc::c_long = 451;

/// The kernel lacks `cachestat` (set on the first `ENOSYS`).
pub(crate) static NO_CACHESTAT: AtomicBool = AtomicBool::new(false);

/// Whether every page of `[offset, offset + len)` of `file` is in the page
/// cache. `false` when that cannot be known.
pub(crate) fn fully_cached(file: &File, offset: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    if !NO_CACHESTAT.load(Ordering::Relaxed) {
        if let Some(c) = cachestat(file, offset, len) {
            return c;
        }
    }
    mincore_pages(file, offset, len).is_some_and(|(cached, pages)| cached == pages)
}

/// Page residency from `mincore(2)`, for kernels without `cachestat` and
/// for [`crate::verify`]: `(cached pages, pages)` of the pages under
/// `[offset, offset + len)`. The range is mapped read-only and shared,
/// asked about, and unmapped without ever being read, so nothing is
/// faulted in and a file cut short cannot raise `SIGBUS`. Pages past the
/// end of the file count as not cached. `None` when the mapping or the
/// call fails.
pub(crate) fn mincore_pages(file: &File, offset: u64, len: u64) -> Option<(usize, usize)> {
    let page = page_size();
    let start = offset / page * page;
    let map_len = usize::try_from(offset.checked_add(len)? - start).ok()?;
    if map_len == 0 {
        return Some((0, 0));
    }
    let pages = map_len.div_ceil(page as usize);
    let at = libc::off_t::try_from(start).ok()?;
    // SAFETY: a new mapping at an address the kernel picks; it is only
    // passed to mincore and unmapped below, never dereferenced.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            at,
        )
    };
    if addr == libc::MAP_FAILED {
        return None;
    }
    let mut small = [0u8; 64];
    let mut large = Vec::new();
    let vec: &mut [u8] = if pages <= small.len() {
        &mut small[..pages]
    } else {
        large.resize(pages, 0);
        &mut large
    };
    // SAFETY: `addr` is the page-aligned start of a live mapping of
    // `map_len` bytes and `vec` has one byte per page of it.
    let r = unsafe { libc::mincore(addr, map_len, vec.as_mut_ptr()) };
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(addr, map_len) };
    (r == 0).then(|| (vec.iter().filter(|&&b| b & 1 != 0).count(), pages))
}

#[cfg(target_os = "linux")]
pub(crate) fn cachestat(file: &File, offset: u64, len: u64) -> Option<bool> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let page = page_size();
    let range = Range { off: offset, len };
    let mut st = Stat::default();
    // SAFETY: cachestat reads `range` and writes `st`, both valid for the
    // call and laid out as the kernel's `struct cachestat_range` and
    // `struct cachestat`; the descriptor is open (held by `file`).
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut st as *mut Stat,
            0u32,
        )
    };
    if r != 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            NO_CACHESTAT.store(true, Ordering::Relaxed);
        }
        return None;
    }
    let first = offset / page;
    let last = (offset + len - 1) / page;
    Some(st.nr_cache > last - first)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn cachestat(_file: &File, _offset: u64, _len: u64) -> Option<bool> {
    NO_CACHESTAT.store(true, Ordering::Relaxed);
    None
}

/// The page size (4 KiB when the system does not say).
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// Whether this system can tell which pages of `file` are cached
/// (`cachestat` or `mincore`), so its blocks may be sent with `sendfile`.
pub fn residency_known(file: &File) -> bool {
    cachestat(file, 0, 1).is_some() || mincore_pages(file, 0, 1).is_some()
}

#[cfg(test)]
mod tests;
