//! Elementwise ops: Unary, LeakyRelu, Elu, HardSigmoid, Clip, PRelu, Binary (numpy
//! broadcasting) and BatchNorm (inference mode).
//!
//! Float formulas follow the ONNX definitions evaluated in `f32`:
//! `HardSwish(x) = x * max(0, min(1, x/6 + 1/2))` with the ONNX constants `alpha = 1/6`
//! (as an f32) and `beta = 0.5`; `Round` is half to even; `Softplus(x) = ln(exp(x) + 1)`,
//! evaluated as `max(x, 0) + ln(1 + exp(-|x|))` so that large inputs do not overflow
//! (ONNX Runtime does the same); `Sign(NaN)` is NaN; Relu, Max and Min propagate NaN.
//!
//! Integer ops compute in `i64` and wrap to the dtype's width (Neg/Abs of the minimum
//! wrap to the minimum, as in C). Integer `Div` truncates toward zero; division by zero is
//! an error. Integer `Pow` with a non-negative exponent is repeated wrapping
//! multiplication; a negative exponent gives the truncated quotient `1 / x^-e` (so 0
//! unless `x` is ±1; `0` to a negative power is an error). Fixed-point tensors only
//! support Add, Sub, Max and Min (raw values share one scale).

use super::{
    f32s, fit_int, ints, make, make_f32, make_int, round_half_even, zip_broadcast, Buf, R,
};
use crate::dtype::DType;
use crate::op::{BinaryOp, UnaryOp};
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;

/// Apply `f` to every element of a float tensor.
pub(crate) fn map_f32(x: &Tensor, out: &TensorType, f: impl Fn(f32) -> f32) -> R<Tensor> {
    let v = f32s(x)?.iter().map(|&v| f(v)).collect();
    make_f32(out, v)
}

fn hard_swish(v: f32) -> f32 {
    const ALPHA: f32 = 1.0 / 6.0;
    v * (ALPHA * v + 0.5).clamp(0.0, 1.0)
}

fn softplus(v: f32) -> f32 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

fn unary_f32(u: UnaryOp, v: f32) -> f32 {
    use UnaryOp as U;
    match u {
        U::Relu => {
            if v < 0.0 {
                0.0
            } else {
                v
            }
        }
        U::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        U::Tanh => v.tanh(),
        U::HardSwish => hard_swish(v),
        U::Exp => v.exp(),
        U::Log => v.ln(),
        U::Sqrt => v.sqrt(),
        U::Neg => -v,
        U::Abs => v.abs(),
        U::Floor => v.floor(),
        U::Ceil => v.ceil(),
        U::Round => round_half_even(v),
        U::Reciprocal => 1.0 / v,
        U::Sign => {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else if v == 0.0 {
                0.0
            } else {
                v
            }
        }
        U::Softplus => {
            if v.is_nan() {
                v
            } else {
                softplus(v)
            }
        }
        U::Softsign => v / (1.0 + v.abs()),
    }
}

/// ONNX unary ops; Relu, Neg, Abs and Sign also on integers.
pub(crate) fn unary(u: UnaryOp, x: &Tensor, out: &TensorType) -> R<Tensor> {
    match &x.data {
        Data::F32(_) => map_f32(x, out, |v| unary_f32(u, v)),
        Data::Int(_) => {
            let dt = x.dtype;
            let f = |v: i64| -> R<i64> {
                let r = match u {
                    UnaryOp::Relu => v.max(0),
                    UnaryOp::Neg => v.wrapping_neg(),
                    UnaryOp::Abs => v.wrapping_abs(),
                    UnaryOp::Sign => v.signum(),
                    _ => return Err(format!("{u:?} is not defined on {dt}")),
                };
                fit_int(r, dt)
            };
            let v = ints(x)?.iter().map(|&v| f(v)).collect::<R<Vec<i64>>>()?;
            make_int(out, v)
        }
    }
}

/// ONNX `Clip`: float bounds as f32; integer tensors use the bounds as integers
/// (`min` rounded up, `max` rounded down, infinite bounds are open; a bound that would
/// produce a value outside the dtype is an error).
pub(crate) fn clip(min: f64, max: f64, x: &Tensor, out: &TensorType) -> R<Tensor> {
    match &x.data {
        Data::F32(_) => {
            let (lo, hi) = (min as f32, max as f32);
            map_f32(x, out, |v| {
                if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }
            })
        }
        Data::Int(_) => {
            if min.is_nan() || max.is_nan() {
                return Err("clip bounds are NaN".into());
            }
            // `as` saturates: -inf -> i64::MIN, inf -> i64::MAX.
            let (lo, hi) = (min.ceil() as i64, max.floor() as i64);
            if lo > hi {
                return Err(format!("no integer lies in [{min}, {max}]"));
            }
            let dt = x.dtype;
            let v = ints(x)?
                .iter()
                .map(|&v| {
                    let c = v.clamp(lo, hi);
                    if dt.contains(c) {
                        Ok(c)
                    } else {
                        Err(format!("clip bound {c} is not representable as {dt}"))
                    }
                })
                .collect::<R<Vec<i64>>>()?;
            make_int(out, v)
        }
    }
}

