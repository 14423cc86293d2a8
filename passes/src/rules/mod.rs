//! Rewrite rules, one family per module, each with `pub fn rules() -> Vec<Rw>`:
//!
//! | family     | what |
//! |------------|------|
//! | [`cleanup`] | identity, dropout (imported as identity), no-op cast / reshape / transpose / expand, one-input concat |
//! | [`fold`]    | batch norm into conv / gemm, per-channel mul / add into conv weights / bias, zero pad into conv padding |
//! | [`fusion`]  | conv epilogues (activation, residual add), SiLU, depthwise + pointwise blocks, the classifier head |
//! | [`quant`]   | QDQ frames around conv / gemm to integer `QLinearConv` (int32 accumulation, ONNX Runtime's requantization); `QLinearMatMul` with a constant `B` as a 1x1 `QLinearConv`; data movement and max pooling between equal Q/DQ parameters on bytes; Relu / Clip absorbed into a saturating `QuantizeLinear` |
//! | [`layout`]  | reshape / transpose cancellation, channel shuffle recognition, channel split / slice / concat / shuffle as index maps, index maps absorbed into conv weights |
//!
//! Rules whose right-hand side is a pattern are written as such; rules that compute new
//! attributes or constants use an [`Apply`] of a [`Make`] implementation, which proposes
//! e-nodes; [`Apply`] type-checks each against the matched class, adds it, records its
//! provenance and unions it. No rule is a blanket commutativity or associativity law.

pub mod cleanup;
pub mod fold;
pub mod fusion;
pub mod layout;
pub mod quant;

use crate::egraph::analysis::{node_op, Record, EG};
use crate::egraph::bridge::op_node;
use crate::egraph::lang::Lnir;
use egg::{Applier, Id, PatternAst, SearchMatches, Searcher, Subst, Symbol, Var};
use lnc_ir::{Conv2d, Epilogue, Op, Tensor, TensorType};

/// A rewrite of the optimiser.
pub type Rw = egg::Rewrite<Lnir, crate::egraph::LnirAnalysis>;

/// The rule families, in order.
pub const FAMILIES: &[&str] = &["cleanup", "fold", "fusion", "layout", "quant"];

/// The rules of a family.
pub fn family(name: &str) -> Option<Vec<Rw>> {
    Some(match name {
        "cleanup" => cleanup::rules(),
        "fold" => fold::rules(),
        "fusion" => fusion::rules(),
        "layout" => layout::rules(),
        "quant" => quant::rules(),
        _ => return None,
    })
}

/// Every rule of every family.
pub fn all() -> Vec<Rw> {
    FAMILIES
        .iter()
        .flat_map(|f| family(f).unwrap_or_default())
        .collect()
}

/// A proposed e-node: its op, its inputs, and the e-nodes it replaces (for provenance).
#[derive(Debug, Clone)]
pub struct Made {
    pub op: Op,
    pub inputs: Vec<Id>,
    pub sources: Vec<Lnir>,
}

/// What an applier proposes.
#[derive(Debug, Clone)]
pub enum Out {
    /// Add this e-node to class `into`.
    Node { into: Id, made: Made },
    /// These two classes are equal.
    Same(Id, Id),
}

/// The computing half of a custom rule: proposals for one match.
pub trait Make {
    fn make(&self, eg: &mut EG, root: Id, subst: &Subst) -> Vec<Out>;
}

/// The egg [`Applier`] of a [`Make`].
pub struct Apply<M>(pub M);

impl<M: Make> Applier<Lnir, crate::egraph::LnirAnalysis> for Apply<M> {
    fn apply_one(
        &self,
        eg: &mut EG,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Lnir>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let mut changed = Vec::new();
        for out in self.0.make(eg, eclass, subst) {
            match out {
                Out::Same(a, b) => {
                    if eg.union(a, b) {
                        changed.push(a);
                    }
                }
                Out::Node { into, made } => {
                    let want = &eg[into].data.types;
                    let ok = infer_types(eg, &made.op, &made.inputs).is_some_and(|got| {
                        got.len() == want.len()
                            && got
                                .iter()
                                .zip(want)
                                .all(|(a, b)| a.dtype == b.dtype && a.shape == b.shape)
                    });
                    if !ok {
                        let m = format!("rule {rule} proposed an ill-typed {}", made.op.name());
                        eg.analysis.conflicts.push(m);
                        continue;
                    }
                    let node = op_node(eg, &made.op, &made.inputs);
                    let id = eg.add(node.clone());
                    eg.analysis.records.push(Record {
                        node,
                        rule: rule.to_string(),
                        sources: made.sources,
                    });
                    if eg.union(into, id) {
                        changed.push(into);
                    }
                }
            }
        }
        changed
    }
}

