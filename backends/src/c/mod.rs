//! The CPU backend: renders an [`lnc_ir::cpu::Plan`] as C.
//!
//! Files (see [`emit`]):
//! - `model.h` — the API: `lnc_model_init`, `lnc_model_run` on caller buffers,
//!   `lnc_model_scratch_size`, input/output names and shapes;
//! - `model.c` — one call per plan step with every number resolved (geometry structs and
//!   stride tables are `static const` data next to the call);
//! - `weights.c` — every constant, packed for its kernel, in one 64-byte aligned array of
//!   IEEE-754 bit patterns (exact, and independent of float printing);
//! - `lnc_kernels.{c,h}` — the runtime kernels (`templates/cpu/`), whose ISA variants are
//!   selected by the compiler's predefined macros, and `lnc_runner.c` (`.npy` runner);
//! - `Makefile` — `make` builds `lnc_runner`; `CC=aarch64-linux-gnu-gcc` cross-compiles.
//!
//! The emitter first builds a plain view model (`Unit`: declarations and statements, each
//! fully resolved) and only then prints it, so rendering makes no decisions.

mod order;
mod quant;

use crate::{Error, Result};
use lnc_ir::cpu::{BinaryFn, ConvKind, Geom, Kernel, Nest, Plan, Storage, UnaryFn, ValId};
use lnc_ir::{Activation, BinaryOp, ConstId, Graph, ReduceKind, Residual, Tensor, UnaryOp};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

const KERNELS_C: &str = include_str!("../../../templates/cpu/lnc_kernels.c");
const KERNELS_H: &str = include_str!("../../../templates/cpu/lnc_kernels.h");
const RUNNER_C: &str = include_str!("../../../templates/cpu/lnc_runner.c");
const QKERNELS_C: &str = include_str!("../../../templates/cpu/lnc_qkernels.c");
const QKERNELS_H: &str = include_str!("../../../templates/cpu/lnc_qkernels.h");

/// Instruction-set targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable C99, no intrinsics.
    Generic,
    /// AVX2 + FMA (Haswell and later).
    X86_64V3,
    /// AVX-512 F/BW/DQ/VL (+ VNNI for int8).
    X86_64V4,
    /// ARMv8-A with NEON.
    Aarch64,
    /// ARMv8.2-A with NEON and the dot-product extension.
    Aarch64Dotprod,
}

impl Isa {
    pub const ALL: [Isa; 5] = [
        Isa::Generic,
        Isa::X86_64V3,
        Isa::X86_64V4,
        Isa::Aarch64,
        Isa::Aarch64Dotprod,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::X86_64V3 => "x86-64-v3",
            Isa::X86_64V4 => "x86-64-v4",
            Isa::Aarch64 => "aarch64",
            Isa::Aarch64Dotprod => "aarch64-dotprod",
        }
    }

    pub fn parse(s: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| Error::UnknownIsa(s.to_string()))
    }

    /// The best ISA the machine running lnc supports.
    pub fn host() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
            {
                return Isa::X86_64V4;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::X86_64V3;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                return Isa::Aarch64Dotprod;
            }
            return Isa::Aarch64;
        }
        #[allow(unreachable_code)]
        Isa::Generic
    }

    /// Compiler flags selecting the ISA.
    pub fn cflags(self) -> &'static str {
        match self {
            Isa::Generic => "",
            Isa::X86_64V3 => "-march=x86-64-v3",
            Isa::X86_64V4 => "-march=x86-64-v4 -mavx512vnni",
            Isa::Aarch64 => "-march=armv8-a",
            Isa::Aarch64Dotprod => "-march=armv8.2-a+dotprod",
        }
    }

    /// Output channels per packed weight panel (must match `LNC_NR` in lnc_kernels.h).
    pub fn panel(self) -> usize {
        match self {
            Isa::X86_64V4 => 32,
            _ => 16,
        }
    }

    pub fn is_aarch64(self) -> bool {
        matches!(self, Isa::Aarch64 | Isa::Aarch64Dotprod)
    }
}

/// Options of the C backend.
#[derive(Debug, Clone)]
pub struct Options {
    pub isa: Isa,
    /// Worker threads compiled in (1: no pool at all).
    pub threads: usize,
}

/// How a constant is laid out in `weights.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pack {
    /// Row-major, as in the pool.
    Raw,
    /// Pointwise: `[ceil(M/NR)][C][NR]`.
    Pointwise,
    /// Depthwise: `[kh*kw][C]`.
    Depthwise,
    /// Direct: `[group][ceil((M/group)/NR)][kh*kw*C/group][NR]`.
    Direct { group: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ConstKey {
    Pool(u32),
    Derived(usize),
}

/// A convolution call's resolved pieces (see `Emitter::conv_parts`).
struct ConvParts {
    geom_decl: String,
    epi: String,
    woff: usize,
    bias: String,
    x: String,
    y: String,
    func: &'static str,
}

/// The resolved program: file-scope declarations and the statements of `lnc_model_run`.
struct Unit {
    decls: Vec<String>,
    body: Vec<String>,
}

struct Emitter<'a> {
    g: &'a Graph,
    plan: &'a Plan,
    opts: &'a Options,
    weights: Vec<u32>,
    segments: HashMap<(ConstKey, Pack), usize>,
    /// Segment comments for weights.c (offset, name), in order.
    index: Vec<(usize, String)>,
    /// Channel orders of internal byte tensors ([`order`]).
    orders: order::ChannelOrders,
}

