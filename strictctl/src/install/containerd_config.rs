//! containerd's configuration: the drop-in registering the handlers, where it goes ([`Layout`]), the
//! main configuration read and its `imports` array edited in place (with `toml_edit`, so formatting and
//! comments survive; every other byte stays as it was), and the result checked with
//! `containerd config dump`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use strict_protocol::names::RUNTIME_TYPE;
use toml_edit::DocumentMut;

use super::containerd_dirs::ContainerdDirs;
use super::handlers::{handler_names, HANDLERS};
use super::options::{Options, Report};
use super::paths::ETC_DIR;

/// What is wrong with containerd's configuration, or with editing it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{}: containerd's configuration does not exist. Without one containerd reads no \
         drop-in at all; create it (`containerd config default > {}`, then restart \
         containerd) or name the one containerd uses with --containerd-config",
        .path.display(),
        .path.display()
    )]
    Missing { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not UTF-8 text: {source}", .path.display())]
    NotUtf8 {
        path: PathBuf,
        #[source]
        source: std::string::FromUtf8Error,
    },
    #[error("{}: not valid TOML, left as it is: {}", .path.display(), one_line(.source))]
    NotToml {
        path: PathBuf,
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    #[error("{}: `version` is not an integer", .path.display())]
    VersionNotInteger { path: PathBuf },
    #[error(
        "{}: configuration version {version}{}: migrate it first (`containerd config migrate`)",
        .path.display(),
        if *.no_version_key { " (no `version` key)" } else { "" }
    )]
    TooOld {
        path: PathBuf,
        version: i64,
        no_version_key: bool,
    },
    #[error("{}: `imports` is not an array of strings", .path.display())]
    ImportsNotStrings { path: PathBuf },
    /// The text no longer parses while being edited.
    #[error("{}: {source}", .path.display())]
    Unparsable {
        path: PathBuf,
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    #[error("{}: {why}", .path.display())]
    CannotEdit { path: PathBuf, why: &'static str },
    #[error(
        "{}: not valid TOML: {source}; the imports entry {entry} cannot be taken out",
        .path.display()
    )]
    TakeOutUnparsable {
        path: PathBuf,
        entry: String,
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    #[error(
        "{}: cannot locate `imports` in the text; the imports entry {entry} cannot be taken out",
        .path.display()
    )]
    TakeOutUnlocated { path: PathBuf, entry: String },
    #[error(
        "`{} --config {} config dump` failed: {stderr}",
        .containerd.display(),
        .config.display()
    )]
    DumpFailed {
        containerd: PathBuf,
        config: PathBuf,
        stderr: String,
    },
    #[error(
        "`{} --config {} config dump` printed no TOML: {source}",
        .containerd.display(),
        .config.display()
    )]
    DumpNotToml {
        containerd: PathBuf,
        config: PathBuf,
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    #[error(
        "`{} --config {} config dump` does not show the {handler} handler with runtime_type {RUNTIME_TYPE}",
        .containerd.display(),
        .config.display()
    )]
    DumpWithoutHandler {
        containerd: PathBuf,
        config: PathBuf,
        handler: &'static str,
    },
}

/// A TOML error on one line.
fn one_line(error: &toml_edit::TomlError) -> String {
    error.to_string().trim_end().replace('\n', " | ")
}

/// The drop-in registering both handlers for containerd 2.x (config version 3): `runtime_path` is the
/// shim, each handler's `ConfigPath` its policy file under `root`.
pub fn drop_in(root: &Path, shim_path: &Path) -> String {
    drop_in_for_version(root, shim_path, 3)
}

