//! ONNX model import: model and graph walk, the value table, constant folding and errors.
//!
//! The walk:
//! 1. opsets: the default domain (`""` / `ai.onnx`) must be 6..=[`MAX_OPSET`]; the QONNX
//!    domains (`qonnx.custom_op.general`, `finn.custom_op.general`) are accepted. Opsets 22–28
//!    changed the supported ops only by admitting new element types (bfloat16, float8/4,
//!    int2) and attributes for them, which are rejected where they appear; op versions whose
//!    meaning lnc has not reviewed ([`unreviewed_version`]) are rejected per node;
//! 2. initializers become constants (decoded with size checks); graph inputs that have an
//!    initializer are constants too; the other inputs get static shapes
//!    ([`LoadOptions::input_shapes`] overrides, a symbolic first dimension becomes 1);
//! 3. the nodes are checked (every input produced exactly once, no cycle) and visited in
//!    topological order; each is mapped by its family module to IR ops with fully resolved
//!    attributes. Attributes a handler does not read are reported as unsupported;
//! 4. every IR node whose inputs are all constant is evaluated with the reference
//!    interpreter ([`lnc_ir::interp::eval_op`]) and replaced by its result, except the
//!    quantization ops (their constant operands are the quantized weights the backends
//!    need), results above [`FOLD_LIMIT`] elements, evaluations above [`FOLD_COST_LIMIT`]
//!    operations, and anything once [`FOLD_BUDGET`] elements have been folded (a small
//!    file must not make the importer allocate or compute without bound);
//! 5. graph outputs are bound, dead nodes removed, the graph verified.
//!
//! Op families: [`conv`], [`pool`], [`activation`], [`elementwise`], [`movement`],
//! [`reduce`], [`matmul`], [`resize`], [`quant`], [`constant`].

mod activation;
mod constant;
mod conv;
mod elementwise;
mod matmul;
mod movement;
mod pool;
mod quant;
mod reduce;
mod resize;

use crate::proto::attribute_proto::AttributeType as At;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::Value as TypeValue;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};
use crate::tensor;
use crate::{Error, LoadOptions, Result};
use lnc_ir::{Graph, Op, Tensor, TensorType, Value};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Largest constant (in elements) that import-time folding materialises; larger results
/// stay as nodes (an `Expand` of a constant to 2^31 elements is not worth 16 GB at import).
pub(crate) const FOLD_LIMIT: usize = 1 << 24;

/// Largest estimated cost (multiply-adds, or elements touched) of one folded evaluation.
pub(crate) const FOLD_COST_LIMIT: usize = 1 << 28;

/// Total elements that folding (including `ConstantOfShape`) may materialise in one import.
pub(crate) const FOLD_BUDGET: usize = 1 << 26;

/// The QONNX custom-op domains.
const QONNX_DOMAINS: [&str; 2] = ["qonnx.custom_op.general", "finn.custom_op.general"];

/// Import a decoded model.
/// Newest default-domain opset accepted.
pub const MAX_OPSET: i64 = 28;

/// Op versions after opset 21 whose semantics differ from what the handlers implement in ways
/// not caught by the attribute and dtype checks. Returns the version in force at `opset`, if
/// it is one of them.
fn unreviewed_version(op: &str, opset: i64) -> Option<i64> {
    const UNREVIEWED: &[(&str, i64)] = &[("DepthToSpace", 28), ("SpaceToDepth", 28)];
    UNREVIEWED
        .iter()
        .find(|(o, v)| *o == op && *v <= opset)
        .map(|(_, v)| *v)
}

pub(crate) fn import_model(m: &ModelProto, opts: &LoadOptions) -> Result<Graph> {
    let gp = m
        .graph
        .as_ref()
        .ok_or_else(|| Error::Malformed("model has no graph".into()))?;
    let mut opset = None;
    for o in &m.opset_import {
        let domain = o.domain.as_deref().unwrap_or("");
        if domain.is_empty() || domain == "ai.onnx" {
            opset = Some(o.version.unwrap_or(0));
        }
    }
    let uses_default = gp
        .node
        .iter()
        .any(|n| is_default_domain(n.domain.as_deref()));
    let opset = match opset {
        Some(v) if (6..=MAX_OPSET).contains(&v) => v,
        Some(v) => {
            return Err(Error::Unsupported(format!(
                "ONNX opset {v} is not supported (lnc reads opsets 6 to {MAX_OPSET})"
            )))
        }
        None if uses_default => {
            return Err(Error::Unsupported(
                "the model imports no opset for the default ONNX domain".into(),
            ))
        }
        None => 21,
    };
    let mut imp = Importer {
        g: Graph::new(gp.name.clone().unwrap_or_else(|| "model".into())),
        values: HashMap::new(),
        consumed: HashSet::new(),
        opset,
        folded: 0,
    };
    imp.graph(gp, opts)?;
    imp.g.remove_dead();
    lnc_ir::verify::verify(&imp.g)?;
    Ok(imp.g)
}

