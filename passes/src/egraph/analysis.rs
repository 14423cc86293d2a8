//! Per-e-class facts and the constant pool.
//!
//! [`LnirAnalysis`] is the egg [`Analysis`]: every e-class carries [`Facts`] — output types
//! (shape, dtype, quantization), constness (the pool entry, when the class contains a
//! constant), the attribute payload of attribute leaves, a value range (an interval every
//! element lies in, for bit-width decisions later) and the sparsity of constant weights.
//! [`Analysis::merge`] checks that two merged classes agree on their types; a disagreement
//! means an unsound rewrite and is recorded in [`LnirAnalysis::conflicts`] (the pass turns it
//! into an error; nothing is printed from here).
//!
//! The analysis also owns the [`ConstPool`]: the weights, outside the e-graph. Appliers
//! that compute new constants (batch-norm folding, weight permutation) add them here
//! through [`ConstPool::derive`], which memoises by a key so that re-applying a rule in a
//! later iteration finds the same constant (and so the same e-node) instead of growing the
//! e-graph forever.

use super::lang::{attr_free_op, Attr, Lnir};
use egg::{Analysis, DidMerge, Id};
use lnc_ir::{Activation, Op, Residual, Tensor, TensorType, UnaryOp};
use std::collections::HashMap;
use std::sync::Arc;

/// The e-graph type of the optimiser.
pub type EG = egg::EGraph<Lnir, LnirAnalysis>;

/// The weights and other constants, referenced from e-nodes by index.
#[derive(Debug, Clone, Default)]
pub struct ConstPool {
    tensors: Vec<Tensor>,
    names: Vec<String>,
    derived: HashMap<String, u32>,
}

impl ConstPool {
    /// A pool holding `tensors` with their node names.
    pub fn new(tensors: Vec<Tensor>, names: Vec<String>) -> ConstPool {
        ConstPool {
            tensors,
            names,
            derived: HashMap::new(),
        }
    }

    pub fn get(&self, id: u32) -> Option<&Tensor> {
        self.tensors.get(id as usize)
    }

    /// The name of the constant node of an entry.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("const", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The entry computed by `make` for `key`, computed and added once.
    pub fn derive(
        &mut self,
        key: String,
        name: impl FnOnce() -> String,
        make: impl FnOnce(&ConstPool) -> Result<Tensor, String>,
    ) -> Result<u32, String> {
        if let Some(&id) = self.derived.get(&key) {
            return Ok(id);
        }
        let t = make(self)?;
        let id = u32::try_from(self.tensors.len()).map_err(|_| "constant pool is full")?;
        self.tensors.push(t);
        self.names.push(name());
        self.derived.insert(key, id);
        Ok(id)
    }

    /// Take the tensors out (for the rebuilt graph).
    pub fn into_tensors(self) -> Vec<Tensor> {
        self.tensors
    }
}

/// Zero statistics of a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sparsity {
    /// Elements equal to zero.
    pub zeros: usize,
    pub numel: usize,
    /// Slices along axis 0 (output channels of a weight) that are entirely zero.
    pub zero_channels: usize,
}

/// Where a class came from: the creation index and name of an original graph node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub order: u32,
    pub name: Arc<str>,
}

/// Facts about an e-class.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Output types: one for a value, several for a multi-output op, none for attribute
    /// and absent leaves.
    pub types: Vec<TensorType>,
    /// The pool entry, when the class contains a constant.
    pub konst: Option<u32>,
    /// The payload of an attribute leaf.
    pub attr: Option<Attr>,
    /// The class is the absent-input leaf.
    pub absent: bool,
    /// Every element lies in `[lo, hi]` (f32 values only).
    pub range: Option<(f64, f64)>,
    pub sparsity: Option<Sparsity>,
    /// The original node (for names); the earliest when several merged.
    pub origin: Option<Origin>,
}

