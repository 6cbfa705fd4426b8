#!/usr/bin/env bash
# The whole test suite. Works on a fresh Debian 12 machine as root: installs what it needs first.
# Under CI=true nothing may be skipped: a missing containerd or runc fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing the test bed (runc, busybox, libseccomp, containerd 2.x) =="
integration/testbed/install.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== format and lints =="
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings

echo "== one release build, shared by every test; the installed binaries (static, dist profile) =="
cargo build --workspace --release --bins
scripts/build-dist.sh
# The long-running shim links no policy (its dependency graph and the installed binary).
scripts/check-layout.sh
# The integration tests build their images on first use; building them here keeps the tests' own time
# for the tests (busybox and pause from Debian's static busybox, nginx by debootstrap).
integration/testbed/images.sh build
# The node VM's image (integration/node-vm: Debian 13, systemd, cgroup v2), cached in .testbed/node by
# what goes into it: about 2 minutes on a fresh machine, nothing when cached. QEMU comes with it.
integration/node-vm/node.sh build >/dev/null

echo "== tests =="
# The live-snapd tests start the snapd test bed (integration/testbed/snapd.sh) on first use; it ends with
# the run, whatever its outcome.
trap 'integration/testbed/snapd.sh stop all >/dev/null 2>&1 || true' EXIT
cargo test --workspace --release
