//! docker's CLI habits through `quilt`: `-h` is the hostname, `-m 64m`,
//! `--pids-limit`, `--env-file`, `-e KEY` from the caller, `cp` with
//! docker's naming rules and `-` tar streams, `inspect` of several ids and
//! `--format` templates, `ps -n/-l/--format`, `logs -n/--until`.
use quilt_tests::api::ContainerState;
use quilt_tests::cli::run_program;
use quilt_tests::{Daemon, bin_dir};
use std::ffi::OsString;
use std::time::Duration;

fn sh(d: &Daemon, script: &str, env: &[(String, String)]) -> quilt_tests::CliOutput {
    let quilt = format!(
        "{} --socket {}",
        bin_dir().join("quilt").display(),
        d.socket.display()
    );
    let script = script.replace("QUILT", &quilt);
    let args: Vec<OsString> = vec!["-c".into(), script.into()];
    run_program(
        std::path::Path::new("/bin/sh"),
        &args,
        env,
        Duration::from_secs(60),
    )
}

#[test]
fn run_flags_as_docker_reads_them() {
    let d = Daemon::start();
    let envfile = d.root.join("env.list");
    std::fs::write(&envfile, "# a comment\n\nFROM_FILE=one two\nBOTH=file\n").unwrap();
    let out = sh(
        &d,
        &format!(
            "QUILT run --name flags -h myhost -m 64m --pids-limit 50 --env-file {} -e BOTH=flag \
             -e CALLER -e NOT_SET_ANYWHERE default sh -c \
             'hostname; echo \"$FROM_FILE|$BOTH|$CALLER|${{NOT_SET_ANYWHERE-unset}}\"'",
            envfile.display()
        ),
        &[("CALLER".into(), "from caller".into())],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "myhost", "{out:?}");
    assert_eq!(lines[1], "one two|flag|from caller|unset", "{out:?}");
    let limits = d
        .cli([
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            "flags",
        ])
        .ok();
    assert_eq!(limits, format!("{} 50", 64u64 << 20));
    d.cli(["rm", "flags"]).expect_code(0);
    // -it without a terminal on stdin: refused as docker does, nothing
    // created (tests/attach.rs runs it on a terminal).
    let out = d.cli(["run", "-it", "default", "sh"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("not a TTY"), "{out:?}");
    // Help only with --help.
    let out = d.cli(["run", "--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("--hostname"));
    assert_eq!(d.cli(["ps", "-aq"]).ok(), "");
    d.assert_no_leftovers();
}

#[test]
fn cp_follows_dockers_rules() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "box", "default", "sleep", "600"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let host = d.root.join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("a.txt"), "alpha\n").unwrap();
    std::fs::create_dir(host.join("tree")).unwrap();
    std::fs::write(host.join("tree/inner"), "inner\n").unwrap();
    let cat = |p: &str| d.cli(["exec", "box", "cat", p]).ok();

    // A file to a path that does not exist gets that name.
    let a = host.join("a.txt").display().to_string();
    d.cli(["cp", &a, "box:/tmp/renamed"]).expect_code(0);
    assert_eq!(cat("/tmp/renamed"), "alpha");
    // ... to an existing file replaces it; to a directory lands inside.
    std::fs::write(host.join("b.txt"), "beta\n").unwrap();
    d.cli([
        "cp",
        &host.join("b.txt").display().to_string(),
        "box:/tmp/renamed",
    ])
    .expect_code(0);
    assert_eq!(cat("/tmp/renamed"), "beta");
    d.cli(["cp", &a, "box:/tmp/"]).expect_code(0);
    assert_eq!(cat("/tmp/a.txt"), "alpha");
    // A directory to a new path becomes that directory.
    let tree = host.join("tree").display().to_string();
    d.cli(["cp", &tree, "box:/tmp/newtree"]).expect_code(0);
    assert_eq!(cat("/tmp/newtree/inner"), "inner");
    // A DEST ending in / must exist.
    d.cli(["cp", &a, "box:/tmp/missing/"]).expect_engine_error();

    // Out: the same rules on the host.
    let out = host.join("got");
    d.cli(["cp", "box:/tmp/a.txt", &out.display().to_string()])
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "alpha\n");
    d.cli(["cp", "box:/tmp/newtree", &host.display().to_string()])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(host.join("newtree/inner")).unwrap(),
        "inner\n"
    );
    d.cli([
        "cp",
        "box:/tmp/newtree",
        &host.join("copy").display().to_string(),
    ])
    .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(host.join("copy/inner")).unwrap(),
        "inner\n"
    );
    d.cli([
        "cp",
        "box:/tmp/a.txt",
        &host.join("nope/x").display().to_string(),
    ])
    .expect_engine_error();
    let leftovers: Vec<_> = std::fs::read_dir(&host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".quilt-cp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // `-`: tar streams on stdout and stdin; no file named "-" anywhere.
    let out = sh(
        &d,
        &format!(
            "cd {} && QUILT cp box:/tmp/a.txt - | tar -xOf - a.txt",
            host.display()
        ),
        &[],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "alpha\n"),
        "{out:?}"
    );
    assert!(!host.join("-").exists());
    let out = sh(
        &d,
        &format!("tar -C {} -cf - tree | QUILT cp - box:/tmp", host.display()),
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(cat("/tmp/tree/inner"), "inner");
    // -a is refused inward (it would be ignored).
    d.cli(["cp", "-a", &a, "box:/tmp/"]).expect_engine_error();

    d.cli(["rm", "-f", "box"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn inspect_ps_and_logs_speak_docker() {
    let d = Daemon::start();
    let one = d.run_detached(&[
        "--name",
        "one",
        "-l",
        "k=v",
        "default",
        "sh",
        "-c",
        "echo first; sleep 600",
    ]);
    let two = d.run_detached(&[
        "--name",
        "two",
        "default",
        "sh",
        "-c",
        "echo a; echo b; echo c",
    ]);
    d.wait_state(&one, &[ContainerState::Running], Duration::from_secs(30));
    d.wait_state(&two, &[ContainerState::Exited], Duration::from_secs(30));

    // Several ids: a JSON array; --format with docker's keys.
    let arr: serde_json::Value =
        serde_json::from_str(&d.cli(["inspect", "one", "two"]).ok()).unwrap();
    assert_eq!(arr.as_array().map(Vec::len), Some(2), "{arr}");
    let out = d
        .cli([
            "inspect",
            "--format",
            "{{.Name}} {{.State.Status}} {{.State.Running}}",
            "one",
            "two",
        ])
        .ok();
    assert_eq!(out, "/one running true\n/two exited false");
    let cfg = d
        .cli(["inspect", "-f", "{{json .Config.Labels}}", "one"])
        .ok();
    assert_eq!(cfg, r#"{"k":"v"}"#);
    d.cli(["inspect", "-f", "{{.State", "one"])
        .expect_engine_error();
    d.cli(["inspect", "one", "nosuch"]).expect_engine_error();

    // ps: templates, -n, -l, --no-trunc.
    let out = d
        .cli(["ps", "-a", "--format", "{{.Names}}:{{.State}}"])
        .ok();
    assert_eq!(out, "two:exited\none:running");
    let out = d.cli(["ps", "-l", "--format", "{{.Names}}"]).ok();
    assert_eq!(out, "two");
    let out = d.cli(["ps", "-n", "2", "-q", "--no-trunc"]).ok();
    assert_eq!(out, format!("{two}\n{one}"));
    let out = d.cli(["ps", "--format", "table {{.ID}}\\t{{.Names}}"]).ok();
    assert_eq!(out.lines().next(), Some("CONTAINER ID\tNAMES"));

    // logs -n and --until.
    assert_eq!(d.cli(["logs", "-n", "2", "two"]).ok(), "b\nc");
    assert_eq!(d.cli(["logs", "--tail", "all", "two"]).ok(), "a\nb\nc");
    assert_eq!(
        d.cli(["logs", "--until", "2000-01-01T00:00:00Z", "two"])
            .ok(),
        ""
    );
    let t0 = std::time::Instant::now();
    let out = d.cli(["logs", "-f", "--until", "2s", "one"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    // rename: the new name resolves, the old one does not, a taken one is refused.
    d.cli(["rename", "two", "three"]).expect_code(0);
    assert_eq!(d.cli(["inspect", "-f", "{{.Id}}", "three"]).ok(), two);
    d.cli(["inspect", "two"]).expect_engine_error();
    let out = d.cli(["rename", "three", "one"]);
    assert_eq!(out.code, Some(125));
    assert!(out.stderr.contains("already in use"), "{out:?}");
    d.cli(["rename", "three", "bad name"]).expect_engine_error();
    d.cli(["rm", "-f", "one", "three"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn version_info_and_image_aliases() {
    let d = Daemon::start();
    let id = d.run_detached(&["default", "sleep", "600"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let v = d.cli(["version"]).ok();
    assert!(v.contains("Client:") && v.contains("Server:"), "{v}");
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");
    let info = d.cli(["info"]).ok();
    for line in ["Containers: 1", " Running: 1", "Storage Driver: overlay"] {
        assert!(info.contains(line), "{line:?} missing: {info}");
    }
    let j = d.cli(["info", "--format", "json"]).json();
    assert_eq!(j["containers_running"], 1);
    assert_eq!(j["data_dir"], d.data_dir.display().to_string());
    // images / rmi are image ls / image rm.
    assert_eq!(d.cli(["images"]).ok(), d.cli(["image", "ls"]).ok());
    d.cli(["rmi", "no-such-image"]).expect_engine_error();
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}
