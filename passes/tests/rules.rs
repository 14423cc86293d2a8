//! One named test per rewrite rule: a small graph in, the expected ops out (op histogram),
//! and soundness: the interpreter gives the same outputs (≤ 1e-5 relative) before and
//! after on random weights and inputs, for several seeds.

mod common;

use common::{assert_same, conv2d, h, hist, rewrite, B};
use lnc_ir::{
    Activation, BinaryOp, ChannelRef, DType, Epilogue, Op, PadMode, ReduceKind, Residual,
    SliceAxis, Tensor, UnaryOp,
};

const SEEDS: u64 = 3;

/// Check a rule on graphs built by `build(seed)`: the expected histogram and soundness.
fn check(
    rules: &[&str],
    avoid: &[&str],
    want: &[(&str, usize)],
    build: impl Fn(u64) -> lnc_ir::Graph,
) {
    for seed in 0..SEEDS {
        let g = build(seed);
        let out = rewrite(&g, rules, avoid);
        assert_eq!(hist(&out), h(want), "rules {rules:?}, seed {seed}");
        assert_same(&g, &out, 2);
    }
}

/// The rules tested here, to check that every rule has a test.
const TESTED: &[&str] = &[
    "remove-identity",
    "remove-cast-noop",
    "remove-reshape-noop",
    "remove-transpose-noop",
    "remove-expand-noop",
    "remove-slice-noop",
    "remove-concat-single",
    "fold-bn-conv",
    "fold-bn-gemm",
    "fold-mul-conv",
    "fold-mul-conv-rev",
    "fold-add-conv",
    "fold-add-conv-rev",
    "fold-pad-conv",
    "fuse-conv-relu",
    "fuse-conv-clip",
    "fuse-conv-hard-swish",
    "fuse-conv-hard-sigmoid",
    "fuse-conv-sigmoid",
    "fuse-conv-leaky-relu",
    "fuse-conv-prelu",
    "fuse-conv-silu",
    "fuse-conv-silu-rev",
    "fuse-residual-add",
    "fuse-dw-pw",
    "fuse-classifier",
    "fuse-classifier-mean",
    "cancel-reshape",
    "cancel-transpose",
    "recognize-channel-shuffle",
    "shuffle-to-map",
    "slice-to-map",
    "split-to-map",
    "concat-to-map",
    "compose-channel-maps",
    "remove-identity-map",
    "absorb-map-into-conv",
    // tests/quant.rs
    "qdq-conv",
    "qdq-gemm",
    "qlinear-matmul-conv",
    "quantize-moves-integer",
    "quantize-absorbs-relu",
    "quantize-absorbs-clip",
];

#[test]
fn every_rule_has_a_test() {
    let mut names: Vec<String> = lnc_passes::rules::all()
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    names.sort();
    let mut tested: Vec<String> = TESTED.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(names, tested);
}

// ----- cleanup --------------------------------------------------------------------------

/// `relu(op(x))` for a no-op `op`.
fn around(seed: u64, op: Op) -> lnc_ir::Graph {
    let mut b = B::new(seed);
    let x = b.input(&[1, 4, 3, 3]);
    let y = b.op("noop", op, &[x]);
    let y = b.op("relu", Op::Unary(UnaryOp::Relu), &[y]);
    b.finish(y)
}

#[test]
fn rule_remove_identity() {
    check(&["remove-identity"], &[], &[("relu", 1)], |s| {
        around(s, Op::Identity)
    });
}

#[test]
fn rule_remove_cast_noop() {
    check(&["remove-cast-noop"], &[], &[("relu", 1)], |s| {
        around(s, Op::Cast { to: DType::F32 })
    });
    // A real cast stays.
    let mut b = B::new(0);
    let x = b.input(&[1, 4]);
    let y = b.op("c", Op::Cast { to: DType::I32 }, &[x]);
    let g = b.finish(y);
    assert_eq!(
        hist(&rewrite(&g, &["remove-cast-noop"], &[])),
        h(&[("cast", 1)])
    );
}

