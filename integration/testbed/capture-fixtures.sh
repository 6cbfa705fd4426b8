#!/usr/bin/env bash
# Captures real OCI specs from the private containerd 2.x: for each case, `ctr run -d` with the stock runc
# runtime, then the bundle's config.json (exactly as containerd wrote it, pretty-printed) is copied to
# policy/tests/fixtures/containerd/<name>.json and the container removed; README.md beside them is rewritten
# with the versions and the command of each case. Expected verdicts live beside them in expected.toml
# (written by hand, checked by policy/tests/fixtures.rs). Container ids are fixed (fixture-<name>), so a
# second run writes the same files.
#   capture-fixtures.sh [DIR]    DIR defaults to policy/tests/fixtures/containerd; the derived CRI spec
#                                goes to DIR/../cri
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/policy/tests/fixtures/containerd}
eval "$("$here/containerd.sh" env)"
"$here/containerd.sh" start
"$here/images.sh" >/dev/null
mkdir -p "$out" /media
image=localhost/strict/busybox:1
bundles="$CONTAINERD_STATE/io.containerd.runtime.v2.task/default"
commands=()
failed=()

remove() {
  local id=$1
  $CTR tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do
    $CTR tasks delete "$id" >/dev/null 2>&1 && break
    $CTR tasks list -q 2>/dev/null | grep -qx "$id" || break
    sleep 0.1
  done
  $CTR containers delete "$id" >/dev/null 2>&1 || true
}

# capture NAME CTR_RUN_FLAGS... ; with TTY=1 ctr gets a pseudo-terminal from script(1), which `ctr run -t`
# needs even detached.
capture() {
  local name=$1 id="fixture-$1" rc=0
  shift
  remove "$id"
  if [ "${TTY:-0}" = 1 ]; then
    script -qec "$CTR run -d $RUNC_OPTS --runtime io.containerd.runc.v2 $* $image $id sleep 100" /dev/null \
      </dev/null >/dev/null 2>&1 || rc=$?
  else
    # shellcheck disable=SC2086 # RUNC_OPTS is a list of flags
    $CTR run -d $RUNC_OPTS --runtime io.containerd.runc.v2 "$@" "$image" "$id" sleep 100 >/dev/null || rc=$?
  fi
  if [ "$rc" != 0 ] || ! [ -f "$bundles/$id/config.json" ]; then
    echo "capture of $name failed (ctr exit $rc); the end of containerd's log:" >&2
    tail -3 "$(dirname "$CONTAINERD_STATE")/containerd.log" | cut -c1-400 >&2
    remove "$id"
    failed+=("$name")
    return 0
  fi
  jq . "$bundles/$id/config.json" >"$out/$name.json"
  remove "$id"
  commands+=("| \`$name\` | \`ctr run -d --runtime io.containerd.runc.v2 ${*:+$* }$image $id sleep 100\` |")
  echo "captured $name"
}

capture default
capture privileged --privileged
capture mount-etc-ro --mount type=bind,src=/etc,dst=/host-etc,options=rbind:ro
capture mount-home-rw --mount type=bind,src=/home,dst=/h,options=rbind:rw
capture mount-media-rshared --mount type=bind,src=/media,dst=/media,options=rbind:rw:rshared
if [ -e /dev/kvm ]; then capture device-kvm --device /dev/kvm; else echo "no /dev/kvm: device-kvm not captured"; fi
if [ -e /dev/fuse ]; then capture device-fuse --device /dev/fuse; else echo "no /dev/fuse: device-fuse not captured"; fi
capture cap-add-sys-admin --cap-add CAP_SYS_ADMIN
capture cap-add-net-admin --cap-add CAP_NET_ADMIN
capture net-host --net-host
capture seccomp-default --seccomp
# The host's namespaces by path. pid 1's /proc/1/ns/* cannot be opened in every sandbox (this VM's init
# denies it), so a host process stands in; its pid in the captured path is rewritten to 1 (the same
# namespaces on a host).
sleep 600 &
host_pid=$!
trap 'kill $host_pid 2>/dev/null || true' EXIT
capture with-net-ns-host --with-ns network:/proc/$host_pid/ns/net
capture with-ipc-ns-host --with-ns ipc:/proc/$host_pid/ns/ipc
capture with-pid-ns-host --with-ns pid:/proc/$host_pid/ns/pid
for name in with-net-ns-host with-ipc-ns-host with-pid-ns-host; do
  if [ -f "$out/$name.json" ]; then sed -i "s|/proc/$host_pid/ns/|/proc/1/ns/|" "$out/$name.json"; fi
done
kill "$host_pid" 2>/dev/null || true
commands=("${commands[@]//\/proc\/$host_pid\//\/proc\/<pid>\/}")
capture rootfs-readonly --read-only
TTY=1 capture tty --tty
capture env-user --env FOO=bar --user 1000:1000
capture rootfs-propagation-shared --rootfs-propagation shared
capture userns --uidmap 0:100000:65536 --gidmap 0:100000:65536

