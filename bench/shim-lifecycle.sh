#!/usr/bin/env bash
# bench/shim-lifecycle.sh — what a container's life costs through containerd-shim-strict-v2
# (io.containerd.strict.v2) against containerd's own Go shim (io.containerd.runc.v2). A benchmark, not a
# test: it prints figures, it asserts nothing about them.
#
# Usage (as root, from anywhere in the repository):
#   bench/shim-lifecycle.sh [--pairs N] [--seccomp] [--no-build] [--no-install] [--no-phases] [--keep-log FILE] [--smaps DIR]
#     --pairs N         A/B pairs per measurement (default 20)
#     --seccomp         give both runtimes containerd's default seccomp profile (`ctr --seccomp`; see caveats)
#     --no-build        use target/static/ as it is (default: scripts/build-dist.sh, the installed build)
#     --no-install      do not run integration/testbed/install.sh (it is idempotent, but prints and checks)
#     --no-phases       skip the per-phase measurement (create / start / delete)
#     --keep-log FILE   copy the private containerd's log (with the shims' log lines) to FILE on exit
#     --smaps DIR       write where each shim's memory goes to DIR/<runtime>.smaps: resident KiB per mapping
#                       (binary, libraries, heap, stacks), from /proc/PID/smaps
# The Markdown table goes to stdout (paste it into docs/benchmarks.md); progress goes to stderr.
#
# What it measures
#   1. Wall time of `ctr run --rm --runtime R localhost/strict/busybox:1 ID /bin/true` — shim start, gate
#      (strict only), rootfs mount, runc create + start, exit, delete, shim exit — with a fresh ID each
#      time. 2 warm-up runs per runtime, then N pairs; each pair runs both runtimes back to back and the
#      order alternates from pair to pair, so drift and background load hit both sides alike. Median, p90
#      (nearest rank) and min per runtime, the ratio of the medians strict/runc, and the median of the
#      pairs' differences strict − runc (less sensitive to load that changes during the run).
#   2. Memory of the long-running shim serving one detached container (`ctr run -d ... sleep 600`):
#      VmRSS and threads (/proc/PID/status); Pss, Anonymous and AnonHugePages (/proc/PID/smaps_rollup);
#      the ratios strict/runc.
#      The shim is found by its command line (`-id <ID>` and `-address <our socket>`); its executable is
#      printed, which shows that containerd found the intended binary on its PATH.
#   2b. `ctr task exec --exec-id E ID /bin/true` in a detached `sleep 600` container of each runtime, 2
#      warm-up execs each, then N interleaved pairs: what an exec probe costs (median, p90, min, ratios).
#   3. (unless --no-phases) The phases one by one, interleaved the same way, medians per runtime:
#      `ctr containers create` (metadata + snapshot: the shim is not involved, a control),
#      `ctr tasks start -d` (shim start + Create (gate, mount, runc create) + Start),
#      `ctr tasks delete -f` (SIGKILL, wait for the exit, Delete, shim shutdown) and `ctr containers delete`.
#
# How
#   A private containerd 2.x from the test bed (integration/testbed/containerd.sh with STRICT_TESTBED_RUN
#   set to a fresh directory under /tmp): its own root, state, sockets and log there. The strict shim reads
#   its configuration from STRICT_CONFIG (exported before containerd starts: containerd passes its
#   environment to the shims), which points runc's state (--root) into the same directory; the Go shim gets
#   the same runc binary and root through ctr's --runc-binary/--runc-root. Both shims therefore drive the
#   same /usr/sbin/runc, on the same containerd, image and snapshotter (overlayfs). On exit (also on error
#   or Ctrl-C) containerd.sh stop kills what is left (tasks, containers, shims), unmounts what is mounted
#   under the directory, and the directory is removed.
#
# Caveats
#   - The spec is ctr's default: no seccomp filter. The strict gate narrows it (a cgroup namespace, and a
#     seccomp filter of the granted syscalls), so runc loads a seccomp filter for the strict container and
#     none for the runc one; that is part of what strict costs as deployed. --seccomp gives both sides
#     containerd's default profile (the gate intersects it instead): the shim's own overhead, like for like.
#   - The two control rows of the phases (`containers create`, `containers delete`: no shim involved) show
#     the run's noise floor: a difference between the shims no larger than theirs means nothing.
#   - Wall times include ctr's own start-up (a Go binary) and containerd's work, identical for both sides:
#     the difference between the medians is the shim's; the ratio understates it.
#   - Each `ctr run` starts a new shim process (no CRI sandbox grouping), so per-shim start-up costs (for
#     the strict shim: loading the profiles, `runc features`) are paid by every container here, unlike pods
#     whose containers share their sandbox's shim.
#   - The shims' sockets go to /run/containerd/s/ (containerd's fixed place for shim sockets, named by a
#     hash of our socket path); each shim removes its own when it exits normally, so an interrupted run
#     (its shims are killed) may leave a few there.
#   - Memory is that of one shim with one idle container, 1 s after its start: a snapshot, not a peak.
#     Pss divides shared pages among the processes that map them, so it drops when other processes run
#     the same binary (other Go shims on the machine, say); VmRSS does not. The strict shim's heap comes
#     from mimalloc, whose arenas may be backed by transparent huge pages (AnonHugePages in smaps).
#   - This script's environment reaches containerd and, through it, the shims: MIMALLOC_* options, for
#     one, apply to the strict shim (the report lists any that are set).
#   - Other load on the machine adds noise to both sides; the interleaving keeps the ratio fair, the
#     absolute figures less so. Use a quiet machine for figures you publish.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
testbed="$repo/.testbed"
bin="$testbed/containerd/usr/bin"
shim_dir="$repo/target/static"
image=localhost/strict/busybox:1
namespace=default
strict=io.containerd.strict.v2
runc=io.containerd.runc.v2
runc_binary=/usr/sbin/runc

