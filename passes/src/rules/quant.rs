//! Integer lowering of quantized graphs.
//!
//! A QDQ graph (ONNX Runtime's `quantize_static` QDQ format, PyTorch and TFLite exports)
//! computes in float between `DequantizeLinear` (DQ) and `QuantizeLinear` (Q). These rules
//! replace a float op in its Q/DQ frame by the integer op that ONNX Runtime itself runs for
//! it after its QDQ fusions: int32 accumulation of `(x - x_zp) * (w - w_zp)` and one
//! requantization `saturate(round_half_even(acc as f32 * (x_scale * w_scale / y_scale)) +
//! y_zp)` (`lnc_ir::interp`, QLinearConv). The CPU backend runs that bit-exactly with
//! integer kernels.
//!
//! - `qdq-conv`: `Q(Conv(DQ(x), DQ(W), B))` → `QLinearConv(x, .., W, .., b32)`;
//! - `qdq-gemm`: `Q(Gemm(DQ(x), DQ(W), C))` (alpha = beta = 1, no transA) → a 1x1
//!   `QLinearConv` between two reshapes (`x` as `[M, K, 1, 1]`, `W` as `[N, K, 1, 1]`);
//! - `qlinear-matmul-conv`: `QLinearMatMul(a, .., B, ..)` with a constant 2-D `B` and
//!   per-tensor `a` / `y` parameters → the same 1x1 `QLinearConv` (exact: QLinearMatMul
//!   requantizes the same way);
//! - `quantize-moves-integer`: `Q(op(DQ(a), ..))` is `op(a, ..)` for data movement (reshape,
//!   transpose, slice, expand, concat, channel shuffle / map) and max pooling when every DQ
//!   has the Q's parameters (exact), so those run on bytes; a Concat with some inputs
//!   quantized otherwise keeps `Q(DQ(b))` on those (a requantization, exact);
//! - `quantize-absorbs-relu`, `quantize-absorbs-clip`: `Q(Relu(v))` is `Q(v)` when the
//!   output zero point is the type's minimum (saturation clamps at the same place), and
//!   `Q(Clip(v, lo, hi))` is `Q(v)` when `Q(lo)` and `Q(hi)` saturate. These are exact.
//!
//! Conditions of the integer rules: `x`, `W` and the output 8-bit (`u8`/`i8`); `W`
//! constant; `x` and the output quantized per tensor, `W` per tensor or per output
//! channel. The bias `B` / `C` may be absent, a constant float (quantized with scale
//! `x_scale * w_scale[m]`, as ONNX Runtime's quantizer does), or `DQ(int32)`: taken as is
//! when its scale is exactly `x_scale * w_scale[m]` (f32, the quantizer's value), else
//! requantized to that scale. A bias that does not fit int32 leaves the graph unchanged.
//!
//! `qdq-conv` and `qdq-gemm` are not exact rewrites of the float semantics: the float graph
//! rounds the accumulated sum to f32 and divides by the output scale, the integer op
//! multiplies by one rounded multiplier. The results differ by at most one quantization step
//! on values within float rounding of a rounding boundary — the same difference as between
//! ONNX Runtime's float (unfused) and integer (fused) evaluation of the model.

use super::{
    attr, bound, f32_values, infer_types, is_absent, konst, ops_in, ty, Apply, Made, Make, Out, Rw,
};
use crate::egraph::bridge::op_node;
use crate::egraph::EG;
use egg::{rewrite as rw, Id, Subst};
use lnc_ir::{Conv2d, DType, Op, Tensor};

/// Whether the integer kernels take this element type.
fn is_8bit(d: DType) -> bool {
    matches!(d, DType::U8 | DType::I8)
}

/// The integer values of a constant class.
fn ints(eg: &EG, id: Id) -> Option<Vec<i64>> {
    let (_, t) = konst(eg, id)?;
    Some(t.as_int()?.iter().copied().collect())
}

/// Quantization parameters: scale and zero point classes and values.
#[derive(Clone)]
struct QParams {
    s: Id,
    z: Id,
    sv: Vec<f32>,
    zv: Vec<i64>,
}

/// The constant scale / zero point of a Q or DQ node; `per_axis` allows one value per
/// element along the node's axis.
fn qparams(eg: &EG, s: Id, z: Id, axis: Option<usize>, per_axis: Option<usize>) -> Option<QParams> {
    let (_, sv) = f32_values(eg, s)?;
    let zv = ints(eg, z)?;
    if sv.len() != zv.len() || sv.is_empty() {
        return None;
    }
    match axis {
        None if sv.len() == 1 => {}
        Some(a) if Some(a) == per_axis => {}
        _ => return None,
    }
    if sv.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return None;
    }
    Some(QParams { s, z, sv, zv })
}

