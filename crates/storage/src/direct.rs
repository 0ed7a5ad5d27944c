//! Page-cache bypass for downloaded data: aligned runs of verified blocks are
//! written with `O_DIRECT`.
//!
//! A downloaded byte is written once and rarely read back soon, so copying it
//! into the page cache costs CPU (the copy, page allocation, dirty accounting
//! and later writeback) for nothing. Direct writes skip all of that: the
//! block is copied once into an aligned buffer that stays hot in the cache,
//! and the device reads it from there. Only what `O_DIRECT` allows is written
//! this way: file offsets and lengths that are multiples of [`ALIGN`]. The
//! unaligned rest (a file's tail, files that start mid-page in a multi-file
//! torrent) and filesystems without `O_DIRECT` use ordinary buffered writes,
//! which the kernel keeps coherent with the direct ones. A device too slow
//! for unmerged writes (see `writer::SLOW_JOBS_TO_GIVE_UP`) goes back to the
//! page cache for good.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Alignment of memory, file offset and length for direct writes. 4096
/// covers devices with 512-byte and 4 KiB logical blocks.
pub(crate) const ALIGN: usize = 4096;

/// Bytes of one aligned buffer: at most one direct `pwrite`.
const CHUNK: usize = 1 << 20;

/// Opens `file` again, write-only with `O_DIRECT`, through `/proc/self/fd`
/// (the same inode, without resolving its path again).
pub(crate) fn reopen_direct(file: &File) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// A reusable buffer of [`CHUNK`] bytes starting at an [`ALIGN`] boundary.
pub(crate) struct AlignedBuf {
    mem: Vec<u8>,
    start: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf").finish_non_exhaustive()
    }
}

impl AlignedBuf {
    /// Allocates the buffer (never resized afterwards, so it stays aligned).
    pub(crate) fn new() -> Self {
        let mem = vec![0u8; CHUNK + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { mem, start }
    }

    fn chunk(&mut self) -> &mut [u8] {
        let start = self.start;
        self.mem.get_mut(start..start + CHUNK).unwrap_or_default()
    }
}

/// Copies the concatenation of a list of slices into buffers, in order.
pub(crate) struct Gather<'a> {
    parts: &'a [&'a [u8]],
    part: usize,
    in_part: usize,
}

impl<'a> Gather<'a> {
    /// Starts at the first byte of `parts`.
    pub(crate) fn new(parts: &'a [&'a [u8]]) -> Self {
        Self {
            parts,
            part: 0,
            in_part: 0,
        }
    }

    /// Fills `dst` with the next `dst.len()` bytes; returns how many there
    /// were (less than `dst.len()` only at the end of the parts).
    pub(crate) fn fill(&mut self, dst: &mut [u8]) -> usize {
        let mut filled = 0usize;
        while filled < dst.len() {
            let Some(src) = self.parts.get(self.part) else {
                break;
            };
            let take = (src.len() - self.in_part).min(dst.len() - filled);
            if let (Some(d), Some(s)) = (
                dst.get_mut(filled..filled + take),
                src.get(self.in_part..self.in_part + take),
            ) {
                d.copy_from_slice(s);
            }
            filled += take;
            self.in_part += take;
            if self.in_part == src.len() {
                self.part += 1;
                self.in_part = 0;
            }
        }
        filled
    }
}

impl AlignedBuf {
    /// Bytes one buffer holds (a multiple of [`ALIGN`]).
    pub(crate) const LEN: usize = CHUNK;

    /// The first `len` bytes (at most [`AlignedBuf::LEN`]).
    pub(crate) fn get(&self, len: usize) -> &[u8] {
        self.mem
            .get(self.start..self.start + len.min(CHUNK))
            .unwrap_or_default()
    }

    /// The whole aligned buffer, for filling.
    pub(crate) fn get_mut(&mut self) -> &mut [u8] {
        self.chunk()
    }
}

/// `pwrite`s `data` (aligned, a multiple of [`ALIGN`] long) at the aligned
/// `offset` through the `O_DIRECT` handle `file`, retrying on `EINTR`.
/// Returns the bytes written: all of them, or fewer after a short write that
/// broke the alignment (the caller writes the rest buffered).
pub(crate) fn pwrite_direct(file: &File, data: &[u8], mut offset: u64) -> io::Result<usize> {
    let mut written = 0usize;
    while written < data.len() {
        let slice = data.get(written..).unwrap_or_default();
        match file.write_at(slice, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(w) if !w.is_multiple_of(ALIGN) => return Ok(written + w),
            Ok(w) => {
                written += w;
                offset += w as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_and_direct_write_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("d"))
            .unwrap();
        let n = (AlignedBuf::LEN >> 14) as u32 + 16;
        let parts: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 16 << 10]).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut g = Gather::new(&refs);
        let mut buf = AlignedBuf::new();
        assert_eq!(buf.get(1).as_ptr() as usize % ALIGN, 0);
        assert_eq!(g.fill(buf.get_mut()), AlignedBuf::LEN);
        let Ok(d) = reopen_direct(&f) else {
            return; // the test filesystem has no O_DIRECT
        };
        assert_eq!(
            pwrite_direct(&d, buf.get(AlignedBuf::LEN), ALIGN as u64).unwrap(),
            AlignedBuf::LEN
        );
        let mut got = vec![0u8; AlignedBuf::LEN];
        f.read_exact_at(&mut got, ALIGN as u64).unwrap();
        assert!(got == parts[..AlignedBuf::LEN >> 14].concat());
        // The rest of the parts, then the end.
        let mut rest = vec![0u8; 5 << 16];
        // 16 parts of 16 KiB are left.
        assert_eq!(g.fill(&mut rest), 16 << 14);
    }
}