pairs=20
build=1
install=1
phases=1
seccomp=0
keep_log=
smaps_dir=
command_line="bench/shim-lifecycle.sh${*:+ $*}"

die() { echo "shim-lifecycle: $*" >&2; exit 1; }
say() { echo "shim-lifecycle: $*" >&2; }

while (($#)); do
  case "$1" in
    --pairs)
      [ $# -ge 2 ] || die "--pairs needs a number"
      pairs=$2; shift 2 ;;
    --pairs=*) pairs=${1#--pairs=}; shift ;;
    --no-build) build=0; shift ;;
    --seccomp) seccomp=1; shift ;;
    --no-install) install=0; shift ;;
    --no-phases) phases=0; shift ;;
    --smaps)
      [ $# -ge 2 ] || die "--smaps needs a directory"
      smaps_dir=$(realpath -m "$2"); mkdir -p "$smaps_dir"; shift 2 ;;
    --keep-log)
      [ $# -ge 2 ] || die "--keep-log needs a file"
      keep_log=$(realpath -m "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$pairs" =~ ^[1-9][0-9]*$ ]] || die "--pairs wants a positive number, not '$pairs'"

# --- what must be there ---------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (containerd, runc and overlay mounts need it)"
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "bash >= 5 is needed (EPOCHREALTIME)"
command -v python3 >/dev/null || die "python3 is missing (it computes the statistics)"
if ((install)); then
  say "checking the test bed (integration/testbed/install.sh)"
  "$repo/integration/testbed/install.sh" >&2 || die "integration/testbed/install.sh failed"
fi
for tool in containerd ctr containerd-shim-runc-v2; do
  [ -x "$bin/$tool" ] || die "$bin/$tool is missing: run integration/testbed/install.sh"
done
[ -x "$runc_binary" ] || die "$runc_binary is missing: run integration/testbed/install.sh"
if ((build)); then
  command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || die "cargo is missing: run integration/testbed/install.sh"
  command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
  say "building the strict shim and its gate as they get installed (scripts/build-dist.sh)"
  "$repo/scripts/build-dist.sh" >&2 || die "the build failed"
fi
[ -x "$shim_dir/containerd-shim-strict-v2" ] \
  || die "$shim_dir/containerd-shim-strict-v2 is missing: drop --no-build, or run scripts/build-dist.sh"
# Others may rebuild the shim while this runs: the report names the exact binary (digest, build time).
shim_digest() { sha256sum "$shim_dir/containerd-shim-strict-v2" | cut -c1-12; }
strict_digest=$(shim_digest)
strict_built=$(date -u -r "$shim_dir/containerd-shim-strict-v2" +%H:%MZ)

