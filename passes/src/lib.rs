//! `lnc-passes`: graph transformations and the pass manager.
//!
//! One pass = one file = one struct = one kebab-case name. Passes are registered and
//! grouped into named pipelines in [`default_passes`]. A [`PassManager`] runs a pipeline,
//! verifies the graph after every pass, and records per-pass timing and statistics.

pub mod default_passes;
pub mod manager;
pub mod passes;

pub use default_passes::{pipeline, pipelines, registry};
pub use manager::{Pass, PassContext, PassManager, PassRecord, Target};

/// Errors raised by passes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown pass or pipeline '{0}' (see `lnc passes`)")]
    UnknownPass(String),
    #[error("pass '{pass}': {source}")]
    Pass {
        pass: String,
        #[source]
        source: lnc_ir::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
