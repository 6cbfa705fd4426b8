//! `strictctl install` and `strictctl uninstall`: put the shim on a node and register its two handlers,
//! `strict` and `strict-complain`, with containerd.
//!
//! Everything happens under a root directory (`/` on a node; a temporary directory in tests): the
//! binaries go to `ROOT/usr/local/bin`, the policy files to `ROOT/etc/containerd` (only when absent), and a
//! drop-in registers the handlers. Where the drop-in goes depends on containerd's main configuration:
//!
//! - when it already imports `/etc/containerd/conf.d/*.toml` (what `containerd config default` writes
//!   since containerd 2.2), into that directory, and the main configuration is left alone;
//! - otherwise next to it (`/etc/containerd/strict-runtimes.toml`), with an entry added to the main
//!   configuration's `imports` (edited with `toml_edit`, so its formatting and comments survive).
//!
//! containerd loads `conf.d` only through such an `imports` line: its loader follows the `imports` of the
//! files it reads, and the built-in default (`imports = ["/etc/containerd/conf.d/*.toml"]` since 2.2) is
//! only what `containerd config default` prints. A 2.2 node whose configuration predates 2.2 therefore
//! gets the `imports` entry too.
//!
//! What install wrote is recorded, with SHA-256 digests, in `ROOT/var/lib/strict/install.json`; uninstall
//! removes exactly that: the binaries, the drop-in, the `imports` entry (the main configuration comes back
//! byte for byte when nobody edited it since), the policy files only when unchanged, and the directories
//! install created. Every change is journaled and undone when a later step fails, so an error leaves the
//! node as it was. Running install twice changes nothing the second time.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml_edit::DocumentMut;

/// The node label the installer sets when the node is ready, and the RuntimeClasses select.
pub const NODE_LABEL: &str = "strict.snapcraft.io/runtime";
/// The value of [`NODE_LABEL`] on a ready node.
pub const NODE_LABEL_VALUE: &str = "ready";
/// The shim's runtime type (`io.containerd.strict.v2` → `containerd-shim-strict-v2`).
pub const RUNTIME_TYPE: &str = "io.containerd.strict.v2";
pub const SHIM_BINARY: &str = "containerd-shim-strict-v2";
pub const CTL_BINARY: &str = "strictctl";
/// The drop-in's file name, in `conf.d` or next to the main configuration.
pub const DROP_IN_FILE: &str = "strict-runtimes.toml";
/// Below the root: where the binaries go.
pub const BIN_DIR: &str = "usr/local/bin";
/// Below the root: the policy files and, without `conf.d`, the drop-in.
pub const ETC_DIR: &str = "etc/containerd";
/// Below the root: containerd 2.2's drop-in directory.
pub const CONF_D_DIR: &str = "etc/containerd/conf.d";
/// Below the root: containerd's main configuration, unless `--containerd-config` names another.
pub const MAIN_CONFIG: &str = "etc/containerd/config.toml";
/// Below the root: the manifest of what install wrote, and the main configuration as it was.
pub const STATE_DIR: &str = "var/lib/strict";
pub const MANIFEST_FILE: &str = "install.json";
const CONFIG_BACKUP_FILE: &str = "containerd-config.before-install.toml";

/// A containerd runtime handler the installer registers, with its policy file.
#[derive(Clone, Copy, Debug)]
pub struct Handler {
    /// The CRI handler name (and RuntimeClass name).
    pub name: &'static str,
    /// Its policy file, in `ROOT/etc/containerd`.
    pub policy_file: &'static str,
    /// The policy's `mode`.
    pub mode: &'static str,
}

pub const HANDLERS: [Handler; 2] = [
    Handler {
        name: "strict",
        policy_file: "strict.toml",
        mode: "enforce",
    },
    Handler {
        name: "strict-complain",
        policy_file: "strict-complain.toml",
        mode: "complain",
    },
];

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

