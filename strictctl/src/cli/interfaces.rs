//! `strictctl interfaces`: the connected interfaces and what each grants a workload.

use clap::{Args, ValueEnum};
use strict_policy::profile::render;

use super::common::{permissions, HostArgs, EXIT_RUNS};
use super::error::Error;

#[derive(Args)]
pub struct InterfacesArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Show every interface of the profiles, connected or not.
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value_t = InterfacesFormat::Text)]
    format: InterfacesFormat,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum InterfacesFormat {
    Text,
    Json,
    Markdown,
}

pub fn run(args: InterfacesArgs) -> Result<i32, Error> {
    let (perms, config_source) = permissions(&args.host)?;
    let catalog = &perms.catalog;
    match args.format {
        InterfacesFormat::Markdown => print!("{}", render::markdown_table(catalog)),
        InterfacesFormat::Json => {
            let json = render::connections_json(catalog, &perms.plugs, args.all)?;
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
                render::connections_text(catalog, &perms.plugs, args.all)?
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
