//! A process's stdio as containerd asks for it: fifos (copied through pipes, so the process never blocks on
//! a fifo nobody reads and containerd may reconnect), `binary://` loggers, `file://` paths, or a terminal.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::console::ConsoleSocket;
use crate::error::{Error, Result};
use crate::runtime::ProcessFds;

/// How long an exit waits for the process's output to reach containerd (a child that inherited stdout may
/// keep the pipe open forever).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What containerd asked for, from CreateTaskRequest / ExecProcessRequest.
#[derive(Clone, Debug, Default)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Where an output stream goes.
#[derive(Debug, PartialEq)]
enum Sink {
    Null,
    Fifo(PathBuf),
    File(PathBuf),
    Binary {
        path: PathBuf,
        args: Vec<(String, String)>,
    },
}

fn parse_sink(uri: &str) -> Result<Sink> {
    if uri.is_empty() {
        return Ok(Sink::Null);
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(Sink::File(PathBuf::from(rest)));
    }
    if let Some(rest) = uri.strip_prefix("binary://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let args = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        return Ok(Sink::Binary {
            path: PathBuf::from(path),
            args,
        });
    }
    if let Some(rest) = uri.strip_prefix("fifo://") {
        return Ok(Sink::Fifo(PathBuf::from(rest)));
    }
    if uri.starts_with('/') {
        return Ok(Sink::Fifo(PathBuf::from(uri)));
    }
    Err(Error::InvalidArgument(format!(
        "unsupported stdio URI {uri:?}"
    )))
}

/// The running side of a process's stdio, kept by the shim for CloseIO, ResizePty and the exit.
#[derive(Default)]
pub struct ProcessIo {
    stdin_close: Option<Arc<Notify>>,
    outputs: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    pub console: Option<Arc<std::fs::File>>,
    _console_socket: Option<ConsoleSocket>,
    pending_terminal: Option<Stdio>,
}

impl ProcessIo {
    /// Opens everything the new process needs; call `started` once the runtime has returned.
    pub fn prepare(stdio: &Stdio, id: &str, namespace: &str) -> Result<(ProcessIo, ProcessFds)> {
        let mut io = ProcessIo::default();
        let mut fds = ProcessFds::default();
        if stdio.terminal {
            let socket = ConsoleSocket::new()?;
            fds.console_socket = Some(socket.path().to_owned());
            io._console_socket = Some(socket);
            io.pending_terminal = Some(stdio.clone());
            return Ok((io, fds));
        }
        if !stdio.stdin.is_empty() {
            let (read, write) = pipe_pair()?;
            fds.stdin = Some(read);
            let sender = pipe::Sender::from_owned_fd(write).map_err(Error::io("stdin pipe"))?;
            io.copy_stdin_from(&stdio.stdin, sender)?;
        }
        let stdout = parse_sink(&stdio.stdout)?;
        let stderr = parse_sink(&stdio.stderr)?;
        if let Sink::Binary { path, args } = &stdout {
            let (out_read, out_write) = pipe_pair()?;
            let (err_read, err_write) = pipe_pair()?;
            start_logger(path, args, id, namespace, out_read, err_read)?;
            fds.stdout = Some(out_write);
            fds.stderr = Some(err_write);
            return Ok((io, fds));
        }
        fds.stdout = io.output(&stdout, "stdout")?;
        fds.stderr = io.output(&stderr, "stderr")?;
        Ok((io, fds))
    }