/// A handler's policy file as install writes it when there is none.
pub fn policy_text(handler: &Handler, path: &Path) -> String {
    format!(
        "# The strict runtime's policy for the `{name}` handler (RuntimeClass `{name}`), written by\n\
         # `strictctl install`. Edit it freely: install never overwrites it, and uninstall removes it only\n\
         # while it is unchanged. Every key: docs/operations.md. Check a change before pods use it:\n\
         #   strictctl config check {path}\n\
         # A pod's shim reads this file when it starts: a change applies to pods created afterwards.\n\
         \n\
         # Whose plugs apply (vendor-profiles/snaps/<snap>.toml).\n\
         snap = \"microk8s\"\n\
         # enforce: refuse and narrow; complain: run everything, record what would have been refused.\n\
         mode = \"{mode}\"\n\
         # The name in the audit trail for containers started without CRI (ctr).\n\
         handler = \"{name}\"\n\
         # Connected plugs: snapctl inside the snap, else snapd, else the snap's default connections.\n\
         source = \"auto\"\n",
        name = handler.name,
        mode = handler.mode,
        path = path.display(),
    )
}

fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string()
}

/// containerd's `major.minor`, from `containerd --version` or `--containerd-version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerdVersion {
    pub major: u32,
    pub minor: u32,
}

impl ContainerdVersion {
    /// The first `[v]MAJOR.MINOR[.PATCH...]` word: `2.1`, `v2.2.0`, or a whole `containerd --version` line
    /// (`containerd github.com/containerd/containerd/v2 2.1.9+unknown`,
    /// `containerd containerd.io 1.7.27 05044ec...`).
    pub fn parse(text: &str) -> Option<ContainerdVersion> {
        text.split_whitespace().find_map(|word| {
            let word = word.strip_prefix('v').unwrap_or(word);
            let mut parts = word.split('.');
            let major = parts.next()?;
            let minor = parts.next()?;
            let minor_digits =
                minor.len() - minor.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let minor = &minor[..minor_digits];
            if major.is_empty() || minor.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(ContainerdVersion {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
            })
        })
    }
}

impl std::fmt::Display for ContainerdVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
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
    fn placement(self) -> &'static str {
        match self {
            Layout::ConfD => "in conf.d (imported by the main configuration)",
            Layout::Imports => "beside the main configuration, with an `imports` entry",
        }
    }
}

/// What `strictctl install` and `strictctl uninstall` were asked.
#[derive(Clone, Debug)]
pub struct Options {
    /// The node's root: `/`, or a directory holding one (nothing is restarted then).
    pub root: PathBuf,
    /// containerd's main configuration (default `ROOT/etc/containerd/config.toml`).
    pub containerd_config: Option<PathBuf>,
    /// containerd's version, instead of asking `containerd --version`.
    pub containerd_version: Option<String>,
    /// The containerd binary: its version, and `config dump` to check the result before a restart.
    pub containerd: PathBuf,
    /// The directory holding `strictctl` and `containerd-shim-strict-v2` to install (default: the
    /// running strictctl's).
    pub from: Option<PathBuf>,
    /// Leave containerd running as it is.
    pub no_restart: bool,
    /// The systemd unit to restart.
    pub service: String,
}

impl Options {
    pub fn new(root: impl Into<PathBuf>) -> Options {
        Options {
            root: root.into(),
            containerd_config: None,
            containerd_version: None,
            containerd: PathBuf::from("containerd"),
            from: None,
            no_restart: false,
            service: "containerd".into(),
        }
    }
}

/// What was done, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
}