impl Facts {
    /// The single output type of a value class.
    pub fn ty(&self) -> Option<&TensorType> {
        match self.types.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }
}

/// A provenance record: rule `rule` made `node` from `sources` (the e-nodes it consumed).
#[derive(Debug, Clone)]
pub struct Record {
    pub node: Lnir,
    pub rule: String,
    pub sources: Vec<Lnir>,
}

/// The analysis: facts per class, plus the pool, the graph inputs and the records kept
/// beside the e-graph.
#[derive(Debug, Default)]
pub struct LnirAnalysis {
    pub pool: ConstPool,
    /// Names and types of the graph inputs.
    pub inputs: Vec<(String, TensorType)>,
    /// Disagreements found by `merge` or `make` (unsound or ill-typed rewrites).
    pub conflicts: Vec<String>,
    /// What the appliers made, for `--explain`.
    pub records: Vec<Record>,
    /// The classes of the graph outputs (uses that are not e-nodes).
    pub roots: Vec<Id>,
}

impl LnirAnalysis {
    pub fn new(pool: ConstPool, inputs: Vec<(String, TensorType)>) -> LnirAnalysis {
        LnirAnalysis {
            pool,
            inputs,
            ..Default::default()
        }
    }
}

/// The op of an op e-node and its real inputs (attribute child and trailing absent inputs
/// removed). `None` for leaves, projections, and an op whose attribute child is missing.
pub fn node_op(eg: &EG, n: &Lnir) -> Option<(Op, Vec<Id>)> {
    let Lnir::Op(tag, ch) = n else { return None };
    let (op, rest) = match attr_free_op(tag) {
        Some(op) => (op, &ch[..]),
        None => {
            let a = eg[*ch.first()?].data.attr.as_ref()?;
            (a.op().clone(), &ch[1..])
        }
    };
    let mut ins = rest.to_vec();
    while ins.last().is_some_and(|&i| eg[i].data.absent) {
        ins.pop();
    }
    Some((op, ins))
}

fn const_facts(t: &Tensor) -> (Option<(f64, f64)>, Option<Sparsity>) {
    let Some(a) = t.as_f32() else {
        return (None, None);
    };
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut zeros = 0;
    let mut nan = false;
    for &v in a.iter() {
        nan |= v.is_nan();
        lo = lo.min(v as f64);
        hi = hi.max(v as f64);
        zeros += (v == 0.0) as usize;
    }
    let numel = a.len();
    let zero_channels = match a.shape().first() {
        Some(&c) if c > 0 && numel > 0 => {
            let per = numel / c;
            let s = a.as_slice();
            match s {
                Some(s) => s
                    .chunks(per.max(1))
                    .filter(|ch| ch.iter().all(|&v| v == 0.0))
                    .count(),
                None => 0,
            }
        }
        _ => 0,
    };
    let range = (!nan && numel > 0).then_some((lo, hi));
    (
        range,
        Some(Sparsity {
            zeros,
            numel,
            zero_channels,
        }),
    )
}

fn act_range(act: Activation, x: Option<(f64, f64)>) -> Option<(f64, f64)> {
    match act {
        Activation::Identity => x,
        Activation::Relu => {
            Some(x.map_or((0.0, f64::INFINITY), |(lo, hi)| (lo.max(0.0), hi.max(0.0))))
        }
        Activation::Clip { min, max } => Some(x.map_or((min, max), |(lo, hi)| {
            (lo.max(min).min(max), hi.min(max).max(min))
        })),
        Activation::Sigmoid | Activation::HardSigmoid { .. } => Some((0.0, 1.0)),
        _ => None,
    }
}

