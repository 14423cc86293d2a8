//! Export of a graph as an ONNX model: opset 17, QONNX ops in `qonnx.custom_op.general`.
//!
//! One IR node becomes one ONNX node named like it; attributes that ONNX takes as inputs
//! (Reshape shape, Slice bounds, Clip bounds, Resize scales, QONNX bit widths, ...) become
//! initializers named `<node>_<what>`; constants become initializers with `raw_data`. A
//! value is named after its producer (`<node>:<port>` for multi-output nodes) or after the
//! graph output it is. Importing the result gives back the same ops, attributes and
//! constants. What ONNX cannot express (sub-byte, bipolar, ternary and fixed-point dtypes,
//! 2-D coerced softmax off the last axis, dilated average pooling at opset 17, ...) is an
//! error naming the node.

use crate::proto::attribute_proto::AttributeType as At;
use crate::proto::tensor_shape_proto::{dimension, Dimension};
use crate::proto::type_proto;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::tensor::{dtype_to_onnx, encode};
use crate::{Error, Result};
use lnc_ir::{
    BinaryOp, CoordTransform, DType, Graph, NearestMode, NodeId, Op, PadMode, ReduceKind,
    ResizeMode, RoundingMode, Tensor, TensorType, UnaryOp, Value,
};
use std::collections::{HashMap, HashSet};

/// The default-domain opset written.
pub(crate) const OPSET: i64 = 17;
/// The QONNX domain written for `Quant`, `BipolarQuant` and `Trunc`.
pub(crate) const QONNX_DOMAIN: &str = "qonnx.custom_op.general";

/// Build the `ModelProto` for a graph.
pub(crate) fn export_model(g: &Graph) -> Result<ModelProto> {
    let order = g.topo_order()?;
    let mut ex = Exporter {
        g,
        names: HashMap::new(),
        used: HashSet::new(),
        graph: GraphProto::default(),
        qonnx: false,
    };
    ex.name_values(&order)?;
    for &id in &order {
        ex.node(id)?;
    }
    // Graph outputs that need an Identity (an input or a value named by another output).
    for o in g.outputs() {
        let vname = ex.value_name(o.value)?;
        if vname != o.name {
            ex.graph.node.push(node_proto(
                &o.name,
                "Identity",
                "",
                vec![vname],
                vec![o.name.clone()],
                vec![],
            ));
        }
        let ty = g.try_value_type(o.value)?;
        let vi = value_info(&o.name, ty).map_err(|m| Error::Value {
            name: o.name.clone(),
            msg: m,
        })?;
        ex.graph.output.push(vi);
    }
    ex.graph.name = Some(if g.name.is_empty() {
        "lnc".into()
    } else {
        g.name.clone()
    });
    let mut opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(OPSET),
    }];
    if ex.qonnx {
        opset_import.push(OperatorSetIdProto {
            domain: Some(QONNX_DOMAIN.into()),
            version: Some(1),
        });
    }
    Ok(ModelProto {
        ir_version: Some(8),
        opset_import,
        producer_name: Some("lnc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(ex.graph),
        ..Default::default()
    })
}

struct Exporter<'g> {
    g: &'g Graph,
    names: HashMap<Value, String>,
    used: HashSet<String>,
    graph: GraphProto,
    qonnx: bool,
}

fn value_info(name: &str, ty: &TensorType) -> Result<ValueInfoProto, String> {
    let elem = dtype_to_onnx(ty.dtype)
        .ok_or_else(|| format!("dtype {} has no ONNX equivalent", ty.dtype))?;
    let dims = ty
        .shape
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d as i64)),
            denotation: None,
        })
        .collect();
    Ok(ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            denotation: None,
        }),
        ..Default::default()
    })
}

fn node_proto(
    name: &str,
    op: &str,
    domain: &str,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs,
        output: outputs,
        name: Some(name.to_string()),
        op_type: Some(op.to_string()),
        domain: if domain.is_empty() {
            None
        } else {
            Some(domain.to_string())
        },
        attribute: attrs,
        ..Default::default()
    }
}

fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(At::Int as i32),
        ..Default::default()
    }
}
fn a_ints(name: &str, v: impl IntoIterator<Item = i64>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.into_iter().collect(),
        r#type: Some(At::Ints as i32),
        ..Default::default()
    }
}
fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        f: Some(v),
        r#type: Some(At::Float as i32),
        ..Default::default()
    }
}
fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(At::String as i32),
        ..Default::default()
    }
}
fn us(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn i64_tensor(v: Vec<i64>) -> Result<Tensor, String> {
    Tensor::from_int(DType::I64, &[v.len()], v)
}

fn rounding_name(r: RoundingMode) -> &'static str {
    match r {
        RoundingMode::Round => "ROUND",
        RoundingMode::Floor => "FLOOR",
        RoundingMode::Ceil => "CEIL",
        RoundingMode::Trunc => "DOWN",
        RoundingMode::RoundHalfUp => "HALF_UP",
    }
}

