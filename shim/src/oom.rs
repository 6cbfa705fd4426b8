//! OOM events: the kernel's OOM kills in the container's memory cgroup, published as TaskOOM before the
//! exit they cause. cgroup v2: `memory.events` (oom_kill), watched with inotify. cgroup v1:
//! `memory.oom_control` through an eventfd registered in `cgroup.event_control`.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use containerd_shim::protos::events::task::TaskOOM;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::sync::{Mutex, Notify};

use crate::cgroup::MemoryCgroup;
use crate::error::{Error, Result};
use crate::events::{topics, Events};

pub struct OomWatch {
    events: Events,
    id: String,
    counter: Counter,
    reported: AtomicU64,
    /// cgroup v2: the parent's (hierarchical) `memory.events` count when the container's own was last
    /// read. With the systemd driver the container's cgroup can be gone before the shim reads it: systemd
    /// removes a scope as soon as its last process dies, and the kernel's notification of the kill may
    /// come later than that.
    parent: Option<(PathBuf, AtomicU64)>,
    /// cgroup v2: `max` in `memory.events` when the watch started, and whether a later read showed it
    /// grown (the container hit its memory limit): the parent's counter is trusted only then, so a
    /// container killed by SIGKILL (a kubelet's grace period ending) is not reported for a sibling's OOM.
    max_at_start: u64,
    pressure: std::sync::atomic::AtomicBool,
    /// Held from reading the counter to publishing: the exit path's report waits for one in flight.
    reporting: Mutex<()>,
    stop: Notify,
}

/// Where the number of OOM kills is read.
enum Counter {
    /// `memory.events`, key `oom_kill`.
    V2(PathBuf),
    /// `memory.oom_control`, key `oom_kill` (kernel ≥ 4.13).
    V1(PathBuf),
}

impl Counter {
    fn of(memory: &MemoryCgroup) -> Counter {
        match memory {
            MemoryCgroup::V1(dir) => Counter::V1(dir.clone()),
            MemoryCgroup::V2(dir) => Counter::V2(dir.clone()),
        }
    }

    fn file(&self) -> PathBuf {
        match self {
            Counter::V2(dir) => dir.join("memory.events"),
            Counter::V1(dir) => dir.join("memory.oom_control"),
        }
    }

    /// The kills counted so far and v2's `max` events (the cgroup hit memory.max; 0 on v1), from one
    /// read of the file; None when the cgroup is gone.
    fn read(&self) -> Option<Counts> {
        let text = std::fs::read_to_string(self.file()).ok()?;
        Some(Counts {
            kills: key_in(&text, "oom_kill"),
            max: match self {
                Counter::V2(_) => key_in(&text, "max"),
                Counter::V1(_) => 0,
            },
        })
    }
}

/// What one read of the counter file says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    kills: u64,
    max: u64,
}

fn read_kills(file: &Path) -> Option<u64> {
    read_key(file, "oom_kill")
}

/// `KEY N` of a cgroup file of such lines (0 when the key is absent); None when the file is gone.
fn read_key(file: &Path, key: &str) -> Option<u64> {
    Some(key_in(&std::fs::read_to_string(file).ok()?, key))
}