/// The drop-in in the main configuration's version: containerd 2.3 refuses a drop-in whose version is
/// higher than the main file's, and migrates a version 2 one (`io.containerd.grpc.v1.cri`) itself.
pub fn drop_in_for_version(root: &Path, shim_path: &Path, config_version: i64) -> String {
    let plugin = if config_version >= 3 {
        "io.containerd.cri.v1.runtime"
    } else {
        "io.containerd.grpc.v1.cri"
    };
    let mut text = format!(
        "# The strict runtime's handlers, written by `strictctl install`; `strictctl uninstall` removes this\n\
         # file. Not for editing: install rewrites it. Each handler's policy is the file its ConfigPath names.\n\
         version = {}\n",
        config_version.min(3)
    );
    for handler in HANDLERS {
        let table = format!("plugins.\"{plugin}\".containerd.runtimes.{}", handler.name);
        let policy = root.join(ETC_DIR).join(handler.policy_file);
        text.push_str(&format!(
            "\n[{table}]\n  runtime_type = {}\n  runtime_path = {}\n  privileged_without_host_devices = true\n  [{table}.options]\n    ConfigPath = {}\n",
            toml_string(RUNTIME_TYPE),
            toml_string(&shim_path.to_string_lossy()),
            toml_string(&policy.to_string_lossy()),
        ));
    }
    text
}

fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string()
}

/// Where the drop-in goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `ROOT/etc/containerd/conf.d/strict-runtimes.toml`, imported by the main configuration already.
    #[serde(rename = "conf.d")]
    ConfD,
    /// `ROOT/etc/containerd/strict-runtimes.toml` and an entry in the main configuration's `imports`.
    #[serde(rename = "imports")]
    Imports,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::ConfD => "conf.d",
            Layout::Imports => "imports",
        })
    }
}

impl Layout {
    /// Where the drop-in goes, in words.
    pub fn placement(self) -> &'static str {
        match self {
            Layout::ConfD => "in conf.d (imported by the main configuration)",
            Layout::Imports => "beside the main configuration, with an `imports` entry",
        }
    }
}

/// containerd's main configuration, as read.
pub struct MainConfig {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    text: String,
    pub version: i64,
    pub imports: Vec<String>,
}

/// A top-level key of a TOML text: the document for editing, where the key and its value are in the text.
struct Located {
    doc: DocumentMut,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
}

fn locate(text: &str, key: &str) -> Result<Located, toml_edit::TomlError> {
    let parsed = toml_edit::Document::parse(text)?;
    let table = parsed.as_table();
    let key_span = table.key(key).and_then(|k| k.span());
    let value_span = table
        .get(key)
        .and_then(|item| item.as_value())
        .and_then(|v| v.span());
    Ok(Located {
        doc: parsed.into_mut(),
        key: key_span,
        value: value_span,
    })
}

/// `text` with `range` replaced by `with`.
fn splice(text: &str, range: std::ops::Range<usize>, with: &str) -> String {
    format!("{}{with}{}", &text[..range.start], &text[range.end..])
}

/// An array as it is written between its brackets (its own leading and trailing blanks left out).
fn array_text(array: &toml_edit::Array) -> String {
    let mut array = array.clone();
    array.decor_mut().clear();
    array.to_string()
}

