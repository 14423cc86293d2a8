//! Layout: reshape / transpose cancellation, channel shuffles and channel index maps.
//!
//! - `cancel-reshape`: a reshape of a reshape is one reshape; `cancel-transpose`: two
//!   transposes are one (or none, when they compose to the identity).
//! - `recognize-channel-shuffle`: `Reshape [N, g, C/g, ...] → Transpose (swap 1, 2) →
//!   Reshape [N, C, ...]` is `channel_shuffle { groups: g }`.
//! - Channel index maps (`channel_map`): `shuffle-to-map`, `split-to-map` (every output of
//!   a channel split), `slice-to-map` (a slice of the channel axis), `concat-to-map` (a
//!   channel concat) state the same value as a map; `compose-channel-maps` flattens a map
//!   of maps (ShuffleNetV2's split → concat → shuffle chain becomes one map per unit);
//!   `remove-identity-map` drops a map that is the identity.
//! - `absorb-map-into-conv`: a one-group conv reading a permutation of its input's channels
//!   reads the input directly with its weights' input channels permuted (zero cost).

use super::{attr, bound, derived, konst, ops_in, ty, Apply, Made, Make, Out, Rw, Tagged};
use crate::egraph::lang::Lnir;
use crate::egraph::EG;
use egg::{rewrite as rw, Id, Subst};
use lnc_ir::{ChannelRef, Op, Tensor};

/// `cancel-transpose`.
pub struct ComposeTranspose;

impl Make for ComposeTranspose {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (p, q, x) = (bound(s, "?p")?, bound(s, "?q")?, bound(s, "?x")?);
            let (Op::Transpose { perm: p }, Op::Transpose { perm: q }) =
                (attr(eg, p)?, attr(eg, q)?)
            else {
                return None;
            };
            // z = transpose(transpose(x, q), p): z axis j is x axis q[p[j]].
            let r: Vec<usize> = p
                .iter()
                .map(|&j| q.get(j).copied())
                .collect::<Option<_>>()?;
            if r.iter().enumerate().all(|(i, &v)| i == v) {
                return Some(vec![Out::Same(root, x)]);
            }
            let inner = Lnir::Op("transpose", vec![eg.find(bound(s, "?q")?), eg.find(x)]);
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::Transpose { perm: r },
                    inputs: vec![x],
                    sources: vec![inner],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// `recognize-channel-shuffle`.
pub struct RecognizeShuffle;

impl Make for RecognizeShuffle {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (r1, p, r2, x) = (
                bound(s, "?r1")?,
                bound(s, "?p")?,
                bound(s, "?r2")?,
                bound(s, "?x")?,
            );
            let (Op::Reshape { shape: s1 }, Op::Transpose { perm }, Op::Reshape { shape: s2 }) =
                (attr(eg, r1)?, attr(eg, p)?, attr(eg, r2)?)
            else {
                return None;
            };
            let xs = ty(eg, x)?.shape;
            if xs.len() < 2 || s1.len() != xs.len() + 1 || s2 != xs {
                return None;
            }
            let (g, k) = (s1[1], s1[2]);
            let mut want_perm: Vec<usize> = (0..s1.len()).collect();
            want_perm.swap(1, 2);
            if s1[0] != xs[0]
                || g.checked_mul(k)? != xs[1]
                || s1[3..] != xs[2..]
                || perm != want_perm
                || g < 2
            {
                return None;
            }
            let a = Lnir::Op("reshape", vec![eg.find(r1), eg.find(x)]);
            let aid = eg.lookup(a.clone())?;
            let t = Lnir::Op("transpose", vec![eg.find(p), aid]);
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::ChannelShuffle { groups: g },
                    inputs: vec![x],
                    sources: vec![a, t],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// The permutation of a channel shuffle: output `i * g + j` is input `j * k + i`.
pub fn shuffle_map(c: usize, g: usize) -> Vec<ChannelRef> {
    let k = c / g;
    (0..c)
        .map(|o| ChannelRef {
            input: 0,
            channel: (o % g) * k + o / g,
        })
        .collect()
}

/// `shuffle-to-map`, `slice-to-map`: a one-input op on channels as a map.
pub struct OneInputToMap;

impl Make for OneInputToMap {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, x) = (bound(s, "?a")?, bound(s, "?x")?);
            let xt = ty(eg, x)?;
            let c = *xt.shape.get(1)?;
            let op = attr(eg, a)?;
            let map = match &op {
                Op::ChannelShuffle { groups } => shuffle_map(c, *groups),
                Op::Slice { axes } => {
                    if axes.len() != 1 || axes[0].axis != 1 {
                        return None;
                    }
                    let sa = &axes[0];
                    let mut v = Vec::new();
                    let mut i = sa.start;
                    while (sa.step > 0 && i < sa.end) || (sa.step < 0 && i > sa.end) {
                        v.push(ChannelRef {
                            input: 0,
                            channel: usize::try_from(i).ok()?,
                        });
                        i += sa.step;
                    }
                    v
                }
                _ => return None,
            };
            if map.is_empty() {
                return None;
            }
            let src = Lnir::Op(op.name(), vec![eg.find(a), eg.find(x)]);
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::ChannelMap { map },
                    inputs: vec![x],
                    sources: vec![src],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// `split-to-map`: every output of a channel split as a map (unioned with the projection).
pub struct SplitToMap;

impl Make for SplitToMap {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, x) = (bound(s, "?a")?, bound(s, "?x")?);
            let Op::Split { axis: 1, sizes } = attr(eg, a)? else {
                return None;
            };
            let mut outs = Vec::new();
            let mut start = 0;
            let src = Lnir::Op("split", vec![eg.find(a), eg.find(x)]);
            for (k, &n) in sizes.iter().enumerate() {
                if n > 0 {
                    let proj = eg.add(Lnir::Proj(k as u16, [root]));
                    let map = (start..start + n)
                        .map(|c| ChannelRef {
                            input: 0,
                            channel: c,
                        })
                        .collect();
                    outs.push(Out::Node {
                        into: proj,
                        made: Made {
                            op: Op::ChannelMap { map },
                            inputs: vec![x],
                            sources: vec![src.clone()],
                        },
                    });
                }
                start += n;
            }
            Some(outs)
        })()
        .unwrap_or_default()
    }
}

