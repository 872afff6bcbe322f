//! `petune sweep`: one run config trained over methods × prompt layers (or prompt
//! lengths) × seeds, each run a `petune train` child process; writes `sweep.csv`, the
//! test metric against the axis as mean ± std over seeds (`prompt_layers.png/.svg` or
//! `prompt_lengths.png/.svg`, as the paper's Figures 2, 4 and 5), and the training-loss
//! curves averaged over seeds (`convergence.png/.svg`, as Figure 2-middle).
//!
//! On a cluster the same plan is a Slurm job array: `--emit-slurm DIR` writes a run
//! config per point and `DIR/sweep.sbatch`; `--collect DIR` writes the same outputs from
//! the finished points (petune_experiments::slurm, ::collect; docs/scaling-out.md).

use std::path::PathBuf;

use crate::out::outln;
use anyhow::bail;
use clap::Args;
use petune::core::fsio::read_json;
use petune::experiments::args::{print_collected, print_emitted, SlurmArgs};
use petune::experiments::catalog::parse_method;
use petune::experiments::grid::{grid_configs, Grid};
use petune::experiments::runner::Runner;
use petune::experiments::slurm::{self, EmitJob, ManifestPoint, Study};
use petune::experiments::sweep::{plan_points, run_sweep, write_sweep_outputs, Axis, SweepPlan};
use petune::prelude::*;

/// Arguments of `petune sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The base run config (JSON).
    #[arg(long, required_unless_present = "collect")]
    config: Option<PathBuf>,
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
    /// Output folder (with `--collect`: default the collected folder).
    #[arg(long, required_unless_present_any = ["collect", "emit_slurm"])]
    out: Option<PathBuf>,
    /// Do not train: write the plan as a Slurm job array into this folder (a run config
    /// per point, `sweep.json`, `points.txt`, `sweep.sbatch`).
    #[arg(long, conflicts_with_all = ["out", "collect"])]
    emit_slurm: Option<PathBuf>,
    /// Do not train: build `sweep.csv` and the plots from the finished points of a job
    /// array emitted with `--emit-slurm`, naming the points that are not finished.
    #[arg(long, conflicts_with_all = ["config", "prompt_layers", "prompt_lens", "methods", "lrs"])]
    collect: Option<PathBuf>,
    /// With `--collect`: build the outputs from the finished points even when some are
    /// missing, running or failed (exit status 0).
    #[arg(long, requires = "collect")]
    allow_missing: bool,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// Runs `petune sweep`.
pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.collect {
        let c =
            petune::experiments::collect::collect(dir, args.out.as_deref(), args.allow_missing)?;
        print_collected(&c, args.out.as_deref().unwrap_or(dir));
        return Ok(());
    }
    let Some(config) = &args.config else { bail!("give --config RUN.json") };
    let base: RunConfig = read_json(config)?;
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
    if let Some(dir) = &args.emit_slurm {
        return emit(&plan, dir, &args.slurm);
    }
    let Some(out) = &args.out else { bail!("give --out DIR") };
    std::fs::create_dir_all(out)?;
    let points = run_sweep(&Runner::detect(), &plan, out)?;
    let plots = write_sweep_outputs(out, axis, &points)?;
    let files: Vec<String> = plots.iter().map(|p| format!("{p}.{{png,svg}}")).collect();
    outln!("wrote {}/sweep.csv, {}", out.display(), files.join(", "))?;
    Ok(())
}

/// `--emit-slurm DIR`: one point per grid run, ids `<point tag>-<grid point tag>`.
fn emit(plan: &SweepPlan, dir: &std::path::Path, slurm_args: &SlurmArgs) -> anyhow::Result<()> {
    let mut jobs = Vec::new();
    for p in plan_points(plan)? {
        for (grid, cfg) in grid_configs(&p.cfg, &p.grid) {
            let point = ManifestPoint {
                id: slurm::id_part(&format!("{}-{}", p.tag, grid.tag())),
                task: None,
                method: p.method.clone(),
                x: p.x,
                seed: p.seed,
                grid,
            };
            jobs.push(EmitJob { point, cfg });
        }
    }
    let n = jobs.len();
    let dir = slurm::emit(dir, Study::Sweep { axis: plan.axis }, jobs, &slurm_args.options()?)?;
    print_emitted(&dir, n, "petune sweep --collect");
    Ok(())
}
