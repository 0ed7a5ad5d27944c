//! The command queue of one torrent task: a bounded multi-producer,
//! single-consumer channel with the subset of `tokio::sync::mpsc`'s API the
//! engine uses, and parking: a receiver with nothing to do can hand its
//! owner to the queue ([`CmdReceiver::park`]), to be woken by the next
//! command or by the last sender's drop. A dormant torrent parks its task
//! this way: it then has no future, no tokio task and no waker registered,
//! only its state, which a daemon holds for thousands of torrents.
//!
//! Why not `tokio::sync::mpsc`: it allocates its first block of 32 slots
//! when the channel is made, about 2 KiB per torrent, and a daemon holds
//! thousands of mostly idle torrents. `flume`'s queue starts empty and
//! grows only while commands wait, so an idle torrent's queue costs a
//! couple of hundred bytes.
//!
//! Invariants: `Park::senders` counts the live [`CmdSender`]s; a parked
//! owner is stored only while no command waits and a sender lives, and is
//! woken (taken out and called, outside the lock) by the first send after
//! it was stored or by the drop of the last sender.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What wakes a parked owner.
type Waker = Box<dyn FnOnce() + Send>;

/// The parking slot shared by the ends of one queue.
struct Park {
    slot: Mutex<Option<Waker>>,
    senders: AtomicUsize,
}

impl Park {
    fn lock(&self) -> MutexGuard<'_, Option<Waker>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the parked owner, if one is parked.
    fn wake(&self) {
        let w = self.lock().take();
        if let Some(w) = w {
            w();
        }
    }
}

impl std::fmt::Debug for Park {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Park")
            .field("senders", &self.senders.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The sending side; cloneable.
#[derive(Debug)]
pub(crate) struct CmdSender<T> {
    tx: flume::Sender<T>,
    park: Arc<Park>,
}

impl<T> Clone for CmdSender<T> {
    fn clone(&self) -> Self {
        self.park.senders.fetch_add(1, Ordering::AcqRel);
        CmdSender {
            tx: self.tx.clone(),
            park: self.park.clone(),
        }
    }
}

impl<T> Drop for CmdSender<T> {
    fn drop(&mut self) {
        if self.park.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last one: a parked owner wakes to find the queue closed
            // (flume's sender is dropped right after this body; meanwhile
            // the owner's park is refused, as no sender is counted).
            self.park.wake();
        }
    }
}

/// A sender that does not keep the queue open.
#[derive(Debug)]
pub(crate) struct WeakCmdSender<T> {
    tx: flume::WeakSender<T>,
    park: Arc<Park>,
}

/// The receiving side (the torrent task).
#[derive(Debug)]
pub(crate) struct CmdReceiver<T> {
    rx: flume::Receiver<T>,
    park: Arc<Park>,
}

/// The command could not be queued: the task is gone, or (for `try_send`)
/// the queue is full. Carries the command back.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub T);

/// A queue of at most `cap` waiting commands.
pub(crate) fn channel<T>(cap: usize) -> (CmdSender<T>, CmdReceiver<T>) {
    let (tx, rx) = flume::bounded(cap);
    let park = Arc::new(Park {
        slot: Mutex::new(None),
        senders: AtomicUsize::new(1),
    });
    (
        CmdSender {
            tx,
            park: park.clone(),
        },
        CmdReceiver { rx, park },
    )
}

impl<T> CmdSender<T> {
    /// Queues `cmd`, waiting while the queue is full; fails once the task
    /// is gone. Wakes a parked owner.
    pub(crate) async fn send(&self, cmd: T) -> Result<(), SendError<T>> {
        self.tx.send_async(cmd).await.map_err(|e| SendError(e.0))?;
        self.park.wake();
        Ok(())
    }

    /// Queues `cmd` if there is room now. Wakes a parked owner.
    pub(crate) fn try_send(&self, cmd: T) -> Result<(), SendError<T>> {
        self.tx.try_send(cmd).map_err(|e| match e {
            flume::TrySendError::Full(c) | flume::TrySendError::Disconnected(c) => SendError(c),
        })?;
        self.park.wake();
        Ok(())
    }

