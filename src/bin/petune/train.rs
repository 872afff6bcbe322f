//! `petune train`: one training run, writing `delta.safetensors`, `delta.json`,
//! `metrics.json` and `log.jsonl` to the output folder. Either from a run config
//! (`--config RUN.json`), or on the user's own data with everything inferred
//! (`--model DIR --train FILE`, petune_train::quickstart); `--print-config` shows the
//! config either way without training.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use petune::backbones::model_spec;
use petune::core::fsio::read_json;
use petune::experiments::catalog::{parse_method, scaled_lr};
use petune::experiments::tables::thousands;
use petune::ext::ProcessGroup;
use petune::prelude::*;
use petune::train::data::ClassificationReport;
use petune::train::estimate::human_duration;
use petune::train::quickstart::Quickstart;

use crate::infer::parse_base_dtype;
use crate::out::{out, outln};
use crate::params::parse_head;

/// Arguments of `petune train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run config (JSON): model, task, method, head, train, out_dir.
    #[arg(long, conflicts_with_all = ["model", "train", "dev", "test", "method", "head"])]
    config: Option<PathBuf>,
    /// Quickstart: the Hugging Face model folder to tune.
    #[arg(long, required_unless_present = "config", requires = "train")]
    model: Option<PathBuf>,
    /// Quickstart: the training file (CSV, JSONL or Parquet with `text`, optional
    /// `text_pair`, and `label` — class names or integers).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Quickstart: the dev file (model selection); a stratified 10 % of `--train` when
    /// absent.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Quickstart: the test file.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Quickstart: the method, a name (`npg` = LPT at the middle layer, `lora`, `bitfit`,
    /// `mt`, ...), inline JSON (`{"method": "lora", "r": 4}`) or a JSON file; `npg` when
    /// absent.
    #[arg(long)]
    method: Option<String>,
    /// Quickstart: the head (`auto`, `linear`, `verbalizer`, or JSON such as
    /// `{"kind": "linear", "token": "cls"}`).
    #[arg(long)]
    head: Option<String>,
    /// Output folder (overrides `out_dir`; quickstart default `runs/<train file name>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Train for this many steps instead of the config's schedule.
    #[arg(long)]
    steps: Option<i64>,
    /// Train for this many passes over the data instead.
    #[arg(long, conflicts_with = "steps")]
    epochs: Option<i64>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of initialisation, data order and dropout.
    #[arg(long)]
    seed: Option<u64>,
    /// Longest input in tokens.
    #[arg(long)]
    max_len: Option<usize>,
    /// Cut over-long inputs instead of failing.
    #[arg(long)]
    truncate: bool,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    #[arg(long)]
    device: Option<String>,
    /// libtorch threads (0 = its default, one per core; 1 is faster on a busy machine).
    #[arg(long)]
    threads: Option<usize>,
    /// Keep a GGUF model's frozen projection weights quantized (`train.quantized_base`),
    /// dequantized layer by layer; not with model tuning.
    #[arg(long)]
    quantized_base: bool,
    /// Store the frozen backbone weight matrices in `bf16` (half the bytes; delta, head
    /// and optimizer state stay f32) or `f32` (`train.base_dtype`); not with model tuning.
    #[arg(long, value_parser = parse_base_dtype)]
    base_dtype: Option<BaseDtype>,
    /// Print the full run config (JSON) and exit without training; save it, edit it,
    /// and run it with `--config`.
    #[arg(long)]
    print_config: bool,
    /// Start over in the output folder (its checkpoint and outputs are removed) instead
    /// of resuming or refusing a folder that holds another run.
    #[arg(long)]
    restart: bool,
    /// Do nothing when the output folder already holds this run finished (same
    /// fingerprint and a `metrics.json`): print its recorded report instead. Slurm array
    /// tasks use it, so that resubmitting a sweep re-runs only what is not finished.
    #[arg(long, conflicts_with = "restart")]
    skip_finished: bool,
    /// Print the report as JSON only.
    #[arg(long)]
    json: bool,
    /// Train data-parallel over N local processes (ranks), each with one libtorch thread
    /// unless `--threads` is given; under torchrun or srun leave it out (the environment
    /// describes the group). docs/scaling-out.md.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    nproc: Option<u64>,
    /// Data parallel: seconds any rank waits for the others (joining, every gradient
    /// exchange, evaluation) before failing with an error naming the wait.
    #[arg(long, default_value_t = 300.0)]
    dist_timeout: f64,
}

/// A head given as `linear` (at the mask with a template, on the first token without),
/// `verbalizer`, `auto`, or JSON.
fn head_arg(arg: &str, method: &MethodConfig) -> anyhow::Result<HeadConfig> {
    use petune::train::HeadToken;
    Ok(match arg {
        "linear" if method.uses_template() => HeadConfig::Linear { token: HeadToken::Mask },
        "linear" => HeadConfig::Linear { token: HeadToken::Cls },
        other => parse_head(other)?,
    })
}