impl Report {
    fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

/// The record of an installation, `ROOT/var/lib/strict/install.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    /// "written by strictctl install: uninstall reads this file".
    note: String,
    layout: Layout,
    containerd_config: PathBuf,
    /// Every file install wrote, as it wrote it.
    files: Vec<Installed>,
    /// The entry install added to the main configuration's `imports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    import: Option<ImportEntry>,
    /// Directories install created, parents first.
    dirs: Vec<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Installed {
    path: PathBuf,
    role: Role,
    sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Role {
    Binary,
    Policy,
    DropIn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ImportEntry {
    entry: String,
    /// The main configuration had no `imports` key before.
    created_key: bool,
    /// The main configuration as it was before install.
    backup: PathBuf,
    /// The main configuration as install left it: when it still is, uninstall puts the backup back.
    sha256_after: String,
}

impl Manifest {
    fn read(path: &Path) -> Result<Option<Manifest>, String> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                format!(
                    "{}: not a manifest strictctl install wrote ({e}); move it away to start afresh",
                    path.display()
                )
            }),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn record(&mut self, path: &Path, role: Role, bytes: &[u8]) {
        let sha256 = sha256(bytes);
        match self.files.iter_mut().find(|f| f.path == path) {
            Some(file) => file.sha256 = sha256,
            None => self.files.push(Installed {
                path: path.to_owned(),
                role,
                sha256,
            }),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        bytes.push(b'\n');
        bytes
    }
}

fn sha256(bytes: &[u8]) -> String {
    strict_policy::profile::hex(&Sha256::digest(bytes))
}

/// One change made, and how to undo it.
enum Undo {
    /// Put the file back as it was.
    Restore {
        path: PathBuf,
        bytes: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    },
    /// Remove the file that was created.
    Remove(PathBuf),
    /// Remove the directory that was created.
    RemoveDir(PathBuf),
    /// Create the directory that was removed.
    RecreateDir(PathBuf),
}

/// The changes made so far, undone in reverse order when a later step fails.
#[derive(Default)]
struct Journal {
    undo: Vec<Undo>,
}

impl Journal {
    fn is_empty(&self) -> bool {
        self.undo.is_empty()
    }

    /// Creates `dir` and its missing parents, recording the ones created.
    fn create_dirs(&mut self, dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut at = dir;
        while fs::symlink_metadata(at).is_err() {
            missing.push(at.to_owned());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            self.undo.push(Undo::RemoveDir(dir.clone()));
            if !created.contains(&dir) {
                created.push(dir);
            }
        }
        Ok(())
    }

    /// Writes `bytes` to `path` through a temporary file and a rename. A new file gets `mode`; a
    /// replaced one keeps its owner, and its mode unless `mode` is given.
    fn write(
        &mut self,
        path: &Path,
        bytes: &[u8],
        mode: Option<u32>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let dir = path
            .parent()
            .ok_or_else(|| fail(std::io::Error::other("no parent")))?;
        self.create_dirs(dir, created)?;
        let before = match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => Some((fs::read(path).map_err(fail)?, meta)),
            Ok(_) => {
                return Err(format!(
                    "cannot write {}: it is not a regular file",
                    path.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail(e)),
        };
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        temp.write_all(bytes).map_err(fail)?;
        let new_mode = mode
            .or(before.as_ref().map(|(_, meta)| meta.mode() & 0o7777))
            .unwrap_or(0o644);
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(new_mode))
            .map_err(fail)?;
        if let Some((_, meta)) = &before {
            std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()))
                .map_err(fail)?;
        }
        temp.as_file().sync_all().map_err(fail)?;
        temp.persist(path).map_err(|e| fail(e.error))?;
        self.undo.push(match before {
            Some((bytes, meta)) => Undo::Restore {
                path: path.to_owned(),
                bytes,
                mode: meta.mode() & 0o7777,
                owner: (meta.uid(), meta.gid()),
            },
            None => Undo::Remove(path.to_owned()),
        });
        Ok(())
    }

    /// Removes the file at `path`, keeping its bytes to put it back.
    fn remove(&mut self, path: &Path) -> Result<bool, String> {
        let fail = |e: std::io::Error| format!("cannot remove {}: {e}", path.display());
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(fail(e)),
        };
        let bytes = fs::read(path).map_err(fail)?;
        fs::remove_file(path).map_err(fail)?;
        self.undo.push(Undo::Restore {
            path: path.to_owned(),
            bytes,
            mode: meta.mode() & 0o7777,
            owner: (meta.uid(), meta.gid()),
        });
        Ok(true)
    }

    /// Removes `dir` when it is empty.
    fn remove_empty_dir(&mut self, dir: &Path) -> bool {
        let empty = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
        if empty && fs::remove_dir(dir).is_ok() {
            self.undo.push(Undo::RecreateDir(dir.to_owned()));
            return true;
        }
        false
    }

    /// Undoes every change, newest first; returns what could not be undone.
    fn rollback(self) -> Vec<String> {
        let mut failures = Vec::new();
        for undo in self.undo.into_iter().rev() {
            let result = match &undo {
                Undo::Restore {
                    path,
                    bytes,
                    mode,
                    owner,
                } => restore(path, bytes, *mode, *owner),
                Undo::Remove(path) => fs::remove_file(path),
                Undo::RemoveDir(path) => fs::remove_dir(path),
                Undo::RecreateDir(path) => fs::create_dir(path),
            };
            if let Err(e) = result {
                let path = match &undo {
                    Undo::Restore { path, .. }
                    | Undo::Remove(path)
                    | Undo::RemoveDir(path)
                    | Undo::RecreateDir(path) => path,
                };
                failures.push(format!("{}: {e}", path.display()));
            }
        }
        failures
    }
}