/// ONNX `PRelu`: `x < 0 ? slope * x : x`, slope broadcast to `x`.
pub(crate) fn prelu(x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let v = zip_broadcast(
        &f32s(x[0])?,
        x[0].shape(),
        &f32s(x[1])?,
        x[1].shape(),
        &out.shape,
        |v, s| {
            if v < 0.0 {
                v * s
            } else {
                v
            }
        },
    )?;
    make_f32(out, v)
}

fn binary_f32(b: BinaryOp, x: f32, y: f32) -> f32 {
    match b {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Max => {
            if x.is_nan() || y.is_nan() {
                f32::NAN
            } else {
                x.max(y)
            }
        }
        BinaryOp::Min => {
            if x.is_nan() || y.is_nan() {
                f32::NAN
            } else {
                x.min(y)
            }
        }
        BinaryOp::Pow => x.powf(y),
    }
}

/// Wrapping integer power; negative exponents truncate `1 / x^-e` toward zero.
fn int_pow(x: i64, e: i64) -> R<i64> {
    if e < 0 {
        return match x {
            0 => Err("integer division by zero (0 raised to a negative power)".into()),
            1 => Ok(1),
            -1 => Ok(if e % 2 == 0 { 1 } else { -1 }),
            _ => Ok(0),
        };
    }
    let (mut base, mut e, mut acc) = (x, e as u64, 1i64);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    Ok(acc)
}

fn binary_int(b: BinaryOp, x: i64, y: i64) -> R<i64> {
    Ok(match b {
        BinaryOp::Add => x.wrapping_add(y),
        BinaryOp::Sub => x.wrapping_sub(y),
        BinaryOp::Mul => x.wrapping_mul(y),
        BinaryOp::Div => {
            if y == 0 {
                return Err("integer division by zero".into());
            }
            x.wrapping_div(y)
        }
        BinaryOp::Max => x.max(y),
        BinaryOp::Min => x.min(y),
        BinaryOp::Pow => int_pow(x, y)?,
    })
}

/// ONNX arithmetic with multidirectional broadcasting.
pub(crate) fn binary(b: BinaryOp, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let (a, c) = (x[0], x[1]);
    let buf = match (&a.data, &c.data) {
        (Data::F32(_), Data::F32(_)) => Buf::F32(zip_broadcast(
            &f32s(a)?,
            a.shape(),
            &f32s(c)?,
            c.shape(),
            &out.shape,
            |p, q| binary_f32(b, p, q),
        )?),
        (Data::Int(_), Data::Int(_)) => {
            let dt = out.dtype;
            if matches!(dt, DType::Fixed { .. })
                && !matches!(
                    b,
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Max | BinaryOp::Min
                )
            {
                return Err(format!("{b:?} is not defined on fixed-point {dt}"));
            }
            let v = zip_broadcast(
                &ints(a)?,
                a.shape(),
                &ints(c)?,
                c.shape(),
                &out.shape,
                |p, q| binary_int(b, p, q).and_then(|r| fit_int(r, dt)),
            )?;
            Buf::Int(v.into_iter().collect::<R<Vec<i64>>>()?)
        }
        _ => return Err("operands have different kinds".into()),
    };
    make(out, buf)
}

/// ONNX `BatchNormalization` (inference): `scale * (x - mean) / sqrt(var + eps) + bias`
/// per channel (axis 1), evaluated in that order as the ONNX reference does.
pub(crate) fn batch_norm(eps: f32, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let xs = f32s(x[0])?;
    let shape = x[0].shape();
    let c = *shape.get(1).ok_or("batch norm input must have rank >= 2")?;
    let params: Vec<_> = x[1..5].iter().map(|t| f32s(t)).collect::<R<_>>()?;
    if params.iter().any(|p| p.len() != c) {
        return Err(format!("parameters must have {c} elements"));
    }
    let (scale, bias, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    let inner: usize = shape[2..].iter().product();
    let mut y = Vec::with_capacity(xs.len());
    if inner > 0 && c > 0 {
        for (i, row) in xs.chunks_exact(inner).enumerate() {
            let ch = i % c;
            let (s, b, m) = (scale[ch], bias[ch], mean[ch]);
            let d = (var[ch] + eps).sqrt();
            y.extend(row.iter().map(|&v| s * (v - m) / d + b));
        }
    }
    make_f32(out, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_pow_cases() {
        assert_eq!(int_pow(3, 4), Ok(81));
        assert_eq!(int_pow(-2, 3), Ok(-8));
        assert_eq!(int_pow(5, 0), Ok(1));
        assert_eq!(int_pow(2, -1), Ok(0));
        assert_eq!(int_pow(-1, -3), Ok(-1));
        assert!(int_pow(0, -1).is_err());
        assert_eq!(int_pow(2, 64), Ok(0)); // wraps
    }

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(100.0), 100.0);
        assert!((softplus(0.0) - std::f32::consts::LN_2).abs() < 1e-7);
        assert!((softplus(-3.0) - (1.0f32 + (-3.0f32).exp()).ln()).abs() < 1e-7);
    }
}
