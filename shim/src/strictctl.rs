//! `strictctl check`, `strictctl interfaces`, `strictctl config check`, `strictctl audit`, and
//! `strictctl install` / `strictctl uninstall` (in `install.rs`).
//!
//! Exit status: 0 the container would run (allowed or narrowed), 1 refused, 2 bad input. install and
//! uninstall: 0 done (or nothing to do), 2 an error (and nothing changed).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strict_policy::profile::render;
use strict_policy::{
    evaluate_document, parse_spec, Outcome, Permissions, PolicyConfig, RealHost, Source,
};

use crate::audit::report;
use crate::sources::Environment;

use crate::setup::{load_catalog, load_config, load_permissions, ConfigSource};

/// The operator CLI's file name; the shim runs it as its policy gate (`strictctl gate`).
pub const BINARY: &str = "strictctl";

const EXIT_RUNS: i32 = 0;
const EXIT_REFUSED: i32 = 1;
const EXIT_BAD_INPUT: i32 = 2;

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
    /// Install the shim on this node (or under --root): binaries, policy files, the containerd drop-in
    /// for the handlers strict and strict-complain; then restart containerd. Safe to run twice.
    Install(InstallArgs),
    /// Remove exactly what install added (policy files only when unchanged), restoring containerd's
    /// configuration; then restart containerd.
    Uninstall(UninstallArgs),
    /// The shim's policy gate: answers one request of containerd-shim-strict-v2 on stdin (not for
    /// operators; see shim/src/v2/gate_process.rs).
    #[command(hide = true)]
    Gate(GateArgs),
}

#[derive(Args)]
struct GateArgs {
    /// The containerd namespace of the shim that asks.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The request is an exec: load the configuration only, not the profiles and connections.
    #[arg(long)]
    exec: bool,
}

#[derive(Args)]
struct InstallArgs {
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
struct UninstallArgs {
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: every key known, every value valid; exits 2 naming the key if not.
    Check(ConfigCheckArgs),
}

#[derive(Args)]
struct ConfigCheckArgs {
    /// The configuration file.
    file: PathBuf,
    /// Vendor profiles to check the configuration against instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// Also read the host's connections from the configured source (snapctl or snapd).
    #[arg(long)]
    connect_source: bool,
}

#[derive(Args)]
struct AuditArgs {
    /// The audit trail (default: the configuration's `audit.path`). Rotated files are read too.
    file: Option<PathBuf>,
    /// Only decisions of the last DURATION (`1h`, `30m`, `2days`).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The kernel's seccomp log: `auto` (dmesg, else the journal), `none`, `dmesg`, `journal`, or a file
    /// (dmesg output, `journalctl` output or auditd's audit.log).
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    seccomp_log: String,
    /// The strict configuration file (for the default trail and profiles).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Vendor profiles to use instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
}

#[derive(Args)]
struct HostArgs {
    /// A connected plug, INTERFACE[:ATTR=VALUE[,ATTR=VALUE...]]; replaces the host's connections.
    #[arg(long = "connect", value_name = "PLUG")]
    connect: Vec<String>,
    /// The host snap whose default connections apply (default: the configuration's, microk8s).
    #[arg(long)]
    snap: Option<String>,
    /// The strict configuration file (default: /etc/containerd/strict.toml when it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Vendor profiles to use instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// The OCI spec (config.json); `-` reads standard input.
    spec: PathBuf,
    #[command(flatten)]
    host: HostArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the spec as the shim would hand it to runc (only when the container would run).
    #[arg(long, value_name = "OUT")]
    write_spec: Option<PathBuf>,
}

#[derive(Args)]
struct InterfacesArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Show every interface of the profiles, connected or not.
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value_t = InterfacesFormat::Text)]
    format: InterfacesFormat,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum InterfacesFormat {
    Text,
    Json,
    Markdown,
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
        Command::Check(args) => check(args),
        Command::Interfaces(args) => interfaces(args),
        Command::Config(ConfigCommand::Check(args)) => config_check(args),
        Command::Audit(args) => audit(args),
        Command::Install(args) => install(args),
        Command::Uninstall(args) => uninstall(args),
        Command::Gate(args) => Ok(crate::v2::gate::serve(&args.namespace, args.exec)),
    };
    result.unwrap_or_else(|message| {
        eprintln!("strictctl: {message}");
        EXIT_BAD_INPUT
    })
}

