//! Folding into convolution weights: rules that compute new constants.
//!
//! - `fold-bn-conv`: `BatchNormalization(Conv(x, W, b))` is `Conv(x, W * s, (b - mean) * s +
//!   beta)` with `s = gamma / sqrt(var + eps)` per output channel;
//! - `fold-bn-gemm`: the same for a `Gemm` (scaling the output columns of `B` and `C`);
//! - `fold-mul-conv`, `fold-add-conv` (and their `-rev` operand orders): a multiply / add
//!   by a per-channel constant (shape broadcasting to `[1, M, 1, 1]` only along axis 1)
//!   becomes part of the weights / bias;
//! - `fold-pad-conv`: a constant zero `Pad` of the spatial axes becomes conv padding.
//!
//! New constants are computed in f64 and rounded once to f32, and memoised in the pool.

use super::{
    attr, bound, f32_values, is_absent, konst, ty, used_only_by, Apply, Made, Make, Out, Rw,
};
use crate::egraph::lang::Lnir;
use crate::egraph::EG;
use egg::{rewrite as rw, Id, Subst};
use lnc_ir::{Op, PadMode, Tensor};

/// The values of a constant that broadcasts along axis 1 only, against an output of
/// `m` channels and rank `rank`: one value per channel (a scalar is repeated).
pub fn per_channel(eg: &EG, id: Id, m: usize, rank: usize) -> Option<(u32, Vec<f64>)> {
    let (k, v) = f32_values(eg, id)?;
    let t = ty(eg, id)?;
    if t.rank() > rank {
        return None;
    }
    let lead = rank - t.rank();
    for (i, &d) in t.shape.iter().enumerate() {
        let axis = lead + i;
        if d != 1 && !(axis == 1 && d == m) {
            return None;
        }
    }
    let v: Vec<f64> = v.into_iter().map(f64::from).collect();
    Some((
        k,
        if v.len() == m {
            v
        } else {
            vec![*v.first()?; m]
        },
    ))
}

/// Scale the output channels (axis 0) of a weight.
fn scale_rows(w: &Tensor, s: &[f64]) -> Result<Tensor, String> {
    let a = w.as_f32().ok_or("weight is not f32")?;
    let m = s.len();
    let per = a.len() / m.max(1);
    let v: Vec<f32> = a
        .iter()
        .enumerate()
        .map(|(i, &x)| (x as f64 * s[i / per.max(1)]) as f32)
        .collect();
    Tensor::from_f32(a.shape(), v)
}

/// Scale the columns (last axis) of a 2-D weight.
fn scale_cols(w: &Tensor, s: &[f64]) -> Result<Tensor, String> {
    let a = w.as_f32().ok_or("weight is not f32")?;
    let n = s.len();
    let v: Vec<f32> = a
        .iter()
        .enumerate()
        .map(|(i, &x)| (x as f64 * s[i % n]) as f32)
        .collect();
    Tensor::from_f32(a.shape(), v)
}

/// `b * s + t` per channel (b absent = 0).
fn affine_bias(b: Option<&Tensor>, s: &[f64], t: &[f64]) -> Result<Tensor, String> {
    let bv: Vec<f64> = match b {
        Some(b) => b
            .as_f32()
            .ok_or("bias is not f32")?
            .iter()
            .map(|&x| x as f64)
            .collect(),
        None => vec![0.0; s.len()],
    };
    if bv.len() != s.len() {
        return Err("bias length".into());
    }
    let v = (0..s.len()).map(|i| (bv[i] * s[i] + t[i]) as f32).collect();
    Tensor::from_f32(&[s.len()], v)
}

/// The batch-norm parameters as `(scale, shift)`: `s = gamma / sqrt(var + eps)`,
/// `t = beta - mean * s`.
fn bn_affine(eg: &EG, subst: &Subst, m: usize) -> Option<(Vec<u32>, Vec<f64>, Vec<f64>)> {
    let Op::BatchNorm { epsilon } = attr(eg, bound(subst, "?e")?)? else {
        return None;
    };
    let mut ks = Vec::new();
    let mut vals = Vec::new();
    for v in ["?g", "?beta", "?m", "?v"] {
        let (k, x) = f32_values(eg, bound(subst, v)?)?;
        if x.len() != m {
            return None;
        }
        ks.push(k);
        vals.push(x);
    }
    ks.push(epsilon.to_bits());
    let s: Vec<f64> = (0..m)
        .map(|i| vals[0][i] as f64 / (vals[3][i] as f64 + epsilon as f64).sqrt())
        .collect();
    let t: Vec<f64> = (0..m)
        .map(|i| vals[1][i] as f64 - vals[2][i] as f64 * s[i])
        .collect();
    Some((ks, s, t))
}

