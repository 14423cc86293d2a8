//! Parameter and multiply-accumulate (MAC) counts, per layer and in total.
//!
//! Definitions (the numbers `lnc inspect` reports):
//! - **params**: elements of the constant-pool entries that some `const` node uses, each
//!   entry counted once (weights, biases, BN statistics, PReLU slopes, quantization scales,
//!   shape-like constants: everything the model stores).
//! - **weight_params**: elements of the constants in the weight and bias slots of compute
//!   ops ([`Op::is_compute`]), each pool entry counted once; quantization parameters
//!   (scales, zero points) are not weights; in a QDQ graph the quantized constant behind a
//!   weight's `DequantizeLinear` is the weight.
//! - per layer, **params**: elements of the node's constant inputs, without quantization
//!   parameter slots (a pool entry shared by two layers counts in both).
//! - **MACs** of compute nodes, from their input and output shapes:
//!   conv `N*M*Ho*Wo*(C/group)*kh*kw`; conv-transpose `N*C*H*W*(M/group)*kh*kw` (every input
//!   pixel is scattered through the kernel); Gemm `M*N*K`; MatMul `prod(batch)*M*N*K`.
//!   Integer and QLinear variants count like their float op.
//! - fused ops count as what they fuse: `fused_conv` like its conv, `classifier` like its
//!   Gemm, `dw_pw` as its depthwise part plus its pointwise part (split between the two
//!   kinds in `macs_by_kind`; the layer's `kind` is pointwise).
//! - MAC kinds: **depthwise** is a conv with `group > 1`, `group == C_in` and `C_out` a
//!   multiple of `group` (one input channel per group); **pointwise** is a 1x1 conv with
//!   `group == 1`; **other_conv** is every other conv (group conv, ConvTranspose, KxK);
//!   **gemm** is Gemm / MatMul and their integer / QLinear variants.
//!
//! Every count saturates at `u64::MAX` instead of overflowing.

use crate::error::Result;
use crate::graph::{ConstId, Graph, NodeId, Value};
use crate::op::Op;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The category of a compute layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MacKind {
    Depthwise,
    Pointwise,
    OtherConv,
    Gemm,
}

impl MacKind {
    /// The name used in reports (`depthwise`, `pointwise`, `other_conv`, `gemm`).
    pub fn name(self) -> &'static str {
        match self {
            MacKind::Depthwise => "depthwise",
            MacKind::Pointwise => "pointwise",
            MacKind::OtherConv => "other_conv",
            MacKind::Gemm => "gemm",
        }
    }
}

/// MACs split by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacsByKind {
    pub depthwise: u64,
    pub pointwise: u64,
    pub other_conv: u64,
    pub gemm: u64,
}

impl MacsByKind {
    fn add(&mut self, kind: MacKind, macs: u64) {
        let slot = match kind {
            MacKind::Depthwise => &mut self.depthwise,
            MacKind::Pointwise => &mut self.pointwise,
            MacKind::OtherConv => &mut self.other_conv,
            MacKind::Gemm => &mut self.gemm,
        };
        *slot = slot.saturating_add(macs);
    }
}

/// Statistics of one (non-input, non-constant) node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStats {
    pub name: String,
    /// [`Op::name`].
    pub op: String,
    /// Output element types as displayed (`f32`, `i8`, `i4`, ...), one per output.
    pub output_dtypes: Vec<String>,
    /// Output shapes, one per output.
    pub output_shapes: Vec<Vec<usize>>,
    /// Elements of the constant inputs (without quantization parameters).
    pub params: u64,
    pub macs: u64,
    /// Set for compute layers.
    pub kind: Option<MacKind>,
}

/// Whole-graph statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub params: u64,
    pub weight_params: u64,
    pub macs: u64,
    pub macs_by_kind: MacsByKind,
    /// Op name -> number of nodes (inputs and constants excluded).
    pub ops: BTreeMap<String, u64>,
    /// Every node but inputs and constants, in topological order.
    pub layers: Vec<LayerStats>,
}

/// Whether input `slot` of `op` is a quantization parameter (scale or zero point).
fn is_qparam_slot(op: &Op, slot: usize) -> bool {
    match op {
        Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. }
        | Op::Quant { .. }
        | Op::Trunc { .. } => slot == 1 || slot == 2,
        Op::BipolarQuant => slot == 1,
        Op::QLinearConv(_) | Op::QLinearMatMul => matches!(slot, 1 | 2 | 4 | 5 | 6 | 7),
        Op::ConvInteger(_) | Op::MatMulInteger => slot >= 2,
        _ => false,
    }
}