fn install_options(common: InstallCommon) -> crate::install::Options {
    let mut opts = crate::install::Options::new(common.root);
    opts.no_restart = common.no_restart;
    opts.service = common.service;
    opts
}

fn print_report(command: &str, report: &crate::install::Report) {
    for line in &report.lines {
        println!("strictctl {command}: {line}");
    }
}

fn install(args: InstallArgs) -> Result<i32, String> {
    let mut opts = install_options(args.common);
    opts.containerd_version = args.containerd_version;
    opts.containerd_config = args.containerd_config;
    opts.containerd = args.containerd;
    opts.from = args.from;
    let report = crate::install::install(&opts)?;
    print_report("install", &report);
    Ok(EXIT_RUNS)
}

fn uninstall(args: UninstallArgs) -> Result<i32, String> {
    let report = crate::install::uninstall(&install_options(args.common))?;
    print_report("uninstall", &report);
    Ok(EXIT_RUNS)
}

fn permissions(host: &HostArgs) -> Result<(Permissions, ConfigSource), String> {
    let (mut config, source) = load_config(host.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(snap) = &host.snap {
        config.snap = snap.clone();
    }
    let catalog = load_catalog(&config, host.profiles.as_deref()).map_err(|e| e.to_string())?;
    let perms = load_permissions(config, catalog, &host.connect).map_err(|e| e.to_string())?;
    Ok((perms, source))
}

fn check(args: CheckArgs) -> Result<i32, String> {
    let (perms, config_source) = permissions(&args.host)?;
    let bytes = if args.spec.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("standard input: {e}"))?;
        bytes
    } else {
        std::fs::read(&args.spec).map_err(|e| format!("{}: {e}", args.spec.display()))?
    };
    let mut document = parse_spec(&bytes).map_err(|e| format!("{}: {e}", args.spec.display()))?;
    let verdict = evaluate_document(&mut document, &perms, &RealHost);

    match args.format {
        Format::Json => println!("{}", verdict.to_json()),
        Format::Text => {
            println!("verdict: {}", outcome_name(verdict.outcome()));
            if let Some(message) = verdict.refusal_message() {
                println!("message: {}", message.lines().next().unwrap_or_default());
            }
            if !verdict.violations.is_empty() {
                println!("refused:");
                for v in &verdict.violations {
                    println!("  - {}", v.sentence());
                    println!("    rule {}, field {}, value {}", v.rule, v.field, v.value);
                }
            }
            if !verdict.narrowed.is_empty() {
                println!("narrowed:");
                for n in &verdict.narrowed {
                    println!("  - {} [{}]: {} -> {}", n.field, n.rule, n.from, n.to);
                }
            }
            println!(
                "permissions: {} ({} plugs); configuration: {config_source}",
                perms.plug_source,
                perms.plugs.len()
            );
        }
    }

    if !verdict.runs() {
        return Ok(EXIT_REFUSED);
    }
    if let Some(out) = &args.write_spec {
        let bytes = strict_policy::document::to_json(&document.spec);
        strict_policy::write_atomically(out, &bytes).map_err(|e| e.to_string())?;
    }
    Ok(EXIT_RUNS)
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Allowed => "allowed",
        Outcome::Narrowed => "narrowed",
        Outcome::Refused => "refused",
    }
}

