//! `dead-code`: remove nodes no graph output depends on, and unused constants.

use crate::{Pass, PassContext, PassOutcome, Result};
use lnc_ir::Graph;

pub struct DeadCode;

impl Pass for DeadCode {
    fn name(&self) -> &'static str {
        "dead-code"
    }
    fn description(&self) -> &'static str {
        "remove nodes that no output depends on and unreferenced constants"
    }
    fn run(&self, g: &mut Graph, _: &PassContext) -> Result<PassOutcome> {
        let n = g.remove_dead();
        Ok(PassOutcome::summary(format!("removed {n} node(s)")))
    }
}