/// Value range of an op's output from its inputs' ranges.
fn op_range(op: &Op, ins: &[Option<(f64, f64)>]) -> Option<(f64, f64)> {
    let first = ins.first().copied().flatten();
    let union = || {
        ins.iter()
            .try_fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                r.map(|(l, h)| (lo.min(l), hi.max(h)))
            })
    };
    match op {
        Op::Identity
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Split { .. }
        | Op::MaxPool(_)
        | Op::GlobalMaxPool
        | Op::ChannelShuffle { .. } => first,
        Op::Concat { .. } | Op::ChannelMap { .. } => union(),
        Op::Unary(UnaryOp::Relu) => act_range(Activation::Relu, first),
        Op::Clip { min, max } => act_range(
            Activation::Clip {
                min: *min,
                max: *max,
            },
            first,
        ),
        Op::Unary(UnaryOp::Sigmoid) | Op::HardSigmoid { .. } => Some((0.0, 1.0)),
        Op::FusedConv { epilogue, .. } | Op::DwPw { epilogue, .. } => match epilogue.residual {
            Residual::AfterAct => None,
            _ => act_range(epilogue.act, None),
        },
        _ => None,
    }
}

fn intersect(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<(f64, f64)> {
    match (a, b) {
        (Some((l1, h1)), Some((l2, h2))) => {
            let (l, h) = (l1.max(l2), h1.min(h2));
            // An empty intersection can only come from loose bounds around NaNs: keep one.
            Some(if l <= h { (l, h) } else { (l1, h1) })
        }
        (a, None) => a,
        (None, b) => b,
    }
}

fn same_types(a: &[TensorType], b: &[TensorType]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.dtype == y.dtype && x.shape == y.shape)
}

impl Analysis<Lnir> for LnirAnalysis {
    type Data = Facts;

    fn make(eg: &mut EG, n: &Lnir, _id: Id) -> Facts {
        let mut f = Facts::default();
        match n {
            Lnir::Input(i) => match eg.analysis.inputs.get(*i as usize) {
                Some((name, ty)) => {
                    f.types = vec![ty.clone()];
                    f.origin = Some(Origin {
                        order: 0,
                        name: name.as_str().into(),
                    });
                }
                None => eg.analysis.conflicts.push(format!("no graph input {i}")),
            },
            Lnir::Const(c) => match eg.analysis.pool.get(*c) {
                Some(t) => {
                    f.types = vec![t.ty()];
                    f.konst = Some(*c);
                    (f.range, f.sparsity) = const_facts(t);
                }
                None => eg.analysis.conflicts.push(format!("no constant @{c}")),
            },
            Lnir::Attr(a) => f.attr = Some(a.clone()),
            Lnir::Absent => f.absent = true,
            Lnir::Proj(k, [t]) => match eg[*t].data.types.get(*k as usize) {
                Some(ty) => {
                    f.types = vec![ty.clone()];
                    f.range = eg[*t].data.range;
                }
                None => eg.analysis.conflicts.push(format!(
                    "projection {k} of a class with {} output(s)",
                    eg[*t].data.types.len()
                )),
            },
            Lnir::Op(tag, _) => {
                let Some((op, ins)) = node_op(eg, n) else {
                    eg.analysis
                        .conflicts
                        .push(format!("'{tag}' without attributes"));
                    return f;
                };
                let tys: Option<Vec<&TensorType>> = ins.iter().map(|&i| eg[i].data.ty()).collect();
                let res = match tys {
                    Some(tys) => lnc_ir::shape::infer(&op, &tys),
                    None => Err("an input has no single type".to_string()),
                };
                match res {
                    Ok(t) => f.types = t,
                    Err(m) => eg.analysis.conflicts.push(format!("{tag}: {m}")),
                }
                let ranges: Vec<_> = ins.iter().map(|&i| eg[i].data.range).collect();
                f.range = op_range(&op, &ranges);
            }
        }
        f
    }

