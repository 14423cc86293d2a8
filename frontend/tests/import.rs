//! Import of the fixture models (`tests/data/*.onnx`, made by `make_fixtures.py`): the
//! imported graph structure (op histogram, resolved attributes) and, through the reference
//! interpreter, the numbers ONNX Runtime computed (hard-coded in `expected.rs`).

mod common;

#[path = "data/expected.rs"]
mod expected;

use common::{hist, histogram, load};
use lnc_frontend::{load_bytes, LoadOptions};
use lnc_ir::{Conv2d, Graph, Op, Tensor};

fn find<'g>(g: &'g Graph, name: &str) -> &'g lnc_ir::Node {
    g.node(
        g.node_by_name(name)
            .unwrap_or_else(|| panic!("no node '{name}'")),
    )
}

#[test]
fn legacy_broadcast_opset6_structure() {
    let g = load("legacy_broadcast_opset6").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("add", 1),
            ("const", 3),
            ("input", 1),
            ("mul", 1),
            ("relu", 1),
            ("sub", 1)
        ])
    );
    // B of `add_axis` ([3] at axis 1 of [1,3,2,2]) became a [3,1,1] constant.
    let add = g.node_by_name("add_axis").unwrap();
    let b = g.node_inputs(add)[1];
    assert_eq!(g.value_type(b).shape, vec![3, 1, 1]);
    // Initializers listed as graph inputs are constants, not inputs.
    assert_eq!(g.inputs().len(), 1);
}

#[test]
fn shufflenet_channel_split_folds_to_static_slices() {
    let g = load("shufflenet_split").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("concat", 1),
            ("const", 1),
            ("conv", 1),
            ("input", 1),
            ("relu", 1),
            ("reshape", 2),
            ("slice", 2),
            ("transpose", 1),
        ])
    );
    let Op::Slice { axes } = &find(&g, "slice_left").op else {
        panic!("not a slice")
    };
    assert_eq!(
        (axes[0].axis, axes[0].start, axes[0].end, axes[0].step),
        (1, 0, 2, 1)
    );
    let Op::Slice { axes } = &find(&g, "slice_right").op else {
        panic!("not a slice")
    };
    assert_eq!((axes[0].axis, axes[0].start, axes[0].end), (1, 2, 4));
    assert_eq!(
        find(&g, "reshape5").op,
        Op::Reshape {
            shape: vec![1, 2, 2, 3, 3]
        }
    );
    assert_eq!(
        find(&g, "reshape4").op,
        Op::Reshape {
            shape: vec![1, 4, 3, 3]
        }
    );
    // The symbolic batch dimension became 1.
    assert_eq!(
        g.value_type(lnc_ir::Value {
            node: g.inputs()[0],
            port: 0
        })
        .shape,
        vec![1, 4, 3, 3]
    );
}

#[test]
fn auto_pad_is_resolved_to_explicit_pads() {
    let g = load("auto_pad_same_upper").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("average_pool", 1),
            ("const", 2),
            ("conv", 1),
            ("input", 1),
            ("max_pool", 1)
        ])
    );
    // 6x5 input, k3 s2: out 3x3; total padding 1 (H) and 2 (W); SAME_UPPER puts the odd
    // one at the end.
    let conv = Conv2d {
        kernel: [3, 3],
        strides: [2, 2],
        pads: [0, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
    };
    assert_eq!(find(&g, "conv_same_upper").op, Op::Conv(conv));
    // k2 s1 SAME_LOWER: total 1 per axis, at the beginning.
    let Op::MaxPool(p) = &find(&g, "pool_same_lower").op else {
        panic!("not a max pool")
    };
    assert_eq!(p.pads, [1, 1, 0, 0]);
    let Op::AveragePool { pool, .. } = &find(&g, "avg_valid").op else {
        panic!("not an avg pool")
    };
    assert_eq!(pool.pads, [0; 4]);
}

#[test]
fn qdq_conv_keeps_quantized_weights() {
    let g = load("qdq_conv").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("const", 10),
            ("conv", 1),
            ("dequantize_linear", 4),
            ("input", 1),
            ("quantize_linear", 2),
            ("relu", 1)
        ])
    );
    assert_eq!(find(&g, "dq_w").op, Op::DequantizeLinear { axis: Some(0) });
    // The int8 weights stay int8 constants feeding DequantizeLinear.
    let w = g.node_inputs(g.node_by_name("dq_w").unwrap())[0];
    assert_eq!(g.const_value(w).unwrap().dtype, lnc_ir::DType::I8);
    // The bias DequantizeLinear had no zero point: an int32 zero of the scale's shape.
    let zp = g.node_inputs(g.node_by_name("dq_b").unwrap())[2];
    let zp = g.const_value(zp).unwrap();
    assert_eq!((zp.dtype, zp.shape()), (lnc_ir::DType::I32, &[4usize][..]));
}

