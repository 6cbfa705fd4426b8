//! The TOML schema of `vendor-profiles/` (documented in docs/profiles.md). Values validate themselves while
//! they are parsed, so a bad value is reported by `toml` with its file, line and key.

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::runtime::{Capability, LinuxSeccompOperator};
use serde::Deserialize;

use crate::pattern::PathPattern;

/// `CAP_SYS_ADMIN`, as specs and profiles write it (oci-spec displays `SYS_ADMIN`).
pub fn capability_name(cap: Capability) -> String {
    let text = cap.to_string();
    if text.starts_with("CAP_") {
        text
    } else {
        format!("CAP_{text}")
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Ro,
    Rw,
}

impl Access {
    pub fn covers(self, wanted: Access) -> bool {
        self == Access::Rw || wanted == Access::Ro
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Ro => "read-only",
            Access::Rw => "read-write",
        })
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    #[default]
    Private,
    Shared,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
pub enum DeviceType {
    #[serde(rename = "c")]
    Char,
    #[serde(rename = "b")]
    Block,
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceType::Char => "c",
            DeviceType::Block => "b",
        })
    }
}

/// Device cgroup access, a subset of `rwm`, kept as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DeviceAccess(u8);

impl DeviceAccess {
    pub const ALL: DeviceAccess = DeviceAccess(0b111);
    pub(crate) const READ: DeviceAccess = DeviceAccess(0b001);
    pub(crate) const WRITE: DeviceAccess = DeviceAccess(0b010);
    pub(crate) const MKNOD: DeviceAccess = DeviceAccess(0b100);

    /// The access of both.
    pub(crate) const fn union(self, other: DeviceAccess) -> DeviceAccess {
        DeviceAccess(self.0 | other.0)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut bits = 0;
        for c in text.chars() {
            bits |= match c {
                'r' => 0b001,
                'w' => 0b010,
                'm' => 0b100,
                _ => return Err(format!("device access {text:?} is not a subset of \"rwm\"")),
            };
        }
        Ok(DeviceAccess(bits))
    }

    pub fn covers(self, wanted: DeviceAccess) -> bool {
        wanted.0 & !self.0 == 0
    }
}

impl fmt::Display for DeviceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(0b001, 'r'), (0b010, 'w'), (0b100, 'm')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for DeviceAccess {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DeviceAccess::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A syscall name: lower-case letters, digits and underscores. Whether an architecture knows it is decided
/// later, with libseccomp, for the architectures of each spec.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyscallName(pub String);

impl<'de> Deserialize<'de> for SyscallName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(SyscallName(name))
        } else {
            Err(serde::de::Error::custom(format!(
                "{name:?} is not a syscall name"
            )))
        }
    }
}

/// A sysctl name (`net.ipv4.ip_forward`) or a prefix (`net.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SysctlPattern {
    Exact(String),
    Prefix(String),
}

impl SysctlPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if let Some(prefix) = text.strip_suffix(".*") {
            if prefix.split('.').all(valid_part) {
                return Ok(SysctlPattern::Prefix(format!("{prefix}.")));
            }
        } else if text.split('.').all(valid_part) {
            return Ok(SysctlPattern::Exact(text.to_string()));
        }
        Err(format!("{text:?} is not a sysctl name or prefix (name.*)"))
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            SysctlPattern::Exact(exact) => exact == name,
            SysctlPattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for SysctlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysctlPattern::Exact(name) => f.write_str(name),
            SysctlPattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl<'de> Deserialize<'de> for SysctlPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SysctlPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The kinds of namespace, as the shim records them for a pod and the profiles name them.
pub use strict_protocol::NamespaceKind as HostNamespace;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathGrantDef {
    pub path: PathPattern,
    pub access: Access,
    #[serde(default)]
    pub propagation: Propagation,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceGrantDef {
    #[serde(default)]
    pub path: Option<PathPattern>,
    #[serde(rename = "type")]
    pub kind: DeviceType,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    pub access: DeviceAccess,
    /// Whether a bind mount of the host's node at this path is the same thing as the node the container
    /// gets (`/dev/null`: yes). False for nodes each container has its own instance of (its ptys, its
    /// console, its controlling terminal): the host's are the host's terminals.
    #[serde(default = "yes")]
    pub host_bind: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallArgDef {
    pub index: u8,
    pub op: LinuxSeccompOperator,
    pub value: u64,
    #[serde(default)]
    pub value_two: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallFilterDef {
    pub names: Vec<SyscallName>,
    pub args: Vec<SyscallArgDef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallErrnoDef {
    pub names: Vec<SyscallName>,
    pub errno: u32,
}

/// The grant table shared by base.toml, `[grant]` and attribute values.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDef {
    #[serde(default)]
    pub paths: Vec<PathGrantDef>,
    #[serde(default)]
    pub devices: Vec<DeviceGrantDef>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub syscalls: Vec<SyscallName>,
    #[serde(default)]
    pub syscall_filters: Vec<SyscallFilterDef>,
    #[serde(default)]
    pub sysctls: Vec<SysctlPattern>,
    #[serde(default)]
    pub privileged: bool,
}

impl GrantDef {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
            && self.devices.is_empty()
            && self.capabilities.is_empty()
            && self.syscalls.is_empty()
            && self.syscall_filters.is_empty()
            && self.sysctls.is_empty()
            && !self.privileged
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseDef {
    pub description: String,
    #[serde(default)]
    pub paths: Vec<PathGrantDef>,
    #[serde(default)]
    pub devices: Vec<DeviceGrantDef>,
    pub capabilities: Vec<Capability>,
    pub runtime_default_capabilities: Vec<Capability>,
    pub syscalls: Vec<SyscallName>,
    #[serde(default)]
    pub syscall_filters: Vec<SyscallFilterDef>,
    #[serde(default)]
    pub syscall_errno: Vec<SyscallErrnoDef>,
    pub sysctls: Vec<SysctlPattern>,
    pub mount_types: Vec<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub host_namespaces: BTreeMap<HostNamespace, Vec<Vec<String>>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Workload,
    Runtime,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AttributeType {
    Enum,
    Bool,
    String,
    Paths,
    HomePaths,
    DevicePath,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub grants: BTreeMap<String, GrantDef>,
    #[serde(default)]
    pub access: Option<Access>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub device_type: Option<DeviceType>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceDef {
    pub interface: String,
    pub summary: String,
    pub snapd: String,
    pub role: Role,
    pub rationale: String,
    #[serde(default)]
    pub grant: GrantDef,
    #[serde(default)]
    pub withheld: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeDef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlugDef {
    pub interface: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, toml::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapDefaults {
    pub connected: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapDef {
    pub snap: String,
    pub description: String,
    pub plugs: BTreeMap<String, PlugDef>,
    pub default: SnapDefaults,
}
