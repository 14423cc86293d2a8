//! Channel orders of internal byte tensors, chosen for the integer GEMM's pairs.
//!
//! AVX2 without VNNI multiplies activation bytes by weight bytes with `vpmaddubsw`, which
//! adds the products of two neighbouring channels `(2i, 2i + 1)` in a saturating int16.
//! [`super::quant`] keeps that exact by splitting a pair whose weights could saturate into
//! extra weight groups, paid by the whole 16-channel panel for every pixel. Which channels
//! are neighbours is a free choice for a tensor that only the generated code sees: the
//! producers can write their channels in any order (a convolution's output channels, a
//! depthwise convolution's and an elementwise step's channels follow their input), and a
//! pointwise consumer reads its weights in the same order. So the emitter relabels the
//! channels of such tensors so that channels with large weights of the same sign are not
//! neighbours (on an ORT-quantized MobileNetV2 this removes most splits).
//!
//! A *component* is a set of byte values that must share one order: a depthwise
//! convolution joins its input and output, a same-shape integer add or table lookup its
//! operands. It is relabelled only if every step touching it is one of
//! - a GEMM convolution of one group writing it (its output channels are permuted),
//! - a pointwise GEMM convolution reading it in place (its weights' inputs are permuted),
//! - a depthwise convolution, same-shape add or table lookup (elementwise in channels),
//!
//! and every member is a dense pixel-major arena tensor that no other value views: graph
//! inputs and outputs, concatenations, pools, channel maps and float steps keep the
//! natural order. The generated code's results are unchanged (bit for bit); only the
//! packed weights and the inner layout of those buffers differ.

use super::quant::{dot_pair_exact, may_saturate};
use lnc_ir::cpu::quant::QNR;
use lnc_ir::cpu::{ConvKind, Elem, Kernel, Plan, QKernel, Storage, ValId};
use lnc_ir::Graph;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Largest channel count considered (the pair costs are a dense `C x C` table).
const MAX_CHANNELS: usize = 2048;
/// Most steps spent on a component's pair costs (about a tenth of a second).
const PAIR_WORK_LIMIT: usize = 200_000_000;

/// The chosen orders: value -> `order`, where storage channel `p` holds channel `order[p]`.
#[derive(Debug, Default)]
pub(super) struct ChannelOrders {
    of: HashMap<ValId, Rc<[usize]>>,
    /// One line per relabelled component (for a comment in `model.c`).
    pub notes: Vec<String>,
}

impl ChannelOrders {
    /// The channel stored at position `p` of value `v`.
    pub fn chan(&self, v: ValId, p: usize) -> usize {
        self.of.get(&v).map_or(p, |o| o[p])
    }
}

/// Union-find over values.
fn find(parent: &mut [usize], mut v: usize) -> usize {
    while parent[v] != v {
        parent[v] = parent[parent[v]];
        v = parent[v];
    }
    v
}

/// A pointwise consumer's weights `w - w_zp` (`[M][K]`) and its pixel count.
struct Consumer {
    w: Vec<i32>,
    m: usize,
    pixels: u64,
}

