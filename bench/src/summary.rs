//! Merges the per-measurement JSON files into one document, checks the
//! targets and renders the markdown summary.

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// Reads DIR/*.json into one object keyed by file stem.
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

/// A target: `value <= goal` (or >= when `at_least`).
struct Target {
    name: &'static str,
    goal: f64,
    unit: &'static str,
    at_least: bool,
    value: Option<f64>,
    note: String,
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn targets(v: &Value) -> Vec<Target> {
    let stat = |sec: &str, path: &[&str], key: &str| -> Option<f64> {
        let mut x = &v[sec];
        for p in path {
            x = &x[*p];
        }
        if x["n"].as_u64().unwrap_or(0) == 0 {
            return None;
        }
        f(&x[key])
    };
    let mut t = Vec::new();
    let mut add = |name, goal, unit, at_least, value: Option<f64>, note: String| {
        t.push(Target {
            name,
            goal,
            unit,
            at_least,
            value,
            note,
        })
    };
    add(
        "CreateContainer ack p50 (no_start)",
        0.5,
        "ms",
        false,
        stat("api", &["create_no_start"], "p50_ms"),
        String::new(),
    );
    add(
        "CreateContainer ack p99 (no_start)",
        5.0,
        "ms",
        false,
        stat("api", &["create_no_start"], "p99_ms"),
        String::new(),
    );
    add(
        "GetContainer p50",
        0.2,
        "ms",
        false,
        stat("api", &["get_container"], "p50_ms"),
        String::new(),
    );
    add(
        "CLI `quilt create` wall p50",
        3.0,
        "ms",
        false,
        stat("classic", &["cli_create"], "p50_ms"),
        String::new(),
    );
    add(
        "CLI `quilt status` wall p50",
        3.0,
        "ms",
        false,
        stat("classic", &["cli_status"], "p50_ms"),
        String::new(),
    );
    add(
        "time to running p50",
        5.0,
        "ms",
        false,
        stat("ttr", &["time_to_running"], "p50_ms"),
        String::new(),
    );
    add(
        "time to running p95",
        15.0,
        "ms",
        false,
        stat("ttr", &["time_to_running"], "p95_ms"),
        String::new(),
    );
    let q = stat("peers", &["ops", "run_true", "quilt"], "p50_ms");
    let c = stat("peers", &["ops", "run_true", "crun"], "p50_ms");
    let ratio = match (q, c) {
        (Some(q), Some(c)) if c > 0.0 => Some((q / c * 100.0).round() / 100.0),
        _ => None,
    };
    add(
        "`quilt run --rm` / `crun run` p50 (no slower)",
        1.0,
        "x",
        false,
        ratio,
        match (q, c) {
            (Some(q), Some(c)) => format!("{q:.2} ms vs {c:.2} ms"),
            _ => "crun not measured".into(),
        },
    );
    add(
        "sequential starts",
        150.0,
        "/s",
        true,
        f(&v["seqrate"]["starts_per_s"]),
        String::new(),
    );
    let running = v["density"]["running"].as_u64().unwrap_or(0);
    add(
        "host memory per idle container (MemAvailable)",
        0.5,
        "MiB",
        false,
        f(&v["density"]["per_container_mib_mem_available"]),
        format!(
            "RSS shim+workload {} MiB, PSS {} MiB",
            v["density"]["per_container_mib_rss"], v["density"]["per_container_mib_pss"]
        ),
    );
    add(
        "quiltd RSS with 500 running",
        40.0,
        "MiB",
        false,
        f(&v["density"]["quiltd_rss_mib"]),
        if running == 500 {
            String::new()
        } else {
            format!("measured with {running} running")
        },
    );
    t
}

fn verdict(t: &Target) -> (String, String) {
    let Some(v) = t.value else {
        return ("n/a".into(), "not measured".into());
    };
    let met = if t.at_least { v >= t.goal } else { v <= t.goal };
    let diff = (v - t.goal).abs();
    let pct = if t.goal != 0.0 {
        diff / t.goal * 100.0
    } else {
        0.0
    };
    let how = if met {
        format!("{diff:.2} {} to spare ({pct:.0}%)", t.unit)
    } else {
        format!("by {diff:.2} {} ({pct:.0}%)", t.unit)
    };
    (if met { "met".into() } else { "missed".into() }, how)
}

fn target_json(ts: &[Target]) -> Value {
    Value::Array(
        ts.iter()
            .map(|t| {
                let (verdict, how) = verdict(t);
                json!({
                    "target": t.name,
                    "goal": t.goal,
                    "unit": t.unit,
                    "at_least": t.at_least,
                    "value": t.value,
                    "verdict": verdict,
                    "margin": how,
                    "note": t.note,
                })
            })
            .collect(),
    )
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.3}"),
        None => "-".into(),
    }
}

