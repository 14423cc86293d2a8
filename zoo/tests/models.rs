//! Structure of the zoo's models: every model builds and verifies at the tiny size and at
//! 224 / width 1; parameter counts match the published (torchvision) numbers; MACs are
//! pinned; node naming, the exported op patterns, determinism and option errors.

mod common;

use common::{count, macs, names, tiny, torch_params};
use lnc_ir::{verify::verify, DType, Graph, Op, TensorType};
use lnc_zoo::{build, min_input_size, Error, ZooOptions};

fn output_type(g: &Graph) -> &TensorType {
    g.value_type(g.outputs()[0].value)
}

fn check_interface(name: &str, g: &Graph, opts: &ZooOptions) {
    verify(g).unwrap_or_else(|e| panic!("{name}: {e}"));
    let s = opts.input_size;
    assert_eq!(g.inputs().len(), 1, "{name}");
    let input = g.node(g.inputs()[0]);
    assert_eq!(input.name, "input", "{name}");
    assert_eq!(
        input.outputs[0],
        TensorType::f32(vec![1, 3, s, s]),
        "{name}"
    );
    assert_eq!(g.outputs().len(), 1, "{name}");
    assert_eq!(g.outputs()[0].name, "output", "{name}");
    let out = output_type(g);
    assert_eq!(out.dtype, DType::F32, "{name}");
    let expected = if name == "espnet" {
        vec![1, opts.classes, s.div_ceil(8), s.div_ceil(8)]
    } else {
        vec![1, opts.classes]
    };
    assert_eq!(out.shape, expected, "{name}");
}