    fn merge(&mut self, a: &mut Facts, b: Facts) -> DidMerge {
        let mut changed_a = false;
        let mut changed_b = false;
        if a.types.is_empty() && !b.types.is_empty() {
            a.types = b.types.clone();
            changed_a = true;
        } else if !b.types.is_empty() {
            if !same_types(&a.types, &b.types) {
                let show = |t: &[TensorType]| {
                    t.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.conflicts.push(format!(
                    "merged classes disagree on their types: [{}] vs [{}]",
                    show(&a.types),
                    show(&b.types)
                ));
            } else {
                for (x, y) in a.types.iter_mut().zip(&b.types) {
                    if x.quant.is_none() && y.quant.is_some() {
                        x.quant = y.quant.clone();
                        changed_a = true;
                    }
                }
            }
            changed_b |= b.types.len() != a.types.len();
        }
        let konst = match (a.konst, b.konst) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        changed_a |= konst != a.konst;
        changed_b |= konst != b.konst;
        a.konst = konst;
        if a.attr.is_none() && b.attr.is_some() {
            a.attr = b.attr.clone();
            changed_a = true;
        }
        if b.absent && !a.absent {
            a.absent = true;
            changed_a = true;
        }
        let range = intersect(a.range, b.range);
        changed_a |= range != a.range;
        changed_b |= range != b.range;
        a.range = range;
        if a.sparsity.is_none() && b.sparsity.is_some() {
            a.sparsity = b.sparsity;
            changed_a = true;
        }
        let origin = match (a.origin.take(), b.origin) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.origin = origin;
        DidMerge(changed_a, changed_b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lnc_ir::TensorType;

    fn eg() -> EG {
        let pool = ConstPool::new(
            vec![Tensor::from_f32(&[3], vec![0.0, -2.0, 5.0]).unwrap()],
            vec!["k".into()],
        );
        let inputs = vec![
            ("a".to_string(), TensorType::f32([1, 3])),
            ("b".to_string(), TensorType::f32([1, 4])),
            ("c".to_string(), TensorType::f32([1, 3])),
        ];
        EG::new(LnirAnalysis::new(pool, inputs))
    }

    #[test]
    fn facts_of_constants_and_ops() {
        let mut g = eg();
        let k = g.add(Lnir::Const(0));
        let d = &g[k].data;
        assert_eq!(d.konst, Some(0));
        assert_eq!(d.range, Some((-2.0, 5.0)));
        assert_eq!(
            d.sparsity,
            Some(Sparsity {
                zeros: 1,
                numel: 3,
                zero_channels: 1
            })
        );
        let r = crate::egraph::bridge::add_op(&mut g, &Op::Unary(UnaryOp::Relu), &[k]);
        assert_eq!(g[r].data.range, Some((0.0, 5.0)));
        assert_eq!(g[r].data.types, vec![TensorType::f32([3])]);
        let clip = crate::egraph::bridge::add_op(&mut g, &Op::Clip { min: 0.0, max: 6.0 }, &[r]);
        assert_eq!(g[clip].data.range, Some((0.0, 5.0)));
        assert!(g.analysis.conflicts.is_empty());
    }

    #[test]
    fn merging_classes_of_different_types_is_a_conflict() {
        let mut g = eg();
        let a = g.add(Lnir::Input(0));
        let c = g.add(Lnir::Input(2));
        g.union(a, c);
        g.rebuild();
        assert!(g.analysis.conflicts.is_empty());
        let b = g.add(Lnir::Input(1));
        g.union(a, b);
        g.rebuild();
        assert_eq!(g.analysis.conflicts.len(), 1);
        assert!(
            g.analysis.conflicts[0].contains("disagree"),
            "{:?}",
            g.analysis.conflicts
        );
    }

    #[test]
    fn derived_constants_are_memoised() {
        let mut p = ConstPool::default();
        let mk = |_: &ConstPool| Tensor::from_f32(&[1], vec![1.0]);
        let a = p.derive("k".into(), || "n".into(), mk).unwrap();
        let b = p
            .derive("k".into(), || "n".into(), |_| Err("not called".into()))
            .unwrap();
        assert_eq!((a, b, p.len()), (0, 0, 1));
        assert_eq!(p.name(0), "n");
    }
}