/// `concat-to-map`: a channel concat (any number of inputs) as a map.
pub struct ConcatToMap;

impl Make for ConcatToMap {
    fn make(&self, eg: &mut EG, root: Id, _: &Subst) -> Vec<Out> {
        let mut outs = Vec::new();
        for (node, op, ins) in ops_in(eg, root) {
            let Op::Concat { axis: 1 } = op else { continue };
            let mut map = Vec::new();
            for (i, &x) in ins.iter().enumerate() {
                let Some(c) = ty(eg, x).and_then(|t| t.shape.get(1).copied()) else {
                    return outs;
                };
                map.extend((0..c).map(|ch| ChannelRef {
                    input: i,
                    channel: ch,
                }));
            }
            outs.push(Out::Node {
                into: root,
                made: Made {
                    op: Op::ChannelMap { map },
                    inputs: ins,
                    sources: vec![node],
                },
            });
        }
        outs
    }
}

/// A channel-map e-node: the node, its map, its inputs.
type MapNode = (Lnir, Vec<ChannelRef>, Vec<Id>);

/// The first channel map in a class that does not read the class itself.
fn inner_map(eg: &EG, id: Id) -> Option<MapNode> {
    let id = eg.find(id);
    ops_in(eg, id)
        .into_iter()
        .find_map(|(n, op, ins)| match op {
            Op::ChannelMap { map } if ins.iter().all(|&i| eg.find(i) != id) => Some((n, map, ins)),
            _ => None,
        })
}

/// `compose-channel-maps`: maps of maps flattened; repeated inputs merged.
pub struct ComposeMaps;

impl Make for ComposeMaps {
    fn make(&self, eg: &mut EG, root: Id, _: &Subst) -> Vec<Out> {
        let mut outs = Vec::new();
        for (node, op, ins) in ops_in(eg, root) {
            let Op::ChannelMap { map } = op else { continue };
            let inner: Vec<Option<MapNode>> = ins.iter().map(|&i| inner_map(eg, i)).collect();
            let canon: Vec<Id> = ins.iter().map(|&i| eg.find(i)).collect();
            let mut dup = canon.clone();
            dup.sort_unstable();
            dup.dedup();
            if inner.iter().all(Option::is_none) && dup.len() == canon.len() {
                continue;
            }
            let mut new_ins: Vec<Id> = Vec::new();
            let slot = |c: Id, new_ins: &mut Vec<Id>| match new_ins.iter().position(|&x| x == c) {
                Some(p) => p,
                None => {
                    new_ins.push(c);
                    new_ins.len() - 1
                }
            };
            let mut new_map = Vec::with_capacity(map.len());
            let mut sources = vec![node.clone()];
            for r in &map {
                match &inner[r.input] {
                    Some((_, m, mi)) => {
                        let Some(t) = m.get(r.channel) else {
                            return outs;
                        };
                        let c = eg.find(mi[t.input]);
                        new_map.push(ChannelRef {
                            input: slot(c, &mut new_ins),
                            channel: t.channel,
                        });
                    }
                    None => new_map.push(ChannelRef {
                        input: slot(canon[r.input], &mut new_ins),
                        channel: r.channel,
                    }),
                }
            }
            sources.extend(inner.iter().flatten().map(|(n, _, _)| n.clone()));
            outs.push(Out::Node {
                into: root,
                made: Made {
                    op: Op::ChannelMap { map: new_map },
                    inputs: new_ins,
                    sources,
                },
            });
        }
        outs
    }
}

