//! Stats: the container's cgroup metrics in containerd's own messages (`io.containerd.cgroups.v1.Metrics`
//! on cgroup v1 and hybrid hosts, `io.containerd.cgroups.v2.Metrics` on unified ones), read from the
//! cgroup files of the container's init process.

use std::collections::HashMap;
use std::path::Path;

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};

use crate::cgroup::{read_keyed, read_u64, Cgroups};
use crate::error::{Error, Result};

/// The metrics of the cgroups of process `pid` (the container's init).
pub fn collect(pid: u32) -> Result<Any> {
    let cgroups = Cgroups::of_process(pid)?;
    let (type_url, bytes) = if cgroups.is_v1() {
        (
            "io.containerd.cgroups.v1.Metrics",
            metrics_v1(&cgroups).write_to_bytes(),
        )
    } else {
        let dir = cgroups
            .unified()
            .ok_or_else(|| Error::NotFound(format!("a cgroup for pid {pid}")))?;
        (
            "io.containerd.cgroups.v2.Metrics",
            metrics_v2(dir).write_to_bytes(),
        )
    };
    let value = bytes.map_err(|e| Error::FailedPrecondition(format!("encoding metrics: {e}")))?;
    Ok(Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    })
}

fn metrics_v1(cgroups: &Cgroups) -> v1::Metrics {
    let mut metrics = v1::Metrics::new();
    if let Some(dir) = cgroups.controller("pids") {
        metrics.pids = MessageField::some(v1::PidsStat {
            current: read_u64(&dir.join("pids.current")),
            limit: read_u64(&dir.join("pids.max")),
            ..Default::default()
        });
    }
    if let Some(dir) = cgroups.controller("cpuacct") {
        // cpuacct.stat counts USER_HZ ticks (100 per second); containerd reports nanoseconds.
        let stat = read_keyed(&dir.join("cpuacct.stat"));
        let per_cpu = std::fs::read_to_string(dir.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let throttle = cgroups
            .controller("cpu")
            .map(|cpu| read_keyed(&cpu.join("cpu.stat")))
            .unwrap_or_default();
        metrics.cpu = MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: read_u64(&dir.join("cpuacct.usage")),
                user: stat.get("user").copied().unwrap_or(0) * 10_000_000,
                kernel: stat.get("system").copied().unwrap_or(0) * 10_000_000,
                per_cpu,
                ..Default::default()
            }),
            throttling: MessageField::some(v1::Throttle {
                periods: throttle.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: throttle.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: throttle.get("throttled_time").copied().unwrap_or(0),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if let Some(dir) = cgroups.controller("memory") {
        let stat = read_keyed(&dir.join("memory.stat"));
        let get = |key: &str| stat.get(key).copied().unwrap_or(0);
        let entry = |prefix: &str| v1::MemoryEntry {
            usage: read_u64(&dir.join(format!("{prefix}usage_in_bytes"))),
            limit: read_u64(&dir.join(format!("{prefix}limit_in_bytes"))),
            max: read_u64(&dir.join(format!("{prefix}max_usage_in_bytes"))),
            failcnt: read_u64(&dir.join(format!("{prefix}failcnt"))),
            ..Default::default()
        };
        metrics.memory = MessageField::some(v1::MemoryStat {
            cache: get("cache"),
            rss: get("rss"),
            rss_huge: get("rss_huge"),
            mapped_file: get("mapped_file"),
            dirty: get("dirty"),
            writeback: get("writeback"),
            pg_pg_in: get("pgpgin"),
            pg_pg_out: get("pgpgout"),
            pg_fault: get("pgfault"),
            pg_maj_fault: get("pgmajfault"),
            inactive_anon: get("inactive_anon"),
            active_anon: get("active_anon"),
            inactive_file: get("inactive_file"),
            active_file: get("active_file"),
            unevictable: get("unevictable"),
            hierarchical_memory_limit: get("hierarchical_memory_limit"),
            hierarchical_swap_limit: get("hierarchical_memsw_limit"),
            total_cache: get("total_cache"),
            total_rss: get("total_rss"),
            total_rss_huge: get("total_rss_huge"),
            total_mapped_file: get("total_mapped_file"),
            total_dirty: get("total_dirty"),
            total_writeback: get("total_writeback"),
            total_pg_pg_in: get("total_pgpgin"),
            total_pg_pg_out: get("total_pgpgout"),
            total_pg_fault: get("total_pgfault"),
            total_pg_maj_fault: get("total_pgmajfault"),
            total_inactive_anon: get("total_inactive_anon"),
            total_active_anon: get("total_active_anon"),
            total_inactive_file: get("total_inactive_file"),
            total_active_file: get("total_active_file"),
            total_unevictable: get("total_unevictable"),
            usage: MessageField::some(entry("memory.")),
            swap: MessageField::some(entry("memory.memsw.")),
            kernel: MessageField::some(entry("memory.kmem.")),
            kernel_tcp: MessageField::some(entry("memory.kmem.tcp.")),
            ..Default::default()
        });
    }
    metrics
}

fn metrics_v2(dir: &Path) -> v2::Metrics {
    let mut metrics = v2::Metrics::new();
    metrics.pids = MessageField::some(v2::PidsStat {
        current: read_u64(&dir.join("pids.current")),
        limit: read_u64(&dir.join("pids.max")),
        ..Default::default()
    });
    let cpu = read_keyed(&dir.join("cpu.stat"));
    let get = |map: &HashMap<String, u64>, key: &str| map.get(key).copied().unwrap_or(0);
    metrics.cpu = MessageField::some(v2::CPUStat {
        usage_usec: get(&cpu, "usage_usec"),
        user_usec: get(&cpu, "user_usec"),
        system_usec: get(&cpu, "system_usec"),
        nr_periods: get(&cpu, "nr_periods"),
        nr_throttled: get(&cpu, "nr_throttled"),
        throttled_usec: get(&cpu, "throttled_usec"),
        ..Default::default()
    });
    let memory = read_keyed(&dir.join("memory.stat"));
    metrics.memory = MessageField::some(v2::MemoryStat {
        anon: get(&memory, "anon"),
        file: get(&memory, "file"),
        kernel_stack: get(&memory, "kernel_stack"),
        slab: get(&memory, "slab"),
        sock: get(&memory, "sock"),
        shmem: get(&memory, "shmem"),
        file_mapped: get(&memory, "file_mapped"),
        file_dirty: get(&memory, "file_dirty"),
        file_writeback: get(&memory, "file_writeback"),
        inactive_anon: get(&memory, "inactive_anon"),
        active_anon: get(&memory, "active_anon"),
        inactive_file: get(&memory, "inactive_file"),
        active_file: get(&memory, "active_file"),
        unevictable: get(&memory, "unevictable"),
        pgfault: get(&memory, "pgfault"),
        pgmajfault: get(&memory, "pgmajfault"),
        usage: read_u64(&dir.join("memory.current")),
        usage_limit: read_u64(&dir.join("memory.max")),
        swap_usage: read_u64(&dir.join("memory.swap.current")),
        swap_limit: read_u64(&dir.join("memory.swap.max")),
        max_usage: read_u64(&dir.join("memory.peak")),
        ..Default::default()
    });
    let events = read_keyed(&dir.join("memory.events"));
    metrics.memory_events = MessageField::some(v2::MemoryEvents {
        low: get(&events, "low"),
        high: get(&events, "high"),
        max: get(&events, "max"),
        oom: get(&events, "oom"),
        oom_kill: get(&events, "oom_kill"),
        ..Default::default()
    });
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shims_own_cgroup_yields_metrics() {
        let any = collect(std::process::id()).unwrap();
        assert!(
            any.type_url.starts_with("io.containerd.cgroups.v"),
            "{}",
            any.type_url
        );
        if any.type_url.ends_with("v1.Metrics") {
            let metrics = v1::Metrics::parse_from_bytes(&any.value).unwrap();
            assert!(metrics.memory.usage.usage > 0);
        } else {
            let metrics = v2::Metrics::parse_from_bytes(&any.value).unwrap();
            assert!(metrics.memory.usage > 0);
        }
    }
}
