//! `strictctl audit`: what `snappy-debug scanlog` does for snaps, for the strict runtime. Refusals (and
//! would-be refusals in complain mode) grouped by rule and by the plug that would grant them, with the
//! `snap connect` command to run; seccomp denials of narrowed containers from the kernel's log, mapped to
//! their container and to the interfaces that grant the syscall.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use strict_policy::{Catalog, Plug};

use super::kernel::SeccompEvent;
use super::record::{Decision, Record};

/// Records of the trail at `path` (and its rotated files), oldest first, at or after `since`. Lines that
/// are not records are counted, not fatal: a trail cut by a full disk still reports.
pub fn read_records(
    path: &Path,
    since: Option<SystemTime>,
) -> std::io::Result<(Vec<Record>, usize)> {
    let files = super::writer::files_oldest_first(path);
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no audit trail here", path.display()),
        ));
    }
    let mut records = Vec::new();
    let mut unreadable = 0;
    for file in files {
        let reader = std::io::BufReader::new(super::writer::open(&file)?);
        for line in reader.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(&line) {
                Ok(record) => {
                    let recent = since.is_none_or(|since| {
                        humantime::parse_rfc3339_weak(&record.time).is_ok_and(|t| t >= since)
                    });
                    if recent {
                        records.push(record);
                    }
                }
                Err(_) => unreadable += 1,
            }
        }
    }
    Ok((records, unreadable))
}

/// The report, as JSON and as text.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub decisions: BTreeMap<&'static str, usize>,
    pub unreadable_lines: usize,
    /// Refusals by rule.
    pub rules: Vec<RuleGroup>,
    /// Refusals by the plug that would grant them.
    pub plugs: Vec<PlugGroup>,
    /// Containers refused because the gate could not decide, by cause.
    pub undecided: Vec<ErrorGroup>,
    /// Syscalls the kernel denied to narrowed containers.
    pub seccomp: Vec<SyscallGroup>,
    /// Why the kernel's log was not read, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_log_note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RuleGroup {
    pub rule: String,
    pub count: usize,
    pub example: String,
    pub containers: BTreeSet<String>,
    pub interfaces: BTreeSet<String>,
}

