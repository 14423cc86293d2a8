//! Export tests: `import(export(g))` reproduces hand-built graphs (same node names, ops,
//! attributes, bit-exact constants, edges and outputs); what ONNX cannot express is an error
//! naming the node; ONNX Runtime accepts the files and computes what the interpreter does.

mod common;

use lnc_frontend::{load_bytes, to_onnx_bytes, Error, LoadOptions};
use lnc_ir::*;
use std::collections::BTreeMap;

/// Deterministic pseudo-random f32 values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn cf(g: &mut Graph, name: &str, shape: &[usize], seed: u64) -> Value {
    let n = shape.iter().product();
    g.add_const(name, Tensor::from_f32(shape, values(n, seed)).unwrap())
}

fn ci(g: &mut Graph, name: &str, dtype: DType, shape: &[usize], v: Vec<i64>) -> Value {
    g.add_const(name, Tensor::from_int(dtype, shape, v).unwrap())
}

fn conv2d(k: usize, s: usize, p: usize, group: usize) -> Conv2d {
    Conv2d {
        kernel: [k, k],
        strides: [s, s],
        pads: [p; 4],
        dilations: [1, 1],
        group,
    }
}

/// Conv / BN / Relu / Add / Concat / Split / Slice / Reshape / Transpose / Gemm / Softmax /
/// Resize / QuantizeLinear / DequantizeLinear.
fn kitchen_sink() -> Graph {
    let mut g = Graph::new("kitchen_sink");
    let x = g.add_input("x", TensorType::f32(vec![1, 3, 8, 8])).unwrap();
    let w = cf(&mut g, "conv.w", &[4, 3, 3, 3], 1);
    let b = cf(&mut g, "conv.b", &[4], 2);
    let c = g
        .add("conv", Op::Conv(conv2d(3, 1, 1, 1)), &[x, w, b])
        .unwrap();
    let bn_s = cf(&mut g, "bn.scale", &[4], 3);
    let bn_b = cf(&mut g, "bn.bias", &[4], 4);
    let bn_m = cf(&mut g, "bn.mean", &[4], 5);
    let bn_v = g.add_const(
        "bn.var",
        Tensor::from_f32(&[4], vec![0.5, 1.0, 1.5, 2.0]).unwrap(),
    );
    let bn = g
        .add(
            "bn",
            Op::BatchNorm { epsilon: 1e-3 },
            &[c, bn_s, bn_b, bn_m, bn_v],
        )
        .unwrap();
    let r = g.add("relu", Op::Unary(UnaryOp::Relu), &[bn]).unwrap();
    let a = g.add("add", Op::Binary(BinaryOp::Add), &[r, bn]).unwrap();
    let sp = g
        .add_node(
            "split",
            Op::Split {
                axis: 1,
                sizes: vec![1, 3],
            },
            &[a],
        )
        .unwrap();
    let (s0, s1) = (Value { node: sp, port: 0 }, Value { node: sp, port: 1 });
    let cat = g.add("concat", Op::Concat { axis: 1 }, &[s1, s0]).unwrap();
    let sl = g
        .add(
            "slice",
            Op::Slice {
                axes: vec![
                    SliceAxis {
                        axis: 2,
                        start: 0,
                        end: 8,
                        step: 2,
                    },
                    SliceAxis {
                        axis: 3,
                        start: 7,
                        end: -1,
                        step: -2,
                    },
                ],
            },
            &[cat],
        )
        .unwrap();
    let rs = g
        .add("reshape", Op::Reshape { shape: vec![1, 64] }, &[sl])
        .unwrap();
    let gw = cf(&mut g, "fc.w", &[10, 64], 6);
    let gb = cf(&mut g, "fc.b", &[10], 7);
    let gm = g
        .add(
            "fc",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            },
            &[rs, gw, gb],
        )
        .unwrap();
    let sm = g
        .add(
            "softmax",
            Op::Softmax {
                axis: 1,
                coerce_2d: false,
                log: false,
            },
            &[gm],
        )
        .unwrap();
    let qs = g.add_const("q.scale", Tensor::scalar_f32(1.0 / 255.0));
    let qz = ci(&mut g, "q.zp", DType::U8, &[], vec![0]);
    let q = g
        .add("quant", Op::QuantizeLinear { axis: None }, &[sm, qs, qz])
        .unwrap();
    let dq = g
        .add("dequant", Op::DequantizeLinear { axis: None }, &[q, qs, qz])
        .unwrap();
    let resize = Resize {
        mode: ResizeMode::Nearest,
        coord: CoordTransform::Asymmetric,
        nearest: NearestMode::Floor,
        scales: vec![1.0, 1.0, 2.0, 2.0],
    };
    let up = g.add("upsample", Op::Resize(resize), &[cat]).unwrap();
    let tr = g
        .add(
            "transpose",
            Op::Transpose {
                perm: vec![0, 2, 3, 1],
            },
            &[up],
        )
        .unwrap();
    g.add_output("probs", dq);
    g.add_output("features", tr);
    g
}

