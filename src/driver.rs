//! The one place that wires the crates together: model files in and out (frontend, `.lnir`
//! text), the model zoo, and the reference interpreter. Commands in `main.rs` call these.

use anyhow::{anyhow, bail, Context, Result};
use lnc_ir::{DType, Graph, Tensor, TensorType};
use std::path::Path;

/// Model file formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Onnx,
    Lnir,
}

impl Format {
    /// The format of a path from its extension (`.onnx` or `.lnir`, case-insensitive).
    pub fn of(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("onnx") => Ok(Format::Onnx),
            Some("lnir") => Ok(Format::Lnir),
            _ => bail!(
                "unknown model format '{}': expected a .onnx or .lnir file",
                path.display()
            ),
        }
    }
}

/// Load a model from a `.onnx` or `.lnir` file; the graph is verified.
pub fn load_model(path: &Path) -> Result<Graph> {
    let format = Format::of(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let g = match format {
        Format::Onnx => lnc_frontend::load_bytes(&bytes, &lnc_frontend::LoadOptions::default())
            .with_context(|| format!("cannot load ONNX model {}", path.display()))?,
        Format::Lnir => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
            lnc_ir::text::parse(text).map_err(|e| match e {
                lnc_ir::Error::Parse { line, col, msg } => {
                    anyhow!("{}:{line}:{col}: {msg}", path.display())
                }
                e => anyhow::Error::new(e).context(format!("invalid model {}", path.display())),
            })?
        }
    };
    lnc_ir::verify::verify(&g).with_context(|| format!("invalid model {}", path.display()))?;
    Ok(g)
}

/// The file contents of a model in the format of `path`.
pub fn model_bytes(g: &Graph, path: &Path) -> Result<Vec<u8>> {
    Ok(match Format::of(path)? {
        Format::Onnx => {
            lnc_frontend::to_onnx_bytes(g).context("cannot export the model as ONNX")?
        }
        Format::Lnir => lnc_ir::text::print(g, &lnc_ir::text::PrintOptions::default()).into_bytes(),
    })
}

/// Save a model as `.onnx` or `.lnir` (by extension).
pub fn save_model(g: &Graph, path: &Path) -> Result<()> {
    let bytes = model_bytes(g, path)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Names and types of the graph inputs, in order.
pub fn input_types(g: &Graph) -> Vec<(String, TensorType)> {
    g.inputs()
        .iter()
        .map(|&id| {
            let n = g.node(id);
            (n.name.clone(), n.outputs[0].clone())
        })
        .collect()
}

/// Names and types of the graph outputs, in order.
pub fn output_types(g: &Graph) -> Vec<(String, TensorType)> {
    g.outputs()
        .iter()
        .map(|o| (o.name.clone(), g.value_type(o.value).clone()))
        .collect()
}

/// Make a tensor read from a file fit the declared type of a graph input: the shape must be
/// equal; the dtype too, except for IR dtypes NumPy cannot name (sub-byte, bipolar,
/// ternary, fixed point), which accept any integer array whose values are in range.
/// Messages do not name the input; the caller adds that.
pub fn conform_input(ty: &TensorType, t: Tensor) -> Result<Tensor> {
    let got = t.ty();
    let npy_native = matches!(
        ty.dtype,
        DType::F32 | DType::I8 | DType::U8 | DType::I16 | DType::I32 | DType::I64 | DType::Bool
    );
    if got.shape != ty.shape || (t.dtype != ty.dtype && (npy_native || t.dtype.is_float())) {
        bail!("expected {ty}, got {got}");
    }
    if t.dtype == ty.dtype {
        return Ok(t);
    }
    let vals = t.to_i64_vec();
    if let Some(v) = vals.iter().find(|&&v| !ty.dtype.contains(v)) {
        bail!("value {v} is out of range for {}", ty.dtype);
    }
    Tensor::from_int(ty.dtype, &ty.shape, vals).map_err(anyhow::Error::msg)
}

/// Run the reference interpreter; inputs in graph-input order.
pub fn run_model(g: &Graph, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    lnc_ir::interp::run(g, inputs).context("the interpreter failed")
}

/// Build a zoo model.
pub fn build_zoo(name: &str, opts: &lnc_zoo::ZooOptions) -> Result<Graph> {
    let g = lnc_zoo::build(name, opts)?;
    lnc_ir::verify::verify(&g).with_context(|| format!("zoo model '{name}' is invalid"))?;
    Ok(g)
}