/// The config of a quickstart run, and what was inferred (printed unless `--json`).
fn quickstart(args: &TrainArgs, model: &Path, train: &Path) -> anyhow::Result<RunConfig> {
    let spec = model_spec(model).with_context(|| format!("reading {}", model.display()))?;
    let method = parse_method(args.method.as_deref().unwrap_or("npg"), &spec)?;
    let head = match &args.head {
        Some(h) => head_arg(h, &method)?,
        None => HeadConfig::Auto,
    };
    let stem = train.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(stem));
    let q = Quickstart {
        model: model.to_path_buf(),
        train: train.to_path_buf(),
        dev: args.dev.clone(),
        test: args.test.clone(),
        lr: scaled_lr(&method),
        method,
        head,
        out_dir: Some(out),
    };
    let (cfg, found) = q.run_config()?;
    if !args.json && !args.print_config {
        eprintln!(
            "{}: {} examples, {} classes ({}){}",
            train.display(),
            found.n_train,
            found.labels.len(),
            found.labels.join(", "),
            if found.pair { ", text pairs" } else { "" }
        );
        if found.n_held_out > 0 {
            eprintln!(
                "no --dev given: holding out {} of them (stratified by class) as the dev set",
                found.n_held_out
            );
        }
    }
    Ok(cfg)
}

/// Applies the command-line overrides to a config.
fn apply_overrides(cfg: &mut RunConfig, args: &TrainArgs) {
    let t = &mut cfg.train;
    if let Some(s) = args.steps {
        t.max_steps = s;
        t.epochs = None;
    }
    if let Some(e) = args.epochs {
        t.epochs = Some(e);
    }
    if let Some(lr) = args.lr {
        t.lr = lr;
    }
    if let Some(seed) = args.seed {
        t.seed = seed;
    }
    if let Some(m) = args.max_len {
        t.max_len = m;
    }
    if args.truncate {
        t.truncate = true;
    }
    if let Some(d) = &args.device {
        t.device = d.clone();
    }
    if let Some(n) = args.threads {
        t.threads = n;
    }
    if let Some(d) = args.base_dtype {
        t.base_dtype = d;
    }
    if args.quantized_base {
        t.quantized_base = true;
    }
    if let Some(out) = &args.out {
        cfg.out_dir = Some(out.clone());
    }
}

/// Runs `petune train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(n) = args.nproc.filter(|&n| n > 1) {
        if !args.print_config {
            return crate::launch::launch(n as usize, args.threads.is_some());
        }
    }
    if !(args.dist_timeout.is_finite() && args.dist_timeout >= 0.001) {
        bail!("--dist-timeout {}: must be a number of seconds, at least 0.001", args.dist_timeout);
    }
    let timeout = std::time::Duration::from_secs_f64(args.dist_timeout);
    let mut group = if args.print_config { None } else { crate::launch::group_from_env(timeout)? };
    let result = run_in(args, &mut group);
    if let (Err(_), Some(g)) = (&result, group.take()) {
        // As Trainer::fit on an error: leave without waiting for the other ranks.
        std::mem::forget(g);
    }
    result
}

