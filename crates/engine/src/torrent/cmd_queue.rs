//! The command queue of one torrent task: a bounded multi-producer,
//! single-consumer channel with the subset of `tokio::sync::mpsc`'s API the
//! engine uses, and parking: a receiver with nothing to do can hand its
//! owner to the queue ([`Parker::park`]), to be woken by the next command
//! or by the last sender's drop. A dormant torrent parks its task this way:
//! it then has no future, no tokio task and no waker registered, only its
//! state, which a daemon holds for thousands of torrents.
//!
//! Why our own: a daemon holds thousands of mostly idle torrents, each with
//! one of these. `tokio::sync::mpsc` allocates a block of 32 slots when the
//! channel is made (about 2 KiB). `flume` starts empty, but with its
//! parking slot beside it a queue took four allocations (about 380 bytes
//! with the buffer it keeps after its first command). This one is one
//! allocation of about 130 bytes, and parking gives its buffer back.
//!
//! Invariants: `senders` counts the live [`CmdSender`]s; once it is 0 it
//! stays 0 (an upgrade only succeeds from a live count). A parked owner is
//! stored only while no command waits and a sender lives; the first send
//! after it was stored, or the drop of the last sender, takes it out and
//! calls it outside the lock. Wakers are always called outside the lock.
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// A parked owner: woken by being handed back, boxed as it was parked (the
/// box is the owner's own, so parking allocates nothing).
pub(crate) trait Wake: Send {
    /// Called once, on the next send or the last sender's drop.
    fn wake(self: Box<Self>);
}

/// What the ends of one queue share, behind its lock.
struct State<T> {
    queue: VecDeque<T>,
    /// The receiver waiting in [`CmdReceiver::recv`].
    receiver: Option<Waker>,
    /// Senders waiting for room: all are woken when a command is taken,
    /// and those that find none wait again. A cancelled send leaves its
    /// waker behind until then (a spurious wake-up, nothing more).
    blocked: Vec<Waker>,
    /// The parked owner.
    parked: Option<Box<dyn Wake>>,
    /// The receiver is gone: sends fail.
    closed: bool,
}

/// One queue.
struct Chan<T> {
    state: Mutex<State<T>>,
    cap: usize,
    senders: AtomicUsize,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `cmd` if there is room (giving it back otherwise), and wakes
    /// whoever waits for it.
    fn push(&self, cmd: T) -> Result<(), Refused<'_, T>> {
        let mut st = self.lock();
        if st.closed {
            return Err(Refused::Closed(cmd));
        }
        if st.queue.len() >= self.cap {
            return Err(Refused::Full(cmd, st));
        }
        st.queue.push_back(cmd);
        let (receiver, parked) = (st.receiver.take(), st.parked.take());
        drop(st);
        wake(receiver, parked);
        Ok(())
    }
}

/// Why [`Chan::push`] did not queue.
enum Refused<'a, T> {
    /// The receiver is gone.
    Closed(T),
    /// No room; the lock is still held, to register a waker.
    Full(T, MutexGuard<'a, State<T>>),
}

fn wake(receiver: Option<Waker>, parked: Option<Box<dyn Wake>>) {
    if let Some(w) = receiver {
        w.wake();
    }
    if let Some(p) = parked {
        p.wake();
    }
}

impl<T> std::fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmdQueue")
            .field("senders", &self.senders.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The sending side; cloneable.
#[derive(Debug)]
pub(crate) struct CmdSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Clone for CmdSender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::AcqRel);
        CmdSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for CmdSender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last one: the receiver finds the queue closed.
            let mut st = self.chan.lock();
            let (receiver, parked) = (st.receiver.take(), st.parked.take());
            drop(st);
            wake(receiver, parked);
        }
    }
}

/// A sender that does not keep the queue open.
#[derive(Debug)]
pub(crate) struct WeakCmdSender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side (the torrent task).
#[derive(Debug)]
pub(crate) struct CmdReceiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Drop for CmdReceiver<T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.closed = true;
        let queued = std::mem::take(&mut st.queue);
        let blocked = std::mem::take(&mut st.blocked);
        drop(st);
        // Outside the lock: dropping a command may run a sender's code
        // (a reply channel's receiver waking up).
        drop(queued);
        blocked.into_iter().for_each(Waker::wake);
    }
}

