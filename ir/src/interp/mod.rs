//! Reference interpreter: the oracle every backend is checked against.
//!
//! [`run`] evaluates a whole [`Graph`]; [`eval_op`] evaluates one op on concrete tensors
//! (the frontend also uses it for constant folding). Every [`Op`] variant is implemented;
//! the families live in their own modules:
//!
//! | module          | ops |
//! |-----------------|-----|
//! | `conv`          | Conv, ConvTranspose, QLinearConv, ConvInteger |
//! | `elementwise`   | Unary, LeakyRelu, Elu, HardSigmoid, Clip, PRelu, Binary, BatchNorm |
//! | `movement`      | Identity, Concat, Split, Slice, Reshape, Transpose, Gather, Expand, Cast, Pad |
//! | `pool`          | MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool |
//! | `reduce`        | Reduce, Softmax |
//! | `matmul`        | Gemm, MatMul, QLinearMatMul, MatMulInteger |
//! | `resize`        | Resize |
//! | `quant`         | QuantizeLinear, DequantizeLinear, QONNX Quant, BipolarQuant, Trunc |
//! | `fused`         | FusedConv, DwPw, Classifier, ChannelShuffle, ChannelMap (compositions) |
//!
//! Conventions shared by every kernel:
//! - Inputs are first checked by [`crate::shape::infer`]; the given output types must
//!   agree with it (dtype and shape), so kernels can rely on validated attributes. Every
//!   produced tensor is checked against `outputs` again before it is returned.
//! - Kernels work on row-major slices and always produce standard-layout arrays.
//! - Float arithmetic is `f32`. Sums are accumulated in `f32` in a fixed order (ascending
//!   input channel, then kernel row, then kernel column; ascending `k` for matrix
//!   products), starting from zero; a bias is added after the sum. Fast paths keep the
//!   same order, so they agree bit for bit with a naive loop nest.
//! - Integer arithmetic is done in `i64` and wrapped to the dtype's width (two's
//!   complement, as C does); integer accumulators of the quantized ops are 32-bit like
//!   ONNX Runtime's. Bipolar and ternary results must stay representable (else an error).
//! - Nothing reachable from a model file panics: bad shapes, indices or values are
//!   `Err(String)`, which [`run`] wraps into [`Error::Node`] naming the node.

mod conv;
mod elementwise;
mod fused;
mod matmul;
mod movement;
mod pool;
mod quant;
mod reduce;
mod resize;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Value};
use crate::op::Op;
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;
use ndarray::{ArrayD, IxDyn};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Result of a kernel: errors are plain messages, named by the caller.
pub(crate) type R<T> = std::result::Result<T, String>;

// ----- whole graph ------------------------------------------------------------------

/// A value held during [`run`]: constants are borrowed from the pool, not copied.
enum Slot<'g> {
    Borrowed(&'g Tensor),
    Owned(Tensor),
}

impl Slot<'_> {
    fn get(&self) -> &Tensor {
        match self {
            Slot::Borrowed(t) => t,
            Slot::Owned(t) => t,
        }
    }
}

/// Check a user-supplied input tensor against the type of its `Input` node.
fn check_input(name: &str, ty: &TensorType, t: &Tensor) -> Result<()> {
    let bad = |m: String| Error::Input(format!("'{name}': {m}"));
    if t.dtype != ty.dtype || t.shape() != ty.shape.as_slice() {
        return Err(bad(format!("expected {ty}, got {}", t.ty())));
    }
    match &t.data {
        Data::F32(_) if t.dtype.is_float() => Ok(()),
        Data::Int(a) if t.dtype.is_int() => match a.iter().find(|&&v| !t.dtype.contains(v)) {
            Some(v) => Err(bad(format!("value {v} is out of range for {}", t.dtype))),
            None => Ok(()),
        },
        _ => Err(bad(format!("storage does not match dtype {}", t.dtype))),
    }
}

