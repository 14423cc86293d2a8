//! Matrix products: `Gemm`, `MatMul`.
//!
//! - `Gemm` (6, 7, 9, 11, 13): inputs `A, B, [C]` (C optional from 11); attributes `alpha`
//!   (1.0), `beta` (1.0), `transA` (0), `transB` (0); the opset-6 `broadcast` attribute is
//!   implied by the IR's unidirectional broadcast of C.
//! - `MatMul` (1, 9, 13): numpy matmul semantics.

use super::{Importer, Node};
use crate::Result;
use lnc_ir::{Op, Value};

pub(crate) fn gemm(imp: &mut Importer, n: &Node) -> Result<Value> {
    n.ignore(&["broadcast"]);
    let alpha = n.float_or("alpha", 1.0)?;
    let beta = n.float_or("beta", 1.0)?;
    let trans_a = n.flag("transA", false)?;
    let trans_b = n.flag("transB", false)?;
    let mut ins = vec![imp.input(n, 0)?, imp.input(n, 1)?];
    ins.extend(imp.opt_input(n, 2)?);
    imp.emit1(
        n,
        "",
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        },
        &ins,
    )
}

pub(crate) fn matmul(imp: &mut Importer, n: &Node) -> Result<Value> {
    let a = imp.input(n, 0)?;
    let b = imp.input(n, 1)?;
    imp.emit1(n, "", Op::MatMul, &[a, b])
}
