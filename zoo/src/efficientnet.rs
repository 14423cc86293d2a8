//! EfficientNet-B0 (torchvision `efficientnet.py`): MBConv blocks with SiLU (exported as
//! `Sigmoid` + `Mul`), squeeze-excite to `max(1, block_input / 4)` channels with a sigmoid gate,
//! and a 1x1 head with `4 x 320` channels. Stochastic depth and dropout are identities at
//! inference and are not emitted. Width scaling is torchvision's `width_mult`
//! (`_make_divisible(c * width, 8)`); the depth multiplier stays 1.

use crate::builder::{make_divisible, Act, ConvSpec, Net, Opts, BN_EPS, SE_TORCHVISION};
use crate::Error;
use lnc_ir::Value;

/// (expansion, kernel, stride, input channels, output channels, layers) of B0.
const B0: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

/// EfficientNet-B0.
pub fn efficientnet_b0(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let first = o.ch(B0[0].3, 8);
    let mut x = net.conv_bn_act(
        "features.0",
        x,
        &ConvSpec::new(first, 3).stride(2),
        Some(Act::Silu),
        BN_EPS,
    )?;
    for (si, &(e, k, s, cin, cout, n)) in B0.iter().enumerate() {
        let (cin, cout) = (o.ch(cin, 8), o.ch(cout, 8));
        for j in 0..n {
            let (inp, stride) = if j == 0 { (cin, s) } else { (cout, 1) };
            x = mbconv(
                net,
                &format!("features.{}.{j}", si + 1),
                x,
                (inp, cout, k, stride, e),
            )?;
        }
    }
    let last_in = o.ch(B0[6].4, 8);
    let x = net.conv_bn_act(
        "features.8",
        x,
        &ConvSpec::new(4 * last_in, 1),
        Some(Act::Silu),
        BN_EPS,
    )?;
    net.classifier("avgpool", "classifier.1", x, o.classes)
}

/// torchvision's `MBConv`: `(1x1 expand) → kxk depthwise → SE → 1x1 project`, plus the input
/// when the stride is 1 and the channel count is unchanged.
fn mbconv(
    net: &mut Net,
    prefix: &str,
    x: Value,
    (cin, out, k, stride, e): (usize, usize, usize, usize, usize),
) -> Result<Value, Error> {
    let expanded = make_divisible((cin * e) as f64, 8);
    let p = format!("{prefix}.block");
    let mut y = x;
    let mut j = 0;
    if expanded != cin {
        y = net.conv_bn_act(
            &format!("{p}.0"),
            y,
            &ConvSpec::new(expanded, 1),
            Some(Act::Silu),
            BN_EPS,
        )?;
        j = 1;
    }
    let dw = ConvSpec::depthwise(expanded, k).stride(stride);
    y = net.conv_bn_act(&format!("{p}.{j}"), y, &dw, Some(Act::Silu), BN_EPS)?;
    let squeeze = (cin / 4).max(1);
    y = net.squeeze_excite(
        &format!("{p}.{}", j + 1),
        y,
        squeeze,
        (Act::Silu, Act::Sigmoid),
        &SE_TORCHVISION,
    )?;
    y = net.conv_bn_act(
        &format!("{p}.{}", j + 2),
        y,
        &ConvSpec::new(out, 1),
        None,
        BN_EPS,
    )?;
    if stride == 1 && cin == out {
        net.add(&format!("{prefix}.add"), y, x)
    } else {
        Ok(y)
    }
}
