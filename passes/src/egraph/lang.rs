//! The e-graph language: one e-node per IR op, with attributes and operands as children.
//!
//! - An op is `Op(tag, children)`: `tag` is [`lnc_ir::Op::name`]; its children are an
//!   attribute leaf (ops with attributes only, see [`has_attr`]) followed by its inputs.
//!   Optional trailing inputs (conv and gemm bias, ...) are always present, as the
//!   [`Lnir::Absent`] leaf when not given, so every e-node of a tag has one arity (n-ary
//!   ops, `concat` and `channel_map`, have one per input count).
//! - Attributes are leaves ([`Lnir::Attr`]) so that patterns bind them to variables
//!   (`(conv ?a ?x ?w ?b)`) and appliers read them from the e-class analysis.
//! - **Weights never enter the e-graph**: a constant is the leaf `Const(id)` naming an entry
//!   of the constant pool, which lives in the analysis ([`super::analysis::ConstPool`]).
//!   Graph inputs are `Input(index)`.
//! - Multi-output ops (`split`) are one e-class for the tuple; `Proj(k, tuple)` selects
//!   output `k`.
//!
//! Text form (patterns, explanations): op tags as in `.lnir` (`conv`, `batch_norm`), `none`
//! for an absent input, `projK` for projections, `inK` / `@K` for inputs / constants.

use egg::{FromOp, Id, Language};
use lnc_ir::{BinaryOp, Op, UnaryOp};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An attribute payload: the op with its attributes. Equality, order and hash use a
/// canonical text key (the op's debug form; distinct attributes give distinct keys, except
/// NaNs of different payload, which no attribute of a valid graph carries).
#[derive(Clone)]
pub struct Attr(Arc<(Op, String)>);

impl Attr {
    pub fn new(op: Op) -> Attr {
        let key = format!("{op:?}");
        Attr(Arc::new((op, key)))
    }

    pub fn op(&self) -> &Op {
        &self.0 .0
    }

    fn key(&self) -> &str {
        &self.0 .1
    }
}

impl fmt::Debug for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl PartialEq for Attr {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}

impl Eq for Attr {}

impl PartialOrd for Attr {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Attr {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(o.key())
    }
}

impl Hash for Attr {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}

/// An e-node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lnir {
    /// Graph input `k` (in graph-input order).
    Input(u32),
    /// Constant-pool entry `k`.
    Const(u32),
    /// The attributes of an op.
    Attr(Attr),
    /// An optional input that is not given.
    Absent,
    /// Output `k` of a multi-output op.
    Proj(u16, [Id; 1]),
    /// An op: its tag ([`Op::name`]) and children (`[attr] ++ inputs`).
    Op(&'static str, Vec<Id>),
}

/// What e-nodes are indexed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Disc {
    Input(u32),
    Const(u32),
    Attr,
    Absent,
    Proj(u16),
    Op(&'static str),
}

impl Language for Lnir {
    type Discriminant = Disc;

    fn discriminant(&self) -> Disc {
        match self {
            Lnir::Input(i) => Disc::Input(*i),
            Lnir::Const(c) => Disc::Const(*c),
            Lnir::Attr(_) => Disc::Attr,
            Lnir::Absent => Disc::Absent,
            Lnir::Proj(k, _) => Disc::Proj(*k),
            Lnir::Op(t, _) => Disc::Op(t),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Lnir::Op(a, x), Lnir::Op(b, y)) => a == b && x.len() == y.len(),
            (Lnir::Proj(a, _), Lnir::Proj(b, _)) => a == b,
            (Lnir::Attr(a), Lnir::Attr(b)) => a == b,
            (a, b) => a == b,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Lnir::Op(_, c) => c,
            Lnir::Proj(_, c) => c,
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Lnir::Op(_, c) => c,
            Lnir::Proj(_, c) => c,
            _ => &mut [],
        }
    }
}

