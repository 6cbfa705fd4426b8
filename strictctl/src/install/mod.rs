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
//!
//! - `containerd_config.rs`: the drop-in's text, where it goes, the main configuration's `imports`
//!   edited in place, and the check with `containerd config dump`.
//! - `journal.rs`: the undo journal every change goes through.
//! - `manifest.rs`: `install.json`, the record uninstall reads.
//! - `version.rs`: containerd's version.
//! - `systemd.rs`: restarting containerd.
//! - `handlers.rs`, `paths.rs`, `options.rs`: the handlers and their policy files, the paths below the
//!   root, what install is asked and what it reports; `error.rs`: [`Error`], joining the others' errors.

mod containerd_config;
mod containerd_dirs;
mod error;
mod handlers;
mod journal;
mod manifest;
mod options;
mod paths;
mod systemd;
mod version;

use std::fs;
use std::path::{Path, PathBuf};

pub use containerd_config::{drop_in, drop_in_for_version, ConfigError, Layout};
pub use error::{Error, RestartAgain};
pub use handlers::{policy_text, Handler, HANDLERS, NODE_LABEL, NODE_LABEL_VALUE};
pub use journal::{JournalError, RollbackFailure};
pub use manifest::ManifestError;
pub use options::{Options, Report};
pub use paths::{
    BIN_DIR, CONF_D_DIR, DROP_IN_FILE, ETC_DIR, MAIN_CONFIG, MANIFEST_FILE, STATE_DIR,
};
pub use strict_protocol::names::{RUNTIME_TYPE, SHIM_BINARY, STRICTCTL_BINARY as CTL_BINARY};
pub use systemd::SystemdError;
pub use version::{ContainerdVersion, VersionError};

use containerd_config::{check_with_containerd, through_link, without_import, MainConfig};
use handlers::handler_names;
use journal::Journal;
use manifest::{sha256, ImportEntry, Installed, Manifest, Role};
use paths::CONFIG_BACKUP_FILE;
use systemd::{restart, restart_applies, systemctl_restart};
use version::containerd_version;

/// Installs the binaries, the policy files and the drop-in under `opts.root`, then restarts containerd.
pub fn install(opts: &Options) -> Result<Report, Error> {
    let root = root_dir(&opts.root)?;
    let mut report = Report::default();
    let (version, version_source) = containerd_version(opts)?;
    if version.major < 2 {
        return Err(Error::ContainerdTooOld {
            described: version_source,
        });
    }
    let config_path = main_config_path(opts, &root);
    let main = MainConfig::read(&config_path)?;
    let (src_ctl, src_shim) = binaries(opts)?;

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
            return Err(Error::LayoutChanged {
                previous: previous.layout,
                previous_config: previous.containerd_config.clone(),
                layout,
                config: config_path,
                manifest: manifest_path,
            });
        }
    }
    let mut manifest = previous
        .clone()
        .unwrap_or_else(|| Manifest::new(layout, config_path.clone()));

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
        return Err(undo(journal, e.into()));
    }
    if let Err(e) = restart(opts, &root, &config_path, &mut report) {
        let failures = journal.rollback();
        let again = if restart_applies(opts, &root) {
            match systemctl_restart(&opts.service) {
                Ok(()) => RestartAgain::Restarted,
                Err(_) => RestartAgain::FailedToo,
            }
        } else {
            RestartAgain::NotTried
        };
        return Err(Error::RolledBack {
            cause: Box::new(e.into()),
            failures,
            again,
        });
    }
    report.say(format!(
        "installed: handlers {} (label nodes {NODE_LABEL}={NODE_LABEL_VALUE} for the RuntimeClasses)",
        handler_names()
    ));
    Ok(report)
}

/// Removes what install wrote under `opts.root` (as its manifest lists it), then restarts containerd.
pub fn uninstall(opts: &Options) -> Result<Report, Error> {
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
        let error = undo(journal, e.into());
        let _ = systemctl_restart(&opts.service);
        return Err(error);
    }
    report.say(format!("uninstalled: handlers {}", handler_names()));
    Ok(report)
}

/// `error`, with every change in `journal` undone.
fn undo(journal: Journal, error: Error) -> Error {
    Error::RolledBack {
        cause: Box::new(error),
        failures: journal.rollback(),
        again: RestartAgain::NotTried,
    }
}

fn root_dir(root: &Path) -> Result<PathBuf, Error> {
    let canonical = fs::canonicalize(root).map_err(|source| Error::Root {
        root: root.to_owned(),
        source,
    })?;
    if !canonical.is_dir() {
        return Err(Error::RootNotADirectory {
            root: root.to_owned(),
        });
    }
    Ok(canonical)
}