#[test]
fn qonnx_ops_are_imported() {
    let g = load("qonnx_quant").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("add", 1),
            ("bipolar_quant", 1),
            ("const", 6),
            ("input", 1),
            ("matmul", 1),
            ("quant", 2),
            ("trunc", 1)
        ])
    );
    let Op::Quant {
        bits,
        signed,
        narrow,
        ..
    } = find(&g, "quant_w").op
    else {
        panic!("not a quant")
    };
    assert_eq!((bits, signed, narrow), (3, true, true));
    let Op::Trunc {
        in_bits,
        out_bits,
        rounding,
        ..
    } = find(&g, "trunc").op
    else {
        panic!("not a trunc")
    };
    assert_eq!(
        (in_bits, out_bits, rounding),
        (8, 4, lnc_ir::RoundingMode::Floor)
    );
}

#[test]
fn misc_ops_structure() {
    let g = load("misc_ops").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("add", 4),
            ("batch_norm", 1),
            ("clip", 1),
            ("const", 11),
            ("conv", 1),
            ("div", 1),
            ("gather", 1),
            ("gemm", 1),
            ("hard_swish", 1),
            ("identity", 1),
            ("input", 1),
            ("leaky_relu", 1),
            ("max", 1),
            ("pad", 1),
            ("reduce_mean", 1),
            ("reduce_sum", 1),
            ("reshape", 5),
            ("resize", 1),
            ("softmax", 1),
            ("split", 1),
        ])
    );
    assert_eq!(
        find(&g, "clip").op,
        Op::Clip {
            min: -1.0,
            max: 1.5
        }
    );
    let Op::Resize(r) = &find(&g, "resize").op else {
        panic!("not a resize")
    };
    assert_eq!(r.scales, vec![1.0, 1.0, 2.0, 2.0]);
    // 1-D conv became a 2-D conv with H = 1 between reshapes.
    let Op::Conv(c) = &find(&g, "conv1d").op else {
        panic!("not a conv")
    };
    assert_eq!((c.kernel, c.pads), ([1, 3], [0, 1, 0, 1]));
    assert!(
        g.node_by_name("conv1d/unsqueeze").is_some() && g.node_by_name("conv1d/squeeze").is_some()
    );
    assert_eq!(
        find(&g, "reduce_sum").op,
        Op::Reduce {
            kind: lnc_ir::ReduceKind::Sum,
            axes: vec![1, 3],
            keepdims: true
        }
    );
}

#[test]
fn legacy_opset9_structure() {
    let g = load("legacy_opset9").unwrap();
    let Op::Resize(r) = &find(&g, "upsample").op else {
        panic!("not a resize")
    };
    assert_eq!(
        (r.coord, r.nearest),
        (
            lnc_ir::CoordTransform::Asymmetric,
            lnc_ir::NearestMode::Floor
        )
    );
    assert_eq!(
        find(&g, "softmax2d").op,
        Op::Softmax {
            axis: 1,
            coerce_2d: true,
            log: false
        }
    );
    assert_eq!(
        find(&g, "clip6").op,
        Op::Clip {
            min: -0.5,
            max: 0.800000011920929
        }
    );
}

#[test]
fn opset18_inputs_become_attributes() {
    let g = load("opset18_inputs").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("input", 1),
            ("mul", 1),
            ("pad", 1),
            ("reduce_max", 1),
            ("reduce_mean", 1),
            ("reshape", 1),
            ("resize", 1),
            ("split", 1),
        ])
    );
    assert_eq!(
        find(&g, "split3").op,
        Op::Split {
            axis: 3,
            sizes: vec![3, 3, 2]
        }
    );
    let Op::Pad { pads, value, .. } = &find(&g, "pad_axes").op else {
        panic!("not a pad")
    };
    assert_eq!((pads.clone(), *value), (vec![0, 0, 0, 1, 0, 0, 0, 0], -1.0));
    let Op::Resize(r) = &find(&g, "resize").op else {
        panic!("not a resize")
    };
    // Sizes 5x7 from 3x4: scales chosen so that floor(in * scale) gives the size exactly.
    assert_eq!(
        g.node(g.node_by_name("resize").unwrap()).outputs[0].shape,
        vec![1, 2, 5, 7]
    );
    assert_eq!(r.scales[..2], [1.0, 1.0]);
    assert_eq!(
        find(&g, "rmax").op,
        Op::Reduce {
            kind: lnc_ir::ReduceKind::Max,
            axes: vec![1, 3],
            keepdims: false
        }
    );
}

