//! Data movement: `Concat`, `Split`, `Slice`, `Reshape`, `Transpose`, `Flatten`, `Squeeze`,
//! `Unsqueeze`, `Gather`, `Expand`, `Pad`, `Cast`, `Identity`, `Dropout`, `DepthToSpace`,
//! `SpaceToDepth`.
//!
//! - `Concat` (4, 11, 13): `axis` (required, negative from 11).
//! - `Split` (2, 11, 13, 18): `axis` (0); sizes from the `split` attribute (< 13) or the
//!   constant `split` input (13+), else `num_outputs` (18+; the last chunk may be smaller),
//!   else equal parts, one per output.
//! - `Slice` (1: attributes `starts, ends, axes`; 10, 11, 13: constant inputs `starts, ends,
//!   [axes], [steps]`): clamped and normalised as the spec says.
//! - `Reshape` (5, 13, 14, 19, 21): constant `shape` input; 0 copies the input dim unless
//!   `allowzero` (14+), -1 is inferred.
//! - `Flatten` (1, 9, 11, 13): `axis` (1) -> `Reshape`. `Squeeze`/`Unsqueeze` (1, 11, 13):
//!   `axes` attribute (< 13) or constant input (13+) -> `Reshape`.
//! - `Transpose` (1, 13): `perm` (default: reversed).
//! - `Gather` (1, 11, 13): `axis` (0); folds when data and indices are constant.
//! - `Expand` (8, 13): constant `shape` input; output is the broadcast of both shapes.
//! - `Pad` (2: attributes `pads`, `value`, `mode`; 11, 13, 18, 19, 21: constant inputs
//!   `pads`, `[constant_value]`, `[axes]` (18+)): modes constant, reflect, edge (`wrap` is
//!   rejected).
//! - `Cast` (6, 9, 13, 19, 21): `to` must be FLOAT, UINT8, INT8, INT16, INT32, INT64 or
//!   BOOL; `saturate` (19+, float8 only) is ignored.
//! - `Identity` (1, 13, 14, 16, 19, 21), `Dropout` (6, 7, 10, 12, 13): become `Identity`;
//!   Dropout's mask output must be unused and `training_mode` (12+) must be absent or a
//!   false constant; `ratio`, `seed`, `is_test` are irrelevant at inference.
//! - `DepthToSpace` (1, 11, 13: `blocksize`, `mode` DCR/CRD) and `SpaceToDepth` (1, 13:
//!   `blocksize`): lowered to Reshape, Transpose, Reshape.

use super::{norm_axes, norm_axis, to_usizes, Importer, Node};
use crate::{tensor, Result};
use lnc_ir::{DType, Op, PadMode, SliceAxis, Value};

pub(crate) fn concat(imp: &mut Importer, n: &Node) -> Result<Value> {
    let ins = imp.all_inputs(n)?;
    let first = *ins
        .first()
        .ok_or_else(|| n.err("needs at least one input"))?;
    let axis = n
        .int("axis")?
        .ok_or_else(|| n.err("attribute 'axis' is required"))?;
    let axis = norm_axis(n, axis, imp.rank(first)?)?;
    imp.emit1(n, "", Op::Concat { axis }, &ins)
}

pub(crate) fn split(imp: &mut Importer, n: &Node) -> Result<Vec<Value>> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let axis = norm_axis(n, n.int_or("axis", 0)?, xs.len())?;
    let d = xs[axis];
    let split = if n.opset < 13 {
        n.ints("split")?
    } else {
        imp.const_ints(n, 1, "split")?
    };
    let num_outputs = if n.opset >= 18 {
        n.int("num_outputs")?
    } else {
        None
    };
    let sizes = match (split, num_outputs) {
        (Some(s), _) if !s.is_empty() => to_usizes(n, "split", &s)?,
        (_, Some(k)) => {
            let k = usize::try_from(k)
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| n.err(format!("num_outputs {k} must be positive")))?;
            let chunk = d.div_ceil(k);
            let mut sizes = Vec::with_capacity(k);
            let mut left = d;
            for _ in 0..k {
                let s = chunk.min(left);
                sizes.push(s);
                left -= s;
            }
            sizes
        }
        _ => {
            let k = n.num_outputs();
            if k == 0 || !d.is_multiple_of(k) {
                return Err(n.err(format!("cannot split size {d} into {k} equal parts")));
            }
            vec![d / k; k]
        }
    };
    if sizes.len() != n.num_outputs() {
        return Err(n.err(format!(
            "{} split sizes for {} outputs",
            sizes.len(),
            n.num_outputs()
        )));
    }
    imp.emit(n, "", Op::Split { axis, sizes }, &[x])
}

