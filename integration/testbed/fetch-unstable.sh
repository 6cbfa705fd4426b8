#!/usr/bin/env bash
# Downloads packages from Debian unstable into DEST without touching the system's apt configuration: a
# private sources list (the system's Debian mirror, unstable main), lists and cache under .testbed/apt,
# `apt-get download`. Used for containerd (install.sh) and for snapd 2.77 and its libraries (snapd.sh).
#   fetch-unstable.sh DEST PKG...
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
apt_dir="$repo/.testbed/apt"
dest=$1
shift
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$dest"
exec 9>"$apt_dir/lock"
flock 9
. "$repo/integration/testbed/common.sh"
mirror=$(debian_mirror)
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror unstable main" >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::status=/var/lib/dpkg/status"
  -o "APT::Get::List-Cleanup=0")
apt-get "${apt_opts[@]}" update -qq
cd "$dest"
apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root download "$@" >/dev/null