    /// A sender that does not keep the task's queue open.
    pub(crate) fn downgrade(&self) -> WeakCmdSender<T> {
        WeakCmdSender {
            tx: self.tx.downgrade(),
            park: self.park.clone(),
        }
    }
}

impl<T> Clone for WeakCmdSender<T> {
    fn clone(&self) -> Self {
        WeakCmdSender {
            tx: self.tx.clone(),
            park: self.park.clone(),
        }
    }
}

impl<T> WeakCmdSender<T> {
    /// A sender again, while the receiver and another sender live.
    pub(crate) fn upgrade(&self) -> Option<CmdSender<T>> {
        let tx = self.tx.upgrade()?;
        self.park.senders.fetch_add(1, Ordering::AcqRel);
        Some(CmdSender {
            tx,
            park: self.park.clone(),
        })
    }
}

impl<T> CmdReceiver<T> {
    /// The next command; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        self.rx.recv_async().await.ok()
    }

    /// Whether no command waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// A parker for this queue, to hand over the receiver's own owner.
    pub(crate) fn parker(&self) -> Parker<T> {
        Parker {
            rx: self.rx.clone(),
            park: self.park.clone(),
        }
    }
}

/// Parks the owner of a [`CmdReceiver`] (see [`CmdReceiver::parker`]).
pub(crate) struct Parker<T> {
    rx: flume::Receiver<T>,
    park: Arc<Park>,
}

impl<T> Parker<T> {
    /// Stores `owner` with `wake`, to be called with it on the next send
    /// or the last sender's drop. Refused, giving `owner` back, while a
    /// command waits or when every sender is gone: its owner has to handle
    /// that first.
    pub(crate) fn park<P: Send + 'static>(
        &self,
        owner: P,
        wake: impl FnOnce(P) + Send + 'static,
    ) -> Result<(), P> {
        let mut slot = self.park.lock();
        // Checked under the slot's lock: a send that queued after this
        // check finds the owner stored when it locks to wake it.
        if !self.rx.is_empty() || self.park.senders.load(Ordering::Acquire) == 0 {
            return Err(owner);
        }
        *slot = Some(Box::new(move || wake(owner)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_queue_in_order_and_closes_with_the_last_sender() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.send(2).await.unwrap();
        assert_eq!(tx.try_send(3).unwrap_err().0, 3, "full");
        let weak = tx.downgrade();
        assert!(weak.upgrade().is_some());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        drop(tx);
        assert!(
            weak.upgrade().is_none(),
            "a weak sender does not keep it open"
        );
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn sending_to_a_gone_task_fails() {
        let (tx, rx) = channel::<u8>(4);
        drop(rx);
        assert!(tx.send(1).await.is_err());
        assert!(tx.try_send(2).is_err());
    }

    #[tokio::test]
    async fn a_parked_owner_wakes_on_the_next_command() {
        let (tx, rx) = channel::<u8>(4);
        let (woke_tx, woke_rx) = std::sync::mpsc::channel();
        let parker = rx.parker();
        parker
            .park(rx, move |rx| woke_tx.send(rx.rx.try_recv().ok()).unwrap())
            .map_err(|_| ())
            .unwrap();
        assert!(woke_rx.try_recv().is_err(), "asleep until a command");
        tx.try_send(7).unwrap();
        assert_eq!(woke_rx.try_recv().unwrap(), Some(7));
        // Woken once: the slot is empty again.
        tx.try_send(8).unwrap();
        assert!(woke_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn parking_is_refused_while_a_command_waits_or_no_sender_lives() {
        let (tx, rx) = channel::<u8>(4);
        tx.try_send(1).unwrap();
        let parker = rx.parker();
        let rx = parker.park(rx, |_| unreachable!()).unwrap_err();
        drop(tx);
        let mut rx = parker.park(rx, |_| unreachable!()).unwrap_err();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn the_last_senders_drop_wakes_a_parked_owner() {
        let (tx, rx) = channel::<u8>(4);
        let tx2 = tx.clone();
        let weak = tx.downgrade();
        let (woke_tx, woke_rx) = std::sync::mpsc::channel();
        rx.parker()
            .park(rx, move |rx| woke_tx.send(rx).unwrap())
            .map_err(|_| ())
            .unwrap();
        drop(tx);
        assert!(woke_rx.try_recv().is_err(), "another sender lives");
        let up = weak.upgrade().unwrap();
        drop(tx2);
        assert!(woke_rx.try_recv().is_err(), "the upgraded one lives");
        drop(up);
        let mut rx = woke_rx.try_recv().expect("woken by the last drop");
        assert_eq!(rx.recv().await, None);
    }
}