/// A `dequantize_linear` e-node of a class: `(axis, x, scale, zero point)`.
fn dq_in(eg: &EG, id: Id) -> Option<(Option<usize>, Id, Id, Id)> {
    ops_in(eg, id)
        .into_iter()
        .find_map(|(_, op, ins)| match op {
            Op::DequantizeLinear { axis } if ins.len() == 3 => Some((axis, ins[0], ins[1], ins[2])),
            _ => None,
        })
}

/// The int32 bias of an integer op with per-channel accumulator scale `acc_scale`, from the
/// float op's bias class (absent, float constant, or DQ of an integer constant).
fn int_bias(eg: &EG, b: Id, acc_scale: &[f32]) -> Option<Option<Vec<i64>>> {
    if is_absent(eg, b) {
        return Some(None);
    }
    let m = acc_scale.len();
    let real: Vec<Result<i64, f64>> = if let Some((_, v)) = f32_values(eg, b) {
        // A float bias: quantize with the accumulator scale.
        if v.len() != m {
            return None;
        }
        v.iter()
            .zip(acc_scale)
            .map(|(&x, &s)| Err(x as f64 / s as f64))
            .collect()
    } else {
        let (axis, q, s, z) = dq_in(eg, b)?;
        let qv = ints(eg, q)?;
        if qv.len() != m || ty(eg, q)?.rank() != 1 {
            return None;
        }
        let p = qparams(eg, s, z, axis, Some(0))?;
        let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        (0..m)
            .map(|i| {
                let (bs, bz) = (
                    at(&p.sv, i),
                    if p.zv.len() == 1 { p.zv[0] } else { p.zv[i] },
                );
                let q = qv[i].checked_sub(bz).unwrap_or(i64::MAX);
                if bs == acc_scale[i] {
                    Ok(q)
                } else {
                    Err(q as f64 * bs as f64 / acc_scale[i] as f64)
                }
            })
            .collect()
    };
    let mut out = Vec::with_capacity(m);
    for r in real {
        let v = match r {
            Ok(v) => v,
            Err(f) => {
                let r = f.round_ties_even();
                if !r.is_finite() || r.abs() > i32::MAX as f64 {
                    return None;
                }
                r as i64
            }
        };
        if i32::try_from(v).is_err() {
            return None;
        }
        out.push(v);
    }
    Some(Some(out))
}

/// Add a new e-node (type-checked) and return its class.
fn add_op(eg: &mut EG, op: Op, inputs: &[Id]) -> Option<Id> {
    infer_types(eg, &op, inputs)?;
    let node = op_node(eg, &op, inputs);
    Some(eg.add(node))
}

/// A derived integer constant class.
fn derived_int(eg: &mut EG, key: String, name: String, t: Result<Tensor, String>) -> Option<Id> {
    super::derived(eg, key, || name, |_| t)
}

/// The pieces of an integer op read off a `Q(op(DQ(x), DQ(W), bias))` match.
#[derive(Clone)]
struct Framed {
    x: Id,
    xq: QParams,
    w: Id,
    wq: QParams,
    yq: QParams,
    /// `x_scale * w_scale[m]` per output channel.
    acc_scale: Vec<f32>,
}

/// Read and check the Q/DQ frame of a match; `m` is the number of output channels and
/// `w_axis` the axis of `W` holding them.
fn frame(eg: &EG, s: &Subst, m: usize, w_axis: usize) -> Option<Framed> {
    let Op::QuantizeLinear { axis: None } = attr(eg, bound(s, "?qa")?)? else {
        return None;
    };
    let Op::DequantizeLinear { axis: xa } = attr(eg, bound(s, "?xa")?)? else {
        return None;
    };
    let Op::DequantizeLinear { axis: wa } = attr(eg, bound(s, "?wa")?)? else {
        return None;
    };
    let (x, w) = (bound(s, "?x")?, bound(s, "?w")?);
    let yt = ty(eg, bound(s, "?yz")?)?;
    if !is_8bit(ty(eg, x)?.dtype) || !is_8bit(ty(eg, w)?.dtype) || !is_8bit(yt.dtype) {
        return None;
    }
    konst(eg, w)?;
    let xq = qparams(eg, bound(s, "?xs")?, bound(s, "?xz")?, xa, None)?;
    let yq = qparams(eg, bound(s, "?ys")?, bound(s, "?yz")?, None, None)?;
    let wq = qparams(eg, bound(s, "?ws")?, bound(s, "?wz")?, wa, Some(w_axis))?;
    if wq.sv.len() != 1 && wq.sv.len() != m {
        return None;
    }
    let acc_scale = (0..m)
        .map(|i| xq.sv[0] * wq.sv[if wq.sv.len() == 1 { 0 } else { i }])
        .collect();
    Some(Framed {
        x,
        xq,
        w,
        wq,
        yq,
        acc_scale,
    })
}