fn is_default_domain(d: Option<&str>) -> bool {
    matches!(d.unwrap_or(""), "" | "ai.onnx")
}

/// The import state: the graph being built and the ONNX value table.
pub(crate) struct Importer {
    pub g: Graph,
    /// ONNX value name -> IR value.
    values: HashMap<String, Value>,
    /// Names read by some node or listed as graph outputs.
    consumed: HashSet<String>,
    /// Version of the default ONNX domain.
    pub opset: i64,
    /// Elements materialised by folding so far (see [`FOLD_BUDGET`]).
    folded: usize,
}

impl Importer {
    fn graph(&mut self, gp: &GraphProto, opts: &LoadOptions) -> Result<()> {
        if let Some(t) = gp.sparse_initializer.first() {
            let name = t
                .values
                .as_ref()
                .and_then(|v| v.name.clone())
                .unwrap_or_default();
            return Err(Error::Tensor {
                name,
                msg: "sparse initializers are not supported".into(),
            });
        }
        // Initializers.
        for (i, tp) in gp.initializer.iter().enumerate() {
            let name = tp.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(Error::Tensor {
                    name: format!("initializer #{i}"),
                    msg: "initializer has no name".into(),
                });
            }
            if self.values.contains_key(&name) {
                return Err(Error::Tensor {
                    name,
                    msg: "duplicate initializer name".into(),
                });
            }
            let t = tensor::decode(tp, self.opset >= 21).map_err(|msg| Error::Tensor {
                name: name.clone(),
                msg,
            })?;
            let v = self.g.add_const(&name, t);
            self.values.insert(name, v);
        }
        let initializers: HashSet<&str> = gp
            .initializer
            .iter()
            .filter_map(|t| t.name.as_deref())
            .collect();
        // Graph inputs.
        let mut seen_inputs = HashSet::new();
        for vi in &gp.input {
            let name = vi.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(Error::Malformed("a graph input has no name".into()));
            }
            if !seen_inputs.insert(name.clone()) {
                return Err(Error::Value {
                    name,
                    msg: "duplicate graph input".into(),
                });
            }
            if initializers.contains(name.as_str()) {
                continue;
            }
            let ty = input_type(vi, opts)?;
            let v = self.g.add_input(&name, ty).map_err(|e| Error::Value {
                name: name.clone(),
                msg: e.to_string(),
            })?;
            self.values.insert(name, v);
        }
        for name in opts.input_shapes.keys() {
            if !seen_inputs.contains(name) {
                return Err(Error::Value {
                    name: name.clone(),
                    msg: "a shape was given for this input, but the model has no such input".into(),
                });
            }
        }
        // Consumers.
        for n in &gp.node {
            for i in &n.input {
                if !i.is_empty() {
                    self.consumed.insert(i.clone());
                }
            }
        }
        for o in &gp.output {
            if let Some(name) = &o.name {
                self.consumed.insert(name.clone());
            }
        }
        // Nodes, in a checked topological order.
        let names: Vec<String> = gp
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| display_name(n, i))
            .collect();
        let order = topo_order(gp, &names, &self.values)?;
        for i in order {
            let (np, name) = (&gp.node[i], &names[i]);
            self.node(np, name)?;
        }
        // Graph outputs.
        if gp.output.is_empty() {
            return Err(Error::Malformed("the graph has no outputs".into()));
        }
        for o in &gp.output {
            let name = o.name.clone().unwrap_or_default();
            let v = *self.values.get(&name).ok_or_else(|| Error::Value {
                name: name.clone(),
                msg: "graph output is not produced by any node, initializer or graph input".into(),
            })?;
            self.g.add_output(&name, v);
        }
        Ok(())
    }

    /// Import one node.
    fn node(&mut self, np: &NodeProto, name: &str) -> Result<()> {
        let op = np.op_type.as_deref().unwrap_or("");
        let domain = np.domain.as_deref().unwrap_or("");
        let base = match np.name.as_deref() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => match np.output.iter().find(|o| !o.is_empty()) {
                Some(o) => format!("{op}_{o}"),
                None => name.to_string(),
            },
        };
        let n = Node {
            p: np,
            name: name.to_string(),
            base,
            op,
            opset: self.opset,
            read: RefCell::new(vec![false; np.attribute.len()]),
        };
        let outs = if is_default_domain(Some(domain)) {
            if let Some(v) = unreviewed_version(op, self.opset) {
                return Err(n.err(format!(
                    "version {v} of {op} (opset {}) is not supported; models at opset {} or \
                     lower use a supported version",
                    self.opset,
                    v - 1
                )));
            }
            self.default_op(&n)?
        } else if QONNX_DOMAINS.contains(&domain) {
            match op {
                "Quant" | "IntQuant" => vec![quant::qonnx_quant(self, &n)?],
                "BipolarQuant" => vec![quant::qonnx_bipolar(self, &n)?],
                "Trunc" => vec![quant::qonnx_trunc(self, &n)?],
                _ => return Err(n.err(format!("op '{op}' of domain '{domain}' is not supported"))),
            }
        } else {
            return Err(n.err(format!("domain '{domain}' is not supported")));
        };
        n.check_unread()?;
        if outs.len() > np.output.len() {
            return Err(n.err("internal: more results than ONNX outputs"));
        }
        for (i, oname) in np.output.iter().enumerate() {
            if oname.is_empty() {
                continue;
            }
            match outs.get(i) {
                Some(v) => {
                    self.values.insert(oname.clone(), *v);
                }
                None if self.consumed.contains(oname) => {
                    return Err(n.err(format!(
                        "output #{i} ('{oname}') is used, but it is not supported"
                    )))
                }
                None => {}
            }
        }
        Ok(())
    }

    fn default_op(&mut self, n: &Node) -> Result<Vec<Value>> {
        use lnc_ir::{BinaryOp as B, ReduceKind as R, UnaryOp as U};
        let one = |r: Result<Value>| r.map(|v| vec![v]);
        match n.op {
            "Conv" => one(conv::conv(self, n)),
            "ConvTranspose" => one(conv::conv_transpose(self, n)),
            "BatchNormalization" => one(conv::batch_norm(self, n)),
            "MaxPool" => one(pool::max_pool(self, n)),
            "AveragePool" => one(pool::average_pool(self, n)),
            "GlobalAveragePool" => one(pool::global_pool(self, n, true)),
            "GlobalMaxPool" => one(pool::global_pool(self, n, false)),
            "Relu" => one(activation::unary(self, n, U::Relu)),
            "Sigmoid" => one(activation::unary(self, n, U::Sigmoid)),
            "Tanh" => one(activation::unary(self, n, U::Tanh)),
            "HardSwish" => one(activation::unary(self, n, U::HardSwish)),
            "Softplus" => one(activation::unary(self, n, U::Softplus)),
            "Softsign" => one(activation::unary(self, n, U::Softsign)),
            "LeakyRelu" => one(activation::leaky_relu(self, n)),
            "Elu" => one(activation::elu(self, n)),
            "HardSigmoid" => one(activation::hard_sigmoid(self, n)),
            "Clip" => one(activation::clip(self, n)),
            "PRelu" => one(activation::prelu(self, n)),
            "Exp" => one(elementwise::unary(self, n, U::Exp)),
            "Log" => one(elementwise::unary(self, n, U::Log)),
            "Sqrt" => one(elementwise::unary(self, n, U::Sqrt)),
            "Neg" => one(elementwise::unary(self, n, U::Neg)),
            "Abs" => one(elementwise::unary(self, n, U::Abs)),
            "Floor" => one(elementwise::unary(self, n, U::Floor)),
            "Ceil" => one(elementwise::unary(self, n, U::Ceil)),
            "Round" => one(elementwise::unary(self, n, U::Round)),
            "Reciprocal" => one(elementwise::unary(self, n, U::Reciprocal)),
            "Sign" => one(elementwise::unary(self, n, U::Sign)),
            "Add" => one(elementwise::binary(self, n, B::Add)),
            "Sub" => one(elementwise::binary(self, n, B::Sub)),
            "Mul" => one(elementwise::binary(self, n, B::Mul)),
            "Div" => one(elementwise::binary(self, n, B::Div)),
            "Pow" => one(elementwise::binary(self, n, B::Pow)),
            "Max" => one(elementwise::variadic(self, n, B::Max, false)),
            "Min" => one(elementwise::variadic(self, n, B::Min, false)),
            "Sum" => one(elementwise::variadic(self, n, B::Add, false)),
            "Mean" => one(elementwise::variadic(self, n, B::Add, true)),
            "Concat" => one(movement::concat(self, n)),
            "Split" => movement::split(self, n),
            "Slice" => one(movement::slice(self, n)),
            "Reshape" => one(movement::reshape(self, n)),
            "Transpose" => one(movement::transpose(self, n)),
            "Flatten" => one(movement::flatten(self, n)),
            "Squeeze" => one(movement::squeeze(self, n)),
            "Unsqueeze" => one(movement::unsqueeze(self, n)),
            "Gather" => one(movement::gather(self, n)),
            "Expand" => one(movement::expand(self, n)),
            "Pad" => one(movement::pad(self, n)),
            "Cast" => one(movement::cast(self, n)),
            "Identity" => one(movement::identity(self, n)),
            "Dropout" => one(movement::dropout(self, n)),
            "DepthToSpace" => one(movement::depth_to_space(self, n)),
            "SpaceToDepth" => one(movement::space_to_depth(self, n)),
            "ReduceMean" => one(reduce::reduce(self, n, R::Mean)),
            "ReduceSum" => one(reduce::reduce(self, n, R::Sum)),
            "ReduceMax" => one(reduce::reduce(self, n, R::Max)),
            "ReduceMin" => one(reduce::reduce(self, n, R::Min)),
            "Softmax" => one(reduce::softmax(self, n, false)),
            "LogSoftmax" => one(reduce::softmax(self, n, true)),
            "Gemm" => one(matmul::gemm(self, n)),
            "MatMul" => one(matmul::matmul(self, n)),
            "Resize" => one(resize::resize(self, n)),
            "Upsample" => one(resize::upsample(self, n)),
            "QuantizeLinear" => one(quant::quantize_linear(self, n)),
            "DequantizeLinear" => one(quant::dequantize_linear(self, n)),
            "QLinearConv" => one(quant::qlinear_conv(self, n)),
            "QLinearMatMul" => one(quant::qlinear_matmul(self, n)),
            "ConvInteger" => one(quant::conv_integer(self, n)),
            "MatMulInteger" => one(quant::matmul_integer(self, n)),
            "Constant" => one(constant::constant(self, n)),
            "ConstantOfShape" => one(constant::constant_of_shape(self, n)),
            "Shape" => one(constant::shape(self, n)),
            "Size" => one(constant::size(self, n)),
            op => Err(n.err(format!("op '{op}' is not supported"))),
        }
    }

    // ----- inputs ------------------------------------------------------------------

    /// A required input.
    pub fn input(&self, n: &Node, i: usize) -> Result<Value> {
        self.opt_input(n, i)?
            .ok_or_else(|| n.err(format!("required input #{i} is missing")))
    }

    /// An optional input (absent when missing or named "").
    pub fn opt_input(&self, n: &Node, i: usize) -> Result<Option<Value>> {
        match n.p.input.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self
                .values
                .get(name)
                .copied()
                .map(Some)
                .ok_or_else(|| n.err(format!("input '{name}' is not produced by any node"))),
        }
    }

    /// All present inputs, in order (for variadic ops).
    pub fn all_inputs(&self, n: &Node) -> Result<Vec<Value>> {
        (0..n.p.input.len())
            .filter_map(|i| self.opt_input(n, i).transpose())
            .collect()
    }

    pub fn ty(&self, v: Value) -> Result<&TensorType> {
        Ok(self.g.try_value_type(v)?)
    }

    pub fn shape(&self, v: Value) -> Result<Vec<usize>> {
        Ok(self.ty(v)?.shape.clone())
    }

    pub fn rank(&self, v: Value) -> Result<usize> {
        Ok(self.ty(v)?.rank())
    }

    /// The constant behind a value, if it is one.
    pub fn konst(&self, v: Value) -> Option<&Tensor> {
        self.g.const_value(v)
    }

    /// An optional input that must be a constant when present.
    pub fn const_input(&self, n: &Node, i: usize, what: &str) -> Result<Option<Tensor>> {
        match self.opt_input(n, i)? {
            None => Ok(None),
            Some(v) => match self.konst(v) {
                Some(t) => Ok(Some(t.clone())),
                None => Err(n.err(format!(
                    "input #{i} ({what}, '{}') must be a constant (computed from initializers \
                     and static shapes only)",
                    n.p.input.get(i).map(String::as_str).unwrap_or("")
                ))),
            },
        }
    }

    /// An optional constant integer-tensor input, as a flat list.
    pub fn const_ints(&self, n: &Node, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        match self.const_input(n, i, what)? {
            None => Ok(None),
            Some(t) if t.dtype.is_int() && t.shape().len() <= 1 => Ok(Some(t.to_i64_vec())),
            Some(t) => Err(n.err(format!(
                "{what} must be a 1-D integer tensor, got {}",
                t.ty()
            ))),
        }
    }

    /// An optional constant float-tensor input, as a flat list.
    pub fn const_floats(&self, n: &Node, i: usize, what: &str) -> Result<Option<Vec<f32>>> {
        match self.const_input(n, i, what)? {
            None => Ok(None),
            Some(t) => match t.as_f32() {
                Some(a) if t.shape().len() <= 1 => Ok(Some(a.iter().copied().collect())),
                _ => Err(n.err(format!("{what} must be a 1-D float tensor, got {}", t.ty()))),
            },
        }
    }

    /// Whether ONNX output `i` of the node is read by another node or is a graph output.
    pub fn output_used(&self, n: &Node, i: usize) -> bool {
        n.p.output
            .get(i)
            .is_some_and(|o| !o.is_empty() && self.consumed.contains(o))
    }

    // ----- building ----------------------------------------------------------------

    fn node_name(n: &Node, tag: &str) -> String {
        if tag.is_empty() {
            n.base.clone()
        } else {
            format!("{}/{tag}", n.base)
        }
    }

    /// Add an IR op for ONNX node `n` (`tag` distinguishes helper nodes of one ONNX node;
    /// "" is the main one). Output types are inferred; if every input is constant the op
    /// is evaluated and its results become constants.
    pub fn emit(&mut self, n: &Node, tag: &str, op: Op, inputs: &[Value]) -> Result<Vec<Value>> {
        let tys: Vec<TensorType> = inputs
            .iter()
            .map(|v| self.ty(*v).cloned())
            .collect::<Result<_>>()?;
        let refs: Vec<&TensorType> = tys.iter().collect();
        let outs = lnc_ir::shape::infer(&op, &refs).map_err(|m| n.err(m))?;
        let name = Self::node_name(n, tag);
        let all_const = !inputs.is_empty() && inputs.iter().all(|v| self.konst(*v).is_some());
        let out_numel: usize = outs.iter().map(TensorType::numel).sum();
        let affordable = out_numel <= FOLD_LIMIT
            && self.folded.saturating_add(out_numel) <= FOLD_BUDGET
            && fold_cost(&op, &refs, &outs) <= FOLD_COST_LIMIT;
        if all_const && affordable && foldable(&op) {
            self.folded += out_numel;
            let results = {
                let ts: Vec<&Tensor> = inputs.iter().filter_map(|v| self.konst(*v)).collect();
                lnc_ir::interp::eval_op(&op, &ts, &outs)
                    .map_err(|m| n.err(format!("constant folding of {} failed: {m}", op.name())))?
            };
            if results.len() != outs.len()
                || results
                    .iter()
                    .zip(&outs)
                    .any(|(t, o)| t.dtype != o.dtype || t.shape() != o.shape.as_slice())
            {
                return Err(n.err(format!(
                    "constant folding of {} gave results of the wrong type",
                    op.name()
                )));
            }
            return Ok(results
                .into_iter()
                .map(|t| self.g.add_const(&name, t))
                .collect());
        }
        let nouts = outs.len();
        let id = self.g.add_node_typed(&name, op, inputs, outs)?;
        Ok((0..nouts)
            .map(|p| Value {
                node: id,
                port: p as u16,
            })
            .collect())
    }

    /// [`Importer::emit`] for single-output ops.
    pub fn emit1(&mut self, n: &Node, tag: &str, op: Op, inputs: &[Value]) -> Result<Value> {
        self.emit(n, tag, op, inputs)?
            .into_iter()
            .next()
            .ok_or_else(|| n.err("internal: op produced no output"))
    }

    /// Whether `numel` more folded elements fit the budget (and count them if so).
    pub fn reserve_folded(&mut self, numel: usize) -> bool {
        let fits = numel <= FOLD_LIMIT && self.folded.saturating_add(numel) <= FOLD_BUDGET;
        if fits {
            self.folded += numel;
        }
        fits
    }

    /// Add a constant for node `n`.
    pub fn constant(&mut self, n: &Node, tag: &str, t: Tensor) -> Value {
        let name = Self::node_name(n, tag);
        self.g.add_const(&name, t)
    }

    /// Reshape `v` to `shape` (a no-op when it already has that shape).
    pub fn reshape(&mut self, n: &Node, tag: &str, v: Value, shape: Vec<usize>) -> Result<Value> {
        if self.ty(v)?.shape == shape {
            return Ok(v);
        }
        self.emit1(n, tag, Op::Reshape { shape }, &[v])
    }
}