#[test]
fn every_model_builds_tiny_and_verifies() {
    for name in names() {
        let opts = tiny();
        let g = build(name, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_interface(name, &g, &opts);
    }
}

/// Parameters (torch-style, see `common::torch_params`) and MACs at 224 / width 1 / 1000
/// classes. Parameter counts are torchvision's `num_params` where the model exists there;
/// the MACs match torchvision's `_ops` (GFLOPs counted as MACs) to the published digits.
const FULL_SIZE: [(&str, usize, u64); 13] = [
    // Paper: 4.2M params, 569M MACs (with BN: 4,231,976).
    ("mobilenet_v1", 4_231_976, 568_740_352),
    // torchvision: 3,504,872 params, 0.301 GFLOPs.
    ("mobilenet_v2", 3_504_872, 300_774_272),
    // torchvision: 2,542,856 params, 0.057 GFLOPs.
    ("mobilenet_v3_small", 2_542_856, 56_510_400),
    // torchvision: 5,483,032 params, 0.217 GFLOPs.
    ("mobilenet_v3_large", 5_483_032, 216_589_760),
    // Paper (1x, g=3): 140 MFLOPs (counted as multiply-adds).
    ("shufflenet_v1", 1_865_728, 137_460_672),
    // torchvision: 2,278,604 params, 0.14 GFLOPs.
    ("shufflenet_v2_x1_0", 2_278_604, 144_907_992),
    // torchvision: 1,248,424 params, 0.819 GFLOPs.
    ("squeezenet1_0", 1_248_424, 818_924_576),
    // torchvision: 1,235,496 params, 0.349 GFLOPs.
    ("squeezenet1_1", 1_235_496, 349_151_936),
    ("xception_entry", 1_835_760, 1_506_267_872),
    // Segmentation logits at 28x28 with 1000 classes.
    ("espnet", 600_329, 528_794_672),
    // torchvision: 4,383,312 params, 0.314 GFLOPs.
    ("mnasnet1_0", 4_383_312, 314_415_872),
    // timm `semnasnet_100` / paper: 3.9M params, 312M MACs.
    ("mnasnet_a1", 3_887_038, 311_579_072),
    // torchvision: 5,288,548 params, 0.386 GFLOPs.
    ("efficientnet_b0", 5_288_548, 385_814_752),
];

#[test]
fn full_size_models_verify_and_match_published_counts() {
    assert_eq!(
        FULL_SIZE.iter().map(|m| m.0).collect::<Vec<_>>(),
        names(),
        "table covers every model"
    );
    let opts = ZooOptions::default();
    for (name, params, mac) in FULL_SIZE {
        let g = build(name, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_interface(name, &g, &opts);
        assert_eq!(
            torch_params(&g),
            params,
            "{name}: torch-style parameter count"
        );
        assert_eq!(macs(&g), mac, "{name}: MACs");
    }
}

#[test]
fn models_are_deterministic() {
    for name in names() {
        let a = build(name, &tiny()).unwrap();
        let b = build(name, &tiny()).unwrap();
        let (ia, ib) = (a.node_ids(), b.node_ids());
        assert_eq!(ia.len(), ib.len(), "{name}");
        for (&x, &y) in ia.iter().zip(&ib) {
            assert_eq!(a.node(x), b.node(y), "{name}");
            assert_eq!(a.node_inputs(x), b.node_inputs(y), "{name}");
        }
        assert_eq!(a.consts().len(), b.consts().len(), "{name}");
        for (s, t) in a.consts().iter().zip(b.consts()) {
            assert!(s.bit_eq(t), "{name}: constants differ between two builds");
        }
        let c = build(name, &ZooOptions { seed: 1, ..tiny() }).unwrap();
        assert!(
            a.consts().iter().zip(c.consts()).any(|(s, t)| !s.bit_eq(t)),
            "{name}: the seed does not change the weights"
        );
    }
}

/// A fingerprint of a whole graph: node names and ops in creation order, and every constant
/// bit for bit.
fn fingerprint(g: &Graph) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| {
        for b in v.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for id in g.node_ids() {
        let n = g.node(id);
        n.name.bytes().for_each(|b| eat(b as u64));
        n.op.name().bytes().for_each(|b| eat(b as u64));
    }
    for t in g.consts() {
        t.shape().iter().for_each(|&d| eat(d as u64));
        match t.as_f32() {
            Some(a) => a.iter().for_each(|v| eat(v.to_bits() as u64)),
            None => t.to_i64_vec().into_iter().for_each(|v| eat(v as u64)),
        }
    }
    h
}

/// The weights are generated with integer and correctly rounded IEEE operations only, so the
/// same seed gives the same bits on every platform; these fingerprints pin them (an
/// intentional change of the generator or the calibration updates this table).
#[test]
fn tiny_models_have_pinned_fingerprints() {
    let pinned: [(&str, u64); 13] = [
        ("mobilenet_v1", 0x5fa7_e914_c8d7_a281),
        ("mobilenet_v2", 0x523f_6343_2bd8_a00b),
        ("mobilenet_v3_small", 0xb096_e570_f250_e7f9),
        ("mobilenet_v3_large", 0x3b3e_223e_bd83_ef3f),
        ("shufflenet_v1", 0x58f9_5220_5615_e149),
        ("shufflenet_v2_x1_0", 0x80ef_ad02_b218_2808),
        ("squeezenet1_0", 0xf399_2799_8968_15ae),
        ("squeezenet1_1", 0x356e_6d3c_bfec_2048),
        ("xception_entry", 0x84c2_728f_5e16_893d),
        ("espnet", 0x9581_2c3b_0c6d_21ce),
        ("mnasnet1_0", 0xba38_9855_a9e8_c49e),
        ("mnasnet_a1", 0x4b32_3b18_6941_b8bc),
        ("efficientnet_b0", 0x9e49_a23c_6e6f_733e),
    ];
    let got: Vec<(&str, u64)> = names()
        .into_iter()
        .map(|n| (n, fingerprint(&build(n, &tiny()).unwrap())))
        .collect();
    assert_eq!(got, pinned);
}

#[test]
fn tiny_variants_have_the_expected_shapes() {
    for name in names() {
        let g = build(
            name,
            &ZooOptions {
                classes: 10,
                ..tiny()
            },
        )
        .unwrap();
        let out = output_type(&g);
        let expected: Vec<usize> = if name == "espnet" {
            vec![1, 10, 4, 4]
        } else {
            vec![1, 10]
        };
        assert_eq!(out.shape, expected, "{name}");
    }
}

fn node<'g>(g: &'g Graph, name: &str) -> &'g lnc_ir::Node {
    let id = g
        .node_by_name(name)
        .unwrap_or_else(|| panic!("no node '{name}' in {}", g.name));
    g.node(id)
}

