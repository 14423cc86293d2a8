//! The `.lnir` spelling of every [`Op`]: its name ([`Op::name`]) plus named attributes.
//!
//! [`op_attrs`] takes an op apart for the printer; [`build_op`] puts it back together from
//! parsed attributes. Both match every variant without a wildcard, so a new op cannot be
//! added without giving it a text form. Attributes are printed in a fixed order; the parser
//! accepts any order, rejects unknown, duplicate and missing ones (only `Option` attributes,
//! printed when set, may be omitted), and bounds every size so that no later arithmetic on
//! them can overflow.

use super::lex::{Kind, PErr, PResult, Pos};
use crate::dtype::DType;
use crate::op::*;
use crate::types::MAX_ELEMENTS;

/// A printable attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    Int(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Word(String),
    Ints(Vec<i64>),
    F32s(Vec<f32>),
}

fn ints<T: Copy + TryInto<i64>>(v: &[T]) -> AttrValue {
    AttrValue::Ints(
        v.iter()
            .map(|&x| x.try_into().unwrap_or(i64::MAX))
            .collect(),
    )
}

fn int(v: usize) -> AttrValue {
    AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn word(s: &str) -> AttrValue {
    AttrValue::Word(s.to_string())
}

fn conv_attrs(c: &Conv2d) -> Vec<(&'static str, AttrValue)> {
    vec![
        ("kernel", ints(&c.kernel)),
        ("strides", ints(&c.strides)),
        ("pads", ints(&c.pads)),
        ("dilations", ints(&c.dilations)),
        ("group", int(c.group)),
    ]
}

fn pool_attrs(p: &Pool2d) -> Vec<(&'static str, AttrValue)> {
    vec![
        ("kernel", ints(&p.kernel)),
        ("strides", ints(&p.strides)),
        ("pads", ints(&p.pads)),
        ("dilations", ints(&p.dilations)),
        ("ceil_mode", AttrValue::Bool(p.ceil_mode)),
    ]
}

fn pad_mode_name(m: PadMode) -> &'static str {
    match m {
        PadMode::Constant => "constant",
        PadMode::Reflect => "reflect",
        PadMode::Edge => "edge",
    }
}

fn resize_mode_name(m: ResizeMode) -> &'static str {
    match m {
        ResizeMode::Nearest => "nearest",
        ResizeMode::Linear => "linear",
    }
}

fn coord_name(c: CoordTransform) -> &'static str {
    match c {
        CoordTransform::HalfPixel => "half_pixel",
        CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
        CoordTransform::AlignCorners => "align_corners",
        CoordTransform::Asymmetric => "asymmetric",
    }
}

fn nearest_name(n: NearestMode) -> &'static str {
    match n {
        NearestMode::RoundPreferFloor => "round_prefer_floor",
        NearestMode::RoundPreferCeil => "round_prefer_ceil",
        NearestMode::Floor => "floor",
        NearestMode::Ceil => "ceil",
    }
}

fn rounding_name(r: RoundingMode) -> &'static str {
    match r {
        RoundingMode::Round => "round",
        RoundingMode::Floor => "floor",
        RoundingMode::Ceil => "ceil",
        RoundingMode::Trunc => "trunc",
        RoundingMode::RoundHalfUp => "round_half_up",
    }
}

