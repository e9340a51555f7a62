//! The classic Quilt benchmark: per run, the wall time of one `quilt create`
//! process (`sleep 30` in the default image) and of sequential `quilt status`
//! processes, each timed spawn to exit.

use crate::client;
use crate::proc_timer::{argv, first_line, record, run};
use crate::report::{Classic, ClassicRun, Historical};
use crate::stats::Samples;
use anyhow::Result;
use std::path::Path;

pub async fn classic(socket: &Path, quilt: &Path, runs: usize, statuses: usize) -> Result<Classic> {
    let sock = socket.display().to_string();
    let bin = quilt.display().to_string();
    let mut create = Samples::default();
    let mut status = Samples::default();
    let mut per_run = Vec::new();
    let mut ids = Vec::new();
    for r in 0..runs {
        let t = tokio::task::spawn_blocking({
            let a = argv([
                bin.as_str(),
                "--socket",
                &sock,
                "create",
                "default",
                "sleep",
                "30",
            ]);
            move || run(&a)
        })
        .await?;
        record(&mut create, &t, "quilt create");
        let id = t.stdout.trim().to_string();
        let mut run_status = Samples::default();
        if t.ok && !id.is_empty() {
            ids.push(id.clone());
            let a = argv([bin.as_str(), "--socket", &sock, "status", &id]);
            run_status = tokio::task::spawn_blocking(move || {
                let mut s = Samples::default();
                for _ in 0..statuses {
                    let t = run(&a);
                    record(&mut s, &t, "quilt status");
                }
                s
            })
            .await?;
        } else {
            eprintln!(
                "quilt-bench classic: run {r}: create failed: {}",
                first_line(&t.stderr)
            );
        }
        let rs = run_status.stats();
        per_run.push(ClassicRun {
            run: r + 1,
            create_ms: (t.elapsed.as_secs_f64() * 1e6).round() / 1e3,
            create_ok: t.ok,
            status_avg_ms: rs.avg_ms,
            status_p50_ms: rs.p50_ms,
            status_errors: rs.errors,
        });
        status.merge(run_status);
    }
    let removed = client::remove_all(socket, ids, 4).await?;
    let v = Classic {
        description: "wall time of one `quilt create default sleep 30` process and of sequential `quilt status ID` processes, per run".into(),
        runs,
        statuses_per_run: statuses,
        cli_create: create.report(),
        cli_status: status.report(),
        per_run,
        historical: Historical {
            create_ms: 8.0,
            status_ms: 5.0,
        },
        cleanup_errors: removed.errors,
    };
    let (c, s) = (create.stats(), status.stats());
    eprintln!(
        "classic: create avg {:.2} ms (min {:.2}, max {:.2}); status avg {:.2} ms (min {:.2}, max {:.2}, p99 {:.2})",
        c.avg_ms, c.min_ms, c.max_ms, s.avg_ms, s.min_ms, s.max_ms, s.p99_ms
    );
    Ok(v)
}
