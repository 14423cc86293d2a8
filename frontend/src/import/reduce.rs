//! Reductions and normalisation along an axis: `ReduceMean`, `ReduceSum`, `ReduceMax`,
//! `ReduceMin`, `Softmax`, `LogSoftmax`.
//!
//! - `ReduceSum` (1, 11, 13): `axes` attribute before 13, constant `axes` input from 13.
//!   `ReduceMean`/`ReduceMax`/`ReduceMin` (1, 11, 12, 13, 18, 20): `axes` attribute before
//!   18, constant input from 18. `keepdims` (1); `noop_with_empty_axes` (with the axes
//!   input; 1 and no axes means Identity). No axes reduces over all axes.
//! - `Softmax`/`LogSoftmax` (1, 11, 13): `axis` (1 before 13, -1 from 13). Before 13 the
//!   input is coerced to 2-D at `axis`; that is recorded as `coerce_2d` only where it
//!   differs from the per-axis form (some dim after `axis` is not 1).

use super::{norm_axes, norm_axis, Importer, Node};
use crate::Result;
use lnc_ir::{Op, ReduceKind, Value};

pub(crate) fn reduce(imp: &mut Importer, n: &Node, kind: ReduceKind) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let r = imp.rank(x)?;
    let keepdims = n.flag("keepdims", true)?;
    let axes_input_from = if kind == ReduceKind::Sum { 13 } else { 18 };
    let (axes, noop) = if n.opset < axes_input_from {
        (n.ints("axes")?, false)
    } else {
        (
            imp.const_ints(n, 1, "axes")?,
            n.flag("noop_with_empty_axes", false)?,
        )
    };
    let axes = axes.unwrap_or_default();
    if axes.is_empty() && noop {
        return imp.emit1(n, "", Op::Identity, &[x]);
    }
    let mut axes = norm_axes(n, &axes, r)?;
    axes.sort_unstable();
    imp.emit1(
        n,
        "",
        Op::Reduce {
            kind,
            axes,
            keepdims,
        },
        &[x],
    )
}

pub(crate) fn softmax(imp: &mut Importer, n: &Node, log: bool) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let legacy = n.opset < 13;
    let axis = n.int_or("axis", if legacy { 1 } else { -1 })?;
    let axis = norm_axis(n, axis, xs.len())?;
    let coerce_2d = legacy && xs[axis + 1..].iter().any(|&d| d != 1);
    imp.emit1(
        n,
        "",
        Op::Softmax {
            axis,
            coerce_2d,
            log,
        },
        &[x],
    )
}
