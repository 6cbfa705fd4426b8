#!/usr/bin/env bash
# Builds what gets installed: containerd-shim-strict-v2 and strictctl, linked statically (glibc and
# libseccomp, no PIE, as Debian's containerd-shim-runc-v2 is not PIE either) with the `dist` profile,
# into target/static/ (a link to target/<host triple>/dist/). A shim with no shared libraries to map and no
# relocations to apply keeps ~2 MiB less resident per pod (docs/benchmarks.md).
#
# Usage: scripts/build-dist.sh [cargo build options]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps these flags away from build scripts and proc macros, which are loaded as shared objects.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static"
# libseccomp-sys links the shared library unless told otherwise; a static binary cannot load it.
export LIBSECCOMP_LINK_TYPE=static
LIBSECCOMP_LIB_PATH=$(dirname "$(gcc -print-file-name=libseccomp.a)")
export LIBSECCOMP_LIB_PATH
[ -f "$LIBSECCOMP_LIB_PATH/libseccomp.a" ] || {
  echo "build-dist: libseccomp.a is missing (apt-get install libseccomp-dev)" >&2
  exit 1
}
cargo build --profile dist --target "$host" -p strict-shim -p strictctl --bins "$@"
# Cargo's target directory (CARGO_TARGET_DIR and build.target-dir move it).
target=$(cargo metadata --no-deps --format-version 1 | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
if [ -e "$target/static" ] && [ ! -L "$target/static" ]; then
  echo "build-dist: $target/static exists and is not a link: remove it" >&2
  exit 1
fi
ln -sfn "$host/dist" "$target/static"
echo "build-dist: $target/static -> $(readlink -f "$target/static")" >&2
