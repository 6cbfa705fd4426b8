#!/usr/bin/env bash
# A real node for the tests: Debian 13 (trixie) with systemd as PID 1, cgroup v2 and journald, booted with
# QEMU's software emulation (this machine's /dev/kvm cannot run a stock kernel:
# ../shared/reference/node-vm-facts.md). Nothing leaves the machine: user-mode networking with
# restrict=on, one forwarded port (the CRI relay) on 127.0.0.1.
#
#   node.sh build          the node image, once: cached in .testbed/node/image-KEY, KEY a digest of what
#                          goes in (suite, packages, configure_root, unstable's containerd and runc), so only a
#                          change to one of them rebuilds it; prints the image directory
#   node.sh boot RUN_DIR   boots a throwaway copy of the image (a qcow2 overlay in RUN_DIR) with the
#                          project's static binaries and the test images on a second, read-only disk;
#                          runs QEMU in the foreground (exec): the caller owns it, and killing it leaves
#                          nothing behind but RUN_DIR
#
# The tests reach the node through the QEMU guest agent (qemu-ga, a virtio-serial port, RUN_DIR/agent.sock:
# guest-exec runs a command and returns its status and output) and reach its containerd's CRI through
# 127.0.0.1:$(cat RUN_DIR/cri.port), relayed by socat inside the node to /run/containerd/containerd.sock.
#
# The node, as an operator would have it: containerd 2.x and runc 1.3 installed from Debian unstable's
# packages with dpkg (containerd's unit, its /etc/containerd/config.toml), CNI plugins from Debian 13, snapd installed
# but disabled (the snapd test starts it: socket activation and seeding cost ~35 s of every boot
# otherwise), and the strict binaries at /payload/bin, not installed: installing them is what the tests do.
set -euo pipefail
# A failure inside $(...) stops the script too (a half-built image must never be cached).
shopt -s inherit_errexit
# ... and says where: errexit alone ends the script without a word.
set -E
trap 'echo "node-vm: line $LINENO: \`$BASH_COMMAND\` failed (status $?)" >&2' ERR
repo=$(cd "$(dirname "$0")/../.." && pwd)
self="$repo/integration/node-vm/node.sh"
top="$repo/.testbed/node"
suite=trixie
# What the node runs, beyond debootstrap's minbase: the system (debootstrap --include), then what apt
# installs into it (debootstrap does not resolve alternative dependencies, which snapd has).
packages=(systemd-sysv udev dbus kmod iproute2 procps util-linux e2fsprogs runc ca-certificates
  linux-image-amd64 initramfs-tools zstd)
apt_packages=(qemu-guest-agent socat containernetworking-plugins snapd squashfs-tools apparmor)

die() { echo "node-vm: $*" >&2; exit 1; }
# debian_mirror, bare_snap_tree
. "$repo/integration/testbed/common.sh"

# QEMU from bookworm-backports (the image's qemu-utils is from there, so bookworm's qemu-system-x86 cannot
# be installed beside it), debootstrap.
install_tools() {
  command -v qemu-system-x86_64 >/dev/null && command -v debootstrap >/dev/null && command -v qemu-img >/dev/null &&
    command -v mkfs.ext4 >/dev/null && command -v python3 >/dev/null && [ -x /bin/busybox ] && return 0
  if [ "$(. /etc/os-release && echo "$VERSION_CODENAME")" = bookworm ]; then
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "deb $(debian_mirror) bookworm-backports main" >/etc/apt/sources.list.d/bookworm-backports.list
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
  else
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 qemu-utils >/dev/null
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap e2fsprogs busybox-static python3 >/dev/null
}

# containerd and runc from Debian unstable (the test bed's containerd; unstable's runc 1.3 is its pair and,
# unlike Debian 13's 1.1, reports the seccomp filter flags it applies, so narrowed filters log denials).
# The newest downloaded package NAME, or nothing (a glob, not `ls | tail`: under pipefail and
# inherit_errexit a missing file would end the script there, silently).
downloaded_deb() {
  local debs=("$repo/.testbed/apt/debs/$1"_*.deb)
  if [ -e "${debs[-1]}" ]; then echo "${debs[-1]}"; fi
}