/// Ops folded at import when all their inputs are constant. Quantization ops are kept:
/// their constant operands (quantized weights, scales) are what the backends consume.
fn foldable(op: &Op) -> bool {
    !matches!(
        op,
        Op::Input
            | Op::Const(_)
            | Op::QuantizeLinear { .. }
            | Op::DequantizeLinear { .. }
            | Op::Quant { .. }
            | Op::BipolarQuant
            | Op::Trunc { .. }
    )
}

/// Estimated cost of evaluating `op`: multiply-adds for the compute ops, elements touched
/// otherwise.
fn fold_cost(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> usize {
    let out: usize = outs.iter().map(TensorType::numel).sum();
    let dim = |i: usize, d: usize| {
        ins.get(i)
            .and_then(|t| t.shape.get(d))
            .copied()
            .unwrap_or(1)
    };
    let per_output = match op {
        Op::Conv(c) | Op::QLinearConv(c) | Op::ConvInteger(c) => {
            let w = if matches!(op, Op::QLinearConv(_)) {
                3
            } else {
                1
            };
            dim(w, 1)
                .saturating_mul(c.kernel[0])
                .saturating_mul(c.kernel[1])
        }
        Op::ConvTranspose(c) => dim(0, 1)
            .saturating_mul(c.kernel[0])
            .saturating_mul(c.kernel[1]),
        Op::Gemm { trans_a, .. } => dim(0, if *trans_a { 0 } else { 1 }),
        Op::MatMul | Op::MatMulInteger | Op::QLinearMatMul => ins
            .first()
            .and_then(|t| t.shape.last())
            .copied()
            .unwrap_or(1),
        Op::MaxPool(p) | Op::AveragePool { pool: p, .. } => p.kernel[0].saturating_mul(p.kernel[1]),
        _ => 1,
    };
    let touched: usize = ins
        .iter()
        .map(|t| t.numel())
        .fold(out, usize::saturating_add);
    out.saturating_mul(per_output.max(1)).max(touched)
}

/// Name of a node for messages: its ONNX name, or `<op>_<index>` when unnamed.
fn display_name(n: &NodeProto, index: usize) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("{}_{index}", n.op_type.as_deref().unwrap_or("node")),
    }
}