/// Clip / Pad / Reduce / pooling / Gather / Expand / Cast / activations / QONNX ops.
fn qonnx_and_friends() -> Graph {
    let mut g = Graph::new("qonnx_and_friends");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 6, 6])).unwrap();
    let s = g.add_const("qs", Tensor::scalar_f32(0.125));
    let z = g.add_const("qz", Tensor::scalar_f32(0.0));
    let q = g
        .add(
            "q4",
            Op::Quant {
                bits: 4,
                signed: true,
                narrow: false,
                rounding: RoundingMode::Round,
            },
            &[x, s, z],
        )
        .unwrap();
    let w = cf(&mut g, "w", &[2, 1, 3, 3], 9);
    let wq = g
        .add(
            "wq",
            Op::Quant {
                bits: 2,
                signed: true,
                narrow: true,
                rounding: RoundingMode::RoundHalfUp,
            },
            &[w, s, z],
        )
        .unwrap();
    let c = g
        .add("dwconv", Op::Conv(conv2d(3, 1, 1, 2)), &[q, wq])
        .unwrap();
    let t = g
        .add(
            "trunc",
            Op::Trunc {
                in_bits: 8,
                out_bits: 4,
                rounding: RoundingMode::Floor,
                signed: true,
                narrow: false,
            },
            &[c, s, z],
        )
        .unwrap();
    let bq = g.add("bipolar", Op::BipolarQuant, &[t, s]).unwrap();
    let cl = g
        .add("clip", Op::Clip { min: 0.0, max: 6.0 }, &[bq])
        .unwrap();
    let cl2 = g
        .add(
            "clip_hi",
            Op::Clip {
                min: f64::NEG_INFINITY,
                max: 1.0,
            },
            &[cl],
        )
        .unwrap();
    let pd = g
        .add(
            "pad",
            Op::Pad {
                pads: vec![0, 0, 1, 1, 0, 0, 1, 1],
                mode: PadMode::Constant,
                value: 0.5,
            },
            &[cl2],
        )
        .unwrap();
    let pool = Pool2d {
        kernel: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        ceil_mode: true,
    };
    let mp = g.add("maxpool", Op::MaxPool(pool.clone()), &[pd]).unwrap();
    let ap = g
        .add(
            "avgpool",
            Op::AveragePool {
                pool,
                count_include_pad: true,
            },
            &[pd],
        )
        .unwrap();
    let hs = g
        .add("hswish", Op::Unary(UnaryOp::HardSwish), &[mp])
        .unwrap();
    let lr = g.add("leaky", Op::LeakyRelu { alpha: 0.2 }, &[ap]).unwrap();
    let hsg = g
        .add(
            "hsig",
            Op::HardSigmoid {
                alpha: 0.25,
                beta: 0.5,
            },
            &[lr],
        )
        .unwrap();
    let m = g.add("mul", Op::Binary(BinaryOp::Mul), &[hs, hsg]).unwrap();
    let slope = cf(&mut g, "slope", &[2, 1, 1], 10);
    let pr = g.add("prelu", Op::PRelu, &[m, slope]).unwrap();
    let rm = g
        .add(
            "rmean",
            Op::Reduce {
                kind: ReduceKind::Mean,
                axes: vec![2, 3],
                keepdims: true,
            },
            &[pr],
        )
        .unwrap();
    let rsum = g
        .add(
            "rsum",
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![1],
                keepdims: false,
            },
            &[pr],
        )
        .unwrap();
    let rmax = g
        .add(
            "rmax",
            Op::Reduce {
                kind: ReduceKind::Max,
                axes: vec![],
                keepdims: false,
            },
            &[pr],
        )
        .unwrap();
    let gap = g.add("gap", Op::GlobalAveragePool, &[pr]).unwrap();
    let gmp = g.add("gmp", Op::GlobalMaxPool, &[pr]).unwrap();
    let mx = g
        .add("max", Op::Binary(BinaryOp::Max), &[gap, gmp])
        .unwrap();
    let sub = g.add("sub", Op::Binary(BinaryOp::Sub), &[mx, rm]).unwrap();
    let idx = ci(&mut g, "idx", DType::I64, &[3], vec![1, 0, -1]);
    let ga = g
        .add("gather", Op::Gather { axis: 1 }, &[sub, idx])
        .unwrap();
    let ex = g
        .add(
            "expand",
            Op::Expand {
                shape: vec![2, 3, 4, 1],
            },
            &[ga],
        )
        .unwrap();
    let ls = g
        .add(
            "logsoftmax",
            Op::Softmax {
                axis: 1,
                coerce_2d: false,
                log: true,
            },
            &[ex],
        )
        .unwrap();
    let xi = g.add("cast", Op::Cast { to: DType::I32 }, &[rsum]).unwrap();
    let ab = g.add("abs", Op::Unary(UnaryOp::Abs), &[xi]).unwrap();
    let lin = Resize {
        mode: ResizeMode::Linear,
        coord: CoordTransform::HalfPixel,
        nearest: NearestMode::Floor,
        scales: vec![1.0, 1.0, 1.5, 0.5],
    };
    let rz = g.add("resize_linear", Op::Resize(lin), &[pd]).unwrap();
    let refl = g
        .add(
            "pad_reflect",
            Op::Pad {
                pads: vec![0, 0, 1, 0, 0, 0, 0, -1],
                mode: PadMode::Reflect,
                value: 2.0,
            },
            &[rz],
        )
        .unwrap();
    g.add_output("y", ls);
    g.add_output("resized", refl);
    g.add_output("ints", ab);
    g.add_output("rmax", rmax);
    g
}