#[test]
fn rule_remove_reshape_noop() {
    check(&["remove-reshape-noop"], &[], &[("relu", 1)], |s| {
        around(
            s,
            Op::Reshape {
                shape: vec![1, 4, 3, 3],
            },
        )
    });
}

#[test]
fn rule_remove_transpose_noop() {
    check(&["remove-transpose-noop"], &[], &[("relu", 1)], |s| {
        around(
            s,
            Op::Transpose {
                perm: vec![0, 1, 2, 3],
            },
        )
    });
}

#[test]
fn rule_remove_expand_noop() {
    check(&["remove-expand-noop"], &[], &[("relu", 1)], |s| {
        around(
            s,
            Op::Expand {
                shape: vec![1, 4, 3, 3],
            },
        )
    });
}

#[test]
fn rule_remove_slice_noop() {
    let full = SliceAxis {
        axis: 1,
        start: 0,
        end: 4,
        step: 1,
    };
    check(&["remove-slice-noop"], &[], &[("relu", 1)], |s| {
        around(
            s,
            Op::Slice {
                axes: vec![full.clone()],
            },
        )
    });
}

#[test]
fn rule_remove_concat_single() {
    check(&["remove-concat-single"], &[], &[("relu", 1)], |s| {
        around(s, Op::Concat { axis: 1 })
    });
}

// ----- fold -----------------------------------------------------------------------------

#[test]
fn rule_fold_bn_conv() {
    for bias in [false, true] {
        check(&["fold-bn-conv"], &["batch_norm"], &[("conv", 1)], |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 3, 6, 6]);
            let y = b.conv("c", x, [4, 3, 1, 1], bias);
            let y = b.bn("bn", y);
            b.finish(y)
        });
    }
}

#[test]
fn rule_fold_bn_gemm() {
    for (trans_b, bias) in [(true, true), (false, false)] {
        check(&["fold-bn-gemm"], &["batch_norm"], &[("gemm", 1)], |s| {
            let mut b = B::new(s);
            let x = b.input(&[2, 5]);
            let w = b.rand("w", if trans_b { &[3, 5] } else { &[5, 3] }, -1.0, 1.0);
            let mut ins = vec![x, w];
            if bias {
                ins.push(b.rand("c", &[3], -1.0, 1.0));
            }
            let gemm = Op::Gemm {
                alpha: 0.5,
                beta: 2.0,
                trans_a: false,
                trans_b,
            };
            let y = b.op("fc", gemm, &ins);
            let y = b.bn("bn", y);
            b.finish(y)
        });
    }
}

fn conv_then(seed: u64, op: Op, k_shape: &[usize], conv_first: bool) -> lnc_ir::Graph {
    let mut b = B::new(seed);
    let x = b.input(&[1, 3, 5, 5]);
    let y = b.conv("c", x, [4, 3, 1, 1], seed.is_multiple_of(2));
    let k = b.rand("k", k_shape, 0.5, 1.5);
    let ins = if conv_first { [y, k] } else { [k, y] };
    let y = b.op("op", op, &ins);
    b.finish(y)
}

#[test]
fn rule_fold_mul_conv() {
    check(&["fold-mul-conv"], &["mul"], &[("conv", 1)], |s| {
        conv_then(s, Op::Binary(BinaryOp::Mul), &[4, 1, 1], true)
    });
    check(&["fold-mul-conv"], &["mul"], &[("conv", 1)], |s| {
        conv_then(s, Op::Binary(BinaryOp::Mul), &[], true)
    });
    // Not per channel: stays.
    check(
        &["fold-mul-conv"],
        &["mul"],
        &[("conv", 1), ("mul", 1)],
        |s| conv_then(s, Op::Binary(BinaryOp::Mul), &[1, 1, 5], true),
    );
}

#[test]
fn rule_fold_mul_conv_rev() {
    check(&["fold-mul-conv-rev"], &["mul"], &[("conv", 1)], |s| {
        conv_then(s, Op::Binary(BinaryOp::Mul), &[1, 4, 1, 1], false)
    });
}

#[test]
fn rule_fold_add_conv() {
    check(&["fold-add-conv"], &["add"], &[("conv", 1)], |s| {
        conv_then(s, Op::Binary(BinaryOp::Add), &[4, 1, 1], true)
    });
}