impl fmt::Display for Lnir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lnir::Input(i) => write!(f, "in{i}"),
            Lnir::Const(c) => write!(f, "@{c}"),
            Lnir::Attr(a) => write!(f, "{a:?}"),
            Lnir::Absent => f.write_str("none"),
            Lnir::Proj(k, _) => write!(f, "proj{k}"),
            Lnir::Op(t, _) => f.write_str(t),
        }
    }
}

/// Error for a pattern atom that names no e-node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an lnc e-node")]
pub struct UnknownNode(pub String);

impl FromOp for Lnir {
    type Error = UnknownNode;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, UnknownNode> {
        let bad = || UnknownNode(op.to_string());
        if op == "none" && children.is_empty() {
            return Ok(Lnir::Absent);
        }
        if let Some(k) = op.strip_prefix("proj") {
            let k: u16 = k.parse().map_err(|_| bad())?;
            return match children[..] {
                [c] => Ok(Lnir::Proj(k, [c])),
                _ => Err(bad()),
            };
        }
        let tag = TAGS.iter().find(|t| **t == op).ok_or_else(bad)?;
        Ok(Lnir::Op(tag, children))
    }
}

/// Every op tag, for parsing patterns.
pub use lnc_ir::op::OP_NAMES as TAGS;

/// The ops that have no attributes: their tag determines them.
fn attr_free_ops() -> impl Iterator<Item = Op> {
    use UnaryOp as U;
    [
        U::Relu,
        U::Sigmoid,
        U::Tanh,
        U::HardSwish,
        U::Exp,
        U::Log,
        U::Sqrt,
        U::Neg,
        U::Abs,
        U::Floor,
        U::Ceil,
        U::Round,
        U::Reciprocal,
        U::Sign,
        U::Softplus,
        U::Softsign,
    ]
    .into_iter()
    .map(Op::Unary)
    .chain(
        [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
            BinaryOp::Pow,
        ]
        .into_iter()
        .map(Op::Binary),
    )
    .chain([
        Op::Identity,
        Op::PRelu,
        Op::GlobalAveragePool,
        Op::GlobalMaxPool,
        Op::MatMul,
        Op::QLinearMatMul,
        Op::MatMulInteger,
        Op::BipolarQuant,
    ])
}

/// Whether an op's e-node has an attribute child.
pub fn has_attr(op: &Op) -> bool {
    !matches!(
        op,
        Op::Identity
            | Op::Unary(_)
            | Op::PRelu
            | Op::Binary(_)
            | Op::GlobalAveragePool
            | Op::GlobalMaxPool
            | Op::MatMul
            | Op::QLinearMatMul
            | Op::MatMulInteger
            | Op::BipolarQuant
    )
}

/// The op of an attribute-free tag.
pub fn attr_free_op(tag: &str) -> Option<Op> {
    attr_free_ops().find(|op| op.name() == tag)
}

/// How many inputs an op's e-node has: the largest accepted count for ops with optional
/// trailing inputs, else the given count.
pub fn padded_arity(op: &Op, given: usize) -> usize {
    match op.arity() {
        lnc_ir::op::Arity::Range(_, hi) => hi,
        _ => given,
    }
}

/// The tag of an op as a `'static` string.
pub fn tag(op: &Op) -> &'static str {
    op.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_name_is_a_tag_and_attr_free_ops_round_trip() {
        for op in attr_free_ops() {
            assert!(!has_attr(&op), "{op:?}");
            assert_eq!(attr_free_op(op.name()), Some(op.clone()));
            assert!(TAGS.contains(&op.name()));
        }
        assert!(attr_free_op("conv").is_none());
    }

    #[test]
    fn patterns_parse() {
        let p: egg::Pattern<Lnir> = "(relu (conv ?a ?x ?w none))".parse().unwrap();
        assert_eq!(p.to_string(), "(relu (conv ?a ?x ?w none))");
        let p: egg::Pattern<Lnir> = "(proj1 (split ?a ?x))".parse().unwrap();
        assert_eq!(p.to_string(), "(proj1 (split ?a ?x))");
        assert!("(frobnicate ?x)".parse::<egg::Pattern<Lnir>>().is_err());
    }
}
