//! The main job (issue #13): few-shot MR (real movie-review sentences, the authors'
//! 100-shot protocol, lpt-reference.md §6) on the real all-MiniLM-L6-v2 — LPT NPG (with
//! the frozen-prefix cache), prompt tuning and model tuning over three few-shot splits,
//! each split's learning rate chosen on dev from a small grid, the best dev checkpoint
//! scored on the 2,000-sentence test set — in two labelled views:
//!
//! - **(a) equal steps**: every method the same number of optimizer steps;
//! - **(b) equal training time**: every method the same seconds of optimizer steps — what
//!   the slowest method (model tuning) needs for its steps in view (a), measured in this
//!   run — so a method that is cheaper per step takes more steps (`petune_experiments::
//!   budget`). Each split keeps the learning rate dev chose for it in view (a)
//!   (`--time-grid` searches the grid again).
//!
//! Training follows the plain PyTorch re-creation of issue #13 (docs/results.md): raw text
//! with a linear head on `[CLS]`, AdamW at a constant rate, a fresh batch of 16 each
//! step, model tuning's head at 1e-3. Each run is a `petune train` child process (when
//! the CLI is built next to this example, as scripts/main.sh does), so that its peak RSS
//! is its own.
//!
//! ```sh
//! cargo run --release --example mr_fewshot          # the default: ~10 min on 2 cores
//! cargo run --release --example mr_fewshot -- --methods npg,wo_pg,pt,mt --seeds 100,13,21,42 \
//!     --steps 1000 --eval-every 100 --k-dev 1000
//! cargo run --release --example mr_fewshot -- \
//!     --model .assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --steps 30 --test-subset 500
//! ```
//!
//! On a decoder (GPT-2, the Llama family) the prompt methods read the authors' template
//! and score the label words with the frozen LM head (lpt-reference.md §4.2), LoRA trains
//! a linear head on the last token, and `zs` evaluates the untuned model with the
//! LM-scoring head as the floor. The default methods there are `zs, npg, lora, pt`.

mod plan;
mod tables;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use petune::core::Arch;
use petune::experiments::budget::{plan_equal_time, seconds_per_step};
use petune::experiments::catalog::SHORT_NAMES;
use petune::experiments::grid::{grid_configs, select, Grid, GridPoint};
use petune::experiments::runner::{RunOutcome, Runner};
use petune::prelude::*;
use petune::train::data::fewshot::stratified_split;
use petune::train::data::load::vader_file_name;
use petune::train::data::sampler::Sampling;
use petune::train::data::{Dataset, TemplateStyle};
use petune::train::head::HeadToken;
use petune::train::memory::peak_rss_mib;
use petune::train::optim::Schedule;
use petune::train::zero_shot::zero_shot;

use plan::{method_grid, parse_lr_override, LrOverride};
use tables::{Row, SplitResult};