/// Normalise one slice axis as ONNX specifies (negative indices, clamping).
pub(crate) fn slice_axis(axis: usize, dim: usize, start: i64, end: i64, step: i64) -> SliceAxis {
    let d = dim as i64;
    let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (fix(start), fix(end));
    if step > 0 {
        SliceAxis {
            axis,
            start: s.clamp(0, d),
            end: e.clamp(0, d),
            step,
        }
    } else if d == 0 {
        SliceAxis {
            axis,
            start: -1,
            end: -1,
            step,
        }
    } else {
        SliceAxis {
            axis,
            start: s.clamp(0, d - 1),
            end: e.clamp(-1, d - 1),
            step,
        }
    }
}

pub(crate) fn slice(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let (starts, ends, axes, steps) = if n.opset < 10 {
        let starts = n
            .ints("starts")?
            .ok_or_else(|| n.err("attribute 'starts' is required"))?;
        let ends = n
            .ints("ends")?
            .ok_or_else(|| n.err("attribute 'ends' is required"))?;
        (starts, ends, n.ints("axes")?, None)
    } else {
        let starts = imp
            .const_ints(n, 1, "starts")?
            .ok_or_else(|| n.err("input 'starts' is required"))?;
        let ends = imp
            .const_ints(n, 2, "ends")?
            .ok_or_else(|| n.err("input 'ends' is required"))?;
        (
            starts,
            ends,
            imp.const_ints(n, 3, "axes")?,
            imp.const_ints(n, 4, "steps")?,
        )
    };
    let k = starts.len();
    let axes = axes.unwrap_or_else(|| (0..k as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; k]);
    if ends.len() != k || axes.len() != k || steps.len() != k {
        return Err(n.err("starts, ends, axes and steps must have the same length"));
    }
    let axes_n = norm_axes(n, &axes, xs.len())?;
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        if steps[i] == 0 {
            return Err(n.err("slice step must not be 0"));
        }
        out.push(slice_axis(
            axes_n[i],
            xs[axes_n[i]],
            starts[i],
            ends[i],
            steps[i],
        ));
    }
    imp.emit1(n, "", Op::Slice { axes: out }, &[x])
}

/// Resolve an ONNX Reshape target (0 = copy unless `allowzero`, -1 = inferred).
pub(crate) fn resolve_shape(
    n: &Node,
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>> {
    let numel: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            -1 => return Err(n.err(format!("shape {target:?} has more than one -1"))),
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                n.err(format!(
                    "shape {target:?}: 0 at {i} has no input dim to copy"
                ))
            })?),
            t if t < 0 => return Err(n.err(format!("shape {target:?} has a negative dim"))),
            t => out.push(
                usize::try_from(t).map_err(|_| n.err(format!("shape {target:?} is too large")))?,
            ),
        }
    }
    if allowzero && infer.is_some() && target.contains(&0) {
        return Err(n.err("shape has both 0 and -1 with allowzero=1"));
    }
    let known = lnc_ir::types::checked_numel(&out).map_err(|m| n.err(m))?;
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(n.err(format!("cannot reshape {input:?} to {target:?}")));
        }
        out[i] = numel / known;
    }
    Ok(out)
}

pub(crate) fn reshape(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let target = imp
        .const_ints(n, 1, "shape")?
        .ok_or_else(|| n.err("input 'shape' is required"))?;
    let allowzero = n.flag("allowzero", false)?;
    let shape = resolve_shape(n, &xs, &target, allowzero)?;
    imp.emit1(n, "", Op::Reshape { shape }, &[x])
}

