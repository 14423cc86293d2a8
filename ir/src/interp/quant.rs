//! Quantization: ONNX QuantizeLinear / DequantizeLinear and the QONNX ops Quant,
//! BipolarQuant and Trunc.
//!
//! - QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)` to the range of
//!   the zero point's dtype, `x / scale` in f32 (ONNX Runtime divides too); NaN maps to
//!   the zero point. Per tensor or per `axis`.
//! - DequantizeLinear: `(x - zero_point) as f32 * scale` (ONNX Runtime's order).
//! - QONNX Quant (`qonnx/custom_op/general/quant.py`), in f32:
//!   `q = clamp(x / scale + zp, min, max)`, rounded with the rounding mode, then
//!   `y = (q - zp) * scale`; `[min, max]` is `[-2^(b-1) (+1 if narrow), 2^(b-1) - 1]`
//!   signed and `[0, 2^b - 1 (-1 if narrow)]` unsigned. As in the QONNX implementation a
//!   signed 1-bit Quant is bipolar: `q = (x / scale + zp >= 0) ? 1 : -1`.
//! - QONNX BipolarQuant: `scale * (x >= 0 ? 1 : -1)`.
//! - QONNX Trunc (opset-1 form: the output keeps the input scale and zero point):
//!   `q = round_half_even(x / scale + zp) / 2^(in_bits - out_bits)`, clamped to the
//!   `out_bits` range given by `signed`/`narrow` (as the opset-2 form does), rounded with
//!   the rounding mode, then `y = (q - zp) * scale`.
//!
//! Scales and zero points of the QONNX ops broadcast to `x` (numpy rules).

use super::{broadcast_to, f32s, ints, make_f32, make_int, round_half_even, saturate, R};
use crate::dtype::DType;
use crate::op::RoundingMode;
use crate::tensor::Tensor;
use crate::types::TensorType;
use std::borrow::Cow;

/// Index into the (per-tensor or per-axis) parameters for every element of `shape`.
fn param_index(
    axis: Option<usize>,
    shape: &[usize],
    n_params: usize,
) -> R<impl Fn(usize) -> usize> {
    let (inner, dim) = match axis {
        None => (1, 1),
        Some(a) => {
            let d = *shape
                .get(a)
                .ok_or(format!("axis {a} out of range for {shape:?}"))?;
            (shape[a + 1..].iter().product::<usize>().max(1), d)
        }
    };
    let want = if axis.is_some() { dim } else { 1 };
    if n_params != want {
        return Err(format!(
            "expected {want} scale/zero point value(s), got {n_params}"
        ));
    }
    let per_axis = axis.is_some();
    Ok(move |i: usize| {
        if per_axis {
            (i / inner) % dim.max(1)
        } else {
            0
        }
    })
}

/// The scale and zero point of a Q/DQ node (inputs 1 and 2) and the map from an element index
/// of input 0 to its parameter index (per tensor or per `axis`).
#[allow(clippy::type_complexity)]
fn linear_qparams<'a>(
    axis: Option<usize>,
    x: &[&'a Tensor],
) -> R<(Cow<'a, [f32]>, Cow<'a, [i64]>, impl Fn(usize) -> usize)> {
    let scale = f32s(x[1])?;
    let zp = ints(x[2])?;
    if scale.len() != zp.len() {
        return Err("scale and zero point sizes differ".into());
    }
    let ch = param_index(axis, x[0].shape(), scale.len())?;
    Ok((scale, zp, ch))
}

/// ONNX `QuantizeLinear`: `x, scale, zero_point`.
pub(crate) fn quantize_linear(axis: Option<usize>, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let dt = out.dtype;
    if matches!(dt, DType::Bipolar | DType::F32) {
        return Err(format!("cannot quantize to {dt}"));
    }
    let xs = f32s(x[0])?;
    let (scale, zp, ch) = linear_qparams(axis, x)?;
    let y = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = ch(i);
            let q = round_half_even(v / scale[c]);
            let q = if q.is_nan() { 0.0 } else { q as f64 };
            saturate(q + zp[c] as f64, dt)
        })
        .collect();
    make_int(out, y)
}

/// ONNX `DequantizeLinear`: `x, scale, zero_point`.
pub(crate) fn dequantize_linear(axis: Option<usize>, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let xs = ints(x[0])?;
    let (scale, zp, ch) = linear_qparams(axis, x)?;
    let y = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = ch(i);
            v.wrapping_sub(zp[c]) as f32 * scale[c]
        })
        .collect();
    make_f32(out, y)
}

/// Apply a QONNX rounding mode.
pub(crate) fn round_mode(v: f32, m: RoundingMode) -> f32 {
    match m {
        RoundingMode::Round => round_half_even(v),
        RoundingMode::Floor => v.floor(),
        RoundingMode::Ceil => v.ceil(),
        RoundingMode::Trunc => v.trunc(),
        RoundingMode::RoundHalfUp => v.round(),
    }
}

