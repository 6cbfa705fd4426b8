#!/usr/bin/env bash
# The long-running shim links no policy: checked on its dependency graph, and (when the installed build
# exists) on the binary itself. Run by scripts/test.sh; a stray dependency or `use` fails CI.
#
# - strict-shim and strict-protocol may not depend on the policy's crates. containerd-shim 0.12 itself
#   depends on oci-spec (for helpers the shim does not call) and on cgroups-rs, whose zbus build pulls
#   toml_edit into a proc macro: those come through containerd-shim only, so its subtree is set aside
#   (`--prune`) and the binary check below shows none of them is linked.
# - target/static/containerd-shim-strict-v2 (scripts/build-dist.sh) holds no symbol of those crates.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

forbidden='strict-policy|strictctl|libseccomp|libseccomp-sys|oci-spec|toml|toml_edit|toml_parser|clap|regex'
status=0

leaked=$(cargo tree -p strict-shim -e normal --prune containerd-shim --prefix none \
  | awk '{print $1}' | sort -u | grep -xE "$forbidden" | paste -sd' ' - || true)
if [ -n "$leaked" ]; then
  echo "check-layout: strict-shim depends on $leaked (the long-running shim must link no policy)" >&2
  status=1
fi

# Nothing at all, containerd-shim's subtree included, brings the policy or libseccomp: the shim builds and
# links on a machine without libseccomp-dev.
native=$(cargo tree -p strict-shim -e normal,build --prefix none | awk '{print $1}' | sort -u \
  | grep -xE 'strict-policy|strictctl|libseccomp|libseccomp-sys' | paste -sd' ' - || true)
if [ -n "$native" ]; then
  echo "check-layout: strict-shim's dependency graph holds $native" >&2
  status=1
fi

# The protocol crate is the wire: serde only.
direct=$(cargo tree -p strict-protocol -e normal --depth 1 --prefix none | awk 'NR > 1 {print $1}' | sort -u | paste -sd' ' -)
if [ "$direct" != "serde" ]; then
  echo "check-layout: strict-protocol depends on '$direct'; it must depend on serde only" >&2
  status=1
fi

check_binary() {
  local binary=$1 symbols
  symbols=$(nm --defined-only "$binary" 2>/dev/null || true)
  [ -n "$symbols" ] || { echo "check-layout: $binary has no symbols to check (stripped?)" >&2; return 2; }
  {
    # Rust symbols carry their crate's name (legacy mangling: a length, then the name: 13strict_policy).
    printf '%s\n' "$symbols" | grep -oE '[0-9]+(strict_policy|strictctl|libseccomp|oci_spec|toml_edit|toml_parser|toml)[0-9_]' \
      | sed -E 's/^[0-9]+//; s/[0-9_]$//'
    # libseccomp's own C functions.
    printf '%s\n' "$symbols" | awk '{print $3}' | grep -xE 'seccomp_(init|rule_add|load|export_bpf)' | sed 's/^/libseccomp:/'
  } | sort -u | paste -sd' ' - || true
}

shim=$(cargo metadata --no-deps --format-version 1 | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/static/containerd-shim-strict-v2
if [ -x "$shim" ]; then
  linked=$(check_binary "$shim")
  if [ -n "$linked" ]; then
    echo "check-layout: $shim contains code of: $linked" >&2
    status=1
  fi
  # The check itself must see what it looks for: strictctl, next to the shim, holds all of it.
  found=$(check_binary "$(dirname "$shim")/strictctl")
  case "$found" in
    *strict_policy*libseccomp*|*libseccomp*strict_policy*) ;;
    *) echo "check-layout: the symbol check finds no policy even in strictctl ($found): it checks nothing" >&2; status=1 ;;
  esac
else
  echo "check-layout: $shim not built (scripts/build-dist.sh); dependency graph checked only" >&2
fi

[ "$status" = 0 ] && echo "check-layout: the shim links no policy"
exit "$status"