pub(crate) fn transpose(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let r = imp.rank(x)?;
    let perm = match n.ints("perm")? {
        Some(p) if !p.is_empty() => to_usizes(n, "perm", &p)?,
        _ => (0..r).rev().collect(),
    };
    imp.emit1(n, "", Op::Transpose { perm }, &[x])
}

pub(crate) fn flatten(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let r = xs.len() as i64;
    let axis = n.int_or("axis", 1)?;
    if axis < -r || axis > r {
        return Err(n.err(format!("axis {axis} is out of range for rank {r}")));
    }
    let axis = if axis < 0 { axis + r } else { axis } as usize;
    let shape = vec![xs[..axis].iter().product(), xs[axis..].iter().product()];
    imp.emit1(n, "", Op::Reshape { shape }, &[x])
}

fn axes_of(imp: &Importer, n: &Node) -> Result<Option<Vec<i64>>> {
    if n.opset < 13 {
        n.ints("axes")
    } else {
        imp.const_ints(n, 1, "axes")
    }
}

pub(crate) fn squeeze(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let shape = match axes_of(imp, n)? {
        Some(a) if !a.is_empty() => {
            let axes = norm_axes(n, &a, xs.len())?;
            if let Some(&bad) = axes.iter().find(|&&i| xs[i] != 1) {
                return Err(n.err(format!("cannot squeeze axis {bad} of size {}", xs[bad])));
            }
            xs.iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }
        _ => xs.iter().copied().filter(|&d| d != 1).collect(),
    };
    imp.emit1(n, "", Op::Reshape { shape }, &[x])
}

pub(crate) fn unsqueeze(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let a = axes_of(imp, n)?.ok_or_else(|| n.err("axes are required"))?;
    let out_rank = xs.len() + a.len();
    let axes = norm_axes(n, &a, out_rank)?;
    let mut rest = xs.iter();
    let shape = (0..out_rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect();
    imp.emit1(n, "", Op::Reshape { shape }, &[x])
}

pub(crate) fn gather(imp: &mut Importer, n: &Node) -> Result<Value> {
    let data = imp.input(n, 0)?;
    let idx = imp.input(n, 1)?;
    let axis = norm_axis(n, n.int_or("axis", 0)?, imp.rank(data)?)?;
    imp.emit1(n, "", Op::Gather { axis }, &[data, idx])
}

pub(crate) fn expand(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let target = imp
        .const_ints(n, 1, "shape")?
        .ok_or_else(|| n.err("input 'shape' is required"))?;
    let target = to_usizes(n, "shape", &target)?;
    let shape = lnc_ir::shape::broadcast(&xs, &target).map_err(|m| n.err(m))?;
    imp.emit1(n, "", Op::Expand { shape }, &[x])
}

pub(crate) fn pad(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let r = imp.rank(x)?;
    let mode = match n.string_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        other => return Err(n.err(format!("pad mode '{other}' is not supported"))),
    };
    let (pads, value, axes) = if n.opset < 11 {
        let pads = n
            .ints("pads")?
            .ok_or_else(|| n.err("attribute 'pads' is required"))?;
        (pads, n.float_or("value", 0.0)?, None)
    } else {
        let pads = imp
            .const_ints(n, 1, "pads")?
            .ok_or_else(|| n.err("input 'pads' is required"))?;
        let value = match imp.const_input(n, 2, "constant_value")? {
            None => 0.0,
            Some(t) if t.numel() == 1 => t.to_f64_vec().first().copied().unwrap_or(0.0) as f32,
            Some(t) => {
                return Err(n.err(format!("constant_value must be a scalar, got {}", t.ty())))
            }
        };
        let axes = if n.opset >= 18 {
            imp.const_ints(n, 3, "axes")?
        } else {
            None
        };
        (pads, value, axes)
    };
    let pads = match axes {
        None => pads,
        Some(axes) => {
            let axes = norm_axes(n, &axes, r)?;
            if pads.len() != 2 * axes.len() {
                return Err(n.err(format!(
                    "pads {pads:?} must have {} entries",
                    2 * axes.len()
                )));
            }
            let mut full = vec![0; 2 * r];
            for (i, &a) in axes.iter().enumerate() {
                full[a] = pads[i];
                full[a + r] = pads[i + axes.len()];
            }
            full
        }
    };
    if pads.len() != 2 * r {
        return Err(n.err(format!("pads {pads:?} must have {} entries", 2 * r)));
    }
    imp.emit1(n, "", Op::Pad { pads, mode, value }, &[x])
}

