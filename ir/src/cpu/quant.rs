//! The integer (quantized) part of the CPU plan.
//!
//! What is lowered (everything bit-exact with `ir::interp`):
//! - `QuantizeLinear` / `DequantizeLinear` with a per-tensor (scalar) constant scale and
//!   zero point, f32 <-> u8/i8, as strided n-d loops ([`QKernel::Quantize`],
//!   [`QKernel::Dequantize`]). A `DequantizeLinear` of a constant (any axis) is evaluated at
//!   build time by the interpreter into a derived f32 constant.
//! - `QLinearConv` (u8/i8 activations and weights, scalar or per-channel weight scale and
//!   zero point, optional i32 bias, any group/stride/pad/dilation) as one [`QConv`]: the
//!   lowering resolves the per-channel weight zero points, the bias and the requantization
//!   multipliers `x_scale * w_scale[m] / y_scale` (f32, in that order, as the interpreter
//!   computes them); the emitter packs `w - w_zp[m]` for the kernel.
//! - A `QuantizeLinear` whose input is an elementwise function of one u8/i8 tensor (its
//!   `DequantizeLinear`, activations, Clip, scalar-constant arithmetic, inner Q/DQ pairs;
//!   e.g. the HardSwish, SiLU or HardSigmoid of a quantized model) as one table lookup
//!   ([`QKernel::Lut`]): the interpreter evaluates the chain on the 256 byte values at
//!   build time, so the table is the reference by construction.
//! - Views of integer tensors (Identity, Reshape, Flatten, Transpose, Slice, Split, Expand,
//!   Squeeze/Unsqueeze, Concat, ChannelShuffle, ChannelMap): byte views and byte copies; MaxPool of u8 /
//!   i8 maps (`lnc_qmaxpool`, the float kernel's geometry).
//!
//! Graph inputs and outputs stay f32 (a QDQ model's are); an integer graph input or output
//! is rejected naming it. Anything else integer is an `Error::Node`.

use super::*;

/// Element type of a plan value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Elem {
    #[default]
    F32,
    U8,
    I8,
    I32,
}

impl Elem {
    pub fn bytes(self) -> usize {
        match self {
            Elem::F32 | Elem::I32 => 4,
            Elem::U8 | Elem::I8 => 1,
        }
    }

    /// The element type storing a dtype, if the CPU backend has one.
    pub fn of(d: DType) -> Option<Elem> {
        match d {
            DType::F32 => Some(Elem::F32),
            DType::U8 => Some(Elem::U8),
            DType::I8 => Some(Elem::I8),
            DType::I32 => Some(Elem::I32),
            _ => None,
        }
    }

    /// `[min, max]` of an integer element type.
    pub fn int_range(self) -> Option<(i32, i32)> {
        match self {
            Elem::U8 => Some((0, 255)),
            Elem::I8 => Some((-128, 127)),
            _ => None,
        }
    }
}

/// Output pixels per register tile of the integer GEMM (`LNC_QMR` in C).
pub const QMR: usize = 6;
/// Output channels per packed weight panel of the integer GEMM (`LNC_QNR` in C).
pub const QNR: usize = 16;
/// Pixels per packed activation tile (`LNC_QROWS` in C), a multiple of [`QMR`].
pub const QROWS: usize = 66;

/// `K` of an integer GEMM padded to a multiple of 4 (operands go in 4-byte dot products).
pub fn qk_padded(k: usize) -> usize {
    k.div_ceil(4) * 4
}

/// Whether the integer GEMM reads pointwise rows in place (`LNC_QGEMM_DIRECT` in C): u8
/// activations and `K` a multiple of 4; otherwise rows are gathered into scratch.
pub fn qgemm_direct(pointwise: bool, x: Elem, k: usize) -> bool {
    pointwise && x == Elem::U8 && k.is_multiple_of(4)
}

/// How the GEMM of a `Direct` convolution reads receptive fields without gathering them
/// (`lnc_qconv_gemm_win`): in place from an image in which the field of output pixel
/// `(n, oh, ow)` starts at byte `n * img + oh * sh * row + ow * sw * pix`. The packed
/// weights hold each 4-byte group's offset from there; every run of contiguous taps is
/// padded to whole groups (weight 0 past the run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QWindow {
    pub img: usize,
    pub row: usize,
    pub pix: usize,
    /// The image is a copy of x in `tmp` (pixel-major, padded with `x_zp`, i8 flipped to
    /// u8); otherwise x itself (u8, no pads, no run needs padding).
    pub copy: bool,
}

