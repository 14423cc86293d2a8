//! A small layer builder over [`Graph`]: convolutions, batch norms, activations, squeeze-excite,
//! channel shuffle, pooling and the classifier head, emitted the way `torch.onnx.export` emits
//! the modules before any optimisation (Conv without bias where torch has none, then a separate
//! BatchNormalization, then the activation).
//!
//! ## Naming
//! Node names are torch module paths (`features.3.conv.0.0`); the parameters of a module are
//! constants named like the state-dict entries (`features.3.conv.0.0.weight`,
//! `features.3.conv.0.1.running_var`); ops that torch performs functionally inside a module's
//! `forward` are named `<module path>.<op>` (`features.3.add`, `stage2.1.transpose`), made
//! unique by [`Graph::fresh_name`] (`stage2.1.reshape_1`).
//!
//! ## Weights and batch-norm statistics
//! Convolution weights are He-normal (`std = sqrt(2 / fan_in)`), Linear weights have
//! `std = 1 / sqrt(fan_in)`, biases are uniform in `±1/sqrt(fan_in)` (torch's default), PReLU
//! slopes `0.25 + 0.05 z`, batch-norm `gamma = 1 + 0.1 z` (clamped to `[0.5, 1.5]`) and
//! `beta = 0.1 z`, plus a shift for batch norms that feed an activation (below).
//!
//! The running statistics are *calibrated analytically*: the builder propagates a per-channel
//! mean and variance for every value, as a standard-normal input would produce them, and every
//! batch norm's `running_mean` / `running_var` are set to the statistics predicted for its
//! input, which is what a calibration pass over data would measure. A batch norm therefore
//! normalises its channels to about `N(beta, gamma^2)` at any depth (a fixed mean 0 / var 1
//! choice lets deep networks' activations vanish or explode). The propagation:
//! - convolutions: exact first and second moments from the actual weights, per border class of
//!   output positions (which taps fall into the zero padding), input channels independent;
//! - activations: Gaussian quadrature of the activation over the predicted input;
//! - max pooling: the maximum of the in-window elements taken as independent (order-statistic
//!   quadrature), through ReLU / ReLU6 taken on their Gaussian input (max commutes with them);
//! - adds, multiplies (squeeze-excite gates), average and global pooling: independence.
//!
//! It costs about one pass over the weights, so a 224x224 model builds in well under a second
//! without interpreting anything. What it cannot see (heavier-than-Gaussian tails, spatial
//! correlation) leaves errors of a few percent per layer. They must not compound: an
//! activation fed by `N(0, 1)` can amplify a relative scale error (SiLU and h-swish do:
//! `d log Var_out / d log Var_in` is 1.10 and 1.16), which let EfficientNet-B0's last batch
//! norms drift to a standard deviation of ~100. Batch norms that feed an activation therefore
//! centre `beta` on [`Act::pre_shift`] (0.5; 1.0 before h-swish), where every activation
//! contracts scale errors (ratio 0.8-0.96), so they settle instead of growing. Measured with
//! the reference interpreter over sizes 32-224, widths 0.25-1.4 and several seeds, every
//! batch-norm output keeps a standard deviation within [0.5, 1.8].

use crate::rng::{self, Rng};
use crate::Error;
use lnc_ir::{BinaryOp, Conv2d, Graph, Op, Pool2d, Tensor, TensorType, UnaryOp, Value};
use std::collections::HashMap;

/// Largest number of parameters (constant elements) a zoo model may have: 2^28 f32 values,
/// 1 GiB. Larger requests (huge widths or class counts) are option errors.
pub const PARAM_BUDGET: usize = 1 << 28;

/// Batch-norm epsilon of torch's `BatchNorm2d` default.
pub const BN_EPS: f32 = 1e-5;

/// Resolved size options a family builder reads.
#[derive(Debug, Clone)]
pub struct Opts {
    /// The width multiplier as the decimal the user wrote (0.35 stays 0.35, not the f32 value).
    pub width: f64,
    pub classes: usize,
}

impl Opts {
    /// `_make_divisible(c * width, divisor)`.
    pub fn ch(&self, c: usize, divisor: usize) -> usize {
        make_divisible(c as f64 * self.width, divisor)
    }
}

/// torchvision's `_make_divisible(v, divisor)`: round to the nearest multiple of `divisor`, at
/// least `divisor`, and never more than 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor.max(1) as f64;
    let mut new_v = (((v + d / 2.0) / d).floor() * d).max(d);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as usize
}

/// The activation functions of the zoo's families.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Relu,
    /// `Clip(0, 6)`, as torch exports `ReLU6`.
    Relu6,
    HardSwish,
    /// `HardSigmoid(alpha = 1/6, beta = 0.5)`, as torch exports `Hardsigmoid`.
    HardSigmoid,
    Sigmoid,
    /// `x * sigmoid(x)`, exported by torch as `Sigmoid` + `Mul`.
    Silu,
}

