//! `ir::cpu::Plan`: a graph lowered for the CPU backend.
//!
//! A plan is a straight-line list of [`Step`]s over [`PValue`]s. Every value is a strided
//! view (shape, element strides, element offset) of some storage: a caller input or output
//! buffer, a constant of the graph's pool, a constant the plan derived (BatchNorm scale and
//! shift, transposed Gemm weights, per-channel PReLU slopes) or an arena [`Buffer`].
//!
//! Layouts. 4-D activations written by the convolution, pooling and channel kernels are
//! *pixel-major* (NHWC with a pixel stride `ld >= C`, see [`PValue::pixel_ld`]). Kernels
//! that need a layout (pixel-major for convolutions and pools, row-major for Softmax and
//! Gemm operands) get a [`Kernel::Copy`] inserted in front of them when their input is not
//! already in it; every other kernel takes arbitrary strides, so layout changes cost nothing
//! where they are not needed.
//!
//! Views. Reshape of a row-major value, Identity, Transpose, Slice, Split and Expand are
//! views (no step). Channel Concat is a view too (f32, u8 and i8): a producer whose kernel
//! writes through strides writes straight into its channel slice of the concatenated
//! buffer; the other inputs are copied. Channel shuffle is one strided copy over a rank-5
//! index space.
//!
//! Memory. Buffers live from their first write to their last read (over every view of
//! them); [`Plan::arena_bytes`] is the size of the arena after first-fit packing of those
//! live ranges, largest buffer first, at 64-byte alignment.
//!
//! Lowering rejects what it cannot generate with an [`Error::Node`] naming the node; it
//! never substitutes a different computation.

use crate::error::{Error, Result};
use crate::graph::{ConstId, Graph, NodeId, Value};
use crate::op::{Activation, BinaryOp, Conv2d, Op, Pool2d, ReduceKind, Residual, UnaryOp};
use crate::tensor::Tensor;
use crate::DType;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

pub mod quant;
pub use quant::{Elem, QConv, QKernel};

/// Index of a [`PValue`] in [`Plan::values`].
pub type ValId = usize;

/// Where a value's elements live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Storage {
    /// An arena buffer ([`Plan::buffers`]).
    Arena(usize),
    /// A tensor of the graph's constant pool.
    Const(ConstId),
    /// A constant the plan computed ([`Plan::derived`]).
    Derived(usize),
    /// The caller's buffer of graph input `i` (row-major).
    Input(usize),
    /// The caller's buffer of graph output `i` (row-major).
    Output(usize),
}

/// A strided view of some storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PValue {
    pub name: String,
    pub shape: Vec<usize>,
    /// Element strides per axis (may be 0 for broadcast axes, negative for reversed ones).
    pub strides: Vec<isize>,
    /// Element offset of the first logical element.
    pub offset: isize,
    pub storage: Storage,
    /// Element type (that of the storage).
    pub elem: Elem,
}

impl PValue {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The pixel stride if the value is a pixel-major 4-D tensor: element `(n, c, h, w)`
    /// at `((n*H + h)*W + w)*ld + c` (axes of size 1 may have any stride).
    pub fn pixel_ld(&self) -> Option<usize> {
        let &[n, c, h, w] = self.shape.as_slice() else {
            return None;
        };
        let s = &self.strides;
        let ld = if w > 1 {
            s[3]
        } else if h > 1 {
            s[2]
        } else if n > 1 {
            s[0]
        } else {
            c as isize
        };
        if ld < c as isize || ld <= 0 {
            return None;
        }
        let want = [h as isize * w as isize * ld, 1, w as isize * ld, ld];
        let ok = [n, c, h, w]
            .iter()
            .zip(s.iter().zip(want))
            .all(|(&d, (&got, want))| d <= 1 || got == want);
        ok.then_some(ld as usize)
    }

    /// Whether the value is dense row-major (axes of size 1 may have any stride).
    pub fn is_row_major(&self) -> bool {
        let want = row_major(&self.shape);
        self.shape
            .iter()
            .zip(self.strides.iter().zip(want))
            .all(|(&d, (&got, want))| d <= 1 || got == want)
    }
}

/// An arena buffer of `elems` elements of type `elem` at `offset_bytes`, live over steps
/// `first..=last`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Buffer {
    pub elems: usize,
    pub elem: Elem,
    pub offset_bytes: usize,
    pub first: usize,
    pub last: usize,
}

/// Receptive fields per thread gathered by a direct convolution (`LNC_I2C_ROWS` in C).
pub const DIRECT_ROWS: usize = 64;

/// Rows of pointwise output a fused [`Kernel::PwDw`] keeps per thread
/// (`LNC_PWDW_RING_ROWS` in C) for a depthwise input of `h` x `w` pixels: the depthwise
/// window plus `sh` rows per `ceil(48 / w)` (so that the pointwise GEMM of a narrow image
/// fills whole register tiles), at most `max(window, h)`.
pub fn pw_dw_ring_rows(kh: usize, dh: usize, sh: usize, h: usize, w: usize) -> usize {
    let win = (kh - 1) * dh + 1;
    (win + sh * 48usize.div_ceil(w.max(1))).min(h.max(win))
}

/// Which convolution kernel a convolution uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConvKind {
    /// 1x1, stride 1, no padding, one group: a packed GEMM.
    Pointwise,
    /// One input and one output channel per group: vectorised across channels.
    Depthwise,
    /// Everything else (first layer, group convolution, dilation, strided 1x1): an
    /// implicit GEMM over gathered receptive fields; reads `x` in any layout.
    Direct,
}

/// Geometry shared by convolutions and pools (`c`: input channels, `m`: output channels).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub oh: usize,
    pub ow: usize,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
}

/// A strided n-d loop: `shape` with one stride vector per operand (dims coalesced).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nest {
    pub shape: Vec<usize>,
    pub strides: Vec<Vec<isize>>,
}

/// Elementwise function of one operand (the activation set plus the unary ops).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum UnaryFn {
    Act(Activation),
    Op(UnaryOp),
    Elu(f32),
}

/// Elementwise function of two or three operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryFn {
    Op(BinaryOp),
    /// `a < 0 ? a * b : a`.
    PRelu,
    /// `a * b + c`.
    Affine,
}