fn node_err(np: &NodeProto, name: &str, msg: impl Into<String>) -> Error {
    Error::Node {
        node: name.to_string(),
        op: np.op_type.clone().unwrap_or_default(),
        msg: msg.into(),
    }
}

/// Check that every node input is produced exactly once and order the nodes topologically
/// (ties in file order). Errors: dangling input, duplicate output, cycle.
fn topo_order(
    gp: &GraphProto,
    names: &[String],
    known: &HashMap<String, Value>,
) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, np) in gp.node.iter().enumerate() {
        for o in np.output.iter().filter(|o| !o.is_empty()) {
            if known.contains_key(o.as_str()) {
                return Err(node_err(
                    np,
                    &names[i],
                    format!(
                        "output '{o}' redefines an initializer or graph input of the same name"
                    ),
                ));
            }
            if let Some(&j) = producer.get(o.as_str()) {
                return Err(node_err(
                    np,
                    &names[i],
                    format!("output '{o}' is also produced by node '{}'", names[j]),
                ));
            }
            producer.insert(o, i);
        }
    }
    let mut indeg = vec![0usize; gp.node.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); gp.node.len()];
    for (i, np) in gp.node.iter().enumerate() {
        for inp in np.input.iter().filter(|s| !s.is_empty()) {
            if let Some(&j) = producer.get(inp.as_str()) {
                indeg[i] += 1;
                users[j].push(i);
            } else if !known.contains_key(inp.as_str()) {
                return Err(node_err(
                    np,
                    &names[i],
                    format!(
                        "input '{inp}' is not produced by any node, initializer or graph input"
                    ),
                ));
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..gp.node.len()).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(gp.node.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if order.len() != gp.node.len() {
        // Drop the stuck nodes that merely depend on a cycle (reverse Kahn over the stuck
        // subgraph): what is left lies on a cycle.
        let mut stuck: BTreeSet<usize> = (0..gp.node.len()).filter(|&i| indeg[i] > 0).collect();
        let mut producers: Vec<Vec<usize>> = vec![Vec::new(); gp.node.len()];
        let mut outdeg = vec![0usize; gp.node.len()];
        for &i in &stuck {
            for &u in users[i].iter().filter(|u| stuck.contains(u)) {
                producers[u].push(i);
                outdeg[i] += 1;
            }
        }
        let mut leaves: Vec<usize> = stuck.iter().copied().filter(|&i| outdeg[i] == 0).collect();
        while let Some(i) = leaves.pop() {
            stuck.remove(&i);
            for &p in &producers[i] {
                outdeg[p] -= 1;
                if outdeg[p] == 0 {
                    leaves.push(p);
                }
            }
        }
        let mut stuck: Vec<&str> = stuck.iter().map(|&i| names[i].as_str()).collect();
        stuck.truncate(8);
        return Err(Error::Graph(format!(
            "cycle through node(s) {}",
            stuck.join(", ")
        )));
    }
    Ok(order)
}

/// The static type of a graph input.
fn input_type(vi: &ValueInfoProto, opts: &LoadOptions) -> Result<TensorType> {
    let name = vi.name.clone().unwrap_or_default();
    let verr = |msg: String| Error::Value {
        name: name.clone(),
        msg,
    };
    let tt = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(TypeValue::TensorType(t)) => t,
        Some(_) => return Err(verr("only tensor inputs are supported".into())),
        None => return Err(verr("graph input has no type".into())),
    };
    let dtype = tensor::dtype_from_onnx(tt.elem_type.unwrap_or(0), false).map_err(verr)?;
    if let Some(shape) = opts.input_shapes.get(&name) {
        // The override may resolve symbolic dimensions, never contradict declared ones.
        if let Some(declared) = &tt.shape {
            if declared.dim.len() != shape.len() {
                return Err(verr(format!(
                    "the given shape {shape:?} has rank {}, the model declares rank {}",
                    shape.len(),
                    declared.dim.len()
                )));
            }
            for (i, (d, &want)) in declared.dim.iter().zip(shape).enumerate() {
                if let Some(DimValue::DimValue(v)) = &d.value {
                    if *v as i128 != want as i128 {
                        return Err(verr(format!(
                            "the given shape {shape:?} sets dimension {i} to {want}, the model \
                             declares {v}"
                        )));
                    }
                }
            }
        }
        let ty = TensorType::new(dtype, shape.clone());
        ty.check().map_err(verr)?;
        return Ok(ty);
    }
    let dims = match &tt.shape {
        Some(s) => &s.dim,
        None => {
            return Err(verr(
                "graph input has no shape (give one with --input-shape NAME=D0,D1,..)".into(),
            ))
        }
    };
    let mut shape = Vec::with_capacity(dims.len().min(64));
    for (i, d) in dims.iter().enumerate() {
        match &d.value {
            Some(DimValue::DimValue(v)) if *v >= 0 => shape.push(
                usize::try_from(*v).map_err(|_| verr(format!("dimension {v} is too large")))?,
            ),
            Some(DimValue::DimValue(v)) => return Err(verr(format!("negative dimension {v}"))),
            _ if i == 0 => shape.push(1),
            Some(DimValue::DimParam(p)) => {
                return Err(verr(format!(
                    "dimension {i} is symbolic ('{p}'); give the shape with --input-shape {name}=D0,D1,.."
                )))
            }
            None => {
                return Err(verr(format!(
                    "dimension {i} is unknown; give the shape with --input-shape {name}=D0,D1,.."
                )))
            }
        }
    }
    let ty = TensorType::new(dtype, shape);
    ty.check().map_err(verr)?;
    Ok(ty)
}

// ----- node context ------------------------------------------------------------------

/// One ONNX node being imported: its proto, names, and attribute accessors that remember
/// which attributes were read (the rest are reported as unsupported).
pub(crate) struct Node<'a> {
    pub p: &'a NodeProto,
    /// Name for messages: the ONNX node name or `<op>_<index>`.
    pub name: String,
    /// Base name of the IR nodes made for it.
    pub base: String,
    pub op: &'a str,
    pub opset: i64,
    read: RefCell<Vec<bool>>,
}

