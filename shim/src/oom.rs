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

    fn read(&self) -> u64 {
        let path = match self {
            Counter::V2(dir) => dir.join("memory.events"),
            Counter::V1(dir) => dir.join("memory.oom_control"),
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl OomWatch {
    /// Watches container `id`'s memory cgroup, as `OciRuntime::memory_cgroup` finds it, and publishes
    /// its OOM kills to `events`.
    pub fn start(events: Events, id: &str, memory: &MemoryCgroup) -> Result<Arc<OomWatch>> {
        let counter = Counter::of(memory);
        let watch = Arc::new(OomWatch {
            events,
            id: id.to_string(),
            reported: AtomicU64::new(counter.read()),
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
        let now = self.counter.read();
        let before = self.reported.swap(now, Ordering::SeqCst);
        if now > before {
            tracing::warn!(container = %self.id, kills = now - before, "OOM kill");
            let event = TaskOOM {
                container_id: self.id.clone(),
                ..Default::default()
            };
            self.events.publish(topics::OOM, Box::new(event)).await;
        }
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
        assert_eq!(Counter::V2(dir.path().into()).read(), 2);
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        )
        .unwrap();
        assert_eq!(Counter::V1(dir.path().into()).read(), 5);
    }
}
