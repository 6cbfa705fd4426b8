//! `strictctl`'s command line: the parse and the dispatch; one file per subcommand, each with its
//! arguments and its `run`:
//!
//! - `check.rs`: `strictctl check`; `interfaces.rs`: `strictctl interfaces`;
//! - `config_check.rs`: `strictctl config check`; `audit.rs`: `strictctl audit`;
//! - `install.rs`: `strictctl install` and `strictctl uninstall`;
//! - `status.rs`: `strictctl status` and `strictctl reconcile` (running containers against the connections
//!   now);
//! - `gate.rs`: the hidden `strictctl gate`, the shim's policy gate;
//! - `common.rs`: exit codes, the host's permissions and the output format they share; `error.rs`: the
//!   error a subcommand fails with.
//!
//! Exit status: 0 the container would run (allowed or narrowed), 1 refused, 2 bad input. install and
//! uninstall: 0 done (or nothing to do), 2 an error (and nothing changed).

mod audit;
mod check;
mod common;
mod config_check;
mod error;
mod gate;
mod install;
mod interfaces;
mod status;

use clap::{Parser, Subcommand};

pub use common::{EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_RUNS};
pub use error::Error;

use audit::AuditArgs;
use check::CheckArgs;
use config_check::ConfigCheckArgs;
use gate::GateArgs;
use install::{InstallArgs, UninstallArgs};
use interfaces::InterfacesArgs;
use status::{ReconcileArgs, StatusArgs};

#[derive(Parser)]
#[command(
    name = "strictctl",
    version,
    about = "Operate the strict containerd shim"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide whether a container's config.json would run under the strict runtime.
    Check(CheckArgs),
    /// Show the connected interfaces and what each grants a workload.
    Interfaces(InterfacesArgs),
    /// Validate configuration files offline.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Report the audit trail: refusals by rule and by the plug that would grant them, and the kernel's
    /// seccomp denials of narrowed containers, with the `snap connect` commands to run.
    Audit(AuditArgs),
    /// List the running containers strict admitted that hold what the connections no longer grant (a
    /// plug was disconnected since), with what each holds.
    Status(StatusArgs),
    /// Act on those containers as the configuration's `on_revoke` says: record them, take revoked devices
    /// out of their device cgroup, or stop them so their pods restart under the grants now. For the
    /// snap's disconnect-plug hooks (or a timer).
    Reconcile(ReconcileArgs),
    /// Install the shim on this node (or under --root): binaries, policy files, the containerd drop-in
    /// for the handlers strict and strict-complain; then restart containerd. Safe to run twice.
    Install(InstallArgs),
    /// Remove exactly what install added (policy files only when unchanged), restoring containerd's
    /// configuration; then restart containerd.
    Uninstall(UninstallArgs),
    /// The shim's policy gate: answers one request of containerd-shim-strict-v2 on stdin (not for
    /// operators; see shim/src/gate_client.rs).
    #[command(hide = true)]
    Gate(GateArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: every key known, every value valid; exits 2 naming the key if not.
    Check(ConfigCheckArgs),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_RUNS
            };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Interfaces(args) => interfaces::run(args),
        Command::Config(ConfigCommand::Check(args)) => config_check::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Status(args) => status::status(args),
        Command::Reconcile(args) => status::reconcile_all(args),
        Command::Install(args) => install::install(args),
        Command::Uninstall(args) => install::uninstall(args),
        Command::Gate(args) => Ok(gate::run(args)),
    };
    result.unwrap_or_else(|error| {
        eprintln!("strictctl: {error}");
        EXIT_BAD_INPUT
    })
}
