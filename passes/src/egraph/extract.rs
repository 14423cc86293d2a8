//! Extraction with a target cost model, and the provenance of every extracted node.
//!
//! [`extract`] picks one e-node per class with egg's [`Extractor`] under the target's
//! [`crate::cost`] model and rebuilds the graph ([`super::bridge::rebuild`]). For
//! `--explain`, [`explain`] follows the appliers' records ([`super::analysis::Record`]):
//! the rule that made an extracted e-node, after the rules that made the e-nodes it
//! consumed.

use super::analysis::EG;
use super::bridge::{rebuild, Provenance};
use super::lang::Lnir;
use crate::cost::{cpu::CpuModel, fpga::FpgaModel, Dag};
use crate::{Result, Target};
use egg::{Extractor, Id, Language};
use lnc_ir::Graph;
use std::collections::HashMap;

/// The extracted graph, its cost under the model, and where its nodes came from.
pub struct Extracted {
    pub graph: Graph,
    /// Cost of the outputs (shared parts counted once).
    pub cost: u64,
    pub provenance: Vec<Provenance>,
}

fn run<M: crate::cost::NodeCost>(
    eg: &EG,
    model: M,
    roots: &[Id],
    names: &[String],
    gname: &str,
) -> Result<Extracted> {
    let ex = Extractor::new(eg, Dag { eg, model });
    let (graph, provenance) = rebuild(eg, roots, names, gname, |c| ex.find_best_node(c))?;
    // Total of the whole output set: own costs of the distinct classes below all roots.
    let mut seen: HashMap<Id, u64> = HashMap::new();
    for &r in roots {
        let c = ex.find_best_cost(r);
        seen.insert(eg.find(r), c.own);
        for (id, cost) in c.below() {
            seen.insert(*id, *cost);
        }
    }
    let cost = seen.values().fold(0u64, |a, c| a.saturating_add(*c));
    Ok(Extracted {
        graph,
        cost,
        provenance,
    })
}

/// Extract the cheapest graph for `target`.
pub fn extract(
    eg: &EG,
    target: Target,
    roots: &[Id],
    names: &[String],
    gname: &str,
) -> Result<Extracted> {
    match target {
        Target::Cpu => run(eg, CpuModel, roots, names, gname),
        Target::Fpga => run(eg, FpgaModel, roots, names, gname),
    }
}

/// Which rules made one node of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub node: String,
    pub op: String,
    /// Rule names, the earliest first.
    pub rules: Vec<String>,
}

/// Explain every extracted node that a rule made.
pub fn explain(eg: &EG, g: &Graph, prov: &[Provenance]) -> Vec<Explanation> {
    let canon = |n: &Lnir| n.clone().map_children(|c| eg.find(c));
    let mut by_node: HashMap<Lnir, usize> = HashMap::new();
    for (i, r) in eg.analysis.records.iter().enumerate() {
        by_node.entry(canon(&r.node)).or_insert(i);
    }
    let mut out = Vec::new();
    for p in prov {
        let Some(&first) = by_node.get(&canon(&p.enode)) else {
            continue;
        };
        let mut rules: Vec<String> = Vec::new();
        let mut visiting = vec![first];
        let mut order = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Depth-first over the sources, emitting a record after its sources.
        while let Some(i) = visiting.pop() {
            if !seen.insert(i) {
                continue;
            }
            order.push(i);
            for s in &eg.analysis.records[i].sources {
                if let Some(&j) = by_node.get(&canon(s)) {
                    visiting.push(j);
                }
            }
        }
        for &i in order.iter().rev() {
            let r = &eg.analysis.records[i].rule;
            if !rules.contains(r) {
                rules.push(r.clone());
            }
        }
        let n = g.node(p.node);
        out.push(Explanation {
            node: n.name.clone(),
            op: n.op.name().to_string(),
            rules,
        });
    }
    out
}