impl QWindow {
    /// The window of a `Direct` convolution when it pays: group 1 and at most a third more
    /// `K` for the padding of the runs (a 3x3 conv on 3 channels: 27 -> 36), which buys
    /// reading the fields in place instead of gathering them per pixel. `x_strides`: the
    /// element strides (n, c, h, w) of x.
    pub fn of(g: &Geom, x: Elem, x_strides: &[isize]) -> Option<QWindow> {
        if g.group != 1 || !matches!(x, Elem::U8 | Elem::I8) {
            return None;
        }
        let k = g.kernel[0] * g.kernel[1] * g.c;
        let s = x_strides;
        let in_place = (x == Elem::U8
            && g.pads == [0; 4]
            && s.len() == 4
            && s[1] == 1
            && (s[0] > 0 || g.n == 1)
            && s[2] > 0
            && s[3] >= g.c as isize)
            .then(|| QWindow {
                img: s[0].max(0) as usize,
                row: s[2] as usize,
                pix: s[3] as usize,
                copy: false,
            })
            .filter(|w| w.runs(g).iter().all(|r| r.2 % 4 == 0));
        let win = in_place.unwrap_or_else(|| {
            let row = (g.w + g.pads[1] + g.pads[3]) * g.c;
            QWindow {
                img: (g.h + g.pads[0] + g.pads[2]) * row,
                row,
                pix: g.c,
                copy: true,
            }
        });
        let padded: usize = win.runs(g).iter().map(|r| r.2.div_ceil(4) * 4).sum();
        (padded <= k + k / 3 + 3).then_some(win)
    }

    /// Bytes of the copy (`tmp`): the padded images and 4 bytes a last group may read.
    pub fn copy_bytes(&self, g: &Geom) -> usize {
        g.n * self.img + 4
    }

    /// The runs of contiguous taps of a field: (byte offset, first `k`, length); `k` is
    /// `(ky * kw + kx) * c + ci`.
    fn runs(&self, g: &Geom) -> Vec<(usize, usize, usize)> {
        let ([kh, kw], [dh, dw], c) = (g.kernel, g.dilations, g.c);
        let mut runs = Vec::new();
        for ky in 0..kh {
            if dw == 1 && self.pix == c {
                runs.push((ky * dh * self.row, ky * kw * c, kw * c));
            } else {
                for kx in 0..kw {
                    runs.push((
                        ky * dh * self.row + kx * dw * self.pix,
                        (ky * kw + kx) * c,
                        c,
                    ));
                }
            }
        }
        runs
    }

    /// The 4-byte groups of a field: byte offset and, per byte, the `k` it multiplies
    /// (`None` past a run: weight 0).
    pub fn groups(&self, g: &Geom) -> Vec<(usize, [Option<usize>; 4])> {
        let mut out = Vec::new();
        for (off, k0, len) in self.runs(g) {
            for b in (0..len).step_by(4) {
                let ks = std::array::from_fn(|t| (b + t < len).then_some(k0 + b + t));
                out.push((off + b, ks));
            }
        }
        out
    }
}

/// A quantized convolution: `y = saturate(round_half_even(acc * mult[m]) + y_zp)` with
/// `acc = wrap_i32(sum (x - x_zp) * (w - w_zp[m])) + bias[m]` (wrapping i32).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QConv {
    /// `Pointwise` and `Direct` share the packed GEMM (`Direct` gathers receptive fields);
    /// `Depthwise` is vectorised across channels.
    pub kind: ConvKind,
    pub geom: Geom,
    /// Pixel-major for `Pointwise` / `Depthwise`; any layout for `Direct` (`xs` strides).
    pub x: ValId,
    /// Pixel-major.
    pub y: ValId,
    /// OIHW weight constant (u8 or i8).
    pub w: ConstId,
    pub x_zp: i32,
    /// Per output channel.
    pub w_zp: Vec<i32>,
    pub y_zp: i32,
    /// Per output channel (zeros without a bias input).
    pub bias: Vec<i32>,
    /// Per output channel: `x_scale * w_scale[m] / y_scale` in f32.
    pub mult: Vec<f32>,
    /// Gathered activation rows of the GEMM, `threads * QROWS * qk_padded(K)` bytes (`None`
    /// for depthwise and when [`qgemm_direct`]); with a copying window its image.
    pub tmp: Option<ValId>,
    /// `Direct` only: read the fields through this window instead of gathering them.
    pub win: Option<QWindow>,
}

impl QConv {
    /// The 4-byte groups of a GEMM row: byte offset and, per byte, the `k` it multiplies
    /// (`None`: weight 0). A window's ([`QWindow::groups`]), else consecutive groups of the
    /// gathered or pointwise row, `k = (ky, kx, c)` per conv group.
    pub fn row_groups(&self) -> Vec<(usize, [Option<usize>; 4])> {
        if let Some(w) = self.win {
            return w.groups(&self.geom);
        }
        let g = &self.geom;
        let k = g.kernel[0] * g.kernel[1] * (g.c / g.group.max(1));
        (0..k.div_ceil(4))
            .map(|gi| {
                let ks = std::array::from_fn(|t| Some(4 * gi + t).filter(|&v| v < k));
                (4 * gi, ks)
            })
            .collect()
    }
}