/// Whether input `slot` of a compute op holds weights or a bias (when constant).
fn is_weight_slot(op: &Op, slot: usize) -> bool {
    match op {
        Op::Conv(_) | Op::ConvTranspose(_) => slot == 1 || slot == 2,
        Op::Gemm { .. } => slot <= 2,
        Op::MatMul => slot <= 1,
        Op::QLinearConv(_) => slot == 3 || slot == 8,
        Op::QLinearMatMul => slot == 0 || slot == 3,
        Op::ConvInteger(_) => slot == 1,
        Op::MatMulInteger => slot <= 1,
        Op::FusedConv { .. } => slot == 1 || slot == 2,
        Op::DwPw { .. } => (1..=4).contains(&slot),
        Op::Classifier { .. } => slot == 1 || slot == 2,
        _ => false,
    }
}

fn prod(dims: &[usize]) -> u64 {
    dims.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64))
}

/// MACs and kind of a compute node; `None` for other nodes or when a shape is missing.
fn node_macs(g: &Graph, id: NodeId) -> Option<(u64, MacKind)> {
    node_macs_split(g, id).map(|v| {
        let total = v.iter().fold(0u64, |a, (m, _)| a.saturating_add(*m));
        (total, v.last().map_or(MacKind::OtherConv, |(_, k)| *k))
    })
}

/// MACs of a compute node by part: one part, or two for `DwPw` (depthwise, pointwise).
fn node_macs_split(g: &Graph, id: NodeId) -> Option<Vec<(u64, MacKind)>> {
    let node = g.node(id);
    let ins = g.node_inputs(id);
    let in_shape = |slot: usize| -> Option<&[usize]> {
        let v = ins.get(slot)?;
        g.try_value_type(*v).ok().map(|t| t.shape.as_slice())
    };
    let out = node.outputs.first()?.shape.as_slice();
    let conv = |c: &crate::op::Conv2d, w_slot: usize| -> Option<(u64, MacKind)> {
        let (x, w) = (in_shape(0)?, in_shape(w_slot)?);
        if x.len() != 4 || w.len() != 4 || out.len() != 4 {
            return None;
        }
        let (c_in, c_out) = (x[1], out[1]);
        let macs = prod(out).saturating_mul(prod(&w[1..]));
        let kind = if c.group > 1 && c.group == c_in && c_out % c.group == 0 {
            MacKind::Depthwise
        } else if c.group == 1 && c.kernel == [1, 1] {
            MacKind::Pointwise
        } else {
            MacKind::OtherConv
        };
        Some((macs, kind))
    };
    let one = |v: Option<(u64, MacKind)>| v.map(|p| vec![p]);
    match &node.op {
        Op::Conv(c) | Op::ConvInteger(c) | Op::FusedConv { conv: c, .. } => one(conv(c, 1)),
        Op::QLinearConv(c) => one(conv(c, 3)),
        Op::DwPw { .. } => {
            // Depthwise: every output element of the intermediate takes (C/group)*kh*kw MACs;
            // pointwise: every output element takes C_mid MACs.
            let (dw_w, pw_w) = (in_shape(1)?, in_shape(3)?);
            if dw_w.len() != 4 || pw_w.len() != 4 || out.len() != 4 {
                return None;
            }
            let mid = prod(&[out[0], pw_w[1], out[2], out[3]]);
            let dw = mid.saturating_mul(prod(&dw_w[1..]));
            let pw = prod(out).saturating_mul(pw_w[1] as u64);
            Some(vec![(dw, MacKind::Depthwise), (pw, MacKind::Pointwise)])
        }
        Op::Classifier { trans_b, .. } => {
            let w = in_shape(1)?;
            let k = *if *trans_b { w.get(1)? } else { w.first()? };
            Some(vec![(prod(out).saturating_mul(k as u64), MacKind::Gemm)])
        }
        Op::ConvTranspose(_) => {
            let (x, w) = (in_shape(0)?, in_shape(1)?);
            if w.len() != 4 {
                return None;
            }
            Some(vec![(
                prod(x).saturating_mul(prod(&w[1..])),
                MacKind::OtherConv,
            )])
        }
        Op::Gemm { trans_a, .. } => {
            let a = in_shape(0)?;
            let k = *if *trans_a { a.first()? } else { a.get(1)? };
            Some(vec![(prod(out).saturating_mul(k as u64), MacKind::Gemm)])
        }
        Op::MatMul | Op::QLinearMatMul | Op::MatMulInteger => {
            let k = *in_shape(0)?.last()?;
            Some(vec![(prod(out).saturating_mul(k as u64), MacKind::Gemm)])
        }
        _ => None,
    }
}

