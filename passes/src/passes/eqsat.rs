//! `eqsat`: equality saturation with egg.
//!
//! graph → e-graph ([`crate::egraph::bridge`]) → bounded saturation with the selected rule
//! families ([`crate::rules`]) → extraction with the target's cost model
//! ([`crate::cost`]) → rebuilt graph, verified. The runner has node, iteration and time
//! limits ([`crate::EqsatOptions`]); its stop reason is part of the summary and of
//! [`crate::EgraphStats`]. The result replaces the graph only if it is no costlier than the
//! input under the same model.

use crate::egraph::{bridge, extract};
use crate::{EgraphStats, Error, Pass, PassContext, PassOutcome, Result};
use egg::{Runner, SimpleScheduler, StopReason};
use lnc_ir::Graph;

pub struct Eqsat;

fn stop_name(s: &Option<StopReason>) -> (String, bool) {
    match s {
        Some(StopReason::Saturated) => ("saturated".into(), false),
        Some(StopReason::IterationLimit(n)) => (format!("iteration limit ({n})"), true),
        Some(StopReason::NodeLimit(n)) => (format!("node limit ({n})"), true),
        Some(StopReason::TimeLimit(t)) => (format!("time limit ({t:.1} s)"), true),
        Some(StopReason::Other(m)) => (format!("stopped: {m}"), true),
        None => ("not run".into(), false),
    }
}

/// A saturated e-graph of a graph.
pub struct Saturated {
    pub egraph: crate::egraph::EG,
    pub roots: Vec<egg::Id>,
    pub output_names: Vec<String>,
    pub graph_name: String,
    pub iterations: usize,
    pub stop_reason: Option<StopReason>,
}

/// Bridge a graph into an e-graph and saturate it with `rules` under the limits of `opts`.
///
/// # Errors
/// A graph the bridge cannot represent, or an inconsistent e-graph (unsound rewrite).
pub fn saturate(
    g: &Graph,
    rules: &[crate::rules::Rw],
    opts: &crate::EqsatOptions,
) -> Result<Saturated> {
    let b = bridge::to_egraph(g)?;
    let runner = Runner::default()
        .with_egraph(b.egraph)
        .with_node_limit(opts.node_limit)
        .with_iter_limit(opts.iter_limit)
        .with_time_limit(opts.time_limit)
        .with_scheduler(SimpleScheduler)
        .run(rules);
    if !runner.egraph.analysis.conflicts.is_empty() {
        let mut c = runner.egraph.analysis.conflicts.clone();
        c.truncate(10);
        return Err(Error::Unsound(c));
    }
    Ok(Saturated {
        iterations: runner.iterations.len(),
        stop_reason: runner.stop_reason,
        egraph: runner.egraph,
        roots: b.roots,
        output_names: b.output_names,
        graph_name: b.graph_name,
    })
}

impl Pass for Eqsat {
    fn name(&self) -> &'static str {
        "eqsat"
    }
    fn description(&self) -> &'static str {
        "e-graph rewriting (fold, fuse, re-layout), extracted with the target's cost model"
    }
    fn run(&self, g: &mut Graph, ctx: &PassContext) -> Result<PassOutcome> {
        let opts = &ctx.eqsat;
        let mut rules = Vec::new();
        for f in &opts.families {
            rules.extend(crate::rules::family(f).ok_or_else(|| Error::UnknownFamily(f.clone()))?);
        }
        let before = {
            let b = bridge::to_egraph(g)?;
            extract::extract(
                &b.egraph,
                ctx.target,
                &b.roots,
                &b.output_names,
                &b.graph_name,
            )?
        };
        let sat = saturate(g, &rules, opts)?;
        let eg = &sat.egraph;
        let (stop, limit_hit) = stop_name(&sat.stop_reason);
        let ex = extract::extract(
            eg,
            ctx.target,
            &sat.roots,
            &sat.output_names,
            &sat.graph_name,
        )?;
        lnc_ir::verify::verify(&ex.graph)?;
        let keep = ex.cost <= before.cost;
        let explain = if ctx.explain && keep {
            extract::explain(eg, &ex.graph, &ex.provenance)
        } else {
            Vec::new()
        };
        let stats = EgraphStats {
            iterations: sat.iterations,
            nodes: eg.total_number_of_nodes(),
            classes: eg.number_of_classes(),
            stop_reason: stop.clone(),
            limit_hit,
            cost: if keep { ex.cost } else { before.cost },
            cost_before: before.cost,
        };
        let summary = format!(
            "{} iteration(s), {} e-nodes, {} e-classes, {}; {} cost {} -> {}{}",
            stats.iterations,
            stats.nodes,
            stats.classes,
            stop,
            ctx.target.name(),
            before.cost,
            ex.cost,
            if keep { "" } else { " (kept the input)" }
        );
        if keep {
            *g = ex.graph;
        }
        Ok(PassOutcome {
            summary,
            egraph: Some(stats),
            explain,
        })
    }
}
