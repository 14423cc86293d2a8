//! The integer part of the C emitter: calls of `lnc_qkernels.c` and its weight packings.
//!
//! Packed integer data goes into the same 64-byte aligned `uint32_t` weights array as the
//! float constants (see `lnc_qkernels.h` for the layouts): GEMM weights as pairs of int16
//! `w - w_zp[m]` per 32-bit word (`k` even in the low half), depthwise weights and biases
//! as int32, requantization multipliers as IEEE-754 bit patterns.

use super::{longs, Emitter};
use crate::{Error, Result};
use lnc_ir::cpu::quant::{QConv, QKernel, QNR, QROWS};
use lnc_ir::cpu::{ConvKind, Elem, Kernel, Plan, ValId};

/// The copy kernel for a value pair (f32 or byte elements).
pub(super) fn copy_fn(
    plan: &Plan,
    x: ValId,
    y: ValId,
) -> std::result::Result<&'static str, String> {
    let (ex, ey) = (plan.values[x].elem, plan.values[y].elem);
    if ex.bytes() != ey.bytes() {
        return Err(format!("internal: copy from {ex:?} to {ey:?}"));
    }
    Ok(match ex.bytes() {
        4 => "lnc_copy_nd",
        1 => "lnc_copy_nd_u8",
        _ => return Err(format!("internal: no copy kernel for {ex:?}")),
    })
}

fn signed(e: Elem) -> u8 {
    (e == Elem::I8) as u8
}

