//! The `petune` command-line tool.

mod bench;
mod forward;
mod generate;
mod infer;
mod inspect;
mod launch;
mod out;
mod params;
mod probe;
mod sweep;
mod train;
mod train_lm;

use clap::{Parser, Subcommand};

/// Parameter-efficient tuning (Late Prompt Tuning and baselines) on libtorch.
#[derive(Parser)]
#[command(name = "petune", version, about)]
struct Cli {
    /// Log what happens on stderr: -v info, -vv debug (every step), -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Sends `tracing` events at the chosen level to stderr (warnings always).
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

#[derive(Subcommand)]
enum Command {
    /// Run a checkpoint on texts and write every hidden state (and MLM logits) to safetensors.
    Forward(forward::ForwardArgs),
    /// Continue a prompt with a decoder (and a tuned delta): greedy or sampled, KV-cached.
    Generate(generate::GenerateArgs),
    /// Train a method (LPT or any baseline) on your data or from a run config.
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
    /// Per-layer mutual-information probe of a trained delta (paper Appendix A).
    Probe(probe::ProbeArgs),
}

/// Exit status of every failure, usage errors included: scripts only need to tell
/// success (0) from failure (1); anything else would be a crash.
const FAILURE: i32 = 1;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { FAILURE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(cli.verbose);
    if let Err(e) = run(cli.command) {
        if out::is_stdout_closed(&e) {
            // The reader stopped reading (`petune ... | head`): not a failure.
            return;
        }
        eprintln!("error: {}", one_line(&e));
        std::process::exit(FAILURE);
    }
}

/// The error and its causes on one line (`loading X: model.safetensors: ...`), leaving
/// out a cause whose text the message already holds (petune's errors quote their
/// source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn run(command: Command) -> anyhow::Result<()> {
    petune::train::memory::tune_allocator();
    match command {
        Command::Forward(args) => forward::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Params(args) => params::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Predict(args) => infer::predict(&args),
        Command::Eval(args) => infer::eval(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Probe(args) => probe::run(&args),
    }
}
