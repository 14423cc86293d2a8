//! Type and shape inference: the output types of an op given its input types.
//!
//! This is the single definition of every op's typing rule; the graph builder, the
//! verifier, the parser and the frontend all go through [`infer`]. Messages do not name the
//! node: callers wrap them into [`crate::Error::Node`].

use crate::dtype::DType;
use crate::op::{Op, Pool2d, UnaryOp};
use crate::types::{checked_numel, TensorType};

type R<T> = Result<T, String>;

/// Multidirectional (numpy) broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> R<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// Output length of a sliding window along one axis.
pub fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil_mode: bool,
) -> R<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err("kernel, stride and dilation must be positive".into());
    }
    let eff = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or("kernel extent overflows")?;
    let padded = input
        .checked_add(pad_begin)
        .and_then(|v| v.checked_add(pad_end))
        .ok_or("padded size overflows")?;
    if padded < eff {
        return Err(format!(
            "window of extent {eff} does not fit input of size {input} with pads {pad_begin}+{pad_end}"
        ));
    }
    let span = padded - eff;
    let mut out = if ceil_mode {
        span.div_ceil(stride) + 1
    } else {
        span / stride + 1
    };
    // A last window must start inside the input or its leading padding (PyTorch/ONNX rule).
    if ceil_mode && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Ok(out)
}

fn expect_rank(t: &TensorType, r: usize, what: &str) -> R<()> {
    if t.rank() != r {
        return Err(format!("{what} must have rank {r}, got {}", t));
    }
    Ok(())
}

fn expect_f32(t: &TensorType, what: &str) -> R<()> {
    if t.dtype != DType::F32 {
        return Err(format!("{what} must be f32, got {}", t.dtype));
    }
    Ok(())
}

fn expect_same_dtype(a: &TensorType, b: &TensorType, what: &str) -> R<()> {
    if a.dtype != b.dtype {
        return Err(format!(
            "{what}: dtypes differ ({} vs {})",
            a.dtype, b.dtype
        ));
    }
    Ok(())
}

fn pool_shape(x: &TensorType, p: &Pool2d) -> R<Vec<usize>> {
    expect_rank(x, 4, "pooling input")?;
    let h = window_out(
        x.shape[2],
        p.kernel[0],
        p.strides[0],
        p.dilations[0],
        p.pads[0],
        p.pads[2],
        p.ceil_mode,
    )?;
    let w = window_out(
        x.shape[3],
        p.kernel[1],
        p.strides[1],
        p.dilations[1],
        p.pads[1],
        p.pads[3],
        p.ceil_mode,
    )?;
    let ext = |i: usize| p.kernel[i].saturating_mul(p.dilations[i]);
    if p.pads[0] >= ext(0) || p.pads[2] >= ext(0) || p.pads[1] >= ext(1) || p.pads[3] >= ext(1) {
        return Err("pooling pads must be smaller than the kernel".into());
    }
    Ok(vec![x.shape[0], x.shape[1], h, w])
}

