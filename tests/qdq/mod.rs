//! Hand-built QDQ graphs for the CPU backend's integer path (shared by `cpu_backend.rs`
//! and `cpu_codegen.rs`): QuantizeLinear -> QLinearConv chains (3x3/2 first layer,
//! pointwise, depthwise 3x3/1 and 3x3/2, group conv, a 1x1 "Gemm" through Reshapes) ->
//! DequantizeLinear -> float Add (fused into one integer step, also on transposed
//! operands; and a squeeze-and-excitation product broadcasting a [1, C, 1, 1] operand) /
//! GlobalAveragePool -> QuantizeLinear ..., a windowed conv reading a channel
//! Split view (non-dense pixel stride), a quantized HardSwish (tabulated), Concats of
//! branches quantized differently (one requantized by a table), integer max pools (80, 24
//! and 12 channels, one on a strided view), a two-source channel map (byte shuffles), a
//! table over the quantized input (every byte value), an inverted residual block seen
//! only by integer kernels (stored in a reordered channel order), with seeded random weights,
//! per-channel and per-tensor scales and nonzero zero points.

#![allow(dead_code)]

use lnc_ir::{Conv2d, DType, Graph, Op, Tensor, TensorType, Value};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [lo, hi].
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    pub fn f(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

pub fn conv(k: usize, s: usize, p: usize, group: usize) -> Conv2d {
    Conv2d {
        kernel: [k, k],
        strides: [s, s],
        pads: [p; 4],
        dilations: [1, 1],
        group,
    }
}

/// Activation quantization (dtype, scale, zero point).
#[derive(Clone, Copy)]
pub struct AQ {
    pub dt: DType,
    pub scale: f32,
    pub zp: i64,
}

pub struct B<'a> {
    pub g: &'a mut Graph,
    pub rng: Rng,
    pub n: usize,
}

impl B<'_> {
    fn name(&mut self, base: &str) -> String {
        self.n += 1;
        format!("{base}{}", self.n)
    }
    fn scalar_f(&mut self, v: f32) -> Value {
        let n = self.name("s");
        self.g
            .add_const(&n, Tensor::from_f32(&[], vec![v]).unwrap())
    }
    fn scalar_i(&mut self, dt: DType, v: i64) -> Value {
        let n = self.name("z");
        self.g
            .add_const(&n, Tensor::from_int(dt, &[], vec![v]).unwrap())
    }
    pub fn q(&mut self, x: Value, a: AQ) -> Value {
        let (s, z) = (self.scalar_f(a.scale), self.scalar_i(a.dt, a.zp));
        let n = self.name("q");
        self.g
            .add(&n, Op::QuantizeLinear { axis: None }, &[x, s, z])
            .unwrap()
    }
    pub fn dq(&mut self, x: Value, a: AQ) -> Value {
        let (s, z) = (self.scalar_f(a.scale), self.scalar_i(a.dt, a.zp));
        let n = self.name("dq");
        self.g
            .add(&n, Op::DequantizeLinear { axis: None }, &[x, s, z])
            .unwrap()
    }
    /// QLinearConv with random weights (`wdt`, per-channel scales when `per_ch`, weight zero
    /// point `wzp`), a random i32 bias, and an output scale giving ~20-60 steps of spread.
    #[allow(clippy::too_many_arguments)]
    pub fn qconv(
        &mut self,
        x: Value,
        xa: AQ,
        c: Conv2d,
        m: usize,
        wdt: DType,
        wzp: i64,
        per_ch: bool,
        ya: AQ,
        bias: bool,
    ) -> (Value, AQ) {
        let cin = self.g.value_type(x).shape[1];
        let cpg = cin / c.group;
        let k = cpg * c.kernel[0] * c.kernel[1];
        let (lo, hi) = if wdt == DType::U8 {
            (0, 255)
        } else {
            (-128, 127)
        };
        // Mostly small weights, one in eight from the whole range: pairs the AVX2 GEMM
        // must split (lnc_qkernels.h), and with a zero point 0 for u8, |w - w_zp| > 127.
        let wv: Vec<i64> = (0..m * k)
            .map(|_| {
                let d = if self.rng.int(0, 7) == 0 {
                    self.rng.int(-255, 255)
                } else {
                    self.rng.int(-60, 60)
                };
                (wzp + d).clamp(lo, hi)
            })
            .collect();
        let wn = self.name("w");
        let w = self.g.add_const(
            &wn,
            Tensor::from_int(wdt, &[m, cpg, c.kernel[0], c.kernel[1]], wv).unwrap(),
        );
        let ws: Vec<f32> = (0..if per_ch { m } else { 1 })
            .map(|_| self.rng.f(0.004, 0.02))
            .collect();
        let wsn = self.name("ws");
        let wsv = if per_ch {
            self.g
                .add_const(&wsn, Tensor::from_f32(&[m], ws.clone()).unwrap())
        } else {
            self.g
                .add_const(&wsn, Tensor::from_f32(&[], ws.clone()).unwrap())
        };
        let wzn = self.name("wz");
        let wz = if per_ch {
            let mixed = self.rng.int(0, 1) == 1;
            let zs: Vec<i64> = (0..m)
                .map(|i| if mixed && i % 3 == 0 { 0 } else { wzp })
                .collect();
            self.g
                .add_const(&wzn, Tensor::from_int(wdt, &[m], zs).unwrap())
        } else {
            self.g
                .add_const(&wzn, Tensor::from_int(wdt, &[], vec![wzp]).unwrap())
        };
        // y_scale: the float output spread / ~30 steps.
        let spread = xa.scale * ws[0] * (k as f32).sqrt() * 40.0 * 35.0;
        let ya = AQ {
            scale: spread / 30.0 * ya.scale,
            ..ya
        };
        let mut ins = vec![x];
        let (a, b) = (self.scalar_f(xa.scale), self.scalar_i(xa.dt, xa.zp));
        ins.extend([a, b, w, wsv, wz]);
        let (a, b) = (self.scalar_f(ya.scale), self.scalar_i(ya.dt, ya.zp));
        ins.extend([a, b]);
        if bias {
            let bv: Vec<i64> = (0..m).map(|_| self.rng.int(-3000, 3000)).collect();
            let bn = self.name("b");
            ins.push(
                self.g
                    .add_const(&bn, Tensor::from_int(DType::I32, &[m], bv).unwrap()),
            );
        }
        let n = self.name("qconv");
        let y = self.g.add(&n, Op::QLinearConv(c), &ins).unwrap();
        (y, ya)
    }
}

