//! Exit statuses of the shim's children, without losing any.
//!
//! The shim is a subreaper: containerd-shim's SIGCHLD handler reaps every child (runc, container inits that
//! runc left to us, exec processes) with `waitpid(-1)` and publishes the status on its monitor. One
//! subscription, taken before the first child is spawned, feeds this hub. A process that exits before
//! anyone asks for it is kept as *unclaimed*, stamped with the time it was seen, so a caller that learns a pid
//! late (from runc's pid file) still gets its exit; the stamp keeps a recycled pid from matching an old exit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use containerd_shim::asynchronous::monitor::monitor_subscribe;
use containerd_shim::monitor::{Subject, Topic};
use tokio::sync::oneshot;

/// Unclaimed exits kept at most (runc's own short-lived children end up here too).
const UNCLAIMED_LIMIT: usize = 4096;

#[derive(Default)]
pub struct Exits {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    waiters: HashMap<i32, Vec<oneshot::Sender<i32>>>,
    unclaimed: HashMap<i32, (i32, Instant)>,
    /// Unclaimed exits, oldest first; an entry whose pid was claimed or seen again since is stale.
    order: VecDeque<(i32, Instant)>,
}

impl Exits {
    /// Subscribes to the reaper and dispatches exits until the shim ends.
    pub async fn start() -> crate::error::Result<Arc<Self>> {
        let exits = Arc::new(Exits::default());
        let mut subscription = monitor_subscribe(Topic::Pid).await?;
        let hub = exits.clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.rx.recv().await {
                if let Subject::Pid(pid) = event.subject {
                    hub.exited(pid, event.exit_code);
                }
            }
        });
        Ok(exits)
    }

    /// Records an exit: wakes whoever waits for `pid`, or keeps it for a later `watch`.
    pub fn exited(&self, pid: i32, code: i32) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(waiters) = inner.waiters.remove(&pid) {
            for waiter in waiters {
                let _ = waiter.send(code);
            }
            return;
        }
        let seen = Instant::now();
        inner.unclaimed.insert(pid, (code, seen));
        inner.order.push_back((pid, seen));
        while inner.order.len() > UNCLAIMED_LIMIT {
            if let Some((old, when)) = inner.order.pop_front() {
                // Only the exit this entry recorded: a recycled pid's newer exit stays.
                if inner.unclaimed.get(&old).is_some_and(|&(_, at)| at == when) {
                    inner.unclaimed.remove(&old);
                }
            }
        }
    }

    /// The exit code of `pid`, a process that started at or after `since`.
    pub fn watch(&self, pid: i32, since: Instant) -> oneshot::Receiver<i32> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().unwrap();
        match inner.unclaimed.remove(&pid) {
            Some((code, seen)) if seen >= since => {
                let _ = tx.send(code);
            }
            _ => inner.waiters.entry(pid).or_default().push(tx),
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_exit_before_the_watch_is_not_lost() {
        let exits = Exits::default();
        let since = Instant::now();
        exits.exited(42, 3);
        assert_eq!(exits.watch(42, since).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn an_exit_from_before_the_process_started_is_not_its_exit() {
        let exits = Exits::default();
        exits.exited(42, 3);
        let since = Instant::now();
        let rx = exits.watch(42, since);
        exits.exited(42, 0);
        assert_eq!(rx.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_recycled_pids_newer_exit_outlives_its_older_entry() {
        let exits = Exits::default();
        let since = Instant::now();
        exits.exited(42, 1);
        for pid in 1000..1000 + UNCLAIMED_LIMIT as i32 - 2 {
            exits.exited(pid, 0);
        }
        // pid 42 again: its first entry is now the oldest and is pushed out by the next exit.
        exits.exited(42, 7);
        exits.exited(99_999, 0);
        let newer = tokio::time::timeout(std::time::Duration::from_secs(1), exits.watch(42, since));
        assert_eq!(newer.await.expect("the newer exit is kept").unwrap(), 7);
        // The limit still holds: one more exit pushes out the oldest one (pid 1000's).
        exits.exited(99_998, 0);
        let late = exits.watch(1000, since);
        exits.exited(1000, 5);
        assert_eq!(late.await.unwrap(), 5);
    }

    #[tokio::test]
    async fn every_waiter_of_a_pid_is_woken() {
        let exits = Exits::default();
        let now = Instant::now();
        let (a, b) = (exits.watch(7, now), exits.watch(7, now));
        exits.exited(7, 137);
        assert_eq!((a.await.unwrap(), b.await.unwrap()), (137, 137));
    }
}
