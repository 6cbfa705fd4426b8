//! `strictctl check` and `strictctl interfaces`.
//!
//! Exit status: 0 the container would run (allowed or narrowed), 1 refused, 2 bad input.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strict_policy::profile::render;
use strict_policy::{evaluate_document, parse_spec, Outcome, Permissions, RealHost};

use crate::setup::{load_catalog, load_config, load_permissions, ConfigSource};

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
    };
    result.unwrap_or_else(|message| {
        eprintln!("strictctl: {message}");
        EXIT_BAD_INPUT
    })
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
