//! `strictctl check`: whether a container's config.json would run under the strict runtime.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use strict_policy::{evaluate_document, parse_spec, Outcome, RealHost};

use super::common::{permissions, Format, HostArgs, EXIT_REFUSED, EXIT_RUNS};
use super::error::Error;

#[derive(Args)]
pub struct CheckArgs {
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

pub fn run(args: CheckArgs) -> Result<i32, Error> {
    let (perms, config_source) = permissions(&args.host)?;
    let bytes = if args.spec.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(Error::Stdin)?;
        bytes
    } else {
        std::fs::read(&args.spec).map_err(|source| Error::Read {
            path: args.spec.clone(),
            source,
        })?
    };
    let mut document = parse_spec(&bytes).map_err(|source| Error::Spec {
        path: args.spec.clone(),
        source,
    })?;
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
        strict_policy::write_atomically(out, &bytes)?;
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
