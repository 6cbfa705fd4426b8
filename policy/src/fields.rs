//! Every field of the OCI spec, of an exec's process and of an update's resources, classified: judged by a
//! rule, known to be harmless, or refused when set. The gate is a boundary, judged by what it lets through
//! unexamined, so a field nobody classified is a defect: `policy/tests/spec_fields.rs` walks oci-spec's types
//! and fails on any field missing here (or any entry here that names no field), and checks that every
//! `Refused` field is refused when a spec sets it. docs/security.md prints these tables.
//!
//! A path names a field and everything below it: `linux.seccomp` covers `linux.seccomp.syscalls[].names[]`
//! unless a longer entry says otherwise. `[]` is any element of an array, `*` any key of a map.

/// How the gate treats a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A rule judges it (the rule ids, as violations and narrowings name them).
    Judged(&'static str),
    /// It reaches nothing of the host beyond what the judged fields grant (why).
    Harmless(&'static str),
    /// No interface grants it: a spec that sets it is refused (the rule id).
    Refused(&'static str),
}

/// One entry of a table.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub path: &'static str,
    pub class: Class,
}

const fn judged(path: &'static str, rules: &'static str) -> Field {
    Field {
        path,
        class: Class::Judged(rules),
    }
}

const fn harmless(path: &'static str, why: &'static str) -> Field {
    Field {
        path,
        class: Class::Harmless(why),
    }
}

const fn refused(path: &'static str, rule: &'static str) -> Field {
    Field {
        path,
        class: Class::Refused(rule),
    }
}

/// A process: the container's (`process.` in the spec) and an exec's, judged against the container's.
pub const PROCESS: &[Field] = &[
    harmless("args", "the container's own program"),
    harmless("commandLine", "the container's own program (Windows)"),
    harmless("cwd", "a path inside the container"),
    harmless("env", "the container's own environment"),
    harmless("terminal", "a pty of the container's own"),
    harmless("consoleSize", "the size of that pty"),
    judged(
        "capabilities",
        "capability, capability.absent; exec: exec.capability, exec.capabilities-absent",
    ),
    judged(
        "user",
        "exec: exec.user (not root when the container is not; groups within the container's). The container's own: an identity inside it, whose reach its capabilities and mounts decide",
    ),
    harmless("user.umask", "the mode of files the process creates itself"),
    harmless("user.username", "a name, for Windows; Linux runtimes use uid and gid"),
    harmless(
        "noNewPrivileges",
        "setuid programs gain at most the capabilities already judged (exec: exec.no-new-privileges)",
    ),
    judged("apparmorProfile", "process.apparmor; exec: exec.apparmor"),
    refused("selinuxLabel", "process.selinux-label"),
    judged("scheduler", "process.scheduler; exec: exec.process"),
    judged("ioPriority", "process.io-priority; exec: exec.process"),
    judged("rlimits", "process.rlimit; exec: exec.process"),
    judged("oomScoreAdj", "process.oom-score; exec: exec.process"),
    harmless(
        "execCPUAffinity",
        "CPUs of the container's own cpuset",
    ),
];

/// Resources: the spec's `linux.resources`, and an update's.
pub const RESOURCES: &[Field] = &[
    judged("devices", "device.cgroup"),
    harmless("memory", "limits within the cgroup the runtime creates"),
    harmless("cpu", "limits within the cgroup the runtime creates"),
    harmless(
        "cpu.realtimeRuntime",
        "real-time time, usable only by real-time scheduling (judged under process.scheduler)",
    ),
    harmless(
        "cpu.realtimePeriod",
        "real-time time, usable only by real-time scheduling (judged under process.scheduler)",
    ),
    harmless("pids", "a limit within the container's cgroup"),
    harmless(
        "blockIO",
        "weights and limits within the container's cgroup",
    ),
    harmless("hugepageLimits", "limits within the container's cgroup"),
    harmless(
        "network",
        "class and priority of the container's own traffic",
    ),
    harmless("rdma", "limits within the container's cgroup"),
    judged("unified", "cgroup.unified"),
];

/// The container's spec (`config.json`), but for `process.` (see [`PROCESS`]) and `linux.resources.`
/// (see [`RESOURCES`]).
pub const SPEC: &[Field] = &[
    harmless("ociVersion", "the spec's version"),
    judged(
        "root",
        "mount.rootfs (a relative path leaving the bundle), mount.host-path (an absolute one, as a host path), runtime.breakout (symlinks where the runtime expects device nodes, while it has the breakouts)",
    ),
    harmless("root.readonly", "a read-only root only narrows"),
    judged("mounts", "mount.*"),
    judged("mounts[].uidMappings", "userns.host-root, userns.host-account, userns.mapping"),
    judged("mounts[].gidMappings", "userns.host-root, userns.host-account, userns.mapping"),
    judged("process", "process.absent"),
    harmless(
        "hostname",
        "the container's own UTS namespace (whose sharing is judged under linux.namespaces)",
    ),
    harmless(
        "domainname",
        "the container's own UTS namespace (whose sharing is judged under linux.namespaces)",
    ),
    judged("hooks", "hook"),
    judged("annotations", "annotation.runtime"),
    harmless("linux", "the Linux part; each field below is classified"),
    judged("linux.devices", "device.*"),
    judged("linux.uidMappings", "userns.host-root, userns.host-account, userns.mapping"),
    judged("linux.gidMappings", "userns.host-root, userns.host-account, userns.mapping"),
    judged("linux.sysctl", "sysctl"),
    harmless("linux.resources", "see the resources table"),
    judged("linux.cgroupsPath", "cgroup.path"),
    judged("linux.namespaces", "namespace.*"),
    judged("linux.rootfsPropagation", "mount.propagation"),
    judged("linux.maskedPaths", "hardening.masked-paths"),
    judged("linux.readonlyPaths", "hardening.readonly-paths"),
    judged("linux.seccomp", "seccomp.*"),
    refused("linux.seccomp.listenerPath", "seccomp.listener"),
    refused("linux.seccomp.listenerMetadata", "seccomp.listener"),
    judged("linux.seccomp.flags", "seccomp.flags"),
    refused("linux.mountLabel", "linux.mount-label"),
    refused("linux.intelRdt", "linux.intel-rdt"),
    judged("linux.netDevices", "namespace.net-devices"),
    judged("linux.personality", "linux.personality"),
    harmless(
        "linux.memoryPolicy",
        "NUMA placement of the container's own memory, within its cpuset",
    ),
    harmless("linux.timeOffsets", "clocks of the container's own time namespace"),
    refused("solaris", "spec.platform"),
    refused("windows", "spec.platform"),
    refused("vm", "spec.platform"),
    refused("zos", "spec.platform"),
    // oci-spec reads these at the top level, where the runtime spec never had them.
    refused("uidMappings", "spec.platform"),
    refused("gidMappings", "spec.platform"),
];

/// The entry that classifies a field of the spec, whatever table holds it.
pub fn spec_class(path: &str) -> Option<&'static Field> {
    if let Some(rest) = path.strip_prefix("process.") {
        return class_of(PROCESS, rest);
    }
    if let Some(rest) = path.strip_prefix("linux.resources.") {
        return class_of(RESOURCES, rest);
    }
    class_of(SPEC, path)
}