impl Emitter<'_> {
    pub(super) fn has_quant(&self) -> bool {
        self.plan.steps.iter().any(|s| match &s.kernel {
            Kernel::Quant(_) => true,
            Kernel::Copy { x, .. } => self.plan.values[*x].elem != Elem::F32,
            _ => false,
        })
    }

    /// Extra CFLAGS of a model with integer kernels: no contraction of the float
    /// (de)quantization arithmetic into FMAs (it must round like the interpreter).
    pub(super) fn quant_cflags(&self) -> &'static str {
        if self.has_quant() {
            " -ffp-contract=off"
        } else {
            ""
        }
    }

    /// The `#include` of the integer kernels and the checks that they match the plan.
    pub(super) fn quant_include(&self) -> String {
        format!(
            "#include \"lnc_qkernels.h\"\n#if LNC_QROWS != {QROWS} || LNC_QNR != {QNR}\n#error \"lnc_qkernels.h does not match this model\"\n#endif\n"
        )
    }

    /// Append a 64-byte aligned segment of 32-bit words; returns its offset.
    fn push_words(&mut self, words: &[u32], name: String) -> usize {
        while self.weights.len() & 15 != 0 {
            self.weights.push(0);
        }
        let off = self.weights.len();
        self.weights.extend_from_slice(words);
        self.index.push((off, name));
        off
    }

    fn byte_elem(&self, i: usize, v: ValId) -> Result<Elem> {
        let e = self.plan.values[v].elem;
        if e.int_range().is_none() {
            return Err(self.err(i, format!("internal: expected a byte tensor, got {e:?}")));
        }
        Ok(e)
    }

    pub(super) fn quant_step(
        &mut self,
        i: usize,
        k: &QKernel,
        decls: &mut Vec<String>,
        body: &mut Vec<String>,
    ) -> Result<()> {
        let id = format!("S{i}");
        match k {
            QKernel::Quantize {
                scale,
                zp,
                nest,
                x,
                y,
            } => {
                let sg = signed(self.byte_elem(i, *y)?);
                let n = self.nest_decl(decls, &id, nest);
                let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                body.push(format!(
                    "lnc_quantize_nd({}, {zp}, {sg}, {}, {}, {xp}, {}, {yp}, {});",
                    super::flit(*scale),
                    nest.shape.len(),
                    n[0],
                    n[1],
                    n[2]
                ));
            }
            QKernel::Dequantize {
                scale,
                zp,
                nest,
                x,
                y,
            } => {
                let sg = signed(self.byte_elem(i, *x)?);
                let n = self.nest_decl(decls, &id, nest);
                let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                body.push(format!(
                    "lnc_dequantize_nd({}, {zp}, {sg}, {}, {}, {xp}, {}, {yp}, {});",
                    super::flit(*scale),
                    nest.shape.len(),
                    n[0],
                    n[1],
                    n[2]
                ));
            }
            QKernel::Conv(c) => self.qconv(i, c, decls, body)?,
        }
        Ok(())
    }

    fn qconv(
        &mut self,
        i: usize,
        c: &QConv,
        decls: &mut Vec<String>,
        body: &mut Vec<String>,
    ) -> Result<()> {
        let id = format!("S{i}");
        let g = &c.geom;
        let xe = self.byte_elem(i, c.x)?;
        let ye = self.byte_elem(i, c.y)?;
        let ldy = self.ld(c.y, i)?;
        let wt = self.g.const_tensor(c.w);
        let wv = wt.to_i64_vec();
        let s = wt.shape().to_vec();
        let (m, cpg, kh, kw) = (s[0], s[1], s[2], s[3]);
        if m != g.m || c.w_zp.len() != m || c.bias.len() != m || c.mult.len() != m {
            return Err(self.err(i, "internal: quantized convolution parameter sizes"));
        }
        let wname = format!("{} weights", self.plan.steps[i].node);
        let w_at = |o: usize, ci: usize, ky: usize, kx: usize| -> i64 {
            wv[((o * cpg + ci) * kh + ky) * kw + kx] - c.w_zp[o] as i64
        };
        let (call_w, params) = match c.kind {
            ConvKind::Depthwise => {
                // [tap pair][C] int16 pairs, channels of full 16-blocks permuted.
                let taps = kh * kw;
                let pos = |ch: usize| -> usize {
                    let (b, j) = (ch & !15, ch & 15);
                    if b + 16 > m {
                        return ch;
                    }
                    b + match j {
                        4..=7 => j + 4,
                        8..=11 => j - 4,
                        _ => j,
                    }
                };
                let mut p = vec![0u32; taps.div_ceil(2) * m];
                let mut bias = vec![0u32; m];
                let mut mult = vec![0u32; m];
                // Interior pixels read raw x: bias - x_zp * sum_t w_t (wrapping, exact).
                let mut bias_in = vec![0u32; m];
                for ch in 0..m {
                    bias[pos(ch)] = c.bias[ch] as u32;
                    mult[pos(ch)] = c.mult[ch].to_bits();
                    let mut sw = 0i32;
                    for t in 0..taps {
                        let wt = w_at(ch, 0, t / kw, t % kw);
                        sw = sw.wrapping_add(wt as i32);
                        p[(t / 2) * m + pos(ch)] |= (wt as i16 as u16 as u32) << (16 * (t % 2));
                    }
                    bias_in[pos(ch)] = c.bias[ch].wrapping_sub(c.x_zp.wrapping_mul(sw)) as u32;
                }
                let woff = self.push_words(&p, format!("{wname} (qdw)"));
                bias.extend(mult);
                bias.extend(bias_in);
                (woff, bias)
            }
            ConvKind::Pointwise | ConvKind::Direct => {
                let group = g.group.max(1);
                let mpg = m / group;
                let panels = mpg.div_ceil(QNR);
                let k = kh * kw * cpg;
                let kp = k.div_ceil(2);
                let mut p = vec![0u32; group * panels * kp * QNR];
                let mut bias = vec![0u32; group * panels * QNR];
                let mut mult = vec![0u32; group * panels * QNR];
                for gr in 0..group {
                    for q in 0..panels {
                        let pan = gr * panels + q;
                        for j in 0..QNR {
                            let mm = q * QNR + j;
                            if mm >= mpg {
                                continue;
                            }
                            let o = gr * mpg + mm;
                            bias[pan * QNR + j] = c.bias[o] as u32;
                            mult[pan * QNR + j] = c.mult[o].to_bits();
                            for kk in 0..k {
                                // k = (ky, kx, c)
                                let (t, ci) = (kk / cpg, kk % cpg);
                                let v = w_at(o, ci, t / kw, t % kw) as i16 as u16 as u32;
                                let word = &mut p[(pan * kp + kk / 2) * QNR + j];
                                *word |= if kk % 2 == 0 { v } else { v << 16 };
                            }
                        }
                    }
                }
                let woff = self.push_words(&p, format!("{wname} (qgemm)"));
                bias.extend(mult);
                (woff, bias)
            }
        };
        // The packed parameters: bias then mult (then, depthwise, the interior bias), each
        // `half` words.
        let half = match c.kind {
            ConvKind::Depthwise => params.len() / 3,
            _ => params.len() / 2,
        };
        let poff = self.push_words(&params, format!("{} qparams", self.plan.steps[i].node));
        // Weights are i16-exact: w - w_zp is in [-255, 255].
        if wv.iter().enumerate().any(|(j, &v)| {
            let o = j / (cpg * kh * kw).max(1);
            !(-255..=255).contains(&(v - c.w_zp[o] as i64))
        }) {
            return Err(self.err(i, "weights minus zero point exceed 9 bits"));
        }
        let ldx = match c.kind {
            ConvKind::Depthwise => self.ld(c.x, i)?,
            _ => 0,
        };
        decls.push(self.geom_decl(&format!("{id}_g"), g, ldx, ldy));
        let (xp, yp) = (self.ptr(c.x), self.ptr(c.y));
        let q = format!(
            "const lnc_qparams q = {{{}, {}, {}, {}, (const int32_t *)(W + {poff}), W + {}}};",
            c.x_zp,
            c.y_zp,
            signed(xe),
            signed(ye),
            poff + half
        );
        let call = match (c.kind, c.tmp) {
            (ConvKind::Depthwise, _) => {
                format!("lnc_qconv_dw(&{id}_g, {xp}, (const uint32_t *)(W + {call_w}), &q, {yp});")
            }
            (_, Some(t)) => {
                decls.push(format!(
                    "static const long {id}_xs[] = {};",
                    longs(&self.plan.values[c.x].strides)
                ));
                let tp = self.ptr(t);
                format!(
                    "lnc_qconv_gemm(&{id}_g, {id}_xs, {xp}, (const uint32_t *)(W + {call_w}), &q, {yp}, (uint16_t *){tp});"
                )
            }
            (_, None) => {
                return Err(Error::Node {
                    node: self.plan.steps[i].node.clone(),
                    op: self.plan.steps[i].op.clone(),
                    msg: "internal: quantized GEMM without scratch".into(),
                })
            }
        };
        body.push(format!("{{ {q} {call} }}"));
        Ok(())
    }
}
