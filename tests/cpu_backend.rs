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

    /// A host build with AddressSanitizer and UBSan (any sanitizer report fails the run).
    fn asan(args: &[&str]) -> Case {
        Case {
            make_vars: vec![
                "OPT=-O1 -g".into(),
                "EXTRA_CFLAGS=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer".into(),
            ],
            ..Case::host(args)
        }
    }

    /// A host build of the VNNI (`vpdpbusd`) code path with an exact AVX2 emulation of the
    /// instruction (`LNC_QVNNI_EMULATE`): neither this host nor qemu has VNNI. On a host
    /// without AVX2 it is the portable build.
    fn vnni_emulated(args: &[&str]) -> Case {
        Case {
            make_vars: vec!["EXTRA_CFLAGS=-DLNC_QVNNI_EMULATE".into()],
            ..Case::host(args)
        }
    }

    /// An AArch64 build for `isa`, cross-compiled and run under qemu-aarch64.
    fn qemu(isa: &str, args: &[&str]) -> Case {
        let mut c = Case::host(&["--isa", isa]);
        c.args.extend(args.iter().map(|s| s.to_string()));
        c.make_vars = vec!["CC=aarch64-linux-gnu-gcc".into()];
        c.prefix = [
            "qemu-aarch64",
            "-cpu",
            "max",
            "-L",
            "/usr/aarch64-linux-gnu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        c
    }
}

