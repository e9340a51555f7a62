//! Merges the per-measurement JSON files into one document, checks the
//! targets and renders the markdown summary from the typed [`Report`].

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::Path;

use crate::report::Report;
use crate::stats::OpStats;
use crate::targets::{check_all, json_text};

/// Reads DIR/*.json into one object keyed by file stem. A file that is not
/// JSON is kept as `{"error": ...}`.
pub fn merge(dir: &Path) -> Result<Value> {
    let mut m = Map::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for p in entries {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                m.insert(stem, v);
            }
            Err(e) => {
                m.insert(stem, json!({"error": format!("unreadable JSON: {e}")}));
            }
        }
    }
    Ok(Value::Object(m))
}

/// Builds the final document (the merged files as they are, plus
/// `targets`) and its markdown.
pub fn summarize(dir: &Path) -> Result<(Value, String)> {
    let mut v = merge(dir)?;
    let mut report = Report::from_document(&v);
    let has_measurements = [
        "api",
        "classic",
        "ttr",
        "peers",
        "seqrate",
        "density",
        "scale",
        "pool",
        "cluster",
        "reap_gate",
    ]
    .iter()
    .any(|k| !v[*k].is_null());
    report.targets = if has_measurements {
        check_all(&report)
    } else {
        Vec::new()
    };
    v["targets"] = serde_json::to_value(&report.targets)?;
    Ok((v, markdown(&report)))
}

/// A latency: three decimals, one from 100 ms on.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// A number with a fixed count of decimals, or "-".
fn fixed(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) => format!("{x:.decimals$}"),
        None => "-".into(),
    }
}

/// Starts/s with 1..N nodes of a cluster, placement and the stores' p99s.
fn cluster_lines(md: &mut String, r: &Report) {
    let Some(c) = &r.cluster else {
        return;
    };
    let _ = writeln!(md, "\nCluster ({}):", c.nodes.join(", "));
    for s in &c.starts {
        let _ = writeln!(
            md,
            "- {} starts/s with {} node(s): {} containers in {:.2} s ({} failed, {} create errors)",
            s.per_s, s.nodes, s.containers, s.seconds, s.failed, s.create_errors
        );
    }
    let _ = writeln!(
        md,
        "- all nodes over one: {}; placed per node {:?}",
        fixed(c.starts_ratio_all_over_one, 2),
        c.placed_per_node
    );
    let _ = writeln!(
        md,
        "- store write p99 (ms): PostgreSQL per node {:?}, SQLite {}",
        c.store_writes.postgres_p99_ms_per_node,
        fixed(c.store_writes.sqlite_p99_ms, 3)
    );
}

/// One row of the latency table.
fn stat_row(md: &mut String, label: &str, op: &OpStats) {
    let s = &op.stats;
    let _ = writeln!(
        md,
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s.n,
        num(s.p50_ms),
        num(s.p95_ms),
        num(s.p99_ms),
        num(s.max_ms),
        num(s.avg_ms),
        num(s.min_ms),
        s.errors
    );
}

pub fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let meta = r.meta.clone().unwrap_or_default();
    let _ = writeln!(
        md,
        "## Quilt benchmark ({} mode)\n",
        meta.mode.as_deref().unwrap_or("?")
    );
    if let Some(h) = &meta.host {
        let _ = writeln!(md, "{h}\n");
    }
    let _ = writeln!(
        md,
        "Latencies in ms; nearest-rank percentiles; errors are failed attempts (not in the times).\n"
    );
    let _ = writeln!(
        md,
        "| measurement | n | p50 | p95 | p99 | max | avg | min | errors |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    latency_rows(&mut md, r);
    if let Some(c) = &r.classic {
        // avg/min/max, for comparison with the historical figures.
        let (create, status) = (&c.cli_create.stats, &c.cli_status.stats);
        let _ = writeln!(
            md,
            "\nClassic ({} runs): `quilt create` avg {} / min {} / max {} ms (historical 8 ms); `quilt status` avg {} / min {} / max {} ms (historical 5 ms).",
            c.runs,
            fixed(Some(create.avg_ms), 2),
            fixed(Some(create.min_ms), 2),
            fixed(Some(create.max_ms), 2),
            fixed(Some(status.avg_ms), 2),
            fixed(Some(status.min_ms), 2),
            fixed(Some(status.max_ms), 2),
        );
    }
    peer_ratios(&mut md, r, &meta.peers_skipped.unwrap_or_default());
    throughput_table(&mut md, r);
    rates(&mut md, r);
    density_line(&mut md, r);
    reap_line(&mut md, r);
    scale_peers_line(&mut md, r);
    cluster_lines(&mut md, r);
    target_table(&mut md, r);
    md
}