/// The attributes of an op in print order (empty for ops without attributes, and for
/// `input` / `const`, which have their own syntax).
pub(crate) fn op_attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    use AttrValue as A;
    match op {
        Op::Input
        | Op::Const(_)
        | Op::Identity
        | Op::Unary(_)
        | Op::PRelu
        | Op::Binary(_)
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::MatMul
        | Op::QLinearMatMul
        | Op::MatMulInteger
        | Op::BipolarQuant => vec![],
        Op::Conv(c) | Op::QLinearConv(c) | Op::ConvInteger(c) => conv_attrs(c),
        Op::ConvTranspose(c) => vec![
            ("kernel", ints(&c.kernel)),
            ("strides", ints(&c.strides)),
            ("pads", ints(&c.pads)),
            ("dilations", ints(&c.dilations)),
            ("group", int(c.group)),
            ("output_padding", ints(&c.output_padding)),
        ],
        Op::BatchNorm { epsilon } => vec![("epsilon", A::F32(*epsilon))],
        Op::LeakyRelu { alpha } | Op::Elu { alpha } => vec![("alpha", A::F32(*alpha))],
        Op::HardSigmoid { alpha, beta } => vec![("alpha", A::F32(*alpha)), ("beta", A::F32(*beta))],
        Op::Clip { min, max } => vec![("min", A::F64(*min)), ("max", A::F64(*max))],
        Op::Concat { axis } | Op::Gather { axis } => vec![("axis", int(*axis))],
        Op::Split { axis, sizes } => vec![("axis", int(*axis)), ("sizes", ints(sizes))],
        Op::Slice { axes } => vec![
            (
                "axes",
                A::Ints(
                    axes.iter()
                        .map(|a| i64::try_from(a.axis).unwrap_or(i64::MAX))
                        .collect(),
                ),
            ),
            ("starts", A::Ints(axes.iter().map(|a| a.start).collect())),
            ("ends", A::Ints(axes.iter().map(|a| a.end).collect())),
            ("steps", A::Ints(axes.iter().map(|a| a.step).collect())),
        ],
        Op::Reshape { shape } | Op::Expand { shape } => vec![("shape", ints(shape))],
        Op::Transpose { perm } => vec![("perm", ints(perm))],
        Op::Cast { to } => vec![("to", A::Word(to.to_string()))],
        Op::Pad { pads, mode, value } => vec![
            ("pads", A::Ints(pads.clone())),
            ("mode", word(pad_mode_name(*mode))),
            ("value", A::F32(*value)),
        ],
        Op::MaxPool(p) => pool_attrs(p),
        Op::AveragePool {
            pool,
            count_include_pad,
        } => {
            let mut v = pool_attrs(pool);
            v.push(("count_include_pad", A::Bool(*count_include_pad)));
            v
        }
        Op::Reduce {
            kind: _,
            axes,
            keepdims,
        } => {
            vec![("axes", ints(axes)), ("keepdims", A::Bool(*keepdims))]
        }
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => vec![
            ("alpha", A::F32(*alpha)),
            ("beta", A::F32(*beta)),
            ("trans_a", A::Bool(*trans_a)),
            ("trans_b", A::Bool(*trans_b)),
        ],
        Op::Softmax {
            axis,
            coerce_2d,
            log,
        } => vec![
            ("axis", int(*axis)),
            ("coerce_2d", A::Bool(*coerce_2d)),
            ("log", A::Bool(*log)),
        ],
        Op::Resize(r) => vec![
            ("mode", word(resize_mode_name(r.mode))),
            ("coord", word(coord_name(r.coord))),
            ("nearest", word(nearest_name(r.nearest))),
            ("scales", A::F32s(r.scales.clone())),
        ],
        Op::QuantizeLinear { axis } | Op::DequantizeLinear { axis } => match axis {
            Some(a) => vec![("axis", int(*a))],
            None => vec![],
        },
        Op::Quant {
            bits,
            signed,
            narrow,
            rounding,
        } => vec![
            ("bits", A::Int(*bits as i64)),
            ("signed", A::Bool(*signed)),
            ("narrow", A::Bool(*narrow)),
            ("rounding", word(rounding_name(*rounding))),
        ],
        Op::Trunc {
            in_bits,
            out_bits,
            rounding,
            signed,
            narrow,
        } => vec![
            ("in_bits", A::Int(*in_bits as i64)),
            ("out_bits", A::Int(*out_bits as i64)),
            ("rounding", word(rounding_name(*rounding))),
            ("signed", A::Bool(*signed)),
            ("narrow", A::Bool(*narrow)),
        ],
        Op::FusedConv { conv, epilogue } => {
            let mut v = conv_attrs(conv);
            v.extend(act_attrs(epilogue.act, ACT_KEYS));
            v.push(("residual", word(epilogue.residual.name())));
            v
        }
        Op::DwPw {
            dw,
            dw_act,
            epilogue,
        } => {
            let mut v = conv_attrs(dw);
            v.extend(act_attrs(*dw_act, DW_ACT_KEYS));
            v.extend(act_attrs(epilogue.act, ACT_KEYS));
            v.push(("residual", word(epilogue.residual.name())));
            v
        }
        Op::Classifier {
            alpha,
            beta,
            trans_b,
        } => vec![
            ("alpha", A::F32(*alpha)),
            ("beta", A::F32(*beta)),
            ("trans_b", A::Bool(*trans_b)),
        ],
        Op::ChannelShuffle { groups } => vec![("groups", int(*groups))],
        Op::ChannelMap { map } => vec![
            (
                "inputs",
                ints(&map.iter().map(|r| r.input).collect::<Vec<_>>()),
            ),
            (
                "channels",
                ints(&map.iter().map(|r| r.channel).collect::<Vec<_>>()),
            ),
        ],
    }
}

