//! The kernel's seccomp log: audit records of type 1326 (`SECCOMP`), written for narrowed containers whose
//! filter carries `SECCOMP_FILTER_FLAG_LOG`. The same record appears in three dresses:
//! - `dmesg`: `audit: type=1326 audit(1700000000.123:45): auid=... pid=1234 comm="unshare" ... arch=c000003e syscall=272 compat=0 ip=0x... code=0x50000`
//! - the journal: `kernel: audit: type=1326 ...` (kernel transport) or `audit[1234]: SECCOMP auid=...`
//!   (audit transport: no `type=` and no `audit(...)` stamp);
//! - auditd's `/var/log/audit/audit.log`: `type=SECCOMP msg=audit(1700000000.123:45): ...`.

use std::collections::BTreeMap;

/// One seccomp record.
#[derive(Clone, Debug, PartialEq)]
pub struct SeccompEvent {
    /// Seconds since the epoch, from `audit(SECONDS.MILLIS:SERIAL)`.
    pub epoch: Option<f64>,
    pub pid: u32,
    pub comm: String,
    pub exe: String,
    /// The audit architecture (`c000003e` is x86_64).
    pub arch: u32,
    pub syscall: i64,
    /// The filter's return value: action in the high 16 bits, data (the errno) in the low 16.
    pub code: u32,
}

/// The filter actions, as `code=` shows them.
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;

impl SeccompEvent {
    /// Parses one line of any of the three dresses; None for lines that are not seccomp records.
    pub fn parse(line: &str) -> Option<SeccompEvent> {
        let start = line
            .find("type=1326 ")
            .or_else(|| line.find("type=SECCOMP "))
            .or_else(|| {
                // The journal's audit transport: `audit[PID]: SECCOMP auid=...`.
                let at = line.find("]: SECCOMP ")?;
                line[..at].rfind("audit[").map(|_| at + 3)
            })?;
        // auditd's enriched format separates its additions with GS (0x1d).
        let record = line[start..].replace('\u{1d}', " ");
        let record = record.as_str();
        let fields = fields(record);
        let epoch = record
            .find("audit(")
            .and_then(|i| record[i + 6..].split(':').next())
            .and_then(|t| t.parse::<f64>().ok());
        Some(SeccompEvent {
            epoch,
            pid: fields.get("pid")?.parse().ok()?,
            comm: fields.get("comm").cloned().unwrap_or_default(),
            exe: fields.get("exe").cloned().unwrap_or_default(),
            arch: u32::from_str_radix(fields.get("arch")?, 16).ok()?,
            syscall: fields.get("syscall")?.parse().ok()?,
            code: {
                let hex = fields.get("code")?.trim_start_matches("0x");
                let digits = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
                u32::from_str_radix(&hex[..digits.min(8)], 16).ok()?
            },
        })
    }

    /// The syscall was not allowed (logged only, or allowed, do not count).
    pub fn denied(&self) -> bool {
        !matches!(
            self.code & SECCOMP_RET_ACTION_FULL,
            SECCOMP_RET_LOG | SECCOMP_RET_ALLOW
        )
    }

    /// `errno 1`, `kill`, ... for reports.
    pub fn action(&self) -> String {
        match self.code & SECCOMP_RET_ACTION_FULL {
            // The kernel logs the action only: the errno is not in the record.
            SECCOMP_RET_ERRNO => "errno".into(),
            SECCOMP_RET_KILL_PROCESS => "kill process".into(),
            SECCOMP_RET_KILL_THREAD => "kill thread".into(),
            SECCOMP_RET_TRAP => "trap".into(),
            SECCOMP_RET_USER_NOTIF => "user notification".into(),
            SECCOMP_RET_TRACE => "trace".into(),
            SECCOMP_RET_LOG => "log".into(),
            SECCOMP_RET_ALLOW => "allow".into(),
            other => format!("action {other:#x}"),
        }
    }

