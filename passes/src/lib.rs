//! `lnc-passes`: graph transformations, the pass manager and the e-graph optimiser.
//!
//! - One pass = one file in [`passes`] = one struct = one kebab-case name; passes are
//!   registered and grouped into named pipelines in [`default_passes`]. A [`PassManager`]
//!   runs a pipeline, verifies the graph after every pass, and records per-pass timing.
//! - The e-graph optimiser ([`passes::eqsat`]) bridges the graph into an egg e-graph
//!   ([`egraph`]), saturates it with the rule families of [`rules`] under node, iteration
//!   and time limits, extracts the cheapest graph under the target's [`cost`] model, and
//!   rebuilds and verifies it. Weights never enter the e-graph.

pub mod cost;
pub mod default_passes;
pub mod egraph;
pub mod manager;
pub mod passes;
pub mod rules;

pub use default_passes::{pipeline, pipelines, registry, Pipeline};
pub use manager::{
    EgraphStats, EqsatOptions, Pass, PassContext, PassManager, PassOutcome, PassRecord, Target,
};

/// Errors raised by passes and the pass manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown pass or pipeline '{0}' (see `lnc passes`)")]
    UnknownPass(String),
    #[error("pipeline '{pipeline}' is for target {wanted:?}, but target {given:?} was asked for")]
    TargetConflict {
        pipeline: String,
        wanted: Target,
        given: Target,
    },
    #[error("unknown rule family '{0}' (one of cleanup, fold, fusion, layout)")]
    UnknownFamily(String),
    #[error("pass '{pass}': {source}")]
    Pass {
        pass: String,
        #[source]
        source: Box<Error>,
    },
    #[error(transparent)]
    Ir(#[from] lnc_ir::Error),
    /// The e-graph analysis found merged classes that disagree (an unsound rewrite).
    #[error("the e-graph became inconsistent (an unsound rewrite):\n  {}", .0.join("\n  "))]
    Unsound(Vec<String>),
    /// The graph could not be moved into or out of the e-graph.
    #[error("e-graph bridge: {0}")]
    Bridge(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