/// Attribute names of an activation: the word, then `alpha`/`beta` (f32) or `min`/`max`
/// (f64) where the activation has them.
struct ActKeys {
    act: &'static str,
    alpha: &'static str,
    beta: &'static str,
    min: &'static str,
    max: &'static str,
}

const ACT_KEYS: &ActKeys = &ActKeys {
    act: "act",
    alpha: "alpha",
    beta: "beta",
    min: "min",
    max: "max",
};

const DW_ACT_KEYS: &ActKeys = &ActKeys {
    act: "dw_act",
    alpha: "dw_alpha",
    beta: "dw_beta",
    min: "dw_min",
    max: "dw_max",
};

fn act_attrs(a: Activation, k: &ActKeys) -> Vec<(&'static str, AttrValue)> {
    let mut v = vec![(k.act, word(a.name()))];
    match a {
        Activation::Clip { min, max } => {
            v.push((k.min, AttrValue::F64(min)));
            v.push((k.max, AttrValue::F64(max)));
        }
        Activation::HardSigmoid { alpha, beta } => {
            v.push((k.alpha, AttrValue::F32(alpha)));
            v.push((k.beta, AttrValue::F32(beta)));
        }
        Activation::LeakyRelu { alpha } => v.push((k.alpha, AttrValue::F32(alpha))),
        _ => {}
    }
    v
}

// ----- parsing ------------------------------------------------------------------------

/// A parsed attribute value; numbers stay text until the op says which type they have (so
/// an `f32` is parsed as `f32`, never rounded twice through `f64`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Num(String),
    Word(String),
    List(Vec<RawVal>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawVal {
    pub raw: Raw,
    pub pos: Pos,
}

/// One `key=value` as parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawAttr {
    pub key: String,
    pub pos: Pos,
    pub value: RawVal,
}

/// Parse an `f32` from a number or word token: decimal, `nan`, `inf`, `-inf`, or raw bits
/// as `0x` followed by hex digits.
pub(crate) fn parse_f32(kind: Kind, text: &str) -> Result<f32, String> {
    match (kind, text) {
        (Kind::Word, "nan") => Ok(f32::NAN),
        (Kind::Word, "inf") => Ok(f32::INFINITY),
        (Kind::Word, "-inf") => Ok(f32::NEG_INFINITY),
        (Kind::Num, t) => {
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u32::from_str_radix(h, 16)
                    .map(f32::from_bits)
                    .map_err(|_| format!("'{t}' is not 32-bit float bits"))
            } else {
                t.parse::<f32>()
                    .map_err(|_| format!("'{t}' is not a number"))
            }
        }
        _ => Err(format!("expected a number, found '{text}'")),
    }
}

