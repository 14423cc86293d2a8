//! The CPU backend without a C compiler: snapshots of the generated C for a small model,
//! determinism, the memory plan, and errors that name the node.

use lnc_backends::c::{emit, Isa, Options};
use lnc_ir::cpu::{kernel_histogram, lower, Kernel, Storage};
use lnc_ir::{
    Activation, BinaryOp, Conv2d, DType, Epilogue, Graph, Op, Pool2d, Residual, Tensor, TensorType,
};

fn conv(k: usize, s: usize, p: usize, group: usize) -> Conv2d {
    Conv2d {
        kernel: [k, k],
        strides: [s, s],
        pads: [p; 4],
        dilations: [1, 1],
        group,
    }
}

fn weights(name: &str, g: &mut Graph, shape: &[usize], seed: u32) -> lnc_ir::Value {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 17) as f32 / 17.0
                - 0.5
        })
        .collect();
    g.add_const(name, Tensor::from_f32(shape, v).unwrap())
}

/// conv 3x3/2 -> fused dw 3x3 -> two 1x1 branches concatenated -> max pool -> residual
/// fused 1x1 -> classifier.
fn small_model() -> Graph {
    let mut g = Graph::new("small");
    let x = g
        .add_input("x", TensorType::f32(vec![1, 3, 16, 16]))
        .unwrap();
    let w0 = weights("w0", &mut g, &[8, 3, 3, 3], 1);
    let b0 = weights("b0", &mut g, &[8], 2);
    let c0 = g
        .add("c0", Op::Conv(conv(3, 2, 1, 1)), &[x, w0, b0])
        .unwrap();
    let r0 = g.add("r0", Op::Clip { min: 0.0, max: 6.0 }, &[c0]).unwrap();
    let w1 = weights("w1", &mut g, &[8, 1, 3, 3], 3);
    let b1 = weights("b1", &mut g, &[8], 4);
    let dw = g
        .add(
            "dw",
            Op::FusedConv {
                conv: conv(3, 1, 1, 8),
                epilogue: Epilogue {
                    act: Activation::HardSwish,
                    residual: Residual::None,
                },
            },
            &[r0, w1, b1],
        )
        .unwrap();
    let wa = weights("wa", &mut g, &[4, 8, 1, 1], 5);
    let wb = weights("wb", &mut g, &[12, 8, 1, 1], 6);
    let a = g.add("a", Op::Conv(conv(1, 1, 0, 1)), &[dw, wa]).unwrap();
    let b = g.add("b", Op::Conv(conv(1, 1, 0, 1)), &[dw, wb]).unwrap();
    let cat = g.add("cat", Op::Concat { axis: 1 }, &[a, b]).unwrap();
    let mp = g
        .add(
            "mp",
            Op::MaxPool(Pool2d {
                kernel: [2, 2],
                strides: [2, 2],
                pads: [0; 4],
                dilations: [1, 1],
                ceil_mode: false,
            }),
            &[cat],
        )
        .unwrap();
    let w2 = weights("w2", &mut g, &[16, 16, 1, 1], 7);
    let b2 = weights("b2", &mut g, &[16], 8);
    let res = g
        .add(
            "res",
            Op::FusedConv {
                conv: conv(1, 1, 0, 1),
                epilogue: Epilogue {
                    act: Activation::Relu,
                    residual: Residual::BeforeAct,
                },
            },
            &[mp, w2, b2, mp],
        )
        .unwrap();
    let wc = weights("wc", &mut g, &[5, 16], 9);
    let bc = weights("bc", &mut g, &[5], 10);
    let y = g
        .add(
            "fc",
            Op::Classifier {
                alpha: 1.0,
                beta: 1.0,
                trans_b: true,
            },
            &[res, wc, bc],
        )
        .unwrap();
    g.add_output("y", y);
    lnc_ir::verify::verify(&g).unwrap();
    g
}

fn opts(isa: Isa, threads: usize) -> Options {
    Options { isa, threads }
}

#[test]
fn generated_c_snapshot_fp32() {
    let g = small_model();
    let plan = lower(&g, 1).unwrap();
    let files = emit(&g, &plan, &opts(Isa::X86_64V3, 1)).unwrap();
    let keys: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Makefile",
            "lnc_kernels.c",
            "lnc_kernels.h",
            "lnc_runner.c",
            "model.c",
            "model.h",
            "weights.c"
        ]
    );
    insta::assert_snapshot!("small_model_c", files["model.c"]);
    insta::assert_snapshot!("small_model_h", files["model.h"]);
    insta::assert_snapshot!("small_makefile", files["Makefile"]);
}