fn interfaces(args: InterfacesArgs) -> Result<i32, String> {
    let (perms, config_source) = permissions(&args.host)?;
    let catalog = &perms.catalog;
    match args.format {
        InterfacesFormat::Markdown => print!("{}", render::markdown_table(catalog)),
        InterfacesFormat::Json => {
            let json = render::connections_json(catalog, &perms.plugs, args.all)
                .map_err(|e| e.to_string())?;
            println!("{json}");
        }
        InterfacesFormat::Text => {
            println!("snap: {}", perms.config.snap);
            println!("connections: {}", perms.plug_source);
            println!("configuration: {config_source}");
            println!(
                "base: {}",
                render::grant_summary(&render::base_grant(catalog))
            );
            print!(
                "{}",
                render::connections_text(catalog, &perms.plugs, args.all)
                    .map_err(|e| e.to_string())?
            );
            let namespaces = perms.host_namespaces_granted();
            println!(
                "host namespaces: {}",
                if namespaces.is_empty() {
                    "none".into()
                } else {
                    namespaces.join(", ")
                }
            );
            println!(
                "privileged containers: {}",
                if perms.privileged_allowed() {
                    "allowed"
                } else {
                    "refused"
                }
            );
        }
    }
    Ok(EXIT_RUNS)
}

fn config_check(args: ConfigCheckArgs) -> Result<i32, String> {
    let config = PolicyConfig::load(&args.file).map_err(|e| e.to_string())?;
    let catalog = load_catalog(&config, args.profiles.as_deref()).map_err(|e| e.to_string())?;
    catalog
        .snap(&config.snap)
        .map_err(|e| format!("{}: key `snap`: {e}", args.file.display()))?;
    let chosen = crate::sources::choose(&config, &Environment::from_process());
    let permissions = if args.connect_source || matches!(chosen, Source::Static | Source::Embedded)
    {
        let perms = crate::setup::load_permissions(config.clone(), catalog, &[])
            .map_err(|e| format!("{}: {e}", args.file.display()))?;
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

fn audit(args: AuditArgs) -> Result<i32, String> {
    let since = match &args.since {
        Some(text) => {
            let duration = humantime::parse_duration(text)
                .map_err(|e| format!("--since {text:?}: {e} (e.g. 1h, 30m, 2days)"))?;
            Some(SystemTime::now() - duration)
        }
        None => None,
    };
    let (config, _) = load_config(args.config.as_deref()).map_err(|e| e.to_string())?;
    let catalog = load_catalog(&config, args.profiles.as_deref()).map_err(|e| e.to_string())?;
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| config.audit.path.clone());
    let (records, unreadable) =
        report::read_records(&file, since).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut built = report::build(&records, unreadable, &catalog);
    match seccomp_log_lines(&args.seccomp_log) {
        Ok(Some(lines)) => {
            report::add_seccomp(&mut built, lines.into_iter(), since, &records, &catalog)
        }
        Ok(None) => {}
        Err(note) => built.seccomp_log_note = Some(note),
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&built).map_err(|e| e.to_string())?
        ),
        Format::Text => print!("{}", report::render_text(&built)),
    }
    Ok(EXIT_RUNS)
}

/// The kernel log's lines from `source`; Ok(None) for `none`; Err(note) when it cannot be read.
fn seccomp_log_lines(source: &str) -> Result<Option<Vec<String>>, String> {
    let run = |program: &str, args: &[&str]| -> Result<Vec<String>, String> {
        let output = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{program} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    };
    let dmesg = || run("dmesg", &[]);
    let journal = || {
        run(
            "journalctl",
            &[
                "--no-pager",
                "-o",
                "short",
                "-b",
                "_TRANSPORT=kernel",
                "_TRANSPORT=audit",
            ],
        )
    };
    match source {
        "none" => Ok(None),
        "dmesg" => dmesg().map(Some),
        "journal" => journal().map(Some),
        "auto" => match dmesg() {
            Ok(lines) => Ok(Some(lines)),
            Err(first) => journal()
                .map(Some)
                .map_err(|second| format!("not read ({first}; {second})")),
        },
        file => std::fs::read_to_string(file)
            .map(|text| Some(text.lines().map(str::to_string).collect()))
            .map_err(|e| format!("{file}: {e}")),
    }
}