/// Like [`parse_f32`] for `f64` (raw bits are 64-bit).
pub(crate) fn parse_f64(kind: Kind, text: &str) -> Result<f64, String> {
    match (kind, text) {
        (Kind::Word, "nan") => Ok(f64::NAN),
        (Kind::Word, "inf") => Ok(f64::INFINITY),
        (Kind::Word, "-inf") => Ok(f64::NEG_INFINITY),
        (Kind::Num, t) => {
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u64::from_str_radix(h, 16)
                    .map(f64::from_bits)
                    .map_err(|_| format!("'{t}' is not 64-bit float bits"))
            } else {
                t.parse::<f64>()
                    .map_err(|_| format!("'{t}' is not a number"))
            }
        }
        _ => Err(format!("expected a number, found '{text}'")),
    }
}

/// Parse an integer literal (decimal only).
pub(crate) fn parse_i64(kind: Kind, text: &str) -> Result<i64, String> {
    if kind != Kind::Num {
        return Err(format!("expected an integer, found '{text}'"));
    }
    text.parse::<i64>().map_err(|_| {
        if text.contains(['.', 'e', 'E', 'x', 'X']) {
            format!("expected an integer, found '{text}'")
        } else {
            format!("integer '{text}' is out of range")
        }
    })
}

fn raw_kind(r: &Raw) -> Kind {
    match r {
        Raw::Num(_) => Kind::Num,
        _ => Kind::Word,
    }
}

/// Largest size-like attribute (kernel, stride, axis, ...) accepted.
const MAX_SIZE: usize = MAX_ELEMENTS;
/// Largest magnitude of signed index-like attributes (pads, slice bounds).
const MAX_INDEX: i64 = MAX_ELEMENTS as i64;

/// Typed access to the attributes of one op, with positions for errors.
pub(crate) struct Attrs<'a> {
    op: &'a str,
    pos: Pos,
    items: Vec<(RawAttr, bool)>,
}

