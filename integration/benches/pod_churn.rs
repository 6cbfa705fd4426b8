//! bench/pod-churn: what a node's life costs through CRI, the `strict` handler against `runc`
//! (containerd-shim-runc-v2) on one containerd, interleaved. A benchmark, not a test: it prints figures
//! and asserts nothing about them. Run by hand (`bench/pod-churn`), never in CI.
//!
//! Sections (each can be chosen with `--only NAME`):
//! - `start`: RunPodSandbox → CreateContainer → StartContainer for every app container, hostNetwork pods
//!   of 1 and of 3 busybox containers, `--pods` pods per handler at concurrency 1 and 8; then
//!   StopPodSandbox + RemovePodSandbox of each (`teardown`, timed at concurrency 1).
//! - `exec`: ExecSync of `/bin/true` in one running container per handler, `--execs` calls each, in pairs
//!   whose order alternates.
//! - `density`: `--pods` running pods per handler at once: the shims' total VmRSS and Pss, then the CPU
//!   time of the shims and their children (gates, runc) over `--idle` seconds with an exec probe every
//!   `--probe-every` seconds per pod, as the kubelet's exec probes do.
//!
//! Interleaving: at concurrency 1 the handlers alternate pod by pod (the order flips each pair); at
//! concurrency 8 each worker alternates, so both handlers share every moment's load.

#[path = "../tests/cri_client/mod.rs"]
mod cri_client;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cri_client::{Cri, Pod, STRICT_HANDLER};
use k8s_cri::v1::{
    security_profile, NamespaceMode, NamespaceOption, PodSandboxConfig, SecurityProfile,
};
use strict_integration::testbed;

const RUNC_HANDLER: &str = "runc";
const HANDLERS: [&str; 2] = [STRICT_HANDLER, RUNC_HANDLER];

struct Options {
    /// RuntimeDefault seccomp for the pods and containers of both handlers (like for like: strict
    /// intersects containerd's profile); without it both run Unconfined and strict adds its own filter.
    seccomp: bool,
    pods: usize,
    execs: usize,
    idle: u64,
    probe_every: u64,
    only: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        seccomp: false,
        pods: 100,
        execs: 200,
        idle: 60,
        probe_every: 10,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> String {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--pods" => options.pods = value("--pods").parse().expect("--pods N"),
            "--execs" => options.execs = value("--execs").parse().expect("--execs N"),
            "--idle" => options.idle = value("--idle").parse().expect("--idle SECONDS"),
            "--probe-every" => {
                options.probe_every = value("--probe-every").parse().expect("--probe-every SECONDS")
            }
            "--only" => options.only = Some(value("--only")),
            "--seccomp" => options.seccomp = true,
            // cargo bench passes --bench to a harness-less bench.
            "--bench" => {}
            other => panic!(
                "unknown argument {other}: --seccomp --pods N --execs N --idle S --probe-every S --only start|exec|density"
            ),
        }
    }
    options
}

/// Latencies of one handler, in milliseconds.
#[derive(Default, Clone)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, elapsed: Duration) {
        self.0.push(elapsed.as_secs_f64() * 1000.0);
    }

    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1]
    }
}

/// One row of the latency table: p50/p90/p99 per handler and the ratios strict/runc.
fn latency_row(what: &str, strict: &Samples, runc: &Samples) -> String {
    let cell = |p: f64| {
        let (s, r) = (strict.percentile(p), runc.percentile(p));
        format!("{s:.1} / {r:.1} ({:.2}×)", s / r)
    };
    format!(
        "| {what} | {} | {} | {} | {} |",
        strict.0.len(),
        cell(50.0),
        cell(90.0),
        cell(99.0)
    )
}

/// Whether pods and containers ask for RuntimeDefault seccomp (`--seccomp`), set once in main.
static SECCOMP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn runtime_default() -> Option<SecurityProfile> {
    SECCOMP
        .get()
        .copied()
        .unwrap_or(false)
        .then(|| SecurityProfile {
            profile_type: security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        })
}

fn host_network(p: &mut PodSandboxConfig) {
    let security = cri_client::sandbox_security(p);
    security.namespace_options = Some(NamespaceOption {
        network: NamespaceMode::Node as i32,
        ..Default::default()
    });
    security.seccomp = runtime_default();
    p.hostname = String::new(); // the kubelet sends none for hostNetwork pods
}

