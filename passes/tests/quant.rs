//! The `quant` rule family: QDQ frames to integer ops.
//!
//! Each rule: a small QDQ graph in (random 8-bit weights, per-tensor or per-channel scales,
//! nonzero zero points), the expected ops out, and soundness with the interpreter: the
//! integer rewrites (`qdq-conv`, `qdq-gemm`) agree with the float QDQ graph within one
//! output quantization step and exactly on nearly every element; the exact rewrites
//! (`qlinear-matmul-conv`, `quantize-absorbs-*`) agree bit for bit.

mod common;

use common::{conv2d, h, hist, inputs, rewrite, Rng, B};
use lnc_ir::{DType, Graph, Op, Tensor, UnaryOp, Value};

/// Per-tensor (one value) or per-channel quantization parameters.
fn scalar_f32(b: &mut B, name: &str, v: f32) -> Value {
    b.g.add_const(name, Tensor::from_f32(&[], vec![v]).unwrap())
}

fn zp(b: &mut B, name: &str, dt: DType, v: i64) -> Value {
    b.g.add_const(name, Tensor::from_int(dt, &[], vec![v]).unwrap())
}

fn q(b: &mut B, name: &str, x: Value, s: f32, z: i64, dt: DType) -> Value {
    let s = scalar_f32(b, &format!("{name}.s"), s);
    let z = zp(b, &format!("{name}.z"), dt, z);
    b.op(name, Op::QuantizeLinear { axis: None }, &[x, s, z])
}

fn dq(b: &mut B, name: &str, x: Value, s: f32, z: i64) -> Value {
    let dt = b.g.value_type(x).dtype;
    let s = scalar_f32(b, &format!("{name}.s"), s);
    let z = zp(b, &format!("{name}.z"), dt, z);
    b.op(name, Op::DequantizeLinear { axis: None }, &[x, s, z])
}

/// A random i8 constant of `shape`.
fn weights(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|_| (rng.sym() * 127.0).round() as i64).collect();
    Tensor::from_int(DType::I8, shape, v).unwrap()
}

/// `DQ(W)` for a random i8 weight with `m` output channels along `axis` (per channel when
/// `per_channel`), returning the value and its scales.
fn dq_weight(
    b: &mut B,
    name: &str,
    shape: &[usize],
    axis: usize,
    per_channel: bool,
) -> (Value, Vec<f32>) {
    let t = weights(&mut b.rng, shape);
    let w = b.g.add_const(name, t);
    let m = shape[axis];
    let (s, z, a) = if per_channel {
        let sv: Vec<f32> = (0..m)
            .map(|_| 0.002 + 0.002 * (b.rng.sym() + 1.0))
            .collect();
        (
            b.g.add_const(
                &format!("{name}.s"),
                Tensor::from_f32(&[m], sv.clone()).unwrap(),
            ),
            b.g.add_const(
                &format!("{name}.z"),
                Tensor::from_int(DType::I8, &[m], vec![0; m]).unwrap(),
            ),
            (Some(axis), sv),
        )
    } else {
        let sv = 0.003f32;
        let s = scalar_f32(b, &format!("{name}.s"), sv);
        let z = zp(b, &format!("{name}.z"), DType::I8, 0);
        (s, z, (None, vec![sv; m]))
    };
    let v = b.op(
        &format!("{name}.dq"),
        Op::DequantizeLinear { axis: a.0 },
        &[w, s, z],
    );
    (v, a.1)
}

/// `DQ(int32 bias)` with scale `xs * ws[m]` (ONNX Runtime's quantizer).
fn dq_bias(b: &mut B, name: &str, xs: f32, ws: &[f32]) -> Value {
    let m = ws.len();
    let v: Vec<i64> = (0..m)
        .map(|_| (b.rng.sym() * 3000.0).round() as i64)
        .collect();
    let bq =
        b.g.add_const(name, Tensor::from_int(DType::I32, &[m], v).unwrap());
    let sv: Vec<f32> = ws.iter().map(|&w| xs * w).collect();
    let s =
        b.g.add_const(&format!("{name}.s"), Tensor::from_f32(&[m], sv).unwrap());
    let z = b.g.add_const(
        &format!("{name}.z"),
        Tensor::from_int(DType::I32, &[m], vec![0; m]).unwrap(),
    );
    b.op(
        &format!("{name}.dq"),
        Op::DequantizeLinear { axis: Some(0) },
        &[bq, s, z],
    )
}

const XS: f32 = 0.02;
const XZ: i64 = 131;
const YS: f32 = 0.05;

