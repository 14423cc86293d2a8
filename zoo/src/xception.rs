//! The entry flow of Xception (Chollet 2017, Fig. 5) with a classifier head.
//!
//! Names follow the widely used PyTorch port (`conv1`, `bn1`, `block1.skip`, `block1.rep.0`,
//! separable convolutions as `.conv1` depthwise + `.pointwise`):
//! - `conv1` 3x3/2 and `conv2` 3x3, both unpadded ("valid"), each → BN → ReLU;
//! - three blocks with 128, 256, 728 channels: `(ReLU) → SepConv → BN → ReLU → SepConv → BN →
//!   MaxPool 3x3/2 pad 1`, plus a `1x1/2 conv → BN` shortcut taken from the block input (before
//!   the leading ReLU, as the reference Keras model does), joined by an `Add`;
//! - the entry flow ends on the last `Add`; the middle flow would begin with a ReLU, which is
//!   kept (`relu`) before the shared head `GlobalAveragePool → Reshape → Gemm`.
//!
//! Width scaling rounds every channel count with `_make_divisible(c * width, 8)`.

use crate::builder::{Act, ConvSpec, Net, Opts, BN_EPS};
use crate::Error;
use lnc_ir::Value;

/// Xception entry flow + classifier.
pub fn xception_entry(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let mut x = net.conv("conv1", x, &ConvSpec::new(o.ch(32, 8), 3).stride(2).pad(0))?;
    x = net.bn_act("bn1", "relu1", x, Act::Relu, BN_EPS)?;
    x = net.conv("conv2", x, &ConvSpec::new(o.ch(64, 8), 3).pad(0))?;
    x = net.bn_act("bn2", "relu2", x, Act::Relu, BN_EPS)?;
    x = block(net, "block1", x, o.ch(128, 8), false)?;
    x = block(net, "block2", x, o.ch(256, 8), true)?;
    x = block(net, "block3", x, o.ch(728, 8), true)?;
    x = net.act("relu", x, Act::Relu)?;
    net.classifier("avgpool", "fc", x, o.classes)
}

/// An entry-flow block with a strided 1x1 shortcut.
fn block(
    net: &mut Net,
    p: &str,
    x: Value,
    out: usize,
    start_with_relu: bool,
) -> Result<Value, Error> {
    let skip = net.conv(&format!("{p}.skip"), x, &ConvSpec::new(out, 1).stride(2))?;
    let skip = net.bn(&format!("{p}.skipbn"), skip, BN_EPS)?;
    let mut i = 0;
    let mut y = x;
    if start_with_relu {
        y = net.act(&format!("{p}.rep.0"), y, Act::Relu)?;
        i = 1;
    }
    y = separable(net, &format!("{p}.rep.{i}"), y, out)?;
    y = net.bn_act(
        &format!("{p}.rep.{}", i + 1),
        &format!("{p}.rep.{}", i + 2),
        y,
        Act::Relu,
        BN_EPS,
    )?;
    y = separable(net, &format!("{p}.rep.{}", i + 3), y, out)?;
    y = net.bn(&format!("{p}.rep.{}", i + 4), y, BN_EPS)?;
    y = net.max_pool(&format!("{p}.rep.{}", i + 5), y, 3, 2, 1, false)?;
    net.add(&format!("{p}.add"), y, skip)
}

/// `SeparableConv2d`: 3x3 depthwise (`.conv1`) then 1x1 (`.pointwise`), no BN in between.
fn separable(net: &mut Net, p: &str, x: Value, out: usize) -> Result<Value, Error> {
    let cin = net.channels(x)?;
    let y = net.conv(&format!("{p}.conv1"), x, &ConvSpec::depthwise(cin, 3))?;
    net.conv(&format!("{p}.pointwise"), y, &ConvSpec::new(out, 1))
}