pub(super) fn channel_orders(g: &Graph, plan: &Plan) -> ChannelOrders {
    let nv = plan.values.len();
    let mut parent: Vec<usize> = (0..nv).collect();
    let mut blocked = vec![false; nv];
    let mut touched = vec![false; nv];
    let mut consumers: Vec<(ValId, usize)> = Vec::new(); // (x, step)
    let same_shape = |vs: &[ValId]| {
        vs.iter()
            .all(|&v| plan.values[v].shape == plan.values[vs[0]].shape)
    };
    for (si, s) in plan.steps.iter().enumerate() {
        // Values this step may touch without fixing their order, and values it joins.
        let (free, join): (Vec<ValId>, Vec<ValId>) = match &s.kernel {
            Kernel::Quant(QKernel::Conv(c)) if c.kind == ConvKind::Depthwise => {
                (vec![c.x, c.y], vec![c.x, c.y])
            }
            Kernel::Quant(QKernel::Conv(c)) if c.geom.group <= 1 => {
                let mut free = vec![c.y];
                if c.kind == ConvKind::Pointwise && c.win.is_none() {
                    free.push(c.x);
                    consumers.push((c.x, si));
                }
                (free, vec![])
            }
            Kernel::Quant(QKernel::Add { a, b, y, .. }) if same_shape(&[*a, *b, *y]) => {
                (vec![*a, *b, *y], vec![*a, *b, *y])
            }
            Kernel::Quant(QKernel::Lut { x, y, .. }) if same_shape(&[*x, *y]) => {
                (vec![*x, *y], vec![*x, *y])
            }
            _ => (vec![], vec![]),
        };
        for &v in s.reads.iter().chain(&s.writes) {
            touched[v] = true;
            if !free.contains(&v) {
                blocked[v] = true;
            }
        }
        for w in join.windows(2) {
            let (a, b) = (find(&mut parent, w[0]), find(&mut parent, w[1]));
            parent[a.max(b)] = a.min(b);
        }
    }
    // Storage: a dense pixel-major byte tensor in a buffer of its own.
    let mut users: HashMap<usize, usize> = HashMap::new();
    for (v, pv) in plan.values.iter().enumerate() {
        if let (Storage::Arena(b), true) = (pv.storage, touched[v]) {
            *users.entry(b).or_default() += 1;
        }
    }
    for (v, pv) in plan.values.iter().enumerate() {
        let own = matches!(pv.storage, Storage::Arena(b) if users.get(&b) == Some(&1));
        let dense = pv.shape.len() == 4 && pv.offset == 0 && pv.pixel_ld() == Some(pv.shape[1]);
        if !(own && dense && matches!(pv.elem, Elem::U8 | Elem::I8)) {
            blocked[v] = true;
        }
    }
    let mut comps: BTreeMap<usize, Vec<ValId>> = BTreeMap::new();
    for v in (0..nv).filter(|&v| touched[v]) {
        let r = find(&mut parent, v);
        comps.entry(r).or_default().push(v);
    }
    let mut out = ChannelOrders::default();
    for members in comps.values() {
        let c = plan.values[members[0]].shape.get(1).copied().unwrap_or(0);
        if members
            .iter()
            .any(|&v| blocked[v] || plan.values[v].shape[1] != c)
            || !(4..=MAX_CHANNELS).contains(&c)
        {
            continue;
        }
        let cons: Vec<Consumer> = consumers
            .iter()
            .filter(|(x, _)| members.contains(x))
            .filter_map(|&(_, si)| consumer(g, plan, si, c))
            .collect();
        if cons.is_empty() {
            continue;
        }
        // Pair costs take (weights that may saturate) x C steps: skip what would take long
        // (weights that large everywhere leave nothing to gain anyway).
        let big: usize = cons
            .iter()
            .map(|k| k.w.iter().filter(|&&v| may_saturate(v)).count())
            .sum();
        if big.saturating_mul(c) > PAIR_WORK_LIMIT {
            continue;
        }
        let cost = pair_costs(&cons, c);
        let order = match_pairs(&cost, c);
        let total = |o: &[usize]| -> u64 { o.chunks_exact(2).map(|p| cost[p[0] * c + p[1]]).sum() };
        let natural: Vec<usize> = (0..c).collect();
        let (before, after) = (total(&natural), total(&order));
        if after >= before {
            continue;
        }
        out.notes.push(format!(
            "{} ({c} channels): split pairs x panels x pixels {before} -> {after}",
            plan.values[members[0]].name
        ));
        let order: Rc<[usize]> = order.into();
        for &v in members {
            out.of.insert(v, order.clone());
        }
    }
    out
}

/// The weights of pointwise step `si` reading `c` channels, if they are integers.
fn consumer(g: &Graph, plan: &Plan, si: usize, c: usize) -> Option<Consumer> {
    let Kernel::Quant(QKernel::Conv(q)) = &plan.steps[si].kernel else {
        return None;
    };
    let t = g.const_tensor(q.w);
    let s = t.shape();
    if s.len() != 4 || s[1] != c || s[2] * s[3] != 1 || q.w_zp.len() != s[0] {
        return None;
    }
    let wv = t.to_i64_vec();
    let w = wv
        .iter()
        .enumerate()
        .map(|(i, &v)| (v - q.w_zp[i / c] as i64).clamp(-4096, 4096) as i32)
        .collect();
    let gm = &q.geom;
    Some(Consumer {
        w,
        m: s[0],
        pixels: (gm.n * gm.oh * gm.ow) as u64,
    })
}

