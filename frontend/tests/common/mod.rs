//! Shared helpers of the frontend integration tests.
#![allow(dead_code)]

use lnc_frontend::{load_bytes, LoadOptions};
use lnc_ir::Graph;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Path of a fixture under `tests/data`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The bytes of `tests/data/<stem>.onnx`.
pub fn bytes(stem: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("{stem}.onnx"))).expect("fixture exists")
}

/// Import `tests/data/<stem>.onnx` with default options.
pub fn load(stem: &str) -> lnc_frontend::Result<Graph> {
    load_bytes(&bytes(stem), &LoadOptions::default())
}

/// Op-name histogram of a graph (inputs and constants included).
pub fn histogram(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut h = BTreeMap::new();
    for id in g.node_ids() {
        *h.entry(g.node(id).op.name()).or_insert(0) += 1;
    }
    h
}

/// Build a histogram literal for comparisons.
pub fn hist(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

/// Whether missing tools are failures (CI sets `LNC_REQUIRE_TOOLS=1`) rather than skips.
pub fn tools_required() -> bool {
    std::env::var("LNC_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Report a skip on the terminal (or fail under `LNC_REQUIRE_TOOLS=1`).
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    if tools_required() {
        panic!("{test}: required tool missing: {why} (LNC_REQUIRE_TOOLS=1)");
    }
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {why}");
}

/// A Python with `onnx` and `onnxruntime`: `$LNC_PYTHON`, the repository's `.venv`, or
/// `python3`; `None` (after reporting a skip) when there is none.
pub fn python_with_onnx(test: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("LNC_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    for c in candidates {
        let ok = std::process::Command::new(&c)
            .args(["-c", "import onnx, onnxruntime"])
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

/// A scratch directory under the target dir, unique to a test.
pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-scratch/frontend")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}
