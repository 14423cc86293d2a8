//! The optimiser's fused ops: each is, bit for bit, the composition of the ops it stands for
//! (FusedConv, DwPw, Classifier, ChannelShuffle, ChannelMap); their typing rejects bad
//! inputs; their `.lnir` form round-trips; their MACs are those of their parts.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::text::{parse, print, PrintOptions};
use lnc_ir::{
    Activation, BinaryOp, ChannelRef, Conv2d, Epilogue, Graph, Op, Residual, Tensor, TensorType,
    UnaryOp,
};
use util::*;

fn conv(k: usize, stride: usize, group: usize) -> Conv2d {
    Conv2d {
        kernel: [k, k],
        strides: [stride, stride],
        pads: [k / 2; 4],
        dilations: [1, 1],
        group,
    }
}

const ACTS: [Activation; 9] = [
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
    Activation::LeakyRelu { alpha: 0.1 },
    Activation::PRelu,
];

/// The unfused chain: conv, `+ r` before, activation, `+ r` after.
fn chain(
    c: &Conv2d,
    e: &Epilogue,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    r: &Tensor,
    slope: &Tensor,
) -> Tensor {
    let mut y = eval1(&Op::Conv(c.clone()), &[x, w, b]);
    if e.residual == Residual::BeforeAct {
        y = eval1(&Op::Binary(BinaryOp::Add), &[&y, r]);
    }
    y = match e.act {
        Activation::Identity => y,
        Activation::Silu => {
            let s = eval1(&Op::Unary(UnaryOp::Sigmoid), &[&y]);
            eval1(&Op::Binary(BinaryOp::Mul), &[&y, &s])
        }
        Activation::PRelu => eval1(&Op::PRelu, &[&y, slope]),
        a => eval1(&a.ops()[0], &[&y]),
    };
    if e.residual == Residual::AfterAct {
        y = eval1(&Op::Binary(BinaryOp::Add), &[&y, r]);
    }
    y
}

#[test]
fn fused_conv_is_the_composition() {
    let mut rng = Rng::new(7);
    let x = rng.tensor(&[1, 4, 5, 5]);
    let w = rng.tensor(&[6, 2, 3, 3]);
    let b = rng.tensor(&[6]);
    let r = rng.tensor(&[1, 6, 3, 3]);
    let slope = rng.tensor(&[6, 1, 1]);
    let c = conv(3, 2, 2);
    for act in ACTS {
        for residual in [Residual::None, Residual::BeforeAct, Residual::AfterAct] {
            let e = Epilogue { act, residual };
            let mut ins = vec![&x, &w, &b];
            if residual != Residual::None {
                ins.push(&r);
            }
            if act.has_slope() {
                ins.push(&slope);
            }
            let got = eval1(
                &Op::FusedConv {
                    conv: c.clone(),
                    epilogue: e,
                },
                &ins,
            );
            let want = chain(&c, &e, &x, &w, &b, &r, &slope);
            assert_bits(&fv(&got), &fv(&want));
        }
    }
}

#[test]
fn dw_pw_is_the_composition() {
    let mut rng = Rng::new(3);
    let x = rng.tensor(&[1, 4, 6, 6]);
    let (dw, db) = (rng.tensor(&[4, 1, 3, 3]), rng.tensor(&[4]));
    let (pw, pb) = (rng.tensor(&[5, 4, 1, 1]), rng.tensor(&[5]));
    let r = rng.tensor(&[1, 5, 3, 3]);
    let c = conv(3, 2, 4);
    for (dw_act, act, residual) in [
        (
            Activation::Clip { min: 0.0, max: 6.0 },
            Activation::Identity,
            Residual::BeforeAct,
        ),
        (Activation::HardSwish, Activation::Relu, Residual::None),
        (Activation::Identity, Activation::Silu, Residual::AfterAct),
    ] {
        let e = Epilogue { act, residual };
        let mut ins = vec![&x, &dw, &db, &pw, &pb];
        if residual != Residual::None {
            ins.push(&r);
        }
        let got = eval1(
            &Op::DwPw {
                dw: c.clone(),
                dw_act,
                epilogue: e,
            },
            &ins,
        );
        let de = Epilogue {
            act: dw_act,
            residual: Residual::None,
        };
        let t = chain(&c, &de, &x, &dw, &db, &r, &r);
        let want = chain(&lnc_ir::shape::pointwise(1), &e, &t, &pw, &pb, &r, &r);
        assert_bits(&fv(&got), &fv(&want));
    }
}