/// The command could not be queued: the task is gone, or (for `try_send`)
/// the queue is full. Carries the command back.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub T);

/// A queue of at most `cap` waiting commands (`cap` at least 1).
pub(crate) fn channel<T>(cap: usize) -> (CmdSender<T>, CmdReceiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            receiver: None,
            blocked: Vec::new(),
            parked: None,
            closed: false,
        }),
        cap: cap.max(1),
        senders: AtomicUsize::new(1),
    });
    (CmdSender { chan: chan.clone() }, CmdReceiver { chan })
}

impl<T> CmdSender<T> {
    /// Queues `cmd`, waiting while the queue is full; fails once the task
    /// is gone. Wakes a parked owner.
    pub(crate) async fn send(&self, cmd: T) -> Result<(), SendError<T>> {
        let mut cmd = Some(cmd);
        poll_fn(|cx| {
            let Some(c) = cmd.take() else {
                return Poll::Ready(Ok(()));
            };
            match self.chan.push(c) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(Refused::Closed(c)) => Poll::Ready(Err(SendError(c))),
                Err(Refused::Full(c, mut st)) => {
                    if !st.blocked.iter().any(|w| w.will_wake(cx.waker())) {
                        st.blocked.push(cx.waker().clone());
                    }
                    cmd = Some(c);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Queues `cmd` if there is room now. Wakes a parked owner.
    pub(crate) fn try_send(&self, cmd: T) -> Result<(), SendError<T>> {
        self.chan.push(cmd).map_err(|e| match e {
            Refused::Closed(c) | Refused::Full(c, _) => SendError(c),
        })
    }

    /// A sender that does not keep the task's queue open.
    pub(crate) fn downgrade(&self) -> WeakCmdSender<T> {
        WeakCmdSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for WeakCmdSender<T> {
    fn clone(&self) -> Self {
        WeakCmdSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> WeakCmdSender<T> {
    /// A sender again, while the receiver and another sender live.
    pub(crate) fn upgrade(&self) -> Option<CmdSender<T>> {
        let senders = &self.chan.senders;
        let mut n = senders.load(Ordering::Acquire);
        loop {
            if n == 0 || self.chan.lock().closed {
                return None;
            }
            match senders.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Some(CmdSender {
                        chan: self.chan.clone(),
                    })
                }
                Err(now) => n = now,
            }
        }
    }
}

impl<T> CmdReceiver<T> {
    /// The next command; `None` once every sender is gone and the queue is
    /// empty. Cancel-safe: nothing is taken unless it returns.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut st = self.chan.lock();
            if let Some(cmd) = st.queue.pop_front() {
                let blocked = std::mem::take(&mut st.blocked);
                drop(st);
                blocked.into_iter().for_each(Waker::wake);
                return Poll::Ready(Some(cmd));
            }
            if self.chan.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(None);
            }
            match &mut st.receiver {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Whether no command waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.chan.lock().queue.is_empty()
    }

    /// A parker for this queue, to hand over the receiver's own owner.
    pub(crate) fn parker(&self) -> Parker<T> {
        Parker {
            chan: self.chan.clone(),
        }
    }
}

/// Parks the owner of a [`CmdReceiver`] (see [`CmdReceiver::parker`]).
pub(crate) struct Parker<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Parker<T> {
    /// Stores `owner`, to be woken ([`Wake::wake`]) on the next send or
    /// the last sender's drop. Refused, giving `owner` back, while a
    /// command waits or when every sender is gone: its owner has to handle
    /// that first. A parked queue keeps no buffer.
    pub(crate) fn park<P: Wake + 'static>(&self, owner: Box<P>) -> Result<(), Box<P>> {
        let mut st = self.chan.lock();
        // Checked under the lock: a send after this check finds the owner
        // stored when it locks to queue; the last sender's drop, too.
        if !st.queue.is_empty() || self.chan.senders.load(Ordering::Acquire) == 0 {
            return Err(owner);
        }
        st.queue = VecDeque::new();
        st.blocked = Vec::new();
        st.receiver = None;
        st.parked = Some(owner);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test's parked owner: a receiver, and what waking does with it.
    struct Owner(CmdReceiver<u8>, Box<dyn FnOnce(CmdReceiver<u8>) + Send>);

    impl Wake for Owner {
        fn wake(self: Box<Self>) {
            (self.1)(self.0)
        }
    }

    fn owner(rx: CmdReceiver<u8>, f: impl FnOnce(CmdReceiver<u8>) + Send + 'static) -> Box<Owner> {
        Box::new(Owner(rx, Box::new(f)))
    }

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
            .park(owner(rx, move |rx| {
                let first = rx.chan.lock().queue.pop_front();
                woke_tx.send((first, rx)).unwrap()
            }))
            .map_err(|_| ())
            .unwrap();
        assert!(woke_rx.try_recv().is_err(), "asleep until a command");
        tx.try_send(7).unwrap();
        let (first, mut rx) = woke_rx.try_recv().unwrap();
        assert_eq!(first, Some(7));
        // Woken once: the slot is empty again.
        tx.try_send(8).unwrap();
        assert!(woke_rx.try_recv().is_err());
        assert_eq!(rx.recv().await, Some(8));
    }

    #[tokio::test]
    async fn parking_is_refused_while_a_command_waits_or_no_sender_lives() {
        let (tx, rx) = channel::<u8>(4);
        tx.try_send(1).unwrap();
        let parker = rx.parker();
        let rx = parker.park(owner(rx, |_| unreachable!())).unwrap_err().0;
        drop(tx);
        let mut rx = parker.park(owner(rx, |_| unreachable!())).unwrap_err().0;
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
            .park(owner(rx, move |rx| woke_tx.send(rx).unwrap()))
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

    #[tokio::test]
    async fn a_full_queue_makes_send_wait_until_a_command_is_taken() {
        let (tx, mut rx) = channel::<u8>(1);
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move { tx2.send(2).await.map_err(|e| e.0) });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
        // A cancelled send leaves nothing behind but a spurious wake-up.
        tx.try_send(3).unwrap();
        let cancelled =
            tokio::time::timeout(std::time::Duration::from_millis(10), tx.send(4)).await;
        assert!(cancelled.is_err());
        assert_eq!(rx.recv().await, Some(3));
        tx.try_send(5).unwrap();
        assert_eq!(rx.recv().await, Some(5));
    }

    #[tokio::test]
    async fn a_sender_blocked_on_a_full_queue_fails_when_the_receiver_goes() {
        let (tx, rx) = channel::<u8>(1);
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move { tx2.send(2).await.map_err(|e| e.0) });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(2));
    }

    #[test]
    fn queued_commands_are_dropped_with_the_receiver() {
        let (tx, rx) = channel::<Arc<()>>(4);
        let probe = Arc::new(());
        tx.try_send(probe.clone()).unwrap();
        assert_eq!(Arc::strong_count(&probe), 2);
        drop(rx);
        assert_eq!(Arc::strong_count(&probe), 1);
        assert!(tx.downgrade().upgrade().is_none(), "no receiver");
    }

    #[test]
    fn a_parked_queue_keeps_no_buffer() {
        let (tx, mut rx) = channel::<u8>(8);
        for i in 0..8 {
            tx.try_send(i).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for i in 0..8 {
                assert_eq!(rx.recv().await, Some(i));
            }
        });
        assert!(rx.chan.lock().queue.capacity() >= 8);
        let chan = rx.chan.clone();
        rx.parker().park(owner(rx, drop)).map_err(|_| ()).unwrap();
        assert_eq!(chan.lock().queue.capacity(), 0);
        drop(tx);
        assert!(chan.lock().parked.is_none(), "woken by the last drop");
    }

    #[test]
    fn many_senders_on_many_threads_lose_nothing() {
        let (tx, mut rx) = channel::<u32>(4);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let got = rt.block_on(async move {
            for t in 0..4u32 {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..500 {
                        tx.send(t * 1000 + i).await.unwrap();
                    }
                });
            }
            drop(tx);
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        assert_eq!(got.len(), 2000);
        for t in 0..4u32 {
            let mine: Vec<u32> = got.iter().copied().filter(|v| v / 1000 == t).collect();
            assert_eq!(
                mine,
                (0..500).map(|i| t * 1000 + i).collect::<Vec<_>>(),
                "in order per sender"
            );
        }
    }
}