    fn output(&mut self, sink: &Sink, name: &str) -> Result<Option<OwnedFd>> {
        match sink {
            Sink::Null => Ok(None),
            Sink::File(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(Error::io(format!("creating {}", parent.display())))?;
                }
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(path)
                    .map_err(Error::io(format!("opening {name} {}", path.display())))?;
                Ok(Some(file.into()))
            }
            Sink::Fifo(path) => {
                let (read, write) = pipe_pair()?;
                let fifo = open_fifo_sender(path)?;
                let receiver = pipe::Receiver::from_owned_fd(read)
                    .map_err(Error::io(format!("{name} pipe")))?;
                self.outputs.push(tokio::spawn(copy_output(receiver, fifo)));
                Ok(Some(write))
            }
            Sink::Binary { .. } => unreachable!("handled for both streams at once"),
        }
    }

    /// After the runtime returned: for a terminal, receives the pty and starts copying.
    pub async fn started(&mut self) -> Result<()> {
        let Some(stdio) = self.pending_terminal.take() else {
            return Ok(());
        };
        let socket = self
            ._console_socket
            .take()
            .expect("a terminal has a console socket");
        let master = Arc::new(socket.receive_master().await?);
        if !stdio.stdin.is_empty() {
            let writer = tokio::fs::File::from_std(master.try_clone().map_err(Error::io("pty"))?);
            self.copy_stdin_from(&stdio.stdin, writer)?;
        }
        if let Sink::Fifo(path) = parse_sink(&stdio.stdout)? {
            let fifo = open_fifo_sender(&path)?;
            let reader = tokio::fs::File::from_std(master.try_clone().map_err(Error::io("pty"))?);
            self.outputs.push(tokio::spawn(copy_output(reader, fifo)));
        }
        self.console = Some(master);
        Ok(())
    }

    fn copy_stdin_from(
        &mut self,
        fifo: &str,
        to: impl AsyncWrite + Unpin + Send + 'static,
    ) -> Result<()> {
        let from = pipe::OpenOptions::new()
            .open_receiver(fifo)
            .map_err(Error::io(format!("opening stdin {fifo}")))?;
        let close = Arc::new(Notify::new());
        self.stdin_close = Some(close.clone());
        self.others.push(tokio::spawn(copy_stdin(from, to, close)));
        Ok(())
    }

    /// CloseIO: the client has no more input; the process reads EOF once what was sent is delivered.
    pub fn close_stdin(&mut self) {
        if let Some(close) = self.stdin_close.take() {
            close.notify_one();
        }
    }

    /// Waits (a bounded time) until the process's output has been copied out, so an exit event never
    /// overtakes the last lines.
    pub async fn drain(&mut self) {
        let outputs = std::mem::take(&mut self.outputs);
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, futures_join_all(outputs)).await;
        for task in self.others.drain(..) {
            task.abort();
        }
        self.console = None;
    }
}

async fn futures_join_all(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        for task in self.outputs.drain(..).chain(self.others.drain(..)) {
            task.abort();
        }
    }
}

fn pipe_pair() -> Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Opened read-write so that opening never blocks and a reader that goes away does not kill the copy.
fn open_fifo_sender(path: &Path) -> Result<pipe::Sender> {
    pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(path)
        .map_err(Error::io(format!("opening {}", path.display())))
}

async fn copy_output(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.flush().await;
}

/// Copies input until the client closes its end of the fifo (EOF, as `ctr run < file` shows it) or sends
/// CloseIO; then closes the process's stdin. The fifo is open read-only and non-blocking: the kernel reports
/// it readable only once there is data or a writer has come and gone, so a client that has not connected
/// yet is not mistaken for EOF.
async fn copy_stdin(from: pipe::Receiver, mut to: impl AsyncWrite + Unpin, close: Arc<Notify>) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            ready = from.readable() => {
                if ready.is_err() {
                    break;
                }
                match from.try_read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => if to.write_all(&buffer[..n]).await.is_err() { return },
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break,
                }
            },
            _ = close.notified() => {
                while let Ok(n) = from.try_read(&mut buffer) {
                    if n == 0 || to.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
                break;
            }
        }
    }
    let _ = to.flush().await;
    let _ = to.shutdown().await;
}

