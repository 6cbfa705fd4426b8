//! `strictctl install` and `strictctl uninstall` into a temporary root: what they write, that uninstall
//! brings containerd's configuration back byte for byte, that a second install changes nothing, that an
//! operator's files survive, that errors leave nothing behind, and that the drop-in loads into the test
//! bed's real containerd (`containerd config dump`). Nothing here is skipped: without the test bed's
//! containerd the tests that need it fail, naming `integration/testbed/install.sh`.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strictctl::install::{drop_in, drop_in_for_version, SHIM_BINARY};

/// containerd 2.1 with comments and formatting an operator would be upset to lose, and no `imports`.
const COMMENTED_2_1: &str = r#"# /etc/containerd/config.toml — hand-written, please keep the comments.
version = 3   # containerd 2.x

[grpc]
  address = "/run/containerd/containerd.sock"   # the default socket

# The CRI runtime: runc with the systemd cgroup driver.
[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = true    # matches the kubelet
"#;

/// A main configuration that imports other files already, in a multi-line array with a comment.
fn with_imports(root: &Path) -> String {
    format!(
        "version = 3\n\nimports = [\n    \"{}/etc/containerd/registries.toml\",  # mirrors\n]\n\n[debug]\n  level = \"info\"\n",
        root.display()
    )
}

/// containerd 2.2's `containerd config default` begins so: conf.d imported.
fn default_2_2(root: &Path) -> String {
    format!(
        "version = 3\nroot = '/var/lib/containerd'\nstate = '/run/containerd'\nimports = ['{}/etc/containerd/conf.d/*.toml']\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.runtime']\n    enable_selinux = false\n",
        root.display()
    )
}

/// MicroK8s' template style: config version 2, the CRI plugin under its 1.x name.
const VERSION_2: &str = r#"# Use config version 2 to enable new configuration fields.
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#;

/// Small stand-ins for the two binaries (the debug builds weigh ~200 MB each): `--from` this directory.
/// One test installs the real ones.
fn stand_ins() -> &'static str {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for name in ["strictctl", SHIM_BINARY] {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\necho {name} stand-in\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        dir
    })
    .path()
    .to_str()
    .unwrap()
}

/// strictctl with `args`; install takes the stand-ins unless `--from` or `--real-binaries` is given.
fn strictctl(args: &[&str]) -> Output {
    let mut args: Vec<&str> = args.to_vec();
    if args[0] == "install" && !args.contains(&"--from") {
        if let Some(at) = args.iter().position(|a| *a == "--real-binaries") {
            args.remove(at);
        } else {
            args.extend(["--from", stand_ins()]);
        }
    }
    // No containerd unless a test names one: a host's own (/usr/bin/containerd on Debian) must not run.
    if args[0] == "install" && !args.contains(&"--containerd") {
        args.extend(["--containerd", "/nonexistent/containerd"]);
    }
    let output = Command::new(env!("CARGO_BIN_EXE_strictctl"))
        .args(&args)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("strictctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "strictctl panicked: {stderr}");
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeds(args: &[&str]) -> String {
    let output = strictctl(args);
    assert!(
        output.status.success(),
        "strictctl {args:?} failed: {}",
        text(&output)
    );
    text(&output)
}

fn fails(args: &[&str]) -> String {
    let output = strictctl(args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "strictctl {args:?} should fail: {}",
        text(&output)
    );
    text(&output)
}

/// The test bed's containerd (integration/testbed/install.sh puts it there).
fn containerd() -> PathBuf {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.testbed/containerd/usr/bin/containerd");
    assert!(
        path.is_file(),
        "{} is missing: run integration/testbed/install.sh (it installs containerd 2.x into .testbed/)",
        path.display()
    );
    path
}

/// A root with containerd's main configuration.
fn node(main_config: impl FnOnce(&Path) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("etc/containerd")).unwrap();
    std::fs::write(root.join("etc/containerd/config.toml"), main_config(&root)).unwrap();
    (dir, root)
}

fn root_arg(root: &Path) -> &str {
    root.to_str().unwrap()
}

/// `install --root ROOT --containerd-version VERSION`, the stand-in binaries and no containerd.
fn install_args<'a>(root: &'a Path, version: &'a str) -> Vec<&'a str> {
    vec![
        "install",
        "--root",
        root_arg(root),
        "--containerd-version",
        version,
    ]
}

/// `uninstall --root ROOT`, which must succeed; its output.
fn uninstall(root: &Path) -> String {
    succeeds(&["uninstall", "--root", root_arg(root)])
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir(u32),
    File(Vec<u8>, u32),
    Link(PathBuf),
}

/// Every file, directory and link under `root`, with contents and modes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode();
            let value = if meta.file_type().is_symlink() {
                Entry::Link(std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                pending.push(path.clone());
                Entry::Dir(mode)
            } else {
                Entry::File(std::fs::read(&path).unwrap(), mode)
            };
            out.insert(path.strip_prefix(root).unwrap().to_owned(), value);
        }
    }
    out
}

