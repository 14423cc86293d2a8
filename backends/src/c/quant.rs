//! The integer part of the C emitter: calls of `lnc_qkernels.c` and its weight packings.
//!
//! Packed integer data goes into the same 64-byte aligned `uint32_t` weights array as the
//! float constants (see `lnc_qkernels.h` for the layouts): GEMM weights as four int8
//! `w - w_zp[m]` per 32-bit word, split ([`split_dot_panel`]) so that AVX2's saturating
//! `vpmaddubsw` is provably exact on them; depthwise weights as pairs of int16; biases as
//! int32, requantization multipliers as IEEE-754 bit patterns.

use super::{longs, Emitter};
use crate::{Error, Result};
use lnc_ir::cpu::quant::{qgemm_direct, QConv, QKernel, QNR, QROWS};
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
                let n = self.nest_decl(i, decls, &id, nest)?;
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
                let n = self.nest_decl(i, decls, &id, nest)?;
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
            QKernel::Lut { table, nest, x, y } => {
                self.byte_elem(i, *x)?;
                self.byte_elem(i, *y)?;
                if table.len() != 256 {
                    return Err(Error::Node {
                        node: self.plan.steps[i].node.clone(),
                        op: self.plan.steps[i].op.clone(),
                        msg: format!("internal: a lookup table of {} entries", table.len()),
                    });
                }
                let words: Vec<u32> = table
                    .chunks(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let name = format!("{} table (qlut)", self.plan.steps[i].node);
                let off = self.push_words(&words, name);
                let n = self.nest_decl(i, decls, &id, nest)?;
                let (xp, yp) = (self.ptr(*x), self.ptr(*y));
                body.push(format!(
                    "lnc_qlut_nd((const uint8_t *)(W + {off}), {}, {}, {xp}, {}, {yp}, {});",
                    nest.shape.len(),
                    n[0],
                    n[1],
                    n[2]
                ));
            }
            QKernel::Add {
                mul,
                a_q,
                b_q,
                y_q,
                nest,
                a,
                b,
                y,
            } => {
                let (sa, sb, sy) = (
                    signed(self.byte_elem(i, *a)?),
                    signed(self.byte_elem(i, *b)?),
                    signed(self.byte_elem(i, *y)?),
                );
                let n = self.nest_decl(i, decls, &id, nest)?;
                decls.push(format!(
                    "static const lnc_qadd_params {id}_q = {{{}, {}, {}, {}, {}, {}, {sa}, {sb}, {sy}, {}}};",
                    super::flit(a_q.0),
                    super::flit(b_q.0),
                    super::flit(y_q.0),
                    a_q.1,
                    b_q.1,
                    y_q.1,
                    *mul as u8
                ));
                let (ap, bp, yp) = (self.ptr(*a), self.ptr(*b), self.ptr(*y));
                body.push(format!(
                    "lnc_qadd_nd(&{id}_q, {}, {}, {ap}, {}, {bp}, {}, {yp}, {});",
                    nest.shape.len(),
                    n[0],
                    n[1],
                    n[2],
                    n[3]
                ));
            }
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
                    // Storage channel ch holds channel o (`order`; x and y share it).
                    let o = self.orders.chan(c.y, ch);
                    bias[pos(ch)] = c.bias[o] as u32;
                    mult[pos(ch)] = c.mult[o].to_bits();
                    let mut sw = 0i32;
                    for t in 0..taps {
                        let wt = w_at(o, 0, t / kw, t % kw);
                        sw = sw.wrapping_add(wt as i32);
                        p[(t / 2) * m + pos(ch)] |= (wt as i16 as u16 as u32) << (16 * (t % 2));
                    }
                    bias_in[pos(ch)] = c.bias[o].wrapping_sub(c.x_zp.wrapping_mul(sw)) as u32;
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
                // The row's 4-byte groups: byte offset and the k of each byte.
                let slots = c.row_groups();
                if slots.iter().flat_map(|s| s.1).flatten().any(|kk| kk >= k) {
                    return Err(self.err(i, "internal: GEMM row groups do not match the weights"));
                }
                let groups = slots.len();
                // Activations enter as u = x + 128 for i8: fold -(x_zp + 128) * sum w.
                let x_off = c.x_zp.wrapping_add(if xe == Elem::I8 { 128 } else { 0 });
                let mut table = vec![0u32; group * panels];
                let mut data = Vec::new();
                let mut bias = vec![0u32; group * panels * QNR];
                let mut mult = vec![0u32; group * panels * QNR];
                let mut csum = vec![0u32; group * panels * QNR];
                for gr in 0..group {
                    for q in 0..panels {
                        let pan = gr * panels + q;
                        // block[gi][j][t]: channel j, byte t of group gi (zeros past the
                        // runs / channels).
                        let mut block = vec![[[0i32; 4]; QNR]; groups];
                        for j in 0..QNR.min(mpg - q * QNR) {
                            // Storage channel `at` holds channel o; input storage
                            // channel ci holds `chan(x, ci)` (`order`; group 1 there).
                            let at = gr * mpg + q * QNR + j;
                            let o = self.orders.chan(c.y, at);
                            let mut sum = 0i32;
                            for (gi, (_, ks)) in slots.iter().enumerate() {
                                for (t, kk) in ks.iter().enumerate() {
                                    // k = (ky, kx, c)
                                    let Some(kk) = *kk else { continue };
                                    let (tap, ci) = (kk / cpg, kk % cpg);
                                    let ci = self.orders.chan(c.x, ci);
                                    let v = w_at(o, ci, tap / kw, tap % kw) as i32;
                                    block[gi][j][t] = v;
                                    sum = sum.wrapping_add(v);
                                }
                            }
                            bias[pan * QNR + j] =
                                c.bias[o].wrapping_sub(x_off.wrapping_mul(sum)) as u32;
                            mult[pan * QNR + j] = c.mult[o].to_bits();
                            csum[pan * QNR + j] = sum as u32;
                        }
                        let (pairs, singles) = chunk_dot_panel(split_dot_panel(&block));
                        table[pan] = (group * panels + data.len()) as u32;
                        data.push(pairs.len() as u32);
                        let off = |gi: usize| slots[gi].0 as u32;
                        for ((ga, a), (gb, b)) in pairs {
                            data.extend([off(ga), off(gb)]);
                            data.extend(dot_words(&a).chain(dot_words(&b)));
                        }
                        data.push(singles.len() as u32);
                        for (gi, part) in singles {
                            data.push(off(gi));
                            data.extend(dot_words(&part));
                        }
                    }
                }
                table.extend(data);
                let woff = self.push_words(&table, format!("{wname} (qgemm)"));
                bias.extend(mult);
                bias.extend(csum);
                (woff, bias)
            }
        };
        // The packed parameters: bias, mult, then (depthwise) the interior bias or (GEMM)
        // the weight sums, each `third` words.
        let third = params.len() / 3;
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
        let csum = match c.kind {
            ConvKind::Depthwise => "NULL".to_string(),
            _ => format!("(const int32_t *)(W + {})", poff + 2 * third),
        };
        let q = format!(
            "const lnc_qparams q = {{{}, {}, {}, {}, (const int32_t *)(W + {poff}), W + {}, {csum}}};",
            c.x_zp,
            c.y_zp,
            signed(xe),
            signed(ye),
            poff + third
        );
        let call = match c.kind {
            ConvKind::Depthwise => {
                format!("lnc_qconv_dw(&{id}_g, {xp}, (const uint32_t *)(W + {call_w}), &q, {yp});")
            }
            _ => {
                decls.push(format!(
                    "static const long {id}_xs[] = {};",
                    longs(&self.plan.values[c.x].strides)
                ));
                let k = kh * kw * cpg;
                let direct = qgemm_direct(c.kind == ConvKind::Pointwise, xe, k);
                let tp = match (direct || c.win.is_some_and(|w| !w.copy), c.tmp) {
                    (true, None) => "NULL".to_string(),
                    (false, Some(t)) => self.ptr(t),
                    _ => {
                        return Err(Error::Node {
                            node: self.plan.steps[i].node.clone(),
                            op: self.plan.steps[i].op.clone(),
                            msg: "internal: quantized GEMM scratch does not match the plan".into(),
                        })
                    }
                };
                let f = if c.win.is_some() {
                    "lnc_qconv_gemm_win"
                } else {
                    "lnc_qconv_gemm"
                };
                format!(
                    "{f}(&{id}_g, {id}_xs, {xp}, (const uint32_t *)(W + {call_w}), &q, {yp}, {tp});"
                )
            }
        };
        body.push(format!("{{ {q} {call} }}"));
        Ok(())
    }
}

