//! Helpers shared by the zoo's integration tests: torch-style parameter counts and MAC counts
//! computed from a graph.

#![allow(dead_code)]

use lnc_ir::{Graph, Op};
use lnc_zoo::ZooOptions;

/// The tiny variant every model must support.
pub fn tiny() -> ZooOptions {
    ZooOptions {
        input_size: 32,
        width: 0.25,
        ..ZooOptions::default()
    }
}

/// Every model name.
pub fn names() -> Vec<&'static str> {
    lnc_zoo::list().into_iter().map(|(n, _)| n).collect()
}

/// Parameters as torch counts them (`sum(p.numel() for p in model.parameters())`): conv and
/// linear weights and biases, batch-norm gamma and beta, PReLU slopes. Batch-norm running
/// statistics are buffers in torch, not parameters; the graph keeps them as constants
/// (BatchNormalization inputs 3 and 4), so they are subtracted here.
pub fn torch_params(g: &Graph) -> usize {
    let mut buffers = 0;
    for id in g.node_ids() {
        if matches!(g.node(id).op, Op::BatchNorm { .. }) {
            for v in g.node_inputs(id).iter().skip(3) {
                buffers += g.value_type(*v).numel();
            }
        }
    }
    g.num_params() - buffers
}

/// Multiply-accumulates of the conv and Gemm layers (the usual "MACs" / "FLOPs" of papers).
pub fn macs(g: &Graph) -> u64 {
    let mut total = 0u64;
    for id in g.node_ids() {
        let node = g.node(id);
        let ins = g.node_inputs(id);
        match &node.op {
            Op::Conv(_) => {
                let w = &g.value_type(ins[1]).shape;
                let per_output: usize = w[1..].iter().product();
                total += (node.outputs[0].numel() * per_output) as u64;
            }
            Op::Gemm { trans_b, .. } => {
                let w = &g.value_type(ins[1]).shape;
                let k = if *trans_b { w[1] } else { w[0] };
                total += (node.outputs[0].numel() * k) as u64;
            }
            _ => {}
        }
    }
    total
}

/// Count the nodes whose op satisfies `f`.
pub fn count(g: &Graph, f: impl Fn(&Op) -> bool) -> usize {
    g.node_ids()
        .into_iter()
        .filter(|&id| f(&g.node(id).op))
        .count()
}
