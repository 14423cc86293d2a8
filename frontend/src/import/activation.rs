//! Activations: `Relu`, `Sigmoid`, `Tanh`, `HardSwish` (14), `Softplus`, `Softsign`,
//! `LeakyRelu`, `Elu`, `HardSigmoid`, `Clip`, `PRelu`.
//!
//! - `LeakyRelu` (6, 16): `alpha` (0.01). `Elu` (6): `alpha` (1.0). `HardSigmoid` (6):
//!   `alpha` (0.2), `beta` (0.5).
//! - `Clip` (6): attributes `min`, `max` (absent: the float limits, as the spec says);
//!   (11, 12, 13): optional inputs `min`, `max`, which must be constant scalars (absent:
//!   unbounded). Integer inputs (12+) keep integer bounds.
//! - `PRelu` (6, 7, 9, 16): inputs `X, slope`; slope broadcasts unidirectionally to X. A
//!   1-D slope of C channels on an N-D input (the pre-7 per-channel form) is reshaped to
//!   `[C, 1, ...]`.
//! - The opset-6 `consumed_inputs` attribute is legacy and ignored.

use super::{Importer, Node};
use crate::Result;
use lnc_ir::{Op, UnaryOp, Value};

/// Single-input activations without attributes.
pub(crate) fn unary(imp: &mut Importer, n: &Node, u: UnaryOp) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let x = imp.input(n, 0)?;
    imp.emit1(n, "", Op::Unary(u), &[x])
}

pub(crate) fn leaky_relu(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let alpha = n.float_or("alpha", 0.01)?;
    let x = imp.input(n, 0)?;
    imp.emit1(n, "", Op::LeakyRelu { alpha }, &[x])
}

pub(crate) fn elu(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let alpha = n.float_or("alpha", 1.0)?;
    let x = imp.input(n, 0)?;
    imp.emit1(n, "", Op::Elu { alpha }, &[x])
}

pub(crate) fn hard_sigmoid(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let alpha = n.float_or("alpha", 0.2)?;
    let beta = n.float_or("beta", 0.5)?;
    let x = imp.input(n, 0)?;
    imp.emit1(n, "", Op::HardSigmoid { alpha, beta }, &[x])
}

pub(crate) fn clip(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let x = imp.input(n, 0)?;
    let (min, max) = if n.opset < 11 {
        let min = n.float("min")?.map_or(f32::MIN as f64, |v| v as f64);
        let max = n.float("max")?.map_or(f32::MAX as f64, |v| v as f64);
        (min, max)
    } else {
        let bound = |i: usize, what: &str, default: f64| -> Result<f64> {
            match imp.const_input(n, i, what)? {
                None => Ok(default),
                Some(t) if t.numel() == 1 => Ok(t.to_f64_vec().first().copied().unwrap_or(default)),
                Some(t) => Err(n.err(format!("{what} must be a scalar, got {}", t.ty()))),
            }
        };
        (
            bound(1, "min", f64::NEG_INFINITY)?,
            bound(2, "max", f64::INFINITY)?,
        )
    };
    if min.is_nan() || max.is_nan() {
        return Err(n.err("clip bounds must not be NaN"));
    }
    imp.emit1(n, "", Op::Clip { min, max }, &[x])
}

pub(crate) fn prelu(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let x = imp.input(n, 0)?;
    let mut slope = imp.input(n, 1)?;
    let (xs, ss) = (imp.shape(x)?, imp.shape(slope)?);
    let broadcasts = lnc_ir::shape::broadcast(&xs, &ss).is_ok_and(|b| b == xs);
    if !broadcasts && ss.len() == 1 && xs.len() > 2 && xs[1] == ss[0] {
        let mut shape = vec![ss[0]];
        shape.resize(xs.len() - 1, 1);
        slope = imp.reshape(n, "slope", slope, shape)?;
    }
    imp.emit1(n, "", Op::PRelu, &[x, slope])
}