/// One group of a GEMM panel: `[channel][t]` weights of `k = 4 gi + t`.
type DotGroup = [[i32; 4]; QNR];

/// Whether an int16 sum of u8 activations times weights whose positive weights sum to
/// `pos` and negative ones to `-neg` is exact for every u8 input.
fn int16_exact(pos: i32, neg: i32) -> bool {
    255 * pos.max(neg) <= 32767
}

/// Whether `vpmaddubsw` computes `u0 * a + u1 * b` exactly for every pair of u8 `u`: both
/// weights are int8 and no int16 pair sum can saturate.
pub(super) fn dot_pair_exact(a: i32, b: i32) -> bool {
    let i8s = -128..=127;
    i8s.contains(&a)
        && i8s.contains(&b)
        && int16_exact(a.max(0) + b.max(0), (-a).max(0) + (-b).max(0))
}

/// Whether a weight can make a `vpmaddubsw` pair inexact at all: a pair of weights in
/// [-64, 64] never saturates (255 * 128 <= 32767).
pub(super) fn may_saturate(w: i32) -> bool {
    !(-64..=64).contains(&w)
}

/// Split a panel's weight groups into main groups and split-off parts (group index, part),
/// every pair of every group and part exact for `vpmaddubsw`, their sum the weights. A pair
/// that is not exact keeps its weights clamped to [-64, 64] (exact: 255 * 128 <= 32767)
/// and passes the rest on; |w - w_zp| <= 255 needs at most 4 parts.
fn split_dot_panel(block: &[DotGroup]) -> (Vec<DotGroup>, Vec<(usize, DotGroup)>) {
    let take = |rest: &mut DotGroup| -> DotGroup {
        let mut got = [[0i32; 4]; QNR];
        for (r, o) in rest.iter_mut().zip(got.iter_mut()) {
            for p in 0..2 {
                let (a, b) = (r[2 * p], r[2 * p + 1]);
                let (ta, tb) = if dot_pair_exact(a, b) {
                    (a, b)
                } else {
                    (a.clamp(-64, 64), b.clamp(-64, 64))
                };
                (o[2 * p], o[2 * p + 1]) = (ta, tb);
                (r[2 * p], r[2 * p + 1]) = (a - ta, b - tb);
            }
        }
        got
    };
    let mut main = Vec::with_capacity(block.len());
    let mut parts = Vec::new();
    for (gi, grp) in block.iter().enumerate() {
        let mut rest = *grp;
        main.push(take(&mut rest));
        while rest.iter().flatten().any(|&v| v != 0) {
            parts.push((gi, take(&mut rest)));
        }
    }
    (main, parts)
}