fn main_config_path(opts: &Options, root: &Path) -> PathBuf {
    opts.containerd_config
        .clone()
        .unwrap_or_else(|| root.join(MAIN_CONFIG))
}

/// The binaries to install: `--from DIR`, else the running strictctl and the shim next to it.
fn binaries(opts: &Options) -> Result<(PathBuf, PathBuf), Error> {
    let ctl = match &opts.from {
        Some(dir) => dir.join(CTL_BINARY),
        None => std::env::current_exe().map_err(Error::CurrentExe)?,
    };
    let dir = ctl.parent().unwrap_or(Path::new("/")).to_owned();
    let shim = dir.join(SHIM_BINARY);
    for binary in [&ctl, &shim] {
        if !binary.is_file() {
            return Err(Error::BinaryNotFound {
                path: binary.clone(),
            });
        }
    }
    Ok((ctl, shim))
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
) -> Result<(), Error> {
    let bin_dir = root.join(BIN_DIR);
    let shim_path = bin_dir.join(SHIM_BINARY);
    for (src, dst) in [
        (src_shim, shim_path.clone()),
        (src_ctl, bin_dir.join(CTL_BINARY)),
    ] {
        let bytes = fs::read(src).map_err(|source| Error::Read {
            path: src.to_owned(),
            source,
        })?;
        if fs::read(&dst).ok().as_deref() != Some(&bytes[..]) {
            journal.write(&dst, &bytes, Some(0o755), &mut manifest.dirs)?;
            report.say(format!("wrote {}", dst.display()));
        }
        manifest.record(&dst, Role::Binary, &bytes);
    }

    // The cgroup driver goes with the node's runc handler: the kubelet names cgroups for it.
    let systemd_cgroup = main.runc_systemd_cgroup().unwrap_or(false);
    // And the gate must know where this containerd keeps its sandboxes' files.
    let containerd = main.containerd_dirs();
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
            let loaded = strict_policy::PolicyConfig::load(&path).ok();
            if loaded
                .as_ref()
                .is_some_and(|config| !containerd.covered_by(&config.node))
            {
                report.say(format!(
                    "warning: {} has no [node] entry for containerd's root or state ({}): the {} \
                     handler refuses every pod's own sandbox files there; add them to \
                     containerd_roots / containerd_states",
                    path.display(),
                    [&containerd.root, &containerd.state]
                        .into_iter()
                        .flatten()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    handler.name
                ));
            }
            let kept = loaded
                .map(|config| config.runtime.systemd_cgroup)
                .unwrap_or(systemd_cgroup);
            if kept != systemd_cgroup {
                report.say(format!(
                    "warning: {} has [runtime] systemd_cgroup = {kept}, but the runc handler's \
                     SystemdCgroup is {systemd_cgroup}: the {} handler refuses every pod whose cgroup \
                     is named for the other driver; set systemd_cgroup = {systemd_cgroup}",
                    path.display(),
                    handler.name
                ));
            }
            continue;
        }
        let text = policy_text(&handler, &path, systemd_cgroup, &containerd);
        journal.write(&path, text.as_bytes(), Some(0o644), &mut manifest.dirs)?;
        manifest.record(&path, Role::Policy, text.as_bytes());
        report.say(format!(
            "wrote {} (mode {}{})",
            path.display(),
            handler.mode,
            if systemd_cgroup {
                ", the systemd cgroup driver as the runc handler's"
            } else {
                ""
            }
        ));
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

fn uninstall_files(
    manifest: &Manifest,
    manifest_path: &Path,
    journal: &mut Journal,
    report: &mut Report,
) -> Result<(), Error> {
    let config_path = &manifest.containerd_config;
    if let Some(import) = &manifest.import {
        match fs::read(config_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.say(format!(
                "{} is gone: no imports entry to take out",
                config_path.display()
            )),
            Err(source) => {
                return Err(Error::Read {
                    path: config_path.clone(),
                    source,
                })
            }
            Ok(bytes) if sha256(&bytes) == import.sha256_after => {
                let before = fs::read(&import.backup).map_err(|source| Error::Backup {
                    path: import.backup.clone(),
                    source,
                })?;
                journal.write(&through_link(config_path), &before, None, &mut Vec::new())?;
                report.say(format!(
                    "restored {} as it was before install",
                    config_path.display()
                ));
            }
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match without_import(config_path, &text, &import.entry, import.created_key) {
                    None => report.say(format!(
                        "{} no longer imports {} (left as it is)",
                        config_path.display(),
                        import.entry
                    )),
                    Some(Err(e)) => return Err(e.into()),
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