/// Integer and QLinear ops, per-axis DequantizeLinear, ConvTranspose, MatMul.
fn integer_ops() -> Graph {
    let mut g = Graph::new("integer_ops");
    let x = g
        .add_input("x", TensorType::new(DType::U8, vec![1, 2, 5, 5]))
        .unwrap();
    let xs = g.add_const("xs", Tensor::scalar_f32(0.02));
    let xz = ci(&mut g, "xz", DType::U8, &[], vec![128]);
    let w = ci(
        &mut g,
        "w",
        DType::I8,
        &[3, 2, 3, 3],
        (0..54).map(|i| (i * 7 % 255) - 127).collect(),
    );
    let ws = g.add_const(
        "ws",
        Tensor::from_f32(&[3], vec![0.01, 0.02, 0.03]).unwrap(),
    );
    let wz = ci(&mut g, "wz", DType::I8, &[3], vec![0, 0, 0]);
    let ys = g.add_const("ys", Tensor::scalar_f32(0.1));
    let yz = ci(&mut g, "yz", DType::U8, &[], vec![10]);
    let bias = ci(&mut g, "bias", DType::I32, &[3], vec![-100, 0, 100]);
    let qc = g
        .add(
            "qconv",
            Op::QLinearConv(conv2d(3, 2, 1, 1)),
            &[x, xs, xz, w, ws, wz, ys, yz, bias],
        )
        .unwrap();
    let xz2 = ci(&mut g, "xz2", DType::U8, &[], vec![3]);
    let w2 = ci(
        &mut g,
        "w2",
        DType::U8,
        &[2, 3, 1, 1],
        vec![1, 2, 3, 4, 5, 6],
    );
    let wz2u = ci(&mut g, "wz2u", DType::U8, &[], vec![1]);
    let ci_ = g
        .add(
            "convint",
            Op::ConvInteger(conv2d(1, 1, 0, 1)),
            &[qc, w2, xz2, wz2u],
        )
        .unwrap();
    let dqs = g.add_const("dqs", Tensor::from_f32(&[2], vec![0.5, 0.25]).unwrap());
    let dqz = ci(&mut g, "dqz", DType::I32, &[2], vec![0, 1]);
    let dq = g
        .add(
            "dq_axis",
            Op::DequantizeLinear { axis: Some(1) },
            &[ci_, dqs, dqz],
        )
        .unwrap();
    let wt = cf(&mut g, "wt", &[2, 2, 2, 2], 11);
    let ct = ConvTranspose2d {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0, 1, 0, 1],
        dilations: [1, 1],
        group: 1,
        output_padding: [1, 0],
    };
    let dc = g.add("deconv", Op::ConvTranspose(ct), &[dq, wt]).unwrap();
    let rs = g
        .add(
            "flat",
            Op::Reshape {
                shape: vec![1, 2, 7, 4],
            },
            &[dc],
        )
        .unwrap();
    let mw = cf(&mut g, "mw", &[4, 3], 12);
    let mm = g.add("matmul", Op::MatMul, &[rs, mw]).unwrap();
    let a = ci(&mut g, "a", DType::U8, &[3, 2], vec![1, 2, 3, 4, 5, 6]);
    let a_in = g
        .add_input("a_in", TensorType::new(DType::U8, vec![2, 3]))
        .unwrap();
    let bz = ci(&mut g, "bz", DType::U8, &[], vec![2]);
    let mi = g
        .add("matmulint", Op::MatMulInteger, &[a_in, a, xz, bz])
        .unwrap();
    let qa_s = g.add_const("qa_s", Tensor::scalar_f32(0.5));
    let qm = g
        .add(
            "qmatmul",
            Op::QLinearMatMul,
            &[a_in, qa_s, xz, a, qa_s, bz, qa_s, yz],
        )
        .unwrap();
    g.add_output("mm", mm);
    g.add_output("qm", qm);
    g.add_output("mi", mi);
    g
}