/// `cost[i * c + j]`: over the consumers, pixels times the panels in which channels `i`
/// and `j` as a `vpmaddubsw` pair would need a split.
fn pair_costs(cons: &[Consumer], c: usize) -> Vec<u64> {
    let mut cost = vec![0u64; c * c];
    for k in cons {
        for p0 in (0..k.m).step_by(QNR) {
            let rows = p0..(p0 + QNR).min(k.m);
            let at = |o: usize, i: usize| k.w[o * c + i];
            // A split needs a weight that may saturate in the row.
            let big: Vec<usize> = (0..c)
                .filter(|&i| rows.clone().any(|o| may_saturate(at(o, i))))
                .collect();
            let mut pairs = Vec::new();
            let mut bad = vec![false; c];
            for &i in &big {
                bad.iter_mut().for_each(|b| *b = false);
                for o in rows.clone() {
                    let a = at(o, i);
                    if !may_saturate(a) {
                        continue;
                    }
                    for (j, b) in bad.iter_mut().enumerate() {
                        *b |= j != i && !dot_pair_exact(a, at(o, j));
                    }
                }
                pairs.extend((0..c).filter(|&j| bad[j]).map(|j| (i.min(j), i.max(j))));
            }
            pairs.sort_unstable();
            pairs.dedup();
            for (i, j) in pairs {
                cost[i * c + j] += k.pixels;
                cost[j * c + i] += k.pixels;
            }
        }
    }
    cost
}

/// An order whose neighbouring pairs `(2i, 2i + 1)` have small cost: channels with the
/// most costly partners first, each taking the free partner of least cost (ties: the
/// partner with the fewest costly partners, then the lowest index). Deterministic.
fn match_pairs(cost: &[u64], c: usize) -> Vec<usize> {
    let hard: Vec<usize> = (0..c)
        .map(|i| cost[i * c..(i + 1) * c].iter().filter(|&&x| x > 0).count())
        .collect();
    let mut order: Vec<usize> = (0..c).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(hard[i]), i));
    let mut free = vec![true; c];
    let mut out = Vec::with_capacity(c);
    for &a in &order {
        if !free[a] {
            continue;
        }
        free[a] = false;
        let b = (0..c)
            .filter(|&b| free[b])
            .min_by_key(|&b| (cost[a * c + b], hard[b], b));
        out.push(a);
        if let Some(b) = b {
            free[b] = false;
            out.push(b);
        }
    }
    improve_pairs(cost, c, &mut out);
    out
}

/// Local search on a pairing: exchange partners between two pairs while that lowers the
/// total cost (at most [`IMPROVE_PASSES`] passes over all pairs of pairs).
fn improve_pairs(cost: &[u64], c: usize, order: &mut [usize]) {
    let np = order.len() / 2;
    let w = |a: usize, b: usize| cost[a * c + b];
    for _ in 0..IMPROVE_PASSES {
        let mut better = false;
        for p in 0..np {
            for q in p + 1..np {
                let (a, b, x, y) = (
                    order[2 * p],
                    order[2 * p + 1],
                    order[2 * q],
                    order[2 * q + 1],
                );
                let now = w(a, b) + w(x, y);
                if now == 0 {
                    continue;
                }
                if w(a, x) + w(b, y) < now {
                    (order[2 * p + 1], order[2 * q]) = (x, b);
                    better = true;
                } else if w(a, y) + w(b, x) < now {
                    (order[2 * p + 1], order[2 * q + 1]) = (y, b);
                    better = true;
                }
            }
        }
        if !better {
            break;
        }
    }
}

/// Passes of [`improve_pairs`].
const IMPROVE_PASSES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_separates_large_weights_of_one_sign() {
        // One panel row: channels 0 and 1 carry large positive weights, 2 and 3 small.
        let k = Consumer {
            w: vec![100, 90, 3, -2],
            m: 1,
            pixels: 10,
        };
        let cost = pair_costs(&[k], 4);
        assert_eq!(cost[1], 10, "0 and 1 together saturate");
        assert_eq!(cost[2 * 4 + 3], 0);
        let order = match_pairs(&cost, 4);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3], "a permutation");
        for p in order.chunks(2) {
            assert_eq!(cost[p[0] * 4 + p[1]], 0, "pairs {order:?}");
        }
    }

    #[test]
    fn pair_costs_count_panels_and_pixels() {
        // Two panels of 16 rows: the pair (0, 1) is bad in both, (0, 2) in the second.
        let c = 3;
        let mut w = vec![0i32; 32 * c];
        w[0] = 120;
        w[1] = 100; // row 0: 0 and 1 saturate
        w[20 * c] = -128;
        w[20 * c + 1] = -1; // row 20: -129 < -128 in int8 terms: bad
        w[20 * c + 2] = -10;
        let cost = pair_costs(
            &[Consumer {
                w,
                m: 32,
                pixels: 7,
            }],
            c,
        );
        assert_eq!(cost[1], 14);
        assert_eq!(cost[2], 7);
        assert_eq!(cost[c + 2], 0);
        assert_eq!(cost[c], cost[1], "symmetric");
    }
}