/// A QDQ test network on a `[1, 3, hw, hw]` f32 input; `signed` picks i8 activations
/// (else u8), `wdt` the weight type.
pub fn qdq_net(name: &str, seed: u64, hw: usize, signed: bool, wdt: DType) -> Graph {
    let mut g = Graph::new(name);
    let x = g
        .add_input("x", TensorType::f32(vec![1, 3, hw, hw]))
        .unwrap();
    let mut b = B {
        g: &mut g,
        rng: Rng::new(seed),
        n: 0,
    };
    let adt = if signed { DType::I8 } else { DType::U8 };
    let a = |zp: i64, scale: f32| AQ {
        dt: adt,
        scale,
        zp: if signed { zp - 128 } else { zp },
    };
    let wzp = if wdt == DType::U8 { 128 } else { 3 };
    let a0 = a(120, 1.0 / 120.0);
    let q0 = b.q(x, a0);
    // First layer 3x3/2, per-channel.
    let (c1, a1) = b.qconv(
        q0,
        a0,
        conv(3, 2, 1, 1),
        16,
        wdt,
        wzp,
        true,
        a(10, 1.0),
        true,
    );
    // Pointwise expand, per-tensor, no bias.
    let (c2, a2) = b.qconv(
        c1,
        a1,
        conv(1, 1, 0, 1),
        40,
        wdt,
        wzp,
        false,
        a(128, 1.0),
        false,
    );
    // Depthwise 3x3/1 and 3x3/2.
    let (c3, a3) = b.qconv(
        c2,
        a2,
        conv(3, 1, 1, 40),
        40,
        wdt,
        wzp,
        true,
        a(0, 1.0),
        true,
    );
    let (c4, a4) = b.qconv(
        c3,
        a3,
        conv(3, 2, 1, 40),
        40,
        wdt,
        0,
        false,
        a(100, 1.0),
        true,
    );
    // Group conv 3x3, 4 groups.
    let (c5, a5) = b.qconv(
        c4,
        a4,
        conv(3, 1, 1, 4),
        24,
        wdt,
        wzp,
        true,
        a(128, 1.0),
        true,
    );
    // Residual: pointwise 24 -> 24, dequantized and added in float, requantized.
    let (c6, a6) = b.qconv(
        c5,
        a5,
        conv(1, 1, 0, 1),
        24,
        wdt,
        wzp,
        true,
        a(128, 1.0),
        true,
    );
    let d5 = b.dq(c5, a5);
    let d6 = b.dq(c6, a6);
    let add =
        b.g.add("add", Op::Binary(lnc_ir::BinaryOp::Add), &[d5, d6])
            .unwrap();
    let a7 = a(128, (a5.scale + a6.scale) * 0.6);
    let q7 = b.q(add, a7);
    // A second residual add, of q7 and its transpose (an integer view with other strides).
    let q7t =
        b.g.add(
            "q7t",
            Op::Transpose {
                perm: vec![0, 1, 3, 2],
            },
            &[q7],
        )
        .unwrap();
    let (d7, d7t) = (b.dq(q7, a7), b.dq(q7t, a7));
    let add2 =
        b.g.add("add2", Op::Binary(lnc_ir::BinaryOp::Add), &[d7, d7t])
            .unwrap();
    let q7b = b.q(add2, a7);
    // Concat of two integer tensors (same quantization; both written in place into its
    // buffer), strided 1x1 conv (direct).
    let cat = b.g.add("cat", Op::Concat { axis: 1 }, &[q7, q7b]).unwrap();
    let (c8, a8) = b.qconv(
        cat,
        a7,
        conv(1, 2, 0, 1),
        20,
        wdt,
        wzp,
        false,
        a(128, 1.0),
        true,
    );
    // Float head: GlobalAveragePool of the dequantized map.
    let d8 = b.dq(c8, a8);
    let gap = b.g.add("gap", Op::GlobalAveragePool, &[d8]).unwrap();
    let qg = b.q(
        gap,
        AQ {
            scale: a8.scale,
            ..a8
        },
    );
    // Squeeze-and-excitation's product: the map times its (quantized) channel means, a
    // [1, 20, 1, 1] operand broadcast over the pixels, requantized (one integer step; the
    // map's DequantizeLinear stays for the pool).
    let dqg = b.dq(qg, a8);
    let se =
        b.g.add("se", Op::Binary(lnc_ir::BinaryOp::Mul), &[d8, dqg])
            .unwrap();
    let a13 = a(20, a8.scale * 0.3);
    let q13 = b.q(se, a13);
    let out8 = b.dq(q13, a13);
    // "Gemm": Reshape [1, 20, 1, 1] -> [1, 20] -> [1, 20, 1, 1], 1x1 conv, Reshape [1, 10].
    let r1 =
        b.g.add("flat", Op::Reshape { shape: vec![1, 20] }, &[qg])
            .unwrap();
    let r2 =
        b.g.add(
            "unflat",
            Op::Reshape {
                shape: vec![1, 20, 1, 1],
            },
            &[r1],
        )
        .unwrap();
    let (c9, a9) = b.qconv(
        r2,
        a8,
        conv(1, 1, 0, 1),
        10,
        wdt,
        wzp,
        true,
        a(128, 1.0),
        true,
    );
    let r3 =
        b.g.add("logits_q", Op::Reshape { shape: vec![1, 10] }, &[c9])
            .unwrap();
    let out = b.dq(r3, a9);
    // A second output: the dequantized depthwise map, transposed (an integer view).
    let t =
        b.g.add(
            "t",
            Op::Transpose {
                perm: vec![0, 1, 3, 2],
            },
            &[c4],
        )
        .unwrap();
    let out2 = b.dq(t, a4);
    // A 2x2/2 convolution of the first half of a channel Split of q7 (a view of 12 channels
    // at a pixel stride of 48: q7 is written straight into `cat`'s buffer): windowed, in
    // place for u8 (runs of one pixel's 12 bytes), through a copy for i8.
    let split =
        b.g.add_node(
            "split",
            Op::Split {
                axis: 1,
                sizes: vec![12, 12],
            },
            &[q7],
        )
        .unwrap();
    let (c10, a10) = b.qconv(
        Value {
            node: split,
            port: 0,
        },
        a7,
        conv(2, 2, 0, 1),
        8,
        wdt,
        wzp,
        true,
        a(128, 1.0),
        true,
    );
    let out3 = b.dq(c10, a10);
    // HardSwish as ONNX Runtime's quantizer writes it (a QDQ pair around the HardSigmoid,
    // the Mul reading the same DequantizeLinear): one elementwise chain from c3 to a
    // QuantizeLinear, tabulated on c3's 256 byte values.
    let x3 = b.dq(c3, a3);
    let hsig =
        b.g.add(
            "hsig",
            Op::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
            &[x3],
        )
        .unwrap();
    let ah = a(0, 1.0 / 255.0);
    let hq = b.q(hsig, ah);
    let hd = b.dq(hq, ah);
    let hswish =
        b.g.add("hswish", Op::Binary(lnc_ir::BinaryOp::Mul), &[x3, hd])
            .unwrap();
    let a11 = a(10, a3.scale * 0.5);
    let q11 = b.q(hswish, a11);
    // ONNX Runtime's Concat of branches quantized differently, as the `quant` rules leave
    // it: the branch with the output's parameters as is (the table above writes its slice
    // in place), the other requantized by a table (Q(DQ(c2)) from a2 to a11), then a 3x3/2
    // max pool of the 80 bytes per pixel (32-byte chunks, the last one overlapping).
    let d2 = b.dq(c2, a2);
    let rq2 = b.q(d2, a11);
    let cat2 =
        b.g.add("cat2", Op::Concat { axis: 1 }, &[q11, rq2])
            .unwrap();
    let pool = |k: usize, s: usize, ceil_mode: bool| {
        Op::MaxPool(lnc_ir::Pool2d {
            kernel: [k, k],
            strides: [s, s],
            pads: [1; 4],
            dilations: [1, 1],
            ceil_mode,
        })
    };
    let mp2 = b.g.add("mp2", pool(3, 2, false), &[cat2]).unwrap();
    let out4 = b.dq(mp2, a11);
    // Max pools of 24 channels (16-byte chunks, overlapping) and of the 12-channel Split
    // view (pixels 48 bytes apart; bytewise), the first requantized into the second's
    // parameters for their Concat.
    let mp6 = b.g.add("mp6", pool(3, 2, true), &[c6]).unwrap();
    let split1 = Value {
        node: split,
        port: 1,
    };
    let mp12 = b.g.add("mp12", pool(3, 2, true), &[split1]).unwrap();
    let d6p = b.dq(mp6, a6);
    let rq6 = b.q(d6p, a7);
    let cat3 =
        b.g.add("cat3", Op::Concat { axis: 1 }, &[rq6, mp12])
            .unwrap();
    let out5 = b.dq(cat3, a7);
    // A channel map of two sources living in `cat`'s buffer (pixels 48 bytes apart), as
    // shuffles and splits compose: 40 channels, q7's 4..24 interleaved with q7b's in
    // reverse (a byte-shuffle program of 16-byte blocks, the last one overlapping).
    let map = (0..20)
        .flat_map(|i| {
            [
                lnc_ir::ChannelRef {
                    input: 0,
                    channel: 4 + i,
                },
                lnc_ir::ChannelRef {
                    input: 1,
                    channel: 23 - i,
                },
            ]
        })
        .collect();
    let cmap = b.g.add("cmap", Op::ChannelMap { map }, &[q7, q7b]).unwrap();
    let out6 = b.dq(cmap, a7);
    // A table over the quantized input image (bytes 0..240: every nibble, so a wrong slice
    // or blend of the vector lookup shows).
    let dq0 = b.dq(q0, a0);
    let hs0 =
        b.g.add(
            "hs0",
            Op::HardSigmoid {
                alpha: 0.4,
                beta: 0.5,
            },
            &[dq0],
        )
        .unwrap();
    let a12 = a(0, 1.0 / 250.0);
    let q12 = b.q(hs0, a12);
    let out7 = b.dq(q12, a12);
    // An inverted residual block that only the integer kernels see (pointwise 16 -> 24,
    // depthwise 3x3, a table, residual add, pointwise 24 -> 8): the backend may store
    // e, d, l and r with their channels reordered for the GEMM's int8 pairs, which every
    // one of these steps must follow.
    let (e, ae) = b.qconv(
        c1,
        a1,
        conv(1, 1, 0, 1),
        24,
        wdt,
        wzp,
        true,
        a(90, 1.0),
        true,
    );
    let (d, ad) = b.qconv(
        e,
        ae,
        conv(3, 1, 1, 24),
        24,
        wdt,
        wzp,
        true,
        a(110, 1.0),
        true,
    );
    let dd = b.dq(d, ad);
    let sig =
        b.g.add("sig", Op::Unary(lnc_ir::UnaryOp::Sigmoid), &[dd])
            .unwrap();
    let al = a(0, 1.0 / 250.0);
    let l = b.q(sig, al);
    let (dl, de) = (b.dq(l, al), b.dq(e, ae));
    let radd =
        b.g.add("radd", Op::Binary(lnc_ir::BinaryOp::Add), &[dl, de])
            .unwrap();
    let ar = a(100, al.scale + ae.scale);
    let r = b.q(radd, ar);
    let (pl, apl) = b.qconv(
        r,
        ar,
        conv(1, 1, 0, 1),
        8,
        wdt,
        wzp,
        true,
        a(128, 1.0),
        true,
    );
    let out9 = b.dq(pl, apl);
    g.add_output("logits", out);
    g.add_output("dw_map", out2);
    g.add_output("win_map", out3);
    g.add_output("hswish_map", out4);
    g.add_output("pool_map", out5);
    g.add_output("shuffle_map", out6);
    g.add_output("lut_map", out7);
    g.add_output("se_map", out8);
    g.add_output("block_map", out9);
    g
}
