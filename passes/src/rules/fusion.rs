//! Fusion: convolution epilogues, depthwise + pointwise blocks, the classifier head.
//!
//! - `fuse-conv-<act>`: an activation of a conv (or of a fused conv whose epilogue has no
//!   activation yet) becomes the conv's epilogue: ReLU, Clip (ReLU6), HardSwish,
//!   HardSigmoid, Sigmoid, LeakyReLU, PReLU, and SiLU written as `x * sigmoid(x)` (either
//!   operand order, as EfficientNet exports it).
//! - `fuse-residual-add`: `add(r, conv(..))` (either operand) adds `r` in the epilogue of
//!   the conv that produces the other operand: before the activation when the conv has
//!   none yet (MobileNetV2's linear bottleneck; and a later ReLU then fuses after the add,
//!   ResNet style), after it otherwise (`add(relu(conv), r)`).
//! - `fuse-dw-pw`: a 1x1 conv (plain or fused, no PReLU) reading a depthwise conv (plain
//!   or fused with an activation, no residual) is one `dw_pw` block. Whether it pays is the
//!   target cost model's decision: the CPU keeps the intermediate in cache, the FPGA would
//!   serialise two pipelined modules.
//! - `fuse-classifier`: `GlobalAveragePool → Reshape [N, C] → Gemm` is one `classifier`;
//!   `fuse-classifier-mean`: the same with `ReduceMean` over the spatial axes (torchvision's
//!   ShuffleNetV2 head, `x.mean([2, 3])`).

use super::{
    attr, bound, depends_on, ty, used_only_by, Apply, ConvNode, Made, Make, Out, Rw, Tagged,
};
use crate::egraph::lang::Lnir;
use crate::egraph::EG;
use egg::{rewrite as rw, Id, Subst};
use lnc_ir::{Activation, Conv2d, Epilogue, Op, Residual};

/// Where an epilogue rule gets its activation.
#[derive(Debug, Clone, Copy)]
pub enum ActFrom {
    /// A fixed activation (attribute-free ops).
    Fixed(Activation),
    /// The attribute of the op bound to `?a` (clip, hard_sigmoid, leaky_relu).
    Attr,
    /// PReLU with the slope bound to `?s`.
    PRelu,
}

/// `fuse-conv-<act>`: the activation of `?y`'s conv.
pub struct FuseAct(pub ActFrom);

impl Make for FuseAct {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        let Some(y) = bound(s, "?y") else {
            return vec![];
        };
        let act = match self.0 {
            ActFrom::Fixed(a) => a,
            ActFrom::Attr => match bound(s, "?a")
                .and_then(|a| attr(eg, a))
                .and_then(|op| Activation::from_op(&op))
            {
                Some(a) => a,
                None => return vec![],
            },
            ActFrom::PRelu => Activation::PRelu,
        };
        let slope = match self.0 {
            ActFrom::PRelu => match bound(s, "?s") {
                Some(s) => Some(s),
                None => return vec![],
            },
            _ => None,
        };
        // SiLU reads `y` twice: through the sigmoid and directly.
        let sig = eg.lookup(Lnir::Op("sigmoid", vec![eg.find(y)]));
        let allowed: Vec<Id> = match (self.0, sig) {
            (ActFrom::Fixed(Activation::Silu), Some(sig)) if used_only_by(eg, sig, &[root]) => {
                vec![root, sig]
            }
            _ => vec![root],
        };
        if !used_only_by(eg, y, &allowed) {
            return vec![];
        }
        let mut outs = Vec::new();
        // The op e-node being absorbed, for provenance: the matched root's activation op.
        let consumer: Vec<Lnir> = eg[root]
            .nodes
            .iter()
            .filter(|n| n.children().contains(&eg.find(y)))
            .take(1)
            .cloned()
            .collect();
        for c in ConvNode::all_in(eg, y) {
            if c.epilogue.act != Activation::Identity || c.epilogue.residual == Residual::AfterAct {
                continue;
            }
            let Some(b) = c.bias(eg) else { continue };
            let e = Epilogue {
                act,
                residual: c.epilogue.residual,
            };
            let mut sources = vec![c.node.clone()];
            sources.extend(consumer.iter().cloned());
            outs.push(Out::Node {
                into: root,
                made: Made {
                    op: Op::FusedConv {
                        conv: c.conv.clone(),
                        epilogue: e,
                    },
                    inputs: c.fused_inputs(b, &e, c.r, slope),
                    sources,
                },
            });
        }
        outs
    }
}