impl<'a> Attrs<'a> {
    /// `pos` is where the op name is (errors about missing attributes point there).
    pub fn new(op: &'a str, pos: Pos, attrs: Vec<RawAttr>) -> PResult<Self> {
        for (i, a) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|b| b.key == a.key) {
                return Err(PErr::new(
                    a.pos,
                    format!("{op}: duplicate attribute '{}'", a.key),
                ));
            }
        }
        Ok(Attrs {
            op,
            pos,
            items: attrs.into_iter().map(|a| (a, false)).collect(),
        })
    }

    fn err(&self, pos: Pos, key: &str, msg: impl std::fmt::Display) -> PErr {
        PErr::new(pos, format!("{}: attribute '{key}': {msg}", self.op))
    }

    fn take(&mut self, key: &str) -> Option<RawVal> {
        let item = self.items.iter_mut().find(|(a, _)| a.key == key)?;
        item.1 = true;
        Some(item.0.value.clone())
    }

    fn req(&mut self, key: &str) -> PResult<RawVal> {
        self.take(key)
            .ok_or_else(|| PErr::new(self.pos, format!("{}: missing attribute '{key}'", self.op)))
    }

    /// Every attribute must have been used.
    pub fn finish(self) -> PResult<()> {
        match self.items.iter().find(|(_, used)| !used) {
            None => Ok(()),
            Some((a, _)) => Err(PErr::new(
                a.pos,
                format!("{}: unknown attribute '{}'", self.op, a.key),
            )),
        }
    }

    fn scalar_i64(&self, key: &str, v: &RawVal) -> PResult<i64> {
        match &v.raw {
            Raw::List(_) => Err(self.err(v.pos, key, "expected an integer, found a list")),
            r @ (Raw::Num(t) | Raw::Word(t)) => {
                parse_i64(raw_kind(r), t).map_err(|m| self.err(v.pos, key, m))
            }
        }
    }

    fn to_usize(&self, key: &str, v: &RawVal) -> PResult<usize> {
        let i = self.scalar_i64(key, v)?;
        if i < 0 || i as u64 > MAX_SIZE as u64 {
            return Err(self.err(v.pos, key, format!("{i} is out of range 0..={MAX_SIZE}")));
        }
        Ok(i as usize)
    }

    fn to_index(&self, key: &str, v: &RawVal) -> PResult<i64> {
        let i = self.scalar_i64(key, v)?;
        if i.unsigned_abs() > MAX_INDEX as u64 {
            return Err(self.err(v.pos, key, format!("{i} is out of range ±{MAX_INDEX}")));
        }
        Ok(i)
    }

    fn list(&self, key: &str, v: RawVal) -> PResult<Vec<RawVal>> {
        match v.raw {
            Raw::List(items) => Ok(items),
            _ => Err(self.err(v.pos, key, "expected a list")),
        }
    }

    pub fn usize(&mut self, key: &str) -> PResult<usize> {
        let v = self.req(key)?;
        self.to_usize(key, &v)
    }

    pub fn opt_usize(&mut self, key: &str) -> PResult<Option<usize>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => self.to_usize(key, &v).map(Some),
        }
    }

    pub fn u32(&mut self, key: &str, max: u32) -> PResult<u32> {
        let v = self.req(key)?;
        let i = self.scalar_i64(key, &v)?;
        if i < 0 || i > max as i64 {
            return Err(self.err(v.pos, key, format!("{i} is out of range 0..={max}")));
        }
        Ok(i as u32)
    }

    pub fn usizes(&mut self, key: &str) -> PResult<Vec<usize>> {
        let v = self.req(key)?;
        self.list(key, v)?
            .iter()
            .map(|x| self.to_usize(key, x))
            .collect()
    }

    pub fn indices(&mut self, key: &str) -> PResult<Vec<i64>> {
        let v = self.req(key)?;
        self.list(key, v)?
            .iter()
            .map(|x| self.to_index(key, x))
            .collect()
    }

    /// A fixed-length list of sizes; with `positive`, zero is rejected.
    pub fn array<const N: usize>(&mut self, key: &str, positive: bool) -> PResult<[usize; N]> {
        let v = self.req(key)?;
        let pos = v.pos;
        let items = self.usizes_of(key, v)?;
        let arr: [usize; N] = items.try_into().map_err(|v: Vec<usize>| {
            self.err(pos, key, format!("expected {N} values, got {}", v.len()))
        })?;
        if positive && arr.contains(&0) {
            return Err(self.err(pos, key, "values must be positive"));
        }
        Ok(arr)
    }

    fn usizes_of(&self, key: &str, v: RawVal) -> PResult<Vec<usize>> {
        self.list(key, v)?
            .iter()
            .map(|x| self.to_usize(key, x))
            .collect()
    }

    fn float_of<T>(
        &self,
        key: &str,
        v: &RawVal,
        f: fn(Kind, &str) -> Result<T, String>,
    ) -> PResult<T> {
        match &v.raw {
            Raw::List(_) => Err(self.err(v.pos, key, "expected a number, found a list")),
            r @ (Raw::Num(t) | Raw::Word(t)) => {
                f(raw_kind(r), t).map_err(|m| self.err(v.pos, key, m))
            }
        }
    }

    pub fn f32(&mut self, key: &str) -> PResult<f32> {
        let v = self.req(key)?;
        self.float_of(key, &v, parse_f32)
    }

    pub fn f64(&mut self, key: &str) -> PResult<f64> {
        let v = self.req(key)?;
        self.float_of(key, &v, parse_f64)
    }

    pub fn f32s(&mut self, key: &str) -> PResult<Vec<f32>> {
        let v = self.req(key)?;
        self.list(key, v)?
            .iter()
            .map(|x| self.float_of(key, x, parse_f32))
            .collect()
    }

    pub fn bool(&mut self, key: &str) -> PResult<bool> {
        let v = self.req(key)?;
        match &v.raw {
            Raw::Word(w) if w == "true" => Ok(true),
            Raw::Word(w) if w == "false" => Ok(false),
            _ => Err(self.err(v.pos, key, "expected true or false")),
        }
    }

    /// A word from a fixed set, mapped to its value.
    pub fn choice<T: Copy>(&mut self, key: &str, choices: &[(&str, T)]) -> PResult<T> {
        let v = self.req(key)?;
        if let Raw::Word(w) = &v.raw {
            if let Some((_, t)) = choices.iter().find(|(n, _)| n == w) {
                return Ok(*t);
            }
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        Err(self.err(v.pos, key, format!("expected one of {}", names.join(", "))))
    }

    pub fn dtype(&mut self, key: &str) -> PResult<DType> {
        let v = self.req(key)?;
        match &v.raw {
            Raw::Word(w) => w.parse::<DType>().map_err(|m| self.err(v.pos, key, m)),
            _ => Err(self.err(v.pos, key, "expected a dtype")),
        }
    }

    fn conv(&mut self) -> PResult<Conv2d> {
        Ok(Conv2d {
            kernel: self.array("kernel", true)?,
            strides: self.array("strides", true)?,
            pads: self.array("pads", false)?,
            dilations: self.array("dilations", true)?,
            group: self.positive("group")?,
        })
    }

    fn positive(&mut self, key: &str) -> PResult<usize> {
        let v = self.req(key)?;
        let n = self.to_usize(key, &v)?;
        if n == 0 {
            return Err(self.err(v.pos, key, "must be positive"));
        }
        Ok(n)
    }

    fn pool(&mut self) -> PResult<Pool2d> {
        Ok(Pool2d {
            kernel: self.array("kernel", true)?,
            strides: self.array("strides", true)?,
            pads: self.array("pads", false)?,
            dilations: self.array("dilations", true)?,
            ceil_mode: self.bool("ceil_mode")?,
        })
    }

    fn activation(&mut self, k: &ActKeys) -> PResult<Activation> {
        #[derive(Clone, Copy)]
        enum W {
            Plain(Activation),
            Clip,
            HardSigmoid,
            Leaky,
        }
        let w = self.choice(
            k.act,
            &[
                ("identity", W::Plain(Activation::Identity)),
                ("relu", W::Plain(Activation::Relu)),
                ("clip", W::Clip),
                ("hard_swish", W::Plain(Activation::HardSwish)),
                ("hard_sigmoid", W::HardSigmoid),
                ("sigmoid", W::Plain(Activation::Sigmoid)),
                ("silu", W::Plain(Activation::Silu)),
                ("leaky_relu", W::Leaky),
                ("prelu", W::Plain(Activation::PRelu)),
            ],
        )?;
        Ok(match w {
            W::Plain(a) => a,
            W::Clip => Activation::Clip {
                min: self.f64(k.min)?,
                max: self.f64(k.max)?,
            },
            W::HardSigmoid => Activation::HardSigmoid {
                alpha: self.f32(k.alpha)?,
                beta: self.f32(k.beta)?,
            },
            W::Leaky => Activation::LeakyRelu {
                alpha: self.f32(k.alpha)?,
            },
        })
    }

    fn residual(&mut self) -> PResult<Residual> {
        self.choice(
            "residual",
            &[
                ("none", Residual::None),
                ("pre", Residual::BeforeAct),
                ("post", Residual::AfterAct),
            ],
        )
    }

    fn rounding(&mut self) -> PResult<RoundingMode> {
        use RoundingMode as R;
        self.choice(
            "rounding",
            &[
                ("round", R::Round),
                ("floor", R::Floor),
                ("ceil", R::Ceil),
                ("trunc", R::Trunc),
                ("round_half_up", R::RoundHalfUp),
            ],
        )
    }
}