/// The output types of `op` applied to the value classes `inputs` (`None`: an input is not
/// a single value, or the op rejects the input types).
pub fn infer_types(eg: &EG, op: &Op, inputs: &[Id]) -> Option<Vec<TensorType>> {
    let tys: Vec<TensorType> = inputs
        .iter()
        .map(|&i| eg[i].data.ty().cloned())
        .collect::<Option<_>>()?;
    let refs: Vec<&TensorType> = tys.iter().collect();
    lnc_ir::shape::infer(op, &refs).ok()
}

/// Matches every class holding an e-node with one of the tags (of any arity), binding
/// nothing; the applier looks into the class.
pub struct Tagged(pub &'static [&'static str]);

impl Searcher<Lnir, crate::egraph::LnirAnalysis> for Tagged {
    fn search_eclass_with_limit(
        &self,
        eg: &EG,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Lnir>> {
        let hit = limit > 0
            && eg[eclass]
                .nodes
                .iter()
                .any(|n| matches!(n, Lnir::Op(t, _) if self.0.contains(t)));
        hit.then(|| SearchMatches {
            eclass,
            substs: vec![Subst::with_capacity(0)],
            ast: None,
        })
    }

    fn search_with_limit(&self, eg: &EG, limit: usize) -> Vec<SearchMatches<'_, Lnir>> {
        let mut ids: Vec<Id> = self
            .0
            .iter()
            .filter_map(|t| eg.classes_for_op(&crate::egraph::lang::Disc::Op(t)))
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .take(limit)
            .filter_map(|id| self.search_eclass_with_limit(eg, id, 1))
            .collect()
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

// ----- helpers shared by the families ----------------------------------------------------

/// A pattern variable.
pub fn var(s: &str) -> Var {
    s.parse().unwrap_or_else(|_| panic!("bad variable {s}"))
}

/// The class bound to `v`.
pub fn bound(subst: &Subst, v: &str) -> Option<Id> {
    subst.get(var(v)).copied()
}

/// The attribute payload of an attribute class.
pub fn attr(eg: &EG, id: Id) -> Option<Op> {
    eg[id].data.attr.as_ref().map(|a| a.op().clone())
}

/// The single type of a value class.
pub fn ty(eg: &EG, id: Id) -> Option<TensorType> {
    eg[id].data.ty().cloned()
}

/// The pool entry and tensor of a constant class.
pub fn konst(eg: &EG, id: Id) -> Option<(u32, &Tensor)> {
    let k = eg[id].data.konst?;
    Some((k, eg.analysis.pool.get(k)?))
}

/// The f32 values (row-major) of a constant class.
pub fn f32_values(eg: &EG, id: Id) -> Option<(u32, Vec<f32>)> {
    let (k, t) = konst(eg, id)?;
    Some((k, t.as_f32()?.iter().copied().collect()))
}

/// Whether a class is the absent-input leaf.
pub fn is_absent(eg: &EG, id: Id) -> bool {
    eg[id].data.absent
}

/// The op e-nodes of a class: `(e-node, op, real inputs)`.
pub fn ops_in(eg: &EG, id: Id) -> Vec<(Lnir, Op, Vec<Id>)> {
    eg[id]
        .nodes
        .iter()
        .filter_map(|n| node_op(eg, n).map(|(op, ins)| (n.clone(), op, ins)))
        .collect()
}

/// Whether every use of class `id` — the classes of its parent e-nodes, and graph outputs —
/// is one of `allowed`, or a class whose own uses are (up to a few levels: a consumer that only
/// feeds the allowed classes, such as the unfused form of the node being replaced). Fusion
/// rules require it of the value they absorb, so that fusing never computes a value twice
/// (once fused, once for another consumer).
pub fn used_only_by(eg: &EG, id: Id, allowed: &[Id]) -> bool {
    let allowed: Vec<Id> = allowed.iter().map(|&a| eg.find(a)).collect();
    uses_within(eg, eg.find(id), &allowed, 4)
}

/// Whether a value of class `a` reads class `b` (through up to `depth` levels of inputs).
pub fn depends_on(eg: &EG, a: Id, b: Id, depth: usize) -> bool {
    let (a, b) = (eg.find(a), eg.find(b));
    a == b
        || (depth > 0
            && eg[a].nodes.iter().any(|n| {
                egg::Language::children(n)
                    .iter()
                    .any(|&c| depends_on(eg, c, b, depth - 1))
            }))
}

fn uses_within(eg: &EG, id: Id, allowed: &[Id], depth: usize) -> bool {
    if eg.analysis.roots.iter().any(|&r| eg.find(r) == id) {
        return false;
    }
    eg[id].parents().all(|p| {
        let p = eg.find(p);
        allowed.contains(&p) || (depth > 0 && p != id && uses_within(eg, p, allowed, depth - 1))
    })
}

/// The class of a constant-pool entry.
pub fn const_class(eg: &mut EG, k: u32) -> Id {
    eg.add(Lnir::Const(k))
}

/// A derived constant (memoised in the pool by `key`) as a class.
pub fn derived(
    eg: &mut EG,
    key: String,
    name: impl FnOnce() -> String,
    make: impl FnOnce(&crate::egraph::ConstPool) -> Result<Tensor, String>,
) -> Option<Id> {
    let k = eg.analysis.pool.derive(key, name, make).ok()?;
    Some(const_class(eg, k))
}

/// A zero bias of `m` channels for the weight in pool entry `w`.
pub fn zero_bias(eg: &mut EG, w: u32, m: usize) -> Option<Id> {
    let name = eg.analysis.pool.name(w).to_string();
    derived(
        eg,
        format!("zero-bias:{m}"),
        || format!("{name}.zero_bias"),
        |_| Tensor::from_f32(&[m], vec![0.0; m]),
    )
}

/// A conv-like e-node: a float `conv` (epilogue none) or a `fused_conv`.
#[derive(Debug, Clone)]
pub struct ConvNode {
    pub node: Lnir,
    pub conv: Conv2d,
    pub epilogue: Epilogue,
    pub x: Id,
    pub w: Id,
    /// `None` when a plain conv has no bias.
    pub b: Option<Id>,
    /// The residual input, when the epilogue has one.
    pub r: Option<Id>,
    /// The PReLU slope input.
    pub slope: Option<Id>,
}

impl ConvNode {
    /// The conv-like e-nodes of a class whose weight is a constant.
    pub fn all_in(eg: &EG, id: Id) -> Vec<ConvNode> {
        let mut v = Vec::new();
        for (node, op, ins) in ops_in(eg, id) {
            let c = match op {
                Op::Conv(c) => ConvNode {
                    node,
                    conv: c,
                    epilogue: Epilogue::NONE,
                    x: ins[0],
                    w: ins[1],
                    b: ins.get(2).copied(),
                    r: None,
                    slope: None,
                },
                Op::FusedConv { conv, epilogue } => {
                    let mut rest = ins[3..].iter().copied();
                    let r = (epilogue.residual != lnc_ir::Residual::None)
                        .then(|| rest.next())
                        .flatten();
                    let slope = epilogue.act.has_slope().then(|| rest.next()).flatten();
                    ConvNode {
                        node,
                        conv,
                        epilogue,
                        x: ins[0],
                        w: ins[1],
                        b: Some(ins[2]),
                        r,
                        slope,
                    }
                }
                _ => continue,
            };
            let float = eg[c.x]
                .data
                .ty()
                .is_some_and(|t| t.dtype == lnc_ir::DType::F32);
            if float && eg[c.w].data.konst.is_some() {
                v.push(c);
            }
        }
        v
    }

    /// The bias class, a zero bias when the conv has none.
    pub fn bias(&self, eg: &mut EG) -> Option<Id> {
        match self.b {
            Some(b) => Some(b),
            None => {
                let w = eg[self.w].data.konst?;
                let m = eg[self.w].data.ty()?.shape.first().copied()?;
                zero_bias(eg, w, m)
            }
        }
    }

    /// The inputs of a `fused_conv` with this conv and `epilogue`: `x, w, b, [r], [slope]`.
    pub fn fused_inputs(
        &self,
        b: Id,
        epilogue: &Epilogue,
        r: Option<Id>,
        slope: Option<Id>,
    ) -> Vec<Id> {
        let mut v = vec![self.x, self.w, b];
        if epilogue.residual != lnc_ir::Residual::None {
            v.extend(r);
        }
        if epilogue.act.has_slope() {
            v.extend(slope);
        }
        v
    }
}
