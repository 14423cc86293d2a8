//! The CPU backend end to end: `lnc build --target cpu`, `make`, run `lnc_runner`, and
//! compare with the reference interpreter (fp32: max |diff| <= 1e-4 * max |reference|).
//!
//! Tool-gated (see `tests/common`): a C compiler and make for everything; AddressSanitizer
//! and UBSan builds of the tiny zoo models; `aarch64-linux-gnu-gcc` + `qemu-aarch64` for
//! the NEON and dotprod builds; python with onnx for torchvision's exports.

mod common;

use lnc_ir::{Graph, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool_ok(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cc` and `make`, or a skip.
fn have_cc(test: &str) -> bool {
    if tool_ok("cc", "--version") && tool_ok("make", "--version") {
        return true;
    }
    common::skip(test, "a C compiler (cc) and make");
    false
}

fn tiny(name: &str) -> Graph {
    let o = lnc_zoo::ZooOptions {
        input_size: 32,
        width: 0.25,
        classes: 10,
        ..Default::default()
    };
    lnc_zoo::build(name, &o).expect("zoo model")
}

/// Deterministic inputs in [-1, 1).
fn inputs(g: &Graph, seed: u64) -> Vec<Tensor> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    g.inputs()
        .iter()
        .map(|&id| {
            let shape = g.node(id).outputs[0].shape.clone();
            let n: usize = shape.iter().product();
            let v = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect();
            Tensor::from_f32(&shape, v).unwrap()
        })
        .collect()
}

fn write_npy(path: &Path, t: &Tensor) {
    let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    for v in t.as_f32().unwrap().iter() {
        b.extend(v.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

fn read_npy_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// How to build and run one case.
#[derive(Clone)]
struct Case {
    args: Vec<String>,
    make_vars: Vec<String>,
    /// Run the runner under this prefix (qemu).
    prefix: Vec<String>,
}

impl Case {
    fn host(args: &[&str]) -> Case {
        Case {
            args: args.iter().map(|s| s.to_string()).collect(),
            make_vars: vec![],
            prefix: vec![],
        }
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Build `model` with the case, run it on seeded inputs and compare with the interpreter.
/// Returns the relative error or a failure message.
fn check(label: &str, model: &Path, g: &Graph, case: &Case) -> Result<f64, String> {
    let dir = common::scratch(&format!("cpu/{label}"));
    run(Command::new(common::lnc_bin())
        .arg("build")
        .arg(model)
        .args(&case.args)
        .arg("-o")
        .arg(&dir))
    .map_err(|e| format!("lnc build: {e}"))?;
    run(Command::new("make")
        .arg("-s")
        .arg("-j2")
        .arg("-C")
        .arg(&dir)
        .args(&case.make_vars))
    .map_err(|e| format!("make: {e}"))?;
    let ins = inputs(g, 7);
    let want = lnc_ir::interp::run(g, ins.clone()).map_err(|e| format!("interpreter: {e}"))?;
    let runner = dir.join("lnc_runner");
    let mut cmd = match case.prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg(&runner);
            c
        }
        None => Command::new(&runner),
    };
    for (i, t) in ins.iter().enumerate() {
        let p = dir.join(format!("in{i}.npy"));
        write_npy(&p, t);
        cmd.arg("--input").arg(p);
    }
    let outs: Vec<PathBuf> = (0..want.len())
        .map(|i| dir.join(format!("out{i}.npy")))
        .collect();
    for o in &outs {
        cmd.arg("--output").arg(o);
    }
    run(&mut cmd).map_err(|e| format!("lnc_runner: {e}"))?;
    let mut worst = 0f64;
    for (o, w) in outs.iter().zip(&want) {
        let got = read_npy_f32(o);
        let w: Vec<f32> = w.as_f32().unwrap().iter().copied().collect();
        if got.len() != w.len() {
            return Err(format!("{} values, expected {}", got.len(), w.len()));
        }
        let scale = w.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
        let diff = got
            .iter()
            .zip(&w)
            .fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
        if got.iter().zip(&w).any(|(a, b)| a.is_nan() != b.is_nan()) {
            return Err("NaN mismatch".into());
        }
        worst = worst.max(diff / scale);
    }
    if worst > 1e-4 {
        return Err(format!("relative error {worst:.3e} > 1e-4"));
    }
    Ok(worst)
}

fn zoo_names() -> Vec<&'static str> {
    lnc_zoo::list().into_iter().map(|(n, _)| n).collect()
}

/// Save every tiny zoo model as .lnir under the test's scratch dir.
fn tiny_models(test: &str) -> Vec<(String, PathBuf, Graph)> {
    let dir = common::scratch(&format!("cpu/{test}-models"));
    zoo_names()
        .into_iter()
        .map(|n| {
            let g = tiny(n);
            let p = dir.join(format!("{n}.lnir"));
            std::fs::write(&p, lnc_ir::text::print(&g, &Default::default())).unwrap();
            (n.to_string(), p, g)
        })
        .collect()
}

fn run_cases(test: &str, cases: &[(&str, Case)], models: Option<&[&str]>) {
    let mut failures = Vec::new();
    for (name, path, g) in tiny_models(test) {
        if models.is_some_and(|m| !m.contains(&name.as_str())) {
            continue;
        }
        for (tag, case) in cases {
            let label = format!("{test}/{name}-{tag}");
            match check(&label, &path, &g, case) {
                Ok(e) => common::report(&format!("{test}: {name} [{tag}] rel err {e:.2e}")),
                Err(e) => failures.push(format!("{name} [{tag}]: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn zoo_models_match_interpreter() {
    if !have_cc("zoo_models_match_interpreter") {
        return;
    }
    run_cases(
        "zoo",
        &[
            ("opt", Case::host(&[])),
            ("no-opt", Case::host(&["--no-opt"])),
        ],
        None,
    );
}

#[test]
fn zoo_models_match_with_two_threads_and_generic_isa() {
    if !have_cc("zoo_models_match_with_two_threads_and_generic_isa") {
        return;
    }
    run_cases(
        "variants",
        &[
            ("t2", Case::host(&["--threads", "2"])),
            ("generic", Case::host(&["--isa", "generic"])),
        ],
        None,
    );
}

#[test]
fn zoo_models_are_clean_under_sanitizers() {
    let test = "zoo_models_are_clean_under_sanitizers";
    if !have_cc(test) {
        return;
    }
    // Probe: can the toolchain link ASan + UBSan programs?
    let probe = common::scratch("cpu/asan-probe");
    std::fs::write(probe.join("p.c"), "int main(void) { return 0; }\n").unwrap();
    let ok = Command::new("cc")
        .args(["-fsanitize=address,undefined", "-o"])
        .arg(probe.join("p"))
        .arg(probe.join("p.c"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip(test, "cc with -fsanitize=address,undefined");
        return;
    }
    let san = Case {
        args: vec!["--threads".into(), "2".into()],
        make_vars: vec![
            "OPT=-O1 -g".into(),
            "EXTRA_CFLAGS=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer".into(),
        ],
        prefix: vec![],
    };
    run_cases("asan", &[("asan-ubsan", san)], None);
}

#[test]
fn aarch64_builds_match_under_qemu() {
    let test = "aarch64_builds_match_under_qemu";
    if !have_cc(test) {
        return;
    }
    if !tool_ok("aarch64-linux-gnu-gcc", "--version") || !tool_ok("qemu-aarch64", "--version") {
        common::skip(test, "aarch64-linux-gnu-gcc and qemu-aarch64");
        return;
    }
    let case = |isa: &str| Case {
        args: vec!["--isa".into(), isa.into(), "--threads".into(), "2".into()],
        make_vars: vec!["CC=aarch64-linux-gnu-gcc".into()],
        prefix: vec![
            "qemu-aarch64".into(),
            "-cpu".into(),
            "max".into(),
            "-L".into(),
            "/usr/aarch64-linux-gnu".into(),
        ],
    };
    run_cases(
        "qemu",
        &[
            ("neon", case("aarch64")),
            ("dotprod", case("aarch64-dotprod")),
        ],
        Some(&[
            "mobilenet_v2",
            "mobilenet_v3_small",
            "shufflenet_v2_x1_0",
            "squeezenet1_1",
            "espnet",
        ]),
    );
}

#[test]
fn torchvision_exports_match_interpreter() {
    let test = "torchvision_exports_match_interpreter";
    if !have_cc(test) {
        return;
    }
    let Some(py) = common::python_with_onnx(test) else {
        return;
    };
    let root = common::repo_root();
    let mut failures = Vec::new();
    for name in [
        "mobilenet_v2",
        "mobilenet_v3_small",
        "shufflenet_v2_x1_0",
        "squeezenet1_1",
        "mnasnet0_5",
        "efficientnet_b0",
    ] {
        let dir = common::scratch(&format!("cpu/torchvision-{name}"));
        let model = dir.join(format!("{name}.onnx"));
        let skel = root.join(format!("tests/data/torchvision/{name}.skeleton.onnx"));
        if let Err(e) = run(Command::new(&py)
            .arg(root.join("scripts/torchvision_export.py"))
            .arg("hydrate")
            .arg(&skel)
            .arg(&model))
        {
            failures.push(format!("{name}: hydrate: {e}"));
            continue;
        }
        let bytes = std::fs::read(&model).unwrap();
        let g = match lnc_frontend::load_bytes(&bytes, &Default::default()) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: load: {e}"));
                continue;
            }
        };
        match check(
            &format!("torchvision/{name}"),
            &model,
            &g,
            &Case::host(&["--threads", "2"]),
        ) {
            Ok(e) => common::report(&format!("{test}: {name} rel err {e:.2e}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn bench_reports_median() {
    let test = "bench_reports_median";
    if !have_cc(test) {
        return;
    }
    let dir = common::scratch("cpu/bench");
    let p = dir.join("m.lnir");
    std::fs::write(
        &p,
        lnc_ir::text::print(&tiny("mobilenet_v2"), &Default::default()),
    )
    .unwrap();
    let out = run(Command::new(common::lnc_bin())
        .arg("bench")
        .arg(&p)
        .args(["--repeat", "3", "--json", "-o"])
        .arg(dir.join("b")))
    .unwrap();
    assert!(out.contains("\"median_ms\":"), "{out}");
    assert!(out.contains("\"threads\":1"), "{out}");
}
