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

/// ONNX import options from the command line (`--input-shape`), set once by `main`.
static LOAD_OPTIONS: std::sync::OnceLock<lnc_frontend::LoadOptions> = std::sync::OnceLock::new();

/// Parse `--input-shape NAME=D0,D1,..` arguments into the import options of this run.
pub fn set_input_shapes(args: &[String]) -> Result<()> {
    let mut opts = lnc_frontend::LoadOptions::default();
    for a in args {
        let (name, dims) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("--input-shape '{a}': expected NAME=D0,D1,..."))?;
        let dims: Vec<usize> = dims
            .split(',')
            .map(|d| d.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                anyhow!("--input-shape '{a}': dimensions must be non-negative integers")
            })?;
        if opts.input_shapes.insert(name.to_string(), dims).is_some() {
            bail!("--input-shape given twice for '{name}'");
        }
    }
    LOAD_OPTIONS
        .set(opts)
        .map_err(|_| anyhow!("input shapes set twice"))
}

/// Load a model from a `.onnx` or `.lnir` file; the graph is verified.
pub fn load_model(path: &Path) -> Result<Graph> {
    let format = Format::of(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let g = match format {
        Format::Onnx => {
            lnc_frontend::load_bytes(&bytes, LOAD_OPTIONS.get_or_init(Default::default))
                .with_context(|| format!("cannot load ONNX model {}", path.display()))?
        }
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

/// Options of [`optimize`].
#[derive(Debug, Clone, Default)]
pub struct OptOptions {
    /// `None`: the pipeline's target, else the CPU.
    pub target: Option<lnc_passes::Target>,
    /// Comma-separated passes and pipelines.
    pub passes: String,
    pub exclude: Vec<String>,
    pub explain: bool,
    /// A pass name or `all`: print the graph (constants elided) to stderr after it.
    pub dump_after: Option<String>,
    pub eqsat: lnc_passes::EqsatOptions,
}

/// The optimised graph and what every pass did.
pub struct OptReport {
    pub graph: Graph,
    pub target: lnc_passes::Target,
    pub records: Vec<lnc_passes::PassRecord>,
    pub total: std::time::Duration,
}

impl OptReport {
    /// `--explain`: one line per node a rule made, `node (op): rule, rule, ...`.
    pub fn explain_text(&self) -> String {
        let mut s = String::new();
        for r in &self.records {
            for e in &r.outcome.explain {
                s.push_str(&format!("{} ({}): {}\n", e.node, e.op, e.rules.join(", ")));
            }
        }
        s
    }

    /// `--stats`: timings, e-graph size, stop reason, cost, compute-node count.
    pub fn stats_text(&self) -> String {
        let mut s = format!("target: {}\n", self.target.name());
        for r in &self.records {
            s.push_str(&format!("{}\n", r.log_line()));
            if let Some(e) = &r.outcome.egraph {
                s.push_str(&format!(
                    "egraph: iterations={} nodes={} classes={} stop={} limit_hit={} cost_before={} cost_after={}\n",
                    e.iterations, e.nodes, e.classes, e.stop_reason, e.limit_hit, e.cost_before, e.cost
                ));
            }
        }
        let compute = self
            .graph
            .node_ids()
            .into_iter()
            .filter(|&i| self.graph.node(i).op.is_compute())
            .count();
        s.push_str(&format!("compute nodes: {compute}\n"));
        s.push_str(&format!(
            "total: {:.1} ms\n",
            self.total.as_secs_f64() * 1e3
        ));
        s
    }
}

/// Run a pipeline of passes on a graph. Every pass's time is logged to stderr.
pub fn optimize(mut g: Graph, o: &OptOptions) -> Result<OptReport> {
    let ctx = lnc_passes::PassContext {
        target: o.target.unwrap_or_default(),
        eqsat: o.eqsat.clone(),
        explain: o.explain,
    };
    let pm = lnc_passes::PassManager::from_spec(&o.passes, &o.exclude, ctx, o.target.is_some())?;
    if let Some(d) = &o.dump_after {
        if d != "all" && !pm.pass_names().contains(&d.as_str()) {
            bail!(
                "--dump-after {d}: the pipeline has no such pass ({})",
                pm.pass_names().join(", ")
            );
        }
    }
    let t = std::time::Instant::now();
    let records = pm.run(&mut g, |rec, g| {
        eprintln!("{}", rec.log_line());
        if o.dump_after
            .as_deref()
            .is_some_and(|d| d == "all" || d == rec.pass)
        {
            let text = lnc_ir::text::print(g, &lnc_ir::text::PrintOptions { elide_consts: true });
            eprintln!("; after {}\n{text}", rec.pass);
        }
    })?;
    Ok(OptReport {
        graph: g,
        target: pm.ctx.target,
        records,
        total: t.elapsed(),
    })
}

/// `lnc passes`: every pass and pipeline with its description.
pub fn passes_listing() -> String {
    let mut s = String::from("passes:\n");
    let reg = lnc_passes::registry();
    let w = reg.iter().map(|p| p.name().len()).max().unwrap_or(0);
    for p in &reg {
        s.push_str(&format!("  {:w$}  {}\n", p.name(), p.description()));
    }
    s.push_str("pipelines:\n");
    let pl = lnc_passes::pipelines();
    let w = pl.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &pl {
        s.push_str(&format!("  {:w$}  {}\n", p.name, p.description));
        s.push_str(&format!("  {:w$}    = {}\n", "", p.passes.join(", ")));
    }
    s.push_str("rule families (eqsat --rules):\n");
    for f in lnc_passes::rules::FAMILIES {
        let names: Vec<String> = lnc_passes::rules::family(f)
            .unwrap_or_default()
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        s.push_str(&format!("  {f}: {}\n", names.join(", ")));
    }
    s
}

/// Build a zoo model.
pub fn build_zoo(name: &str, opts: &lnc_zoo::ZooOptions) -> Result<Graph> {
    let g = lnc_zoo::build(name, opts)?;
    lnc_ir::verify::verify(&g).with_context(|| format!("zoo model '{name}' is invalid"))?;
    Ok(g)
}

/// Options of [`build_cpu`].
#[derive(Debug, Clone)]
pub struct CpuOptions {
    pub isa: lnc_backends::c::Isa,
    pub threads: usize,
    /// Run the `opt` pipeline (CPU cost model) before lowering.
    pub optimize: bool,
}

/// Lower a graph for the CPU (after the `opt` pipeline unless disabled) and render the C
/// project: the plan and the files (path -> text).
pub fn build_cpu(
    g: Graph,
    o: &CpuOptions,
) -> Result<(
    lnc_ir::cpu::Plan,
    std::collections::BTreeMap<String, String>,
)> {
    let g = if o.optimize {
        let opt = OptOptions {
            target: Some(lnc_passes::Target::Cpu),
            passes: "opt".into(),
            ..OptOptions::default()
        };
        optimize(g, &opt)?.graph
    } else {
        g
    };
    let plan = lnc_ir::cpu::lower(&g, o.threads).context("cannot lower the model for the CPU")?;
    let opts = lnc_backends::c::Options {
        isa: o.isa,
        threads: o.threads,
    };
    let files = lnc_backends::c::emit(&g, &plan, &opts).context("cannot generate C")?;
    Ok((plan, files))
}
