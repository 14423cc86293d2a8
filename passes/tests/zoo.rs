//! The optimiser on every zoo model: bridging in and out is the identity (canonical form),
//! `opt` keeps the interpreter's outputs (≤ 1e-5 relative), the result is deterministic,
//! MobileNetV2 / ShuffleNetV2 reach their fused forms, and the optimised `.lnir` of the tiny
//! models is snapshot per target.

mod common;

use common::{assert_same, hist};
use lnc_ir::text::{print, PrintOptions};
use lnc_ir::Graph;
use lnc_passes::egraph::{bridge, extract};
use lnc_passes::{PassContext, PassManager, Target};
use lnc_zoo::ZooOptions;

fn tiny() -> ZooOptions {
    ZooOptions {
        input_size: 32,
        width: 0.25,
        classes: 10,
        seed: 0,
    }
}

fn at(size: usize) -> ZooOptions {
    ZooOptions {
        input_size: size,
        width: 1.0,
        classes: 1000,
        seed: 0,
    }
}

fn opt(g: &Graph, target: Target) -> Graph {
    let ctx = PassContext {
        target,
        ..Default::default()
    };
    let pm = PassManager::from_spec("opt", &[], ctx, true).unwrap();
    let mut out = g.clone();
    let log = pm.run(&mut out, |_, _| {}).unwrap();
    let e = log.iter().find_map(|r| r.outcome.egraph.clone()).unwrap();
    assert!(!e.limit_hit, "{}: {}", g.name, e.stop_reason);
    out
}

fn compute_nodes(g: &Graph) -> usize {
    g.node_ids()
        .into_iter()
        .filter(|&i| g.node(i).op.is_compute())
        .count()
}

fn elided(g: &Graph) -> String {
    print(g, &PrintOptions { elide_consts: true })
}

#[test]
fn bridging_without_rules_is_the_identity() {
    for (name, _) in lnc_zoo::list() {
        let g = lnc_zoo::build(name, &tiny()).unwrap();
        let b = bridge::to_egraph(&g).unwrap();
        let ex = extract::extract(
            &b.egraph,
            Target::Cpu,
            &b.roots,
            &b.output_names,
            &b.graph_name,
        )
        .unwrap();
        let canon = bridge::canonicalize(&g).unwrap();
        let full = PrintOptions::default();
        let (a, c) = (print(&ex.graph, &full), print(&canon, &full));
        if let Some((x, y)) = a.lines().zip(c.lines()).find(|(x, y)| x != y) {
            panic!("{name}: bridged\n{x}\ncanonical\n{y}");
        }
        assert_eq!(a, c, "{name}");
        // The canonical form is the same graph: same outputs, bit for bit.
        let ins = common::inputs(&g, 1);
        let a = lnc_ir::interp::run(&g, ins.clone()).unwrap();
        let c = lnc_ir::interp::run(&canon, ins).unwrap();
        assert!(a.iter().zip(&c).all(|(x, y)| x.bit_eq(y)), "{name}");
    }
}

#[test]
fn opt_keeps_every_tiny_zoo_model_equal_and_is_snapshot() {
    for (name, _) in lnc_zoo::list() {
        let g = lnc_zoo::build(name, &tiny()).unwrap();
        for target in [Target::Cpu, Target::Fpga] {
            let out = opt(&g, target);
            assert_same(&g, &out, 2);
            // Fusion never duplicates a multiply-accumulate layer.
            assert!(
                compute_nodes(&out) <= compute_nodes(&g),
                "{name} {target:?}"
            );
            let text = elided(&out);
            // Deterministic: the same input gives byte-identical output.
            assert_eq!(elided(&opt(&g, target)), text, "{name} {target:?}");
            insta::assert_snapshot!(format!("{name}_{}", target.name()), text);
        }
    }
}

