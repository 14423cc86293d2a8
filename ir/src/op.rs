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
}

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
        )
    }
}
