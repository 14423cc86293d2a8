//! Shared helpers for the root integration tests: locating external tools and reporting skips.
//!
//! A test that needs a tool calls [`require`]. Without the tool it prints a `SKIPPED:` line
//! straight to the terminal (bypassing libtest's capture, so `cargo test` shows what was
//! skipped) and the test returns early; with `LNC_REQUIRE_TOOLS=1` (set by `.ci/run`) a
//! missing tool fails the test instead.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether missing tools are failures (CI) rather than skips.
pub fn tools_required() -> bool {
    std::env::var("LNC_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Report a skip (or fail under `LNC_REQUIRE_TOOLS=1`).
pub fn skip(test: &str, why: &str) {
    if tools_required() {
        panic!("{test}: required tool missing: {why} (LNC_REQUIRE_TOOLS=1)");
    }
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "SKIPPED: {test}: {why}");
}

/// Print a report line to the terminal even though libtest captures test output.
pub fn report(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// A Python interpreter with `onnx`, `onnxruntime` and `numpy`: `$LNC_PYTHON`, else the
/// repository's `.venv`, else `python3`.
pub fn python_with_onnx(test: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("LNC_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(repo_root().join(".venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    for c in candidates {
        let ok = Command::new(&c)
            .args(["-c", "import onnx, onnxruntime, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    skip(
        test,
        "python3 with onnx and onnxruntime (set LNC_PYTHON or create .venv)",
    );
    None
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory under `target/` unique to this test.
pub fn scratch(name: &str) -> PathBuf {
    let d = repo_root().join("target").join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// The `lnc` binary under test.
pub fn lnc_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lnc"))
}

/// `lnc zoo` arguments of the tiny test models (32x32 input, width 0.25, 10 classes).
pub const TINY_ZOO: &[&str] = &["--input-size", "32", "--width", "0.25", "--classes", "10"];

/// torchvision's opset-17 exports committed as skeletons in `tests/data/torchvision`.
pub const TORCHVISION: &[&str] = &[
    "mobilenet_v2",
    "mobilenet_v3_small",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "mnasnet0_5",
    "efficientnet_b0",
];

fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let o = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// Write the tiny zoo model `name` (`TINY_ZOO`) to `out` (`.onnx` or `.lnir`).
pub fn tiny_zoo(name: &str, out: &Path) -> Result<(), String> {
    run_ok(
        Command::new(lnc_bin())
            .args(["zoo", name])
            .args(TINY_ZOO)
            .arg("-o")
            .arg(out),
    )
}

/// Hydrate the committed skeleton of torchvision's `name` into a full ONNX model at `out`
/// (seeded weights, `scripts/torchvision_export.py`), with the Python `py`.
pub fn hydrate_torchvision(py: &Path, name: &str, out: &Path) -> Result<(), String> {
    let root = repo_root();
    run_ok(
        Command::new(py)
            .arg(root.join("scripts/torchvision_export.py"))
            .arg("hydrate")
            .arg(root.join(format!("tests/data/torchvision/{name}.skeleton.onnx")))
            .arg(out),
    )
}
