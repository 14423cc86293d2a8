//! `lnc passes` and `lnc opt`: pipelines, options, explain / stats / dump output, errors,
//! determinism, and the torchvision exports (tool-gated: python with onnx for hydration).

mod cli_util;
mod common;

use cli_util::{lnc, scratch};
use lnc_ir::{Graph, Tensor};
use std::path::Path;

fn zoo(dir: &Path, name: &str) -> String {
    let out = dir.join(format!("{name}.lnir"));
    common::tiny_zoo(name, &out).unwrap();
    out.to_str().unwrap().to_string()
}

fn load(path: &str) -> Graph {
    lnc_ir::text::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Random inputs for a graph (deterministic).
fn inputs(g: &Graph) -> Vec<Tensor> {
    let mut s: u64 = 0x1234_5678;
    g.inputs()
        .iter()
        .map(|&i| {
            let t = &g.node(i).outputs[0];
            let v = (0..t.numel())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect();
            Tensor::from_f32(&t.shape, v).unwrap()
        })
        .collect()
}

/// Largest output difference relative to the largest magnitude of `a`'s outputs.
fn rel_diff(a: &Graph, b: &Graph) -> f64 {
    let ins = inputs(a);
    let x = lnc_ir::interp::run(a, ins.clone()).unwrap();
    let y = lnc_ir::interp::run(b, ins).unwrap();
    x.iter()
        .zip(&y)
        .map(|(p, q)| {
            let (p, q) = (p.to_f64_vec(), q.to_f64_vec());
            let scale = p.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
            p.iter()
                .zip(&q)
                .fold(0f64, |m, (u, v)| m.max((u - v).abs()))
                / scale
        })
        .fold(0.0, f64::max)
}

fn compute_nodes(g: &Graph) -> usize {
    g.node_ids()
        .into_iter()
        .filter(|&i| g.node(i).op.is_compute())
        .count()
}

#[test]
fn passes_lists_passes_and_pipelines() {
    let r = lnc(&["passes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn opt_writes_an_equal_fused_model_with_explain_and_stats() {
    let dir = scratch("opt_basic");
    let m = zoo(&dir, "mobilenet_v2");
    let out = dir.join("o.lnir");
    let o = out.to_str().unwrap();
    let r = lnc(&[
        "opt",
        &m,
        "--target",
        "fpga",
        "--explain",
        "--stats",
        "-o",
        o,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Every pass's time is logged on stderr.
    for p in [
        "verify",
        "constant-fold",
        "dead-code",
        "eqsat",
        "canonicalize",
    ] {
        assert!(
            r.stderr.contains(&format!("pass {p}: ")),
            "{p}: {}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("saturated"), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("features.0.2 (fused_conv): fold-bn-conv, fuse-conv-clip"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("(classifier): fuse-classifier"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("target: fpga"), "{}", r.stdout);
    assert!(r.stdout.contains("stop=saturated"), "{}", r.stdout);
    assert!(r.stdout.contains("compute nodes: 53"), "{}", r.stdout);
    let (a, b) = (load(&m), load(o));
    assert!(rel_diff(&a, &b) <= 1e-5);
    assert_eq!(compute_nodes(&b), 53);
    // Deterministic: the same command writes the same bytes.
    let out2 = dir.join("o2.lnir");
    let r = lnc(&["opt", &m, "--target", "fpga", "-o", out2.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
}

#[test]
fn opt_pipelines_exclusions_and_dumps() {
    let dir = scratch("opt_options");
    let m = zoo(&dir, "shufflenet_v2_x1_0");
    let o = dir.join("o.lnir");
    let o = o.to_str().unwrap();
    // lower-cpu binds the CPU model; dump after the e-graph pass.
    let r = lnc(&[
        "opt",
        &m,
        "-p",
        "lower-cpu",
        "--dump-after",
        "eqsat",
        "-o",
        o,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("; after eqsat\nlnir 1\n"), "{}", r.stderr);
    assert!(r.stderr.contains("dw_pw("), "{}", r.stderr);
    assert!(r.stderr.contains("elided fnv64:"), "{}", r.stderr);
    let g = load(o);
    assert!(g
        .node_ids()
        .iter()
        .all(|&i| !matches!(g.node(i).op.name(), "reshape" | "transpose")));
    // Without the e-graph pass nothing is fused, and the result can be written as ONNX.
    let onnx = dir.join("o.onnx");
    let r = lnc(&["opt", &m, "-x", "eqsat", "-o", onnx.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("pass eqsat"));
    // Only some rule families.
    let r = lnc(&["opt", &m, "--rules", "cleanup,fold", "--stats", "-o", o]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let g = load(o);
    assert!(g
        .node_ids()
        .iter()
        .all(|&i| g.node(i).op.name() != "fused_conv"));
    assert!(g
        .node_ids()
        .iter()
        .all(|&i| g.node(i).op.name() != "batch_norm"));
    // A small iteration limit is reported.
    let r = lnc(&["opt", &m, "--iter-limit", "1", "--stats", "-o", o]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("stop=iteration limit (1) limit_hit=true"),
        "{}",
        r.stdout
    );
}

#[test]
fn opt_errors() {
    let dir = scratch("opt_errors");
    let m = zoo(&dir, "squeezenet1_1");
    let o = dir.join("o.lnir");
    let o = o.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-p", "nosuch"], "unknown pass or pipeline 'nosuch'"),
        (&["-x", "nosuch"], "unknown pass or pipeline 'nosuch'"),
        (
            &["-p", "lower-fpga", "--target", "cpu"],
            "pipeline 'lower-fpga' is for target Fpga",
        ),
        (&["--target", "gpu"], "unknown target 'gpu'"),
        (
            &["--dump-after", "nosuch"],
            "--dump-after nosuch: the pipeline has no such pass",
        ),
        (&["--rules", "magic"], "unknown rule family 'magic'"),
    ];
    for (args, msg) in cases {
        let mut a = vec!["opt", m.as_str()];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", o]);
        let r = lnc(&a);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
    }
    // Fused ops cannot be written as ONNX: the error names the node.
    let onnx = dir.join("o.onnx");
    let r = lnc(&["opt", &m, "-o", onnx.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(fused_conv)") && r.stderr.contains("no ONNX"),
        "{}",
        r.stderr
    );
}

#[test]
fn opt_on_torchvision_exports() {
    let Some(py) = common::python_with_onnx("opt_on_torchvision_exports") else {
        return;
    };
    let dir = scratch("opt_torchvision");
    for name in common::TORCHVISION {
        let onnx = dir.join(format!("{name}.onnx"));
        common::hydrate_torchvision(&py, name, &onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
        for target in ["cpu", "fpga"] {
            let out = dir.join(format!("{name}.{target}.lnir"));
            let r = lnc(&[
                "opt",
                onnx.to_str().unwrap(),
                "--target",
                target,
                "-o",
                out.to_str().unwrap(),
            ]);
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
            let before =
                lnc_frontend::load_file(&onnx, &lnc_frontend::LoadOptions::default()).unwrap();
            let after = load(out.to_str().unwrap());
            let d = rel_diff(&before, &after);
            assert!(d <= 1e-5, "{name} {target}: relative difference {d}");
            let ops: Vec<&str> = after
                .node_ids()
                .iter()
                .map(|&i| after.node(i).op.name())
                .collect();
            if *name == "mobilenet_v2" {
                assert!(compute_nodes(&after) <= 54);
            }
            if *name == "shufflenet_v2_x1_0" {
                assert!(
                    !ops.iter()
                        .any(|o| matches!(*o, "reshape" | "transpose" | "gather")),
                    "{ops:?}"
                );
            }
            common::report(&format!(
                "torchvision {name} {target}: {} -> {} compute nodes, {} -> {} nodes, max rel diff {d:.1e}",
                compute_nodes(&before),
                compute_nodes(&after),
                before.num_nodes(),
                after.num_nodes()
            ));
        }
    }
}

/// The bundled QDQ example (ONNX Runtime `quantize_static`, made by
/// `scripts/make_qdq_example.py`): `lower-cpu` turns every conv and the classifier into
/// integer `qlinear_conv`, and on the bundled input the lowered model gives the same logits.
#[test]
fn opt_lowers_the_qdq_example_to_integer_ops() {
    let dir = scratch("opt_qdq");
    let src = cli_util::root().join("examples/models/mobilenet_v2_tiny_qdq.onnx");
    let o = dir.join("q.lnir");
    let r = lnc(&[
        "opt",
        src.to_str().unwrap(),
        "-p",
        "lower-cpu",
        "--dump-after",
        "eqsat",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let g = load(o.to_str().unwrap());
    let count = |name: &str| {
        g.node_ids()
            .iter()
            .filter(|&&i| g.node(i).op.name() == name)
            .count()
    };
    assert_eq!(count("qlinear_conv"), 53);
    assert_eq!(count("conv") + count("gemm"), 0);
    // The IR after the e-graph pass, constants elided.
    let dump = r
        .stderr
        .split("; after eqsat\n")
        .nth(1)
        .and_then(|d| d.split("\npass ").next())
        .expect("dump after eqsat");
    insta::assert_snapshot!("qdq_example_lowered", dump);
    // Same logits as the imported (float QDQ) model on the bundled input.
    let x = cli_util::root().join("examples/models/input_1x3x32x32.npy");
    let mut outs = Vec::new();
    for (m, y) in [(src.clone(), "a.npy"), (o.clone(), "b.npy")] {
        let y = dir.join(y);
        let r = lnc(&[
            "run",
            m.to_str().unwrap(),
            "-i",
            x.to_str().unwrap(),
            "-o",
            y.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        outs.push(std::fs::read(y).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}
