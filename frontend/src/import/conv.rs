//! Convolution family: `Conv`, `ConvTranspose`, `BatchNormalization`, and the sliding-window
//! attribute resolution shared with pooling and `QLinearConv`/`ConvInteger`.
//!
//! - `Conv` (opsets 1, 11): inputs `X, W, [B]`; attributes `auto_pad` (NOTSET, SAME_UPPER,
//!   SAME_LOWER, VALID — resolved to explicit pads from the static shapes), `dilations`,
//!   `group`, `kernel_shape` (defaults to W's spatial dims, must agree), `pads`, `strides`.
//! - `ConvTranspose` (1, 11): inputs `X, W, [B]`; as Conv plus `output_padding` and
//!   `output_shape` (resolved to pads as the spec's total-padding rule says).
//! - 1-D inputs (rank 3) become the 2-D op between `Reshape` nodes (H = 1); 3-D (rank 5)
//!   is rejected.
//! - `BatchNormalization` (6, 7, 9, 14, 15): inputs `X, scale, B, mean, var`; `epsilon`;
//!   `momentum` (ignored: inference); `spatial` (6–7; only 1), `is_test` (6; ignored),
//!   `training_mode` (14+; only 0). The running-statistics outputs must be unused.

use super::{to_usizes, Importer, Node};
use crate::Result;
use lnc_ir::{Conv2d, ConvTranspose2d, Op, Value};

/// Resolved window attributes for 1 or 2 spatial axes (ONNX layout: pads are
/// `[begin.., end..]`).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads: Vec<usize>,
}

impl Window {
    /// Read `strides`, `dilations` (when `with_dilations`), `pads` and `auto_pad` for input
    /// spatial sizes `input` and the given kernel; `auto_pad` is resolved to pads.
    pub fn read(
        n: &Node,
        input: &[usize],
        kernel: Vec<usize>,
        with_dilations: bool,
    ) -> Result<Window> {
        let k = input.len();
        let list = |name: &str, default: usize| -> Result<Vec<usize>> {
            match n.ints(name)? {
                None => Ok(vec![default; k]),
                Some(v) if v.is_empty() => Ok(vec![default; k]),
                Some(v) if v.len() == k => {
                    let u = to_usizes(n, name, &v)?;
                    if default == 1 && u.contains(&0) {
                        return Err(n.err(format!("{name} {v:?} must be positive")));
                    }
                    Ok(u)
                }
                Some(v) => Err(n.err(format!("{name} {v:?} must have {k} entries"))),
            }
        };
        if kernel.len() != k || kernel.contains(&0) {
            return Err(n.err(format!(
                "kernel_shape {kernel:?} must have {k} positive entries"
            )));
        }
        let strides = list("strides", 1)?;
        let dilations = if with_dilations {
            list("dilations", 1)?
        } else {
            vec![1; k]
        };
        let auto_pad = n.string_or("auto_pad", "NOTSET")?;
        let pads_attr = n.ints("pads")?;
        let pads = match auto_pad.as_str() {
            "NOTSET" | "" => match pads_attr {
                None => vec![0; 2 * k],
                Some(p) if p.len() == 2 * k => to_usizes(n, "pads", &p)?,
                Some(p) => return Err(n.err(format!("pads {p:?} must have {} entries", 2 * k))),
            },
            "VALID" => vec![0; 2 * k],
            mode @ ("SAME_UPPER" | "SAME_LOWER") => {
                let mut pads = vec![0; 2 * k];
                for i in 0..k {
                    let out = input[i].div_ceil(strides[i]);
                    let extent = (kernel[i] - 1)
                        .saturating_mul(dilations[i])
                        .saturating_add(1);
                    let total = (out.saturating_sub(1))
                        .saturating_mul(strides[i])
                        .saturating_add(extent)
                        .saturating_sub(input[i]);
                    let small = total / 2;
                    let (b, e) = if mode == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    pads[i] = b;
                    pads[i + k] = e;
                }
                pads
            }
            other => return Err(n.err(format!("auto_pad '{other}' is not supported"))),
        };
        Ok(Window {
            kernel,
            strides,
            dilations,
            pads,
        })
    }

    /// The 2-D form (a 1-D window gets H = 1).
    pub fn kernel2(&self) -> [usize; 2] {
        two(&self.kernel, 1)
    }
    pub fn strides2(&self) -> [usize; 2] {
        two(&self.strides, 1)
    }
    pub fn dilations2(&self) -> [usize; 2] {
        two(&self.dilations, 1)
    }
    /// `[top, left, bottom, right]`.
    pub fn pads4(&self) -> [usize; 4] {
        let k = self.kernel.len();
        if k == 1 {
            [0, self.pads[0], 0, self.pads[1]]
        } else {
            [self.pads[0], self.pads[1], self.pads[2], self.pads[3]]
        }
    }
}