/// Every op name the parser knows, besides `input` and `const`.
pub(crate) use crate::op::OP_NAMES;

/// Build an op from its name and attributes; `Ok(None)` for an unknown name.
pub(crate) fn build_op(name: &str, a: &mut Attrs) -> PResult<Option<Op>> {
    use BinaryOp as B;
    use UnaryOp as U;
    let op = match name {
        "identity" => Op::Identity,
        "conv" => Op::Conv(a.conv()?),
        "conv_transpose" => Op::ConvTranspose(ConvTranspose2d {
            kernel: a.array("kernel", true)?,
            strides: a.array("strides", true)?,
            pads: a.array("pads", false)?,
            dilations: a.array("dilations", true)?,
            group: a.positive("group")?,
            output_padding: a.array("output_padding", false)?,
        }),
        "batch_norm" => Op::BatchNorm {
            epsilon: a.f32("epsilon")?,
        },
        "relu" => Op::Unary(U::Relu),
        "sigmoid" => Op::Unary(U::Sigmoid),
        "tanh" => Op::Unary(U::Tanh),
        "hard_swish" => Op::Unary(U::HardSwish),
        "exp" => Op::Unary(U::Exp),
        "log" => Op::Unary(U::Log),
        "sqrt" => Op::Unary(U::Sqrt),
        "neg" => Op::Unary(U::Neg),
        "abs" => Op::Unary(U::Abs),
        "floor" => Op::Unary(U::Floor),
        "ceil" => Op::Unary(U::Ceil),
        "round" => Op::Unary(U::Round),
        "reciprocal" => Op::Unary(U::Reciprocal),
        "sign" => Op::Unary(U::Sign),
        "softplus" => Op::Unary(U::Softplus),
        "softsign" => Op::Unary(U::Softsign),
        "leaky_relu" => Op::LeakyRelu {
            alpha: a.f32("alpha")?,
        },
        "elu" => Op::Elu {
            alpha: a.f32("alpha")?,
        },
        "hard_sigmoid" => Op::HardSigmoid {
            alpha: a.f32("alpha")?,
            beta: a.f32("beta")?,
        },
        "clip" => Op::Clip {
            min: a.f64("min")?,
            max: a.f64("max")?,
        },
        "prelu" => Op::PRelu,
        "add" => Op::Binary(B::Add),
        "sub" => Op::Binary(B::Sub),
        "mul" => Op::Binary(B::Mul),
        "div" => Op::Binary(B::Div),
        "max" => Op::Binary(B::Max),
        "min" => Op::Binary(B::Min),
        "pow" => Op::Binary(B::Pow),
        "concat" => Op::Concat {
            axis: a.usize("axis")?,
        },
        "split" => Op::Split {
            axis: a.usize("axis")?,
            sizes: a.usizes("sizes")?,
        },
        "slice" => {
            let axes = a.usizes("axes")?;
            let starts = a.indices("starts")?;
            let ends = a.indices("ends")?;
            let steps = a.indices("steps")?;
            if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
                return Err(PErr::new(
                    a.pos,
                    "slice: axes, starts, ends and steps must have the same length",
                ));
            }
            Op::Slice {
                axes: (0..axes.len())
                    .map(|i| SliceAxis {
                        axis: axes[i],
                        start: starts[i],
                        end: ends[i],
                        step: steps[i],
                    })
                    .collect(),
            }
        }
        "reshape" => Op::Reshape {
            shape: a.usizes("shape")?,
        },
        "transpose" => Op::Transpose {
            perm: a.usizes("perm")?,
        },
        "gather" => Op::Gather {
            axis: a.usize("axis")?,
        },
        "expand" => Op::Expand {
            shape: a.usizes("shape")?,
        },
        "cast" => Op::Cast { to: a.dtype("to")? },
        "pad" => Op::Pad {
            pads: a.indices("pads")?,
            mode: a.choice(
                "mode",
                &[
                    ("constant", PadMode::Constant),
                    ("reflect", PadMode::Reflect),
                    ("edge", PadMode::Edge),
                ],
            )?,
            value: a.f32("value")?,
        },
        "max_pool" => Op::MaxPool(a.pool()?),
        "average_pool" => Op::AveragePool {
            pool: a.pool()?,
            count_include_pad: a.bool("count_include_pad")?,
        },
        "global_average_pool" => Op::GlobalAveragePool,
        "global_max_pool" => Op::GlobalMaxPool,
        "reduce_mean" | "reduce_sum" | "reduce_max" | "reduce_min" => Op::Reduce {
            kind: match name {
                "reduce_mean" => ReduceKind::Mean,
                "reduce_sum" => ReduceKind::Sum,
                "reduce_max" => ReduceKind::Max,
                _ => ReduceKind::Min,
            },
            axes: a.usizes("axes")?,
            keepdims: a.bool("keepdims")?,
        },
        "gemm" => Op::Gemm {
            alpha: a.f32("alpha")?,
            beta: a.f32("beta")?,
            trans_a: a.bool("trans_a")?,
            trans_b: a.bool("trans_b")?,
        },
        "matmul" => Op::MatMul,
        "softmax" => Op::Softmax {
            axis: a.usize("axis")?,
            coerce_2d: a.bool("coerce_2d")?,
            log: a.bool("log")?,
        },
        "resize" => {
            use CoordTransform as C;
            use NearestMode as N;
            Op::Resize(Resize {
                mode: a.choice(
                    "mode",
                    &[
                        ("nearest", ResizeMode::Nearest),
                        ("linear", ResizeMode::Linear),
                    ],
                )?,
                coord: a.choice(
                    "coord",
                    &[
                        ("half_pixel", C::HalfPixel),
                        ("pytorch_half_pixel", C::PytorchHalfPixel),
                        ("align_corners", C::AlignCorners),
                        ("asymmetric", C::Asymmetric),
                    ],
                )?,
                nearest: a.choice(
                    "nearest",
                    &[
                        ("round_prefer_floor", N::RoundPreferFloor),
                        ("round_prefer_ceil", N::RoundPreferCeil),
                        ("floor", N::Floor),
                        ("ceil", N::Ceil),
                    ],
                )?,
                scales: a.f32s("scales")?,
            })
        }
        "quantize_linear" => Op::QuantizeLinear {
            axis: a.opt_usize("axis")?,
        },
        "dequantize_linear" => Op::DequantizeLinear {
            axis: a.opt_usize("axis")?,
        },
        "qlinear_conv" => Op::QLinearConv(a.conv()?),
        "qlinear_matmul" => Op::QLinearMatMul,
        "conv_integer" => Op::ConvInteger(a.conv()?),
        "matmul_integer" => Op::MatMulInteger,
        "quant" => Op::Quant {
            bits: a.u32("bits", 64)?,
            signed: a.bool("signed")?,
            narrow: a.bool("narrow")?,
            rounding: a.rounding()?,
        },
        "bipolar_quant" => Op::BipolarQuant,
        "trunc" => Op::Trunc {
            in_bits: a.u32("in_bits", 64)?,
            out_bits: a.u32("out_bits", 64)?,
            rounding: a.rounding()?,
            signed: a.bool("signed")?,
            narrow: a.bool("narrow")?,
        },
        "fused_conv" => Op::FusedConv {
            conv: a.conv()?,
            epilogue: Epilogue {
                act: a.activation(ACT_KEYS)?,
                residual: a.residual()?,
            },
        },
        "dw_pw" => Op::DwPw {
            dw: a.conv()?,
            dw_act: a.activation(DW_ACT_KEYS)?,
            epilogue: Epilogue {
                act: a.activation(ACT_KEYS)?,
                residual: a.residual()?,
            },
        },
        "classifier" => Op::Classifier {
            alpha: a.f32("alpha")?,
            beta: a.f32("beta")?,
            trans_b: a.bool("trans_b")?,
        },
        "channel_shuffle" => Op::ChannelShuffle {
            groups: a.positive("groups")?,
        },
        "channel_map" => {
            let inputs = a.usizes("inputs")?;
            let channels = a.usizes("channels")?;
            if inputs.len() != channels.len() {
                return Err(PErr::new(
                    a.pos,
                    "channel_map: inputs and channels must have the same length",
                ));
            }
            Op::ChannelMap {
                map: inputs
                    .into_iter()
                    .zip(channels)
                    .map(|(input, channel)| ChannelRef { input, channel })
                    .collect(),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}
