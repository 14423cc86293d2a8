//! Operators as data.
//!
//! Every op has fixed, fully resolved attributes: the frontend folds ONNX's optional inputs
//! (Clip bounds, Reshape shape, Slice starts, Resize scales, ...) into attributes, resolves
//! `auto_pad` into explicit pads and normalises negative axes, so every op here has one
//! meaning that the interpreter, the passes and the backends share.
//!
//! Layouts follow ONNX: activations NCHW, conv weights OIHW (`[M, C/group, kH, kW]`),
//! ConvTranspose weights `[C, M/group, kH, kW]`.

use crate::dtype::DType;
use crate::graph::ConstId;
use serde::{Deserialize, Serialize};

/// 2-D convolution attributes (ONNX `Conv` on NCHW).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
}

/// 2-D transposed convolution attributes. Output size per spatial axis:
/// `stride*(in-1) + output_padding + ((k-1)*dilation+1) - pad_begin - pad_end`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvTranspose2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
    pub output_padding: [usize; 2],
}

/// 2-D pooling window attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    /// Output size rounds up (a last, partial window may start inside the padded input).
    pub ceil_mode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    Relu,
    Sigmoid,
    Tanh,
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Reciprocal,
    Sign,
    Softplus,
    Softsign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Float division; integer division truncates toward zero.
    Div,
    Max,
    Min,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResizeMode {
    Nearest,
    /// Bilinear over the two innermost axes (or linear on any resized axis).
    Linear,
}

/// ONNX `coordinate_transformation_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CoordTransform {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

/// ONNX `nearest_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Resize attributes; the output shape is the node's output type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub mode: ResizeMode,
    pub coord: CoordTransform,
    pub nearest: NearestMode,
    /// One scale per axis (output / input, as ONNX defines it).
    pub scales: Vec<f32>,
}

/// QONNX rounding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoundingMode {
    /// Round half to even.
    Round,
    Floor,
    Ceil,
    /// Round toward zero.
    Trunc,
    /// Round half away from zero.
    RoundHalfUp,
}

/// One axis of a normalised slice: indices `start, start+step, ...` while `< end` (step > 0)
/// or `> end` (step < 0). `start`/`end` are already clamped to the axis as ONNX specifies;
/// for a negative step `end` may be -1 (meaning "through index 0").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SliceAxis {
    pub axis: usize,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// The activation at the end of a fused epilogue. Each one is the op [`Activation::ops`]
/// names, so the interpreter evaluates a fused op as the composition of existing kernels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// No activation.
    Identity,
    Relu,
    /// `Clip { min, max }` (ReLU6 is `Clip { 0, 6 }`).
    Clip {
        min: f64,
        max: f64,
    },
    HardSwish,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    Sigmoid,
    /// `x * sigmoid(x)` (SiLU / swish), as `Sigmoid` then `Mul(x, s)`.
    Silu,
    LeakyRelu {
        alpha: f32,
    },
    /// `PRelu` with a slope tensor; the slope is the op's last input.
    PRelu,
}

impl Activation {
    /// The activation an op computes on its first input, if it is one.
    pub fn from_op(op: &Op) -> Option<Activation> {
        Some(match op {
            Op::Identity => Activation::Identity,
            Op::Unary(UnaryOp::Relu) => Activation::Relu,
            Op::Unary(UnaryOp::HardSwish) => Activation::HardSwish,
            Op::Unary(UnaryOp::Sigmoid) => Activation::Sigmoid,
            Op::Clip { min, max } => Activation::Clip {
                min: *min,
                max: *max,
            },
            Op::HardSigmoid { alpha, beta } => Activation::HardSigmoid {
                alpha: *alpha,
                beta: *beta,
            },
            Op::LeakyRelu { alpha } => Activation::LeakyRelu { alpha: *alpha },
            Op::PRelu => Activation::PRelu,
            _ => return None,
        })
    }

    /// The ops that compute the activation, in order: none for `Identity`; `Sigmoid` then
    /// `Mul` (applied as `x * s`) for `Silu`; otherwise the one op (`PRelu` takes the slope
    /// as its second input).
    pub fn ops(self) -> Vec<Op> {
        match self {
            Activation::Identity => vec![],
            Activation::Relu => vec![Op::Unary(UnaryOp::Relu)],
            Activation::Clip { min, max } => vec![Op::Clip { min, max }],
            Activation::HardSwish => vec![Op::Unary(UnaryOp::HardSwish)],
            Activation::HardSigmoid { alpha, beta } => vec![Op::HardSigmoid { alpha, beta }],
            Activation::Sigmoid => vec![Op::Unary(UnaryOp::Sigmoid)],
            Activation::Silu => vec![Op::Unary(UnaryOp::Sigmoid), Op::Binary(BinaryOp::Mul)],
            Activation::LeakyRelu { alpha } => vec![Op::LeakyRelu { alpha }],
            Activation::PRelu => vec![Op::PRelu],
        }
    }

