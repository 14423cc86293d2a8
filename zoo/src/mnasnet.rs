//! MnasNet: torchvision's `mnasnet1_0` (the B1 search result: MBConv stacks with 3x3 / 5x5
//! depthwise convolutions, ReLU, no squeeze-excite) and MnasNet-A1 (Tan et al. 2019, Fig. 7:
//! adds squeeze-excite with a sigmoid gate in the 5x5 / 40, 3x3 / 112 and 5x5 / 160 stages).
//!
//! `mnasnet1_0` follows torchvision's `mnasnet.py` (version 2: the stem is width-scaled too,
//! `_round_to_multiple_of(c * alpha, 8)` which equals `_make_divisible`). `mnasnet_a1` follows
//! the TensorFlow reference `mnasnet_a1` block strings with timm's module names (`conv_stem`,
//! `blocks.2.0.conv_pw`, `blocks.2.0.se.conv_reduce`, ...); its squeeze-excite reduces to
//! `max(1, block_input / 4)` channels, and the head keeps 1280 channels at every width.

use crate::builder::{Act, ConvSpec, Net, Opts, BN_EPS, SE_TIMM};
use crate::Error;
use lnc_ir::Value;

/// torchvision `mnasnet1_0` (MnasNet-B1; `width` is torchvision's `alpha`).
pub fn mnasnet1_0(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let d = [32, 16, 24, 40, 80, 96, 192, 320].map(|c| o.ch(c, 8));
    let mut x = net.conv("layers.0", x, &ConvSpec::new(d[0], 3).stride(2))?;
    x = net.bn_act("layers.1", "layers.2", x, Act::Relu, BN_EPS)?;
    x = net.conv("layers.3", x, &ConvSpec::depthwise(d[0], 3))?;
    x = net.bn_act("layers.4", "layers.5", x, Act::Relu, BN_EPS)?;
    x = net.conv("layers.6", x, &ConvSpec::new(d[1], 1))?;
    x = net.bn("layers.7", x, BN_EPS)?;
    // (out, kernel, stride, expansion, repeats)
    let stacks = [
        (d[2], 3, 2, 3, 3),
        (d[3], 5, 2, 3, 3),
        (d[4], 5, 2, 6, 3),
        (d[5], 3, 1, 6, 2),
        (d[6], 5, 2, 6, 4),
        (d[7], 3, 1, 6, 1),
    ];
    for (si, &(out, k, s, e, r)) in stacks.iter().enumerate() {
        for j in 0..r {
            let stride = if j == 0 { s } else { 1 };
            x = inverted_residual_b1(net, &format!("layers.{}.{j}", 8 + si), x, out, k, stride, e)?;
        }
    }
    x = net.conv("layers.14", x, &ConvSpec::new(1280, 1))?;
    x = net.bn_act("layers.15", "layers.16", x, Act::Relu, BN_EPS)?;
    net.classifier("avgpool", "classifier.1", x, o.classes)
}

/// torchvision's `_InvertedResidual`: 1x1 → BN → ReLU → kxk depthwise → BN → ReLU → 1x1 → BN.
fn inverted_residual_b1(
    net: &mut Net,
    prefix: &str,
    x: Value,
    out: usize,
    k: usize,
    stride: usize,
    expansion: usize,
) -> Result<Value, Error> {
    let inp = net.channels(x)?;
    let mid = inp * expansion;
    let p = format!("{prefix}.layers");
    let mut y = net.conv(&format!("{p}.0"), x, &ConvSpec::new(mid, 1))?;
    y = net.bn_act(&format!("{p}.1"), &format!("{p}.2"), y, Act::Relu, BN_EPS)?;
    y = net.conv(
        &format!("{p}.3"),
        y,
        &ConvSpec::depthwise(mid, k).stride(stride),
    )?;
    y = net.bn_act(&format!("{p}.4"), &format!("{p}.5"), y, Act::Relu, BN_EPS)?;
    y = net.conv(&format!("{p}.6"), y, &ConvSpec::new(out, 1))?;
    y = net.bn(&format!("{p}.7"), y, BN_EPS)?;
    if inp == out && stride == 1 {
        net.add(&format!("{prefix}.add"), y, x)
    } else {
        Ok(y)
    }
}