/// The entry that classifies `path` in `table`: the longest entry that is `path` or one of its ancestors.
pub fn class_of<'a>(table: &'a [Field], path: &str) -> Option<&'a Field> {
    table
        .iter()
        .filter(|field| covers(field.path, path))
        .max_by_key(|field| field.path.len())
}

/// Whether `entry` is `path` or an ancestor of it.
fn covers(entry: &str, path: &str) -> bool {
    !entry.is_empty()
        && path.starts_with(entry)
        && matches!(
            path.as_bytes().get(entry.len()),
            None | Some(b'.') | Some(b'[')
        )
}

/// The three tables as docs/security.md prints them (a test keeps the page and this in step).
pub fn markdown() -> String {
    let mut out = String::new();
    let tables: [(&str, &str, &[Field]); 3] = [
        ("The spec (`config.json`)", "", SPEC),
        (
            "A process: the spec's `process` and an exec's",
            "process.",
            PROCESS,
        ),
        (
            "Resources: the spec's `linux.resources` and an update's",
            "linux.resources.",
            RESOURCES,
        ),
    ];
    for (title, prefix, table) in tables {
        out.push_str(&format!(
            "\n#### {title}\n\n| field | how | rule, or why it is harmless |\n|---|---|---|\n"
        ));
        for field in table {
            let (how, what) = match field.class {
                Class::Judged(rules) => ("judged", rules),
                Class::Harmless(why) => ("harmless", why),
                Class::Refused(rule) => ("refused when set", rule),
            };
            out.push_str(&format!("| `{prefix}{}` | {how} | {what} |\n", field.path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_entry_classifies_a_path() {
        let seccomp = spec_class("linux.seccomp.syscalls[].names[]").unwrap();
        assert_eq!(seccomp.path, "linux.seccomp");
        assert_eq!(
            spec_class("linux.seccomp.listenerPath").unwrap().class,
            Class::Refused("seccomp.listener")
        );
        assert!(spec_class("linuxx").is_none());
        assert_eq!(spec_class("process.user.gid").unwrap().path, "user");
        assert_eq!(spec_class("process.user.umask").unwrap().path, "user.umask");
        assert_eq!(
            spec_class("linux.resources.unified.*").unwrap().path,
            "unified"
        );
        assert_eq!(
            class_of(RESOURCES, "devices[].allow").unwrap().path,
            "devices"
        );
    }
}
