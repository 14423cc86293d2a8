//! Model zoo (being implemented): seeded generators for the lightweight families.

use lnc_ir::Graph;

/// Size knobs shared by every family.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooOptions {
    /// Square input resolution (default 224).
    pub input_size: usize,
    /// Width multiplier (default 1.0).
    pub width: f32,
    /// Number of classes (default 1000).
    pub classes: usize,
    /// Seed for weights and BN statistics.
    pub seed: u64,
}

impl Default for ZooOptions {
    fn default() -> Self {
        ZooOptions { input_size: 224, width: 1.0, classes: 1000, seed: 0 }
    }
}

/// Errors from the zoo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown model '{0}' (see `lnc zoo --list`)")]
    Unknown(String),
    #[error("model '{model}': {msg}")]
    Options { model: String, msg: String },
    #[error(transparent)]
    Ir(#[from] lnc_ir::Error),
}

/// Names and one-line descriptions of the available models.
pub fn list() -> Vec<(&'static str, &'static str)> {
    Vec::new()
}

/// Build a model by name.
pub fn build(name: &str, opts: &ZooOptions) -> Result<Graph, Error> {
    let _ = opts;
    Err(Error::Unknown(name.to_string()))
}
