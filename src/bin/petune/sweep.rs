//! `petune sweep`: one run config trained over methods × prompt layers (or prompt
//! lengths) × seeds, each run a `petune train` child process; writes `sweep.csv`, the
//! test metric against the axis as mean ± std over seeds (`prompt_layers.png/.svg` or
//! `prompt_lengths.png/.svg`, as the paper's Figures 2, 4 and 5), and the training-loss
//! curves averaged over seeds (`convergence.png/.svg`, as Figure 2-middle).

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use petune::core::fsio::read_json;
use petune::experiments::catalog::parse_method;
use petune::experiments::grid::Grid;
use petune::experiments::runner::Runner;
use petune::experiments::sweep::{plot_sweep, run_sweep, write_sweep_csv, Axis, SweepPlan};
use petune::prelude::*;

/// Arguments of `petune sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The base run config (JSON).
    #[arg(long)]
    config: PathBuf,
    /// Prompt layers (paper numbering, 1-based) for LPT methods.
    #[arg(long, value_delimiter = ',', conflicts_with = "prompt_lens")]
    prompt_layers: Vec<usize>,
    /// Prompt lengths for LPT, prompt tuning, P-tuning v2 and S-IDPG (instead of layers).
    #[arg(long, value_delimiter = ',')]
    prompt_lens: Vec<usize>,
    /// Seeds: few-shot split seeds when the config samples a few-shot split, else
    /// training seeds.
    #[arg(long, value_delimiter = ',', default_values_t = vec![13u64, 42])]
    seeds: Vec<u64>,
    /// Methods to sweep instead of the config's (names, inline JSON or files; `;`-separated).
    #[arg(long, value_delimiter = ';')]
    methods: Vec<String>,
    /// Learning rates to select from on dev at every point (default: the config's).
    #[arg(long, value_delimiter = ',')]
    lrs: Vec<f64>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `petune sweep`.
pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let base: RunConfig = read_json(&args.config)?;
    let spec = petune::backbones::model_spec(&base.model)?;
    let methods: Vec<MethodConfig> = if args.methods.is_empty() {
        vec![base.method.clone()]
    } else {
        args.methods.iter().map(|m| parse_method(m, &spec)).collect::<Result<_, _>>()?
    };
    if args.seeds.is_empty() {
        bail!("--seeds: give at least one seed");
    }
    let (axis, values) = if args.prompt_lens.is_empty() {
        (Axis::PromptLayer, args.prompt_layers.clone())
    } else {
        (Axis::PromptLength, args.prompt_lens.clone())
    };
    let t = &base.train;
    let lrs = if args.lrs.is_empty() { vec![t.lr] } else { args.lrs.clone() };
    let grid = Grid { lrs, batch_sizes: vec![t.batch_size], warmup_rates: vec![t.warmup_rate] };
    let plan = SweepPlan {
        base: base.clone(),
        methods: methods.into_iter().map(|m| (m, grid.clone())).collect(),
        axis,
        values,
        seeds: args.seeds.clone(),
    };
    std::fs::create_dir_all(&args.out)?;
    let points = run_sweep(&Runner::detect(), &plan, &args.out)?;
    write_sweep_csv(&args.out.join("sweep.csv"), axis, &points)?;
    let plots = plot_sweep(&args.out, axis, &points)?;
    let files: Vec<String> = plots.iter().map(|p| format!("{p}.{{png,svg}}")).collect();
    println!("wrote {}/sweep.csv, {}", args.out.display(), files.join(", "));
    Ok(())
}
