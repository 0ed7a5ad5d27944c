//! [`channel`]: a single-value broadcast like `tokio::sync::watch`, sized
//! for thousands of torrents. Every torrent publishes its status and its
//! metadata through two of these for its whole life; tokio's channel keeps
//! nine wait lists per value (about 330 bytes besides the value), this one
//! keeps one (about 40), which is 5 MiB less for a daemon with 10,000
//! torrents (bench/daemon.py).
//!
//! Invariants: the version only grows; its lowest bit says the sender is
//! gone, the rest counts the values sent. A receiver has seen a version
//! once [`WatchReceiver::changed`] returned for it or it borrowed with
//! [`WatchReceiver::borrow_and_update`]. Readers take a read lock, held
//! only while the caller holds the [`WatchRef`]; never hold one across an
//! await.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::Notify;

/// A read lock on the current value.
pub type WatchRef<'a, T> = RwLockReadGuard<'a, T>;

/// The sender is gone: no value will follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the torrent's task ended")]
pub struct WatchClosed;

/// The lowest bit of the version: the sender was dropped.
const CLOSED: u64 = 1;
/// What one send adds to the version.
const STEP: u64 = 2;

struct Shared<T> {
    value: RwLock<T>,
    version: AtomicU64,
    notify: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> WatchRef<'_, T> {
        self.value.read().unwrap_or_else(|e| e.into_inner())
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// The publishing side: one per value, held by the torrent's task.
pub struct WatchSender<T> {
    shared: Arc<Shared<T>>,
}

/// A subscriber: reads the value and waits for changes; cheap to clone.
pub struct WatchReceiver<T> {
    shared: Arc<Shared<T>>,
    /// The version seen last (without the closed bit).
    seen: u64,
}

/// A new channel holding `value`; the receiver has seen it.
pub fn channel<T>(value: T) -> (WatchSender<T>, WatchReceiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(value),
        version: AtomicU64::new(0),
        notify: Notify::new(),
    });
    (
        WatchSender {
            shared: shared.clone(),
        },
        WatchReceiver { shared, seen: 0 },
    )
}

impl<T> WatchSender<T> {
    /// The current value.
    pub fn borrow(&self) -> WatchRef<'_, T> {
        self.shared.read()
    }

    /// Changes the value in place and wakes every receiver.
    pub fn send_modify(&self, f: impl FnOnce(&mut T)) {
        self.send_if_modified(|v| {
            f(v);
            true
        });
    }

    /// Changes the value in place; wakes the receivers when `f` says it
    /// changed something. Returns what `f` said.
    pub fn send_if_modified(&self, f: impl FnOnce(&mut T) -> bool) -> bool {
        let changed = {
            let mut v = self.shared.value.write().unwrap_or_else(|e| e.into_inner());
            let changed = f(&mut v);
            if changed {
                // Under the write lock: a reader that sees the new version
                // then reads the new value.
                self.shared.version.fetch_add(STEP, Ordering::AcqRel);
            }
            changed
        };
        if changed {
            self.shared.notify.notify_waiters();
        }
        changed
    }
}

impl<T> Drop for WatchSender<T> {
    fn drop(&mut self) {
        self.shared.version.fetch_or(CLOSED, Ordering::AcqRel);
        self.shared.notify.notify_waiters();
    }
}

impl<T> Clone for WatchReceiver<T> {
    fn clone(&self) -> Self {
        WatchReceiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> WatchReceiver<T> {
    /// The current value (it does not count as seen).
    pub fn borrow(&self) -> WatchRef<'_, T> {
        self.shared.read()
    }

    /// The current value, marked as seen.
    pub fn borrow_and_update(&mut self) -> WatchRef<'_, T> {
        // The version before the value: a send in between is seen again
        // at the next `changed`, never lost.
        self.seen = self.shared.version() & !CLOSED;
        self.shared.read()
    }

    /// Waits for a value this receiver has not seen, and marks it seen.
    /// `Err` once the sender is gone and every value was seen.
    pub async fn changed(&mut self) -> Result<(), WatchClosed> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Registered before the version is read: a send after the read
            // wakes this wait.
            notified.as_mut().enable();
            let v = self.shared.version();
            if v & !CLOSED != self.seen {
                self.seen = v & !CLOSED;
                return Ok(());
            }
            if v & CLOSED != 0 {
                return Err(WatchClosed);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_receiver_wakes_on_a_change_and_sees_it_once() {
        let (tx, mut rx) = channel(1u32);
        let mut other = rx.clone();
        let waiter = tokio::spawn(async move {
            other.changed().await.unwrap();
            *other.borrow()
        });
        tokio::task::yield_now().await;
        tx.send_modify(|v| *v = 2);
        assert_eq!(waiter.await.unwrap(), 2);
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 2);
        // Seen: the next wait blocks until another change.
        let r = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
        assert!(r.is_err(), "no change, no wake");
    }

    #[tokio::test]
    async fn an_unmodified_send_wakes_nobody() {
        let (tx, mut rx) = channel(1u32);
        assert!(!tx.send_if_modified(|_| false));
        let r = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
        assert!(r.is_err());
        assert!(tx.send_if_modified(|v| {
            *v = 3;
            true
        }));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 3);
    }

    #[tokio::test]
    async fn the_senders_drop_ends_waits_after_the_last_value() {
        let (tx, mut rx) = channel(1u32);
        let mut late = rx.clone();
        tx.send_modify(|v| *v = 5);
        drop(tx);
        // The last value is still delivered, then the end.
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 5);
        assert_eq!(rx.changed().await, Err(WatchClosed));
        assert_eq!(late.changed().await, Ok(()));
        assert_eq!(late.changed().await, Err(WatchClosed));
    }

    #[tokio::test]
    async fn a_waiter_parked_before_the_drop_is_woken() {
        let (tx, mut rx) = channel(());
        let w = tokio::spawn(async move { rx.changed().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let r = tokio::time::timeout(Duration::from_secs(5), w).await;
        assert_eq!(r.unwrap().unwrap(), Err(WatchClosed));
    }

    #[test]
    fn a_value_borrowed_and_updated_is_seen() {
        let (tx, rx) = channel(0u8);
        tx.send_modify(|v| *v = 1);
        let mut s = rx.clone();
        assert_eq!(*s.borrow_and_update(), 1);
        let fut = s.changed();
        let r = futures_now(fut);
        assert!(r.is_none(), "nothing new after the borrow");
    }

    /// Polls a future once.
    fn futures_now<F: std::future::Future>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
