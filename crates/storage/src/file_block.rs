//! Uploads without copies: a verified block whose bytes are in the page
//! cache, sent from its files to a socket with `sendfile(2)`.
//!
//! Serving a block the usual way copies it twice through user space: from
//! the page cache into a buffer (`pread`), then from the buffer into the
//! socket. `sendfile` hands the socket the page cache's pages instead. On a
//! loopback 1 GiB transfer the seeder's reads were about a tenth of both
//! processes' CPU time, which is why this path exists; no crate offers a
//! non-blocking `sendfile` over several files, hence this module.
//!
//! `sendfile` reads the file synchronously, so a block is only sent this way
//! when every page under it is cached and its files are open already: a
//! network thread then never waits for the disk or for `open`. Which pages
//! are cached comes from `cachestat(2)` (Linux 6.5 and later), else from
//! `mincore(2)` over a mapping of the range that is never touched. Anything
//! else (a block not cached, a file not wanted) is read through the disk
//! pool as before.
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use crate::store::Storage;
use crate::StorageError;

/// One contiguous part of a block.
#[derive(Debug, Clone)]
enum Part {
    /// `len` bytes of `file` from `offset`.
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
    /// `len` zero bytes (a BEP 47 pad file: never on disk).
    Zeros(u64),
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::File { len, .. } | Part::Zeros(len) => *len,
        }
    }
}

/// The bytes of one verified block as they lie in its files, ready to be
/// sent with [`FileBlock::send_to`].
///
/// Invariant: the parts are contiguous, in block order, and sum to
/// [`FileBlock::len`]. The file handles keep the files open while the block
/// waits to be sent, even if the storage's file cache closes them.
#[derive(Debug, Clone)]
pub struct FileBlock {
    parts: Vec<Part>,
    len: u64,
}

impl FileBlock {
    /// The block `[offset, offset + len)` of `piece` when every file under
    /// it is wanted and open and every page of it is in the page cache;
    /// `Ok(None)` otherwise (read it instead). Does not block: no file is
    /// opened and nothing is read. The caller checks that the piece is
    /// verified. Errors: the range is not inside the piece.
    pub fn resident(
        storage: &Storage,
        piece: u32,
        offset: u64,
        len: u64,
    ) -> Result<Option<FileBlock>, StorageError> {
        let mut parts = Vec::new();
        for s in storage.map().block_spans(piece, offset, len)? {
            if s.pad {
                parts.push(Part::Zeros(s.len));
                continue;
            }
            let Some((file, at)) = storage.open_source(&s) else {
                return Ok(None);
            };
            if !crate::page_cache::fully_cached(&file, at, s.len) {
                return Ok(None);
            }
            parts.push(Part::File {
                file,
                offset: at,
                len: s.len,
            });
        }
        Ok(Some(FileBlock { parts, len }))
    }

    /// Bytes in the block.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the block has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sends the block's bytes from `*sent` on to the non-blocking socket
    /// `sock`, advancing `*sent`, until all are sent (`Ok(())`) or the
    /// socket is full (an error of kind `WouldBlock`; call again once it is
    /// writable). A file that got shorter since the block was verified
    /// fails with `UnexpectedEof`: the peer cannot be sent what it asked
    /// for, so its connection must close. A peer that has gone fails with
    /// `BrokenPipe`; `sendfile` has no `MSG_NOSIGNAL`, so the process must
    /// ignore `SIGPIPE`, as Rust programs do unless they ask otherwise.
    pub fn send_to(&self, sock: BorrowedFd<'_>, sent: &mut u64) -> io::Result<()> {
        let mut start = 0u64;
        for part in &self.parts {
            let plen = part.len();
            while *sent < start + plen {
                let within = *sent - start;
                let n = match part {
                    Part::File { file, offset, .. } => {
                        send_file(sock, file, offset + within, plen - within)?
                    }
                    Part::Zeros(_) => send_zeros(sock, plen - within)?,
                };
                *sent += n;
            }
            start += plen;
        }
        Ok(())
    }
}

/// One `sendfile` call: `Ok(n)` bytes sent, `n > 0`.
fn send_file(sock: BorrowedFd<'_>, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    let mut off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset past off_t"))?;
    // At most 1 GiB per call, well inside what the kernel takes.
    let count = len.min(1 << 30) as usize;
    loop {
        // SAFETY: both descriptors are open for the call (borrowed, and the
        // file is held by `file`), and `off` is a valid off_t the kernel
        // updates.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
        if n > 0 {
            return Ok(n as u64);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than the verified block",
            ));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One `send` of at most 16 KiB of zeros: `Ok(n)` bytes sent, `n > 0`.
fn send_zeros(sock: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
    static ZEROS: [u8; 16 << 10] = [0; 16 << 10];
    let count = len.min(ZEROS.len() as u64) as usize;
    loop {
        // SAFETY: the descriptor is open (borrowed) and the buffer is a
        // static of at least `count` bytes.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                ZEROS.as_ptr().cast(),
                count,
                libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            return Ok(n as u64);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub use crate::page_cache::residency_known;

#[cfg(test)]
mod tests;