/// A pod of `containers` sleeping busybox containers, started as the kubelet does (one after the other);
/// its id, its containers' ids and how long the whole start took.
async fn start_pod(
    cri: &mut Cri,
    handler: &str,
    containers: usize,
) -> (Pod, Vec<String>, Duration) {
    let since = Instant::now();
    let pod = cri
        .run_pod(&strict_integration::unique("churn"), handler, host_network)
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox ({handler}): {}", e.message()));
    let mut ids = Vec::new();
    for n in 0..containers {
        let id = cri
            .start_container(&pod, &format!("app{n}"), |c| {
                cri_client::container_security(c).seccomp = runtime_default();
            })
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "CreateContainer/StartContainer ({handler}): {}",
                    e.message()
                )
            });
        ids.push(id);
    }
    (pod, ids, since.elapsed())
}

async fn teardown(cri: &mut Cri, pod: &Pod) -> Duration {
    let since = Instant::now();
    cri.remove_pod(&pod.id).await;
    since.elapsed()
}

/// Pod starts of `containers` containers, `pods` per handler at `concurrency`; each pod is torn down
/// after its start (timed too).
async fn pod_starts(
    cri: &Cri,
    pods: usize,
    containers: usize,
    concurrency: usize,
) -> BTreeMap<&'static str, (Samples, Samples)> {
    let workers = (0..concurrency).map(|worker| {
        let mut cri = cri.clone();
        tokio::spawn(async move {
            let mut seen: BTreeMap<&'static str, (Samples, Samples)> = BTreeMap::new();
            let rounds = (2 * pods).div_ceil(concurrency);
            for round in 0..rounds {
                // Alternating within a worker, and the workers out of step: both handlers at every moment.
                let handler = HANDLERS[(worker + round) % 2];
                let (pod, _, started) = start_pod(&mut cri, handler, containers).await;
                let removed = teardown(&mut cri, &pod).await;
                let entry = seen.entry(handler).or_default();
                entry.0.push(started);
                entry.1.push(removed);
            }
            seen
        })
    });
    let mut all: BTreeMap<&'static str, (Samples, Samples)> = BTreeMap::new();
    for worker in futures_join(workers.collect()).await {
        for (handler, (starts, teardowns)) in worker {
            let entry = all.entry(handler).or_default();
            entry.0 .0.extend(starts.0);
            entry.1 .0.extend(teardowns.0);
        }
    }
    all
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("a bench worker panicked"));
    }
    out
}

async fn section_start(cri: &Cri, options: &Options) {
    println!("\n### Pod start through CRI (hostNetwork pods, busybox `sleep 300`)\n");
    println!(
        "p50 / p90 / p99 in ms, strict / runc (ratio). Pod start: RunPodSandbox, then CreateContainer and \
         StartContainer for each app container. Teardown: StopPodSandbox + RemovePodSandbox.\n"
    );
    println!("| what | pods per handler | p50 | p90 | p99 |\n|---|---|---|---|---|");
    for containers in [1, 3] {
        for concurrency in [1, 8] {
            eprintln!("pod-churn: {containers} container(s), concurrency {concurrency}");
            let seen = pod_starts(cri, options.pods, containers, concurrency).await;
            let (strict, runc) = (&seen[STRICT_HANDLER], &seen[RUNC_HANDLER]);
            println!(
                "{}",
                latency_row(
                    &format!("start, {containers} app container(s), concurrency {concurrency}"),
                    &strict.0,
                    &runc.0
                )
            );
            if concurrency == 1 {
                println!(
                    "{}",
                    latency_row(
                        &format!("teardown, {containers} app container(s), concurrency 1"),
                        &strict.1,
                        &runc.1
                    )
                );
            }
        }
    }
}