# --- a private containerd ---------------------------------------------------------------------------------
# Short path: unix socket paths are limited to 108 bytes.
run=$(mktemp -d /tmp/strict-bench.XXXXXX)
export STRICT_TESTBED_RUN="$run"
export STRICT_SHIM_DIR="$shim_dir"
export STRICT_CONFIG="$run/strict.toml"
unset STRICT_LOG CONTAINERD_LOG_LEVEL
mimalloc_env=$(env | grep '^MIMALLOC_' | sort | tr '\n' ' ' || true)

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  say "stopping the private containerd and removing $run"
  "$repo/integration/testbed/containerd.sh" stop >/dev/null 2>&1 || say "containerd.sh stop failed"
  if [ -n "$keep_log" ] && [ -f "$run/containerd.log" ]; then
    cp "$run/containerd.log" "$keep_log" && say "containerd's log: $keep_log"
  fi
  if grep -q " $run/" /proc/self/mounts; then
    say "mounts are left under $run, not removing it:"
    grep " $run/" /proc/self/mounts >&2 || true
    status=1
  else
    rm -rf --one-file-system "$run" || { say "could not remove $run"; status=1; }
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$STRICT_CONFIG" <<TOML
source = "embedded"

[runtime]
binary = "$runc_binary"
root = "$run/runc"

[audit]
path = "$run/audit.log"

# This containerd's root and state: its snapshots are the containers' root filesystems.
[node]
containerd_roots = ["$run/root"]
containerd_states = ["$run/state"]
TOML

say "starting a private containerd in $run"
"$repo/integration/testbed/containerd.sh" start >&2 || die "containerd did not start (log: $run/containerd.log)"
eval "$("$repo/integration/testbed/containerd.sh" env)"
[ "$ADDRESS" = "$run/containerd.sock" ] || die "containerd.sh does not honour STRICT_TESTBED_RUN ($ADDRESS)"
say "importing $image (integration/testbed/images.sh)"
"$repo/integration/testbed/images.sh" >/dev/null || die "integration/testbed/images.sh failed"

ctr=("$bin/ctr" --address "$ADDRESS" -n "$namespace")
# Per runtime: the ctr options that select it. The Go shim gets runc's binary and root as options; the
# strict shim has them from STRICT_CONFIG.
runtime_opts() {
  case "$1" in
    "$strict") echo "--runtime $strict" ;;
    "$runc") echo "--runtime $runc --runc-binary $runc_binary --runc-root $run/runc" ;;
  esac
  if ((seccomp)); then echo --seccomp; fi
}
short() { [ "$1" = "$strict" ] && echo strict || echo runc; }

data="$run/samples"   # lines: KEY MICROSECONDS
: >"$data"
out="$run/ctr.out"
seq_no=0

# fail WHAT: a ctr command failed — say what, with its output and the end of containerd's log.
fail() {
  say "$1 failed:"
  sed 's/^/  /' "$out" >&2 || true
  say "the end of containerd's log:"
  tail -15 "$run/containerd.log" | sed 's/^/  /' >&2 || true
  exit 1
}

# timed KEY CTR-ARGS...: runs ctr, records the wall time under KEY (when KEY is not "-").
timed() {
  local key=$1 t0 t1
  shift
  t0=${EPOCHREALTIME/./}
  "${ctr[@]}" "$@" >"$out" 2>&1 </dev/null || fail "ctr $*"
  t1=${EPOCHREALTIME/./}
  [ "$key" = - ] || echo "$key $((t1 - t0))" >>"$data"
}

# next_id TAG: sets $id to a container id not used before in this run.
next_id() { seq_no=$((seq_no + 1)); id="bench-$1-$$-$seq_no"; }

# run_once RUNTIME KEY: one `ctr run --rm ... /bin/true`.
run_once() {
  local rt=$1 key=$2
  next_id "$(short "$rt")"
  # shellcheck disable=SC2046 # runtime_opts is a word list
  timed "$key" run --rm $(runtime_opts "$rt") "$image" "$id" /bin/true
}

# phases_once RUNTIME: the lifecycle in steps, each timed.
phases_once() {
  local rt=$1 s
  s=$(short "$rt")
  next_id "$s"
  # shellcheck disable=SC2046
  timed "$s.ccreate" containers create $(runtime_opts "$rt") "$image" "$id" sleep 600
  timed "$s.tstart" tasks start -d "$id"
  timed "$s.tdelete" tasks delete -f "$id"
  timed "$s.cdelete" containers delete "$id"
}