/// Convolutions feeding a batch norm have no bias (torch's `bias=False`), and every batch
/// norm reads a convolution, as torch exports `Conv2d → BatchNorm2d` before folding (ESPNet's
/// batch norms read concats and residual adds, as its reference code does).
#[test]
fn batch_norms_follow_bias_free_convolutions() {
    for name in names() {
        let g = build(name, &tiny()).unwrap();
        let mut bns = 0;
        for id in g.node_ids() {
            if !matches!(g.node(id).op, Op::BatchNorm { .. }) {
                continue;
            }
            bns += 1;
            let src = g.node_inputs(id)[0].node;
            match &g.node(src).op {
                Op::Conv(_) => assert_eq!(
                    g.node_inputs(src).len(),
                    2,
                    "{name}: {} has a bias",
                    g.node(src).name
                ),
                Op::Concat { .. } | Op::Binary(_) if name == "espnet" => {}
                op => panic!(
                    "{name}: batch norm {} reads a {}",
                    g.node(id).name,
                    op.name()
                ),
            }
        }
        let squeezenet = name.starts_with("squeezenet");
        assert_eq!(bns == 0, squeezenet, "{name}: {bns} batch norms");
    }
}

#[test]
fn mobilenet_v2_is_exported_like_torchvision() {
    let g = build("mobilenet_v2", &ZooOptions::default()).unwrap();
    assert!(matches!(node(&g, "features.2.conv.0.0").op, Op::Conv(_)));
    assert!(
        matches!(node(&g, "features.2.conv.0.1").op, Op::BatchNorm { epsilon } if epsilon == 1e-5)
    );
    assert_eq!(
        node(&g, "features.2.conv.0.2").op,
        Op::Clip { min: 0.0, max: 6.0 }
    );
    match &node(&g, "features.2.conv.1.0").op {
        Op::Conv(c) => assert_eq!((c.group, c.strides, c.pads), (96, [2, 2], [1, 1, 1, 1])),
        op => panic!("{op:?}"),
    }
    // Linear bottleneck: the projection's batch norm feeds the residual add directly.
    assert!(matches!(
        node(&g, "features.3.add").op,
        Op::Binary(lnc_ir::BinaryOp::Add)
    ));
    let rv = g
        .node_by_name("features.3.conv.3.running_var")
        .expect("running_var constant");
    assert_eq!(g.node(rv).outputs[0].shape, vec![24]);
    assert_eq!(
        count(&g, |op| matches!(op, Op::Binary(lnc_ir::BinaryOp::Add))),
        10
    );
    assert!(matches!(node(&g, "avgpool").op, Op::GlobalAveragePool));
    assert_eq!(
        node(&g, "flatten").op,
        Op::Reshape {
            shape: vec![1, 1280]
        }
    );
    assert!(matches!(
        node(&g, "classifier.1").op,
        Op::Gemm { alpha, beta, trans_a: false, trans_b: true } if alpha == 1.0 && beta == 1.0
    ));
}

#[test]
fn mobilenet_v3_small_has_hard_swish_and_squeeze_excite() {
    let g = build("mobilenet_v3_small", &ZooOptions::default()).unwrap();
    assert_eq!(
        node(&g, "features.0.2").op,
        Op::Unary(lnc_ir::UnaryOp::HardSwish)
    );
    assert!(matches!(node(&g, "features.0.1").op, Op::BatchNorm { epsilon } if epsilon == 1e-3));
    assert!(matches!(
        node(&g, "features.1.block.1.avgpool").op,
        Op::GlobalAveragePool
    ));
    assert_eq!(
        node(&g, "features.1.block.1.fc1").outputs[0].shape,
        vec![1, 8, 1, 1]
    );
    assert_eq!(
        node(&g, "features.1.block.1.activation").op,
        Op::Unary(lnc_ir::UnaryOp::Relu)
    );
    assert_eq!(
        node(&g, "features.1.block.1.scale_activation").op,
        Op::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5
        }
    );
    assert!(matches!(
        node(&g, "features.1.block.1.mul").op,
        Op::Binary(lnc_ir::BinaryOp::Mul)
    ));
    assert_eq!(count(&g, |op| matches!(op, Op::HardSigmoid { .. })), 9);
}