fn restore(path: &Path, bytes: &[u8], mode: u32, owner: (u32, u32)) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::fchown(temp.as_file(), Some(owner.0), Some(owner.1))?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// containerd's main configuration, as read.
struct MainConfig {
    path: PathBuf,
    bytes: Vec<u8>,
    text: String,
    version: i64,
    imports: Vec<String>,
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
    fn read(path: &Path) -> Result<MainConfig, String> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                "{}: containerd's configuration does not exist. Without one containerd reads no \
                     drop-in at all; create it (`containerd config default > {}`, then restart \
                     containerd) or name the one containerd uses with --containerd-config",
                path.display(),
                path.display()
            ))
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let text = String::from_utf8(bytes.clone())
            .map_err(|e| format!("{}: not UTF-8 text: {e}", path.display()))?;
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            format!(
                "{}: not valid TOML, left as it is: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', " | ")
            )
        })?;
        let version = match doc.get("version") {
            None => 1,
            Some(item) => item
                .as_integer()
                .ok_or_else(|| format!("{}: `version` is not an integer", path.display()))?,
        };
        if version < 2 {
            return Err(format!(
                "{}: configuration version {version}{}: migrate it first (`containerd config migrate`)",
                path.display(),
                if doc.get("version").is_none() {
                    " (no `version` key)"
                } else {
                    ""
                }
            ));
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
                .ok_or_else(|| {
                    format!("{}: `imports` is not an array of strings", path.display())
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

    /// Whether containerd, reading this file, also reads `file`: an `imports` entry names it or is a
    /// glob matching it (relative entries are relative to this file's directory, as containerd has it).
    fn imports_file(&self, file: &Path) -> bool {
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
    fn with_import(&self, entry: &str) -> Result<(Vec<u8>, bool), String> {
        let text = &self.text;
        let fail = |why: &str| format!("{}: {why}", self.path.display());
        let imports = locate(text, "imports").map_err(|e| fail(&e.to_string()))?;
        if let Some(item) = imports.doc.get("imports") {
            let mut array = item
                .as_array()
                .cloned()
                .ok_or_else(|| fail("`imports` is not an array"))?;
            let span = imports
                .value
                .ok_or_else(|| fail("cannot locate `imports` in the text"))?;
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
            .map_err(|e| fail(&e.to_string()))?
            .value
            .ok_or_else(|| fail("cannot locate `version` in the text"))?;
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

/// The text with `entry` taken out of `imports` (and the key's line too when install created the key
/// and nothing else is left in it); None when the entry is not there. Every other byte stays.
fn without_import(text: &str, entry: &str, created_key: bool) -> Option<Result<String, String>> {
    let located = match locate(text, "imports") {
        Ok(located) => located,
        Err(e) => return Some(Err(format!("not valid TOML: {e}"))),
    };
    let mut array = located.doc.get("imports")?.as_array()?.clone();
    let before = array.len();
    array.retain(|v| v.as_str() != Some(entry));
    if array.len() == before {
        return None;
    }
    let (Some(key), Some(value)) = (located.key, located.value) else {
        return Some(Err("cannot locate `imports` in the text".into()));
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
fn through_link(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn root_dir(root: &Path) -> Result<PathBuf, String> {
    let canonical =
        fs::canonicalize(root).map_err(|e| format!("--root {}: {e}", root.display()))?;
    if !canonical.is_dir() {
        return Err(format!("--root {}: not a directory", root.display()));
    }
    Ok(canonical)
}

fn main_config_path(opts: &Options, root: &Path) -> PathBuf {
    opts.containerd_config
        .clone()
        .unwrap_or_else(|| root.join(MAIN_CONFIG))
}

/// containerd's version: the flag, else `containerd --version`.
fn containerd_version(opts: &Options) -> Result<(ContainerdVersion, String), String> {
    if let Some(text) = &opts.containerd_version {
        let version = ContainerdVersion::parse(text).ok_or_else(|| {
            format!("--containerd-version {text:?}: expected MAJOR.MINOR, e.g. 2.1")
        })?;
        return Ok((
            version,
            format!("containerd {version} (--containerd-version)"),
        ));
    }
    let binary = opts.containerd.display();
    let output = Command::new(&opts.containerd)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run `{binary} --version` ({e}): pass --containerd PATH or --containerd-version MAJOR.MINOR")
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = ContainerdVersion::parse(&text)
        .filter(|_| output.status.success())
        .ok_or_else(|| {
            format!(
                "`{binary} --version` printed no version (stdout: {:?}; stderr: {:?}): pass \
                 --containerd-version MAJOR.MINOR",
                text.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
    Ok((
        version,
        format!("containerd {version} (`{binary} --version`)"),
    ))
}

/// The binaries to install: `--from DIR`, else the running strictctl and the shim next to it.
fn sources(opts: &Options) -> Result<(PathBuf, PathBuf), String> {
    let ctl = match &opts.from {
        Some(dir) => dir.join(CTL_BINARY),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find the running strictctl: {e}"))?,
    };
    let dir = ctl.parent().unwrap_or(Path::new("/")).to_owned();
    let shim = dir.join(SHIM_BINARY);
    for binary in [&ctl, &shim] {
        if !binary.is_file() {
            return Err(format!(
                "{} not found: install takes strictctl and {SHIM_BINARY} from one directory (build both: \
                 `scripts/build-dist.sh`, or pass --from DIR)",
                binary.display()
            ));
        }
    }
    Ok((ctl, shim))
}

fn is_host_root(root: &Path) -> bool {
    root == Path::new("/")
}

/// Installs the binaries, the policy files and the drop-in under `opts.root`, then restarts containerd.
pub fn install(opts: &Options) -> Result<Report, String> {
    let root = root_dir(&opts.root)?;
    let mut report = Report::default();
    let (version, version_source) = containerd_version(opts)?;
    if version.major < 2 {
        return Err(format!(
            "{version_source}: the strict shim needs containerd 2.0 or later (task API v3); nothing was changed"
        ));
    }
    let config_path = main_config_path(opts, &root);
    let main = MainConfig::read(&config_path)?;
    let (src_ctl, src_shim) = sources(opts)?;

    let conf_d_drop_in = root.join(CONF_D_DIR).join(DROP_IN_FILE);
    let layout = if main.imports_file(&conf_d_drop_in) {
        Layout::ConfD
    } else {
        Layout::Imports
    };
    let drop_in_path = match layout {
        Layout::ConfD => conf_d_drop_in.clone(),
        Layout::Imports => root.join(ETC_DIR).join(DROP_IN_FILE),
    };
    report.say(format!(
        "{version_source}; {} (config version {}): {}",
        config_path.display(),
        main.version,
        match layout {
            Layout::ConfD => format!(
                "it imports {}, the drop-in goes there",
                conf_d_drop_in.parent().unwrap().display()
            ),
            Layout::Imports if version >= (ContainerdVersion { major: 2, minor: 2 }) => format!(
                "it does not import {} (containerd 2.2 reads that directory only through an `imports` \
                 line, which `containerd config default` writes), so an `imports` entry is added",
                conf_d_drop_in.parent().unwrap().display()
            ),
            Layout::Imports => "an `imports` entry is added".to_string(),
        }
    ));

    let manifest_path = root.join(STATE_DIR).join(MANIFEST_FILE);
    let previous = Manifest::read(&manifest_path)?;
    if let Some(previous) = &previous {
        if previous.layout != layout || previous.containerd_config != config_path {
            return Err(format!(
                "an earlier install put its drop-in {} for {}, and this one would put it {} for {} \
                 (recorded in {}); run `strictctl uninstall` first, then install again. Nothing was changed",
                previous.layout.placement(),
                previous.containerd_config.display(),
                layout.placement(),
                config_path.display(),
                manifest_path.display()
            ));
        }
    }
    let mut manifest = previous.clone().unwrap_or_else(|| Manifest {
        note: "written by strictctl install; strictctl uninstall removes what it lists".into(),
        layout,
        containerd_config: config_path.clone(),
        files: Vec::new(),
        import: None,
        dirs: Vec::new(),
    });

    let mut journal = Journal::default();
    let result = install_files(
        &root,
        &main,
        layout,
        &drop_in_path,
        (&src_ctl, &src_shim),
        &mut manifest,
        &mut journal,
        &mut report,
    )
    .and_then(|()| {
        let bytes = manifest.bytes();
        if previous.is_none() || fs::read(&manifest_path).ok().as_deref() != Some(&bytes[..]) {
            journal.write(&manifest_path, &bytes, Some(0o644), &mut Vec::new())?;
        }
        Ok(())
    });
    if let Err(e) = result {
        return Err(undo(journal, e));
    }
    if journal.is_empty() {
        report.say(format!(
            "nothing to change: strict is installed under {} (handlers {})",
            root.display(),
            handler_names()
        ));
        return Ok(report);
    }
    if let Err(e) = check_with_containerd(opts, &config_path, &mut report) {
        return Err(undo(journal, e));
    }
    if let Err(e) = restart(opts, &root, &config_path, &mut report) {
        let message = undo(journal, e);
        let again = if restart_applies(opts, &root) {
            match systemctl_restart(&opts.service) {
                Ok(()) => "; containerd restarted with its previous configuration",
                Err(_) => "; restarting containerd again failed too",
            }
        } else {
            ""
        };
        return Err(format!("{message}{again}"));
    }
    report.say(format!(
        "installed: handlers {} (label nodes {NODE_LABEL}={NODE_LABEL_VALUE} for the RuntimeClasses)",
        handler_names()
    ));
    Ok(report)
}

fn handler_names() -> String {
    HANDLERS.map(|h| h.name).join(", ")
}

fn undo(journal: Journal, error: String) -> String {
    let failures = journal.rollback();
    if failures.is_empty() {
        format!("{error}; nothing was changed")
    } else {
        format!(
            "{error}; undoing the changes failed for {}",
            failures.join(", ")
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn install_files(
    root: &Path,
    main: &MainConfig,
    layout: Layout,
    drop_in_path: &Path,
    (src_ctl, src_shim): (&Path, &Path),
    manifest: &mut Manifest,
    journal: &mut Journal,
    report: &mut Report,
) -> Result<(), String> {
    let bin_dir = root.join(BIN_DIR);
    let shim_path = bin_dir.join(SHIM_BINARY);
    for (src, dst) in [
        (src_shim, shim_path.clone()),
        (src_ctl, bin_dir.join(CTL_BINARY)),
    ] {
        let bytes = fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
        if fs::read(&dst).ok().as_deref() != Some(&bytes[..]) {
            journal.write(&dst, &bytes, Some(0o755), &mut manifest.dirs)?;
            report.say(format!("wrote {}", dst.display()));
        }
        manifest.record(&dst, Role::Binary, &bytes);
    }

    for handler in HANDLERS {
        let path = root.join(ETC_DIR).join(handler.policy_file);
        if fs::symlink_metadata(&path).is_ok() {
            if !manifest.files.iter().any(|f| f.path == path) {
                report.say(format!(
                    "kept {}: it was there before install (its `mode` decides the {} handler's)",
                    path.display(),
                    handler.name
                ));
            }
            continue;
        }
        let text = policy_text(&handler, &path);
        journal.write(&path, text.as_bytes(), Some(0o644), &mut manifest.dirs)?;
        manifest.record(&path, Role::Policy, text.as_bytes());
        report.say(format!("wrote {} (mode {})", path.display(), handler.mode));
    }

    let text = drop_in_for_version(root, &shim_path, main.version);
    if fs::read(drop_in_path).ok().as_deref() != Some(text.as_bytes()) {
        journal.write(
            drop_in_path,
            text.as_bytes(),
            Some(0o644),
            &mut manifest.dirs,
        )?;
        report.say(format!("wrote {}", drop_in_path.display()));
    }
    manifest.record(drop_in_path, Role::DropIn, text.as_bytes());

    journal.create_dirs(&root.join(STATE_DIR), &mut manifest.dirs)?;
    if layout == Layout::Imports {
        let entry = drop_in_path.to_string_lossy().into_owned();
        if main.imports.contains(&entry) {
            if manifest.import.is_none() {
                report.say(format!(
                    "{} imports {entry} already (left as it is)",
                    main.path.display()
                ));
            }
        } else {
            let (bytes, created_key) = main.with_import(&entry)?;
            let backup = root.join(STATE_DIR).join(CONFIG_BACKUP_FILE);
            journal.write(&backup, &main.bytes, Some(0o600), &mut manifest.dirs)?;
            journal.write(&through_link(&main.path), &bytes, None, &mut manifest.dirs)?;
            manifest.import = Some(ImportEntry {
                entry: entry.clone(),
                created_key,
                backup,
                sha256_after: sha256(&bytes),
            });
            report.say(format!(
                "added {entry} to the imports of {}",
                main.path.display()
            ));
        }
    }
    Ok(())
}

/// `containerd --config MAIN config dump` must show both handlers; skipped when containerd cannot run.
fn check_with_containerd(
    opts: &Options,
    config_path: &Path,
    report: &mut Report,
) -> Result<(), String> {
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
    let fail = |why: String| {
        format!(
            "`{} --config {} config dump` {why}",
            opts.containerd.display(),
            config_path.display()
        )
    };
    if !output.status.success() {
        return Err(fail(format!(
            "failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let dump: DocumentMut = String::from_utf8_lossy(&output.stdout)
        .parse()
        .map_err(|e| fail(format!("printed no TOML: {e}")))?;
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
            return Err(fail(format!(
                "does not show the {} handler with runtime_type {RUNTIME_TYPE}",
                handler.name
            )));
        }
    }
    report.say(format!(
        "checked: `{} config dump` shows the handlers {}",
        opts.containerd.display(),
        handler_names()
    ));
    Ok(())
}

fn restart_applies(opts: &Options, root: &Path) -> bool {
    !opts.no_restart && is_host_root(root)
}

fn restart(
    opts: &Options,
    root: &Path,
    config_path: &Path,
    report: &mut Report,
) -> Result<(), String> {
    if opts.no_restart {
        report.say(format!(
            "not restarting containerd (--no-restart): `systemctl restart {}` makes the change take effect",
            opts.service
        ));
        return Ok(());
    }
    if !is_host_root(root) {
        report.say(format!(
            "not restarting containerd: --root is {}, not /; restart the containerd that reads {} yourself",
            root.display(),
            config_path.display()
        ));
        return Ok(());
    }
    systemctl_restart(&opts.service)?;
    report.say(format!("restarted {} (systemctl)", opts.service));
    Ok(())
}

fn systemctl_restart(service: &str) -> Result<(), String> {
    let output = Command::new("systemctl")
        .args(["restart", service])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `systemctl restart {service}`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`systemctl restart {service}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Removes what install wrote under `opts.root` (as its manifest lists it), then restarts containerd.
pub fn uninstall(opts: &Options) -> Result<Report, String> {
    let root = root_dir(&opts.root)?;
    let mut report = Report::default();
    let manifest_path = root.join(STATE_DIR).join(MANIFEST_FILE);
    let Some(manifest) = Manifest::read(&manifest_path)? else {
        report.say(format!(
            "nothing to uninstall: {} does not exist (strictctl install writes it)",
            manifest_path.display()
        ));
        return Ok(report);
    };
    let mut journal = Journal::default();
    if let Err(e) = uninstall_files(&manifest, &manifest_path, &mut journal, &mut report) {
        return Err(undo(journal, e));
    }
    let config_path = manifest.containerd_config.clone();
    if let Err(e) = restart(opts, &root, &config_path, &mut report) {
        let message = undo(journal, e);
        let _ = systemctl_restart(&opts.service);
        return Err(message);
    }
    report.say(format!("uninstalled: handlers {}", handler_names()));
    Ok(report)
}

fn uninstall_files(
    manifest: &Manifest,
    manifest_path: &Path,
    journal: &mut Journal,
    report: &mut Report,
) -> Result<(), String> {
    let config_path = &manifest.containerd_config;
    if let Some(import) = &manifest.import {
        match fs::read(config_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.say(format!(
                "{} is gone: no imports entry to take out",
                config_path.display()
            )),
            Err(e) => return Err(format!("{}: {e}", config_path.display())),
            Ok(bytes) if sha256(&bytes) == import.sha256_after => {
                let before = fs::read(&import.backup).map_err(|e| {
                    format!(
                        "{}: {e} (the configuration as it was before install)",
                        import.backup.display()
                    )
                })?;
                journal.write(&through_link(config_path), &before, None, &mut Vec::new())?;
                report.say(format!(
                    "restored {} as it was before install",
                    config_path.display()
                ));
            }
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match without_import(&text, &import.entry, import.created_key) {
                    None => report.say(format!(
                        "{} no longer imports {} (left as it is)",
                        config_path.display(),
                        import.entry
                    )),
                    Some(Err(e)) => {
                        return Err(format!(
                            "{}: {e}; the imports entry {} cannot be taken out",
                            config_path.display(),
                            import.entry
                        ))
                    }
                    Some(Ok(text)) => {
                        journal.write(
                            &through_link(config_path),
                            text.as_bytes(),
                            None,
                            &mut Vec::new(),
                        )?;
                        report.say(format!(
                            "took {} out of the imports of {} (edited since install: the rest is left as it is)",
                            import.entry,
                            config_path.display()
                        ));
                    }
                }
            }
        }
        journal.remove(&import.backup)?;
    }

    // The drop-in before the binaries: containerd must not name a shim that is gone.
    let mut files: Vec<&Installed> = manifest.files.iter().collect();
    files.sort_by_key(|f| match f.role {
        Role::DropIn => 0,
        Role::Binary => 1,
        Role::Policy => 2,
    });
    for file in files {
        match file.role {
            Role::Policy => match fs::read(&file.path) {
                Ok(bytes) if sha256(&bytes) != file.sha256 => {
                    report.say(format!(
                        "kept {}: edited since install",
                        file.path.display()
                    ));
                    continue;
                }
                _ => {}
            },
            Role::Binary | Role::DropIn => {}
        }
        if journal.remove(&file.path)? {
            report.say(format!("removed {}", file.path.display()));
        }
    }
    journal.remove(manifest_path)?;
    for dir in manifest.dirs.iter().rev() {
        journal.remove_empty_dir(dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_containerd_and_flags() {
        let v = |major, minor| Some(ContainerdVersion { major, minor });
        assert_eq!(
            ContainerdVersion::parse(
                "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"
            ),
            v(2, 1)
        );
        assert_eq!(
            ContainerdVersion::parse(
                "containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da"
            ),
            v(1, 7)
        );
        assert_eq!(
            ContainerdVersion::parse(
                "containerd github.com/containerd/containerd/v2 v2.2.0 1c4457e"
            ),
            v(2, 2)
        );
        assert_eq!(ContainerdVersion::parse("2.1"), v(2, 1));
        assert_eq!(ContainerdVersion::parse("v2.10"), v(2, 10));
        assert_eq!(ContainerdVersion::parse("two"), None);
        assert_eq!(ContainerdVersion::parse("2"), None);
        assert_eq!(ContainerdVersion::parse("2.x"), None);
        assert!(v(2, 2) > v(2, 1) && v(2, 10) > v(2, 2));
    }

    fn main_config(text: &str) -> MainConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, text).unwrap();
        let mut config = MainConfig::read(&path).unwrap();
        config.path = PathBuf::from("/etc/containerd/config.toml");
        config
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
            MainConfig::read(&path).err().unwrap()
        };
        assert!(err("version = 3\n[plugins\n").contains("not valid TOML"));
        assert!(err("[plugins]\n").contains("no `version` key"));
        assert!(err("version = 3\nimports = \"/x\"\n").contains("`imports` is not an array"));
        let missing = MainConfig::read(&dir.path().join("none.toml"))
            .err()
            .unwrap();
        assert!(missing.contains("does not exist"), "{missing}");
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

    #[test]
    fn policy_files_load_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        for handler in HANDLERS {
            let path = dir.path().join(handler.policy_file);
            fs::write(&path, policy_text(&handler, &path)).unwrap();
            let config = strict_policy::PolicyConfig::load(&path).unwrap();
            assert_eq!(config.mode.to_string(), handler.mode);
            assert_eq!(config.handler, handler.name);
        }
    }
}