/// `x -> Q -> DQ -> conv(DQ(W), DQ(b)) [-> relu] -> Q -> DQ`.
fn qdq_conv(
    seed: u64,
    c: usize,
    m: usize,
    [k, stride, group]: [usize; 3],
    per_channel: bool,
    bias: bool,
) -> Graph {
    let mut b = B::new(seed);
    let x = b.input(&[1, c, 7, 7]);
    let xq = q(&mut b, "xq", x, XS, XZ, DType::U8);
    let xd = dq(&mut b, "xd", xq, XS, XZ);
    let (w, ws) = dq_weight(&mut b, "w", &[m, c / group, k, k], 0, per_channel);
    let mut ins = vec![xd, w];
    if bias {
        ins.push(dq_bias(&mut b, "b", XS, &ws));
    }
    let y = b.op("conv", Op::Conv(conv2d(k, stride, group)), &ins);
    let yq = q(&mut b, "yq", y, YS, 3, DType::U8);
    let yd = dq(&mut b, "yd", yq, YS, 3);
    b.finish(yd)
}

/// Integer rewrite soundness: every output element within one step `step` of the float
/// QDQ graph, and at most `frac` of them different at all.
fn assert_within_step(before: &Graph, after: &Graph, step: f32, frac: f64) {
    for s in 0..3 {
        let ins: Vec<Tensor> = inputs(before, s)
            .into_iter()
            .map(|t| {
                let v: Vec<f32> = t.as_f32().unwrap().iter().map(|v| v * 2.0).collect();
                Tensor::from_f32(t.shape(), v).unwrap()
            })
            .collect();
        let a = lnc_ir::interp::run(before, ins.clone()).unwrap();
        let b = lnc_ir::interp::run(after, ins).unwrap();
        for (x, y) in a.iter().zip(&b) {
            let (x, y) = (x.to_f64_vec(), y.to_f64_vec());
            let mut diff = 0usize;
            for (p, q) in x.iter().zip(&y) {
                assert!(
                    (p - q).abs() <= step as f64 * 1.0001,
                    "differ by more than one step: {p} vs {q}"
                );
                diff += (p != q) as usize;
            }
            assert!(
                diff as f64 <= frac * x.len() as f64,
                "{diff} of {} elements differ",
                x.len()
            );
            // Not a trivial graph: the outputs vary.
            assert!(x.iter().any(|&v| v != x[0]));
        }
    }
}

fn assert_exact(before: &Graph, after: &Graph) {
    for s in 0..3 {
        let ins = inputs(before, s);
        let a = lnc_ir::interp::run(before, ins.clone()).unwrap();
        let b = lnc_ir::interp::run(after, ins).unwrap();
        assert_eq!(a, b, "seed {s}");
    }
}

#[test]
fn rule_qdq_conv() {
    let want = h(&[
        ("quantize_linear", 1),
        ("qlinear_conv", 1),
        ("dequantize_linear", 1),
    ]);
    // (c, m, k, stride, group, per channel, bias): pointwise, 3x3 s2, depthwise, group conv.
    for (c, m, k, s, g, pc, bias) in [
        (8, 16, 1, 1, 1, false, true),
        (3, 8, 3, 2, 1, true, true),
        (8, 8, 3, 1, 8, true, true),
        (8, 8, 3, 2, 8, false, false),
        (8, 12, 3, 1, 4, true, true),
    ] {
        for seed in 0..2 {
            let g = qdq_conv(seed, c, m, [k, s, g], pc, bias);
            let out = rewrite(&g, &["qdq-conv"], &[]);
            assert_eq!(hist(&out), want, "{c} {m} {k} {s}");
            assert_within_step(&g, &out, YS, 0.01);
        }
    }
}

#[test]
fn rule_qdq_conv_keeps_what_it_cannot_lower() {
    // A 16-bit activation: the integer kernels take 8-bit values only.
    let mut b = B::new(0);
    let x = b.input(&[1, 4, 5, 5]);
    let xq = q(&mut b, "xq", x, XS, 0, DType::I16);
    let xd = dq(&mut b, "xd", xq, XS, 0);
    let (w, _) = dq_weight(&mut b, "w", &[4, 4, 1, 1], 0, false);
    let y = b.op("conv", Op::Conv(conv2d(1, 1, 1)), &[xd, w]);
    let yq = q(&mut b, "yq", y, YS, 0, DType::U8);
    let g = b.finish(yq);
    assert_eq!(hist(&rewrite(&g, &["qdq-conv"], &[]))["conv"], 1);
    // A float weight (not DQ): no frame.
    let mut b = B::new(0);
    let x = b.input(&[1, 4, 5, 5]);
    let xq = q(&mut b, "xq", x, XS, 0, DType::U8);
    let xd = dq(&mut b, "xd", xq, XS, 0);
    let y = b.conv("conv", xd, [4, 1, 1, 1], true);
    let yq = q(&mut b, "yq", y, YS, 0, DType::U8);
    let g = b.finish(yq);
    assert_eq!(hist(&rewrite(&g, &["qdq-conv"], &[]))["conv"], 1);
}