#[test]
fn classifier_is_the_composition() {
    let mut rng = Rng::new(5);
    let x = rng.tensor(&[2, 6, 3, 4]);
    let w = rng.tensor(&[10, 6]);
    let b = rng.tensor(&[10]);
    let got = eval1(
        &Op::Classifier {
            alpha: 0.5,
            beta: 2.0,
            trans_b: true,
        },
        &[&x, &w, &b],
    );
    let p = eval1(&Op::GlobalAveragePool, &[&x]);
    let f = eval1(&Op::Reshape { shape: vec![2, 6] }, &[&p]);
    let gemm = Op::Gemm {
        alpha: 0.5,
        beta: 2.0,
        trans_a: false,
        trans_b: true,
    };
    let want = eval1(&gemm, &[&f, &w, &b]);
    assert_bits(&fv(&got), &fv(&want));
    // Without a bias.
    let got = eval1(
        &Op::Classifier {
            alpha: 1.0,
            beta: 1.0,
            trans_b: true,
        },
        &[&x, &w],
    );
    assert_eq!(got.shape(), [2, 10]);
}

#[test]
fn channel_shuffle_and_map_are_index_maps() {
    let mut rng = Rng::new(9);
    let x = rng.tensor(&[2, 6, 2, 3]);
    let got = eval1(&Op::ChannelShuffle { groups: 3 }, &[&x]);
    let r = eval1(
        &Op::Reshape {
            shape: vec![2, 3, 2, 2, 3],
        },
        &[&x],
    );
    let t = eval1(
        &Op::Transpose {
            perm: vec![0, 2, 1, 3, 4],
        },
        &[&r],
    );
    let want = eval1(
        &Op::Reshape {
            shape: vec![2, 6, 2, 3],
        },
        &[&t],
    );
    assert_bits(&fv(&got), &fv(&want));
    // A map over two inputs = concat of one-channel slices.
    let z = rng.tensor(&[2, 2, 2, 3]);
    let map = vec![
        ChannelRef {
            input: 1,
            channel: 1,
        },
        ChannelRef {
            input: 0,
            channel: 5,
        },
        ChannelRef {
            input: 0,
            channel: 0,
        },
        ChannelRef {
            input: 1,
            channel: 1,
        },
    ];
    let got = eval1(&Op::ChannelMap { map: map.clone() }, &[&x, &z]);
    let parts: Vec<Tensor> = map
        .iter()
        .map(|m| {
            let s = lnc_ir::SliceAxis {
                axis: 1,
                start: m.channel as i64,
                end: m.channel as i64 + 1,
                step: 1,
            };
            eval1(
                &Op::Slice { axes: vec![s] },
                &[if m.input == 0 { &x } else { &z }],
            )
        })
        .collect();
    let refs: Vec<&Tensor> = parts.iter().collect();
    let want = eval1(&Op::Concat { axis: 1 }, &refs);
    assert_bits(&fv(&got), &fv(&want));
    // Integer tensors too.
    let i = int(lnc_ir::DType::I8, &[1, 3, 1, 1], &[1, -2, 3]);
    let got = eval1(
        &Op::ChannelMap {
            map: vec![ChannelRef {
                input: 0,
                channel: 2,
            }],
        },
        &[&i],
    );
    assert_eq!(iv(&got), [3]);
}

#[test]
fn typing_rejects_bad_fused_ops() {
    let t = |s: &[usize]| TensorType::f32(s.to_vec());
    let (x, w, b) = (t(&[1, 4, 5, 5]), t(&[6, 4, 3, 3]), t(&[6]));
    let fc = |residual, act| Op::FusedConv {
        conv: conv(3, 1, 1),
        epilogue: Epilogue { act, residual },
    };
    let infer = |op: &Op, ins: &[&TensorType]| lnc_ir::shape::infer(op, ins);
    assert!(infer(&fc(Residual::None, Activation::Relu), &[&x, &w, &b]).is_ok());
    // Residual of the wrong shape; missing residual; missing slope.
    let bad_r = t(&[1, 6, 4, 4]);
    assert!(infer(
        &fc(Residual::BeforeAct, Activation::Relu),
        &[&x, &w, &b, &bad_r]
    )
    .is_err());
    assert!(infer(&fc(Residual::AfterAct, Activation::Relu), &[&x, &w, &b]).is_err());
    assert!(infer(&fc(Residual::None, Activation::PRelu), &[&x, &w, &b]).is_err());
    let clip = Activation::Clip { min: 6.0, max: 0.0 };
    assert!(infer(&fc(Residual::None, clip), &[&x, &w, &b]).is_err());
    // dw_pw: the depthwise part must be depthwise; no PReLU.
    let dw = |group| Op::DwPw {
        dw: conv(3, 1, group),
        dw_act: Activation::Relu,
        epilogue: Epilogue::NONE,
    };
    let ins = [&x, &t(&[4, 1, 3, 3]), &t(&[4]), &t(&[8, 4, 1, 1]), &t(&[8])];
    assert_eq!(infer(&dw(4), &ins).unwrap()[0].shape, [1, 8, 5, 5]);
    assert!(infer(
        &dw(2),
        &[&x, &t(&[4, 2, 3, 3]), &t(&[4]), &t(&[8, 4, 1, 1]), &t(&[8])]
    )
    .is_err());
    // Channel maps: channel and input out of range; shuffle groups must divide.
    let m = |input, channel| Op::ChannelMap {
        map: vec![ChannelRef { input, channel }],
    };
    assert!(infer(&m(0, 3), &[&x]).is_ok());
    assert!(infer(&m(0, 4), &[&x]).is_err());
    assert!(infer(&m(1, 0), &[&x]).is_err());
    assert!(infer(&m(0, 0), &[&x, &t(&[1, 2, 4, 5])]).is_err());
    assert!(infer(&Op::ChannelShuffle { groups: 3 }, &[&x]).is_err());
}