/// What an integer step computes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum QKernel {
    /// `y = saturate(round_half_even(x / scale) + zp)` (NaN gives `zp`) over the nest
    /// (operands x, y); `y` u8 or i8.
    Quantize {
        scale: f32,
        zp: i32,
        nest: Nest,
        x: ValId,
        y: ValId,
    },
    /// `y = (float)(x - zp) * scale` over the nest (operands x, y); `x` u8 or i8.
    Dequantize {
        scale: f32,
        zp: i32,
        nest: Nest,
        x: ValId,
        y: ValId,
    },
    Conv(QConv),
    /// `y = table[byte of x]` over the nest (operands x, y; u8 or i8 each): an elementwise
    /// chain from one quantized tensor to a `QuantizeLinear`, tabulated ([`plan_luts`]).
    Lut {
        table: Vec<u8>,
        nest: Nest,
        x: ValId,
        y: ValId,
    },
    /// A residual add (`mul`: a product, e.g. squeeze-and-excitation's per-channel scale)
    /// of two quantized tensors, the `DequantizeLinear`s, the f32 `Add` / `Mul` and the
    /// `QuantizeLinear` of a QDQ graph in one pass over bytes, each element computed as
    /// those steps compute it (so bit-exact): `y = saturate(round_half_even(((float)(a -
    /// a.zp) * a.scale + (float)(b - b.zp) * b.scale) / y.scale) + y.zp)` (`*` for `+`
    /// with `mul`), NaN giving `y.zp` (operands a, b, y; each u8 or i8; an operand may be
    /// broadcast: stride 0 in the nest).
    Add {
        mul: bool,
        a_q: (f32, i32),
        b_q: (f32, i32),
        y_q: (f32, i32),
        nest: Nest,
        a: ValId,
        b: ValId,
        y: ValId,
    },
}

impl QKernel {
    pub(super) fn histogram_name(&self) -> String {
        match self {
            QKernel::Quantize { .. } => "quantize".into(),
            QKernel::Dequantize { .. } => "dequantize".into(),
            QKernel::Add { mul: false, .. } => "qadd".into(),
            QKernel::Add { mul: true, .. } => "qmul".into(),
            QKernel::Lut { .. } => "qlut".into(),
            QKernel::Conv(c) => format!("qconv_{:?}", c.kind).to_lowercase(),
        }
    }
}

/// Whether node `id` is a view, copy or max pooling (exact on integers: `lnc_qmaxpool`) the
/// lowering may apply to integer tensors.
pub(super) fn int_view_ok(g: &Graph, id: NodeId) -> bool {
    let n = g.node(id);
    let int = |d: DType| matches!(d, DType::U8 | DType::I8);
    let view_op = matches!(
        n.op,
        Op::Identity
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Split { .. }
            | Op::Expand { .. }
            | Op::Concat { .. }
            | Op::ChannelShuffle { .. }
            | Op::MaxPool(_)
            | Op::ChannelMap { .. }
    );
    view_op
        && n.outputs.iter().all(|t| int(t.dtype))
        && g.node_inputs(id)
            .iter()
            .all(|v| int(g.value_type(*v).dtype))
}

/// A constant of the graph, or the value of a `DequantizeLinear` of constants (a QDQ graph's
/// quantized parameters of a float op, e.g. batch-norm statistics or PReLU slopes), evaluated
/// by the interpreter.
pub(super) fn const_or_dequantized(g: &Graph, v: Value) -> Option<std::borrow::Cow<'_, Tensor>> {
    if let Some(t) = g.const_value(v) {
        return Some(std::borrow::Cow::Borrowed(t));
    }
    let n = g.node(v.node);
    if !matches!(n.op, Op::DequantizeLinear { .. }) {
        return None;
    }
    let ts: Vec<&Tensor> = g
        .node_inputs(v.node)
        .iter()
        .map(|&i| g.const_value(i))
        .collect::<Option<_>>()?;
    crate::interp::eval_op(&n.op, &ts, &n.outputs)
        .ok()?
        .into_iter()
        .next()
        .map(std::borrow::Cow::Owned)
}

/// A tabulated `QuantizeLinear` ([`QKernel::Lut`]): `table[b]` is its output for the
/// byte `b` of `leaf` (an i8 leaf's byte is its two's complement).
#[derive(Debug, Clone)]
pub(super) struct Lut {
    pub leaf: Value,
    pub table: Vec<u8>,
}

/// Most nodes a tabulated chain may have (bounds the search).
const LUT_MAX_NODES: usize = 32;

