//! `strictctl interfaces`: the connected interfaces and what each grants a workload.

use clap::{Args, ValueEnum};
use strict_policy::profile::render;

use strict_policy::runtime_advisories::unfixed;
use strict_policy::PolicyConfig;
use strict_protocol::AdmittedRuntime;

use super::common::{permissions, HostArgs, EXIT_RUNS};
use super::error::Error;
use crate::gate::features::runtime_features;

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
            println!("runtime: {}", runtime_line(&perms.config));
        }
    }
    Ok(EXIT_RUNS)
}

/// The runtime the configuration names, its version, and the known breakouts it still has (the gate
/// refuses the root filesystems that carry their preconditions; upgrading closes them).
fn runtime_line(config: &PolicyConfig) -> String {
    let runtime = AdmittedRuntime {
        binary: config.runtime.binary.clone(),
        root: config.runtime.root.join("k8s.io"),
        systemd_cgroup: config.runtime.systemd_cgroup,
    };
    let features = runtime_features(&runtime);
    let version = features.version.as_deref().unwrap_or("version unknown");
    let breakouts = unfixed(
        &runtime.binary.to_string_lossy(),
        features.version.as_deref(),
    );
    if breakouts.is_empty() {
        return format!("{} {version}", runtime.binary.display());
    }
    let ids: Vec<&str> = breakouts.iter().map(|b| b.id).collect();
    format!(
        "{} {version}: known breakouts {} (fixed in runc 1.2.8 and 1.3.3): containers whose root \
         filesystem carries their preconditions are refused; upgrade the runtime",
        runtime.binary.display(),
        ids.join(", ")
    )
}
