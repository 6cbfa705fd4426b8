#!/usr/bin/env bash
# A private containerd 2.x for tests and the demo: its own root, state, sockets and config under
# .testbed/run (or $STRICT_TESTBED_RUN), the strict runtime registered for ctr and for CRI.
#   containerd.sh start    start it (idempotent) and wait until it answers
#   containerd.sh stop     stop it, its shims and containers, and unmount what they left
#   containerd.sh env      print the variables the other scripts use (ADDRESS, CTR, ...)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
testbed="$repo/.testbed"
run=${STRICT_TESTBED_RUN:-$testbed/run}
bin="$testbed/containerd/usr/bin"
address="$run/containerd.sock"
shim_dir=${STRICT_SHIM_DIR:-${CARGO_TARGET_DIR:-$repo/target}/static}

env_vars() {
  cat <<VARS
ADDRESS=$address
CTR="$bin/ctr --address $address"
CONTAINERD_ROOT=$run/root
CONTAINERD_STATE=$run/state
SHIM=$shim_dir/containerd-shim-strict-v2
RUNC_OPTS="--runc-binary /usr/sbin/runc --runc-root $run/runc"
STRICT_CONFIG=${STRICT_CONFIG:-$run/strict.toml}
VARS
}

write_config() {
  mkdir -p "$run"
  cat >"$run/config.toml" <<CONFIG
version = 3
root = "$run/root"
state = "$run/state"

[grpc]
  address = "$address"

[ttrpc]
  address = "$address.ttrpc"

# Nothing outside \$run: NRI's socket and the opt plugin default to host-wide paths (/var/run/nri,
# /opt/containerd) that a system containerd would use too.
[plugins."io.containerd.internal.v1.opt"]
  path = "$run/opt"

[plugins."io.containerd.nri.v1.nri"]
  socket_path = "$run/nri/nri.sock"
  plugin_path = "$run/nri/plugins"
  plugin_config_path = "$run/nri/conf.d"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "localhost/strict/pause:1"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # The sandbox's oom_score_adj (-998) would need CAP_SYS_RESOURCE, which a test machine that is itself a
  # container may lack: keep it no lower than containerd's own, as for a nested containerd.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict]
      runtime_type = "io.containerd.strict.v2"
      runtime_path = "$shim_dir/containerd-shim-strict-v2"
      privileged_without_host_devices = true
    # The same shim in complain mode: its own configuration through the runtime options.
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict-complain]
      runtime_type = "io.containerd.strict.v2"
      runtime_path = "$shim_dir/containerd-shim-strict-v2"
      privileged_without_host_devices = true
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict-complain.options]
        ConfigPath = "$run/strict-complain.toml"
    # A node whose snap has only the network interface connected (the tests' other half of each grant).
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict-minimal]
      runtime_type = "io.containerd.strict.v2"
      runtime_path = "$shim_dir/containerd-shim-strict-v2"
      privileged_without_host_devices = true
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict-minimal.options]
        ConfigPath = "$run/strict-minimal.toml"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$run/cni/conf"
CONFIG
  # (Indented: the test harness extracts this function up to the first line that starts with "}".)
  # The pods' network: a bridge of its own with addresses from a private range, leases kept in \$run.
  mkdir -p "$run/cni/conf" "$run/cni/ipam"
  cat >"$run/cni/conf/10-strict.conflist" <<CNI
  {
    "cniVersion": "1.0.0",
    "name": "strict-testbed",
    "plugins": [
      {
        "type": "bridge",
        "bridge": "strict-br0",
        "isGateway": true,
        "ipMasq": false,
        "ipam": {
          "type": "host-local",
          "ranges": [[{"subnet": "10.231.0.0/24"}]],
          "dataDir": "$run/cni/ipam"
        }
      }
    ]
  }
CNI
  cat >>"$run/config.toml" <<CONFIG

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
CONFIG
}