/// The latency table's rows, measurement by measurement.
fn latency_rows(md: &mut String, r: &Report) {
    if let Some(c) = &r.classic {
        stat_row(md, "classic: `quilt create` process", &c.cli_create);
        stat_row(md, "classic: `quilt status` process", &c.cli_status);
    }
    if let Some(a) = &r.api {
        let stored = a.stored_containers;
        stat_row(md, "API CreateContainer ack (no_start)", &a.create_no_start);
        stat_row(md, "API CreateContainer ack (starting)", &a.create_start);
        stat_row(
            md,
            &format!("API GetContainer ({stored} stored)"),
            &a.get_container,
        );
        stat_row(
            md,
            &format!("API ListContainers ({stored} stored)"),
            &a.list_containers,
        );
        stat_row(
            md,
            &format!("API ListContainers summary view ({stored} stored)"),
            &a.list_all_summary,
        );
        if a.list_page_stored > 0 {
            let n = a.list_page_stored;
            stat_row(
                md,
                &format!("API ListContainers page of 100, summary ({n} stored)"),
                &a.list_page_summary,
            );
            stat_row(
                md,
                &format!("API ListContainers page of 100, full ({n} stored)"),
                &a.list_page_full,
            );
            stat_row(
                md,
                &format!("API GetContainer ({n} stored)"),
                &a.get_container_at_list_page_stored,
            );
        }
        stat_row(
            md,
            "API RemoveContainer (never started)",
            &a.remove_no_start,
        );
    }
    if let Some(c) = &r.cluster {
        stat_row(
            md,
            &format!("cluster: CreateContainer ack through {}", c.nodes[0]),
            &c.create_ack,
        );
        stat_row(
            md,
            &format!(
                "cluster: GetContainer through {}",
                c.nodes.get(1).map_or("", String::as_str)
            ),
            &c.status_other_node,
        );
    }
    if let Some(p) = &r.pool {
        stat_row(md, "warm pool: time to running, adopted", &p.hit);
        stat_row(
            md,
            "warm pool: time to running, created then started (adopted)",
            &p.hit_create_then_start,
        );
        stat_row(md, "warm pool: time to running, cold (no pool)", &p.cold);
        stat_row(
            md,
            "warm pool: create -> pool full again",
            &p.wait_for_full_pool,
        );
    }
    if let Some(t) = &r.ttr {
        stat_row(
            md,
            "time to running (create -> RUNNING event)",
            &t.time_to_running,
        );
        if t.time_to_running_after_idle.stats.n > 0 {
            stat_row(
                md,
                &format!(
                    "time to running, each after {} ms idle",
                    crate::ttr::IDLE.as_millis()
                ),
                &t.time_to_running_after_idle,
            );
        }
        stat_row(md, "exit -> EXITED event received", &t.exit_to_event);
        let p = &t.phases;
        stat_row(md, "phase created -> starting", &p.queue);
        stat_row(md, "phase starting -> running", &p.launch);
        stat_row(md, "phase running event -> received", &p.notify);
        stat_row(md, "phase exited -> removed", &p.remove);
        stat_row(
            md,
            "attached run: create -> GetLogs exit item",
            &t.attached.create_to_exit_item,
        );
        stat_row(
            md,
            "attached run: EXITED event -> GetLogs exit item",
            &t.attached.exited_event_to_exit_item,
        );
    }
    if let Some(s) = &r.seqrate {
        stat_row(md, "sequential start (create -> RUNNING)", &s.per_start);
    }
    if let Some(p) = &r.peers {
        let labels = [
            "run /bin/true",
            "create+start / time to running",
            "state / status",
        ];
        for ((_, op), label) in p.ops.timed.iter().into_iter().zip(labels) {
            for e in ["quilt", "crun", "runc"] {
                if let Some(op) = op.engines.get(e) {
                    stat_row(md, &format!("peers {label}: {e}"), op);
                }
            }
        }
        for e in ["crun", "runc"] {
            if let Some(op) = p.ops.delete.get(e) {
                stat_row(md, &format!("peers delete -f: {e}"), op);
            }
        }
    }
    if let Some(p) = &r.pause {
        stat_row(md, "PauseContainer (running `sleep`)", &p.pause);
        stat_row(md, "UnpauseContainer", &p.unpause);
    }
    if let Some(f) = &r.fairness {
        stat_row(md, "fairness: interactive time to running, idle", &f.idle);
        stat_row(
            md,
            &format!(
                "fairness: the same under a batch burst ({} accepted, {} refused)",
                f.burst_accepted, f.burst_refused
            ),
            &f.under_burst,
        );
    }
    if let Some(n) = &r.network {
        stat_row(md, "time to running, --network none", &n.none);
        stat_row(md, "time to running, --network bridge", &n.bridge);
        stat_row(
            md,
            "quilt run --rm --network bridge default /bin/true",
            &n.run_bridge,
        );
        for (e, op) in &n.peer_run {
            stat_row(md, &format!("{e} run (a network namespace)"), op);
        }
    }
    if let Some(sc) = &r.scale {
        for d in &sc.levels {
            stat_row(
                md,
                &format!("scale, {} live: time to running of one more", d.running),
                &d.time_to_running_with_all_running,
            );
            stat_row(
                md,
                &format!("scale, {} live: GetContainer", d.running),
                &d.get_container_all_running,
            );
            stat_row(
                md,
                &format!(
                    "scale, {} live: ListContainers (quiltd RSS {:.1} MiB, {:.2} MiB/container)",
                    d.running, d.quiltd_rss_mib, d.per_container_mib_mem_available
                ),
                &d.list_containers_all_running,
            );
            for p in sc.peers.iter().filter(|p| p.requested == d.requested) {
                let at = |what: &str| format!("scale, {} live: {} {what}", p.running, p.runtime);
                stat_row(
                    md,
                    &at("create + start of one more"),
                    &p.create_start_one_more,
                );
                stat_row(md, &at("state"), &p.state);
                stat_row(
                    md,
                    &at(&format!(
                        "list ({:.2} MiB/container)",
                        p.per_container_mib_mem_available
                    )),
                    &p.list,
                );
            }
        }
    }
    if let Some(d) = &r.density {
        stat_row(
            md,
            &format!("density: GetContainer, {} running", d.running),
            &d.get_container_all_running,
        );
        stat_row(
            md,
            "density: time to running under load",
            &d.time_to_running_under_load,
        );
        if d.time_to_running_with_all_running.stats.n > 0 {
            stat_row(
                md,
                &format!(
                    "density: time to running of one more, {} running",
                    d.running
                ),
                &d.time_to_running_with_all_running,
            );
        }
    }
    for l in r.throughput.iter().flat_map(|t| &t.levels) {
        stat_row(
            md,
            &format!("throughput {} clients: create ack", l.clients),
            &l.create_ack,
        );
        stat_row(
            md,
            &format!(
                "throughput {} clients: GetContainer during burst",
                l.clients
            ),
            &l.status_during_burst,
        );
    }
    if let Some(g) = &r.reap_gate {
        stat_row(md, "reap gate: create -> removed", &g.create_to_removed);
    }
}