#[test]
fn shufflenets_split_and_shuffle_channels() {
    let g = build("shufflenet_v2_x1_0", &ZooOptions::default()).unwrap();
    assert_eq!(
        node(&g, "stage2.1.split").op,
        Op::Split {
            axis: 1,
            sizes: vec![58, 58]
        }
    );
    assert_eq!(
        node(&g, "stage2.1.reshape").op,
        Op::Reshape {
            shape: vec![1, 2, 58, 28, 28]
        }
    );
    assert_eq!(
        node(&g, "stage2.1.transpose").op,
        Op::Transpose {
            perm: vec![0, 2, 1, 3, 4]
        }
    );
    assert_eq!(
        node(&g, "stage2.1.reshape_1").op,
        Op::Reshape {
            shape: vec![1, 116, 28, 28]
        }
    );
    assert_eq!(count(&g, |op| matches!(op, Op::Split { .. })), 13);
    assert_eq!(count(&g, |op| matches!(op, Op::Transpose { .. })), 16);

    let g = build("shufflenet_v1", &ZooOptions::default()).unwrap();
    let group = |n: &str| match &node(&g, n).op {
        Op::Conv(c) => c.group,
        op => panic!("{op:?}"),
    };
    assert_eq!(
        group("stage2.0.conv1"),
        1,
        "the first pointwise layer is not grouped"
    );
    assert_eq!((group("stage2.0.conv3"), group("stage3.1.conv1")), (3, 3));
    assert_eq!(
        node(&g, "stage2.0.reshape").op,
        Op::Reshape {
            shape: vec![1, 3, 20, 56, 56]
        }
    );
    assert!(matches!(
        node(&g, "stage3.0.shortcut").op,
        Op::AveragePool {
            count_include_pad: true,
            ..
        }
    ));
    assert_eq!(
        node(&g, "stage4.0.concat").outputs[0].shape,
        vec![1, 960, 7, 7]
    );
}

#[test]
fn squeezenets_use_ceil_mode_pools_and_a_conv_classifier() {
    for (name, pools) in [("squeezenet1_0", [2, 6, 11]), ("squeezenet1_1", [2, 5, 8])] {
        let g = build(name, &ZooOptions::default()).unwrap();
        for p in pools {
            match &node(&g, &format!("features.{p}")).op {
                Op::MaxPool(pool) => {
                    assert!(pool.ceil_mode && pool.kernel == [3, 3] && pool.strides == [2, 2])
                }
                op => panic!("{name}: features.{p} is {op:?}"),
            }
        }
        assert_eq!(node(&g, "features.3.concat").outputs[0].shape[1], 128);
        assert_eq!(
            node(&g, "classifier.1").outputs[0].shape,
            vec![1, 1000, 13, 13]
        );
        assert!(matches!(node(&g, "classifier.3").op, Op::GlobalAveragePool));
        assert_eq!(
            node(&g, "flatten").op,
            Op::Reshape {
                shape: vec![1, 1000]
            }
        );
    }
}

#[test]
fn xception_and_espnet_have_their_characteristic_layers() {
    let g = build("xception_entry", &ZooOptions::default()).unwrap();
    match &node(&g, "block2.rep.6").op {
        Op::MaxPool(p) => assert_eq!(
            (p.kernel, p.strides, p.pads),
            ([3, 3], [2, 2], [1, 1, 1, 1])
        ),
        op => panic!("{op:?}"),
    }
    match &node(&g, "block2.skip").op {
        Op::Conv(c) => assert_eq!((c.kernel, c.strides), ([1, 1], [2, 2])),
        op => panic!("{op:?}"),
    }
    assert_eq!(
        node(&g, "block3.add").outputs[0].shape,
        vec![1, 728, 14, 14]
    );

    let g = build("espnet", &ZooOptions::default()).unwrap();
    for (d, n) in [(1, 28), (2, 25), (4, 25), (8, 25), (16, 25)] {
        match &node(&g, &format!("level3.0.d{d}.conv")).op {
            Op::Conv(c) => assert_eq!((c.dilations, c.pads[0]), ([d, d], d)),
            op => panic!("{op:?}"),
        }
        assert_eq!(
            node(&g, &format!("level3.0.d{d}.conv")).outputs[0].shape[1],
            n
        );
    }
    assert_eq!(node(&g, "b3.act.weight").outputs[0].shape, vec![256, 1, 1]);
    assert_eq!(count(&g, |op| matches!(op, Op::PRelu)), 16);
}

