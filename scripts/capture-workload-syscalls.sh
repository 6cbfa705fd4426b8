#!/usr/bin/env bash
# Captures which syscalls ordinary server workloads really make, as evidence for the base syscall
# allow-list (policy/tests/fixtures/workloads/, see its README.md).
#
# Each workload runs in the foreground (no daemonising) under `strace -f -qq` (every syscall of the
# process and of all its children and threads), is driven for a few seconds by a client on 127.0.0.1
# only, is stopped the way a container runtime stops it (its own graceful signal), and the sorted unique
# syscall names are written to policy/tests/fixtures/workloads/<name>.txt.
#
# Usage: scripts/capture-workload-syscalls.sh [workload...]
#   workloads: nginx redis postgresql python-web busybox (default: all of them)
#   RUNS=<n>           runs of each workload, the fixture being their union (default 3)
#   KEEP_TRACES=<dir>  also keep the raw strace output there (<fixture>.run<n>.<trace>.strace)
#   OUT_DIR=<dir>      write the lists there instead
#   STRACE_OPTS=<opts> more strace options, e.g. '-e inject=clone3:error=ENOSYS' to check that the
#                      workloads still work when clone3 is answered ENOSYS (use with OUT_DIR)
#
# Debian 12, as root. Installs what it lacks with apt-get. Idempotent: re-running overwrites the files.
# The clients (curl, redis-cli, psql, ...) are never traced; the traced servers get a clean environment.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT_DIR:-$ROOT/policy/tests/fixtures/workloads}"
read -r -a STRACE_OPTS <<<"${STRACE_OPTS:-}" # e.g. '-e inject=clone3:error=ENOSYS' (with OUT_DIR elsewhere)
SELF="scripts/capture-workload-syscalls.sh"
ALL_WORKLOADS=(nginx redis postgresql python-web busybox)
RUNS="${RUNS:-3}" # runs per workload, united: a few syscalls only show up when timing allows
WORK="$(mktemp -d /tmp/capture-workloads.XXXXXX)"
RUN_DIR="$WORK/run" # the current run's files
RUN=0
chmod 755 "$WORK" # the servers drop to www-data, redis, postgres: they must reach their dirs
TODAY="$(date -u +%Y-%m-%d)"
cd / # the servers' working directory, as in most images
PY=/usr/bin/python3
# What a container's process sees, more or less: no inherited shell or pyenv variables.
CLEAN_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root)

STRACE_PIDS=() # strace processes this script started (each the leader of its own process group)
HELPER_PIDS=() # untraced servers this script started (likewise)
PORTS=()       # every port handed to a server

log() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'capture: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------------
# Installing

