//! Round-trip, error and robustness tests of the `.lnir` text form.

use super::{parse, print, PrintOptions};
use crate::dtype::{DType, Quant};
use crate::graph::{Graph, Value};
use crate::op::*;
use crate::tensor::Tensor;
use crate::types::TensorType;

fn f32c(g: &mut Graph, name: &str, shape: &[usize], seed: u32) -> Value {
    let n: usize = shape.iter().product();
    let vals = (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 250.0 - 2.0
        })
        .collect();
    g.add_const(name, Tensor::from_f32(shape, vals).unwrap())
}

fn intc(g: &mut Graph, name: &str, dtype: DType, shape: &[usize], vals: &[i64]) -> Value {
    let n: usize = shape.iter().product();
    let v: Vec<i64> = (0..n).map(|i| vals[i % vals.len()]).collect();
    g.add_const(name, Tensor::from_int(dtype, shape, v).unwrap())
}

fn scalar(g: &mut Graph, name: &str, v: f32) -> Value {
    g.add_const(name, Tensor::from_f32(&[], vec![v]).unwrap())
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

fn pool(k: usize, s: usize, ceil_mode: bool) -> Pool2d {
    Pool2d {
        kernel: [k, k],
        strides: [s, s],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode,
    }
}

/// A graph using every float op.
fn float_ops() -> Graph {
    let mut g = Graph::new("float ops/every \"op\"");
    let x = g.add_input("x", TensorType::f32([1, 4, 8, 8])).unwrap();
    let mut outs: Vec<Value> = Vec::new();
    let w = f32c(&mut g, "conv.w", &[4, 4, 3, 3], 1);
    let b = f32c(&mut g, "conv.b", &[4], 2);
    outs.push(
        g.add("/features/0/Conv", Op::Conv(conv2d(3, 1, 1, 1)), &[x, w, b])
            .unwrap(),
    );
    let dw = f32c(&mut g, "dw.w", &[4, 1, 3, 3], 3);
    let c = Conv2d {
        kernel: [3, 3],
        strides: [2, 1],
        pads: [1, 2, 0, 1],
        dilations: [2, 1],
        group: 4,
    };
    outs.push(g.add("dw", Op::Conv(c), &[x, dw]).unwrap());
    let tw = f32c(&mut g, "tw", &[4, 1, 2, 2], 4);
    let ct = ConvTranspose2d {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0, 1, 0, 1],
        dilations: [1, 1],
        group: 2,
        output_padding: [1, 1],
    };
    outs.push(g.add("deconv", Op::ConvTranspose(ct), &[x, tw]).unwrap());
    let bn: Vec<Value> = (0..4)
        .map(|i| f32c(&mut g, &format!("bn.{i}"), &[4], 10 + i))
        .collect();
    outs.push(
        g.add(
            "bn",
            Op::BatchNorm { epsilon: 1e-5 },
            &[x, bn[0], bn[1], bn[2], bn[3]],
        )
        .unwrap(),
    );
    use UnaryOp as U;
    for u in [
        U::Relu,
        U::Sigmoid,
        U::Tanh,
        U::HardSwish,
        U::Exp,
        U::Log,
        U::Sqrt,
        U::Neg,
        U::Abs,
        U::Floor,
        U::Ceil,
        U::Round,
        U::Reciprocal,
        U::Sign,
        U::Softplus,
        U::Softsign,
    ] {
        outs.push(g.add(&format!("{u:?}"), Op::Unary(u), &[x]).unwrap());
    }
    outs.push(g.add("lrelu", Op::LeakyRelu { alpha: 0.01 }, &[x]).unwrap());
    outs.push(g.add("elu", Op::Elu { alpha: 1.0 }, &[x]).unwrap());
    outs.push(
        g.add(
            "hsig",
            Op::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
            &[x],
        )
        .unwrap(),
    );
    outs.push(
        g.add("relu6", Op::Clip { min: 0.0, max: 6.0 }, &[x])
            .unwrap(),
    );
    outs.push(
        g.add(
            "clip_inf",
            Op::Clip {
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
            },
            &[x],
        )
        .unwrap(),
    );
    let slope = f32c(&mut g, "slope", &[4, 1, 1], 5);
    outs.push(g.add("prelu", Op::PRelu, &[x, slope]).unwrap());
    for (i, bop) in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
    ]
    .into_iter()
    .enumerate()
    {
        let rhs = if i % 2 == 0 { x } else { slope };
        outs.push(
            g.add(&format!("bin{i}"), Op::Binary(bop), &[x, rhs])
                .unwrap(),
        );
    }
    outs.push(g.add("cat", Op::Concat { axis: 1 }, &[x, x, x]).unwrap());
    let sp = g
        .add_node(
            "split",
            Op::Split {
                axis: 1,
                sizes: vec![1, 3],
            },
            &[x],
        )
        .unwrap();
    outs.push(Value { node: sp, port: 0 });
    let sp1 = Value { node: sp, port: 1 };
    outs.push(g.add("after_split", Op::Unary(U::Relu), &[sp1]).unwrap());
    let sl = Op::Slice {
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
                step: -1,
            },
        ],
    };
    outs.push(g.add("slice", sl, &[x]).unwrap());
    let flat = g
        .add(
            "flat",
            Op::Reshape {
                shape: vec![1, 256],
            },
            &[x],
        )
        .unwrap();
    outs.push(
        g.add(
            "nhwc",
            Op::Transpose {
                perm: vec![0, 2, 3, 1],
            },
            &[x],
        )
        .unwrap(),
    );
    let idx = intc(&mut g, "idx", DType::I64, &[2], &[3, -1]);
    outs.push(g.add("gather", Op::Gather { axis: 1 }, &[x, idx]).unwrap());
    let e = f32c(&mut g, "e", &[1, 4, 1, 1], 6);
    outs.push(
        g.add(
            "expand",
            Op::Expand {
                shape: vec![2, 4, 8, 8],
            },
            &[e],
        )
        .unwrap(),
    );
    outs.push(g.add("cast_i8", Op::Cast { to: DType::I8 }, &[x]).unwrap());
    outs.push(
        g.add(
            "cast_fix",
            Op::Cast {
                to: DType::Fixed {
                    bits: 8,
                    frac: -2,
                    signed: true,
                },
            },
            &[x],
        )
        .unwrap(),
    );
    let pad = Op::Pad {
        pads: vec![0, 0, 1, -1, 0, 0, 1, 2],
        mode: PadMode::Reflect,
        value: -0.0,
    };
    outs.push(g.add("pad", pad, &[x]).unwrap());
    outs.push(
        g.add(
            "pad_c",
            Op::Pad {
                pads: vec![0; 8],
                mode: PadMode::Constant,
                value: 1.5,
            },
            &[x],
        )
        .unwrap(),
    );
    outs.push(
        g.add(
            "pad_e",
            Op::Pad {
                pads: vec![0; 8],
                mode: PadMode::Edge,
                value: 0.0,
            },
            &[x],
        )
        .unwrap(),
    );
    outs.push(
        g.add("maxpool", Op::MaxPool(pool(2, 2, false)), &[x])
            .unwrap(),
    );
    let ap = Op::AveragePool {
        pool: pool(3, 2, true),
        count_include_pad: true,
    };
    outs.push(g.add("avgpool", ap, &[x]).unwrap());
    outs.push(g.add("gap", Op::GlobalAveragePool, &[x]).unwrap());
    outs.push(g.add("gmp", Op::GlobalMaxPool, &[x]).unwrap());
    for (i, kind) in [
        ReduceKind::Mean,
        ReduceKind::Sum,
        ReduceKind::Max,
        ReduceKind::Min,
    ]
    .into_iter()
    .enumerate()
    {
        let axes = if i == 3 { vec![] } else { vec![2, 3] };
        outs.push(
            g.add(
                &format!("reduce{i}"),
                Op::Reduce {
                    kind,
                    axes,
                    keepdims: i % 2 == 0,
                },
                &[x],
            )
            .unwrap(),
        );
    }
    let fc_w = f32c(&mut g, "fc.w", &[10, 256], 7);
    let fc_b = f32c(&mut g, "fc.b", &[10], 8);
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 0.5,
        trans_a: false,
        trans_b: true,
    };
    let logits = g.add("fc", gemm, &[flat, fc_w, fc_b]).unwrap();
    outs.push(logits);
    let mm_w = f32c(&mut g, "mm.w", &[8, 3], 9);
    outs.push(g.add("mm", Op::MatMul, &[x, mm_w]).unwrap());
    outs.push(
        g.add(
            "softmax",
            Op::Softmax {
                axis: 1,
                coerce_2d: false,
                log: false,
            },
            &[logits],
        )
        .unwrap(),
    );
    outs.push(
        g.add(
            "logsoftmax",
            Op::Softmax {
                axis: 1,
                coerce_2d: true,
                log: true,
            },
            &[logits],
        )
        .unwrap(),
    );
    let r = Resize {
        mode: ResizeMode::Nearest,
        coord: CoordTransform::Asymmetric,
        nearest: NearestMode::Floor,
        scales: vec![1.0, 1.0, 2.0, 2.0],
    };
    outs.push(g.add("up", Op::Resize(r), &[x]).unwrap());
    for (i, (coord, nearest)) in [
        (CoordTransform::HalfPixel, NearestMode::RoundPreferFloor),
        (
            CoordTransform::PytorchHalfPixel,
            NearestMode::RoundPreferCeil,
        ),
        (CoordTransform::AlignCorners, NearestMode::Ceil),
    ]
    .into_iter()
    .enumerate()
    {
        let r = Resize {
            mode: ResizeMode::Linear,
            coord,
            nearest,
            scales: vec![1.0, 1.0, 0.5, 1.5],
        };
        outs.push(g.add(&format!("resize{i}"), Op::Resize(r), &[x]).unwrap());
    }
    outs.push(g.add("id", Op::Identity, &[x]).unwrap());
    // QONNX
    let qs = scalar(&mut g, "q.scale", 0.125);
    let qz = scalar(&mut g, "q.zp", 0.0);
    let rounding = [
        RoundingMode::Round,
        RoundingMode::Floor,
        RoundingMode::Ceil,
        RoundingMode::Trunc,
        RoundingMode::RoundHalfUp,
    ];
    for (i, rounding) in rounding.into_iter().enumerate() {
        let q = Op::Quant {
            bits: 4,
            signed: i % 2 == 0,
            narrow: i == 1,
            rounding,
        };
        outs.push(g.add(&format!("quant{i}"), q, &[x, qs, qz]).unwrap());
    }
    outs.push(g.add("bipolar", Op::BipolarQuant, &[x, qs]).unwrap());
    let tr = Op::Trunc {
        in_bits: 8,
        out_bits: 4,
        rounding: RoundingMode::Floor,
        signed: true,
        narrow: false,
    };
    outs.push(g.add("trunc", tr, &[x, qs, qz]).unwrap());
    // The optimiser's fused ops, with every activation and residual position.
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::Clip { min: 0.0, max: 6.0 },
        Activation::HardSwish,
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::Sigmoid,
        Activation::Silu,
        Activation::LeakyRelu { alpha: 0.01 },
        Activation::PRelu,
    ];
    let slope = f32c(&mut g, "fused.slope", &[4, 1, 1], 90);
    for (i, act) in acts.into_iter().enumerate() {
        let residual = [Residual::None, Residual::BeforeAct, Residual::AfterAct][i % 3];
        let epilogue = Epilogue { act, residual };
        let mut ins = vec![x, w, b];
        if residual != Residual::None {
            ins.push(x);
        }
        if act.has_slope() {
            ins.push(slope);
        }
        let op = Op::FusedConv {
            conv: conv2d(3, 1, 1, 1),
            epilogue,
        };
        outs.push(g.add(&format!("fused{i}"), op, &ins).unwrap());
    }
    let pw = f32c(&mut g, "pw.w", &[4, 4, 1, 1], 91);
    let dwb = f32c(&mut g, "dw.b", &[4], 92);
    let dwpw = Op::DwPw {
        dw: conv2d(3, 1, 1, 4),
        dw_act: Activation::LeakyRelu { alpha: 0.5 },
        epilogue: Epilogue {
            act: Activation::HardSigmoid {
                alpha: 0.25,
                beta: 0.5,
            },
            residual: Residual::BeforeAct,
        },
    };
    outs.push(g.add("dwpw", dwpw, &[x, dw, dwb, pw, b, x]).unwrap());
    let fc = f32c(&mut g, "cls.w", &[3, 4], 93);
    let cls = Op::Classifier {
        alpha: 0.5,
        beta: 1.0,
        trans_b: true,
    };
    outs.push(g.add("cls", cls, &[x, fc]).unwrap());
    outs.push(
        g.add("shuffle", Op::ChannelShuffle { groups: 2 }, &[x])
            .unwrap(),
    );
    let map = vec![
        ChannelRef {
            input: 1,
            channel: 3,
        },
        ChannelRef {
            input: 0,
            channel: 0,
        },
    ];
    outs.push(g.add("map", Op::ChannelMap { map }, &[x, x]).unwrap());
    for (i, v) in outs.into_iter().enumerate() {
        g.add_output(&format!("out{i}"), v);
    }
    // An output named like its node (printed without `as`).
    g.add_output(
        "id",
        Value {
            node: g.node_by_name("id").unwrap(),
            port: 0,
        },
    );
    g
}