/// A weight group with the group index of the activations it multiplies.
type DotUnit = (usize, DotGroup);

/// Per int16 lane of `vpmaddubsw` (channel j, pair p): the sums of the positive and of the
/// negative weights' magnitudes.
fn dot_lanes(grp: &DotGroup) -> [[i32; 2]; 2 * QNR] {
    let mut l = [[0; 2]; 2 * QNR];
    for (j, ch) in grp.iter().enumerate() {
        for p in 0..2 {
            for &v in &ch[2 * p..2 * p + 2] {
                l[2 * j + p][0] += v.max(0);
                l[2 * j + p][1] += (-v).max(0);
            }
        }
    }
    l
}

/// Candidates a unit is tried against when pairing (bounds the packing time).
const PAIR_WINDOW: usize = 64;

/// Order the split units of a panel into pair chunks and single chunks. Two units form a
/// pair when every int16 lane of the sum of their two `vpmaddubsw` results stays exact
/// (`255 * max(positive sum, negative sum) <= 32767` over the four weights), so the kernel
/// widens both with one `vpmaddwd`. All-zero units are dropped (pruned weights cost
/// nothing). First fit, hardest unit first: the units sorted by decreasing largest lane
/// sum, each taking the first fitting one of the next [`PAIR_WINDOW`] unused units (a
/// split-off part usually fits a large group: their large lanes differ); deterministic.
#[allow(clippy::type_complexity)]
fn chunk_dot_panel(
    (main, parts): (Vec<DotGroup>, Vec<DotUnit>),
) -> (Vec<(DotUnit, DotUnit)>, Vec<DotUnit>) {
    let units: Vec<DotUnit> = main
        .into_iter()
        .enumerate()
        .chain(parts)
        .filter(|(_, g)| g.iter().flatten().any(|&v| v != 0))
        .collect();
    let lanes: Vec<_> = units.iter().map(|(_, g)| dot_lanes(g)).collect();
    let key = |i: usize| lanes[i].iter().flatten().copied().max().unwrap_or(0);
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(key(i)), i));
    let fits = |a: usize, b: usize| {
        lanes[a]
            .iter()
            .zip(&lanes[b])
            .all(|(x, y)| int16_exact(x[0] + y[0], x[1] + y[1]))
    };
    let mut used = vec![false; units.len()];
    let (mut pairs, mut singles) = (Vec::new(), Vec::new());
    for (n, &a) in order.iter().enumerate() {
        if used[a] {
            continue;
        }
        used[a] = true;
        let mate = order[n + 1..]
            .iter()
            .filter(|&&b| !used[b])
            .take(PAIR_WINDOW)
            .find(|&&b| fits(a, b))
            .copied();
        match mate {
            Some(b) => {
                used[b] = true;
                pairs.push((units[a], units[b]));
            }
            None => singles.push(units[a]),
        }
    }
    (pairs, singles)
}

