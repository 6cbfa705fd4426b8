#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian 12 machine (as root), and nothing twice:
# build tools, Rust, runc, busybox-static, debootstrap (for the nginx image), protoc (the gRPC tests'
# containerd client), CNI plugins and iproute2 (the CRI tests' pod network) from Debian stable, and
# containerd 2.x from Debian unstable, fetched with `apt-get download` through a private sources list
# (fetch-unstable.sh) and unpacked into .testbed/ (the system's apt configuration is not touched). Prints
# where everything is.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
testbed="$repo/.testbed"
mkdir -p "$testbed"

need=()
for pkg in runc busybox-static libseccomp-dev pkg-config jq build-essential ca-certificates curl strace protobuf-compiler debootstrap containernetworking-plugins iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "installing Rust (Debian's rustup)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustup >/dev/null
    rustup default stable
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component" >/dev/null 2>&1 || true
done

# containerd 2.x from Debian unstable, into .testbed/containerd.
containerd="$testbed/containerd/usr/bin/containerd"
if ! [ -x "$containerd" ]; then
  echo "fetching containerd from Debian unstable"
  "$repo/integration/testbed/fetch-unstable.sh" "$testbed/apt/debs" containerd
  rm -rf "$testbed/containerd"
  dpkg -x "$testbed/apt/debs"/containerd_*.deb "$testbed/containerd"
fi
"$containerd" --version
"$testbed/containerd/usr/bin/ctr" --version
runc --version | head -1
cargo --version
echo "busybox: $(dpkg -s busybox-static | sed -n 's/^Version: //p')"
