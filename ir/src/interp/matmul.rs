//! Matrix products: Gemm, MatMul (numpy semantics: rank-1 operands, batch
//! broadcasting), QLinearMatMul and MatMulInteger.
//!
//! All share [`gemm_acc`]: row-major, `k` ascending from zero, so results do not depend on
//! blocking. Gemm is `alpha * (A @ B) + beta * C` evaluated as `(acc * alpha) + (C *
//! beta)` like the ONNX reference (C is ignored when `beta == 0`).
//!
//! Integer products subtract the zero points first and accumulate exactly, wrapping the
//! accumulator to 32 bits (ONNX Runtime's `int32` accumulator). Zero points and scales
//! are per tensor (one element), per row of `a` / of the output (`[M]` or `[.., M, 1]`)
//! or per column of `b` (`[N]` or `[.., 1, N]`). QLinearMatMul requantizes like ONNX
//! Runtime: `multiplier = a_scale[i] * b_scale[j] / y_scale[i]` in f32 and
//! `y = saturate(round_half_even(acc as f32 * multiplier) + y_zero_point[i])`.

use super::conv::{gemm_acc, wrap_i32};
use super::{
    broadcast_strides, broadcast_to, f32s, ints, make_f32, make_int, round_half_even, saturate,
    Elem, R,
};
use crate::tensor::Tensor;
use crate::types::TensorType;
use std::borrow::Cow;

/// Row-major transpose of an `r x c` matrix.
fn transpose2d(v: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0f32; v.len()];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = v[i * c + j];
        }
    }
    t
}

/// ONNX `Gemm`.
pub(crate) fn gemm(
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
    x: &[&Tensor],
    out: &TensorType,
) -> R<Tensor> {
    let (&[ra, ca], &[rb, cb]) = (x[0].shape(), x[1].shape()) else {
        return Err("Gemm operands must have rank 2".into());
    };
    let (a, b) = (f32s(x[0])?, f32s(x[1])?);
    let (m, k) = if trans_a { (ca, ra) } else { (ra, ca) };
    let (k2, n) = if trans_b { (cb, rb) } else { (rb, cb) };
    if k != k2 || out.shape != [m, n] {
        return Err(format!(
            "inner dimensions or output {out} do not fit A {:?}, B {:?}",
            x[0].shape(),
            x[1].shape()
        ));
    }
    let a: Cow<[f32]> = if trans_a {
        Cow::Owned(transpose2d(&a, ra, ca))
    } else {
        a
    };
    let b: Cow<[f32]> = if trans_b {
        Cow::Owned(transpose2d(&b, rb, cb))
    } else {
        b
    };
    let mut y = vec![0f32; m * n];
    gemm_acc(m, k, n, &a, &b, &mut y);
    y.iter_mut().for_each(|v| *v *= alpha);
    if let (Some(c), true) = (x.get(2), beta != 0.0) {
        let cs = f32s(c)?;
        let cb = broadcast_to(&cs, c.shape(), &out.shape)?;
        y.iter_mut().zip(cb).for_each(|(v, c)| *v += c * beta);
    }
    make_f32(out, y)
}

/// Geometry of a numpy matmul: `(batch count, m, k, n)` and per-batch offsets of `a`
/// and `b` in elements.
struct MatGeom {
    m: usize,
    k: usize,
    n: usize,
    offsets: Vec<(usize, usize)>,
}

fn mat_geom(ash: &[usize], bsh: &[usize]) -> R<MatGeom> {
    if ash.is_empty() || bsh.is_empty() {
        return Err("matmul operands must have rank >= 1".into());
    }
    let a2: Vec<usize> = if ash.len() == 1 {
        vec![1, ash[0]]
    } else {
        ash.to_vec()
    };
    let b2: Vec<usize> = if bsh.len() == 1 {
        vec![bsh[0], 1]
    } else {
        bsh.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(format!("matmul inner dimensions differ: {ash:?} x {bsh:?}"));
    }
    let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = crate::shape::broadcast(ab, bb)?;
    let sa = broadcast_strides(ab, &batch)?;
    let sb = broadcast_strides(bb, &batch)?;
    let nb: usize = batch.iter().product();
    let mut offsets = Vec::with_capacity(nb);
    for bi in 0..nb {
        let (mut rem, mut oa, mut ob) = (bi, 0, 0);
        for ax in (0..batch.len()).rev() {
            let i = rem % batch[ax];
            rem /= batch[ax];
            oa += i * sa[ax];
            ob += i * sb[ax];
        }
        offsets.push((oa * m * k, ob * k * n));
    }
    Ok(MatGeom { m, k, n, offsets })
}

