//! Typed errors of the IR crate.

use thiserror::Error;

/// A convenient alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside `lnc-ir`.
///
/// Errors about a node always carry the node's name and op so that the user can find it
/// in their model.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A node is ill-formed or cannot be evaluated (bad arity, shape mismatch, bad attribute).
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        node: String,
        op: String,
        msg: String,
    },
    /// A graph-level structural problem (cycle, dangling reference, bad output).
    #[error("graph: {0}")]
    Graph(String),
    /// Several problems found by the verifier, reported together.
    #[error("{} verification error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Verify(Vec<Error>),
    /// `.lnir` text could not be parsed.
    #[error("{line}:{col}: {msg}")]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A tensor is too large or its shape is invalid.
    #[error("tensor: {0}")]
    Tensor(String),
    /// Interpreter input problem (wrong number, type or shape of inputs).
    #[error("input: {0}")]
    Input(String),
}

impl Error {
    /// Build a node error.
    pub fn node(node: impl Into<String>, op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Node {
            node: node.into(),
            op: op.into(),
            msg: msg.into(),
        }
    }
}
