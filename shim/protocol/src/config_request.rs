//! Which configuration a container asks for. containerd's runtime options name it (`ConfigPath`, or the
//! whole `options` table as TOML); the `start` action hands them to the long-running shim in its
//! environment, and each gate process reads them from there. Only `strictctl` reads the file itself.

use std::path::PathBuf;

/// Where the configuration is when nothing names one.
pub const DEFAULT_CONFIG: &str = "/etc/containerd/strict.toml";

/// The configuration file, overridable for tests and unusual installs.
pub const CONFIG_ENV: &str = "STRICT_CONFIG";

/// The runtime options' `config_path`, from `start` to the long-running shim and its gates.
pub const PATH_ENV: &str = "STRICT_RUNTIME_CONFIG_PATH";
/// The runtime options' `config_body`, likewise.
pub const BODY_ENV: &str = "STRICT_RUNTIME_CONFIG_BODY";

/// How messages name a configuration that came as the runtime options' body.
pub const RUNTIME_OPTIONS_BODY: &str =
    "containerd's runtime options (the runtime's `options` table)";

/// Which configuration a container asked for, most specific first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConfigRequest {
    /// `config_path` of containerd's runtime options (the `ConfigPath` key of the runtime's options).
    pub runtime_path: Option<PathBuf>,
    /// `config_body` of containerd's runtime options.
    pub runtime_body: Option<String>,
    /// `STRICT_CONFIG` in the environment, or `--config`.
    pub named: Option<PathBuf>,
}

impl ConfigRequest {
    /// The request of this process's environment: the runtime options `start` passed on, and
    /// `STRICT_CONFIG`.
    pub fn from_env() -> ConfigRequest {
        ConfigRequest {
            runtime_path: std::env::var_os(PATH_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            runtime_body: std::env::var(BODY_ENV).ok().filter(|v| !v.is_empty()),
            named: std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    /// The variables that carry the runtime options' part of the request from `start` to the shim.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(path) = &self.runtime_path {
            vars.push((PATH_ENV, path.display().to_string()));
        }
        if let Some(body) = &self.runtime_body {
            vars.push((BODY_ENV, body.clone()));
        }
        vars
    }

    /// Whether the runtime options name a configuration at all.
    pub fn names_one(&self) -> bool {
        self.runtime_path.is_some() || self.runtime_body.is_some()
    }
}

impl std::fmt::Display for ConfigRequest {
    /// The file (or text) the request names, as strictctl looks for it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.runtime_path, &self.runtime_body, &self.named) {
            (Some(path), _, _) | (None, None, Some(path)) => write!(f, "{}", path.display()),
            (None, Some(_), _) => f.write_str(RUNTIME_OPTIONS_BODY),
            (None, None, None) => f.write_str(DEFAULT_CONFIG),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_the_most_specific_source() {
        let mut request = ConfigRequest {
            named: Some("/etc/x.toml".into()),
            ..ConfigRequest::default()
        };
        assert_eq!(request.to_string(), "/etc/x.toml");
        assert!(!request.names_one());
        request.runtime_body = Some("mode = \"complain\"".into());
        assert_eq!(request.to_string(), RUNTIME_OPTIONS_BODY);
        request.runtime_path = Some("/etc/y.toml".into());
        assert_eq!(request.to_string(), "/etc/y.toml");
        assert_eq!(ConfigRequest::default().to_string(), DEFAULT_CONFIG);
        assert_eq!(
            request.to_env(),
            vec![
                (PATH_ENV, "/etc/y.toml".to_string()),
                (BODY_ENV, "mode = \"complain\"".to_string())
            ]
        );
    }
}
