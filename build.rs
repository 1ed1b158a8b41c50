//! Links the `sluice` binary with `hot-text.ld`, which gathers the functions a
//! proxied request runs into one stretch of the binary. At a light rate each
//! request starts with cold caches, and those functions, left where the linker
//! puts them, lie spread over about 150 pages of code; gathered, about 100
//! (`perf/instructions.sh`), so a request needs fewer instruction-TLB entries.
//! `HOT_TEXT=hot-text.ld perf/instructions.sh` remakes the script.
//!
//! Linux only. The script augments the linker's default layout (`INSERT`): lld,
//! rustc's default, and GNU ld read it; gold does not. `SLUICE_HOT_TEXT=0`
//! builds without it.

fn main() {
    println!("cargo::rerun-if-changed=hot-text.ld");
    println!("cargo::rerun-if-env-changed=SLUICE_HOT_TEXT");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let off = std::env::var("SLUICE_HOT_TEXT").is_ok_and(|v| v == "0");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&dir).join("hot-text.ld");
    if linux && !off && script.exists() {
        println!(
            "cargo::rustc-link-arg-bin=sluice=-Wl,-T,{}",
            script.display()
        );
    }
}