#[derive(Parser, Debug)]
struct Args {
    /// The checkpoint: a Hugging Face folder or a `.gguf` file (default: all-MiniLM-L6-v2).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A built-in task of the library (`mr` by default; any task name a run config takes).
    #[arg(long, default_value = "mr")]
    task: String,
    /// The task's data folder in its public layout (`data.kind: task_dir`); default for
    /// MR and the VADER tasks (`tweets`, `amazon`, `nyt`): their rated-snippet files from
    /// scripts/setup.sh.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate on a seeded, label-stratified subset of this many test examples (the
    /// same subset for every method and seed); default: all of them.
    #[arg(long)]
    test_subset: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Few-shot seeds, one split each (the authors' are 100, 13, 21, 42, 87).
    #[arg(long, value_delimiter = ',', default_values_t = vec![13u32, 42, 100])]
    seeds: Vec<u32>,
    /// Optimizer steps per run in the equal-steps view (and of the method that sets the
    /// equal-time budget).
    #[arg(long, default_value_t = 30)]
    steps: i64,
    /// Training examples (k-shot, in total).
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Dev examples sampled by the few-shot protocol (the paper: 1,000).
    #[arg(long, default_value_t = 200)]
    k_dev: usize,
    /// Evaluate on dev every this many steps (and after the last).
    #[arg(long, default_value_t = 10)]
    eval_every: i64,
    /// Threads per run.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Methods to run: npg, appg, mppg, wo_pg (LPT); pt, pt_peft (prompt tuning, LPT code /
    /// PEFT convention), ptv2, adapter, adapter_drop, bitfit, lora, sidpg, mt; zs (zero-shot
    /// LM scoring, decoders only); `all` = every training method. Default: npg, pt, mt (a
    /// decoder: zs, npg, lora, pt).
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    /// A method's learning-rate grid, `NAME=LR,LR,...` (repeatable), e.g. `--lr
    /// npg=1e-3,5e-3`; default grids: LPT generators {1e-3, 5e-3}, static prompts
    /// {1e-2, 3e-2}, model tuning {2e-5, 5e-5}, other methods one rate.
    #[arg(long = "lr", value_parser = parse_lr_override)]
    lrs: Vec<LrOverride>,
    /// One learning rate for every prompt method (replaces their grids).
    #[arg(long)]
    prompt_lr: Option<f64>,
    /// Model tuning's head learning rate (`train.head_lr`; the re-creation's 1e-3).
    #[arg(long, default_value_t = 1e-3)]
    mt_head_lr: f64,
    /// Standard deviation of the static prompts' N(0, σ²) init (the authors: 1).
    #[arg(long, default_value_t = 1.0)]
    prompt_std: f64,
    /// Template style of the task: `raw` (no template, heads on `[CLS]`: the default on
    /// an encoder), `authors_code` (the default on a decoder, whose heads score label
    /// words) or `paper`.
    #[arg(long, value_parser = parse_serde::<TemplateStyle>)]
    template: Option<TemplateStyle>,
    /// The rate after warm-up: `constant` (default) or `linear` (decay to 0, the authors').
    #[arg(long, default_value = "constant", value_parser = parse_serde::<Schedule>)]
    schedule: Schedule,
    /// Warm-up fraction of the steps.
    #[arg(long, default_value_t = 0.0)]
    warmup_rate: f64,
    /// How steps draw examples: `per_step` (a fresh batch each step, default) or `epochs`.
    #[arg(long, default_value = "per_step", value_parser = parse_serde::<Sampling>)]
    sampling: Sampling,
    /// Train LPT with the frozen-prefix cache (the default; no dropout below the prompt
    /// layer).
    #[arg(long, overrides_with = "no_cache")]
    cache: bool,
    /// Train LPT without the frozen-prefix cache.
    #[arg(long)]
    no_cache: bool,
    /// Compute the last layer at every token (`train.full_last_layer`), as runs before
    /// the read-out did; by default only at the token the head reads.
    #[arg(long)]
    full_last_layer: bool,
    /// The equal-time budget in seconds of optimizer steps, instead of the slowest
    /// method's time for `--steps` steps measured in this run.
    #[arg(long)]
    budget_secs: Option<f64>,
    /// Skip the equal-time view.
    #[arg(long)]
    no_equal_time: bool,
    /// In the equal-time view, search each method's grid again instead of keeping the
    /// learning rate dev chose in the equal-steps view.
    #[arg(long)]
    time_grid: bool,
    /// The optimizer: `adamw_fused` (the trainer's default) or `hf_adamw` (the authors').
    #[arg(long, default_value = "adamw_fused", value_parser = parse_serde::<petune::train::OptimizerKind>)]
    optimizer: petune::train::OptimizerKind,
    /// Write the plan, the tables' figures and every report as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

/// A `snake_case` serde enum from its name (the run config's spelling).
fn parse_serde<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.into())).map_err(|e| format!("`{s}`: {e}"))
}

/// The zero-shot floor's short name (not a training method of the catalog).
const ZERO_SHOT: &str = "zs";

