//! ONNX frontend (being implemented): import of ONNX / QDQ / QONNX models into
//! [`lnc_ir::Graph`] and export of the ONNX-expressible subset.

mod proto {
    //! Generated prost types for `onnx.proto` (crate-private).
    #![allow(clippy::all, missing_docs, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use lnc_ir::{Graph, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// Frontend errors. Errors about a node name it (ONNX node name and op type).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {msg}")]
    Io { path: String, msg: String },
    #[error("malformed ONNX: {0}")]
    Malformed(String),
    #[error("node '{node}' ({op}): {msg}")]
    Node { node: String, op: String, msg: String },
    #[error(transparent)]
    Ir(#[from] lnc_ir::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Import options.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Shapes for graph inputs by name; overrides what the model declares (needed for
    /// symbolic dimensions other than the batch).
    pub input_shapes: BTreeMap<String, Vec<usize>>,
}

/// Load an ONNX model from a file.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Graph> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Io { path: path.display().to_string(), msg: e.to_string() })?;
    load_bytes(&bytes, opts)
}

/// Load an ONNX model from bytes.
pub fn load_bytes(bytes: &[u8], opts: &LoadOptions) -> Result<Graph> {
    let _ = (bytes, opts);
    Err(Error::Malformed("ONNX import not implemented yet".into()))
}

/// Decode a serialized ONNX `TensorProto` (the backend test data's `.pb` files).
pub fn tensor_from_proto_bytes(bytes: &[u8]) -> Result<Tensor> {
    let _ = bytes;
    Err(Error::Malformed("not implemented yet".into()))
}

/// Serialize a graph as an ONNX model (opset 17 plus the QONNX domain where used).
pub fn to_onnx_bytes(g: &Graph) -> Result<Vec<u8>> {
    let _ = g;
    Err(Error::Malformed("ONNX export not implemented yet".into()))
}
