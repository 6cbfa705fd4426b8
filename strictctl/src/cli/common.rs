//! What several subcommands share: exit codes, the host's permissions (`HostArgs`), the output format.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use strict_policy::{Permissions, PolicyConfig, Source};

use super::error::Error;
use crate::setup::{load_catalog, load_config, load_permissions, ConfigSource};
use crate::sources::{SnapdError, SourceError};

/// check: the container would run (allowed or narrowed); everything else: done.
pub const EXIT_RUNS: i32 = 0;
/// check: the container would be refused.
pub const EXIT_REFUSED: i32 = 1;
/// Bad input, or an error (install and uninstall: nothing changed).
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Args)]
pub struct HostArgs {
    /// A connected plug, INTERFACE[:ATTR=VALUE[,ATTR=VALUE...]]; replaces the host's connections.
    #[arg(long = "connect", value_name = "PLUG")]
    pub connect: Vec<String>,
    /// The host snap whose default connections apply (default: the configuration's, microk8s).
    #[arg(long)]
    pub snap: Option<String>,
    /// The strict configuration file (default: /etc/containerd/strict.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Vendor profiles to use instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Format {
    Text,
    Json,
}

/// The permissions `host` describes, and where the configuration came from.
pub fn permissions(host: &HostArgs) -> Result<(Permissions, ConfigSource), Error> {
    let (mut config, source) = load_config(host.config.as_deref())?;
    if let Some(snap) = &host.snap {
        config.snap = snap.clone();
    }
    let catalog = load_catalog(&config, host.profiles.as_deref())?;
    let perms = match load_permissions(config.clone(), catalog, &host.connect) {
        // A workstation with snapd but not the node's snap: an offline check against the snap's default
        // connections, said on stderr. (The gate never does this: it fails closed.)
        Err(SourceError::Snapd {
            socket,
            source: SnapdError::Refused { kind, .. },
        }) if kind == "snap-not-found" && host.connect.is_empty() => {
            eprintln!(
                "strictctl: snap {} is not installed here (snapd at {}): checking against its default \
                 connections, as a standard install connects them (the gate refuses every container on \
                 a node without the snap)",
                config.snap,
                socket.display()
            );
            let offline = PolicyConfig {
                source: Source::Embedded,
                ..config
            };
            let catalog = load_catalog(&offline, host.profiles.as_deref())?;
            load_permissions(offline, catalog, &[])?
        }
        other => other?,
    };
    Ok((perms, source))
}
