//! Interpreter: whole-graph runs, input checking and node error reporting.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::interp::run;
use lnc_ir::{BinaryOp, Conv2d, DType, Error, Graph, Op, ReduceKind, TensorType, UnaryOp};
use util::*;

/// Conv -> Relu -> GlobalAveragePool -> Reshape -> Gemm.
fn small_net() -> Graph {
    let mut g = Graph::new("small");
    let x = g.add_input("x", TensorType::f32(vec![1, 1, 3, 3])).unwrap();
    // Channel 0: x[i,j] - x[i+1,j+1] + 10 = 6 everywhere; channel 1: 2x2 mean - 10 < 0.
    let w = g.add_const(
        "w",
        f(&[2, 1, 2, 2], &[1., 0., 0., -1., 0.25, 0.25, 0.25, 0.25]),
    );
    let b = g.add_const("b", f(&[2], &[10., -10.]));
    let conv = Conv2d {
        kernel: [2, 2],
        strides: [1, 1],
        pads: [0, 0, 0, 0],
        dilations: [1, 1],
        group: 1,
    };
    let c = g.add("conv", Op::Conv(conv), &[x, w, b]).unwrap();
    let r = g.add("relu", Op::Unary(UnaryOp::Relu), &[c]).unwrap();
    let p = g.add("gap", Op::GlobalAveragePool, &[r]).unwrap();
    let s = g
        .add("flatten", Op::Reshape { shape: vec![1, 2] }, &[p])
        .unwrap();
    let fw = g.add_const("fc_w", f(&[2, 3], &[1., 2., 3., 4., 5., 6.]));
    let fb = g.add_const("fc_b", f(&[3], &[0.5, 0.5, 0.5]));
    let y = g
        .add(
            "fc",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: false,
            },
            &[s, fw, fb],
        )
        .unwrap();
    g.add_output("y", y);
    g.add_output("pooled", p);
    g
}

fn image() -> lnc_ir::Tensor {
    f(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.])
}

#[test]
fn runs_a_small_network() {
    let g = small_net();
    let outs = run(&g, vec![image()]).unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[0].shape(), &[1, 3]);
    assert_eq!(fv(&outs[0]), [6.5, 12.5, 18.5]);
    // An intermediate value that is also consumed later can be a graph output.
    assert_eq!(outs[1].shape(), &[1, 2, 1, 1]);
    assert_eq!(fv(&outs[1]), [6.0, 0.0]);
}

#[test]
fn run_matches_eval_op_step_by_step() {
    let g = small_net();
    let mut rng = Rng::new(5);
    let x = rng.tensor(&[1, 1, 3, 3]);
    let outs = run(&g, vec![x.clone()]).unwrap();
    // Re-evaluate node by node with eval_op.
    let mut vals: std::collections::HashMap<lnc_ir::NodeId, lnc_ir::Tensor> =
        std::collections::HashMap::new();
    for id in g.topo_order().unwrap() {
        let node = g.node(id);
        let t = match &node.op {
            Op::Input => x.clone(),
            Op::Const(c) => g.const_tensor(*c).clone(),
            op => {
                let ins: Vec<_> = g
                    .node_inputs(id)
                    .iter()
                    .map(|v| vals[&v.node].clone())
                    .collect();
                let refs: Vec<_> = ins.iter().collect();
                lnc_ir::interp::eval_op(op, &refs, &node.outputs)
                    .unwrap()
                    .remove(0)
            }
        };
        vals.insert(id, t);
    }
    let y = g.outputs()[0].value.node;
    assert!(outs[0].bit_eq(&vals[&y]));
}