/// `remove-identity-map`: a one-input map that reads every channel in order.
pub struct IdentityMap;

impl Make for IdentityMap {
    fn make(&self, eg: &mut EG, root: Id, _: &Subst) -> Vec<Out> {
        let mut outs = Vec::new();
        for (_, op, ins) in ops_in(eg, root) {
            let Op::ChannelMap { map } = op else { continue };
            let [x] = ins[..] else { continue };
            let c = ty(eg, x).and_then(|t| t.shape.get(1).copied());
            let identity = c == Some(map.len())
                && map
                    .iter()
                    .enumerate()
                    .all(|(i, r)| r.input == 0 && r.channel == i);
            if identity {
                outs.push(Out::Same(root, x));
            }
        }
        outs
    }
}

/// `absorb-map-into-conv`: `conv(map(x), W)` with a permutation map and one group is
/// `conv(x, W')`, `W'[:, map[i]] = W[:, i]`.
pub struct AbsorbMap;

impl Make for AbsorbMap {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, m, w, b) = (
                bound(s, "?a")?,
                bound(s, "?m")?,
                bound(s, "?w")?,
                bound(s, "?b")?,
            );
            let Op::Conv(c) = attr(eg, a)? else {
                return None;
            };
            if c.group != 1 {
                return None;
            }
            let (wk, wt) = konst(eg, w)?;
            let wshape = wt.shape().to_vec();
            let mut outs = Vec::new();
            for (node, op, ins) in ops_in(eg, m) {
                let Op::ChannelMap { map } = op else { continue };
                let [x] = ins[..] else { continue };
                let cin = ty(eg, x)?.shape.get(1).copied()?;
                let mut seen = vec![false; cin];
                let bijective = map.len() == cin
                    && map.iter().all(|r| {
                        r.input == 0
                            && r.channel < cin
                            && !std::mem::replace(&mut seen[r.channel], true)
                    });
                if !bijective || wshape.get(1) != Some(&cin) {
                    continue;
                }
                let perm: Vec<usize> = map.iter().map(|r| r.channel).collect();
                let wname = eg.analysis.pool.name(wk).to_string();
                let key = format!("perm-in:{wk}:{perm:?}");
                let w2 = derived(
                    eg,
                    key,
                    || format!("{wname}.permuted"),
                    |p| {
                        let t = p.get(wk).ok_or("missing")?;
                        let v = t.as_f32().ok_or("not f32")?;
                        let src: Vec<f32> = v.iter().copied().collect();
                        let (mo, kk) = (wshape[0], wshape[2] * wshape[3]);
                        let mut out = vec![0.0f32; src.len()];
                        for o in 0..mo {
                            for (i, &pc) in perm.iter().enumerate() {
                                let from = (o * cin + i) * kk;
                                let to = (o * cin + pc) * kk;
                                out[to..to + kk].copy_from_slice(&src[from..from + kk]);
                            }
                        }
                        Tensor::from_f32(&wshape, out)
                    },
                );
                let Some(w2) = w2 else { continue };
                let mut inputs = vec![x, w2];
                if !eg[b].data.absent {
                    inputs.push(b);
                }
                let conv = Lnir::Op("conv", vec![eg.find(a), eg.find(m), eg.find(w), eg.find(b)]);
                outs.push(Out::Node {
                    into: root,
                    made: Made {
                        op: Op::Conv(c.clone()),
                        inputs,
                        sources: vec![node, conv],
                    },
                });
            }
            Some(outs)
        })()
        .unwrap_or_default()
    }
}

pub fn rules() -> Vec<Rw> {
    vec![
        rw!("cancel-reshape";            "(reshape ?a (reshape ?b ?x))"                  => "(reshape ?a ?x)"),
        rw!("cancel-transpose";          "(transpose ?p (transpose ?q ?x))"             => { Apply(ComposeTranspose) }),
        rw!("recognize-channel-shuffle"; "(reshape ?r2 (transpose ?p (reshape ?r1 ?x)))" => { Apply(RecognizeShuffle) }),
        rw!("shuffle-to-map";            "(channel_shuffle ?a ?x)"                      => { Apply(OneInputToMap) }),
        rw!("slice-to-map";              "(slice ?a ?x)"                                => { Apply(OneInputToMap) }),
        rw!("split-to-map";              "(split ?a ?x)"                                => { Apply(SplitToMap) }),
        rw!("concat-to-map";             { Tagged(&["concat"]) }                        => { Apply(ConcatToMap) }),
        rw!("compose-channel-maps";      { Tagged(&["channel_map"]) }                   => { Apply(ComposeMaps) }),
        rw!("remove-identity-map";       { Tagged(&["channel_map"]) }                   => { Apply(IdentityMap) }),
        rw!("absorb-map-into-conv";      "(conv ?a ?m ?w ?b)"                           => { Apply(AbsorbMap) }),
    ]
}
