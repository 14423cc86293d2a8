//! `verify`: check the graph (structure, arities and types of every node); changes nothing.

use crate::{Pass, PassContext, PassOutcome, Result};
use lnc_ir::Graph;

pub struct Verify;

impl Pass for Verify {
    fn name(&self) -> &'static str {
        "verify"
    }
    fn description(&self) -> &'static str {
        "check structure, arities and types of every node (shape inference)"
    }
    fn run(&self, g: &mut Graph, _: &PassContext) -> Result<PassOutcome> {
        lnc_ir::verify::verify(g)?;
        Ok(PassOutcome::summary(format!("{} nodes ok", g.num_nodes())))
    }
}
