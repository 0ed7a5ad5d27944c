//! A dormant torrent: no transfer, no storage, no connection; commands
//! that need none are answered, the rest wake it (see the task's module
//! docs). When only a command can wake it, its task ends and leaves its
//! state to its command queue ([`park`]); the next command spawns it again.
use super::cmd::TorrentCmd;
use super::task::{Stop, TorrentTask};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How a dormant spell ends ([`TorrentTask::dormant`]).
pub(super) enum Dormancy {
    /// The transfer is needed again, by this command if one.
    Wake(Option<TorrentCmd>),
    /// Nothing to wait for but commands: the task parks.
    Park,
}

/// What ends one dormant wait ([`TorrentTask::dormant_wait`]).
enum DormantWake {
    /// A command (`None`: every sender is gone).
    Cmd(Option<TorrentCmd>),
    /// The idle seeding goal's time came.
    Goal,
}

impl TorrentTask {
    /// Dormant: no transfer state, no storage; commands that need neither
    /// are answered here. Returns when something needs the transfer again
    /// (with the command that does, if one does), when nothing is left to
    /// wait for but commands (the task then parks: [`park`]), or how the
    /// torrent ends. `resumed`: woken from its parking, dormant already.
    pub(super) async fn dormant(&mut self, resumed: bool) -> Result<Dormancy, Stop> {
        use super::cmd::Query;
        if !resumed {
            tracing::debug!("dormant");
            self.ctx.dormant.fetch_add(1, Ordering::Relaxed);
            // No transfer, no bytes to charge: made again on waking.
            self.rates = None;
        }
        let r = loop {
            // The idle seeding goal may stop it meanwhile.
            let goal = self.idle_goal(self.last().state);
            if goal.is_none() && self.cmds.is_empty() {
                // Only a command can wake it (a tracker's answer is one):
                // the task can end and leave its state to the queue.
                break Ok(Dormancy::Park);
            }
            match self.dormant_wait(goal).await {
                DormantWake::Cmd(cmd) => match cmd {
                    None => {
                        break Err(Stop {
                            delete_data: false,
                            reply: None,
                        })
                    }
                    Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                        break Err(Stop {
                            delete_data,
                            reply: Some(reply),
                        })
                    }
                    Some(TorrentCmd::Query(
                        q @ (Query::Peers(_) | Query::Pieces(_) | Query::Trackers(_)),
                    )) => self.answer_idle(q),
                    Some(
                        c @ (TorrentCmd::SetLabels(_)
                        | TorrentCmd::SetQueuePosition(_)
                        | TorrentCmd::Queue(_)
                        | TorrentCmd::SettingsChanged
                        | TorrentCmd::SetLimits(_)
                        | TorrentCmd::SetGroup(..)
                        | TorrentCmd::CheckTurn(_)),
                    ) => {
                        Box::pin(self.idle_cmd(c)).await;
                        // New seeding goals may be reached already: the
                        // transfer stops it as it would have.
                        let s = self.last().clone();
                        if self.goal_reached(&s) {
                            break Ok(Dormancy::Wake(None));
                        }
                    }
                    Some(TorrentCmd::Announced(o)) => {
                        if self.note_idle_announce(*o) {
                            break Ok(Dormancy::Wake(None));
                        }
                    }
                    Some(other) => break Ok(Dormancy::Wake(Some(other))),
                },
                DormantWake::Goal => break Ok(Dormancy::Wake(None)),
            }
        };
        if !matches!(r, Ok(Dormancy::Park)) {
            self.ctx.dormant.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("awake");
        }
        r
    }

    /// The dormant wait: for a command (a tracker's answer is one) or the
    /// idle seeding goal. Kept apart from [`Self::dormant`], and the goal's
    /// timer boxed, because this future is what a dormant torrent holds for
    /// as long as it sleeps: most have no goal, and an inline timer is 112
    /// bytes.
    async fn dormant_wait(&mut self, goal: Option<Instant>) -> DormantWake {
        let mut timer = goal.map(|t| Box::pin(tokio::time::sleep_until(t.into())));
        tokio::select! {
            cmd = self.cmds.recv() => DormantWake::Cmd(cmd),
            () = async {
                match &mut timer {
                    Some(t) => t.await,
                    None => std::future::pending().await,
                }
            } => DormantWake::Goal,
        }
    }
}

/// Parks a dormant torrent's task: its state goes to its command queue,
/// and the next command (or the last sender's drop) spawns the task again,
/// dormant still. The task's future, its tokio task and its waker are
/// gone meanwhile: about 600 bytes per dormant torrent (bench/daemon.py).
/// Refused, giving the task back, while a command waits.
pub(super) fn park(mut task: Box<TorrentTask>) -> Result<(), Box<TorrentTask>> {
    // Its rates are zero and its last event said so: the first status
    // after it wakes is sent as the first of a run.
    task.shown = None;
    task.parked_dormant = true;
    task.cmds.parker().park(task)
}

impl super::cmd_queue::Wake for TorrentTask {
    /// Spawns the parked task's life again: dormant if it parked dormant,
    /// else (restored, waiting for its check) from the start.
    fn wake(self: Box<Self>) {
        let rt = self.ctx.rt.clone();
        let asleep = self.parked_dormant;
        let life: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(self.run(asleep));
        rt.spawn(life);
    }
}