#[test]
fn output_is_deterministic() {
    let a = emit(
        &small_model(),
        &lower(&small_model(), 2).unwrap(),
        &opts(Isa::Generic, 2),
    )
    .unwrap();
    let b = emit(
        &small_model(),
        &lower(&small_model(), 2).unwrap(),
        &opts(Isa::Generic, 2),
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn concat_inputs_are_written_in_place() {
    let g = small_model();
    let plan = lower(&g, 1).unwrap();
    // The two 1x1 branches write their channel slices of the concat buffer: no copy step.
    assert!(
        !plan.steps.iter().any(|s| s.node == "cat"),
        "{:?}",
        kernel_histogram(&plan)
    );
    let slice_of = |name: &str| {
        plan.values
            .iter()
            .find(|v| v.name == name)
            .map(|v| (v.storage, v.offset, v.strides.clone()))
            .unwrap()
    };
    let (sa, oa, ta) = slice_of("a");
    let (sb, ob, tb) = slice_of("b");
    assert_eq!(sa, sb);
    assert_eq!((oa, ob), (0, 4));
    assert_eq!(ta, tb);
    assert_eq!(ta[1], 1, "pixel-major");
    assert_eq!(ta[3], 16, "pixel stride is the concat's channel count");
}

#[test]
fn arena_reuses_dead_buffers() {
    // A chain of ten same-size convolutions needs two live buffers at a time.
    let mut g = Graph::new("chain");
    let mut v = g.add_input("x", TensorType::f32(vec![1, 8, 8, 8])).unwrap();
    for i in 0..10 {
        let w = weights(&format!("w{i}"), &mut g, &[8, 8, 3, 3], i);
        v = g
            .add(&format!("c{i}"), Op::Conv(conv(3, 1, 1, 1)), &[v, w])
            .unwrap();
    }
    g.add_output("y", v);
    let plan = lower(&g, 1).unwrap();
    let act = 8 * 8 * 8 * 4;
    let sum: usize = plan.buffers.iter().map(|b| b.elems * 4).sum();
    assert!(plan.arena_bytes < sum, "{} >= {sum}", plan.arena_bytes);
    // Two activations plus the im2col scratch of one convolution.
    let tmp = lnc_ir::cpu::DIRECT_ROWS * 72 * 4;
    assert!(plan.arena_bytes <= 2 * act + tmp, "{}", plan.arena_bytes);
    // Live ranges that overlap never share bytes.
    for (i, a) in plan.buffers.iter().enumerate() {
        for b in &plan.buffers[i + 1..] {
            let live = a.first <= b.last && b.first <= a.last;
            let (a0, a1) = (a.offset_bytes, a.offset_bytes + a.elems * 4);
            let (b0, b1) = (b.offset_bytes, b.offset_bytes + b.elems * 4);
            assert!(!(live && a0 < b1 && b0 < a1), "overlap");
        }
    }
}

#[test]
fn views_cost_no_steps() {
    // Transpose and Reshape of a row-major value are views; only the output copy runs.
    let mut g = Graph::new("views");
    let x = g.add_input("x", TensorType::f32(vec![2, 3, 4])).unwrap();
    let t = g
        .add(
            "t",
            Op::Transpose {
                perm: vec![2, 0, 1],
            },
            &[x],
        )
        .unwrap();
    let r = g.add("r", Op::Reshape { shape: vec![4, 6] }, &[x]).unwrap();
    let s = g.add("s", Op::Binary(BinaryOp::Add), &[r, r]).unwrap();
    g.add_output("t", t);
    g.add_output("s", s);
    let plan = lower(&g, 1).unwrap();
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s.kernel {
            Kernel::Copy { .. } => "copy",
            Kernel::Binary { .. } => "binary",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["binary", "copy", "copy"]);
    assert!(matches!(
        plan.values[plan.steps[1].reads[0]].storage,
        Storage::Input(0)
    ));
}

#[test]
fn unsupported_ops_are_errors_naming_the_node() {
    let mut g = Graph::new("q");
    let x = g.add_input("x", TensorType::f32(vec![1, 4])).unwrap();
    let s = g.add_const("s", Tensor::scalar_f32(0.5));
    let z = g.add_const("z", Tensor::from_int(DType::I8, &[], vec![0]).unwrap());
    let q = g
        .add("quant_me", Op::QuantizeLinear { axis: None }, &[x, s, z])
        .unwrap();
    g.add_output("q", q);
    let e = lower(&g, 1).unwrap_err().to_string();
    assert!(e.contains("quant_me"), "{e}");
    assert!(e.contains("quantize_linear"), "{e}");

    let mut g = Graph::new("r");
    let x = g.add_input("x", TensorType::f32(vec![1, 1, 4, 4])).unwrap();
    let y = g
        .add(
            "up",
            Op::Resize(lnc_ir::Resize {
                mode: lnc_ir::ResizeMode::Linear,
                coord: lnc_ir::CoordTransform::HalfPixel,
                nearest: lnc_ir::NearestMode::Floor,
                scales: vec![1.0, 1.0, 2.0, 2.0],
            }),
            &[x],
        )
        .unwrap();
    g.add_output("y", y);
    let e = lower(&g, 1).unwrap_err().to_string();
    assert!(e.contains("'up'") && e.contains("resize"), "{e}");
}

#[test]
fn loop_nests_beyond_six_dimensions_are_errors_naming_the_node() {
    // A rank-7 Add of a reversed Transpose view and a row-major input: no two dimensions
    // coalesce, and the runtime's nest loops index at most 6.
    let mut g = Graph::new("r7");
    let x = g.add_input("x", TensorType::f32(vec![2; 7])).unwrap();
    let y = g.add_input("y", TensorType::f32(vec![2; 7])).unwrap();
    let t = g
        .add(
            "t",
            Op::Transpose {
                perm: (0..7).rev().collect(),
            },
            &[x],
        )
        .unwrap();
    let z = g
        .add("add7", Op::Binary(lnc_ir::BinaryOp::Add), &[t, y])
        .unwrap();
    g.add_output("z", z);
    let e = match lower(&g, 1) {
        Err(e) => e.to_string(),
        Ok(plan) => emit(&g, &plan, &opts(Isa::X86_64V3, 1))
            .unwrap_err()
            .to_string(),
    };
    assert!(e.contains("add7") && e.contains("6 dimensions"), "{e}");
}

#[test]
fn bad_options_are_errors() {
    let g = small_model();
    let plan = lower(&g, 1).unwrap();
    assert!(emit(&g, &plan, &opts(Isa::Generic, 0)).is_err());
    assert!(Isa::parse("x86-64-v9").is_err());
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()).unwrap(), isa);
    }
}

