//! The command line: --version, --help, `sluice check` on every shipped config and
//! on a bad one (every problem listed with its place, exit 2), a graceful stop
//! that lets an in-flight stream finish, and workers pinned to CPUs.

mod common;
use common::{port_from, sluice_command, tempdir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const FAKE: &str = env!("CARGO_BIN_EXE_fake-llm");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(SLUICE).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn version_and_help() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--host",
        "--port",
        "--num_workers",
        "--pin_workers",
        "--grace-period",
        "--idle-timeout",
        "check",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn check_accepts_every_shipped_config() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let (code, out, err) = run(&["check", "--config", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {err}", path.display());
            assert!(out.contains("OK"), "{out}");
            assert!(out.contains("group "), "{out}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} configs found in {dir}");
}

#[test]
fn check_prints_groups_without_secrets() {
    let dir = tempdir();
    let path = dir.join("c.yaml");
    std::fs::write(
        &path,
        "model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, api_key: sk-very-secret, rpm: 10}\nrouter_settings: {routing_strategy: simple-shuffle}\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("group \"g\": 1 deployment(s)"), "{out}");
    assert!(out.contains("rpm=10"), "{out}");
    assert!(out.contains("simple-shuffle"), "{out}");
    assert!(!out.contains("sk-very-secret") && !err.contains("sk-very-secret"));
}

#[test]
fn bad_config_lists_every_problem_and_exits_2() {
    let dir = tempdir();
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        r#"
model_list:
  - model_name: ok
    litellm_params: {model: openai/a}
  - model_name: bad
    litellm_params: {model: openai/b, rpm: lots}
  - model_name: worse
    litellm_params: {api_base: "http://127.0.0.1:1"}
router_settings:
  routing_strategy: fastest
"#,
    )
    .unwrap();
    for args in [
        vec!["check", "--config", path.to_str().unwrap()],
        vec!["--config", path.to_str().unwrap(), "--port", "0"],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("model_list[1].litellm_params.rpm"), "{err}");
        assert!(err.contains("model_list[2].litellm_params.model"), "{err}");
        assert!(err.contains("router_settings.routing_strategy"), "{err}");
        assert!(!out.contains("listening") && !err.contains("listening"));
    }
    let (code, _, err) = run(&["check", "--config", "/nonexistent/c.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/c.yaml"), "{err}");
    let (code, _, err) = run(&["--port", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--config"), "{err}");
}

#[test]
fn bad_durations_are_refused_with_exit_2() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/quickstart.yaml");
    for (flag, value, says) in [
        ("--grace-period", "soon", "expected a number of seconds"),
        ("--grace-period", "-1", "non-negative"),
        ("--grace-period", "inf", "finite"),
        ("--idle-timeout", "NaN", "finite"),
        ("--idle-timeout", "0", "more than 0 seconds"),
    ] {
        let arg = format!("{flag}={value}");
        let (code, _, err) = run(&["--config", config, &arg]);
        assert_eq!(code, 2, "{arg}: {err}");
        assert!(err.contains(says), "{arg}: {err}");
    }
}

#[test]
fn sigterm_lets_an_in_flight_stream_finish_then_exits_0() {
    let mut fake = Command::new(FAKE)
        .args([
            "--port",
            "0",
            "--stream-chunks",
            "40",
            "--chunk-delay-ms",
            "150",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fake_port = port_from(&mut fake, false);
    let dir = tempdir();
    let cfg = dir.join("c.yaml");
    std::fs::write(
        &cfg,
        format!("model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: \"http://127.0.0.1:{fake_port}\"}}\n"),
    )
    .unwrap();
    let mut sluice = sluice_command(&cfg)
        .args(["--grace-period", "10"])
        .spawn()
        .unwrap();
    let port = port_from(&mut sluice, true);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    write!(
        conn,
        "POST /chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Wait for the first bytes of the stream, then ask sluice to stop.
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let n = conn.read(&mut buf).unwrap();
    got.extend_from_slice(&buf[..n]);
    let stopped_at = Instant::now();
    Command::new("kill")
        .args(["-TERM", &sluice.id().to_string()])
        .status()
        .unwrap();
    // New connections are refused soon after the signal, while the stream (40
    // events 150 ms apart: 6 s) still runs.
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            stopped_at.elapsed() < Duration::from_secs(5),
            "still accepting 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.ends_with(b"0\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("data: [DONE]"), "stream cut short: {text}");
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(5),
        "the stream could not have finished so soon"
    );
    drop(conn);
    let status =
        wait_timeout(&mut sluice, Duration::from_secs(10)).expect("sluice exits after the drain");
    assert_eq!(status.code(), Some(0));
    let _ = fake.kill();
    let _ = fake.wait();
}

fn wait_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
#[cfg(target_os = "linux")]
fn serving_process_opts_out_of_transparent_huge_pages() {
    let mut sluice = Command::new(SLUICE)
        .args([
            "--config",
            "configs/quickstart.yaml",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    port_from(&mut sluice, true);
    let status = std::fs::read_to_string(format!("/proc/{}/status", sluice.id())).unwrap();
    let _ = sluice.kill();
    let _ = sluice.wait();
    // Kernels since 6.x print the per-process flag; 0 means huge pages are off for it.
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    } else {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
    }
}

/// The CPUs a thread's status file says it may run on ("0-1", "3", "0,2-3"),
/// one by one.
#[cfg(target_os = "linux")]
fn cpu_list(status: &str) -> Vec<usize> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    let mut cpus = Vec::new();
    for part in line.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
    }
    cpus
}

/// `--pin_workers` with three workers: worker i (the main thread is worker 0)
/// runs on the i-th CPU the process may use, in turn, and sluice serves.
#[test]
#[cfg(target_os = "linux")]
fn pin_workers_puts_each_worker_on_a_cpu_in_turn() {
    let allowed = cpu_list(&std::fs::read_to_string("/proc/self/status").unwrap());
    let mut sluice = Command::new(SLUICE)
        .args(["--config", "configs/quickstart.yaml", "--host", "127.0.0.1"])
        .args(["--port", "0", "--num_workers", "3", "--pin_workers"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = port_from(&mut sluice, true);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"GET /health/liveliness HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let mut seen = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", sluice.id())).unwrap() {
        let dir = task.unwrap().path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap();
        let worker = match name.trim() {
            "sluice" => 0,
            other => match other.strip_prefix("sluice-worker-") {
                Some(i) => i.parse().unwrap(),
                None => continue,
            },
        };
        let cpus = cpu_list(&std::fs::read_to_string(dir.join("status")).unwrap());
        seen.push((worker, cpus));
    }
    let _ = sluice.kill();
    let _ = sluice.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    seen.sort();
    let expected: Vec<(usize, Vec<usize>)> = (0..3)
        .map(|i| (i, vec![allowed[i % allowed.len()]]))
        .collect();
    assert_eq!(seen, expected);
}