/// The packed words of a group: word `j` holds channel `j`'s four int8 weights, byte `t`
/// (little-endian) the weight of `k = 4 gi + t`.
fn dot_words(grp: &DotGroup) -> impl Iterator<Item = u32> + '_ {
    grp.iter().map(|ch| {
        ch.iter()
            .enumerate()
            .fold(0u32, |w, (t, &v)| w | ((v as i8 as u8 as u32) << (8 * t)))
    })
}

/// One load of a byte channel map's program: output bytes `[out, out + 16)` of a pixel take
/// `mask[t]`-th byte of the 16 at channel `start` of source `src` (`mask[t] = 0x80`: none;
/// the windows of one block are ORed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShuffleWindow {
    pub out: usize,
    pub src: usize,
    pub start: usize,
    pub mask: [u8; 16],
}

/// The byte-shuffle program of a channel map (`which[j]`, `ch[j]`: output channel `j` is
/// channel `ch[j]` of source `which[j]`), for `pshufb` / `tbl`: 16-byte output blocks (the
/// last one overlapping the one before when `c` is not a multiple of 16), each the OR of
/// shuffled 16-byte windows of its sources, a window starting at the lowest channel the
/// block still needs of that source (moved down to stay inside the source's `chans[src]`
/// channels: a window never reads past a pixel's own bytes). `None` when the map has
/// fewer than 16 channels or reads a source of fewer than 16.
pub(super) fn shuffle_program(
    which: &[usize],
    ch: &[usize],
    chans: &[usize],
) -> Option<Vec<ShuffleWindow>> {
    let c = which.len();
    if c < 16 || ch.len() != c {
        return None;
    }
    let nsrc = which.iter().max()? + 1;
    let top = chans.get(..nsrc)?;
    if which
        .iter()
        .zip(ch)
        .any(|(&w, &k)| k >= top[w] || top[w] < 16)
    {
        return None;
    }
    let mut blocks: Vec<usize> = (0..c / 16).map(|b| 16 * b).collect();
    if !c.is_multiple_of(16) {
        blocks.push(c - 16);
    }
    let mut prog = Vec::new();
    for out in blocks {
        for (src, &n) in top.iter().enumerate() {
            let mut need: Vec<(usize, usize)> = (out..out + 16)
                .filter(|&j| which[j] == src)
                .map(|j| (ch[j], j - out))
                .collect();
            need.sort_unstable();
            while let Some(&(lo, _)) = need.first() {
                let start = lo.min(n - 16);
                let mut mask = [0x80u8; 16];
                need.retain(|&(k, t)| {
                    if k < start + 16 {
                        mask[t] = (k - start) as u8;
                        false
                    } else {
                        true
                    }
                });
                prog.push(ShuffleWindow {
                    out,
                    src,
                    start,
                    mask,
                });
            }
        }
    }
    Some(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair of the split is exact for `vpmaddubsw`, and the parts sum to the weights.
    #[test]
    fn split_dot_panel_is_exact_and_complete() {
        let mut block = vec![[[0i32; 4]; QNR]; 3];
        let vals = [
            -255, -200, -128, -127, -65, -64, -1, 0, 1, 63, 64, 65, 100, 127, 200, 255,
        ];
        for (gi, g) in block.iter_mut().enumerate() {
            for (j, ch) in g.iter_mut().enumerate() {
                for (t, v) in ch.iter_mut().enumerate() {
                    *v = vals[(gi * 7 + j * 3 + t * 5) % vals.len()];
                }
            }
        }
        let (main, parts) = split_dot_panel(&block);
        let mut sum = main.clone();
        for (gi, p) in &parts {
            for j in 0..QNR {
                for t in 0..4 {
                    sum[*gi][j][t] += p[j][t];
                }
            }
        }
        assert_eq!(sum, block);
        for g in main.iter().chain(parts.iter().map(|(_, p)| p)) {
            for ch in g {
                assert!(
                    dot_pair_exact(ch[0], ch[1]) && dot_pair_exact(ch[2], ch[3]),
                    "{ch:?}"
                );
            }
        }
        // Pairs: every lane of the two groups together stays exact; every unit is used once.
        let (pairs, singles) = chunk_dot_panel((main.clone(), parts.clone()));
        let mut seen = 0;
        for ((_, a), (_, b)) in &pairs {
            for (x, y) in dot_lanes(a).iter().zip(&dot_lanes(b)) {
                assert!(255 * (x[0] + y[0]).max(x[1] + y[1]) <= 32767);
            }
            seen += 2;
        }
        let nonzero = |g: &DotGroup| g.iter().flatten().any(|&v| v != 0);
        let units = main.iter().filter(|g| nonzero(g)).count()
            + parts.iter().filter(|(_, g)| nonzero(g)).count();
        assert_eq!(seen + singles.len(), units);
        // Small weights pair up; zero groups vanish.
        let small = vec![
            [[10, -20, 30, 5]; QNR],
            [[0; 4]; QNR],
            [[-40, 20, 30, 60]; QNR],
        ];
        let (p, s) = chunk_dot_panel(split_dot_panel(&small));
        assert_eq!((p.len(), s.len()), (1, 0));
        assert_eq!((p[0].0 .0, p[0].1 .0), (2, 0));
        // Exact groups are not split.
        let safe = vec![[[100, -100, 64, 64]; QNR]];
        assert!(split_dot_panel(&safe).1.is_empty());
        assert!(!dot_pair_exact(100, 29) && dot_pair_exact(100, 28));
    }

    /// Run a shuffle program on one pixel, as the C kernel does.
    fn run_program(prog: &[ShuffleWindow], srcs: &[Vec<u8>], c: usize) -> Vec<u8> {
        let mut y = vec![0u8; c];
        let mut k = 0;
        while k < prog.len() {
            let out = prog[k].out;
            let mut acc = [0u8; 16];
            while k < prog.len() && prog[k].out == out {
                let w = &prog[k];
                let win = &srcs[w.src][w.start..w.start + 16];
                for (a, &m) in acc.iter_mut().zip(&w.mask) {
                    if m & 0x80 == 0 {
                        *a |= win[m as usize];
                    }
                }
                k += 1;
            }
            y[out..out + 16].copy_from_slice(&acc);
        }
        y
    }

    /// Shuffle programs reproduce the map (ShuffleNet's interleaves, their compositions,
    /// random maps), never read past a source's channels, and refuse small maps.
    #[test]
    fn shuffle_program_reproduces_the_map() {
        let mut seed = 7u64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut maps: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        // split:1 of shuffle(concat(a, b)), 58 + 58 channels: a[29..], b[29..] interleaved.
        let (w, k): (Vec<usize>, Vec<usize>) = (29..58).flat_map(|i| [(0, i), (1, i)]).unzip();
        maps.push((w, k));
        for c in [16, 17, 24, 58, 116, 232] {
            let nsrc = 1 + rnd(3);
            let cs: Vec<usize> = (0..nsrc).map(|_| 16 + rnd(200)).collect();
            let (w, k): (Vec<usize>, Vec<usize>) = (0..c)
                .map(|_| {
                    let s = rnd(nsrc);
                    (s, rnd(cs[s]))
                })
                .unzip();
            maps.push((w, k));
        }
        for (which, ch) in &maps {
            let c = which.len();
            let nsrc = which.iter().max().unwrap() + 1;
            // Each source holds exactly the channels up to its highest used one.
            let srcs: Vec<Vec<u8>> = (0..nsrc)
                .map(|s| {
                    let top = (0..c).filter(|&j| which[j] == s).map(|j| ch[j] + 1).max();
                    (0..top.unwrap_or(0))
                        .map(|i| (i * 7 + s * 101) as u8)
                        .collect()
                })
                .collect();
            let chans: Vec<usize> = srcs.iter().map(Vec::len).collect();
            let Some(prog) = shuffle_program(which, ch, &chans) else {
                assert!(chans.iter().any(|&n| n > 0 && n < 16), "{c}");
                continue;
            };
            let want: Vec<u8> = (0..c).map(|j| srcs[which[j]][ch[j]]).collect();
            assert_eq!(run_program(&prog, &srcs, c), want, "{c} channels");
        }
        // The ShuffleNet interleave: 4 blocks (the last overlapping), two windows each.
        let prog = shuffle_program(&maps[0].0, &maps[0].1, &[58, 58]).unwrap();
        assert_eq!(prog.len(), 8);
        // A source read only below channel 16 but holding more: loaded 16 at once.
        let prog = shuffle_program(&[0; 16], &[3; 16], &[16]).unwrap();
        assert_eq!((prog.len(), prog[0].start, prog[0].mask), (1, 0, [3; 16]));
        assert!(shuffle_program(&[0; 15], &[0; 15], &[16]).is_none());
        // A source of fewer than 16 channels cannot be loaded 16 at once; a channel outside
        // its source is refused.
        assert!(shuffle_program(&[0; 16], &[3; 16], &[15]).is_none());
        assert!(shuffle_program(&[0; 16], &[16; 16], &[16]).is_none());
    }
}