impl MainConfig {
    pub fn read(path: &Path) -> Result<MainConfig, ConfigError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing {
                    path: path.to_owned(),
                })
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let text = String::from_utf8(bytes.clone()).map_err(|source| ConfigError::NotUtf8 {
            path: path.to_owned(),
            source,
        })?;
        let doc: DocumentMut = text.parse().map_err(|source| ConfigError::NotToml {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let version = match doc.get("version") {
            None => 1,
            Some(item) => item
                .as_integer()
                .ok_or_else(|| ConfigError::VersionNotInteger {
                    path: path.to_owned(),
                })?,
        };
        if version < 2 {
            return Err(ConfigError::TooOld {
                path: path.to_owned(),
                version,
                no_version_key: doc.get("version").is_none(),
            });
        }
        let imports = match doc.get("imports") {
            None => Vec::new(),
            Some(item) => item
                .as_array()
                .and_then(|array| {
                    array
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| ConfigError::ImportsNotStrings {
                    path: path.to_owned(),
                })?,
        };
        Ok(MainConfig {
            path: path.to_owned(),
            bytes,
            text,
            version,
            imports,
        })
    }

    /// The cgroup driver of the CRI's default runtime handler (`default_runtime_name`, else `runc`): its
    /// `options.SystemdCgroup`, as kubeadm's recipe sets it in this file (version 2's CRI plugin or
    /// version 3's runtime plugin). None when the file does not say.
    pub fn runc_systemd_cgroup(&self) -> Option<bool> {
        let doc: DocumentMut = self.text.parse().ok()?;
        let plugins = doc.get("plugins")?;
        ["io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"]
            .iter()
            .filter_map(|plugin| plugins.get(plugin)?.get("containerd"))
            .find_map(|containerd| {
                let handler = containerd
                    .get("default_runtime_name")
                    .and_then(|name| name.as_str())
                    .unwrap_or("runc");
                containerd
                    .get("runtimes")?
                    .get(handler)?
                    .get("options")?
                    .get("SystemdCgroup")?
                    .as_bool()
            })
    }

    /// Where this containerd keeps its root and state, as the file sets them (None: containerd's
    /// defaults, which the policy's node layout knows).
    pub fn containerd_dirs(&self) -> ContainerdDirs {
        let doc: Option<DocumentMut> = self.text.parse().ok();
        let dir = |key: &str| {
            doc.as_ref()?
                .get(key)?
                .as_str()
                .filter(|path| Path::new(path).is_absolute())
                .map(PathBuf::from)
        };
        ContainerdDirs {
            root: dir("root"),
            state: dir("state"),
        }
    }

    /// Whether containerd, reading this file, also reads `file`: an `imports` entry names it or is a
    /// glob matching it (relative entries are relative to this file's directory, as containerd has it).
    pub fn imports_file(&self, file: &Path) -> bool {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        self.imports.iter().any(|entry| {
            let resolved = dir.join(entry);
            let resolved = resolved.to_string_lossy();
            if resolved.contains('*') {
                glob::Pattern::new(&resolved).is_ok_and(|pattern| {
                    pattern.matches_path_with(
                        file,
                        glob::MatchOptions {
                            case_sensitive: true,
                            require_literal_separator: true,
                            require_literal_leading_dot: true,
                        },
                    )
                })
            } else {
                Path::new(resolved.as_ref()) == file
            }
        })
    }

    /// The file with `entry` appended to `imports`, and whether the key was created. Only the `imports`
    /// array (or a new line after `version`) is written: every other byte stays as it was.
    pub fn with_import(&self, entry: &str) -> Result<(Vec<u8>, bool), ConfigError> {
        let text = &self.text;
        let unparsable = |source: toml_edit::TomlError| ConfigError::Unparsable {
            path: self.path.clone(),
            source: Box::new(source),
        };
        let cannot = |why| ConfigError::CannotEdit {
            path: self.path.clone(),
            why,
        };
        let imports = locate(text, "imports").map_err(unparsable)?;
        if let Some(item) = imports.doc.get("imports") {
            let mut array = item
                .as_array()
                .cloned()
                .ok_or_else(|| cannot("`imports` is not an array"))?;
            let span = imports
                .value
                .ok_or_else(|| cannot("cannot locate `imports` in the text"))?;
            // The new entry laid out like the last one (on its own line in a multi-line array).
            let prefix = array
                .iter()
                .last()
                .and_then(|last| last.decor().prefix())
                .and_then(|p| p.as_str())
                .filter(|p| p.contains('\n'))
                .map(str::to_string);
            let mut value = toml_edit::Value::from(entry);
            if let Some(prefix) = prefix {
                value.decor_mut().set_prefix(prefix);
            }
            // A multi-line array with a trailing comma: a line of its own before the closing bracket,
            // so a comment after the last entry stays with it.
            let trailing = array.trailing().as_str().unwrap_or("");
            if array.trailing_comma() && trailing.contains('\n') {
                let close = span.end - 1;
                let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
                let indent = value
                    .decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .and_then(|p| p.rsplit('\n').next())
                    .unwrap_or("    ")
                    .to_string();
                let line = format!("{indent}{},\n", toml_string(entry));
                return Ok((
                    splice(text, line_start..line_start, &line).into_bytes(),
                    false,
                ));
            }
            array.push_formatted(value);
            return Ok((splice(text, span, &array_text(&array)).into_bytes(), false));
        }
        // A new line after the one holding `version`.
        let version = locate(text, "version")
            .map_err(unparsable)?
            .value
            .ok_or_else(|| cannot("cannot locate `version` in the text"))?;
        let at = text[version.end..]
            .find('\n')
            .map(|i| version.end + i + 1)
            .unwrap_or(text.len());
        let line = format!(
            "{}imports = [{}]\n",
            if at == text.len() && !text.ends_with('\n') {
                "\n"
            } else {
                ""
            },
            toml_string(entry)
        );
        Ok((splice(text, at..at, &line).into_bytes(), true))
    }
}

/// The lines of `text` that hold nothing but `entry` in the `imports` array (and a comma), in order;
/// None when the entry also appears elsewhere in a line.
fn entry_lines(text: &str, entry: &str) -> Option<Vec<std::ops::Range<usize>>> {
    let parsed = toml_edit::Document::parse(text).ok()?;
    let array = parsed.as_table().get("imports")?.as_array()?;
    let mut lines = Vec::new();
    for value in array.iter().filter(|v| v.as_str() == Some(entry)) {
        let span = value.span()?;
        let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[span.end..].find('\n').map(|i| span.end + i + 1)?;
        let rest = text[span.end..end].trim();
        if !text[start..span.start].trim().is_empty() || !(rest.is_empty() || rest == ",") {
            return None;
        }
        lines.push(start..end);
    }
    Some(lines)
}

/// The text of the configuration at `path` with `entry` taken out of `imports` (and the key's line too
/// when install created the key and nothing else is left in it); None when the entry is not there.
/// Every other byte stays.
pub fn without_import(
    path: &Path,
    text: &str,
    entry: &str,
    created_key: bool,
) -> Option<Result<String, ConfigError>> {
    let located = match locate(text, "imports") {
        Ok(located) => located,
        Err(source) => {
            return Some(Err(ConfigError::TakeOutUnparsable {
                path: path.to_owned(),
                entry: entry.to_string(),
                source: Box::new(source),
            }))
        }
    };
    let mut array = located.doc.get("imports")?.as_array()?.clone();
    let before = array.len();
    array.retain(|v| v.as_str() != Some(entry));
    if array.len() == before {
        return None;
    }
    let (Some(key), Some(value)) = (located.key, located.value) else {
        return Some(Err(ConfigError::TakeOutUnlocated {
            path: path.to_owned(),
            entry: entry.to_string(),
        }));
    };
    // An entry alone on its line goes with its line, so the comments around it stay where they are.
    if let Some(line) = entry_lines(text, entry) {
        if !line.is_empty() {
            return Some(Ok(line
                .iter()
                .rev()
                .fold(text.to_string(), |text, range| {
                    splice(&text, range.clone(), "")
                })));
        }
    }
    if created_key && array.is_empty() {
        let start = text[..key.start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let end = text[value.end..]
            .find('\n')
            .map(|i| value.end + i + 1)
            .unwrap_or(text.len());
        return Some(Ok(splice(text, start..end, "")));
    }
    Some(Ok(splice(text, value, &array_text(&array))))
}

/// The file a configuration path names, through symbolic links (a linked config.toml stays a link).
pub fn through_link(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// `containerd --config MAIN config dump` must show both handlers; skipped when containerd cannot run.
pub fn check_with_containerd(
    opts: &Options,
    config_path: &Path,
    report: &mut Report,
) -> Result<(), ConfigError> {
    let output = match Command::new(&opts.containerd)
        .arg("--config")
        .arg(config_path)
        .args(["config", "dump"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            report.say(format!(
                "not checked with `{} config dump`: {e}",
                opts.containerd.display()
            ));
            return Ok(());
        }
    };
    if !output.status.success() {
        return Err(ConfigError::DumpFailed {
            containerd: opts.containerd.clone(),
            config: config_path.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let dump: DocumentMut = String::from_utf8_lossy(&output.stdout)
        .parse()
        .map_err(|source| ConfigError::DumpNotToml {
            containerd: opts.containerd.clone(),
            config: config_path.to_owned(),
            source: Box::new(source),
        })?;
    for handler in HANDLERS {
        let runtime_type = dump
            .get("plugins")
            .and_then(|p| p.get("io.containerd.cri.v1.runtime"))
            .and_then(|p| p.get("containerd"))
            .and_then(|p| p.get("runtimes"))
            .and_then(|p| p.get(handler.name))
            .and_then(|p| p.get("runtime_type"))
            .and_then(|v| v.as_str());
        if runtime_type != Some(RUNTIME_TYPE) {
            return Err(ConfigError::DumpWithoutHandler {
                containerd: opts.containerd.clone(),
                config: config_path.to_owned(),
                handler: handler.name,
            });
        }
    }
    report.say(format!(
        "checked: `{} config dump` shows the handlers {}",
        opts.containerd.display(),
        handler_names()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main_config(text: &str) -> MainConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, text).unwrap();
        let mut config = MainConfig::read(&path).unwrap();
        config.path = PathBuf::from("/etc/containerd/config.toml");
        config
    }

    fn without_import(
        text: &str,
        entry: &str,
        created_key: bool,
    ) -> Option<Result<String, ConfigError>> {
        super::without_import(
            Path::new("/etc/containerd/config.toml"),
            text,
            entry,
            created_key,
        )
    }

    #[test]
    fn conf_d_counts_only_when_imported() {
        let target = Path::new("/etc/containerd/conf.d/strict-runtimes.toml");
        let imported = |imports: &str| {
            main_config(&format!("version = 3\nimports = {imports}\n")).imports_file(target)
        };
        assert!(imported(r#"["/etc/containerd/conf.d/*.toml"]"#));
        assert!(
            imported(r#"["conf.d/*.toml"]"#),
            "relative to the main file"
        );
        assert!(imported(
            r#"["/etc/containerd/conf.d/strict-runtimes.toml"]"#
        ));
        assert!(!imported(r#"["/etc/containerd/conf.d/*.conf"]"#));
        assert!(!imported(r#"["/etc/containerd/*.toml"]"#), "* stops at /");
        assert!(!imported("[]"));
        assert!(!main_config("version = 3\n").imports_file(target));
    }

    #[test]
    fn an_import_is_added_in_the_array_style_and_taken_out_again() {
        let text = "version = 3\nimports = [\n  \"/a/*.toml\",\n]\n";
        let config = main_config(text);
        let (bytes, created) = config.with_import("/b.toml").unwrap();
        let added = String::from_utf8(bytes).unwrap();
        assert!(!created);
        assert_eq!(
            added,
            "version = 3\nimports = [\n  \"/a/*.toml\",\n  \"/b.toml\",\n]\n"
        );
        assert_eq!(
            without_import(&added, "/b.toml", false).unwrap().unwrap(),
            text
        );
        assert!(without_import(text, "/b.toml", false).is_none());

        // A comment after the last entry stays with it; the new entry gets a line of its own.
        let text = "version = 3\nimports = [\n  \"/a\",  # mirrors\n]\n";
        let (bytes, _) = main_config(text).with_import("/b.toml").unwrap();
        let added = String::from_utf8(bytes).unwrap();
        assert_eq!(
            added,
            "version = 3\nimports = [\n  \"/a\",  # mirrors\n  \"/b.toml\",\n]\n"
        );
        assert_eq!(
            without_import(&added, "/b.toml", false).unwrap().unwrap(),
            text
        );

        // Mixed quoting in table headers, which a whole-document rewrite would unify: untouched.
        let text =
            "version = 2 # two\nimports = ['/a']\n[p.\"x.y\".a]\nk = 1\n[p.'x.y'.b]\nk = 'v'\n";
        let (bytes, _) = main_config(text).with_import("/b.toml").unwrap();
        let added = String::from_utf8(bytes).unwrap();
        assert_eq!(added, text.replace("['/a']", "['/a', \"/b.toml\"]"));
        assert_eq!(
            without_import(&added, "/b.toml", false).unwrap().unwrap(),
            text
        );

        let config = main_config("version = 3\n# comment\n[x]\ny = 1\n");
        let (bytes, created) = config.with_import("/b.toml").unwrap();
        let added = String::from_utf8(bytes).unwrap();
        assert!(created);
        assert_eq!(
            added,
            "version = 3\nimports = [\"/b.toml\"]\n# comment\n[x]\ny = 1\n"
        );
        assert_eq!(
            without_import(&added, "/b.toml", true).unwrap().unwrap(),
            "version = 3\n# comment\n[x]\ny = 1\n"
        );
    }

    #[test]
    fn bad_main_configurations_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let err = |text: &str| {
            fs::write(&path, text).unwrap();
            MainConfig::read(&path).err().unwrap().to_string()
        };
        assert!(err("version = 3\n[plugins\n").contains("not valid TOML"));
        assert!(err("[plugins]\n").contains("no `version` key"));
        assert!(err("version = 3\nimports = \"/x\"\n").contains("`imports` is not an array"));
        let missing = MainConfig::read(&dir.path().join("none.toml"))
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }

    #[test]
    fn the_runc_handlers_cgroup_driver_is_read_in_both_versions() {
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'runc'\n\
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n";
        assert_eq!(main_config(v3).runc_systemd_cgroup(), Some(true));
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = false\n";
        assert_eq!(main_config(v2).runc_systemd_cgroup(), Some(false));
        // Another default handler is the one that counts.
        let other = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'crun'\n\
                     [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]\n  SystemdCgroup = true\n\
                     [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = false\n";
        assert_eq!(main_config(other).runc_systemd_cgroup(), Some(true));
        assert_eq!(main_config("version = 2\n").runc_systemd_cgroup(), None);
    }

    #[test]
    fn containerd_dirs_outside_the_defaults_become_a_node_table() {
        let moved = main_config(
            "version = 3\nroot = '/data/containerd'\nstate = \"/run/k8s-containerd\"\n",
        );
        let dirs = moved.containerd_dirs();
        assert_eq!(dirs.root.as_deref(), Some(Path::new("/data/containerd")));
        let table = dirs.node_table().unwrap();
        let parsed: toml::Table = toml::from_str(&table).unwrap();
        let roots = parsed["node"]["containerd_roots"].as_array().unwrap();
        assert!(roots.contains(&"/data/containerd".into()), "{table}");
        assert!(roots.contains(&"/var/lib/containerd".into()), "{table}");
        let states = parsed["node"]["containerd_states"].as_array().unwrap();
        assert!(states.contains(&"/run/k8s-containerd".into()), "{table}");
        let layout: strict_policy::config::NodeLayout = toml::from_str::<toml::Table>(&table)
            .unwrap()["node"]
            .clone()
            .try_into()
            .unwrap();
        assert!(dirs.covered_by(&layout));
        assert!(!dirs.covered_by(&strict_policy::config::NodeLayout::default()));
        // containerd's defaults, or nothing said: nothing to add.
        let usual =
            main_config("version = 3\nroot = '/var/lib/containerd'\nstate = '/run/containerd'\n");
        assert_eq!(usual.containerd_dirs().node_table(), None);
        assert_eq!(
            main_config("version = 2\n").containerd_dirs(),
            ContainerdDirs::default()
        );
    }

    #[test]
    fn drop_in_names_both_handlers() {
        let text = drop_in(
            Path::new("/"),
            Path::new("/usr/local/bin/containerd-shim-strict-v2"),
        );
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc["version"].as_integer(), Some(3));
        let runtimes = &doc["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"];
        for (handler, policy) in [
            ("strict", "/etc/containerd/strict.toml"),
            ("strict-complain", "/etc/containerd/strict-complain.toml"),
        ] {
            let table = &runtimes[handler];
            assert_eq!(table["runtime_type"].as_str(), Some(RUNTIME_TYPE));
            assert_eq!(
                table["runtime_path"].as_str(),
                Some("/usr/local/bin/containerd-shim-strict-v2")
            );
            assert_eq!(
                table["privileged_without_host_devices"].as_bool(),
                Some(true)
            );
            assert_eq!(table["options"]["ConfigPath"].as_str(), Some(policy));
        }
        let v2: DocumentMut = drop_in_for_version(Path::new("/"), Path::new("/s"), 2)
            .parse()
            .unwrap();
        assert_eq!(
            v2["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["strict"]
                ["runtime_type"]
                .as_str(),
            Some(RUNTIME_TYPE)
        );
    }
}
