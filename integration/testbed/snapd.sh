#!/usr/bin/env bash
# A real snapd from Debian's packages for end-to-end tests, in a private PID + mount namespace per VERSION:
#   stable    Debian 12's snapd (2.57.x: no `snapctl is-connected --list`)
#   unstable  Debian unstable's snapd (2.77.x: has `--list`), fetched through a private sources list
# Each package is fetched once (`apt-get download` + `dpkg -x`) into .testbed/snapd/VERSION/pkg. Inside the
# namespace the root is rebuilt (then pivot_root): /etc, /usr, /var, /root and /home are overlays of the
# host's whose writes land in .testbed/snapd/VERSION/root/upper, with the package's usr/, etc/, var/ layered
# over the host's (snapd runs as /usr/lib/snapd/snapd, as installed); /run and /snap are directories under
# .testbed/snapd/VERSION/root; /dev, /sys, /tmp, /work and the rest are the host's. The host's
# /run/snapd.socket, /var/lib/snapd, /snap and /etc/systemd are never touched. unstable's snap-confine and
# snap-seccomp need a newer glibc and libseccomp than Debian 12's: unstable's libc6 and libseccomp2 are
# layered into that namespace's /usr only (and see build_capfix).
# snapd answers 403 to a peer outside its PID namespace (it cannot see the peer's PID), so the sockets the
# host uses, .testbed/snapd/VERSION/root/run/snapd.socket and snapd-snap.socket, are relays (socat, inside
# the namespace) to snapd's own; they exist exactly while snapd runs. The unpacked `snap` and `snapctl`
# honour SNAPPY_GLOBAL_ROOT=.testbed/snapd/VERSION/root: the host-side wrappers use it.
# Stand-ins on snapd's PATH: `systemctl` (mounts and unmounts snap-*.mount units), `udevadm` (exit 0). The
# namespace's init restarts snapd whenever it exits (snapd exits after installing the snapd snap, for systemd
# to restart it), unless held by `daemon VERSION stop`. Snaps, packed locally with `snap pack` and installed
# with --dangerous: `bare` (stand-in base), `snapd` (stand-in snapd snap, gives the system slots) and the test
# snap `microk8s` (plugs from vendor-profiles/snaps/microk8s.toml, apps running target/static/strictctl).
#
#   snapd.sh start VERSION                 start (idempotent), install the snaps, print the time it took
#   snapd.sh install-snap VERSION [PLUG..] reinstall microk8s declaring only these plugs (all when none)
#   snapd.sh env VERSION                   print SNAPD_SOCKET, SNAP_BIN, SNAPCTL_DIR, SNAP_COOKIE, SNAPD_PID, ...
#   snapd.sh exec VERSION CMD...           run CMD inside the namespace (e.g. snap run microk8s.strictctl ...)
#   snapd.sh daemon VERSION stop|start     stop snapd and hold it stopped / let it run and wait for its API
#   snapd.sh stop VERSION|all              end the namespace, clean up; keeps the package and packed snaps
#
# Plugs that cannot be connected here: configuration and ceph-conf (content: no provider snap, `snap "snapd"
# has no "content" interface slots`). Everything else in the profile installs and connects with --dangerous.
# Reinstalling microk8s (install-snap) gives it a new cookie. STRICTCTL overrides target/static/strictctl.
set -euo pipefail
self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/../.." && pwd)
# bare_snap_tree
. "$repo/integration/testbed/common.sh"
testbed="$repo/.testbed"
top="$testbed/snapd"
snaps_src="$repo/integration/testbed/snaps"
profile="$repo/vendor-profiles/snaps/microk8s.toml"
strictctl=${STRICTCTL:-$repo/target/static/strictctl}

say() { echo "snapd-testbed: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n 's/^#   snapd.sh/usage: snapd.sh/p' "$self" >&2
  exit 2
}

set_version() {
  version=$1
  case "$version" in stable | unstable) ;; *) die "unknown VERSION '$version' (stable or unstable)" ;; esac
  vdir="$top/$version"
  pkg="$vdir/pkg"
  root="$vdir/root"
  ns_run="$root/ns-run"
  socket="$root/run/snapd.socket"
  snap_socket="$root/run/snapd-snap.socket"
  bin="$vdir/bin"
  standins="$vdir/standins"
  hold="$vdir/hold"
}

