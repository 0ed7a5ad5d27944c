//! The I/O resources a [`crate::Storage`] reads and writes through: a
//! bounded cache of open files and the direct-I/O writer thread.
//!
//! A storage starts with a private backend (its own cache of
//! `max_open_files` handles and, on the first direct write, its own writer).
//! A [`crate::DiskPool`] attaches every torrent's storage to its one shared
//! backend, so a session has one global cap on open files, at most one
//! writer thread and one pool of aligned buffers, whatever the number of
//! torrents. Both are created lazily: an idle backend holds no handle, no
//! thread and no buffer.

use std::sync::{Mutex, MutexGuard};

use crate::files::FileCache;
use crate::writer::Writer;

/// A file cache and a (lazily started) direct writer.
pub(crate) struct Backend {
    pub(crate) files: FileCache,
    writer: Mutex<Option<Writer>>,
    /// Aligned buffers the writer may allocate.
    buffers: usize,
    /// Filling slots of the writer (one per pool worker).
    slots: usize,
}

impl Backend {
    /// A backend with at most `max_open` open files and, once started, a
    /// writer with `buffers` aligned buffers and `slots` filling slots.
    pub(crate) fn new(max_open: usize, buffers: usize, slots: usize) -> Self {
        Self {
            files: FileCache::new(max_open),
            writer: Mutex::new(None),
            buffers,
            slots,
        }
    }

    /// The writer, if started.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Option<Writer>> {
        // The writer's own state is behind its own lock; poisoning here
        // cannot leave it inconsistent.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer, started if needed; `None` inside when the thread cannot
    /// be started (the caller then writes through the page cache).
    pub(crate) fn writer_started(&self) -> MutexGuard<'_, Option<Writer>> {
        let mut guard = self.writer();
        if guard.is_none() {
            if let Ok(w) = Writer::spawn(self.buffers, self.slots) {
                *guard = Some(w);
            }
        }
        guard
    }

    /// Whether the writer thread runs.
    pub(crate) fn writer_running(&self) -> bool {
        self.writer().is_some()
    }

    /// Aligned buffers the writer has allocated.
    pub(crate) fn buffers_allocated(&self) -> usize {
        self.writer().as_ref().map_or(0, Writer::buffers_allocated)
    }

    /// Stops the writer (after its queued jobs) and closes every handle.
    pub(crate) fn shut(&self) {
        let w = self.writer().take();
        drop(w); // joins the thread outside the lock
    }
}