impl Act {
    /// Centre of the `beta` of a batch norm that feeds this activation.
    pub fn pre_shift(self) -> f64 {
        match self {
            Act::HardSwish => 1.0,
            Act::Relu | Act::Relu6 | Act::Silu => 0.5,
            Act::HardSigmoid | Act::Sigmoid => 0.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Act::HardSigmoid => (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Act::Sigmoid => sigmoid(x),
            Act::Silu => x * sigmoid(x),
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + rng::exp(-x))
}

/// A convolution's hyper-parameters (square kernels, symmetric padding).
#[derive(Debug, Clone)]
pub struct ConvSpec {
    pub out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub dilation: usize,
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    /// Stride 1, "same" padding `(k-1)/2`, no dilation, one group, no bias.
    pub fn new(out: usize, kernel: usize) -> Self {
        ConvSpec {
            out,
            kernel,
            stride: 1,
            pad: kernel.saturating_sub(1) / 2,
            dilation: 1,
            groups: 1,
            bias: false,
        }
    }

    /// A depthwise convolution over `channels` channels.
    pub fn depthwise(channels: usize, kernel: usize) -> Self {
        ConvSpec::new(channels, kernel).groups(channels)
    }

    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }

    pub fn pad(mut self, p: usize) -> Self {
        self.pad = p;
        self
    }

    /// Dilation `d` with the matching "same" padding `(k-1)/2 * d`.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self.pad = self.kernel.saturating_sub(1) / 2 * d;
        self
    }

    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    pub fn bias(mut self) -> Self {
        self.bias = true;
        self
    }
}

/// Predicted per-channel mean and variance of a value for a standard-normal input.
#[derive(Debug, Clone)]
struct Stats {
    mean: Vec<f64>,
    var: Vec<f64>,
}

/// Quadrature for Gaussian expectations: a uniform grid over ±6 standard deviations with
/// normalised Gaussian weights (spectrally accurate for smooth functions, O(h^2) at kinks).
#[derive(Debug)]
struct Quad {
    z: Vec<f64>,
    w: Vec<f64>,
}

impl Quad {
    fn new() -> Quad {
        let z: Vec<f64> = (0..=120).map(|i| -6.0 + 0.1 * i as f64).collect();
        let mut w: Vec<f64> = z.iter().map(|&z| rng::exp(-0.5 * z * z)).collect();
        let s: f64 = w.iter().sum();
        w.iter_mut().for_each(|w| *w /= s);
        Quad { z, w }
    }

    /// Mean and variance of `f(X)` for `X ~ N(mean, var)`.
    fn moments(&self, mean: f64, var: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
        Self::weighted(&self.z, &self.w, mean, var, f)
    }

    /// Mean and variance of `f(max(X_1..X_n))` for `n` independent `X_i ~ N(mean, var)`
    /// (`n` may be fractional): the maximum has density `n φ Φ^(n-1)`.
    fn max_moments(&self, n: f64, mean: f64, var: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
        let mut cdf = 0.0;
        let mut w: Vec<f64> = Vec::with_capacity(self.w.len());
        for &wi in &self.w {
            let phi = cdf + 0.5 * wi;
            cdf += wi;
            w.push(wi * pow(phi, n - 1.0));
        }
        let s: f64 = w.iter().sum();
        if s > 0.0 {
            w.iter_mut().for_each(|v| *v /= s);
        }
        Self::weighted(&self.z, &w, mean, var, f)
    }

    fn weighted(z: &[f64], w: &[f64], mean: f64, var: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
        let s = var.max(0.0).sqrt();
        let (mut m1, mut m2) = (0.0, 0.0);
        for (&z, &w) in z.iter().zip(w) {
            let y = f(mean + s * z);
            m1 += w * y;
            m2 += w * y * y;
        }
        (m1, (m2 - m1 * m1).max(0.0))
    }
}

/// `x^y` for `x > 0` from the deterministic `exp` / `ln`.
fn pow(x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else {
        rng::exp(y * rng::ln(x))
    }
}

/// For each output position along one axis, the set of kernel taps that land inside the input
/// (a bit mask); returns the distinct masks with the fraction of positions that have them.
fn tap_classes(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
) -> Vec<(u64, f64)> {
    let mut classes: Vec<(u64, usize)> = Vec::new();
    for o in 0..output {
        let mut mask = 0u64;
        for a in 0..kernel.min(64) {
            let pos = (o * stride + a * dilation) as i64 - pad as i64;
            if pos >= 0 && pos < input as i64 {
                mask |= 1 << a;
            }
        }
        match classes.iter_mut().find(|c| c.0 == mask) {
            Some(c) => c.1 += 1,
            None => classes.push((mask, 1)),
        }
    }
    classes
        .into_iter()
        .map(|(m, n)| (m, n as f64 / output.max(1) as f64))
        .collect()
}