unstable_debs() {
  local name deb
  for name in containerd runc; do
    deb=$(downloaded_deb "$name")
    if [ -z "$deb" ]; then
      "$repo/integration/testbed/fetch-unstable.sh" "$repo/.testbed/apt/debs" "$name" >&2
      deb=$(downloaded_deb "$name")
    fi
    [ -n "$deb" ] || die "no $name package from Debian unstable in .testbed/apt/debs"
    echo "$deb"
  done
}

image_dir() {
  local key
  key=$( { echo "$suite ${packages[*]} ${apt_packages[*]}"; declare -f configure_root; unstable_debs | xargs cat | sha256sum; } |
    sha256sum | cut -c1-16)
  echo "$top/image-$key"
}

# Runs in the node's root (chroot) at build time; DEBS are the packages from unstable.
configure_root() {
  local root=$1
  shift
  # No service starts inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}" >/dev/null
  mkdir -p "$root/tmp/debs"
  cp "$@" "$root/tmp/debs/"
  chroot "$root" sh -c 'dpkg -i /tmp/debs/*.deb' >/dev/null
  rm -rf "$root/tmp/debs" "$root/usr/sbin/policy-rc.d"
  # QEMU's resolver (nothing resolves: the network is restricted); CRI copies the file into pods.
  echo "nameserver 10.0.2.3" >"$root/etc/resolv.conf"
  echo strict-node >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 strict-node\n' >"$root/etc/hosts"
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n/dev/vdb /payload ext4 ro,nofail 0 0\n' >"$root/etc/fstab"
  mkdir -p "$root/payload"
  : >"$root/etc/machine-id"
  # The network QEMU's user-mode stack gives (eth0 with net.ifnames=0), without a DHCP client.
  cat >"$root/etc/systemd/system/node-network.service" <<'UNIT'
[Unit]
Description=The node's address on QEMU's user-mode network
Before=network.target
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip link set lo up
ExecStart=/sbin/ip link set eth0 up
ExecStart=/sbin/ip addr add 10.0.2.15/24 dev eth0
ExecStart=/sbin/ip route add default via 10.0.2.2
[Install]
WantedBy=multi-user.target
UNIT
  # The tests' CRI client reaches containerd through this relay (QEMU forwards 127.0.0.1:PORT to it).
  cat >"$root/etc/systemd/system/cri-relay.service" <<'UNIT'
[Unit]
Description=Test bed: containerd's socket on TCP 10010 for the host's CRI client
After=node-network.service
[Service]
ExecStart=/usr/bin/socat TCP-LISTEN:10010,fork,reuseaddr UNIX-CONNECT:/run/containerd/containerd.sock
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
  # The pods' network, as on the host test bed.
  mkdir -p "$root/etc/cni/net.d"
  cat >"$root/etc/cni/net.d/10-strict.conflist" <<'CNI'
{
  "cniVersion": "1.0.0",
  "name": "strict-node",
  "plugins": [
    {"type": "bridge", "bridge": "strict-br0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.0.0/24"}]]}}
  ]
}
CNI
  chroot "$root" systemctl enable node-network.service cri-relay.service containerd.service >/dev/null 2>&1
  # snapd is started by the test that needs it; nothing periodic runs during a test.
  chroot "$root" systemctl disable snapd.socket snapd.service snapd.seeded.service snapd.apparmor.service \
    >/dev/null 2>&1 || true
  chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    dpkg-db-backup.timer man-db.timer >/dev/null 2>&1 || true
  # Journald keeps the kernel's audit lines (the seccomp tests read them with journalctl).
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' >"$root/etc/systemd/journald.conf.d/strict-node.conf"
  passwd -R "$root" -l root >/dev/null
  apt-get clean -o "Dir=$root" 2>/dev/null || true
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