/// The inputs of a `QLinearConv`.
fn qconv_inputs(f: &Framed, w: Id, ws: Id, wz: Id, bias: Option<Id>) -> Vec<Id> {
    let mut v = vec![f.x, f.xq.s, f.xq.z, w, ws, wz, f.yq.s, f.yq.z];
    v.extend(bias);
    v
}

/// The int32 bias constant class of an integer op made from the float op's bias class `b`
/// (named after the constant it comes from), memoised by the bias and accumulator scale.
fn bias_class(eg: &mut EG, b: Id, v: Option<Vec<i64>>, acc_scale: &[f32]) -> Option<Option<Id>> {
    let Some(v) = v else { return Some(None) };
    let src = konst(eg, b)
        .map(|(k, _)| k)
        .or_else(|| dq_in(eg, b).and_then(|(_, q, _, _)| eg[q].data.konst));
    let name = match src {
        Some(k) => format!("{}.acc_i32", eg.analysis.pool.name(k)),
        None => "bias.acc_i32".to_string(),
    };
    let scales: Vec<u32> = acc_scale.iter().map(|s| s.to_bits()).collect();
    let key = format!("qbias:{src:?}:{:?}:{scales:?}", eg.find(b));
    let m = v.len();
    let t = Tensor::from_int(DType::I32, &[m], v);
    Some(Some(derived_int(eg, key, name, t)?))
}

/// `qdq-conv`.
pub struct QdqConv;

impl Make for QdqConv {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let Op::Conv(conv) = attr(eg, bound(s, "?ca")?)? else {
                return None;
            };
            let m = *ty(eg, bound(s, "?w")?)?.shape.first()?;
            let f = frame(eg, s, m, 0)?;
            let b = bound(s, "?b")?;
            let bias = int_bias(eg, b, &f.acc_scale)?;
            let bias = bias_class(eg, b, bias, &f.acc_scale)?;
            let inputs = qconv_inputs(&f, f.w, f.wq.s, f.wq.z, bias);
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::QLinearConv(conv),
                    inputs,
                    sources: vec![],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// A 1x1 convolution.
fn pointwise() -> Conv2d {
    Conv2d {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    }
}

/// The `[N, K, 1, 1]` weight of a `[K, N]` (or, transposed, `[N, K]`) matrix constant.
fn weight_nk11(eg: &mut EG, w: Id, trans: bool) -> Option<(Id, usize, usize)> {
    let (k, t) = konst(eg, w)?;
    let [r, c] = t.shape()[..] else { return None };
    let (n, kk) = if trans { (r, c) } else { (c, r) };
    let v = t.as_int()?;
    let dtype = t.dtype;
    let vals: Vec<i64> = if trans {
        v.iter().copied().collect()
    } else {
        let flat: Vec<i64> = v.iter().copied().collect();
        (0..n)
            .flat_map(|j| (0..kk).map(move |i| (i, j)))
            .map(|(i, j)| flat[i * n + j])
            .collect()
    };
    let name = format!("{}.nk11", eg.analysis.pool.name(k));
    let id = derived_int(
        eg,
        format!("nk11:{k}:{trans}"),
        name,
        Tensor::from_int(dtype, &[n, kk, 1, 1], vals),
    )?;
    Some((id, n, kk))
}

/// `reshape(qlinear_conv(reshape(x, [M, K, 1, 1]), W4, ..), [M, N])` as the proposal for
/// class `root` (the inner nodes are added here).
fn pointwise_chain(
    eg: &mut EG,
    root: Id,
    f: &Framed,
    w4: Id,
    bias: Option<Id>,
    n: usize,
) -> Option<Vec<Out>> {
    let xt = ty(eg, f.x)?;
    let [mm, k] = xt.shape[..] else { return None };
    let r1 = add_op(
        eg,
        Op::Reshape {
            shape: vec![mm, k, 1, 1],
        },
        &[f.x],
    )?;
    let ins = qconv_inputs(&Framed { x: r1, ..f.clone() }, w4, f.wq.s, f.wq.z, bias);
    let qc = add_op(eg, Op::QLinearConv(pointwise()), &ins)?;
    Some(vec![Out::Node {
        into: root,
        made: Made {
            op: Op::Reshape { shape: vec![mm, n] },
            inputs: vec![qc],
            sources: vec![],
        },
    }])
}

/// `qdq-gemm`.
pub struct QdqGemm;

impl Make for QdqGemm {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let Op::Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
            } = attr(eg, bound(s, "?ga")?)?
            else {
                return None;
            };
            if alpha != 1.0 || beta != 1.0 || ty(eg, bound(s, "?x")?)?.rank() != 2 {
                return None;
            }
            let w = bound(s, "?w")?;
            let wt = ty(eg, w)?;
            if wt.rank() != 2 {
                return None;
            }
            let n = if trans_b { wt.shape[0] } else { wt.shape[1] };
            // Per-channel weight parameters run along the N axis of W.
            let f = frame(eg, s, n, if trans_b { 0 } else { 1 })?;
            let b = bound(s, "?b")?;
            if !is_absent(eg, b) && ty(eg, b)?.shape != [n] {
                return None;
            }
            let bias = int_bias(eg, b, &f.acc_scale)?;
            let bias = bias_class(eg, b, bias, &f.acc_scale)?;
            let (w4, _, _) = weight_nk11(eg, w, trans_b)?;
            pointwise_chain(eg, root, &f, w4, bias, n)
        })()
        .unwrap_or_default()
    }
}