    /// The `.lnir` word of the activation.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Clip { .. } => "clip",
            Activation::HardSwish => "hard_swish",
            Activation::HardSigmoid { .. } => "hard_sigmoid",
            Activation::Sigmoid => "sigmoid",
            Activation::Silu => "silu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::PRelu => "prelu",
        }
    }

    /// Whether the activation reads a slope input (PReLU).
    pub fn has_slope(self) -> bool {
        self == Activation::PRelu
    }
}

/// Where a residual input is added in a fused epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Residual {
    /// No residual input.
    None,
    /// `act(conv + r)` (ResNet style; also MobileNetV2's linear bottleneck, whose activation
    /// is the identity).
    BeforeAct,
    /// `act(conv) + r`.
    AfterAct,
}

impl Residual {
    /// The `.lnir` word (`none`, `pre`, `post`).
    pub fn name(self) -> &'static str {
        match self {
            Residual::None => "none",
            Residual::BeforeAct => "pre",
            Residual::AfterAct => "post",
        }
    }
}

/// The epilogue of a fused convolution: bias (always), then the residual and the activation
/// in the order `residual` says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Epilogue {
    pub act: Activation,
    pub residual: Residual,
}

impl Epilogue {
    pub const NONE: Epilogue = Epilogue {
        act: Activation::Identity,
        residual: Residual::None,
    };

    /// Inputs the epilogue adds after `x, w, b`: the residual, then the PReLU slope.
    pub fn extra_inputs(&self) -> usize {
        (self.residual != Residual::None) as usize + self.act.has_slope() as usize
    }
}

/// One output channel of a [`Op::ChannelMap`]: channel `channel` of input `input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelRef {
    pub input: usize,
    pub channel: usize,
}