/// The conv e-node bound by `(conv ?a ?x ?w ?b)`, if its value has no other use than
/// `root` (folding into a shared conv would compute it twice).
fn conv_source(
    eg: &EG,
    subst: &Subst,
    tag: &'static str,
    names: [&str; 4],
    root: Id,
) -> Option<Lnir> {
    let ch = names
        .iter()
        .map(|v| bound(subst, v))
        .collect::<Option<Vec<Id>>>()?;
    let n = Lnir::Op(tag, ch.into_iter().map(|c| eg.find(c)).collect());
    used_only_by(eg, eg.lookup(n.clone())?, &[root]).then_some(n)
}

/// `fold-bn-conv`.
pub struct FoldBnConv;

impl Make for FoldBnConv {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, x, w, b) = (
                bound(s, "?a")?,
                bound(s, "?x")?,
                bound(s, "?w")?,
                bound(s, "?b")?,
            );
            let Op::Conv(_) = attr(eg, a)? else {
                return None;
            };
            let (wk, wt) = konst(eg, w)?;
            let m = *wt.shape().first()?;
            let bk = if is_absent(eg, b) {
                None
            } else {
                Some(konst(eg, b)?.0)
            };
            let (ks, sc, sh) = bn_affine(eg, s, m)?;
            let key = format!("{ks:?}");
            let wname = eg.analysis.pool.name(wk).to_string();
            let w2 = super::derived(
                eg,
                format!("bn-w:{wk}:{key}"),
                || format!("{wname}.bn_folded"),
                |p| scale_rows(p.get(wk).ok_or("missing")?, &sc),
            )?;
            let b2 = super::derived(
                eg,
                format!("bn-b:{bk:?}:{key}"),
                || format!("{wname}.bn_bias"),
                |p| affine_bias(bk.and_then(|k| p.get(k)), &sc, &sh),
            )?;
            let op = attr(eg, a)?;
            let src = conv_source(eg, s, "conv", ["?a", "?x", "?w", "?b"], root)?;
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op,
                    inputs: vec![x, w2, b2],
                    sources: vec![src],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// `fold-bn-gemm`.
pub struct FoldBnGemm;

impl Make for FoldBnGemm {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, x, w, c) = (
                bound(s, "?a")?,
                bound(s, "?x")?,
                bound(s, "?w")?,
                bound(s, "?c")?,
            );
            let Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } = attr(eg, a)?
            else {
                return None;
            };
            let out = ty(eg, root)?;
            let &[_, m] = out.shape.as_slice() else {
                return None;
            };
            let (wk, _) = konst(eg, w)?;
            let ck = if is_absent(eg, c) {
                None
            } else {
                Some(konst(eg, c)?.0)
            };
            if let Some(ck) = ck {
                let shape = eg.analysis.pool.get(ck)?.shape().to_vec();
                if shape != [m] && shape != [1, m] {
                    return None;
                }
            }
            let (ks, sc, sh) = bn_affine(eg, s, m)?;
            let key = format!("{ks:?}");
            let wname = eg.analysis.pool.name(wk).to_string();
            let w2 = super::derived(
                eg,
                format!("bn-gemm-w:{wk}:{trans_b}:{key}"),
                || format!("{wname}.bn_folded"),
                |p| {
                    let t = p.get(wk).ok_or("missing")?;
                    if trans_b {
                        scale_rows(t, &sc)
                    } else {
                        scale_cols(t, &sc)
                    }
                },
            )?;
            // C' = C * s + t / beta (or t with beta = 1 when there is no C).
            let (beta2, use_c) = match ck {
                Some(_) if beta != 0.0 => (beta, true),
                _ => (1.0, false),
            };
            let shift: Vec<f64> = sh.iter().map(|t| t / beta2 as f64).collect();
            let c2 = super::derived(
                eg,
                format!("bn-gemm-c:{ck:?}:{use_c}:{beta2}:{key}"),
                || format!("{wname}.bn_bias"),
                |p| {
                    affine_bias(
                        if use_c {
                            ck.and_then(|k| p.get(k))
                        } else {
                            None
                        },
                        &sc,
                        &shift,
                    )
                },
            )?;
            let op = Op::Gemm {
                alpha,
                beta: beta2,
                trans_a,
                trans_b,
            };
            let src = conv_source(eg, s, "gemm", ["?a", "?x", "?w", "?c"], root)?;
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op,
                    inputs: vec![x, w2, c2],
                    sources: vec![src],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// `fold-mul-conv` / `fold-add-conv`: `?k` is the per-channel constant.
pub struct FoldChannel {
    pub mul: bool,
}

