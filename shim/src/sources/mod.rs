//! Where the host's connected plugs come from, in the order the configuration's `source = "auto"` tries
//! them: `snapctl is-connected` inside the snap, snapd's REST API on the host, the configuration's static
//! list, the snap's embedded default. Every failure is an error, never "no plugs": the caller refuses.

pub mod snapctl;
pub mod snapd;

use std::path::PathBuf;

use strict_policy::{Catalog, Plug, PolicyConfig, Source};

/// What the sources could not do; the gate refuses every container with this message.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("snapctl: {0}")]
    Snapctl(String),
    #[error("snapd at {socket}: {message}")]
    Snapd { socket: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Policy(#[from] strict_policy::Error),
}

/// The connected plugs and a sentence saying where they came from.
#[derive(Clone, Debug)]
pub struct Connections {
    pub source: Source,
    pub plugs: Vec<Plug>,
    /// E.g. `snapd (/run/snapd.socket, snap microk8s)`, for logs, the audit trail and `strictctl`.
    pub description: String,
    /// Connected plugs left out because the profiles do not know them (they grant nothing here).
    pub ignored: Vec<String>,
}

/// What the environment offers; read once from the process, replaceable in tests.
#[derive(Clone, Debug)]
pub struct Environment {
    /// `SNAP_NAME`: set when the shim runs inside a snap.
    pub snap_name: Option<String>,
    /// The snapctl binary (looked up in PATH when bare).
    pub snapctl: PathBuf,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            snap_name: std::env::var("SNAP_NAME").ok().filter(|s| !s.is_empty()),
            snapctl: PathBuf::from("snapctl"),
        }
    }
}

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
        Source::Snapctl => snapctl::connected(config, catalog, env),
        Source::Snapd => snapd::connected(config, catalog),
        Source::Static => {
            let list = config.connections.as_ref().ok_or_else(|| {
                SourceError::Config("source \"static\" needs `connections`".into())
            })?;
            let plugs = list
                .iter()
                .map(|p| Plug::parse(p))
                .collect::<strict_policy::Result<Vec<_>>>()?;
            Ok(Connections {
                source: Source::Static,
                plugs,
                description: "the configuration's static list (`connections`)".into(),
                ignored: Vec::new(),
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
