//! MobileNet V1 (depthwise-separable convolutions), V2 (inverted residuals, linear
//! bottlenecks, ReLU6) and V3 small / large (h-swish, squeeze-excite with a hard-sigmoid gate).
//!
//! V2 and V3 follow torchvision (`mobilenetv2.py`, `mobilenetv3.py`) layer for layer, including
//! the `_make_divisible` channel rounding of the width multiplier and V3's batch-norm epsilon
//! 0.001. V1 is not in torchvision; it follows the paper's Table 1 (BN + ReLU after every
//! convolution, `features.N` = one depthwise-separable block, `features.N.0-2` depthwise,
//! `features.N.3-5` pointwise) with the same `_make_divisible` rounding.

use crate::builder::{make_divisible, Act, ConvSpec, Net, Opts, BN_EPS, SE_TORCHVISION};
use crate::Error;
use lnc_ir::Value;

/// MobileNet V1: 3x3/2 stem, 13 depthwise-separable blocks, average pool, Linear.
pub fn mobilenet_v1(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    const BLOCKS: [(usize, usize); 13] = [
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    ];
    let mut x = net.conv_bn_act(
        "features.0",
        x,
        &ConvSpec::new(o.ch(32, 8), 3).stride(2),
        Some(Act::Relu),
        BN_EPS,
    )?;
    for (i, &(out, stride)) in BLOCKS.iter().enumerate() {
        let p = format!("features.{}", i + 1);
        let cin = net.channels(x)?;
        x = net.conv(
            &format!("{p}.0"),
            x,
            &ConvSpec::depthwise(cin, 3).stride(stride),
        )?;
        x = net.bn_act(&format!("{p}.1"), &format!("{p}.2"), x, Act::Relu, BN_EPS)?;
        x = net.conv(&format!("{p}.3"), x, &ConvSpec::new(o.ch(out, 8), 1))?;
        x = net.bn_act(&format!("{p}.4"), &format!("{p}.5"), x, Act::Relu, BN_EPS)?;
    }
    net.classifier("avgpool", "classifier", x, o.classes)
}

/// MobileNet V2 (torchvision `mobilenet_v2`).
pub fn mobilenet_v2(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    // (expansion t, channels c, repeats n, stride s)
    const SETTING: [(usize, usize, usize, usize); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let last_channel = make_divisible(1280.0 * o.width.max(1.0), 8);
    let mut x = net.conv_bn_act(
        "features.0",
        x,
        &ConvSpec::new(o.ch(32, 8), 3).stride(2),
        Some(Act::Relu6),
        BN_EPS,
    )?;
    let mut idx = 1;
    for &(t, c, n, s) in &SETTING {
        let out = o.ch(c, 8);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            x = inverted_residual_v2(net, &format!("features.{idx}"), x, out, stride, t)?;
            idx += 1;
        }
    }
    let x = net.conv_bn_act(
        &format!("features.{idx}"),
        x,
        &ConvSpec::new(last_channel, 1),
        Some(Act::Relu6),
        BN_EPS,
    )?;
    net.classifier("avgpool", "classifier.1", x, o.classes)
}

/// torchvision's V2 `InvertedResidual`: `(1x1 expand) → 3x3 depthwise → 1x1 linear projection`,
/// plus the input when the stride is 1 and the channel count is unchanged.
fn inverted_residual_v2(
    net: &mut Net,
    prefix: &str,
    x: Value,
    out: usize,
    stride: usize,
    expand: usize,
) -> Result<Value, Error> {
    let inp = net.channels(x)?;
    let hidden = inp * expand;
    let p = format!("{prefix}.conv");
    let mut y = x;
    let mut i = 0;
    if expand != 1 {
        y = net.conv_bn_act(
            &format!("{p}.0"),
            y,
            &ConvSpec::new(hidden, 1),
            Some(Act::Relu6),
            BN_EPS,
        )?;
        i = 1;
    }
    y = net.conv_bn_act(
        &format!("{p}.{i}"),
        y,
        &ConvSpec::depthwise(hidden, 3).stride(stride),
        Some(Act::Relu6),
        BN_EPS,
    )?;
    y = net.conv(&format!("{p}.{}", i + 1), y, &ConvSpec::new(out, 1))?;
    y = net.bn(&format!("{p}.{}", i + 2), y, BN_EPS)?;
    if stride == 1 && inp == out {
        net.add(&format!("{prefix}.add"), x, y)
    } else {
        Ok(y)
    }
}

/// One row of torchvision's `InvertedResidualConfig` table (channels before width scaling).
struct Bneck {
    cin: usize,
    kernel: usize,
    expanded: usize,
    out: usize,
    se: bool,
    hardswish: bool,
    stride: usize,
}

const fn b(
    cin: usize,
    kernel: usize,
    expanded: usize,
    out: usize,
    se: bool,
    hs: bool,
    stride: usize,
) -> Bneck {
    Bneck {
        cin,
        kernel,
        expanded,
        out,
        se,
        hardswish: hs,
        stride,
    }
}