pub(crate) fn cast(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    n.ignore(&["saturate"]);
    let to = n
        .int("to")?
        .ok_or_else(|| n.err("attribute 'to' is required"))?;
    let to = i32::try_from(to).map_err(|_| n.err(format!("unknown element type {to}")))?;
    let to = tensor::dtype_from_onnx(to, false).map_err(|m| n.err(format!("cast target: {m}")))?;
    imp.emit1(n, "", Op::Cast { to }, &[x])
}

pub(crate) fn identity(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    imp.emit1(n, "", Op::Identity, &[x])
}

pub(crate) fn dropout(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["ratio", "seed", "is_test", "consumed_inputs"]);
    let x = imp.input(n, 0)?;
    if imp.output_used(n, 1) {
        return Err(n.err("the mask output is used; it is not supported"));
    }
    if n.opset >= 12 {
        if let Some(v) = imp.opt_input(n, 2)? {
            match imp.konst(v) {
                Some(t) if t.dtype == DType::Bool && t.numel() == 1 => {
                    if t.to_i64_vec().first() == Some(&1) {
                        return Err(n.err("training_mode is true; only inference is supported"));
                    }
                }
                _ => return Err(n.err("training_mode must be a constant boolean scalar")),
            }
        }
    }
    imp.emit1(n, "", Op::Identity, &[x])
}

fn blocksize(n: &Node) -> Result<usize> {
    let b = n
        .int("blocksize")?
        .ok_or_else(|| n.err("attribute 'blocksize' is required"))?;
    usize::try_from(b)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| n.err(format!("blocksize {b} must be positive")))
}

pub(crate) fn depth_to_space(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let b = blocksize(n)?;
    let mode = n.string_or("mode", "DCR")?;
    let [nn, c, h, w] = xs[..] else {
        return Err(n.err(format!("input must have rank 4, got {xs:?}")));
    };
    if !c.is_multiple_of(b * b) {
        return Err(n.err(format!(
            "channels {c} are not divisible by blocksize^2 = {}",
            b * b
        )));
    }
    let co = c / (b * b);
    let (shape, perm) = match mode.as_str() {
        "DCR" => (vec![nn, b, b, co, h, w], vec![0, 3, 4, 1, 5, 2]),
        "CRD" => (vec![nn, co, b, b, h, w], vec![0, 1, 4, 2, 5, 3]),
        other => return Err(n.err(format!("mode '{other}' is not supported"))),
    };
    let t = imp.reshape(n, "split", x, shape)?;
    let t = imp.emit1(n, "transpose", Op::Transpose { perm }, &[t])?;
    imp.emit1(
        n,
        "",
        Op::Reshape {
            shape: vec![nn, co, h * b, w * b],
        },
        &[t],
    )
}

pub(crate) fn space_to_depth(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let b = blocksize(n)?;
    let [nn, c, h, w] = xs[..] else {
        return Err(n.err(format!("input must have rank 4, got {xs:?}")));
    };
    if !h.is_multiple_of(b) || !w.is_multiple_of(b) {
        return Err(n.err(format!(
            "spatial size {h}x{w} is not divisible by blocksize {b}"
        )));
    }
    let t = imp.reshape(n, "split", x, vec![nn, c, h / b, b, w / b, b])?;
    let t = imp.emit1(
        n,
        "transpose",
        Op::Transpose {
            perm: vec![0, 3, 5, 1, 2, 4],
        },
        &[t],
    )?;
    imp.emit1(
        n,
        "",
        Op::Reshape {
            shape: vec![nn, c * b * b, h / b, w / b],
        },
        &[t],
    )
}
