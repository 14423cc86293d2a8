//! Quantization: `QuantizeLinear`, `DequantizeLinear`, `QLinearConv`, `QLinearMatMul`,
//! `ConvInteger`, `MatMulInteger`, and the QONNX ops `Quant` (alias `IntQuant`),
//! `BipolarQuant`, `Trunc` (domains `qonnx.custom_op.general`, `finn.custom_op.general`).
//!
//! - `QuantizeLinear` (10, 13, 19, 21): inputs `x, y_scale, [y_zero_point]`; `axis` (13+,
//!   default 1; used when the scale has more than one element), `saturate` (19+, float8
//!   only, ignored), `block_size` (21, only 0), `output_dtype` (21, the dtype of an absent
//!   zero point). An absent zero point is a zero constant (uint8 unless `output_dtype`).
//! - `DequantizeLinear` (10, 13, 19, 21): inputs `x, x_scale, [x_zero_point]`; `axis`,
//!   `block_size` (only 0). An absent zero point is a zero of x's dtype (int32 for biases).
//!   INT4/UINT4 operands are accepted at opset 21.
//! - `QLinearConv` (10): inputs `x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [B]`;
//!   Conv's attributes; a scalar `w_zp` with per-channel `w_scale` is broadcast to it.
//! - `QLinearMatMul` (10, 21): `a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp`.
//! - `ConvInteger` (10): `x, w, [x_zp], [w_zp]`; `MatMulInteger` (10): `a, b, [a_zp],
//!   [b_zp]`; absent zero points are zeros of the operand's dtype.
//! - QONNX `Quant`: inputs `X, scale, zeropt, bitwidth` (bitwidth a constant integral
//!   scalar in 1..=32); attributes `signed` (1), `narrow` (0), `rounding_mode` (ROUND).
//!   `BipolarQuant`: inputs `X, scale`. `Trunc` (version 1): inputs `X, scale, zeropt,
//!   in_bitwidth, out_bitwidth`; `rounding_mode` (FLOOR), `signed` (1), `narrow` (0);
//!   version 2 (output scale inputs) is rejected. Rounding modes: ROUND, FLOOR, CEIL,
//!   DOWN (toward zero), HALF_UP (either case); UP and HALF_DOWN are rejected.

use super::conv::{conv_attrs, lift_1d, lower_1d};
use super::{norm_axis, Importer, Node};
use crate::Result;
use lnc_ir::{DType, Op, RoundingMode, Tensor, TensorType, Value};

/// A zero constant of the given type.
fn zeros(imp: &mut Importer, n: &Node, tag: &str, dtype: DType, shape: Vec<usize>) -> Value {
    imp.constant(n, tag, Tensor::zeros(&TensorType::new(dtype, shape)))
}

/// Make `v` have `shape`: reshape when the element count agrees, expand a single element.
fn fit_shape(imp: &mut Importer, n: &Node, tag: &str, v: Value, shape: &[usize]) -> Result<Value> {
    let s = imp.shape(v)?;
    if s == shape {
        return Ok(v);
    }
    let numel: usize = shape.iter().product();
    if s.iter().product::<usize>() == numel {
        imp.reshape(n, tag, v, shape.to_vec())
    } else if s.iter().product::<usize>() == 1 {
        let v = imp.reshape(n, tag, v, vec![])?;
        imp.emit1(
            n,
            &format!("{tag}_expand"),
            Op::Expand {
                shape: shape.to_vec(),
            },
            &[v],
        )
    } else {
        Err(n.err(format!(
            "zero point of shape {s:?} does not match scale of shape {shape:?}"
        )))
    }
}

/// The quantization axis: `None` for a single-element scale, else the normalised `axis`.
fn q_axis(imp: &Importer, n: &Node, x: Value, scale: Value) -> Result<Option<usize>> {
    let axis = if n.opset >= 13 {
        n.int_or("axis", 1)?
    } else {
        1
    };
    if n.opset >= 21 && n.int_or("block_size", 0)? != 0 {
        return Err(n.err("blocked quantization (block_size != 0) is not supported"));
    }
    let st = imp.ty(scale)?;
    if st.numel() == 1 && st.rank() <= 1 {
        return Ok(None);
    }
    Ok(Some(norm_axis(n, axis, imp.rank(x)?)?))
}