/// Where the task's data is: `--data`, else MR's snippets file.
fn data_source(args: &Args, task: TaskName, root: &Path) -> anyhow::Result<DataSource> {
    if let Some(dir) = &args.data {
        if !dir.is_dir() {
            bail!("--data {}: not a folder", dir.display());
        }
        return Ok(DataSource::TaskDir { dir: dir.clone() });
    }
    // The rated-snippet files that scripts/setup.sh installs: MR's, and the VADER tasks'
    // (docs/tasks.md); any other task needs its folder.
    let (path, source): (PathBuf, fn(PathBuf) -> DataSource) = if task == TaskName::Mr {
        (root.join(".assets/mr/movieReviewSnippets_GroundTruth.txt"), |path| {
            DataSource::MrSnippets { path }
        })
    } else if let Some(file) = vader_file_name(task) {
        (root.join(".assets/vader").join(file), |path| DataSource::RatedSnippets { path })
    } else {
        bail!("--task {task}: pass its data folder with --data (only the rated-snippet tasks' data is known here)");
    };
    if !path.exists() {
        bail!("the real assets are missing ({}): run scripts/setup.sh", path.display());
    }
    Ok(source(path))
}

/// The run's task for `seed` and its test set: the authors' few-shot split (the test set
/// cut to a stratified subset when asked), its training and dev sets written to JSONL
/// files in `dir` for the children, which get no test set — only each split's
/// dev-chosen run is scored on test (`score_on_test`), so the grid's other runs do not
/// pay for a 2,000-sentence evaluation.
fn task_for(
    args: &Args,
    base: &TaskConfig,
    seed: u32,
    dir: &Path,
) -> anyhow::Result<(TaskConfig, Dataset)> {
    let fewshot = TaskConfig {
        fewshot: Some(FewShotConfig { k: args.k, seed, k_dev: args.k_dev }),
        ..base.clone()
    };
    let data = fewshot.load()?;
    let test = data.test.context("the task has no test split")?;
    // Seed 0 for every few-shot seed: the test subset does not vary with the seed.
    let test = match args.test_subset {
        Some(n) if n < test.len() => stratified_split(&test, n, 0)?.1,
        _ => test,
    };
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, ds: &Dataset| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        let mut text = String::new();
        for e in &ds.examples {
            let mut v = serde_json::json!({"text": e.text_a, "label": e.label});
            if let Some(b) = &e.text_b {
                v["text_pair"] = b.clone().into();
            }
            text.push_str(&v.to_string());
            text.push('\n');
        }
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let task = TaskConfig {
        data: DataSource::Files {
            train: write("train.jsonl", &data.train)?,
            dev: Some(write("dev.jsonl", &data.dev)?),
            test: None,
        },
        fewshot: None,
        ..base.clone()
    };
    Ok((task, test))
}

/// Test accuracy (%) of the trained delta in the run folder `dir` (its best dev
/// tensors: the trainer saves those) on `model`, evaluated in this process.
fn score_on_test(
    model: &Path,
    dir: &Path,
    test: &Dataset,
    train: &TrainConfig,
) -> anyhow::Result<f64> {
    tch::set_num_threads(train.threads as i32);
    let loaded = LoadedModel::from_dir(model, &train.load_options()?)?;
    let trained = TrainedModel::load(dir, loaded.backbone, loaded.tokenizer)
        .with_context(|| format!("loading the delta in {}", dir.display()))?;
    Ok(100.0 * trained.evaluate(test, 32)?.headline)
}