#[test]
fn efficientnet_and_mnasnet_a1_use_sigmoid_gates() {
    let g = build("efficientnet_b0", &ZooOptions::default()).unwrap();
    assert_eq!(
        node(&g, "features.0.2.sigmoid").op,
        Op::Unary(lnc_ir::UnaryOp::Sigmoid)
    );
    assert!(matches!(
        node(&g, "features.0.2").op,
        Op::Binary(lnc_ir::BinaryOp::Mul)
    ));
    assert_eq!(
        node(&g, "features.2.0.block.2.fc1").outputs[0].shape,
        vec![1, 4, 1, 1]
    );
    let g = build("mnasnet_a1", &ZooOptions::default()).unwrap();
    assert_eq!(
        node(&g, "blocks.2.0.se.conv_reduce").outputs[0].shape,
        vec![1, 6, 1, 1]
    );
    assert_eq!(
        node(&g, "blocks.2.0.se.gate").op,
        Op::Unary(lnc_ir::UnaryOp::Sigmoid)
    );
    assert!(
        g.node_by_name("blocks.3.0.se.gate").is_none(),
        "no squeeze-excite in the 80-channel stage"
    );
}

#[test]
fn width_rounds_channels_like_each_family() {
    let ch = |name: &str, width: f32, node_name: &str| {
        let g = build(name, &ZooOptions { width, ..tiny() }).unwrap();
        node(&g, node_name).outputs[0].shape[1]
    };
    // _make_divisible: 32 * 0.35 = 11.2 -> 16; 1280 stays 1280 below width 1.
    assert_eq!(ch("mobilenet_v2", 0.35, "features.0.0"), 16);
    assert_eq!(ch("mobilenet_v2", 0.35, "features.18.0"), 1280);
    assert_eq!(ch("mobilenet_v2", 1.4, "features.18.0"), 1792);
    // ShuffleNet V2 uses the published stage widths for 0.5 / 1.5 / 2.0.
    assert_eq!(ch("shufflenet_v2_x1_0", 0.5, "stage2.0.concat"), 48);
    assert_eq!(ch("shufflenet_v2_x1_0", 2.0, "conv5.0"), 2048);
    // ShuffleNet V1 keeps every grouped layer divisible by g = 3.
    for w in [0.1, 0.25, 0.3, 0.5, 0.7] {
        let g = build("shufflenet_v1", &ZooOptions { width: w, ..tiny() }).unwrap();
        verify(&g).unwrap();
        for id in g.node_ids() {
            if let Op::Conv(c) = &g.node(id).op {
                assert_eq!(g.node(id).outputs[0].shape[1] % c.group, 0);
            }
        }
    }
}

fn options_error(name: &str, opts: ZooOptions) -> String {
    match build(name, &opts) {
        Err(e @ Error::Options { .. }) => e.to_string(),
        other => panic!("{name} with {opts:?}: expected an options error, got {other:?}"),
    }
}

#[test]
fn invalid_options_are_errors() {
    let d = ZooOptions::default;
    for width in [0.0, -1.0, f32::NAN, f32::INFINITY, 4.5] {
        let msg = options_error("mobilenet_v2", ZooOptions { width, ..d() });
        assert!(msg.starts_with("model 'mobilenet_v2': width"), "{msg}");
    }
    assert!(options_error("mnasnet1_0", ZooOptions { classes: 0, ..d() }).contains("classes"));
    assert!(options_error(
        "mnasnet1_0",
        ZooOptions {
            classes: 1_000_000,
            ..d()
        }
    )
    .contains("classes"));
    assert!(options_error(
        "espnet",
        ZooOptions {
            input_size: 4096,
            ..d()
        }
    )
    .contains("larger than"));
    assert!(matches!(build("resnet50", &d()), Err(Error::Unknown(n)) if n == "resnet50"));
}

#[test]
fn inputs_below_the_minimum_are_errors_and_the_minimum_builds() {
    for name in names() {
        let min = min_input_size(name).unwrap();
        let opts = ZooOptions {
            input_size: min,
            ..tiny()
        };
        let g = build(name, &opts).unwrap_or_else(|e| panic!("{name} at its minimum {min}: {e}"));
        check_interface(name, &g, &opts);
        let msg = options_error(
            name,
            ZooOptions {
                input_size: min - 1,
                ..tiny()
            },
        );
        assert!(msg.contains("too small"), "{msg}");
    }
    assert_eq!(min_input_size("nope"), None);
}

#[test]
fn list_describes_every_model() {
    let list = lnc_zoo::list();
    assert_eq!(list.len(), 13);
    assert!(list.iter().all(|(n, d)| !n.is_empty() && !d.is_empty()));
    let mut sorted: Vec<_> = list.iter().map(|m| m.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), list.len(), "names are unique");
}
