#!/usr/bin/env bash
# The demo: the strict gate on real container specs captured from containerd 2.x. Shows one container
# narrowed, the same container allowed once narrowed, and one refused with the message users see.
# Works on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s libseccomp-dev jq >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq libseccomp-dev pkg-config jq >/dev/null
fi
cargo build --release -q --bin strictctl
strictctl=target/release/strictctl
fixtures=policy/tests/fixtures/containerd
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || true; }

echo "Connected interfaces (the strict MicroK8s snap's defaults):"
show "$strictctl" interfaces

echo
echo "1. busybox as 'ctr run' starts it (no seccomp filter): narrowed, and the spec runc gets is written out."
show "$strictctl" check "$fixtures/default.json" --write-spec "$work/narrowed.json"
echo "   its seccomp filter now:"
jq -c '.linux.seccomp | {defaultAction, defaultErrnoRet, flags, allowed: (.syscalls[0].names | length)}' "$work/narrowed.json"

echo
echo "2. The narrowed spec again: allowed unchanged (narrowing is idempotent)."
show "$strictctl" check "$work/narrowed.json"

echo
echo "3. busybox with the host's /etc bind-mounted: refused, with the message kubectl describe would show."
show "$strictctl" check "$fixtures/mount-etc-ro.json"

echo
echo "4. The same with system-files (read: /etc) connected instead of the defaults:"
show "$strictctl" check "$fixtures/mount-etc-ro.json" --connect network-control --connect system-files:read=/etc

echo
echo "5. A privileged container, as JSON:"
show "$strictctl" check "$fixtures/privileged.json" --format json