#[test]
fn pointwise_feeding_depthwise_is_fused_over_rows() {
    // 1x1 expand -> 3x3 depthwise: one PwDw step, the expanded tensor takes no arena space.
    let mut g = Graph::new("block");
    let x = g
        .add_input("x", TensorType::f32(vec![1, 8, 16, 16]))
        .unwrap();
    let we = weights("we", &mut g, &[32, 8, 1, 1], 1);
    let e = g
        .add("expand", Op::Conv(conv(1, 1, 0, 1)), &[x, we])
        .unwrap();
    let wd = weights("wd", &mut g, &[32, 1, 3, 3], 2);
    let d = g.add("dw", Op::Conv(conv(3, 1, 1, 32)), &[e, wd]).unwrap();
    g.add_output("y", d);
    for threads in [1, 2] {
        let plan = lower(&g, threads).unwrap();
        let fused: Vec<&str> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::PwDw { .. }))
            .map(|s| s.node.as_str())
            .collect();
        assert_eq!(fused, ["dw"]);
        // The arena holds the NHWC copy of the input, the depthwise output and the ring,
        // not the expanded tensor.
        let out = 16 * 16 * 8 * 4 + 16 * 16 * 32 * 4;
        let ring = lnc_ir::cpu::pw_dw_ring_rows(3, 1, 1, 16, 16) * 16 * 32 * 4 * threads;
        assert_eq!(plan.arena_bytes, out + ring);
    }
}

// ----- the integer (QDQ) path -------------------------------------------------------------

#[path = "qdq/mod.rs"]
mod qdq;

