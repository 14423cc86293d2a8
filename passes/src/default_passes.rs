//! The registry of passes and the named pipelines. Adding a pass: write `passes/<name>.rs`
//! with one struct implementing [`crate::Pass`], list it in [`registry`], and place it in the
//! pipelines where it belongs.

use crate::passes;
use crate::Pass;

/// Every pass, in a stable order.
pub fn registry() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(passes::verify::Verify),
        Box::new(passes::dead_code::DeadCode),
        Box::new(passes::constant_fold::ConstantFold),
    ]
}

/// Named pipelines (aliases) and the passes they expand to.
pub fn pipelines() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("validate", "check the graph without changing it", vec!["verify"]),
        ("opt", "target-independent clean-up and optimisation", vec!["constant-fold", "dead-code"]),
    ]
}

/// The passes of a named pipeline.
pub fn pipeline(name: &str) -> Option<Vec<&'static str>> {
    pipelines().into_iter().find(|(n, _, _)| *n == name).map(|(_, _, p)| p)
}
