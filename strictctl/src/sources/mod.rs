//! Where the host's connected plugs come from, in the order the configuration's `source = "auto"` tries
//! them: `snapctl is-connected` inside the snap, snapd's REST API on the host, the configuration's static
//! list, the snap's embedded default. Every failure is an error, never "no plugs": the caller refuses.
//!
//! - `snapctl.rs`, `snapd.rs`: the two live sources, each with its own error.
//! - `connections.rs`: what a source answers; `environment.rs`: what the process offers them.
//! - `error.rs`: [`SourceError`], joining the sources' errors.

mod connections;
mod environment;
mod error;
pub mod snapctl;
pub mod snapd;

use strict_policy::{Catalog, Plug, PolicyConfig, Source};

pub use connections::Connections;
pub use environment::Environment;
pub use error::SourceError;
pub use snapctl::SnapctlError;
pub use snapd::SnapdError;

/// The source `auto` resolves to here, or the configured one.
pub fn choose(config: &PolicyConfig, env: &Environment) -> Source {
    match config.source {
        Source::Auto if env.snap_name.is_some() => Source::Snapctl,
        Source::Auto if config.snapd_socket.exists() => Source::Snapd,
        Source::Auto if config.connections.is_some() => Source::Static,
        Source::Auto => Source::Embedded,
        chosen => chosen,
    }
}

/// The host's connected plugs from the source the configuration chooses.
pub fn connected_plugs(
    config: &PolicyConfig,
    catalog: &Catalog,
    env: &Environment,
) -> Result<Connections, SourceError> {
    match choose(config, env) {
        Source::Snapctl => Ok(snapctl::connected(config, catalog, env)?),
        Source::Snapd => snapd::connected(config, catalog).map_err(|source| SourceError::Snapd {
            socket: config.snapd_socket.clone(),
            source,
        }),
        Source::Static => {
            let list = config
                .connections
                .as_ref()
                .ok_or(SourceError::StaticWithoutConnections)?;
            let plugs = list
                .iter()
                .map(|p| Plug::parse(p))
                .collect::<strict_policy::Result<Vec<_>>>()?;
            Ok(Connections {
                source: Source::Static,
                plugs,
                description: "the configuration's static list (`connections`)".into(),
                ignored: Vec::new(),
                undeclared: Vec::new(),
            })
        }
        Source::Embedded | Source::Auto => Ok(Connections {
            source: Source::Embedded,
            plugs: catalog.default_connections(&config.snap)?,
            description: format!(
                "the embedded default connections of the {} snap",
                config.snap
            ),
            ignored: Vec::new(),
            undeclared: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_the_first_source_that_applies() {
        let mut config = PolicyConfig {
            snapd_socket: "/nonexistent/snapd.socket".into(),
            ..PolicyConfig::default()
        };
        let outside = Environment {
            snap_name: None,
            snapctl: "snapctl".into(),
        };
        let inside = Environment {
            snap_name: Some("microk8s".into()),
            ..outside.clone()
        };
        assert_eq!(choose(&config, &outside), Source::Embedded);
        config.connections = Some(vec!["network".into()]);
        assert_eq!(choose(&config, &outside), Source::Static);
        let socket_dir = tempfile::tempdir().unwrap();
        let socket = socket_dir.path().join("snapd.socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        config.snapd_socket = socket;
        assert_eq!(choose(&config, &outside), Source::Snapd);
        assert_eq!(choose(&config, &inside), Source::Snapctl);
        config.source = Source::Embedded;
        assert_eq!(choose(&config, &inside), Source::Embedded);
    }
}