/// The zero-shot floor on every seed's test set, in this process (nothing is trained,
/// so there is no child run): the untuned model with the LM-scoring head of LPT.
fn zero_shot_row(
    args: &Args,
    model: &Path,
    spec: &BackboneSpec,
    tasks: &[(TaskConfig, Dataset)],
) -> anyhow::Result<Row> {
    let method = petune::experiments::catalog::paper_method("npg", spec)?;
    let train = TrainConfig { threads: args.threads, device: "cpu".into(), ..Default::default() };
    tch::set_num_threads(args.threads as i32);
    let mut splits = Vec::new();
    for ((task, test), seed) in tasks.iter().zip(&args.seeds) {
        let start = Instant::now();
        let data = task.load()?;
        let loaded = LoadedModel::from_dir(model, &train.load_options()?)?;
        let zs = zero_shot(loaded, &method, HeadConfig::Auto, &data.spec, 128)?;
        let acc = 100.0 * zs.evaluate(test, 32)?.headline;
        let secs = start.elapsed().as_secs_f64();
        eprintln!("  {:<22} seed {seed:>3} ... test acc {acc:.2} ({secs:.0} s)", "zero-shot");
        splits.push(SplitResult::untrained(acc, secs));
    }
    Ok(Row {
        label: "zero-shot LM scoring (no training)".into(),
        name: ZERO_SHOT.into(),
        splits,
        trainable: 0,
        backbone: spec.total_params,
        peak_rss: peak_rss_mib(),
    })
}

/// Everything one method's runs share; each split and grid point varies it.
struct MethodRuns<'a> {
    runner: &'a Runner,
    runs: &'a Path,
    name: &'a str,
    label: String,
    base: RunConfig,
    grid: Grid,
}

impl MethodRuns<'_> {
    /// Trains every point of `grid` on `task` for `steps` steps, selects on dev and
    /// scores the chosen run's best dev checkpoint on `test`.
    fn split(
        &self,
        view: &str,
        seed: u32,
        (task, test): &(TaskConfig, Dataset),
        steps: i64,
        grid: &Grid,
    ) -> anyhow::Result<(SplitResult, Vec<TrainReport>)> {
        let mut base = self.base.clone();
        base.task = task.clone();
        base.train.max_steps = steps;
        let mut done: Vec<(GridPoint, RunOutcome)> = Vec::new();
        let mut curves = Vec::new();
        let mut walls = Vec::new();
        for (point, cfg) in grid_configs(&base, grid) {
            let dir = self.runs.join(format!("{view}-{}-{seed}-{}", self.name, point.tag()));
            eprint!(
                "  ({view}) {:<22} seed {seed:>3} lr {:<7e} {steps:>4} steps ... ",
                self.label, point.lr
            );
            let start = Instant::now();
            let outcome = self.runner.run(&cfg, &dir)?;
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "dev {:.2} @{} ({:.1} s of steps, {secs:.0} s in all)",
                100.0 * outcome.best_dev(),
                outcome.report.best_step,
                outcome.report.step_seconds,
            );
            curves.push((point, tables::read_dev_curve(&dir)));
            walls.push(secs);
            done.push((point, outcome));
        }
        let reports = done.iter().map(|(_, o)| o.report.clone()).collect();
        let chosen = select(done)?;
        let dir = self.runs.join(format!("{view}-{}-{seed}-{}", self.name, chosen.best.tag()));
        let start = Instant::now();
        let acc = score_on_test(&self.base.model, &dir, test, &self.base.train)?;
        eprintln!(
            "  ({view}) {:<22} seed {seed:>3} chose lr {:e} on dev: test acc {acc:.2} ({:.0} s)",
            self.label,
            chosen.best.lr,
            start.elapsed().as_secs_f64()
        );
        let curve = curves.into_iter().find(|(p, _)| *p == chosen.best).map(|c| c.1);
        let wall = walls.iter().sum::<f64>() / walls.len().max(1) as f64;
        let curve = curve.unwrap_or_default();
        let split = SplitResult::trained(&chosen, acc, grid.lrs.len(), wall, curve);
        Ok((split, reports))
    }
}

