//! `canonicalize`: renumber nodes and constants in the canonical order (graph inputs, then
//! a depth-first post-order from the outputs), so that equal graphs print identically.

use crate::egraph::bridge::canonicalize;
use crate::{Pass, PassContext, PassOutcome, Result};
use lnc_ir::Graph;

pub struct Canonicalize;

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }
    fn description(&self) -> &'static str {
        "order nodes and constants canonically (inputs, then post-order from the outputs)"
    }
    fn run(&self, g: &mut Graph, _: &PassContext) -> Result<PassOutcome> {
        *g = canonicalize(g)?;
        Ok(PassOutcome::summary("reordered"))
    }
}
