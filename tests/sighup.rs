//! The real binary under `kill -HUP`: each reload is logged with what changed, a
//! setting that needs a restart says so, an invalid config is refused with every
//! problem logged, and neither the master key nor an API key ever reaches the log
//! (checked with one line per request at debug level).

mod common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MASTER: &str = "sk-master-never-logged";
const KEY: &str = "sk-upstream-never-logged";

fn config(extra_deployment: bool, json_logs: bool) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/a, api_key: {KEY}, mock_response: hi}}\n    model_info: {{id: a}}\n"
    );
    if extra_deployment {
        s.push_str(&format!("  - model_name: g\n    litellm_params: {{model: openai/b, api_key: {KEY}-b, mock_response: hi}}\n    model_info: {{id: b}}\n"));
    }
    s.push_str(&format!(
        "general_settings: {{master_key: {MASTER}}}\nlitellm_settings: {{json_logs: {json_logs}}}\n"
    ));
    s
}

/// One request on its own connection; returns the status line.
fn request(port: u16, path: &str, body: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

fn hup(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits until the log has a line containing `needle`.
fn wait_for(log: &Mutex<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if log.lock().unwrap().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no {needle:?} in the log:\n{}", log.lock().unwrap());
}

#[test]
fn sighup_reloads_logs_changes_and_never_logs_keys() {
    let dir = std::env::temp_dir().join(format!("sluice-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.yaml");
    std::fs::write(&cfg, config(false, false)).unwrap();
    let mut child = common::sluice_command(&cfg)
        .env("RUST_LOG", "debug")
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    wait_for(&log, "listening on http://127.0.0.1:");
    let port: u16 = {
        let l = log.lock().unwrap();
        let rest = l.split("listening on http://127.0.0.1:").nth(1).unwrap();
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let chat = r#"{"model":"g","messages":[]}"#;
    assert!(request(port, "/chat/completions", chat).contains("200"));
    wait_for(&log, "request");

    // Add a deployment and flip a setting that only applies at start.
    std::fs::write(&cfg, config(true, true)).unwrap();
    hup(child.id(), "-HUP");
    wait_for(&log, "config reloaded");
    wait_for(&log, "litellm_settings.json_logs");
    assert!(request(port, "/chat/completions", chat).contains("200"));

    // An invalid config: refused, every problem logged, the old one still serves.
    std::fs::write(&cfg, "model_list:\n  - model_name: g\n    litellm_params: {model: openai/a, rpm: lots, tpm: many}\n").unwrap();
    hup(child.id(), "-HUP");
    wait_for(&log, "config reload rejected");
    wait_for(&log, "tpm");
    assert!(request(port, "/chat/completions", chat).contains("200"));

    hup(child.id(), "-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sluice did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let log = log.lock().unwrap();
    let reloaded = log.lines().find(|l| l.contains("config reloaded")).unwrap();
    assert!(reloaded.contains("added=[\"b\"]"), "{reloaded}");
    assert!(reloaded.contains("removed=[]"), "{reloaded}");
    assert!(log.contains("only takes effect after a restart"), "{log}");
    assert!(log.contains("rpm") && log.contains("problems=2"), "{log}");
    let requests = log
        .lines()
        .filter(|l| l.contains("DEBUG") && l.contains(" request"))
        .count();
    assert!(requests >= 3, "one debug line per request:\n{log}");
    assert!(
        !log.contains(MASTER) && !log.contains(KEY),
        "a key was logged:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