#[test]
fn generated_c_snapshot_int8() {
    let g = qdq::qdq_net("qdq_small", 3, 12, false, DType::I8);
    let plan = lower(&g, 1).unwrap();
    let h = kernel_histogram(&plan);
    assert_eq!(h.get("qconv_depthwise"), Some(&3), "{h:?}");
    assert_eq!(h.get("qconv_pointwise"), Some(&5), "{h:?}");
    assert_eq!(h.get("qconv_direct"), Some(&4), "{h:?}");
    // The residual adds are one integer step each (no f32 Dequantize / Add / Quantize),
    // the plain ones and the one with a transposed operand.
    assert_eq!(h.get("qadd"), Some(&3), "{h:?}");
    assert_eq!(h.get("binary"), None, "{h:?}");
    // So is the squeeze-and-excitation product with its broadcast [1, C, 1, 1] operand,
    // and the pool of the map reads its bytes (the DequantizeLinear fused into it).
    assert_eq!(h.get("qmul"), Some(&1), "{h:?}");
    assert!(plan
        .steps
        .iter()
        .any(|s| matches!(s.kernel, Kernel::GlobalPool { dq: Some(_), .. })));
    // The quantized HardSwish (DQ, HardSigmoid, Q, DQ, Mul, Q) is one table lookup, and
    // so is each requantization of a Concat input (Q(DQ(x)) with other parameters) and
    // the block's Sigmoid.
    assert_eq!(h.get("qlut"), Some(&5), "{h:?}");
    // The integer Concats are views: their inputs (convolutions, tables, max pools) write
    // their slices in place; no step copies bytes.
    let byte_copies = plan.steps.iter().filter(|s| {
        matches!(&s.kernel, Kernel::Copy { x, .. }
            if plan.values[*x].elem != lnc_ir::cpu::Elem::F32)
    });
    assert_eq!(byte_copies.count(), 0);
    assert_eq!(h.get("unary"), None, "{h:?}");
    // The 2x2/2 conv of a channel Split view reads its fields in place although the view's
    // pixels hold 12 channels 48 bytes apart (runs of one pixel each): the split map is
    // itself written into the integer Concat's buffer (24 + 24 channels).
    let strided_in_place = plan.steps.iter().any(|s| {
        matches!(&s.kernel, Kernel::Quant(lnc_ir::cpu::quant::QKernel::Conv(c))
            if c.win.is_some_and(|w| !w.copy && w.pix == 4 * c.geom.c && c.geom.c == 12))
    });
    assert!(
        strided_in_place,
        "no in-place window on a strided Split view"
    );
    let files = emit(&g, &plan, &opts(Isa::X86_64V3, 1)).unwrap();
    assert!(files.contains_key("lnc_qkernels.c") && files.contains_key("lnc_qkernels.h"));
    // The residual stream (conv -> depthwise -> depthwise -> pointwise) is stored with its
    // channels reordered so that fewer vpmaddubsw pairs need splitting (the bit-exact
    // tests in cpu_backend.rs run this network, so the relabelling is checked end to end).
    assert!(
        files["model.c"].contains("reordered for the int8 GEMM's pairs"),
        "no channel order chosen"
    );
    assert!(files["Makefile"].contains("lnc_qkernels.o"));
    assert!(files["Makefile"].contains("-ffp-contract=off"));
    insta::assert_snapshot!("qdq_model_c", files["model.c"]);
    // The packed integer segments (weights.c's index comment) and the Makefile.
    let index: String = files["weights.c"]
        .lines()
        .take_while(|l| !l.starts_with(" */"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("qdq_weights_index", index);
    insta::assert_snapshot!("qdq_makefile", files["Makefile"]);
    // Byte buffers are counted in bytes: the arena is far below 4 bytes per element.
    let again = emit(&g, &lower(&g, 1).unwrap(), &opts(Isa::X86_64V3, 1)).unwrap();
    assert_eq!(files, again);
}

#[test]
fn integer_graph_io_and_non_constant_weights_are_errors_naming_the_node() {
    // An integer graph input.
    let mut g = Graph::new("qi");
    let x = g
        .add_input("xq", TensorType::new(DType::U8, vec![1, 4]))
        .unwrap();
    let s = g.add_const("s", Tensor::scalar_f32(0.5));
    let z = g.add_const("z", Tensor::from_int(DType::U8, &[], vec![3]).unwrap());
    let d = g
        .add("deq", Op::DequantizeLinear { axis: None }, &[x, s, z])
        .unwrap();
    g.add_output("d", d);
    let e = lower(&g, 1).unwrap_err().to_string();
    assert!(e.contains("xq") && e.contains("f32 inputs only"), "{e}");

    // A per-axis (non-scalar) activation scale.
    let mut g = Graph::new("qa");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 2, 2])).unwrap();
    let s = g.add_const("s", Tensor::from_f32(&[2], vec![0.5, 0.25]).unwrap());
    let z = g.add_const("z", Tensor::from_int(DType::U8, &[2], vec![3, 4]).unwrap());
    let q = g
        .add(
            "per_axis_q",
            Op::QuantizeLinear { axis: Some(1) },
            &[x, s, z],
        )
        .unwrap();
    let s2 = g.add_const("s2", Tensor::scalar_f32(0.5));
    let z2 = g.add_const("z2", Tensor::from_int(DType::U8, &[], vec![3]).unwrap());
    let d = g
        .add("deq", Op::DequantizeLinear { axis: None }, &[q, s2, z2])
        .unwrap();
    g.add_output("d", d);
    let e = lower(&g, 1).unwrap_err().to_string();
    assert!(e.contains("per_axis_q") && e.contains("per-tensor"), "{e}");
}
