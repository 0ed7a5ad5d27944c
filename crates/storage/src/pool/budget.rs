//! The pool's one memory budget: a semaphore of bytes shared by every
//! torrent, held by block data from the moment it is queued until it leaves
//! memory, and by upload read data until the caller drops it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::disk::DiskError;

/// A semaphore of `len` bytes with a high-water mark.
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    len: usize,
    peak: AtomicUsize,
}

impl Budget {
    /// A budget of `len` bytes (at least 4, at most the semaphore's limit).
    pub(crate) fn new(len: usize) -> Self {
        let len = len.clamp(4, Semaphore::MAX_PERMITS);
        Self {
            sem: Arc::new(Semaphore::new(len)),
            len,
            peak: AtomicUsize::new(0),
        }
    }

    /// The configured size.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The largest single request: a quarter of the budget (so that a few
    /// requests in flight never starve the others).
    pub(crate) fn max_request(&self) -> usize {
        self.len / 4
    }

    /// Bytes free now.
    pub(crate) fn available(&self) -> usize {
        self.sem.available_permits()
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.len.saturating_sub(self.available())
    }

    /// The most bytes ever held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Waits for `n` bytes (`0 < n <= max_request`, checked by callers).
    pub(crate) async fn acquire(&self, n: usize) -> Result<OwnedSemaphorePermit, DiskError> {
        let permits = u32::try_from(n.clamp(1, self.len)).map_err(|_| DiskError::Closed)?;
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| DiskError::Closed)?;
        self.peak.fetch_max(self.used(), Ordering::Relaxed);
        Ok(permit)
    }
}

/// Read data holding its share of the budget.
struct Budgeted {
    data: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// `data` as `Bytes` that release `permit` when the last clone is dropped.
pub(crate) fn budgeted(data: Bytes, permit: OwnedSemaphorePermit) -> Bytes {
    Bytes::from_owner(Budgeted {
        data,
        _permit: permit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_data_holds_its_budget_until_dropped() {
        let b = Budget::new(1000);
        assert_eq!(b.max_request(), 250);
        let p = b.acquire(200).await.unwrap();
        let data = budgeted(Bytes::from_static(&[7; 200]), p);
        let clone = data.slice(10..20);
        drop(data);
        assert_eq!((b.used(), b.peak()), (200, 200));
        drop(clone);
        assert_eq!(b.used(), 0);
        assert_eq!(b.peak(), 200);
    }
}