#[test]
fn opset21_int4_weights() {
    let g = load("opset21_int4").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("const", 5),
            ("dequantize_linear", 2),
            ("input", 1),
            ("matmul", 1),
            ("quantize_linear", 1)
        ])
    );
    let w = g.node_inputs(g.node_by_name("dq_w4").unwrap())[0];
    assert_eq!(
        g.const_value(w).unwrap().dtype,
        lnc_ir::DType::Int {
            bits: 4,
            signed: true
        }
    );
    // The DequantizeLinear without zero point got an int4 zero of the scale's shape.
    let zp = g.node_inputs(g.node_by_name("dq_w4").unwrap())[2];
    assert_eq!(
        g.value_type(zp).dtype,
        lnc_ir::DType::Int {
            bits: 4,
            signed: true
        }
    );
    // Not expressible at opset 17: the export names the int4 constant.
    match lnc_frontend::to_onnx_bytes(&g) {
        Err(lnc_frontend::Error::Node { node, msg, .. }) => {
            assert!(node == "w4" && msg.contains("i4"), "{node}: {msg}")
        }
        other => panic!("expected a node error, got {other:?}"),
    }
}

#[test]
fn qlinear_ops_structure() {
    let g = load("qlinear_ops").unwrap();
    assert_eq!(
        histogram(&g),
        hist(&[
            ("add", 1),
            ("cast", 2),
            ("const", 19),
            ("conv_integer", 1),
            ("dequantize_linear", 2),
            ("input", 1),
            ("matmul_integer", 1),
            ("qlinear_conv", 1),
            ("qlinear_matmul", 1),
            ("quantize_linear", 1),
            ("reduce_sum", 1),
            ("reshape", 1),
        ])
    );
    // ConvInteger without zero points: scalar zeros of the operands' dtypes.
    let ins = g.node_inputs(g.node_by_name("conv_int").unwrap());
    assert_eq!(g.const_value(ins[2]).unwrap().to_i64_vec(), vec![0]);
    assert_eq!(g.value_type(ins[3]).dtype, lnc_ir::DType::U8);
}

#[test]
fn huge_constant_of_shape_is_not_materialised() {
    let t = std::time::Instant::now();
    let g = load("huge_constant_of_shape").unwrap();
    assert!(t.elapsed().as_secs() < 5, "import took {:?}", t.elapsed());
    assert_eq!(
        histogram(&g),
        hist(&[
            ("const", 1),
            ("expand", 1),
            ("input", 1),
            ("mul", 1),
            ("reduce_max", 1)
        ])
    );
    assert_eq!(
        find(&g, "big").op,
        Op::Expand {
            shape: vec![1 << 15, 1 << 15]
        }
    );
}

#[test]
fn input_shapes_override_symbolic_dims() {
    let mut opts = LoadOptions::default();
    opts.input_shapes.insert("x".into(), vec![1, 7]);
    let g = load_bytes(&common::bytes("bad_symbolic_dim"), &opts).unwrap();
    assert_eq!(
        g.value_type(lnc_ir::Value {
            node: g.inputs()[0],
            port: 0
        })
        .shape,
        vec![1, 7]
    );
}

#[test]
fn graph_is_deterministic() {
    let a = load("misc_ops").unwrap();
    let b = load("misc_ops").unwrap();
    let names = |g: &Graph| {
        g.node_ids()
            .iter()
            .map(|&i| g.node(i).name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
}

/// Every fixture with expected numbers: the interpreter on the imported graph matches ONNX
/// Runtime (or the numpy reference for QONNX).
#[test]
fn numeric_results_match_onnx_runtime() {
    for case in expected::CASES {
        let g = load(case.model).unwrap_or_else(|e| panic!("{}: {e}", case.model));
        let inputs: Vec<Tensor> = case
            .inputs
            .iter()
            .map(|(s, v)| Tensor::from_f32(s, v.to_vec()).unwrap())
            .collect();
        let outs = match lnc_ir::interp::run(&g, inputs) {
            Ok(o) => o,
            Err(e) => panic!("{}: interpreter failed: {e}", case.model),
        };
        assert_eq!(outs.len(), case.outputs.len(), "{}", case.model);
        for ((name, shape, want), got) in case.outputs.iter().zip(&outs) {
            assert_eq!(got.shape(), *shape, "{} output {name}", case.model);
            for (i, (a, b)) in got.to_f64_vec().iter().zip(want.iter()).enumerate() {
                let tol = case.atol as f64 + 1e-5 * (*b as f64).abs();
                assert!(
                    (a - *b as f64).abs() <= tol,
                    "{} output {name}[{i}]: lnc {a}, expected {b}",
                    case.model
                );
            }
        }
    }
}
