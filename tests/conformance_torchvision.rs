//! torchvision's opset-17 exports (`torch.onnx.export`, constant folding on) of mobilenet_v2,
//! mobilenet_v3_small, shufflenet_v2_x1_0, squeezenet1_1, mnasnet0_5 and efficientnet_b0
//! against ONNX Runtime, float and ORT `quantize_static` QDQ (tool-gated: python3 with onnx and
//! onnxruntime; torch itself is not needed).
//!
//! The graphs are committed as skeletons under `tests/data/torchvision/` (made by
//! `scripts/torchvision_export.py export`, weights stripped); `hydrate` refills them with
//! seeded weights. Also checks that `lnc inspect --json` counts the same MACs as an independent
//! count over onnx's own shape inference (`scripts/onnx_macs.py`).

mod common;

use std::process::Command;

use common::TORCHVISION as MODELS;

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    let so = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(so)
    } else {
        Err(format!("{so}\n{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn json_u64(json: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let rest = json.split(&pat).nth(1)?;
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn torchvision_exports_match_onnxruntime() {
    let Some(py) = common::python_with_onnx("torchvision_exports_match_onnxruntime") else {
        return;
    };
    let root = common::repo_root();
    let mut failures = Vec::new();
    for name in MODELS {
        let dir = common::scratch(&format!("torchvision/{name}"));
        let model = dir.join(format!("{name}.onnx"));
        if let Err(e) = common::hydrate_torchvision(&py, name, &model) {
            failures.push(format!("{name}: hydrate: {e}"));
            continue;
        }
        // MACs: lnc inspect vs an independent count.
        let want = run(Command::new(&py)
            .arg(root.join("scripts/onnx_macs.py"))
            .arg(&model));
        let got = run(Command::new(common::lnc_bin())
            .arg("inspect")
            .arg(&model)
            .arg("--json"));
        match (want, got) {
            (Ok(w), Ok(g)) => {
                let w: u64 = w.parse().unwrap_or(0);
                let g = json_u64(&g, "macs");
                if g != Some(w) {
                    failures.push(format!("{name}: lnc inspect macs {g:?}, onnx count {w}"));
                } else {
                    common::report(&format!(
                        "torchvision {name}: {w} MACs (lnc inspect agrees)"
                    ));
                }
            }
            (w, g) => failures.push(format!("{name}: mac count failed: {w:?} / {g:?}")),
        }
        for qdq in [false, true] {
            let work = dir.join(if qdq { "qdq" } else { "fp32" });
            let mut cmd = Command::new(&py);
            cmd.arg(root.join("scripts/ort_compare.py"))
                .arg("--lnc")
                .arg(common::lnc_bin())
                .arg("--model")
                .arg(&model)
                .arg("--workdir")
                .arg(&work);
            if qdq {
                // 224x224 models: rare intermediate rounding flips accumulate end to end (see
                // scripts/ort_compare.py); every layer, teacher-forced, is within one step.
                cmd.args(["--qdq", "--qdq-steps", "8", "--per-layer"]);
            }
            match run(&mut cmd) {
                Ok(line) => common::report(&format!("torchvision {name} qdq={qdq}: {line}")),
                Err(e) => failures.push(format!("{name} qdq={qdq}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