/// Module names inside a squeeze-excite block.
#[derive(Debug)]
pub struct SeNames {
    pub pool: &'static str,
    pub reduce: &'static str,
    pub act: &'static str,
    pub expand: &'static str,
    pub gate: &'static str,
}

/// torchvision's `SqueezeExcitation`.
pub const SE_TORCHVISION: SeNames = SeNames {
    pool: "avgpool",
    reduce: "fc1",
    act: "activation",
    expand: "fc2",
    gate: "scale_activation",
};

/// timm's `SqueezeExcite`.
pub const SE_TIMM: SeNames = SeNames {
    pool: "pool",
    reduce: "conv_reduce",
    act: "act1",
    expand: "conv_expand",
    gate: "gate",
};

/// A graph under construction with the statistics of its values and its weight budget.
pub struct Net {
    pub g: Graph,
    model: String,
    seed: u64,
    stats: HashMap<Value, Stats>,
    /// For outputs of monotone activations (ReLU, ReLU6): the activation and the Gaussian
    /// statistics of its input (max pooling commutes with them).
    pre_act: HashMap<Value, (Act, Stats)>,
    quad: Quad,
    params: usize,
    input: Option<Value>,
}

impl Net {
    /// A graph named `model` with the input `input: f32[1, 3, S, S]`.
    pub fn new(model: &str, input_size: usize, seed: u64) -> Result<(Net, Value), Error> {
        let mut net = Net {
            g: Graph::new(model),
            model: model.to_string(),
            seed,
            stats: HashMap::new(),
            pre_act: HashMap::new(),
            quad: Quad::new(),
            params: 0,
            input: None,
        };
        let x = net
            .g
            .add_input("input", TensorType::f32(vec![1, 3, input_size, input_size]))?;
        net.stats.insert(
            x,
            Stats {
                mean: vec![0.0; 3],
                var: vec![1.0; 3],
            },
        );
        net.input = Some(x);
        Ok((net, x))
    }

    /// Name the graph output `output` and verify the graph.
    pub fn finish(mut self, out: Value) -> Result<Graph, Error> {
        self.g.add_output("output", out);
        lnc_ir::verify::verify(&self.g)?;
        Ok(self.g)
    }

    pub fn options_error(&self, msg: impl Into<String>) -> Error {
        Error::Options {
            model: self.model.clone(),
            msg: msg.into(),
        }
    }

    fn internal(&self, msg: String) -> Error {
        Error::Ir(lnc_ir::Error::Graph(format!(
            "zoo model '{}': {msg}",
            self.model
        )))
    }

    /// The shape of a value.
    pub fn shape(&self, v: Value) -> Result<Vec<usize>, Error> {
        Ok(self.g.try_value_type(v)?.shape.clone())
    }

    /// The channel count (axis 1) of a value.
    pub fn channels(&self, v: Value) -> Result<usize, Error> {
        let s = self.shape(v)?;
        s.get(1)
            .copied()
            .ok_or_else(|| self.internal(format!("value of shape {s:?} has no channel axis")))
    }

    fn stats(&self, v: Value) -> Result<Stats, Error> {
        self.stats.get(&v).cloned().ok_or_else(|| {
            let name = self.g.node(v.node).name.clone();
            self.internal(format!("no statistics for the output of '{name}'"))
        })
    }

    // ----- parameters -----------------------------------------------------------------------

    /// Count `n` more parameters against [`PARAM_BUDGET`] before allocating them.
    fn reserve(&mut self, n: usize) -> Result<(), Error> {
        match self.params.checked_add(n) {
            Some(t) if t <= PARAM_BUDGET => {
                self.params = t;
                Ok(())
            }
            _ => Err(self.options_error(format!(
                "the model would have more than {PARAM_BUDGET} parameters; reduce the width or the number of classes"
            ))),
        }
    }

    fn rng(&self, name: &str) -> Rng {
        Rng::for_name(self.seed, name)
    }

    /// `n` values `N(0, std^2)` for the tensor `name`.
    fn normal(&mut self, name: &str, n: usize, std: f64) -> Result<Vec<f32>, Error> {
        self.reserve(n)?;
        let mut r = self.rng(name);
        Ok((0..n).map(|_| (r.normal() * std) as f32).collect())
    }

    /// `n` values uniform in `±bound` for the tensor `name`.
    fn uniform(&mut self, name: &str, n: usize, bound: f64) -> Result<Vec<f32>, Error> {
        self.reserve(n)?;
        let mut r = self.rng(name);
        Ok((0..n).map(|_| (r.symmetric() * bound) as f32).collect())
    }

