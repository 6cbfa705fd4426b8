//! What several subcommands share: exit codes, the host's permissions (`HostArgs`), the output format.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use strict_policy::Permissions;

use super::error::Error;
use crate::setup::{load_catalog, load_config, load_permissions, ConfigSource};

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
    let perms = load_permissions(config, catalog, &host.connect)?;
    Ok((perms, source))
}