/// A number with a fixed count of decimals, or "-".
fn fixed(v: &Value, decimals: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.decimals$}"),
        None => "-".into(),
    }
}

fn stat_row(md: &mut String, label: &str, s: &Value) {
    if s.is_null() {
        return;
    }
    let _ = writeln!(
        md,
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s["n"].as_u64().unwrap_or(0),
        num(&s["p50_ms"]),
        num(&s["p95_ms"]),
        num(&s["p99_ms"]),
        num(&s["max_ms"]),
        num(&s["avg_ms"]),
        num(&s["min_ms"]),
        s["errors"].as_u64().unwrap_or(0)
    );
}

pub fn markdown(v: &Value) -> String {
    let mut md = String::new();
    let meta = &v["meta"];
    let _ = writeln!(
        md,
        "## Quilt benchmark ({} mode)\n",
        meta["mode"].as_str().unwrap_or("?")
    );
    if let Some(h) = meta["host"].as_str() {
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
    let c = &v["classic"];
    stat_row(&mut md, "classic: `quilt create` process", &c["cli_create"]);
    stat_row(&mut md, "classic: `quilt status` process", &c["cli_status"]);
    let a = &v["api"];
    stat_row(
        &mut md,
        "API CreateContainer ack (no_start)",
        &a["create_no_start"],
    );
    stat_row(
        &mut md,
        "API CreateContainer ack (starting)",
        &a["create_start"],
    );
    let stored = a["stored_containers"].as_u64().unwrap_or(0);
    stat_row(
        &mut md,
        &format!("API GetContainer ({stored} stored)"),
        &a["get_container"],
    );
    stat_row(
        &mut md,
        &format!("API ListContainers ({stored} stored)"),
        &a["list_containers"],
    );
    stat_row(
        &mut md,
        "API RemoveContainer (never started)",
        &a["remove_no_start"],
    );
    let t = &v["ttr"];
    stat_row(
        &mut md,
        "time to running (create -> RUNNING event)",
        &t["time_to_running"],
    );
    stat_row(
        &mut md,
        "exit -> EXITED event received",
        &t["exit_to_event"],
    );
    for (k, label) in [
        ("queue", "phase created -> starting"),
        ("launch", "phase starting -> running"),
        ("notify", "phase running event -> received"),
        ("remove", "phase exited -> removed"),
    ] {
        stat_row(&mut md, label, &t["phases"][k]);
    }
    stat_row(
        &mut md,
        "attached run: create -> GetLogs exit item",
        &t["attached"]["create_to_exit_item"],
    );
    stat_row(
        &mut md,
        "attached run: EXITED event -> GetLogs exit item",
        &t["attached"]["exited_event_to_exit_item"],
    );
    stat_row(
        &mut md,
        "sequential start (create -> RUNNING)",
        &v["seqrate"]["per_start"],
    );
    let ops = &v["peers"]["ops"];
    for (op, label) in [
        ("run_true", "run /bin/true"),
        ("create_start", "create+start / time to running"),
        ("state", "state / status"),
    ] {
        for e in ["quilt", "crun", "runc"] {
            stat_row(&mut md, &format!("peers {label}: {e}"), &ops[op][e]);
        }
    }
    for e in ["crun", "runc"] {
        stat_row(&mut md, &format!("peers delete -f: {e}"), &ops["delete"][e]);
    }
    let d = &v["density"];
    if !d.is_null() {
        let running = d["running"].as_u64().unwrap_or(0);
        stat_row(
            &mut md,
            &format!("density: GetContainer, {running} running"),
            &d["get_container_all_running"],
        );
        stat_row(
            &mut md,
            "density: time to running under load",
            &d["time_to_running_under_load"],
        );
    }
    if let Some(levels) = v["throughput"]["levels"].as_array() {
        for l in levels {
            stat_row(
                &mut md,
                &format!("throughput {} clients: create ack", l["clients"]),
                &l["create_ack"],
            );
            stat_row(
                &mut md,
                &format!(
                    "throughput {} clients: GetContainer during burst",
                    l["clients"]
                ),
                &l["status_during_burst"],
            );
        }
    }
    stat_row(
        &mut md,
        "reap gate: create -> removed",
        &v["reap_gate"]["create_to_removed"],
    );

    // Classic avg/min/max, for comparison with the historical figures.
    if !c.is_null() {
        let _ = writeln!(
            md,
            "\nClassic ({} runs): `quilt create` avg {} / min {} / max {} ms (historical 8 ms); `quilt status` avg {} / min {} / max {} ms (historical 5 ms).",
            c["runs"],
            fixed(&c["cli_create"]["avg_ms"], 2),
            fixed(&c["cli_create"]["min_ms"], 2),
            fixed(&c["cli_create"]["max_ms"], 2),
            fixed(&c["cli_status"]["avg_ms"], 2),
            fixed(&c["cli_status"]["min_ms"], 2),
            fixed(&c["cli_status"]["max_ms"], 2),
        );
    }

    // Peers ratios.
    let ratios = &v["peers"]["ratios_quilt_over_peer"];
    if ratios.is_object() {
        let _ = writeln!(md, "\n| Quilt / peer (p50, p95) | vs crun | vs runc |");
        let _ = writeln!(md, "|---|---:|---:|");
        for (op, label) in [
            ("run_true", "`quilt run --rm` vs `run`"),
            ("create_start", "time to running vs `create`+`start`"),
            ("state", "`quilt status` vs `state`"),
        ] {
            let cell = |e: &str| {
                let r = &ratios[op][e];
                if r.is_null() {
                    "-".to_string()
                } else {
                    format!("{} / {}", fixed(&r["p50"], 2), fixed(&r["p95"], 2))
                }
            };
            let _ = writeln!(md, "| {label} | {} | {} |", cell("crun"), cell("runc"));
        }
        if let Some(skipped) = v["meta"]["peers_skipped"].as_str()
            && !skipped.is_empty()
        {
            let _ = writeln!(md, "\nSkipped peers: {skipped}");
        }
    }

    if let Some(levels) = v["throughput"]["levels"].as_array() {
        let _ = writeln!(
            md,
            "\n| clients | creates acked/s | started/s (window) | started/s (until last) | RESOURCE_EXHAUSTED | errors | stalls | hung | GetContainer p99 | drain s |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for l in levels {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
                l["clients"],
                fixed(&l["creates_per_s"], 1),
                fixed(&l["started_per_s"], 1),
                fixed(&l["started_per_s_until_last"], 1),
                l["resource_exhausted"],
                l["errors"],
                l["stalls"],
                l["hung"],
                fixed(&l["status_during_burst"]["p99_ms"], 2),
                l["drain_s"].as_f64().unwrap_or(0.0)
            );
        }
    }

    if !v["seqrate"].is_null() {
        let _ = writeln!(
            md,
            "\nSequential start rate: {} containers/s ({} started in {:.2} s).",
            fixed(&v["seqrate"]["starts_per_s"], 1),
            v["seqrate"]["started"],
            v["seqrate"]["total_s"].as_f64().unwrap_or(0.0)
        );
        if let Some(rates) = v["peers"]["peer_sequential_rates"].as_object() {
            for (e, r) in rates {
                let _ = writeln!(
                    md,
                    "{e}: {} create+start/s, {} create+start+delete/s.",
                    fixed(&r["create_start_per_s"], 1),
                    fixed(&r["create_start_delete_per_s"], 1)
                );
            }
        }
    }

    if !d.is_null() {
        let _ = writeln!(
            md,
            "\nDensity: {} of {} idle containers running; quiltd RSS {} MiB (before {} MiB, peak {} MiB); per container {} MiB (MemAvailable drop while starting; {} MiB returned after removal), {} MiB (RSS shim+workload), {} MiB (PSS shim+workload), {} MiB (memory cgroup of the containers); removal of all took {:.2} s; left behind: {} ({}).",
            d["running"],
            d["requested"],
            fixed(&d["quiltd_rss_mib"], 1),
            fixed(&d["quiltd_rss_mib_before"], 1),
            fixed(&d["quiltd_hwm_mib"], 1),
            fixed(&d["per_container_mib_mem_available"], 3),
            fixed(&d["per_container_mib_mem_available_released"], 3),
            fixed(&d["per_container_mib_rss"], 3),
            fixed(&d["per_container_mib_pss"], 3),
            fixed(&d["per_container_mib_cgroup"], 3),
            d["remove_all_s"].as_f64().unwrap_or(0.0),
            leftover_count(&d["leftovers"]),
            if d["clean"].as_bool() == Some(true) {
                "clean"
            } else {
                "NOT clean"
            }
        );
    }

    let r = &v["reap_gate"];
    if !r.is_null() {
        let _ = writeln!(
            md,
            "\nReap gate: {} requested, {} created, {} exited, {} removed, {} failed, {} hangs, {} zombies, {} leftovers, {} errors, {:.1} s: **{}**",
            r["requested"],
            r["created"],
            r["exited"],
            r["removed"],
            r["failed"],
            r["hangs"],
            r["zombies"],
            leftover_count(&r["leftovers"]),
            r["errors"]["errors"],
            r["total_s"].as_f64().unwrap_or(0.0),
            if r["pass"].as_bool() == Some(true) {
                "PASS"
            } else {
                "FAIL"
            }
        );
    }

    if let Some(ts) = v["targets"].as_array()
        && !ts.is_empty()
    {
        let _ = writeln!(
            md,
            "\n| target | goal | measured | verdict | margin | note |"
        );
        let _ = writeln!(md, "|---|---:|---:|---|---|---|");
        for t in ts {
            let cmp = if t["at_least"].as_bool() == Some(true) {
                ">="
            } else {
                "<="
            };
            let _ = writeln!(
                md,
                "| {} | {cmp} {} {} | {} | {} | {} | {} |",
                t["target"].as_str().unwrap_or(""),
                t["goal"],
                t["unit"].as_str().unwrap_or(""),
                fixed(
                    &t["value"],
                    match t["unit"].as_str() {
                        Some("ms") => 3,
                        Some("/s") => 1,
                        _ => 2,
                    }
                ),
                t["verdict"].as_str().unwrap_or(""),
                t["margin"].as_str().unwrap_or(""),
                t["note"].as_str().unwrap_or("")
            );
        }
    }
    md
}

