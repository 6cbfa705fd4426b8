//! Loading what a decision needs: the configuration, the vendor profiles and the host's connected plugs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strict_policy::{Catalog, Error, Permissions, Plug, PolicyConfig, Result, Source};

use strict_protocol::config_request::{DEFAULT_CONFIG, RUNTIME_OPTIONS_BODY};
use strict_protocol::ConfigRequest;

use crate::sources::{self, Connections, Environment, SourceError};

/// Where the configuration came from, for messages and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    /// The TOML of the runtime's `options` table, which containerd's CRI sends as `config_body` when the
    /// table has no `ConfigPath`.
    RuntimeOptionsBody,
    Defaults,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::RuntimeOptionsBody => f.write_str(RUNTIME_OPTIONS_BODY),
            ConfigSource::Defaults => write!(f, "built-in defaults ({DEFAULT_CONFIG} is absent)"),
        }
    }
}

/// The configuration a request names: runtime options' path, else their body, else the named file, else
/// /etc/containerd/strict.toml when it exists, else the built-in defaults. A named file that is missing
/// is an error: a typo must not silently mean "defaults".
pub fn resolve_config(request: &ConfigRequest) -> Result<(PolicyConfig, ConfigSource)> {
    if let Some(path) = request.runtime_path.as_deref().or(request.named.as_deref()) {
        return Ok((
            PolicyConfig::load(path)?,
            ConfigSource::File(path.to_owned()),
        ));
    }
    if let Some(body) = &request.runtime_body {
        let source = ConfigSource::RuntimeOptionsBody;
        return Ok((PolicyConfig::parse(&source.to_string(), body)?, source));
    }
    if Path::new(DEFAULT_CONFIG).exists() {
        let path = PathBuf::from(DEFAULT_CONFIG);
        return Ok((PolicyConfig::load(&path)?, ConfigSource::File(path)));
    }
    Ok((PolicyConfig::default(), ConfigSource::Defaults))
}

/// The named file, or the default file when it exists, or the built-in defaults.
pub fn load_config(named: Option<&Path>) -> Result<(PolicyConfig, ConfigSource)> {
    resolve_config(&ConfigRequest {
        named: named.map(Path::to_owned),
        ..ConfigRequest::default()
    })
}

/// The profiles: `profiles` if given, else the configuration's `profiles_dir`, else the embedded ones.
pub fn load_catalog(config: &PolicyConfig, profiles: Option<&Path>) -> Result<Catalog> {
    match profiles.or(config.profiles_dir.as_deref()) {
        Some(dir) => Catalog::from_dir(dir),
        None => Catalog::embedded(),
    }
}

/// Host permissions from explicit plugs (`--connect`), else from the source the configuration chooses
/// (snapctl, snapd, the static list or the embedded default).
pub fn load_permissions(
    config: PolicyConfig,
    catalog: Catalog,
    connect: &[String],
) -> std::result::Result<Permissions, SourceError> {
    load_permissions_from(config, catalog, connect, &Environment::from_process())
}

pub fn load_permissions_from(
    config: PolicyConfig,
    catalog: Catalog,
    connect: &[String],
    env: &Environment,
) -> std::result::Result<Permissions, SourceError> {
    let connections = if connect.is_empty() {
        sources::connected_plugs(&config, &catalog, env)?
    } else {
        Connections {
            source: Source::Static,
            plugs: connect
                .iter()
                .map(|p| Plug::parse(p))
                .collect::<Result<Vec<_>>>()?,
            description: "--connect".to_string(),
            ignored: Vec::new(),
            undeclared: Vec::new(),
        }
    };
    let from_configuration = connect.is_empty() && connections.source == Source::Static;
    let description = connections.summary();
    Permissions::new(Arc::new(catalog), config, connections.plugs, description).map_err(|error| {
        match error {
            // Name where the bad plug came from: the operator's file, not a command line.
            Error::Plug { plug, message } if from_configuration => {
                SourceError::Policy(Error::Profile {
                    file: "the configuration".into(),
                    message: format!("key `connections`: plug {plug:?}: {message}"),
                })
            }
            other => SourceError::Policy(other),
        }
    })
}

/// The host's permissions from the configuration's source as they will be once `disconnecting` (plug
/// names) are disconnected: a snap's `disconnect-plug-<plug>` hook runs before snapd disconnects the plug,
/// so the source still reports it connected.
pub fn load_permissions_disconnecting(
    config: PolicyConfig,
    catalog: Catalog,
    disconnecting: &[String],
) -> std::result::Result<Permissions, SourceError> {
    if disconnecting.is_empty() {
        return load_permissions(config, catalog, &[]);
    }
    let mut connections =
        sources::connected_plugs(&config, &catalog, &Environment::from_process())?;
    connections
        .plugs
        .retain(|plug| !disconnecting.contains(&plug.name));
    let description = format!(
        "{}; being disconnected: {}",
        connections.summary(),
        disconnecting.join(", ")
    );
    Permissions::new(Arc::new(catalog), config, connections.plugs, description)
        .map_err(SourceError::Policy)
}
