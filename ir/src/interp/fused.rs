//! Fused ops made by the optimiser: FusedConv, DwPw, Classifier, ChannelShuffle, ChannelMap.
//!
//! Each fused op is evaluated as the composition of the ops it stands for, through the same
//! kernels ([`super::dispatch`]), so a fused op computes by construction exactly (bit for
//! bit) what the unfused chain computes:
//! - `FusedConv`: `Conv(x, w, b)`, then `Add(y, r)` (residual before the activation), the
//!   activation's ops ([`Activation::ops`]), then `Add(y, r)` (residual after it);
//! - `DwPw`: `FusedConv(dw)` then `FusedConv(1x1)`;
//! - `Classifier`: `GlobalAveragePool`, `Reshape [N, C]`, `Gemm`;
//! - `ChannelShuffle`: `Reshape [N, g, C/g, rest]`, `Transpose [0, 2, 1, 3]`, `Reshape`;
//! - `ChannelMap`: a plane-by-plane copy (what `Concat` of one-channel `Slice`s computes).

use super::{dispatch, R};
use crate::op::{Activation, BinaryOp, ChannelRef, Conv2d, Epilogue, Op, Residual};
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;
use ndarray::{ArrayD, IxDyn};

/// Evaluate one single-output op on tensors, inferring its output type.
fn step(op: &Op, ins: &[&Tensor]) -> R<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let outs = crate::shape::infer(op, &refs)?;
    dispatch(op, ins, &outs)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("internal: {} produced nothing", op.name()))
}

/// Apply an activation (`slope` for PReLU).
fn activate(act: Activation, y: Tensor, slope: Option<&Tensor>) -> R<Tensor> {
    match act {
        Activation::Identity => Ok(y),
        Activation::Silu => {
            let s = step(&Op::Unary(crate::op::UnaryOp::Sigmoid), &[&y])?;
            step(&Op::Binary(BinaryOp::Mul), &[&y, &s])
        }
        Activation::PRelu => {
            let s = slope.ok_or("internal: PReLU without a slope")?;
            step(&Op::PRelu, &[&y, s])
        }
        a => {
            let ops = a.ops();
            let op = ops.first().ok_or("internal: activation without an op")?;
            step(op, &[&y])
        }
    }
}

/// Conv with bias followed by an epilogue; `extra` are `[r], [slope]`.
fn conv_epilogue(
    c: &Conv2d,
    e: &Epilogue,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    extra: &[&Tensor],
) -> R<Tensor> {
    let mut y = step(&Op::Conv(c.clone()), &[x, w, b])?;
    let mut rest = extra.iter();
    let r = if e.residual != Residual::None {
        Some(*rest.next().ok_or("internal: missing residual")?)
    } else {
        None
    };
    let slope = if e.act.has_slope() {
        rest.next().copied()
    } else {
        None
    };
    if e.residual == Residual::BeforeAct {
        y = step(
            &Op::Binary(BinaryOp::Add),
            &[&y, r.ok_or("internal: missing residual")?],
        )?;
    }
    y = activate(e.act, y, slope)?;
    if e.residual == Residual::AfterAct {
        y = step(
            &Op::Binary(BinaryOp::Add),
            &[&y, r.ok_or("internal: missing residual")?],
        )?;
    }
    Ok(y)
}

pub(crate) fn fused_conv(c: &Conv2d, e: &Epilogue, x: &[&Tensor]) -> R<Tensor> {
    conv_epilogue(c, e, x[0], x[1], x[2], &x[3..])
}

pub(crate) fn dw_pw(dw: &Conv2d, dw_act: Activation, e: &Epilogue, x: &[&Tensor]) -> R<Tensor> {
    let dw_epi = Epilogue {
        act: dw_act,
        residual: Residual::None,
    };
    let t = conv_epilogue(dw, &dw_epi, x[0], x[1], x[2], &[])?;
    conv_epilogue(&crate::shape::pointwise(1), e, &t, x[3], x[4], &x[5..])
}

pub(crate) fn classifier(alpha: f32, beta: f32, trans_b: bool, x: &[&Tensor]) -> R<Tensor> {
    let p = step(&Op::GlobalAveragePool, &[x[0]])?;
    let s = p.shape();
    let f = step(
        &Op::Reshape {
            shape: vec![s[0], s[1]],
        },
        &[&p],
    )?;
    let gemm = Op::Gemm {
        alpha,
        beta,
        trans_a: false,
        trans_b,
    };
    let mut ins: Vec<&Tensor> = vec![&f];
    ins.extend(&x[1..]);
    step(&gemm, &ins)
}

pub(crate) fn channel_shuffle(groups: usize, x: &Tensor) -> R<Tensor> {
    let s = x.shape().to_vec();
    let rest: usize = s[2..].iter().product();
    let k = s[1] / groups;
    let r = step(
        &Op::Reshape {
            shape: vec![s[0], groups, k, rest],
        },
        &[x],
    )?;
    let t = step(
        &Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[&r],
    )?;
    step(&Op::Reshape { shape: s }, &[&t])
}

/// Copy channel planes: output channel `k` of image `n` is plane `map[k]` of image `n`.
fn gather_planes<T: Copy>(
    srcs: &[&[T]],
    chans: &[usize],
    map: &[ChannelRef],
    n: usize,
    plane: usize,
) -> Vec<T> {
    let mut v = Vec::with_capacity(n * map.len() * plane);
    for img in 0..n {
        for r in map {
            let base = (img * chans[r.input] + r.channel) * plane;
            v.extend_from_slice(&srcs[r.input][base..base + plane]);
        }
    }
    v
}

pub(crate) fn channel_map(map: &[ChannelRef], x: &[&Tensor], out: &TensorType) -> R<Tensor> {
    let shape = &out.shape;
    let n = shape[0];
    let plane: usize = shape[2..].iter().product();
    let chans: Vec<usize> = x.iter().map(|t| t.shape()[1]).collect();
    let dims = IxDyn(shape);
    let data = match &x[0].data {
        Data::F32(_) => {
            let c: Vec<_> = x.iter().map(|t| super::f32s(t)).collect::<R<_>>()?;
            let s: Vec<&[f32]> = c.iter().map(|c| c.as_ref()).collect();
            Data::F32(
                ArrayD::from_shape_vec(dims, gather_planes(&s, &chans, map, n, plane))
                    .map_err(|e| e.to_string())?,
            )
        }
        Data::Int(_) => {
            let c: Vec<_> = x.iter().map(|t| super::ints(t)).collect::<R<_>>()?;
            let s: Vec<&[i64]> = c.iter().map(|c| c.as_ref()).collect();
            Data::Int(
                ArrayD::from_shape_vec(dims, gather_planes(&s, &chans, map, n, plane))
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    Ok(Tensor {
        dtype: out.dtype,
        data,
    })
}