pub(crate) fn quantize_linear(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["saturate"]);
    let x = imp.input(n, 0)?;
    let scale = imp.input(n, 1)?;
    let axis = q_axis(imp, n, x, scale)?;
    let out_dtype = match n.int("output_dtype")? {
        None | Some(0) => None,
        Some(code) => {
            let code =
                i32::try_from(code).map_err(|_| n.err(format!("unknown output_dtype {code}")))?;
            Some(
                crate::tensor::dtype_from_onnx(code, true)
                    .map_err(|m| n.err(format!("output_dtype: {m}")))?,
            )
        }
    };
    let sshape = imp.shape(scale)?;
    let zp = match imp.opt_input(n, 2)? {
        Some(zp) => {
            if out_dtype.is_some_and(|d| Some(d) != imp.ty(zp).ok().map(|t| t.dtype)) {
                return Err(n.err("output_dtype differs from the zero point's dtype"));
            }
            fit_shape(imp, n, "zero_point", zp, &sshape)?
        }
        None => zeros(imp, n, "zero_point", out_dtype.unwrap_or(DType::U8), sshape),
    };
    imp.emit1(n, "", Op::QuantizeLinear { axis }, &[x, scale, zp])
}

pub(crate) fn dequantize_linear(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let scale = imp.input(n, 1)?;
    let axis = q_axis(imp, n, x, scale)?;
    let sshape = imp.shape(scale)?;
    let zp = match imp.opt_input(n, 2)? {
        Some(zp) => fit_shape(imp, n, "zero_point", zp, &sshape)?,
        None => {
            let d = imp.ty(x)?.dtype;
            zeros(imp, n, "zero_point", d, sshape)
        }
    };
    imp.emit1(n, "", Op::DequantizeLinear { axis }, &[x, scale, zp])
}

/// A zero point input `i` for operand `of` with the scale `scale`: fitted to the scale's
/// shape, or zeros of the operand's dtype when absent.
fn zp_for(
    imp: &mut Importer,
    n: &Node,
    i: usize,
    of: Value,
    scale: Value,
    tag: &str,
) -> Result<Value> {
    let sshape = imp.shape(scale)?;
    match imp.opt_input(n, i)? {
        Some(zp) => fit_shape(imp, n, tag, zp, &sshape),
        None => {
            let d = imp.ty(of)?.dtype;
            Ok(zeros(imp, n, tag, d, sshape))
        }
    }
}

pub(crate) fn qlinear_conv(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.input(n, 1)?;
    let w = imp.input(n, 3)?;
    let ws = imp.input(n, 4)?;
    let ys = imp.input(n, 6)?;
    let xzp = zp_for(imp, n, 2, x, xs, "x_zero_point")?;
    let wzp = zp_for(imp, n, 5, w, ws, "w_zero_point")?;
    let y_dtype = match imp.opt_input(n, 7)? {
        Some(v) => imp.ty(v)?.dtype,
        None => imp.ty(x)?.dtype,
    };
    let yzp = match imp.opt_input(n, 7)? {
        Some(v) => {
            let s = imp.shape(ys)?;
            fit_shape(imp, n, "y_zero_point", v, &s)?
        }
        None => {
            let s = imp.shape(ys)?;
            zeros(imp, n, "y_zero_point", y_dtype, s)
        }
    };
    let b = imp.opt_input(n, 8)?;
    let (xshape, wshape) = (imp.shape(x)?, imp.shape(w)?);
    let (attrs, sp) = conv_attrs(n, &xshape, &wshape)?;
    let (x, w) = if sp == 1 {
        (
            lift_1d(imp, n, "unsqueeze", x)?,
            lift_1d(imp, n, "weight", w)?,
        )
    } else {
        (x, w)
    };
    let mut ins = vec![x, xs, xzp, w, ws, wzp, ys, yzp];
    ins.extend(b);
    let y = imp.emit1(n, "", Op::QLinearConv(attrs), &ins)?;
    if sp == 1 {
        lower_1d(imp, n, y)
    } else {
        Ok(y)
    }
}

pub(crate) fn qlinear_matmul(imp: &mut Importer, n: &Node) -> Result<Value> {
    let a = imp.input(n, 0)?;
    let a_s = imp.input(n, 1)?;
    let b = imp.input(n, 3)?;
    let b_s = imp.input(n, 4)?;
    let ys = imp.input(n, 6)?;
    let azp = zp_for(imp, n, 2, a, a_s, "a_zero_point")?;
    let bzp = zp_for(imp, n, 5, b, b_s, "b_zero_point")?;
    let yzp = match imp.opt_input(n, 7)? {
        Some(v) => {
            let s = imp.shape(ys)?;
            fit_shape(imp, n, "y_zero_point", v, &s)?
        }
        None => {
            let (d, s) = (imp.ty(a)?.dtype, imp.shape(ys)?);
            zeros(imp, n, "y_zero_point", d, s)
        }
    };
    imp.emit1(
        n,
        "",
        Op::QLinearMatMul,
        &[a, a_s, azp, b, b_s, bzp, ys, yzp],
    )
}

