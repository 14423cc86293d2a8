//! SqueezeNet 1.0 and 1.1 (torchvision `squeezenet.py`): fire modules (squeeze 1x1, expand
//! 1x1 + 3x3, concat), `MaxPool(3, 2, ceil_mode=True)`, and the convolutional classifier
//! `conv 1x1 → ReLU → GlobalAveragePool → flatten`.
//!
//! SqueezeNet has no batch norm: every convolution carries a bias, and the He-normal weights
//! keep the second moment of the ReLU activations constant through the depth. Width scaling
//! (not part of torchvision) rounds every channel count with `_make_divisible(c * width, 8)`.

use crate::builder::{Act, ConvSpec, Net, Opts};
use crate::Error;
use lnc_ir::Value;

/// A layer of `features`.
enum L {
    Pool,
    /// Fire(squeeze, expand1x1, expand3x3).
    Fire(usize, usize, usize),
}

const V1_0: [L; 11] = [
    L::Pool,
    L::Fire(16, 64, 64),
    L::Fire(16, 64, 64),
    L::Fire(32, 128, 128),
    L::Pool,
    L::Fire(32, 128, 128),
    L::Fire(48, 192, 192),
    L::Fire(48, 192, 192),
    L::Fire(64, 256, 256),
    L::Pool,
    L::Fire(64, 256, 256),
];

const V1_1: [L; 11] = [
    L::Pool,
    L::Fire(16, 64, 64),
    L::Fire(16, 64, 64),
    L::Pool,
    L::Fire(32, 128, 128),
    L::Fire(32, 128, 128),
    L::Pool,
    L::Fire(48, 192, 192),
    L::Fire(48, 192, 192),
    L::Fire(64, 256, 256),
    L::Fire(64, 256, 256),
];

/// SqueezeNet 1.0: 7x7/2 stem with 96 channels, pools at features 2, 6, 11.
pub fn squeezenet1_0(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let stem = ConvSpec::new(o.ch(96, 8), 7).stride(2).pad(0).bias();
    let x = features(net, x, o, &stem, &V1_0)?;
    head(net, x, o)
}

/// SqueezeNet 1.1: 3x3/2 stem with 64 channels, pools at features 2, 5, 8.
pub fn squeezenet1_1(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let stem = ConvSpec::new(o.ch(64, 8), 3).stride(2).pad(0).bias();
    let x = features(net, x, o, &stem, &V1_1)?;
    head(net, x, o)
}

fn features(
    net: &mut Net,
    x: Value,
    o: &Opts,
    stem: &ConvSpec,
    layers: &[L],
) -> Result<Value, Error> {
    let mut x = net.conv("features.0", x, stem)?;
    x = net.act("features.1", x, Act::Relu)?;
    for (i, l) in layers.iter().enumerate() {
        let name = format!("features.{}", i + 2);
        x = match *l {
            L::Pool => net.max_pool(&name, x, 3, 2, 0, true)?,
            L::Fire(s, e1, e3) => fire(net, &name, x, o, (s, e1, e3))?,
        };
    }
    Ok(x)
}

/// A fire module: `squeeze` 1x1 → ReLU, then `expand1x1` and `expand3x3` (each → ReLU),
/// concatenated.
fn fire(
    net: &mut Net,
    p: &str,
    x: Value,
    o: &Opts,
    (s, e1, e3): (usize, usize, usize),
) -> Result<Value, Error> {
    let sq = net.conv(
        &format!("{p}.squeeze"),
        x,
        &ConvSpec::new(o.ch(s, 8), 1).bias(),
    )?;
    let sq = net.act(&format!("{p}.squeeze_activation"), sq, Act::Relu)?;
    let a = net.conv(
        &format!("{p}.expand1x1"),
        sq,
        &ConvSpec::new(o.ch(e1, 8), 1).bias(),
    )?;
    let a = net.act(&format!("{p}.expand1x1_activation"), a, Act::Relu)?;
    let b = net.conv(
        &format!("{p}.expand3x3"),
        sq,
        &ConvSpec::new(o.ch(e3, 8), 3).bias(),
    )?;
    let b = net.act(&format!("{p}.expand3x3_activation"), b, Act::Relu)?;
    net.concat(&format!("{p}.concat"), &[a, b])
}

/// `classifier`: Dropout (dropped at inference), `final_conv` 1x1 → ReLU → global average
/// pool, then `torch.flatten(x, 1)`.
fn head(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let y = net.conv("classifier.1", x, &ConvSpec::new(o.classes, 1).bias())?;
    let y = net.act("classifier.2", y, Act::Relu)?;
    let y = net.gap("classifier.3", y)?;
    net.flatten("flatten", y)
}