/// Numpy matmul of row-major operands; returns the `[batch.., m, n]` result.
fn matmul_core<T: Elem>(a: &[T], ash: &[usize], b: &[T], bsh: &[usize]) -> R<(Vec<T>, MatGeom)> {
    let g = mat_geom(ash, bsh)?;
    let (m, k, n) = (g.m, g.k, g.n);
    let nb = g.offsets.len();
    let mut y = vec![T::default(); nb * m * n];
    if bsh.len() <= 2 {
        // `b` is one matrix: fold the batch of `a` into its rows (a is contiguous).
        let rows = a.len() / k.max(1);
        if rows == nb * m && k > 0 {
            gemm_acc(nb * m, k, n, a, b, &mut y);
            return Ok((y, g));
        }
    }
    for (bi, &(oa, ob)) in g.offsets.iter().enumerate() {
        let (aa, bm) = (&a[oa..oa + m * k], &b[ob..ob + k * n]);
        gemm_acc(m, k, n, aa, bm, &mut y[bi * m * n..(bi + 1) * m * n]);
    }
    Ok((y, g))
}

/// ONNX `MatMul` (float).
pub(crate) fn matmul(x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let (y, _) = matmul_core(&f32s(x[0])?, x[0].shape(), &f32s(x[1])?, x[1].shape())?;
    make_f32(out, y)
}

/// Per-row values (length `m`) from a scalar, `[m]` or `[.., m, 1]` parameter.
fn per_row<T: Copy>(v: &[T], shape: &[usize], m: usize, what: &str) -> R<Vec<T>> {
    let ok = v.len() == m
        && match shape.len() {
            0 => true,
            1 => shape[0] == m,
            r => shape[r - 1] == 1 && shape[r - 2] == m,
        };
    match v.len() {
        1 => Ok(vec![v[0]; m]),
        _ if ok => Ok(v.to_vec()),
        _ => Err(format!(
            "{what} of shape {shape:?} is neither per tensor nor per row ({m})"
        )),
    }
}

/// Per-column values (length `n`) from a scalar, `[n]` or `[.., 1, n]` parameter.
fn per_col<T: Copy>(v: &[T], shape: &[usize], n: usize, what: &str) -> R<Vec<T>> {
    let ok = v.len() == n
        && match shape.len() {
            0 => true,
            1 => shape[0] == n,
            r => shape[r - 1] == n && shape[r - 2] == 1,
        };
    match v.len() {
        1 => Ok(vec![v[0]; n]),
        _ if ok => Ok(v.to_vec()),
        _ => Err(format!(
            "{what} of shape {shape:?} is neither per tensor nor per column ({n})"
        )),
    }
}

/// Exact integer product of `(a - a_zp[row]) @ (b - b_zp[col])`, accumulator wrapped to
/// 32 bits.
fn int_product(a: &Tensor, a_zp: &Tensor, b: &Tensor, b_zp: &Tensor) -> R<(Vec<i64>, MatGeom)> {
    let g = mat_geom(a.shape(), b.shape())?;
    let azp = per_row(&ints(a_zp)?, a_zp.shape(), g.m, "a_zero_point")?;
    let bzp = per_col(&ints(b_zp)?, b_zp.shape(), g.n, "b_zero_point")?;
    let k = g.k.max(1);
    let av: Vec<i64> = ints(a)?
        .iter()
        .enumerate()
        .map(|(i, &v)| v.wrapping_sub(azp[(i / k) % g.m.max(1)]))
        .collect();
    let n = g.n.max(1);
    let bv: Vec<i64> = ints(b)?
        .iter()
        .enumerate()
        .map(|(i, &v)| v.wrapping_sub(bzp[i % n]))
        .collect();
    let (mut y, g) = matmul_core(&av, a.shape(), &bv, b.shape())?;
    y.iter_mut().for_each(|v| *v = wrap_i32(*v));
    Ok((y, g))
}

/// ONNX `MatMulInteger`: `a, b, a_zero_point, b_zero_point` -> i32.
pub(crate) fn matmul_integer(x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let (y, _) = int_product(x[0], x[2], x[1], x[3])?;
    make_int(out, y)
}

/// ONNX `QLinearMatMul`: `a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp`.
pub(crate) fn qlinear_matmul(x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let (acc, g) = int_product(x[0], x[2], x[3], x[5])?;
    let (m, n) = (g.m, g.n);
    let a_s = per_row(&f32s(x[1])?, x[1].shape(), m, "a_scale")?;
    let b_s = per_col(&f32s(x[4])?, x[4].shape(), n, "b_scale")?;
    let y_s = per_row(&f32s(x[6])?, x[6].shape(), m, "y_scale")?;
    let y_zp = per_row(&ints(x[7])?, x[7].shape(), m, "y_zero_point")?;
    let mut y = Vec::with_capacity(acc.len());
    if m > 0 && n > 0 {
        for mat in acc.chunks_exact(m * n) {
            for (i, row) in mat.chunks_exact(n).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let mult = a_s[i] * b_s[j] / y_s[i];
                    let r = round_half_even(v as f32 * mult);
                    y.push(saturate(r as f64 + y_zp[i] as f64, out.dtype));
                }
            }
        }
    }
    make_int(out, y)
}