const V3_SMALL: [Bneck; 11] = [
    b(16, 3, 16, 16, true, false, 2),
    b(16, 3, 72, 24, false, false, 2),
    b(24, 3, 88, 24, false, false, 1),
    b(24, 5, 96, 40, true, true, 2),
    b(40, 5, 240, 40, true, true, 1),
    b(40, 5, 240, 40, true, true, 1),
    b(40, 5, 120, 48, true, true, 1),
    b(48, 5, 144, 48, true, true, 1),
    b(48, 5, 288, 96, true, true, 2),
    b(96, 5, 576, 96, true, true, 1),
    b(96, 5, 576, 96, true, true, 1),
];

const V3_LARGE: [Bneck; 15] = [
    b(16, 3, 16, 16, false, false, 1),
    b(16, 3, 64, 24, false, false, 2),
    b(24, 3, 72, 24, false, false, 1),
    b(24, 5, 72, 40, true, false, 2),
    b(40, 5, 120, 40, true, false, 1),
    b(40, 5, 120, 40, true, false, 1),
    b(40, 3, 240, 80, false, true, 2),
    b(80, 3, 200, 80, false, true, 1),
    b(80, 3, 184, 80, false, true, 1),
    b(80, 3, 184, 80, false, true, 1),
    b(80, 3, 480, 112, true, true, 1),
    b(112, 3, 672, 112, true, true, 1),
    b(112, 5, 672, 160, true, true, 2),
    b(160, 5, 960, 160, true, true, 1),
    b(160, 5, 960, 160, true, true, 1),
];

/// MobileNet V3 batch norms use `eps = 0.001`.
const V3_EPS: f32 = 1e-3;

/// MobileNet V3 small (torchvision `mobilenet_v3_small`).
pub fn mobilenet_v3_small(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    mobilenet_v3(net, x, o, &V3_SMALL, 1024)
}

/// MobileNet V3 large (torchvision `mobilenet_v3_large`).
pub fn mobilenet_v3_large(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    mobilenet_v3(net, x, o, &V3_LARGE, 1280)
}

fn mobilenet_v3(
    net: &mut Net,
    x: Value,
    o: &Opts,
    table: &[Bneck],
    last: usize,
) -> Result<Value, Error> {
    let first = o.ch(table[0].cin, 8);
    let mut x = net.conv_bn_act(
        "features.0",
        x,
        &ConvSpec::new(first, 3).stride(2),
        Some(Act::HardSwish),
        V3_EPS,
    )?;
    for (i, cfg) in table.iter().enumerate() {
        x = bneck_v3(net, &format!("features.{}", i + 1), x, cfg, o)?;
    }
    let last_in = net.channels(x)?;
    let x = net.conv_bn_act(
        &format!("features.{}", table.len() + 1),
        x,
        &ConvSpec::new(6 * last_in, 1),
        Some(Act::HardSwish),
        V3_EPS,
    )?;
    let y = net.gap("avgpool", x)?;
    let y = net.flatten("flatten", y)?;
    let y = net.linear("classifier.0", y, o.ch(last, 8))?;
    let y = net.act("classifier.1", y, Act::HardSwish)?;
    net.linear("classifier.3", y, o.classes)
}

/// torchvision's V3 `InvertedResidual`: `(1x1 expand) → kxk depthwise → (SE) → 1x1 project`.
fn bneck_v3(net: &mut Net, prefix: &str, x: Value, cfg: &Bneck, o: &Opts) -> Result<Value, Error> {
    let (cin, exp, out) = (o.ch(cfg.cin, 8), o.ch(cfg.expanded, 8), o.ch(cfg.out, 8));
    let act = if cfg.hardswish {
        Act::HardSwish
    } else {
        Act::Relu
    };
    let p = format!("{prefix}.block");
    let mut y = x;
    let mut j = 0;
    if exp != cin {
        y = net.conv_bn_act(
            &format!("{p}.{j}"),
            y,
            &ConvSpec::new(exp, 1),
            Some(act),
            V3_EPS,
        )?;
        j += 1;
    }
    let dw = ConvSpec::depthwise(exp, cfg.kernel).stride(cfg.stride);
    y = net.conv_bn_act(&format!("{p}.{j}"), y, &dw, Some(act), V3_EPS)?;
    j += 1;
    if cfg.se {
        let squeeze = make_divisible((exp / 4) as f64, 8);
        y = net.squeeze_excite(
            &format!("{p}.{j}"),
            y,
            squeeze,
            (Act::Relu, Act::HardSigmoid),
            &SE_TORCHVISION,
        )?;
        j += 1;
    }
    y = net.conv_bn_act(&format!("{p}.{j}"), y, &ConvSpec::new(out, 1), None, V3_EPS)?;
    if cfg.stride == 1 && cin == out {
        net.add(&format!("{prefix}.add"), y, x)
    } else {
        Ok(y)
    }
}
