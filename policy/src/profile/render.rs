//! Profiles as people read them: `strictctl interfaces` and the generated table in docs/interfaces.md.

use std::fmt::Write;

use super::schema::*;
use super::{Catalog, Plug};
use crate::error::Result;

/// One line per kind of grant, e.g. `paths: /dev/kvm (rw); capabilities: CAP_NET_ADMIN`.
pub fn grant_summary(grant: &GrantDef) -> String {
    let mut parts = Vec::new();
    if !grant.paths.is_empty() {
        let paths: Vec<String> = grant
            .paths
            .iter()
            .map(|p| {
                let access = if p.access == Access::Rw { "rw" } else { "ro" };
                let shared = if p.propagation == Propagation::Shared {
                    ", shared"
                } else {
                    ""
                };
                format!("`{}` ({access}{shared})", p.path)
            })
            .collect();
        parts.push(format!("paths: {}", paths.join(", ")));
    }
    if !grant.devices.is_empty() {
        let devices: Vec<String> = grant.devices.iter().map(device_summary).collect();
        parts.push(format!("devices: {}", devices.join(", ")));
    }
    if !grant.capabilities.is_empty() {
        let caps: Vec<String> = grant
            .capabilities
            .iter()
            .map(|c| capability_name(*c))
            .collect();
        parts.push(format!("capabilities: {}", caps.join(", ")));
    }
    let mut syscalls: Vec<&str> = grant.syscalls.iter().map(|s| s.0.as_str()).collect();
    let filtered: Vec<String> = grant
        .syscall_filters
        .iter()
        .flat_map(|f| f.names.iter().map(|n| format!("{} (filtered)", n.0)))
        .collect();
    syscalls.extend(filtered.iter().map(String::as_str));
    syscalls.dedup();
    if !syscalls.is_empty() {
        if syscalls.len() > 12 {
            parts.push(format!("syscalls: {} names", syscalls.len()));
        } else {
            parts.push(format!("syscalls: {}", syscalls.join(", ")));
        }
    }
    if !grant.sysctls.is_empty() {
        let sysctls: Vec<String> = grant.sysctls.iter().map(|s| format!("`{s}`")).collect();
        parts.push(format!("sysctls: {}", sysctls.join(", ")));
    }
    if grant.privileged {
        parts.push("privileged containers (if the configuration allows them)".into());
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join("; ")
    }
}

fn device_summary(d: &DeviceGrantDef) -> String {
    let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    let numbers = match (d.major, d.minor) {
        (None, None) if d.path.is_some() => "host's numbers".to_string(),
        (major, minor) => format!("{} {}:{}", d.kind, number(major), number(minor)),
    };
    match &d.path {
        Some(path) => format!("`{path}` ({numbers}, {})", d.access),
        None => format!("{numbers} ({})", d.access),
    }
}

/// The base profile as a grant table.
pub fn base_grant(catalog: &Catalog) -> GrantDef {
    let base = &catalog.base;
    GrantDef {
        paths: base.paths.clone(),
        devices: base.devices.clone(),
        capabilities: base.capabilities.clone(),
        syscalls: base.syscalls.clone(),
        syscall_filters: base.syscall_filters.clone(),
        sysctls: base.sysctls.clone(),
        privileged: false,
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The per-interface table of docs/interfaces.md.
pub fn markdown_table(catalog: &Catalog) -> String {
    let mut out = String::new();
    out.push_str(
        "| Interface | Role | Workload grant | Attributes | Withheld from workloads | Why |\n",
    );
    out.push_str("|---|---|---|---|---|---|\n");
    for (name, def) in &catalog.interfaces {
        let role = match def.role {
            Role::Workload => "workload",
            Role::Runtime => "runtime",
        };
        let attributes: Vec<String> = def
            .attributes
            .iter()
            .map(|(attr, a)| attribute_summary(attr, a))
            .collect();
        let withheld: Vec<String> = def
            .withheld
            .iter()
            .map(|(what, why)| format!("`{what}`: {why}"))
            .collect();
        let _ = writeln!(
            out,
            "| `{name}` | {role} | {} | {} | {} | {} |",
            cell(&grant_summary(&def.grant)),
            cell(&if attributes.is_empty() {
                "—".into()
            } else {
                attributes.join("<br>")
            }),
            cell(&if withheld.is_empty() {
                "—".into()
            } else {
                withheld.join("<br>")
            }),
            cell(&def.rationale),
        );
    }
    out
}

fn attribute_summary(attr: &str, a: &AttributeDef) -> String {
    match a.kind {
        AttributeType::Enum | AttributeType::Bool => {
            let values: Vec<String> = a
                .grants
                .iter()
                .map(|(value, grant)| format!("`{attr}: {value}` adds {}", grant_summary(grant)))
                .collect();
            if values.is_empty() {
                format!("`{attr}` (accepted, grants nothing)")
            } else {
                values.join("<br>")
            }
        }
        AttributeType::String => format!("`{attr}` (accepted, grants nothing)"),
        AttributeType::Paths | AttributeType::HomePaths => {
            let access = if a.access == Some(Access::Rw) {
                "read-write"
            } else {
                "read-only"
            };
            format!("`{attr}`: listed paths {access}")
        }
        AttributeType::DevicePath => format!("`{attr}`: that device node"),
    }
}

/// `strictctl interfaces`: each connected plug (or every interface) and what it grants.
pub fn connections_text(catalog: &Catalog, plugs: &[Plug], all: bool) -> Result<String> {
    let mut out = String::new();
    if all {
        for (name, def) in &catalog.interfaces {
            let connected = plugs.iter().any(|p| &p.interface == name);
            let mark = if connected {
                "connected"
            } else {
                "not connected"
            };
            let _ = writeln!(
                out,
                "{name} [{mark}]: {}",
                grant_summary(&def.grant).replace('`', "")
            );
        }
        return Ok(out);
    }
    for plug in plugs {
        let grant = catalog.interface_grant(plug)?;
        let label = if plug.name != plug.interface {
            format!("{plug} [plug {}]", plug.name)
        } else {
            plug.to_string()
        };
        let _ = writeln!(out, "{label}: {}", grant_summary(&grant).replace('`', ""));
    }
    Ok(out)
}

pub fn connections_json(catalog: &Catalog, plugs: &[Plug], all: bool) -> Result<serde_json::Value> {
    let mut entries = Vec::new();
    if all {
        for (name, def) in &catalog.interfaces {
            entries.push(serde_json::json!({
                "interface": name,
                "connected": plugs.iter().any(|p| &p.interface == name),
                "role": if def.role == Role::Runtime { "runtime" } else { "workload" },
                "grant": grant_summary(&def.grant).replace('`', ""),
            }));
        }
    } else {
        for plug in plugs {
            let grant = catalog.interface_grant(plug)?;
            entries.push(serde_json::json!({
                "plug": plug.name,
                "interface": plug.interface,
                "connect": plug.connect_syntax(),
                "grant": grant_summary(&grant).replace('`', ""),
            }));
        }
    }
    Ok(serde_json::Value::Array(entries))
}