/// Render a plan as the files of a C project (path -> text, sorted).
pub fn emit(g: &Graph, plan: &Plan, opts: &Options) -> Result<BTreeMap<String, String>> {
    if opts.threads == 0 || opts.threads > 64 {
        return Err(Error::Threads(opts.threads));
    }
    let mut e = Emitter {
        g,
        plan,
        opts,
        weights: Vec::new(),
        segments: HashMap::new(),
        index: Vec::new(),
        orders: order::channel_orders(g, plan),
    };
    let unit = e.unit()?;
    let mut files = BTreeMap::new();
    files.insert("model.h".to_string(), e.header());
    files.insert("model.c".to_string(), e.source(&unit));
    files.insert("weights.c".to_string(), e.weights_c());
    files.insert("lnc_kernels.c".to_string(), KERNELS_C.to_string());
    files.insert("lnc_kernels.h".to_string(), KERNELS_H.to_string());
    if e.has_quant() {
        files.insert("lnc_qkernels.c".to_string(), QKERNELS_C.to_string());
        files.insert("lnc_qkernels.h".to_string(), QKERNELS_H.to_string());
    }
    files.insert("lnc_runner.c".to_string(), RUNNER_C.to_string());
    files.insert("Makefile".to_string(), e.makefile());
    Ok(files)
}

/// A C float literal that reads back as exactly `v`.
fn flit(v: f32) -> String {
    if v.is_nan() {
        "NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INFINITY" } else { "-INFINITY" }.into()
    } else {
        format!("{v:?}f")
    }
}

fn c_string(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => o.push(c),
            c => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(o, "\\{byte:03o}");
                }
            }
        }
    }
    o.push('"');
    o
}

fn longs<T: std::fmt::Display>(v: &[T]) -> String {
    if v.is_empty() {
        return "{0}".into();
    }
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("{{{}}}", items.join(", "))
}

/// A C comment body safe to embed (`*/` cannot occur).
fn comment(s: &str) -> String {
    s.replace("*/", "* /").replace(['\n', '\r'], " ")
}

fn act_code(a: Activation) -> (u32, f32, f32) {
    match a {
        Activation::Identity => (0, 0.0, 0.0),
        Activation::Relu => (1, 0.0, 0.0),
        Activation::Clip { min, max } => (2, min as f32, max as f32),
        Activation::HardSwish => (3, 0.0, 0.0),
        Activation::HardSigmoid { alpha, beta } => (4, alpha, beta),
        Activation::Sigmoid => (5, 0.0, 0.0),
        Activation::Silu => (6, 0.0, 0.0),
        Activation::LeakyRelu { alpha } => (7, alpha, 0.0),
        Activation::PRelu => (8, 0.0, 0.0),
    }
}

fn unary_code(f: UnaryFn) -> (u32, f32, f32) {
    match f {
        UnaryFn::Act(a) => act_code(a),
        UnaryFn::Elu(alpha) => (9, alpha, 0.0),
        UnaryFn::Op(u) => (
            match u {
                UnaryOp::Relu => 1,
                UnaryOp::HardSwish => 3,
                UnaryOp::Sigmoid => 5,
                UnaryOp::Tanh => 10,
                UnaryOp::Exp => 11,
                UnaryOp::Log => 12,
                UnaryOp::Sqrt => 13,
                UnaryOp::Neg => 14,
                UnaryOp::Abs => 15,
                UnaryOp::Floor => 16,
                UnaryOp::Ceil => 17,
                UnaryOp::Round => 18,
                UnaryOp::Reciprocal => 19,
                UnaryOp::Sign => 20,
                UnaryOp::Softplus => 21,
                UnaryOp::Softsign => 22,
            },
            0.0,
            0.0,
        ),
    }
}

fn binary_code(f: BinaryFn) -> u32 {
    match f {
        BinaryFn::Op(b) => match b {
            BinaryOp::Add => 0,
            BinaryOp::Sub => 1,
            BinaryOp::Mul => 2,
            BinaryOp::Div => 3,
            BinaryOp::Max => 4,
            BinaryOp::Min => 5,
            BinaryOp::Pow => 6,
        },
        BinaryFn::PRelu => 7,
        BinaryFn::Affine => 8,
    }
}

