//! Target cost models for extraction.
//!
//! A cost model gives each e-node its own cost ([`NodeCost::own`]); [`DagCost`] turns that
//! into egg's [`CostFunction`]: the cost of an e-node is its own cost plus the own costs of
//! every distinct e-class below it, each counted once. (egg's usual tree cost counts a value
//! once per use, which grows exponentially with the residual and split/concat fan-out of
//! these networks and then saturates into ties.) Costs are monotone — an e-node costs at
//! least as much as any of its children — and saturate at `u64::MAX`. Leaves (inputs,
//! constants, attributes, absent inputs) cost nothing: the weights exist whatever is
//! extracted; their size is charged to the ops that read them where the target cares.

pub mod cpu;
pub mod fpga;

use crate::egraph::analysis::{node_op, EG};
use crate::egraph::lang::Lnir;
use egg::{CostFunction, Id, Language};
use lnc_ir::{Op, TensorType};
use std::cmp::Ordering;
use std::rc::Rc;

pub use cpu::CpuCost;
pub use fpga::FpgaCost;

/// What a cost model sees of an op e-node.
#[derive(Debug)]
pub struct NodeInfo<'a> {
    pub op: Op,
    /// Types of the inputs (attribute and absent children removed).
    pub ins: Vec<&'a TensorType>,
    /// Whether each input is a constant.
    pub consts: Vec<bool>,
    /// Output types.
    pub outs: &'a [TensorType],
}

impl<'a> NodeInfo<'a> {
    /// The information about an op e-node; `None` for leaves and projections.
    pub fn of(eg: &'a EG, n: &Lnir) -> Option<NodeInfo<'a>> {
        let (op, ins) = node_op(eg, n)?;
        let class = eg.lookup(n.clone())?;
        let tys: Option<Vec<&TensorType>> = ins.iter().map(|&i| eg[i].data.ty()).collect();
        Some(NodeInfo {
            op,
            ins: tys?,
            consts: ins.iter().map(|&i| eg[i].data.konst.is_some()).collect(),
            outs: &eg[class].data.types,
        })
    }

    /// Bytes of the non-constant inputs.
    pub fn activation_bytes_in(&self) -> u64 {
        self.ins
            .iter()
            .zip(&self.consts)
            .filter(|(_, c)| !**c)
            .fold(0u64, |a, (t, _)| a.saturating_add(bytes(t)))
    }

    /// Bytes of the outputs.
    pub fn bytes_out(&self) -> u64 {
        self.outs
            .iter()
            .fold(0u64, |a, t| a.saturating_add(bytes(t)))
    }

    /// Elements of the constant inputs (weights, biases).
    pub fn const_elems(&self) -> u64 {
        self.ins
            .iter()
            .zip(&self.consts)
            .filter(|(_, c)| **c)
            .fold(0u64, |a, (t, _)| a.saturating_add(prod(&t.shape)))
    }
}

/// Size of a tensor in bytes (sub-byte types round up to a byte per element).
pub fn bytes(t: &TensorType) -> u64 {
    prod(&t.shape).saturating_mul(t.dtype.bits().div_ceil(8).max(1) as u64)
}

fn prod(d: &[usize]) -> u64 {
    d.iter().fold(1u64, |a, &x| a.saturating_mul(x as u64))
}

/// Multiply-accumulates of a compute op: `(depthwise part, other part)`.
pub fn macs(info: &NodeInfo) -> (u64, u64) {
    let out = info.outs.first().map_or(&[][..], |t| t.shape.as_slice());
    let w = |slot: usize| info.ins.get(slot).map_or(&[][..], |t| t.shape.as_slice());
    let conv = |c: &lnc_ir::Conv2d, ws: &[usize], x: &[usize]| -> (u64, u64) {
        if ws.len() != 4 {
            return (0, 0);
        }
        let m = prod(out).saturating_mul(prod(&ws[1..]));
        let dw = c.group > 1 && x.get(1) == Some(&c.group);
        if dw {
            (m, 0)
        } else {
            (0, m)
        }
    };
    let x = w(0);
    match &info.op {
        Op::Conv(c) | Op::ConvInteger(c) | Op::FusedConv { conv: c, .. } => conv(c, w(1), x),
        Op::QLinearConv(c) => conv(c, w(3), x),
        Op::ConvTranspose(_) => (
            0,
            prod(x).saturating_mul(prod(w(1).get(1..).unwrap_or(&[]))),
        ),
        Op::DwPw { .. } => {
            let (dww, pww) = (w(1), w(3));
            if dww.len() != 4 || pww.len() != 4 || out.len() != 4 {
                return (0, 0);
            }
            let mid = prod(&[out[0], pww[1], out[2], out[3]]);
            (
                mid.saturating_mul(prod(&dww[1..])),
                prod(out).saturating_mul(pww[1] as u64),
            )
        }
        Op::Gemm { trans_a, .. } => {
            let k = if *trans_a { x.first() } else { x.get(1) };
            (0, prod(out).saturating_mul(k.copied().unwrap_or(0) as u64))
        }
        Op::Classifier { .. } => (
            0,
            prod(out).saturating_mul(x.get(1).copied().unwrap_or(0) as u64),
        ),
        Op::MatMul | Op::QLinearMatMul | Op::MatMulInteger => (
            0,
            prod(out).saturating_mul(x.last().copied().unwrap_or(0) as u64),
        ),
        _ => (0, 0),
    }
}

/// The own cost of an op e-node under a target model.
pub trait NodeCost {
    /// Own cost of an op e-node (at least 1); leaves are not asked.
    fn own(&self, info: &NodeInfo) -> u64;
}

/// A DAG cost: the total, the node's own cost, and the own costs of the distinct non-leaf
/// classes below it (sorted by class id).
#[derive(Debug, Clone)]
pub struct DagCost {
    pub total: u64,
    pub own: u64,
    below: Rc<Vec<(Id, u64)>>,
}

impl DagCost {
    /// The own costs of the distinct non-leaf classes below, by class.
    pub fn below(&self) -> &[(Id, u64)] {
        &self.below
    }
}

impl PartialEq for DagCost {
    fn eq(&self, o: &Self) -> bool {
        self.total == o.total
    }
}

impl PartialOrd for DagCost {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.total.cmp(&o.total))
    }
}