/// An operator with resolved attributes. Inputs are listed per variant in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A graph input; its type is the node's output type.
    Input,
    /// A constant from the pool.
    Const(ConstId),
    /// `x`.
    Identity,
    /// `x, w, [b]`.
    Conv(Conv2d),
    /// `x, w, [b]`.
    ConvTranspose(ConvTranspose2d),
    /// `x, scale, bias, mean, var` (inference mode).
    BatchNorm { epsilon: f32 },
    /// `x`.
    Unary(UnaryOp),
    /// `x`.
    LeakyRelu { alpha: f32 },
    /// `x`.
    Elu { alpha: f32 },
    /// `x`: `max(0, min(1, alpha*x + beta))`.
    HardSigmoid { alpha: f32, beta: f32 },
    /// `x`: bounds are `-inf/inf` when absent; integer tensors use them as integers.
    Clip { min: f64, max: f64 },
    /// `x, slope` (slope broadcast unidirectionally to x).
    PRelu,
    /// `a, b` with multidirectional broadcasting.
    Binary(BinaryOp),
    /// `x0, x1, ...` (at least one).
    Concat { axis: usize },
    /// `x` -> one output per size.
    Split { axis: usize, sizes: Vec<usize> },
    /// `x`.
    Slice { axes: Vec<SliceAxis> },
    /// `x`: the target shape is fully static.
    Reshape { shape: Vec<usize> },
    /// `x`.
    Transpose { perm: Vec<usize> },
    /// `data, indices` (ONNX Gather; negative indices allowed, out of range is an error).
    Gather { axis: usize },
    /// `x`: broadcast to `shape` (the already-broadcast output shape).
    Expand { shape: Vec<usize> },
    /// `x`.
    Cast { to: DType },
    /// `x`: `pads` is `[begin_0.., end_0..]`, negative values crop.
    Pad {
        pads: Vec<i64>,
        mode: PadMode,
        value: f32,
    },
    /// `x`.
    MaxPool(Pool2d),
    /// `x`.
    AveragePool {
        pool: Pool2d,
        count_include_pad: bool,
    },
    /// `x`.
    GlobalAveragePool,
    /// `x`.
    GlobalMaxPool,
    /// `x`: reduce over `axes` (sorted, unique; empty means all axes).
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// `a, b, [c]`: `alpha * op(a) @ op(b) + beta * c`.
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    /// `a, b` with numpy matmul semantics.
    MatMul,
    /// `x`: softmax (or log-softmax) along `axis`; with `coerce_2d` (opset < 13) the input is
    /// viewed as 2-D `[prod(shape[..axis]), prod(shape[axis..])]` and normalised per row.
    Softmax {
        axis: usize,
        coerce_2d: bool,
        log: bool,
    },
    /// `x`.
    Resize(Resize),
    /// `x, scale, zero_point`: output dtype is the zero point's dtype. Round half to even,
    /// saturate.
    QuantizeLinear { axis: Option<usize> },
    /// `x, scale, zero_point`.
    DequantizeLinear { axis: Option<usize> },
    /// `x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias(i32)]`.
    QLinearConv(Conv2d),
    /// `a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp`.
    QLinearMatMul,
    /// `x, w, x_zp, w_zp` -> i32.
    ConvInteger(Conv2d),
    /// `a, b, a_zp, b_zp` -> i32.
    MatMulInteger,
    /// QONNX `Quant` (fake quantization, float out): `x, scale, zero_point`.
    Quant {
        bits: u32,
        signed: bool,
        narrow: bool,
        rounding: RoundingMode,
    },
    /// QONNX `BipolarQuant`: `x, scale` -> `scale * (x >= 0 ? 1 : -1)`.
    BipolarQuant,
    /// QONNX `Trunc`: `x, scale, zero_point`.
    Trunc {
        in_bits: u32,
        out_bits: u32,
        rounding: RoundingMode,
        signed: bool,
        narrow: bool,
    },

    // ----- fused ops, made by the optimiser (not expressible in ONNX) ------------------
    /// `x, w, b, [r], [slope]`: `Conv` with a bias (always present), then the epilogue:
    /// `+ r` (when `residual` is `BeforeAct`), the activation, `+ r` (when `AfterAct`). `r`
    /// has the output's shape; `slope` is the PReLU slope (only for `Activation::PRelu`).
    /// By definition the composition `Conv → Add → act → Add` of the existing ops.
    FusedConv { conv: Conv2d, epilogue: Epilogue },
    /// `x, dw_w, dw_b, pw_w, pw_b, [r]`: a depthwise conv (`dw.group` = input channels) with
    /// bias and activation `dw_act`, then a pointwise conv (1x1, stride 1, no padding, one
    /// group) with bias and `epilogue`; the same as `FusedConv(dw) → FusedConv(pw)`. PReLU
    /// is not allowed in either activation.
    DwPw {
        dw: Conv2d,
        dw_act: Activation,
        epilogue: Epilogue,
    },
    /// `x, w, [c]`: the classifier head `GlobalAveragePool → Reshape [N, C] → Gemm` as one
    /// op (`Gemm` with `trans_a = false` and these attributes).
    Classifier {
        alpha: f32,
        beta: f32,
        trans_b: bool,
    },
    /// `x`: channel shuffle on axis 1, `Reshape [N, g, C/g, ...] → Transpose (swap 1, 2)
    /// → Reshape [N, C, ...]`: output channel `i * groups + j` is input channel
    /// `j * (C / groups) + i`.
    ChannelShuffle { groups: usize },
    /// `x0, x1, ...`: an index map on axis 1 (every other axis equal between inputs and
    /// output): output channel `k` is channel `map[k].channel` of input `map[k].input`.
    /// Concat, channel Split / Slice and shuffles compose into one map.
    ChannelMap { map: Vec<ChannelRef> },
}

/// The name ([`Op::name`]) of every op kind except `input` and `const`, in declaration order
/// (the `.lnir` parser and the e-graph language both use this one list).
pub const OP_NAMES: &[&str] = &[
    "identity",
    "conv",
    "conv_transpose",
    "batch_norm",
    "relu",
    "sigmoid",
    "tanh",
    "hard_swish",
    "exp",
    "log",
    "sqrt",
    "neg",
    "abs",
    "floor",
    "ceil",
    "round",
    "reciprocal",
    "sign",
    "softplus",
    "softsign",
    "leaky_relu",
    "elu",
    "hard_sigmoid",
    "clip",
    "prelu",
    "add",
    "sub",
    "mul",
    "div",
    "max",
    "min",
    "pow",
    "concat",
    "split",
    "slice",
    "reshape",
    "transpose",
    "gather",
    "expand",
    "cast",
    "pad",
    "max_pool",
    "average_pool",
    "global_average_pool",
    "global_max_pool",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "gemm",
    "matmul",
    "softmax",
    "resize",
    "quantize_linear",
    "dequantize_linear",
    "qlinear_conv",
    "qlinear_matmul",
    "conv_integer",
    "matmul_integer",
    "quant",
    "bipolar_quant",
    "trunc",
    "fused_conv",
    "dw_pw",
    "classifier",
    "channel_shuffle",
    "channel_map",
];

/// How many inputs an op takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exact(usize),
    Range(usize, usize),
    AtLeast(usize),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::Range(lo, hi) => (lo..=hi).contains(&n),
            Arity::AtLeast(lo) => n >= lo,
        }
    }
}