    /// A constant node `name` holding `values` of the given shape.
    fn constant(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> Result<Value, Error> {
        let t = Tensor::from_f32(shape, values).map_err(lnc_ir::Error::Tensor)?;
        Ok(self.g.add_const(name, t))
    }

    // ----- layers ---------------------------------------------------------------------------

    /// `Conv` named `name` with weight `name.weight` (and `name.bias`).
    pub fn conv(&mut self, name: &str, x: Value, c: &ConvSpec) -> Result<Value, Error> {
        let xs = self.shape(x)?;
        let st = self.stats(x)?;
        if xs.len() != 4
            || c.groups == 0
            || c.kernel == 0
            || xs[1] % c.groups != 0
            || c.out % c.groups != 0
        {
            return Err(self.internal(format!(
                "conv '{name}': {} -> {} channels with {} groups on input {xs:?}",
                xs.get(1).copied().unwrap_or(0),
                c.out,
                c.groups
            )));
        }
        let (cin, h, w) = (xs[1], xs[2], xs[3]);
        let cpg = cin / c.groups;
        let k = c.kernel;
        let fan_in = cpg * k * k;
        let wshape = [c.out, cpg, k, k];
        let weight = self.normal(
            &format!("{name}.weight"),
            c.out * fan_in,
            (2.0 / fan_in as f64).sqrt(),
        )?;
        let bias = if c.bias {
            Some(self.uniform(&format!("{name}.bias"), c.out, 1.0 / (fan_in as f64).sqrt())?)
        } else {
            None
        };
        let wv = self.constant(&format!("{name}.weight"), &wshape, weight.clone())?;
        let mut inputs = vec![x, wv];
        if let Some(b) = &bias {
            inputs.push(self.constant(&format!("{name}.bias"), &[c.out], b.clone())?);
        }
        let op = Op::Conv(Conv2d {
            kernel: [k, k],
            strides: [c.stride, c.stride],
            pads: [c.pad; 4],
            dilations: [c.dilation, c.dilation],
            group: c.groups,
        });
        let y = self.g.add(name, op, &inputs)?;
        let ys = self.shape(y)?;
        // Border classes: the kernel taps inside the input, and the fraction of output
        // positions that see exactly those taps.
        let rows = tap_classes(h, ys[2], k, c.stride, c.pad, c.dilation);
        let cols = tap_classes(w, ys[3], k, c.stride, c.pad, c.dilation);
        let mut classes: Vec<(Vec<usize>, f64)> = Vec::with_capacity(rows.len() * cols.len());
        for &(rm, pr) in &rows {
            for &(cm, pc) in &cols {
                let taps = (0..k * k)
                    .filter(|t| rm >> (t / k) & 1 == 1 && cm >> (t % k) & 1 == 1)
                    .collect();
                classes.push((taps, pr * pc));
            }
        }
        let mpg = c.out / c.groups;
        let mut out = Stats {
            mean: vec![0.0; c.out],
            var: vec![0.0; c.out],
        };
        for m in 0..c.out {
            let first = (m / mpg) * cpg;
            let b = bias.as_ref().map_or(0.0, |b| b[m] as f64);
            let (mut mean, mut m2) = (0.0, 0.0);
            for (taps, p) in &classes {
                let (mut mu, mut var) = (b, 0.0);
                for cl in 0..cpg {
                    let wk = &weight[(m * cpg + cl) * k * k..(m * cpg + cl + 1) * k * k];
                    let (mut s1, mut s2) = (0.0, 0.0);
                    for &t in taps {
                        let wv = wk[t] as f64;
                        s1 += wv;
                        s2 += wv * wv;
                    }
                    mu += s1 * st.mean[first + cl];
                    var += s2 * st.var[first + cl];
                }
                mean += p * mu;
                m2 += p * (var + mu * mu);
            }
            out.mean[m] = mean;
            out.var[m] = (m2 - mean * mean).max(0.0);
        }
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `BatchNormalization` named `name` with `name.{weight,bias,running_mean,running_var}`;
    /// the running statistics are the predicted statistics of `x`.
    pub fn bn(&mut self, name: &str, x: Value, eps: f32) -> Result<Value, Error> {
        self.bn_shifted(name, x, eps, 0.0)
    }

    /// Batch norm `bn_name` followed by the activation `act_name`: the batch norm's `beta`
    /// is centred on [`Act::pre_shift`] instead of 0.
    pub fn bn_act(
        &mut self,
        bn_name: &str,
        act_name: &str,
        x: Value,
        act: Act,
        eps: f32,
    ) -> Result<Value, Error> {
        let y = self.bn_shifted(bn_name, x, eps, act.pre_shift())?;
        self.act(act_name, y, act)
    }

    /// Batch norm `bn_name` followed by PReLU `act_name` (beta centred on 0.5).
    pub fn bn_prelu(
        &mut self,
        bn_name: &str,
        act_name: &str,
        x: Value,
        eps: f32,
    ) -> Result<Value, Error> {
        let y = self.bn_shifted(bn_name, x, eps, Act::Relu.pre_shift())?;
        self.prelu(act_name, y)
    }

    fn bn_shifted(&mut self, name: &str, x: Value, eps: f32, shift: f64) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let c = st.mean.len();
        let gamma: Vec<f32> = self
            .normal(&format!("{name}.weight"), c, 0.1)?
            .into_iter()
            .map(|z| (1.0 + z).clamp(0.5, 1.5))
            .collect();
        let beta: Vec<f32> = self
            .normal(&format!("{name}.bias"), c, 0.1)?
            .into_iter()
            .map(|z| (z as f64 + shift) as f32)
            .collect();
        self.reserve(2 * c)?;
        let rmean: Vec<f32> = st.mean.iter().map(|&m| m as f32).collect();
        let rvar: Vec<f32> = st.var.iter().map(|&v| v.max(1e-4) as f32).collect();
        let mut out = Stats {
            mean: vec![0.0; c],
            var: vec![0.0; c],
        };
        for i in 0..c {
            let inv = gamma[i] as f64 / (rvar[i] as f64 + eps as f64).sqrt();
            out.mean[i] = (st.mean[i] - rmean[i] as f64) * inv + beta[i] as f64;
            out.var[i] = st.var[i] * inv * inv;
        }
        let mut inputs = vec![x];
        for (suffix, v) in [
            ("weight", gamma),
            ("bias", beta),
            ("running_mean", rmean),
            ("running_var", rvar),
        ] {
            inputs.push(self.constant(&format!("{name}.{suffix}"), &[c], v)?);
        }
        let y = self.g.add(name, Op::BatchNorm { epsilon: eps }, &inputs)?;
        self.stats.insert(y, out);
        Ok(y)
    }

    /// An activation node named `name` (SiLU: `name.sigmoid` then the `Mul` named `name`).
    pub fn act(&mut self, name: &str, x: Value, act: Act) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let y = match act {
            Act::Relu => self.g.add(name, Op::Unary(UnaryOp::Relu), &[x])?,
            Act::Relu6 => self.g.add(name, Op::Clip { min: 0.0, max: 6.0 }, &[x])?,
            Act::HardSwish => self.g.add(name, Op::Unary(UnaryOp::HardSwish), &[x])?,
            Act::HardSigmoid => self.g.add(
                name,
                Op::HardSigmoid {
                    alpha: 1.0 / 6.0,
                    beta: 0.5,
                },
                &[x],
            )?,
            Act::Sigmoid => self.g.add(name, Op::Unary(UnaryOp::Sigmoid), &[x])?,
            Act::Silu => {
                let s = self.g.add(
                    &format!("{name}.sigmoid"),
                    Op::Unary(UnaryOp::Sigmoid),
                    &[x],
                )?;
                let sst = self.map_stats(&st, |q, m, v| q.moments(m, v, sigmoid));
                self.stats.insert(s, sst);
                self.g.add(name, Op::Binary(BinaryOp::Mul), &[x, s])?
            }
        };
        let out = self.map_stats(&st, |q, m, v| q.moments(m, v, |t| act.eval(t)));
        self.stats.insert(y, out);
        if matches!(act, Act::Relu | Act::Relu6) {
            self.pre_act.insert(y, (act, st));
        }
        Ok(y)
    }