fn conv_shape(x: &TensorType, w: &TensorType, c: &crate::op::Conv2d) -> R<Vec<usize>> {
    expect_rank(x, 4, "conv input")?;
    expect_rank(w, 4, "conv weight")?;
    let (n, cin, hin, win) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let (m, cpg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
    if c.group == 0 || cin % c.group != 0 || m % c.group != 0 {
        return Err(format!(
            "group {} must divide input channels {cin} and output channels {m}",
            c.group
        ));
    }
    if cpg != cin / c.group {
        return Err(format!(
            "weight has {cpg} input channels per group, input has {cin} channels in {} group(s)",
            c.group
        ));
    }
    if [kh, kw] != c.kernel {
        return Err(format!(
            "kernel_shape {:?} does not match weight {:?}",
            c.kernel, w.shape
        ));
    }
    let h = window_out(
        hin,
        kh,
        c.strides[0],
        c.dilations[0],
        c.pads[0],
        c.pads[2],
        false,
    )?;
    let wo = window_out(
        win,
        kw,
        c.strides[1],
        c.dilations[1],
        c.pads[1],
        c.pads[3],
        false,
    )?;
    Ok(vec![n, m, h, wo])
}

fn check_bias(b: Option<&&TensorType>, m: usize) -> R<()> {
    if let Some(b) = b {
        if b.shape != [m] {
            return Err(format!("bias must have shape [{m}], got {:?}", b.shape));
        }
    }
    Ok(())
}

fn check_qparam(
    s: &TensorType,
    zp: Option<&TensorType>,
    axis: Option<usize>,
    x: &TensorType,
) -> R<()> {
    expect_f32(s, "scale")?;
    let want = match axis {
        None => 1,
        Some(a) => *x
            .shape
            .get(a)
            .ok_or(format!("quantization axis {a} out of range for {x}"))?,
    };
    let n = s.numel();
    if n != want || (axis.is_some() && s.rank() != 1) || (axis.is_none() && s.rank() > 1) {
        return Err(format!(
            "scale has shape {:?}, expected {} element(s)",
            s.shape, want
        ));
    }
    if let Some(zp) = zp {
        if zp.shape != s.shape {
            return Err(format!(
                "zero point shape {:?} differs from scale shape {:?}",
                zp.shape, s.shape
            ));
        }
    }
    Ok(())
}

fn matmul_shape(a: &[usize], b: &[usize]) -> R<Vec<usize>> {
    if a.is_empty() || b.is_empty() {
        return Err("matmul operands must have rank >= 1".into());
    }
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(format!("matmul inner dimensions differ: {a:?} x {b:?}"));
    }
    let mut out = broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

/// Infer the output types of `op` applied to inputs of types `ins`.
pub fn infer(op: &Op, ins: &[&TensorType]) -> R<Vec<TensorType>> {
    if !op.arity().accepts(ins.len()) {
        return Err(format!(
            "expects {:?} inputs, got {}",
            op.arity(),
            ins.len()
        ));
    }
    let outs = infer_inner(op, ins)?;
    for t in &outs {
        t.check()?;
    }
    Ok(outs)
}

fn infer_inner(op: &Op, ins: &[&TensorType]) -> R<Vec<TensorType>> {
    let x = ins.first().copied();
    let one = |t: TensorType| Ok(vec![t]);
    match op {
        Op::Input | Op::Const(_) => Err("input and const nodes carry their own type".into()),
        Op::Identity => one(x.unwrap().with_shape(x.unwrap().shape.clone())),
        Op::Conv(c) => {
            let (x, w) = (ins[0], ins[1]);
            expect_f32(x, "conv input")?;
            expect_f32(w, "conv weight")?;
            let s = conv_shape(x, w, c)?;
            check_bias(ins.get(2), s[1])?;
            one(TensorType::f32(s))
        }
        Op::ConvTranspose(c) => {
            let (x, w) = (ins[0], ins[1]);
            expect_f32(x, "input")?;
            expect_f32(w, "weight")?;
            expect_rank(x, 4, "input")?;
            expect_rank(w, 4, "weight")?;
            if c.group == 0 || x.shape[1] % c.group != 0 || w.shape[0] != x.shape[1] {
                return Err(format!(
                    "weight {:?} does not fit input {:?} with group {}",
                    w.shape, x.shape, c.group
                ));
            }
            if [w.shape[2], w.shape[3]] != c.kernel {
                return Err(format!(
                    "kernel_shape {:?} does not match weight {:?}",
                    c.kernel, w.shape
                ));
            }
            let m = w.shape[1]
                .checked_mul(c.group)
                .ok_or("output channels overflow")?;
            let mut sp = [0usize; 2];
            #[allow(clippy::needless_range_loop)]
            for i in 0..2 {
                if c.strides[i] == 0 || c.dilations[i] == 0 || c.kernel[i] == 0 {
                    return Err("kernel, strides and dilations must be positive".into());
                }
                if c.output_padding[i] >= c.strides[i].max(c.dilations[i]) {
                    return Err("output_padding must be smaller than stride or dilation".into());
                }
                let full = (x.shape[2 + i].max(1) as u128 - 1) * c.strides[i] as u128
                    + c.output_padding[i] as u128
                    + (c.kernel[i] as u128 - 1) * c.dilations[i] as u128
                    + 1;
                let p = c.pads[i] as u128 + c.pads[i + 2] as u128;
                if full <= p {
                    return Err("pads remove the whole output".into());
                }
                sp[i] = usize::try_from(full - p).map_err(|_| "output size overflows")?;
            }
            check_bias(ins.get(2), m)?;
            one(TensorType::f32(vec![x.shape[0], m, sp[0], sp[1]]))
        }
        Op::BatchNorm { .. } => {
            let x = ins[0];
            expect_f32(x, "input")?;
            if x.rank() < 2 {
                return Err("input must have rank >= 2".into());
            }
            for (i, t) in ins[1..].iter().enumerate() {
                expect_f32(t, "parameter")?;
                if t.shape != [x.shape[1]] {
                    return Err(format!(
                        "parameter {} must have shape [{}], got {:?}",
                        i + 1,
                        x.shape[1],
                        t.shape
                    ));
                }
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::Unary(u) => {
            let x = x.unwrap();
            let int_ok = matches!(
                u,
                UnaryOp::Relu | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign
            );
            if x.dtype != DType::F32
                && !(int_ok
                    && x.dtype.int_range().is_some_and(|(lo, _)| {
                        lo < 0 || *u == UnaryOp::Relu || *u == UnaryOp::Abs || *u == UnaryOp::Sign
                    }))
            {
                return Err(format!("unsupported dtype {}", x.dtype));
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::LeakyRelu { .. } | Op::Elu { .. } | Op::HardSigmoid { .. } => {
            expect_f32(x.unwrap(), "input")?;
            one(x.unwrap().with_shape(x.unwrap().shape.clone()))
        }
        Op::Clip { min, max } => {
            if min > max {
                return Err(format!("min {min} > max {max}"));
            }
            let x = x.unwrap();
            if x.dtype == DType::Bool {
                return Err("clip on bool".into());
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::PRelu => {
            let (x, s) = (ins[0], ins[1]);
            expect_f32(x, "input")?;
            expect_f32(s, "slope")?;
            let b = broadcast(&x.shape, &s.shape)?;
            if b != x.shape {
                return Err(format!(
                    "slope {:?} does not broadcast to input {:?}",
                    s.shape, x.shape
                ));
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::Binary(_) => {
            let (a, b) = (ins[0], ins[1]);
            expect_same_dtype(a, b, "operands")?;
            if a.dtype == DType::Bool {
                return Err("arithmetic on bool".into());
            }
            one(TensorType::new(a.dtype, broadcast(&a.shape, &b.shape)?))
        }
        Op::Concat { axis } => {
            let f = ins[0];
            if *axis >= f.rank() {
                return Err(format!("axis {axis} out of range for rank {}", f.rank()));
            }
            let mut s = f.shape.clone();
            s[*axis] = 0;
            for t in ins {
                expect_same_dtype(f, t, "inputs")?;
                if t.rank() != f.rank()
                    || (0..f.rank()).any(|i| i != *axis && t.shape[i] != f.shape[i])
                {
                    return Err(format!(
                        "input shapes {:?} and {:?} differ off axis {axis}",
                        f.shape, t.shape
                    ));
                }
                s[*axis] += t.shape[*axis];
            }
            one(f.with_shape(s))
        }
        Op::Split { axis, sizes } => {
            let x = x.unwrap();
            if *axis >= x.rank() {
                return Err(format!("axis {axis} out of range for rank {}", x.rank()));
            }
            let total = sizes.iter().try_fold(0usize, |acc, &n| acc.checked_add(n));
            if sizes.is_empty() || total != Some(x.shape[*axis]) {
                return Err(format!(
                    "split sizes {sizes:?} do not sum to {}",
                    x.shape[*axis]
                ));
            }
            Ok(sizes
                .iter()
                .map(|&n| {
                    let mut s = x.shape.clone();
                    s[*axis] = n;
                    x.with_shape(s)
                })
                .collect())
        }
        Op::Slice { axes } => {
            let x = x.unwrap();
            let mut s = x.shape.clone();
            let mut seen = vec![false; x.rank()];
            for a in axes {
                if a.axis >= x.rank() || seen[a.axis] {
                    return Err(format!("slice axis {} invalid or repeated", a.axis));
                }
                seen[a.axis] = true;
                let d = x.shape[a.axis] as i64;
                if a.step == 0 {
                    return Err("slice step must not be 0".into());
                }
                let (start, end, step) = (a.start as i128, a.end as i128, a.step as i128);
                let n = if step > 0 {
                    if a.start < 0 || a.end > d || a.start > d {
                        return Err(format!(
                            "slice [{}, {}) not normalised for size {d}",
                            a.start, a.end
                        ));
                    }
                    if end > start {
                        (end - start + step - 1) / step
                    } else {
                        0
                    }
                } else {
                    if a.start >= d.max(1) || a.end < -1 || a.start < -1 {
                        return Err(format!(
                            "slice [{}, {}) not normalised for size {d}",
                            a.start, a.end
                        ));
                    }
                    if start > end {
                        (start - end - step - 1) / (-step)
                    } else {
                        0
                    }
                };
                s[a.axis] = n as usize;
            }
            one(x.with_shape(s))
        }
        Op::Reshape { shape } => {
            let x = x.unwrap();
            let n = checked_numel(shape)?;
            if n != x.numel() {
                return Err(format!(
                    "cannot reshape {:?} ({} elements) to {shape:?} ({n})",
                    x.shape,
                    x.numel()
                ));
            }
            one(x.with_shape(shape.clone()))
        }
        Op::Transpose { perm } => {
            let x = x.unwrap();
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..x.rank()).collect::<Vec<_>>() {
                return Err(format!(
                    "perm {perm:?} is not a permutation of rank {}",
                    x.rank()
                ));
            }
            one(x.with_shape(perm.iter().map(|&p| x.shape[p]).collect()))
        }
        Op::Gather { axis } => {
            let (d, i) = (ins[0], ins[1]);
            if *axis >= d.rank() {
                return Err(format!("axis {axis} out of range for rank {}", d.rank()));
            }
            if !matches!(i.dtype, DType::I32 | DType::I64) {
                return Err(format!("indices must be i32 or i64, got {}", i.dtype));
            }
            let mut s = d.shape[..*axis].to_vec();
            s.extend_from_slice(&i.shape);
            s.extend_from_slice(&d.shape[axis + 1..]);
            one(d.with_shape(s))
        }
        Op::Expand { shape } => {
            let x = x.unwrap();
            let b = broadcast(&x.shape, shape)?;
            if &b != shape {
                return Err(format!("cannot expand {:?} to {shape:?}", x.shape));
            }
            one(x.with_shape(shape.clone()))
        }
        Op::Cast { to } => one(x.unwrap().with_dtype(*to)),
        Op::Pad { pads, .. } => {
            let x = x.unwrap();
            if pads.len() != 2 * x.rank() {
                return Err(format!(
                    "pads has {} entries, expected {}",
                    pads.len(),
                    2 * x.rank()
                ));
            }
            let r = x.rank();
            let mut s = Vec::with_capacity(r);
            for i in 0..r {
                let v = x.shape[i] as i128 + pads[i] as i128 + pads[i + r] as i128;
                if v < 0 {
                    return Err(format!("pads {pads:?} make axis {i} negative"));
                }
                s.push(usize::try_from(v).map_err(|_| format!("pads {pads:?} overflow axis {i}"))?);
            }
            one(x.with_shape(s))
        }
        Op::MaxPool(p) => {
            let x = x.unwrap();
            if x.dtype == DType::Bool {
                return Err("max pool on bool".into());
            }
            one(x.with_shape(pool_shape(x, p)?))
        }
        Op::AveragePool { pool, .. } => {
            let x = x.unwrap();
            expect_f32(x, "input")?;
            one(x.with_shape(pool_shape(x, pool)?))
        }
        Op::GlobalAveragePool | Op::GlobalMaxPool => {
            let x = x.unwrap();
            if matches!(op, Op::GlobalAveragePool) {
                expect_f32(x, "input")?;
            }
            if x.rank() < 3 {
                return Err("input must have rank >= 3".into());
            }
            let mut s = x.shape.clone();
            s[2..].iter_mut().for_each(|d| *d = 1);
            one(x.with_shape(s))
        }
        Op::Reduce {
            kind,
            axes,
            keepdims,
        } => {
            let x = x.unwrap();
            if matches!(kind, crate::op::ReduceKind::Mean) {
                expect_f32(x, "input")?;
            }
            if axes.iter().any(|&a| a >= x.rank()) || axes.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("axes {axes:?} invalid for rank {}", x.rank()));
            }
            let all = axes.is_empty();
            let mut s = Vec::new();
            for (i, &d) in x.shape.iter().enumerate() {
                let reduced = all || axes.contains(&i);
                if !reduced {
                    s.push(d);
                } else if *keepdims {
                    s.push(1);
                }
            }
            one(x.with_shape(s))
        }
        Op::Gemm {
            trans_a, trans_b, ..
        } => {
            let (a, b) = (ins[0], ins[1]);
            expect_f32(a, "A")?;
            expect_f32(b, "B")?;
            expect_rank(a, 2, "A")?;
            expect_rank(b, 2, "B")?;
            let (m, k) = if *trans_a {
                (a.shape[1], a.shape[0])
            } else {
                (a.shape[0], a.shape[1])
            };
            let (k2, n) = if *trans_b {
                (b.shape[1], b.shape[0])
            } else {
                (b.shape[0], b.shape[1])
            };
            if k != k2 {
                return Err(format!(
                    "inner dimensions differ: A {:?}, B {:?}",
                    a.shape, b.shape
                ));
            }
            if let Some(c) = ins.get(2) {
                expect_f32(c, "C")?;
                if broadcast(&c.shape, &[m, n])? != [m, n] {
                    return Err(format!("C {:?} does not broadcast to [{m}, {n}]", c.shape));
                }
            }
            one(TensorType::f32(vec![m, n]))
        }
        Op::MatMul => {
            let (a, b) = (ins[0], ins[1]);
            expect_f32(a, "A")?;
            expect_f32(b, "B")?;
            one(TensorType::f32(matmul_shape(&a.shape, &b.shape)?))
        }
        Op::Softmax { axis, .. } => {
            let x = x.unwrap();
            expect_f32(x, "input")?;
            if *axis >= x.rank() {
                return Err(format!("axis {axis} out of range for rank {}", x.rank()));
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::Resize(r) => {
            let x = x.unwrap();
            if r.scales.len() != x.rank() {
                return Err(format!("{} scales for rank {}", r.scales.len(), x.rank()));
            }
            if r.scales.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
                return Err(format!("scales {:?} must be positive", r.scales));
            }
            if r.mode == crate::op::ResizeMode::Linear {
                expect_f32(x, "input")?;
            }
            let s: Vec<usize> = x
                .shape
                .iter()
                .zip(&r.scales)
                .map(|(&d, &s)| (d as f64 * s as f64).floor() as usize)
                .collect();
            checked_numel(&s)?;
            one(x.with_shape(s))
        }
        Op::QuantizeLinear { axis } => {
            let (x, s, zp) = (ins[0], ins[1], ins[2]);
            expect_f32(x, "input")?;
            check_qparam(s, Some(zp), *axis, x)?;
            if zp.dtype == DType::F32 {
                return Err("zero point must be an integer type".into());
            }
            one(TensorType::new(zp.dtype, x.shape.clone()))
        }
        Op::DequantizeLinear { axis } => {
            let (x, s, zp) = (ins[0], ins[1], ins[2]);
            check_qparam(s, Some(zp), *axis, x)?;
            expect_same_dtype(x, zp, "input and zero point")?;
            if x.dtype == DType::F32 {
                return Err("input must be an integer type".into());
            }
            one(TensorType::f32(x.shape.clone()))
        }
        Op::QLinearConv(c) => {
            let (x, xs, xzp, w, ws, wzp, ys, yzp) = (
                ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], ins[7],
            );
            check_qparam(xs, Some(xzp), None, x)?;
            check_qparam(ys, Some(yzp), None, x)?;
            expect_same_dtype(x, xzp, "x and x_zero_point")?;
            expect_same_dtype(w, wzp, "w and w_zero_point")?;
            let s = conv_shape(x, w, c)?;
            check_qparam(
                ws,
                Some(wzp),
                if ws.numel() == 1 && ws.rank() <= 1 {
                    None
                } else {
                    Some(0)
                },
                w,
            )?;
            if let Some(b) = ins.get(8) {
                if b.dtype != DType::I32 {
                    return Err("bias must be i32".into());
                }
                check_bias(Some(b), s[1])?;
            }
            one(TensorType::new(yzp.dtype, s))
        }
        Op::QLinearMatMul => {
            let (a, as_, azp, b, bs, bzp, ys, yzp) = (
                ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], ins[7],
            );
            expect_same_dtype(a, azp, "a and a_zero_point")?;
            expect_same_dtype(b, bzp, "b and b_zero_point")?;
            for (s, z) in [(as_, azp), (bs, bzp), (ys, yzp)] {
                expect_f32(s, "scale")?;
                if s.shape != z.shape {
                    return Err("scale and zero point shapes differ".into());
                }
            }
            one(TensorType::new(
                yzp.dtype,
                matmul_shape(&a.shape, &b.shape)?,
            ))
        }
        Op::ConvInteger(c) => {
            let (x, w, xzp, wzp) = (ins[0], ins[1], ins[2], ins[3]);
            expect_same_dtype(x, xzp, "x and x_zero_point")?;
            expect_same_dtype(w, wzp, "w and w_zero_point")?;
            if xzp.numel() != 1 {
                return Err("x_zero_point must be a scalar".into());
            }
            let s = conv_shape(x, w, c)?;
            if wzp.numel() != 1 && wzp.shape != [s[1]] {
                return Err("w_zero_point must be scalar or per output channel".into());
            }
            one(TensorType::new(DType::I32, s))
        }
        Op::MatMulInteger => {
            let (a, b, azp, bzp) = (ins[0], ins[1], ins[2], ins[3]);
            expect_same_dtype(a, azp, "a and a_zero_point")?;
            expect_same_dtype(b, bzp, "b and b_zero_point")?;
            let s = matmul_shape(&a.shape, &b.shape)?;
            if azp.numel() != 1 && (a.rank() < 2 || azp.shape != [a.shape[a.rank() - 2]]) {
                return Err("a_zero_point must be scalar or per row".into());
            }
            if bzp.numel() != 1 && (b.rank() < 2 || bzp.shape != [b.shape[b.rank() - 1]]) {
                return Err("b_zero_point must be scalar or per column".into());
            }
            if a.dtype.is_float() || b.dtype.is_float() {
                return Err("operands must be integer".into());
            }
            one(TensorType::new(DType::I32, s))
        }
        Op::Quant { bits, .. } | Op::Trunc { out_bits: bits, .. } => {
            let (x, s, zp) = (ins[0], ins[1], ins[2]);
            expect_f32(x, "input")?;
            expect_f32(s, "scale")?;
            expect_f32(zp, "zero point")?;
            if *bits == 0 || *bits > 32 {
                return Err(format!("bit width {bits} out of range 1..=32"));
            }
            for t in [s, zp] {
                if broadcast(&x.shape, &t.shape)? != x.shape {
                    return Err(format!(
                        "parameter {:?} does not broadcast to {:?}",
                        t.shape, x.shape
                    ));
                }
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::BipolarQuant => {
            let (x, s) = (ins[0], ins[1]);
            expect_f32(x, "input")?;
            expect_f32(s, "scale")?;
            if broadcast(&x.shape, &s.shape)? != x.shape {
                return Err(format!(
                    "scale {:?} does not broadcast to {:?}",
                    s.shape, x.shape
                ));
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::FusedConv { conv, epilogue } => {
            let (x, w, b) = (ins[0], ins[1], ins[2]);
            expect_f32(x, "conv input")?;
            expect_f32(w, "conv weight")?;
            expect_f32(b, "bias")?;
            let s = conv_shape(x, w, conv)?;
            check_bias(Some(&b), s[1])?;
            check_epilogue(epilogue, &ins[3..], &s)?;
            one(TensorType::f32(s))
        }
        Op::DwPw {
            dw,
            dw_act,
            epilogue,
        } => {
            let (x, dww, dwb, pww, pwb) = (ins[0], ins[1], ins[2], ins[3], ins[4]);
            for (t, what) in [
                (x, "input"),
                (dww, "depthwise weight"),
                (dwb, "depthwise bias"),
            ] {
                expect_f32(t, what)?;
            }
            for (t, what) in [(pww, "pointwise weight"), (pwb, "pointwise bias")] {
                expect_f32(t, what)?;
            }
            if x.rank() != 4 || dw.group != x.shape[1] {
                return Err(format!(
                    "the depthwise part must have one group per input channel, got group {} for input {}",
                    dw.group, x
                ));
            }
            if dw_act.has_slope() || epilogue.act.has_slope() {
                return Err("PReLU is not supported in a dw_pw block".into());
            }
            let t = conv_shape(x, dww, dw)?;
            check_bias(Some(&dwb), t[1])?;
            let pw = pointwise(1);
            let mid = TensorType::f32(t);
            let s = conv_shape(&mid, pww, &pw)?;
            check_bias(Some(&pwb), s[1])?;
            check_epilogue(epilogue, &ins[5..], &s)?;
            one(TensorType::f32(s))
        }
        Op::Classifier {
            alpha,
            beta,
            trans_b,
        } => {
            let x = ins[0];
            expect_f32(x, "input")?;
            if x.rank() < 3 {
                return Err(format!("classifier input must have rank >= 3, got {x}"));
            }
            let flat = TensorType::f32(vec![x.shape[0], x.shape[1]]);
            let mut rest: Vec<&TensorType> = vec![&flat];
            rest.extend(&ins[1..]);
            let gemm = Op::Gemm {
                alpha: *alpha,
                beta: *beta,
                trans_a: false,
                trans_b: *trans_b,
            };
            infer_inner(&gemm, &rest)
        }
        Op::ChannelShuffle { groups } => {
            let x = x.unwrap();
            if x.rank() < 2 || *groups == 0 || x.shape[1] % groups != 0 {
                return Err(format!("{groups} groups do not divide the channels of {x}"));
            }
            one(x.with_shape(x.shape.clone()))
        }
        Op::ChannelMap { map } => {
            let f = ins[0];
            if f.rank() < 2 {
                return Err(format!("channel map inputs must have rank >= 2, got {f}"));
            }
            for t in ins {
                expect_same_dtype(f, t, "inputs")?;
                if t.rank() != f.rank() || (0..f.rank()).any(|i| i != 1 && t.shape[i] != f.shape[i])
                {
                    return Err(format!(
                        "input shapes {:?} and {:?} differ off axis 1",
                        f.shape, t.shape
                    ));
                }
            }
            if map.is_empty() {
                return Err("channel map is empty".into());
            }
            for r in map {
                let t = ins
                    .get(r.input)
                    .ok_or(format!("map refers to input {}", r.input))?;
                if r.channel >= t.shape[1] {
                    return Err(format!(
                        "map refers to channel {} of input {} with {} channels",
                        r.channel, r.input, t.shape[1]
                    ));
                }
            }
            let mut s = f.shape.clone();
            s[1] = map.len();
            one(f.with_shape(s))
        }
    }
}

/// A 1x1 convolution with stride 1, no padding and `group` groups.
pub fn pointwise(group: usize) -> crate::op::Conv2d {
    crate::op::Conv2d {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group,
    }
}

/// The extra inputs of an epilogue (`[r], [slope]`) for an output of shape `out`.
fn check_epilogue(e: &crate::op::Epilogue, extra: &[&TensorType], out: &[usize]) -> R<()> {
    if extra.len() != e.extra_inputs() {
        return Err(format!(
            "epilogue expects {} extra input(s), got {}",
            e.extra_inputs(),
            extra.len()
        ));
    }
    let mut rest = extra.iter();
    if e.residual != crate::op::Residual::None {
        let r = rest.next().ok_or("missing residual")?;
        expect_f32(r, "residual")?;
        if r.shape != out {
            return Err(format!(
                "residual has shape {:?}, the output has {out:?}",
                r.shape
            ));
        }
    }
    if e.act.has_slope() {
        let s = rest.next().ok_or("missing PReLU slope")?;
        expect_f32(s, "slope")?;
        if broadcast(out, &s.shape)? != out {
            return Err(format!(
                "slope {:?} does not broadcast to the output {out:?}",
                s.shape
            ));
        }
    }
    if let crate::op::Activation::Clip { min, max } = e.act {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(format!("clip bounds [{min}, {max}] are invalid"));
        }
    }
    Ok(())
}
