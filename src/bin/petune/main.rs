//! The `petune` command-line tool.

mod forward;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Forward(args) => forward::run(&args),
    }
}