/// `x [1, K] -> Q -> DQ -> gemm(DQ(W), DQ(b)) -> Q -> DQ`.
fn qdq_gemm(seed: u64, k: usize, n: usize, trans_b: bool, per_channel: bool) -> Graph {
    let mut b = B::new(seed);
    let x = b.input(&[1, k]);
    let xq = q(&mut b, "xq", x, XS, 0, DType::U8);
    let xd = dq(&mut b, "xd", xq, XS, 0);
    let shape = if trans_b { [n, k] } else { [k, n] };
    let (w, ws) = dq_weight(
        &mut b,
        "w",
        &shape,
        if trans_b { 0 } else { 1 },
        per_channel,
    );
    let bias = dq_bias(&mut b, "b", XS, &ws);
    let y = b.op(
        "gemm",
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b,
        },
        &[xd, w, bias],
    );
    let yq = q(&mut b, "yq", y, YS, 128, DType::U8);
    let yd = dq(&mut b, "yd", yq, YS, 128);
    b.finish(yd)
}

#[test]
fn rule_qdq_gemm() {
    let want = h(&[
        ("quantize_linear", 1),
        ("reshape", 2),
        ("qlinear_conv", 1),
        ("dequantize_linear", 1),
    ]);
    for (trans_b, pc) in [(true, false), (false, true), (true, true)] {
        for seed in 0..2 {
            let g = qdq_gemm(seed, 40, 24, trans_b, pc);
            let out = rewrite(&g, &["qdq-gemm"], &[]);
            assert_eq!(hist(&out), want, "trans_b {trans_b}");
            assert_within_step(&g, &out, YS, 0.05);
        }
    }
}

#[test]
fn rule_qlinear_matmul_conv() {
    for seed in 0..3 {
        let mut b = B::new(seed);
        let x = b.input(&[3, 20]);
        let xq = q(&mut b, "xq", x, XS, 7, DType::U8);
        let t = weights(&mut b.rng, &[20, 6]);
        let w = b.g.add_const("w", t);
        let ws = scalar_f32(&mut b, "ws", 0.004);
        let wz = zp(&mut b, "wz", DType::I8, 2);
        let ys = scalar_f32(&mut b, "ys", 0.01);
        let yz = zp(&mut b, "yz", DType::I8, -3);
        let xs = scalar_f32(&mut b, "xs", XS);
        let xz = zp(&mut b, "xz", DType::U8, 7);
        let y = b.op("qmm", Op::QLinearMatMul, &[xq, xs, xz, w, ws, wz, ys, yz]);
        let g = b.finish(y);
        let out = rewrite(&g, &["qlinear-matmul-conv"], &["qlinear_matmul"]);
        assert_eq!(
            hist(&out),
            h(&[("quantize_linear", 1), ("reshape", 2), ("qlinear_conv", 1)])
        );
        assert_exact(&g, &out);
    }
}

/// `x -> act -> Q(scale, zp) -> DQ`.
fn act_q(act: Op, s: f32, z: i64, dt: DType) -> Graph {
    let mut b = B::new(1);
    let x = b.input(&[1, 4, 6, 6]);
    let a = b.op("act", act, &[x]);
    let yq = q(&mut b, "yq", a, s, z, dt);
    let yd = dq(&mut b, "yd", yq, s, z);
    b.finish(yd)
}

#[test]
fn rule_quantize_absorbs_relu() {
    let relu = Op::Unary(UnaryOp::Relu);
    let absorbed = h(&[("quantize_linear", 1), ("dequantize_linear", 1)]);
    for (z, dt) in [(0, DType::U8), (-128, DType::I8)] {
        let g = act_q(relu.clone(), 0.01, z, dt);
        let out = rewrite(&g, &["quantize-absorbs-relu"], &[]);
        assert_eq!(hist(&out), absorbed);
        assert_exact(&g, &out);
    }
    // Zero point above the minimum: the relu clamps where saturation does not.
    let g = act_q(relu, 0.01, 10, DType::U8);
    assert_eq!(
        hist(&rewrite(&g, &["quantize-absorbs-relu"], &[]))["relu"],
        1
    );
}

#[test]
fn rule_quantize_absorbs_clip() {
    let clip = Op::Clip { min: 0.0, max: 6.0 };
    let g = act_q(clip.clone(), 6.0 / 255.0, 0, DType::U8);
    let out = rewrite(&g, &["quantize-absorbs-clip"], &[]);
    assert_eq!(
        hist(&out),
        h(&[("quantize_linear", 1), ("dequantize_linear", 1)])
    );
    assert_exact(&g, &out);
    // The range reaches past 6: the clip is real.
    let g = act_q(clip, 0.05, 0, DType::U8);
    assert_eq!(
        hist(&rewrite(&g, &["quantize-absorbs-clip"], &[]))["clip"],
        1
    );
}