impl Op {
    /// The op's name in `.lnir` and in reports (snake_case, stable).
    pub fn name(&self) -> &'static str {
        use UnaryOp as U;
        match self {
            Op::Input => "input",
            Op::Const(_) => "const",
            Op::Identity => "identity",
            Op::Conv(_) => "conv",
            Op::ConvTranspose(_) => "conv_transpose",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Unary(u) => match u {
                U::Relu => "relu",
                U::Sigmoid => "sigmoid",
                U::Tanh => "tanh",
                U::HardSwish => "hard_swish",
                U::Exp => "exp",
                U::Log => "log",
                U::Sqrt => "sqrt",
                U::Neg => "neg",
                U::Abs => "abs",
                U::Floor => "floor",
                U::Ceil => "ceil",
                U::Round => "round",
                U::Reciprocal => "reciprocal",
                U::Sign => "sign",
                U::Softplus => "softplus",
                U::Softsign => "softsign",
            },
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Elu { .. } => "elu",
            Op::HardSigmoid { .. } => "hard_sigmoid",
            Op::Clip { .. } => "clip",
            Op::PRelu => "prelu",
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Max => "max",
                BinaryOp::Min => "min",
                BinaryOp::Pow => "pow",
            },
            Op::Concat { .. } => "concat",
            Op::Split { .. } => "split",
            Op::Slice { .. } => "slice",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Gather { .. } => "gather",
            Op::Expand { .. } => "expand",
            Op::Cast { .. } => "cast",
            Op::Pad { .. } => "pad",
            Op::MaxPool(_) => "max_pool",
            Op::AveragePool { .. } => "average_pool",
            Op::GlobalAveragePool => "global_average_pool",
            Op::GlobalMaxPool => "global_max_pool",
            Op::Reduce { kind, .. } => match kind {
                ReduceKind::Mean => "reduce_mean",
                ReduceKind::Sum => "reduce_sum",
                ReduceKind::Max => "reduce_max",
                ReduceKind::Min => "reduce_min",
            },
            Op::Gemm { .. } => "gemm",
            Op::MatMul => "matmul",
            Op::Softmax { .. } => "softmax",
            Op::Resize(_) => "resize",
            Op::QuantizeLinear { .. } => "quantize_linear",
            Op::DequantizeLinear { .. } => "dequantize_linear",
            Op::QLinearConv(_) => "qlinear_conv",
            Op::QLinearMatMul => "qlinear_matmul",
            Op::ConvInteger(_) => "conv_integer",
            Op::MatMulInteger => "matmul_integer",
            Op::Quant { .. } => "quant",
            Op::BipolarQuant => "bipolar_quant",
            Op::Trunc { .. } => "trunc",
            Op::FusedConv { .. } => "fused_conv",
            Op::DwPw { .. } => "dw_pw",
            Op::Classifier { .. } => "classifier",
            Op::ChannelShuffle { .. } => "channel_shuffle",
            Op::ChannelMap { .. } => "channel_map",
        }
    }

    /// Number of inputs the op takes.
    pub fn arity(&self) -> Arity {
        use Arity::*;
        match self {
            Op::Input | Op::Const(_) => Exact(0),
            Op::Conv(_) | Op::ConvTranspose(_) => Range(2, 3),
            Op::BatchNorm { .. } => Exact(5),
            Op::PRelu | Op::Binary(_) | Op::Gather { .. } | Op::MatMul | Op::BipolarQuant => {
                Exact(2)
            }
            Op::Concat { .. } => AtLeast(1),
            Op::Gemm { .. } => Range(2, 3),
            Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => Exact(3),
            Op::QLinearConv(_) => Range(8, 9),
            Op::QLinearMatMul => Exact(8),
            Op::ConvInteger(_) | Op::MatMulInteger => Exact(4),
            Op::Quant { .. } | Op::Trunc { .. } => Exact(3),
            Op::FusedConv { epilogue, .. } => Exact(3 + epilogue.extra_inputs()),
            Op::DwPw { epilogue, .. } => Exact(5 + epilogue.extra_inputs()),
            Op::Classifier { .. } => Range(2, 3),
            Op::ChannelMap { .. } => AtLeast(1),
            _ => Exact(1),
        }
    }

    /// Number of outputs the op produces.
    pub fn num_outputs(&self) -> usize {
        match self {
            Op::Split { sizes, .. } => sizes.len(),
            _ => 1,
        }
    }

    /// Whether the op is a multiply-accumulate layer (conv / gemm family).
    pub fn is_compute(&self) -> bool {
        matches!(
            self,
            Op::Conv(_)
                | Op::ConvTranspose(_)
                | Op::Gemm { .. }
                | Op::MatMul
                | Op::QLinearConv(_)
                | Op::QLinearMatMul
                | Op::ConvInteger(_)
                | Op::MatMulInteger
                | Op::FusedConv { .. }
                | Op::DwPw { .. }
                | Op::Classifier { .. }
        )
    }
}
