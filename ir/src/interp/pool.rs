//! Pooling: MaxPool, AveragePool (2-D, NCHW, with dilations and `ceil_mode`) and the
//! global pools over all spatial axes.
//!
//! The output sizes come from the node's output type (`ceil_mode` is already resolved
//! there). Window taps are `o*stride - pad_begin + j*dilation`:
//! - MaxPool ignores taps outside the input (padding is -inf and never selected); a
//!   window with no tap inside the input yields -inf (the dtype minimum for integers).
//!   NaN propagates.
//! - AveragePool sums the taps inside the input (ascending row, then column) and divides
//!   by their number, or with `count_include_pad` by the number of taps inside the
//!   *padded* input `[-pad_begin, size + pad_end)`: explicit pads count, a `ceil_mode`
//!   overhang beyond the padded input does not. This is ONNX Runtime's behaviour.
//! - Global pools reduce each `(n, c)` plane in row-major order (mean = sum / count).

use super::{f32s, ints, make, make_f32, Buf, R};
use crate::op::Pool2d;
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;

/// Taps of one axis: for every output position the valid input indices and the number
/// of taps inside the padded input.
struct AxisTaps {
    valid: Vec<Vec<usize>>,
    padded: Vec<usize>,
}

fn axis_taps(
    n_out: usize,
    n_in: usize,
    k: usize,
    s: usize,
    d: usize,
    p0: usize,
    p1: usize,
) -> AxisTaps {
    let (mut valid, mut padded) = (Vec::with_capacity(n_out), Vec::with_capacity(n_out));
    let (n_in_i, p0_i, p1_i) = (n_in as i64, p0 as i64, p1 as i64);
    for o in 0..n_out {
        let start = (o * s) as i64 - p0_i;
        let pos = (0..k).map(|j| start + (j * d) as i64);
        valid.push(
            pos.clone()
                .filter(|&p| p >= 0 && p < n_in_i)
                .map(|p| p as usize)
                .collect(),
        );
        padded.push(pos.filter(|&p| p >= -p0_i && p < n_in_i + p1_i).count());
    }
    AxisTaps { valid, padded }
}

/// A pooling problem: `planes` planes of `hw` elements (row length `w`) and the taps of
/// both axes.
struct PoolGeom {
    planes: usize,
    hw: usize,
    w: usize,
    rows: AxisTaps,
    cols: AxisTaps,
}

fn geometry(p: &Pool2d, x: &Tensor, out: &TensorType) -> R<PoolGeom> {
    let (&[n, c, h, w], &[on, oc, oh, ow]) = (x.shape(), out.shape.as_slice()) else {
        return Err("pooling needs rank-4 input and output".into());
    };
    if on != n || oc != c {
        return Err(format!("output {out} does not fit input {:?}", x.shape()));
    }
    if p.strides.contains(&0) || p.dilations.contains(&0) {
        return Err("strides and dilations must be positive".into());
    }
    if h * w == 0 {
        return Err("pooling over an empty input".into());
    }
    let rows = axis_taps(
        oh,
        h,
        p.kernel[0],
        p.strides[0],
        p.dilations[0],
        p.pads[0],
        p.pads[2],
    );
    let cols = axis_taps(
        ow,
        w,
        p.kernel[1],
        p.strides[1],
        p.dilations[1],
        p.pads[1],
        p.pads[3],
    );
    Ok(PoolGeom {
        planes: n * c,
        hw: h * w,
        w,
        rows,
        cols,
    })
}

fn max_planes<T: Copy>(xs: &[T], g: &PoolGeom, init: T, max: impl Fn(T, T) -> T) -> Vec<T> {
    let mut y = Vec::with_capacity(g.planes * g.rows.valid.len() * g.cols.valid.len());
    for plane in xs.chunks_exact(g.hw).take(g.planes) {
        for ry in &g.rows.valid {
            for cx in &g.cols.valid {
                let mut m = init;
                for &iy in ry {
                    for &ix in cx {
                        m = max(m, plane[iy * g.w + ix]);
                    }
                }
                y.push(m);
            }
        }
    }
    y
}

/// ONNX `MaxPool` (float or integer).
pub(crate) fn max_pool(p: &Pool2d, x: &Tensor, out: &TensorType) -> R<Tensor> {
    let g = geometry(p, x, out)?;
    let buf = match &x.data {
        Data::F32(_) => Buf::F32(max_planes(&f32s(x)?, &g, f32::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        })),
        Data::Int(_) => {
            let lo = x.dtype.int_range().map_or(i64::MIN, |r| r.0);
            Buf::Int(max_planes(&ints(x)?, &g, lo, i64::max))
        }
    };
    make(out, buf)
}

/// ONNX `AveragePool` (float).
pub(crate) fn average_pool(
    p: &Pool2d,
    count_include_pad: bool,
    x: &Tensor,
    out: &TensorType,
) -> R<Tensor> {
    let g = geometry(p, x, out)?;
    let xs = f32s(x)?;
    let mut y = Vec::with_capacity(out.numel());
    for plane in xs.chunks_exact(g.hw).take(g.planes) {
        for (ry, &ph) in g.rows.valid.iter().zip(&g.rows.padded) {
            for (cx, &pw) in g.cols.valid.iter().zip(&g.cols.padded) {
                let mut s = 0f32;
                for &iy in ry {
                    for &ix in cx {
                        s += plane[iy * g.w + ix];
                    }
                }
                let count = if count_include_pad {
                    ph * pw
                } else {
                    ry.len() * cx.len()
                };
                y.push(s / count as f32);
            }
        }
    }
    make_f32(out, y)
}

/// ONNX `GlobalAveragePool` (`max == false`, float) and `GlobalMaxPool`.
pub(crate) fn global_pool(max: bool, x: &Tensor, out: &TensorType) -> R<Tensor> {
    let shape = x.shape();
    if shape.len() < 3 {
        return Err("input must have rank >= 3".into());
    }
    let spatial: usize = shape[2..].iter().product();
    let planes = shape[0] * shape[1];
    if spatial == 0 {
        return Err("global pooling over an empty spatial extent".into());
    }
    let buf = match (&x.data, max) {
        (Data::F32(_), false) => {
            let xs = f32s(x)?;
            Buf::F32(
                xs.chunks_exact(spatial)
                    .map(|p| p.iter().fold(0f32, |a, &v| a + v) / spatial as f32)
                    .collect(),
            )
        }
        (Data::F32(_), true) => {
            let xs = f32s(x)?;
            let m = |p: &[f32]| {
                p.iter().fold(f32::NEG_INFINITY, |a, &v| {
                    if a.is_nan() || v.is_nan() {
                        f32::NAN
                    } else {
                        a.max(v)
                    }
                })
            };
            Buf::F32(xs.chunks_exact(spatial).map(m).collect())
        }
        (Data::Int(_), true) => {
            let xs = ints(x)?;
            Buf::Int(
                xs.chunks_exact(spatial)
                    .map(|p| p.iter().copied().max().unwrap_or(i64::MIN))
                    .collect(),
            )
        }
        (Data::Int(_), false) => return Err("global average pool needs f32 input".into()),
    };
    if planes != out.numel() {
        return Err(format!("output {out} does not fit input {shape:?}"));
    }
    make(out, buf)
}