# --- fetching -------------------------------------------------------------------------------------------

fetch() {
  # Host tools: squashfs-tools (snap pack, squashfs mounts), busybox-static (the base's /bin/sh), curl.
  local need=() p
  local tools=(squashfs-tools busybox-static curl util-linux python3 socat)
  [ "$version" = stable ] || tools+=(gcc libc6-dev libcap2)
  for p in "${tools[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if ((${#need[@]})); then
    say "installing ${need[*]}"
    (
      flock 9
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    ) 9>"$top/apt.lock"
  fi
  [ -x "$pkg/usr/lib/snapd/snapd" ] && { [ "$version" = stable ] || [ -e "$vdir/libs/$capfix" ]; } && return 0
  say "fetching snapd ($version)"
  rm -rf "$vdir/debs" "$pkg" "$vdir/libs"
  mkdir -p "$vdir/debs"
  if [ "$version" = stable ]; then
    (cd "$vdir/debs" && { apt-get -o APT::Sandbox::User=root download snapd >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get -o APT::Sandbox::User=root download snapd >/dev/null; }; })
  else
    "$repo/integration/testbed/fetch-unstable.sh" "$vdir/debs" snapd libc6 libseccomp2
    mkdir -p "$vdir/libs"
    dpkg -x "$vdir/debs"/libc6_*.deb "$vdir/libs"
    dpkg -x "$vdir/debs"/libseccomp2_*.deb "$vdir/libs"
    build_capfix
  fi
  dpkg -x "$vdir/debs"/snapd_*.deb "$pkg"
}

# snapd 2.77's snap-confine (file capabilities instead of setuid) insists on having cap_sys_resource in its
# permitted set ("snap-confine is packaged without necessary permissions and cannot continue / required
# permitted capability cap_sys_resource not found in current capabilities: =ep cap_sys_resource-ep"), and
# then on raising it. A test machine that is itself a container may lack it in its bounding set, as this one
# does; nothing can grant it. Preloaded into the unstable namespace only (its /etc/ld.so.preload) and only
# when the bounding set lacks it, this makes libcap report it permitted and leave it out of cap_set_proc;
# snap-confine then sets up the sandbox without it (it is dropped before the app runs anyway).
capfix=usr/lib/snapd-testbed/capfix.so
build_capfix() {
  mkdir -p "$(dirname "$vdir/libs/$capfix")"
  gcc -shared -fPIC -O2 -x c -o "$vdir/libs/$capfix" - -ldl -l:libcap.so.2 <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
typedef void *cap_t;
typedef int cap_value_t, cap_flag_t, cap_flag_value_t;
extern cap_t cap_dup(cap_t);
extern int cap_free(void *);
extern int cap_set_flag(cap_t, cap_flag_t, int, const cap_value_t *, cap_flag_value_t);
enum { SYS_RESOURCE = 24, PERMITTED = 1, SET = 1, CLEAR = 0 };
int cap_get_flag(cap_t c, cap_value_t v, cap_flag_t f, cap_flag_value_t *out) {
  int (*real)(cap_t, cap_value_t, cap_flag_t, cap_flag_value_t *) = dlsym(RTLD_NEXT, "cap_get_flag");
  int r = real(c, v, f, out);
  if (r == 0 && v == SYS_RESOURCE && f == PERMITTED) *out = SET;
  return r;
}
int cap_set_proc(cap_t c) {
  int (*real)(cap_t) = dlsym(RTLD_NEXT, "cap_set_proc");
  cap_t d = cap_dup(c);
  if (!d) return real(c);
  const cap_value_t v = SYS_RESOURCE;
  for (int f = 0; f < 3; f++) cap_set_flag(d, f, 1, &v, CLEAR);
  int r = real(d);
  cap_free(d);
  return r;
}
C
}

# --- stand-ins and host-side wrappers --------------------------------------------------------------------