use egg::Language;

/// `fuse-residual-add`: `add(?p, ?q)` with a conv on either side.
pub struct FuseResidual;

impl Make for FuseResidual {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        let (Some(p), Some(q)) = (bound(s, "?p"), bound(s, "?q")) else {
            return vec![];
        };
        let (p, q) = (eg.find(p), eg.find(q));
        let Some(out) = ty(eg, root) else {
            return vec![];
        };
        if p == q || ty(eg, p).as_ref() != Some(&out) || ty(eg, q).as_ref() != Some(&out) {
            return vec![];
        }
        let add = Lnir::Op("add", vec![p, q]);
        let mut outs = Vec::new();
        for (y, r) in [(q, p), (p, q)] {
            // The residual must not itself read the conv (it would be computed twice).
            if !used_only_by(eg, y, &[root]) || depends_on(eg, r, y, 6) {
                continue;
            }
            for c in ConvNode::all_in(eg, y) {
                if c.epilogue.residual != Residual::None {
                    continue;
                }
                let Some(b) = c.bias(eg) else { continue };
                let residual = if c.epilogue.act == Activation::Identity {
                    Residual::BeforeAct
                } else {
                    Residual::AfterAct
                };
                let e = Epilogue {
                    act: c.epilogue.act,
                    residual,
                };
                outs.push(Out::Node {
                    into: root,
                    made: Made {
                        op: Op::FusedConv {
                            conv: c.conv.clone(),
                            epilogue: e,
                        },
                        inputs: c.fused_inputs(b, &e, Some(r), c.slope),
                        sources: vec![c.node.clone(), add.clone()],
                    },
                });
            }
        }
        outs
    }
}

fn is_pointwise(c: &Conv2d) -> bool {
    *c == lnc_ir::shape::pointwise(1)
}

/// `fuse-dw-pw`: every pointwise conv of the class over a depthwise conv.
pub struct FuseDwPw;

impl Make for FuseDwPw {
    fn make(&self, eg: &mut EG, root: Id, _: &Subst) -> Vec<Out> {
        let mut outs = Vec::new();
        for pw in ConvNode::all_in(eg, root) {
            if !is_pointwise(&pw.conv)
                || pw.epilogue.act.has_slope()
                || !used_only_by(eg, pw.x, &[root])
            {
                continue;
            }
            for dw in ConvNode::all_in(eg, pw.x) {
                let cin = ty(eg, dw.x).and_then(|t| t.shape.get(1).copied());
                if cin != Some(dw.conv.group)
                    || dw.conv.group < 2
                    || dw.epilogue.residual != Residual::None
                    || dw.epilogue.act.has_slope()
                {
                    continue;
                }
                let (Some(db), Some(pb)) = (dw.bias(eg), pw.bias(eg)) else {
                    continue;
                };
                let mut inputs = vec![dw.x, dw.w, db, pw.w, pb];
                inputs.extend(pw.r);
                outs.push(Out::Node {
                    into: root,
                    made: Made {
                        op: Op::DwPw {
                            dw: dw.conv.clone(),
                            dw_act: dw.epilogue.act,
                            epilogue: pw.epilogue,
                        },
                        inputs,
                        sources: vec![dw.node.clone(), pw.node.clone()],
                    },
                });
            }
        }
        outs
    }
}

/// `fuse-classifier`.
pub struct FuseClassifier;