/// `qlinear-matmul-conv`.
pub struct QLinearMatMulConv;

impl Make for QLinearMatMulConv {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, b) = (bound(s, "?a")?, bound(s, "?b")?);
            let (at, bt) = (ty(eg, a)?, ty(eg, b)?);
            if at.rank() != 2 || bt.rank() != 2 || !is_8bit(at.dtype) || !is_8bit(bt.dtype) {
                return None;
            }
            let n = bt.shape[1];
            let xq = qparams(eg, bound(s, "?as")?, bound(s, "?az")?, None, None)?;
            let yq = qparams(eg, bound(s, "?ys")?, bound(s, "?yz")?, None, None)?;
            // B's parameters: per tensor, or per column as `[N]` (QLinearMatMul's forms
            // `[1, N]` and others are left alone).
            let (bs, bz) = (bound(s, "?bs")?, bound(s, "?bz")?);
            let per_col = ty(eg, bs)?.shape == [n] && n != 1;
            let wq = qparams(eg, bs, bz, per_col.then_some(0), Some(0))?;
            if !is_8bit(ty(eg, bound(s, "?yz")?)?.dtype) {
                return None;
            }
            let f = Framed {
                x: a,
                xq,
                w: b,
                acc_scale: vec![],
                wq,
                yq,
            };
            let (w4, _, _) = weight_nk11(eg, b, false)?;
            pointwise_chain(eg, root, &f, w4, None, n)
        })()
        .unwrap_or_default()
    }
}

/// `quantize-absorbs-relu` / `quantize-absorbs-clip`: `Q(act(v))` is `Q(v)` when the
/// activation's bounds quantize to (or beyond) the saturation bounds.
pub struct AbsorbClamp;

impl Make for AbsorbClamp {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let qa = bound(s, "?qa")?;
            let Op::QuantizeLinear { axis: None } = attr(eg, qa)? else {
                return None;
            };
            let (lo, hi) = match bound(s, "?ca") {
                None => (0.0f32, f32::INFINITY),
                Some(ca) => match attr(eg, ca)? {
                    Op::Clip { min, max } => (min as f32, max as f32),
                    _ => return None,
                },
            };
            let (sc, z) = (bound(s, "?s")?, bound(s, "?z")?);
            let q = qparams(eg, sc, z, None, None)?;
            let (qmin, qmax) = ty(eg, z)?.dtype.int_range()?;
            // The interpreter's QuantizeLinear: round_half_even(v / scale) + zp, saturated.
            let quant = |v: f32| -> f64 {
                let r = ((v / q.sv[0]) as f64).round_ties_even();
                r + q.zv[0] as f64
            };
            if lo.is_nan() || hi.is_nan() || quant(lo) > qmin as f64 || quant(hi) < qmax as f64 {
                return None;
            }
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::QuantizeLinear { axis: None },
                    inputs: vec![bound(s, "?v")?, sc, z],
                    sources: vec![],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// Whether an op moves or selects elements without arithmetic, so that it commutes with
/// a per-tensor DequantizeLinear (MaxPool: DQ is monotone non-decreasing).
fn is_movement(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Expand { .. }
            | Op::Concat { .. }
            | Op::MaxPool(_)
            | Op::GlobalMaxPool
            | Op::ChannelShuffle { .. }
            | Op::ChannelMap { .. }
    )
}

