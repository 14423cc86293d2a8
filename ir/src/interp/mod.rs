//! Reference interpreter: the oracle every backend is checked against.
//!
//! (Being implemented.)

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::TensorType;

/// Run a whole graph on the given inputs (in graph-input order); returns the graph outputs.
pub fn run(g: &Graph, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let _ = (g, inputs);
    Err(Error::Input("interpreter not implemented yet".into()))
}

/// Evaluate one op on concrete inputs. `outputs` are the node's (inferred) output types.
pub fn eval_op(op: &Op, inputs: &[&Tensor], outputs: &[TensorType]) -> std::result::Result<Vec<Tensor>, String> {
    let _ = (inputs, outputs);
    Err(format!("{} not implemented yet", op.name()))
}
