//! Model zoo: seeded generators for the lightweight-network families, built directly as
//! [`lnc_ir::Graph`]s the way `torch.onnx.export` emits the canonical (torchvision, where it
//! exists) architectures before any optimisation: Conv (without bias where torch has none) →
//! a separate BatchNormalization → activation, so the optimiser has real work to do.
//!
//! ```
//! use lnc_zoo::{build, ZooOptions};
//! let tiny = ZooOptions { input_size: 32, width: 0.25, classes: 10, seed: 7 };
//! let g = build("mobilenet_v2", &tiny).unwrap();
//! assert_eq!(g.outputs()[0].name, "output");
//! assert_eq!(g.value_type(g.outputs()[0].value).shape, vec![1, 10]);
//! ```
//!
//! Every model has one input `input: f32[1, 3, S, S]` and one output `output`: logits
//! `[1, classes]` from `GlobalAveragePool → Reshape → Gemm(transB = 1)`, except SqueezeNet
//! (its canonical conv classifier: `conv 1x1 → ReLU → GlobalAveragePool → Reshape`) and ESPNet
//! (segmentation logits `[1, classes, ceil(S/8), ceil(S/8)]`).
//!
//! Options: `width` scales channels the way each family does (`_make_divisible(c * width, 8)`
//! for the MobileNets, MnasNet, EfficientNet and the others; ShuffleNet V1 and V2 have their
//! own rules, see their modules) and must be in `(0, 4]`; `classes` in `1..=100_000`;
//! `input_size` from the model's minimum ([`min_input_size`]: the total stride, 32 for most,
//! 16 for `xception_entry`, 8 for `espnet`, 29 / 25 for `squeezenet1_0` / `squeezenet1_1`
//! whose stems and ceil-mode pools are unpadded) up to 1024; models with more than
//! [`PARAM_BUDGET`] parameters are refused. The tiny variant `input_size 32, width 0.25` works
//! for every model. Violations are [`Error::Options`].
//!
//! Weights are deterministic for a seed, byte-identical on every platform (see `rng`), and
//! the batch-norm statistics are calibrated analytically so that activations neither vanish
//! nor explode at any depth (see `builder`).
//!
//! Layout: `builder` (the layer builder over `Graph`), `rng` (the PRNG), one module per
//! family.

mod builder;
mod efficientnet;
mod espnet;
mod mnasnet;
mod mobilenet;
mod rng;
mod shufflenet;
mod squeezenet;
mod xception;

use builder::{Net, Opts};
use lnc_ir::{Graph, Value};

pub use builder::{make_divisible, PARAM_BUDGET};

/// Largest accepted `input_size`.
pub const MAX_INPUT_SIZE: usize = 1024;
/// Largest accepted width multiplier.
pub const MAX_WIDTH: f32 = 4.0;
/// Largest accepted number of classes.
pub const MAX_CLASSES: usize = 100_000;

/// Size knobs shared by every family.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooOptions {
    /// Square input resolution (default 224).
    pub input_size: usize,
    /// Width multiplier (default 1.0).
    pub width: f32,
    /// Number of classes (default 1000).
    pub classes: usize,
    /// Seed for weights and BN statistics.
    pub seed: u64,
}

impl Default for ZooOptions {
    fn default() -> Self {
        ZooOptions {
            input_size: 224,
            width: 1.0,
            classes: 1000,
            seed: 0,
        }
    }
}

/// Errors from the zoo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown model '{0}' (see `lnc zoo --list`)")]
    Unknown(String),
    #[error("model '{model}': {msg}")]
    Options { model: String, msg: String },
    #[error(transparent)]
    Ir(#[from] lnc_ir::Error),
}

type BuildFn = fn(&mut Net, Value, &Opts) -> Result<Value, Error>;

/// A registered model.
struct Model {
    name: &'static str,
    about: &'static str,
    /// Smallest `input_size`: the network's total stride (one output pixel per stride cell),
    /// or more where unpadded layers need it (SqueezeNet's 7x7 / 3x3 stems and ceil-mode pools).
    min_input: usize,
    build: BuildFn,
}