/// QONNX integer range `[min, max]` for a bit width, as f32.
pub(crate) fn int_bounds(bits: u32, signed: bool, narrow: bool) -> (f32, f32) {
    let b = bits.min(64) as i32;
    let (lo, hi) = if signed {
        let h = 2f64.powi(b - 1);
        (-h + if narrow { 1.0 } else { 0.0 }, h - 1.0)
    } else {
        (0.0, 2f64.powi(b) - if narrow { 2.0 } else { 1.0 })
    };
    (lo as f32, hi as f32)
}

/// Clamp like numpy's `np.where(y > max, max, y)` then `np.where(y < min, min, y)`
/// (NaN passes through).
fn clamp_nan(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v > hi { hi } else { v };
    if v < lo {
        lo
    } else {
        v
    }
}

/// Scale and zero point of a QONNX op broadcast to `x`.
fn qonnx_params(x: &[&Tensor]) -> R<(Vec<f32>, Vec<f32>)> {
    let shape = x[0].shape();
    let s = broadcast_to(&f32s(x[1])?, x[1].shape(), shape)?;
    let z = match x.get(2) {
        Some(z) => broadcast_to(&f32s(z)?, z.shape(), shape)?,
        None => vec![0.0; s.len()],
    };
    Ok((s, z))
}

/// QONNX `Quant`: `x, scale, zero_point`.
pub(crate) fn quant(
    bits: u32,
    signed: bool,
    narrow: bool,
    rounding: RoundingMode,
    x: &[&Tensor],
    out: &TensorType,
) -> R<Tensor> {
    let xs = f32s(x[0])?;
    let (s, z) = qonnx_params(x)?;
    let (lo, hi) = int_bounds(bits, signed, narrow);
    let bipolar = bits == 1 && signed;
    let y = xs
        .iter()
        .zip(s.iter().zip(&z))
        .map(|(&v, (&s, &z))| {
            let q = v / s + z;
            let q = if bipolar {
                if q >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            } else {
                round_mode(clamp_nan(q, lo, hi), rounding)
            };
            (q - z) * s
        })
        .collect();
    make_f32(out, y)
}

/// QONNX `BipolarQuant`: `x, scale`.
pub(crate) fn bipolar_quant(x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let xs = f32s(x[0])?;
    let (s, _) = qonnx_params(&x[..2])?;
    let y = xs
        .iter()
        .zip(&s)
        .map(|(&v, &s)| if v >= 0.0 { s } else { -s })
        .collect();
    make_f32(out, y)
}

/// QONNX `Trunc`: `x, scale, zero_point`.
pub(crate) fn trunc(
    in_bits: u32,
    out_bits: u32,
    rounding: RoundingMode,
    signed: bool,
    narrow: bool,
    x: &[&Tensor],
    out: &TensorType,
) -> R<Tensor> {
    let xs = f32s(x[0])?;
    let (s, z) = qonnx_params(x)?;
    let shift = (in_bits as i64 - out_bits as i64).clamp(-200, 200) as i32;
    let trunc_scale = 2f32.powi(shift);
    let (lo, hi) = int_bounds(out_bits, signed, narrow);
    let y = xs
        .iter()
        .zip(s.iter().zip(&z))
        .map(|(&v, (&s, &z))| {
            let q = round_half_even(v / s + z) / trunc_scale;
            let q = round_mode(clamp_nan(q, lo, hi), rounding);
            (q - z) * s
        })
        .collect();
    make_f32(out, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_qonnx() {
        assert_eq!(int_bounds(8, true, false), (-128.0, 127.0));
        assert_eq!(int_bounds(8, true, true), (-127.0, 127.0));
        assert_eq!(int_bounds(8, false, false), (0.0, 255.0));
        assert_eq!(int_bounds(8, false, true), (0.0, 254.0));
        assert_eq!(int_bounds(2, true, true), (-1.0, 1.0));
    }

    #[test]
    fn rounding_modes_follow_the_qonnx_table() {
        let xs = [5.5f32, 2.5, 1.6, 1.1, 1.0, -1.0, -1.1, -1.6, -2.5, -5.5];
        let r = |m| xs.iter().map(|&v| round_mode(v, m)).collect::<Vec<_>>();
        assert_eq!(
            r(RoundingMode::Round),
            [6.0, 2.0, 2.0, 1.0, 1.0, -1.0, -1.0, -2.0, -2.0, -6.0]
        );
        assert_eq!(
            r(RoundingMode::Ceil),
            [6.0, 3.0, 2.0, 2.0, 1.0, -1.0, -1.0, -1.0, -2.0, -5.0]
        );
        assert_eq!(
            r(RoundingMode::Floor),
            [5.0, 2.0, 1.0, 1.0, 1.0, -1.0, -2.0, -2.0, -3.0, -6.0]
        );
        assert_eq!(
            r(RoundingMode::Trunc),
            [5.0, 2.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -2.0, -5.0]
        );
        assert_eq!(
            r(RoundingMode::RoundHalfUp),
            [6.0, 3.0, 2.0, 1.0, 1.0, -1.0, -1.0, -2.0, -3.0, -6.0]
        );
    }
}
