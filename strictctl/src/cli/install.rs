//! `strictctl install` and `strictctl uninstall` (the work is `crate::install`'s).

use std::path::PathBuf;

use clap::Args;

use super::common::EXIT_RUNS;
use super::error::Error;
use crate::install::{Options, Report};

#[derive(Args)]
pub struct InstallArgs {
    #[command(flatten)]
    common: InstallCommon,
    /// containerd's version (MAJOR.MINOR) instead of asking `containerd --version`.
    #[arg(long, value_name = "VERSION")]
    containerd_version: Option<String>,
    /// containerd's main configuration (default: ROOT/etc/containerd/config.toml).
    #[arg(long, value_name = "FILE")]
    containerd_config: Option<PathBuf>,
    /// The containerd binary: its version, and `config dump` to check the drop-in before the restart.
    #[arg(long, value_name = "PATH", default_value = "containerd")]
    containerd: PathBuf,
    /// Install strictctl and containerd-shim-strict-v2 from this directory (default: the running
    /// strictctl's).
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
}

#[derive(Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    common: InstallCommon,
}

#[derive(Args)]
struct InstallCommon {
    /// The node's root directory; anything but / writes there and restarts nothing.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Do not restart containerd.
    #[arg(long)]
    no_restart: bool,
    /// The systemd unit to restart.
    #[arg(long, value_name = "UNIT", default_value = "containerd")]
    service: String,
}

fn options(common: InstallCommon) -> Options {
    let mut opts = Options::new(common.root);
    opts.no_restart = common.no_restart;
    opts.service = common.service;
    opts
}

fn print_report(command: &str, report: &Report) {
    for line in &report.lines {
        println!("strictctl {command}: {line}");
    }
}

pub fn install(args: InstallArgs) -> Result<i32, Error> {
    let mut opts = options(args.common);
    opts.containerd_version = args.containerd_version;
    opts.containerd_config = args.containerd_config;
    opts.containerd = args.containerd;
    opts.from = args.from;
    let report = crate::install::install(&opts)?;
    print_report("install", &report);
    Ok(EXIT_RUNS)
}

pub fn uninstall(args: UninstallArgs) -> Result<i32, Error> {
    let report = crate::install::uninstall(&options(args.common))?;
    print_report("uninstall", &report);
    Ok(EXIT_RUNS)
}
