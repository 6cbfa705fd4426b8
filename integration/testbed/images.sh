#!/usr/bin/env bash
# Builds the test images locally (no registry is reachable) and imports them into the private containerd:
#   localhost/strict/busybox:1   Debian's static busybox, every applet linked, CMD sh
#   localhost/strict/pause:1     the same with CMD sleep forever, the CRI sandbox image
#   localhost/strict/nginx:1     Debian bookworm (debootstrap --variant=minbase) with nginx-light, from the
#                                mirror the system uses; CMD nginx -g 'daemon off;'
#   localhost/strict/devnull-link:1  busybox whose /dev/null is a symlink into /proc: the precondition of
#                                runc's CVE-2025-31133, which the gate refuses under a runc without the fix
# Each image is a hand-assembled OCI layout (one uncompressed layer, reproducible tar), cached in
# .testbed/images/NAME.tar (built only if missing) and imported into the `default` and `k8s.io`
# namespaces of the test bed's containerd. Idempotent.
#   images.sh [NAME...]          build what is missing and import (all images, or the named ones)
#   images.sh build [NAME...]    only build the tars; the integration harness imports them into its own
#                                containerd
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/.testbed/images"
mkdir -p "$out"
images=(busybox pause nginx devnull-link)

sha() { sha256sum "$1" | cut -d' ' -f1; }

# debian_mirror
. "$here/common.sh"

# Work directories, removed on exit; whatever a failed debootstrap left mounted in them is unmounted first.
works=()
cleanup() {
  local work m
  for work in ${works[@]+"${works[@]}"}; do
    awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
      umount -l "$m" || true
    done
    rm -rf --one-file-system "$work"
  done
}
trap cleanup EXIT
workdir() { local work; work=$(mktemp -d); works+=("$work"); echo "$work"; }

# rootfs_busybox DIR: Debian's static busybox with every applet linked.
rootfs_busybox() {
  local root=$1 applet
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
}

# rootfs_nginx DIR: Debian bookworm minbase with nginx-light, without apt lists, docs, man pages, logs.
rootfs_nginx() {
  local root=$1 mirror
  command -v debootstrap >/dev/null || { echo "images.sh: debootstrap is missing: run integration/testbed/install.sh" >&2; return 1; }
  mirror=$(debian_mirror)
  echo "images.sh: debootstrap bookworm minbase + nginx-light from $mirror" >&2
  # debootstrap keeps services from starting while it installs (policy-rc.d, a fake start-stop-daemon).
  if ! debootstrap --variant=minbase --include=nginx-light \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
      bookworm "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    return 1
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian \
    "$root"/usr/share/locale/* "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.bash_history
  # Logs of the build (dpkg, apt, bootstrap): the files go, the directories (/var/log/nginx) stay.
  find "$root/var/log" -type f -delete
  # What debootstrap copied from the build host.
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  # Device nodes come from the runtime, not the image.
  find "$root/dev" -mindepth 1 -delete
}

# package NAME CMD_JSON ROOTFS WORK -> $out/NAME.tar, replaced atomically.
package() {
  local name=$1 cmd=$2 root=$3 work=$4
  mkdir -p "$work/layout/blobs/sha256"
  # Owners are kept (a Debian rootfs has files of other users and groups); times are not.
  tar --sort=name --mtime=@0 --numeric-owner --one-file-system -C "$root" -cf "$work/layer.tar" .
  local layer layer_size config config_size manifest manifest_size
  layer=$(sha "$work/layer.tar"); layer_size=$(stat -c %s "$work/layer.tar")
  mv "$work/layer.tar" "$work/layout/blobs/sha256/$layer"
  jq -cn --arg diff "sha256:$layer" --argjson cmd "$cmd" '{
      architecture: "amd64", os: "linux",
      config: {Cmd: $cmd, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], WorkingDir: "/"},
      rootfs: {type: "layers", diff_ids: [$diff]}
    }' >"$work/config.json"
  config=$(sha "$work/config.json"); config_size=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$work/layout/blobs/sha256/$config"
  jq -cn --arg c "sha256:$config" --argjson cs "$config_size" --arg l "sha256:$layer" --argjson ls "$layer_size" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]
    }' >"$work/manifest.json"
  manifest=$(sha "$work/manifest.json"); manifest_size=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$work/layout/blobs/sha256/$manifest"
  jq -cn --arg m "sha256:$manifest" --argjson ms "$manifest_size" --arg ref "localhost/strict/$name:1" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
                   platform: {architecture: "amd64", os: "linux"},
                   annotations: {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": "1"}}]
    }' >"$work/layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" -cf "$out/.$name.tar.partial" .
  mv "$out/.$name.tar.partial" "$out/$name.tar"
}

# build NAME -> $out/NAME.tar
build() {
  local name=$1 cmd work
  case $name in
    busybox) cmd='["sh"]' ;;
    pause) cmd='["sleep","2147483647"]' ;;
    nginx) cmd='["nginx","-g","daemon off;"]' ;;
    devnull-link) cmd='["sh"]' ;;
    *) echo "images.sh: unknown image $name (known: ${images[*]})" >&2; return 2 ;;
  esac
  work=$(workdir)
  case $name in
    busybox | pause) rootfs_busybox "$work/rootfs" ;;
    nginx) rootfs_nginx "$work/rootfs" ;;
    devnull-link)
      # runc's CVE-2025-31133 precondition: the image's /dev/null a symlink into the host's procfs.
      rootfs_busybox "$work/rootfs"
      mkdir -p "$work/rootfs/dev"
      ln -s /proc/sys/kernel/core_pattern "$work/rootfs/dev/null"
      ;;
  esac
  package "$name" "$cmd" "$work/rootfs" "$work"
}

mode=import
if [ "${1:-}" = build ]; then mode=build; shift; fi
wanted=("${images[@]}")
if [ $# -gt 0 ]; then wanted=("$@"); fi
# One builder at a time: test binaries and scripts may ask for the same image concurrently.
exec 9>"$out/.lock"
flock 9
for image in "${wanted[@]}"; do
  [ -f "$out/$image.tar" ] || build "$image"
done
flock -u 9
[ "$mode" = build ] && exit 0

eval "$("$here/containerd.sh" env)"
for image in "${wanted[@]}"; do
  for ns in default k8s.io; do
    $CTR -n "$ns" images import --no-unpack=false --local "$out/$image.tar" >/dev/null 2>&1 \
      || $CTR -n "$ns" images import "$out/$image.tar" >/dev/null
  done
done
$CTR -n default images list -q
