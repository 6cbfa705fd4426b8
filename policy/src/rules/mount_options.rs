//! Mount options: every option of every mount is one the gate knows. runc and crun turn an option they
//! do not recognise as a flag into the filesystem's data string, which the kernel then interprets: an
//! unknown option is not "no effect", it is something nobody judged.
//!
//! These are facts of Linux and of the OCI runtimes (which flags exist, which data keys each filesystem
//! takes), not grants: the grants (which types, which paths) stay in the vendor profiles.

/// Flags the runtimes apply with mount(2)/mount_setattr(2), for any type. What they change stays inside
/// the container's own mount (access times, suid/dev/exec, sync) or is judged elsewhere: `ro`/`rw`/`rro`
/// by the path grants, propagation by the propagation rule, `idmap` by the user-namespace rule, `remount`
/// refused on its own. A `match`, not a list: every mount's every option goes through here.
fn is_flag(option: &str) -> bool {
    matches!(
        option,
        "defaults"
            | "ro"
            | "rw"
            | "rro"
            | "rrw"
            | "bind"
            | "rbind"
            | "suid"
            | "nosuid"
            | "rsuid"
            | "rnosuid"
            | "dev"
            | "nodev"
            | "rdev"
            | "rnodev"
            | "exec"
            | "noexec"
            | "rexec"
            | "rnoexec"
            | "sync"
            | "async"
            | "dirsync"
            | "mand"
            | "nomand"
            | "atime"
            | "noatime"
            | "ratime"
            | "rnoatime"
            | "diratime"
            | "nodiratime"
            | "rdiratime"
            | "rnodiratime"
            | "relatime"
            | "norelatime"
            | "rrelatime"
            | "rnorelatime"
            | "strictatime"
            | "nostrictatime"
            | "rstrictatime"
            | "rnostrictatime"
            | "lazytime"
            | "nolazytime"
            | "symfollow"
            | "nosymfollow"
            | "rsymfollow"
            | "rnosymfollow"
            | "iversion"
            | "noiversion"
            | "silent"
            | "loud"
            | "acl"
            | "noacl"
            | "private"
            | "rprivate"
            | "slave"
            | "rslave"
            | "shared"
            | "rshared"
            | "unbindable"
            | "runbindable"
            | "idmap"
            | "ridmap"
            | "tmpcopyup"
            | "remount"
    )
}

/// Data keys (`key` or `key=value`) each kernel filesystem the base may grant takes, and that change
/// nothing outside the container's own instance: sizes, modes and owners of a tmpfs, the new devpts
/// instance's modes, procfs' pid visibility. Bind mounts take none (the kernel ignores their data, so
/// one there is a mistake or a probe).
const DATA_KEYS: &[(&str, &[&str])] = &[
    (
        "tmpfs",
        &[
            "size",
            "mode",
            "nr_inodes",
            "nr_blocks",
            "uid",
            "gid",
            "huge",
            "inode32",
            "inode64",
            "noswap",
            "mpol",
        ],
    ),
    (
        "devpts",
        &["newinstance", "ptmxmode", "mode", "gid", "uid", "max"],
    ),
    ("proc", &["hidepid", "subset", "gid"]),
    ("mqueue", &[]),
    ("sysfs", &[]),
    ("cgroup", &[]),
    ("cgroup2", &["nsdelegate", "memory_recursiveprot"]),
];

/// The first option of a mount of type `typ` (None: a bind mount) that the gate does not know.
pub(crate) fn unknown_option<'o>(typ: Option<&str>, options: &'o [String]) -> Option<&'o str> {
    let keys: &[&str] = typ
        .and_then(|typ| DATA_KEYS.iter().find(|(t, _)| *t == typ))
        .map(|(_, keys)| *keys)
        .unwrap_or(&[]);
    options.iter().map(String::as_str).find(|option| {
        let key = option.split_once('=').map_or(*option, |(key, _)| key);
        !is_flag(option) && !keys.contains(&key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(list: &[&str]) -> Vec<String> {
        list.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn flags_go_anywhere_and_data_keys_only_on_their_filesystem() {
        let cri_volume = options(&["rbind", "rprivate", "ro", "nosuid", "nodev"]);
        assert_eq!(unknown_option(None, &cri_volume), None);
        let tmpfs = options(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(unknown_option(Some("tmpfs"), &tmpfs), None);
        let devpts = options(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(unknown_option(Some("devpts"), &devpts), None);
        // A tmpfs key on a bind mount, a made-up option, a cgroup v1 hierarchy by name.
        assert_eq!(
            unknown_option(None, &options(&["rbind", "size=1"])),
            Some("size=1")
        );
        assert_eq!(
            unknown_option(Some("tmpfs"), &options(&["x-strict"])),
            Some("x-strict")
        );
        assert_eq!(
            unknown_option(Some("cgroup"), &options(&["name=systemd"])),
            Some("name=systemd")
        );
        // An unknown type has no data keys at all.
        assert_eq!(
            unknown_option(Some("ext4"), &options(&["errors=remount-ro"])),
            Some("errors=remount-ro")
        );
    }
}
