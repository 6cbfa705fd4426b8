#!/usr/bin/env bash
# How long one decision takes with each source of connections: `strictctl check` of an ordinary spec (load
# the configuration and profiles, ask the source, evaluate), median of 20 runs. The live sources are the
# snapd test bed's (integration/testbed/snapd.sh start stable / unstable, started here if need be); the
# binary is the installed build (scripts/build-dist.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
sc=$repo/target/static/strictctl
spec=$repo/policy/tests/fixtures/containerd/default.json
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # label, env..., -- args
  local label=$1; shift
  for i in $(seq 20); do
    s=$(date +%s%N); env "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e-s)/1000 ))
  done | median | awk -v l="$label" '{printf "%-40s %.1f ms\n", l, $1/1000}'
}
for v in stable unstable; do "$repo/integration/testbed/snapd.sh" start "$v" >/dev/null; done
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
echo 'source = "embedded"' > $d/embedded.toml
run "embedded" "$sc" check "$spec" --config $d/embedded.toml
for v in stable unstable; do
  eval "$($repo/integration/testbed/snapd.sh env $v)"
  printf 'source = "snapd"\nsnapd_socket = "%s"\n' "$SNAPD_SOCKET" > $d/rest-$v.toml
  echo 'source = "snapctl"' > $d/snapctl.toml
  run "snapd REST ($SNAPD_VERSION)" "$sc" check "$spec" --config $d/rest-$v.toml
  run "snapctl ($SNAPD_VERSION)" SNAP_NAME=microk8s SNAP_COOKIE=$SNAP_COOKIE PATH=$SNAPCTL_DIR:$PATH "$sc" check "$spec" --config $d/snapctl.toml
done