#[test]
fn graph_outputs_may_be_inputs_consts_or_repeated() {
    let mut g = Graph::new("g");
    let x = g
        .add_input("x", TensorType::new(DType::I8, vec![2]))
        .unwrap();
    let c = g.add_const("c", int(DType::I8, &[2], &[1, 2]));
    let s = g.add("sum", Op::Binary(BinaryOp::Add), &[x, c]).unwrap();
    g.add_output("s", s);
    g.add_output("x", x);
    g.add_output("c", c);
    g.add_output("s_again", s);
    let outs = run(&g, vec![int(DType::I8, &[2], &[127, -3])]).unwrap();
    assert_eq!(iv(&outs[0]), [-128, -1]);
    assert_eq!(iv(&outs[1]), [127, -3]);
    assert_eq!(iv(&outs[2]), [1, 2]);
    assert_eq!(iv(&outs[3]), [-128, -1]);
}

#[test]
fn dead_nodes_are_not_evaluated() {
    let mut g = Graph::new("g");
    let x = g
        .add_input("x", TensorType::new(DType::I32, vec![1]))
        .unwrap();
    let zero = g.add_const("zero", int(DType::I32, &[1], &[0]));
    let _dead = g
        .add("div0", Op::Binary(BinaryOp::Div), &[x, zero])
        .unwrap();
    let y = g.add("neg", Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    g.add_output("y", y);
    assert_eq!(
        iv(&run(&g, vec![int(DType::I32, &[1], &[4])]).unwrap()[0]),
        [-4]
    );
}

#[test]
fn input_count_mismatch() {
    let g = small_net();
    let e = run(&g, vec![]).unwrap_err();
    assert!(
        matches!(&e, Error::Input(m) if m.contains("1 input") && m.contains("0 given")),
        "{e}"
    );
    let e = run(&g, vec![image(), image()]).unwrap_err();
    assert!(matches!(e, Error::Input(_)), "{e}");
}

#[test]
fn input_shape_and_dtype_mismatch_name_the_input() {
    let g = small_net();
    let e = run(&g, vec![f(&[1, 1, 3, 4], &[0.; 12])]).unwrap_err();
    assert!(
        matches!(&e, Error::Input(m) if m.contains("'x'") && m.contains("f32[1,1,3,3]")),
        "{e}"
    );
    let e = run(&g, vec![int(DType::I32, &[1, 1, 3, 3], &[0; 9])]).unwrap_err();
    assert!(
        matches!(&e, Error::Input(m) if m.contains("'x'") && m.contains("i32")),
        "{e}"
    );
}

#[test]
fn out_of_range_input_values_are_rejected() {
    let mut g = Graph::new("g");
    let x = g
        .add_input("q", TensorType::new(DType::U8, vec![2]))
        .unwrap();
    g.add_output("q", x);
    let bad = lnc_ir::Tensor::int_array(DType::U8, ndarray_vec(&[3, 256]));
    let e = run(&g, vec![bad]).unwrap_err();
    assert!(
        matches!(&e, Error::Input(m) if m.contains("'q'") && m.contains("256")),
        "{e}"
    );
}

fn ndarray_vec(v: &[i64]) -> ndarray::ArrayD<i64> {
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[v.len()]), v.to_vec()).unwrap()
}

#[test]
fn op_errors_name_the_node() {
    let mut g = Graph::new("g");
    let data = g.add_const("table", f(&[3, 2], &[1., 2., 3., 4., 5., 6.]));
    let idx = g
        .add_input("idx", TensorType::new(DType::I64, vec![2]))
        .unwrap();
    let y = g
        .add("lookup", Op::Gather { axis: 0 }, &[data, idx])
        .unwrap();
    let z = g
        .add(
            "total",
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![],
                keepdims: false,
            },
            &[y],
        )
        .unwrap();
    g.add_output("z", z);
    assert_eq!(
        fv(&run(&g, vec![int(DType::I64, &[2], &[-1, 0])]).unwrap()[0]),
        [14.0]
    );
    let e = run(&g, vec![int(DType::I64, &[2], &[0, 3])]).unwrap_err();
    match &e {
        Error::Node { node, op, msg } => {
            assert_eq!(node, "lookup");
            assert_eq!(op, "gather");
            assert!(msg.contains("out of range"), "{msg}");
        }
        other => panic!("unexpected error {other}"),
    }
}