#[test]
fn fused_ops_round_trip_through_lnir_and_count_macs() {
    let mut g = Graph::new("fused");
    let mut rng = Rng::new(1);
    let x = g.add_input("x", TensorType::f32([1, 4, 6, 6])).unwrap();
    let mut k = |g: &mut Graph, name: &str, s: &[usize]| g.add_const(name, rng.tensor(s));
    let (w, b) = (k(&mut g, "w", &[4, 4, 3, 3]), k(&mut g, "b", &[4]));
    let slope = k(&mut g, "slope", &[4, 1, 1]);
    let e = Epilogue {
        act: Activation::PRelu,
        residual: Residual::AfterAct,
    };
    let y = g
        .add(
            "fc",
            Op::FusedConv {
                conv: conv(3, 1, 1),
                epilogue: e,
            },
            &[x, w, b, x, slope],
        )
        .unwrap();
    let hs = Epilogue {
        act: Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        residual: Residual::None,
    };
    let w1 = w_1x1(&mut g);
    let y = g
        .add(
            "fc2",
            Op::FusedConv {
                conv: conv(1, 1, 1),
                epilogue: hs,
            },
            &[y, w1, b],
        )
        .unwrap();
    let (dww, dwb) = (k(&mut g, "dww", &[4, 1, 3, 3]), k(&mut g, "dwb", &[4]));
    let (pww, pwb) = (k(&mut g, "pww", &[4, 4, 1, 1]), k(&mut g, "pwb", &[4]));
    let op = Op::DwPw {
        dw: conv(3, 1, 4),
        dw_act: Activation::LeakyRelu { alpha: 0.25 },
        epilogue: Epilogue {
            act: Activation::Clip { min: 0.0, max: 6.0 },
            residual: Residual::BeforeAct,
        },
    };
    let y = g.add("dwpw", op, &[y, dww, dwb, pww, pwb, y]).unwrap();
    let y = g.add("sh", Op::ChannelShuffle { groups: 2 }, &[y]).unwrap();
    let map = vec![
        ChannelRef {
            input: 0,
            channel: 3,
        },
        ChannelRef {
            input: 1,
            channel: 0,
        },
    ];
    let y = g.add("map", Op::ChannelMap { map }, &[y, x]).unwrap();
    let fw = k(&mut g, "fw", &[3, 2]);
    let y = g
        .add(
            "head",
            Op::Classifier {
                alpha: 1.0,
                beta: 1.0,
                trans_b: true,
            },
            &[y, fw],
        )
        .unwrap();
    g.add_output("y", y);
    let text = print(&g, &PrintOptions::default());
    assert!(text.contains("act=prelu, residual=post"), "{text}");
    assert!(
        text.contains("dw_act=leaky_relu, dw_alpha=0.25, act=clip, min=0.0, max=6.0, residual=pre"),
        "{text}"
    );
    assert!(
        text.contains("channel_map(%sh, %x) {inputs=[0,1], channels=[3,0]}"),
        "{text}"
    );
    let back = parse(&text).unwrap();
    assert_eq!(print(&back, &PrintOptions::default()), text);
    let st = lnc_ir::stats::stats(&g).unwrap();
    let plane = 36;
    assert_eq!(st.macs_by_kind.other_conv, plane * 4 * 36);
    assert_eq!(st.macs_by_kind.depthwise, plane * 4 * 9);
    assert_eq!(st.macs_by_kind.pointwise, plane * 4 * 4 + plane * 4 * 4);
    assert_eq!(st.macs_by_kind.gemm, 3 * 2);
    // The graph runs.
    let out = lnc_ir::interp::run(&g, vec![Rng::new(2).tensor(&[1, 4, 6, 6])]).unwrap();
    assert_eq!(out[0].shape(), [1, 3]);
}

fn w_1x1(g: &mut Graph) -> lnc_ir::Value {
    g.add_const("w1", Rng::new(4).tensor(&[4, 4, 1, 1]))
}