#[test]
fn rule_fold_add_conv_rev() {
    check(&["fold-add-conv-rev"], &["add"], &[("conv", 1)], |s| {
        conv_then(s, Op::Binary(BinaryOp::Add), &[1], false)
    });
}

#[test]
fn rule_fold_pad_conv() {
    let pad = |pads: Vec<i64>, value: f32| Op::Pad {
        pads,
        mode: PadMode::Constant,
        value,
    };
    let build = |s: u64, p: Op| {
        let mut b = B::new(s);
        let x = b.input(&[1, 2, 5, 5]);
        let y = b.op("pad", p, &[x]);
        let y = b.conv("c", y, [3, 3, 1, 1], true);
        b.finish(y)
    };
    check(&["fold-pad-conv"], &["pad"], &[("conv", 1)], |s| {
        build(s, pad(vec![0, 0, 1, 2, 0, 0, 2, 0], 0.0))
    });
    // Padding with a non-zero value, or of the channel axis, stays.
    check(
        &["fold-pad-conv"],
        &["pad"],
        &[("conv", 1), ("pad", 1)],
        |s| build(s, pad(vec![0, 0, 1, 1, 0, 0, 1, 1], 1.0)),
    );
}

// ----- fusion ---------------------------------------------------------------------------

/// `act(conv(x))` with the activation given as ops on the conv output.
fn conv_act(seed: u64, act: impl Fn(&mut B, lnc_ir::Value) -> lnc_ir::Value) -> lnc_ir::Graph {
    let mut b = B::new(seed);
    let x = b.input(&[1, 3, 5, 5]);
    let y = b.conv("c", x, [4, 3, 1, 1], !seed.is_multiple_of(2));
    let y = act(&mut b, y);
    b.finish(y)
}

fn fused_act_test(rule: &str, avoid: &[&str], op: Op) {
    check(&[rule], avoid, &[("fused_conv", 1)], |s| {
        conv_act(s, |b, y| b.op("act", op.clone(), &[y]))
    });
}

#[test]
fn rule_fuse_conv_relu() {
    fused_act_test(
        "fuse-conv-relu",
        &["relu", "conv"],
        Op::Unary(UnaryOp::Relu),
    );
}

#[test]
fn rule_fuse_conv_clip() {
    fused_act_test(
        "fuse-conv-clip",
        &["clip", "conv"],
        Op::Clip { min: 0.0, max: 6.0 },
    );
}

#[test]
fn rule_fuse_conv_hard_swish() {
    fused_act_test(
        "fuse-conv-hard-swish",
        &["hard_swish", "conv"],
        Op::Unary(UnaryOp::HardSwish),
    );
}

#[test]
fn rule_fuse_conv_hard_sigmoid() {
    fused_act_test(
        "fuse-conv-hard-sigmoid",
        &["hard_sigmoid", "conv"],
        Op::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
    );
}

#[test]
fn rule_fuse_conv_sigmoid() {
    fused_act_test(
        "fuse-conv-sigmoid",
        &["sigmoid", "conv"],
        Op::Unary(UnaryOp::Sigmoid),
    );
}

#[test]
fn rule_fuse_conv_leaky_relu() {
    fused_act_test(
        "fuse-conv-leaky-relu",
        &["leaky_relu", "conv"],
        Op::LeakyRelu { alpha: 0.1 },
    );
}

#[test]
fn rule_fuse_conv_prelu() {
    check(
        &["fuse-conv-prelu"],
        &["prelu", "conv"],
        &[("fused_conv", 1)],
        |s| {
            conv_act(s, |b, y| {
                let slope = b.rand("slope", &[4, 1, 1], 0.05, 0.5);
                b.op("act", Op::PRelu, &[y, slope])
            })
        },
    );
}

#[test]
fn rule_fuse_conv_silu() {
    check(
        &["fuse-conv-silu"],
        &["mul", "conv"],
        &[("fused_conv", 1)],
        |s| {
            conv_act(s, |b, y| {
                let sg = b.op("sig", Op::Unary(UnaryOp::Sigmoid), &[y]);
                b.op("mul", Op::Binary(BinaryOp::Mul), &[y, sg])
            })
        },
    );
}