impl Make for FoldChannel {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, x, w, b, k) = (
                bound(s, "?a")?,
                bound(s, "?x")?,
                bound(s, "?w")?,
                bound(s, "?b")?,
                bound(s, "?k")?,
            );
            let Op::Conv(_) = attr(eg, a)? else {
                return None;
            };
            let y = ty(eg, root)?;
            let (wk, wt) = konst(eg, w)?;
            let m = *wt.shape().first()?;
            if y.shape.get(1) != Some(&m) {
                return None;
            }
            let (kk, vals) = per_channel(eg, k, m, y.rank())?;
            let bk = if is_absent(eg, b) {
                None
            } else {
                Some(konst(eg, b)?.0)
            };
            let wname = eg.analysis.pool.name(wk).to_string();
            let ones = vec![1.0; m];
            let zeros = vec![0.0; m];
            let (w2, b2) = if self.mul {
                let w2 = super::derived(
                    eg,
                    format!("mul-w:{wk}:{kk}"),
                    || format!("{wname}.scaled"),
                    |p| scale_rows(p.get(wk).ok_or("missing")?, &vals),
                )?;
                let b2 = match bk {
                    None => None,
                    Some(bk) => Some(super::derived(
                        eg,
                        format!("mul-b:{bk}:{kk}"),
                        || format!("{wname}.scaled_bias"),
                        |p| affine_bias(p.get(bk), &vals, &zeros),
                    )?),
                };
                (w2, b2)
            } else {
                let b2 = super::derived(
                    eg,
                    format!("add-b:{bk:?}:{kk}"),
                    || format!("{wname}.shifted_bias"),
                    |p| affine_bias(bk.and_then(|k| p.get(k)), &ones, &vals),
                )?;
                (w, Some(b2))
            };
            let mut inputs = vec![x, w2];
            inputs.extend(b2);
            let op = attr(eg, a)?;
            let src = conv_source(eg, s, "conv", ["?a", "?x", "?w", "?b"], root)?;
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op,
                    inputs,
                    sources: vec![src],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// `fold-pad-conv`.
pub struct FoldPad;

impl Make for FoldPad {
    fn make(&self, eg: &mut EG, root: Id, s: &Subst) -> Vec<Out> {
        (|| {
            let (a, p, x, w, b) = (
                bound(s, "?a")?,
                bound(s, "?p")?,
                bound(s, "?x")?,
                bound(s, "?w")?,
                bound(s, "?b")?,
            );
            let Op::Conv(mut c) = attr(eg, a)? else {
                return None;
            };
            let Op::Pad { pads, mode, value } = attr(eg, p)? else {
                return None;
            };
            if mode != PadMode::Constant
                || value != 0.0
                || pads.len() != 8
                || pads.iter().any(|&v| v < 0)
            {
                return None;
            }
            if pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 {
                return None;
            }
            let add = [pads[2], pads[3], pads[6], pads[7]];
            for (i, &v) in add.iter().enumerate() {
                c.pads[i] = c.pads[i].checked_add(usize::try_from(v).ok()?)?;
            }
            let mut inputs = vec![x, w];
            if !is_absent(eg, b) {
                inputs.push(b);
            }
            let pad_node = Lnir::Op("pad", vec![eg.find(p), eg.find(x)]);
            if !used_only_by(eg, eg.lookup(pad_node.clone())?, &[root]) {
                return None;
            }
            let conv_node = Lnir::Op(
                "conv",
                vec![
                    eg.find(a),
                    eg.lookup(pad_node.clone())?,
                    eg.find(w),
                    eg.find(b),
                ],
            );
            Some(vec![Out::Node {
                into: root,
                made: Made {
                    op: Op::Conv(c),
                    inputs,
                    sources: vec![conv_node, pad_node],
                },
            }])
        })()
        .unwrap_or_default()
    }
}

/// Whether `?b` (a conv bias) is absent or constant.
fn bias_ok(eg: &mut EG, _: Id, s: &Subst) -> bool {
    bound(s, "?b").is_some_and(|b| is_absent(eg, b) || eg[b].data.konst.is_some())
}

pub fn rules() -> Vec<Rw> {
    vec![
        rw!("fold-bn-conv";      "(batch_norm ?e (conv ?a ?x ?w ?b) ?g ?beta ?m ?v)" => { Apply(FoldBnConv) } if bias_ok),
        rw!("fold-bn-gemm";      "(batch_norm ?e (gemm ?a ?x ?w ?c) ?g ?beta ?m ?v)" => { Apply(FoldBnGemm) }),
        rw!("fold-mul-conv";     "(mul (conv ?a ?x ?w ?b) ?k)"                       => { Apply(FoldChannel { mul: true }) } if bias_ok),
        rw!("fold-mul-conv-rev"; "(mul ?k (conv ?a ?x ?w ?b))"                       => { Apply(FoldChannel { mul: true }) } if bias_ok),
        rw!("fold-add-conv";     "(add (conv ?a ?x ?w ?b) ?k)"                       => { Apply(FoldChannel { mul: false }) } if bias_ok),
        rw!("fold-add-conv-rev"; "(add ?k (conv ?a ?x ?w ?b))"                       => { Apply(FoldChannel { mul: false }) } if bias_ok),
        rw!("fold-pad-conv";     "(conv ?a (pad ?p ?x) ?w ?b)"                       => { Apply(FoldPad) }),
    ]
}