/// Modification times, to show a second run wrote nothing.
fn mtimes(root: &Path) -> BTreeMap<PathBuf, (i64, i64)> {
    tree(root)
        .into_keys()
        .map(|p| {
            let meta = std::fs::symlink_metadata(root.join(&p)).unwrap();
            (p, (meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

fn assert_same_tree(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) {
    for (path, entry) in after {
        assert_eq!(before.get(path), Some(entry), "{} differs", path.display());
    }
    for path in before.keys() {
        assert!(after.contains_key(path), "{} is gone", path.display());
    }
}

fn installed_files_present(root: &Path, drop_in_path: &Path) {
    for file in [
        "usr/local/bin/containerd-shim-strict-v2",
        "usr/local/bin/strictctl",
        "etc/containerd/strict.toml",
        "etc/containerd/strict-complain.toml",
        "var/lib/strict/install.json",
    ] {
        assert!(root.join(file).is_file(), "{file} was not installed");
    }
    let shim = root.join("usr/local/bin").join(SHIM_BINARY);
    assert_eq!(
        std::fs::metadata(&shim).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read(&shim).unwrap(),
        std::fs::read(Path::new(stand_ins()).join(SHIM_BINARY)).unwrap(),
        "the shim is the one --from names"
    );
    assert_eq!(read(drop_in_path), drop_in(root, &shim));
    assert!(read(root.join("etc/containerd/strict.toml")).contains("mode = \"enforce\""));
    assert!(read(root.join("etc/containerd/strict-complain.toml")).contains("mode = \"complain\""));
}

#[test]
fn imports_layout_on_2_1_round_trips_a_commented_config_byte_for_byte() {
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    let before = tree(&root);
    let out = succeeds(&install_args(&root, "2.1"));
    assert!(
        out.contains("not restarting containerd: --root is"),
        "{out}"
    );
    let drop_in_path = root.join("etc/containerd/strict-runtimes.toml");
    installed_files_present(&root, &drop_in_path);
    assert!(!root.join("etc/containerd/conf.d").exists());

    // The main configuration gained one line and lost nothing.
    let main = read(root.join("etc/containerd/config.toml"));
    let entry = format!("imports = [\"{}\"]\n", drop_in_path.display());
    assert!(main.contains(&entry), "{main}");
    assert_eq!(main.replacen(&entry, "", 1), COMMENTED_2_1);

    let out = uninstall(&root);
    assert!(out.contains("restored"), "{out}");
    assert_same_tree(&before, &tree(&root));
    assert_eq!(read(root.join("etc/containerd/config.toml")), COMMENTED_2_1);

    let out = uninstall(&root);
    assert!(out.contains("nothing to uninstall"), "{out}");
}

#[test]
fn imports_layout_appends_to_an_existing_imports_array_and_takes_it_out_again() {
    let (_dir, root) = node(with_imports);
    let original = read(root.join("etc/containerd/config.toml"));
    let before = tree(&root);
    succeeds(&install_args(&root, "2.0"));
    let main = read(root.join("etc/containerd/config.toml"));
    assert!(main.contains("registries.toml\",  # mirrors\n"), "{main}");
    assert!(
        main.contains(&format!(
            "\n    \"{}/etc/containerd/strict-runtimes.toml\",\n]",
            root.display()
        )),
        "the entry follows the array's style: {main}"
    );
    uninstall(&root);
    assert_eq!(read(root.join("etc/containerd/config.toml")), original);
    assert_same_tree(&before, &tree(&root));
}

#[test]
fn a_containerd_with_its_own_root_and_state_gets_them_in_the_policy_files() {
    // Sandboxes' hostname, hosts, resolv.conf and shm live below containerd's root and state: a policy
    // that does not know them refuses every pod's own files.
    let (_dir, root) = node(|_| {
        "version = 3\nroot = \"/data/containerd\"\nstate = \"/run/k8s/containerd\"\n".to_string()
    });
    let before = tree(&root);
    succeeds(&install_args(&root, "2.1"));
    for file in ["strict.toml", "strict-complain.toml"] {
        let policy: toml::Table =
            toml::from_str(&read(root.join("etc/containerd").join(file))).unwrap();
        let node = &policy["node"];
        for (key, dir) in [
            ("containerd_roots", "/data/containerd"),
            ("containerd_states", "/run/k8s/containerd"),
        ] {
            let dirs = node[key].as_array().unwrap();
            assert!(dirs.contains(&dir.into()), "{file}: {node:?}");
            // The usual places stay known (and protected).
            assert!(dirs.len() > 1, "{file}: {node:?}");
        }
    }
    let checked = succeeds(&[
        "config",
        "check",
        root.join("etc/containerd/strict.toml").to_str().unwrap(),
    ]);
    assert!(!checked.is_empty());
    uninstall(&root);
    assert_same_tree(&before, &tree(&root));

    // A policy file the operator kept that lacks them: install says so.
    let (_dir, root) = node(|_| "version = 3\nroot = \"/data/containerd\"\n".to_string());
    std::fs::write(
        root.join("etc/containerd/strict.toml"),
        "mode = \"enforce\"\n",
    )
    .unwrap();
    let out = succeeds(&install_args(&root, "2.1"));
    assert!(
        out.contains("no [node] entry for containerd's root or state (/data/containerd)"),
        "{out}"
    );
}

#[test]
fn conf_d_layout_on_2_2_leaves_the_main_config_alone() {
    let (_dir, root) = node(default_2_2);
    std::fs::create_dir(root.join("etc/containerd/conf.d")).unwrap();
    std::fs::write(
        root.join("etc/containerd/conf.d/10-operator.toml"),
        "version = 3\n# the operator's own drop-in\n",
    )
    .unwrap();
    let before = tree(&root);
    let main = read(root.join("etc/containerd/config.toml"));
    let out = succeeds(&install_args(&root, "2.2"));
    assert!(out.contains("the drop-in goes there"), "{out}");
    installed_files_present(
        &root,
        &root.join("etc/containerd/conf.d/strict-runtimes.toml"),
    );
    assert_eq!(read(root.join("etc/containerd/config.toml")), main);
    assert!(!root.join("etc/containerd/strict-runtimes.toml").exists());
    assert!(!root
        .join("var/lib/strict/containerd-config.before-install.toml")
        .exists());

    uninstall(&root);
    assert_same_tree(&before, &tree(&root));
}

#[test]
fn containerd_2_2_with_a_config_that_does_not_import_conf_d_gets_an_imports_entry() {
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    let before = tree(&root);
    let out = succeeds(&install_args(&root, "2.2"));
    assert!(
        out.contains("containerd 2.2 reads that directory only through an `imports` line"),
        "{out}"
    );
    assert!(root.join("etc/containerd/strict-runtimes.toml").is_file());
    assert!(!root.join("etc/containerd/conf.d").exists());
    assert!(read(root.join("etc/containerd/config.toml")).contains("strict-runtimes.toml"));
    uninstall(&root);
    assert_same_tree(&before, &tree(&root));
}

#[test]
fn a_second_install_changes_nothing() {
    for (main, version) in [
        (
            Box::new(|_: &Path| COMMENTED_2_1.to_string()) as Box<dyn Fn(&Path) -> String>,
            "2.1",
        ),
        (Box::new(default_2_2), "2.2"),
    ] {
        let (_dir, root) = node(main);
        let args = [
            "install",
            "--root",
            root_arg(&root),
            "--containerd-version",
            version,
        ];
        succeeds(&args);
        let first = tree(&root);
        let first_mtimes = mtimes(&root);
        let out = succeeds(&args);
        assert!(out.contains("nothing to change"), "{out}");
        assert!(!out.contains("wrote"), "{out}");
        assert_same_tree(&first, &tree(&root));
        assert_eq!(first_mtimes, mtimes(&root), "a second install wrote a file");
    }
}

#[test]
fn an_edited_policy_file_survives_uninstall_and_an_operators_file_is_never_overwritten() {
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    // The operator's own strict-complain.toml, there before install.
    let theirs = "# mine\nmode = \"complain\"\nsource = \"static\"\nconnections = [\"kvm\"]\n";
    std::fs::write(root.join("etc/containerd/strict-complain.toml"), theirs).unwrap();
    let out = succeeds(&install_args(&root, "2.1"));
    assert!(
        out.contains("strict-complain.toml: it was there before install"),
        "{out}"
    );
    assert_eq!(
        read(root.join("etc/containerd/strict-complain.toml")),
        theirs
    );

    // The operator edits the policy install wrote.
    let ours = root.join("etc/containerd/strict.toml");
    let edited = read(&ours).replace("source = \"auto\"", "source = \"snapd\"");
    std::fs::write(&ours, &edited).unwrap();
    // install again: still kept.
    succeeds(&install_args(&root, "2.1"));
    assert_eq!(read(&ours), edited);

    let out = uninstall(&root);
    assert!(out.contains("strict.toml: edited since install"), "{out}");
    assert_eq!(read(&ours), edited);
    assert_eq!(
        read(root.join("etc/containerd/strict-complain.toml")),
        theirs
    );
    assert_eq!(read(root.join("etc/containerd/config.toml")), COMMENTED_2_1);
    assert!(!root.join("usr").exists());
    assert!(!root.join("var").exists());
    assert!(!root.join("etc/containerd/strict-runtimes.toml").exists());
}

#[test]
fn uninstall_after_the_operator_edited_the_main_config_takes_out_only_the_entry() {
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    succeeds(&install_args(&root, "2.1"));
    let main_path = root.join("etc/containerd/config.toml");
    let edited = format!(
        "{}\n[debug]\n  level = \"debug\"  # added later\n",
        read(&main_path)
    );
    std::fs::write(&main_path, &edited).unwrap();
    let out = uninstall(&root);
    assert!(out.contains("edited since install"), "{out}");
    assert_eq!(
        read(&main_path),
        format!("{COMMENTED_2_1}\n[debug]\n  level = \"debug\"  # added later\n")
    );
}

#[test]
fn errors_name_the_cause_and_change_nothing() {
    // No main configuration.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let out = fails(&install_args(&root, "2.1"));
    assert!(
        out.contains("config.toml: containerd's configuration does not exist"),
        "{out}"
    );
    assert!(tree(&root).is_empty());

    // Not TOML: the line is named, the file untouched.
    let broken = "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\"\nx = 1\n";
    let (_dir, root) = node(|_| broken.to_string());
    let before = tree(&root);
    let out = fails(&install_args(&root, "2.1"));
    assert!(
        out.contains("not valid TOML") && out.contains("line 2"),
        "{out}"
    );
    assert_same_tree(&before, &tree(&root));

    // containerd 1.x.
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    let before = tree(&root);
    let out = fails(&install_args(&root, "1.7"));
    assert!(out.contains("needs containerd 2.0 or later"), "{out}");
    assert_same_tree(&before, &tree(&root));

    // A version 1 configuration.
    let (_dir, root) = node(|_| "[grpc]\n  address = \"/x\"\n".to_string());
    let before = tree(&root);
    let out = fails(&install_args(&root, "2.1"));
    assert!(out.contains("containerd config migrate"), "{out}");
    assert_same_tree(&before, &tree(&root));

    // An unwritable place late in the run (the state directory is a file): everything written before
    // it is undone, the main configuration included.
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    std::fs::write(root.join("var"), "not a directory").unwrap();
    let before = tree(&root);
    let out = fails(&install_args(&root, "2.1"));
    assert!(
        out.contains("cannot create") && out.contains("nothing was changed"),
        "{out}"
    );
    assert_same_tree(&before, &tree(&root));

    // A root that does not exist; a binary directory without the shim.
    let out = fails(&[
        "install",
        "--root",
        "/nonexistent/strict-root",
        "--containerd-version",
        "2.1",
    ]);
    assert!(out.contains("--root /nonexistent/strict-root"), "{out}");
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("strictctl"), "").unwrap();
    let out = fails(&[
        "install",
        "--root",
        root_arg(&root),
        "--containerd-version",
        "2.1",
        "--from",
        empty.path().to_str().unwrap(),
    ]);
    assert!(out.contains("containerd-shim-strict-v2 not found"), "{out}");
}

/// `containerd --config MAIN config dump`, parsed.
fn config_dump(main: &Path) -> toml::Table {
    let output = Command::new(containerd())
        .arg("--config")
        .arg(main)
        .args(["config", "dump"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "config dump failed: {}",
        text(&output)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .parse()
        .expect("config dump prints TOML")
}

/// Both handlers as containerd sees them.
fn assert_handlers_loaded(dump: &toml::Table, root: &Path) {
    let runtimes = &dump["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"];
    let shim = root.join("usr/local/bin/containerd-shim-strict-v2");
    for (handler, policy) in [
        ("strict", "strict.toml"),
        ("strict-complain", "strict-complain.toml"),
    ] {
        let table = runtimes
            .get(handler)
            .unwrap_or_else(|| panic!("containerd has no {handler} runtime: {runtimes}"));
        assert_eq!(
            table["runtime_type"].as_str(),
            Some("io.containerd.strict.v2")
        );
        assert_eq!(table["runtime_path"].as_str(), shim.to_str());
        assert_eq!(
            table["privileged_without_host_devices"].as_bool(),
            Some(true)
        );
        let config_path = root.join("etc/containerd").join(policy);
        assert_eq!(
            table["options"]["ConfigPath"].as_str(),
            config_path.to_str()
        );
        assert!(config_path.is_file());
    }
    assert!(shim.is_file());
}

#[test]
fn the_imports_drop_in_loads_into_containerd() {
    let containerd = containerd();
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    // The version comes from the test bed's containerd (2.1), which also checks the result.
    let out = succeeds(&[
        "install",
        "--root",
        root_arg(&root),
        "--containerd",
        containerd.to_str().unwrap(),
        "--real-binaries",
    ]);
    assert!(out.contains("containerd 2.1 (`"), "{out}");
    // The real binaries, from next to the running strictctl; they run from where they were installed.
    let built = Path::new(env!("CARGO_BIN_EXE_strictctl"));
    for name in ["strictctl", SHIM_BINARY] {
        let installed = root.join("usr/local/bin").join(name);
        assert!(
            std::fs::read(&installed).unwrap()
                == std::fs::read(built.with_file_name(name)).unwrap(),
            "{name} differs from the build"
        );
    }
    let version = Command::new(root.join("usr/local/bin").join(SHIM_BINARY))
        .arg("-v")
        .output()
        .unwrap();
    assert!(
        text(&version).contains("io.containerd.strict.v2"),
        "{}",
        text(&version)
    );
    assert!(out.contains("checked: `"), "{out}");
    let main = root.join("etc/containerd/config.toml");
    let dump = config_dump(&main);
    assert_handlers_loaded(&dump, &root);
    // The operator's runtime is still there, options and all.
    let runc = &dump["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"];
    assert_eq!(runc["options"]["SystemdCgroup"].as_bool(), Some(true));

    uninstall(&root);
    let dump = config_dump(&main);
    let runtimes = &dump["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"];
    assert!(runtimes.get("strict").is_none(), "{runtimes}");
}

#[test]
fn the_conf_d_drop_in_loads_into_containerd() {
    let containerd = containerd();
    let (_dir, root) = node(default_2_2);
    // 2.2 by flag; the test bed's 2.1 reads an imported conf.d the same way.
    succeeds(&[
        "install",
        "--root",
        root_arg(&root),
        "--containerd-version",
        "2.2",
        "--containerd",
        containerd.to_str().unwrap(),
    ]);
    assert!(root
        .join("etc/containerd/conf.d/strict-runtimes.toml")
        .is_file());
    assert_handlers_loaded(
        &config_dump(&root.join("etc/containerd/config.toml")),
        &root,
    );
}

#[test]
fn a_version_2_config_gets_a_version_2_drop_in_that_containerd_migrates() {
    let containerd = containerd();
    let (_dir, root) = node(|_| VERSION_2.to_string());
    succeeds(&[
        "install",
        "--root",
        root_arg(&root),
        "--containerd",
        containerd.to_str().unwrap(),
    ]);
    let drop_in_text = read(root.join("etc/containerd/strict-runtimes.toml"));
    assert_eq!(
        drop_in_text,
        drop_in_for_version(&root, &root.join("usr/local/bin").join(SHIM_BINARY), 2)
    );
    assert!(drop_in_text.contains("version = 2\n"));
    assert_handlers_loaded(
        &config_dump(&root.join("etc/containerd/config.toml")),
        &root,
    );
}

#[test]
fn a_drop_in_containerd_rejects_is_rolled_back() {
    // containerd refuses a main configuration whose imports it cannot read as TOML: an operator's
    // broken drop-in in the imports makes `config dump` fail, and install undoes everything.
    let containerd = containerd();
    let (_dir, root) = node(|root| {
        format!(
            "version = 3\nimports = [\"{}/etc/containerd/broken.toml\"]\n",
            root.display()
        )
    });
    std::fs::write(root.join("etc/containerd/broken.toml"), "version = [\n").unwrap();
    let before = tree(&root);
    let out = fails(&[
        "install",
        "--root",
        root_arg(&root),
        "--containerd",
        containerd.to_str().unwrap(),
    ]);
    assert!(
        out.contains("config dump` failed") && out.contains("nothing was changed"),
        "{out}"
    );
    assert_same_tree(&before, &tree(&root));
}

#[test]
fn a_linked_main_config_is_edited_where_it_lives_and_stays_a_link() {
    let (_dir, root) = node(|_| COMMENTED_2_1.to_string());
    let main = root.join("etc/containerd/config.toml");
    let real = root.join("etc/containerd/config.real.toml");
    std::fs::rename(&main, &real).unwrap();
    std::os::unix::fs::symlink("config.real.toml", &main).unwrap();
    let before = tree(&root);
    succeeds(&install_args(&root, "2.1"));
    assert!(std::fs::symlink_metadata(&main)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(read(&real).contains("strict-runtimes.toml"));
    uninstall(&root);
    assert_same_tree(&before, &tree(&root));
}
