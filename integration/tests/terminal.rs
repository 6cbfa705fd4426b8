//! Terminals through the strict runtime: `ctr run -t` and `ctr tasks exec -t` on a real pseudo-terminal
//! (ctr insists on one), with a window size set on it as a user's terminal would have. Checks that the
//! container's process gets a /dev/pts terminal, that ctr's initial size and a later resize (SIGWINCH,
//! ResizePty) reach it, and that the exit code comes back through ctr.

mod grpc;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};
use strict_integration::{testbed, text, unique, IMAGE, STRICT};

/// A command running on the slave side of a fresh pty (its controlling terminal, so that it gets
/// SIGWINCH), with everything it writes collected from the master.
struct Session {
    master: File,
    output: Arc<Mutex<Vec<u8>>>,
    child: Child,
    what: String,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Session {
    fn spawn(mut command: Command, rows: u16, cols: u16) -> Session {
        let what = format!("{command:?}");
        let pty = openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let slave = File::from(pty.slave);
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; fd 0 is the pty slave at this point.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawning ctr on the pty");
        // Only the child holds the slave now: the master reads EIO once it has exited.
        drop(command);
        let master = File::from(pty.master);
        let output: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (mut reader, sink) = (master.try_clone().unwrap(), output.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Session {
            master,
            output,
            child,
            what,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// How much output there is so far: `expect` looks only after such a mark.
    fn mark(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    fn send(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\r").as_bytes())
            .expect("writing to the pty");
    }

    /// Waits for `needle` in the output after `mark`.
    fn wait_for(&self, mark: usize, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if String::from_utf8_lossy(&self.output.lock().unwrap()[mark..]).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn expect(&self, mark: usize, needle: &str, timeout: Duration) {
        assert!(
            self.wait_for(mark, needle, timeout),
            "{needle:?} did not appear within {timeout:?} from {}; output: {:?}",
            self.what,
            self.output()
        );
    }

    /// Sends `line` until `needle` appears after it (at most `tries` times, 500 ms apart): for what
    /// the container sees asynchronously, as the size ctr sets after the start or on SIGWINCH.
    fn eventually(&mut self, line: &str, needle: &str, tries: u32) {
        for _ in 0..tries {
            let mark = self.mark();
            self.send(line);
            if self.wait_for(mark, needle, Duration::from_millis(500)) {
                return;
            }
        }
        panic!(
            "{line:?} never printed {needle:?} from {}; output: {:?}",
            self.what,
            self.output()
        );
    }

    /// Sets the terminal's size as a resized terminal window does (the kernel sends SIGWINCH to ctr).
    fn resize(&self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which lives for the call.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ as _, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Waits for the command's exit; kills it after `timeout`.
    fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader take the last output.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.output());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {timeout:?}; output: {:?}; containerd: {}",
                    self.what,
                    self.output(),
                    testbed().log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The dialogue with an interactive busybox sh on a terminal of 40 rows and 120 columns: its terminal is
/// a /dev/pts device, it has ctr's size, a resize to 50x100 reaches it, and `exit <code>` ends it.
fn converse(session: &mut Session, code: i32) {
    // The prompt: the shell runs, interactive, on a terminal.
    session.expect(0, "# ", Duration::from_secs(30));
    let mark = session.mark();
    session.send("tty");
    session.expect(mark, "/dev/pts/", Duration::from_secs(10));
    // ctr sends its terminal's size right after the start; the echo of the command is not the answer.
    session.eventually("stty size", "40 120", 6);
    session.resize(50, 100);
    session.eventually("stty size", "50 100", 6);
    let mark = session.mark();
    session.send("echo d''one");
    session.expect(mark, "done", Duration::from_secs(10));
    session.send(&format!("exit {code}"));
}

#[test]
fn run_with_a_terminal_gets_a_pty_its_size_and_returns_the_exit_code() {
    let tb = testbed();
    let id = unique("tty");
    let mut command = tb.ctr_command();
    command.args(["run", "--rm", "-t", "--runtime", STRICT, IMAGE, &id, "sh"]);
    let mut session = Session::spawn(command, 40, 120);
    converse(&mut session, 3);
    let (status, output) = session.finish(Duration::from_secs(30));
    // A refused or failed run leaves the container record: remove it whatever happened.
    tb.remove(&id);
    assert_eq!(status.code(), Some(3), "output: {output:?}");
}

#[test]
fn exec_with_a_terminal_into_a_detached_container() {
    let tb = testbed();
    let id = unique("ttyexec");
    let out = tb.ctr(&["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut command = tb.ctr_command();
    command.args(["tasks", "exec", "-t", "--exec-id", "term", &id, "sh"]);
    let mut session = Session::spawn(command, 40, 120);
    converse(&mut session, 5);
    let (status, output) = session.finish(Duration::from_secs(30));
    // The container outlives its exec.
    let listed = text(&tb.ctr(&["tasks", "list"]).stdout);
    tb.remove(&id);
    assert_eq!(status.code(), Some(5), "output: {output:?}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "the container did not survive its exec: {listed}"
    );
}

#[test]
fn a_terminal_process_output_and_exit_without_input() {
    // No interaction: a tty process that just prints and exits, through `ctr run -t` (ctr still needs a
    // terminal). The output arrives with the terminal's \r\n, and nothing is lost at the exit.
    let tb = testbed();
    let id = unique("ttyout");
    let mut command = tb.ctr_command();
    command.args([
        "run",
        "--rm",
        "-t",
        "--runtime",
        STRICT,
        IMAGE,
        &id,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9; do echo line-$i; done; exit 9",
    ]);
    let session = Session::spawn(command, 40, 120);
    let (status, output) = session.finish(Duration::from_secs(60));
    tb.remove(&id);
    assert_eq!(status.code(), Some(9), "output: {output:?}");
    // Both ptys (the container's and ctr's) turn \n into \r\n, as with containerd-shim-runc-v2.
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let expected: Vec<String> = (1..=9).map(|i| format!("line-{i}")).collect();
    assert_eq!(lines, expected, "output: {output:?}");
    // ctr resizes right after the start, often after such a short process has exited: that is no error
    // (ctr would print `resize pty error=...` into the user's terminal).
    assert!(!output.contains("resize pty"), "output: {output:?}");
}

/// ResizePty through containerd's gRPC API for a terminal process that has exited: ctr and the kubelet
/// resize whenever the client's window changes, whatever the process's state. containerd-shim-runc-v2
/// answers OK; so must the strict shim (it once answered "the process has no terminal").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizing_the_terminal_of_an_exited_process_is_no_error() {
    use crate::grpc::{connect, create_task, ns, tasks, within};
    use containerd_client::services::v1::{ResizePtyRequest, StartRequest, WaitRequest};

    let tb = testbed();
    let id = unique("ttyexited");
    // `-t`: the spec asks for a terminal; the task is created with one (no stdio) through gRPC.
    let out = tb.ctr(&[
        "containers",
        "create",
        "-t",
        "--runtime",
        STRICT,
        IMAGE,
        &id,
        "true",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let channel = connect(tb).await;
    let mut client = tasks(&channel);
    let result = async {
        create_task(&channel, &id, true).await?;
        let start = StartRequest {
            container_id: id.clone(),
            exec_id: String::new(),
        };
        within("Tasks.Start", client.start(ns(start))).await?;
        let wait = WaitRequest {
            container_id: id.clone(),
            exec_id: String::new(),
        };
        let waited = within("Tasks.Wait", client.wait(ns(wait))).await?;
        assert_eq!(waited.into_inner().exit_status, 0);
        let resize = ResizePtyRequest {
            container_id: id.clone(),
            exec_id: String::new(),
            width: 100,
            height: 50,
        };
        within("Tasks.ResizePty", client.resize_pty(ns(resize))).await
    }
    .await;
    tb.remove(&id);
    result.unwrap_or_else(|status| panic!("{status:?}"));
}