/// Run a whole graph on the given inputs (in graph-input order); returns the graph outputs.
///
/// Only the nodes the graph outputs depend on are evaluated, in [`Graph::topo_order`].
/// Intermediate values are dropped after their last use.
pub fn run(g: &Graph, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let order = g.topo_order()?;

    // Inputs: count, dtype, shape and value range.
    let gin = g.inputs();
    if inputs.len() != gin.len() {
        return Err(Error::Input(format!(
            "the graph has {} input(s), {} given",
            gin.len(),
            inputs.len()
        )));
    }
    let mut feed: HashMap<NodeId, Tensor> = HashMap::new();
    for (&id, t) in gin.iter().zip(inputs) {
        if !g.contains(id) {
            return Err(Error::Graph(format!(
                "input node {} does not exist",
                id.index()
            )));
        }
        let node = g.node(id);
        let ty = node
            .outputs
            .first()
            .ok_or_else(|| Error::node(&node.name, "input", "input node has no type"))?;
        check_input(&node.name, ty, &t)?;
        feed.insert(id, t);
    }

    // Liveness: the nodes the outputs depend on.
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = Vec::new();
    for o in g.outputs() {
        g.try_value_type(o.value)
            .map_err(|_| Error::Graph(format!("output '{}' refers to a missing value", o.name)))?;
        stack.push(o.value.node);
    }
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.node_inputs(n).iter().map(|v| v.node));
        }
    }

    // Remaining uses of each value among live nodes; graph outputs are pinned.
    let pinned: HashSet<Value> = g.outputs().iter().map(|o| o.value).collect();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    for &n in &live {
        for v in g.node_inputs(n) {
            *uses.entry(v).or_insert(0) += 1;
        }
    }

    let mut values: HashMap<Value, Slot<'_>> = HashMap::new();
    for id in order {
        if !live.contains(&id) {
            continue;
        }
        let node = g.node(id);
        let err = |m: String| Error::node(&node.name, node.op.name(), m);
        let produced: Vec<Slot<'_>> = match &node.op {
            Op::Input => {
                let t = feed
                    .remove(&id)
                    .ok_or_else(|| err("input node is not a graph input".into()))?;
                vec![Slot::Owned(t)]
            }
            Op::Const(cid) => {
                let t = g
                    .consts()
                    .get(cid.0 as usize)
                    .ok_or_else(|| err(format!("constant {} does not exist", cid.0)))?;
                vec![Slot::Borrowed(t)]
            }
            op => {
                let ins = g.node_inputs(id);
                let mut refs: Vec<&Tensor> = Vec::with_capacity(ins.len());
                for (slot, v) in ins.iter().enumerate() {
                    let s = values.get(v).ok_or_else(|| {
                        err(format!(
                            "input {slot} ({}:{}) is not available",
                            v.node.index(),
                            v.port
                        ))
                    })?;
                    refs.push(s.get());
                }
                let outs = eval_op(op, &refs, &node.outputs).map_err(err)?;
                for v in &ins {
                    if let Some(u) = uses.get_mut(v) {
                        *u = u.saturating_sub(1);
                        if *u == 0 && !pinned.contains(v) {
                            values.remove(v);
                        }
                    }
                }
                outs.into_iter().map(Slot::Owned).collect()
            }
        };
        for (port, s) in produced.into_iter().enumerate() {
            let v = Value {
                node: id,
                port: port as u16,
            };
            if uses.get(&v).is_some_and(|&u| u > 0) || pinned.contains(&v) {
                values.insert(v, s);
            }
        }
    }

    g.outputs()
        .iter()
        .map(|o| {
            values
                .get(&o.value)
                .map(|s| s.get().clone())
                .ok_or_else(|| Error::Graph(format!("output '{}' was not computed", o.name)))
        })
        .collect()
}

// ----- one op -----------------------------------------------------------------------

