//! Whole-graph verifier. Collects every problem before reporting.

use crate::error::{Error, Result};
use crate::graph::{Graph, Value};
use crate::op::Op;
use crate::types::TensorType;

/// Check structure and typing of a graph:
/// - every node's input slots are exactly `0..n` and `n` fits the op's arity;
/// - every edge refers to an existing output port;
/// - output types equal what [`crate::shape::infer`] derives (and pass size checks);
/// - const nodes refer to existing pool entries and carry the entry's type;
/// - graph inputs are `Input` nodes and every `Input` node is a graph input;
/// - graph outputs refer to existing values; the graph is acyclic.
pub fn verify(g: &Graph) -> Result<()> {
    let mut errs = Vec::new();
    for id in g.node_ids() {
        let node = g.node(id);
        let name = node.name.as_str();
        let opname = node.op.name();
        let err = |m: String| Error::node(name, opname, m);
        let slots = g.input_slots(id);
        if slots.iter().enumerate().any(|(i, &s)| s as usize != i) {
            errs.push(err(format!(
                "input slots {slots:?} are not 0..{}",
                slots.len()
            )));
            continue;
        }
        if !node.op.arity().accepts(slots.len()) {
            errs.push(err(format!(
                "expects {:?} inputs, got {}",
                node.op.arity(),
                slots.len()
            )));
            continue;
        }
        if node.outputs.len() != node.op.num_outputs() {
            errs.push(err(format!(
                "has {} output types, op produces {}",
                node.outputs.len(),
                node.op.num_outputs()
            )));
            continue;
        }
        for t in &node.outputs {
            if let Err(m) = t.check() {
                errs.push(err(m));
            }
        }
        match &node.op {
            Op::Input => {
                if !g.inputs().contains(&id) {
                    errs.push(err("input node is not a graph input".into()));
                }
            }
            Op::Const(c) => match g.consts().get(c.0 as usize) {
                None => errs.push(err(format!("constant {} does not exist", c.0))),
                Some(t) => {
                    let ty = &node.outputs[0];
                    if t.dtype != ty.dtype || t.shape() != ty.shape.as_slice() {
                        errs.push(err(format!("type {ty} differs from constant {}", t.ty())));
                    }
                }
            },
            op => {
                let ins = g.node_inputs(id);
                let tys: Result<Vec<&TensorType>> =
                    ins.iter().map(|v| g.try_value_type(*v)).collect();
                match tys {
                    Err(e) => errs.push(err(e.to_string())),
                    Ok(tys) => match crate::shape::infer(op, &tys) {
                        Err(m) => errs.push(err(m)),
                        Ok(inferred) => {
                            for (i, (a, b)) in inferred.iter().zip(&node.outputs).enumerate() {
                                if a.dtype != b.dtype || a.shape != b.shape {
                                    errs.push(err(format!(
                                        "output {i} has type {b}, inferred {a}"
                                    )));
                                }
                            }
                        }
                    },
                }
            }
        }
    }
    for &i in g.inputs() {
        if !g.contains(i) || g.node(i).op != Op::Input {
            errs.push(Error::Graph(format!(
                "graph input {} is not an input node",
                i.index()
            )));
        }
    }
    if g.outputs().is_empty() {
        errs.push(Error::Graph("graph has no outputs".into()));
    }
    for o in g.outputs() {
        if g.try_value_type(o.value).is_err() {
            errs.push(Error::Graph(format!(
                "output '{}' refers to a missing value",
                o.name
            )));
        }
    }
    if let Err(e) = g.topo_order() {
        errs.push(e);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::Verify(errs))
    }
}

/// The value behind a graph output name.
pub fn output_value(g: &Graph, name: &str) -> Option<Value> {
    g.outputs().iter().find(|o| o.name == name).map(|o| o.value)
}
