//! The `petune` command-line tool.

mod bench;
mod forward;
mod infer;
mod inspect;
mod params;
mod plot;
mod sweep;
mod train;

use clap::{Parser, Subcommand};

/// Parameter-efficient tuning (Late Prompt Tuning and baselines) on libtorch.
#[derive(Parser)]
#[command(name = "petune", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a checkpoint on texts and write every hidden state (and MLM logits) to safetensors.
    Forward(forward::ForwardArgs),
    /// Train a method (LPT or any baseline) from a run config.
    Train(train::TrainArgs),
    /// Train-step speed and memory of methods on a backbone (docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Predict labels for texts with a trained delta.
    Predict(infer::InferArgs),
    /// Evaluate a trained delta on a labelled file.
    Eval(infer::InferArgs),
    /// A checkpoint's site inventory and the sites a method touches.
    Inspect(inspect::InspectArgs),
    /// Train over prompt layers × seeds (× methods); write a CSV and PNG/SVG plots.
    Sweep(sweep::SweepArgs),
    /// Trainable / total parameters of a method on a backbone, from its config alone.
    Params(params::ParamsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    petune::train::memory::tune_allocator();
    match cli.command {
        Command::Forward(args) => forward::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Params(args) => params::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Predict(args) => infer::predict(&args),
        Command::Eval(args) => infer::eval(&args),
        Command::Inspect(args) => inspect::run(&args),
    }
}