/// Merge two sorted `(class, cost)` lists.
fn merge_sorted(a: &[(Id, u64)], b: &[(Id, u64)]) -> Vec<(Id, u64)> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            Ordering::Less => {
                v.push(a[i]);
                i += 1;
            }
            Ordering::Greater => {
                v.push(b[j]);
                j += 1;
            }
            Ordering::Equal => {
                v.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    v.extend_from_slice(&a[i..]);
    v.extend_from_slice(&b[j..]);
    v
}

/// The [`DagCost`] of an e-node from its own cost and its children's costs.
pub fn dag_cost<C: FnMut(Id) -> DagCost>(own: u64, enode: &Lnir, mut costs: C) -> DagCost {
    let mut below: Rc<Vec<(Id, u64)>> = Rc::new(Vec::new());
    for &c in enode.children() {
        let cc = costs(c);
        if cc.own == 0 && cc.below.is_empty() {
            continue;
        }
        let mut mine = cc.below.as_ref().clone();
        if cc.own > 0 {
            mine = merge_sorted(&mine, &[(c, cc.own)]);
        }
        below = if below.is_empty() {
            Rc::new(mine)
        } else {
            Rc::new(merge_sorted(&below, &mine))
        };
    }
    let total = below.iter().fold(own, |a, (_, c)| a.saturating_add(*c));
    DagCost { total, own, below }
}

/// egg's cost function over a target model.
pub struct Dag<'a, M: NodeCost> {
    pub eg: &'a EG,
    pub model: M,
}

impl<M: NodeCost> CostFunction<Lnir> for Dag<'_, M> {
    type Cost = DagCost;

    fn cost<C>(&mut self, enode: &Lnir, costs: C) -> DagCost
    where
        C: FnMut(Id) -> DagCost,
    {
        let own = match enode {
            Lnir::Input(_) | Lnir::Const(_) | Lnir::Attr(_) | Lnir::Absent => 0,
            Lnir::Proj(..) => 1,
            Lnir::Op(..) => match NodeInfo::of(self.eg, enode) {
                Some(info) => self.model.own(&info).max(1),
                None => u64::MAX / 4,
            },
        };
        dag_cost(own, enode, costs)
    }
}

