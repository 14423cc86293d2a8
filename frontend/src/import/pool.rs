//! Pooling: `MaxPool`, `AveragePool`, `GlobalAveragePool`, `GlobalMaxPool`.
//!
//! - `MaxPool` (opsets 1, 8, 10, 11, 12): input `X`; outputs `Y` and `Indices` (Indices
//!   must be unused); attributes `auto_pad` (resolved), `ceil_mode` (10+), `dilations`
//!   (10+), `kernel_shape` (required), `pads`, `strides`, `storage_order` (8+; only 0).
//! - `AveragePool` (1, 7, 10, 11, 19): as MaxPool without indices and storage order, plus
//!   `count_include_pad` (7+); `dilations` from 19.
//! - `GlobalAveragePool`, `GlobalMaxPool` (1): any rank >= 3.
//! - 1-D inputs (rank 3) become the 2-D op between `Reshape` nodes; rank 5 is rejected.

use super::conv::{lift_1d, lower_1d, spatial_rank, Window};
use super::{to_usizes, Importer, Node};
use crate::Result;
use lnc_ir::{Op, Pool2d, Value};

fn pool_attrs(n: &Node, xs: &[usize], with_dilations: bool) -> Result<(Pool2d, usize)> {
    let sp = spatial_rank(n, xs)?;
    let kernel = n
        .ints("kernel_shape")?
        .ok_or_else(|| n.err("attribute 'kernel_shape' is required"))?;
    let kernel = to_usizes(n, "kernel_shape", &kernel)?;
    let win = Window::read(n, &xs[2..], kernel, with_dilations)?;
    let ceil_mode = n.flag("ceil_mode", false)?;
    Ok((
        Pool2d {
            kernel: win.kernel2(),
            strides: win.strides2(),
            pads: win.pads4(),
            dilations: win.dilations2(),
            ceil_mode,
        },
        sp,
    ))
}

fn pooled(imp: &mut Importer, n: &Node, sp: usize, op: Op) -> Result<Value> {
    let x = imp.input(n, 0)?;
    if sp == 1 {
        let x4 = lift_1d(imp, n, "unsqueeze", x)?;
        let y = imp.emit1(n, "", op, &[x4])?;
        lower_1d(imp, n, y)
    } else {
        imp.emit1(n, "", op, &[x])
    }
}

/// `MaxPool`.
pub(crate) fn max_pool(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    if n.int_or("storage_order", 0)? != 0 {
        return Err(n.err("storage_order=1 (column-major indices) is not supported"));
    }
    if imp.output_used(n, 1) {
        return Err(n.err("the Indices output is used; it is not supported"));
    }
    let (p, sp) = pool_attrs(n, &xs, n.opset >= 10)?;
    pooled(imp, n, sp, Op::MaxPool(p))
}

/// `AveragePool`.
pub(crate) fn average_pool(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let count_include_pad = n.flag("count_include_pad", false)?;
    let (pool, sp) = pool_attrs(n, &xs, n.opset >= 19)?;
    pooled(
        imp,
        n,
        sp,
        Op::AveragePool {
            pool,
            count_include_pad,
        },
    )
}

/// `GlobalAveragePool` / `GlobalMaxPool`.
pub(crate) fn global_pool(imp: &mut Importer, n: &Node, average: bool) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let op = if average {
        Op::GlobalAveragePool
    } else {
        Op::GlobalMaxPool
    };
    imp.emit1(n, "", op, &[x])
}
