//! Every zoo model against ONNX Runtime on seeded inputs (tool-gated: python3 with onnx and
//! onnxruntime). Float models must agree to 1e-4 x max |reference|; their ORT
//! `quantize_static` QDQ forms within one output quantization step, and every quantized tensor
//! within one step when run teacher-forced (`--per-layer`; see `scripts/ort_compare.py`), both as
//! imported (float QDQ) and after the integer lowering of `lnc opt -p lower-cpu` (`-int` tags). The check itself is
//! `scripts/ort_compare.py`, which runs `lnc run` and ORT side by side.

mod common;

use std::process::Command;

fn zoo_names() -> Vec<String> {
    let out = Command::new(common::lnc_bin())
        .args(["zoo", "--list"])
        .output()
        .expect("run lnc zoo --list");
    assert!(
        out.status.success(),
        "lnc zoo --list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn compare(py: &std::path::Path, model: &str, extra: &[&str], tag: &str) -> Result<String, String> {
    let dir = common::scratch(&format!("ort/{tag}"));
    let onnx = dir.join("model.onnx");
    let mut zoo = Command::new(common::lnc_bin());
    zoo.args(["zoo", model, "-o"]).arg(&onnx).args(extra);
    let z = zoo.output().expect("run lnc zoo");
    if !z.status.success() {
        return Err(format!(
            "lnc zoo {model}: {}",
            String::from_utf8_lossy(&z.stderr)
        ));
    }
    let qdq = tag.contains("qdq");
    let mut cmd = Command::new(py);
    cmd.arg(common::repo_root().join("scripts/ort_compare.py"))
        .arg("--lnc")
        .arg(common::lnc_bin())
        .arg("--model")
        .arg(&onnx)
        .arg("--workdir")
        .arg(&dir);
    if qdq {
        cmd.args(["--qdq", "--per-layer"]);
    }
    if tag.contains("-rr-") {
        // ORT's own fused integer kernels, exact for 7-bit weights: lnc's integer lowering
        // must agree bit for bit.
        cmd.args(["--reduce-range", "--ort-fused", "--qdq-steps", "0"]);
    }
    if tag.ends_with("-int") {
        // The integer lowering: `lnc opt -p lower-cpu` first (QLinearConv everywhere).
        cmd.arg("--lower");
    }
    if tag.contains("perchannel") {
        cmd.arg("--per-channel");
    }
    if qdq && tag.contains("224") && !tag.contains("-rr-") {
        // Deep full-size models accumulate rare intermediate rounding flips (see
        // scripts/ort_compare.py); tiny ones must agree within one step.
        cmd.args(["--qdq-steps", "8"]);
    }
    let out = cmd.output().expect("run ort_compare.py");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(line)
    } else {
        Err(format!("{line}\n{}", String::from_utf8_lossy(&out.stderr)))
    }
}

use common::TINY_ZOO as TINY;

#[test]
fn zoo_models_match_onnxruntime() {
    let Some(py) = common::python_with_onnx("zoo_models_match_onnxruntime") else {
        return;
    };
    let names = zoo_names();
    assert!(names.len() >= 10, "zoo lists {} models", names.len());
    let mut failures = Vec::new();
    for name in &names {
        for (tag, extra) in [("tiny", TINY), ("tiny-qdq", TINY), ("tiny-qdq-int", TINY)] {
            match compare(&py, name, extra, &format!("{name}-{tag}")) {
                Ok(line) => common::report(&format!("ort {name} {tag}: {line}")),
                Err(e) => failures.push(format!("{name} {tag}: {e}")),
            }
        }
    }
    // Full-size float and per-channel QDQ for the flagship model.
    for (tag, extra) in [
        ("224", &[][..]),
        ("224-qdq-perchannel", &[][..]),
        ("224-qdq-int", &[][..]),
        ("224-qdq-rr-int", &[][..]),
    ] {
        match compare(&py, "mobilenet_v2", extra, &format!("mobilenet_v2-{tag}")) {
            Ok(line) => common::report(&format!("ort mobilenet_v2 {tag}: {line}")),
            Err(e) => failures.push(format!("mobilenet_v2 {tag}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "mismatches against ONNX Runtime:\n{}",
        failures.join("\n")
    );
}
