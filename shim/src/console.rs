//! Terminals: runc sends the pty master of a `terminal: true` process over a unix socket (`--console-socket`).

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tempfile::TempDir;

use crate::error::{Error, Result};

/// A listening socket in a private temporary directory, removed when dropped.
pub struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("strict-pty")
            .tempdir()
            .map_err(Error::io("creating the console socket directory"))?;
        let path = dir.path().join("pty.sock");
        let listener =
            UnixListener::bind(&path).map_err(Error::io("binding the console socket"))?;
        Ok(ConsoleSocket {
            _dir: dir,
            path,
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master runc sent (it has sent it before `create`/`exec` returned).
    pub async fn receive_master(self) -> Result<File> {
        tokio::task::spawn_blocking(move || {
            let (stream, _) = self
                .listener
                .accept()
                .map_err(Error::io("accepting runc's console"))?;
            receive_fd(&stream)
        })
        .await
        .map_err(|e| Error::FailedPrecondition(e.to_string()))?
    }
}

fn receive_fd(stream: &std::os::unix::net::UnixStream) -> Result<File> {
    use std::os::fd::AsRawFd;
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
                return Ok(File::from(owned));
            }
        }
    }
    Err(Error::FailedPrecondition(
        "runc sent no terminal on the console socket".into(),
    ))
}

/// ResizePty.
pub fn resize(master: &File, width: u32, height: u32) -> Result<()> {
    use std::os::fd::AsRawFd;
    let size = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which lives for the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc < 0 {
        return Err(Error::io("resizing the terminal")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
