//! `lnc-frontend`: import of ONNX models (opsets 6–21, QDQ, and the QONNX domain) into
//! [`lnc_ir::Graph`], and export of the ONNX-expressible subset of the IR.
//!
//! - [`load_file`] / [`load_bytes`]: decode a `ModelProto`, map every node to IR ops with
//!   fully resolved attributes, fold constant subgraphs (shape arithmetic of torch exports),
//!   remove dead nodes and verify. See [`import`](crate::import) for the structure.
//! - [`tensor_from_proto_bytes`]: decode a serialized `TensorProto` (the ONNX backend test
//!   data's `.pb` files).
//! - [`to_onnx_bytes`]: write a graph as an opset-17 ONNX model (QONNX ops in their domain).
//!
//! API boundary: protobuf types never leave this crate; every error is an [`Error`] that
//! names the ONNX node, tensor or value it is about.

mod proto {
    //! Generated prost types for the vendored `proto/onnx.proto` (crate-private).
    #![allow(clippy::all, clippy::pedantic, missing_docs, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

mod export;
mod import;
mod tensor;

use lnc_ir::{Graph, Tensor};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

/// Frontend errors. Errors about a node name it (ONNX node name and op type); errors about
/// a tensor or a graph input/output name it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {msg}")]
    Io { path: String, msg: String },
    /// The bytes are not a well-formed ONNX model (protobuf decoding failed, no graph, ...).
    #[error("malformed ONNX: {0}")]
    Malformed(String),
    /// A node is unsupported or ill-formed (unknown op, unsupported attribute value, an
    /// input that must be constant is not, dangling input, duplicate output, ...).
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        node: String,
        op: String,
        msg: String,
    },
    /// A tensor (initializer, `Constant` value, `.pb` file) is unsupported or ill-formed.
    #[error("tensor '{name}': {msg}")]
    Tensor { name: String, msg: String },
    /// A graph input or output is unsupported or ill-formed (unknown dims, not produced, ...).
    #[error("graph value '{name}': {msg}")]
    Value { name: String, msg: String },
    /// A graph-level structural problem (a cycle between nodes).
    #[error("graph: {0}")]
    Graph(String),
    /// The model uses something outside what lnc supports (opset version, domain, ...).
    #[error("unsupported model: {0}")]
    Unsupported(String),
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
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    load_bytes(&bytes, opts)
}

/// Load an ONNX model from bytes.
pub fn load_bytes(bytes: &[u8], opts: &LoadOptions) -> Result<Graph> {
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| Error::Malformed(format!("not an ONNX model: {e}")))?;
    import::import_model(&model, opts)
}

/// Decode a serialized ONNX `TensorProto` (the backend test data's `.pb` files).
pub fn tensor_from_proto_bytes(bytes: &[u8]) -> Result<Tensor> {
    let tp = proto::TensorProto::decode(bytes)
        .map_err(|e| Error::Malformed(format!("not an ONNX TensorProto: {e}")))?;
    let name = tp.name.clone().unwrap_or_default();
    tensor::decode(&tp, true).map_err(|msg| Error::Tensor { name, msg })
}

/// Serialize a graph as an ONNX model (opset 17 plus the QONNX domain where used).
pub fn to_onnx_bytes(g: &Graph) -> Result<Vec<u8>> {
    Ok(export::export_model(g)?.encode_to_vec())
}