/// What a step computes. Value ids refer to [`Plan::values`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Kernel {
    /// Convolution with fused epilogue: bias, then residual `res` and activation in
    /// `residual` order. `x`, `res` and `y` are pixel-major; `w` is the OIHW constant.
    Conv {
        kind: ConvKind,
        geom: Geom,
        x: ValId,
        w: ValId,
        bias: Option<ValId>,
        act: Activation,
        /// Per-channel PReLU slope (`[M]`).
        slope: Option<ValId>,
        residual: Residual,
        res: Option<ValId>,
        y: ValId,
        /// Scratch of a [`ConvKind::Direct`] convolution: per thread, [`DIRECT_ROWS`]
        /// receptive fields or the padded input-row windows of a block of output rows.
        tmp: Option<ValId>,
    },
    /// A pointwise [`Kernel::Conv`] whose output only feeds the depthwise [`Kernel::Conv`]
    /// `dw`, fused over rows: `ring` holds [`pw_dw_ring_rows`] pointwise output rows per
    /// thread, so the expanded tensor (`pw`'s `y`, `dw`'s `x`) is never materialised.
    PwDw {
        pw: Box<Kernel>,
        dw: Box<Kernel>,
        ring: ValId,
    },
    /// Max or average pooling on pixel-major tensors.
    Pool {
        max: bool,
        count_include_pad: bool,
        geom: Geom,
        x: ValId,
        y: ValId,
    },
    /// Global pooling of a pixel-major `x` into contiguous `y` (`[N, C]` elements); with
    /// `dq = Some((scale, zp))` `x` holds bytes, each dequantized as `DequantizeLinear` does
    /// before it is summed (a fused dequantization, same order of f32 operations).
    GlobalPool {
        max: bool,
        dq: Option<(f32, i32)>,
        x: ValId,
        y: ValId,
    },
    /// `y = x` over the nest (operands: x, y) relative to the values' offsets.
    Copy { nest: Nest, x: ValId, y: ValId },
    /// `y = f(x)` over the nest (operands: x, y).
    Unary {
        f: UnaryFn,
        nest: Nest,
        x: ValId,
        y: ValId,
    },
    /// `y = f(a, b[, c])` over the nest (operands: a, b, [c], y).
    Binary {
        f: BinaryFn,
        nest: Nest,
        a: ValId,
        b: ValId,
        c: Option<ValId>,
        y: ValId,
    },
    /// `y[i] = x[sum_axis tables[axis][i_axis]]` (a table entry `None` gives `fill`);
    /// entries are element offsets relative to `x`. `y` is contiguous, shape = table lengths.
    Gather {
        tables: Vec<Vec<Option<isize>>>,
        fill: f32,
        x: ValId,
        y: ValId,
    },
    /// Pixel-major channel gather: output channel `k` is channel `map[k].1` of `srcs[map[k].0]`.
    ChannelMap {
        srcs: Vec<ValId>,
        map: Vec<(usize, usize)>,
        y: ValId,
    },
    /// Reduction of `x` into contiguous `y`: outer dims (`outer`, x strides) and reduced
    /// dims (`inner`, x strides).
    Reduce {
        kind: ReduceKind,
        outer: Nest,
        inner: Nest,
        x: ValId,
        y: ValId,
    },
    /// Softmax over `d` with `inner` trailing elements; `x` and `y` contiguous.
    Softmax {
        outer: usize,
        d: usize,
        inner: usize,
        log: bool,
        x: ValId,
        y: ValId,
    },
    /// `y[m][n] = alpha * sum_k a[m*as0 + k*as1] * b[k*bs0 + n*bs1] + beta * c[..]`;
    /// `y` contiguous.
    Gemm {
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        beta: f32,
        a: ValId,
        a_strides: [isize; 2],
        b: ValId,
        b_strides: [isize; 2],
        c: Option<(ValId, [isize; 2])>,
        y: ValId,
    },
    /// Integer (quantized) kernels: see [`quant`].
    Quant(QKernel),
}

/// One step: the node it comes from (for comments and errors) and its kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub node: String,
    pub op: String,
    pub kernel: Kernel,
    pub reads: Vec<ValId>,
    pub writes: Vec<ValId>,
}

/// A graph input or output as the caller sees it (row-major f32).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Io {
    pub name: String,
    pub shape: Vec<usize>,
}

/// The lowered program.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub values: Vec<PValue>,
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
    /// Constants computed by the lowering, referenced by [`Storage::Derived`].
    #[serde(skip)]
    pub derived: Vec<Tensor>,
    pub arena_bytes: usize,
}

/// Row-major strides of a shape.
pub fn row_major(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![1isize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1] as isize;
    }
    s
}

/// Pixel-major (NHWC) strides of a 4-D NCHW shape with pixel stride `ld`.
pub fn pixel_major(shape: &[usize], ld: usize) -> Vec<isize> {
    let (h, w) = (shape[2] as isize, shape[3] as isize);
    let ld = ld as isize;
    vec![h * w * ld, 1, w * ld, ld]
}

/// Build a coalesced loop nest over `shape` for operands with the given strides; dims are
/// ordered by the last operand's strides (the output), descending.
pub fn nest(shape: &[usize], strides: &[Vec<isize>]) -> Nest {
    let mut dims: Vec<usize> = (0..shape.len()).filter(|&d| shape[d] != 1).collect();
    let out = strides.last().cloned().unwrap_or_default();
    dims.sort_by_key(|&d| std::cmp::Reverse(out[d].unsigned_abs()));
    let mut sh: Vec<usize> = Vec::new();
    let mut st: Vec<Vec<isize>> = vec![Vec::new(); strides.len()];
    for d in dims {
        if let Some(&last) = sh.last() {
            let k = sh.len() - 1;
            let mergeable = strides
                .iter()
                .enumerate()
                .all(|(o, s)| st[o][k] == s[d] * shape[d] as isize);
            if mergeable {
                sh[k] = last * shape[d];
                for (o, s) in strides.iter().enumerate() {
                    st[o][k] = s[d];
                }
                continue;
            }
        }
        sh.push(shape[d]);
        for (o, s) in strides.iter().enumerate() {
            st[o].push(s[d]);
        }
    }
    if sh.is_empty() {
        sh.push(if shape.contains(&0) { 0 } else { 1 });
        for s in &mut st {
            s.push(1);
        }
    }
    Nest {
        shape: sh,
        strides: st,
    }
}

/// Strides reading a value of shape `src` (strides `s`) broadcast to `out` (numpy rules).
fn broadcast(src: &[usize], s: &[isize], out: &[usize]) -> Option<Vec<isize>> {
    if src.len() > out.len() {
        return None;
    }
    let lead = out.len() - src.len();
    let mut r = vec![0; out.len()];
    for (i, &d) in src.iter().enumerate() {
        if d == out[lead + i] {
            r[lead + i] = if d == 1 { 0 } else { s[i] };
        } else if d != 1 {
            return None;
        }
    }
    Some(r)
}

struct Lower<'g> {
    g: &'g Graph,
    plan: Plan,
    /// Graph value -> plan value.
    map: HashMap<Value, ValId>,
    /// Pixel-major / row-major copies already made of a value.
    pixel_copy: HashMap<ValId, ValId>,
    row_copy: HashMap<ValId, ValId>,
    /// Producer value aliased into a concat: (concat node, channel offset).
    alias: HashMap<Value, (NodeId, usize)>,
    /// The buffer value of a concat whose inputs are written in place.
    concat_buf: HashMap<NodeId, ValId>,
    /// Tabulated `QuantizeLinear`s ([`quant::plan_luts`]).
    luts: HashMap<NodeId, quant::Lut>,
    node: String,
    op: String,
    threads: usize,
}

/// Lower a verified graph to a plan for code running on up to `threads` threads (scratch
/// is sized for them). Every tensor must be f32; anything the CPU backend cannot generate
/// is an error naming the node.
pub fn lower(g: &Graph, threads: usize) -> Result<Plan> {
    let order = g.topo_order()?;
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs().iter().map(|o| o.value.node).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.node_inputs(n).iter().map(|v| v.node));
        }
    }
    let mut l = Lower {
        g,
        plan: Plan {
            name: g.name.clone(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            values: Vec::new(),
            buffers: Vec::new(),
            steps: Vec::new(),
            derived: Vec::new(),
            arena_bytes: 0,
        },
        map: HashMap::new(),
        pixel_copy: HashMap::new(),
        row_copy: HashMap::new(),
        alias: HashMap::new(),
        concat_buf: HashMap::new(),
        luts: HashMap::new(),
        node: String::new(),
        op: String::new(),
        threads: threads.max(1),
    };
    // Elementwise chains of quantized values become tables; their nodes are not lowered.
    let (luts, dead) = quant::plan_luts(g, &order, &live)?;
    live.retain(|n| !dead.contains(n));
    l.luts = luts;
    l.plan_concat_aliases(&order, &live);
    for (i, &id) in g.inputs().iter().enumerate() {
        let n = g.node(id);
        let ty = n
            .outputs
            .first()
            .ok_or_else(|| Error::node(&n.name, "input", "input node has no type"))?;
        if ty.dtype != DType::F32 {
            return Err(Error::node(
                &n.name,
                "input",
                format!(
                    "the CPU backend takes f32 inputs only, this one is {}",
                    ty.dtype
                ),
            ));
        }
        l.plan.inputs.push(Io {
            name: n.name.clone(),
            shape: ty.shape.clone(),
        });
        let v = l.push_value(&n.name, ty.shape.clone(), Storage::Input(i));
        l.map.insert(Value { node: id, port: 0 }, v);
    }
    for id in order {
        if !live.contains(&id) {
            continue;
        }
        let n = g.node(id);
        l.node = n.name.clone();
        l.op = n.op.name().to_string();
        l.lower_node(id)?;
    }
    for (i, o) in g.outputs().iter().enumerate() {
        let ty = g.try_value_type(o.value)?;
        l.node = o.name.clone();
        l.op = "output".into();
        if ty.dtype != DType::F32 {
            // Name the producer: an integer graph output is not generated (QDQ models end
            // in a DequantizeLinear).
            let p = g.node(o.value.node);
            return Err(Error::node(
                &p.name,
                p.op.name(),
                format!(
                    "graph output '{}' is {}: the CPU backend produces f32 outputs only",
                    o.name, ty.dtype
                ),
            ));
        }
        l.plan.outputs.push(Io {
            name: o.name.clone(),
            shape: ty.shape.clone(),
        });
        let src = l.value(o.value)?;
        let dst = l.push_value(&o.name, ty.shape.clone(), Storage::Output(i));
        l.copy(src, dst);
    }
    l.fuse_qadd();
    l.fuse_dq_pool();
    l.fuse_pw_dw();
    l.assign_memory();
    Ok(l.plan)
}