containerd_version=$("${CTR%% *}" --version | awk '{print $3}')
{
  cat <<README
# Specs captured from containerd

Each \`<name>.json\` here is the \`config.json\` that containerd $containerd_version wrote into the task bundle
(\`.testbed/run/state/io.containerd.runtime.v2.task/default/<id>/config.json\`) for one \`ctr run\` on the
test bed's private containerd (\`integration/testbed/\`), pretty-printed with \`jq .\` and otherwise unchanged.
Their verdicts are in \`expected.toml\`, checked by \`policy/tests/fixtures.rs\`.

- captured: $(date -u +%Y-%m-%d) by \`integration/testbed/capture-fixtures.sh\` (re-run it to refresh; the ids are fixed, so
  a re-run on the same host writes the same files)
- containerd: $containerd_version (Debian unstable's \`containerd\` package, unpacked into \`.testbed/containerd\`)
- runc: $(/usr/sbin/runc --version | head -1 | awk '{print $3}') (Debian 12), libseccomp $(/usr/sbin/runc --version | sed -n 's/^libseccomp: //p'); kernel $(uname -r), cgroup v1 host
- image: \`$image\`, Debian's static busybox, built by \`integration/testbed/images.sh\`

Host-specific values are as captured: the container id in \`linux.cgroupsPath\` (\`/default/fixture-<name>\`),
the host's name in \`HOSTNAME\` (net-host), the uid/gid ranges of userns. The \`with-*-ns-host\` cases joined
the namespaces of a host process, \`<pid>\` below (\`/proc/1/ns/*\` cannot be opened in this sandbox), and the
pid in their \`linux.namespaces[].path\` was then rewritten to 1. \`tty\` ran \`ctr\` under \`script(1)\`, which
gives it the terminal that \`ctr run -t\` needs even detached. Every command was run as
\`ctr --address $ADDRESS run $RUNC_OPTS ...\` (\`<run>\`: \`.testbed/run\` or
\`\$STRICT_TESTBED_RUN\`); those runc options (binary, state root) reach the shim only, not the spec.

| fixture | command |
| --- | --- |
README
  printf '%s\n' "${commands[@]}"
  if ((${#failed[@]})); then
    printf '\nNot captured (ctr failed): %s\n' "${failed[*]}"
  fi
} | sed "s|$(dirname "$ADDRESS")/|<run>/|g; s|$repo/||g" >"$out/README.md"

# A CRI-shaped container spec for the benchmark (policy/benches): the RuntimeDefault capture, with what
# containerd's CRI adds for a pod container (internal/cri/opts): the pod's namespaces by path, the kubelet's
# and containerd's per-pod files, a service-account token, a ConfigMap, an emptyDir and a hostPath, and the
# CRI annotations. Kubelet paths are MicroK8s' (SNAP_COMMON).
kubelet=/var/snap/microk8s/common/var/lib/kubelet/pods/0d5c7e4b-3b7e-4f0e-9a2d-5b1c2d3e4f50
sandbox=/var/snap/microk8s/common/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/4f1d
shm=/var/snap/microk8s/common/run/containerd/io.containerd.grpc.v1.cri/sandboxes/4f1d/shm
cri=$(dirname "$out")/cri
mkdir -p "$cri"
jq --arg k "$kubelet" --arg s "$sandbox" --arg shm "$shm" '
  def bind($src; $dst; $opts): {destination: $dst, type: "bind", source: $src, options: (["rbind", "rprivate"] + $opts)};
  .mounts += [
    bind($s + "/hostname"; "/etc/hostname"; ["rw"]),
    bind($s + "/hosts"; "/etc/hosts"; ["rw"]),
    bind($s + "/resolv.conf"; "/etc/resolv.conf"; ["rw"]),
    bind($shm; "/dev/shm"; ["rw"]),
    bind($k + "/etc-hosts"; "/etc/hosts"; ["rw"]),
    bind($k + "/containers/web/8a1f2c3d"; "/dev/termination-log"; ["rw"]),
    bind($k + "/volumes/kubernetes.io~projected/kube-api-access-x7k2p"; "/var/run/secrets/kubernetes.io/serviceaccount"; ["ro"]),
    bind($k + "/volumes/kubernetes.io~configmap/config"; "/etc/nginx/conf.d"; ["ro"]),
    bind($k + "/volumes/kubernetes.io~empty-dir/cache"; "/var/cache/nginx"; ["rw"]),
    bind("/etc/localtime"; "/etc/localtime"; ["ro"])
  ]
  | .linux.namespaces = [
      {type: "pid"}, {type: "ipc", path: "/proc/4242/ns/ipc"}, {type: "uts", path: "/proc/4242/ns/uts"},
      {type: "mount"}, {type: "network", path: "/proc/4242/ns/net"}, {type: "cgroup"}
    ]
  | .annotations = {
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.container-name": "web",
      "io.kubernetes.cri.sandbox-id": "4f1d",
      "io.kubernetes.cri.sandbox-name": "web-7c9d",
      "io.kubernetes.cri.sandbox-namespace": "default",
      "io.kubernetes.cri.sandbox-uid": "0d5c7e4b-3b7e-4f0e-9a2d-5b1c2d3e4f50",
      "io.kubernetes.cri.image-name": "localhost/strict/busybox:1"
    }
' "$out/seccomp-default.json" >"$cri/container.json"
echo "derived $cri/container.json"
if ((${#failed[@]})); then
  echo "not captured: ${failed[*]}" >&2
  exit 1
fi