/// Evaluate one op on concrete inputs. `outputs` are the node's (inferred) output types.
pub fn eval_op(
    op: &Op,
    inputs: &[&Tensor],
    outputs: &[TensorType],
) -> std::result::Result<Vec<Tensor>, String> {
    if matches!(op, Op::Input | Op::Const(_)) {
        return Err("input and const nodes are evaluated by the graph runner".into());
    }
    for (i, t) in inputs.iter().enumerate() {
        match (&t.data, t.dtype.is_float()) {
            (Data::F32(_), true) | (Data::Int(_), false) => {}
            _ => {
                return Err(format!(
                    "input {i}: storage does not match dtype {}",
                    t.dtype
                ))
            }
        }
    }
    let in_tys: Vec<TensorType> = inputs.iter().map(|t| t.ty()).collect();
    let in_refs: Vec<&TensorType> = in_tys.iter().collect();
    let inferred = crate::shape::infer(op, &in_refs)?;
    if inferred.len() != outputs.len() {
        return Err(format!(
            "{} output type(s) given, the op has {}",
            outputs.len(),
            inferred.len()
        ));
    }
    for (i, (want, got)) in inferred.iter().zip(outputs).enumerate() {
        if want.dtype != got.dtype || want.shape != got.shape {
            return Err(format!("output {i} has type {got}, the inputs give {want}"));
        }
    }

    let outs = dispatch(op, inputs, outputs)?;

    if outs.len() != outputs.len() {
        return Err(format!(
            "internal: produced {} output(s), expected {}",
            outs.len(),
            outputs.len()
        ));
    }
    for (i, (t, ty)) in outs.iter().zip(outputs).enumerate() {
        if t.dtype != ty.dtype || t.shape() != ty.shape.as_slice() {
            return Err(format!("internal: output {i} is {}, expected {ty}", t.ty()));
        }
    }
    Ok(outs)
}

fn dispatch(op: &Op, x: &[&Tensor], outs: &[TensorType]) -> R<Vec<Tensor>> {
    let out = outs.first().ok_or("no output type")?;
    let one = |t: R<Tensor>| t.map(|t| vec![t]);
    match op {
        Op::Input | Op::Const(_) => {
            Err("input and const nodes are evaluated by the graph runner".into())
        }
        Op::Identity => one(make(out, map_buf!(x[0], |v| v.to_vec()))),
        Op::Conv(c) => one(conv::conv(c, x, out)),
        Op::ConvTranspose(c) => one(conv::conv_transpose(c, x, out)),
        Op::QLinearConv(c) => one(conv::qlinear_conv(c, x, out)),
        Op::ConvInteger(c) => one(conv::conv_integer(c, x, out)),
        Op::BatchNorm { epsilon } => one(elementwise::batch_norm(*epsilon, x, out)),
        Op::Unary(u) => one(elementwise::unary(*u, x[0], out)),
        Op::LeakyRelu { alpha } => {
            let a = *alpha;
            one(elementwise::map_f32(x[0], out, |v| {
                if v > 0.0 {
                    v
                } else {
                    v * a
                }
            }))
        }
        Op::Elu { alpha } => {
            let a = *alpha;
            one(elementwise::map_f32(x[0], out, |v| {
                if v > 0.0 {
                    v
                } else {
                    a * (v.exp() - 1.0)
                }
            }))
        }
        Op::HardSigmoid { alpha, beta } => {
            let (a, b) = (*alpha, *beta);
            one(elementwise::map_f32(x[0], out, |v| {
                (a * v + b).clamp(0.0, 1.0)
            }))
        }
        Op::Clip { min, max } => one(elementwise::clip(*min, *max, x[0], out)),
        Op::PRelu => one(elementwise::prelu(x, out)),
        Op::Binary(b) => one(elementwise::binary(*b, x, out)),
        Op::Concat { axis } => one(movement::concat(*axis, x, out)),
        Op::Split { axis, sizes } => movement::split(*axis, sizes, x[0], outs),
        Op::Slice { axes } => one(movement::slice(axes, x[0], out)),
        Op::Reshape { .. } => one(movement::reshape(x[0], out)),
        Op::Transpose { perm } => one(movement::transpose(perm, x[0], out)),
        Op::Gather { axis } => one(movement::gather(*axis, x, out)),
        Op::Expand { .. } => one(movement::expand(x[0], out)),
        Op::Cast { to } => one(movement::cast(*to, x[0], out)),
        Op::Pad { pads, mode, value } => one(movement::pad(pads, *mode, *value, x[0], out)),
        Op::MaxPool(p) => one(pool::max_pool(p, x[0], out)),
        Op::AveragePool {
            pool: p,
            count_include_pad,
        } => one(pool::average_pool(p, *count_include_pad, x[0], out)),
        Op::GlobalAveragePool => one(pool::global_pool(false, x[0], out)),
        Op::GlobalMaxPool => one(pool::global_pool(true, x[0], out)),
        Op::Reduce { kind, axes, .. } => one(reduce::reduce(*kind, axes, x[0], out)),
        Op::Softmax {
            axis,
            coerce_2d,
            log,
        } => one(reduce::softmax(*axis, *coerce_2d, *log, x[0], out)),
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => one(matmul::gemm(*alpha, *beta, *trans_a, *trans_b, x, out)),
        Op::MatMul => one(matmul::matmul(x, out)),
        Op::QLinearMatMul => one(matmul::qlinear_matmul(x, out)),
        Op::MatMulInteger => one(matmul::matmul_integer(x, out)),
        Op::Resize(r) => one(resize::resize(r, x[0], out)),
        Op::QuantizeLinear { axis } => one(quant::quantize_linear(*axis, x, out)),
        Op::DequantizeLinear { axis } => one(quant::dequantize_linear(*axis, x, out)),
        Op::Quant {
            bits,
            signed,
            narrow,
            rounding,
        } => one(quant::quant(*bits, *signed, *narrow, *rounding, x, out)),
        Op::BipolarQuant => one(quant::bipolar_quant(x, out)),
        Op::Trunc {
            in_bits,
            out_bits,
            rounding,
            signed,
            narrow,
        } => one(quant::trunc(
            *in_bits, *out_bits, *rounding, *signed, *narrow, x, out,
        )),
        Op::FusedConv { conv, epilogue } => one(fused::fused_conv(conv, epilogue, x)),
        Op::DwPw {
            dw,
            dw_act,
            epilogue,
        } => one(fused::dw_pw(dw, *dw_act, epilogue, x)),
        Op::Classifier {
            alpha,
            beta,
            trans_b,
        } => one(fused::classifier(*alpha, *beta, *trans_b, x)),
        Op::ChannelShuffle { groups } => one(fused::channel_shuffle(*groups, x[0])),
        Op::ChannelMap { map } => one(fused::channel_map(map, x, out)),
    }
}

