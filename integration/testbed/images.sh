#!/usr/bin/env bash
# Builds the test images locally (no registry is reachable) and imports them into the private containerd:
#   localhost/strict/busybox:1   Debian's static busybox, every applet linked, CMD sh
#   localhost/strict/pause:1     the same with CMD sleep forever, the CRI sandbox image
# Each image is a hand-assembled OCI layout (one uncompressed layer, reproducible tar), imported into the
# `default` and `k8s.io` namespaces. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
eval "$("$here/containerd.sh" env)"
out="$repo/.testbed/images"
mkdir -p "$out"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# build NAME CMD_JSON -> $out/NAME.tar
build() {
  local name=$1 cmd=$2 work
  work=$(mktemp -d)
  mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/root" "$work/layout/blobs/sha256"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$work/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
  chmod 1777 "$work/rootfs/tmp"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" .
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
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" -cf "$out/$name.tar" .
  rm -rf "$work"
}

for image in busybox pause; do
  if [ "$image" = busybox ]; then cmd='["sh"]'; else cmd='["sleep","2147483647"]'; fi
  [ -f "$out/$image.tar" ] || build "$image" "$cmd"
  for ns in default k8s.io; do
    $CTR -n "$ns" images import --no-unpack=false --local "$out/$image.tar" >/dev/null 2>&1 \
      || $CTR -n "$ns" images import "$out/$image.tar" >/dev/null
  done
done
$CTR -n default images list -q