/// A graph using every integer / quantized op and every dtype.
fn int_ops() -> Graph {
    let mut g = Graph::new("int_ops");
    let xf = g.add_input("x.f", TensorType::f32([1, 4, 8, 8])).unwrap();
    let mut xq_ty = TensorType::new(DType::U8, [1, 4, 8, 8]);
    xq_ty.quant = Some(Quant {
        scale: vec![0.02],
        zero_point: vec![128],
        axis: None,
    });
    let xq = g.add_input("x:q", xq_ty).unwrap();
    let mut outs = Vec::new();
    let s = scalar(&mut g, "s", 0.05);
    let zp_i8 = intc(&mut g, "zp_i8", DType::I8, &[], &[-3]);
    let q = g
        .add("q", Op::QuantizeLinear { axis: None }, &[xf, s, zp_i8])
        .unwrap();
    g.node_mut(q.node).outputs[0].quant = Some(Quant {
        scale: vec![0.05],
        zero_point: vec![-3],
        axis: None,
    });
    outs.push(q);
    outs.push(
        g.add("dq", Op::DequantizeLinear { axis: None }, &[q, s, zp_i8])
            .unwrap(),
    );
    let s4 = f32c(&mut g, "s4", &[4], 20);
    let zp4 = intc(&mut g, "zp4", DType::U8, &[4], &[0, 1, 255, 7]);
    outs.push(
        g.add(
            "q_axis",
            Op::QuantizeLinear { axis: Some(1) },
            &[xf, s4, zp4],
        )
        .unwrap(),
    );
    let xs = scalar(&mut g, "xs", 0.02);
    let xzp = intc(&mut g, "xzp", DType::U8, &[], &[128]);
    let w = intc(
        &mut g,
        "w.q",
        DType::I8,
        &[4, 4, 3, 3],
        &[-128, 0, 5, 127, -7],
    );
    let mut wq = Quant {
        scale: vec![0.1, 0.2, 0.3, 0.4],
        zero_point: vec![0, 0, 0, 1],
        axis: Some(0),
    };
    g.node_mut(w.node).outputs[0].quant = Some(wq.clone());
    let ws = f32c(&mut g, "ws", &[4], 21);
    let wzp = intc(&mut g, "wzp", DType::I8, &[4], &[0]);
    let ys = scalar(&mut g, "ys", 0.04);
    let yzp = intc(&mut g, "yzp", DType::U8, &[], &[120]);
    let bias = intc(
        &mut g,
        "bias",
        DType::I32,
        &[4],
        &[i32::MIN as i64, -1, 0, i32::MAX as i64],
    );
    let c = Op::QLinearConv(conv2d(3, 1, 1, 1));
    outs.push(
        g.add(
            "qconv",
            c.clone(),
            &[xq, xs, xzp, w, ws, wzp, ys, yzp, bias],
        )
        .unwrap(),
    );
    outs.push(
        g.add("qconv_nobias", c, &[xq, xs, xzp, w, ws, wzp, ys, yzp])
            .unwrap(),
    );
    let a = intc(&mut g, "a", DType::U8, &[2, 3], &[1, 2, 3]);
    let b = intc(&mut g, "b", DType::I8, &[3, 4], &[-1, 2]);
    let azp = intc(&mut g, "azp", DType::U8, &[], &[0]);
    let bzp = intc(&mut g, "bzp", DType::I8, &[], &[0]);
    let yzp8 = intc(&mut g, "yzp8", DType::I8, &[], &[0]);
    outs.push(
        g.add(
            "qmm",
            Op::QLinearMatMul,
            &[a, xs, azp, b, xs, bzp, ys, yzp8],
        )
        .unwrap(),
    );
    let wzp1 = intc(&mut g, "wzp1", DType::I8, &[], &[0]);
    let w1x1 = w_1x1(&mut g);
    outs.push(
        g.add(
            "convint",
            Op::ConvInteger(conv2d(1, 1, 0, 1)),
            &[xq, w1x1, xzp, wzp1],
        )
        .unwrap(),
    );
    outs.push(
        g.add("mmint", Op::MatMulInteger, &[a, b, azp, bzp])
            .unwrap(),
    );
    // Integer unary / binary / cast / pool on other dtypes.
    let i16c = intc(&mut g, "i16", DType::I16, &[3], &[-32768, 0, 32767]);
    outs.push(g.add("abs16", Op::Unary(UnaryOp::Abs), &[i16c]).unwrap());
    let i64c = intc(&mut g, "i64", DType::I64, &[2], &[i64::MIN, i64::MAX]);
    outs.push(
        g.add("sum64", Op::Binary(BinaryOp::Add), &[i64c, i64c])
            .unwrap(),
    );
    outs.push(
        g.add(
            "clip_int",
            Op::Clip {
                min: -5.0,
                max: 5.0,
            },
            &[i64c],
        )
        .unwrap(),
    );
    outs.push(
        g.add(
            "cast_u3",
            Op::Cast {
                to: DType::Int {
                    bits: 3,
                    signed: false,
                },
            },
            &[i16c],
        )
        .unwrap(),
    );
    // Every dtype as a constant and as an input.
    let dtypes = [
        (DType::Bool, vec![0, 1]),
        (
            DType::Int {
                bits: 1,
                signed: true,
            },
            vec![-1, 0],
        ),
        (
            DType::Int {
                bits: 4,
                signed: true,
            },
            vec![-8, 7],
        ),
        (
            DType::Int {
                bits: 7,
                signed: false,
            },
            vec![0, 127],
        ),
        (DType::Bipolar, vec![-1, 1]),
        (DType::Ternary, vec![-1, 0, 1]),
        (
            DType::Fixed {
                bits: 8,
                frac: 3,
                signed: true,
            },
            vec![-128, 127],
        ),
        (
            DType::Fixed {
                bits: 16,
                frac: -4,
                signed: false,
            },
            vec![0, 65535],
        ),
        (
            DType::Fixed {
                bits: 64,
                frac: 0,
                signed: true,
            },
            vec![i64::MIN, i64::MAX],
        ),
        (
            DType::Fixed {
                bits: 1,
                frac: 7,
                signed: false,
            },
            vec![0, 1],
        ),
    ];
    for (i, (dt, vals)) in dtypes.iter().enumerate() {
        outs.push(intc(&mut g, &format!("dt{i}"), *dt, &[vals.len()], vals));
        let mut ty = TensorType::new(*dt, [2, vals.len()]);
        if i == 2 {
            ty.quant = Some(Quant {
                scale: vec![0.5, 0.25],
                zero_point: vec![0, -1],
                axis: Some(0),
            });
        }
        g.add_input(&format!("in{i}"), ty).unwrap();
    }
    // A shared pool entry referenced by two nodes, one with its own quant params.
    let wid = crate::graph::ConstId(g.node(w.node).op_const().unwrap());
    let w2 = g.add_const_node("w.q.again", wid).unwrap();
    wq.axis = Some(1);
    wq.zero_point = vec![1, 2, 3, 4];
    g.node_mut(w2.node).outputs[0].quant = Some(wq);
    outs.push(w2);
    for (i, v) in outs.into_iter().enumerate() {
        g.add_output(&format!("o{i}"), v);
    }
    g
}

