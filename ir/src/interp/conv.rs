//! Convolutions: Conv, ConvTranspose, QLinearConv, ConvInteger (2-D, NCHW, OIHW weights).
//!
//! One generic kernel serves float (`f32`) and integer (`i64`, wrapping) convolution:
//! - pointwise (1x1, stride 1, no padding): a GEMM per (image, group) with the output
//!   pixels as the contiguous inner loop;
//! - everything else (depthwise, grouped, strided, dilated, padded): direct convolution
//!   that accumulates one output plane at a time; for each (input channel, kernel tap)
//!   the valid output rows/columns are computed once, so the inner loop runs over a
//!   contiguous output row without bounds checks or padding tests. Depthwise convolution
//!   is the case of one input channel per output plane.
//!
//! Every output element is `sum over (c, ky, kx) ascending` starting from zero, then the
//! bias is added, whichever path computes it. Padding contributes nothing (taps outside
//! the input are skipped).
//!
//! Quantized convolutions subtract the zero points first (so padding is the zero point),
//! accumulate exactly in `i64` and wrap the accumulator to 32 bits like ONNX Runtime's
//! `int32` accumulator. QLinearConv then requantizes as ONNX Runtime does:
//! `multiplier = x_scale * w_scale[m] / y_scale` in f32,
//! `y = saturate(round_half_even(acc as f32 * multiplier) + y_zero_point)`.

use super::{f32s, ints, make_f32, make_int, round_half_even, saturate, Elem, R};
use crate::dtype::DType;
use crate::op::{Conv2d, ConvTranspose2d};
use crate::tensor::Tensor;
use crate::types::TensorType;

/// Resolved geometry of one 2-D convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub group: usize,
}

impl Geom {
    pub(crate) fn new(x: &[usize], w: &[usize], a: &Conv2d, out: &[usize]) -> R<Geom> {
        let (&[n, c, h, wi], &[m, cpg, kh, kw], &[on, om, oh, ow]) = (x, w, out) else {
            return Err(format!(
                "conv needs rank-4 input, weight and output, got {x:?}, {w:?}, {out:?}"
            ));
        };
        let g = Geom {
            n,
            c,
            h,
            w: wi,
            m,
            oh,
            ow,
            kh,
            kw,
            sh: a.strides[0],
            sw: a.strides[1],
            dh: a.dilations[0],
            dw: a.dilations[1],
            pt: a.pads[0],
            pl: a.pads[1],
            group: a.group,
        };
        if g.group == 0 || c % g.group != 0 || m % g.group != 0 || cpg != c / g.group {
            return Err(format!(
                "weight {w:?} does not fit input {x:?} with group {}",
                g.group
            ));
        }
        if on != n || om != m || g.sh == 0 || g.sw == 0 || g.dh == 0 || g.dw == 0 {
            return Err(format!(
                "output shape {out:?} does not fit input {x:?} and weight {w:?}"
            ));
        }
        // The last window must lie inside the padded input.
        let fits = |o: usize, s: usize, k: usize, d: usize, p0: usize, p1: usize, i: usize| {
            o == 0 || (o - 1) * s + (k.max(1) - 1) * d < i + p0 + p1
        };
        if !fits(oh, g.sh, kh, g.dh, a.pads[0], a.pads[2], h)
            || !fits(ow, g.sw, kw, g.dw, a.pads[1], a.pads[3], wi)
        {
            return Err(format!(
                "output shape {out:?} does not fit input {x:?} and weight {w:?}"
            ));
        }
        Ok(g)
    }

    fn cpg(&self) -> usize {
        self.c / self.group
    }

    fn mpg(&self) -> usize {
        self.m / self.group
    }

    fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
    }
}

/// Output positions `o` in `0..n_out` whose input position `o*s + k*d - p` lies in
/// `0..n_in`, as a half-open range.
fn valid_range(
    n_out: usize,
    n_in: usize,
    s: usize,
    k: usize,
    d: usize,
    p: usize,
) -> (usize, usize) {
    let off = k * d;
    // o*s + off >= p
    let lo = if off >= p { 0 } else { (p - off).div_ceil(s) };
    // o*s + off - p <= n_in - 1
    let hi = if n_in + p < off + 1 {
        0
    } else {
        (n_in + p - off - 1) / s + 1
    };
    let hi = hi.min(n_out);
    (lo.min(hi), hi)
}