#[test]
fn mobilenet_v2_ends_with_one_fused_op_per_conv() {
    let g = lnc_zoo::build("mobilenet_v2", &tiny()).unwrap();
    for target in [Target::Cpu, Target::Fpga] {
        let out = opt(&g, target);
        let h = hist(&out);
        let n = compute_nodes(&out);
        assert!(n <= 54, "{target:?}: {n} compute nodes: {h:?}");
        for op in [
            "batch_norm",
            "clip",
            "add",
            "relu",
            "gemm",
            "global_average_pool",
            "reshape",
        ] {
            assert!(!h.contains_key(op), "{target:?}: {op} left: {h:?}");
        }
        let c = h.get("conv").copied().unwrap_or(0) + h.get("fused_conv").copied().unwrap_or(0);
        let dw_pw = h.get("dw_pw").copied().unwrap_or(0);
        assert_eq!(c + 2 * dw_pw, 52, "{target:?}: {h:?}");
        assert_eq!(h.get("classifier"), Some(&1));
        // The CPU fuses depthwise + pointwise blocks; the FPGA keeps them as modules.
        match target {
            Target::Cpu => assert_eq!(dw_pw, 17, "{h:?}"),
            Target::Fpga => assert_eq!(dw_pw, 0, "{h:?}"),
        }
    }
}

#[test]
fn shufflenet_v2_has_no_reshape_transpose_or_gather_left() {
    let g = lnc_zoo::build("shufflenet_v2_x1_0", &tiny()).unwrap();
    for target in [Target::Cpu, Target::Fpga] {
        let h = hist(&opt(&g, target));
        for op in [
            "reshape",
            "transpose",
            "gather",
            "split",
            "batch_norm",
            "relu",
        ] {
            assert!(!h.contains_key(op), "{target:?}: {op} left: {h:?}");
        }
    }
}

#[test]
fn opt_at_224_keeps_outputs() {
    for name in ["mobilenet_v2", "shufflenet_v2_x1_0", "squeezenet1_1"] {
        let g = lnc_zoo::build(name, &at(224)).unwrap();
        let out = opt(&g, Target::Cpu);
        assert_same(&g, &out, 1);
        if name == "mobilenet_v2" {
            assert!(compute_nodes(&out) <= 54);
        }
    }
}

#[test]
fn explain_names_the_rules_of_every_fused_op() {
    let g = lnc_zoo::build("mobilenet_v2", &tiny()).unwrap();
    let ctx = PassContext {
        explain: true,
        ..Default::default()
    };
    let pm = PassManager::from_spec("opt", &[], ctx, false).unwrap();
    let mut out = g.clone();
    let log = pm.run(&mut out, |_, _| {}).unwrap();
    let ex: Vec<_> = log.iter().flat_map(|r| r.outcome.explain.clone()).collect();
    // Every fused op of the output is explained.
    let fused: Vec<String> = out
        .node_ids()
        .into_iter()
        .filter(|&i| matches!(out.node(i).op.name(), "fused_conv" | "dw_pw" | "classifier"))
        .map(|i| out.node(i).name.clone())
        .collect();
    for f in &fused {
        assert!(ex.iter().any(|e| &e.node == f), "{f} is not explained");
    }
    let stem = ex
        .iter()
        .find(|e| e.node == "features.0.2")
        .expect("the stem");
    assert_eq!(stem.rules, ["fold-bn-conv", "fuse-conv-clip"]);
    let head = ex.iter().find(|e| e.op == "classifier").unwrap();
    assert_eq!(head.rules, ["fuse-classifier"]);
    let block = ex
        .iter()
        .find(|e| e.node == "features.2.conv.3")
        .expect("a block tail");
    assert_eq!(block.op, "dw_pw");
    assert!(block.rules.contains(&"fuse-dw-pw".to_string()), "{block:?}");
}

#[test]
fn runner_limits_are_reported() {
    let g = lnc_zoo::build("shufflenet_v2_x1_0", &tiny()).unwrap();
    let mut ctx = PassContext::default();
    ctx.eqsat.iter_limit = 2;
    let pm = PassManager::from_spec("eqsat", &[], ctx, false).unwrap();
    let mut out = g.clone();
    let log = pm.run(&mut out, |_, _| {}).unwrap();
    let e = log[0].outcome.egraph.clone().unwrap();
    assert!(e.limit_hit);
    assert_eq!(e.stop_reason, "iteration limit (2)");
    assert!(log[0].outcome.summary.contains("iteration limit"));
    // Still a correct graph.
    assert_same(&g, &out, 1);
}