/// Whether the toolchain links ASan + UBSan programs (else a skip).
fn have_asan(test: &str) -> bool {
    let probe = common::scratch(&format!("cpu/asan-probe-{test}"));
    std::fs::write(probe.join("p.c"), "int main(void) { return 0; }\n").unwrap();
    let ok = Command::new("cc")
        .args(["-fsanitize=address,undefined", "-o"])
        .arg(probe.join("p"))
        .arg(probe.join("p.c"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip(test, "cc with -fsanitize=address,undefined");
    }
    ok
}

/// Whether the AArch64 cross compiler and qemu-aarch64 are there (else a skip).
fn have_qemu(test: &str) -> bool {
    let ok = tool_ok("aarch64-linux-gnu-gcc", "--version") && tool_ok("qemu-aarch64", "--version");
    if !ok {
        common::skip(test, "aarch64-linux-gnu-gcc and qemu-aarch64");
    }
    ok
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

/// One graph output: `(interpreter, runner)` values.
type Outputs = (Vec<f32>, Vec<f32>);

/// Build `model` (with `build_args`) for the case in `dir`, run the runner on `inputs(g, seed)`
/// and the interpreter on the same inputs: `(interpreter outputs as f32, runner outputs)`.
fn build_and_run(
    dir: &Path,
    model: &Path,
    build_args: &[&str],
    g: &Graph,
    case: &Case,
    seed: u64,
) -> Result<Vec<Outputs>, String> {
    run(Command::new(common::lnc_bin())
        .arg("build")
        .arg(model)
        .args(build_args)
        .args(&case.args)
        .arg("-o")
        .arg(dir))
    .map_err(|e| format!("lnc build: {e}"))?;
    run(Command::new("make")
        .arg("-s")
        .arg("-j2")
        .arg("-C")
        .arg(dir)
        .args(&case.make_vars))
    .map_err(|e| format!("make: {e}"))?;
    let ins = inputs(g, seed);
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
    let mut pairs = Vec::new();
    for (i, (o, w)) in outs.iter().zip(&want).enumerate() {
        let got = read_npy_f32(o);
        let w: Vec<f32> = w
            .as_f32()
            .ok_or(format!("output {i} is not f32"))?
            .iter()
            .copied()
            .collect();
        if got.len() != w.len() {
            return Err(format!(
                "output {i}: {} values, expected {}",
                got.len(),
                w.len()
            ));
        }
        pairs.push((w, got));
    }
    Ok(pairs)
}

/// Build `model` with the case, run it on seeded inputs and compare with the interpreter.
/// Returns the relative error or a failure message.
fn check(label: &str, model: &Path, g: &Graph, case: &Case) -> Result<f64, String> {
    let dir = common::scratch(&format!("cpu/{label}"));
    let mut worst = 0f64;
    for (w, got) in build_and_run(&dir, model, &[], g, case, 7)? {
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
    if !have_asan(test) {
        return;
    }
    let san = Case::asan(&["--threads", "2"]);
    run_cases("asan", &[("asan-ubsan", san)], None);
}

#[test]
fn aarch64_builds_match_under_qemu() {
    let test = "aarch64_builds_match_under_qemu";
    if !have_cc(test) {
        return;
    }
    if !have_qemu(test) {
        return;
    }
    let case = |isa: &str| Case::qemu(isa, &["--threads", "2"]);
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

use common::TORCHVISION;

#[test]
fn torchvision_exports_match_interpreter() {
    let test = "torchvision_exports_match_interpreter";
    if !have_cc(test) {
        return;
    }
    let Some(py) = common::python_with_onnx(test) else {
        return;
    };
    let mut failures = Vec::new();
    for name in TORCHVISION {
        let dir = common::scratch(&format!("cpu/torchvision-{name}"));
        let model = dir.join(format!("{name}.onnx"));
        if let Err(e) = common::hydrate_torchvision(&py, name, &model) {
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

// ----- the integer (QDQ) path -------------------------------------------------------------

#[path = "qdq/mod.rs"]
mod qdq;

/// Build `g` (already in its final form: `--no-opt`) with `case`, run it and require the
/// outputs to be bit-identical with the interpreter's.
fn check_exact(label: &str, g: &Graph, case: &Case) -> Result<(), String> {
    let dir = common::scratch(&format!("cpu/{label}"));
    let model = dir.join("model.lnir");
    std::fs::write(&model, lnc_ir::text::print(g, &Default::default())).unwrap();
    let pairs = build_and_run(&dir, &model, &["--no-opt"], g, case, 11)?;
    for (i, (w, got)) in pairs.iter().enumerate() {
        let bad = got
            .iter()
            .zip(w.iter())
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        if bad > 0 {
            let (j, (a, b)) = got
                .iter()
                .zip(w.iter())
                .enumerate()
                .find(|(_, (a, b))| a.to_bits() != b.to_bits())
                .unwrap();
            return Err(format!(
                "output {i}: {bad} of {} values differ (first at {j}: {a} vs {b})",
                w.len()
            ));
        }
        let distinct: std::collections::BTreeSet<u32> = w.iter().map(|v| v.to_bits()).collect();
        if w.len() > 4 && distinct.len() < 3 {
            return Err(format!("output {i} is (nearly) constant: a useless test"));
        }
    }
    Ok(())
}

fn qdq_graphs() -> Vec<(String, Graph)> {
    use lnc_ir::DType;
    let mut v = Vec::new();
    for (tag, signed, wdt, hw) in [
        ("u8s8", false, DType::I8, 20),
        ("s8s8", true, DType::I8, 17),
        ("u8u8", false, DType::U8, 16),
    ] {
        let name = format!("qdq_{tag}");
        v.push((name.clone(), qdq::qdq_net(&name, 5, hw, signed, wdt)));
    }
    v
}

fn run_qdq_cases(test: &str, cases: &[(&str, Case)]) {
    let mut failures = Vec::new();
    for (name, g) in qdq_graphs() {
        for (tag, case) in cases {
            match check_exact(&format!("{test}/{name}-{tag}"), &g, case) {
                Ok(()) => common::report(&format!("{test}: {name} [{tag}] bit-exact")),
                Err(e) => failures.push(format!("{name} [{tag}]: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn qdq_graphs_are_bit_exact() {
    let test = "qdq_graphs_are_bit_exact";
    if !have_cc(test) {
        return;
    }
    run_qdq_cases(
        "qdq",
        &[
            ("host", Case::host(&[])),
            ("t2", Case::host(&["--threads", "2"])),
            ("generic", Case::host(&["--isa", "generic"])),
            ("vnni-emulated", Case::vnni_emulated(&[])),
        ],
    );
}

#[test]
fn qdq_graphs_are_clean_under_sanitizers_and_qemu() {
    let test = "qdq_graphs_are_clean_under_sanitizers_and_qemu";
    if !have_cc(test) {
        return;
    }
    let mut cases = Vec::new();
    if have_asan(test) {
        cases.push(("asan-ubsan-generic", Case::asan(&["--isa", "generic"])));
        cases.push(("asan-ubsan", Case::asan(&["--threads", "2"])));
    }
    if have_qemu(test) {
        cases.push(("neon", Case::qemu("aarch64", &["--threads", "2"])));
        cases.push(("sdot", Case::qemu("aarch64-dotprod", &[])));
    }
    run_qdq_cases("qdq-tools", &cases);
}

/// A QDQ model quantized by ONNX Runtime (`quantize_static`, u8 activations, i8 per-channel
/// weights) from the tiny zoo MobileNetV2, optimised by `lnc opt` (QDQ -> qlinear_conv),
/// built with `--no-opt` and compared bit for bit with the interpreter on the optimised
/// graph (on the host, with 2 threads, generic ISA, ASan/UBSan and NEON under qemu).
#[test]
fn ort_quantized_tiny_model_is_bit_exact() {
    let test = "ort_quantized_tiny_model_is_bit_exact";
    if !have_cc(test) {
        return;
    }
    let Some(py) = python_with_ort_quant(test) else {
        return;
    };
    let dir = common::scratch("cpu/ort-qdq");
    let onnx = dir.join("mnv2.onnx");
    let qdq = dir.join("mnv2_qdq.onnx");
    let opt = dir.join("mnv2_qdq_opt.lnir");
    common::tiny_zoo("mobilenet_v2", &onnx).expect("lnc zoo");
    ort_quantize(&py, &onnx, &qdq, true).expect("quantize");
    run(Command::new(common::lnc_bin())
        .arg("opt")
        .arg(&qdq)
        .arg("-o")
        .arg(&opt))
    .expect("lnc opt");
    let text = std::fs::read_to_string(&opt).unwrap();
    let g = lnc_ir::text::parse(&text).expect("parse optimised graph");
    let n_q = g
        .node_ids()
        .into_iter()
        .filter(|&n| matches!(g.node(n).op, lnc_ir::Op::QLinearConv(_)))
        .count();
    assert!(n_q > 10, "lnc opt made {n_q} qlinear_conv nodes");
    let mut cases = vec![
        ("host", Case::host(&[])),
        ("t2", Case::host(&["--threads", "2"])),
        ("generic", Case::host(&["--isa", "generic"])),
    ];
    if have_qemu(test) {
        cases.push(("neon", Case::qemu("aarch64", &[])));
        cases.push(("sdot", Case::qemu("aarch64-dotprod", &[])));
    }
    if have_asan(test) {
        cases.push(("asan-ubsan", Case::asan(&["--threads", "2"])));
    }
    cases.push(("vnni-emulated", Case::vnni_emulated(&[])));
    let mut failures = Vec::new();
    for (tag, case) in &cases {
        match check_exact(&format!("ort-qdq/{tag}"), &g, case) {
            Ok(()) => common::report(&format!("{test}: [{tag}] bit-exact")),
            Err(e) => failures.push(format!("[{tag}]: {e}")),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// Python with onnx and onnxruntime's quantizer, or a skip.
fn python_with_ort_quant(test: &str) -> Option<PathBuf> {
    let py = common::python_with_onnx(test)?;
    let ok = Command::new(&py)
        .args(["-c", "import onnxruntime.quantization"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip(test, "python with onnxruntime");
        return None;
    }
    Some(py)
}

/// ONNX Runtime's `quantize_static` QDQ form of a model (`scripts/ort_compare.py`'s recipe).
fn ort_quantize(py: &Path, src: &Path, dst: &Path, per_channel: bool) -> Result<String, String> {
    let script = format!(
        "import sys; sys.path.insert(0, {:?}); import ort_compare as oc, onnx\n\
         specs = oc.input_specs(onnx.load({:?}))\n\
         oc.quantize({:?}, {:?}, specs, 0, {})\n",
        common::repo_root().join("scripts").display().to_string(),
        src.display().to_string(),
        src.display().to_string(),
        dst.display().to_string(),
        if per_channel { "True" } else { "False" }
    );
    run(Command::new(py).args(["-c", &script]))
}

/// The integer lowering (`lnc opt -p lower-cpu`) of a model, parsed.
fn lowered(model: &Path, out: &Path) -> Result<Graph, String> {
    run(Command::new(common::lnc_bin())
        .arg("opt")
        .arg(model)
        .args(["-p", "lower-cpu", "-o"])
        .arg(out))?;
    let text = std::fs::read_to_string(out).map_err(|e| e.to_string())?;
    lnc_ir::text::parse(&text).map_err(|e| e.to_string())
}

/// The bundled QDQ example (no Python needed): generated C bit-exact with the interpreter.
#[test]
fn qdq_example_is_bit_exact() {
    let test = "qdq_example_is_bit_exact";
    if !have_cc(test) {
        return;
    }
    let dir = common::scratch("cpu/qdq-example");
    let src = common::repo_root().join("examples/models/mobilenet_v2_tiny_qdq.onnx");
    let g = lowered(&src, &dir.join("low.lnir")).expect("lower");
    check_exact("qdq-example/host", &g, &Case::host(&[])).expect("bit-exact");
}

/// `make EXTRA_CFLAGS=-DLNC_PROFILE` (what `bench/layers_vs_ort.py` builds): compiles under
/// -Werror and prints one line per step with its total and its fastest run, the fastest
/// run no more than the total's share.
#[test]
fn profile_build_reports_every_step() {
    let test = "profile_build_reports_every_step";
    if !have_cc(test) {
        return;
    }
    let dir = common::scratch("cpu/profile");
    let src = common::repo_root().join("examples/models/mobilenet_v2_tiny_qdq.onnx");
    let g = lnc_frontend::load_bytes(&std::fs::read(&src).unwrap(), &Default::default())
        .expect("import");
    let out = dir.join("c");
    run(Command::new(common::lnc_bin())
        .arg("build")
        .arg(&src)
        .arg("-o")
        .arg(&out))
    .expect("lnc build");
    run(Command::new("make")
        .args(["-s", "-j2", "-C"])
        .arg(&out)
        .arg("EXTRA_CFLAGS=-DLNC_PROFILE"))
    .expect("make");
    let model_c = std::fs::read_to_string(out.join("model.c")).unwrap();
    let steps: usize = model_c
        .lines()
        .nth(1)
        .and_then(|l| l.trim_start_matches(" * ").split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("step count in model.c's header");
    let x = dir.join("x.npy");
    write_npy(&x, &inputs(&g, 1)[0]);
    let runs = 4;
    let o = Command::new(out.join("lnc_runner"))
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(dir.join("y.npy"))
        .args(["--repeat", &runs.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let mut seen = 0;
    for l in err.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.get(2), Some(&"ms"), "{l}");
        assert_eq!(f[f.len() - 3], "min", "{l}");
        assert_eq!(f[0].parse::<usize>().unwrap(), seen, "{l}");
        let total_ms: f64 = f[1].parse().unwrap();
        let min_us: f64 = f[f.len() - 2].parse().unwrap();
        // The warm-up run and the repeats are all profiled.
        assert!(
            min_us > 0.0 && min_us * (runs + 1) as f64 <= total_ms * 1e3 * 1.0001,
            "{l}"
        );
        seen += 1;
    }
    assert_eq!(seen, steps, "{err}");
}

/// Every zoo model (tiny) and torchvision's exports (224x224, hydrated skeletons) quantized
/// by ONNX Runtime: the integer lowering compiled to C is bit-exact with the interpreter.
#[test]
fn ort_quantized_zoo_and_torchvision_models_are_bit_exact() {
    let test = "ort_quantized_zoo_and_torchvision_models_are_bit_exact";
    if !have_cc(test) {
        return;
    }
    let Some(py) = python_with_ort_quant(test) else {
        return;
    };
    let dir = common::scratch("cpu/ort-qdq-all");
    let mut models: Vec<(String, PathBuf)> = Vec::new();
    for name in zoo_names() {
        let onnx = dir.join(format!("{name}.onnx"));
        common::tiny_zoo(name, &onnx).expect("lnc zoo");
        models.push((name.to_string(), onnx));
    }
    for name in TORCHVISION {
        let onnx = dir.join(format!("tv_{name}.onnx"));
        common::hydrate_torchvision(&py, name, &onnx).expect("hydrate");
        models.push((format!("tv_{name}"), onnx));
    }
    let mut failures = Vec::new();
    for (name, onnx) in &models {
        let qdq = dir.join(format!("{name}_qdq.onnx"));
        let r = ort_quantize(&py, onnx, &qdq, true)
            .and_then(|_| lowered(&qdq, &dir.join(format!("{name}.lnir"))))
            .and_then(|g| {
                let n = g
                    .node_ids()
                    .into_iter()
                    .filter(|&i| g.node(i).op.name() == "conv")
                    .count();
                if n > 0 {
                    return Err(format!("{n} float convs left after lowering"));
                }
                check_exact(&format!("ort-qdq-all/{name}"), &g, &Case::host(&[]))
            });
        match r {
            Ok(()) => common::report(&format!("{test}: {name} bit-exact")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