write_tools() {
  mkdir -p "$bin" "$standins" "$vdir/snapctl"
  # systemctl: snapd mounts snaps through snap-*.mount units (What/Where/Type/Options) it writes to
  # /etc/systemd/system; `start` mounts, `stop` unmounts, is-active/show report the mount; the rest succeeds.
  cat >"$standins/systemctl" <<'STANDIN'
#!/bin/bash
# systemctl stand-in of the snapd test bed (integration/testbed/snapd.sh).
echo "systemctl $*" >>/run/testbed-systemctl.log
action= units=() props=
for arg in "$@"; do
  case "$arg" in
    --version) echo "systemd 252 (252-testbed)"; exit 0 ;;
    --property=*) props=${arg#--property=} ;;
    -p) ;;
    -*) ;;
    *) if [ -z "$action" ]; then action=$arg; else units+=("$arg"); fi ;;
  esac
done
key() { sed -n "s/^$1=//p" "/etc/systemd/system/$2" 2>/dev/null | tail -1; }
mounted() { local where; where=$(key Where "$1"); [ -n "$where" ] && mountpoint -q "$where"; }
rc=0
for unit in "${units[@]}"; do
  case "$action:$unit" in
    start:*.mount | restart:*.mount | reload-or-restart:*.mount | try-restart:*.mount)
      mounted "$unit" && continue
      what=$(key What "$unit") where=$(key Where "$unit") type=$(key Type "$unit") opts=$(key Options "$unit")
      [ -n "$what" ] || { echo "Unit $unit not found." >&2; rc=5; continue; }
      mkdir -p "$where"
      mount -t "$type" -o "$opts" "$what" "$where" || rc=1 ;;
    stop:*.mount)
      where=$(key Where "$unit")
      if [ -n "$where" ] && mountpoint -q "$where"; then umount -l "$where" || rc=1; fi ;;
    is-active:*.mount)
      if mounted "$unit"; then echo active; else echo inactive; rc=3; fi ;;
    is-active:*) echo inactive; rc=3 ;;
    # Everything is enabled (snapd warns "the snapd.apparmor service is disabled" otherwise).
    is-enabled:*) echo enabled ;;
    show:*)
      # A pattern (show ... '*.mount') lists the matching unit files; units are separated by a blank line.
      case "$unit" in
        *'*'*) names=$(cd /etc/systemd/system && for f in $unit; do [ -f "$f" ] && echo "$f"; done) ;;
        *) names=$unit ;;
      esac
      for name in $names; do
        state=inactive
        case "$name" in *.mount) mounted "$name" && state=active ;; esac
        [ -e "/etc/systemd/system/$name" ] && file=enabled || file=disabled
        [ -n "$props" ] || props=Id,Names,ActiveState,UnitFileState,Type,NeedDaemonReload
        [ -z "${shown:-}" ] || echo
        shown=1
        for p in ${props//,/ }; do
          case "$p" in
            Id | Names) echo "$p=$name" ;;
            ActiveState) echo "ActiveState=$state" ;;
            SubState) [ "$state" = active ] && echo SubState=mounted || echo SubState=dead ;;
            UnitFileState) echo "UnitFileState=$file" ;;
            NeedDaemonReload) echo "NeedDaemonReload=no" ;;
            FragmentPath) [ "$file" = enabled ] && echo "FragmentPath=/etc/systemd/system/$name" || echo "FragmentPath=" ;;
            *) echo "$p=$(key "$p" "$name")" ;;
          esac
        done
      done ;;
  esac
done
exit $rc
STANDIN
  printf '#!/bin/sh\n# udevadm stand-in (no udevd here): rules are written, never applied.\nexit 0\n' >"$standins/udevadm"
  # Host-side wrappers: the unpacked clients honour SNAPPY_GLOBAL_ROOT, so they use $root/run's sockets.
  cat >"$bin/snap" <<WRAPPER
#!/bin/sh
# The $version snap client against the snapd test bed's snapd ($root/run/snapd.socket), run on the host.
SNAPPY_GLOBAL_ROOT=$root SNAP_REEXEC=0 exec $pkg/usr/bin/snap "\$@"
WRAPPER
  cat >"$vdir/snapctl/snapctl" <<WRAPPER
#!/bin/sh
# The $version snapctl against the snapd test bed's snap socket ($root/run/snapd-snap.socket), run on the
# host with SNAP_COOKIE set to a snap's cookie.
SNAPPY_GLOBAL_ROOT=$root SNAP_REEXEC=0 exec $pkg/usr/lib/snapd/snapctl "\$@"
WRAPPER
  chmod +x "$standins/systemctl" "$standins/udevadm" "$bin/snap" "$vdir/snapctl/snapctl"
}