# interleave FUNCTION: N pairs of FUNCTION strict / FUNCTION runc, the order alternating.
interleave() {
  local fn=$1 i
  for i in $(seq 1 "$pairs"); do
    if ((i % 2)); then "$fn" "$strict" "$i"; "$fn" "$runc" "$i"; else "$fn" "$runc" "$i"; "$fn" "$strict" "$i"; fi
    printf '.' >&2
  done
  echo >&2
}
run_pair_member() { run_once "$1" "$(short "$1").run"; }
phases_pair_member() { phases_once "$1"; }

# --- 1. ctr run --rm, warm-up then pairs --------------------------------------------------------------
say "warm-up: 2 runs per runtime"
for _ in 1 2; do run_once "$strict" -; run_once "$runc" -; done
say "ctr run --rm ... /bin/true: $pairs pairs"
interleave run_pair_member

# --- 2. memory of the long-running shims ----------------------------------------------------------------
# shim_pid ID: the long-running shim serving container ID on our containerd (its command line has
# `-id ID` and `-address <our socket>`; the short-lived `start` process is gone once ctr has returned).
shim_pid() {
  local dir argv
  for dir in /proc/[0-9]*; do
    # The braces: a process that has exited meanwhile must not print an error.
    argv=$( { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    case "$argv" in *containerd-shim*) ;; *) continue ;; esac
    case "$argv" in *" -id $1 "*) ;; *) continue ;; esac
    case "$argv" in *" -address $ADDRESS "*) echo "${dir#/proc/}"; return 0 ;; esac
  done
  return 1
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
rollup_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup"; }

# smaps_breakdown PID: resident and anonymous KiB per mapping, largest first (what --smaps writes).
smaps_breakdown() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anonymous]" : $6); perms = $2; next }
    $1 == "Rss:" { rss[name " " perms] += $2 }
    $1 == "Anonymous:" { anon[name " " perms] += $2 }
    END { for (k in rss) if (rss[k] > 0) printf "%8d %8d  %s\n", rss[k], anon[k], k }
  ' "/proc/$1/smaps" | sort -rn | { echo "  rss KiB anon KiB  mapping perms"; cat; }
}

say "memory: one detached container per runtime"
declare -A mem
for rt in "$strict" "$runc"; do
  s=$(short "$rt")
  next_id "$s-rss"
  # shellcheck disable=SC2046
  timed - run -d $(runtime_opts "$rt") "$image" "$id" sleep 600
  [ -d "$run/runc/$namespace/$id" ] || die "runc's state for $id is not under $run/runc: the runc root is not the private one"
  sleep 1   # let the shim settle after the start
  pid=$(shim_pid "$id") || die "no shim process found for $id (-id $id -address $ADDRESS)"
  mem[$s.exe]=$(readlink "/proc/$pid/exe")
  mem[$s.exe]=${mem[$s.exe]% (deleted)}   # rebuilt since it started: the digest check below says so
  mem[$s.rss]=$(status_kib "$pid" VmRSS)
  mem[$s.pss]=$(rollup_kib "$pid" Pss)
  mem[$s.anon]=$(rollup_kib "$pid" Anonymous)
  mem[$s.thp]=$(rollup_kib "$pid" AnonHugePages)
  mem[$s.threads]=$(status_kib "$pid" Threads)
  [ -z "$smaps_dir" ] || smaps_breakdown "$pid" >"$smaps_dir/$s.smaps"
  timed - tasks delete -f "$id"
  timed - containers delete "$id"
done
[ "${mem[strict.exe]}" = "$(readlink -f "$shim_dir/containerd-shim-strict-v2")" ] \
  || die "the strict shim that ran is ${mem[strict.exe]}, not $shim_dir/containerd-shim-strict-v2"
[ "${mem[runc.exe]}" = "$(readlink -f "$bin/containerd-shim-runc-v2")" ] \
  || die "the Go shim that ran is ${mem[runc.exe]}, not $bin/containerd-shim-runc-v2 (containerd's PATH)"