/// `petune train` once the group (if any) is joined; `group` is handed to the trainer.
fn run_in(args: &TrainArgs, group: &mut Option<(ProcessGroup, usize)>) -> anyhow::Result<()> {
    if let (None, Some(model), Some(train)) = (&args.config, &args.model, &args.train) {
        if petune::train::causal_lm::looks_like_instruct_jsonl(train) {
            if let Some((pg, _)) = group.as_ref() {
                bail!(
                    "data-parallel training ({} ranks) is not available for prompt/completion \
                     files (causal-LM fine-tuning): run it as one process",
                    pg.world_size()
                );
            }
            if args.print_config || args.head.is_some() || args.test.is_some() {
                bail!("prompt/completion files take no --print-config, --head or --test yet");
            }
            let stem = train.file_stem().map(|s| s.to_string_lossy().into_owned());
            let out = args.out.clone().unwrap_or_else(|| {
                PathBuf::from("runs").join(stem.unwrap_or_else(|| "causal_lm".into()))
            });
            return crate::train_lm::run(&crate::train_lm::LmArgs {
                model,
                train,
                dev: args.dev.as_deref(),
                method: args.method.as_deref(),
                out,
                steps: args.steps,
                lr: args.lr,
                seed: args.seed,
                max_len: args.max_len,
                json: args.json,
            });
        }
    }
    let mut cfg: RunConfig = match (&args.config, &args.model, &args.train) {
        (Some(path), _, _) => read_json(path)?,
        (None, Some(model), Some(train)) => quickstart(args, model, train)?,
        _ => bail!("give --config RUN.json, or --model DIR --train FILE"),
    };
    apply_overrides(&mut cfg, args);
    let leader = group.as_ref().is_none_or(|(pg, _)| pg.rank() == 0);
    if let Some((_, local_rank)) = &group {
        // One device per rank on a multi-GPU node, as torchrun's LOCAL_RANK convention.
        if cfg.train.device == "cuda" {
            cfg.train.device = format!("cuda:{local_rank}");
        }
    }
    if args.print_config {
        return outln!("{}", serde_json::to_string_pretty(&cfg)?);
    }
    let mut data = None;
    if let (true, Some(dir)) = (args.skip_finished, &cfg.out_dir) {
        // The data is loaded before the model: the fingerprint needs the examples only.
        let task = cfg.task.load()?;
        let fp = petune::train::run_dir::fingerprint(&cfg, &task)?;
        if let Some(report) = petune::train::run_dir::finished_report(dir, &fp)? {
            eprintln!("{} holds this run finished: nothing to do", dir.display());
            if args.json && leader {
                outln!("{}", serde_json::to_string_pretty(&report)?)?;
            }
            return Ok(());
        }
        data = Some(task);
    }
    let mut trainer = Trainer::from_config(cfg.clone())
        .with_context(|| format!("loading {}", cfg.model.display()))?;
    if let Some(task) = data {
        trainer = trainer.with_data(task);
    }
    if let Some((pg, _)) = group.take() {
        trainer = trainer.with_process_group(pg);
    }
    let result = trainer.quiet(args.json).restart(args.restart).fit()?;
    let r = &result.report;
    if !leader {
        // Rank 0 prints (and wrote) the report; the others say nothing.
        return Ok(());
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(r)?)?;
        return Ok(());
    }
    print_report(r, &result.model)?;
    if let Some(dir) = &cfg.out_dir {
        outln!(
            "\nwrote {} (delta.safetensors, delta.json, metrics.json, log.jsonl)",
            dir.display()
        )?;
        let input = match &cfg.task.data {
            DataSource::Files { test: Some(t), .. } => t.display().to_string(),
            _ => "TEXTS.csv".into(),
        };
        outln!(
            "predict with:\n  petune predict --model {} --delta {} --input {input}",
            cfg.model.display(),
            dir.display()
        )?;
    }
    Ok(())
}

/// The result table of a run.
fn print_report(r: &TrainReport, model: &TrainedModel) -> anyhow::Result<()> {
    outln!("\n{} on {} ({})", r.method, r.task, model.backbone().spec().describe())?;
    let head = format!("{:?}", model.manifest().head);
    outln!("head                {head}")?;
    if let Some(d) = &r.best_dev {
        outln!(
            "dev  {:<14} {:.4}  (best, step {} of {})",
            d.key,
            d.headline,
            r.best_step,
            r.steps
        )?;
    }
    if let Some(t) = &r.test {
        outln!("test {:<14} {:.4}", t.key, t.headline)?;
    }
    if let Some((classes, on)) =
        r.test_classes.as_ref().map(|c| (c, "test")).or(r.dev_classes.as_ref().map(|c| (c, "dev")))
    {
        out!("{}", class_table(classes, on))?;
    }
    outln!(
        "trainable params    {} ({:.4} % of the backbone's {})",
        thousands(r.trainable_params),
        100.0 * r.trainable_params as f64 / r.backbone_params.max(1) as f64,
        thousands(r.backbone_params)
    )?;
    outln!("tokens / ms         {:.2} (training steps)", r.tokens_per_ms)?;
    outln!("peak memory         {:.0} MiB (resident)", r.peak_rss_mib)?;
    outln!("training time       {}", human_duration(r.train_seconds))?;
    if r.world_size > 1 {
        outln!(
            "data parallel       {} ranks: {:.1} ms per step, {:.2} ms of it the gradient all-reduce",
            r.world_size, r.mean_step_ms(), r.comm_ms
        )?;
    }
    if r.skipped_steps > 0 {
        outln!("skipped steps       {} (non-finite loss)", r.skipped_steps)?;
    }
    Ok(())
}

/// Per-class precision / recall / F1 and support, as a table.
pub fn class_table(c: &ClassificationReport, on: &str) -> String {
    let width = c.classes.iter().map(|s| s.label.chars().count()).max().unwrap_or(5).max(5);
    let mut out =
        format!("\nper class ({on})\n  {:<width$}  precision  recall     F1  support\n", "class");
    for s in &c.classes {
        out.push_str(&format!(
            "  {:<width$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}\n",
            s.label, s.precision, s.recall, s.f1, s.support
        ));
    }
    out.push_str(&format!(
        "  {:<width$}  accuracy {:.4}, macro-F1 {:.4}\n\n",
        "", c.accuracy, c.macro_f1
    ));
    out
}