/// One MnasNet-A1 stage: (repeats, kernel, stride, expansion, channels, squeeze-excite).
type Stage = (usize, usize, usize, usize, usize, bool);

/// The TensorFlow reference `mnasnet_a1` blocks after the first (`ds_r1_k3_s1_e1_c16`).
const A1_STAGES: [Stage; 6] = [
    (2, 3, 2, 6, 24, false),
    (3, 5, 2, 3, 40, true),
    (4, 3, 2, 6, 80, false),
    (2, 3, 1, 6, 112, true),
    (3, 5, 2, 6, 160, true),
    (1, 3, 1, 6, 320, false),
];

/// MnasNet-A1.
pub fn mnasnet_a1(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let stem = o.ch(32, 8);
    let mut x = net.conv("conv_stem", x, &ConvSpec::new(stem, 3).stride(2))?;
    x = net.bn_act("bn1", "act1", x, Act::Relu, BN_EPS)?;
    // Stage 0: depthwise-separable block without skip.
    x = net.conv("blocks.0.0.conv_dw", x, &ConvSpec::depthwise(stem, 3))?;
    x = net.bn_act("blocks.0.0.bn1", "blocks.0.0.act1", x, Act::Relu, BN_EPS)?;
    x = net.conv("blocks.0.0.conv_pw", x, &ConvSpec::new(o.ch(16, 8), 1))?;
    x = net.bn("blocks.0.0.bn2", x, BN_EPS)?;
    for (si, &(r, k, s, e, c, se)) in A1_STAGES.iter().enumerate() {
        for j in 0..r {
            let stride = if j == 0 { s } else { 1 };
            x = mbconv_a1(
                net,
                &format!("blocks.{}.{j}", si + 1),
                x,
                (o.ch(c, 8), k, stride, e, se),
            )?;
        }
    }
    x = net.conv("conv_head", x, &ConvSpec::new(1280, 1))?;
    x = net.bn_act("bn2", "act2", x, Act::Relu, BN_EPS)?;
    net.classifier("global_pool", "classifier", x, o.classes)
}

/// MBConv of MnasNet-A1: 1x1 → BN → ReLU → kxk depthwise → BN → ReLU → (SE) → 1x1 → BN.
fn mbconv_a1(
    net: &mut Net,
    p: &str,
    x: Value,
    (out, k, stride, e, se): (usize, usize, usize, usize, bool),
) -> Result<Value, Error> {
    let inp = net.channels(x)?;
    let mid = inp * e;
    let mut y = net.conv(&format!("{p}.conv_pw"), x, &ConvSpec::new(mid, 1))?;
    y = net.bn_act(
        &format!("{p}.bn1"),
        &format!("{p}.act1"),
        y,
        Act::Relu,
        BN_EPS,
    )?;
    y = net.conv(
        &format!("{p}.conv_dw"),
        y,
        &ConvSpec::depthwise(mid, k).stride(stride),
    )?;
    y = net.bn_act(
        &format!("{p}.bn2"),
        &format!("{p}.act2"),
        y,
        Act::Relu,
        BN_EPS,
    )?;
    if se {
        y = net.squeeze_excite(
            &format!("{p}.se"),
            y,
            (inp / 4).max(1),
            (Act::Relu, Act::Sigmoid),
            &SE_TIMM,
        )?;
    }
    y = net.conv(&format!("{p}.conv_pwl"), y, &ConvSpec::new(out, 1))?;
    y = net.bn(&format!("{p}.bn3"), y, BN_EPS)?;
    if stride == 1 && inp == out {
        net.add(&format!("{p}.add"), y, x)
    } else {
        Ok(y)
    }
}