/// The row of `m` from its splits' results and runs.
fn row_of(
    m: &MethodRuns<'_>,
    reports: &[TrainReport],
    splits: Vec<SplitResult>,
) -> anyhow::Result<Row> {
    let r = reports.last().context("no runs")?;
    Ok(Row::trained(m.name, m.label.clone(), r.trainable_params, r.backbone_params, splits))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    petune::train::memory::tune_allocator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = args.model.clone().unwrap_or_else(|| root.join(".assets/all-MiniLM-L6-v2"));
    let minilm = args.model.is_none();
    if (minilm && !model.join(".ok").exists()) || !model.exists() {
        bail!("the real assets are missing: run scripts/setup.sh");
    }
    if args.steps < 1 || args.eval_every < 1 || args.seeds.is_empty() {
        bail!("--steps and --eval-every must be at least 1, and --seeds not empty");
    }
    let task_name: TaskName = args.task.parse()?;
    let runner = Runner::detect();
    let spec = ModelSource::open(&model)?.spec()?;
    let decoder = spec.arch == Arch::CausalDecoder;
    // A decoder's prompt methods score label words after the template; an encoder's
    // main job reads raw text with a linear head on `[CLS]` (the re-creation's choice).
    let style = args.template.unwrap_or(if decoder {
        TemplateStyle::AuthorsCode
    } else {
        TemplateStyle::Raw
    });
    let base_task = TaskConfig {
        kind: task_name.into(),
        data: data_source(&args, task_name, root)?,
        fewshot: None,
        template_style: style,
    };
    let cache = !args.no_cache;
    let runs = std::env::temp_dir().join(format!("petune-main-{}", std::process::id()));
    let name = model.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let test = args.test_subset.map_or("all".to_string(), |n| format!("{n} (stratified)"));
    println!(
        "few-shot {task_name}, {name}, k = {}, dev = {}, test = {test}, batch {}, seeds {:?}, \
         {} threads, {}, {} lr, {:?} template, {} sampling, LPT prefix cache {}, last layer {}",
        args.k,
        args.k_dev,
        args.batch_size,
        args.seeds,
        args.threads,
        args.optimizer.name(),
        serde_json::to_value(args.schedule)?.as_str().unwrap_or("?"),
        style,
        serde_json::to_value(args.sampling)?.as_str().unwrap_or("?"),
        if cache { "on" } else { "off" },
        if args.full_last_layer { "at every token" } else { "at the read token" },
    );
    let defaults: &[&str] =
        if decoder { &[ZERO_SHOT, "npg", "lora", "pt"] } else { &["npg", "pt", "mt"] };
    let names: Vec<String> = if args.methods.iter().any(|m| m == "all") {
        SHORT_NAMES.iter().map(|m| m.to_string()).collect()
    } else if args.methods.is_empty() {
        defaults.iter().map(|m| m.to_string()).collect()
    } else {
        args.methods.clone()
    };
    if let Some(o) = args.lrs.iter().find(|o| !names.contains(&o.name)) {
        bail!(
            "--lr {}=...: `{}` is not among the methods run ({})",
            o.name,
            o.name,
            names.join(", ")
        );
    }
    let tasks = args
        .seeds
        .iter()
        .map(|&seed| task_for(&args, &base_task, seed, &runs.join(format!("data-{seed}"))))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // View (a): every method the same steps, each split's lr chosen on dev.
    let started = Instant::now();
    let mut floor = None;
    let mut methods = Vec::new();
    let mut view_a = Vec::new();
    let mut reports: Vec<serde_json::Value> = Vec::new();
    let mut timed = Vec::new();
    for name in &names {
        if name == ZERO_SHOT {
            if !decoder {
                bail!("`{ZERO_SHOT}` scores label words with an LM head: it needs a decoder");
            }
            floor = Some(zero_shot_row(&args, &model, &spec, &tasks)?);
            continue;
        }
        let (method, grid) = method_grid(name, &spec, &args.lrs, args.prompt_lr, args.prompt_std)?;
        let grid = Grid {
            batch_sizes: vec![args.batch_size],
            warmup_rates: vec![args.warmup_rate],
            ..grid
        };
        // A template method on an encoder with a template reads the mask position; raw
        // text and decoders take the `auto` head (`[CLS]`, last token or LM scoring).
        let head = if method.uses_template() && !decoder && style != TemplateStyle::Raw {
            HeadConfig::Linear { token: HeadToken::Mask }
        } else {
            HeadConfig::Auto
        };
        let is_mt = matches!(method, MethodConfig::ModelTuning);
        let base = RunConfig {
            model: model.clone(),
            task: base_task.clone(),
            method: method.clone(),
            head,
            train: TrainConfig {
                batch_size: args.batch_size,
                max_steps: args.steps,
                eval_every: args.eval_every,
                warmup_rate: args.warmup_rate,
                max_len: 128,
                seed: 42,
                threads: args.threads,
                device: "cpu".into(),
                frozen_prefix_cache: cache && matches!(method, MethodConfig::Lpt(_)),
                optimizer: args.optimizer,
                schedule: args.schedule,
                sampling: args.sampling,
                head_lr: is_mt.then_some(args.mt_head_lr),
                full_last_layer: args.full_last_layer,
                ..Default::default()
            },
            out_dir: None,
        };
        let m =
            MethodRuns { runner: &runner, runs: &runs, name, label: method.label(), base, grid };
        let mut splits = Vec::new();
        let mut all = Vec::new();
        for (&seed, task) in args.seeds.iter().zip(&tasks) {
            let (s, r) = m.split("a", seed, task, args.steps, &m.grid)?;
            splits.push(s);
            all.extend(r);
        }
        let sps = seconds_per_step(&all)?;
        timed.push((name.clone(), sps));
        reports.extend(all.iter().map(|r| serde_json::json!({"view": "equal_steps", "report": r})));
        view_a.push(row_of(&m, &all, splits)?);
        methods.push(m);
    }
    let secs_a = started.elapsed().as_secs_f64();

    // View (b): every method the same seconds of optimizer steps.
    let mut view_b = Vec::new();
    let mut plan = None;
    if !args.no_equal_time && !methods.is_empty() {
        let p = plan_equal_time(&timed, args.steps, args.budget_secs)?;
        for (m, row_a) in methods.iter().zip(&view_a) {
            let steps = p.steps.iter().find(|s| s.0 == m.name).map_or(args.steps, |s| s.2);
            if steps == args.steps && !args.time_grid {
                // Same steps, same lr: the equal-steps runs are this view's runs.
                view_b.push(row_a.clone());
                continue;
            }
            let mut splits = Vec::new();
            let mut all = Vec::new();
            for ((&seed, task), chosen) in args.seeds.iter().zip(&tasks).zip(&row_a.splits) {
                let grid = if args.time_grid {
                    m.grid.clone()
                } else {
                    Grid { lrs: vec![chosen.lr], ..m.grid.clone() }
                };
                let (mut s, r) = m.split("b", seed, task, steps, &grid)?;
                if !args.time_grid {
                    // The lr was chosen on dev in view (a), among its grid.
                    s.grid_size = chosen.grid_size;
                }
                splits.push(s);
                all.extend(r);
            }
            reports
                .extend(all.iter().map(|r| serde_json::json!({"view": "equal_time", "report": r})));
            view_b.push(row_of(m, &all, splits)?);
        }
        plan = Some(p);
    }
    let secs_all = started.elapsed().as_secs_f64();

    println!();
    tables::print_views(
        &args.seeds,
        args.steps,
        floor.as_ref(),
        &view_a,
        &view_b,
        plan.as_ref(),
        args.time_grid,
    );
    tables::print_dev_curves(if view_b.is_empty() { &view_a } else { &view_b });
    println!();
    println!(
        "wall time: {secs_a:.0} s for the equal-steps view, {:.0} s for the equal-time view, {secs_all:.0} s in all",
        secs_all - secs_a
    );
    let _ = std::fs::remove_dir_all(&runs);
    if let Some(path) = &args.json_out {
        let out = serde_json::json!({
            "equal_steps": view_a.iter().map(Row::to_json).collect::<Vec<_>>(),
            "equal_time": view_b.iter().map(Row::to_json).collect::<Vec<_>>(),
            "plan": plan.as_ref().map(|p| serde_json::json!({
                "budget_secs": p.budget_secs,
                "set_by": p.set_by,
                "steps": p.steps.iter().map(|(m, s, n)| serde_json::json!({"method": m, "secs_per_step": s, "steps": n})).collect::<Vec<_>>(),
            })),
            "reports": reports,
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}