    /// The syscall's name for its architecture, else `syscall N`.
    pub fn syscall_name(&self) -> String {
        let arch = match self.arch {
            0xc000_003e => Some(libseccomp::ScmpArch::X8664),
            0x4000_0003 => Some(libseccomp::ScmpArch::X86),
            0xc000_00b7 => Some(libseccomp::ScmpArch::Aarch64),
            0x4000_0028 => Some(libseccomp::ScmpArch::Arm),
            0xc000_00f3 => Some(libseccomp::ScmpArch::Riscv64),
            0xc000_0015 => Some(libseccomp::ScmpArch::Ppc64Le),
            0x8000_0016 => Some(libseccomp::ScmpArch::S390X),
            _ => None,
        };
        arch.and_then(|arch| {
            i32::try_from(self.syscall).ok().and_then(|nr| {
                libseccomp::ScmpSyscall::from(nr)
                    .get_name_by_arch(arch)
                    .ok()
            })
        })
        .unwrap_or_else(|| format!("syscall {}", self.syscall))
    }
}

/// `key=value` and `key="quoted value"` pairs. auditd hex-encodes values with spaces (`comm=6D7920617070`).
fn fields(record: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = record;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq].rfind(' ').map(|i| i + 1).unwrap_or(0);
        let key = rest[key_start..eq].to_string();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let raw = &after[..end];
            let value = if matches!(key.as_str(), "comm" | "exe") {
                unhex(raw).unwrap_or_else(|| raw.to_string())
            } else {
                raw.to_string()
            };
            (value, &after[end..])
        };
        out.entry(key).or_insert(value);
        rest = next;
    }
    out
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DMESG: &str = "[ 5412.123456] audit: type=1326 audit(1764150000.123:45): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=4242 comm=\"unshare\" exe=\"/bin/busybox\" sig=0 arch=c000003e syscall=272 compat=0 ip=0x4a1f2b code=0x50000";
    const AUDITD: &str = "type=SECCOMP msg=audit(1764150000.456:46): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=4243 comm=6D7920617070 exe=\"/usr/bin/my app\" sig=0 arch=c000003e syscall=165 compat=0 ip=0x7f00 code=0x50000\u{1d}AUID=\"unset\" UID=\"root\" ARCH=x86_64 SYSCALL=mount";
    const JOURNAL_AUDIT: &str = "Nov 26 10:00:02 node audit[4245]: SECCOMP auid=4294967295 uid=0 gid=0 ses=4294967295 subj==cri-containerd.apparmor.d (enforce) pid=4245 comm=\"sleep\" exe=\"/bin/sleep\" sig=0 arch=c000003e syscall=12 compat=0 ip=0x4dd50c code=0x50000";
    const JOURNAL: &str = "Nov 26 10:00:00 node kernel: audit: type=1326 audit(1764150001.000:47): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=4244 comm=\"ls\" exe=\"/bin/ls\" sig=0 arch=c000003e syscall=0 compat=0 ip=0x1 code=0x7ffc0000";

    #[test]
    fn the_three_dresses_parse() {
        let dmesg = SeccompEvent::parse(DMESG).unwrap();
        assert_eq!(dmesg.pid, 4242);
        assert_eq!(dmesg.comm, "unshare");
        assert_eq!(dmesg.syscall_name(), "unshare");
        assert_eq!(dmesg.action(), "errno");
        assert!(dmesg.denied());
        assert_eq!(dmesg.epoch, Some(1764150000.123));

        let auditd = SeccompEvent::parse(AUDITD).unwrap();
        assert_eq!(auditd.comm, "my app");
        assert_eq!(auditd.exe, "/usr/bin/my app");
        assert_eq!(auditd.syscall_name(), "mount");

        let journal = SeccompEvent::parse(JOURNAL).unwrap();
        assert!(!journal.denied(), "SECCOMP_RET_LOG is not a denial");

        let journal_audit = SeccompEvent::parse(JOURNAL_AUDIT).unwrap();
        assert_eq!(journal_audit.pid, 4245);
        assert_eq!(journal_audit.syscall_name(), "brk");
        assert_eq!(journal_audit.epoch, None);

        assert_eq!(
            SeccompEvent::parse("audit: type=1400 apparmor=\"DENIED\""),
            None
        );
        assert_eq!(SeccompEvent::parse("garbage type=1326 pid=x"), None);
    }
}