// ----- shared helpers ---------------------------------------------------------------

/// Row-major contents of an array: borrowed when it is in standard layout.
pub(crate) fn contig<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

/// Row-major `f32` contents of a float tensor.
pub(crate) fn f32s(t: &Tensor) -> R<Cow<'_, [f32]>> {
    match &t.data {
        Data::F32(a) => Ok(contig(a)),
        Data::Int(_) => Err(format!("expected an f32 tensor, got {}", t.dtype)),
    }
}

/// Row-major raw integer contents of an integer-like tensor.
pub(crate) fn ints(t: &Tensor) -> R<Cow<'_, [i64]>> {
    match &t.data {
        Data::Int(a) => Ok(contig(a)),
        Data::F32(_) => Err("expected an integer tensor, got f32".into()),
    }
}

/// Row-major contents of either kind.
pub(crate) enum Buf {
    F32(Vec<f32>),
    Int(Vec<i64>),
}

/// Build a tensor of type `ty` from row-major values.
pub(crate) fn make(ty: &TensorType, buf: Buf) -> R<Tensor> {
    let shape = IxDyn(&ty.shape);
    let bad = |e: ndarray::ShapeError| format!("internal: cannot build {ty}: {e}");
    match (buf, ty.dtype.is_float()) {
        (Buf::F32(v), true) => Ok(Tensor::f32_array(
            ArrayD::from_shape_vec(shape, v).map_err(bad)?,
        )),
        (Buf::Int(v), false) => Ok(Tensor::int_array(
            ty.dtype,
            ArrayD::from_shape_vec(shape, v).map_err(bad)?,
        )),
        _ => Err(format!(
            "internal: value kind does not match dtype {}",
            ty.dtype
        )),
    }
}

pub(crate) fn make_f32(ty: &TensorType, v: Vec<f32>) -> R<Tensor> {
    make(ty, Buf::F32(v))
}

pub(crate) fn make_int(ty: &TensorType, v: Vec<i64>) -> R<Tensor> {
    make(ty, Buf::Int(v))
}