/// Starts a `binary://` logger as containerd's shims do: stdout on fd 3, stderr on fd 4, and fd 5 closed by
/// the logger once it is ready.
fn start_logger(
    path: &Path,
    args: &[(String, String)],
    id: &str,
    namespace: &str,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<()> {
    let (ready_read, ready_write) = pipe_pair()?;
    let mut command = std::process::Command::new(path);
    for (key, value) in args {
        command.arg(key);
        if !value.is_empty() {
            command.arg(value);
        }
    }
    command
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let fds = [
        stdout.as_raw_fd(),
        stderr.as_raw_fd(),
        ready_write.as_raw_fd(),
    ];
    // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for (target, fd) in (3..).zip(fds) {
                if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(Error::io(format!("starting the logger {}", path.display())))?;
    drop((stdout, stderr, ready_write));
    let mut ready = std::fs::File::from(ready_read);
    let mut byte = [0u8; 1];
    // The logger closes fd 5 (or exits) when ready; both end this read.
    let _ = std::io::Read::read(&mut ready, &mut byte);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_uris_are_understood_and_others_refused() {
        assert_eq!(parse_sink("").unwrap(), Sink::Null);
        assert_eq!(
            parse_sink("/run/x/stdout").unwrap(),
            Sink::Fifo("/run/x/stdout".into())
        );
        assert_eq!(
            parse_sink("file:///var/log/c.log").unwrap(),
            Sink::File("/var/log/c.log".into())
        );
        assert_eq!(
            parse_sink("binary:///usr/bin/logger?id=1&debug").unwrap(),
            Sink::Binary {
                path: "/usr/bin/logger".into(),
                args: vec![("id".into(), "1".into()), ("debug".into(), String::new())]
            }
        );
        assert!(parse_sink("tcp://x").is_err());
    }

    #[tokio::test]
    async fn output_reaches_the_fifo_and_drain_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&fifo)
            .unwrap();
        let stdio = Stdio {
            stdout: fifo.display().to_string(),
            ..Default::default()
        };
        let (mut io, fds) = ProcessIo::prepare(&stdio, "c", "ns").unwrap();
        let mut writer = std::fs::File::from(fds.stdout.unwrap());
        std::io::Write::write_all(&mut writer, b"hello\n").unwrap();
        drop(writer);
        io.drain().await;
        let mut got = [0u8; 6];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello\n");
    }

    fn stdin_fifo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdin");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        (dir, fifo)
    }

    /// The client's side: a blocking open, as containerd's fifo package does it.
    async fn client_writes(fifo: &Path, input: &'static [u8]) {
        let fifo = fifo.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut client = OpenOptions::new().write(true).open(fifo).unwrap();
            client.write_all(input).unwrap();
        })
        .await
        .unwrap();
    }

    async fn read_process_stdin(fds: ProcessFds) -> Vec<u8> {
        let mut process_stdin = tokio::fs::File::from_std(std::fs::File::from(fds.stdin.unwrap()));
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), process_stdin.read_to_end(&mut got))
            .await
            .expect("the process reads EOF")
            .unwrap();
        got
    }

    #[tokio::test]
    async fn a_late_clients_input_then_its_close_is_the_processs_eof() {
        let (_dir, fifo) = stdin_fifo();
        let stdio = Stdio {
            stdin: fifo.display().to_string(),
            ..Default::default()
        };
        let (_io, fds) = ProcessIo::prepare(&stdio, "c", "ns").unwrap();
        // A client that connects late: until it does, there is no EOF.
        tokio::time::sleep(Duration::from_millis(100)).await;
        client_writes(&fifo, b"twelve bytes").await;
        assert_eq!(read_process_stdin(fds).await, b"twelve bytes");
    }

    #[tokio::test]
    async fn close_io_delivers_pending_input_then_eof() {
        let (_dir, fifo) = stdin_fifo();
        let stdio = Stdio {
            stdin: fifo.display().to_string(),
            ..Default::default()
        };
        let (mut io, fds) = ProcessIo::prepare(&stdio, "c", "ns").unwrap();
        // A client that keeps its end open and says CloseIO instead.
        let held = {
            let fifo = fifo.clone();
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut client = OpenOptions::new().write(true).open(fifo).unwrap();
                client.write_all(b"input").unwrap();
                client
            })
            .await
            .unwrap()
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        io.close_stdin();
        assert_eq!(read_process_stdin(fds).await, b"input");
        drop(held);
    }

    #[tokio::test]
    async fn close_io_without_a_client_still_ends_the_input() {
        let (_dir, fifo) = stdin_fifo();
        let stdio = Stdio {
            stdin: fifo.display().to_string(),
            ..Default::default()
        };
        let (mut io, fds) = ProcessIo::prepare(&stdio, "c", "ns").unwrap();
        io.close_stdin();
        assert_eq!(read_process_stdin(fds).await, b"");
    }
}
