//! `strictctl config check`: a configuration file validated offline.

use std::path::{Path, PathBuf};

use clap::Args;
use strict_policy::{PolicyConfig, Source};

use super::common::EXIT_RUNS;
use super::error::Error;
use crate::setup::{load_catalog, load_permissions};
use crate::sources::Environment;

#[derive(Args)]
pub struct ConfigCheckArgs {
    /// The configuration file.
    file: PathBuf,
    /// Vendor profiles to check the configuration against instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// Also read the host's connections from the configured source (snapctl or snapd).
    #[arg(long)]
    connect_source: bool,
}

pub fn run(args: ConfigCheckArgs) -> Result<i32, Error> {
    let config = PolicyConfig::load(&args.file)?;
    let catalog = load_catalog(&config, args.profiles.as_deref())?;
    catalog.snap(&config.snap).map_err(|source| Error::Snap {
        path: args.file.clone(),
        source,
    })?;
    let chosen = crate::sources::choose(&config, &Environment::from_process());
    let permissions = if args.connect_source || matches!(chosen, Source::Static | Source::Embedded)
    {
        let perms = load_permissions(config.clone(), catalog, &[]).map_err(|source| {
            Error::Connections {
                path: args.file.clone(),
                source: Box::new(source),
            }
        })?;
        Some(perms)
    } else {
        None
    };
    println!("{}: valid", args.file.display());
    println!("  mode: {}", config.mode);
    println!("  snap: {}", config.snap);
    println!("  source: {} (here: {chosen})", config.source);
    match &permissions {
        Some(perms) => {
            println!("  connections: {} ({} plugs)", perms.plug_source, perms.plugs.len());
            println!("  policy digest: {}", perms.digest);
        }
        None => println!(
            "  connections: read from {chosen} when the shim starts (--connect-source reads them now)"
        ),
    }
    println!(
        "  audit: {}",
        if config.audit.path.as_os_str().is_empty() {
            "off".to_string()
        } else {
            format!(
                "{} (rotated at {}, {} kept)",
                config.audit.path.display(),
                bytesize_text(config.audit.max_size),
                config.audit.keep
            )
        }
    );
    println!("  runtime: {}", config.runtime.binary.display());
    if which(&config.runtime.binary).is_none() {
        println!(
            "  warning: key `runtime.binary`: {} is not found on this machine",
            config.runtime.binary.display()
        );
    }
    Ok(EXIT_RUNS)
}

fn bytesize_text(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// The binary as the shim would find it: a path as is, a bare name in PATH.
fn which(binary: &Path) -> Option<PathBuf> {
    if binary.components().count() > 1 {
        return binary.is_file().then(|| binary.to_owned());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    })
}