impl<'g> Exporter<'g> {
    /// Name every value: graph outputs first (by their output name), then `node[:port]`.
    fn name_values(&mut self, order: &[NodeId]) -> Result<()> {
        let g = self.g;
        for o in g.outputs() {
            if !self.used.insert(o.name.clone()) {
                return Err(Error::Value {
                    name: o.name.clone(),
                    msg: "duplicate graph output name".into(),
                });
            }
        }
        for o in g.outputs() {
            let is_input = g.contains(o.value.node) && matches!(g.node(o.value.node).op, Op::Input);
            if !is_input && !self.names.contains_key(&o.value) {
                self.names.insert(o.value, o.name.clone());
            }
        }
        for &id in order {
            let node = g.node(id);
            let multi = node.outputs.len() > 1;
            for port in 0..node.outputs.len() {
                let v = Value {
                    node: id,
                    port: port as u16,
                };
                if self.names.contains_key(&v) {
                    continue;
                }
                let base = if multi {
                    format!("{}:{port}", node.name)
                } else {
                    node.name.clone()
                };
                let name = self.fresh(&base);
                self.names.insert(v, name);
            }
        }
        Ok(())
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        name
    }

    fn value_name(&self, v: Value) -> Result<String> {
        self.names
            .get(&v)
            .cloned()
            .ok_or_else(|| Error::Graph(format!("dangling value {}:{}", v.node.index(), v.port)))
    }