/// Compute the statistics of a graph.
///
/// # Errors
/// When the graph has a cycle.
pub fn stats(g: &Graph) -> Result<Stats> {
    let order = g.topo_order()?;
    let mut used_consts: BTreeSet<ConstId> = BTreeSet::new();
    let mut weight_consts: BTreeSet<ConstId> = BTreeSet::new();
    let mut ops: BTreeMap<String, u64> = BTreeMap::new();
    let mut layers = Vec::new();
    let mut macs_by_kind = MacsByKind::default();
    let mut macs_total: u64 = 0;
    for &id in &order {
        let node = g.node(id);
        match node.op {
            Op::Input => continue,
            Op::Const(c) => {
                used_consts.insert(c);
                continue;
            }
            _ => {}
        }
        let mut params: u64 = 0;
        for (slot, v) in g.node_inputs(id).into_iter().enumerate() {
            if node.op.is_compute() && is_weight_slot(&node.op, slot) {
                if let Some(c) = dequantized_const(g, v) {
                    weight_consts.insert(c);
                }
            }
            let Some(Op::Const(c)) = g.contains(v.node).then(|| &g.node(v.node).op) else {
                continue;
            };
            if is_qparam_slot(&node.op, slot) {
                continue;
            }
            if let Some(t) = g.consts().get(c.0 as usize) {
                params = params.saturating_add(t.numel() as u64);
            }
            if node.op.is_compute() && is_weight_slot(&node.op, slot) {
                weight_consts.insert(*c);
            }
        }
        let (macs, kind) = match node_macs(g, id) {
            Some((m, k)) => (m, Some(k)),
            None => (0, None),
        };
        for (m, k) in node_macs_split(g, id).unwrap_or_default() {
            macs_by_kind.add(k, m);
            macs_total = macs_total.saturating_add(m);
        }
        *ops.entry(node.op.name().to_string()).or_default() += 1;
        layers.push(LayerStats {
            name: node.name.clone(),
            op: node.op.name().to_string(),
            output_dtypes: node.outputs.iter().map(|t| t.dtype.to_string()).collect(),
            output_shapes: node.outputs.iter().map(|t| t.shape.clone()).collect(),
            params,
            macs,
            kind,
        });
    }
    let count = |set: &BTreeSet<ConstId>| {
        set.iter()
            .filter_map(|c| g.consts().get(c.0 as usize))
            .fold(0u64, |a, t| a.saturating_add(t.numel() as u64))
    };
    Ok(Stats {
        params: count(&used_consts),
        weight_params: count(&weight_consts),
        macs: macs_total,
        macs_by_kind,
        ops,
        layers,
    })
}