# --- 2b. exec in a running container ------------------------------------------------------------------
# What an exec probe costs: `ctr task exec` of /bin/true in a sleeping container of each runtime.
say "ctr task exec ... /bin/true in a running container: 2 warm-up + $pairs pairs"
declare -A exec_target
for rt in "$strict" "$runc"; do
  next_id "$(short "$rt")-exec"
  # shellcheck disable=SC2046
  timed - run -d $(runtime_opts "$rt") "$image" "$id" sleep 600
  exec_target[$rt]=$id
done
# exec_once RUNTIME KEY: one exec, its id new.
exec_once() {
  seq_no=$((seq_no + 1))
  timed "$2" tasks exec --exec-id "exec-$seq_no" "${exec_target[$1]}" /bin/true
}
exec_pair_member() { exec_once "$1" "$(short "$1").exec"; }
for _ in 1 2; do exec_once "$strict" -; exec_once "$runc" -; done
interleave exec_pair_member
for rt in "$strict" "$runc"; do
  timed - tasks delete -f "${exec_target[$rt]}"
  timed - containers delete "${exec_target[$rt]}"
done

# --- 3. phases -------------------------------------------------------------------------------------------
if ((phases)); then
  say "phases (containers create / tasks start -d / tasks delete -f / containers delete): 1 warm-up + $pairs pairs"
  phases_once "$strict"; phases_once "$runc"
  # The warm-up's samples are dropped: keep only what follows.
  grep -v -e '\.ccreate ' -e '\.tstart ' -e '\.tdelete ' -e '\.cdelete ' "$data" >"$data.tmp"; mv "$data.tmp" "$data"
  interleave phases_pair_member
fi

# What the gate decided, from the shims' log lines in containerd's log (`container allowed|narrowed`).
verdicts=$( { grep -o 'container \(allowed\|narrowed\|refused\)' "$run/containerd.log" || true; } \
  | sort | uniq -c | awk '{ printf "%s%s: %s containers", sep, $3, $1; sep = ", " }')

# --- the report --------------------------------------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$repo" status --porcelain -- shim policy vendor-profiles Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  rev="$rev + uncommitted changes"
fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then cgroups=v2
elif [ -d /sys/fs/cgroup/unified ]; then cgroups="v1 (hybrid)"
else cgroups=v1; fi

export pairs command_line cpu rev cgroups verdicts phases data seccomp mimalloc_env
export machine_nproc=$(nproc) machine_kernel=$(uname -r)
export containerd_version=$("$bin/containerd" --version | awk '{print $3}')
export runc_version=$("$runc_binary" --version | awk 'NR==1 {print $3}')
export strict_version=$("$shim_dir/containerd-shim-strict-v2" -v | awk '/Version:/ {print $2}')
export strict_digest strict_built
if [ "$(shim_digest)" != "$strict_digest" ]; then
  say "warning: target/static/containerd-shim-strict-v2 changed during the run (rebuilt?): the figures mix two builds"
  strict_digest="$strict_digest (changed during the run!)"
fi
for s in strict runc; do
  for k in rss pss anon thp threads; do export "mem_${s}_$k=${mem[$s.$k]:-0}"; done
done
export mem_strict_exe=${mem[strict.exe]#"$repo"/} mem_runc_exe=${mem[runc.exe]#"$repo"/}
export date_utc=$(date -u +%Y-%m-%d)

python3 - <<'PY'
import math, os, statistics
from collections import defaultdict

e = os.environ
samples = defaultdict(list)
with open(e["data"]) as f:
    for line in f:
        key, us = line.split()
        samples[key].append(int(us) / 1000.0)  # ms

def p90(xs):  # nearest rank
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.9 * len(xs)) - 1)]

def ms(x):
    return f"{x:.1f}"

med = {k: statistics.median(v) for k, v in samples.items()}
n = int(e["pairs"])
print(f"### Shim lifecycle: strict vs runc ({e['date_utc']})")
print()
print(f"`{e['command_line']}` — {n} interleaved A/B pairs after 2 warm-up runs each; times in ms (wall clock of `ctr`); p90 is the nearest rank; Δ is the median of the pairs' differences strict − runc.")
print()
print("| | |")
print("|---|---|")
print(f"| machine | {e['machine_nproc']} CPUs, {e['cpu']}, Linux {e['machine_kernel']}, cgroup {e['cgroups']} |")
print(f"| containerd | {e['containerd_version']} (Debian unstable), private instance, overlayfs |")
print(f"| runc | {e['runc_version']} (both shims) |")
if e["seccomp"] == "1":
    print("| spec | ctr's default with `--seccomp` (containerd's default seccomp profile) on both sides |")