/// Apply the same generic body to the row-major data of a tensor of either kind; the
/// body (an expression over the slice bound to `$v`) yields a `Vec` of the same element
/// type. Expands to a [`Buf`].
macro_rules! map_buf {
    ($t:expr, |$v:ident| $body:expr) => {
        match &$t.data {
            $crate::tensor::Data::F32(a) => {
                let c = $crate::interp::contig(a);
                let $v: &[f32] = &c;
                $crate::interp::Buf::F32($body)
            }
            $crate::tensor::Data::Int(a) => {
                let c = $crate::interp::contig(a);
                let $v: &[i64] = &c;
                $crate::interp::Buf::Int($body)
            }
        }
    };
}
pub(crate) use map_buf;

/// Wrap an integer to the width of `dt` (two's complement, like C). Bipolar and ternary
/// values must already be representable; bool is `!= 0`.
pub(crate) fn fit_int(v: i64, dt: DType) -> R<i64> {
    match dt {
        DType::Bool => Ok((v != 0) as i64),
        DType::Bipolar | DType::Ternary => {
            if dt.contains(v) {
                Ok(v)
            } else {
                Err(format!("result {v} is not representable as {dt}"))
            }
        }
        DType::F32 => Err("internal: integer result for an f32 tensor".into()),
        _ => Ok(wrap_bits(v, dt)),
    }
}

/// Two's-complement wrap to `dt.bits()` (signedness from the dtype's range).
pub(crate) fn wrap_bits(v: i64, dt: DType) -> i64 {
    let bits = dt.bits();
    if bits >= 64 {
        return v;
    }
    let signed = dt.int_range().is_some_and(|(lo, _)| lo < 0);
    let mask = (1u64 << bits) - 1;
    let m = (v as u64) & mask;
    if signed && (m >> (bits - 1)) & 1 == 1 {
        (m | !mask) as i64
    } else {
        m as i64
    }
}

/// Saturating conversion of an already rounded float to the raw range of `dt`
/// (`NaN` becomes 0).
pub(crate) fn saturate(v: f64, dt: DType) -> i64 {
    if v.is_nan() {
        return 0;
    }
    let (lo, hi) = dt.int_range().unwrap_or((i64::MIN, i64::MAX));
    if v <= lo as f64 {
        lo
    } else if v >= hi as f64 {
        hi
    } else {
        v as i64
    }
}

/// Element types the MAC kernels run on: `f32`, or `i64` with wrapping arithmetic.
pub(crate) trait Elem: Copy + Default + 'static {
    /// `self + a * b`.
    fn mac(self, a: Self, b: Self) -> Self;
}

impl Elem for f32 {
    #[inline(always)]
    fn mac(self, a: f32, b: f32) -> f32 {
        self + a * b
    }
}

impl Elem for i64 {
    #[inline(always)]
    fn mac(self, a: i64, b: i64) -> i64 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides that read an array of shape `src` broadcast (numpy rules, aligned right) to
/// `out`: 0 along broadcast axes.
pub(crate) fn broadcast_strides(src: &[usize], out: &[usize]) -> R<Vec<usize>> {
    if src.len() > out.len() {
        return Err(format!("shape {src:?} does not broadcast to {out:?}"));
    }
    let st = strides(src);
    let lead = out.len() - src.len();
    let mut r = vec![0; out.len()];
    for (i, &d) in src.iter().enumerate() {
        if d == out[lead + i] {
            r[lead + i] = if d == 1 { 0 } else { st[i] };
        } else if d != 1 {
            return Err(format!("shape {src:?} does not broadcast to {out:?}"));
        }
    }
    Ok(r)
}

/// Visit every index of `shape` except the last axis in row-major order; `f` receives the
/// per-operand base offsets (sum of index * stride for each stride vector).
pub(crate) fn for_each_row<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
    mut f: impl FnMut([usize; K]),
) {
    let r = shape.len();
    if r == 0 {
        f([0; K]);
        return;
    }
    if shape.contains(&0) {
        return;
    }
    let outer = &shape[..r - 1];
    let mut idx = vec![0usize; outer.len()];
    let mut base = [0usize; K];
    loop {
        f(base);
        // Odometer increment over the outer axes.
        let mut ax = outer.len();
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            for (b, s) in base.iter_mut().zip(&strides) {
                *b += s[ax];
            }
            if idx[ax] < outer[ax] {
                break;
            }
            for (b, s) in base.iter_mut().zip(&strides) {
                *b -= s[ax] * outer[ax];
            }
            idx[ax] = 0;
        }
    }
}