#[test]
fn rule_fuse_conv_silu_rev() {
    check(
        &["fuse-conv-silu-rev"],
        &["mul", "conv"],
        &[("fused_conv", 1)],
        |s| {
            conv_act(s, |b, y| {
                let sg = b.op("sig", Op::Unary(UnaryOp::Sigmoid), &[y]);
                b.op("mul", Op::Binary(BinaryOp::Mul), &[sg, y])
            })
        },
    );
}

/// The epilogue of the one fused conv of a graph.
fn epilogue(g: &lnc_ir::Graph) -> Epilogue {
    g.node_ids()
        .into_iter()
        .find_map(|i| match &g.node(i).op {
            Op::FusedConv { epilogue, .. } => Some(*epilogue),
            _ => None,
        })
        .expect("a fused conv")
}

#[test]
fn rule_fuse_residual_add() {
    // MobileNetV2: x + conv(x) after a linear conv (either operand order).
    for swap in [false, true] {
        let build = |s: u64| {
            let mut b = B::new(s);
            let x = b.input(&[1, 4, 5, 5]);
            let y = b.conv("c", x, [4, 1, 1, 1], true);
            let ins = if swap { [y, x] } else { [x, y] };
            let y = b.op("add", Op::Binary(BinaryOp::Add), &ins);
            b.finish(y)
        };
        check(
            &["fuse-residual-add"],
            &["add", "conv"],
            &[("fused_conv", 1)],
            build,
        );
        let out = rewrite(&build(0), &["fuse-residual-add"], &["add", "conv"]);
        assert_eq!(
            epilogue(&out),
            Epilogue {
                act: Activation::Identity,
                residual: Residual::BeforeAct
            }
        );
    }
    // ResNet: relu(conv(x) + r): the add fuses first, then the relu before-activation.
    let resnet = |s: u64| {
        let mut b = B::new(s);
        let x = b.input(&[1, 4, 5, 5]);
        let y = b.conv("c", x, [4, 3, 1, 1], true);
        let y = b.op("add", Op::Binary(BinaryOp::Add), &[y, x]);
        let y = b.op("relu", Op::Unary(UnaryOp::Relu), &[y]);
        b.finish(y)
    };
    let rules = ["fuse-residual-add", "fuse-conv-relu"];
    check(
        &rules,
        &["add", "conv", "relu"],
        &[("fused_conv", 1)],
        resnet,
    );
    let e = epilogue(&rewrite(&resnet(0), &rules, &["add", "conv", "relu"]));
    assert_eq!((e.act, e.residual), (Activation::Relu, Residual::BeforeAct));
    // relu(conv(x)) + r: after the activation.
    let post = |s: u64| {
        let mut b = B::new(s);
        let x = b.input(&[1, 4, 5, 5]);
        let y = b.conv("c", x, [4, 3, 1, 1], true);
        let y = b.op("relu", Op::Unary(UnaryOp::Relu), &[y]);
        let y = b.op("add", Op::Binary(BinaryOp::Add), &[y, x]);
        b.finish(y)
    };
    check(&rules, &["add", "conv", "relu"], &[("fused_conv", 1)], post);
    // add(y, relu(y)): fusing the add would compute the conv twice, so nothing fuses it.
    let twice = |s: u64| {
        let mut b = B::new(s);
        let x = b.input(&[1, 4, 5, 5]);
        let y = b.conv("c", x, [4, 3, 1, 1], true);
        let r = b.op("relu", Op::Unary(UnaryOp::Relu), &[y]);
        let y = b.op("add", Op::Binary(BinaryOp::Add), &[y, r]);
        b.finish(y)
    };
    check(
        &["fuse-residual-add"],
        &["add"],
        &[("add", 1), ("conv", 1), ("relu", 1)],
        twice,
    );
    let e = epilogue(&rewrite(&post(1), &rules, &["add", "conv", "relu"]));
    assert_eq!((e.act, e.residual), (Activation::Relu, Residual::AfterAct));
}

