//! The sluice binary is linked with `hot-text.ld` (see `build.rs`): the functions
//! a proxied request runs sit together in its `.text.hot` section. These tests
//! read the built binary with binutils' `readelf` and `nm`, which come with the C
//! toolchain the build already needs.

#![cfg(target_os = "linux")]

use std::process::Command;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (binutils) could not run: {e}"));
    assert!(out.status.success(), "{tool} {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The address range of the binary's `.text.hot` section, if it has one.
fn hot_section() -> Option<(u64, u64)> {
    run("readelf", &["-SW", SLUICE]).lines().find_map(|line| {
        // "  [15] .text.hot  PROGBITS  <address> <offset> <size> ..."
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == ".text.hot")?;
        let start = u64::from_str_radix(fields.get(at + 2)?, 16).ok()?;
        let size = u64::from_str_radix(fields.get(at + 4)?, 16).ok()?;
        Some((start, start + size))
    })
}

/// Addresses of the binary's code symbols whose names contain `part`.
fn symbols(part: &str) -> Vec<u64> {
    run("nm", &[SLUICE])
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (addr, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            let code = kind.eq_ignore_ascii_case("t");
            (code && name.contains(part)).then(|| u64::from_str_radix(addr, 16).ok())?
        })
        .collect()
}

#[test]
fn the_request_path_is_linked_into_the_hot_section() {
    let Some((start, end)) = hot_section() else {
        // Built without it on purpose: nothing to check.
        if std::env::var("SLUICE_HOT_TEXT").is_ok_and(|v| v == "0") {
            return;
        }
        panic!("{SLUICE} has no .text.hot section: build.rs did not link it with hot-text.ld");
    };
    // One function each of sluice's request path, hyper's HTTP/1 and tokio's I/O:
    // if any of them is missing, hot-text.ld no longer matches what the build
    // names its functions, and `HOT_TEXT=hot-text.ld perf/instructions.sh` should
    // remake it.
    for part in [
        "6sluice5proxy7attempt4Call5group",
        "5hyper5proto2h14conn21Conn",
        "5tokio7runtime2io12registration12Registration10poll_ready",
    ] {
        let found = symbols(part);
        assert!(!found.is_empty(), "no symbol of {part} in {SLUICE}");
        assert!(
            found.iter().any(|a| (start..end).contains(a)),
            "{part} is not in .text.hot ({start:#x}..{end:#x}): {found:x?}"
        );
    }
}