/// Quilt over each peer, p50 and p95.
fn peer_ratios(md: &mut String, r: &Report, skipped: &str) {
    let Some(p) = &r.peers else {
        return;
    };
    let _ = writeln!(md, "\n| Quilt / peer (p50, p95) | vs crun | vs runc |");
    let _ = writeln!(md, "|---|---:|---:|");
    let labels = [
        "`quilt run --rm` vs `run`",
        "time to running vs `create`+`start`",
        "`quilt status` vs `state`",
    ];
    for ((_, ratios), label) in p.ratios_quilt_over_peer.iter().into_iter().zip(labels) {
        let cell = |e: &str| match ratios.get(e) {
            Some(x) => format!("{} / {}", fixed(Some(x.p50), 2), fixed(Some(x.p95), 2)),
            None => "-".to_string(),
        };
        let _ = writeln!(md, "| {label} | {} | {} |", cell("crun"), cell("runc"));
    }
    if !skipped.is_empty() {
        let _ = writeln!(md, "\nSkipped peers: {skipped}");
    }
}

fn throughput_table(md: &mut String, r: &Report) {
    let Some(t) = &r.throughput else {
        return;
    };
    // The store writer's columns only where the run could read them.
    let writer = t.levels.iter().any(|l| l.db_writer_busy.is_some());
    let _ = writeln!(
        md,
        "\n| clients | creates acked/s | started/s (window) | started/s (until last) | RESOURCE_EXHAUSTED | errors | stalls | hung | GetContainer p99 | drain s |{}",
        if writer {
            " store writes per start | store writer busy |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        if writer { "---:|---:|" } else { "" }
    );
    for l in &t.levels {
        let extra = match writer {
            true => format!(
                " {} | {} |",
                fixed(
                    (l.started_in_window > 0)
                        .then(|| l.db_writes as f64 / l.started_in_window as f64),
                    1
                ),
                l.db_writer_busy
                    .map_or("-".to_string(), |b| format!("{:.0}%", b * 100.0))
            ),
            false => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |{extra}",
            l.clients,
            fixed(Some(l.creates_per_s), 1),
            fixed(Some(l.started_per_s), 1),
            fixed(l.started_per_s_until_last, 1),
            l.resource_exhausted,
            l.errors,
            l.stalls,
            l.hung,
            fixed(Some(l.status_during_burst.stats.p99_ms), 2),
            l.drain_s
        );
    }
}

/// Sequential start rates: Quilt's, then the peers'.
fn rates(md: &mut String, r: &Report) {
    let Some(s) = &r.seqrate else {
        return;
    };
    let _ = writeln!(
        md,
        "\nSequential start rate: {} containers/s ({} started in {:.2} s).",
        fixed(Some(s.starts_per_s), 1),
        s.started,
        s.total_s
    );
    for (e, rate) in r.peers.iter().flat_map(|p| &p.peer_sequential_rates) {
        let _ = writeln!(
            md,
            "{e}: {} create+start/s, {} create+start+delete/s.",
            fixed(rate.create_start_per_s, 1),
            fixed(rate.create_start_delete_per_s, 1)
        );
    }
}

fn density_line(md: &mut String, r: &Report) {
    let Some(d) = &r.density else {
        return;
    };
    let _ = writeln!(
        md,
        "\nDensity: {} of {} idle containers running; quiltd RSS {} MiB (before {} MiB, peak {} MiB); per container {} MiB (MemAvailable drop while starting; {} MiB returned after removal), {} MiB (RSS shim+workload), {} MiB (PSS shim+workload), {} MiB (memory cgroup of the containers); removal of all took {:.2} s; left behind: {} ({}).",
        d.running,
        d.requested,
        fixed(Some(d.quiltd_rss_mib), 1),
        fixed(Some(d.quiltd_rss_mib_before), 1),
        fixed(Some(d.quiltd_hwm_mib), 1),
        fixed(Some(d.per_container_mib_mem_available), 3),
        fixed(Some(d.per_container_mib_mem_available_released), 3),
        fixed(Some(d.per_container_mib_rss), 3),
        fixed(Some(d.per_container_mib_pss), 3),
        fixed(d.per_container_mib_cgroup, 3),
        d.remove_all_s,
        d.leftovers.total(),
        if d.clean { "clean" } else { "NOT clean" }
    );
}

/// Quilt over each peer at each scale level.
fn scale_peers_line(md: &mut String, r: &Report) {
    let Some(sc) = &r.scale else {
        return;
    };
    for p in &sc.peers {
        let quilt = sc.levels.iter().find(|d| d.requested == p.requested);
        let quilt_deleted_per_s = quilt
            .filter(|d| d.remove_all_s > 0.0)
            .map(|d| d.running as f64 / d.remove_all_s);
        let _ = writeln!(
            md,
            "\nScale, {n} live, against {rt}: Quilt's time to running of one more is {} x {rt}'s create + start (p50); its host memory per container {} x {rt}'s ({} MiB); Quilt removed {}/s, {rt} deleted {}/s; {rt} still listed {} containers.",
            fixed(p.ttr_quilt_over_peer_p50, 2),
            fixed(p.memory_quilt_over_peer, 2),
            p.per_container_mib_mem_available,
            fixed(quilt_deleted_per_s, 1),
            p.deleted_per_s,
            p.left.map_or_else(|| "-".to_string(), |l| l.to_string()),
            n = p.requested,
            rt = p.runtime,
        );
    }
}

fn reap_line(md: &mut String, r: &Report) {
    let Some(g) = &r.reap_gate else {
        return;
    };
    let _ = writeln!(
        md,
        "\nReap gate: {} requested, {} created, {} exited, {} removed, {} failed, {} hangs, {} zombies, {} leftovers, {} errors, {:.1} s: **{}**",
        g.requested,
        g.created,
        g.exited,
        g.removed,
        g.failed,
        g.hangs,
        g.zombies,
        g.leftovers.total(),
        g.errors.stats.errors,
        g.total_s,
        if g.pass { "PASS" } else { "FAIL" }
    );
    if let Some(k) = &g.kernel_memory {
        let _ = writeln!(md, "\nAfter the reap gate's removals: {}.", k.line());
    }
}

fn target_table(md: &mut String, r: &Report) {
    if r.targets.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n| target | goal | measured | verdict | margin | note |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|---|---|");
    for t in &r.targets {
        let cmp = if t.at_least { ">=" } else { "<=" };
        let decimals = match t.unit.as_str() {
            "ms" => 3,
            "/s" => 1,
            _ => 2,
        };
        let _ = writeln!(
            md,
            "| {} | {cmp} {} {} | {} | {} | {} | {} |",
            t.target,
            json_text(&t.goal),
            t.unit,
            fixed(t.value, decimals),
            t.verdict,
            t.margin,
            t.note
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Api;
    use crate::stats::Stats;

    /// A real final document (a quick run and a reap gate, merged by the
    /// summary before the report was typed) and the markdown it rendered.
    const DOCUMENT: &str = include_str!("../testdata/report.json");
    const MARKDOWN: &str = include_str!("../testdata/report.md");

    #[test]
    fn the_typed_report_reads_back_a_real_document_exactly() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let report: Report = serde_json::from_value(doc.clone()).expect("every section typed");
        assert!(
            report.meta.is_some()
                && report.classic.is_some()
                && report.api.is_some()
                && report.ttr.is_some()
                && report.seqrate.is_some()
                && report.peers.is_some()
                && report.throughput.is_some()
                && report.density.is_some()
                && report.reap_gate.is_some()
                && !report.targets.is_empty()
        );
        assert_eq!(serde_json::to_value(&report).unwrap(), doc);
        assert_eq!(Report::from_document(&doc), report);
    }

    #[test]
    fn the_summary_of_a_real_run_is_unchanged() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (stem, section) in doc.as_object().unwrap() {
            if stem != "targets" {
                let text = serde_json::to_string_pretty(section).unwrap() + "\n";
                std::fs::write(dir.path().join(format!("{stem}.json")), text).unwrap();
            }
        }
        let (merged, md) = summarize(dir.path()).unwrap();
        assert_eq!(merged, doc);
        assert_eq!(md, MARKDOWN);
    }

    #[test]
    fn an_unreadable_section_stays_in_the_document_and_out_of_the_markdown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meta.json"), r#"{"mode": "quick"}"#).unwrap();
        std::fs::write(dir.path().join("density.json"), "[1,").unwrap();
        let (merged, md) = summarize(dir.path()).unwrap();
        assert!(merged["density"]["error"].is_string(), "{merged}");
        assert!(!md.contains("Density:"), "{md}");
        // Measured nothing: every target is n/a.
        let targets = merged["targets"].as_array().unwrap();
        assert!(targets.iter().all(|t| t["verdict"] == "n/a"), "{merged}");
    }

    #[test]
    fn a_peer_at_the_scale_counts_has_its_rows_and_its_ratios() {
        let times = |p50_ms: f64| crate::stats::OpStats {
            stats: Stats {
                n: 10,
                p50_ms,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = Report {
            scale: Some(crate::report::Scale {
                levels: vec![crate::report::Density {
                    requested: 100,
                    running: 100,
                    remove_all_s: 2.0,
                    time_to_running_with_all_running: times(4.0),
                    ..Default::default()
                }],
                peers: vec![crate::report::PeerScaleLevel {
                    runtime: "crun".into(),
                    requested: 100,
                    running: 100,
                    per_container_mib_mem_available: 0.3,
                    create_start_one_more: times(10.0),
                    state: times(2.0),
                    list: times(3.0),
                    deleted_per_s: 80.0,
                    left: Some(0),
                    ttr_quilt_over_peer_p50: Some(0.4),
                    memory_quilt_over_peer: Some(1.5),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let md = markdown(&r);
        assert!(
            md.contains("| scale, 100 live: crun create + start of one more | 10 | 10.0"),
            "{md}"
        );
        assert!(
            md.contains("| scale, 100 live: crun list (0.30 MiB/container) |"),
            "{md}"
        );
        assert!(
            md.contains("Scale, 100 live, against crun: Quilt's time to running of one more is 0.40 x crun's create + start (p50); its host memory per container 1.50 x crun's (0.3 MiB); Quilt removed 50.0/s, crun deleted 80/s; crun still listed 0 containers."),
            "{md}"
        );
    }

    #[test]
    fn the_throughput_table_has_the_writer_only_where_measured() {
        let level = |busy: Option<f64>| crate::report::Level {
            clients: 8,
            started_in_window: 200,
            db_writes: if busy.is_some() { 1400 } else { 0 },
            db_writer_busy: busy,
            ..Default::default()
        };
        let table = |levels| {
            let r = Report {
                throughput: Some(crate::report::Throughput {
                    levels,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let mut md = String::new();
            throughput_table(&mut md, &r);
            md
        };
        let with = table(vec![level(Some(0.81))]);
        assert!(
            with.contains("| store writes per start | store writer busy |"),
            "{with}"
        );
        assert!(with.contains("| 7.0 | 81% |"), "{with}");
        let without = table(vec![level(None)]);
        assert!(!without.contains("writer"), "{without}");
        assert!(without.trim_end().ends_with('|'), "{without}");
    }

    #[test]
    fn markdown_renders_partial_documents() {
        let v = json!({
            "meta": {"mode": "quick"},
            "api": Api {
                create_no_start: OpStats {
                    stats: Stats {
                        n: 3,
                        errors: 0,
                        p50_ms: 0.3,
                        p95_ms: 0.4,
                        p99_ms: 0.5,
                        max_ms: 0.6,
                        min_ms: 0.1,
                        avg_ms: 0.3,
                    },
                    ..OpStats::default()
                },
                ..Api::default()
            },
        });
        let mut report = Report::from_document(&v);
        let ts = check_all(&report);
        assert_eq!(ts[0].value, Some(0.3));
        assert!(ts[2].value.is_none());
        report.targets = ts;
        let md = markdown(&report);
        assert!(md.contains("API CreateContainer ack (no_start) | 3 | 0.300"));
        assert!(md.contains("| CreateContainer ack p50 (no_start) | <= 0.5 ms | 0.300 | met |"));
    }
}
