//! Data movement: Identity (in `mod.rs`), Concat, Split, Slice, Reshape, Transpose,
//! Gather, Expand, Cast, Pad. These work on either storage kind and copy values exactly.
//!
//! Cast rules (ONNX leaves out-of-range float -> int undefined; these are lnc's):
//! - float -> integer rounds toward zero, then saturates to the target range; NaN -> 0;
//! - integer -> integer wraps to the target width (two's complement, like C);
//! - anything -> bool is `!= 0` (NaN is true);
//! - integer -> float rounds to nearest;
//! - fixed point converts by value (`raw * 2^-frac`): to fixed from float rounds toward
//!   zero and saturates, between integer/fixed types the raw value is rescaled by a power
//!   of two (dividing truncates toward zero) and wrapped;
//! - bipolar/ternary targets accept only representable values (else an error).
//!
//! Pad: negative pads crop first; reflect/edge padding then reads the cropped tensor.
//! Reflect padding wider than the axis keeps reflecting (numpy `np.pad` semantics).

use super::{
    f32s, for_each_row, gather_axes, ints, make, make_f32, make_int, map_buf, saturate, strides,
    wrap_bits, Buf, R,
};
use crate::dtype::DType;
use crate::op::{PadMode, SliceAxis};
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;

/// ONNX `Concat` along `axis`.
pub(crate) fn concat(axis: usize, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let first = x.first().ok_or("concat needs at least one input")?;
    let shape = first.shape();
    if axis >= shape.len() {
        return Err(format!("axis {axis} out of range"));
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let chunks: Vec<usize> = x
        .iter()
        .map(|t| t.shape().get(axis).copied().unwrap_or(0) * inner)
        .collect();
    let total: usize = out.numel();
    let buf = match &first.data {
        Data::F32(_) => {
            let parts = x.iter().map(|t| f32s(t)).collect::<R<Vec<_>>>()?;
            Buf::F32(concat_parts(&parts, &chunks, outer, total)?)
        }
        Data::Int(_) => {
            let parts = x.iter().map(|t| ints(t)).collect::<R<Vec<_>>>()?;
            Buf::Int(concat_parts(&parts, &chunks, outer, total)?)
        }
    };
    make(out, buf)
}

fn concat_parts<T: Copy, P: AsRef<[T]>>(
    parts: &[P],
    chunks: &[usize],
    outer: usize,
    total: usize,
) -> R<Vec<T>> {
    if parts
        .iter()
        .zip(chunks)
        .any(|(p, &c)| p.as_ref().len() != c * outer)
    {
        return Err("concat inputs do not match the output shape".into());
    }
    let mut v = Vec::with_capacity(total);
    for o in 0..outer {
        for (p, &c) in parts.iter().zip(chunks) {
            v.extend_from_slice(&p.as_ref()[o * c..(o + 1) * c]);
        }
    }
    Ok(v)
}

/// ONNX `Split` along `axis` into pieces of the given sizes.
pub(crate) fn split(
    axis: usize,
    sizes: &[usize],
    x: &Tensor,
    outs: &[TensorType],
) -> R<Vec<Tensor>> {
    let shape = x.shape();
    if axis >= shape.len()
        || sizes.len() != outs.len()
        || sizes.iter().sum::<usize>() != shape[axis]
    {
        return Err(format!(
            "split sizes {sizes:?} do not fit {shape:?} on axis {axis}"
        ));
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let row = shape[axis] * inner;
    let mut res = Vec::with_capacity(sizes.len());
    let mut off = 0;
    for (&s, ty) in sizes.iter().zip(outs) {
        let buf = map_buf!(x, |v| {
            let mut o = Vec::with_capacity(outer * s * inner);
            for b in 0..outer {
                let part = v
                    .get(b * row + off * inner..b * row + (off + s) * inner)
                    .ok_or("split input is too short")?;
                o.extend_from_slice(part);
            }
            o
        });
        res.push(make(ty, buf)?);
        off += s;
    }
    Ok(res)
}

/// ONNX `Slice` with normalised per-axis `start/end/step`.
pub(crate) fn slice(axes: &[SliceAxis], x: &Tensor, out: &TensorType) -> R<Tensor> {
    let shape = x.shape();
    let mut maps: Vec<Vec<Option<usize>>> =
        shape.iter().map(|&d| (0..d).map(Some).collect()).collect();
    for a in axes {
        let d = *shape
            .get(a.axis)
            .ok_or(format!("slice axis {} out of range", a.axis))? as i64;
        if a.step == 0 {
            return Err("slice step must not be 0".into());
        }
        let mut idx = Vec::new();
        let mut i = a.start;
        while (a.step > 0 && i < a.end) || (a.step < 0 && i > a.end) {
            if i < 0 || i >= d {
                return Err(format!("slice index {i} out of range for size {d}"));
            }
            idx.push(Some(i as usize));
            i = i.checked_add(a.step).ok_or("slice index overflows")?;
        }
        maps[a.axis] = idx;
    }
    gather_to(x, &maps, out)
}

/// Gather with per-axis index maps (no fill), checking the result shape.
fn gather_to(x: &Tensor, maps: &[Vec<Option<usize>>], out: &TensorType) -> R<Tensor> {
    if maps.iter().map(Vec::len).ne(out.shape.iter().copied()) {
        return Err(format!("result shape does not match {out}"));
    }
    let shape = x.shape();
    let buf = match &x.data {
        Data::F32(_) => Buf::F32(gather_axes(&f32s(x)?, shape, maps, 0.0)?),
        Data::Int(_) => Buf::Int(gather_axes(&ints(x)?, shape, maps, 0)?),
    };
    make(out, buf)
}

/// ONNX `Reshape` (row-major order is kept).
pub(crate) fn reshape(x: &Tensor, out: &TensorType) -> R<Tensor> {
    if x.numel() != out.numel() {
        return Err(format!("cannot reshape {:?} to {:?}", x.shape(), out.shape));
    }
    let buf = map_buf!(x, |v| v.to_vec());
    make(out, buf)
}

/// ONNX `Transpose`: output axis `k` is input axis `perm[k]`.
pub(crate) fn transpose(perm: &[usize], x: &Tensor, out: &TensorType) -> R<Tensor> {
    let shape = x.shape();
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len()
        || perm
            .iter()
            .any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true))
    {
        return Err(format!(
            "perm {perm:?} is not a permutation of rank {}",
            shape.len()
        ));
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    if out_shape != out.shape {
        return Err(format!("result shape {out_shape:?} does not match {out}"));
    }
    let st = strides(shape);
    let pst: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    let (last_n, last_s) = match out_shape.last() {
        Some(&d) => (d, pst[pst.len() - 1]),
        None => (1, 0),
    };
    let buf = map_buf!(x, |v| {
        let mut o = Vec::with_capacity(v.len());
        for_each_row(&out_shape, [&pst], |[b]| {
            o.extend((0..last_n).map(|j| v[b + j * last_s]))
        });
        o
    });
    make(out, buf)
}

/// ONNX `Gather`: negative indices count from the end, out of range is an error.
pub(crate) fn gather(axis: usize, x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let (d, i) = (x[0], x[1]);
    let shape = d.shape();
    let dim = *shape.get(axis).ok_or(format!("axis {axis} out of range"))?;
    let idx = ints(i)?
        .iter()
        .map(|&k| {
            let j = if k < 0 { k + dim as i64 } else { k };
            if j < 0 || j >= dim as i64 {
                Err(format!(
                    "index {k} is out of range for axis {axis} of size {dim}"
                ))
            } else {
                Ok(j as usize)
            }
        })
        .collect::<R<Vec<usize>>>()?;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let buf = map_buf!(d, |v| {
        let mut o = Vec::with_capacity(outer * idx.len() * inner);
        for b in 0..outer {
            for &j in &idx {
                let s = (b * dim + j) * inner;
                o.extend_from_slice(&v[s..s + inner]);
            }
        }
        o
    });
    make(out, buf)
}

/// ONNX `Expand`: numpy broadcast to the output shape.
pub(crate) fn expand(x: &Tensor, out: &TensorType) -> R<Tensor> {
    let buf = map_buf!(x, |v| super::broadcast_to(v, x.shape(), &out.shape)?);
    make(out, buf)
}

/// Fractional bits of a dtype (0 for plain integers).
fn frac_bits(dt: DType) -> i32 {
    match dt {
        DType::Fixed { frac, .. } => frac as i32,
        _ => 0,
    }
}

/// Finish an integer conversion to `to`: bool is `!= 0`, bipolar/ternary must be
/// representable, everything else wraps.
fn to_int_kind(v: i64, to: DType) -> R<i64> {
    match to {
        DType::Bool => Ok((v != 0) as i64),
        DType::Bipolar | DType::Ternary => {
            if to.contains(v) {
                Ok(v)
            } else {
                Err(format!("value {v} cannot be cast to {to}"))
            }
        }
        _ => Ok(wrap_bits(v, to)),
    }
}

/// Multiply by `2^shift` (wrapping) or divide by `2^-shift` (truncating toward zero).
fn shift_raw(v: i64, shift: i32) -> i64 {
    if shift >= 0 {
        if shift >= 64 {
            0
        } else {
            v.wrapping_mul(1i64.wrapping_shl(shift as u32))
        }
    } else if -shift >= 64 {
        0
    } else {
        let d = 1i128 << (-shift);
        (v as i128 / d) as i64
    }
}

/// ONNX `Cast` (rules in the module docs).
pub(crate) fn cast(to: DType, x: &Tensor, out: &TensorType) -> R<Tensor> {
    let from = x.dtype;
    match (&x.data, to) {
        (Data::F32(_), DType::F32) => make_f32(out, f32s(x)?.into_owned()),
        (Data::F32(_), _) => {
            let scale = 2f64.powi(frac_bits(to));
            let v = f32s(x)?
                .iter()
                .map(|&v| match to {
                    DType::Bool => Ok((v != 0.0) as i64),
                    DType::Bipolar | DType::Ternary => {
                        let t = v.trunc();
                        if to.contains(t as i64) && t == v {
                            Ok(t as i64)
                        } else {
                            Err(format!("value {v} cannot be cast to {to}"))
                        }
                    }
                    _ => Ok(saturate((v as f64 * scale).trunc(), to)),
                })
                .collect::<R<Vec<i64>>>()?;
            make_int(out, v)
        }
        (Data::Int(_), DType::F32) => {
            let f = frac_bits(from);
            let v = if f == 0 {
                ints(x)?.iter().map(|&v| v as f32).collect()
            } else {
                let s = 2f64.powi(-f);
                ints(x)?.iter().map(|&v| (v as f64 * s) as f32).collect()
            };
            make_f32(out, v)
        }
        (Data::Int(_), _) => {
            let shift = frac_bits(to) - frac_bits(from);
            let v = ints(x)?
                .iter()
                .map(|&v| to_int_kind(shift_raw(v, shift), to))
                .collect::<R<Vec<i64>>>()?;
            make_int(out, v)
        }
    }
}

/// Map output position `j` of a padded axis to a source index of the cropped axis
/// `[lo, lo + len)`; `None` is the constant value.
fn pad_index(j: i64, before: i64, lo: usize, len: usize, mode: PadMode) -> R<Option<usize>> {
    let rel = j - before;
    if rel >= 0 && (rel as usize) < len {
        return Ok(Some(lo + rel as usize));
    }
    let n = len as i64;
    match mode {
        PadMode::Constant => Ok(None),
        _ if len == 0 => Err("cannot pad an empty axis in edge or reflect mode".into()),
        PadMode::Edge => Ok(Some(lo + rel.clamp(0, n - 1) as usize)),
        PadMode::Reflect => {
            if n == 1 {
                return Ok(Some(lo));
            }
            let period = 2 * (n - 1);
            let m = rel.rem_euclid(period);
            Ok(Some(lo + if m >= n { period - m } else { m } as usize))
        }
    }
}

/// ONNX `Pad` (`pads = [begin_0.., end_0..]`, negative values crop).
pub(crate) fn pad(
    pads: &[i64],
    mode: PadMode,
    value: f32,
    x: &Tensor,
    out: &TensorType,
) -> R<Tensor> {
    let shape = x.shape();
    let r = shape.len();
    if pads.len() != 2 * r || out.rank() != r {
        return Err(format!("pads {pads:?} do not fit rank {r}"));
    }
    let mut maps = Vec::with_capacity(r);
    for a in 0..r {
        let (b, e, d) = (pads[a], pads[a + r], shape[a] as i64);
        let (cb, ce) = ((-b).max(0), (-e).max(0));
        let len = (d - cb - ce).max(0) as usize;
        let n_out = b.max(0) + len as i64 + e.max(0);
        if n_out != out.shape[a] as i64 {
            return Err(format!(
                "padded size {n_out} of axis {a} does not match {out}"
            ));
        }
        maps.push(
            (0..n_out)
                .map(|j| pad_index(j, b.max(0), cb as usize, len, mode))
                .collect::<R<Vec<_>>>()?,
        );
    }
    let buf = match &x.data {
        Data::F32(_) => Buf::F32(gather_axes(&f32s(x)?, shape, &maps, value)?),
        Data::Int(_) => {
            let fill = value as i64;
            if fill as f32 != value || !x.dtype.contains(fill) {
                return Err(format!(
                    "pad value {value} is not representable as {}",
                    x.dtype
                ));
            }
            Buf::Int(gather_axes(&ints(x)?, shape, &maps, fill)?)
        }
    };
    make(out, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy_for_wide_pads() {
        // np.pad([1, 2, 3], 5, mode='reflect') -> [2 1 2 3 2 1 2 3 2 1 2 3 2]
        let got: Vec<usize> = (0..13)
            .map(|j| pad_index(j, 5, 0, 3, PadMode::Reflect).unwrap().unwrap())
            .collect();
        assert_eq!(got, [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
    }

    #[test]
    fn shift_raw_truncates_toward_zero() {
        assert_eq!(shift_raw(-7, -1), -3);
        assert_eq!(shift_raw(7, -1), 3);
        assert_eq!(shift_raw(3, 2), 12);
        assert_eq!(shift_raw(3, 70), 0);
    }
}