#[test]
fn rule_fuse_dw_pw() {
    let build = |s: u64| {
        let mut b = B::new(s);
        let x = b.input(&[1, 6, 6, 6]);
        let y = b.conv("dw", x, [6, 3, 2, 6], true);
        let y = b.op("relu6", Op::Clip { min: 0.0, max: 6.0 }, &[y]);
        let y = b.conv("pw", y, [5, 1, 1, 1], false);
        b.finish(y)
    };
    check(
        &["fuse-conv-clip", "fuse-dw-pw"],
        &["conv", "clip", "fused_conv"],
        &[("dw_pw", 1)],
        build,
    );
    // With a residual on the pointwise conv (MobileNetV2's block tail).
    let res = |s: u64| {
        let mut b = B::new(s);
        let x = b.input(&[1, 6, 6, 6]);
        let y = b.conv("dw", x, [6, 3, 1, 6], true);
        let y = b.conv("pw", y, [6, 1, 1, 1], true);
        let y = b.op("add", Op::Binary(BinaryOp::Add), &[x, y]);
        b.finish(y)
    };
    check(
        &["fuse-residual-add", "fuse-dw-pw"],
        &["conv", "add", "fused_conv"],
        &[("dw_pw", 1)],
        res,
    );
    // A grouped (not depthwise) conv does not fuse.
    let grouped = |s: u64| {
        let mut b = B::new(s);
        let x = b.input(&[1, 6, 6, 6]);
        let y = b.conv("gc", x, [6, 3, 1, 3], true);
        let y = b.conv("pw", y, [5, 1, 1, 1], true);
        b.finish(y)
    };
    check(&["fuse-dw-pw"], &["conv"], &[("conv", 2)], grouped);
}

#[test]
fn rule_fuse_classifier() {
    for bias in [true, false] {
        check(&["fuse-classifier"], &["gemm"], &[("classifier", 1)], |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 8, 3, 3]);
            let y = b.op("gap", Op::GlobalAveragePool, &[x]);
            let y = b.op("flat", Op::Reshape { shape: vec![1, 8] }, &[y]);
            let w = b.rand("w", &[10, 8], -1.0, 1.0);
            let mut ins = vec![y, w];
            if bias {
                ins.push(b.rand("c", &[10], -1.0, 1.0));
            }
            let gemm = Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            };
            let y = b.op("fc", gemm, &ins);
            b.finish(y)
        });
    }
}

#[test]
fn rule_fuse_classifier_mean() {
    check(
        &["fuse-classifier-mean"],
        &["gemm"],
        &[("classifier", 1)],
        |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 8, 3, 3]);
            let mean = Op::Reduce {
                kind: ReduceKind::Mean,
                axes: vec![2, 3],
                keepdims: false,
            };
            let y = b.op("mean", mean, &[x]);
            let w = b.rand("w", &[8, 10], -1.0, 1.0);
            let c = b.rand("c", &[10], -1.0, 1.0);
            let gemm = Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: false,
            };
            let y = b.op("fc", gemm, &[y, w, c]);
            b.finish(y)
        },
    );
}

// ----- layout ---------------------------------------------------------------------------

/// ShuffleNet's channel shuffle as torch exports it, on `x: [1, 6, 2, 2]`, 3 groups.
fn shuffle_chain(b: &mut B, x: lnc_ir::Value) -> lnc_ir::Value {
    let y = b.op(
        "r1",
        Op::Reshape {
            shape: vec![1, 3, 2, 2, 2],
        },
        &[x],
    );
    let y = b.op(
        "t",
        Op::Transpose {
            perm: vec![0, 2, 1, 3, 4],
        },
        &[y],
    );
    b.op(
        "r2",
        Op::Reshape {
            shape: vec![1, 6, 2, 2],
        },
        &[y],
    )
}

#[test]
fn rule_cancel_reshape() {
    check(&["cancel-reshape"], &[], &[("reshape", 1)], |s| {
        let mut b = B::new(s);
        let x = b.input(&[2, 6]);
        let y = b.op("r1", Op::Reshape { shape: vec![3, 4] }, &[x]);
        let y = b.op("r2", Op::Reshape { shape: vec![12] }, &[y]);
        b.finish(y)
    });
}