#[test]
fn rule_quantize_moves_integer() {
    let moves = [
        Op::Transpose {
            perm: vec![0, 2, 3, 1],
        },
        Op::Reshape {
            shape: vec![1, 2, 2, 36],
        },
        Op::MaxPool(lnc_ir::Pool2d {
            kernel: [3, 3],
            strides: [2, 2],
            pads: [1; 4],
            dilations: [1, 1],
            ceil_mode: false,
        }),
        Op::Concat { axis: 1 },
    ];
    for op in moves {
        for same in [true, false] {
            let mut b = B::new(2);
            let x = b.input(&[1, 4, 6, 6]);
            let xq = q(&mut b, "xq", x, XS, XZ, DType::U8);
            let xd = dq(&mut b, "xd", xq, XS, XZ);
            let ins = if matches!(op, Op::Concat { .. }) {
                let x2 = b.input(&[1, 4, 6, 6]);
                let x2q = q(&mut b, "x2q", x2, XS, XZ, DType::U8);
                let x2d = dq(&mut b, "x2d", x2q, XS, XZ);
                vec![xd, x2d]
            } else {
                vec![xd]
            };
            let y = b.op("move", op.clone(), &ins);
            let (ys, yz) = if same { (XS, XZ) } else { (XS * 2.0, XZ) };
            let yq = q(&mut b, "yq", y, ys, yz, DType::U8);
            let yd = dq(&mut b, "yd", yq, ys, yz);
            let g = b.finish(yd);
            let out = rewrite(&g, &["quantize-moves-integer"], &[]);
            let n_in = ins.len();
            let want = if same {
                h(&[
                    ("quantize_linear", n_in),
                    (op.name(), 1),
                    ("dequantize_linear", 1),
                ])
            } else {
                hist(&g)
            };
            assert_eq!(hist(&out), want, "{} same params {same}", op.name());
            assert_exact(&g, &out);
            if same {
                // The moved op reads bytes.
                let moved = out
                    .node_ids()
                    .into_iter()
                    .find(|&i| out.node(i).op.name() == op.name())
                    .unwrap();
                assert_eq!(out.node(moved).outputs[0].dtype, DType::U8);
            }
        }
    }
}

/// ONNX Runtime's QDQ Concat: each branch keeps its own quantization, the Concat runs in
/// float and one Q takes the output parameters of one branch. The Q distributes over the
/// Concat: the matching branch is used as is, the other (here i8 of another scale and zero
/// point) keeps a requantization `Q(DQ(b))`; the Concat reads bytes. No branch matching:
/// unchanged (a Q per branch would cost more than it saves).
#[test]
fn rule_quantize_distributes_over_concat() {
    for matching in [true, false] {
        let mut b = B::new(3);
        let x = b.input(&[1, 4, 6, 6]);
        let xq = q(&mut b, "xq", x, XS, XZ, DType::U8);
        let xd = dq(&mut b, "xd", xq, XS, XZ);
        let x2 = b.input(&[1, 3, 6, 6]);
        let x2q = q(&mut b, "x2q", x2, XS * 1.7, -9, DType::I8);
        let x2d = dq(&mut b, "x2d", x2q, XS * 1.7, -9);
        let y = b.op("cat", Op::Concat { axis: 1 }, &[xd, x2d]);
        let (ys, yz) = if matching { (XS, XZ) } else { (XS * 1.3, XZ) };
        let yq = q(&mut b, "yq", y, ys, yz, DType::U8);
        let yd = dq(&mut b, "yd", yq, ys, yz);
        let g = b.finish(yd);
        let out = rewrite(&g, &["quantize-moves-integer"], &[]);
        let want = if matching {
            h(&[
                ("quantize_linear", 3),
                ("concat", 1),
                ("dequantize_linear", 2),
            ])
        } else {
            hist(&g)
        };
        assert_eq!(hist(&out), want, "matching {matching}");
        assert_exact(&g, &out);
        if matching {
            let cat = out
                .node_ids()
                .into_iter()
                .find(|&i| out.node(i).op.name() == "concat")
                .unwrap();
            assert_eq!(out.node(cat).outputs[0].dtype, DType::U8);
            // The requantized branch: Q(DQ(the i8 tensor)).
            let rq = out.node_inputs(cat)[1].node;
            assert_eq!(out.node(rq).op.name(), "quantize_linear");
            let rq_in = out.node_inputs(rq)[0].node;
            assert_eq!(out.node(rq_in).op.name(), "dequantize_linear");
        }
    }
}
