//! The pass trait, its context and options, and the manager that runs pipelines.

use crate::{Error, Result};
use lnc_ir::Graph;
use std::time::{Duration, Instant};

/// What the graph is being optimised for (selects the cost model and lowering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Cpu,
    Fpga,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Cpu => "cpu",
            Target::Fpga => "fpga",
        }
    }
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

/// Options of the e-graph pass (`eqsat`): the runner's limits and the rule families.
#[derive(Debug, Clone, PartialEq)]
pub struct EqsatOptions {
    /// Stop when the e-graph has more e-nodes than this.
    pub node_limit: usize,
    /// Stop after this many iterations.
    pub iter_limit: usize,
    /// Stop after this much time (a safety net: hitting it makes the result depend on
    /// the machine's speed, and it is reported).
    pub time_limit: Duration,
    /// Rule families to run ([`crate::rules::FAMILIES`]).
    pub families: Vec<String>,
}

impl Default for EqsatOptions {
    fn default() -> Self {
        EqsatOptions {
            node_limit: 200_000,
            iter_limit: 60,
            time_limit: Duration::from_secs(20),
            families: crate::rules::FAMILIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Shared state and typed options that passes read.
#[derive(Debug, Clone, Default)]
pub struct PassContext {
    pub target: Target,
    pub eqsat: EqsatOptions,
    /// Collect, for every node a rule made, which rules made it.
    pub explain: bool,
}

/// Size of an e-graph run.
#[derive(Debug, Clone, PartialEq)]
pub struct EgraphStats {
    pub iterations: usize,
    pub nodes: usize,
    pub classes: usize,
    /// egg's stop reason: `Saturated`, `IterationLimit(n)`, `NodeLimit(n)`, `TimeLimit(s)`.
    pub stop_reason: String,
    /// Whether a limit (not saturation) stopped the run.
    pub limit_hit: bool,
    /// Extracted cost under the target model.
    pub cost: u64,
    /// Cost of the input graph under the same model.
    pub cost_before: u64,
}

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct PassOutcome {
    /// A short human-readable summary.
    pub summary: String,
    /// Set by e-graph passes.
    pub egraph: Option<EgraphStats>,
    /// With [`PassContext::explain`]: the rules behind each node they made.
    pub explain: Vec<crate::egraph::extract::Explanation>,
}

impl PassOutcome {
    pub fn summary(s: impl Into<String>) -> Self {
        PassOutcome {
            summary: s.into(),
            ..Default::default()
        }
    }
}

/// A graph transformation.
pub trait Pass {
    /// Kebab-case name, unique in the registry.
    fn name(&self) -> &'static str;
    /// One line for `lnc passes`.
    fn description(&self) -> &'static str;
    /// Transform the graph.
    fn run(&self, g: &mut Graph, ctx: &PassContext) -> Result<PassOutcome>;
}

/// What one pass did, as the manager recorded it.
#[derive(Debug, Clone)]
pub struct PassRecord {
    pub pass: &'static str,
    pub time: Duration,
    pub outcome: PassOutcome,
    pub nodes_before: usize,
    pub nodes_after: usize,
}

impl PassRecord {
    /// One log line: `pass constant-fold: 1.2 ms, 431 -> 431 nodes; folded 0 node(s)`.
    pub fn log_line(&self) -> String {
        format!(
            "pass {}: {:.1} ms, {} -> {} nodes; {}",
            self.pass,
            self.time.as_secs_f64() * 1e3,
            self.nodes_before,
            self.nodes_after,
            self.outcome.summary
        )
    }
}

/// Runs passes in order, verifying after each.
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    pub ctx: PassContext,
}

impl PassManager {
    /// A manager for a comma-separated list of pass and pipeline names, minus `exclude`.
    /// A pipeline bound to a target sets `ctx.target`; `target_given` says whether the
    /// caller chose the target explicitly (then a conflicting pipeline is an error).
    pub fn from_spec(
        spec: &str,
        exclude: &[String],
        mut ctx: PassContext,
        target_given: bool,
    ) -> Result<Self> {
        let registry = crate::registry();
        let known = |n: &str| registry.iter().any(|p| p.name() == n);
        let mut names = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match crate::pipeline(item) {
                Some(p) => {
                    if let Some(t) = p.target {
                        if target_given && t != ctx.target {
                            return Err(Error::TargetConflict {
                                pipeline: p.name.to_string(),
                                wanted: t,
                                given: ctx.target,
                            });
                        }
                        ctx.target = t;
                    }
                    names.extend(p.passes.iter().map(|s| s.to_string()));
                }
                None if known(item) => names.push(item.to_string()),
                None => return Err(Error::UnknownPass(item.to_string())),
            }
        }
        for x in exclude {
            if !known(x) {
                return Err(Error::UnknownPass(x.clone()));
            }
        }
        for f in &ctx.eqsat.families {
            if crate::rules::family(f).is_none() {
                return Err(Error::UnknownFamily(f.clone()));
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

    /// Run every pass; `after` is called after each one (for `--dump-after` and logging).
    pub fn run(
        &self,
        g: &mut Graph,
        mut after: impl FnMut(&PassRecord, &Graph),
    ) -> Result<Vec<PassRecord>> {
        let mut log = Vec::new();
        for p in &self.passes {
            let nodes_before = g.num_nodes();
            let t = Instant::now();
            let wrap = |e: Error| Error::Pass {
                pass: p.name().to_string(),
                source: Box::new(e),
            };
            let outcome = p.run(g, &self.ctx).map_err(wrap)?;
            lnc_ir::verify::verify(g).map_err(|e| wrap(e.into()))?;
            let rec = PassRecord {
                pass: p.name(),
                time: t.elapsed(),
                outcome,
                nodes_before,
                nodes_after: g.num_nodes(),
            };
            after(&rec, g);
            log.push(rec);
        }
        Ok(log)
    }
}