/// The type of an attribute, from its `type` field or, for old files, from the field set.
fn attr_kind(a: &AttributeProto) -> Option<At> {
    if let Some(t) = a.r#type {
        if let Ok(k) = At::try_from(t) {
            if k != At::Undefined {
                return Some(k);
            }
        }
    }
    Some(if a.f.is_some() {
        At::Float
    } else if a.i.is_some() {
        At::Int
    } else if a.s.is_some() {
        At::String
    } else if a.t.is_some() {
        At::Tensor
    } else if a.g.is_some() {
        At::Graph
    } else if !a.floats.is_empty() {
        At::Floats
    } else if !a.ints.is_empty() {
        At::Ints
    } else if !a.strings.is_empty() {
        At::Strings
    } else {
        return None;
    })
}

impl<'a> Node<'a> {
    /// An error about this node.
    pub fn err(&self, msg: impl Into<String>) -> Error {
        Error::Node {
            node: self.name.clone(),
            op: self.op.to_string(),
            msg: msg.into(),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        let i = self
            .p
            .attribute
            .iter()
            .position(|a| a.name.as_deref() == Some(name))?;
        if let Some(r) = self.read.borrow_mut().get_mut(i) {
            *r = true;
        }
        self.p.attribute.get(i)
    }

    fn typed(&self, name: &str, want: At) -> Result<Option<&'a AttributeProto>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => match attr_kind(a) {
                // An empty list attribute has no field set.
                None if matches!(want, At::Ints | At::Floats | At::Strings) => Ok(Some(a)),
                Some(k) if k == want => Ok(Some(a)),
                k => Err(self.err(format!(
                    "attribute '{name}' must be {}, got {}",
                    want.as_str_name(),
                    k.map(|k| k.as_str_name()).unwrap_or("nothing")
                ))),
            },
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(name, At::Int)?.map(|a| a.i.unwrap_or(0)))
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// A 0/1 flag attribute.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(self.err(format!("attribute '{name}' must be 0 or 1, got {v}"))),
        }
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.typed(name, At::Ints)?.map(|a| a.ints.clone()))
    }

    pub fn float(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.typed(name, At::Float)?.map(|a| a.f.unwrap_or(0.0)))
    }

    pub fn float_or(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.typed(name, At::Floats)?.map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        match self.typed(name, At::String)? {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s.clone().unwrap_or_default())
                .map(Some)
                .map_err(|_| self.err(format!("attribute '{name}' is not UTF-8"))),
        }
    }

    pub fn string_or(&self, name: &str, default: &str) -> Result<String> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        Ok(self.typed(name, At::Tensor)?.and_then(|a| a.t.as_ref()))
    }

    /// Whether an attribute is present (marks it read).
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Mark attributes as handled without reading them (they do not affect inference).
    pub fn ignore(&self, names: &[&str]) {
        for name in names {
            self.attr(name);
        }
    }

    /// Number of output names (including empty ones).
    pub fn num_outputs(&self) -> usize {
        self.p.output.len()
    }

    fn check_unread(&self) -> Result<()> {
        let read = self.read.borrow();
        for (a, r) in self.p.attribute.iter().zip(read.iter()) {
            if !r {
                return Err(self.err(format!(
                    "attribute '{}' is not supported",
                    a.name.as_deref().unwrap_or("")
                )));
            }
        }
        Ok(())
    }
}

// ----- shared helpers ----------------------------------------------------------------

/// Normalise a possibly negative axis against `rank` (`-rank..rank`).
pub(crate) fn norm_axis(n: &Node, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(n.err(format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Normalise a list of axes; duplicates are an error.
pub(crate) fn norm_axes(n: &Node, axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = norm_axis(n, a, rank)?;
        if out.contains(&a) {
            return Err(n.err(format!("axis {a} is repeated in {axes:?}")));
        }
        out.push(a);
    }
    Ok(out)
}

/// Non-negative integers (attribute values) as `usize`.
pub(crate) fn to_usizes(n: &Node, what: &str, v: &[i64]) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| n.err(format!("{what} {v:?} must be non-negative")))
        })
        .collect()
}
