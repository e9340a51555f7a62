//! SVG chart of the latency distributions of Quilt against crun and runc for
//! the main operations (p50/p95/p99 bars per engine), from the final JSON.

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use serde_json::Value;

use crate::report::Report;
use std::path::Path;

/// Panel titles, in the order of `PerOp::iter`.
const TITLES: [&str; 3] = [
    "run /bin/true (process wall time)",
    "create+start vs time to running",
    "state vs status (process wall time)",
];
const ENGINES: [&str; 3] = ["quilt", "crun", "runc"];
const PCTS: [(&str, RGBColor); 3] = [
    ("p50", RGBColor(66, 133, 244)),
    ("p95", RGBColor(251, 140, 0)),
    ("p99", RGBColor(211, 47, 47)),
];

/// One panel: the engines measured for an operation and their percentiles.
struct Panel {
    title: &'static str,
    engines: Vec<(String, [f64; 3])>,
}

fn panels(r: &Report) -> Vec<Panel> {
    let ops = r.peers.as_ref().map(|p| p.ops.timed.iter());
    TITLES
        .iter()
        .enumerate()
        .map(|(i, title)| {
            let op = ops.as_ref().map(|ops| ops[i].1);
            let engines = ENGINES
                .iter()
                .filter_map(|e| {
                    let s = &op?.engines.get(*e)?.stats;
                    (s.n > 0).then(|| (e.to_string(), [s.p50_ms, s.p95_ms, s.p99_ms]))
                })
                .collect();
            Panel { title, engines }
        })
        .collect()
}

pub fn chart(json: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(json).with_context(|| format!("read {}", json.display()))?;
    let v: Value = serde_json::from_str(&text).context("parse the JSON")?;
    let report = Report::from_document(&v);
    let panels = panels(&report);
    let mode = report
        .meta
        .as_ref()
        .and_then(|m| m.mode.as_deref())
        .unwrap_or("");
    draw(&panels, mode, out).map_err(|e| anyhow!("draw {}: {e}", out.display()))
}

fn draw(panels: &[Panel], mode: &str, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(out, (1260, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Quilt vs crun / runc latency, ms (p50 / p95 / p99){}",
        if mode.is_empty() {
            String::new()
        } else {
            format!(", {mode} run")
        }
    );
    let root = root.titled(&title, ("sans-serif", 22))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (i, (area, p)) in areas.iter().zip(panels).enumerate() {
        let n = p.engines.len().max(1);
        let ymax = p
            .engines
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0f64, f64::max)
            .max(0.1)
            * 1.2;
        let mut ch = ChartBuilder::on(area)
            .caption(p.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)?;
        let names: Vec<String> = p.engines.iter().map(|(e, _)| e.clone()).collect();
        let fmt = move |x: &f64| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 {
                names.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        ch.configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&fmt)
            .y_desc("ms")
            .label_style(("sans-serif", 13))
            .draw()?;
        for (k, (label, color)) in PCTS.iter().enumerate() {
            let bars = p.engines.iter().enumerate().map(move |(ei, (_, v))| {
                let x0 = ei as f64 - 0.36 + k as f64 * 0.24;
                Rectangle::new([(x0, 0.0), (x0 + 0.22, v[k])], color.filled())
            });
            let s = ch.draw_series(bars)?;
            if i == 0 {
                let c = *color;
                s.label(*label).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled())
                });
            }
        }
        // The p50 value over each group.
        ch.draw_series(p.engines.iter().enumerate().map(|(ei, (_, v))| {
            let top = v.iter().copied().fold(0.0f64, f64::max);
            Text::new(
                format!("{:.2}", v[0]),
                (ei as f64 - 0.36, top + ymax * 0.03),
                ("sans-serif", 12),
            )
        }))?;
        if p.engines.is_empty() {
            ch.draw_series(std::iter::once(Text::new(
                "no data",
                (0.0, ymax / 2.0),
                ("sans-serif", 14),
            )))?;
        }
        if i == 0 {
            ch.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
