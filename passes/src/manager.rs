//! The pass trait, its context, and the manager that runs pipelines.

use crate::{Error, Result};
use lnc_ir::Graph;
use std::time::{Duration, Instant};

/// What the graph is being optimised for (selects cost models and lowering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Cpu,
    Fpga,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Target::Cpu),
            "fpga" => Ok(Target::Fpga),
            _ => Err(format!("unknown target '{s}' (cpu or fpga)")),
        }
    }
}

/// Shared state a pass may read.
#[derive(Debug, Clone, Default)]
pub struct PassContext {
    pub target: Target,
}

/// A graph transformation.
pub trait Pass {
    /// Kebab-case name, unique in the registry.
    fn name(&self) -> &'static str;
    /// One line for `lnc passes`.
    fn description(&self) -> &'static str;
    /// Transform the graph; returns a short human-readable summary of what changed.
    fn run(&self, g: &mut Graph, ctx: &PassContext) -> lnc_ir::Result<String>;
}

/// What one pass did.
#[derive(Debug, Clone)]
pub struct PassRecord {
    pub pass: &'static str,
    pub time: Duration,
    pub summary: String,
    pub nodes_before: usize,
    pub nodes_after: usize,
}

/// Runs passes in order, verifying after each.
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    pub ctx: PassContext,
}

impl PassManager {
    /// A manager for a comma-separated list of pass and pipeline names, minus `exclude`.
    pub fn from_spec(spec: &str, exclude: &[String], ctx: PassContext) -> Result<Self> {
        let mut names = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match crate::pipeline(item) {
                Some(p) => names.extend(p.iter().map(|s| s.to_string())),
                None => names.push(item.to_string()),
            }
        }
        for x in exclude {
            if crate::registry().iter().all(|p| p.name() != x) {
                return Err(Error::UnknownPass(x.clone()));
            }
        }
        let mut passes = Vec::new();
        for n in names.iter().filter(|n| !exclude.contains(n)) {
            let p = crate::registry()
                .into_iter()
                .find(|p| p.name() == n)
                .ok_or_else(|| Error::UnknownPass(n.clone()))?;
            passes.push(p);
        }
        Ok(PassManager { passes, ctx })
    }

    pub fn pass_names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Run every pass; `after` is called after each one (for `--dump-after`).
    pub fn run(
        &self,
        g: &mut Graph,
        mut after: impl FnMut(&'static str, &Graph),
    ) -> Result<Vec<PassRecord>> {
        let mut log = Vec::new();
        for p in &self.passes {
            let nodes_before = g.num_nodes();
            let t = Instant::now();
            let summary = p
                .run(g, &self.ctx)
                .and_then(|s| lnc_ir::verify::verify(g).map(|_| s))
                .map_err(|source| Error::Pass { pass: p.name().to_string(), source })?;
            log.push(PassRecord {
                pass: p.name(),
                time: t.elapsed(),
                summary,
                nodes_before,
                nodes_after: g.num_nodes(),
            });
            after(p.name(), g);
        }
        Ok(log)
    }
}
