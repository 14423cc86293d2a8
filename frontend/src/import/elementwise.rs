//! Element-wise arithmetic: `Add`, `Sub`, `Mul`, `Div`, `Pow`, `Max`, `Min`, `Sum`, `Mean`,
//! `Exp`, `Log`, `Sqrt`, `Neg`, `Abs`, `Floor`, `Ceil`, `Round` (11), `Reciprocal`,
//! `Sign` (9).
//!
//! - Binary ops (6, 7, 13, 14): inputs `A, B` with numpy broadcasting from opset 7. At
//!   opset 6 the legacy attributes `broadcast` (0/1) and `axis` apply: with `broadcast=1`
//!   B's shape matches a contiguous run of A's dims starting at `axis` (default: A's
//!   trailing dims); B is reshaped with trailing 1s so numpy broadcasting means the same.
//! - `Pow` (7, 12, 13, 15): an integer exponent on a float base is cast to float.
//! - `Max`, `Min`, `Sum`, `Mean` (6, 8, 12, 13): one or more inputs, lowered to a chain of
//!   binary ops; `Mean` divides by the input count at the end.

use super::{norm_axis, Importer, Node};
use crate::Result;
use lnc_ir::{BinaryOp, DType, Op, Tensor, UnaryOp, Value};

/// Single-input math ops.
pub(crate) fn unary(imp: &mut Importer, n: &Node, u: UnaryOp) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let x = imp.input(n, 0)?;
    imp.emit1(n, "", Op::Unary(u), &[x])
}

/// Two-input arithmetic (with the opset-6 legacy broadcast).
pub(crate) fn binary(imp: &mut Importer, n: &Node, op: BinaryOp) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let a = imp.input(n, 0)?;
    let mut b = imp.input(n, 1)?;
    if n.opset < 7 {
        let bc = n.flag("broadcast", false)?;
        let axis = n.int("axis")?;
        if bc {
            b = legacy_broadcast(imp, n, a, b, axis)?;
        }
    }
    if op == BinaryOp::Pow {
        let (da, db) = (imp.ty(a)?.dtype, imp.ty(b)?.dtype);
        if da != db {
            if da == DType::F32 && db.is_int() {
                b = imp.emit1(n, "exponent", Op::Cast { to: DType::F32 }, &[b])?;
            } else {
                return Err(n.err(format!("Pow of {da} by {db} is not supported")));
            }
        }
    }
    imp.emit1(n, "", Op::Binary(op), &[a, b])
}

/// Reshape B so numpy broadcasting gives the opset-6 `broadcast=1, axis` meaning.
fn legacy_broadcast(
    imp: &mut Importer,
    n: &Node,
    a: Value,
    b: Value,
    axis: Option<i64>,
) -> Result<Value> {
    let (sa, sb) = (imp.shape(a)?, imp.shape(b)?);
    if sb.len() > sa.len() {
        return Err(n.err(format!(
            "legacy broadcast: B {sb:?} has a higher rank than A {sa:?}"
        )));
    }
    let axis = match axis {
        Some(ax) => norm_axis(n, ax, sa.len().max(1))?,
        None => sa.len() - sb.len(),
    };
    if axis + sb.len() > sa.len() {
        return Err(n.err(format!(
            "legacy broadcast: B {sb:?} does not fit A {sa:?} at axis {axis}"
        )));
    }
    for (i, &d) in sb.iter().enumerate() {
        if d != sa[axis + i] && d != 1 {
            return Err(n.err(format!(
                "legacy broadcast: B {sb:?} does not match A {sa:?} at axis {axis}"
            )));
        }
    }
    let mut shape = sb.clone();
    shape.resize(sa.len() - axis, 1);
    imp.reshape(n, "broadcast", b, shape)
}

/// `Max`, `Min`, `Sum` (`op` = Add) and `Mean` (`mean`): a left fold of binary ops.
pub(crate) fn variadic(imp: &mut Importer, n: &Node, op: BinaryOp, mean: bool) -> Result<Value> {
    n.ignore(&["consumed_inputs"]);
    let ins = imp.all_inputs(n)?;
    let Some((&first, rest)) = ins.split_first() else {
        return Err(n.err("needs at least one input"));
    };
    if rest.is_empty() && !mean {
        return imp.emit1(n, "", Op::Identity, &[first]);
    }
    let mut acc = first;
    for (i, &v) in rest.iter().enumerate() {
        let last = i + 1 == rest.len() && !mean;
        let tag = if last {
            String::new()
        } else {
            format!("{}", i + 1)
        };
        acc = imp.emit1(n, &tag, Op::Binary(op), &[acc, v])?;
    }
    if mean {
        let count = imp.constant(n, "count", Tensor::scalar_f32(ins.len() as f32));
        acc = imp.emit1(n, "", Op::Binary(BinaryOp::Div), &[acc, count])?;
    }
    Ok(acc)
}
