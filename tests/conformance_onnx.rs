//! Conformance against the onnx package's backend test data (tool-gated: needs python3 with
//! onnx). Suites: `light` (whole models), `pytorch-converted`, `pytorch-operator` and `node`
//! (one case per operator test that `onnx.backend.test` generates).
//!
//! Every case ends in one of: **pass** (outputs within the case's rtol/atol, integers exact),
//! **rejected** (import or run returned an error: out-of-scope op, dtype or attribute — a
//! clear error is the contract), **mismatch** (a wrong answer) or **panic**. Mismatches and
//! panics fail the test; pass counts are printed and ratcheted by per-suite minimums.

mod common;

use lnc_ir::{Data, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Pass,
    Rejected,
    Mismatch,
    Panic,
}

fn read_pb(p: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
    lnc_frontend::tensor_from_proto_bytes(&bytes).map_err(|e| e.to_string())
}

fn sorted_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let idx = name
                .strip_prefix(prefix)?
                .strip_suffix(".pb")?
                .parse()
                .ok()?;
            Some((idx, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// numpy.testing.assert_allclose semantics; integers and bools exact.
fn close(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} vs expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    match (&got.data, &want.data) {
        (Data::F32(a), Data::F32(b)) => {
            for (i, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
                let (x, y) = (x as f64, y as f64);
                let ok = if y.is_nan() {
                    x.is_nan()
                } else if y.is_infinite() {
                    x == y
                } else {
                    (x - y).abs() <= atol + rtol * y.abs()
                };
                if !ok {
                    return Err(format!("element {i}: got {x}, expected {y}"));
                }
            }
            Ok(())
        }
        (Data::Int(a), Data::Int(b)) => match a.iter().zip(b.iter()).position(|(x, y)| x != y) {
            None => Ok(()),
            Some(i) => Err(format!(
                "element {i}: got {}, expected {}",
                a.as_slice().map_or(0, |s| s[i]),
                b.as_slice().map_or(0, |s| s[i])
            )),
        },
        _ => Err(format!("dtype {} vs expected {}", got.dtype, want.dtype)),
    }
}

fn run_case(dir: &Path) -> (Outcome, String) {
    if dir.join("UNSUPPORTED_VALUE").exists() {
        return (
            Outcome::Rejected,
            "non-tensor values (sequence/map/optional)".into(),
        );
    }
    let meta: (f64, f64) = std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|s| {
            let r = s
                .split("\"rtol\":")
                .nth(1)?
                .split([',', '}'])
                .next()?
                .trim()
                .parse()
                .ok()?;
            let a = s
                .split("\"atol\":")
                .nth(1)?
                .split([',', '}'])
                .next()?
                .trim()
                .parse()
                .ok()?;
            Some((r, a))
        })
        .unwrap_or((1e-3, 1e-7));
    let g = match lnc_frontend::load_file(&dir.join("model.onnx"), &Default::default()) {
        Ok(g) => g,
        Err(e) => return (Outcome::Rejected, format!("import: {e}")),
    };
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
        })
        .collect();
    sets.sort();
    for set in sets {
        let inputs: Result<Vec<Tensor>, String> = sorted_files(&set, "input_")
            .iter()
            .map(|p| read_pb(p))
            .collect();
        let wants: Result<Vec<Tensor>, String> = sorted_files(&set, "output_")
            .iter()
            .map(|p| read_pb(p))
            .collect();
        let (inputs, wants) = match (inputs, wants) {
            (Ok(i), Ok(w)) => (i, w),
            (Err(e), _) | (_, Err(e)) => return (Outcome::Rejected, format!("test data: {e}")),
        };
        let got = match lnc_ir::interp::run(&g, inputs) {
            Ok(o) => o,
            Err(e) => return (Outcome::Rejected, format!("run: {e}")),
        };
        if got.len() != wants.len() {
            return (
                Outcome::Mismatch,
                format!("{} outputs, expected {}", got.len(), wants.len()),
            );
        }
        for (i, (a, b)) in got.iter().zip(&wants).enumerate() {
            if let Err(m) = close(a, b, meta.0, meta.1) {
                return (Outcome::Mismatch, format!("output {i}: {m}"));
            }
        }
    }
    (Outcome::Pass, String::new())
}

/// Minimum number of passing cases per suite (a ratchet: raise it when support grows).
const MIN_PASS: &[(&str, usize)] = &[
    ("light", 6),
    ("node", 354),
    ("pytorch-converted", 68),
    ("pytorch-operator", 26),
];

#[test]
fn onnx_backend_test_data() {
    let Some(py) = common::python_with_onnx("onnx_backend_test_data") else {
        return;
    };
    let data = common::repo_root().join("target").join("onnx-backend-data");
    let st = Command::new(&py)
        .arg(common::repo_root().join("scripts/onnx_backend_data.py"))
        .arg(&data)
        .status()
        .expect("run onnx_backend_data.py");
    assert!(st.success(), "scripts/onnx_backend_data.py failed");

    let mut cases: Vec<(String, PathBuf)> = Vec::new();
    for (suite, _) in MIN_PASS {
        let mut v: Vec<PathBuf> = std::fs::read_dir(data.join(suite))
            .expect("suite dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        cases.extend(v.into_iter().map(|p| (suite.to_string(), p)));
    }

    // Two workers (the machines have two cores); results collected in case order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<(Outcome, String)>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((_, dir)) = cases.get(i) else { break };
                let r = std::panic::catch_unwind(|| run_case(dir)).unwrap_or_else(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    (Outcome::Panic, msg)
                });
                *results[i].lock().unwrap() = Some(r);
            });
        }
    });

    let mut counts: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut rejected = Vec::new();
    for ((suite, dir), r) in cases.iter().zip(&results) {
        let (o, msg) = r.lock().unwrap().take().expect("case ran");
        counts.entry(suite).or_default()[o as usize] += 1;
        let name = format!(
            "{suite}/{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        match o {
            Outcome::Pass => {}
            Outcome::Rejected => rejected.push(format!("{name}: {msg}")),
            Outcome::Mismatch | Outcome::Panic => failures.push(format!("{o:?} {name}: {msg}")),
        }
    }
    let list = std::env::var("LNC_CONFORMANCE_LIST").is_ok();
    if list {
        for r in &rejected {
            common::report(&format!("  rejected {r}"));
        }
    }
    for (suite, c) in &counts {
        common::report(&format!(
            "conformance {suite}: {} passed, {} rejected with an error, {} wrong, {} panicked (of {})",
            c[0],
            c[1],
            c[2],
            c[3],
            c.iter().sum::<usize>()
        ));
    }
    for f in &failures {
        common::report(&format!("  FAIL {f}"));
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers or panics (listed above)",
        failures.len()
    );
    for (suite, min) in MIN_PASS {
        let got = counts.get(suite).map_or(0, |c| c[0]);
        assert!(
            got >= *min,
            "suite {suite}: {got} passed, fewer than the ratchet {min}"
        );
    }
}