type Edges = Vec<(String, u16)>;

/// Everything about a graph that a round trip must keep, keyed by node name. A constant
/// that is itself a graph output is exported as an initializer of the output's name, so it
/// is keyed by that name.
fn summary(g: &Graph) -> BTreeMap<String, (String, Vec<TensorType>, Edges)> {
    let key = |id: NodeId| -> String {
        let n = g.node(id);
        match n.op {
            Op::Const(_) => g
                .outputs()
                .iter()
                .find(|o| o.value.node == id)
                .map_or_else(|| n.name.clone(), |o| format!("={}", o.name)),
            _ => n.name.clone(),
        }
    };
    let mut m = BTreeMap::new();
    for id in g.node_ids() {
        let n = g.node(id);
        let op = match &n.op {
            Op::Const(c) => format!("const {:x}", g.const_tensor(*c).fingerprint()),
            op => format!("{op:?}"),
        };
        let ins = g
            .node_inputs(id)
            .iter()
            .map(|v| (key(v.node), v.port))
            .collect();
        m.insert(key(id), (op, n.outputs.clone(), ins));
    }
    m
}

/// Graph outputs with the node keys of [`summary`].
fn outputs(g: &Graph) -> Vec<(String, String, u16)> {
    let key = |o: &GraphOutput| match g.node(o.value.node).op {
        Op::Const(_) => format!("={}", o.name),
        _ => g.node(o.value.node).name.clone(),
    };
    g.outputs()
        .iter()
        .map(|o| (o.name.clone(), key(o), o.value.port))
        .collect()
}

fn round_trip(g: &Graph) -> Graph {
    lnc_ir::verify::verify(g).expect("test graph is valid");
    let bytes = to_onnx_bytes(g).expect("export");
    let back = load_bytes(&bytes, &LoadOptions::default()).expect("re-import");
    let (a, b) = (summary(g), summary(&back));
    for (name, sa) in &a {
        assert_eq!(
            Some(sa),
            b.get(name),
            "node '{name}' differs after the round trip"
        );
    }
    assert_eq!(
        a.len(),
        b.len(),
        "node sets differ: {:?} vs {:?}",
        a.keys(),
        b.keys()
    );
    assert_eq!(outputs(g), outputs(&back));
    let ins = |g: &Graph| {
        g.inputs()
            .iter()
            .map(|&i| g.node(i).name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ins(g), ins(&back));
    // Deterministic bytes.
    assert_eq!(bytes, to_onnx_bytes(g).unwrap());
    back
}

#[test]
fn round_trip_kitchen_sink() {
    round_trip(&kitchen_sink());
}

#[test]
fn round_trip_qonnx_and_friends() {
    round_trip(&qonnx_and_friends());
}

#[test]
fn round_trip_integer_ops() {
    round_trip(&integer_ops());
}

#[test]
fn round_trip_of_imported_fixtures_is_stable() {
    for stem in [
        "auto_pad_same_upper",
        "qdq_conv",
        "qonnx_quant",
        "legacy_opset9",
        "qlinear_ops",
        "opset18_inputs",
        "shufflenet_split",
        "misc_ops",
        "legacy_broadcast_opset6",
    ] {
        let g = common::load(stem).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let g = match stem {
            // Softmax coerced to 2-D off the last axis has no opset-17 form.
            "legacy_opset9" => {
                let err = to_onnx_bytes(&g).unwrap_err();
                assert!(
                    matches!(&err, Error::Node { node, .. } if node == "softmax2d"),
                    "{err}"
                );
                continue;
            }
            _ => g,
        };
        round_trip(&g);
    }
}

fn node_error(g: &Graph) -> (String, String, String) {
    match to_onnx_bytes(g) {
        Err(Error::Node { node, op, msg }) => (node, op, msg),
        other => panic!("expected a node error, got {other:?}"),
    }
}

#[test]
fn int4_constant_is_not_expressible() {
    let mut g = Graph::new("int4");
    let x = g.add_input("x", TensorType::f32(vec![2])).unwrap();
    let s = g.add_const("s", Tensor::scalar_f32(0.5));
    let z = ci(
        &mut g,
        "z4",
        DType::Int {
            bits: 4,
            signed: true,
        },
        &[],
        vec![0],
    );
    let q = g
        .add("q4", Op::QuantizeLinear { axis: None }, &[x, s, z])
        .unwrap();
    let d = g
        .add("dq4", Op::DequantizeLinear { axis: None }, &[q, s, z])
        .unwrap();
    g.add_output("y", d);
    let (node, _, msg) = node_error(&g);
    assert_eq!(node, "z4", "{msg}");
    assert!(msg.contains("i4"), "{msg}");
}

#[test]
fn coerced_softmax_and_dilated_average_pool_are_not_expressible() {
    let mut g = Graph::new("s");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 3, 3])).unwrap();
    let s = g
        .add(
            "sm",
            Op::Softmax {
                axis: 1,
                coerce_2d: true,
                log: false,
            },
            &[x],
        )
        .unwrap();
    g.add_output("y", s);
    assert_eq!(node_error(&g).0, "sm");

    let mut g = Graph::new("p");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 5, 5])).unwrap();
    let pool = Pool2d {
        kernel: [2, 2],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [2, 2],
        ceil_mode: false,
    };
    let p = g
        .add(
            "dil_pool",
            Op::AveragePool {
                pool,
                count_include_pad: false,
            },
            &[x],
        )
        .unwrap();
    g.add_output("y", p);
    let (node, op, _) = node_error(&g);
    assert_eq!((node.as_str(), op.as_str()), ("dil_pool", "average_pool"));
}