#[test]
fn rule_cancel_transpose() {
    let build = |s: u64, q: Vec<usize>| {
        let mut b = B::new(s);
        let x = b.input(&[2, 3, 4]);
        let y = b.op(
            "t1",
            Op::Transpose {
                perm: vec![1, 2, 0],
            },
            &[x],
        );
        let y = b.op("t2", Op::Transpose { perm: q }, &[y]);
        let y = b.op("relu", Op::Unary(UnaryOp::Relu), &[y]);
        b.finish(y)
    };
    check(&["cancel-transpose"], &[], &[("relu", 1)], |s| {
        build(s, vec![2, 0, 1])
    });
    check(
        &["cancel-transpose"],
        &[],
        &[("relu", 1), ("transpose", 1)],
        |s| build(s, vec![1, 0, 2]),
    );
}

#[test]
fn rule_recognize_channel_shuffle() {
    check(
        &["recognize-channel-shuffle"],
        &["reshape", "transpose"],
        &[("channel_shuffle", 1)],
        |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 6, 2, 2]);
            let y = shuffle_chain(&mut b, x);
            b.finish(y)
        },
    );
}

#[test]
fn rule_shuffle_to_map() {
    check(
        &["shuffle-to-map"],
        &["channel_shuffle"],
        &[("channel_map", 1)],
        |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 6, 2, 2]);
            let y = b.op("sh", Op::ChannelShuffle { groups: 2 }, &[x]);
            b.finish(y)
        },
    );
}

#[test]
fn rule_slice_to_map() {
    check(&["slice-to-map"], &["slice"], &[("channel_map", 1)], |s| {
        let mut b = B::new(s);
        let x = b.input(&[1, 7, 2, 2]);
        let sl = SliceAxis {
            axis: 1,
            start: 6,
            end: 0,
            step: -2,
        };
        let y = b.op("sl", Op::Slice { axes: vec![sl] }, &[x]);
        b.finish(y)
    });
}

#[test]
fn rule_split_to_map() {
    check(
        &["split-to-map"],
        &["split"],
        &[("channel_map", 2), ("concat", 1)],
        |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 6, 2, 2]);
            let sp =
                b.g.add_node(
                    "split",
                    Op::Split {
                        axis: 1,
                        sizes: vec![2, 4],
                    },
                    &[x],
                )
                .unwrap();
            let p0 = lnc_ir::Value { node: sp, port: 0 };
            let p1 = lnc_ir::Value { node: sp, port: 1 };
            let y = b.op("cat", Op::Concat { axis: 1 }, &[p1, p0]);
            b.finish(y)
        },
    );
}

#[test]
fn rule_concat_to_map() {
    check(
        &["concat-to-map"],
        &["concat"],
        &[("channel_map", 1)],
        |s| {
            let mut b = B::new(s);
            let x = b.input(&[1, 2, 2, 2]);
            let z = b.input(&[1, 3, 2, 2]);
            let y = b.op("cat", Op::Concat { axis: 1 }, &[x, z, x]);
            b.finish(y)
        },
    );
}

