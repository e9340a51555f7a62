//! The host's unreclaimable kernel memory around a run: SUnreclaim and the
//! memory cgroups the kernel still holds (dying ones included), before the
//! run and after everything it made was removed.

use crate::report::KernelMemory;
use quilt_testkit::host;
use std::time::{Duration, Instant};

/// What was read before the run.
pub struct Before {
    sunreclaim_kb: u64,
    memory_cgroups: Option<u32>,
}

/// Median of five readings of SUnreclaim, 100 ms apart (other work on the
/// host moves it a little).
async fn sunreclaim_kb() -> Option<u64> {
    let mut v = Vec::with_capacity(5);
    for i in 0..5 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        v.extend(host::sunreclaim_kb());
    }
    crate::density::median(v)
}

/// None where /proc/meminfo has no SUnreclaim.
pub async fn before() -> Option<Before> {
    Some(Before {
        memory_cgroups: host::memory_cgroups(),
        sunreclaim_kb: sunreclaim_kb().await?,
    })
}

/// Read after the run's last removal. The kernel frees a removed cgroup
/// after an RCU grace period, from a workqueue: this waits up to `settle`
/// for the count of memory cgroups to come back to where it was (a cgroup
/// that stays is dying, and is what this measures).
pub async fn after(b: Before, settle: Duration) -> Option<KernelMemory> {
    let t = Instant::now();
    while let (Some(was), Some(now)) = (b.memory_cgroups, host::memory_cgroups()) {
        if now <= was || t.elapsed() >= settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = sunreclaim_kb().await?;
    let growth_kb = after as f64 - b.sunreclaim_kb as f64;
    Some(KernelMemory {
        description: "SUnreclaim of /proc/meminfo (median of 5 readings) and the memory controller's num_cgroups of /proc/cgroups, before the first create and after the last removal".into(),
        sunreclaim_before_kb: b.sunreclaim_kb,
        sunreclaim_after_kb: after,
        sunreclaim_growth_mb: (growth_kb * 1024.0 / 1e6 * 10.0).round() / 10.0,
        memory_cgroups_before: b.memory_cgroups,
        memory_cgroups_after: host::memory_cgroups(),
    })
}

impl KernelMemory {
    /// "SUnreclaim A -> B kB (+G MB), memory cgroups C -> D".
    pub fn line(&self) -> String {
        let n = |c: Option<u32>| c.map_or_else(|| "?".to_owned(), |c| c.to_string());
        format!(
            "unreclaimable kernel memory (SUnreclaim) {} -> {} kB ({:+.1} MB), memory cgroups {} -> {}",
            self.sunreclaim_before_kb,
            self.sunreclaim_after_kb,
            self.sunreclaim_growth_mb,
            n(self.memory_cgroups_before),
            n(self.memory_cgroups_after)
        )
    }
}
