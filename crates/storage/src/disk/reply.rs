//! Where a block's outcome goes: a oneshot per block, or a slot in a batch
//! whose outcomes are sent together. Shared by the disk actor
//! ([`super::WriteOutcome`]) and the disk pool ([`crate::BlockOutcome`]).

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{DiskError, WriteOutcome};

/// Where the outcome of one queued block goes: its own oneshot
/// ([`super::DiskHandle::queue_block`]) or its slot in a batch, whose reply
/// is sent when every block of the batch has an outcome. A dropped `Reply`
/// leaves its batch incomplete: the batch's receiver then sees the sender
/// dropped (reported as [`DiskError::Closed`]).
pub(crate) enum Reply<T = WriteOutcome> {
    One(oneshot::Sender<Result<T, DiskError>>),
    Batch(Arc<BatchReply<T>>, usize),
}

/// Outcomes of a batch, sent together once all are known.
pub(crate) struct BatchReply<T = WriteOutcome> {
    state: std::sync::Mutex<BatchState<T>>,
}

struct BatchState<T> {
    outcomes: Vec<Option<Result<T, DiskError>>>,
    missing: usize,
    tx: Option<oneshot::Sender<Vec<Result<T, DiskError>>>>,
}

/// The receiving end of a batch's outcomes.
pub(crate) type BatchRx<T> = oneshot::Receiver<Vec<Result<T, DiskError>>>;

impl<T> BatchReply<T> {
    /// A batch of `n` blocks; with `n == 0` the (empty) outcomes are sent
    /// at once.
    pub(crate) fn new(n: usize) -> (Arc<Self>, BatchRx<T>) {
        let (tx, rx) = oneshot::channel();
        let tx = if n == 0 {
            let _ = tx.send(Vec::new());
            None
        } else {
            Some(tx)
        };
        let batch = Arc::new(BatchReply {
            state: std::sync::Mutex::new(BatchState {
                outcomes: (0..n).map(|_| None).collect(),
                missing: n,
                tx,
            }),
        });
        (batch, rx)
    }
}

impl<T> Reply<T> {
    /// Delivers `r`; the result says nothing (a gone receiver is fine).
    pub(crate) fn send(self, r: Result<T, DiskError>) -> Result<(), ()> {
        match self {
            Reply::One(tx) => tx.send(r).map_err(|_| ()),
            Reply::Batch(b, i) => {
                let mut st = b.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(slot) = st.outcomes.get_mut(i) {
                    if slot.is_none() {
                        *slot = Some(r);
                        st.missing = st.missing.saturating_sub(1);
                    }
                }
                if st.missing == 0 {
                    if let Some(tx) = st.tx.take() {
                        let all = std::mem::take(&mut st.outcomes)
                            .into_iter()
                            .map(|o| o.unwrap_or(Err(DiskError::Closed)))
                            .collect();
                        return tx.send(all).map_err(|_| ());
                    }
                }
                Ok(())
            }
        }
    }
}

/// The outcomes of a batch handed over by [`super::DiskHandle::queue_blocks`].
#[derive(Debug)]
#[must_use = "the outcomes tell whether blocks completed pieces"]
pub struct PendingBatch(pub(super) BatchRx<WriteOutcome>);

impl PendingBatch {
    /// Waits until the actor has processed every block of the batch; one
    /// outcome per block, in batch order.
    pub async fn outcomes(self) -> Result<Vec<Result<WriteOutcome, DiskError>>, DiskError> {
        self.0.await.map_err(|_| DiskError::Closed)
    }
}