fn two(v: &[usize], fill: usize) -> [usize; 2] {
    match v {
        [a] => [fill, *a],
        [a, b] => [*a, *b],
        _ => [fill, fill],
    }
}

/// Number of spatial axes of a conv/pool input: 1 (rank 3) or 2 (rank 4).
pub(crate) fn spatial_rank(n: &Node, shape: &[usize]) -> Result<usize> {
    match shape.len() {
        3 => Ok(1),
        4 => Ok(2),
        5 => Err(n.err("3-D (rank 5) inputs are not supported")),
        r => Err(n.err(format!("input must have rank 3 or 4, got rank {r}"))),
    }
}

/// Reshape a rank-3 `[N, C, L]` value to `[N, C, 1, L]`.
pub(crate) fn lift_1d(imp: &mut Importer, n: &Node, tag: &str, v: Value) -> Result<Value> {
    let s = imp.shape(v)?;
    if s.len() != 3 {
        return Err(n.err(format!("expected a rank-3 operand, got shape {s:?}")));
    }
    imp.reshape(n, tag, v, vec![s[0], s[1], 1, s[2]])
}

/// Reshape a `[N, C, 1, L]` result back to `[N, C, L]`.
pub(crate) fn lower_1d(imp: &mut Importer, n: &Node, v: Value) -> Result<Value> {
    let s = imp.shape(v)?;
    imp.reshape(n, "squeeze", v, vec![s[0], s[1], s[3]])
}

/// The kernel: `kernel_shape` if given (must agree with the weight), else W's spatial dims.
pub(crate) fn kernel_of(n: &Node, w: &[usize]) -> Result<Vec<usize>> {
    let from_w = w.get(2..).unwrap_or_default().to_vec();
    match n.ints("kernel_shape")? {
        None => Ok(from_w),
        Some(k) => {
            let k = to_usizes(n, "kernel_shape", &k)?;
            if k != from_w {
                return Err(n.err(format!(
                    "kernel_shape {k:?} does not match weight shape {w:?}"
                )));
            }
            Ok(k)
        }
    }
}

/// Resolve Conv-style attributes for input `x` (shape) and weight `w` (shape).
pub(crate) fn conv_attrs(n: &Node, x: &[usize], w: &[usize]) -> Result<(Conv2d, usize)> {
    let sp = spatial_rank(n, x)?;
    if w.len() != x.len() {
        return Err(n.err(format!(
            "weight shape {w:?} does not match input shape {x:?}"
        )));
    }
    let kernel = kernel_of(n, w)?;
    let win = Window::read(n, &x[2..], kernel, true)?;
    let group = n.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| n.err(format!("group {group} must be positive")))?;
    Ok((
        Conv2d {
            kernel: win.kernel2(),
            strides: win.strides2(),
            pads: win.pads4(),
            dilations: win.dilations2(),
            group,
        },
        sp,
    ))
}

/// `Conv`.
pub(crate) fn conv(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let w = imp.input(n, 1)?;
    let b = imp.opt_input(n, 2)?;
    let (xs, ws) = (imp.shape(x)?, imp.shape(w)?);
    let (attrs, sp) = conv_attrs(n, &xs, &ws)?;
    emit_conv_like(imp, n, Op::Conv(attrs), x, w, b, sp)
}

