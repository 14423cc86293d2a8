//! ESPNet-C (Mehta et al. 2018): the encoder of ESPNet, names as the authors' `Model.py`
//! (`level1`, `sample1`, `b1`, `level2_0`, `level2.0`, ..., `classifier`).
//!
//! - ESP module: 1x1 (stride-1 modules) or 3x3/2 (down-samplers) reduce conv to `n = out/5`
//!   channels, a pyramid of 3x3 convolutions with dilations 1, 2, 4, 8, 16 (the first with
//!   `out - 4n` channels), hierarchical feature fusion (`d2`, `d2+d4`, `d2+d4+d8`,
//!   `d2+d4+d8+d16`), concat, then batch norm (eps 0.001) and PReLU with a per-channel slope;
//!   stride-1 modules add their input before the batch norm.
//! - The input image is average-pooled (3x3/2 pad 1, once and twice) and concatenated at 1/2
//!   and 1/4 resolution ("input reinforcement").
//! - Depth: α2 = 2 modules at 1/4 resolution, α3 = 8 at 1/8.
//! - Output: segmentation logits `[1, classes, S/8, S/8]` from a 1x1 conv (no classifier head).
//!
//! Width scaling rounds the level widths 16 / 64 / 128 with `_make_divisible(c * width, 8)`.

use crate::builder::{ConvSpec, Net, Opts};
use crate::Error;
use lnc_ir::Value;

/// ESPNet's batch norms use `eps = 0.001`.
const EPS: f32 = 1e-3;
/// ESP modules at 1/4 resolution.
const ALPHA2: usize = 2;
/// ESP modules at 1/8 resolution.
const ALPHA3: usize = 8;

/// ESPNet-C encoder producing 1/8-resolution logits.
pub fn espnet(net: &mut Net, x: Value, o: &Opts) -> Result<Value, Error> {
    let (c1, c2, c3) = (o.ch(16, 8), o.ch(64, 8), o.ch(128, 8));
    let l1 = net.conv("level1.conv", x, &ConvSpec::new(c1, 3).stride(2))?;
    let l1 = net.bn_prelu("level1.bn", "level1.act", l1, EPS)?;
    let inp1 = net.avg_pool("sample1.pool.0", x, 3, 2, 1)?;
    let inp2 = net.avg_pool("sample2.pool.0", x, 3, 2, 1)?;
    let inp2 = net.avg_pool("sample2.pool.1", inp2, 3, 2, 1)?;

    let cat0 = net.concat("concat", &[l1, inp1])?;
    let cat0 = bn_prelu(net, "b1", cat0)?;

    let o1_0 = esp(net, "level2_0", cat0, c2, Kind::Down)?;
    let mut o1 = o1_0;
    for i in 0..ALPHA2 {
        o1 = esp(net, &format!("level2.{i}"), o1, c2, Kind::Residual)?;
    }
    let cat1 = net.concat("concat", &[o1, o1_0, inp2])?;
    let cat1 = bn_prelu(net, "b2", cat1)?;

    let o2_0 = esp(net, "level3_0", cat1, c3, Kind::Down)?;
    let mut o2 = o2_0;
    for i in 0..ALPHA3 {
        o2 = esp(net, &format!("level3.{i}"), o2, c3, Kind::Residual)?;
    }
    let cat2 = net.concat("concat", &[o2_0, o2])?;
    let cat2 = bn_prelu(net, "b3", cat2)?;
    net.conv("classifier.conv", cat2, &ConvSpec::new(o.classes, 1))
}

/// `BR`: batch norm (`p.bn`) then PReLU (`p.act`).
fn bn_prelu(net: &mut Net, p: &str, x: Value) -> Result<Value, Error> {
    net.bn_prelu(&format!("{p}.bn"), &format!("{p}.act"), x, EPS)
}

/// The two ESP module variants.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `DownSamplerB`: 3x3/2 reduce, no residual.
    Down,
    /// `DilatedParllelResidualBlockB` with `add=True`: 1x1 reduce, input added.
    Residual,
}

fn esp(net: &mut Net, p: &str, x: Value, out: usize, kind: Kind) -> Result<Value, Error> {
    let n = out / 5;
    let n1 = out - 4 * n;
    let reduce = match kind {
        Kind::Down => ConvSpec::new(n, 3).stride(2),
        Kind::Residual => ConvSpec::new(n, 1),
    };
    let r = net.conv(&format!("{p}.c1.conv"), x, &reduce)?;
    let d1 = net.conv(
        &format!("{p}.d1.conv"),
        r,
        &ConvSpec::new(n1, 3).dilation(1),
    )?;
    let d2 = net.conv(&format!("{p}.d2.conv"), r, &ConvSpec::new(n, 3).dilation(2))?;
    let d4 = net.conv(&format!("{p}.d4.conv"), r, &ConvSpec::new(n, 3).dilation(4))?;
    let d8 = net.conv(&format!("{p}.d8.conv"), r, &ConvSpec::new(n, 3).dilation(8))?;
    let d16 = net.conv(
        &format!("{p}.d16.conv"),
        r,
        &ConvSpec::new(n, 3).dilation(16),
    )?;
    let add2 = net.add(&format!("{p}.add"), d2, d4)?;
    let add3 = net.add(&format!("{p}.add"), add2, d8)?;
    let add4 = net.add(&format!("{p}.add"), add3, d16)?;
    let combine = net.concat(&format!("{p}.concat"), &[d1, d2, add2, add3, add4])?;
    match kind {
        Kind::Down => net.bn_prelu(&format!("{p}.bn"), &format!("{p}.act"), combine, EPS),
        Kind::Residual => {
            let y = net.add(&format!("{p}.add"), x, combine)?;
            bn_prelu(net, &format!("{p}.bn"), y)
        }
    }
}