    /// Add an auxiliary initializer for node `node` and return its name (distinct from
    /// every value and node name, so a re-import keeps the node names).
    fn aux(&mut self, node: &str, what: &str, t: Tensor) -> Result<String> {
        let base = format!("{node}_{what}");
        let mut name = base.clone();
        let mut i = 1;
        while self.used.contains(&name) || self.g.node_by_name(&name).is_some() {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        let tp = encode(&name, &t).map_err(|m| self.err(node, what, m))?;
        self.graph.initializer.push(tp);
        Ok(name)
    }

    fn err(&self, node: &str, op: &str, msg: impl Into<String>) -> Error {
        Error::Node {
            node: node.to_string(),
            op: op.to_string(),
            msg: msg.into(),
        }
    }

    fn node(&mut self, id: NodeId) -> Result<()> {
        let g = self.g;
        let node = g.node(id);
        let name = node.name.as_str();
        let opn = node.op.name();
        let err = |m: String| Error::Node {
            node: name.to_string(),
            op: opn.to_string(),
            msg: m,
        };
        let mut inputs: Vec<String> = g
            .node_inputs(id)
            .into_iter()
            .map(|v| self.value_name(v))
            .collect::<Result<_>>()?;
        let outputs: Vec<String> = (0..node.outputs.len())
            .map(|p| {
                self.value_name(Value {
                    node: id,
                    port: p as u16,
                })
            })
            .collect::<Result<_>>()?;
        let in_ty = |i: usize| -> Result<&TensorType> {
            let v = g
                .node_inputs(id)
                .get(i)
                .copied()
                .ok_or_else(|| err(format!("missing input {i}")))?;
            Ok(g.try_value_type(v)?)
        };
        for t in &node.outputs {
            if dtype_to_onnx(t.dtype).is_none() {
                return Err(err(format!(
                    "dtype {} has no ONNX (opset 17) equivalent",
                    t.dtype
                )));
            }
        }
        let mut attrs = Vec::new();
        let mut domain = "";
        let conv_attrs = |attrs: &mut Vec<AttributeProto>,
                          k: &[usize; 2],
                          s: &[usize; 2],
                          p: &[usize; 4],
                          d: &[usize; 2],
                          group: usize| {
            attrs.push(a_ints("kernel_shape", us(k)));
            attrs.push(a_ints("strides", us(s)));
            attrs.push(a_ints("pads", us(p)));
            attrs.push(a_ints("dilations", us(d)));
            attrs.push(a_int("group", group as i64));
        };
        let (out0, ty0) = match (outputs.first(), node.outputs.first()) {
            (Some(o), Some(t)) => (o.clone(), t),
            _ => return Err(err("node has no outputs".into())),
        };
        let op_type: &str = match &node.op {
            Op::Input => {
                let vi = value_info(&out0, ty0).map_err(|m| Error::Value {
                    name: name.to_string(),
                    msg: m,
                })?;
                self.graph.input.push(vi);
                return Ok(());
            }
            Op::Const(c) => {
                let t = g
                    .consts()
                    .get(c.0 as usize)
                    .ok_or_else(|| err(format!("no constant {}", c.0)))?;
                let tp: TensorProto = encode(&out0, t).map_err(err)?;
                self.graph.initializer.push(tp);
                return Ok(());
            }
            Op::Identity => "Identity",
            Op::Conv(c) => {
                conv_attrs(
                    &mut attrs,
                    &c.kernel,
                    &c.strides,
                    &c.pads,
                    &c.dilations,
                    c.group,
                );
                "Conv"
            }
            Op::ConvTranspose(c) => {
                conv_attrs(
                    &mut attrs,
                    &c.kernel,
                    &c.strides,
                    &c.pads,
                    &c.dilations,
                    c.group,
                );
                attrs.push(a_ints("output_padding", us(&c.output_padding)));
                "ConvTranspose"
            }
            Op::BatchNorm { epsilon } => {
                attrs.push(a_float("epsilon", *epsilon));
                "BatchNormalization"
            }
            Op::Unary(u) => match u {
                UnaryOp::Relu => "Relu",
                UnaryOp::Sigmoid => "Sigmoid",
                UnaryOp::Tanh => "Tanh",
                UnaryOp::HardSwish => "HardSwish",
                UnaryOp::Exp => "Exp",
                UnaryOp::Log => "Log",
                UnaryOp::Sqrt => "Sqrt",
                UnaryOp::Neg => "Neg",
                UnaryOp::Abs => "Abs",
                UnaryOp::Floor => "Floor",
                UnaryOp::Ceil => "Ceil",
                UnaryOp::Round => "Round",
                UnaryOp::Reciprocal => "Reciprocal",
                UnaryOp::Sign => "Sign",
                UnaryOp::Softplus => "Softplus",
                UnaryOp::Softsign => "Softsign",
            },
            Op::LeakyRelu { alpha } => {
                attrs.push(a_float("alpha", *alpha));
                "LeakyRelu"
            }
            Op::Elu { alpha } => {
                attrs.push(a_float("alpha", *alpha));
                "Elu"
            }
            Op::HardSigmoid { alpha, beta } => {
                attrs.push(a_float("alpha", *alpha));
                attrs.push(a_float("beta", *beta));
                "HardSigmoid"
            }
            Op::Clip { min, max } => {
                let dtype = in_ty(0)?.dtype;
                let bound = |v: f64, what: &str| -> Result<Option<Tensor>> {
                    if v.is_infinite() {
                        return Ok(None);
                    }
                    if dtype == DType::F32 {
                        return Ok(Some(Tensor::scalar_f32(v as f32)));
                    }
                    let (lo, hi) = dtype.int_range().unwrap_or((i64::MIN, i64::MAX));
                    if v.fract() != 0.0 {
                        return Err(err(format!(
                            "{what} bound {v} is not an integer for {dtype} input"
                        )));
                    }
                    let iv = (v.clamp(lo as f64, hi as f64)) as i64;
                    Ok(Some(
                        Tensor::from_int(dtype, &[], vec![iv.clamp(lo, hi)]).map_err(err)?,
                    ))
                };
                let (lo, hi) = (bound(*min, "min")?, bound(*max, "max")?);
                match (lo, hi) {
                    (None, None) => {}
                    (lo, hi) => {
                        inputs.push(match lo {
                            Some(t) => self.aux(name, "min", t)?,
                            None => String::new(),
                        });
                        if let Some(t) = hi {
                            inputs.push(self.aux(name, "max", t)?);
                        }
                    }
                }
                "Clip"
            }
            Op::PRelu => "PRelu",
            Op::Binary(b) => match b {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Max => "Max",
                BinaryOp::Min => "Min",
                BinaryOp::Pow => "Pow",
            },
            Op::Concat { axis } => {
                attrs.push(a_int("axis", *axis as i64));
                "Concat"
            }
            Op::Split { axis, sizes } => {
                attrs.push(a_int("axis", *axis as i64));
                inputs.push(self.aux(name, "split", i64_tensor(us(sizes)).map_err(err)?)?);
                "Split"
            }
            Op::Slice { axes } => {
                let starts = axes.iter().map(|a| a.start).collect();
                let ends = axes
                    .iter()
                    .map(|a| {
                        if a.step < 0 && a.end == -1 {
                            i64::MIN
                        } else {
                            a.end
                        }
                    })
                    .collect();
                let ax = axes.iter().map(|a| a.axis as i64).collect();
                let steps = axes.iter().map(|a| a.step).collect();
                inputs.push(self.aux(name, "starts", i64_tensor(starts).map_err(err)?)?);
                inputs.push(self.aux(name, "ends", i64_tensor(ends).map_err(err)?)?);
                inputs.push(self.aux(name, "axes", i64_tensor(ax).map_err(err)?)?);
                inputs.push(self.aux(name, "steps", i64_tensor(steps).map_err(err)?)?);
                "Slice"
            }
            Op::Reshape { shape } => {
                if shape.contains(&0) {
                    attrs.push(a_int("allowzero", 1));
                }
                inputs.push(self.aux(name, "shape", i64_tensor(us(shape)).map_err(err)?)?);
                "Reshape"
            }
            Op::Transpose { perm } => {
                attrs.push(a_ints("perm", us(perm)));
                "Transpose"
            }
            Op::Gather { axis } => {
                attrs.push(a_int("axis", *axis as i64));
                "Gather"
            }
            Op::Expand { shape } => {
                inputs.push(self.aux(name, "shape", i64_tensor(us(shape)).map_err(err)?)?);
                "Expand"
            }
            Op::Cast { to } => {
                let code = dtype_to_onnx(*to)
                    .ok_or_else(|| err(format!("cast to {to} has no ONNX equivalent")))?;
                attrs.push(a_int("to", code as i64));
                "Cast"
            }
            Op::Pad { pads, mode, value } => {
                inputs.push(self.aux(name, "pads", i64_tensor(pads.clone()).map_err(err)?)?);
                let m = match mode {
                    PadMode::Constant => "constant",
                    PadMode::Reflect => "reflect",
                    PadMode::Edge => "edge",
                };
                attrs.push(a_str("mode", m));
                // Written whenever non-zero (ignored by the non-constant modes) so a
                // re-import gives the same op.
                if *value != 0.0 || value.is_sign_negative() {
                    let dtype = in_ty(0)?.dtype;
                    let t = if dtype == DType::F32 {
                        Tensor::scalar_f32(*value)
                    } else if value.fract() == 0.0 {
                        Tensor::from_int(dtype, &[], vec![*value as i64]).map_err(err)?
                    } else {
                        return Err(err(format!(
                            "pad value {value} is not an integer for {dtype} input"
                        )));
                    };
                    inputs.push(self.aux(name, "value", t)?);
                }
                "Pad"
            }
            Op::MaxPool(p) => {
                attrs.push(a_ints("kernel_shape", us(&p.kernel)));
                attrs.push(a_ints("strides", us(&p.strides)));
                attrs.push(a_ints("pads", us(&p.pads)));
                attrs.push(a_ints("dilations", us(&p.dilations)));
                attrs.push(a_int("ceil_mode", p.ceil_mode as i64));
                "MaxPool"
            }
            Op::AveragePool {
                pool: p,
                count_include_pad,
            } => {
                if p.dilations != [1, 1] {
                    return Err(err(
                        "dilated AveragePool needs opset 19; lnc writes opset 17".into(),
                    ));
                }
                attrs.push(a_ints("kernel_shape", us(&p.kernel)));
                attrs.push(a_ints("strides", us(&p.strides)));
                attrs.push(a_ints("pads", us(&p.pads)));
                attrs.push(a_int("ceil_mode", p.ceil_mode as i64));
                attrs.push(a_int("count_include_pad", *count_include_pad as i64));
                "AveragePool"
            }
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::GlobalMaxPool => "GlobalMaxPool",
            Op::Reduce {
                kind,
                axes,
                keepdims,
            } => {
                attrs.push(a_int("keepdims", *keepdims as i64));
                if *kind == ReduceKind::Sum {
                    if !axes.is_empty() {
                        inputs.push(self.aux(name, "axes", i64_tensor(us(axes)).map_err(err)?)?);
                    }
                } else if !axes.is_empty() {
                    attrs.push(a_ints("axes", us(axes)));
                }
                match kind {
                    ReduceKind::Mean => "ReduceMean",
                    ReduceKind::Sum => "ReduceSum",
                    ReduceKind::Max => "ReduceMax",
                    ReduceKind::Min => "ReduceMin",
                }
            }
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                attrs.push(a_float("alpha", *alpha));
                attrs.push(a_float("beta", *beta));
                attrs.push(a_int("transA", *trans_a as i64));
                attrs.push(a_int("transB", *trans_b as i64));
                "Gemm"
            }
            Op::MatMul => "MatMul",
            Op::Softmax {
                axis,
                coerce_2d,
                log,
            } => {
                let shape = &in_ty(0)?.shape;
                if *coerce_2d
                    && shape
                        .get(axis + 1..)
                        .is_some_and(|s| s.iter().any(|&d| d != 1))
                {
                    return Err(err(
                        "softmax coerced to 2-D (opset < 13) off the last axis is not expressible at opset 17".into(),
                    ));
                }
                attrs.push(a_int("axis", *axis as i64));
                if *log {
                    "LogSoftmax"
                } else {
                    "Softmax"
                }
            }
            Op::Resize(r) => {
                inputs.push(String::new());
                let scales = Tensor::from_f32(&[r.scales.len()], r.scales.clone()).map_err(err)?;
                inputs.push(self.aux(name, "scales", scales)?);
                attrs.push(a_str(
                    "mode",
                    if r.mode == ResizeMode::Nearest {
                        "nearest"
                    } else {
                        "linear"
                    },
                ));
                attrs.push(a_str(
                    "coordinate_transformation_mode",
                    match r.coord {
                        CoordTransform::HalfPixel => "half_pixel",
                        CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
                        CoordTransform::AlignCorners => "align_corners",
                        CoordTransform::Asymmetric => "asymmetric",
                    },
                ));
                // Written for linear too (ignored there) so a re-import gives the same op.
                attrs.push(a_str(
                    "nearest_mode",
                    match r.nearest {
                        NearestMode::RoundPreferFloor => "round_prefer_floor",
                        NearestMode::RoundPreferCeil => "round_prefer_ceil",
                        NearestMode::Floor => "floor",
                        NearestMode::Ceil => "ceil",
                    },
                ));
                "Resize"
            }
            Op::QuantizeLinear { axis } | Op::DequantizeLinear { axis } => {
                let quant = matches!(node.op, Op::QuantizeLinear { .. });
                let zp = in_ty(2)?.dtype;
                let ok = if quant {
                    matches!(zp, DType::I8 | DType::U8)
                } else {
                    matches!(zp, DType::I8 | DType::U8 | DType::I32)
                };
                if !ok {
                    return Err(err(format!(
                        "{zp} quantization has no ONNX (opset 17) equivalent"
                    )));
                }
                if let Some(a) = axis {
                    attrs.push(a_int("axis", *a as i64));
                }
                if quant {
                    "QuantizeLinear"
                } else {
                    "DequantizeLinear"
                }
            }
            Op::QLinearConv(c) => {
                conv_attrs(
                    &mut attrs,
                    &c.kernel,
                    &c.strides,
                    &c.pads,
                    &c.dilations,
                    c.group,
                );
                "QLinearConv"
            }
            Op::QLinearMatMul => "QLinearMatMul",
            Op::ConvInteger(c) => {
                conv_attrs(
                    &mut attrs,
                    &c.kernel,
                    &c.strides,
                    &c.pads,
                    &c.dilations,
                    c.group,
                );
                "ConvInteger"
            }
            Op::MatMulInteger => "MatMulInteger",
            Op::Quant {
                bits,
                signed,
                narrow,
                rounding,
            } => {
                domain = QONNX_DOMAIN;
                inputs.push(self.aux(name, "bitwidth", Tensor::scalar_f32(*bits as f32))?);
                attrs.push(a_int("signed", *signed as i64));
                attrs.push(a_int("narrow", *narrow as i64));
                attrs.push(a_str("rounding_mode", rounding_name(*rounding)));
                "Quant"
            }
            Op::BipolarQuant => {
                domain = QONNX_DOMAIN;
                "BipolarQuant"
            }
            Op::Trunc {
                in_bits,
                out_bits,
                rounding,
                signed,
                narrow,
            } => {
                domain = QONNX_DOMAIN;
                inputs.push(self.aux(name, "in_bitwidth", Tensor::scalar_f32(*in_bits as f32))?);
                inputs.push(self.aux(
                    name,
                    "out_bitwidth",
                    Tensor::scalar_f32(*out_bits as f32),
                )?);
                attrs.push(a_str("rounding_mode", rounding_name(*rounding)));
                attrs.push(a_int("signed", *signed as i64));
                attrs.push(a_int("narrow", *narrow as i64));
                "Trunc"
            }
            // Fused ops made by the optimiser, and anything newer: no ONNX form.
            #[allow(unreachable_patterns)]
            op => return Err(err(format!("{} has no ONNX (opset 17) form", op.name()))),
        };
        if !domain.is_empty() {
            self.qonnx = true;
        }
        self.graph
            .node
            .push(node_proto(name, op_type, domain, inputs, outputs, attrs));
        Ok(())
    }
}