# --- the namespace ----------------------------------------------------------------------------------------

ns_pid() { # [VERSION]
  local v=${1:-$version} pid
  pid=$(cat "$top/$v/ns.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "__init $v" && echo "$pid"
}

# Host PID of the running snapd: the init's child whose command is snapd.
snapd_pid() {
  local ns child
  ns=$(ns_pid) || return 1
  for child in $(cat /proc/"$ns"/task/*/children 2>/dev/null); do
    [ "$(cat "/proc/$child/comm" 2>/dev/null)" = snapd ] && { echo "$child"; return 0; }
  done
  return 1
}

api_up() {
  [ -S "$socket" ] && curl -sf --max-time 5 --unix-socket "$socket" http://localhost/v2/system-info >/dev/null 2>&1
}

wait_api() {
  local i
  for i in $(seq 1 600); do
    api_up && return 0
    ns_pid >/dev/null || die "the $version namespace died; see $vdir/init.log and $vdir/snapd.log"
    sleep 0.1
  done
  die "snapd ($version) did not answer within 60 s; see $vdir/snapd.log"
}

# PID 1 of the namespace (runs inside it): rebuild the root, pivot into it, run snapd in a loop.
ns_init() {
  local new="$vdir/newroot" upper="$root/upper" work="$root/work" entry name
  mkdir -p "$new" "$root/run" "$ns_run" "$root/snap" "$upper" "$work"
  mount -t tmpfs -o mode=755 testbed-root "$new"
  for entry in /* /.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    name=${entry#/}
    if [ -L "$entry" ]; then
      ln -s "$(readlink "$entry")" "$new/$name"
    elif [ -d "$entry" ]; then
      mkdir "$new/$name"
      case "$name" in
        proc) ;;
        run) mount --bind "$ns_run" "$new/run" ;;
        etc | usr | var | root | home)
          local lower="/$name"
          [ -d "$pkg/$name" ] && lower="$pkg/$name:$lower"
          [ "$version" = unstable ] && [ -d "$vdir/libs/$name" ] && lower="$vdir/libs/$name:$lower"
          mkdir -p "$upper/$name" "$work/$name"
          mount -t overlay -o "lowerdir=$lower,upperdir=$upper/$name,workdir=$work/$name" "testbed-$name" "$new/$name" ;;
        dev | sys) mount --rbind "$entry" "$new/$name" ;;
        # Not recursive: the namespace must not hold copies of mounts made later under /tmp or /work
        # (containerd's container root filesystems, say) once the host unmounts them.
        *) mount --bind "$entry" "$new/$name" ;;
      esac
    else
      touch "$new/$name"
      mount --bind "$entry" "$new/$name"
    fi
  done
  [ -e "$new/snap" ] || mkdir "$new/snap"
  mount --bind "$root/snap" "$new/snap"
  mkdir "$new/.oldroot"
  cd "$new"
  pivot_root . .oldroot
  cd /
  mount -t proc proc /proc
  umount -l /.oldroot
  rmdir /.oldroot
  # Shared, as under systemd (within this namespace only: its mounts are private copies of the host's).
  # Otherwise snap-confine bind-mounts /snap over itself to make it shared, and the snap mounts under
  # the hidden /snap can no longer be unmounted ("umount: /snap/microk8s/x1: not mounted" on remove).
  mount --make-rshared /
  mkdir -p /run/lock /run/snapd /var/lib/snapd/snaps /etc/systemd/system
  if [ "$version" = unstable ]; then
    ldconfig
    # See build_capfix: when the bounding set lacks cap_sys_resource (bit 24).
    (($(awk '/^CapBnd:/ {print "0x" $2}' /proc/self/status) & (1 << 24))) || echo "/$capfix" >/etc/ld.so.preload
  fi
  export PATH="$standins:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  export SNAPD_STANDBY_WAIT=87600h SNAP_REEXEC=0 SNAPD_DEBUG=1 HOME=/root
  echo "namespace ready"
  local pid relays
  while :; do
    if [ -e "$hold" ]; then
      sleep 0.2
      continue
    fi
    echo "$(date '+%F %T') starting snapd" >>"$vdir/snapd.log"
    /usr/lib/snapd/snapd >>"$vdir/snapd.log" 2>&1 &
    pid=$!
    relay "$pid" snapd.socket 2>>"$vdir/relay.log" &
    relays=$!
    relay "$pid" snapd-snap.socket 2>>"$vdir/relay.log" &
    relays="$relays $!"
    wait "$pid" || true
    echo "$(date '+%F %T') snapd exited" >>"$vdir/snapd.log"
    kill $relays 2>/dev/null || true
    wait $relays 2>/dev/null || true
    rm -f "$root/run/snapd.socket" "$root/run/snapd-snap.socket"
    sleep 0.2
  done
}

# The host-facing socket $root/run/NAME, relayed to snapd's /run/NAME from inside the namespace: snapd
# refuses (403) a peer whose PID it cannot see, as is any process outside its PID namespace. snapd sees
# the relay's credentials (root, a PID of the namespace); snapctl requests carry SNAP_COOKIE. The backlog is
# the kernel's, as on snapd's own socket: snapd before 2.60 gets one snapctl per plug at once (30 for MicroK8s).
relay() { # relay SNAPD_PID NAME
  while ! [ -S "/run/$2" ]; do
    kill -0 "$1" 2>/dev/null || exit 0
    sleep 0.05
  done
  exec socat "UNIX-LISTEN:$root/run/$2,fork,unlink-early,mode=666,backlog=4096" "UNIX-CONNECT:/run/$2"
}

# One CPU for everything in the namespace (snapd, its hooks, `exec`). snap-confine keeps a snap's mount
# namespace by bind-mounting /proc/PID/ns/mnt, which the kernel refuses (EINVAL, "cannot preserve mount
# namespace of process N as SNAP.mnt: Invalid argument") unless the new namespace's id is above the
# binder's. Linux 6.18 hands out namespace ids in per-CPU batches, so a namespace made on the other CPU can
# get a lower id: on this 2-CPU machine one first `snap run` in four failed that way. Ids made on one CPU
# only grow. `exec` joins the init's CPU.
pin_cpu() { # [PID]: the first CPU PID (this shell) may run on
  local list
  list=$(taskset -pc "${1:-$$}" | sed 's/.*: //')
  list=${list%%,*}
  echo "${list%%-*}"
}

start_ns() {
  ns_pid >/dev/null && return 0
  fetch
  write_tools
  cleanup_host
  rm -f "$hold"
  : >"$vdir/snapd.log"
  local cpu
  cpu=$(pin_cpu)
  (cd / && exec 8>&- 9>&- && exec taskset -c "$cpu" setsid unshare --pid --fork --mount --mount-proc --propagation private \
    bash "$self" __init "$version") </dev/null >"$vdir/init.log" 2>&1 &
  local upid=$! i child=
  for i in $(seq 1 100); do
    child=$(cat /proc/$upid/task/$upid/children 2>/dev/null | awk '{print $1}')
    [ -n "$child" ] && break
    sleep 0.05
  done
  [ -n "$child" ] || die "unshare did not start the namespace; see $vdir/init.log"
  echo "$child" >"$vdir/ns.pid"
  echo "$upid" >"$vdir/unshare.pid"
  wait_api
}

# --- snaps ------------------------------------------------------------------------------------------------

snapc() { "$bin/snap" "$@"; }

installed() { snapc list "$1" >/dev/null 2>&1; }

pack() { # pack NAME: $vdir/snaps/src/NAME -> $vdir/snaps/NAME.snap
  local out="$vdir/snaps/$1.snap"
  rm -f "$out"
  "$pkg/usr/bin/snap" pack "$vdir/snaps/src/$1" "$vdir/snaps" >/dev/null
  mv "$vdir/snaps/$1"_*.snap "$out"
}

pack_standins() {
  local src="$vdir/snaps/src"
  if ! [ -e "$vdir/snaps/bare.snap" ]; then
    rm -rf "$src/bare"
    bare_snap_tree "$src/bare"
    pack bare
  fi
  if ! [ -e "$vdir/snaps/snapd.snap" ]; then
    rm -rf "$src/snapd"
    mkdir -p "$src/snapd/usr/lib/snapd"
    cp -r "$snaps_src/snapd/meta" "$src/snapd/"
    cp "$pkg/usr/lib/snapd/info" "$src/snapd/usr/lib/snapd/info"
    pack snapd
  fi
}

pack_microk8s() {
  [ -x "$strictctl" ] || die "no strictctl at $strictctl (scripts/build-dist.sh builds target/static)"
  local src="$vdir/snaps/src/microk8s"
  rm -rf "$src"
  mkdir -p "$src/bin"
  python3 "$snaps_src/microk8s/prepare.py" "$profile" "$src" "$@"
  cp "$strictctl" "$src/bin/strictctl"
  cp /bin/busybox "$src/bin/sh"
  pack microk8s
}

# snap install, tolerating the client losing snapd when it restarts itself (after the snapd snap).
install_file() {
  local name=$1 file=$2 out
  if ! out=$(timeout 120 "$bin/snap" install --dangerous "$file" 2>&1); then
    wait_api
    installed "$name" || { echo "$out" >&2; die "cannot install $name ($version)"; }
  fi
  wait_api
  # Let the change settle (restart of snapd included) before the next one.
  local i
  for i in $(seq 1 300); do
    snapc changes 2>/dev/null | grep -qE '\b(Do|Doing|Undo|Undoing|Wait)\b' || return 0
    sleep 0.1
  done
}

install_microk8s() {
  pack_microk8s "$@"
  if installed microk8s; then
    timeout 120 "$bin/snap" remove --purge microk8s >/dev/null
  fi
  install_file microk8s "$vdir/snaps/microk8s.snap"
}

cookie() {
  cat "$root/upper/var/lib/snapd/cookie/snap.microk8s" 2>/dev/null || true
}

# --- stopping ---------------------------------------------------------------------------------------------

# What a namespace may leave on the host once it is gone: loop devices backed by its snaps, its state.
cleanup_host() {
  local dev
  for dev in $(losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v d="$vdir/" 'index($2, d) == 1 {print $1}'); do
    losetup -d "$dev" 2>/dev/null || true
  done
  grep -q " $vdir/" /proc/self/mountinfo && awk -v d="$vdir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$root" "$vdir/newroot" "$vdir/ns.pid" "$vdir/unshare.pid" "$hold"
  # What snap-confine leaves on the host, shared by both namespaces: the snaps' cgroups (/sys is the
  # host's) and their private /tmp (/tmp is the host's). Removed when neither namespace runs, and only
  # when no real snapd runs here.
  local other=stable
  [ "$version" = stable ] && other=unstable
  if ! ns_pid "$other" >/dev/null && ! [ -e /run/snapd.socket ]; then
    find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -depth -type d -name 'snap.microk8s*' -exec rmdir {} + 2>/dev/null || true
    rmdir /sys/fs/cgroup/systemd/snapd-testbed-* 2>/dev/null || true
    rm -rf /tmp/snap-private-tmp /tmp/snap.microk8s
  fi
}

stop_ns() {
  local ns upid i
  if ns=$(ns_pid); then
    upid=$(cat "$vdir/unshare.pid" 2>/dev/null || true)
    kill -KILL "$ns" 2>/dev/null || true
    for i in $(seq 1 100); do
      [ -e "/proc/$ns" ] || break
      sleep 0.05
    done
    if [ -n "$upid" ]; then
      for i in $(seq 1 100); do
        tr '\0' ' ' 2>/dev/null <"/proc/$upid/cmdline" | grep -q "__init $version" || break
        sleep 0.05
      done
    fi
  fi
  # The namespace's snap mounts went with it; their loop devices clear themselves shortly after.
  for i in $(seq 1 50); do
    losetup -nO BACK-FILE 2>/dev/null | grep -q "^$vdir/" || break
    sleep 0.1
  done
  cleanup_host
}

# --- commands ---------------------------------------------------------------------------------------------

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
if [ "$cmd" = __init ]; then
  set_version "$1"
  ns_init
  exit 0
fi
if [ "$cmd" = stop ] && [ "${1:-}" = all ]; then
  "$self" stop stable
  "$self" stop unstable
  exit 0
fi
[ $# -ge 1 ] || usage
set_version "$1"
shift
mkdir -p "$vdir"

locked() { # run "$@" holding this VERSION's lock (parallel test binaries may all call start)
  exec 8>"$vdir/lock"
  flock 8
  "$@"
}

case "$cmd" in
  start)
    begin=$(date +%s.%N)
    do_start() {
      start_ns
      pack_standins
      installed bare || install_file bare "$vdir/snaps/bare.snap"
      installed snapd || install_file snapd "$vdir/snaps/snapd.snap"
      installed microk8s || install_microk8s
      [ -n "$(cookie)" ] || die "no cookie for microk8s ($version)"
    }
    locked do_start
    awk -v v="$version" -v b="$begin" -v e="$(date +%s.%N)" 'BEGIN { printf "snapd-testbed: %s up in %.1f s\n", v, e - b }'
    ;;
  install-snap)
    ns_pid >/dev/null || die "$version is not running: snapd.sh start $version"
    locked install_microk8s "$@"
    ;;
  env)
    ns=$(ns_pid) || die "$version is not running: snapd.sh start $version"
    sv=$(sed -n 's/^VERSION=//p' "$pkg/usr/lib/snapd/info")
    cat <<VARS
SNAPD_SOCKET=$socket
SNAPD_SNAP_SOCKET=$snap_socket
SNAPD_ROOT=$root
SNAP_BIN=$bin/snap
SNAPCTL_DIR=$vdir/snapctl
SNAP_COOKIE=$(cookie)
SNAPD_PID=$(snapd_pid || true)
NS_PID=$ns
SNAPD_VERSION=${sv%%-*}
VARS
    ;;
  exec)
    [ $# -ge 1 ] || usage
    ns=$(ns_pid) || die "$version is not running: snapd.sh start $version"
    # `snap run` of snapd 2.77 refuses to start an app of a snap on a base other than core*
    # ("The user root cannot run snap applications on this system. ... error: cannot track application
    # process") when it cannot have systemd (absent here) put it in a transient scope, unless the
    # process already is in one: a name=systemd cgroup named like the scope systemd would create,
    # snap.SNAP.APP-ID.scope (the check is only on that name). So `exec VERSION snap run SNAP.APP ...`
    # runs in such a cgroup, removed when it ends; snapd 2.57 does not mind.
    scope=
    if [ "$1" = snap ] && [ "${2:-}" = run ]; then
      for arg in "${@:3}"; do
        case "$arg" in --hook* | --) break ;; -*) ;; *.*) scope="snap.$arg-testbed$$.scope"; break ;; *) break ;; esac
      done
    fi
    enter=(taskset -c "$(pin_cpu "$ns")" nsenter --target "$ns" --mount --pid -r -w -- env -u SNAPPY_GLOBAL_ROOT SNAP_REEXEC=0
      PATH="$standins:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # -r -w: the init's root and working directory (/), not this process's, which the namespace cannot see.
    [ -n "$scope" ] && [ -d /sys/fs/cgroup/systemd ] || exec "${enter[@]}" "$@"
    scope_dir="/sys/fs/cgroup/systemd/snapd-testbed-$version/$scope"
    mkdir -p "$scope_dir"
    rc=0
    "${enter[@]}" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$scope_dir" "$@" || rc=$?
    rmdir "$scope_dir" 2>/dev/null || true
    exit "$rc"
    ;;
  daemon)
    ns_pid >/dev/null || die "$version is not running: snapd.sh start $version"
    case "${1:-}" in
      stop)
        touch "$hold"
        for i in $(seq 1 300); do
          pid=$(snapd_pid) || break
          kill -TERM "$pid" 2>/dev/null || true
          sleep 0.1
        done
        ! snapd_pid >/dev/null || die "snapd ($version) did not stop"
        [ ! -S "$socket" ] || die "snapd ($version) stopped but left $socket"
        ;;
      start)
        rm -f "$hold"
        wait_api
        ;;
      *) usage ;;
    esac
    ;;
  stop)
    # Stopping must not wait for ever on a stuck start or install: it ends them anyway.
    exec 8>"$vdir/lock"
    flock -w 10 8 || say "$version: the lock is held; stopping anyway"
    stop_ns
    ;;
  *) usage ;;
esac
