//! Which execs the shim may allow without a gate process. An exec probe runs the container's own process
//! with another command: containerd (CRI's ExecSync, `ctr task exec`) copies the process of the spec it
//! keeps and sets the command, the environment and the terminal. Judged as an exec, that process asks for
//! nothing the container does not hold whatever its command, so the gate works it out once, at Create, and
//! hands the shim the process as containerd sent it (see `strict_protocol::ExecBaseline`); every exec
//! that differs from it elsewhere is asked of a gate as before.

use oci_spec::runtime::{Process, Spec};
use strict_policy::evaluate_exec;
use strict_protocol::ExecBaseline;

/// The process's fields an exec may set as it likes: no rule of the exec judgement reads them
/// (`free_fields_are_not_judged` holds that to the rules).
pub const FREE_FIELDS: [&str; 6] = [
    "args",
    "commandLine",
    "env",
    "cwd",
    "terminal",
    "consoleSize",
];

/// The baseline of a container whose config.json came as `asked` and runs as `admitted`, or None when
/// an exec like its process must be judged each time: the process was narrowed (containerd builds an
/// exec from the spec it keeps, the one it sent, not the one that runs), or such an exec would be refused
/// or recorded.
pub fn baseline(asked: &[u8], admitted: &Spec) -> Option<ExecBaseline> {
    /// The process only: the rest of the spec (its seccomp filter is most of it) is skipped, not built.
    #[derive(serde::Deserialize)]
    struct ProcessOnly {
        process: Option<serde_json::Value>,
    }
    let mut process = serde_json::from_slice::<ProcessOnly>(asked).ok()?.process?;
    let as_asked: Process = serde_json::from_value(process.clone()).ok()?;
    if admitted.process().as_ref() != Some(&as_asked) {
        return None;
    }
    let verdict = evaluate_exec(admitted, &as_asked);
    if !verdict.violations.is_empty() || !verdict.narrowed.is_empty() {
        return None;
    }
    let fields = process.as_object_mut()?;
    for field in FREE_FIELDS {
        fields.remove(field);
    }
    Some(ExecBaseline {
        free_fields: FREE_FIELDS.iter().map(|f| f.to_string()).collect(),
        process: serde_json::to_string(&process).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(process: serde_json::Value) -> serde_json::Value {
        json!({"ociVersion": "1.1.0", "root": {"path": "rootfs"}, "process": process})
    }

    fn own_process() -> serde_json::Value {
        json!({
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [1000]}, "cwd": "/", "args": ["sleep", "300"],
            "env": ["PATH=/bin"], "noNewPrivileges": true, "apparmorProfile": "cri-containerd.apparmor.d",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "oomScoreAdj": 1000
        })
    }

    fn admitted(process: &serde_json::Value) -> Spec {
        serde_json::from_value(spec(process.clone())).unwrap()
    }

    #[test]
    fn a_container_that_runs_as_asked_gets_its_process_without_the_free_fields() {
        let asked = spec(own_process()).to_string();
        let baseline = baseline(asked.as_bytes(), &admitted(&own_process())).unwrap();
        let process: serde_json::Value = serde_json::from_str(&baseline.process).unwrap();
        for field in FREE_FIELDS {
            assert!(process.get(field).is_none(), "{field} is left in");
        }
        assert_eq!(process["user"]["uid"], 1000);
        assert_eq!(baseline.free_fields.len(), FREE_FIELDS.len());
    }

    #[test]
    fn a_narrowed_process_has_no_baseline() {
        let asked = own_process();
        let mut narrowed = asked.clone();
        narrowed["capabilities"] = json!({"bounding": [], "effective": [], "permitted": []});
        assert!(baseline(spec(asked).to_string().as_bytes(), &admitted(&narrowed)).is_none());
    }

    #[test]
    fn a_process_an_exec_could_not_copy_cleanly_has_no_baseline() {
        // No capabilities: an exec like it would be refused (runc would give it all of its own).
        let mut process = own_process();
        process.as_object_mut().unwrap().remove("capabilities");
        assert!(baseline(
            spec(process.clone()).to_string().as_bytes(),
            &admitted(&process)
        )
        .is_none());
        // Nothing to copy.
        let no_process = json!({"ociVersion": "1.1.0", "root": {"path": "rootfs"}}).to_string();
        let spec: Spec = serde_json::from_str(&no_process).unwrap();
        assert!(baseline(no_process.as_bytes(), &spec).is_none());
        assert!(baseline(b"not json", &admitted(&own_process())).is_none());
    }

    /// The shim allows an exec that differs from the container's process only in FREE_FIELDS: that holds
    /// only while no rule of the exec judgement reads them. Each is set to something unusual here; the
    /// verdict must not change.
    #[test]
    fn free_fields_are_not_judged() {
        let container = admitted(&own_process());
        let unusual = [
            ("args", json!(["/bin/sh", "-c", "cat /etc/shadow"])),
            ("commandLine", json!("cmd.exe /c whoami")),
            ("env", json!(["LD_PRELOAD=/tmp/x.so", "PATH=/tmp"])),
            ("cwd", json!("/proc/1/root")),
            ("terminal", json!(true)),
            ("consoleSize", json!({"height": 1, "width": 1})),
        ];
        assert_eq!(unusual.len(), FREE_FIELDS.len());
        for (field, value) in unusual {
            assert!(FREE_FIELDS.contains(&field));
            let mut exec = own_process();
            exec[field] = value;
            let exec: Process = serde_json::from_value(exec).unwrap();
            let verdict = evaluate_exec(&container, &exec);
            assert!(
                verdict.violations.is_empty() && verdict.narrowed.is_empty(),
                "a rule reads {field}: take it out of FREE_FIELDS"
            );
        }
        // And a field that is judged changes it: the test can fail.
        let mut exec = own_process();
        exec["user"]["uid"] = json!(0);
        let exec: Process = serde_json::from_value(exec).unwrap();
        assert!(!evaluate_exec(&container, &exec).violations.is_empty());
    }
}