#[derive(Debug, Serialize)]
pub struct PlugGroup {
    /// The plug in `--connect` syntax.
    pub interface: String,
    pub count: usize,
    pub rules: BTreeSet<String>,
    /// `snap connect microk8s:docker-privileged`, or None when the snap declares no such plug.
    pub connect: Option<String>,
    pub snap: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorGroup {
    pub error: String,
    pub count: usize,
    pub containers: BTreeSet<String>,
}

#[derive(Debug, Serialize)]
pub struct SyscallGroup {
    pub syscall: String,
    pub count: usize,
    pub action: String,
    /// The containers (pod/container or id) the denials came from, where known.
    pub containers: BTreeSet<String>,
    pub processes: BTreeSet<String>,
    /// Interfaces whose grant includes the syscall, with the `snap connect` commands.
    pub interfaces: Vec<String>,
    pub connect: Vec<String>,
    /// Set when no interface grants it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a record's workload is: `pod-namespace/pod-name/container` or the container id.
pub fn who(record: &Record) -> String {
    match (&record.pod, &record.container_name) {
        (Some(pod), Some(name)) => format!("{}/{}/{}", pod.namespace, pod.name, name),
        (Some(pod), None) => format!("{}/{} (sandbox)", pod.namespace, pod.name),
        _ => format!("{}/{}", record.namespace, record.container_id),
    }
}

/// The snap's plug that would grant `wanted` (`INTERFACE[:ATTR=VALUE...]`): same interface, and every
/// attribute value asked for among the plug's.
pub fn snap_plug_for(catalog: &Catalog, snap: &str, wanted: &str) -> Option<String> {
    let wanted = Plug::parse(wanted).ok()?;
    let plugs = catalog.snap_plugs(snap).ok()?;
    plugs
        .into_iter()
        .filter(|(_, plug)| plug.interface == wanted.interface)
        .filter(|(_, plug)| {
            wanted.attributes.iter().all(|(key, value)| {
                plug.attributes.get(key).is_some_and(|have| {
                    let have = have.to_string();
                    value
                        .to_string()
                        .split(", ")
                        .all(|item| have.split(", ").any(|h| h == item))
                })
            })
        })
        // The plug with the fewest extra attributes is the closest match.
        .min_by_key(|(_, plug)| plug.attributes.len())
        .map(|(name, _)| name)
}

pub fn build(records: &[Record], unreadable: usize, catalog: &Catalog) -> Report {
    let mut report = Report {
        unreadable_lines: unreadable,
        ..Report::default()
    };
    let mut rules: BTreeMap<String, RuleGroup> = BTreeMap::new();
    let mut plugs: BTreeMap<(String, String), PlugGroup> = BTreeMap::new();
    let mut undecided: BTreeMap<String, ErrorGroup> = BTreeMap::new();
    for record in records {
        *report
            .decisions
            .entry(record.decision.as_str())
            .or_default() += 1;
        if record.decision == Decision::Undecided {
            let error = record.error.clone().unwrap_or_default();
            let group = undecided.entry(error.clone()).or_insert(ErrorGroup {
                error,
                count: 0,
                containers: BTreeSet::new(),
            });
            group.count += 1;
            group.containers.insert(who(record));
            continue;
        }
        if !record.decision.is_refusal() {
            continue;
        }
        for violation in &record.violations {
            let group = rules.entry(violation.rule.clone()).or_insert(RuleGroup {
                rule: violation.rule.clone(),
                count: 0,
                example: violation.message.clone(),
                containers: BTreeSet::new(),
                interfaces: BTreeSet::new(),
            });
            group.count += 1;
            group.containers.insert(who(record));
            for alternative in &violation.interfaces {
                group.interfaces.insert(alternative.clone());
                // Plugs needed together are joined by " + ": each needs connecting.
                for interface in alternative.split(" + ") {
                    let key = (record.snap.clone(), interface.to_string());
                    let plug = plugs.entry(key).or_insert_with(|| PlugGroup {
                        interface: interface.to_string(),
                        count: 0,
                        rules: BTreeSet::new(),
                        connect: snap_plug_for(catalog, &record.snap, interface)
                            .map(|plug| format!("snap connect {}:{plug}", record.snap)),
                        snap: record.snap.clone(),
                    });
                    plug.count += 1;
                    plug.rules.insert(violation.rule.clone());
                }
            }
        }
    }
    report.rules = rules.into_values().collect();
    report
        .rules
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
    report.plugs = plugs.into_values().collect();
    report
        .plugs
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.interface.cmp(&b.interface)));
    report.undecided = undecided.into_values().collect();
    report
}

/// Interfaces whose grant (or one of its attribute values) allows `syscall`.
pub fn interfaces_granting(catalog: &Catalog, syscall: &str) -> (bool, Vec<String>) {
    let in_base = catalog.base.syscalls.iter().any(|s| s.0 == syscall);
    let grants = |grant: &strict_policy::profile::schema::GrantDef| {
        grant.syscalls.iter().any(|s| s.0 == syscall)
            || grant
                .syscall_filters
                .iter()
                .any(|f| f.names.iter().any(|s| s.0 == syscall))
    };
    let mut out = Vec::new();
    for (name, def) in &catalog.interfaces {
        if grants(&def.grant) {
            out.push(name.clone());
            continue;
        }
        for (attr, attr_def) in &def.attributes {
            for (value, grant) in &attr_def.grants {
                if grants(grant) {
                    out.push(format!("{name}:{attr}={value}"));
                }
            }
        }
    }
    (in_base, out)
}

/// Why no interface grants `syscall`: the profiles that withhold it on purpose, with their reason.
fn withheld_note(catalog: &Catalog, syscall: &str) -> String {
    let withheld: Vec<String> = catalog
        .interfaces
        .iter()
        .flat_map(|(name, def)| {
            def.withheld
                .iter()
                .filter(|(what, _)| {
                    what.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .any(|word| word == syscall)
                })
                .map(move |(_, why)| format!("{name} withholds it: {why}"))
        })
        .collect();
    if withheld.is_empty() {
        "no snap interface grants it".into()
    } else {
        format!("no snap interface grants it here ({})", withheld.join("; "))
    }
}

/// Which recorded container a process belongs to: the one whose id appears in the process's cgroup
/// (`/proc/PID/cgroup`), while the process lives.
pub fn container_of(pid: u32, records: &[Record]) -> Option<String> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    records
        .iter()
        .rev()
        .find(|r| !r.container_id.is_empty() && cgroup.contains(&r.container_id))
        .map(who)
}