install_missing() {
    local need=()
    [ -x /usr/bin/strace ] || need+=(strace)
    [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    [ -e /etc/nginx/mime.types ] || need+=(nginx-common)
    [ -x /usr/bin/redis-server ] || need+=(redis-server)
    [ -x /usr/bin/redis-cli ] || need+=(redis-tools)
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
    [ -x /usr/bin/psql ] || need+=(postgresql-client)
    [ -x /usr/bin/python3 ] || need+=(python3)
    [ -x /bin/busybox ] || need+=(busybox-static)
    [ -x /usr/bin/curl ] || need+=(curl)
    command -v ps >/dev/null || need+=(procps)
    [ ${#need[@]} -eq 0 ] && return 0
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # nginx-light is gone from some releases: fall back to nginx.
    if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
        local alt=()
        for p in "${need[@]}"; do [ "$p" = nginx-light ] && alt+=(nginx) || alt+=("$p"); done
        apt-get install -y -qq --no-install-recommends "${alt[@]}" >/dev/null
    fi
    # Where policy-rc.d allows it the packages start their system services: not ours, left alone
    # (every server here gets a free port of its own).
}

# "<package> <version>" of the package that ships a binary.
package_of() {
    local real pkg
    real="$(readlink -f "$1")"
    pkg="$(dpkg -S "$real" 2>/dev/null | head -n1 | cut -d: -f1)" ||
        true
    [ -n "$pkg" ] || pkg="$(dpkg -S "$1" 2>/dev/null | head -n1 | cut -d: -f1)" || true
    [ -n "$pkg" ] || die "no package ships $1"
    printf '%s %s' "$pkg" "$(dpkg-query -W -f='${Version}' "$pkg")"
}

# ---------------------------------------------------------------------------------------------------
# Processes and ports

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Is something listening on 127.0.0.1/0.0.0.0 TCP port $1? (no iproute2 needed)
listening() {
    local hex
    hex="$(printf '%04X' "$1")"
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_until <seconds> <command...>: poll until the command succeeds.
wait_until() {
    local limit=$1 i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -le $((limit * 10)) ] || return 1
        sleep 0.1
    done
}

# Is process $1 running (not gone, not a zombie waiting to be reaped)?
alive() {
    local st
    st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [ "${st:0:1}" != Z ]
}

children_of() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
has_children() { [ -n "$(children_of "$1")" ]; }

# Processes traced by strace pid $1.
tracees_of() {
    local st
    for st in /proc/[0-9]*/status; do
        awk -v t="$1" '$1 == "TracerPid:" && $2 == t { found = 1 } END { exit !found }' "$st" 2>/dev/null &&
            basename "$(dirname "$st")"
    done
    return 0
}

# trace <name> [strace option...] -- <command...>: start the command under strace in the background.
# Sets TRACE_PID (strace) and MAIN_PID (the traced command itself).
trace() {
    local name=$1 opts=()
    shift
    while [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    rm -f "$RUN_DIR/$name.strace"
    # Monitor mode for the launch only: the job gets a process group of its own, and SIGINT/SIGQUIT
    # are not ignored in it (bash ignores them in background jobs otherwise; Python, for one, would
    # then not turn SIGINT into KeyboardInterrupt).
    set -m
    "${CLEAN_ENV[@]}" strace -f -qq ${STRACE_OPTS[@]+"${STRACE_OPTS[@]}"} ${opts[@]+"${opts[@]}"} -o "$RUN_DIR/$name.strace" "$@" \
        >"$RUN_DIR/$name.stdout" 2>"$RUN_DIR/$name.stderr" </dev/null &
    TRACE_PID=$!
    set +m
    STRACE_PIDS+=("$TRACE_PID")
    wait_until 20 has_children "$TRACE_PID" || die "$name: strace started nothing"
    MAIN_PID="$(children_of "$TRACE_PID" | awk '{ print $1; exit }')"
}

# wait_trace <name> <seconds> [expected status]: wait for the traced command and all its children to end (strace exits
# then); past the limit, kill them and fail.
wait_trace() {
    local name=$1 limit=$2 i=0 rc=0
    while alive "$TRACE_PID"; do
        i=$((i + 1))
        if [ $i -gt $((limit * 10)) ]; then
            log "$name: still running after ${limit}s; killing it"
            kill_trace "$TRACE_PID"
            die "$name: did not stop by itself (see $RUN_DIR/$name.stderr)"
        fi
        sleep 0.1
    done
    # (braces: no "Terminated" job notice for a command that a signal ended, as expected)
    { wait "$TRACE_PID"; } 2>/dev/null || rc=$?
    forget "$TRACE_PID"
    [ $rc -eq 0 ] || [ "$rc" = "${3:-0}" ] || log "$name: strace exited $rc (the traced command's status)"
}

# pause_resume: what `docker pause` / `docker unpause` do to the container (the cgroup freezer stops
# every process in it): stop every traced process, then let them go on. Sleeping syscalls with a
# timeout (poll, nanosleep, futex, ...) come back through restart_syscall, as they do after any stop.
pause_resume() {
    local p ps
    ps="$(tracees_of "$TRACE_PID")"
    for p in $ps; do kill -STOP "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in $ps; do kill -CONT "$p" 2>/dev/null || true; done
    sleep 0.1
}

kill_trace() {
    local spid=$1 p
    for p in $(tracees_of "$spid"); do kill -KILL "$p" 2>/dev/null || true; done
    kill -KILL -- "-$spid" 2>/dev/null || true
    { wait "$spid"; } 2>/dev/null || true
    forget "$spid"
}

# Drop a reaped pid from the lists, so that nothing ever signals a recycled pid.
forget() {
    local p keep=()
    for p in ${STRACE_PIDS[@]+"${STRACE_PIDS[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
    STRACE_PIDS=(${keep[@]+"${keep[@]}"})
    keep=()
    for p in ${HELPER_PIDS[@]+"${HELPER_PIDS[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
    HELPER_PIDS=(${keep[@]+"${keep[@]}"})
}

cleanup() {
    local rc=$? p
    # Only pids not yet reaped are listed: they are still ours, running or zombies.
    for p in ${STRACE_PIDS[@]+"${STRACE_PIDS[@]}"}; do
        log "cleanup: stopping strace $p and what it traces"
        kill_trace "$p"
    done
    for p in ${HELPER_PIDS[@]+"${HELPER_PIDS[@]}"}; do
        log "cleanup: stopping helper $p"
        kill -TERM -- "-$p" 2>/dev/null || true
        sleep 0.5
        kill -KILL -- "-$p" 2>/dev/null || true
        { wait "$p"; } 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        log "failed; the work dir is kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# Parsing and writing

# Sorted unique syscall names in strace -f output files. Lines are "<pid> <syscall>(...) = ...",
# "<pid> <syscall>(... <unfinished ...>", "<pid> <... <syscall> resumed>...) = ...";
# "+++ exited +++" and "--- SIGxxx ---" lines are not syscalls.
syscalls_in() {
    awk '
        { sub(/^[0-9]+ +/, "") }
        /^(\+\+\+|---)/ { next }
        /^<\.\.\. [a-z0-9_]+ resumed>/ { sub(/^<\.\.\. /, ""); sub(/ resumed>.*/, ""); print; next }
        match($0, /^[a-z_][a-z0-9_]*\(/) { print substr($0, 1, RLENGTH - 1); next }
        { bad++; if (bad <= 5) printf "unparsed strace line: %s\n", $0 > "/dev/stderr" }
        END { exit bad > 0 }
    ' "$@" | sort -u
}

# collect <name> <"package version"> <trace file...>: keep this run's traces of fixture <name>.
collect() {
    local name=$1 pkg=$2 t dir="$WORK/collected/$1"
    shift 2
    mkdir -p "$dir"
    printf '%s\n' "$pkg" >"$WORK/collected/$name.package"
    for t in "$@"; do
        [ -s "$t" ] || die "$name: empty trace $t"
        mv "$t" "$dir/run$RUN.$(basename "$t")"
    done
    log "$name (run $RUN): $(syscalls_in "$dir"/run"$RUN".* | wc -l) syscalls"
}

# write_fixture <name>: the union over every run of its traces.
write_fixture() {
    local name=$1 file="$OUT/$1.txt" dir="$WORK/collected/$1"
    {
        printf '# %s, captured %s by %s\n' "$(cat "$WORK/collected/$name.package")" "$TODAY" "$SELF"
        syscalls_in "$dir"/*
    } >"$file.tmp"
    mv "$file.tmp" "$file"
    if [ -n "${KEEP_TRACES:-}" ]; then
        mkdir -p "$KEEP_TRACES"
        local t
        for t in "$dir"/*; do cp "$t" "$KEEP_TRACES/$name.$(basename "$t")"; done
    fi
    log "$name: $(($(wc -l <"$file") - 1)) syscalls in $RUNS run(s) -> ${file#"$ROOT"/}"
}

# ---------------------------------------------------------------------------------------------------
# nginx

# nginx_setup <dir> <port>: a private config and docroot; nginx itself touches nothing outside <dir>.
nginx_setup() {
    local d=$1 port=$2
    mkdir -p "$d/html/static"
    chmod 755 "$d"
    printf '<!doctype html><title>hello</title><h1>hello from nginx</h1>\n' >"$d/html/index.html"
    printf '{"service": "capture", "ok": true, "items": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n' >"$d/html/static/data.json"
    head -c 300000 /dev/urandom >"$d/html/static/blob.bin"
    seq 1 20000 >"$d/html/static/numbers.txt"
    chmod -R a+rX "$d/html"
    cat >"$d/nginx.conf" <<EOF
user www-data;
daemon off;
master_process on;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log notice;

events {
    worker_connections 128;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $d/access.log;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    gzip on;
    gzip_types application/json text/plain;
    gzip_min_length 64;

    server {
        listen 127.0.0.1:$port;
        root $d/html;
        index index.html;
        location /healthz {
            default_type text/plain;
            return 200 "ok\n";
        }
        location /upload {
            client_max_body_size 1m;
            client_body_buffer_size 8k;
            return 204;
        }
    }
}
EOF
}

# The 20 requests: pages, a large file (sendfile), gzip, a range, a 304, HEAD, a request body, a 404,
# several on one keep-alive connection.
nginx_drive() {
    local u="http://127.0.0.1:$1" c=(curl -sS -o /dev/null --max-time 10)
    "${c[@]}" -f "$u/"                                               # 1
    "${c[@]}" -f "$u/index.html"                                     # 2
    "${c[@]}" -f "$u/static/blob.bin"                                # 3
    "${c[@]}" -f --compressed "$u/static/data.json"                  # 4
    "${c[@]}" -f --compressed "$u/static/numbers.txt"                # 5
    "${c[@]}" -f -r 100-4000 "$u/static/blob.bin"                    # 6
    "${c[@]}" -f -I "$u/static/data.json"                            # 7
    "${c[@]}" -f -H 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT' "$u/index.html" # 8 (304)
    "${c[@]}" -f "$u/healthz"                                        # 9
    head -c 20000 /dev/urandom | "${c[@]}" -f --data-binary @- "$u/upload" # 10 (body to a temp file)
    local code
    code="$("${c[@]}" -w '%{http_code}' "$u/no/such/page")"          # 11
    [ "$code" = 404 ] || die "nginx: expected a 404, got $code"
    # 12-20 on one keep-alive connection
    curl_all "$u/" "$u/static/data.json" "$u/static/blob.bin" "$u/healthz" \
        "$u/index.html" "$u/static/numbers.txt" "$u/" "$u/static/data.json" "$u/healthz"
}

# One curl fetching every URL in turn over one keep-alive connection, each to /dev/null.
curl_all() {
    local args=() u
    for u in "$@"; do args+=(-o /dev/null "$u"); done
    curl -sS -f --max-time 10 "${args[@]}"
}

capture_nginx() {
    local d="$RUN_DIR/nginx" port
    port="$(free_port)"
    PORTS+=("$port")
    nginx_setup "$d" "$port"
    log "nginx on 127.0.0.1:$port"
    trace nginx -- /usr/sbin/nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
    wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" ||
        die "nginx did not come up: $(cat "$d/error.log" "$RUN_DIR/nginx.stderr" 2>/dev/null)"
    sleep 0.5 # both workers up
    pause_resume
    nginx_drive "$port"
    sleep 0.5 # the access log written
    kill -QUIT "$MAIN_PID"
    wait_trace nginx 30
    grep -q '" 404 ' "$d/access.log" || die "nginx: the 404 is not in the access log"
    # 20, and the readiness probe
    [ "$(wc -l <"$d/access.log")" -eq 21 ] || die "nginx: $(wc -l <"$d/access.log") requests logged, not 20 + 1"
    collect nginx "$(package_of /usr/sbin/nginx)" "$RUN_DIR/nginx.strace"
}

# ---------------------------------------------------------------------------------------------------
# redis

redis_info() { redis-cli -h 127.0.0.1 -p "$1" info persistence | tr -d '\r'; }
redis_idle() {
    redis_info "$1" | grep -qx 'aof_rewrite_in_progress:0' &&
        redis_info "$1" | grep -qx 'aof_rewrite_scheduled:0' &&
        redis_info "$1" | grep -qx 'rdb_bgsave_in_progress:0'
}

capture_redis() {
    local d="$RUN_DIR/redis" port
    port="$(free_port)"
    PORTS+=("$port")
    mkdir -p "$d/data"
    chown -R redis:redis "$d/data" 2>/dev/null || chmod 777 "$d/data"
    local user=()
    id redis >/dev/null 2>&1 && user=(-u redis) # as the official image does (gosu redis)
    log "redis on 127.0.0.1:$port"
    trace redis "${user[@]}" -- /usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save "" \
        --appendonly yes --dir "$d/data" --daemonize no --logfile ""
    wait_until 30 redis-cli -h 127.0.0.1 -p "$port" ping || die "redis did not come up: $(cat "$RUN_DIR/redis.stdout")"
    local r=(redis-cli -h 127.0.0.1 -p "$port")
    {
        "${r[@]}" set greeting hello
        "${r[@]}" get greeting
        "${r[@]}" incr counter
        "${r[@]}" incrby counter 41
        "${r[@]}" lpush queue a b c d e
        "${r[@]}" lrange queue 0 -1
        "${r[@]}" rpop queue
        "${r[@]}" hset user:1 name ada lang en
        "${r[@]}" hgetall user:1
        "${r[@]}" sadd tags x y z
        "${r[@]}" zadd board 1 a 2 b 3 c
        "${r[@]}" set session:1 token EX 60
        "${r[@]}" expire greeting 3600
        "${r[@]}" keys '*'
        "${r[@]}" dbsize
        "${r[@]}" info
        "${r[@]}" client list
    } >"$d/cli.log"
    # A short burst of the usual traffic from 10 connections.
    pause_resume
    redis-benchmark -h 127.0.0.1 -p "$port" -q -n 2000 -c 10 -r 1000 -t set,get,incr,lpush,lpop,hset \
        >"$d/bench.log"
    # The background jobs: an AOF rewrite and an RDB snapshot, each in a forked child.
    "${r[@]}" bgrewriteaof >>"$d/cli.log"
    wait_until 60 redis_idle "$port" || die "redis: BGREWRITEAOF did not finish"
    "${r[@]}" bgsave >>"$d/cli.log"
    wait_until 60 redis_idle "$port" || die "redis: BGSAVE did not finish"
    [ "$("${r[@]}" get counter)" = 42 ] || die "redis: counter is not 42"
    # Stopped as a container runtime stops it: SIGTERM, the same shutdown as SHUTDOWN (AOF flushed).
    kill -TERM "$MAIN_PID"
    wait_trace redis 30
    grep -q 'ready to exit' "$RUN_DIR/redis.stdout" || die "redis: no clean shutdown: $(tail -5 "$RUN_DIR/redis.stdout")"
    collect redis "$(package_of /usr/bin/redis-server | sed 's/^redis-tools /redis-server /')" \
        "$RUN_DIR/redis.strace"
}

# ---------------------------------------------------------------------------------------------------
# postgresql

capture_postgresql() {
    local bin d="$RUN_DIR/postgresql" port
    bin="$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/postgres' | sort -V | tail -n1)"
    bin="$(dirname "$bin")"
    port="$(free_port)"
    PORTS+=("$port")
    mkdir -p "$d/sock"
    chown -R postgres:postgres "$d"
    chmod 755 "$d"
    log "postgresql initdb in $d/data"
    # initdb as the image's entrypoint runs it at first start (defaults: fsync on, trust for the test).
    trace postgresql-initdb -u postgres -- "$bin/initdb" -D "$d/data" -U postgres \
        --auth=trust -E UTF8 --locale=C.UTF-8
    wait_trace postgresql-initdb 300
    [ -s "$d/data/PG_VERSION" ] || die "initdb failed: $(tail -20 "$RUN_DIR/postgresql-initdb.stderr")"
    collect postgresql-initdb "$(package_of "$bin/initdb")" "$RUN_DIR/postgresql-initdb.strace"

    log "postgresql on 127.0.0.1:$port"
    trace postgresql -u postgres -- "$bin/postgres" -D "$d/data" -k "$d/sock" -p "$port" \
        -c listen_addresses=127.0.0.1
    wait_until 60 pg_isready -q -h 127.0.0.1 -p "$port" ||
        die "postgres did not come up: $(tail -20 "$RUN_DIR/postgresql.stderr")"
    local q=(psql -X -q -v ON_ERROR_STOP=1 -U postgres -p "$port")
    "${q[@]}" -h 127.0.0.1 -d postgres >"$d/psql.log" <<'SQL'
CREATE DATABASE app;
SQL
    "${q[@]}" -h 127.0.0.1 -d app >>"$d/psql.log" <<'SQL'
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, qty int NOT NULL, created timestamptz DEFAULT now());
INSERT INTO items (name, qty) SELECT 'item-' || g, g % 97 FROM generate_series(1, 1000) AS g;
BEGIN;
INSERT INTO items (name, qty) VALUES ('one', 1), ('two', 2);
UPDATE items SET qty = qty + 1 WHERE id % 10 = 0;
DELETE FROM items WHERE id % 50 = 0;
COMMIT;
CREATE INDEX items_name ON items (name);
SELECT count(*), sum(qty), max(created) FROM items;
SELECT * FROM items WHERE name = 'item-500';
SELECT qty, count(*) FROM items GROUP BY qty ORDER BY 2 DESC LIMIT 5;
-- a parallel scan, as bigger tables get: dynamic shared memory and parallel workers
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM items WHERE qty > 10;
-- a sort that spills to a temp file
SET work_mem = '64kB';
SELECT name FROM items ORDER BY md5(name) OFFSET 990;
RESET ALL;
VACUUM ANALYZE items;
CHECKPOINT;
SQL
    pause_resume
    # One more client over the Unix socket, as a sidecar or the entrypoint would connect.
    local n
    n="$("${q[@]}" -h "$d/sock" -d app -tA -c 'SELECT count(*) FROM items')"
    [ "$n" = 982 ] || die "postgres: expected 982 rows, got $n"
    # Fast shutdown, as pg_ctl stop -m fast (and the official image's STOPSIGNAL SIGINT).
    kill -INT "$MAIN_PID"
    wait_trace postgresql 60
    grep -q 'database system is shut down' "$RUN_DIR/postgresql.stderr" ||
        die "postgres: no clean shutdown: $(tail -5 "$RUN_DIR/postgresql.stderr")"
    collect postgresql "$(package_of "$bin/postgres")" "$RUN_DIR/postgresql.strace"
}

# ---------------------------------------------------------------------------------------------------
# python-web: http.server and a threaded wsgiref app, captured separately, one fixture

python_app() {
    cat >"$1" <<'EOF'
"""A tiny threaded WSGI app: reads a file per request and answers JSON."""
import json
import os
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.txt")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s\n" % (format % args))


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if path == "/data":
        with open(DATA, encoding="utf-8") as f:
            lines = f.read().splitlines()
        doc = {"lines": len(lines), "first": lines[0], "thread": threading.current_thread().name}
    elif path == "/echo" and environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        doc = {"received": len(body)}
    elif path == "/healthz":
        doc = {"ok": True, "pid": os.getpid()}
    else:
        status = "404 Not Found"
        doc = {"error": "not found", "path": path}
    out = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


def main():
    port = int(sys.argv[1])
    with make_server("127.0.0.1", port, app, ThreadingWSGIServer, Handler) as httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
EOF
}

capture_python_web() {
    local d="$RUN_DIR/python-web" port1 port2 i code
    mkdir -p "$d/www/assets"
    chmod 755 "$d"
    printf '<!doctype html><h1>hello from http.server</h1>\n' >"$d/www/index.html"
    seq 1 5000 >"$d/www/assets/numbers.txt"
    head -c 200000 /dev/urandom >"$d/www/assets/blob.bin"
    seq 1 300 | sed 's/^/line /' >"$d/data.txt"
    python_app "$d/app.py"

    port1="$(free_port)"
    PORTS+=("$port1")
    log "python http.server on 127.0.0.1:$port1"
    trace python-http -- "$PY" -m http.server --bind 127.0.0.1 --directory "$d/www" "$port1"
    wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$port1/" ||
        die "http.server did not come up: $(cat "$RUN_DIR/python-http.stderr")"
    local u="http://127.0.0.1:$port1" c=(curl -sS -o /dev/null --max-time 10)
    pause_resume
    for i in 1 2 3 4; do
        curl_all "$u/" "$u/index.html" "$u/assets/numbers.txt" "$u/assets/blob.bin"
    done # 16
    "${c[@]}" -f "$u/assets/" # a directory listing (17)
    "${c[@]}" -f -I "$u/assets/blob.bin" # 18
    "${c[@]}" -f -H 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT' "$u/index.html" # 19 (304)
    code="$("${c[@]}" -w '%{http_code}' "$u/missing.html")" # 20
    [ "$code" = 404 ] || die "http.server: expected a 404, got $code"
    kill -INT "$MAIN_PID"
    wait_trace python-http 30

    port2="$(free_port)"
    PORTS+=("$port2")
    log "python wsgiref app on 127.0.0.1:$port2"
    trace python-wsgi -- "$PY" "$d/app.py" "$port2"
    wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$port2/healthz" ||
        die "the WSGI app did not come up: $(cat "$RUN_DIR/python-wsgi.stderr")"
    u="http://127.0.0.1:$port2"
    local pids=()
    for i in $(seq 1 8); do
        "${c[@]}" -f "$u/data" & # concurrent: one thread each
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "the WSGI app: a concurrent request failed"; done # 8
    pause_resume
    for i in $(seq 1 8); do "${c[@]}" -f "$u/data"; done # 16
    "${c[@]}" -f "$u/healthz" # 17
    head -c 50000 /dev/urandom | "${c[@]}" -f --data-binary @- "$u/echo" # 18
    [ "$(curl -sS --max-time 10 "$u/data" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["lines"])')" = 300 ] ||
        die "the WSGI app: wrong answer" # 19
    code="$("${c[@]}" -w '%{http_code}' "$u/nothing")" # 20
    [ "$code" = 404 ] || die "the WSGI app: expected a 404, got $code"
    kill -INT "$MAIN_PID"
    wait_trace python-wsgi 30
    grep -q '^stopped' "$RUN_DIR/python-wsgi.stdout" || die "the WSGI app did not stop cleanly"

    collect python-web "$(package_of "$PY")" "$RUN_DIR/python-http.strace" "$RUN_DIR/python-wsgi.strace"
}

# ---------------------------------------------------------------------------------------------------
# busybox: a shell session, and httpd

capture_busybox() {
    local d="$RUN_DIR/busybox" nport port i code
    mkdir -p "$d/www"
    chmod 755 "$d"
    # An untraced nginx for wget to fetch from.
    nport="$(free_port)"
    PORTS+=("$nport")
    nginx_setup "$d/nginx" "$nport"
    set -m
    /usr/sbin/nginx -e "$d/nginx/error.log" -p "$d/nginx" -c "$d/nginx/nginx.conf" \
        >"$d/nginx.out" 2>&1 </dev/null &
    local npid=$!
    set +m
    HELPER_PIDS+=("$npid")
    wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$nport/healthz" || die "helper nginx did not come up"

    log "busybox sh (wget from 127.0.0.1:$nport)"
    trace busybox-sh -- /bin/busybox sh -c "ls -la /; cat /etc/passwd; ps; wget -q -O- http://127.0.0.1:$nport/ || true; sleep 0.1; echo done"
    wait_trace busybox-sh 60
    grep -q 'hello from nginx' "$RUN_DIR/busybox-sh.stdout" || die "busybox wget got nothing"
    tail -n1 "$RUN_DIR/busybox-sh.stdout" | grep -qx "done" || die "busybox sh did not finish"
    kill -QUIT "$npid"
    wait_until 30 eval "! alive $npid" || die "helper nginx did not stop"
    { wait "$npid"; } 2>/dev/null || true
    forget "$npid"
    collect busybox "$(package_of /bin/busybox)" "$RUN_DIR/busybox-sh.strace"

    printf '<!doctype html><h1>hello from busybox httpd</h1>\n' >"$d/www/index.html"
    seq 1 5000 >"$d/www/numbers.txt"
    head -c 200000 /dev/urandom >"$d/www/blob.bin"
    port="$(free_port)"
    PORTS+=("$port")
    log "busybox httpd on 127.0.0.1:$port"
    trace busybox-httpd -- /bin/busybox httpd -f -vv -p "127.0.0.1:$port" -h "$d/www"
    wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$port/" ||
        die "busybox httpd did not come up: $(cat "$RUN_DIR/busybox-httpd.stderr")"
    local u="http://127.0.0.1:$port" c=(curl -sS -o /dev/null --max-time 10)
    pause_resume
    for i in 1 2 3 4 5; do
        curl_all "$u/" "$u/index.html" "$u/numbers.txt" # 15
    done
    "${c[@]}" -f "$u/blob.bin" # 16
    "${c[@]}" -f -I "$u/numbers.txt" # 17
    "${c[@]}" -f -r 0-999 "$u/blob.bin" # 18
    "${c[@]}" -H 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT' "$u/index.html" # 19
    code="$("${c[@]}" -w '%{http_code}' "$u/missing.html")" # 20
    [ "$code" = 404 ] || die "busybox httpd: expected a 404, got $code"
    sleep 0.3 # the per-connection children have exited
    kill -TERM "$MAIN_PID" # busybox httpd has no graceful signal of its own: TERM is docker stop's
    wait_trace busybox-httpd 30 143 # 128 + SIGTERM
    collect busybox-httpd "$(package_of /bin/busybox)" "$RUN_DIR/busybox-httpd.strace"
}

# ---------------------------------------------------------------------------------------------------

main() {
    [ "$(id -u)" = 0 ] || die "run as root (the servers drop to their own users, as in a container)"
    local todo=("$@") w
    [ ${#todo[@]} -gt 0 ] || todo=("${ALL_WORKLOADS[@]}")
    for w in "${todo[@]}"; do
        case " ${ALL_WORKLOADS[*]} " in *" $w "*) ;; *) die "unknown workload $w (one of: ${ALL_WORKLOADS[*]})" ;; esac
    done
    case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive number" ;; esac
    install_missing
    mkdir -p "$OUT"
    for w in "${todo[@]}"; do
        for RUN in $(seq 1 "$RUNS"); do
            rm -rf "$RUN_DIR"
            mkdir -p "$RUN_DIR"
            chmod 755 "$RUN_DIR"
            case $w in
            nginx) capture_nginx ;;
            redis) capture_redis ;;
            postgresql) capture_postgresql ;;
            python-web) capture_python_web ;;
            busybox) capture_busybox ;;
            esac
        done
    done
    local f
    for f in "$WORK"/collected/*.package; do write_fixture "$(basename "$f" .package)"; done

    # Nothing of ours may survive the run.
    local p left=0
    for p in ${STRACE_PIDS[@]+"${STRACE_PIDS[@]}"} ${HELPER_PIDS[@]+"${HELPER_PIDS[@]}"}; do
        log "process $p was not stopped"
        left=1
    done
    for p in "${PORTS[@]}"; do
        if listening "$p"; then
            log "port $p still open"
            left=1
        fi
    done
    [ $left -eq 0 ] || die "something was left running"
    log "all stopped; ports ${PORTS[*]} closed"
}

main "$@"
