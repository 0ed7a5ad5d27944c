//! Read-only file mappings for `create`, safe against files that shrink.
//!
//! Hashing straight from a mapping of the page cache saves the copy a
//! `pread` makes (measured here: about 0.1-0.2 CPU seconds per GiB, a fifth
//! of the work besides SHA-1 itself). The catch of mappings is that touching
//! a page past the end of a file that was truncated meanwhile raises
//! `SIGBUS`, which would kill the process. So every mapping is registered in
//! a fixed table, and a `SIGBUS` handler (installed once, chaining to the
//! previous one) replaces a faulting page inside a registered mapping with a
//! page of zeros and marks the mapping: the hash goes on over zeros and the
//! caller sees [`Mapped::truncated`] and reports the file as changed.
//! Faults anywhere else go to the previous handler (Rust's stack-overflow
//! check, or the default action) as if this module did not exist.
//!
//! When the table is full or `mmap` fails, [`Mapped::new`] returns `None`
//! and the caller reads with `pread` instead.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Mappings that can be live at once (more files fall back to `pread`).
const SLOTS: usize = 64;

static LO: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static HI: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static HIT: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
/// Slot ownership (so two mappings never share a slot).
static TAKEN: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// The `SIGBUS` disposition before ours (`None` until installed; install failed: not set).
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Only async-signal-safe work here: atomics, mmap, sigaction.
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::SeqCst);
    for i in 0..SLOTS {
        let lo = LO[i].load(Ordering::SeqCst);
        let hi = HI[i].load(Ordering::SeqCst);
        if lo != 0 && page != 0 && lo <= addr && addr < hi {
            let at = addr & !(page - 1);
            // SAFETY: replaces one page inside a mapping this module owns
            // (registered until it is unmapped) with anonymous zeros.
            let p = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                HIT[i].store(true, Ordering::SeqCst);
                return;
            }
        }
    }
    // Not ours: put the previous disposition back and return; the access
    // faults again and gets it.
    // SAFETY: sigaction with a valid struct (or SIG_DFL) is async-signal-safe.
    unsafe {
        match PREVIOUS.get().copied().flatten() {
            Some(prev) => {
                libc::sigaction(libc::SIGBUS, &prev, std::ptr::null_mut());
            }
            None => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
        }
    }
}

/// Installs the handler once; false when that failed (then: no mappings).
fn install() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: sysconf and sigaction with valid arguments.
            unsafe {
                let page = libc::sysconf(libc::_SC_PAGESIZE);
                if page <= 0 {
                    return None;
                }
                PAGE.store(page as usize, Ordering::SeqCst);
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_sigbus as *const () as usize;
                new.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, &new, &mut old) != 0 {
                    return None;
                }
                Some(old)
            }
        })
        .is_some()
}

/// A whole file mapped read-only and registered with the `SIGBUS` handler.
pub(super) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    slot: usize,
}

// SAFETY: the mapping is read-only and owned; sharing its address between
// threads is as safe as sharing a `&[u8]`.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps the first `len` bytes of `file`; `None` when it cannot (empty,
    /// no free slot, `mmap` refused): read it with `pread` then.
    pub(super) fn new(file: &File, len: u64) -> Option<Mapped> {
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        if !install() {
            return None;
        }
        let slot = (0..SLOTS).find(|&i| {
            TAKEN[i]
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })?;
        // SAFETY: a fresh shared read-only mapping of an open descriptor.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            TAKEN[slot].store(false, Ordering::SeqCst);
            return None;
        }
        // SAFETY: advice on the mapping just made.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        HIT[slot].store(false, Ordering::SeqCst);
        HI[slot].store(ptr as usize + len, Ordering::SeqCst);
        LO[slot].store(ptr as usize, Ordering::SeqCst);
        Some(Mapped { ptr, len, slot })
    }

    /// The mapped bytes. Pages past the end of a file that shrank read as
    /// zeros (and set [`Mapped::truncated`]).
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` stays mapped (PROT_READ) until drop; a
        // truncated file's pages are replaced by zero pages, never unmapped.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Whether a page of the mapping was found beyond the file's end.
    pub(super) fn truncated(&self) -> bool {
        HIT[self.slot].load(Ordering::SeqCst)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        LO[self.slot].store(0, Ordering::SeqCst);
        HI[self.slot].store(0, Ordering::SeqCst);
        // SAFETY: unmapping exactly the mapping made in `new`; no borrow of
        // `bytes()` outlives `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
        HIT[self.slot].store(false, Ordering::SeqCst);
        TAKEN[self.slot].store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_shrinking_under_its_mapping_reads_zeros_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let len = 5 * 4096 + 100;
        std::fs::write(&p, vec![7u8; len]).unwrap();
        let f = File::open(&p).unwrap();
        let m = Mapped::new(&f, len as u64).expect("mapping");
        assert_eq!(m.bytes()[len - 1], 7);
        assert!(!m.truncated());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(4096)
            .unwrap();
        // Pages past the new end: zeros instead of SIGBUS.
        let tail: u64 = m.bytes()[3 * 4096..].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(tail, 0);
        assert!(m.truncated());
        assert_eq!(m.bytes()[10], 7);
        drop(m);
        // The slot is free and clean again.
        let m = Mapped::new(&f, 4096).unwrap();
        assert!(!m.truncated());
    }

    #[test]
    fn slots_run_out_then_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [1u8; 10]).unwrap();
        let f = File::open(&p).unwrap();
        let mut held = Vec::new();
        while let Some(m) = Mapped::new(&f, 10) {
            held.push(m);
            assert!(held.len() <= SLOTS);
        }
        assert!(!held.is_empty());
        held.pop();
        assert!(Mapped::new(&f, 10).is_some());
        assert!(Mapped::new(&f, 0).is_none());
    }
}