/// An optional integer zero point; absent means a scalar zero of `of`'s dtype.
fn int_zp(imp: &mut Importer, n: &Node, i: usize, of: Value, tag: &str) -> Result<Value> {
    match imp.opt_input(n, i)? {
        Some(v) => Ok(v),
        None => {
            let d = imp.ty(of)?.dtype;
            Ok(zeros(imp, n, tag, d, vec![]))
        }
    }
}

pub(crate) fn conv_integer(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let w = imp.input(n, 1)?;
    let xzp = int_zp(imp, n, 2, x, "x_zero_point")?;
    let wzp = int_zp(imp, n, 3, w, "w_zero_point")?;
    let (xshape, wshape) = (imp.shape(x)?, imp.shape(w)?);
    let (attrs, sp) = conv_attrs(n, &xshape, &wshape)?;
    let (x, w) = if sp == 1 {
        (
            lift_1d(imp, n, "unsqueeze", x)?,
            lift_1d(imp, n, "weight", w)?,
        )
    } else {
        (x, w)
    };
    let y = imp.emit1(n, "", Op::ConvInteger(attrs), &[x, w, xzp, wzp])?;
    if sp == 1 {
        lower_1d(imp, n, y)
    } else {
        Ok(y)
    }
}

pub(crate) fn matmul_integer(imp: &mut Importer, n: &Node) -> Result<Value> {
    let a = imp.input(n, 0)?;
    let b = imp.input(n, 1)?;
    let azp = int_zp(imp, n, 2, a, "a_zero_point")?;
    let bzp = int_zp(imp, n, 3, b, "b_zero_point")?;
    imp.emit1(n, "", Op::MatMulInteger, &[a, b, azp, bzp])
}

fn rounding(n: &Node, default: &str) -> Result<RoundingMode> {
    let mode = n.string_or("rounding_mode", default)?;
    match mode.to_ascii_uppercase().as_str() {
        "ROUND" | "HALF_EVEN" => Ok(RoundingMode::Round),
        "FLOOR" => Ok(RoundingMode::Floor),
        "CEIL" => Ok(RoundingMode::Ceil),
        "DOWN" => Ok(RoundingMode::Trunc),
        "HALF_UP" => Ok(RoundingMode::RoundHalfUp),
        _ => Err(n.err(format!("rounding_mode '{mode}' is not supported"))),
    }
}

/// A constant bit width input: an integral scalar in 1..=32.
fn bit_width(imp: &Importer, n: &Node, i: usize, what: &str) -> Result<u32> {
    let t = imp
        .const_input(n, i, what)?
        .ok_or_else(|| n.err(format!("input '{what}' is required")))?;
    let v = match t.to_f64_vec()[..] {
        [v] => v,
        _ => return Err(n.err(format!("{what} must be a scalar, got {}", t.ty()))),
    };
    if v.fract() != 0.0 || !(1.0..=32.0).contains(&v) {
        return Err(n.err(format!("{what} {v} must be an integer in 1..=32")));
    }
    Ok(v as u32)
}

pub(crate) fn qonnx_quant(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let scale = imp.input(n, 1)?;
    let zp = imp.input(n, 2)?;
    let bits = bit_width(imp, n, 3, "bitwidth")?;
    let signed = n.flag("signed", true)?;
    let narrow = n.flag("narrow", false)?;
    let rounding = rounding(n, "ROUND")?;
    imp.emit1(
        n,
        "",
        Op::Quant {
            bits,
            signed,
            narrow,
            rounding,
        },
        &[x, scale, zp],
    )
}

pub(crate) fn qonnx_bipolar(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let scale = imp.input(n, 1)?;
    imp.emit1(n, "", Op::BipolarQuant, &[x, scale])
}

pub(crate) fn qonnx_trunc(imp: &mut Importer, n: &Node) -> Result<Value> {
    if n.p.input.len() > 5 {
        return Err(n.err("Trunc version 2 (with output scale inputs) is not supported"));
    }
    let x = imp.input(n, 0)?;
    let scale = imp.input(n, 1)?;
    let zp = imp.input(n, 2)?;
    let in_bits = bit_width(imp, n, 3, "in_bitwidth")?;
    let out_bits = bit_width(imp, n, 4, "out_bitwidth")?;
    let rounding = rounding(n, "FLOOR")?;
    let signed = n.flag("signed", true)?;
    let narrow = n.flag("narrow", false)?;
    imp.emit1(
        n,
        "",
        Op::Trunc {
            in_bits,
            out_bits,
            rounding,
            signed,
            narrow,
        },
        &[x, scale, zp],
    )
}
