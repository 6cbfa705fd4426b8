#!/usr/bin/env python3
"""Prepares the test bed's `microk8s` snap from a vendor profile: writes SNAPDIR/meta/snap.yaml and
creates the directories the content plugs' targets name ($SNAP/...: snapd 2.77's `snap pack` refuses a
content plug whose target does not exist in the snap).

    prepare.py PROFILE.toml SNAPDIR [PLUG...]

The plugs (name, interface, attributes) come from the profile's [plugs.NAME] tables, so the snap cannot
drift from vendor-profiles/snaps/microk8s.toml; with PLUG arguments only those are declared (an unknown
name is an error). Every app plugs every declared plug, so connections mean something to `snap run`.
With fuse-support declared, a disconnect-plug-fuse-support hook logs what snapctl says during it.
JSON is YAML: attribute values are written as JSON.
"""
import json
import os
import sys
import tomllib

profile_path, snap_dir, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(profile_path, "rb") as f:
    profile = tomllib.load(f)
plugs = profile["plugs"]
unknown = [name for name in wanted if name not in plugs]
if unknown:
    sys.exit(f"prepare.py: not plugs of {profile_path}: {' '.join(unknown)}")
names = wanted or list(plugs)

out = [
    f"name: {profile['snap']}",
    "version: testbed",
    "summary: Test-bed stand-in for the strict MicroK8s snap",
    f"description: Plugs generated from {profile_path.rsplit('/', 1)[-1]} by integration/testbed/snaps/microk8s/prepare.py.",
    "base: bare",
    "confinement: strict",
    "grade: devel",
    "plugs:",
]
for name in names:
    plug = plugs[name]
    out.append(f"  {name}:")
    out.append(f"    interface: {plug['interface']}")
    for key, value in plug.get("attributes", {}).items():
        out.append(f"    {key}: {json.dumps(value)}")
        if plug["interface"] == "content" and key == "target" and value.startswith("$SNAP/"):
            os.makedirs(os.path.join(snap_dir, value[len("$SNAP/"):]), exist_ok=True)
plug_list = json.dumps(names)
out += [
    "apps:",
    # The static strictctl of this workspace, run in the snap's context by `snap run microk8s.strictctl`.
    "  strictctl:",
    "    command: bin/strictctl",
    f"    plugs: {plug_list}",
    # A shell in the same context (static busybox), for probing: `snap run microk8s.sh -c '...'`.
    "  sh:",
    "    command: bin/sh",
    f"    plugs: {plug_list}",
]
os.makedirs(os.path.join(snap_dir, "meta"), exist_ok=True)
with open(os.path.join(snap_dir, "meta", "snap.yaml"), "w") as f:
    f.write("\n".join(out) + "\n")

# A disconnect-plug hook, as the node's would run `strictctl reconcile --disconnecting PLUG`: it records
# whether snapd still reports the plug connected while the hook runs (docs/operations.md relies on it).
hooks = os.path.join(snap_dir, "meta", "hooks")
os.makedirs(hooks, exist_ok=True)
for name in os.listdir(hooks):
    os.remove(os.path.join(hooks, name))
if "fuse-support" in names:
    hook = os.path.join(hooks, "disconnect-plug-fuse-support")
    with open(hook, "w") as f:
        f.write(
            "#!/bin/sh\n"
            "snapctl is-connected fuse-support\n"
            'echo "disconnect-plug-fuse-support: is-connected fuse-support exits $?" >>"$SNAP_COMMON/hooks.log"\n'
        )
    os.chmod(hook, 0o755)
