//! ShuffleNet V1 (group 1x1 convolutions + channel shuffle, g = 3) and V2 (channel split,
//! concat, shuffle).
//!
//! V2 follows torchvision's `shufflenetv2.py` (names `conv1`, `stage2.0.branch1.0`, ...);
//! `chunk(2)` is exported as a `Split`, `channel_shuffle` as `Reshape → Transpose → Reshape`.
//! torchvision's final `x.mean([2, 3])` is emitted as `GlobalAveragePool → Reshape`, the
//! classifier form every zoo model shares.
//!
//! V1 follows the paper (Zhang et al. 2018, Table 1 and Fig. 2): stage output channels
//! 240 / 480 / 960 for g = 3, bottleneck = output / 4, the first pointwise layer of stage 2
//! ungrouped, shuffle after the first group conv, stride-2 units concatenating a 3x3/2 average
//! pooled shortcut, ReLU after the add / concat.

use crate::builder::{make_divisible, Act, ConvSpec, Net, Opts, BN_EPS};
use crate::Error;
use lnc_ir::Value;

/// Groups of ShuffleNet V1's pointwise convolutions.
const V1_GROUPS: usize = 3;

/// ShuffleNet V1 with g = 3.
///
/// Width scaling: stage channels are `_make_divisible(c * width, 4 * g)` (so the bottleneck
/// `out / 4` and every grouped layer stay divisible by g), and each stage has at least
/// `4 * g` more channels than its input (the stride-2 branch needs `out - in > 0`).
pub fn shufflenet_v1(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let g = V1_GROUPS;
    let mut x = net.conv_bn_act(
        "conv1",
        x,
        &ConvSpec::new(24, 3).stride(2),
        Some(Act::Relu),
        BN_EPS,
    )?;
    x = net.max_pool("maxpool", x, 3, 2, 1, false)?;
    let mut prev = 24;
    for (si, &(repeats, c)) in [(4, 240), (8, 480), (4, 960)].iter().enumerate() {
        let out = make_divisible(c as f64 * o.width, 4 * g).max(prev + 4 * g);
        let stage = format!("stage{}", si + 2);
        x = v1_unit(net, &format!("{stage}.0"), x, out, 2, si == 0)?;
        for i in 1..repeats {
            x = v1_unit(net, &format!("{stage}.{i}"), x, out, 1, false)?;
        }
        prev = out;
    }
    net.classifier("avgpool", "fc", x, o.classes)
}

/// One ShuffleNet V1 unit: 1x1 group conv → BN → ReLU → shuffle → 3x3 depthwise → BN →
/// 1x1 group conv → BN, then `relu(x + y)` (stride 1) or `relu(concat(avgpool(x), y))`.
fn v1_unit(
    net: &mut Net,
    prefix: &str,
    x: Value,
    out: usize,
    stride: usize,
    first: bool,
) -> Result<Value, Error> {
    let g = V1_GROUPS;
    let inp = net.channels(x)?;
    let mid = out / 4;
    let branch_out = if stride == 2 { out - inp } else { out };
    let g1 = if first { 1 } else { g };
    let mut y = net.conv(
        &format!("{prefix}.conv1"),
        x,
        &ConvSpec::new(mid, 1).groups(g1),
    )?;
    y = net.bn_act(
        &format!("{prefix}.bn1"),
        &format!("{prefix}.relu1"),
        y,
        Act::Relu,
        BN_EPS,
    )?;
    y = net.channel_shuffle(prefix, y, g)?;
    y = net.conv(
        &format!("{prefix}.conv2"),
        y,
        &ConvSpec::depthwise(mid, 3).stride(stride),
    )?;
    y = net.bn(&format!("{prefix}.bn2"), y, BN_EPS)?;
    y = net.conv(
        &format!("{prefix}.conv3"),
        y,
        &ConvSpec::new(branch_out, 1).groups(g),
    )?;
    y = net.bn(&format!("{prefix}.bn3"), y, BN_EPS)?;
    let merged = if stride == 1 {
        net.add(&format!("{prefix}.add"), x, y)?
    } else {
        let shortcut = net.avg_pool(&format!("{prefix}.shortcut"), x, 3, 2, 1)?;
        net.concat(&format!("{prefix}.concat"), &[shortcut, y])?
    };
    net.act(&format!("{prefix}.relu"), merged, Act::Relu)
}