/// Materialise `src` (shape `src_shape`) broadcast to `out`.
pub(crate) fn broadcast_to<T: Copy>(src: &[T], src_shape: &[usize], out: &[usize]) -> R<Vec<T>> {
    if src_shape == out {
        return Ok(src.to_vec());
    }
    let st = broadcast_strides(src_shape, out)?;
    let n: usize = out.iter().product();
    let mut v = Vec::with_capacity(n);
    let (last_n, last_s) = match out.last() {
        Some(&d) => (d, st[st.len() - 1]),
        None => (1, 0),
    };
    for_each_row(out, [&st], |[b]| {
        for j in 0..last_n {
            v.push(src[b + j * last_s]);
        }
    });
    Ok(v)
}

/// Elementwise `f(a, b)` with multidirectional broadcasting to `out`.
pub(crate) fn zip_broadcast<A: Copy, B: Copy, O>(
    a: &[A],
    ash: &[usize],
    b: &[B],
    bsh: &[usize],
    out: &[usize],
    mut f: impl FnMut(A, B) -> O,
) -> R<Vec<O>> {
    let n: usize = out.iter().product();
    if ash == out && bsh == out {
        return Ok(a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect());
    }
    if ash == out && b.len() == 1 {
        let y = b[0];
        return Ok(a.iter().map(|&x| f(x, y)).collect());
    }
    if bsh == out && a.len() == 1 {
        let x = a[0];
        return Ok(b.iter().map(|&y| f(x, y)).collect());
    }
    let sa = broadcast_strides(ash, out)?;
    let sb = broadcast_strides(bsh, out)?;
    let mut v = Vec::with_capacity(n);
    let (last_n, la, lb) = match out.len() {
        0 => (1, 0, 0),
        r => (out[r - 1], sa[r - 1], sb[r - 1]),
    };
    for_each_row(out, [&sa, &sb], |[ba, bb]| {
        for j in 0..last_n {
            v.push(f(a[ba + j * la], b[bb + j * lb]));
        }
    });
    Ok(v)
}

/// Per-axis gather: output element `(i0, i1, ..)` is `src[maps[0][i0], maps[1][i1], ..]`,
/// or `fill` when any map entry is `None`. Indices must be in range (checked).
pub(crate) fn gather_axes<T: Copy>(
    src: &[T],
    shape: &[usize],
    maps: &[Vec<Option<usize>>],
    fill: T,
) -> R<Vec<T>> {
    if maps.len() != shape.len() {
        return Err("internal: index maps do not match the rank".into());
    }
    for (a, m) in maps.iter().enumerate() {
        if m.iter().flatten().any(|&i| i >= shape[a]) {
            return Err(format!("internal: index out of range on axis {a}"));
        }
    }
    let st = strides(shape);
    // Offsets per axis (None = fill).
    let offs: Vec<Vec<Option<usize>>> = maps
        .iter()
        .zip(&st)
        .map(|(m, &s)| m.iter().map(|i| i.map(|i| i * s)).collect())
        .collect();
    let out_shape: Vec<usize> = maps.iter().map(Vec::len).collect();
    let n: usize = out_shape.iter().product();
    let mut v = Vec::with_capacity(n);
    if n == 0 {
        return Ok(v);
    }
    let r = out_shape.len();
    if r == 0 {
        v.push(src.first().copied().unwrap_or(fill));
        return Ok(v);
    }
    let mut idx = vec![0usize; r - 1];
    loop {
        // Base offset of this row, or None if any outer index maps to padding.
        let base: Option<usize> = idx
            .iter()
            .enumerate()
            .try_fold(0usize, |acc, (a, &i)| offs[a][i].map(|o| acc + o));
        match base {
            Some(b) => v.extend(offs[r - 1].iter().map(|o| o.map_or(fill, |o| src[b + o]))),
            None => v.extend(std::iter::repeat_n(fill, out_shape[r - 1])),
        }
        let mut ax = r - 1;
        loop {
            if ax == 0 {
                return Ok(v);
            }
            ax -= 1;
            idx[ax] += 1;
            if idx[ax] < out_shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

/// Round half to even on f32.
#[inline]
pub(crate) fn round_half_even(v: f32) -> f32 {
    v.round_ties_even()
}
