//! The registry of passes and the named pipelines — the one place that orders them.
//! Adding a pass: write `passes/<name>.rs` with one struct implementing [`crate::Pass`],
//! list it in [`registry`], and place it in the pipelines where it belongs (see
//! `docs/new-pass.md`).

use crate::passes;
use crate::{Pass, Target};

/// Every pass, in a stable order.
pub fn registry() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(passes::verify::Verify),
        Box::new(passes::dead_code::DeadCode),
        Box::new(passes::constant_fold::ConstantFold),
        Box::new(passes::canonicalize::Canonicalize),
        Box::new(passes::eqsat::Eqsat),
    ]
}

/// A named pipeline: passes in order, optionally bound to a target.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: &'static str,
    pub description: &'static str,
    pub passes: Vec<&'static str>,
    /// The target whose cost model the pipeline's e-graph pass uses (`None`: `--target`).
    pub target: Option<Target>,
}

/// Named pipelines (aliases) and the passes they expand to.
pub fn pipelines() -> Vec<Pipeline> {
    let p = |name, description, passes: &[&'static str], target| Pipeline {
        name,
        description,
        passes: passes.to_vec(),
        target,
    };
    let opt = [
        "verify",
        "constant-fold",
        "dead-code",
        "eqsat",
        "dead-code",
        "canonicalize",
    ];
    vec![
        p(
            "validate",
            "check the graph without changing it",
            &["verify"],
            None,
        ),
        p(
            "cleanup",
            "constant folding and dead-code removal, no e-graph",
            &["constant-fold", "dead-code"],
            None,
        ),
        p(
            "opt",
            "clean up, then fold, fuse and re-layout with the e-graph for --target",
            &opt,
            None,
        ),
        p(
            "lower-cpu",
            "`opt` with the CPU cost model (what the CPU backend expects)",
            &opt,
            Some(Target::Cpu),
        ),
        p(
            "lower-fpga",
            "`opt` with the FPGA cost model (what the FPGA backend expects)",
            &opt,
            Some(Target::Fpga),
        ),
    ]
}

/// A named pipeline.
pub fn pipeline(name: &str) -> Option<Pipeline> {
    pipelines().into_iter().find(|p| p.name == name)
}