const MODELS: &[Model] = &[
    Model {
        name: "mobilenet_v1",
        about: "MobileNet V1: depthwise-separable convolutions, BN, ReLU",
        min_input: 32,
        build: mobilenet::mobilenet_v1,
    },
    Model {
        name: "mobilenet_v2",
        about: "MobileNet V2 (torchvision): inverted residuals, linear bottlenecks, ReLU6",
        min_input: 32,
        build: mobilenet::mobilenet_v2,
    },
    Model {
        name: "mobilenet_v3_small",
        about: "MobileNet V3 small (torchvision): h-swish, squeeze-excite with hard-sigmoid gate",
        min_input: 32,
        build: mobilenet::mobilenet_v3_small,
    },
    Model {
        name: "mobilenet_v3_large",
        about: "MobileNet V3 large (torchvision): h-swish, squeeze-excite with hard-sigmoid gate",
        min_input: 32,
        build: mobilenet::mobilenet_v3_large,
    },
    Model {
        name: "shufflenet_v1",
        about: "ShuffleNet V1, g=3: group 1x1 convolutions, channel shuffle, avg-pool shortcuts",
        min_input: 32,
        build: shufflenet::shufflenet_v1,
    },
    Model {
        name: "shufflenet_v2_x1_0",
        about: "ShuffleNet V2 (torchvision): channel split, concat, channel shuffle",
        min_input: 32,
        build: shufflenet::shufflenet_v2,
    },
    Model {
        name: "squeezenet1_0",
        about: "SqueezeNet 1.0 (torchvision): fire modules, ceil-mode max pools, conv classifier",
        min_input: 29,
        build: squeezenet::squeezenet1_0,
    },
    Model {
        name: "squeezenet1_1",
        about: "SqueezeNet 1.1 (torchvision): fire modules, ceil-mode max pools, conv classifier",
        min_input: 25,
        build: squeezenet::squeezenet1_1,
    },
    Model {
        name: "xception_entry",
        about: "Xception entry flow: separable convolutions, strided 1x1 residual shortcuts",
        min_input: 16,
        build: xception::xception_entry,
    },
    Model {
        name: "espnet",
        about: "ESPNet-C encoder: dilated ESP pyramids, PReLU, 1/8-resolution segmentation logits",
        min_input: 8,
        build: espnet::espnet,
    },
    Model {
        name: "mnasnet1_0",
        about: "MnasNet 1.0 (torchvision, the B1 search result): MBConv 3x3/5x5, ReLU",
        min_input: 32,
        build: mnasnet::mnasnet1_0,
    },
    Model {
        name: "mnasnet_a1",
        about: "MnasNet-A1: MBConv 3x3/5x5, squeeze-excite in three stages, ReLU",
        min_input: 32,
        build: mnasnet::mnasnet_a1,
    },
    Model {
        name: "efficientnet_b0",
        about: "EfficientNet-B0 (torchvision): MBConv with SiLU and squeeze-excite",
        min_input: 32,
        build: efficientnet::efficientnet_b0,
    },
];

/// Names and one-line descriptions of the available models.
pub fn list() -> Vec<(&'static str, &'static str)> {
    MODELS.iter().map(|m| (m.name, m.about)).collect()
}

/// The smallest `input_size` a model accepts (`None` for an unknown model).
pub fn min_input_size(name: &str) -> Option<usize> {
    MODELS.iter().find(|m| m.name == name).map(|m| m.min_input)
}

/// Build a model by name.
pub fn build(name: &str, opts: &ZooOptions) -> Result<Graph, Error> {
    let model = MODELS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::Unknown(name.to_string()))?;
    let o = check(model, opts)?;
    let (mut net, x) = Net::new(model.name, opts.input_size, opts.seed)?;
    let y = (model.build)(&mut net, x, &o)?;
    net.finish(y)
}

/// Validate the options for a model and resolve them.
fn check(model: &Model, opts: &ZooOptions) -> Result<Opts, Error> {
    let err = |msg: String| Error::Options {
        model: model.name.to_string(),
        msg,
    };
    let w = opts.width;
    if !w.is_finite() || w <= 0.0 {
        return Err(err(format!("width must be a positive number, got {w}")));
    }
    if w > MAX_WIDTH {
        return Err(err(format!(
            "width {w} is larger than the supported maximum {MAX_WIDTH}"
        )));
    }
    if opts.classes == 0 || opts.classes > MAX_CLASSES {
        return Err(err(format!(
            "classes must be between 1 and {MAX_CLASSES}, got {}",
            opts.classes
        )));
    }
    if opts.input_size < model.min_input {
        return Err(err(format!(
            "input size {} is too small for the network's downsampling (minimum {})",
            opts.input_size, model.min_input
        )));
    }
    if opts.input_size > MAX_INPUT_SIZE {
        return Err(err(format!(
            "input size {} is larger than the supported maximum {MAX_INPUT_SIZE}",
            opts.input_size
        )));
    }
    // The multiplier as the decimal the user wrote: 0.35f32 is 0.3499999940..., and channel
    // rounding must see 0.35 as torchvision's Python float does.
    let width = w.to_string().parse::<f64>().unwrap_or(w as f64);
    Ok(Opts {
        width,
        classes: opts.classes,
    })
}
