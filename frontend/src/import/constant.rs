//! Constants and shape queries: `Constant`, `ConstantOfShape`, `Shape`, `Size`.
//!
//! - `Constant` (1, 9, 11, 12, 13, 19, 21): exactly one of `value` (tensor), `value_float`,
//!   `value_floats`, `value_int`, `value_ints` (12+); `sparse_value` and the string forms
//!   are rejected.
//! - `ConstantOfShape` (9, 20): constant `input` shape (1-D int64); `value` (a one-element
//!   tensor, default float 0). Results beyond the folding limits become an `Expand` of the
//!   scalar instead of a materialised constant.
//! - `Shape` (1, 13, 15, 19, 21): `start`, `end` (15+) — folded from the static shape to an
//!   int64 constant. `Size` (1, 13, 19, 21): an int64 scalar constant.

use super::{Importer, Node};
use crate::{tensor, Result};
use lnc_ir::{DType, Op, Tensor, Value};
use ndarray::{ArrayD, IxDyn};

pub(crate) fn constant(imp: &mut Importer, n: &Node) -> Result<Value> {
    let mut found: Vec<Tensor> = Vec::new();
    if let Some(tp) = n.tensor("value")? {
        found.push(tensor::decode(tp, n.opset >= 21).map_err(|m| n.err(format!("value: {m}")))?);
    }
    if let Some(v) = n.float("value_float")? {
        found.push(Tensor::scalar_f32(v));
    }
    if let Some(v) = n.floats("value_floats")? {
        found.push(Tensor::from_f32(&[v.len()], v).map_err(|m| n.err(m))?);
    }
    if let Some(v) = n.int("value_int")? {
        found.push(Tensor::from_int(DType::I64, &[], vec![v]).map_err(|m| n.err(m))?);
    }
    if let Some(v) = n.ints("value_ints")? {
        found.push(Tensor::from_int(DType::I64, &[v.len()], v).map_err(|m| n.err(m))?);
    }
    for unsupported in ["sparse_value", "value_string", "value_strings"] {
        if n.has(unsupported) {
            return Err(n.err(format!("attribute '{unsupported}' is not supported")));
        }
    }
    match found.len() {
        1 => Ok(imp.constant(n, "", found.remove(0))),
        0 => Err(n.err("has no value attribute")),
        _ => Err(n.err("has more than one value attribute")),
    }
}

pub(crate) fn constant_of_shape(imp: &mut Importer, n: &Node) -> Result<Value> {
    let shape = imp
        .const_ints(n, 0, "shape")?
        .ok_or_else(|| n.err("input 'shape' is required"))?;
    let shape = tensor::dims_to_shape(&shape).map_err(|m| n.err(m))?;
    let value = match n.tensor("value")? {
        Some(tp) => tensor::decode(tp, false).map_err(|m| n.err(format!("value: {m}")))?,
        None => Tensor::scalar_f32(0.0),
    };
    if value.numel() != 1 {
        return Err(n.err(format!("value must have one element, got {}", value.ty())));
    }
    let numel: usize = shape.iter().product();
    if imp.reserve_folded(numel) {
        let t = match &value.data {
            lnc_ir::Data::F32(a) => {
                let v = a.iter().next().copied().unwrap_or(0.0);
                Tensor::f32_array(ArrayD::from_elem(IxDyn(&shape), v))
            }
            lnc_ir::Data::Int(a) => {
                let v = a.iter().next().copied().unwrap_or(0);
                Tensor::int_array(value.dtype, ArrayD::from_elem(IxDyn(&shape), v))
            }
        };
        return Ok(imp.constant(n, "", t));
    }
    let scalar = value.clone();
    let scalar = match &scalar.data {
        lnc_ir::Data::F32(a) => Tensor::scalar_f32(a.iter().next().copied().unwrap_or(0.0)),
        lnc_ir::Data::Int(a) => Tensor::int_array(
            value.dtype,
            ArrayD::from_elem(IxDyn(&[]), a.iter().next().copied().unwrap_or(0)),
        ),
    };
    let s = imp.constant(n, "value", scalar);
    imp.emit1(n, "", Op::Expand { shape }, &[s])
}

pub(crate) fn shape(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let r = xs.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (start, end) = if n.opset >= 15 {
        (clamp(n.int_or("start", 0)?), clamp(n.int_or("end", r)?))
    } else {
        (0, xs.len())
    };
    let dims: Vec<i64> = xs
        .get(start..end.max(start))
        .unwrap_or_default()
        .iter()
        .map(|&d| d as i64)
        .collect();
    let t = Tensor::from_int(DType::I64, &[dims.len()], dims).map_err(|m| n.err(m))?;
    Ok(imp.constant(n, "", t))
}

pub(crate) fn size(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let numel = imp.ty(x)?.numel() as i64;
    let t = Tensor::from_int(DType::I64, &[], vec![numel]).map_err(|m| n.err(m))?;
    Ok(imp.constant(n, "", t))
}
