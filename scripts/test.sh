#!/usr/bin/env bash
# The whole test suite. Works on a fresh Debian 12 machine as root: installs what it needs first.
# Under CI=true nothing may be skipped: a missing containerd or runc fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing the test bed (runc, busybox, libseccomp, containerd 2.x) =="
integration/testbed/install.sh

echo "== format and lints =="
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings

echo "== one release build, shared by every test =="
cargo build --workspace --release --bins

echo "== tests =="
cargo test --workspace --release