/// The `QuantizeLinear` nodes whose input is an elementwise function of a single u8/i8
/// tensor of the output's shape, with their tables, and the nodes the tables make dead.
///
/// The chain may hold `DequantizeLinear` / `QuantizeLinear` with one-element constant
/// parameters, Identity, unary ops, LeakyRelu, Elu, HardSigmoid, Clip and binary ops whose
/// operands are chain values of the output's shape or one-element constants; its one
/// non-constant source (the `leaf`) is read by `DequantizeLinear`s. Every chain node must
/// be read only inside the chain (so none is needed elsewhere) and be no graph output.
/// The table is the interpreter's result on the 256 byte values: elementwise ops do not
/// depend on the position or the shape, so it is bit-exact by construction.
pub(super) fn plan_luts(
    g: &Graph,
    order: &[NodeId],
    live: &HashSet<NodeId>,
) -> Result<(HashMap<NodeId, Lut>, HashSet<NodeId>)> {
    let int = |d: DType| matches!(d, DType::U8 | DType::I8);
    let one_const = |v: Value| scalar_const(g, v).is_some();
    let qparams_ok = |n: NodeId| {
        let ins = g.node_inputs(n);
        ins.len() == 3 && one_const(ins[1]) && one_const(ins[2])
    };
    let mut luts = HashMap::new();
    let mut dead = HashSet::new();
    for &q in order {
        let qn = g.node(q);
        if !live.contains(&q)
            || !matches!(qn.op, Op::QuantizeLinear { .. })
            || !int(qn.outputs[0].dtype)
            || !qparams_ok(q)
        {
            continue;
        }
        let shape = &qn.outputs[0].shape;
        // Walk the chain back from q's input.
        let mut chain: HashSet<NodeId> = HashSet::new();
        let mut leaf: Option<Value> = None;
        let mut stack = vec![g.node_inputs(q)[0]];
        let mut ok = true;
        while let Some(v) = stack.pop() {
            let (pid, p) = (v.node, g.node(v.node));
            if chain.contains(&pid) {
                continue;
            }
            let same_shape = p.outputs.len() == 1 && &p.outputs[0].shape == shape;
            let elementwise = matches!(
                p.op,
                Op::Identity
                    | Op::Unary(_)
                    | Op::LeakyRelu { .. }
                    | Op::Elu { .. }
                    | Op::HardSigmoid { .. }
                    | Op::Clip { .. }
                    | Op::Binary(_)
            ) || (matches!(
                p.op,
                Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }
            ) && qparams_ok(pid));
            if !same_shape || !elementwise || chain.len() >= LUT_MAX_NODES {
                ok = false;
                break;
            }
            chain.insert(pid);
            let ins = g.node_inputs(pid);
            if let Op::DequantizeLinear { .. } = p.op {
                let x = ins[0];
                let src = &g.node(x.node).op;
                // An inner Q/DQ pair is walked through when the Q is read by this DQ alone;
                // a Q read elsewhere too (the input image's) is a byte tensor anyway, and
                // the chain's source.
                let inner = matches!(src, Op::QuantizeLinear { .. })
                    && g.users(x).iter().filter(|(u, _)| live.contains(u)).count() == 1;
                if !inner {
                    // The chain's source: one u8/i8 tensor of the output's shape.
                    let t = g.value_type(x);
                    if !int(t.dtype) || &t.shape != shape || leaf.is_some_and(|l| l != x) {
                        ok = false;
                        break;
                    }
                    leaf = Some(x);
                    continue;
                }
            }
            // Non-constant operands (a Q / DQ's scale and zero point are constants).
            stack.extend(ins.into_iter().filter(|&x| !one_const(x)));
        }
        let Some(leaf) = leaf.filter(|_| ok) else {
            continue;
        };
        // Every chain node is read only inside the chain (or by q) and is no output.
        let private = chain.iter().all(|&n| {
            g.node(n).outputs.iter().enumerate().all(|(port, _)| {
                let v = Value {
                    node: n,
                    port: port as u16,
                };
                !g.is_output(v)
                    && g.users(v)
                        .iter()
                        .all(|(u, _)| *u == q || chain.contains(u) || !live.contains(u))
            })
        });
        if !private {
            continue;
        }
        // Evaluate the chain on the 256 byte values, in graph order.
        let lt = g.value_type(leaf).dtype;
        let bytes: Vec<i64> = (0..256i64)
            .map(|b| {
                if lt == DType::I8 {
                    b as u8 as i8 as i64
                } else {
                    b
                }
            })
            .collect();
        let err = |m: String| Error::node(&qn.name, qn.op.name(), m);
        let mut vals: HashMap<Value, Tensor> = HashMap::new();
        vals.insert(leaf, Tensor::from_int(lt, &[256], bytes).map_err(err)?);
        for &n in order.iter().filter(|n| chain.contains(n) || **n == q) {
            let node = g.node(n);
            let ins: Vec<Tensor> = g
                .node_inputs(n)
                .iter()
                .map(|v| match vals.get(v) {
                    Some(t) => Ok(t.clone()),
                    None => g.const_value(*v).cloned().ok_or_else(|| {
                        err(format!("internal: table input {} not evaluated", node.name))
                    }),
                })
                .collect::<Result<_>>()?;
            let outs: Vec<crate::TensorType> = node
                .outputs
                .iter()
                .map(|t| crate::TensorType::new(t.dtype, vec![256]))
                .collect();
            let refs: Vec<&Tensor> = ins.iter().collect();
            let r = crate::interp::eval_op(&node.op, &refs, &outs).map_err(err)?;
            for (port, t) in r.into_iter().enumerate() {
                vals.insert(
                    Value {
                        node: n,
                        port: port as u16,
                    },
                    t,
                );
            }
        }
        let table: Vec<u8> = vals[&Value { node: q, port: 0 }]
            .to_i64_vec()
            .iter()
            .map(|&v| v as u8)
            .collect();
        // An earlier table whose QuantizeLinear this chain absorbs is not needed.
        luts.retain(|n, _| !chain.contains(n));
        dead.extend(chain);
        luts.insert(q, Lut { leaf, table });
    }
    Ok((luts, dead))
}