/// ONNX Runtime loads the exported files and, on the same input, computes what the
/// reference interpreter computes.
#[test]
fn onnx_runtime_accepts_exports_and_agrees_with_interpreter() {
    let Some(py) = common::python_with_onnx("onnx_runtime_accepts_exports") else {
        return;
    };
    let dir = common::scratch("ort_exports");
    let g = kitchen_sink();
    let path = dir.join("kitchen_sink.onnx");
    std::fs::write(&path, to_onnx_bytes(&g).unwrap()).unwrap();
    let x = values(3 * 64, 42);
    let raw: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("x.bin"), raw).unwrap();
    let script = r#"
import sys, numpy as np, onnx, onnxruntime as ort
d = sys.argv[1]
m = onnx.load(d + "/kitchen_sink.onnx")
onnx.checker.check_model(m, full_check=True)
s = ort.InferenceSession(d + "/kitchen_sink.onnx", providers=["CPUExecutionProvider"])
x = np.fromfile(d + "/x.bin", dtype=np.float32).reshape(1, 3, 8, 8)
for o, v in zip(s.get_outputs(), s.run(None, {"x": x})):
    np.asarray(v, dtype=np.float32).tofile(d + "/" + o.name + ".bin")
"#;
    let out = std::process::Command::new(&py)
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "onnxruntime rejected the export:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let input = Tensor::from_f32(&[1, 3, 8, 8], x).unwrap();
    let ours = match lnc_ir::interp::run(&g, vec![input]) {
        Ok(o) => o,
        Err(e) => {
            common::skip(
                "onnx_runtime_accepts_exports (numeric part)",
                &format!("interpreter: {e}"),
            );
            return;
        }
    };
    for (o, t) in g.outputs().iter().zip(&ours) {
        let bytes = std::fs::read(dir.join(format!("{}.bin", o.name))).unwrap();
        let theirs: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mine: Vec<f64> = t.to_f64_vec();
        assert_eq!(mine.len(), theirs.len(), "output {}", o.name);
        for (i, (a, b)) in mine.iter().zip(&theirs).enumerate() {
            assert!(
                (a - *b as f64).abs() <= 1e-4 + 1e-4 * a.abs(),
                "output {} [{i}]: lnc {a} vs ORT {b}",
                o.name
            );
        }
    }
}

#[test]
#[ignore = "development aid: writes the exports to target/test-scratch for inspection"]
fn write_exports() {
    let dir = common::scratch("exports");
    for (name, g) in [
        ("kitchen_sink", kitchen_sink()),
        ("integer_ops", integer_ops()),
        ("qonnx_and_friends", qonnx_and_friends()),
    ] {
        std::fs::write(dir.join(format!("{name}.onnx")), to_onnx_bytes(&g).unwrap()).unwrap();
    }
}
