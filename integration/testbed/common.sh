# Shell functions the test-bed scripts share (sourced, not run).

# The Debian mirror the system uses (deb822 .sources or one-line .list), security archive excluded.
debian_mirror() {
  local mirror
  mirror=$( {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs: *//p' | tr ' ' '\n'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -n 's/^deb \(\[[^]]*\] *\)\{0,1\}\([^ ]*\) .*/\2/p'
  } | grep -E '^https?://.*/debian/?$' | head -1 || true)
  echo "${mirror:-http://deb.debian.org/debian}"
}

# The tree of the `bare` base stand-in (integration/testbed/snaps/bare) in DIR: the directories snap-confine
# mounts the host's onto, a static busybox as /bin/sh, usr/bin/snapctl -> ../lib/snapd/snapctl.
bare_snap_tree() {
  local dir=$1 snaps
  snaps="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/snaps"
  mkdir -p "$dir"
  cp -r "$snaps/bare/meta" "$dir/"
  (cd "$dir" && mkdir -p bin dev etc home lib/modules lib/firmware media mnt proc root run snap sys tmp \
    usr/bin usr/lib/snapd usr/src var/lib/snapd var/lib/extrausers var/log var/snap var/tmp)
  cp /bin/busybox "$dir/bin/busybox"
  ln -s busybox "$dir/bin/sh"
  ln -s ../lib/snapd/snapctl "$dir/usr/bin/snapctl"
}
