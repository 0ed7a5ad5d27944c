//! The command queue of one torrent task: a bounded multi-producer,
//! single-consumer channel with the subset of `tokio::sync::mpsc`'s API the
//! engine uses.
//!
//! Why not `tokio::sync::mpsc`: it allocates its first block of 32 slots
//! when the channel is made, about 2 KiB per torrent, and a daemon holds
//! thousands of mostly idle torrents. `flume`'s queue starts empty and
//! grows only while commands wait, so an idle torrent's queue costs a
//! couple of hundred bytes.

/// The sending side; cloneable.
#[derive(Debug)]
pub(crate) struct CmdSender<T>(flume::Sender<T>);

impl<T> Clone for CmdSender<T> {
    fn clone(&self) -> Self {
        CmdSender(self.0.clone())
    }
}

/// A sender that does not keep the queue open.
#[derive(Debug)]
pub(crate) struct WeakCmdSender<T>(flume::WeakSender<T>);

/// The receiving side (the torrent task).
#[derive(Debug)]
pub(crate) struct CmdReceiver<T>(flume::Receiver<T>);

/// The command could not be queued: the task is gone, or (for `try_send`)
/// the queue is full. Carries the command back.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub T);

/// A queue of at most `cap` waiting commands.
pub(crate) fn channel<T>(cap: usize) -> (CmdSender<T>, CmdReceiver<T>) {
    let (tx, rx) = flume::bounded(cap);
    (CmdSender(tx), CmdReceiver(rx))
}

impl<T> CmdSender<T> {
    /// Queues `cmd`, waiting while the queue is full; fails once the task
    /// is gone.
    pub(crate) async fn send(&self, cmd: T) -> Result<(), SendError<T>> {
        self.0.send_async(cmd).await.map_err(|e| SendError(e.0))
    }

    /// Queues `cmd` if there is room now.
    pub(crate) fn try_send(&self, cmd: T) -> Result<(), SendError<T>> {
        self.0.try_send(cmd).map_err(|e| match e {
            flume::TrySendError::Full(c) | flume::TrySendError::Disconnected(c) => SendError(c),
        })
    }

    /// A sender that does not keep the task's queue open.
    pub(crate) fn downgrade(&self) -> WeakCmdSender<T> {
        WeakCmdSender(self.0.downgrade())
    }
}

impl<T> WeakCmdSender<T> {
    /// A sender again, while the receiver and another sender live.
    pub(crate) fn upgrade(&self) -> Option<CmdSender<T>> {
        self.0.upgrade().map(CmdSender)
    }
}

impl<T> CmdReceiver<T> {
    /// The next command; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        self.0.recv_async().await.ok()
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
}