/// `quantize-moves-integer`: `Q(move(DQ(a), DQ(b), ..))` is `move(a, b, ..)` when every DQ
/// has the Q's scale and zero point (exact: `Q(DQ(v)) = v` for 8-bit `v`, and data movement
/// and max commute with the monotone DQ). Data movement then runs on bytes.
///
/// A Concat whose inputs are per-tensor DQs with other parameters (ONNX Runtime's
/// quantizer gives each branch its own scale) becomes `Concat(a, Q(DQ(b)), ..)` once at
/// least one input has the Q's parameters: a QuantizeLinear distributes over a Concat
/// (exact: it is elementwise), the matching inputs drop their Q/DQ pair, and the others
/// keep a requantization `Q(DQ(b))`, an elementwise function of one byte (the CPU backend
/// tabulates it and writes the Concat's slice in place).
pub struct MoveInteger;

impl Make for MoveInteger {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let Op::QuantizeLinear { axis: None } = attr(eg, bound(s, "?qa")?)? else {
                return None;
            };
            let (sc, z) = (bound(s, "?s")?, bound(s, "?z")?);
            let q = qparams(eg, sc, z, None, None)?;
            let dt = ty(eg, z)?.dtype;
            if !is_8bit(dt) {
                return None;
            }
            let mut outs = Vec::new();
            for (_, op, ins) in ops_in(eg, bound(s, "?y")?) {
                if !is_movement(&op) || ins.is_empty() {
                    continue;
                }
                // Per input: the byte tensor, and whether its DQ has the Q's parameters.
                let ints: Option<Vec<(Id, Id, bool)>> = ins
                    .iter()
                    .map(|&i| {
                        let (axis, x, ds, dz) = dq_in(eg, i)?;
                        let p = qparams(eg, ds, dz, axis, None)?;
                        let same = ty(eg, x)?.dtype == dt && p.sv == q.sv && p.zv == q.zv;
                        Some((i, x, same))
                    })
                    .collect();
                let Some(ints) = ints else { continue };
                let requant = matches!(op, Op::Concat { .. }) && ints.iter().any(|t| t.2);
                if !requant && !ints.iter().all(|t| t.2) {
                    continue;
                }
                let inputs: Option<Vec<Id>> = ints
                    .into_iter()
                    .map(|(i, x, same)| {
                        if same {
                            Some(x)
                        } else {
                            add_op(eg, Op::QuantizeLinear { axis: None }, &[i, sc, z])
                        }
                    })
                    .collect();
                if let Some(inputs) = inputs {
                    outs.push(Out::Node {
                        into: root,
                        made: Made {
                            op,
                            inputs,
                            sources: vec![],
                        },
                    });
                }
            }
            Some(outs)
        })()
        .unwrap_or_default()
    }
}

pub fn rules() -> Vec<Rw> {
    vec![
        rw!("qdq-conv";
            "(quantize_linear ?qa (conv ?ca (dequantize_linear ?xa ?x ?xs ?xz) (dequantize_linear ?wa ?w ?ws ?wz) ?b) ?ys ?yz)"
            => { Apply(QdqConv) }),
        rw!("qdq-gemm";
            "(quantize_linear ?qa (gemm ?ga (dequantize_linear ?xa ?x ?xs ?xz) (dequantize_linear ?wa ?w ?ws ?wz) ?b) ?ys ?yz)"
            => { Apply(QdqGemm) }),
        rw!("qlinear-matmul-conv";
            "(qlinear_matmul ?a ?as ?az ?b ?bs ?bz ?ys ?yz)"
            => { Apply(QLinearMatMulConv) }),
        rw!("quantize-moves-integer"; "(quantize_linear ?qa ?y ?s ?z)"             => { Apply(MoveInteger) }),
        rw!("quantize-absorbs-relu"; "(quantize_linear ?qa (relu ?v) ?s ?z)"        => { Apply(AbsorbClamp) }),
        rw!("quantize-absorbs-clip"; "(quantize_linear ?qa (clip ?ca ?v) ?s ?z)"    => { Apply(AbsorbClamp) }),
    ]
}