/// `ConvTranspose`.
pub(crate) fn conv_transpose(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let w = imp.input(n, 1)?;
    let b = imp.opt_input(n, 2)?;
    let (xs, ws) = (imp.shape(x)?, imp.shape(w)?);
    let sp = spatial_rank(n, &xs)?;
    if ws.len() != xs.len() {
        return Err(n.err(format!(
            "weight shape {ws:?} does not match input shape {xs:?}"
        )));
    }
    let kernel = kernel_of(n, &ws)?;
    let auto_pad = n.string_or("auto_pad", "NOTSET")?;
    let strides = opt_list(n, "strides", sp, 1)?;
    let dilations = opt_list(n, "dilations", sp, 1)?;
    let output_padding = opt_list(n, "output_padding", sp, 0)?;
    let group = n.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| n.err(format!("group {group} must be positive")))?;
    let output_shape = n.ints("output_shape")?;
    let pads_attr = n.ints("pads")?;
    let full = |i: usize| -> usize {
        xs[2 + i]
            .saturating_sub(1)
            .saturating_mul(strides[i])
            .saturating_add(output_padding[i])
            .saturating_add(
                (kernel[i] - 1)
                    .saturating_mul(dilations[i])
                    .saturating_add(1),
            )
    };
    if kernel.contains(&0) {
        return Err(n.err(format!("kernel_shape {kernel:?} must be positive")));
    }
    let mut pads = vec![0usize; 2 * sp];
    let target: Option<Vec<usize>> = match (&output_shape, auto_pad.as_str()) {
        (Some(os), _) => {
            let os = to_usizes(n, "output_shape", os)?;
            // output_shape may list N and C too.
            let os = if os.len() == sp + 2 {
                os[2..].to_vec()
            } else {
                os
            };
            if os.len() != sp {
                return Err(n.err(format!("output_shape {os:?} must have {sp} entries")));
            }
            Some(os)
        }
        (None, "SAME_UPPER" | "SAME_LOWER") => Some(
            (0..sp)
                .map(|i| xs[2 + i].saturating_mul(strides[i]))
                .collect(),
        ),
        (None, "NOTSET" | "" | "VALID") => None,
        (None, other) => return Err(n.err(format!("auto_pad '{other}' is not supported"))),
    };
    match target {
        Some(os) => {
            for i in 0..sp {
                let total = full(i).checked_sub(os[i]).ok_or_else(|| {
                    n.err(format!(
                        "output_shape {os:?} is larger than the full output"
                    ))
                })?;
                let half = total / 2;
                let (b, e) = if auto_pad == "SAME_UPPER" {
                    (half, total - half)
                } else {
                    (total - half, half)
                };
                pads[i] = b;
                pads[i + sp] = e;
            }
        }
        None if auto_pad == "VALID" => {}
        None => {
            if let Some(p) = pads_attr {
                if p.len() != 2 * sp {
                    return Err(n.err(format!("pads {p:?} must have {} entries", 2 * sp)));
                }
                pads = to_usizes(n, "pads", &p)?;
            }
        }
    }
    let win = Window {
        kernel,
        strides,
        dilations,
        pads,
    };
    let attrs = ConvTranspose2d {
        kernel: win.kernel2(),
        strides: win.strides2(),
        pads: win.pads4(),
        dilations: win.dilations2(),
        group,
        output_padding: two(&output_padding, 0),
    };
    emit_conv_like(imp, n, Op::ConvTranspose(attrs), x, w, b, sp)
}

/// Emit a conv-family op on `x, w, [b]`; with one spatial axis (`sp == 1`) the input and weight
/// are lifted to 2-D and the result lowered back, so the IR only has 2-D convolutions.
fn emit_conv_like(
    imp: &mut Importer,
    n: &Node,
    op: Op,
    x: Value,
    w: Value,
    b: Option<Value>,
    sp: usize,
) -> Result<Value> {
    let mut ins = if sp == 1 {
        vec![
            lift_1d(imp, n, "unsqueeze", x)?,
            lift_1d(imp, n, "weight", w)?,
        ]
    } else {
        vec![x, w]
    };
    ins.extend(b);
    let y = imp.emit1(n, "", op, &ins)?;
    if sp == 1 {
        lower_1d(imp, n, y)
    } else {
        Ok(y)
    }
}

/// A per-spatial-axis list attribute with a default.
fn opt_list(n: &Node, name: &str, k: usize, default: usize) -> Result<Vec<usize>> {
    match n.ints(name)? {
        None => Ok(vec![default; k]),
        Some(v) if v.is_empty() => Ok(vec![default; k]),
        Some(v) if v.len() == k => {
            let u = to_usizes(n, name, &v)?;
            if default == 1 && u.contains(&0) {
                return Err(n.err(format!("{name} {v:?} must be positive")));
            }
            Ok(u)
        }
        Some(v) => Err(n.err(format!("{name} {v:?} must have {k} entries"))),
    }
}

/// `BatchNormalization` (inference).
pub(crate) fn batch_norm(imp: &mut Importer, n: &Node) -> Result<Value> {
    let epsilon = n.float_or("epsilon", 1e-5)?;
    n.ignore(&["momentum", "is_test", "consumed_inputs"]);
    if !n.flag("spatial", true)? {
        return Err(n.err("spatial=0 (per-activation statistics) is not supported"));
    }
    if n.flag("training_mode", false)? {
        return Err(n.err("training_mode=1 is not supported (inference only)"));
    }
    for i in 1..n.num_outputs() {
        if imp.output_used(n, i) {
            return Err(n.err(format!(
                "output #{i} (training statistics) is used; only inference mode is supported"
            )));
        }
    }
    let ins = (0..5)
        .map(|i| imp.input(n, i))
        .collect::<Result<Vec<_>>>()?;
    imp.emit1(n, "", Op::BatchNorm { epsilon }, &ins)
}
