//! Loading what a decision needs: the configuration, the vendor profiles and the host's connected plugs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strict_policy::{Catalog, Error, Permissions, Plug, PolicyConfig, Result};

/// Where the shim looks for its configuration when none is named.
pub const DEFAULT_CONFIG: &str = "/etc/containerd/strict.toml";

/// Where the configuration came from, for messages.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Defaults => write!(f, "built-in defaults ({DEFAULT_CONFIG} is absent)"),
        }
    }
}

/// The named file, or the default file when it exists, or the built-in defaults. A named file that is
/// missing is an error: a typo must not silently mean "defaults".
pub fn load_config(named: Option<&Path>) -> Result<(PolicyConfig, ConfigSource)> {
    match named {
        Some(path) => Ok((
            PolicyConfig::load(path)?,
            ConfigSource::File(path.to_owned()),
        )),
        None if Path::new(DEFAULT_CONFIG).exists() => {
            let path = PathBuf::from(DEFAULT_CONFIG);
            Ok((PolicyConfig::load(&path)?, ConfigSource::File(path)))
        }
        None => Ok((PolicyConfig::default(), ConfigSource::Defaults)),
    }
}

/// The profiles: `profiles` if given, else the configuration's `profiles_dir`, else the embedded ones.
pub fn load_catalog(config: &PolicyConfig, profiles: Option<&Path>) -> Result<Catalog> {
    match profiles.or(config.profiles_dir.as_deref()) {
        Some(dir) => Catalog::from_dir(dir),
        None => Catalog::embedded(),
    }
}

/// Host permissions from explicit plugs (`--connect`), else the configuration's static `connections`, else
/// the snap's embedded default connections.
pub fn load_permissions(
    config: PolicyConfig,
    catalog: Catalog,
    connect: &[String],
) -> Result<Permissions> {
    let catalog = Arc::new(catalog);
    let (plugs, source) =
        if let (true, Some(static_list)) = (connect.is_empty(), &config.connections) {
            let plugs = static_list
                .iter()
                .map(|p| Plug::parse(p))
                .collect::<Result<Vec<_>>>()?;
            (
                plugs,
                "the configuration's static list (`connections`)".to_string(),
            )
        } else if connect.is_empty() {
            let plugs = catalog.default_connections(&config.snap)?;
            let source = format!(
                "the embedded default connections of the {} snap",
                config.snap
            );
            (plugs, source)
        } else {
            let plugs = connect
                .iter()
                .map(|p| Plug::parse(p))
                .collect::<Result<Vec<_>>>()?;
            (plugs, "--connect".to_string())
        };
    let from_configuration = connect.is_empty() && config.connections.is_some();
    Permissions::new(catalog, config, plugs, source).map_err(|error| match error {
        // Name where the bad plug came from: the operator's file, not a command line.
        Error::Plug { plug, message } if from_configuration => Error::Profile {
            file: "the configuration".into(),
            message: format!("key `connections`: plug {plug:?}: {message}"),
        },
        other => other,
    })
}