    fn map_stats(&self, st: &Stats, f: impl Fn(&Quad, f64, f64) -> (f64, f64)) -> Stats {
        let (mean, var) = st
            .mean
            .iter()
            .zip(&st.var)
            .map(|(&m, &v)| f(&self.quad, m, v))
            .unzip();
        Stats { mean, var }
    }

    /// `PRelu` named `name` with a per-channel slope `name.weight` of shape `[C, 1, 1]` (the
    /// shape torch exports so that the slope broadcasts over NCHW).
    pub fn prelu(&mut self, name: &str, x: Value) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let c = st.mean.len();
        let slope: Vec<f32> = self
            .normal(&format!("{name}.weight"), c, 0.05)?
            .into_iter()
            .map(|z| (0.25 + z).clamp(0.05, 0.5))
            .collect();
        let (mean, var) = slope
            .iter()
            .zip(st.mean.iter().zip(&st.var))
            .map(|(&a, (&m, &v))| {
                self.quad
                    .moments(m, v, |t| if t > 0.0 { t } else { a as f64 * t })
            })
            .unzip();
        let out = Stats { mean, var };
        let s = self.constant(&format!("{name}.weight"), &[c, 1, 1], slope)?;
        let y = self.g.add(name, Op::PRelu, &[x, s])?;
        self.stats.insert(y, out);
        Ok(y)
    }

    /// Elementwise `a + b` (same shapes).
    pub fn add(&mut self, name: &str, a: Value, b: Value) -> Result<Value, Error> {
        let (sa, sb) = (self.stats(a)?, self.stats(b)?);
        let y = self.g.add(name, Op::Binary(BinaryOp::Add), &[a, b])?;
        let out = Stats {
            mean: sa.mean.iter().zip(&sb.mean).map(|(x, y)| x + y).collect(),
            var: sa.var.iter().zip(&sb.var).map(|(x, y)| x + y).collect(),
        };
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `a * b` where one side may be a per-channel `[N, C, 1, 1]` gate.
    pub fn mul(&mut self, name: &str, a: Value, b: Value) -> Result<Value, Error> {
        let (sa, sb) = (self.stats(a)?, self.stats(b)?);
        let y = self.g.add(name, Op::Binary(BinaryOp::Mul), &[a, b])?;
        let mut out = Stats {
            mean: vec![0.0; sa.mean.len()],
            var: vec![0.0; sa.mean.len()],
        };
        for i in 0..sa.mean.len() {
            let (ma, va, mb, vb) = (sa.mean[i], sa.var[i], sb.mean[i], sb.var[i]);
            out.mean[i] = ma * mb;
            out.var[i] = ((va + ma * ma) * (vb + mb * mb) - ma * ma * mb * mb).max(0.0);
        }
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `Concat` on the channel axis.
    pub fn concat(&mut self, name: &str, xs: &[Value]) -> Result<Value, Error> {
        let mut out = Stats {
            mean: Vec::new(),
            var: Vec::new(),
        };
        for &x in xs {
            let s = self.stats(x)?;
            out.mean.extend(s.mean);
            out.var.extend(s.var);
        }
        let y = self.g.add(name, Op::Concat { axis: 1 }, xs)?;
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `Split` on the channel axis into parts of the given sizes.
    pub fn split(&mut self, name: &str, x: Value, sizes: &[usize]) -> Result<Vec<Value>, Error> {
        let st = self.stats(x)?;
        let node = self.g.add_node(
            name,
            Op::Split {
                axis: 1,
                sizes: sizes.to_vec(),
            },
            &[x],
        )?;
        let mut start = 0;
        let mut outs = Vec::with_capacity(sizes.len());
        for (port, &n) in sizes.iter().enumerate() {
            let v = Value {
                node,
                port: port as u16,
            };
            let part = Stats {
                mean: st.mean[start..start + n].to_vec(),
                var: st.var[start..start + n].to_vec(),
            };
            self.stats.insert(v, part);
            start += n;
            outs.push(v);
        }
        Ok(outs)
    }

    /// Channel shuffle as torch exports it: `Reshape [N, g, C/g, H, W]` → `Transpose
    /// [0, 2, 1, 3, 4]` → `Reshape [N, C, H, W]`, named `prefix.reshape`, `prefix.transpose`,
    /// `prefix.reshape_1`.
    pub fn channel_shuffle(
        &mut self,
        prefix: &str,
        x: Value,
        groups: usize,
    ) -> Result<Value, Error> {
        let s = self.shape(x)?;
        let st = self.stats(x)?;
        if s.len() != 4 || groups == 0 || s[1] % groups != 0 {
            return Err(self.internal(format!("cannot shuffle {s:?} in {groups} groups")));
        }
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        let k = c / groups;
        let r = self.g.add(
            &format!("{prefix}.reshape"),
            Op::Reshape {
                shape: vec![n, groups, k, h, w],
            },
            &[x],
        )?;
        let t = self.g.add(
            &format!("{prefix}.transpose"),
            Op::Transpose {
                perm: vec![0, 2, 1, 3, 4],
            },
            &[r],
        )?;
        let y = self.g.add(
            &format!("{prefix}.reshape"),
            Op::Reshape {
                shape: vec![n, c, h, w],
            },
            &[t],
        )?;
        let mut out = Stats {
            mean: vec![0.0; c],
            var: vec![0.0; c],
        };
        for i in 0..k {
            for j in 0..groups {
                out.mean[i * groups + j] = st.mean[j * k + i];
                out.var[i * groups + j] = st.var[j * k + i];
            }
        }
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `MaxPool` with a square window.
    pub fn max_pool(
        &mut self,
        name: &str,
        x: Value,
        kernel: usize,
        stride: usize,
        pad: usize,
        ceil_mode: bool,
    ) -> Result<Value, Error> {
        let s = self.shape(x)?;
        let pool = Pool2d {
            kernel: [kernel, kernel],
            strides: [stride, stride],
            pads: [pad; 4],
            dilations: [1, 1],
            ceil_mode,
        };
        let y = self.g.add(name, Op::MaxPool(pool), &[x])?;
        let ys = self.shape(y)?;
        // The maximum of the in-bounds window elements, taken as independent; through a
        // monotone activation the maximum is taken of its Gaussian input.
        let taps = |i, o| {
            tap_classes(i, o, kernel, stride, pad, 1)
                .iter()
                .map(|&(m, p)| p * m.count_ones() as f64)
                .sum::<f64>()
        };
        let n = (taps(s[2], ys[2]) * taps(s[3], ys[3])).max(1.0);
        let (act, st) = match self.pre_act.get(&x) {
            Some((a, st)) => (Some(*a), st.clone()),
            None => (None, self.stats(x)?),
        };
        let out = self.map_stats(&st, |q, m, v| {
            q.max_moments(n, m, v, |t| act.map_or(t, |a| a.eval(t)))
        });
        self.stats.insert(y, out);
        if let Some(a) = act {
            let pre = self.map_stats(&st, |q, m, v| q.max_moments(n, m, v, |t| t));
            self.pre_act.insert(y, (a, pre));
        }
        Ok(y)
    }

    /// `AveragePool` with a square window, `count_include_pad` as torch's default.
    pub fn avg_pool(
        &mut self,
        name: &str,
        x: Value,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let s = self.shape(x)?;
        let pool = Pool2d {
            kernel: [kernel, kernel],
            strides: [stride, stride],
            pads: [pad; 4],
            dilations: [1, 1],
            ceil_mode: false,
        };
        let y = self.g.add(
            name,
            Op::AveragePool {
                pool,
                count_include_pad: true,
            },
            &[x],
        )?;
        let ys = self.shape(y)?;
        // Average fraction of the window inside the input; the graph input is i.i.d., features
        // are spatially correlated (correlation ~0.3 between neighbours).
        let frac = |i, o| {
            tap_classes(i, o, kernel, stride, pad, 1)
                .iter()
                .map(|&(m, p)| p * m.count_ones() as f64 / kernel as f64)
                .sum::<f64>()
        };
        let f = frac(s[2], ys[2]) * frac(s[3], ys[3]);
        let rho = if Some(x) == self.input { 0.0 } else { 0.3 };
        let n = (kernel * kernel) as f64;
        let out = Stats {
            mean: st.mean.iter().map(|m| m * f).collect(),
            var: st
                .var
                .iter()
                .map(|v| v * (rho * f * f + (1.0 - rho) * f / n))
                .collect(),
        };
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `GlobalAveragePool`.
    pub fn gap(&mut self, name: &str, x: Value) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let s = self.shape(x)?;
        let hw = s.iter().skip(2).product::<usize>().max(1) as f64;
        let y = self.g.add(name, Op::GlobalAveragePool, &[x])?;
        let out = Stats {
            mean: st.mean,
            var: st
                .var
                .iter()
                .map(|v| v * (1.0 / hw + 0.02).min(1.0))
                .collect(),
        };
        self.stats.insert(y, out);
        Ok(y)
    }

    /// `Reshape` of `[N, C, 1, 1]` to `[N, C]` (torch's `flatten(x, 1)`).
    pub fn flatten(&mut self, name: &str, x: Value) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let s = self.shape(x)?;
        let n = s.first().copied().unwrap_or(1);
        let rest = s.iter().skip(1).product();
        let y = self.g.add(
            name,
            Op::Reshape {
                shape: vec![n, rest],
            },
            &[x],
        )?;
        self.stats.insert(y, st);
        Ok(y)
    }

    /// `Gemm(x, W, b)` with `transB = 1`, as torch exports `Linear(C, out)`.
    pub fn linear(&mut self, name: &str, x: Value, out: usize) -> Result<Value, Error> {
        let st = self.stats(x)?;
        let cin = self.channels(x)?;
        let std = 1.0 / (cin as f64).sqrt();
        let weight = self.normal(&format!("{name}.weight"), out * cin, std)?;
        let bias = self.uniform(&format!("{name}.bias"), out, std)?;
        let mut os = Stats {
            mean: vec![0.0; out],
            var: vec![0.0; out],
        };
        for o in 0..out {
            let row = &weight[o * cin..(o + 1) * cin];
            os.mean[o] = bias[o] as f64
                + row
                    .iter()
                    .zip(&st.mean)
                    .map(|(&w, m)| w as f64 * m)
                    .sum::<f64>();
            os.var[o] = row
                .iter()
                .zip(&st.var)
                .map(|(&w, v)| w as f64 * w as f64 * v)
                .sum();
        }
        let w = self.constant(&format!("{name}.weight"), &[out, cin], weight)?;
        let b = self.constant(&format!("{name}.bias"), &[out], bias)?;
        let op = Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        };
        let y = self.g.add(name, op, &[x, w, b])?;
        self.stats.insert(y, os);
        Ok(y)
    }

    // ----- composite blocks -----------------------------------------------------------------

    /// torchvision's `Conv2dNormActivation`: `prefix.0` conv, `prefix.1` batch norm,
    /// `prefix.2` activation (if any).
    pub fn conv_bn_act(
        &mut self,
        prefix: &str,
        x: Value,
        spec: &ConvSpec,
        act: Option<Act>,
        eps: f32,
    ) -> Result<Value, Error> {
        let y = self.conv(&format!("{prefix}.0"), x, spec)?;
        match act {
            Some(a) => self.bn_act(&format!("{prefix}.1"), &format!("{prefix}.2"), y, a, eps),
            None => self.bn(&format!("{prefix}.1"), y, eps),
        }
    }

    /// Squeeze-and-excitation: global average pool → 1x1 conv with bias to `squeeze` channels
    /// → `act` → 1x1 conv with bias back → `gate` → `scale * x`, named `prefix.<names[i]>`.
    pub fn squeeze_excite(
        &mut self,
        prefix: &str,
        x: Value,
        squeeze: usize,
        (act, gate): (Act, Act),
        names: &SeNames,
    ) -> Result<Value, Error> {
        let c = self.channels(x)?;
        let s = self.gap(&format!("{prefix}.{}", names.pool), x)?;
        let s = self.conv(
            &format!("{prefix}.{}", names.reduce),
            s,
            &ConvSpec::new(squeeze, 1).bias(),
        )?;
        let s = self.act(&format!("{prefix}.{}", names.act), s, act)?;
        let s = self.conv(
            &format!("{prefix}.{}", names.expand),
            s,
            &ConvSpec::new(c, 1).bias(),
        )?;
        let s = self.act(&format!("{prefix}.{}", names.gate), s, gate)?;
        self.mul(&format!("{prefix}.mul"), s, x)
    }

    /// The classifier head torch exports for `avgpool → flatten → Linear`:
    /// `GlobalAveragePool` (`pool`) → `Reshape [N, C]` (`flatten`) → `Gemm` (`fc`).
    pub fn classifier(
        &mut self,
        pool: &str,
        fc: &str,
        x: Value,
        classes: usize,
    ) -> Result<Value, Error> {
        let y = self.gap(pool, x)?;
        let y = self.flatten("flatten", y)?;
        self.linear(fc, y, classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        assert_eq!(make_divisible(32.0 * 0.25, 8), 8);
        assert_eq!(make_divisible(16.0 * 0.25, 8), 8);
        assert_eq!(make_divisible(24.0 * 0.75, 8), 24);
        assert_eq!(make_divisible(1280.0 * 1.4, 8), 1792);
        assert_eq!(make_divisible(96.0 * 0.35, 8), 32);
        assert_eq!(make_divisible(57.0, 8), 56);
        assert_eq!(make_divisible(19.0, 8), 24);
        // Never more than 10% below: 9.5 rounds to 8, which is too far, so 16.
        assert_eq!(make_divisible(9.5, 8), 16);
        assert_eq!(make_divisible(29.0, 12), 36);
    }

    #[test]
    fn tap_classes_cover_the_border() {
        // 3x3, pad 1 on 4 rows: top row misses tap 0, bottom row misses tap 2.
        let c = tap_classes(4, 4, 3, 1, 1, 1);
        assert_eq!(c, vec![(0b110, 0.25), (0b111, 0.5), (0b011, 0.25)]);
        // 1x1 input: only the centre tap.
        assert_eq!(tap_classes(1, 1, 3, 1, 1, 1), vec![(0b010, 1.0)]);
    }

    #[test]
    fn the_parameter_budget_is_an_options_error() {
        let (mut net, _) = Net::new("m", 8, 0).unwrap();
        net.reserve(PARAM_BUDGET - 10).unwrap();
        let e = net.reserve(11).unwrap_err();
        assert!(matches!(e, Error::Options { .. }), "{e}");
        assert!(e.to_string().contains("parameters"), "{e}");
    }

    #[test]
    fn relu_moments_match_the_closed_form() {
        let q = Quad::new();
        let (m, v) = q.moments(0.0, 1.0, |x| x.max(0.0));
        // E[relu(Z)] = 1/sqrt(2 pi), E[relu(Z)^2] = 1/2.
        let e = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        assert!((m - e).abs() < 1e-3, "{m}");
        assert!((v - (0.5 - e * e)).abs() < 1e-3, "{v}");
    }
}
