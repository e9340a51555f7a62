//! The benchmark's targets: what each one reads from the report, its goal
//! and its direction, and the verdicts `summary` writes under `targets`.

use crate::report::{Report, TargetResult};
use crate::stats::{OpStats, Stats};

/// Which side of the goal passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `value <= goal` (latencies, memory).
    AtMost,
    /// `value >= goal` (rates).
    AtLeast,
}

/// One target.
#[derive(Debug)]
pub struct Target {
    pub name: &'static str,
    pub goal: f64,
    pub unit: &'static str,
    pub direction: Direction,
    /// The figure, None when it was not measured.
    pub value: fn(&Report) -> Option<f64>,
    /// A remark for the table ("" for none).
    pub note: fn(&Report) -> String,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "CreateContainer ack p50 (no_start)",
        goal: 0.5,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.api.as_ref().map(|a| &a.create_no_start)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "CreateContainer ack p99 (no_start)",
        goal: 5.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.api.as_ref().map(|a| &a.create_no_start)).map(|s| s.p99_ms),
        note: no_note,
    },
    Target {
        name: "GetContainer p50",
        goal: 0.2,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.api.as_ref().map(|a| &a.get_container)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "ListContainers page of 100 of 10,000 p50 (summary)",
        goal: 1.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.api.as_ref().map(|a| &a.list_page_summary)).map(|s| s.p50_ms),
        note: |r| match r.api.as_ref().map_or(0, |a| a.list_page_stored) {
            10_000 | 0 => String::new(),
            n => format!("with {n} stored"),
        },
    },
    Target {
        name: "ListContainers all 1,000 of 1,000 p50 (summary)",
        goal: 2.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.api.as_ref().map(|a| &a.list_all_summary)).map(|s| s.p50_ms),
        note: |r| match r.api.as_ref().map_or(0, |a| a.stored_containers) {
            1_000 | 0 => String::new(),
            n => format!("with {n} stored"),
        },
    },
    Target {
        name: "CLI `quilt create` wall p50",
        goal: 3.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.classic.as_ref().map(|c| &c.cli_create)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "CLI `quilt status` wall p50",
        goal: 3.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.classic.as_ref().map(|c| &c.cli_status)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "cluster: CreateContainer ack p50 through a node",
        goal: 5.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.cluster.as_ref().map(|c| &c.create_ack)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "cluster: GetContainer p50 through another node",
        goal: 1.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.cluster.as_ref().map(|c| &c.status_other_node)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "cluster: starts/s with every node / with one",
        goal: 2.0,
        unit: "x",
        direction: Direction::AtLeast,
        value: |r| r.cluster.as_ref().and_then(|c| c.starts_ratio_all_over_one),
        note: |r| {
            r.cluster.as_ref().map_or(String::new(), |c| {
                format!(
                    "{} nodes on one host of {} cores: they share its CPUs",
                    c.nodes.len(),
                    std::thread::available_parallelism().map_or(0, |n| n.get())
                )
            })
        },
    },
    Target {
        name: "warm pool: time to running p50 of an adopted container",
        goal: 1.5,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.pool.as_ref().map(|p| &p.hit)).map(|s| s.p50_ms),
        note: |r| {
            r.pool.as_ref().map_or(String::new(), |p| {
                format!("{} hits, {} misses", p.hits, p.misses)
            })
        },
    },
    Target {
        name: "time to running p50",
        goal: 5.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.ttr.as_ref().map(|t| &t.time_to_running)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "time to running p95",
        goal: 15.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.ttr.as_ref().map(|t| &t.time_to_running)).map(|s| s.p95_ms),
        note: no_note,
    },
    Target {
        name: "`quilt run --rm` / `crun run` p50 (no slower)",
        goal: 1.0,
        unit: "x",
        direction: Direction::AtMost,
        value: |r| match run_true_p50(r) {
            (Some(q), Some(c)) if c > 0.0 => Some((q / c * 100.0).round() / 100.0),
            _ => None,
        },
        note: |r| match run_true_p50(r) {
            (Some(q), Some(c)) => format!("{q:.2} ms vs {c:.2} ms"),
            _ => "crun not measured".into(),
        },
    },
    Target {
        name: "PauseContainer p50",
        goal: 5.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.pause.as_ref().map(|p| &p.pause)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "UnpauseContainer p50",
        goal: 5.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| measured(r.pause.as_ref().map(|p| &p.unpause)).map(|s| s.p50_ms),
        note: no_note,
    },
    Target {
        name: "interactive p95 under a batch burst / idle p95",
        goal: 2.0,
        unit: "x",
        direction: Direction::AtMost,
        value: |r| {
            r.fairness
                .as_ref()
                .filter(|f| f.idle.stats.n > 0 && f.under_burst.stats.n > 0)
                .map(|f| f.p95_ratio)
        },
        note: |r| match &r.fairness {
            Some(f) => format!(
                "{:.2} ms vs {:.2} ms idle",
                f.under_burst.stats.p95_ms, f.idle.stats.p95_ms
            ),
            None => String::new(),
        },
    },
    Target {
        name: "time to running p50, bridge minus none",
        goal: 1.0,
        unit: "ms",
        direction: Direction::AtMost,
        value: |r| {
            r.network
                .as_ref()
                .filter(|n| n.none.stats.n > 0 && n.bridge.stats.n > 0)
                .map(|n| n.bridge_minus_none_p50_ms)
        },
        note: |r| match &r.network {
            Some(n) => format!(
                "{:.2} ms vs {:.2} ms",
                n.bridge.stats.p50_ms, n.none.stats.p50_ms
            ),
            None => String::new(),
        },
    },
    Target {
        name: "quilt run --network bridge p50 / crun run p50",
        goal: 1.0,
        unit: "x",
        direction: Direction::AtMost,
        value: |r| {
            r.network
                .as_ref()
                .filter(|n| n.run_bridge.stats.n > 0)
                .and_then(|n| n.run_bridge_vs_peer_p50.get("crun").copied())
                .filter(|x| *x > 0.0)
        },
        note: no_note,
    },
    Target {
        name: "time to running p50, most live / 100 live (scale)",
        goal: 1.3,
        unit: "x",
        direction: Direction::AtMost,
        value: |r| r.scale.as_ref().and_then(|s| s.ttr_p50_last_over_first),
        note: |r| match &r.scale {
            Some(s) => s
                .levels
                .iter()
                .map(|d| {
                    format!(
                        "{}: {:.2} ms",
                        d.running, d.time_to_running_with_all_running.stats.p50_ms
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        },
    },
    Target {
        name: "sequential starts",
        goal: 150.0,
        unit: "/s",
        direction: Direction::AtLeast,
        value: |r| r.seqrate.as_ref().map(|s| s.starts_per_s),
        note: no_note,
    },
    Target {
        name: "host memory per idle container (MemAvailable)",
        goal: 0.5,
        unit: "MiB",
        direction: Direction::AtMost,
        value: |r| {
            r.density
                .as_ref()
                .map(|d| d.per_container_mib_mem_available)
        },
        note: |r| {
            let d = r.density.as_ref();
            format!(
                "RSS shim+workload {} MiB, PSS {} MiB",
                json_text(&d.map(|d| d.per_container_mib_rss)),
                json_text(&d.map(|d| d.per_container_mib_pss))
            )
        },
    },
    Target {
        name: "reap gate: unreclaimable kernel memory after its removals, growth",
        goal: 50.0,
        unit: "MB",
        direction: Direction::AtMost,
        value: |r| {
            r.reap_gate
                .as_ref()
                .and_then(|g| g.kernel_memory.as_ref())
                .map(|k| k.sunreclaim_growth_mb)
        },
        note: |r| match r.reap_gate.as_ref() {
            Some(g) => format!("after {} short-lived containers", g.removed),
            None => String::new(),
        },
    },
    Target {
        name: "quiltd RSS with 500 running",
        goal: 40.0,
        unit: "MiB",
        direction: Direction::AtMost,
        value: |r| r.density.as_ref().map(|d| d.quiltd_rss_mib),
        note: |r| match r.density.as_ref().map_or(0, |d| d.running) {
            500 => String::new(),
            running => format!("measured with {running} running"),
        },
    },
];

fn no_note(_: &Report) -> String {
    String::new()
}

/// The stats of an operation that has at least one sample.
fn measured(op: Option<&OpStats>) -> Option<&Stats> {
    op.map(|o| &o.stats).filter(|s| s.n > 0)
}

/// p50 of `quilt run --rm` and of `crun run`.
fn run_true_p50(r: &Report) -> (Option<f64>, Option<f64>) {
    let op = r.peers.as_ref().map(|p| &p.ops.timed.run_true);
    let p50 = |engine: &str| measured(op.and_then(|o| o.engines.get(engine))).map(|s| s.p50_ms);
    (p50("quilt"), p50("crun"))
}

/// A value as it reads in JSON: `0.5`, `150.0`, `null`.
pub fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Target {
    /// The target checked against `r`.
    pub fn check(&self, r: &Report) -> TargetResult {
        let value = (self.value)(r);
        let (verdict, margin) = self.verdict(value);
        TargetResult {
            target: self.name.into(),
            goal: self.goal,
            unit: self.unit.into(),
            at_least: self.direction == Direction::AtLeast,
            value,
            verdict,
            margin,
            note: (self.note)(r),
        }
    }

    /// ("met" | "missed" | "n/a", how far from the goal).
    fn verdict(&self, value: Option<f64>) -> (String, String) {
        let Some(v) = value else {
            return ("n/a".into(), "not measured".into());
        };
        let met = match self.direction {
            Direction::AtMost => v <= self.goal,
            Direction::AtLeast => v >= self.goal,
        };
        let diff = (v - self.goal).abs();
        let pct = if self.goal != 0.0 {
            diff / self.goal * 100.0
        } else {
            0.0
        };
        let how = if met {
            format!("{diff:.2} {} to spare ({pct:.0}%)", self.unit)
        } else {
            format!("by {diff:.2} {} ({pct:.0}%)", self.unit)
        };
        (if met { "met".into() } else { "missed".into() }, how)
    }
}

/// Every target checked against `r`.
pub fn check_all(r: &Report) -> Vec<TargetResult> {
    TARGETS.iter().map(|t| t.check(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(goal: f64, unit: &'static str, direction: Direction) -> Target {
        Target {
            name: "x",
            goal,
            unit,
            direction,
            value: |_| None,
            note: no_note,
        }
    }

    #[test]
    fn verdicts() {
        let t = target(5.0, "ms", Direction::AtMost);
        assert_eq!(t.verdict(Some(7.5)).0, "missed");
        assert_eq!(t.verdict(Some(7.5)).1, "by 2.50 ms (50%)");
        let t = target(150.0, "/s", Direction::AtLeast);
        assert_eq!(t.verdict(Some(200.0)).0, "met");
        let t = target(1.0, "x", Direction::AtMost);
        assert_eq!(t.verdict(None).0, "n/a");
    }

    #[test]
    fn an_empty_report_measures_nothing() {
        let ts = check_all(&Report::default());
        assert_eq!(ts.len(), TARGETS.len());
        assert!(ts.iter().all(|t| t.value.is_none() && t.verdict == "n/a"));
        let note = |name: &str| &ts.iter().find(|t| t.target == name).unwrap().note;
        assert_eq!(
            note("`quilt run --rm` / `crun run` p50 (no slower)"),
            "crun not measured"
        );
        assert_eq!(
            note("host memory per idle container (MemAvailable)"),
            "RSS shim+workload null MiB, PSS null MiB"
        );
        assert_eq!(
            note("quiltd RSS with 500 running"),
            "measured with 0 running"
        );
    }

    #[test]
    fn the_reap_gate_kernel_memory_is_judged_by_its_growth() {
        const NAME: &str = "reap gate: unreclaimable kernel memory after its removals, growth";
        let report = |growth_mb: f64| Report {
            reap_gate: Some(crate::report::ReapGate {
                removed: 10_000,
                kernel_memory: Some(crate::report::KernelMemory {
                    sunreclaim_growth_mb: growth_mb,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let verdict = |growth_mb: f64| {
            let ts = check_all(&report(growth_mb));
            let t = ts.into_iter().find(|t| t.target == NAME).unwrap();
            (t.value, t.verdict, t.note)
        };
        let (value, verdict_small, note) = verdict(1.7);
        assert_eq!(value, Some(1.7));
        assert_eq!(verdict_small, "met");
        assert_eq!(note, "after 10000 short-lived containers");
        assert_eq!(verdict(62.0).1, "missed");
    }
}
