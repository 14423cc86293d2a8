//! `verify`: check the graph (structure, arity, types); changes nothing.

use crate::{Pass, PassContext};
use lnc_ir::Graph;

pub struct Verify;

impl Pass for Verify {
    fn name(&self) -> &'static str {
        "verify"
    }
    fn description(&self) -> &'static str {
        "check structure, arities and types of every node"
    }
    fn run(&self, g: &mut Graph, _: &PassContext) -> lnc_ir::Result<String> {
        lnc_ir::verify::verify(g)?;
        Ok(format!("{} nodes ok", g.num_nodes()))
    }
}
