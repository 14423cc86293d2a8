//! Reductions and softmax: Reduce{Mean,Sum,Max,Min} over sorted axes (empty = all axes)
//! and Softmax / LogSoftmax.
//!
//! Each output of a reduction accumulates its inputs in ascending row-major order.
//! Integer sums wrap to the dtype's width; Mean is `sum / count` (f32 only). Float Max and
//! Min propagate NaN. Reducing an empty set gives 0 (Sum), NaN (Mean), or the identity of
//! Max/Min (-inf/+inf, or the dtype's minimum/maximum for integers).
//!
//! Softmax is numerically stable: `exp(x - max) / sum(exp(x - max))`; LogSoftmax is
//! `(x - max) - ln(sum(exp(x - max)))`, as the ONNX reference computes them. With
//! `coerce_2d` (opset < 13) each row of the `[prod(shape[..axis]), prod(shape[axis..])]`
//! view is normalised; otherwise each lane along `axis` is.

use super::{f32s, fit_int, for_each_row, ints, make, strides, Buf, R};
use crate::op::ReduceKind;
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;

/// Accumulate `x` into `acc` (one slot per output element) with `f`, visiting inputs in
/// row-major order.
fn fold_into<T: Copy, A>(
    x: &[T],
    shape: &[usize],
    reduced: &[bool],
    acc: &mut [A],
    f: impl Fn(&mut A, T),
) {
    // Output strides over the input axes: 0 along reduced axes.
    let kept: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let ks = strides(&kept);
    let os: Vec<usize> = ks
        .iter()
        .zip(reduced)
        .map(|(&s, &r)| if r { 0 } else { s })
        .collect();
    let is = strides(shape);
    let (last_n, last_o) = match shape.len() {
        0 => (1, 0),
        r => (shape[r - 1], os[r - 1]),
    };
    for_each_row(shape, [&is, &os], |[ib, ob]| {
        for j in 0..last_n {
            f(&mut acc[ob + j * last_o], x[ib + j]);
        }
    });
}

fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// ONNX `Reduce*` with sorted `axes` (empty = all); `keepdims` is in the output type.
pub(crate) fn reduce(kind: ReduceKind, axes: &[usize], x: &Tensor, out: &TensorType) -> R<Tensor> {
    let shape = x.shape();
    if axes.iter().any(|&a| a >= shape.len()) {
        return Err(format!(
            "axes {axes:?} out of range for rank {}",
            shape.len()
        ));
    }
    let reduced: Vec<bool> = (0..shape.len())
        .map(|a| axes.is_empty() || axes.contains(&a))
        .collect();
    let n_out: usize = shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| !r)
        .map(|(&d, _)| d)
        .product();
    let count: usize = shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| r)
        .map(|(&d, _)| d)
        .product();
    if n_out != out.numel() {
        return Err(format!("output {out} does not fit input {shape:?}"));
    }
    let buf = match &x.data {
        Data::F32(_) => {
            let xs = f32s(x)?;
            let (init, f): (f32, fn(f32, f32) -> f32) = match kind {
                ReduceKind::Sum | ReduceKind::Mean => (0.0, |a, b| a + b),
                ReduceKind::Max => (f32::NEG_INFINITY, nan_max),
                ReduceKind::Min => (f32::INFINITY, nan_min),
            };
            let mut acc = vec![init; n_out];
            fold_into(&xs, shape, &reduced, &mut acc, |a, v| *a = f(*a, v));
            if kind == ReduceKind::Mean {
                acc.iter_mut().for_each(|a| *a /= count as f32);
            }
            Buf::F32(acc)
        }
        Data::Int(_) => {
            let xs = ints(x)?;
            let (lo, hi) = x.dtype.int_range().unwrap_or((i64::MIN, i64::MAX));
            let (init, f): (i64, fn(i64, i64) -> i64) = match kind {
                ReduceKind::Sum => (0, i64::wrapping_add),
                ReduceKind::Max => (lo, i64::max),
                ReduceKind::Min => (hi, i64::min),
                ReduceKind::Mean => return Err("mean of an integer tensor".into()),
            };
            let mut acc = vec![init; n_out];
            fold_into(&xs, shape, &reduced, &mut acc, |a, v| *a = f(*a, v));
            Buf::Int(
                acc.into_iter()
                    .map(|v| fit_int(v, x.dtype))
                    .collect::<R<Vec<i64>>>()?,
            )
        }
    };
    make(out, buf)
}

/// ONNX `Softmax` / `LogSoftmax`.
pub(crate) fn softmax(
    axis: usize,
    coerce_2d: bool,
    log: bool,
    x: &Tensor,
    out: &TensorType,
) -> R<Tensor> {
    let shape = x.shape();
    if axis >= shape.len() {
        return Err(format!("axis {axis} out of range for rank {}", shape.len()));
    }
    let outer: usize = shape[..axis].iter().product();
    let (n, inner) = if coerce_2d {
        (shape[axis..].iter().product::<usize>(), 1)
    } else {
        (shape[axis], shape[axis + 1..].iter().product::<usize>())
    };
    let xs = f32s(x)?;
    let mut y = vec![0f32; xs.len()];
    let mut e = vec![0f32; n];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let lane = |k: usize| base + k * inner;
            let max = (0..n).fold(f32::NEG_INFINITY, |m, k| nan_max(m, xs[lane(k)]));
            let mut sum = 0f32;
            for (k, ek) in e.iter_mut().enumerate() {
                *ek = (xs[lane(k)] - max).exp();
                sum += *ek;
            }
            if log {
                let ls = sum.ln();
                for k in 0..n {
                    y[lane(k)] = (xs[lane(k)] - max) - ls;
                }
            } else {
                for (k, &ek) in e.iter().enumerate() {
                    y[lane(k)] = ek / sum;
                }
            }
        }
    }
    make(out, Buf::F32(y))
}
