#!/usr/bin/env bash
# The demo: a private containerd 2.x (Debian unstable's, with its own root, state and sockets in a temporary
# directory) with the strict runtime registered, and three containers through it:
#   1. narrowed: busybox as `ctr run` starts it, without a seccomp filter: it runs, with the granted syscalls
#      only (its filter is shown, and `unshare` fails inside);
#   2. allowed: a container whose spec already stays inside the connected interfaces runs unchanged;
#   3. refused: the host's /etc bind-mounted: it never starts, and the message says what to connect.
# Works on a fresh Debian 12 machine as root: installs what it needs first (integration/testbed/install.sh),
# and leaves nothing behind (containerd stopped, mounts and the temporary directory removed).
set -euo pipefail
cd "$(dirname "$0")/.."

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

bold "Installing the test bed (runc, busybox, containerd 2.x from Debian unstable) and building the shim"
integration/testbed/install.sh | sed 's/^/  /'
export PATH="$HOME/.cargo/bin:$PATH"
scripts/build-dist.sh -q

STRICT_TESTBED_RUN=$(mktemp -d /tmp/strict-demo.XXXXXX)
export STRICT_TESTBED_RUN
cleanup() {
  integration/testbed/containerd.sh stop >/dev/null 2>&1 || true
  rm -rf "$STRICT_TESTBED_RUN"
}
trap cleanup EXIT
integration/testbed/containerd.sh start
integration/testbed/images.sh busybox >/dev/null
eval "$(integration/testbed/containerd.sh env)"
ctr() { $CTR "$@"; }
strict=io.containerd.strict.v2
image=localhost/strict/busybox:1
decision() { grep -E "container (allowed|narrowed|refused) container=\"$1\"" "$STRICT_TESTBED_RUN/containerd.log" | tail -1 | cut -c1-400; }

bold "containerd $(ctr version 2>/dev/null | awk '/Version/ {v=$2} END {print v}') runs in $STRICT_TESTBED_RUN; the strict runtime is $strict."
echo "The host snap's connections the shim applies (the strict MicroK8s snap's defaults):"
target/static/strictctl interfaces | sed -n 1,12p | cut -c1-150 | sed "s/^/  /"
echo "  ..."

bold "1. Narrowed: busybox with no seccomp filter, as 'ctr run' starts it"
show ctr run -d --runtime "$strict" "$image" narrowed sleep 300
echo "The shim's decision (containerd's log):"
decision narrowed | sed 's/^/  /'
show ctr tasks exec --exec-id probe narrowed sh -c 'grep Seccomp: /proc/self/status; unshare -U true || echo "unshare -U: refused by the filter"'
echo "The seccomp filter runc installed (from the bundle's config.json):"
bundle="$CONTAINERD_STATE/io.containerd.runtime.v2.task/default/narrowed"
jq -r '.linux.seccomp | "  default action: \(.defaultAction) (errno \(.defaultErrnoRet // 1) = EPERM)",
  "  allowed: \([.syscalls[] | select(.action == "SCMP_ACT_ALLOW") | .names[]] | unique | length) syscalls, e.g. \([.syscalls[0].names[] ] | .[0:8] | join(", "))",
  "  with argument filters: \([.syscalls[] | select(.args != null) | .names[]] | unique | join(", "))"' "$bundle/config.json"
printf '  kept out (snapd keeps them behind interfaces):'
for name in mount unshare setns bpf ptrace keyctl init_module; do
  jq -e --arg n "$name" '[.linux.seccomp.syscalls[] | select(.action == "SCMP_ACT_ALLOW") | .names[]] | index($n)' "$bundle/config.json" >/dev/null \
    && printf ' %s (ALLOWED?)' "$name" || printf ' %s' "$name"
done
echo
jq '.linux.seccomp' "$bundle/config.json" >"$STRICT_TESTBED_RUN/granted-seccomp.json"
ctr tasks kill -s SIGKILL narrowed >/dev/null && sleep 0.3
ctr tasks delete narrowed >/dev/null 2>&1 || true
ctr containers delete narrowed >/dev/null

bold "2. Allowed: a container that asks only for what is granted (that filter, its own cgroup namespace) runs unchanged"
show ctr run --rm --runtime "$strict" --seccomp --seccomp-profile "$STRICT_TESTBED_RUN/granted-seccomp.json" \
  --with-ns cgroup: "$image" allowed sh -c 'echo "hello from a confined container: $(grep Seccomp: /proc/self/status)"'
echo "The shim's decision:"
decision allowed | sed 's/^/  /'

bold "3. Refused: the host's /etc bind-mounted into the container"
set +e
show ctr run --rm --runtime "$strict" --mount type=bind,src=/etc,dst=/host-etc,options=rbind:ro "$image" refused cat /host-etc/shadow
status=$?
set -e
echo "(ctr exit status $status; the container never started)"
ctr containers delete refused >/dev/null 2>&1 || true
echo "The same check offline, with every violation and the command that would allow it:"
spec=policy/tests/fixtures/containerd/mount-etc-ro.json
show target/static/strictctl check "$spec" || true

bold "Cleaning up: containerd stopped, its directory removed."