/// `c[i, j] += sum_p a[i, p] * b[p, j]` for row-major `a` (m x k), `b` (k x n) and
/// `c` (m x n), `p` ascending. Rows of `c` are processed four at a time over column
/// blocks, so each `b` row segment is loaded once per four output rows.
pub(crate) fn gemm_acc<T: Elem>(m: usize, k: usize, n: usize, a: &[T], b: &[T], c: &mut [T]) {
    const NB: usize = 256;
    if m == 0 || n == 0 || a.len() < m * k || b.len() < k * n || c.len() < m * n {
        return;
    }
    let mut j0 = 0;
    while j0 < n {
        let jn = NB.min(n - j0);
        let mut rows = c[..m * n].chunks_exact_mut(n);
        let mut arows = a[..m * k].chunks_exact(k.max(1));
        let mut i = 0;
        while i + 4 <= m {
            let (Some(r0), Some(r1), Some(r2), Some(r3)) =
                (rows.next(), rows.next(), rows.next(), rows.next())
            else {
                break;
            };
            let (c0, c1, c2, c3) = (
                &mut r0[j0..j0 + jn],
                &mut r1[j0..j0 + jn],
                &mut r2[j0..j0 + jn],
                &mut r3[j0..j0 + jn],
            );
            let (a0, a1, a2, a3) = if k == 0 {
                (&[][..], &[][..], &[][..], &[][..])
            } else {
                match (arows.next(), arows.next(), arows.next(), arows.next()) {
                    (Some(a0), Some(a1), Some(a2), Some(a3)) => (a0, a1, a2, a3),
                    _ => break,
                }
            };
            for p in 0..k {
                let (w0, w1, w2, w3) = (a0[p], a1[p], a2[p], a3[p]);
                let brow = &b[p * n + j0..p * n + j0 + jn];
                for ((((y0, y1), y2), y3), &bv) in c0
                    .iter_mut()
                    .zip(c1.iter_mut())
                    .zip(c2.iter_mut())
                    .zip(c3.iter_mut())
                    .zip(brow)
                {
                    *y0 = y0.mac(w0, bv);
                    *y1 = y1.mac(w1, bv);
                    *y2 = y2.mac(w2, bv);
                    *y3 = y3.mac(w3, bv);
                }
            }
            i += 4;
        }
        while i < m {
            let Some(r) = rows.next() else { break };
            let crow = &mut r[j0..j0 + jn];
            for p in 0..k {
                let wv = a[i * k + p];
                let brow = &b[p * n + j0..p * n + j0 + jn];
                for (y, &bv) in crow.iter_mut().zip(brow) {
                    *y = y.mac(wv, bv);
                }
            }
            i += 1;
        }
        j0 += jn;
    }
}