/// The constant a `DequantizeLinear` producing `v` reads (a QDQ graph's quantized weight).
fn dequantized_const(g: &Graph, v: Value) -> Option<ConstId> {
    let n = g.contains(v.node).then(|| g.node(v.node))?;
    if !matches!(n.op, Op::DequantizeLinear { .. }) {
        return None;
    }
    let x = *g.node_inputs(v.node).first()?;
    match g.contains(x.node).then(|| &g.node(x.node).op)? {
        Op::Const(c) => Some(*c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::op::{BinaryOp, Conv2d, UnaryOp};
    use crate::tensor::Tensor;
    use crate::types::TensorType;

    fn w(g: &mut Graph, name: &str, shape: &[usize]) -> crate::Value {
        let n = shape.iter().product();
        g.add_const(name, Tensor::from_f32(shape, vec![0.5; n]).unwrap())
    }

    fn conv(k: usize, s: usize, p: usize, group: usize) -> Op {
        Op::Conv(Conv2d {
            kernel: [k, k],
            strides: [s, s],
            pads: [p; 4],
            dilations: [1, 1],
            group,
        })
    }

    /// A MobileNet-style block: 3x3 stem, depthwise 3x3, pointwise 1x1, group 1x1, FC.
    fn block() -> Graph {
        let mut g = Graph::new("block");
        let x = g.add_input("x", TensorType::f32([1, 3, 16, 16])).unwrap();
        let w0 = w(&mut g, "stem.w", &[8, 3, 3, 3]);
        let b0 = w(&mut g, "stem.b", &[8]);
        let y = g.add("stem", conv(3, 2, 1, 1), &[x, w0, b0]).unwrap();
        let y = g.add("relu", Op::Unary(UnaryOp::Relu), &[y]).unwrap();
        let w1 = w(&mut g, "dw.w", &[8, 1, 3, 3]);
        let y = g.add("dw", conv(3, 1, 1, 8), &[y, w1]).unwrap();
        let w2 = w(&mut g, "pw.w", &[16, 8, 1, 1]);
        let y = g.add("pw", conv(1, 1, 0, 1), &[y, w2]).unwrap();
        let w3 = w(&mut g, "gc.w", &[16, 4, 1, 1]);
        let y = g.add("gc", conv(1, 1, 0, 4), &[y, w3]).unwrap();
        let y = g.add("gap", Op::GlobalAveragePool, &[y]).unwrap();
        let y = g
            .add("flat", Op::Reshape { shape: vec![1, 16] }, &[y])
            .unwrap();
        let fw = w(&mut g, "fc.w", &[10, 16]);
        let fb = w(&mut g, "fc.b", &[10]);
        let gemm = Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        };
        let y = g.add("fc", gemm, &[y, fw, fb]).unwrap();
        let mw = w(&mut g, "mm.w", &[10, 4]);
        let y2 = g.add("mm", Op::MatMul, &[y, mw]).unwrap();
        let y3 = g.add("add", Op::Binary(BinaryOp::Add), &[y, y]).unwrap();
        g.add_output("y2", y2);
        g.add_output("y3", y3);
        g
    }

    #[test]
    fn counts_params_and_macs_by_kind() {
        let s = stats(&block()).unwrap();
        let stem = 8 * 8 * 8 * 3 * 9;
        let dw = 8 * 8 * 8 * 9;
        let pw = 16 * 8 * 8 * 8;
        let gc = 16 * 8 * 8 * 4;
        let fc = 10 * 16;
        let mm = 4 * 10;
        assert_eq!(
            s.macs_by_kind,
            MacsByKind {
                depthwise: dw,
                pointwise: pw,
                other_conv: stem + gc,
                gemm: fc + mm
            }
        );
        assert_eq!(s.macs, stem + dw + pw + gc + fc + mm);
        let params = 8 * 27 + 8 + 72 + 128 + 64 + 160 + 10 + 40;
        assert_eq!(s.params, params);
        assert_eq!(s.weight_params, params);
        assert_eq!(s.ops["conv"], 4);
        assert_eq!(
            s.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>()[..3],
            ["stem", "relu", "dw"]
        );
        let stem_l = &s.layers[0];
        assert_eq!(
            (stem_l.params, stem_l.macs, stem_l.kind),
            (8 * 27 + 8, stem, Some(MacKind::OtherConv))
        );
        assert_eq!(stem_l.output_shapes, vec![vec![1, 8, 8, 8]]);
    }

    #[test]
    fn quantized_layers_count_weights_not_scales() {
        let mut g = Graph::new("q");
        let x = g
            .add_input("x", TensorType::new(DType::U8, [1, 4, 4, 4]))
            .unwrap();
        let s = g.add_const("s", Tensor::from_f32(&[], vec![0.1]).unwrap());
        let zu = g.add_const("zu", Tensor::from_int(DType::U8, &[], vec![0]).unwrap());
        let wq = g.add_const(
            "w",
            Tensor::from_int(DType::I8, &[4, 1, 3, 3], vec![1; 36]).unwrap(),
        );
        let zi = g.add_const("zi", Tensor::from_int(DType::I8, &[], vec![0]).unwrap());
        let c = Conv2d {
            kernel: [3, 3],
            strides: [1, 1],
            pads: [1; 4],
            dilations: [1, 1],
            group: 4,
        };
        let y = g
            .add("qdw", Op::QLinearConv(c), &[x, s, zu, wq, s, zi, s, zu])
            .unwrap();
        g.add_output("y", y);
        let st = stats(&g).unwrap();
        assert_eq!(st.params, 36 + 3);
        assert_eq!(st.weight_params, 36);
        assert_eq!(st.layers[0].params, 36);
        assert_eq!(st.macs_by_kind.depthwise, 4 * 16 * 9);
    }

    #[test]
    fn conv_transpose_and_batched_matmul() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::f32([1, 4, 3, 3])).unwrap();
        let wt = w(&mut g, "wt", &[4, 2, 2, 2]);
        let ct = crate::op::ConvTranspose2d {
            kernel: [2, 2],
            strides: [2, 2],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
            output_padding: [0, 0],
        };
        let y = g.add("up", Op::ConvTranspose(ct), &[x, wt]).unwrap();
        let a = g.add_input("a", TensorType::f32([2, 3, 5, 7])).unwrap();
        let b = w(&mut g, "b", &[7, 6]);
        let m = g.add("mm", Op::MatMul, &[a, b]).unwrap();
        g.add_output("y", y);
        g.add_output("m", m);
        let st = stats(&g).unwrap();
        assert_eq!(st.macs_by_kind.other_conv, 36 * 8);
        assert_eq!(st.macs_by_kind.gemm, 2 * 3 * 5 * 6 * 7);
    }
}