/// Stage output channels and the last conv's channels of ShuffleNet V2 for a width.
///
/// The published multipliers 0.5 / 1.0 / 1.5 / 2.0 use torchvision's tables; other widths
/// scale the x1.0 stages with `_make_divisible(c * width, 8)` (even, so that the split halves
/// are equal) and keep 1024 output channels up to x1.5, 2048 above.
fn v2_channels(width: f64) -> ([usize; 3], usize) {
    const TABLE: [(f64, [usize; 3], usize); 4] = [
        (0.5, [48, 96, 192], 1024),
        (1.0, [116, 232, 464], 1024),
        (1.5, [176, 352, 704], 1024),
        (2.0, [244, 488, 976], 2048),
    ];
    if let Some(&(_, stages, last)) = TABLE.iter().find(|t| t.0 == width) {
        return (stages, last);
    }
    let stages = [116, 232, 464].map(|c| make_divisible(c as f64 * width, 8));
    (stages, if width > 1.5 { 2048 } else { 1024 })
}

/// ShuffleNet V2 (torchvision `shufflenet_v2_x1_0`; other widths as [`v2_channels`]).
pub fn shufflenet_v2(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let (stages, last) = v2_channels(o.width);
    let mut x = net.conv_bn_act(
        "conv1",
        x,
        &ConvSpec::new(24, 3).stride(2),
        Some(Act::Relu),
        BN_EPS,
    )?;
    x = net.max_pool("maxpool", x, 3, 2, 1, false)?;
    for (si, (&repeats, &out)) in [4usize, 8, 4].iter().zip(&stages).enumerate() {
        let stage = format!("stage{}", si + 2);
        x = v2_unit(net, &format!("{stage}.0"), x, out, 2)?;
        for i in 1..repeats {
            x = v2_unit(net, &format!("{stage}.{i}"), x, out, 1)?;
        }
    }
    let x = net.conv_bn_act("conv5", x, &ConvSpec::new(last, 1), Some(Act::Relu), BN_EPS)?;
    net.classifier("avgpool", "fc", x, o.classes)
}

/// torchvision's V2 `InvertedResidual`.
fn v2_unit(
    net: &mut Net,
    prefix: &str,
    x: Value,
    out: usize,
    stride: usize,
) -> Result<Value, Error> {
    let inp = net.channels(x)?;
    let bf = out / 2;
    let cat = if stride == 1 {
        let half = inp / 2;
        let parts = net.split(&format!("{prefix}.split"), x, &[half, inp - half])?;
        let b2 = v2_branch2(net, &format!("{prefix}.branch2"), parts[1], bf, 1)?;
        net.concat(&format!("{prefix}.concat"), &[parts[0], b2])?
    } else {
        let p = format!("{prefix}.branch1");
        let mut b1 = net.conv(
            &format!("{p}.0"),
            x,
            &ConvSpec::depthwise(inp, 3).stride(stride),
        )?;
        b1 = net.bn(&format!("{p}.1"), b1, BN_EPS)?;
        b1 = net.conv(&format!("{p}.2"), b1, &ConvSpec::new(bf, 1))?;
        b1 = net.bn_act(&format!("{p}.3"), &format!("{p}.4"), b1, Act::Relu, BN_EPS)?;
        let b2 = v2_branch2(net, &format!("{prefix}.branch2"), x, bf, stride)?;
        net.concat(&format!("{prefix}.concat"), &[b1, b2])?
    };
    net.channel_shuffle(prefix, cat, 2)
}

/// `branch2`: 1x1 → BN → ReLU → 3x3 depthwise → BN → 1x1 → BN → ReLU.
fn v2_branch2(net: &mut Net, p: &str, x: Value, bf: usize, stride: usize) -> Result<Value, Error> {
    let mut y = net.conv(&format!("{p}.0"), x, &ConvSpec::new(bf, 1))?;
    y = net.bn_act(&format!("{p}.1"), &format!("{p}.2"), y, Act::Relu, BN_EPS)?;
    y = net.conv(
        &format!("{p}.3"),
        y,
        &ConvSpec::depthwise(bf, 3).stride(stride),
    )?;
    y = net.bn(&format!("{p}.4"), y, BN_EPS)?;
    y = net.conv(&format!("{p}.5"), y, &ConvSpec::new(bf, 1))?;
    net.bn_act(&format!("{p}.6"), &format!("{p}.7"), y, Act::Relu, BN_EPS)
}