fn leftover_count(l: &Value) -> u64 {
    let arr = |k: &str| l[k].as_array().map(|a| a.len() as u64).unwrap_or(0);
    l["rows"].as_u64().unwrap_or(0)
        + arr("container_dirs")
        + arr("cgroup_dirs")
        + arr("cgroup_pids")
        + arr("shim_pids")
        + arr("zombies")
        + arr("mounts")
}

/// Builds the final document (with targets) and its markdown.
pub fn summarize(dir: &Path) -> Result<(Value, String)> {
    let mut v = merge(dir)?;
    let has_measurements = ["api", "classic", "ttr", "peers", "seqrate", "density"]
        .iter()
        .any(|k| !v[*k].is_null());
    let ts = if has_measurements {
        target_json(&targets(&v))
    } else {
        json!([])
    };
    v["targets"] = ts;
    let md = markdown(&v);
    Ok((v, md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let t = Target {
            name: "x",
            goal: 5.0,
            unit: "ms",
            at_least: false,
            value: Some(7.5),
            note: String::new(),
        };
        assert_eq!(verdict(&t).0, "missed");
        assert_eq!(verdict(&t).1, "by 2.50 ms (50%)");
        let t = Target {
            name: "y",
            goal: 150.0,
            unit: "/s",
            at_least: true,
            value: Some(200.0),
            note: String::new(),
        };
        assert_eq!(verdict(&t).0, "met");
        let t = Target {
            name: "z",
            goal: 1.0,
            unit: "x",
            at_least: false,
            value: None,
            note: String::new(),
        };
        assert_eq!(verdict(&t).0, "n/a");
    }

    #[test]
    fn markdown_renders_partial_documents() {
        let v = json!({
            "meta": {"mode": "quick"},
            "api": {"create_no_start": {"n": 3, "errors": 0, "p50_ms": 0.3, "p95_ms": 0.4, "p99_ms": 0.5, "max_ms": 0.6, "min_ms": 0.1, "avg_ms": 0.3}},
        });
        let ts = targets(&v);
        assert_eq!(ts[0].value, Some(0.3));
        assert!(ts[2].value.is_none());
        let mut v = v;
        v["targets"] = target_json(&ts);
        let md = markdown(&v);
        assert!(md.contains("API CreateContainer ack (no_start) | 3 | 0.300"));
        assert!(md.contains("| CreateContainer ack p50 (no_start) | <= 0.5 ms | 0.300 | met |"));
    }
}