async fn section_exec(cri: &Cri, options: &Options) {
    eprintln!("pod-churn: exec probes");
    let mut cri = cri.clone();
    let mut running = Vec::new();
    for handler in HANDLERS {
        let (pod, ids, _) = start_pod(&mut cri, handler, 1).await;
        running.push((handler, pod, ids[0].clone()));
    }
    let mut seen: BTreeMap<&str, Samples> = BTreeMap::new();
    // Warm-up: the first exec of each container.
    for (_, _, id) in &running {
        cri.exec_sync(id, &["/bin/true"]).await;
    }
    for pair in 0..options.execs {
        for i in 0..2 {
            let (handler, _, id) = &running[(pair + i) % 2];
            let since = Instant::now();
            let reply = cri.exec_sync(id, &["/bin/true"]).await;
            seen.entry(handler).or_default().push(since.elapsed());
            assert_eq!(reply.exit_code, 0, "/bin/true failed ({handler})");
        }
    }
    // The runtime's own share: `runc exec` straight into the same containers, no shim, no containerd
    // (the seccomp filter runc compiles for every exec is here).
    let roots = [
        testbed().run_dir.join("runc/k8s.io"),
        std::path::PathBuf::from("/run/containerd/runc/k8s.io"),
    ];
    let mut direct: BTreeMap<&str, Samples> = BTreeMap::new();
    for pair in 0..options.execs.min(50) {
        for i in 0..2 {
            let n = (pair + i) % 2;
            let (handler, _, id) = &running[n];
            let since = Instant::now();
            let status = std::process::Command::new("/usr/sbin/runc")
                .arg("--root")
                .arg(&roots[n])
                .args(["exec", id, "/bin/true"])
                .status()
                .unwrap();
            direct.entry(handler).or_default().push(since.elapsed());
            assert!(status.success(), "runc exec into {handler}'s container");
        }
    }
    for (_, pod, _) in &running {
        cri.remove_pod(&pod.id).await;
    }
    println!("\n### Exec probes: ExecSync of `/bin/true` in a running container\n");
    println!("| what | calls per handler | p50 | p90 | p99 |\n|---|---|---|---|---|");
    println!(
        "{}",
        latency_row(
            "ExecSync /bin/true",
            &seen[STRICT_HANDLER],
            &seen[RUNC_HANDLER]
        )
    );
    println!(
        "{}",
        latency_row(
            "`runc exec` into the same containers (no shim): the runtime's share",
            &direct[STRICT_HANDLER],
            &direct[RUNC_HANDLER]
        )
    );
}

/// The shims serving our containerd, by handler: their pids.
fn shims(address: &str) -> BTreeMap<&'static str, Vec<u32>> {
    let mut found: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.iter().any(|a| a == address) {
            continue;
        }
        let handler = match args.first().map(|a| a.rsplit('/').next().unwrap_or("")) {
            Some("containerd-shim-strict-v2") => STRICT_HANDLER,
            Some("containerd-shim-runc-v2") => RUNC_HANDLER,
            _ => continue,
        };
        found.entry(handler).or_default().push(pid);
    }
    found
}

