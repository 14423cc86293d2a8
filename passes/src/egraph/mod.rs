//! The e-graph side of the optimiser: the language ([`lang`]), the per-class facts and the
//! constant pool ([`analysis`]), the graph ⇄ e-graph bridge ([`bridge`]) and extraction
//! with a target cost model plus the provenance of what was extracted ([`extract`]).

pub mod analysis;
pub mod bridge;
pub mod extract;
pub mod lang;

pub use analysis::{ConstPool, Facts, LnirAnalysis, EG};
pub use bridge::{canonicalize, rebuild, to_egraph, Bridged};
pub use lang::Lnir;