/// Whether an op only re-labels or views its input on the CPU (no data moves).
pub fn is_view(info: &NodeInfo) -> bool {
    let x = info.ins.first().map(|t| t.shape.as_slice()).unwrap_or(&[]);
    let outer_one = |axis: usize| x.iter().take(axis).all(|&d| d == 1);
    match &info.op {
        Op::Identity | Op::Reshape { .. } => true,
        Op::Split { axis, .. } | Op::Concat { axis } => outer_one(*axis),
        Op::Slice { axes } => axes.len() == 1 && axes[0].step == 1 && outer_one(axes[0].axis),
        Op::ChannelMap { map } => outer_one(1) && map_is_concat_like(map),
        _ => false,
    }
}

/// Whether a channel map is a concatenation of contiguous channel ranges (each run reads
/// consecutive channels of one input), i.e. a view on the CPU.
pub fn map_is_concat_like(map: &[lnc_ir::ChannelRef]) -> bool {
    map.windows(2).all(|w| {
        (w[1].input == w[0].input && w[1].channel == w[0].channel + 1)
            || (w[1].input != w[0].input && w[1].channel == 0)
    })
}

/// Number of contiguous runs in a channel map.
pub fn map_runs(map: &[lnc_ir::ChannelRef]) -> u64 {
    1 + map
        .windows(2)
        .filter(|w| !(w[1].input == w[0].input && w[1].channel == w[0].channel + 1))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::cpu::CpuModel;
    use super::fpga::FpgaModel;
    use super::*;
    use crate::egraph::bridge::to_egraph;
    use lnc_ir::{Graph, Tensor, TensorType, UnaryOp};

    fn graph(c: usize, hw: usize) -> Graph {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::f32([1, c, hw, hw])).unwrap();
        let w = g.add_const(
            "w",
            Tensor::from_f32(&[c, c, 3, 3], vec![0.1; c * c * 9]).unwrap(),
        );
        let conv = lnc_ir::Conv2d {
            kernel: [3, 3],
            strides: [1, 1],
            pads: [1; 4],
            dilations: [1, 1],
            group: 1,
        };
        let y = g.add("conv", Op::Conv(conv), &[x, w]).unwrap();
        let y = g.add("relu", Op::Unary(UnaryOp::Relu), &[y]).unwrap();
        g.add_output("y", y);
        g
    }

    /// Costs of every class with the egg extractor under a model.
    fn check_monotone<M: NodeCost + Copy>(model: M) {
        let b = to_egraph(&graph(8, 16)).unwrap();
        let eg = &b.egraph;
        let ex = egg::Extractor::new(eg, Dag { eg, model });
        for class in eg.classes() {
            let c = ex.find_best_cost(class.id);
            let n = ex.find_best_node(class.id);
            for &ch in n.children() {
                assert!(
                    c.total >= ex.find_best_cost(ch).total,
                    "cost is not monotone"
                );
            }
            if matches!(n, Lnir::Op(..)) {
                assert!(c.own >= 1);
            }
        }
    }

    #[test]
    fn costs_are_monotone() {
        check_monotone(CpuModel);
        check_monotone(FpgaModel);
    }

    #[test]
    fn shared_classes_are_counted_once() {
        let a = DagCost {
            total: 10,
            own: 10,
            below: Rc::new(vec![]),
        };
        let mut eg = EG::new(Default::default());
        let x = eg.add(Lnir::Input(0));
        // add(y, y) where y costs 10: 10 counted once plus the add's own 5.
        let n = Lnir::Op("add", vec![x, x]);
        let c = dag_cost(5, &n, |_| a.clone());
        assert_eq!(c.total, 15);
    }

    #[test]
    fn costs_saturate() {
        let huge = DagCost {
            total: u64::MAX,
            own: u64::MAX,
            below: Rc::new(vec![]),
        };
        let mut eg = EG::new(Default::default());
        let x = eg.add(Lnir::Input(0));
        let y = eg.add(Lnir::Input(1));
        let n = Lnir::Op("add", vec![x, y]);
        let c = dag_cost(u64::MAX, &n, |_| huge.clone());
        assert_eq!(c.total, u64::MAX);
        // The models saturate on absurd shapes instead of overflowing.
        let big = TensorType::f32(vec![1 << 20, 1 << 20, 1 << 20, 1 << 20]);
        let info = NodeInfo {
            op: Op::Unary(UnaryOp::Relu),
            ins: vec![&big],
            consts: vec![false],
            outs: std::slice::from_ref(&big),
        };
        assert_eq!(CpuModel.own(&info), u64::MAX);
        assert!(FpgaModel.own(&info) > 0);
    }
}
