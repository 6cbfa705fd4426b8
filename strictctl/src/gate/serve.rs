//! The gate process: `strictctl gate --namespace NS [--exec]` reads one request of the shim on stdin,
//! checks its protocol version, and writes the answer on stdout.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use strict_protocol::gate::{CURRENT_FOR, DEBUG_ENV, IDLE_LIMIT};
use strict_protocol::{
    Admitted, AdmittedRuntime, Answer, ConfigRequest, Envelope, Request, PROTOCOL,
};

use super::decide::{ConfigLoad, Gate};
use super::error::to_answer;
use super::features::runtime_features;
use super::logging;
use super::pods::{has_own_pid_namespace, pod_uid, role};
use crate::audit::record::Subject;

/// Loads the configuration (named by the runtime options the shim has in its environment) and the policy
/// (only the configuration with `exec_only`), answers the one request on stdin, and returns the exit
/// status.
pub fn serve(namespace: &str, exec_only: bool) -> i32 {
    logging::init(std::env::var_os(DEBUG_ENV).is_some());
    // From before the load: what it reads may change while it reads.
    let loaded = Instant::now();
    let (mut gate, mut runtime) = load(namespace, exec_only);
    if !question_within(IDLE_LIMIT) {
        // Started ahead and never asked (or the shim is shutting down): nothing to answer.
        return 0;
    }
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() || input.is_empty() {
        // The shim closed the pipe without a question: it is shutting down.
        return 0;
    }
    if loaded.elapsed() > CURRENT_FOR {
        // Started ahead a while ago: what it read may have changed since (a connection, the file).
        (gate, runtime) = load(namespace, exec_only);
    }
    let output = match serde_json::from_slice::<Envelope>(&input) {
        Ok(envelope) if envelope.protocol == PROTOCOL => answer(&gate, &runtime, envelope.request),
        Ok(envelope) => refusal(format!(
            "the shim speaks gate protocol {}, this strictctl {PROTOCOL}: install the shim and strictctl \
             of one release together (running pods keep their old shim until they are recreated)",
            envelope.protocol
        )),
        Err(error) => refusal(format!("the policy gate's request is malformed: {error}")),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&output).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// The configuration, and the policy unless `exec_only`, as they are now.
fn load(namespace: &str, exec_only: bool) -> (Gate, AdmittedRuntime) {
    let load = ConfigLoad::read(&ConfigRequest::from_env());
    let runtime = AdmittedRuntime {
        binary: load.config.runtime.binary.clone(),
        root: load.config.runtime.root.join(namespace),
        systemd_cgroup: load.config.runtime.systemd_cgroup,
    };
    let mut gate = if exec_only {
        Gate::load_for_exec(load, namespace)
    } else {
        Gate::load(load, namespace)
    };
    if gate.policy_loaded() {
        gate.set_runtime(&runtime, &runtime_features(&runtime));
    }
    (gate, runtime)
}

/// Whether stdin has something to read (the question, or the shim's end closing) within `limit`.
fn question_within(limit: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            // Not a pollable stdin (a file, in tests): read it.
            Err(_) => return true,
        }
    }
}

/// A refusal that answers any request (its type is the same JSON for all).
fn refusal(message: String) -> Vec<u8> {
    serde_json::to_vec(&Answer::<()>::Undecided(message)).expect("plain data serialises")
}

/// The answer (JSON) to one request of the shim, with the runtime the configuration names.
pub fn answer(gate: &Gate, runtime: &AdmittedRuntime, request: Request) -> Vec<u8> {
    let json = match request {
        Request::Create {
            id,
            bundle,
            pods,
            rootfs,
        } => {
            let admitted = gate
                .check_bundle(&id, &bundle, &pods, &rootfs)
                .map(|checked| Admitted {
                    role: role(&checked.spec),
                    own_pid_namespace: has_own_pid_namespace(&checked.spec),
                    runtime: runtime.clone(),
                    pod_uid: pod_uid(&checked.spec),
                    exec_baseline: checked.exec_baseline,
                });
            serde_json::to_vec(&to_answer(admitted))
        }
        Request::Exec {
            id,
            exec_id,
            bundle,
            process,
        } => {
            let checked = gate
                .container_spec(&id, &bundle, Subject::Exec)
                .and_then(|spec| gate.check_exec(&id, &exec_id, &spec, process.as_bytes()))
                .map(drop);
            serde_json::to_vec(&to_answer(checked))
        }
        Request::Update {
            id,
            bundle,
            resources,
        } => {
            let checked = gate
                .container_spec(&id, &bundle, Subject::Update)
                .and_then(|spec| gate.check_update(&id, &spec, resources.as_bytes()))
                .map(|resources| serde_json::to_string(&resources).expect("resources serialise"));
            serde_json::to_vec(&to_answer(checked))
        }
    };
    json.expect("plain data serialises")
}
