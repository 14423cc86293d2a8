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
    /// for depthwise and when [`qgemm_direct`]).
    pub tmp: Option<ValId>,
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
}

impl QKernel {
    pub(super) fn histogram_name(&self) -> String {
        match self {
            QKernel::Quantize { .. } => "quantize".into(),
            QKernel::Dequantize { .. } => "dequantize".into(),
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

/// A scalar (one-element) constant parameter of a quantization node.
fn scalar_const(g: &Graph, v: Value) -> Option<f64> {
    let t = g.const_value(v)?;
    match t.to_f64_vec().as_slice() {
        [x] => Some(*x),
        _ => None,
    }
}

impl Lower<'_> {
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
        let (x, tmp) = match kind {
            ConvKind::Depthwise => (self.pixel(x), None),
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
            })),
            vec![x],
            writes,
        );
        Ok(())
    }
}