/// The convolution sums (no bias) of `x` (NCHW) with `w` (OIHW), as a row-major
/// `[n, m, oh, ow]` vector.
pub(crate) fn conv_core<T: Elem>(x: &[T], w: &[T], g: &Geom) -> R<Vec<T>> {
    let (cpg, mpg) = (g.cpg(), g.mpg());
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    if x.len() != g.n * g.c * hw || w.len() != g.m * cpg * kk {
        return Err("internal: conv operand sizes do not match the geometry".into());
    }
    let mut y = vec![T::default(); g.n * g.m * ohw];
    if ohw == 0 || g.n == 0 || g.m == 0 {
        return Ok(y);
    }
    if g.pointwise() {
        for ni in 0..g.n {
            for gi in 0..g.group {
                let a = &w[gi * mpg * cpg..(gi + 1) * mpg * cpg];
                let b = &x[(ni * g.c + gi * cpg) * hw..(ni * g.c + (gi + 1) * cpg) * hw];
                let c = &mut y[(ni * g.m + gi * mpg) * ohw..(ni * g.m + (gi + 1) * mpg) * ohw];
                gemm_acc(mpg, cpg, hw, a, b, c);
            }
        }
        return Ok(y);
    }
    let rows: Vec<(usize, usize)> = (0..g.kh)
        .map(|ky| valid_range(g.oh, g.h, g.sh, ky, g.dh, g.pt))
        .collect();
    let cols: Vec<(usize, usize)> = (0..g.kw)
        .map(|kx| valid_range(g.ow, g.w, g.sw, kx, g.dw, g.pl))
        .collect();
    for ni in 0..g.n {
        for (mo, plane) in y[ni * g.m * ohw..(ni + 1) * g.m * ohw]
            .chunks_exact_mut(ohw)
            .enumerate()
        {
            let gi = mo / mpg;
            for ci in 0..cpg {
                let cabs = gi * cpg + ci;
                let xplane = &x[(ni * g.c + cabs) * hw..(ni * g.c + cabs + 1) * hw];
                let wk = &w[(mo * cpg + ci) * kk..(mo * cpg + ci + 1) * kk];
                for ky in 0..g.kh {
                    let (oy0, oy1) = rows[ky];
                    for kx in 0..g.kw {
                        let (ox0, ox1) = cols[kx];
                        if ox0 >= ox1 {
                            continue;
                        }
                        let wv = wk[ky * g.kw + kx];
                        // ox0*sw + kx*dw >= pl by construction of the range.
                        let ix0 = ox0 * g.sw + kx * g.dw - g.pl;
                        for oy in oy0..oy1 {
                            let iy = oy * g.sh + ky * g.dh - g.pt;
                            let yrow = &mut plane[oy * g.ow + ox0..oy * g.ow + ox1];
                            let xrow = &xplane[iy * g.w + ix0..(iy + 1) * g.w];
                            if g.sw == 1 {
                                for (o, &xv) in yrow.iter_mut().zip(xrow) {
                                    *o = o.mac(wv, xv);
                                }
                            } else {
                                for (o, &xv) in yrow.iter_mut().zip(xrow.iter().step_by(g.sw)) {
                                    *o = o.mac(wv, xv);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(y)
}

/// Add a per-output-channel bias to a `[n, m, plane]` vector.
fn add_bias(y: &mut [f32], bias: &[f32], m: usize, plane: usize) {
    if plane == 0 || m == 0 {
        return;
    }
    for (i, p) in y.chunks_exact_mut(plane).enumerate() {
        let b = bias[i % m];
        p.iter_mut().for_each(|v| *v += b);
    }
}

fn bias_f32(x: &[&Tensor], idx: usize, m: usize) -> R<Option<Vec<f32>>> {
    match x.get(idx) {
        None => Ok(None),
        Some(b) => {
            let b = f32s(b)?;
            if b.len() != m {
                return Err(format!("bias has {} elements, expected {m}", b.len()));
            }
            Ok(Some(b.into_owned()))
        }
    }
}

/// ONNX `Conv` (float).
pub(crate) fn conv(a: &Conv2d, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let g = Geom::new(x[0].shape(), x[1].shape(), a, &out.shape)?;
    let mut y = conv_core(&f32s(x[0])?, &f32s(x[1])?, &g)?;
    if let Some(b) = bias_f32(x, 2, g.m)? {
        add_bias(&mut y, &b, g.m, g.oh * g.ow);
    }
    make_f32(out, y)
}

/// ONNX `ConvTranspose` (float): every input pixel scatters `x * w` into the output at
/// `i*stride + k*dilation - pad_begin`; positions outside the output are dropped.
pub(crate) fn conv_transpose(a: &ConvTranspose2d, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let (&[n, c, h, wi], &[wc, mpg, kh, kw], &[on, m, oh, ow]) =
        (x[0].shape(), x[1].shape(), out.shape.as_slice())
    else {
        return Err("conv_transpose needs rank-4 input, weight and output".into());
    };
    let group = a.group;
    if group == 0 || wc != c || c % group != 0 || m != mpg * group || on != n {
        return Err(format!(
            "weight {:?} does not fit input {:?} with group {group}",
            x[1].shape(),
            x[0].shape()
        ));
    }
    let cpg = c / group;
    let [sh, sw] = a.strides;
    let [dh, dw] = a.dilations;
    let (pt, pl) = (a.pads[0], a.pads[1]);
    let xs = f32s(x[0])?;
    let ws = f32s(x[1])?;
    let (hw, ohw, kk) = (h * wi, oh * ow, kh * kw);
    let mut y = vec![0f32; n * m * ohw];
    // For input position i and tap k the output position is i*s + k*d - p; the valid
    // inputs are those mapping into 0..out.
    let inv =
        |n_in: usize, n_out: usize, s: usize, k: usize, d: usize, p: usize| -> (usize, usize) {
            let off = k * d;
            let lo = if off >= p { 0 } else { (p - off).div_ceil(s) };
            let hi = if n_out + p < off + 1 {
                0
            } else {
                (n_out + p - off - 1) / s + 1
            };
            let hi = hi.min(n_in);
            (lo.min(hi), hi)
        };
    let rows: Vec<(usize, usize)> = (0..kh).map(|ky| inv(h, oh, sh, ky, dh, pt)).collect();
    let cols: Vec<(usize, usize)> = (0..kw).map(|kx| inv(wi, ow, sw, kx, dw, pl)).collect();
    if ohw > 0 {
        for ni in 0..n {
            for gi in 0..group {
                for ci in 0..cpg {
                    let cabs = gi * cpg + ci;
                    let xplane = &xs[(ni * c + cabs) * hw..(ni * c + cabs + 1) * hw];
                    for mi in 0..mpg {
                        let mabs = gi * mpg + mi;
                        let plane = &mut y[(ni * m + mabs) * ohw..(ni * m + mabs + 1) * ohw];
                        let wk = &ws[(cabs * mpg + mi) * kk..(cabs * mpg + mi + 1) * kk];
                        for ky in 0..kh {
                            let (iy0, iy1) = rows[ky];
                            for kx in 0..kw {
                                let (ix0, ix1) = cols[kx];
                                if ix0 >= ix1 {
                                    continue;
                                }
                                let wv = wk[ky * kw + kx];
                                let ox0 = ix0 * sw + kx * dw - pl;
                                for iy in iy0..iy1 {
                                    let oy = iy * sh + ky * dh - pt;
                                    let xrow = &xplane[iy * wi + ix0..iy * wi + ix1];
                                    let yrow = &mut plane[oy * ow + ox0..(oy + 1) * ow];
                                    for (o, &xv) in yrow.iter_mut().step_by(sw).zip(xrow) {
                                        *o += wv * xv;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = bias_f32(x, 2, m)? {
        add_bias(&mut y, &b, m, ohw);
    }
    make_f32(out, y)
}

/// A scalar (one-element) integer parameter.
fn scalar_int(t: &Tensor, what: &str) -> R<i64> {
    match ints(t)?.as_ref() {
        [v] => Ok(*v),
        v => Err(format!("{what} must have one element, got {}", v.len())),
    }
}

/// Per-output-channel values from a scalar or `[m]` tensor.
fn per_channel<T: Copy>(v: &[T], m: usize, what: &str) -> R<Vec<T>> {
    match v.len() {
        1 => Ok(vec![v[0]; m]),
        l if l == m => Ok(v.to_vec()),
        l => Err(format!("{what} has {l} elements, expected 1 or {m}")),
    }
}

/// Integer conv sums of `(x - x_zp) * (w - w_zp[m])`, wrapped to 32 bits, plus the
/// optional bias (also wrapped).
fn int_conv_acc(
    a: &Conv2d,
    x: &Tensor,
    x_zp: i64,
    w: &Tensor,
    w_zp: &[i64],
    bias: Option<&[i64]>,
    out: &[usize],
) -> R<(Vec<i64>, Geom)> {
    let g = Geom::new(x.shape(), w.shape(), a, out)?;
    let w_zp = per_channel(w_zp, g.m, "w_zero_point")?;
    let xs: Vec<i64> = ints(x)?.iter().map(|&v| v.wrapping_sub(x_zp)).collect();
    let per_m = g.cpg() * g.kh * g.kw;
    let ws: Vec<i64> = ints(w)?
        .iter()
        .enumerate()
        .map(|(i, &v)| v.wrapping_sub(w_zp[i.checked_div(per_m).unwrap_or(0)]))
        .collect();
    let mut acc = conv_core(&xs, &ws, &g)?;
    let plane = g.oh * g.ow;
    if let Some(b) = bias {
        if b.len() != g.m {
            return Err(format!("bias has {} elements, expected {}", b.len(), g.m));
        }
        if plane > 0 {
            for (i, p) in acc.chunks_exact_mut(plane).enumerate() {
                let bv = b[i % g.m];
                p.iter_mut()
                    .for_each(|v| *v = wrap_i32(*v).wrapping_add(bv));
            }
        }
    }
    acc.iter_mut().for_each(|v| *v = wrap_i32(*v));
    Ok((acc, g))
}

/// Wrap to a 32-bit two's-complement value.
pub(crate) fn wrap_i32(v: i64) -> i64 {
    v as i32 as i64
}

/// ONNX `ConvInteger`: `x, w, x_zero_point, w_zero_point` -> i32.
pub(crate) fn conv_integer(a: &Conv2d, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let x_zp = scalar_int(x[2], "x_zero_point")?;
    let w_zp = ints(x[3])?;
    let (acc, _) = int_conv_acc(a, x[0], x_zp, x[1], &w_zp, None, &out.shape)?;
    make_int(out, acc)
}

/// ONNX `QLinearConv`:
/// `x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias]`.
pub(crate) fn qlinear_conv(a: &Conv2d, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let x_scale = scalar_f32(x[1], "x_scale")?;
    let x_zp = scalar_int(x[2], "x_zero_point")?;
    let w_scale = f32s(x[4])?;
    let w_zp = ints(x[5])?;
    let y_scale = scalar_f32(x[6], "y_scale")?;
    let y_zp = scalar_int(x[7], "y_zero_point")?;
    let bias = match x.get(8) {
        Some(b) => Some(ints(b)?.into_owned()),
        None => None,
    };
    let (acc, g) = int_conv_acc(a, x[0], x_zp, x[3], &w_zp, bias.as_deref(), &out.shape)?;
    let w_scale = per_channel(&w_scale, g.m, "w_scale")?;
    let mult: Vec<f32> = w_scale.iter().map(|&ws| x_scale * ws / y_scale).collect();
    let plane = g.oh * g.ow;
    let y = requantize(&acc, &mult, g.m, plane, y_zp, out.dtype);
    make_int(out, y)
}

/// `saturate(round_half_even(acc as f32 * mult[ch]) + zp)` where the channel of element
/// `i` is `(i / plane) % m`.
pub(crate) fn requantize(
    acc: &[i64],
    mult: &[f32],
    m: usize,
    plane: usize,
    zp: i64,
    dt: DType,
) -> Vec<i64> {
    acc.iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = if plane == 0 || m == 0 {
                0
            } else {
                (i / plane) % m
            };
            let r = round_half_even(v as f32 * mult[ch]);
            saturate(r as f64 + zp as f64, dt)
        })
        .collect()
}

/// A one-element f32 parameter.
pub(crate) fn scalar_f32(t: &Tensor, what: &str) -> R<f32> {
    match f32s(t)?.as_ref() {
        [v] => Ok(*v),
        v => Err(format!("{what} must have one element, got {}", v.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_brute_force() {
        for n_out in 0..6 {
            for n_in in 1..6 {
                for s in 1..4 {
                    for k in 0..3 {
                        for d in 1..3 {
                            for p in 0..4 {
                                let want: Vec<usize> = (0..n_out)
                                    .filter(|&o| {
                                        let pos = (o * s + k * d) as i64 - p as i64;
                                        pos >= 0 && pos < n_in as i64
                                    })
                                    .collect();
                                let (lo, hi) = valid_range(n_out, n_in, s, k, d, p);
                                assert_eq!(
                                    (lo..hi).collect::<Vec<_>>(),
                                    want,
                                    "{n_out} {n_in} {s} {k} {d} {p}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_acc_matches_naive() {
        let (m, k, n) = (7, 5, 300);
        let a: Vec<i64> = (0..m * k).map(|i| (i as i64 * 7) % 11 - 5).collect();
        let b: Vec<i64> = (0..k * n).map(|i| (i as i64 * 13) % 17 - 8).collect();
        let mut c = vec![1i64; m * n];
        gemm_acc(m, k, n, &a, &b, &mut c);
        for i in 0..m {
            for j in 0..n {
                let want = 1 + (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<i64>();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