build() {
  install_tools
  mkdir -p "$top"
  # One build at a time.
  exec 8>"$top/build.lock"
  flock 8
  local dir
  dir=$(image_dir)
  [ -n "$dir" ] || die "no image directory"
  if [ -f "$dir/base.raw" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/initrd.img" ]; then
    echo "$dir"
    return 0
  fi
  mkdir -p "$top"
  # Older images (another key) go: each is 4 GiB (sparse).
  rm -rf "$top"/image-* "$top"/building
  local work="$top/building" started=$SECONDS
  mkdir -p "$work"
  echo "node-vm: debootstrap $suite (${packages[*]}), then ${apt_packages[*]}" >&2
  debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$work/root" "$(debian_mirror)" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  # shellcheck disable=SC2046 # two paths without blanks
  configure_root "$work/root" $(unstable_debs)
  cp "$(readlink -f "$work/root/vmlinuz")" "$work/vmlinuz"
  cp "$(readlink -f "$work/root/initrd.img")" "$work/initrd.img"
  mkfs.ext4 -q -F -L strict-node -d "$work/root" "$work/base.raw" 4G
  rm -rf "$work/root"
  mv "$work" "$dir"
  echo "node-vm: built $dir in $((SECONDS - started)) s" >&2
  echo "$dir"
}

# The second disk: the project's static binaries, the test images and the test snaps' sources, read-only at
# /payload.
payload() {
  local run=$1 dist="$repo/target/static"
  local stage="$run/payload"
  rm -rf "$stage" "$run/payload.raw"
  mkdir -p "$stage/bin" "$stage/images"
  for binary in strictctl containerd-shim-strict-v2; do
    [ -x "$dist/$binary" ] || die "$dist/$binary is missing: run scripts/build-dist.sh"
    cp "$dist/$binary" "$stage/bin/"
  done
  for image in busybox pause; do
    [ -f "$repo/.testbed/images/$image.tar" ] || die "no $image image: run integration/testbed/images.sh build"
    cp "$repo/.testbed/images/$image.tar" "$stage/images/"
  done
  # The snaps the snapd test installs (no store here), as the snapd test bed packs them: the `bare`
  # base and `snapd` stand-ins, and `microk8s` with the vendor profile's plugs and the strictctl above.
  local snaps="$repo/integration/testbed/snaps" src="$stage/snaps"
  mkdir -p "$src/snapd/usr/lib/snapd" "$src/microk8s/bin"
  bare_snap_tree "$src/bare"
  cp -r "$snaps/snapd/meta" "$src/snapd/"
  python3 "$snaps/microk8s/prepare.py" "$repo/vendor-profiles/snaps/microk8s.toml" "$src/microk8s"
  cp "$dist/strictctl" "$src/microk8s/bin/strictctl"
  cp /bin/busybox "$src/microk8s/bin/sh"
  mkfs.ext4 -q -F -L payload -d "$stage" "$run/payload.raw" 256M
  rm -rf "$stage"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

boot() {
  local run=$1 dir
  build >/dev/null
  exec 8>&- # the build lock: not QEMU's to hold
  dir=$(image_dir)
  mkdir -p "$run"
  rm -f "$run/disk.qcow2" "$run/agent.sock" "$run/console.log"
  qemu-img create -q -f qcow2 -F raw -b "$dir/base.raw" "$run/disk.qcow2"
  payload "$run"
  local port
  port=$(free_port)
  echo "$port" >"$run/cri.port"
  exec qemu-system-x86_64 -name strict-node -accel tcg,thread=multi -cpu max -M q35 -m 2048 -smp 2 \
    -nodefaults -display none -no-reboot \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.unified_cgroup_hierarchy=1 panic=-1" \
    -drive "file=$run/disk.qcow2,if=virtio,format=qcow2" \
    -drive "file=$run/payload.raw,if=virtio,format=raw,readonly=on" \
    -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-10.0.2.15:10010" \
    -device virtio-net-pci,netdev=net0 \
    -device virtio-serial-pci \
    -chardev "socket,path=$run/agent.sock,server=on,wait=off,id=agent" \
    -device virtserialport,chardev=agent,name=org.qemu.guest_agent.0 \
    -serial "file:$run/console.log"
}

case "${1:-}" in
  build) build ;;
  boot) [ $# -eq 2 ] || die "usage: node.sh boot RUN_DIR"; boot "$2" ;;
  *) echo "usage: node.sh build | boot RUN_DIR" >&2; exit 2 ;;
esac