is_up() {
  [ -S "$address" ] && "$bin/ctr" --address "$address" version >/dev/null 2>&1
}

start() {
  if is_up; then
    return 0
  fi
  [ -x "$bin/containerd" ] || { echo "containerd is not installed: run integration/testbed/install.sh" >&2; exit 1; }
  write_config
  mkdir -p "$run/cni/bin" "$run/cni/conf"
  # The strict shim's configuration (containerd passes its environment to shims): the snap's embedded
  # connections; runc's state and the audit trail inside the run directory, so nothing is shared with a
  # system containerd; this containerd's root and state as the node layout (its snapshots are the only
  # root filesystems, its sandboxes' files the pods' own).
  if [ -z "${STRICT_CONFIG:-}" ]; then
    printf 'source = "embedded"\n\n[runtime]\nbinary = "/usr/sbin/runc"\nroot = "%s"\n\n[audit]\npath = "%s"\n\n[node]\ncontainerd_roots = ["%s"]\ncontainerd_states = ["%s"]\nkubelet_roots = ["%s"]\n' \
      "$run/runc" "$run/audit.log" "$run/root" "$run/state" "$run/kubelet" >"$run/strict.toml"
    printf 'mode = "complain"\nhandler = "strict-complain"\n%s' "$(cat "$run/strict.toml")" >"$run/strict-complain.toml"
    sed 's/^source = "embedded"$/handler = "strict-minimal"\nsource = "static"\nconnections = ["network"]/' \
      "$run/strict.toml" >"$run/strict-minimal.toml"
    export STRICT_CONFIG="$run/strict.toml"
  fi
  # containerd finds shims (containerd-shim-<name>-v2) in its PATH: ours first, then runc's from the package.
  PATH="$shim_dir:$bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    setsid "$bin/containerd" --config "$run/config.toml" --log-level "${CONTAINERD_LOG_LEVEL:-info}" \
    >>"$run/containerd.log" 2>&1 </dev/null &
  echo $! >"$run/containerd.pid"
  for _ in $(seq 1 100); do
    if is_up; then
      return 0
    fi
    if ! kill -0 "$(cat "$run/containerd.pid")" 2>/dev/null; then
      echo "containerd exited; its log:" >&2
      tail -20 "$run/containerd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "containerd did not answer within 10 s; its log:" >&2
  tail -20 "$run/containerd.log" >&2
  exit 1
}

# Pids of the shims serving this containerd: an exact match on "-address <our socket>", nothing broader.
shim_pids() {
  local dir argv
  for dir in /proc/[0-9]*; do
    argv=$( { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    case "$argv" in
      *containerd-shim*" -address $address "*) echo "${dir#/proc/}" ;;
    esac
  done
}

stop() {
  if is_up; then
    for ns in $("$bin/ctr" --address "$address" namespaces list -q 2>/dev/null); do
      for task in $("$bin/ctr" --address "$address" -n "$ns" tasks list -q 2>/dev/null); do
        "$bin/ctr" --address "$address" -n "$ns" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
        "$bin/ctr" --address "$address" -n "$ns" tasks delete -f "$task" >/dev/null 2>&1 || true
      done
      for c in $("$bin/ctr" --address "$address" -n "$ns" containers list -q 2>/dev/null); do
        "$bin/ctr" --address "$address" -n "$ns" containers delete "$c" >/dev/null 2>&1 || true
      done
    done
  fi
  if [ -f "$run/containerd.pid" ]; then
    pid=$(cat "$run/containerd.pid")
    # Only if that pid is still our containerd (not a reused pid).
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$bin/containerd" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$run/containerd.pid"
  fi
  # Shims of this containerd that outlived it (their command line names its socket; the others exit by
  # themselves once their tasks are deleted), then what they left mounted.
  for pid in $(shim_pids); do kill -9 "$pid" 2>/dev/null || true; done
  { grep -o " $run/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) env_vars ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
