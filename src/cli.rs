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