/// A scalar (one-element) constant parameter of a quantization node.
fn scalar_const(g: &Graph, v: Value) -> Option<f64> {
    let t = g.const_value(v)?;
    match t.to_f64_vec().as_slice() {
        [x] => Some(*x),
        _ => None,
    }
}

impl Lower<'_> {
    /// Fuse `QuantizeLinear(Add(DequantizeLinear(a), DequantizeLinear(b)))` and the same
    /// with `Mul` (operands of the output's shape or broadcast to it, the sum / product read
    /// only by the quantization) into one [`QKernel::Add`] at the place of the
    /// quantization; a dequantization whose only reader was the add goes away.
    pub(super) fn fuse_qadd(&mut self) {
        let readers = self.read_counts();
        let private = self.private_values();
        let writer = self.step_writers();
        let steps = &self.plan.steps;
        let dequantized = |v: ValId| -> Option<(usize, f32, i32, ValId)> {
            let &i = writer.get(&v)?;
            match &steps[i].kernel {
                Kernel::Quant(QKernel::Dequantize {
                    scale, zp, x, y, ..
                }) if *y == v => Some((i, *scale, *zp, *x)),
                _ => None,
            }
        };
        let mut drop = vec![false; steps.len()];
        let mut fused: HashMap<usize, Step> = HashMap::new();
        for (qi, st) in steps.iter().enumerate() {
            let Kernel::Quant(QKernel::Quantize {
                scale,
                zp,
                x: sum,
                y,
                ..
            }) = &st.kernel
            else {
                continue;
            };
            let Some(&ai) = writer.get(sum) else { continue };
            let Kernel::Binary {
                f: BinaryFn::Op(op @ (BinaryOp::Add | BinaryOp::Mul)),
                a,
                b,
                c: None,
                y: add_y,
                ..
            } = &steps[ai].kernel
            else {
                continue;
            };
            let shape = &self.plan.values[*y].shape;
            // Strides of a byte operand over the output's shape (0 on broadcast dims).
            let strides_over = |v: ValId| {
                let val = &self.plan.values[v];
                broadcast(&val.shape, &val.strides, shape)
            };
            if add_y != sum
                || readers.get(sum) != Some(&1)
                || !private[*sum]
                || drop[ai]
                || self.plan.values[*sum].shape != *shape
            {
                continue;
            }
            let (Some(da), Some(db)) = (dequantized(*a), dequantized(*b)) else {
                continue;
            };
            let (Some(sa), Some(sb)) = (strides_over(da.3), strides_over(db.3)) else {
                continue;
            };
            drop[ai] = true;
            for (d, v) in [(da.0, *a), (db.0, *b)] {
                // Its only reader (twice when a == b) was the add.
                let uses = if a == b { 2 } else { 1 };
                if readers.get(&v) == Some(&uses) && private[v] {
                    drop[d] = true;
                }
            }
            let (xa, xb) = (da.3, db.3);
            let nest = nest(shape, &[sa, sb, self.plan.values[*y].strides.clone()]);
            fused.insert(
                qi,
                Step {
                    node: st.node.clone(),
                    op: format!("{}+{}", steps[ai].op, st.op),
                    kernel: Kernel::Quant(QKernel::Add {
                        mul: *op == BinaryOp::Mul,
                        a_q: (da.1, da.2),
                        b_q: (db.1, db.2),
                        y_q: (*scale, *zp),
                        nest,
                        a: xa,
                        b: xb,
                        y: *y,
                    }),
                    reads: if xa == xb { vec![xa] } else { vec![xa, xb] },
                    writes: vec![*y],
                },
            );
        }
        let steps = std::mem::take(&mut self.plan.steps);
        self.plan.steps = steps
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !drop[*i])
            .map(|(i, s)| fused.remove(&i).unwrap_or(s))
            .collect();
    }

    /// Fuse a `DequantizeLinear` read only by a global average pool into the pool, which
    /// then reads the bytes (`Kernel::GlobalPool { dq }`) when they have the dequantized
    /// value's layout: one f32 pass less (squeeze-and-excitation's pooled map).
    pub(super) fn fuse_dq_pool(&mut self) {
        let readers = self.read_counts();
        let private = self.private_values();
        let writer = self.step_writers();
        let mut drop = vec![false; self.plan.steps.len()];
        for pi in 0..self.plan.steps.len() {
            let Kernel::GlobalPool {
                max: false,
                dq: None,
                x,
                ..
            } = self.plan.steps[pi].kernel
            else {
                continue;
            };
            let Some(&di) = writer.get(&x) else { continue };
            let Kernel::Quant(QKernel::Dequantize {
                scale,
                zp,
                x: xb,
                y,
                ..
            }) = self.plan.steps[di].kernel
            else {
                continue;
            };
            let (vx, vb) = (&self.plan.values[x], &self.plan.values[xb]);
            if y != x
                || readers.get(&x) != Some(&1)
                || !private[x]
                || drop[di]
                || vb.shape != vx.shape
                || vb.strides != vx.strides
            {
                continue;
            }
            drop[di] = true;
            let op = format!("{}+{}", self.plan.steps[di].op, self.plan.steps[pi].op);
            let st = &mut self.plan.steps[pi];
            if let Kernel::GlobalPool { dq, x, .. } = &mut st.kernel {
                *dq = Some((scale, zp));
                *x = xb;
            }
            st.reads = vec![xb];
            st.op = op;
        }
        let steps = std::mem::take(&mut self.plan.steps);
        self.plan.steps = steps
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !drop[*i])
            .map(|(_, s)| s)
            .collect();
    }

    pub(super) fn storage_elem(&self, s: Storage) -> Elem {
        match s {
            Storage::Arena(b) => self.plan.buffers[b].elem,
            Storage::Const(c) => Elem::of(self.g.const_tensor(c).dtype).unwrap_or(Elem::F32),
            Storage::Derived(d) => Elem::of(self.plan.derived[d].dtype).unwrap_or(Elem::F32),
            Storage::Input(_) | Storage::Output(_) => Elem::F32,
        }
    }

    /// Lower a quantization node; `false` when the node is not one.
    pub(super) fn lower_quant_node(&mut self, id: NodeId) -> Result<bool> {
        let g = self.g;
        let node = g.node(id);
        let ins = g.node_inputs(id);
        // A tabulated QuantizeLinear (plan_luts): one lookup from its chain's source.
        if let Some(Lut { leaf, table }) = self.luts.remove(&id) {
            let x = self.value(leaf)?;
            let y = self.output(id, 0, node.outputs[0].shape.len() == 4)?;
            let (xv, yv) = (&self.plan.values[x], &self.plan.values[y]);
            let ys = yv.strides.clone();
            let mut nest = nest(&yv.shape, &[xv.strides.clone(), ys.clone(), ys]);
            nest.strides.pop();
            self.step(
                Kernel::Quant(QKernel::Lut { table, nest, x, y }),
                vec![x],
                vec![y],
            );
            return Ok(true);
        }
        match &node.op {
            Op::QuantizeLinear { axis } | Op::DequantizeLinear { axis } => {
                let quantize = matches!(node.op, Op::QuantizeLinear { .. });
                let out = &node.outputs[0];
                if !quantize && g.const_value(ins[0]).is_some() {
                    // A dequantized constant (e.g. weights of a float op): evaluate it now.
                    let ts: Vec<&Tensor> = ins
                        .iter()
                        .map(|v| {
                            g.const_value(*v)
                                .ok_or_else(|| self.err("non-constant parameter"))
                        })
                        .collect::<Result<_>>()?;
                    let t = crate::interp::eval_op(&node.op, &ts, std::slice::from_ref(out))
                        .map_err(|e| self.err(e))?
                        .remove(0);
                    let v = self.derived(&node.name, t);
                    self.map.insert(Value { node: id, port: 0 }, v);
                    return Ok(true);
                }
                let (scale, zp) = match (scalar_const(g, ins[1]), scalar_const(g, ins[2])) {
                    (Some(s), Some(z)) => (s as f32, z as i32),
                    _ => {
                        return Err(self.err(
                            "the CPU backend needs a constant per-tensor (one-element) scale and zero point",
                        ))
                    }
                };
                let _ = axis;
                let qt = if quantize {
                    out.dtype
                } else {
                    g.value_type(ins[0]).dtype
                };
                if !matches!(qt, DType::U8 | DType::I8) {
                    return Err(self.err(format!(
                        "the CPU backend quantizes to u8 and i8 only, not {qt}"
                    )));
                }
                let other = if quantize {
                    g.value_type(ins[0]).dtype
                } else {
                    out.dtype
                };
                if other != DType::F32 {
                    return Err(self.err(format!("expected an f32 operand, got {other}")));
                }
                let x = self.value(ins[0])?;
                // Quantized 4-D maps are pixel-major (what the integer convolutions read);
                // a dequantized one keeps its input's layout.
                let pixel = if quantize {
                    out.shape.len() == 4
                } else {
                    self.plan.values[x].pixel_ld().is_some()
                };
                let y = self.output(id, 0, pixel)?;
                let (xv, yv) = (&self.plan.values[x], &self.plan.values[y]);
                // Loop order by the f32 operand's strides (its contiguous axis innermost, so
                // the float side is read or written with vector loads).
                let f32_strides = if quantize { &xv.strides } else { &yv.strides };
                let mut nest = nest(
                    &yv.shape,
                    &[xv.strides.clone(), yv.strides.clone(), f32_strides.clone()],
                );
                nest.strides.pop();
                let k = if quantize {
                    QKernel::Quantize {
                        scale,
                        zp,
                        nest,
                        x,
                        y,
                    }
                } else {
                    QKernel::Dequantize {
                        scale,
                        zp,
                        nest,
                        x,
                        y,
                    }
                };
                self.step(Kernel::Quant(k), vec![x], vec![y]);
                Ok(true)
            }
            Op::QLinearConv(c) => {
                self.qlinear_conv(id, c, &ins)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn qlinear_conv(&mut self, id: NodeId, c: &Conv2d, ins: &[Value]) -> Result<()> {
        let g = self.g;
        let node = g.node(id);
        let xt = g.try_value_type(ins[0])?.clone();
        let yt = node.outputs[0].clone();
        if !matches!(xt.dtype, DType::U8 | DType::I8) || !matches!(yt.dtype, DType::U8 | DType::I8)
        {
            return Err(self.err(format!(
                "the CPU backend runs u8/i8 quantized convolutions only ({} -> {})",
                xt.dtype, yt.dtype
            )));
        }
        for (slot, what) in [
            (1, "x_scale"),
            (2, "x_zero_point"),
            (3, "weight"),
            (4, "w_scale"),
            (5, "w_zero_point"),
            (6, "y_scale"),
            (7, "y_zero_point"),
        ] {
            if g.const_value(ins[slot]).is_none() {
                return Err(self.err(format!("the CPU backend needs a constant {what}")));
            }
        }
        let konst = |slot: usize| g.const_value(ins[slot]).map(|t| t.to_f64_vec());
        let one = |slot: usize, what: &str| -> Result<f64> {
            scalar_const(g, ins[slot])
                .ok_or_else(|| self.err(format!("{what} must have one element")))
        };
        let x_scale = one(1, "x_scale")? as f32;
        let x_zp = one(2, "x_zero_point")? as i32;
        let y_scale = one(6, "y_scale")? as f32;
        let y_zp = one(7, "y_zero_point")? as i32;
        let wt = g.try_value_type(ins[3])?.clone();
        if !matches!(wt.dtype, DType::U8 | DType::I8) {
            return Err(self.err(format!("weights must be u8 or i8, not {}", wt.dtype)));
        }
        let xs = xt.shape.clone();
        let ys = yt.shape.clone();
        if xs.len() != 4 || wt.shape.len() != 4 {
            return Err(self.err("the CPU backend supports 2-D quantized convolutions only"));
        }
        let m = ys[1];
        let per = |v: Vec<f64>, what: &str| -> Result<Vec<f64>> {
            match v.len() {
                1 => Ok(vec![v[0]; m]),
                n if n == m => Ok(v),
                n => Err(self.err(format!("{what} has {n} elements, expected 1 or {m}"))),
            }
        };
        let w_scale = per(konst(4).unwrap_or_default(), "w_scale")?;
        let w_zp: Vec<i32> = per(konst(5).unwrap_or_default(), "w_zero_point")?
            .iter()
            .map(|&v| v as i32)
            .collect();
        let mult: Vec<f32> = w_scale
            .iter()
            .map(|&ws| x_scale * ws as f32 / y_scale)
            .collect();
        if let Some(bad) = mult.iter().find(|v| !v.is_finite()) {
            return Err(self.err(format!(
                "requantization multiplier {bad} is not finite (degenerate scales)"
            )));
        }
        let bias: Vec<i32> = match ins.get(8) {
            Some(&b) => {
                let t = g
                    .const_value(b)
                    .ok_or_else(|| self.err("the CPU backend needs a constant bias"))?;
                if t.numel() != m {
                    return Err(self.err(format!("bias has {} elements, expected {m}", t.numel())));
                }
                t.to_i64_vec().iter().map(|&v| v as i32).collect()
            }
            None => vec![0; m],
        };
        let Op::Const(w) = g.node(ins[3].node).op else {
            return Err(self.err("the CPU backend needs a constant weight"));
        };
        let x = self.value(ins[0])?;
        let geom = self.conv_geom(&xs, &ys, c);
        let pointwise = c.kernel == [1, 1]
            && c.strides == [1, 1]
            && c.pads == [0; 4]
            && c.group == 1
            && geom.oh == geom.h
            && geom.ow == geom.w;
        let kind = if pointwise {
            ConvKind::Pointwise
        } else if c.group == geom.c && geom.m == geom.c && c.kernel[0] * c.kernel[1] <= 64 {
            ConvKind::Depthwise
        } else {
            ConvKind::Direct
        };
        let win = match kind {
            ConvKind::Direct => QWindow::of(
                &geom,
                self.plan.values[x].elem,
                &self.plan.values[x].strides,
            ),
            _ => None,
        };
        let (x, tmp) = match (kind, win) {
            (ConvKind::Depthwise, _) => (self.pixel(x), None),
            (_, Some(w)) => (
                x,
                w.copy.then(|| {
                    self.new_buffer_of(
                        &format!("{}.qwin", self.node),
                        &[w.copy_bytes(&geom)],
                        false,
                        Elem::U8,
                    )
                }),
            ),
            _ => {
                let x = if kind == ConvKind::Pointwise {
                    self.pixel(x)
                } else {
                    x
                };
                let k = c.kernel[0] * c.kernel[1] * (geom.c / c.group.max(1));
                let direct = qgemm_direct(kind == ConvKind::Pointwise, self.plan.values[x].elem, k);
                // Per thread QROWS rows of qk_padded(K) bytes.
                let t = (!direct).then(|| {
                    self.new_buffer_of(
                        &format!("{}.qpack", self.node),
                        &[self.threads * QROWS * qk_padded(k)],
                        false,
                        Elem::U8,
                    )
                });
                (x, t)
            }
        };
        let y = self.output(id, 0, true)?;
        let mut writes = vec![y];
        writes.extend(tmp);
        self.step(
            Kernel::Quant(QKernel::Conv(QConv {
                kind,
                geom,
                x,
                y,
                w,
                x_zp,
                w_zp,
                y_zp,
                bias,
                mult,
                tmp,
                win,
            })),
            vec![x],
            writes,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(c: usize, hw: usize, k: usize, s: usize, p: usize, d: usize) -> Geom {
        let o = (hw + 2 * p - d * (k - 1) - 1) / s + 1;
        Geom {
            n: 2,
            c,
            h: hw,
            w: hw,
            m: 8,
            oh: o,
            ow: o,
            kernel: [k, k],
            strides: [s, s],
            pads: [p; 4],
            dilations: [d, d],
            group: 1,
        }
    }

    /// Every byte a window group multiplies by a weight is the tap it stands for, in the
    /// image the kernel reads, and every tap has exactly one such byte.
    #[test]
    fn window_groups_address_their_taps() {
        let cases = [
            (geom(3, 9, 3, 2, 1, 1), Elem::U8, true), // first layer: copy (pads)
            (geom(8, 9, 1, 2, 0, 1), Elem::U8, false), // 1x1 / 2 on u8: in place
            (geom(8, 9, 1, 2, 0, 1), Elem::I8, true), // i8: the copy flips it
            (geom(4, 9, 3, 1, 2, 2), Elem::U8, true), // dilated: one run per tap
            (geom(6, 9, 3, 1, 0, 1), Elem::U8, true), // runs of 18 bytes need padding
        ];
        for (g, e, copy) in cases {
            let xs = pixel_major_strides(&g);
            let w = QWindow::of(&g, e, &xs).expect("window");
            assert_eq!(w.copy, copy, "{g:?}");
            let k = g.kernel[0] * g.kernel[1] * g.c;
            let mut seen = vec![0; k];
            for (n, oh, ow) in [(0, 0, 0), (1, g.oh - 1, g.ow - 1), (1, 1, g.ow / 2)] {
                let base = n * w.img + oh * g.strides[0] * w.row + ow * g.strides[1] * w.pix;
                for (off, ks) in w.groups(&g) {
                    for (t, kk) in ks.iter().enumerate() {
                        let Some(kk) = *kk else { continue };
                        let (tap, ci) = (kk / g.c, kk % g.c);
                        let (ky, kx) = (tap / g.kernel[1], tap % g.kernel[1]);
                        // Image coordinates (in the padded copy the field starts at oh * sh).
                        let ih = oh * g.strides[0] + ky * g.dilations[0];
                        let iw = ow * g.strides[1] + kx * g.dilations[1];
                        let want = n * w.img + ih * w.row + iw * w.pix + ci;
                        assert_eq!(base + off + t, want, "{g:?} k {kk}");
                        if (n, oh, ow) == (0, 0, 0) {
                            seen[kk] += 1;
                        }
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "every k once: {g:?}");
        }
        // Too much padding (1 channel, dilated: 1 -> 4 bytes per tap) or groups: gather.
        let g = geom(1, 9, 3, 1, 1, 2);
        assert_eq!(QWindow::of(&g, Elem::U8, &pixel_major_strides(&g)), None);
        let mut g = geom(8, 9, 3, 1, 1, 1);
        g.group = 2;
        assert_eq!(QWindow::of(&g, Elem::U8, &pixel_major_strides(&g)), None);
    }

    fn pixel_major_strides(g: &Geom) -> Vec<isize> {
        super::super::pixel_major(&[g.n, g.c, g.h, g.w], g.c)
    }
}