fn key_in(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

impl OomWatch {
    /// Watches container `id`'s memory cgroup, as `OciRuntime::memory_cgroup` finds it, and publishes
    /// its OOM kills to `events`.
    pub fn start(events: Events, id: &str, memory: &MemoryCgroup) -> Result<Arc<OomWatch>> {
        let counter = Counter::of(memory);
        let at_start = counter.read().unwrap_or_default();
        let parent = match memory {
            MemoryCgroup::V2(dir) => dir.parent().map(|parent| {
                let file = parent.join("memory.events");
                let seen = AtomicU64::new(read_kills(&file).unwrap_or(0));
                (file, seen)
            }),
            MemoryCgroup::V1(_) => None,
        };
        let watch = Arc::new(OomWatch {
            events,
            id: id.to_string(),
            reported: AtomicU64::new(at_start.kills),
            parent,
            max_at_start: at_start.max,
            pressure: std::sync::atomic::AtomicBool::new(false),
            counter,
            reporting: Mutex::new(()),
            stop: Notify::new(),
        });
        let notifications = match memory {
            MemoryCgroup::V2(dir) => inotify_stream(dir)?,
            MemoryCgroup::V1(dir) => eventfd_stream(dir)?,
        };
        let task = watch.clone();
        tokio::spawn(async move {
            let mut notifications = notifications;
            loop {
                tokio::select! {
                    _ = task.stop.notified() => break,
                    ready = notifications.next() => {
                        if ready.is_err() {
                            break;
                        }
                        task.report_pending().await;
                    }
                }
            }
        });
        Ok(watch)
    }

    /// Publishes TaskOOM if the kernel counted OOM kills not reported yet. When it returns, every kill
    /// counted so far has been published, by this call or by one that was in flight.
    pub async fn report_pending(&self) {
        let _reporting = self.reporting.lock().await;
        self.report_counted().await;
    }

    /// [`OomWatch::report_pending`] when the container's init has exited with `status`. When its cgroup
    /// is gone already (systemd removed the scope), a kill the container's own counter can no longer show
    /// is taken from the parent's: an init killed by SIGKILL, in a container seen at its memory limit,
    /// while the parent counted a new OOM kill.
    pub async fn report_at_exit(&self, status: u32) {
        let _reporting = self.reporting.lock().await;
        if self.report_counted().await {
            return;
        }
        let Some((file, seen)) = &self.parent else {
            return;
        };
        let killed = status == 128 + libc::SIGKILL as u32;
        let pressure = self.pressure.load(Ordering::SeqCst);
        let parent_now = read_kills(file).unwrap_or(0);
        if killed && pressure && parent_now > seen.load(Ordering::SeqCst) {
            seen.store(parent_now, Ordering::SeqCst);
            tracing::warn!(container = %self.id, "OOM kill (counted by the parent cgroup: the container's was removed before it was read)");
            self.publish().await;
        }
    }

    /// Publishes what the container's own counter shows; false when the cgroup is gone.
    async fn report_counted(&self) -> bool {
        let Some(counts) = self.counter.read() else {
            return false;
        };
        if counts.max > self.max_at_start {
            self.pressure.store(true, Ordering::SeqCst);
        }
        let now = counts.kills;
        if let Some((file, seen)) = &self.parent {
            seen.store(read_kills(file).unwrap_or(0), Ordering::SeqCst);
        }
        let before = self.reported.swap(now, Ordering::SeqCst);
        if now > before {
            tracing::warn!(container = %self.id, kills = now - before, "OOM kill");
            self.publish().await;
        }
        true
    }

    async fn publish(&self) {
        let event = TaskOOM {
            container_id: self.id.clone(),
            ..Default::default()
        };
        self.events.publish(topics::OOM, Box::new(event)).await;
    }

    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// An owned descriptor as tokio's `AsyncFd` wants it.
struct Owned<T: AsFd>(T);

impl<T: AsFd> AsRawFd for Owned<T> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn register<T: AsFd>(inner: T) -> std::io::Result<AsyncFd<Owned<T>>> {
    // SAFETY: `Owned` owns the descriptor for the AsyncFd's whole life and always returns the same one.
    unsafe { AsyncFd::register(Owned(inner)) }.map_err(|e| e.into_parts().1)
}

/// A stream of "something changed" wake-ups.
enum Notifications {
    Inotify(AsyncFd<Owned<Inotify>>),
    EventFd(AsyncFd<Owned<EventFd>>, #[allow(dead_code)] std::fs::File),
}

impl Notifications {
    async fn next(&mut self) -> std::io::Result<()> {
        match self {
            Notifications::Inotify(fd) => loop {
                let mut guard = fd.readable().await?;
                match guard.try_io(|inner| {
                    inner
                        .get_ref()
                        .0
                        .read_events()
                        .map_err(std::io::Error::from)
                }) {
                    Ok(result) => return result.map(drop),
                    Err(_would_block) => continue,
                }
            },
            Notifications::EventFd(fd, _) => loop {
                let mut guard = fd.readable().await?;
                match guard.try_io(|inner| inner.get_ref().0.read().map_err(std::io::Error::from)) {
                    Ok(result) => return result.map(drop),
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

fn inotify_stream(dir: &Path) -> Result<Notifications> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    inotify.add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)?;
    Ok(Notifications::Inotify(
        register(inotify).map_err(Error::io("watching memory.events"))?,
    ))
}

fn eventfd_stream(dir: &Path) -> Result<Notifications> {
    let control = std::fs::File::open(dir.join("memory.oom_control")).map_err(Error::io(
        format!("opening {}/memory.oom_control", dir.display()),
    ))?;
    let eventfd = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
    let registration = format!("{} {}", eventfd.as_fd().as_raw_fd(), control.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), registration)
        .map_err(Error::io("registering for OOM notifications"))?;
    Ok(Notifications::EventFd(
        register(eventfd).map_err(Error::io("watching memory.oom_control"))?,
        control,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_counter_is_read_from_either_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(
            Counter::V2(dir.path().into()).read(),
            Some(Counts { kills: 2, max: 3 })
        );
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        )
        .unwrap();
        assert_eq!(
            Counter::V1(dir.path().into()).read(),
            Some(Counts { kills: 5, max: 0 })
        );
        assert_eq!(Counter::V2(dir.path().join("gone")).read(), None);
    }

    fn events_file(dir: &Path, kills: u64) {
        events_with_max(dir, kills, 0);
    }

    fn events_with_max(dir: &Path, kills: u64, max: u64) {
        std::fs::write(
            dir.join("memory.events"),
            format!("low 0\nhigh 0\nmax {max}\noom 0\noom_kill {kills}\n"),
        )
        .unwrap();
    }

    /// systemd removed the container's scope before its counter was read: the parent's counter, the
    /// SIGKILL status and the limit seen reached say it was an OOM kill; a plain exit, no new kill in the
    /// parent, or a container never seen at its limit (killed after a grace period) is not one.
    #[tokio::test]
    async fn a_kill_in_a_removed_cgroup_is_taken_from_the_parent() {
        use crate::events::Recorder;
        for (status, parent_kills, at_limit, expected) in [
            (137, 1, true, 1),
            (0, 1, true, 0),
            (137, 0, true, 0),
            (137, 1, false, 0),
        ] {
            let parent = tempfile::tempdir().unwrap();
            let own = parent.path().join("strict-c1.scope");
            std::fs::create_dir(&own).unwrap();
            events_file(parent.path(), 0);
            events_file(&own, 0);
            let recorder = Arc::new(Recorder::default());
            let watch =
                OomWatch::start(recorder.clone(), "c1", &MemoryCgroup::V2(own.clone())).unwrap();
            if at_limit {
                // The container reaches its limit; the watcher reads that while it lives.
                events_with_max(&own, 0, 3);
                watch.report_pending().await;
            }
            events_file(parent.path(), parent_kills);
            std::fs::remove_dir_all(&own).unwrap();
            watch.report_at_exit(status).await;
            watch.stop();
            assert_eq!(
                recorder.topics().len(),
                expected,
                "status {status}, parent kills {parent_kills}, at its limit {at_limit}"
            );
        }
    }

    #[tokio::test]
    async fn the_containers_own_counter_comes_first() {
        use crate::events::Recorder;
        let parent = tempfile::tempdir().unwrap();
        let own = parent.path().join("c2");
        std::fs::create_dir(&own).unwrap();
        events_file(parent.path(), 0);
        events_file(&own, 0);
        let recorder = Arc::new(Recorder::default());
        let watch =
            OomWatch::start(recorder.clone(), "c2", &MemoryCgroup::V2(own.clone())).unwrap();
        // The parent counted a sibling's kill; this container's own counter says none.
        events_file(parent.path(), 1);
        watch.report_at_exit(137).await;
        assert!(recorder.topics().is_empty());
        events_file(&own, 1);
        watch.report_at_exit(137).await;
        watch.stop();
        assert_eq!(recorder.topics(), [topics::OOM]);
    }
}