else:
    print("| spec | ctr's default (no seccomp filter; the strict gate adds its own) |")
print(f"| strict shim | {e['strict_version']}, dist build of {e['rev']} (`{e['mem_strict_exe']}`, sha256 {e['strict_digest']}…, built {e['strict_built']}) |")
print(f"| Go shim | `{e['mem_runc_exe']}` from the same containerd package |")
if e.get("mimalloc_env", "").strip():
    print(f"| environment | `{e['mimalloc_env'].strip()}` (reaches the strict shim) |")
if e.get("verdicts"):
    print(f"| gate verdicts | {e['verdicts']} |")
print()
print("| `ctr run --rm IMAGE ID /bin/true` | median | p90 | min |")
print("|---|---:|---:|---:|")
for rt, label in (("strict", "io.containerd.strict.v2"), ("runc", "io.containerd.runc.v2")):
    xs = samples[f"{rt}.run"]
    print(f"| {label} | {ms(statistics.median(xs))} | {ms(p90(xs))} | {ms(min(xs))} |")
ratio = med["strict.run"] / med["runc.run"]
# Pair i is the i-th sample of each side (they are recorded in order).
paired = statistics.median(a - b for a, b in zip(samples["strict.run"], samples["runc.run"]))
print(f"| strict / runc (medians) | **{ratio:.2f}×** | | |")
print(f"| strict − runc, median of the pairs' differences | {paired:+.1f} | | |")
print()
print("| `ctr task exec ID /bin/true` in a running container | median | p90 | min |")
print("|---|---:|---:|---:|")
for rt, label in (("strict", "io.containerd.strict.v2"), ("runc", "io.containerd.runc.v2")):
    xs = samples[f"{rt}.exec"]
    print(f"| {label} | {ms(statistics.median(xs))} | {ms(p90(xs))} | {ms(min(xs))} |")
paired = statistics.median(a - b for a, b in zip(samples["strict.exec"], samples["runc.exec"]))
print(f"| strict / runc (medians) | **{med['strict.exec'] / med['runc.exec']:.2f}×** | {p90(samples['strict.exec']) / p90(samples['runc.exec']):.2f}× | |")
print(f"| strict − runc, median of the pairs' differences | {paired:+.1f} | | |")
print()
print("| shim with one `sleep 600` container | VmRSS KiB | Pss KiB | anonymous KiB | of which huge pages | threads |")
print("|---|---:|---:|---:|---:|---:|")
mem = {rt: {k: int(e[f"mem_{rt}_{k}"]) for k in ("rss", "pss", "anon", "thp", "threads")} for rt in ("strict", "runc")}
for rt, label in (("strict", "containerd-shim-strict-v2"), ("runc", "containerd-shim-runc-v2")):
    m = mem[rt]
    print(f"| {label} | {m['rss']} | {m['pss']} | {m['anon']} | {m['thp']} | {m['threads']} |")
def ratio_of(k):
    return f"{mem['strict'][k] / mem['runc'][k]:.2f}×" if mem["runc"][k] else "–"
print(f"| strict / runc | {ratio_of('rss')} | {ratio_of('pss')} | {ratio_of('anon')} | | |")
if e["phases"] == "1":
    print()
    print("| phase (median ms) | strict | runc | strict / runc | paired Δ |")
    print("|---|---:|---:|---:|---:|")
    for key, label in (
        ("ccreate", "`ctr containers create` (no shim: control)"),
        ("tstart", "`ctr tasks start -d` (shim start, Create, Start)"),
        ("tdelete", "`ctr tasks delete -f` (SIGKILL, exit, Delete, shim exit)"),
        ("cdelete", "`ctr containers delete` (no shim: control)"),
    ):
        s, r = med[f"strict.{key}"], med[f"runc.{key}"]
        d = statistics.median(a - b for a, b in zip(samples[f"strict.{key}"], samples[f"runc.{key}"]))
        print(f"| {label} | {ms(s)} | {ms(r)} | {s / r:.2f}× | {d:+.1f} |")
PY