impl Emitter<'_> {
    fn err(&self, step: usize, msg: impl Into<String>) -> Error {
        let s = &self.plan.steps[step];
        Error::Node {
            node: s.node.clone(),
            op: s.op.clone(),
            msg: msg.into(),
        }
    }

    fn tensor(&self, key: ConstKey) -> &Tensor {
        match key {
            ConstKey::Pool(c) => self.g.const_tensor(ConstId(c)),
            ConstKey::Derived(d) => &self.plan.derived[d],
        }
    }

    /// The weights-array offset of a constant in a packing (added on first use).
    fn segment(&mut self, key: ConstKey, pack: Pack, name: &str, nr: usize) -> usize {
        if let Some(&o) = self.segments.get(&(key, pack)) {
            return o;
        }
        let t = self.tensor(key);
        let v: Vec<f32> = t.to_f64_vec().iter().map(|&x| x as f32).collect();
        let s = t.shape().to_vec();
        let packed: Vec<f32> = match pack {
            Pack::Raw => v,
            Pack::Pointwise => {
                let (m, c) = (s[0], s[1]);
                let panels = m.div_ceil(nr);
                let mut p = vec![0f32; panels * c * nr];
                for q in 0..panels {
                    for k in 0..c {
                        for j in 0..nr {
                            let mm = q * nr + j;
                            if mm < m {
                                p[(q * c + k) * nr + j] = v[mm * c + k];
                            }
                        }
                    }
                }
                p
            }
            Pack::Depthwise => {
                let (m, taps) = (s[0], s[2] * s[3]);
                let mut p = vec![0f32; taps * m];
                for ch in 0..m {
                    for t in 0..taps {
                        p[t * m + ch] = v[ch * taps + t];
                    }
                }
                p
            }
            Pack::Direct { group } => {
                // [group][panels][K = (kx, ky, c)][NR]
                let (m, cpg, kh, kw) = (s[0], s[1], s[2], s[3]);
                let mpg = m / group;
                let panels = mpg.div_ceil(nr);
                let k = kh * kw * cpg;
                let mut p = vec![0f32; group * panels * k * nr];
                for gr in 0..group {
                    for q in 0..panels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                for c in 0..cpg {
                                    let kk = (kx * kh + ky) * cpg + c;
                                    for j in 0..nr {
                                        let mm = q * nr + j;
                                        if mm < mpg {
                                            let o = gr * mpg + mm;
                                            p[((gr * panels + q) * k + kk) * nr + j] =
                                                v[((o * cpg + c) * kh + ky) * kw + kx];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p
            }
        };
        // Segments start on 64-byte boundaries.
        while self.weights.len() & 15 != 0 {
            self.weights.push(0);
        }
        let off = self.weights.len();
        self.weights.extend(packed.iter().map(|x| x.to_bits()));
        self.segments.insert((key, pack), off);
        self.index.push((off, format!("{name} ({pack:?})")));
        off
    }

    fn const_key(&self, v: ValId) -> Option<ConstKey> {
        match self.plan.values[v].storage {
            Storage::Const(c) => Some(ConstKey::Pool(c.0)),
            Storage::Derived(d) => Some(ConstKey::Derived(d)),
            _ => None,
        }
    }

    /// A C expression pointing at the first logical element of a value.
    fn ptr(&mut self, v: ValId) -> String {
        let pv = self.plan.values[v].clone();
        let off = pv.offset;
        let nr = self.opts.isa.panel();
        match pv.storage {
            Storage::Arena(b) if pv.elem != lnc_ir::cpu::Elem::F32 => {
                let base = self.plan.buffers[b].offset_bytes as isize;
                format!("((uint8_t *)A + {})", base + off * pv.elem.bytes() as isize)
            }
            Storage::Arena(b) => {
                let base = (self.plan.buffers[b].offset_bytes / 4) as isize;
                format!("(A + {})", base + off)
            }
            Storage::Const(c) => {
                let s = self.segment(ConstKey::Pool(c.0), Pack::Raw, &pv.name, nr) as isize;
                format!("(W + {})", s + off)
            }
            Storage::Derived(d) => {
                let s = self.segment(ConstKey::Derived(d), Pack::Raw, &pv.name, nr) as isize;
                format!("(W + {})", s + off)
            }
            Storage::Input(i) => format!("(in[{i}] + {off})"),
            Storage::Output(i) => format!("(out[{i}] + {off})"),
        }
    }

    fn ld(&self, v: ValId, step: usize) -> Result<usize> {
        self.plan.values[v]
            .pixel_ld()
            .ok_or_else(|| self.err(step, "internal: operand is not pixel-major"))
    }

    fn geom_decl(&self, name: &str, g: &Geom, ldx: usize, ldy: usize) -> String {
        format!(
            "static const lnc_conv {name} = {{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {ldx}, {ldy}}};",
            g.n, g.h, g.w, g.c, g.m, g.oh, g.ow, g.kernel[0], g.kernel[1], g.strides[0],
            g.strides[1], g.pads[0], g.pads[1], g.pads[2], g.pads[3], g.dilations[0],
            g.dilations[1], g.group
        )
    }

    /// The shape and stride tables of step `i`'s loop nest (`{name}_n`, `{name}_s0`, ...).
    /// The runtime's nest loops index at most 6 dimensions (after coalescing).
    fn nest_decl(
        &self,
        i: usize,
        decls: &mut Vec<String>,
        name: &str,
        n: &Nest,
    ) -> Result<Vec<String>> {
        if n.shape.len() > 6 {
            return Err(self.err(
                i,
                format!(
                    "the CPU backend loops over at most 6 dimensions; this step needs {}",
                    n.shape.len()
                ),
            ));
        }
        decls.push(format!(
            "static const long {name}_n[] = {};",
            longs(&n.shape)
        ));
        let mut names = vec![format!("{name}_n")];
        for (i, s) in n.strides.iter().enumerate() {
            decls.push(format!("static const long {name}_s{i}[] = {};", longs(s)));
            names.push(format!("{name}_s{i}"));
        }
        Ok(names)
    }

    /// The resolved pieces of a convolution call: geometry declaration (named `gname`),
    /// epilogue initializer, packed weight offset and pointers.
    fn conv_parts(&mut self, i: usize, k: &Kernel, gname: &str) -> Result<ConvParts> {
        let Kernel::Conv {
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
            ..
        } = k
        else {
            return Err(self.err(i, "internal: not a convolution"));
        };
        let nr = self.opts.isa.panel();
        let ldx = match kind {
            ConvKind::Direct => 0,
            _ => self.ld(*x, i)?,
        };
        let ldy = self.ld(*y, i)?;
        let geom_decl = self.geom_decl(gname, geom, ldx, ldy);
        let wkey = self
            .const_key(*w)
            .ok_or_else(|| self.err(i, "weights must be constant"))?;
        let pack = match kind {
            ConvKind::Pointwise => Pack::Pointwise,
            ConvKind::Depthwise => Pack::Depthwise,
            ConvKind::Direct => Pack::Direct { group: geom.group },
        };
        let wname = self.plan.values[*w].name.clone();
        let woff = self.segment(wkey, pack, &wname, nr);
        let bias = match bias {
            Some(b) => self.ptr(*b),
            None => "NULL".into(),
        };
        let sp = match slope {
            Some(s) => self.ptr(*s),
            None => "NULL".into(),
        };
        let (rp, ldr) = match res {
            Some(r) => (self.ptr(*r), self.ld(*r, i)?),
            None => ("NULL".into(), 0),
        };
        let mode = match residual {
            Residual::None => 0,
            Residual::BeforeAct => 1,
            Residual::AfterAct => 2,
        };
        let (code, a, b) = act_code(*act);
        let func = match kind {
            ConvKind::Pointwise => "lnc_conv_pw",
            ConvKind::Depthwise => "lnc_conv_dw",
            ConvKind::Direct => "lnc_conv_direct",
        };
        Ok(ConvParts {
            geom_decl,
            epi: format!(
                "{{{code}, {}, {}, {sp}, {rp}, {ldr}, {mode}}}",
                flit(a),
                flit(b)
            ),
            woff,
            bias,
            x: self.ptr(*x),
            y: self.ptr(*y),
            func,
        })
    }

    fn unit(&mut self) -> Result<Unit> {
        let mut decls = Vec::new();
        let mut body = Vec::new();
        for i in 0..self.plan.steps.len() {
            let step = self.plan.steps[i].clone();
            body.push(format!(
                "/* {i}: {} ({}) */",
                comment(&step.node),
                comment(&step.op)
            ));
            let id = format!("S{i}");
            match &step.kernel {
                k @ Kernel::Conv { kind, x, tmp, .. } => {
                    let c = self.conv_parts(i, k, &format!("{id}_g"))?;
                    decls.push(c.geom_decl);
                    let (f, woff, bp, xp, yp) = (c.func, c.woff, c.bias, c.x, c.y);
                    let call = match (kind, tmp) {
                        (ConvKind::Direct, Some(t)) => {
                            decls.push(format!(
                                "static const long {id}_xs[] = {};",
                                longs(&self.plan.values[*x].strides)
                            ));
                            let tp = self.ptr(*t);
                            format!(
                                "{f}(&{id}_g, {id}_xs, {xp}, W + {woff}, {bp}, {yp}, &e, {tp});"
                            )
                        }
                        (ConvKind::Direct, None) => {
                            return Err(self.err(i, "internal: direct convolution without scratch"))
                        }
                        _ => format!("{f}(&{id}_g, {xp}, W + {woff}, {bp}, {yp}, &e);"),
                    };
                    body.push(format!("{{ const lnc_epi e = {}; {call} }}", c.epi));
                }
                Kernel::PwDw { pw, dw, ring } => {
                    let p = self.conv_parts(i, pw, &format!("{id}_gp"))?;
                    let d = self.conv_parts(i, dw, &format!("{id}_gd"))?;
                    decls.push(p.geom_decl);
                    decls.push(d.geom_decl);
                    let rp = self.ptr(*ring);
                    body.push(format!(
                        "{{ const lnc_epi ep = {}; const lnc_epi ed = {}; lnc_conv_pw_dw(&{id}_gp, {}, W + {}, {}, &ep, &{id}_gd, W + {}, {}, &ed, {}, {rp}); }}",
                        p.epi, d.epi, p.x, p.woff, p.bias, d.woff, d.bias, d.y
                    ));
                }
                Kernel::Pool {
                    max,
                    count_include_pad,
                    geom,
                    x,
                    y,
                } => {
                    let (ldx, ldy) = (self.ld(*x, i)?, self.ld(*y, i)?);
                    decls.push(self.geom_decl(&format!("{id}_g"), geom, ldx, ldy));
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    let elem = self.plan.values[*x].elem;
                    body.push(if *max && elem != lnc_ir::cpu::Elem::F32 {
                        let sgn = (elem == lnc_ir::cpu::Elem::I8) as u8;
                        format!("lnc_qmaxpool(&{id}_g, {sgn}, {xp}, {yp});")
                    } else if *max {
                        format!("lnc_maxpool(&{id}_g, {xp}, {yp});")
                    } else {
                        format!(
                            "lnc_avgpool(&{id}_g, {}, {xp}, {yp});",
                            *count_include_pad as u8
                        )
                    });
                }
                Kernel::GlobalPool { max, dq, x, y } => {
                    let s = self.plan.values[*x].shape.clone();
                    let ldx = self.ld(*x, i)?;
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    body.push(match dq {
                        None => format!(
                            "lnc_global_pool({}, {}, {}, {}, {ldx}, {xp}, {yp});",
                            *max as u8,
                            s[0],
                            s[2] * s[3],
                            s[1]
                        ),
                        Some((scale, zp)) => format!(
                            "lnc_qglobal_avgpool({}, {}, {}, {ldx}, {}, {}, {}, {xp}, {yp});",
                            s[0],
                            s[2] * s[3],
                            s[1],
                            (self.plan.values[*x].elem == lnc_ir::cpu::Elem::I8) as u8,
                            flit(*scale),
                            zp
                        ),
                    });
                }
                Kernel::Copy { nest, x, y } => {
                    let n = self.nest_decl(i, &mut decls, &id, nest)?;
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    let f = quant::copy_fn(self.plan, *x, *y).map_err(|m| self.err(i, m))?;
                    body.push(format!(
                        "{f}({}, {}, {xp}, {}, {yp}, {});",
                        nest.shape.len(),
                        n[0],
                        n[1],
                        n[2]
                    ));
                }
                Kernel::Unary { f, nest, x, y } => {
                    let (code, a, b) = unary_code(*f);
                    if code == 8 {
                        return Err(self.err(i, "PReLU needs a slope operand"));
                    }
                    let n = self.nest_decl(i, &mut decls, &id, nest)?;
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    body.push(format!(
                        "lnc_unary_nd({code}, {}, {}, {}, {}, {xp}, {}, {yp}, {});",
                        flit(a),
                        flit(b),
                        nest.shape.len(),
                        n[0],
                        n[1],
                        n[2]
                    ));
                }
                Kernel::Binary {
                    f,
                    nest,
                    a,
                    b,
                    c,
                    y,
                } => {
                    let n = self.nest_decl(i, &mut decls, &id, nest)?;
                    let (ap, bp, yp) = (self.ptr(*a), self.ptr(*b), self.ptr(*y));
                    let (cp, cs, ys) = match c {
                        Some(c) => (self.ptr(*c), n[3].clone(), n[4].clone()),
                        None => ("NULL".into(), "NULL".into(), n[3].clone()),
                    };
                    body.push(format!(
                        "lnc_binary_nd({}, {}, {}, {ap}, {}, {bp}, {}, {cp}, {cs}, {yp}, {ys});",
                        binary_code(*f),
                        nest.shape.len(),
                        n[0],
                        n[1],
                        n[2]
                    ));
                }
                Kernel::Gather { tables, fill, x, y } => {
                    let shape: Vec<usize> = tables.iter().map(Vec::len).collect();
                    let flat: Vec<isize> =
                        tables.iter().flatten().map(|t| t.unwrap_or(-1)).collect();
                    if flat
                        .iter()
                        .zip(tables.iter().flatten())
                        .any(|(&f, t)| t.is_some() && f < 0)
                    {
                        return Err(self.err(i, "internal: negative gather offset"));
                    }
                    decls.push(format!("static const long {id}_n[] = {};", longs(&shape)));
                    decls.push(format!("static const long {id}_t[] = {};", longs(&flat)));
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    body.push(format!(
                        "lnc_gather_nd({}, {id}_n, {id}_t, {xp}, {}, {yp});",
                        shape.len(),
                        flit(*fill)
                    ));
                }
                Kernel::ChannelMap { srcs, map, y } => {
                    // Distinct sources (by value) and the pixel stride of each.
                    let mut uniq: Vec<ValId> = Vec::new();
                    for s in srcs {
                        if !uniq.contains(s) {
                            uniq.push(*s);
                        }
                    }
                    let mut lds = Vec::new();
                    for u in &uniq {
                        lds.push(self.ld(*u, i)?);
                    }
                    let which: Vec<usize> = map
                        .iter()
                        .map(|(inp, _)| uniq.iter().position(|u| *u == srcs[*inp]).unwrap_or(0))
                        .collect();
                    let ch: Vec<usize> = map.iter().map(|(_, c)| *c).collect();
                    decls.push(format!("static const long {id}_ld[] = {};", longs(&lds)));
                    decls.push(format!("static const long {id}_w[] = {};", longs(&which)));
                    decls.push(format!("static const long {id}_c[] = {};", longs(&ch)));
                    let ptrs: Vec<String> = uniq.iter().map(|u| self.ptr(*u)).collect();
                    let ys = self.plan.values[*y].shape.clone();
                    let ldy = self.ld(*y, i)?;
                    let yp = self.ptr(*y);
                    let (ty, f, prog) = if self.plan.values[*y].elem == lnc_ir::cpu::Elem::F32 {
                        ("float", "lnc_channel_map", String::new())
                    } else {
                        // Bytes: a pshufb / tbl program (lnc_qkernels.h), when there is one.
                        let chans: Vec<usize> =
                            uniq.iter().map(|u| self.plan.values[*u].shape[1]).collect();
                        let p = quant::shuffle_program(&which, &ch, &chans).unwrap_or_default();
                        let prog = if p.is_empty() {
                            ", 0, NULL, NULL".to_string()
                        } else {
                            let win: Vec<usize> =
                                p.iter().flat_map(|w| [w.out, w.src, w.start]).collect();
                            let mask: Vec<u8> = p.iter().flat_map(|w| w.mask).collect();
                            decls.push(format!("static const long {id}_pw[] = {};", longs(&win)));
                            decls.push(format!(
                                "static const uint8_t {id}_pm[] = {};",
                                longs(&mask)
                            ));
                            format!(", {}, {id}_pw, {id}_pm", p.len())
                        };
                        ("uint8_t", "lnc_qchannel_map", prog)
                    };
                    body.push(format!(
                        "{{ const {ty} *const b[] = {{{}}}; {f}({}, {}, b, {id}_ld, {id}_w, {id}_c, {yp}, {ldy}{prog}); }}",
                        ptrs.join(", "),
                        ys[0] * ys[2] * ys[3],
                        ys[1]
                    ));
                }
                Kernel::Reduce {
                    kind,
                    outer,
                    inner,
                    x,
                    y,
                } => {
                    let k = match kind {
                        ReduceKind::Mean => 0,
                        ReduceKind::Sum => 1,
                        ReduceKind::Max => 2,
                        ReduceKind::Min => 3,
                    };
                    decls.push(format!(
                        "static const long {id}_on[] = {};",
                        longs(&outer.shape)
                    ));
                    decls.push(format!(
                        "static const long {id}_os[] = {};",
                        longs(&outer.strides[0])
                    ));
                    decls.push(format!(
                        "static const long {id}_in[] = {};",
                        longs(&inner.shape)
                    ));
                    decls.push(format!(
                        "static const long {id}_is[] = {};",
                        longs(&inner.strides[0])
                    ));
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    body.push(format!(
                        "lnc_reduce_nd({k}, {}, {id}_on, {id}_os, {}, {id}_in, {id}_is, {xp}, {yp});",
                        outer.shape.len(),
                        inner.shape.len()
                    ));
                }
                Kernel::Softmax {
                    outer,
                    d,
                    inner,
                    log,
                    x,
                    y,
                } => {
                    let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                    body.push(format!(
                        "lnc_softmax({outer}, {d}, {inner}, {}, {xp}, {yp});",
                        *log as u8
                    ));
                }
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
                } => {
                    let (ap, bp, yp) = (self.ptr(*a), self.ptr(*b), self.ptr(*y));
                    let (cp, cs) = match c {
                        Some((c, s)) => (self.ptr(*c), *s),
                        None => ("NULL".into(), [0, 0]),
                    };
                    body.push(format!(
                        "lnc_gemm({m}, {n}, {k}, {}, {ap}, {}, {}, {bp}, {}, {}, {}, {cp}, {}, {}, {yp});",
                        flit(*alpha),
                        a_strides[0],
                        a_strides[1],
                        b_strides[0],
                        b_strides[1],
                        flit(*beta),
                        cs[0],
                        cs[1]
                    ));
                }
                Kernel::Quant(q) => self.quant_step(i, q, &mut decls, &mut body)?,
            }
        }
        Ok(Unit { decls, body })
    }

    fn io_table(&self, name: &str, ios: &[lnc_ir::cpu::Io]) -> String {
        let mut s = format!("const lnc_tensor_info {name}[] = {{\n");
        for io in ios {
            let mut shape: Vec<String> = io.shape.iter().map(|d| d.to_string()).collect();
            if shape.is_empty() {
                shape.push("0".into());
            }
            let numel: usize = io.shape.iter().product();
            let _ = writeln!(
                s,
                "    {{{}, {}, {{{}}}, {numel}}},",
                c_string(&io.name),
                io.shape.len(),
                shape.join(", ")
            );
        }
        s.push_str("};\n");
        s
    }

    fn header(&self) -> String {
        let p = self.plan;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"/* model.h — generated by lnc for model {name}; do not edit.
 *
 * API (one model per library; every buffer is caller-owned):
 *   int    lnc_model_init(int threads);   start the thread pool (at most LNC_MODEL_THREADS
 *                                         threads; returns the number in use). Call once.
 *   size_t lnc_model_scratch_size(void);  bytes of scratch memory lnc_model_run needs.
 *   void   lnc_model_run(void *scratch, const float *const *inputs, float *const *outputs);
 *          inputs[i] / outputs[i]: dense row-major float32 arrays of the shapes in
 *          lnc_model_inputs / lnc_model_outputs (graph order). Not reentrant on one scratch.
 *   void   lnc_model_shutdown(void);      stop the thread pool.
 *
 * Weights are compiled in (weights.c). Target ISA: {isa}.
 */
#ifndef LNC_MODEL_H
#define LNC_MODEL_H

#include <stddef.h>

#define LNC_MODEL_NUM_INPUTS {nin}
#define LNC_MODEL_NUM_OUTPUTS {nout}
#define LNC_MODEL_THREADS {threads}
#define LNC_MODEL_ARENA_BYTES {arena}

typedef struct lnc_tensor_info {{
    const char *name;
    int rank;
    long shape[8];
    long numel;
}} lnc_tensor_info;

extern const lnc_tensor_info lnc_model_inputs[LNC_MODEL_NUM_INPUTS];
extern const lnc_tensor_info lnc_model_outputs[LNC_MODEL_NUM_OUTPUTS];

int lnc_model_init(int threads);
void lnc_model_shutdown(void);
size_t lnc_model_scratch_size(void);
void lnc_model_run(void *scratch, const float *const *inputs, float *const *outputs);

#endif
"#,
            name = comment(&p.name),
            isa = self.opts.isa.name(),
            nin = p.inputs.len(),
            nout = p.outputs.len(),
            threads = self.opts.threads,
            arena = p.arena_bytes,
        );
        s
    }

    fn source(&self, unit: &Unit) -> String {
        let p = self.plan;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "/* model.c — generated by lnc for model {}; do not edit.\n * {} steps, arena {} bytes, ISA {}, {} thread(s). */",
            comment(&p.name),
            p.steps.len(),
            p.arena_bytes,
            self.opts.isa.name(),
            self.opts.threads
        );
        if !self.orders.notes.is_empty() {
            s.push_str(
                "/* Byte tensors stored with channels reordered for the int8 GEMM's pairs:\n",
            );
            for n in &self.orders.notes {
                let _ = writeln!(s, " * {}", comment(n));
            }
            s.push_str(" */\n");
        }
        s.push_str("#if defined(LNC_PROFILE)\n#define _POSIX_C_SOURCE 200809L\n#endif\n");
        s.push_str("#include \"model.h\"\n#include \"lnc_kernels.h\"\n");
        if self.has_quant() {
            s.push_str(&self.quant_include());
        }
        s.push_str("\n#include <math.h>\n#include <stdint.h>\n\n");
        let _ = write!(
            s,
            r#"/* -DLNC_PROFILE: per-step wall time (the sum over runs and the fastest run), printed by
 * lnc_model_profile_print(). */
#if defined(LNC_PROFILE)
#include <stdio.h>
#include <time.h>
static double lnc_prof[{n}], lnc_prof_min[{n}];
static double lnc_now(void) {{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}}
#define LNC_PROF_START double lnc_t0 = lnc_now();
#define LNC_PROF(i) {{                                                               \
        double t1_ = lnc_now(), d_ = t1_ - lnc_t0;                                    \
        lnc_prof[i] += d_;                                                            \
        if (lnc_prof_min[i] == 0 || d_ < lnc_prof_min[i]) lnc_prof_min[i] = d_;       \
        lnc_t0 = t1_;                                                                 \
    }}
#else
#define LNC_PROF_START
#define LNC_PROF(i)
#endif

"#,
            n = p.steps.len().max(1)
        );
        let _ = writeln!(
            s,
            "#if LNC_NR != {}\n#error \"weights were packed for another ISA: rebuild with the Makefile's flags\"\n#endif\n#if LNC_THREADS != LNC_MODEL_THREADS\n#error \"LNC_THREADS must equal LNC_MODEL_THREADS\"\n#endif\n",
            self.opts.isa.panel()
        );
        s.push_str("extern const float *const lnc_model_weights;\n\n");
        s.push_str(&self.io_table("lnc_model_inputs", &p.inputs));
        s.push_str(&self.io_table("lnc_model_outputs", &p.outputs));
        s.push('\n');
        for d in &unit.decls {
            s.push_str(d);
            s.push('\n');
        }
        let _ = write!(
            s,
            r#"
size_t lnc_model_scratch_size(void) {{ return (size_t)LNC_MODEL_ARENA_BYTES + 64; }}

int lnc_model_init(int threads) {{ return lnc_pool_start(threads); }}

void lnc_model_shutdown(void) {{ lnc_pool_stop(); }}

void lnc_model_run(void *scratch, const float *const *in, float *const *out) {{
    float *const A = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const float *const W = lnc_model_weights;
    (void)A;
    (void)W;
    (void)in;
    (void)out;
"#
        );
        s.push_str("    LNC_PROF_START\n");
        let mut i = 0;
        for b in &unit.body {
            let _ = writeln!(s, "    {b}");
            if !b.starts_with("/*") {
                let _ = writeln!(s, "    LNC_PROF({i})");
                i += 1;
            }
        }
        s.push_str("}\n");
        s.push_str("\n#if defined(LNC_PROFILE)\nvoid lnc_model_profile_print(void) {\n");
        for (i, st) in p.steps.iter().enumerate() {
            let _ = writeln!(
                s,
                "    fprintf(stderr, \"%4d %10.4f ms  %s (%s)  min %.2f us\\n\", {i}, lnc_prof[{i}], {}, {}, lnc_prof_min[{i}] * 1e3);",
                c_string(&st.node),
                c_string(&st.op)
            );
        }
        s.push_str("}\n#endif\n");
        s
    }

    fn weights_c(&self) -> String {
        let mut s = String::new();
        let n = self.weights.len().max(1);
        let _ = writeln!(
            s,
            "/* weights.c — generated by lnc; do not edit. {} floats as IEEE-754 bit patterns,\n * each constant packed for its kernel and 64-byte aligned. Segments (offset: name):",
            self.weights.len()
        );
        for (off, name) in &self.index {
            let _ = writeln!(s, " *   {off}: {}", comment(name));
        }
        s.push_str(" */\n#include <stdint.h>\n\n");
        s.push_str("#if defined(__GNUC__)\n#define LNC_ALIGN __attribute__((aligned(64)))\n#else\n#define LNC_ALIGN\n#endif\n\n");
        let _ = writeln!(
            s,
            "static const union {{\n    uint32_t u[{n}];\n    float f[{n}];\n}} lnc_w LNC_ALIGN = {{{{"
        );
        if self.weights.is_empty() {
            s.push('0');
        }
        for (i, chunk) in self.weights.chunks(8).enumerate() {
            let items: Vec<String> = chunk.iter().map(|w| format!("0x{w:08x}u")).collect();
            let _ = write!(s, "{}{}", if i == 0 { "" } else { ",\n" }, items.join(", "));
        }
        s.push_str("}};\n\nextern const float *const lnc_model_weights;\nconst float *const lnc_model_weights = lnc_w.f;\n");
        s
    }

    fn makefile(&self) -> String {
        format!(
            r#"# Generated by lnc. `make` builds lnc_runner; `make liblnc_model.a` / `liblnc_model.so` the
# library (API in model.h).
# Cross-compile with e.g. `make CC=aarch64-linux-gnu-gcc` (ISA {isa}).
CC ?= cc
ISA_FLAGS ?= {flags}
OPT ?= -O3
WARN ?= -Wall -Wextra -Werror
CFLAGS ?= $(OPT) -std=c99 $(WARN) $(ISA_FLAGS) -DLNC_THREADS={threads}{qflags}
EXTRA_CFLAGS ?=
LDLIBS ?= -lm -lpthread

OBJS = model.o weights.o lnc_kernels.o{qobj}

all: lnc_runner

lnc_runner: lnc_runner.o $(OBJS)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ lnc_runner.o $(OBJS) $(LDFLAGS) $(LDLIBS)

liblnc_model.a: $(OBJS)
	$(AR) rcs $@ $(OBJS)

liblnc_model.so: $(OBJS:.o=.pic.o)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -shared -o $@ $(OBJS:.o=.pic.o) $(LDFLAGS) $(LDLIBS)

weights.o: weights.c
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -O0 -c -o $@ weights.c

weights.pic.o: weights.c
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -O0 -fPIC -c -o $@ weights.c

%.pic.o: %.c model.h lnc_kernels.h{qh}
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -fPIC -c -o $@ $<

%.o: %.c model.h lnc_kernels.h{qh}
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -c -o $@ $<

clean:
	rm -f lnc_runner liblnc_model.a liblnc_model.so *.o

.PHONY: all clean
"#,
            isa = self.opts.isa.name(),
            flags = self.opts.isa.cflags(),
            threads = self.opts.threads,
            qflags = self.quant_cflags(),
            qobj = if self.has_quant() {
                " lnc_qkernels.o"
            } else {
                ""
            },
            qh = if self.has_quant() {
                " lnc_qkernels.h"
            } else {
                ""
            },
        )
    }
}