impl Lower<'_> {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::node(&self.node, &self.op, msg)
    }

    fn push_value(&mut self, name: &str, shape: Vec<usize>, storage: Storage) -> ValId {
        let strides = row_major(&shape);
        self.push_view(name, shape, strides, 0, storage)
    }

    fn push_view(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        strides: Vec<isize>,
        offset: isize,
        storage: Storage,
    ) -> ValId {
        let elem = self.storage_elem(storage);
        self.plan.values.push(PValue {
            name: name.to_string(),
            shape,
            strides,
            offset,
            storage,
            elem,
        });
        self.plan.values.len() - 1
    }

    /// A fresh arena buffer holding a value of `shape`, pixel-major when `pixel` (rank 4).
    fn new_buffer(&mut self, name: &str, shape: &[usize], pixel: bool) -> ValId {
        self.new_buffer_of(name, shape, pixel, Elem::F32)
    }

    /// [`Self::new_buffer`] with elements of type `elem`.
    fn new_buffer_of(&mut self, name: &str, shape: &[usize], pixel: bool, elem: Elem) -> ValId {
        let elems: usize = shape.iter().product();
        self.plan.buffers.push(Buffer {
            elems,
            elem,
            offset_bytes: 0,
            first: 0,
            last: 0,
        });
        let b = self.plan.buffers.len() - 1;
        let strides = if pixel && shape.len() == 4 {
            pixel_major(shape, shape[1])
        } else {
            row_major(shape)
        };
        self.push_view(name, shape.to_vec(), strides, 0, Storage::Arena(b))
    }

    fn derived(&mut self, name: &str, t: Tensor) -> ValId {
        let shape = t.shape().to_vec();
        self.plan.derived.push(t);
        let d = self.plan.derived.len() - 1;
        self.push_value(name, shape, Storage::Derived(d))
    }

    fn value(&self, v: Value) -> Result<ValId> {
        self.map.get(&v).copied().ok_or_else(|| {
            self.err(format!(
                "input {}:{} was not lowered",
                v.node.index(),
                v.port
            ))
        })
    }

    fn step(&mut self, kernel: Kernel, reads: Vec<ValId>, writes: Vec<ValId>) {
        self.plan.steps.push(Step {
            node: self.node.clone(),
            op: self.op.clone(),
            kernel,
            reads,
            writes,
        });
    }

    fn copy(&mut self, x: ValId, y: ValId) {
        let (xv, yv) = (&self.plan.values[x], &self.plan.values[y]);
        let n = nest(&yv.shape, &[xv.strides.clone(), yv.strides.clone()]);
        self.step(Kernel::Copy { nest: n, x, y }, vec![x], vec![y]);
    }

    /// `x` as a pixel-major value (a copy when it is not one).
    fn pixel(&mut self, x: ValId) -> ValId {
        self.relaid(x, true)
    }

    /// `x` as a dense row-major value.
    fn row(&mut self, x: ValId) -> ValId {
        self.relaid(x, false)
    }

    /// `x` in the pixel-major (`pixel`) or dense row-major layout: itself when it already is,
    /// else one copy per value and layout (memoised).
    fn relaid(&mut self, x: ValId, pixel: bool) -> ValId {
        let v = &self.plan.values[x];
        if (pixel && v.pixel_ld().is_some()) || (!pixel && v.is_row_major()) {
            return x;
        }
        let memo = if pixel {
            &self.pixel_copy
        } else {
            &self.row_copy
        };
        if let Some(&c) = memo.get(&x) {
            return c;
        }
        let (shape, elem) = (v.shape.clone(), v.elem);
        let name = format!("{}.{}", v.name, if pixel { "nhwc" } else { "rm" });
        let y = self.new_buffer_of(&name, &shape, pixel, elem);
        self.copy(x, y);
        if pixel {
            self.pixel_copy.insert(x, y);
        } else {
            self.row_copy.insert(x, y);
        }
        y
    }

    /// The output value of the current node (port `port`): a slice of a concat buffer
    /// when the node is aliased into one, else a fresh buffer.
    fn output(&mut self, id: NodeId, port: u16, pixel: bool) -> Result<ValId> {
        let v = Value { node: id, port };
        let ty = self.g.try_value_type(v)?.clone();
        let name = if port == 0 {
            self.node.clone()
        } else {
            format!("{}:{port}", self.node)
        };
        let y = match self.alias.get(&v).copied() {
            Some((cat, c0)) => {
                let buf = self.concat_buffer(cat)?;
                let b = self.plan.values[buf].clone();
                self.push_view(
                    &name,
                    ty.shape.clone(),
                    b.strides.clone(),
                    b.offset + c0 as isize * b.strides[1],
                    b.storage,
                )
            }
            None => {
                let elem = Elem::of(ty.dtype).ok_or_else(|| {
                    self.err(format!(
                        "{} tensors are not generated by the CPU backend",
                        ty.dtype
                    ))
                })?;
                self.new_buffer_of(&name, &ty.shape, pixel, elem)
            }
        };
        self.map.insert(v, y);
        Ok(y)
    }

    fn concat_buffer(&mut self, cat: NodeId) -> Result<ValId> {
        if let Some(&b) = self.concat_buf.get(&cat) {
            return Ok(b);
        }
        let n = self.g.node(cat);
        let shape = n.outputs[0].shape.clone();
        let elem = Elem::of(n.outputs[0].dtype)
            .ok_or_else(|| self.err("concat of an unsupported element type"))?;
        let b = self.new_buffer_of(&n.name, &shape, true, elem);
        self.concat_buf.insert(cat, b);
        Ok(b)
    }

    /// Decide which producers write straight into their concat's buffer.
    fn plan_concat_aliases(&mut self, order: &[NodeId], live: &HashSet<NodeId>) {
        for &id in order {
            if !live.contains(&id) {
                continue;
            }
            let n = self.g.node(id);
            let Op::Concat { axis: 1 } = n.op else {
                continue;
            };
            let dt = n.outputs[0].dtype;
            if n.outputs[0].shape.len() != 4 || !matches!(dt, DType::F32 | DType::U8 | DType::I8) {
                continue;
            }
            let ins = self.g.node_inputs(id);
            let mut c0 = 0;
            for v in &ins {
                let c = self.g.value_type(*v).shape[1];
                let once = ins.iter().filter(|u| *u == v).count() == 1;
                let p = &self.g.node(v.node).op;
                // Float kernels, and the integer ones whose output is pixel-major through
                // its strides (convolutions, QuantizeLinear and the fused residual add or
                // table that replaces it, max pooling, channel maps).
                let writes_strided = if dt == DType::F32 {
                    matches!(
                        p,
                        Op::Conv(_)
                            | Op::FusedConv { .. }
                            | Op::DwPw { .. }
                            | Op::MaxPool(_)
                            | Op::AveragePool { .. }
                            | Op::ChannelMap { .. }
                            | Op::Unary(_)
                            | Op::Binary(_)
                            | Op::Clip { .. }
                            | Op::LeakyRelu { .. }
                            | Op::HardSigmoid { .. }
                            | Op::PRelu
                            | Op::BatchNorm { .. }
                    )
                } else {
                    matches!(
                        p,
                        Op::QLinearConv(_)
                            | Op::QuantizeLinear { .. }
                            | Op::MaxPool(_)
                            | Op::ChannelMap { .. }
                    )
                };
                if once
                    && writes_strided
                    && !self.g.is_output(*v)
                    && !self.alias.contains_key(v)
                    && self.g.value_type(*v).dtype == dt
                {
                    self.alias.insert(*v, (id, c0));
                }
                c0 += c;
            }
        }
    }

    fn conv_geom(&self, x: &[usize], y: &[usize], c: &Conv2d) -> Geom {
        Geom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            m: y[1],
            oh: y[2],
            ow: y[3],
            kernel: c.kernel,
            strides: c.strides,
            pads: c.pads,
            dilations: c.dilations,
            group: c.group,
        }
    }

    fn pool_geom(&self, x: &[usize], y: &[usize], p: &Pool2d) -> Geom {
        Geom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            m: y[1],
            oh: y[2],
            ow: y[3],
            kernel: p.kernel,
            strides: p.strides,
            pads: p.pads,
            dilations: p.dilations,
            group: 1,
        }
    }

    fn need_const(&self, v: Value, what: &str) -> Result<ValId> {
        if self.g.const_value(v).is_none() {
            return Err(self.err(format!(
                "the CPU backend needs a constant {what} (weights are packed at build time)"
            )));
        }
        self.value(v)
    }

    /// A per-channel `[m]` slope from a PReLU slope constant that varies at most along
    /// the channel axis of a `[N, m, ...]` output.
    fn channel_slope(&mut self, v: Value, out: &[usize]) -> Result<ValId> {
        let t = quant::const_or_dequantized(self.g, v)
            .ok_or_else(|| self.err("the CPU backend needs a constant PReLU slope"))?;
        let m = out[1];
        let vals = t.to_f64_vec();
        let st = broadcast(t.shape(), &row_major(t.shape()), out)
            .ok_or_else(|| self.err("PReLU slope does not broadcast to the output"))?;
        if st.iter().enumerate().any(|(d, &s)| d != 1 && s != 0) {
            return Err(
                self.err("the CPU backend supports PReLU slopes that vary only along channels")
            );
        }
        let per: Vec<f32> = (0..m).map(|c| vals[c * st[1] as usize] as f32).collect();
        let t = Tensor::from_f32(&[m], per).map_err(|e| self.err(e))?;
        Ok(self.derived(&format!("{}.slope", self.node), t))
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_step(
        &mut self,
        c: &Conv2d,
        x: ValId,
        w: ValId,
        bias: Option<ValId>,
        act: Activation,
        slope: Option<ValId>,
        residual: Residual,
        res: Option<ValId>,
        y: ValId,
    ) -> Result<()> {
        let res = res.map(|r| self.pixel(r));
        let xs = self.plan.values[x].shape.clone();
        let ys = self.plan.values[y].shape.clone();
        if xs.len() != 4 {
            return Err(self.err("the CPU backend supports 2-D convolutions only"));
        }
        let geom = self.conv_geom(&xs, &ys, c);
        let pointwise = c.kernel == [1, 1]
            && c.strides == [1, 1]
            && c.pads == [0; 4]
            && c.group == 1
            && geom.oh == geom.h
            && geom.ow == geom.w;
        let kind = if pointwise {
            ConvKind::Pointwise
        } else if c.group == geom.c && geom.m == geom.c {
            ConvKind::Depthwise
        } else {
            ConvKind::Direct
        };
        // Pointwise and depthwise kernels read pixel-major input; direct reads any layout.
        let (x, tmp) = if kind == ConvKind::Direct {
            let cpg = geom.c / c.group.max(1);
            let k = c.kernel[0] * c.kernel[1] * cpg;
            // Per thread (`lnc_conv_direct`): DIRECT_ROWS gathered receptive fields, or
            // windows of the input rows of `rb` output rows when columns are not dilated.
            let rb = DIRECT_ROWS
                .div_ceil(geom.ow.max(1))
                .clamp(1, geom.oh.max(1));
            let win = rb * (geom.pads[1] + geom.w + geom.pads[3]) * c.kernel[0] * cpg;
            let t = self.new_buffer(
                &format!("{}.im2col", self.node),
                &[self.threads * (DIRECT_ROWS * k).max(win)],
                false,
            );
            (x, Some(t))
        } else {
            (self.pixel(x), None)
        };
        if matches!(act, Activation::PRelu) && slope.is_none() {
            return Err(self.err("PReLU epilogue without a slope"));
        }
        let mut reads = vec![x, w];
        reads.extend(bias);
        reads.extend(slope);
        reads.extend(res);
        let mut writes = vec![y];
        writes.extend(tmp);
        self.step(
            Kernel::Conv {
                kind,
                geom,
                x,
                w,
                bias,
                act,
                slope,
                residual,
                res,
                y,
                tmp,
            },
            reads,
            writes,
        );
        Ok(())
    }

    fn unary_step(&mut self, id: NodeId, f: UnaryFn, x: ValId) -> Result<()> {
        let pixel = self.plan.values[x].pixel_ld().is_some();
        let y = self.output(id, 0, pixel)?;
        let (xv, yv) = (&self.plan.values[x], &self.plan.values[y]);
        let n = nest(&yv.shape, &[xv.strides.clone(), yv.strides.clone()]);
        self.step(Kernel::Unary { f, nest: n, x, y }, vec![x], vec![y]);
        Ok(())
    }

    fn binary_step(
        &mut self,
        id: NodeId,
        f: BinaryFn,
        a: ValId,
        b: ValId,
        c: Option<ValId>,
    ) -> Result<()> {
        let out = self.g.node(id).outputs[0].shape.clone();
        // Output layout: that of the first full-shape pixel-major operand.
        let pixel = [Some(a), Some(b), c]
            .into_iter()
            .flatten()
            .any(|v| self.plan.values[v].shape == out && self.plan.values[v].pixel_ld().is_some());
        let y = self.output(id, 0, pixel)?;
        let mut strides = Vec::new();
        for v in [Some(a), Some(b), c].into_iter().flatten() {
            let pv = &self.plan.values[v];
            strides.push(
                broadcast(&pv.shape, &pv.strides, &out)
                    .ok_or_else(|| self.err("operands do not broadcast to the output"))?,
            );
        }
        strides.push(self.plan.values[y].strides.clone());
        let n = nest(&out, &strides);
        let mut reads = vec![a, b];
        reads.extend(c);
        self.step(
            Kernel::Binary {
                f,
                nest: n,
                a,
                b,
                c,
                y,
            },
            reads,
            vec![y],
        );
        Ok(())
    }

    /// A view of `x` as the node's output (no step).
    fn view(
        &mut self,
        id: NodeId,
        port: u16,
        x: ValId,
        shape: Vec<usize>,
        strides: Vec<isize>,
        offset: isize,
    ) {
        let name = if port == 0 {
            self.node.clone()
        } else {
            format!("{}:{port}", self.node)
        };
        let st = self.plan.values[x].storage;
        let v = self.push_view(&name, shape, strides, offset, st);
        self.map.insert(Value { node: id, port }, v);
    }

    fn lower_node(&mut self, id: NodeId) -> Result<()> {
        let g = self.g;
        let node = g.node(id);
        let ins = g.node_inputs(id);
        match &node.op {
            Op::Input => return Ok(()),
            Op::Const(_) => {
                let t = g
                    .const_value(Value { node: id, port: 0 })
                    .ok_or_else(|| self.err("missing constant"))?;
                if t.dtype != DType::F32 {
                    // Integer constants are only usable as attributes-like inputs
                    // (Gather indices); they get no storage.
                    return Ok(());
                }
                let Op::Const(cid) = node.op else {
                    unreachable!()
                };
                let v = self.push_value(&node.name, t.shape().to_vec(), Storage::Const(cid));
                self.map.insert(Value { node: id, port: 0 }, v);
                return Ok(());
            }
            _ => {}
        }
        if self.lower_quant_node(id)? {
            return Ok(());
        }
        let int_view = quant::int_view_ok(g, id);
        // Every tensor a kernel touches is f32 (Gather indices and the integer views and
        // copies of `quant::int_view_ok` excepted).
        for (i, t) in node.outputs.iter().enumerate().filter(|_| !int_view) {
            if t.dtype != DType::F32 {
                return Err(self.err(format!(
                    "output {i} is {}: integer and quantized tensors are not generated by the CPU backend yet",
                    t.dtype
                )));
            }
        }
        for (slot, v) in ins.iter().enumerate().filter(|_| !int_view) {
            let is_index = matches!(node.op, Op::Gather { .. }) && slot == 1;
            if !is_index && g.try_value_type(*v)?.dtype != DType::F32 {
                return Err(self.err(format!(
                    "input {slot} is {}: integer and quantized tensors are not generated by the CPU backend yet",
                    g.value_type(*v).dtype
                )));
            }
        }
        let out_shape = node.outputs[0].shape.clone();
        match &node.op {
            Op::Input | Op::Const(_) => unreachable!(),
            Op::Identity | Op::Cast { to: DType::F32 } => {
                let x = self.value(ins[0])?;
                let pv = self.plan.values[x].clone();
                self.view(id, 0, x, pv.shape, pv.strides, pv.offset);
            }
            Op::Reshape { shape } => {
                let x = self.value(ins[0])?;
                let x = self.row(x);
                let off = self.plan.values[x].offset;
                self.view(id, 0, x, shape.clone(), row_major(shape), off);
            }
            Op::Transpose { perm } => {
                let x = self.value(ins[0])?;
                let pv = self.plan.values[x].clone();
                let shape = perm.iter().map(|&p| pv.shape[p]).collect();
                let strides = perm.iter().map(|&p| pv.strides[p]).collect();
                self.view(id, 0, x, shape, strides, pv.offset);
            }
            Op::Expand { shape } => {
                let x = self.value(ins[0])?;
                let pv = self.plan.values[x].clone();
                let st = broadcast(&pv.shape, &pv.strides, shape)
                    .ok_or_else(|| self.err("input does not broadcast"))?;
                self.view(id, 0, x, shape.clone(), st, pv.offset);
            }
            Op::Slice { axes } => {
                let x = self.value(ins[0])?;
                let pv = self.plan.values[x].clone();
                let mut st = pv.strides.clone();
                let mut off = pv.offset;
                for a in axes {
                    if out_shape[a.axis] > 0 {
                        off += a.start as isize * pv.strides[a.axis];
                    }
                    st[a.axis] = pv.strides[a.axis] * a.step as isize;
                }
                self.view(id, 0, x, out_shape.clone(), st, off);
            }
            Op::Split { axis, sizes } => {
                let x = self.value(ins[0])?;
                let pv = self.plan.values[x].clone();
                let mut start = 0;
                for (port, &s) in sizes.iter().enumerate() {
                    let mut shape = pv.shape.clone();
                    shape[*axis] = s;
                    let off = pv.offset + start as isize * pv.strides[*axis];
                    self.view(id, port as u16, x, shape, pv.strides.clone(), off);
                    start += s;
                }
            }
            Op::Concat { axis } => {
                let pixel = *axis == 1 && out_shape.len() == 4;
                let y = if self.concat_buf.contains_key(&id) || pixel {
                    self.concat_buffer(id)?
                } else {
                    let elem = Elem::of(node.outputs[0].dtype)
                        .ok_or_else(|| self.err("concat of an unsupported element type"))?;
                    self.new_buffer_of(&node.name, &out_shape, false, elem)
                };
                self.map.insert(Value { node: id, port: 0 }, y);
                let yv = self.plan.values[y].clone();
                let mut start = 0;
                for v in &ins {
                    let sh = g.value_type(*v).shape.clone();
                    let len = sh[*axis];
                    if self.alias.get(v).map(|a| a.0) != Some(id) {
                        let x = self.value(*v)?;
                        let off = yv.offset + start as isize * yv.strides[*axis];
                        let region =
                            self.push_view(&node.name, sh, yv.strides.clone(), off, yv.storage);
                        self.copy(x, region);
                    }
                    start += len;
                }
            }
            Op::ChannelShuffle { groups } => {
                let x = self.value(ins[0])?;
                let xv = self.plan.values[x].clone();
                if xv.shape.len() != 4 {
                    return Err(self.err("the CPU backend shuffles 4-D tensors only"));
                }
                let y = self.output(id, 0, xv.pixel_ld().is_some())?;
                let yv = self.plan.values[y].clone();
                let (n, c, h, w) = (xv.shape[0], xv.shape[1], xv.shape[2], xv.shape[3]);
                let (gr, k) = (*groups, c / *groups);
                // Index space [n, i < k, j < g, h, w]: out channel i*g + j <- in j*k + i.
                let shape = vec![n, k, gr, h, w];
                let xs = vec![
                    xv.strides[0],
                    xv.strides[1],
                    xv.strides[1] * k as isize,
                    xv.strides[2],
                    xv.strides[3],
                ];
                let ys = vec![
                    yv.strides[0],
                    yv.strides[1] * gr as isize,
                    yv.strides[1],
                    yv.strides[2],
                    yv.strides[3],
                ];
                let nst = nest(&shape, &[xs, ys]);
                self.step(Kernel::Copy { nest: nst, x, y }, vec![x], vec![y]);
            }
            Op::ChannelMap { map } => {
                if out_shape.len() != 4 {
                    return Err(self.err("the CPU backend maps channels of 4-D tensors only"));
                }
                let mut srcs = Vec::new();
                for v in &ins {
                    let v = self.value(*v)?;
                    srcs.push(self.pixel(v));
                }
                let y = self.output(id, 0, true)?;
                let m: Vec<(usize, usize)> = map.iter().map(|r| (r.input, r.channel)).collect();
                let mut reads = srcs.clone();
                reads.dedup();
                self.step(Kernel::ChannelMap { srcs, map: m, y }, reads, vec![y]);
            }
            Op::Conv(c) => {
                let x = self.value(ins[0])?;
                let w = self.need_const(ins[1], "weight")?;
                let b = match ins.get(2) {
                    Some(&v) => Some(self.need_const(v, "bias")?),
                    None => None,
                };
                let y = self.output(id, 0, true)?;
                self.conv_step(
                    c,
                    x,
                    w,
                    b,
                    Activation::Identity,
                    None,
                    Residual::None,
                    None,
                    y,
                )?;
            }
            Op::FusedConv { conv, epilogue } => {
                let x = self.value(ins[0])?;
                let w = self.need_const(ins[1], "weight")?;
                let b = self.need_const(ins[2], "bias")?;
                let mut k = 3;
                let res = if epilogue.residual != Residual::None {
                    k += 1;
                    Some(self.value(ins[3])?)
                } else {
                    None
                };
                let slope = if epilogue.act.has_slope() {
                    Some(self.channel_slope(ins[k], &out_shape)?)
                } else {
                    None
                };
                let y = self.output(id, 0, true)?;
                self.conv_step(
                    conv,
                    x,
                    w,
                    Some(b),
                    epilogue.act,
                    slope,
                    epilogue.residual,
                    res,
                    y,
                )?;
            }
            Op::DwPw {
                dw,
                dw_act,
                epilogue,
            } => {
                let x = self.value(ins[0])?;
                let dw_w = self.need_const(ins[1], "depthwise weight")?;
                let dw_b = self.need_const(ins[2], "depthwise bias")?;
                let pw_w = self.need_const(ins[3], "pointwise weight")?;
                let pw_b = self.need_const(ins[4], "pointwise bias")?;
                if dw_act.has_slope() || epilogue.act.has_slope() {
                    return Err(self.err("PReLU is not allowed in dw_pw"));
                }
                let res = if epilogue.residual != Residual::None {
                    Some(self.value(ins[5])?)
                } else {
                    None
                };
                let xs = &self.plan.values[x].shape;
                let ws = g.value_type(ins[1]).shape.clone();
                let mid_shape = crate::shape::infer(
                    &Op::Conv(dw.clone()),
                    &[
                        &crate::TensorType::f32(xs.clone()),
                        &crate::TensorType::f32(ws),
                    ],
                )
                .map_err(|e| self.err(e))?[0]
                    .shape
                    .clone();
                let mid = self.new_buffer(&format!("{}.dw", node.name), &mid_shape, true);
                self.conv_step(
                    dw,
                    x,
                    dw_w,
                    Some(dw_b),
                    *dw_act,
                    None,
                    Residual::None,
                    None,
                    mid,
                )?;
                let y = self.output(id, 0, true)?;
                self.conv_step(
                    &crate::shape::pointwise(1),
                    mid,
                    pw_w,
                    Some(pw_b),
                    epilogue.act,
                    None,
                    epilogue.residual,
                    res,
                    y,
                )?;
            }
            Op::BatchNorm { epsilon } => {
                let x = self.value(ins[0])?;
                let xs = self.plan.values[x].shape.clone();
                if xs.len() < 2 {
                    return Err(self.err("batch norm input must have rank >= 2"));
                }
                let mut p = Vec::new();
                for v in &ins[1..5] {
                    let t = quant::const_or_dequantized(g, *v).ok_or_else(|| {
                        self.err("the CPU backend needs constant batch-norm parameters")
                    })?;
                    p.push(t.to_f64_vec());
                }
                let c = xs[1];
                if p.iter().any(|v| v.len() != c) {
                    return Err(self.err(format!("parameters must have {c} elements")));
                }
                let scale: Vec<f32> = (0..c)
                    .map(|i| p[0][i] as f32 / (p[3][i] as f32 + epsilon).sqrt())
                    .collect();
                let shift: Vec<f32> = (0..c)
                    .map(|i| p[1][i] as f32 - p[2][i] as f32 * scale[i])
                    .collect();
                let mut bshape = vec![1; xs.len()];
                bshape[1] = c;
                let s = Tensor::from_f32(&bshape, scale).map_err(|e| self.err(e))?;
                let t = Tensor::from_f32(&bshape, shift).map_err(|e| self.err(e))?;
                let s = self.derived(&format!("{}.scale", node.name), s);
                let t = self.derived(&format!("{}.shift", node.name), t);
                self.binary_step(id, BinaryFn::Affine, x, s, Some(t))?;
            }
            Op::Unary(u) => {
                let x = self.value(ins[0])?;
                self.unary_step(id, UnaryFn::Op(*u), x)?;
            }
            Op::LeakyRelu { alpha } => {
                let x = self.value(ins[0])?;
                self.unary_step(id, UnaryFn::Act(Activation::LeakyRelu { alpha: *alpha }), x)?;
            }
            Op::Elu { alpha } => {
                let x = self.value(ins[0])?;
                self.unary_step(id, UnaryFn::Elu(*alpha), x)?;
            }
            Op::HardSigmoid { alpha, beta } => {
                let x = self.value(ins[0])?;
                let f = UnaryFn::Act(Activation::HardSigmoid {
                    alpha: *alpha,
                    beta: *beta,
                });
                self.unary_step(id, f, x)?;
            }
            Op::Clip { min, max } => {
                let x = self.value(ins[0])?;
                let f = UnaryFn::Act(Activation::Clip {
                    min: *min,
                    max: *max,
                });
                self.unary_step(id, f, x)?;
            }
            Op::PRelu => {
                let (x, s) = (self.value(ins[0])?, self.value(ins[1])?);
                self.binary_step(id, BinaryFn::PRelu, x, s, None)?;
            }
            Op::Binary(b) => {
                let (x, y) = (self.value(ins[0])?, self.value(ins[1])?);
                self.binary_step(id, BinaryFn::Op(*b), x, y, None)?;
            }
            Op::MaxPool(p) | Op::AveragePool { pool: p, .. } => {
                let x = self.value(ins[0])?;
                let x = self.pixel(x);
                let xs = self.plan.values[x].shape.clone();
                if xs.len() != 4 {
                    return Err(self.err("the CPU backend supports 2-D pooling only"));
                }
                let y = self.output(id, 0, true)?;
                let geom = self.pool_geom(&xs, &out_shape, p);
                let (max, cip) = match &node.op {
                    Op::AveragePool {
                        count_include_pad, ..
                    } => (false, *count_include_pad),
                    _ => (true, false),
                };
                self.step(
                    Kernel::Pool {
                        max,
                        count_include_pad: cip,
                        geom,
                        x,
                        y,
                    },
                    vec![x],
                    vec![y],
                );
            }
            Op::GlobalAveragePool | Op::GlobalMaxPool => {
                let x = self.value(ins[0])?;
                if self.plan.values[x].shape.len() != 4 {
                    return Err(self.err("the CPU backend supports 2-D global pooling only"));
                }
                let x = self.pixel(x);
                let y = self.output(id, 0, false)?;
                let max = matches!(node.op, Op::GlobalMaxPool);
                self.step(
                    Kernel::GlobalPool {
                        max,
                        dq: None,
                        x,
                        y,
                    },
                    vec![x],
                    vec![y],
                );
            }
            Op::Classifier {
                alpha,
                beta,
                trans_b,
            } => {
                let x = self.value(ins[0])?;
                let xs = self.plan.values[x].shape.clone();
                if xs.len() != 4 {
                    return Err(self.err("the classifier needs a 4-D input"));
                }
                let x = self.pixel(x);
                let pooled =
                    self.new_buffer(&format!("{}.pool", node.name), &[xs[0], xs[1]], false);
                self.step(
                    Kernel::GlobalPool {
                        max: false,
                        dq: None,
                        x,
                        y: pooled,
                    },
                    vec![x],
                    vec![pooled],
                );
                let c = match ins.get(2) {
                    Some(&v) => Some(self.value(v)?),
                    None => None,
                };
                let w = self.value(ins[1])?;
                self.gemm(
                    id,
                    pooled,
                    w,
                    c,
                    *alpha,
                    *beta,
                    false,
                    *trans_b,
                    ins.get(1).copied(),
                )?;
            }
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                let a = self.value(ins[0])?;
                let b = self.value(ins[1])?;
                let c = match ins.get(2) {
                    Some(_) => Some(self.value(ins[2])?),
                    None => None,
                };
                self.gemm(id, a, b, c, *alpha, *beta, *trans_a, *trans_b, Some(ins[1]))?;
            }
            Op::MatMul => self.matmul(id, self.value(ins[0])?, self.value(ins[1])?)?,
            Op::Softmax {
                axis,
                coerce_2d,
                log,
            } => {
                let x = self.value(ins[0])?;
                let x = self.row(x);
                let s = self.plan.values[x].shape.clone();
                let outer: usize = s[..*axis].iter().product();
                let (d, inner) = if *coerce_2d {
                    (s[*axis..].iter().product(), 1)
                } else {
                    (s[*axis], s[*axis + 1..].iter().product())
                };
                let y = self.output(id, 0, false)?;
                self.step(
                    Kernel::Softmax {
                        outer,
                        d,
                        inner,
                        log: *log,
                        x,
                        y,
                    },
                    vec![x],
                    vec![y],
                );
            }
            Op::Reduce { kind, axes, .. } => {
                let x = self.value(ins[0])?;
                let xv = self.plan.values[x].clone();
                let r = xv.shape.len();
                let all: Vec<usize> = (0..r).collect();
                let red: &[usize] = if axes.is_empty() { &all } else { axes };
                let (mut os, mut osh, mut is, mut ish) = (vec![], vec![], vec![], vec![]);
                for d in 0..r {
                    if red.contains(&d) {
                        ish.push(xv.shape[d]);
                        is.push(xv.strides[d]);
                    } else {
                        osh.push(xv.shape[d]);
                        os.push(xv.strides[d]);
                    }
                }
                if osh.len() > 6 || ish.len() > 6 {
                    return Err(self.err("the CPU backend reduces tensors of rank <= 6 only"));
                }
                let y = self.output(id, 0, false)?;
                let outer = Nest {
                    shape: osh,
                    strides: vec![os],
                };
                let inner = Nest {
                    shape: ish,
                    strides: vec![is],
                };
                self.step(
                    Kernel::Reduce {
                        kind: *kind,
                        outer,
                        inner,
                        x,
                        y,
                    },
                    vec![x],
                    vec![y],
                );
            }
            Op::Pad { pads, mode, value } => {
                let x = self.value(ins[0])?;
                let xv = self.plan.values[x].clone();
                let r = xv.shape.len();
                let mut tables = Vec::new();
                for (d, &len) in out_shape.iter().enumerate() {
                    let n = xv.shape[d] as i64;
                    let begin = pads[d];
                    let t = (0..len as i64)
                        .map(|o| {
                            let i = o - begin;
                            let i = match mode {
                                crate::op::PadMode::Constant => {
                                    if (0..n).contains(&i) {
                                        Some(i)
                                    } else {
                                        None
                                    }
                                }
                                crate::op::PadMode::Edge => Some(i.clamp(0, n - 1)),
                                crate::op::PadMode::Reflect => {
                                    let mut i = i;
                                    if n == 1 {
                                        Some(0)
                                    } else {
                                        let p = 2 * (n - 1);
                                        i = i.rem_euclid(p);
                                        Some(if i >= n { p - i } else { i })
                                    }
                                }
                            };
                            i.map(|i| i as isize * xv.strides[d])
                        })
                        .collect();
                    tables.push(t);
                }
                if r > 6 {
                    return Err(self.err("the CPU backend pads tensors of rank <= 6 only"));
                }
                let y = self.output(id, 0, false)?;
                self.step(
                    Kernel::Gather {
                        tables,
                        fill: *value,
                        x,
                        y,
                    },
                    vec![x],
                    vec![y],
                );
            }
            Op::Gather { axis } => {
                let x = self.value(ins[0])?;
                let idx = g
                    .const_value(ins[1])
                    .ok_or_else(|| self.err("the CPU backend needs constant Gather indices"))?;
                if idx.shape().len() > 1 {
                    return Err(self.err("the CPU backend gathers with indices of rank <= 1 only"));
                }
                let xv = self.plan.values[x].clone();
                let n = xv.shape[*axis] as i64;
                let mut tables = Vec::new();
                for (d, &len) in xv.shape.iter().enumerate() {
                    if d == *axis {
                        let mut t = Vec::new();
                        for &i in &idx.to_i64_vec() {
                            let i = if i < 0 { i + n } else { i };
                            if !(0..n).contains(&i) {
                                return Err(self.err(format!("index {i} is out of range")));
                            }
                            t.push(Some(i as isize * xv.strides[d]));
                        }
                        if idx.shape().is_empty() {
                            // A scalar index drops the axis: a one-entry table of size 1.
                        }
                        tables.push(t);
                    } else {
                        tables.push((0..len).map(|i| Some(i as isize * xv.strides[d])).collect());
                    }
                }
                if tables.len() > 6 {
                    return Err(self.err("the CPU backend gathers tensors of rank <= 6 only"));
                }
                let y = self.output(id, 0, false)?;
                self.step(
                    Kernel::Gather {
                        tables,
                        fill: 0.0,
                        x,
                        y,
                    },
                    vec![x],
                    vec![y],
                );
            }
            op => {
                return Err(self.err(format!(
                    "operator '{}' is not generated by the CPU backend",
                    op.name()
                )))
            }
        }
        Ok(())
    }

    /// `alpha * op(a) @ op(b) + beta * c` into a fresh row-major output.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &mut self,
        id: NodeId,
        a: ValId,
        b: ValId,
        c: Option<ValId>,
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
        b_graph: Option<Value>,
    ) -> Result<()> {
        let av = self.plan.values[a].clone();
        let bv = self.plan.values[b].clone();
        if av.shape.len() != 2 || bv.shape.len() != 2 {
            return Err(self.err("Gemm operands must have rank 2"));
        }
        let (m, k) = if trans_a {
            (av.shape[1], av.shape[0])
        } else {
            (av.shape[0], av.shape[1])
        };
        let a_strides = if trans_a {
            [av.strides[1], av.strides[0]]
        } else {
            [av.strides[0], av.strides[1]]
        };
        let n = if trans_b { bv.shape[0] } else { bv.shape[1] };
        let mut b = b;
        let mut b_strides = if trans_b {
            [bv.strides[1], bv.strides[0]]
        } else {
            [bv.strides[0], bv.strides[1]]
        };
        // A constant B is stored [K][N] so the inner loop is contiguous.
        if b_strides[1] != 1 && n > 1 {
            if let Some(t) = b_graph.and_then(|v| self.g.const_value(v)) {
                let vals = t.to_f64_vec();
                let (rb, cb) = (t.shape()[0], t.shape()[1]);
                let mut kn = vec![0f32; k * n];
                for kk in 0..k {
                    for nn in 0..n {
                        let (r, cc) = if trans_b { (nn, kk) } else { (kk, nn) };
                        kn[kk * n + nn] = vals[r * cb + cc] as f32;
                    }
                }
                let _ = rb;
                let t = Tensor::from_f32(&[k, n], kn).map_err(|e| self.err(e))?;
                b = self.derived(&format!("{}.w_kn", self.node), t);
                b_strides = [n as isize, 1];
            }
        }
        let y = self.output(id, 0, false)?;
        let c = match c {
            Some(c) if beta != 0.0 => {
                let cv = self.plan.values[c].clone();
                let st = broadcast(&cv.shape, &cv.strides, &[m, n])
                    .ok_or_else(|| self.err("C does not broadcast to the output"))?;
                Some((c, [st[0], st[1]]))
            }
            _ => None,
        };
        let mut reads = vec![a, b];
        reads.extend(c.map(|c| c.0));
        self.step(
            Kernel::Gemm {
                m,
                n,
                k,
                alpha,
                beta,
                a,
                a_strides,
                b,
                b_strides,
                c,
                y,
            },
            reads,
            vec![y],
        );
        Ok(())
    }

    /// numpy MatMul as one Gemm per batch index (ranks >= 2; 1-D operands are rejected).
    fn matmul(&mut self, id: NodeId, a: ValId, b: ValId) -> Result<()> {
        let av = self.plan.values[a].clone();
        let bv = self.plan.values[b].clone();
        let out = self.g.node(id).outputs[0].shape.clone();
        if av.shape.len() < 2 || bv.shape.len() < 2 {
            return Err(self.err("the CPU backend supports MatMul operands of rank >= 2 only"));
        }
        let r = out.len();
        let (m, n) = (out[r - 2], out[r - 1]);
        let k = av.shape[av.shape.len() - 1];
        let batch = &out[..r - 2];
        let nb: usize = batch.iter().product();
        if nb > 256 {
            return Err(self.err("the CPU backend supports MatMul with at most 256 batches"));
        }
        let ast = broadcast(
            &av.shape[..av.shape.len() - 2],
            &av.strides[..av.shape.len() - 2],
            batch,
        )
        .ok_or_else(|| self.err("A does not broadcast"))?;
        let bst = broadcast(
            &bv.shape[..bv.shape.len() - 2],
            &bv.strides[..bv.shape.len() - 2],
            batch,
        )
        .ok_or_else(|| self.err("B does not broadcast"))?;
        let y = self.output(id, 0, false)?;
        let yv = self.plan.values[y].clone();
        let bstr = row_major(batch);
        for i in 0..nb {
            let (mut ao, mut bo, mut yo) = (av.offset, bv.offset, yv.offset);
            let mut rem = i;
            for d in 0..batch.len() {
                let idx = rem / bstr[d] as usize;
                rem %= bstr[d] as usize;
                ao += idx as isize * ast[d];
                bo += idx as isize * bst[d];
                yo += idx as isize * yv.strides[d];
            }
            let ar = av.shape.len();
            let br = bv.shape.len();
            let a_i = self.push_view(
                &av.name,
                vec![m, k],
                vec![av.strides[ar - 2], av.strides[ar - 1]],
                ao,
                av.storage,
            );
            let b_i = self.push_view(
                &bv.name,
                vec![k, n],
                vec![bv.strides[br - 2], bv.strides[br - 1]],
                bo,
                bv.storage,
            );
            let y_i = self.push_view(&yv.name, vec![m, n], row_major(&[m, n]), yo, yv.storage);
            self.step(
                Kernel::Gemm {
                    m,
                    n,
                    k,
                    alpha: 1.0,
                    beta: 0.0,
                    a: a_i,
                    a_strides: [av.strides[ar - 2], av.strides[ar - 1]],
                    b: b_i,
                    b_strides: [bv.strides[br - 2], bv.strides[br - 1]],
                    c: None,
                    y: y_i,
                },
                vec![a_i, b_i],
                vec![y_i],
            );
        }
        Ok(())
    }

    /// How many step reads each value has (a fusion's intermediate must have one).
    fn read_counts(&self) -> HashMap<ValId, usize> {
        let mut readers: HashMap<ValId, usize> = HashMap::new();
        for s in &self.plan.steps {
            for &r in &s.reads {
                *readers.entry(r).or_insert(0) += 1;
            }
        }
        readers
    }

    /// The step that writes each value (the last one, when several do).
    fn step_writers(&self) -> HashMap<ValId, usize> {
        let mut writer = HashMap::new();
        for (i, s) in self.plan.steps.iter().enumerate() {
            for &w in &s.writes {
                writer.insert(w, i);
            }
        }
        writer
    }

    /// Per value: whether it is the only view of its arena buffer, so a fusion may drop
    /// its writer or give it other storage without another view noticing.
    fn private_values(&self) -> Vec<bool> {
        let mut per_buffer: HashMap<usize, usize> = HashMap::new();
        for v in &self.plan.values {
            if let Storage::Arena(b) = v.storage {
                *per_buffer.entry(b).or_insert(0) += 1;
            }
        }
        self.plan
            .values
            .iter()
            .map(|v| matches!(v.storage, Storage::Arena(b) if per_buffer[&b] == 1))
            .collect()
    }

    /// Fuse a pointwise convolution into the depthwise convolution that is the only reader
    /// of its output (adjacent steps; the intermediate is a private, pixel-major buffer).
    fn fuse_pw_dw(&mut self) {
        let readers = self.read_counts();
        let private = self.private_values();
        let steps = std::mem::take(&mut self.plan.steps);
        let mut out: Vec<Step> = Vec::with_capacity(steps.len());
        let mut it = steps.into_iter().peekable();
        while let Some(a) = it.next() {
            let fusable = match (&a.kernel, it.peek().map(|b| &b.kernel)) {
                (
                    Kernel::Conv {
                        kind: ConvKind::Pointwise,
                        residual: Residual::None,
                        y,
                        geom: gp,
                        ..
                    },
                    Some(Kernel::Conv {
                        kind: ConvKind::Depthwise,
                        x,
                        geom: gd,
                        ..
                    }),
                ) => {
                    let v = &self.plan.values[*y];
                    x == y
                        && readers.get(y) == Some(&1)
                        && v.offset == 0
                        && v.pixel_ld() == Some(gp.m)
                        && gd.kernel[0] <= 16
                        && private[*y]
                }
                _ => false,
            };
            let Some(b) = it.peek().filter(|_| fusable).cloned() else {
                out.push(a);
                continue;
            };
            it.next();
            let (Kernel::Conv { y: mid, .. }, Kernel::Conv { geom: gd, .. }) =
                (&a.kernel, &b.kernel)
            else {
                unreachable!("checked above")
            };
            let rows = pw_dw_ring_rows(gd.kernel[0], gd.dilations[0], gd.strides[0], gd.h, gd.w);
            let m = self.plan.values[*mid].shape[1];
            let ring = self.new_buffer(
                &format!("{}.ring", b.node),
                &[self.threads * rows * gd.w * m],
                false,
            );
            let mut reads: Vec<ValId> = a
                .reads
                .iter()
                .chain(&b.reads)
                .copied()
                .filter(|r| r != mid)
                .collect();
            reads.dedup();
            let mut writes = b.writes.clone();
            writes.push(ring);
            out.push(Step {
                node: b.node.clone(),
                op: format!("{}+{}", a.op, b.op),
                kernel: Kernel::PwDw {
                    pw: Box::new(a.kernel),
                    dw: Box::new(b.kernel),
                    ring,
                },
                reads,
                writes,
            });
        }
        self.plan.steps = out;
    }

    /// Live ranges per buffer, then first-fit packing, largest first.
    fn assign_memory(&mut self) {
        let nb = self.plan.buffers.len();
        let mut first = vec![usize::MAX; nb];
        let mut last = vec![0usize; nb];
        for (i, s) in self.plan.steps.iter().enumerate() {
            for &v in s.reads.iter().chain(&s.writes) {
                if let Storage::Arena(b) = self.plan.values[v].storage {
                    first[b] = first[b].min(i);
                    last[b] = last[b].max(i);
                }
            }
        }
        let mut order: Vec<usize> = (0..nb).collect();
        order.sort_by_key(|&b| (std::cmp::Reverse(self.plan.buffers[b].elems), b));
        let mut placed: Vec<usize> = Vec::new();
        let mut arena = 0usize;
        for b in order {
            if first[b] == usize::MAX {
                // No step touches it (a fused-away intermediate): no space.
                let buf = &mut self.plan.buffers[b];
                buf.elems = 0;
                buf.offset_bytes = 0;
                buf.first = 0;
                buf.last = 0;
                continue;
            }
            let size =
                (self.plan.buffers[b].elems * self.plan.buffers[b].elem.bytes()).div_ceil(64) * 64;
            let mut busy: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&o| first[o] <= last[b] && first[b] <= last[o])
                .map(|&o| {
                    let ob = &self.plan.buffers[o];
                    (
                        ob.offset_bytes,
                        ob.offset_bytes + (ob.elems * ob.elem.bytes()).div_ceil(64) * 64,
                    )
                })
                .collect();
            busy.sort_unstable();
            let mut off = 0;
            for (s, e) in busy {
                if off + size <= s {
                    break;
                }
                off = off.max(e);
            }
            let buf = &mut self.plan.buffers[b];
            buf.offset_bytes = off;
            buf.first = first[b];
            buf.last = last[b];
            arena = arena.max(off + size);
            placed.push(b);
        }
        self.plan.arena_bytes = arena;
    }
}

/// Count of steps per kernel kind (for reports).
pub fn kernel_histogram(p: &Plan) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for s in &p.steps {
        let k = match &s.kernel {
            Kernel::Conv { kind, .. } => format!("conv_{kind:?}").to_lowercase(),
            Kernel::PwDw { .. } => "conv_pw_dw".into(),
            Kernel::Pool { .. } => "pool".into(),
            Kernel::GlobalPool { .. } => "global_pool".into(),
            Kernel::Copy { .. } => "copy".into(),
            Kernel::Unary { .. } => "unary".into(),
            Kernel::Binary { .. } => "binary".into(),
            Kernel::Gather { .. } => "gather".into(),
            Kernel::ChannelMap { .. } => "channel_map".into(),
            Kernel::Reduce { .. } => "reduce".into(),
            Kernel::Softmax { .. } => "softmax".into(),
            Kernel::Gemm { .. } => "gemm".into(),
            Kernel::Quant(q) => q.histogram_name(),
        };
        *h.entry(k).or_insert(0) += 1;
    }
    h
}