#[test]
fn rule_compose_channel_maps() {
    // ShuffleNetV2's unit tail: split -> concat(half, branch) -> shuffle, as maps.
    let rules = [
        "split-to-map",
        "concat-to-map",
        "recognize-channel-shuffle",
        "shuffle-to-map",
        "compose-channel-maps",
    ];
    let avoid = ["split", "concat", "reshape", "transpose", "channel_shuffle"];
    // One map is the branch's input (the second half of x), one the unit's output.
    check(&rules, &avoid, &[("channel_map", 2), ("relu", 1)], |s| {
        let mut b = B::new(s);
        let x = b.input(&[1, 6, 2, 2]);
        let sp =
            b.g.add_node(
                "split",
                Op::Split {
                    axis: 1,
                    sizes: vec![3, 3],
                },
                &[x],
            )
            .unwrap();
        let p0 = lnc_ir::Value { node: sp, port: 0 };
        let p1 = lnc_ir::Value { node: sp, port: 1 };
        let br = b.op("branch", Op::Unary(UnaryOp::Relu), &[p1]);
        let y = b.op("cat", Op::Concat { axis: 1 }, &[p0, br]);
        let y = shuffle_chain(&mut b, y);
        b.finish(y)
    });
    // Without composition two maps remain.
    let mut b = B::new(0);
    let x = b.input(&[1, 6, 2, 2]);
    let m1 = b.op("m1", Op::ChannelShuffle { groups: 3 }, &[x]);
    let m2 = b.op("m2", Op::ChannelShuffle { groups: 2 }, &[m1]);
    let g = b.finish(m2);
    let out = rewrite(&g, &["shuffle-to-map"], &["channel_shuffle"]);
    assert_eq!(hist(&out), h(&[("channel_map", 2)]));
    let out = rewrite(
        &g,
        &["shuffle-to-map", "compose-channel-maps"],
        &["channel_shuffle"],
    );
    assert_eq!(hist(&out), h(&[("channel_map", 1)]));
    assert_same(&g, &out, 2);
}

#[test]
fn rule_remove_identity_map() {
    check(&["remove-identity-map"], &[], &[("relu", 1)], |s| {
        let mut b = B::new(s);
        let x = b.input(&[1, 3, 2, 2]);
        let map = (0..3)
            .map(|c| ChannelRef {
                input: 0,
                channel: c,
            })
            .collect();
        let y = b.op("m", Op::ChannelMap { map }, &[x]);
        let y = b.op("relu", Op::Unary(UnaryOp::Relu), &[y]);
        b.finish(y)
    });
}

#[test]
fn rule_absorb_map_into_conv() {
    let build = |s: u64, k: usize| {
        let mut b = B::new(s);
        let x = b.input(&[1, 6, 4, 4]);
        let y = b.op("sh", Op::ChannelShuffle { groups: 2 }, &[x]);
        let y = b.conv("c", y, [5, k, 1, 1], s == 0);
        b.finish(y)
    };
    for k in [1, 3] {
        check(
            &["shuffle-to-map", "absorb-map-into-conv"],
            &["channel_shuffle"],
            &[("conv", 1)],
            |s| build(s, k),
        );
    }
    // A group conv cannot absorb a shuffle.
    let mut b = B::new(0);
    let x = b.input(&[1, 6, 4, 4]);
    let y = b.op("sh", Op::ChannelShuffle { groups: 2 }, &[x]);
    let y = b.conv("c", y, [6, 1, 1, 3], true);
    let g = b.finish(y);
    let out = rewrite(
        &g,
        &["shuffle-to-map", "absorb-map-into-conv"],
        &["channel_shuffle"],
    );
    assert_eq!(hist(&out), h(&[("channel_map", 1), ("conv", 1)]));
}

#[test]
fn fused_ops_print_and_parse() {
    // The fused ops made above survive the .lnir round trip.
    let mut b = B::new(0);
    let x = b.input(&[1, 6, 6, 6]);
    let y = b.conv("dw", x, [6, 3, 1, 6], true);
    let y = b.op("hs", Op::Unary(UnaryOp::HardSwish), &[y]);
    let y = b.conv("pw", y, [6, 1, 1, 1], true);
    let y = b.op("add", Op::Binary(BinaryOp::Add), &[x, y]);
    let y = b.op("sh", Op::ChannelShuffle { groups: 3 }, &[y]);
    let g = b.finish(y);
    let rules = [
        "fuse-conv-hard-swish",
        "fuse-residual-add",
        "fuse-dw-pw",
        "shuffle-to-map",
    ];
    let out = rewrite(
        &g,
        &rules,
        &["conv", "add", "hard_swish", "fused_conv", "channel_shuffle"],
    );
    assert_eq!(hist(&out), h(&[("channel_map", 1), ("dw_pw", 1)]));
    let text = lnc_ir::text::print(&out, &Default::default());
    let back = lnc_ir::text::parse(&text).unwrap();
    assert_eq!(lnc_ir::text::print(&back, &Default::default()), text);
    let _ = (conv2d(1, 1, 1), Tensor::scalar_f32(0.0));
}
