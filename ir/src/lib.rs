//! `lnc-ir`: the semantic core of lnc.
//!
//! - [`Graph`]: a static-shaped dataflow graph on petgraph with typed ids, ops as data
//!   ([`Op`]) and weights in a constant pool ([`Tensor`], referenced by [`ConstId`]).
//! - [`shape::infer`]: the typing rule of every op; [`verify`]: whole-graph checks.
//! - [`text`]: the `.lnir` text form (printer and parser that round-trip exactly).
//! - [`interp`]: the reference interpreter, the oracle every backend is checked against.
//! - [`stats`]: parameter and MAC counts.

pub mod cpu;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod interp;
pub mod op;
pub mod shape;
pub mod stats;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use dtype::{DType, Quant};
pub use error::{Error, Result};
pub use graph::{ConstId, Edge, Graph, GraphOutput, Node, NodeId, Value};
pub use op::*;
pub use tensor::{Data, Tensor};
pub use types::{TensorType, MAX_ELEMENTS};