/// A /proc/PID/status or smaps_rollup field in KiB.
fn kib(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time of a process and of its reaped children (utime, stime, cutime, cstime), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, so index 11; stime 12, cutime 13, cstime 14.
    (11..15)
        .filter_map(|i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

async fn section_density(cri: &Cri, options: &Options) {
    let address = testbed().address.display().to_string();
    eprintln!("pod-churn: density, {} pods per handler", options.pods);
    // Start the pods at concurrency 8, interleaved.
    let per_worker = (2 * options.pods).div_ceil(8);
    let workers = (0..8).map(|worker| {
        let mut cri = cri.clone();
        let pods = options.pods;
        tokio::spawn(async move {
            let mut mine = Vec::new();
            for round in 0..per_worker {
                let index = worker * per_worker + round;
                if index >= 2 * pods {
                    break;
                }
                let handler = HANDLERS[(worker + round) % 2];
                let (pod, ids, _) = start_pod(&mut cri, handler, 1).await;
                mine.push((handler, pod, ids[0].clone()));
            }
            mine
        })
    });
    let running: Vec<(&str, Pod, String)> = futures_join(workers.collect())
        .await
        .into_iter()
        .flatten()
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let by_handler = shims(&address);
    println!(
        "\n### Density: {} running pods per handler (hostNetwork, one busybox container each)\n",
        options.pods
    );
    println!("| | strict | runc | ratio |\n|---|---|---|---|");
    let count = |h: &str| by_handler.get(h).map_or(0, |p| p.len());
    println!(
        "| shims | {} | {} | |",
        count(STRICT_HANDLER),
        count(RUNC_HANDLER)
    );
    for (label, file, field) in [
        ("total VmRSS", "status", "VmRSS:"),
        ("total Pss", "smaps_rollup", "Pss:"),
    ] {
        let total = |h: &str| -> u64 {
            by_handler
                .get(h)
                .into_iter()
                .flatten()
                .map(|pid| kib(&format!("/proc/{pid}/{file}"), field))
                .sum()
        };
        let (s, r) = (total(STRICT_HANDLER), total(RUNC_HANDLER));
        println!(
            "| {label} | {:.1} MiB | {:.1} MiB | {:.2}× |",
            s as f64 / 1024.0,
            r as f64 / 1024.0,
            s as f64 / r as f64
        );
    }
    // Idle with exec probes: each pod probed every `probe_every` seconds, the pods spread over the period.
    let before: BTreeMap<u32, u64> = by_handler
        .values()
        .flatten()
        .map(|pid| (*pid, cpu_ticks(*pid)))
        .collect();
    let period = Duration::from_secs(options.probe_every);
    let idle = Duration::from_secs(options.idle);
    let since = Instant::now();
    let total = running.len();
    let probes = running.iter().enumerate().map(|(n, (handler, _, id))| {
        let mut cri = cri.clone();
        let (handler, id) = (handler.to_string(), id.clone());
        let offset = period.mul_f64(n as f64 / total as f64);
        tokio::spawn(async move {
            let mut latencies = Samples::default();
            let mut next = since + offset;
            while next + Duration::from_millis(1) < since + idle {
                tokio::time::sleep_until(next.into()).await;
                let started = Instant::now();
                let reply = cri.exec_sync(&id, &["/bin/true"]).await;
                latencies.push(started.elapsed());
                assert_eq!(reply.exit_code, 0, "probe failed ({handler})");
                next += period;
            }
            (handler, latencies)
        })
    });
    let results = futures_join(probes.collect()).await;
    tokio::time::sleep_until((since + idle).into()).await;
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = |h: &str| -> f64 {
        by_handler
            .get(h)
            .into_iter()
            .flatten()
            .map(|pid| cpu_ticks(*pid).saturating_sub(before[pid]))
            .sum::<u64>() as f64
            / ticks
    };
    let (s, r) = (cpu(STRICT_HANDLER), cpu(RUNC_HANDLER));
    println!(
        "| CPU of shims + gates + runc over {} s, a probe per pod every {} s | {s:.2} s | {r:.2} s | {:.2}× |",
        options.idle,
        options.probe_every,
        s / r
    );
    let mut latencies: BTreeMap<String, Samples> = BTreeMap::new();
    for (handler, samples) in results {
        latencies.entry(handler).or_default().0.extend(samples.0);
    }
    println!("\n| what | calls per handler | p50 | p90 | p99 |\n|---|---|---|---|---|");
    println!(
        "{}",
        latency_row(
            "exec probes at density",
            &latencies[STRICT_HANDLER],
            &latencies[RUNC_HANDLER]
        )
    );
    // Teardown of all, 8 at a time.
    eprintln!("pod-churn: tearing the density pods down");
    let mut chunks: Vec<Vec<(&str, Pod, String)>> = (0..8).map(|_| Vec::new()).collect();
    for (n, pod) in running.into_iter().enumerate() {
        chunks[n % 8].push(pod);
    }
    let teardowns = chunks.into_iter().map(|chunk| {
        let mut cri = cri.clone();
        let chunk: Vec<(String, String)> = chunk
            .into_iter()
            .map(|(h, p, _)| (h.to_string(), p.id))
            .collect();
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, Samples> = BTreeMap::new();
            for (handler, id) in chunk {
                let since = Instant::now();
                cri.remove_pod(&id).await;
                seen.entry(handler).or_default().push(since.elapsed());
            }
            seen
        })
    });
    let mut seen: BTreeMap<String, Samples> = BTreeMap::new();
    for worker in futures_join(teardowns.collect()).await {
        for (handler, samples) in worker {
            seen.entry(handler).or_default().0.extend(samples.0);
        }
    }
    println!(
        "{}",
        latency_row(
            "teardown at density, concurrency 8",
            &seen[STRICT_HANDLER],
            &seen[RUNC_HANDLER]
        )
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let options = options();
    SECCOMP.set(options.seccomp).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cri = Cri::connect().await;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "## pod-churn{}, {} ({cpus} CPUs; load average before: {})",
            if options.seccomp {
                " --seccomp (RuntimeDefault on both sides)"
            } else {
                " (Unconfined pods: strict adds its filter)"
            },
            std::process::Command::new("date")
                .arg("-u")
                .arg("+%F %H:%M UTC")
                .output()
                .map(|o| strict_integration::text(&o.stdout))
                .unwrap_or_default(),
            load()
        );
        let wanted = |name: &str| options.only.as_deref().is_none_or(|only| only == name);
        if wanted("exec") {
            section_exec(&cri, &options).await;
        }
        if wanted("start") {
            section_start(&cri, &options).await;
        }
        if wanted("density") {
            section_density(&cri, &options).await;
        }
        println!("\nLoad average after: {}", load());
    });
}