impl Make for FuseClassifier {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (g, r, x, w, c) = (
                bound(s, "?g")?,
                bound(s, "?s")?,
                bound(s, "?x")?,
                bound(s, "?w")?,
                bound(s, "?c")?,
            );
            let Op::Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
            } = attr(eg, g)?
            else {
                return None;
            };
            let xt = ty(eg, x)?;
            if xt.rank() < 3 || xt.dtype != lnc_ir::DType::F32 {
                return None;
            }
            // The pooled value is `reshape(global_average_pool(x), [N, C])` or
            // `reduce_mean(x, spatial axes, keepdims = false)`.
            let pooled = match attr(eg, r)? {
                Op::Reshape { shape } if shape == xt.shape[..2] => "reshape",
                Op::Reduce {
                    kind: lnc_ir::ReduceKind::Mean,
                    axes,
                    keepdims: false,
                } if axes == (2..xt.rank()).collect::<Vec<_>>() => "reduce_mean",
                _ => return None,
            };
            let mut inputs = vec![x, w];
            if !eg[c].data.absent {
                inputs.push(c);
            }
            let mut sources = Vec::new();
            let pool_id = if pooled == "reshape" {
                let gap = Lnir::Op("global_average_pool", vec![eg.find(x)]);
                let gap_id = eg.lookup(gap.clone())?;
                sources.push(gap);
                let reshape = Lnir::Op("reshape", vec![eg.find(r), gap_id]);
                let id = eg.lookup(reshape.clone())?;
                sources.push(reshape);
                if !used_only_by(eg, gap_id, &[id]) {
                    return None;
                }
                id
            } else {
                let mean = Lnir::Op("reduce_mean", vec![eg.find(r), eg.find(x)]);
                let id = eg.lookup(mean.clone())?;
                sources.push(mean);
                id
            };
            if !used_only_by(eg, pool_id, &[root]) {
                return None;
            }
            let gemm = Lnir::Op("gemm", vec![eg.find(g), pool_id, eg.find(w), eg.find(c)]);
            sources.push(gemm);
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::Classifier {
                        alpha,
                        beta,
                        trans_b,
                    },
                    inputs,
                    sources,
                },
            }])
        })()
        .unwrap_or_default()
    }
}

pub fn rules() -> Vec<Rw> {
    use ActFrom::*;
    vec![
        rw!("fuse-conv-relu";         "(relu ?y)"              => { Apply(FuseAct(Fixed(Activation::Relu))) }),
        rw!("fuse-conv-clip";         "(clip ?a ?y)"           => { Apply(FuseAct(Attr)) }),
        rw!("fuse-conv-hard-swish";   "(hard_swish ?y)"        => { Apply(FuseAct(Fixed(Activation::HardSwish))) }),
        rw!("fuse-conv-hard-sigmoid"; "(hard_sigmoid ?a ?y)"   => { Apply(FuseAct(Attr)) }),
        rw!("fuse-conv-sigmoid";      "(sigmoid ?y)"           => { Apply(FuseAct(Fixed(Activation::Sigmoid))) }),
        rw!("fuse-conv-leaky-relu";   "(leaky_relu ?a ?y)"     => { Apply(FuseAct(Attr)) }),
        rw!("fuse-conv-prelu";        "(prelu ?y ?s)"          => { Apply(FuseAct(PRelu)) }),
        rw!("fuse-conv-silu";         "(mul ?y (sigmoid ?y))"  => { Apply(FuseAct(Fixed(Activation::Silu))) }),
        rw!("fuse-conv-silu-rev";     "(mul (sigmoid ?y) ?y)"  => { Apply(FuseAct(Fixed(Activation::Silu))) }),
        rw!("fuse-residual-add";      "(add ?p ?q)"            => { Apply(FuseResidual) }),
        rw!("fuse-dw-pw";             { Tagged(&["conv", "fused_conv"]) } => { Apply(FuseDwPw) }),
        rw!("fuse-classifier";        "(gemm ?g (reshape ?s (global_average_pool ?x)) ?w ?c)" => { Apply(FuseClassifier) }),
        rw!("fuse-classifier-mean";   "(gemm ?g (reduce_mean ?s ?x) ?w ?c)"                   => { Apply(FuseClassifier) }),
    ]
}
