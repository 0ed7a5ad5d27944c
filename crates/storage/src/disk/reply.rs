//! Where the disk actor sends a block's outcome: a oneshot per block, or a
//! slot in a batch whose outcomes are sent together.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{DiskError, WriteOutcome};

/// Where the outcome of one queued block goes: its own oneshot
/// ([`DiskHandle::queue_block`]) or its slot in a batch
/// ([`DiskHandle::queue_blocks`]), whose reply is sent when every block of
/// the batch has an outcome.
pub(super) enum Reply {
    One(oneshot::Sender<Result<WriteOutcome, DiskError>>),
    Batch(Arc<BatchReply>, usize),
}

/// Outcomes of a batch, sent together once all are known.
pub(super) struct BatchReply {
    pub(super) state: std::sync::Mutex<BatchState>,
}

pub(super) struct BatchState {
    pub(super) outcomes: Vec<Option<Result<WriteOutcome, DiskError>>>,
    pub(super) missing: usize,
    pub(super) tx: Option<oneshot::Sender<Vec<Result<WriteOutcome, DiskError>>>>,
}

impl Reply {
    /// Delivers `r`; the result says nothing (a gone receiver is fine).
    pub(super) fn send(self, r: Result<WriteOutcome, DiskError>) -> Result<(), ()> {
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

/// The outcomes of a batch handed over by [`DiskHandle::queue_blocks`].
#[derive(Debug)]
#[must_use = "the outcomes tell whether blocks completed pieces"]
pub struct PendingBatch(pub(super) oneshot::Receiver<Vec<Result<WriteOutcome, DiskError>>>);

impl PendingBatch {
    /// Waits until the actor has processed every block of the batch; one
    /// outcome per block, in batch order.
    pub async fn outcomes(self) -> Result<Vec<Result<WriteOutcome, DiskError>>, DiskError> {
        self.0.await.map_err(|_| DiskError::Closed)
    }
}