/// Adds the kernel's seccomp denials found in `lines` (newer than `since`) to the report.
pub fn add_seccomp(
    report: &mut Report,
    lines: impl Iterator<Item = String>,
    since: Option<SystemTime>,
    records: &[Record],
    catalog: &Catalog,
) {
    let since_epoch = since
        .and_then(|s| s.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    let snaps: BTreeSet<&str> = records.iter().map(|r| r.snap.as_str()).collect();
    let snap = snaps
        .iter()
        .next()
        .copied()
        .unwrap_or("microk8s")
        .to_string();
    let mut groups: BTreeMap<String, SyscallGroup> = BTreeMap::new();
    for line in lines {
        let Some(event) = SeccompEvent::parse(&line) else {
            continue;
        };
        if !event.denied() {
            continue;
        }
        if let (Some(since), Some(at)) = (since_epoch, event.epoch) {
            if at < since {
                continue;
            }
        }
        let name = event.syscall_name();
        let group = groups.entry(name.clone()).or_insert_with(|| {
            let (in_base, interfaces) = interfaces_granting(catalog, &name);
            let connect: Vec<String> = interfaces
                .iter()
                .filter_map(|i| snap_plug_for(catalog, &snap, i))
                .map(|plug| format!("snap connect {snap}:{plug}"))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let note = if in_base {
                Some(
                    "the base profile allows it: the container's own seccomp profile denied it"
                        .into(),
                )
            } else if interfaces.is_empty() {
                Some(withheld_note(catalog, &name))
            } else {
                None
            };
            SyscallGroup {
                syscall: name.clone(),
                count: 0,
                action: event.action(),
                containers: BTreeSet::new(),
                processes: BTreeSet::new(),
                interfaces,
                connect,
                note,
            }
        });
        group.count += 1;
        group
            .processes
            .insert(format!("{} ({})", event.comm, event.exe));
        group.containers.insert(
            container_of(event.pid, records)
                .unwrap_or_else(|| format!("unknown (pid {} has exited)", event.pid)),
        );
    }
    report.seccomp = groups.into_values().collect();
    report
        .seccomp
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.syscall.cmp(&b.syscall)));
}

pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let total: usize = report.decisions.values().sum();
    let counts: Vec<String> = report
        .decisions
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    out.push_str(&format!("{total} decisions: {}\n", counts.join(", ")));
    if report.unreadable_lines > 0 {
        out.push_str(&format!(
            "{} lines of the trail are not records (cut or corrupt) and were skipped\n",
            report.unreadable_lines
        ));
    }
    if !report.rules.is_empty() {
        out.push_str("\n= Refusals by rule =\n");
        for group in &report.rules {
            out.push_str(&format!("{} ({}x)\n", group.rule, group.count));
            out.push_str(&format!("  e.g.: {}\n", group.example));
            out.push_str(&format!(
                "  containers: {}\n",
                group
                    .containers
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if !group.interfaces.is_empty() {
                out.push_str(&format!(
                    "  granted by: {}\n",
                    group
                        .interfaces
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        }
    }
    if !report.plugs.is_empty() {
        out.push_str("\n= Suggested connections =\n");
        for group in &report.plugs {
            let fix = group.connect.clone().unwrap_or_else(|| {
                format!(
                    "(the {} snap declares no plug for {}: its snap.yaml would need one)",
                    group.snap, group.interface
                )
            });
            out.push_str(&format!(
                "{fix}\n  grants {} for {} refusal(s): {}\n",
                group.interface,
                group.count,
                group.rules.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if !report.undecided.is_empty() {
        out.push_str("\n= Refused because the gate could not decide =\n");
        for group in &report.undecided {
            out.push_str(&format!(
                "{} ({}x): {}\n",
                group.error,
                group.count,
                group
                    .containers
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !report.seccomp.is_empty() {
        out.push_str("\n= Seccomp denials (kernel log) =\n");
        for group in &report.seccomp {
            out.push_str(&format!(
                "{} ({}x, {})\n  containers: {}\n  processes: {}\n",
                group.syscall,
                group.count,
                group.action,
                group
                    .containers
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                group
                    .processes
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if !group.interfaces.is_empty() {
                out.push_str(&format!(
                    "  granted by: {}\n",
                    group.interfaces.join(" or ")
                ));
            }
            for connect in &group.connect {
                out.push_str(&format!("  suggestion: {connect}\n"));
            }
            if let Some(note) = &group.note {
                out.push_str(&format!("  note: {note}\n"));
            }
        }
    }
    if let Some(note) = &report.seccomp_log_note {
        out.push_str(&format!("\nkernel log: {note}\n"));
    }
    out
}
