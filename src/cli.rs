//! Command-line interface (clap derive). Every command that takes a MODEL accepts `.onnx`
//! and `.lnir` files.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "lnc",
    version,
    about = "A compiler for lightweight neural networks: ONNX in, C for CPUs or HLS/Verilog for FPGAs out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Static shape for an ONNX graph input, e.g. `input=1,3,224,224` (needed when the model
    /// declares symbolic dimensions other than the batch, which defaults to 1); repeatable.
    #[arg(long = "input-shape", value_name = "NAME=D0,D1,..", global = true)]
    pub input_shapes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a model's inputs, outputs, op histogram, parameters and MACs per layer.
    Inspect(InspectArgs),
    /// Run a model with the reference interpreter on .npy inputs.
    Run(RunArgs),
    /// List or generate models of the built-in zoo.
    Zoo(ZooArgs),
    /// Convert a model between .onnx and .lnir.
    Convert(ConvertArgs),
    /// List the optimisation passes and named pipelines.
    Passes,
    /// Optimise a model: run a pipeline of passes and write the result as .lnir.
    Opt(OptArgs),
    /// Compile a model: C + header + Makefile + runner for `--target cpu`.
    Build(BuildArgs),
    /// Build, compile and time a model (median / min / max milliseconds).
    Bench(BenchArgs),
}

/// Options shared by `build` and `bench`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The target [default: cpu].
    #[arg(long, value_name = "cpu", default_value = "cpu")]
    pub target: String,
    /// Instruction set [default: the best the host supports].
    #[arg(
        long,
        value_name = "generic|x86-64-v3|x86-64-v4|aarch64|aarch64-dotprod"
    )]
    pub isa: Option<String>,
    /// Threads compiled in (1: single-threaded code without a pool).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Do not run the `opt` pipeline before lowering.
    #[arg(long)]
    pub no_opt: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The model (.onnx or .lnir).
    pub model: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output directory (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model (.onnx or .lnir).
    pub model: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Timed runs (after one warm-up run).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub repeat: usize,
    /// Keep the generated project in DIR instead of a temporary directory.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print a JSON object (fields include `median_ms`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OptArgs {
    /// The model (.onnx or .lnir).
    pub model: PathBuf,
    /// The target whose cost model chooses between alternatives [default: cpu].
    #[arg(long, value_name = "cpu|fpga")]
    pub target: Option<String>,
    /// Passes and pipelines to run, comma-separated (see `lnc passes`).
    #[arg(
        short = 'p',
        long = "passes",
        value_name = "PIPELINE",
        default_value = "opt"
    )]
    pub passes: String,
    /// Leave out a pass; repeatable.
    #[arg(short = 'x', long = "exclude", value_name = "PASS")]
    pub exclude: Vec<String>,
    /// Print the graph (constants elided) to stderr after a pass, or after every pass.
    #[arg(long, value_name = "PASS|all")]
    pub dump_after: Option<String>,
    /// Print, for every node a rewrite made, the rules that made it.
    #[arg(long)]
    pub explain: bool,
    /// Print the e-graph statistics (size, iterations, stop reason, cost) and timings.
    #[arg(long)]
    pub stats: bool,
    /// Rule families of the e-graph pass, comma-separated [default: all].
    #[arg(long, value_name = "FAMILIES")]
    pub rules: Option<String>,
    /// E-graph node limit.
    #[arg(long, value_name = "N")]
    pub node_limit: Option<usize>,
    /// E-graph iteration limit.
    #[arg(long, value_name = "N")]
    pub iter_limit: Option<usize>,
    /// E-graph time limit in milliseconds.
    #[arg(long, value_name = "MS")]
    pub time_limit_ms: Option<u64>,
    /// Output file (.lnir; .onnx only when no fused op remains).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model (.onnx or .lnir).
    pub model: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model (.onnx or .lnir).
    pub model: PathBuf,
    /// An input array, in graph-input order or as NAME=FILE.npy; repeat for every input.
    #[arg(short, long = "input", value_name = "[NAME=]FILE.npy")]
    pub inputs: Vec<String>,
    /// Where to write an output, in graph-output order or as NAME=FILE.npy; repeat for every
    /// output.
    #[arg(short, long = "output", value_name = "[NAME=]FILE.npy")]
    pub outputs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ZooArgs {
    /// List the available models.
    #[arg(long, conflicts_with_all = ["name", "output"])]
    pub list: bool,
    /// The model to generate (see --list).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// Square input resolution [default: 224].
    #[arg(long, value_name = "N")]
    pub input_size: Option<usize>,
    /// Width multiplier [default: 1.0].
    #[arg(long, value_name = "W")]
    pub width: Option<f32>,
    /// Number of classes [default: 1000].
    #[arg(long, value_name = "C")]
    pub classes: Option<usize>,
    /// Seed for the weights [default: 0].
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Output file (.onnx or .lnir).
    #[arg(short, long, value_name = "FILE", required_unless_present = "list")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The model (.onnx or .lnir).
    pub model: PathBuf,
    /// Output file (.onnx or .lnir).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