fn w_1x1(g: &mut Graph) -> Value {
    intc(g, "w1x1", DType::I8, &[2, 4, 1, 1], &[1, -1])
}

trait OpConst {
    fn op_const(&self) -> Option<u32>;
}

impl OpConst for crate::graph::Node {
    fn op_const(&self) -> Option<u32> {
        match self.op {
            Op::Const(c) => Some(c.0),
            _ => None,
        }
    }
}

/// Structural equality: names, ops, types (with quant), edges, inputs, outputs, constants
/// (bit-exact).
fn assert_same(a: &Graph, b: &Graph) {
    assert_eq!(a.name, b.name);
    assert_eq!(a.num_nodes(), b.num_nodes());
    let names = |g: &Graph| {
        g.inputs()
            .iter()
            .map(|&i| g.node(i).name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(a), names(b));
    let outs = |g: &Graph| {
        g.outputs()
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    g.node(o.value.node).name.clone(),
                    o.value.port,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(outs(a), outs(b));
    assert_eq!(a.consts().len(), b.consts().len());
    for (x, y) in a.consts().iter().zip(b.consts()) {
        assert!(x.bit_eq(y), "constants differ: {x:?} vs {y:?}");
    }
    for id in a.node_ids() {
        let na = a.node(id);
        let bid = b
            .node_by_name(&na.name)
            .unwrap_or_else(|| panic!("node {} missing", na.name));
        let nb = b.node(bid);
        assert_eq!(na.op, nb.op, "op of {}", na.name);
        assert_eq!(na.outputs, nb.outputs, "types of {}", na.name);
        let ins = |g: &Graph, id| {
            g.node_inputs(id)
                .iter()
                .map(|v| (g.node(v.node).name.clone(), v.port))
                .collect::<Vec<_>>()
        };
        assert_eq!(ins(a, id), ins(b, bid), "inputs of {}", na.name);
    }
}

fn round_trip(g: &Graph) -> String {
    crate::verify::verify(g).unwrap();
    let text = print(g, &PrintOptions::default());
    let g2 = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_same(g, &g2);
    assert_eq!(print(&g2, &PrintOptions::default()), text);
    text
}

#[test]
fn round_trips_every_float_op() {
    let text = round_trip(&float_ops());
    // Every op name the parser knows is exercised by the two test graphs.
    let text2 = round_trip(&int_ops());
    for name in super::attrs::OP_NAMES {
        let needle = format!(" = {name}(");
        assert!(
            text.contains(&needle) || text2.contains(&needle),
            "op {name} not covered"
        );
    }
}

#[test]
fn round_trips_every_int_op_and_dtype() {
    let text = round_trip(&int_ops());
    for dt in [
        "bool",
        "i1[",
        "i4[",
        "u7[",
        "bipolar",
        "ternary",
        "fix8_3",
        "ufix16_-4",
        "fix64_0",
        "ufix1_7",
        "u3[",
    ] {
        assert!(text.contains(dt), "{dt} missing");
    }
    assert!(text.contains("quant(scale=[0.1, 0.2, 0.3, 0.4], zero_point=[0, 0, 0, 1], axis=0)"));
}

#[test]
fn round_trips_special_floats_bit_exactly() {
    let specials: Vec<f32> = vec![
        f32::NAN,
        f32::from_bits(0x7fc0_0001),
        f32::from_bits(0xffc0_0000),
        f32::from_bits(0x7f80_0001),
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        0.1,
        1e-7,
        123456789.0,
        1.0 / 3.0,
        16777217.0,
        -2.5e30,
    ];
    let mut g = Graph::new("specials");
    let n = specials.len();
    let x = g.add_input("x", TensorType::f32([n])).unwrap();
    let c = g.add_const("c", Tensor::from_f32(&[n], specials.clone()).unwrap());
    let y = g.add("y", Op::Binary(BinaryOp::Add), &[x, c]).unwrap();
    let clip = Op::Clip {
        min: f64::from_bits(0x7ff8_0000_0000_0001),
        max: -0.0,
    };
    let z = g.add("z", clip, &[y]).unwrap();
    let lr = g
        .add(
            "lr",
            Op::LeakyRelu {
                alpha: f32::from_bits(0xffc0_0000),
            },
            &[z],
        )
        .unwrap();
    g.add_output("y", y);
    g.add_output("out", lr);
    let text = print(&g, &PrintOptions::default());
    let g2 = parse(&text).unwrap();
    assert_eq!(print(&g2, &PrintOptions::default()), text);
    assert!(g.consts()[0].bit_eq(&g2.consts()[0]));
    let got = g2.consts()[0]
        .as_f32()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect::<Vec<_>>();
    assert_eq!(
        got,
        specials.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    match (
        &g2.node(g2.node_by_name("z").unwrap()).op,
        &g2.node(g2.node_by_name("lr").unwrap()).op,
    ) {
        (Op::Clip { min, max }, Op::LeakyRelu { alpha }) => {
            assert_eq!(min.to_bits(), 0x7ff8_0000_0000_0001);
            assert_eq!(max.to_bits(), (-0.0f64).to_bits());
            assert_eq!(alpha.to_bits(), 0xffc0_0000);
        }
        other => panic!("{other:?}"),
    }
    insta::assert_snapshot!(text);
}

#[test]
fn preserves_input_order_and_pool_order() {
    let mut g = Graph::new("order");
    // A constant created before the inputs, an unreferenced pool entry, inputs whose
    // graph order differs from the order their users appear in.
    let c = g.add_const("c", Tensor::from_f32(&[2], vec![1.0, 2.0]).unwrap());
    g.push_const(Tensor::from_int(DType::I8, &[1], vec![3]).unwrap());
    let b = g.add_input("b", TensorType::f32([2])).unwrap();
    let a = g.add_input("a", TensorType::f32([2])).unwrap();
    let s = g.add("s", Op::Binary(BinaryOp::Sub), &[a, b]).unwrap();
    let t = g.add("t", Op::Binary(BinaryOp::Mul), &[s, c]).unwrap();
    g.add_output("second", s);
    g.add_output("first", t);
    let text = round_trip(&g);
    insta::assert_snapshot!(text);
}

#[test]
fn elided_constants_print_a_fingerprint_and_do_not_parse() {
    let g = float_ops();
    let text = print(&g, &PrintOptions { elide_consts: true });
    let first = text.lines().find(|l| l.contains("elided")).unwrap();
    let fp = g.consts()[0].fingerprint();
    assert_eq!(
        first,
        format!("  @0 : f32[4,4,3,3] = elided fnv64:{fp:016x}")
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("is elided"), "{err}");
    let mut small = Graph::new("m");
    let x = small.add_input("x", TensorType::f32([1, 2])).unwrap();
    let w = f32c(&mut small, "w", &[3, 2], 1);
    let y = small
        .add(
            "y",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            },
            &[x, w],
        )
        .unwrap();
    small.add_output("y", y);
    insta::assert_snapshot!(print(&small, &PrintOptions { elide_consts: true }));
}

#[test]
fn wraps_long_constants() {
    let mut g = Graph::new("wrap");
    let c = g.add_const(
        "c",
        Tensor::from_f32(&[2, 20], (0..40).map(|i| i as f32 * 0.5).collect()).unwrap(),
    );
    g.add_output("c", c);
    insta::assert_snapshot!(round_trip(&g));
}

const GOOD: &str = r#"lnir 1
; a comment
graph "tiny" {
  %x = input : f32[1,2,4,4]
  %w = const @0 : f32[2,1,1,1]
  %y = conv(%x, %w) {group=2, kernel=[1,1], strides=[1,1], pads=[0,0,0,0], dilations=[1,1],} : f32[1,2,4,4]
  %s = split(%y) {axis=1, sizes=[1,1]} : f32[1,1,4,4], f32[1,1,4,4]
  output %s#1 as "right"
  output %y
}
consts {
  @0 : f32[2,1,1,1] = [1, -0.5,]
}
"#;

#[test]
fn parses_lenient_input_and_prints_canonically() {
    let g = parse(GOOD).unwrap();
    insta::assert_snapshot!(print(&g, &PrintOptions::default()));
}

fn err(src: &str) -> String {
    match parse(src) {
        Ok(_) => "parsed OK".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn error_messages() {
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("bad version", GOOD.replace("lnir 1", "lnir 2")),
        ("unknown op", GOOD.replace("conv(", "convolution(")),
        ("unknown attribute", GOOD.replace("group=2,", "group=2, groups=2,")),
        ("missing attribute", GOOD.replace("group=2,", "")),
        ("duplicate attribute", GOOD.replace("group=2,", "group=2, group=2,")),
        ("float for int", GOOD.replace("group=2", "group=2.0")),
        ("negative size", GOOD.replace("strides=[1,1]", "strides=[1,-1]")),
        ("zero stride", GOOD.replace("strides=[1,1]", "strides=[1,0]")),
        ("wrong list length", GOOD.replace("kernel=[1,1]", "kernel=[1,1,1]")),
        ("undefined value", GOOD.replace("conv(%x", "conv(%z")),
        ("use before def", GOOD.replace("%y = conv(%x, %w)", "%y = conv(%x, %s)")),
        ("bad port", GOOD.replace("%s#1", "%s#2")),
        ("duplicate name", GOOD.replace("%s = split", "%y = split")),
        ("type mismatch", GOOD.replace("} : f32[1,2,4,4]", "} : f32[1,2,4,5]")),
        ("dtype mismatch", GOOD.replace("} : f32[1,2,4,4]", "} : i8[1,2,4,4]")),
        ("too few output types", GOOD.replace(": f32[1,1,4,4], f32[1,1,4,4]", ": f32[1,1,4,4]")),
        ("wrong arity", GOOD.replace("conv(%x, %w)", "conv(%x)")),
        ("shape error", GOOD.replace("group=2", "group=1")),
        ("unknown dtype", GOOD.replace("input : f32", "input : f16")),
        ("bad sub-byte dtype", GOOD.replace("input : f32", "input : i9")),
        ("const type mismatch", GOOD.replace("const @0 : f32[2,1,1,1]", "const @0 : f32[2,1,1,2]")),
        ("missing const", GOOD.replace("const @0", "const @1")),
        ("too few values", GOOD.replace("[1, -0.5,]", "[1]")),
        ("too many values", GOOD.replace("[1, -0.5,]", "[1, 2, 3]")),
        ("bad float", GOOD.replace("[1, -0.5,]", "[1, true]")),
        ("int out of range", "lnir 1\ngraph g {\n  %c = const @0 : i4[1]\n  output %c\n}\nconsts {\n  @0 : i4[1] = [8]\n}\n".into()),
        ("const out of order", GOOD.replace("@0 : f32[2,1,1,1] =", "@1 : f32[2,1,1,1] =")),
        ("elided", GOOD.replace("[1, -0.5,]", "elided fnv64:0123456789abcdef")),
        ("unterminated string", GOOD.replace("\"tiny\"", "\"tiny")),
        ("bad escape", GOOD.replace("\"tiny\"", "\"ti\\qny\"")),
        ("unexpected char", GOOD.replace("%x = input", "%x = $input")),
        ("malformed number", GOOD.replace("[1, -0.5,]", "[1, 0.5.5]")),
        ("absurd shape", GOOD.replace("input : f32[1,2,4,4]", "input : f32[65536,65536,4,4]")),
        ("huge dim", GOOD.replace("input : f32[1,2,4,4]", "input : f32[0,99999999999]")),
        ("bad quant", GOOD.replace("input : f32[1,2,4,4]", "input : f32[1,2,4,4] quant(scale=[1.0, 2.0], zero_point=[0])")),
        ("no outputs", GOOD.replace("  output %s#1 as \"right\"\n  output %y\n", "")),
        ("trailing garbage", format!("{GOOD}graph")),
        ("bad enum", "lnir 1\ngraph g {\n  %x = input : f32[1,2]\n  %y = pad(%x) {pads=[0,0,0,0], mode=wrap, value=0.0} : f32[1,2]\n  output %y\n}\n".into()),
        ("bad bool", "lnir 1\ngraph g {\n  %x = input : f32[4,4]\n  %y = softmax(%x) {axis=1, coerce_2d=yes, log=false} : f32[4,4]\n  output %y\n}\n".into()),
        ("slice lengths", "lnir 1\ngraph g {\n  %x = input : f32[4,4]\n  %y = slice(%x) {axes=[0], starts=[0,1], ends=[1], steps=[1]} : f32[1,4]\n  output %y\n}\n".into()),
        ("deep list", GOOD.replace("sizes=[1,1]", "sizes=[[[[[[1]]]]]]")),
        ("node without types", GOOD.replace(" : f32[1,2,4,4]\n  %s", "\n  %s")),
    ];
    let mut out = String::new();
    for (name, src) in &cases {
        out.push_str(&format!("{name}: {}\n", err(src)));
    }
    insta::assert_snapshot!(out);
}

/// A tiny deterministic generator for the robustness tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn never_panics_on_truncated_or_mutated_text() {
    let full = print(&int_ops(), &PrintOptions::default())
        + &print(&float_ops(), &PrintOptions::default());
    let one = print(&float_ops(), &PrintOptions::default());
    for (i, _) in one.char_indices().step_by(3) {
        let _ = parse(&one[..i]);
    }
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    let alphabet: Vec<char> = "%@#[](){}=,:;\"\\-0123456789.exf_ \nabcinpquto"
        .chars()
        .collect();
    let chars: Vec<char> = full.chars().collect();
    for _ in 0..3000 {
        let mut c = chars.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % c.len();
            match rng.next() % 3 {
                0 => c[at] = alphabet[(rng.next() as usize) % alphabet.len()],
                1 => {
                    c.remove(at);
                }
                _ => c.insert(at, alphabet[(rng.next() as usize) % alphabet.len()]),
            }
        }
        let s: String = c.into_iter().collect();
        let _ = parse(&s);
    }
    for _ in 0..2000 {
        let len = (rng.next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
        let words: String = (0..len / 4)
            .map(|_| {
                [
                    "lnir 1 ",
                    "graph g {",
                    "}",
                    "%x",
                    " = ",
                    "input",
                    ": f32[",
                    "1",
                    ",",
                    "]",
                    "output ",
                    "conv(",
                    ")",
                    "{",
                    "consts",
                    "@0",
                    "[",
                    "-inf",
                ][(rng.next() % 18) as usize]
            })
            .collect();
        let _ = parse(&words);
    }
}

/// Numbers near the edges of every attribute range must be errors, never overflows.
#[test]
fn never_panics_on_extreme_attributes() {
    let tpl = "lnir 1\ngraph g {\n  %x = input : f32[1,2,4,4]\n  %w = input : f32[2,1,2,2]\n  %y = OP : f32[1,2,4,4]\n  output %y\n}\n";
    let big = [
        "0",
        "1",
        "2147483648",
        "2147483647",
        "9223372036854775807",
        "-9223372036854775808",
        "-1",
    ];
    let mut rng = XorShift(42);
    for _ in 0..3000 {
        let mut pick = || big[(rng.next() % big.len() as u64) as usize];
        let ops = [
            format!("conv_transpose(%x, %w) {{kernel=[{},{}], strides=[{},1], pads=[{},0,0,{}], dilations=[1,{}], group={}, output_padding=[{},0]}}", pick(), pick(), pick(), pick(), pick(), pick(), pick(), pick()),
            format!("conv(%x, %w) {{kernel=[{},2], strides=[{},1], pads=[{},0,0,{}], dilations=[{},1], group={}}}", pick(), pick(), pick(), pick(), pick(), pick()),
            format!("max_pool(%x) {{kernel=[{},2], strides=[{},1], pads=[{},0,0,{}], dilations=[{},1], ceil_mode=true}}", pick(), pick(), pick(), pick(), pick()),
            format!("slice(%x) {{axes=[{}], starts=[{}], ends=[{}], steps=[{}]}}", pick(), pick(), pick(), pick()),
            format!("pad(%x) {{pads=[{},0,0,{},0,0,0,{}], mode=constant, value=0.0}}", pick(), pick(), pick()),
            format!("split(%x) {{axis=1, sizes=[{},{}]}}", pick(), pick()),
            format!("reshape(%x) {{shape=[{},{}]}}", pick(), pick()),
            format!("expand(%x) {{shape=[{},2,{},4]}}", pick(), pick()),
            format!("transpose(%x) {{perm=[{},1,{},0]}}", pick(), pick()),
            format!("resize(%x) {{mode=linear, coord=asymmetric, nearest=floor, scales=[1.0,{}.0,3e38,1.0]}}", pick()),
            format!("quant(%x, %x, %x) {{bits={}, signed=true, narrow=false, rounding=round}}", pick()),
            format!("reduce_sum(%x) {{axes=[{},{}], keepdims=true}}", pick(), pick()),
            format!("concat(%x, %x) {{axis={}}}", pick()),
            format!("gather(%x, %x) {{axis={}}}", pick()),
            format!("softmax(%x) {{axis={}, coerce_2d=true, log=false}}", pick()),
        ];
        for op in &ops {
            let _ = parse(&tpl.replace("OP", op));
        }
    }
}
