//! The main job: few-shot MR (real movie-review sentences, the authors' 100-shot
//! protocol) on the real all-MiniLM-L6-v2 (or, with `--model`, any checkpoint such as
//! SmolLM2's GGUF file) with LPT-NPG, LPT w/o PG, prompt tuning and model tuning, over
//! several few-shot seeds, printing the paper-style comparison: test accuracy mean ±
//! std, trainable parameters, training tokens/ms, peak memory, wall time per run.
//!
//! Each run is a `petune train` child process (when the CLI is built next to this
//! example, as scripts/main.sh does) so that its peak RSS is its own.
//!
//! ```sh
//! cargo run --release --example mr_fewshot                # scaled down: 2 seeds, 80 steps
//! cargo run --release --example mr_fewshot -- --seeds 100,13,21,42 --steps 1000 --k-dev 1000
//! cargo run --release --example mr_fewshot -- \
//!     --model .assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --steps 30 --test-subset 500
//! ```
//!
//! MiniLM has no MLM head, so the prompt methods classify with a linear head at the
//! template's mask position; model tuning uses a linear head on `[CLS]` without template
//! (paper §4.1). The prompt layer is 4 of 6 (the middle, as PL 13 of 24 in the paper).
//!
//! On a decoder (GPT-2, the Llama family) the prompt methods score the label words with
//! the frozen LM head (lpt-reference.md §4.2), LoRA, which feeds raw text, trains a
//! linear head on the last token, and `zs` evaluates the untuned model with the LM-scoring
//! head as the floor. The default methods there are `zs, npg, lora, pt`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use petune::core::Arch;
use petune::experiments::catalog::{paper_method, scaled_lr, SHORT_NAMES};
use petune::experiments::runner::Runner;
use petune::prelude::*;
use petune::train::data::fewshot::stratified_split;
use petune::train::data::metrics::mean_std;
use petune::train::data::Dataset;
use petune::train::head::HeadToken;
use petune::train::memory::peak_rss_mib;
use petune::train::zero_shot::zero_shot;

#[derive(Parser, Debug)]
struct Args {
    /// The checkpoint: a Hugging Face folder or a `.gguf` file (default: all-MiniLM-L6-v2).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Evaluate on a seeded, label-stratified subset of this many of the 2,000 test
    /// examples (the same subset for every method and seed); default: all of them.
    #[arg(long)]
    test_subset: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Few-shot seeds (the authors' are 100, 13, 21, 42, 87).
    #[arg(long, value_delimiter = ',', default_values_t = vec![13u32, 42])]
    seeds: Vec<u32>,
    /// Optimizer steps per run.
    #[arg(long, default_value_t = 80)]
    steps: i64,
    /// Training examples (k-shot, in total).
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Dev examples sampled by the few-shot protocol (the paper: 1,000).
    #[arg(long, default_value_t = 200)]
    k_dev: usize,
    /// Evaluate on dev every this many steps.
    #[arg(long, default_value_t = 40)]
    eval_every: i64,
    /// Threads per run.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Methods to run: npg, appg, mppg, wo_pg (LPT); pt, pt_peft (prompt tuning, LPT code /
    /// PEFT convention), ptv2, adapter, adapter_drop, bitfit, lora, sidpg, mt; zs (zero-shot
    /// LM scoring, decoders only); `all` = every training method. Default: npg, wo_pg, pt,
    /// mt (a decoder: zs, npg, lora, pt).
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    /// Standard deviation of the static prompts' N(0, σ²) init (the authors: 1).
    #[arg(long, default_value_t = 1.0)]
    prompt_std: f64,
    /// Peak learning rate of the prompt methods.
    #[arg(long, default_value_t = 5e-3)]
    prompt_lr: f64,
    /// Train LPT with the frozen-prefix cache (no dropout below the prompt layer).
    #[arg(long)]
    cache: bool,
    /// The optimizer: `adamw_fused` (the trainer's default) or `hf_adamw` (the authors').
    #[arg(long, default_value = "adamw_fused", value_parser = parse_optimizer)]
    optimizer: petune::train::OptimizerKind,
    /// Write the table and every report as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

fn parse_optimizer(s: &str) -> Result<petune::train::OptimizerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("`{s}`: expected adamw_fused or hf_adamw"))
}

/// The catalog's short names plus `all`.
fn known_methods() -> String {
    let mut v: Vec<&str> = SHORT_NAMES.to_vec();
    v.push("all");
    v.join(", ")
}

/// The paper's configuration of `name` on MiniLM (catalog) with this example's prompt
/// init and learning rates.
fn method(name: &str, spec: &BackboneSpec, args: &Args) -> anyhow::Result<(MethodConfig, f64)> {
    let mut m =
        paper_method(name, spec).with_context(|| format!("methods: {}", known_methods()))?;
    let init = PromptInit::Random { std: args.prompt_std };
    let prompt = match &mut m {
        MethodConfig::Lpt(c) => {
            if let GeneratorConfig::Static { init: i, .. } = &mut c.generator {
                *i = init;
            }
            true
        }
        MethodConfig::PromptTuning(c) => {
            if c.position == PromptPosition::Authors {
                c.init = init;
            }
            true
        }
        MethodConfig::PTuningV2(_) => true,
        _ => false,
    };
    let lr = if prompt { args.prompt_lr } else { scaled_lr(&m) };
    Ok((m, lr))
}

/// The zero-shot floor's short name (not a training method of the catalog).
const ZERO_SHOT: &str = "zs";

/// One table row.
struct Row {
    label: String,
    accs: Vec<f64>,
    trainable: i64,
    backbone: i64,
    tokens_per_ms: Option<f64>,
    peak_rss: f64,
    added: Option<f64>,
    wall: Vec<f64>,
}

/// The run's task data for `seed`: the authors' few-shot split of MR, with the test set
/// cut to a stratified subset when asked — then written to JSONL files in `dir` (the
/// child reads them), since the few-shot protocol itself always tests on all 2,000.
fn task_for(args: &Args, mr: &Path, seed: u32, dir: &Path) -> anyhow::Result<TaskConfig> {
    let fewshot = TaskConfig {
        kind: TaskName::Mr.into(),
        data: DataSource::MrSnippets { path: mr.to_path_buf() },
        fewshot: Some(FewShotConfig { k: args.k, seed, k_dev: args.k_dev }),
        template_style: Default::default(),
    };
    let Some(n) = args.test_subset else { return Ok(fewshot) };
    let data = fewshot.load()?;
    let test = data.test.context("MR has a test split")?;
    // Seed 0 for every few-shot seed: the test subset does not vary with the seed.
    let test = if n < test.len() { stratified_split(&test, n, 0)?.1 } else { test };
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, ds: &Dataset| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        let mut text = String::new();
        for e in &ds.examples {
            text.push_str(&serde_json::json!({"text": e.text_a, "label": e.label}).to_string());
            text.push('\n');
        }
        std::fs::write(&path, text)?;
        Ok(path)
    };
    Ok(TaskConfig {
        kind: TaskName::Mr.into(),
        data: DataSource::Files {
            train: write("train.jsonl", &data.train)?,
            dev: Some(write("dev.jsonl", &data.dev)?),
            test: Some(write("test.jsonl", &test)?),
        },
        fewshot: None,
        template_style: Default::default(),
    })
}

/// The zero-shot floor on every seed's test set, in this process (nothing is trained,
/// so there is no child run): the untuned model with the LM-scoring head of LPT.
fn zero_shot_row(
    args: &Args,
    model: &Path,
    spec: &BackboneSpec,
    tasks: &[TaskConfig],
) -> anyhow::Result<Row> {
    let method = paper_method("npg", spec)?;
    let train = TrainConfig { threads: args.threads, device: "cpu".into(), ..Default::default() };
    tch::set_num_threads(args.threads as i32);
    let mut accs = Vec::new();
    let mut wall = Vec::new();
    for (task, seed) in tasks.iter().zip(&args.seeds) {
        let start = Instant::now();
        let data = task.load()?;
        let loaded = LoadedModel::from_dir(model, &train.load_options()?)?;
        let zs = zero_shot(loaded, &method, HeadConfig::Auto, &data.spec, 128)?;
        let test = data.test.context("MR has a test split")?;
        let acc = 100.0 * zs.evaluate(&test, 32)?.headline;
        let secs = start.elapsed().as_secs_f64();
        eprintln!("  {:<22} seed {seed:>3} ... test acc {acc:.2} ({secs:.0} s)", "zero-shot");
        accs.push(acc);
        wall.push(secs);
    }
    Ok(Row {
        label: "zero-shot LM scoring (no training)".into(),
        accs,
        trainable: 0,
        backbone: spec.total_params,
        tokens_per_ms: None,
        peak_rss: peak_rss_mib(),
        added: None,
        wall,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    petune::train::memory::tune_allocator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = args.model.clone().unwrap_or_else(|| root.join(".assets/all-MiniLM-L6-v2"));
    let mr = root.join(".assets/mr/movieReviewSnippets_GroundTruth.txt");
    let minilm = args.model.is_none();
    if (minilm && !model.join(".ok").exists()) || !model.exists() || !mr.exists() {
        bail!("the real assets are missing: run scripts/setup.sh");
    }
    let runner = Runner::detect();
    let spec = ModelSource::open(&model)?.spec()?;
    let decoder = spec.arch == Arch::CausalDecoder;
    let runs = std::env::temp_dir().join(format!("petune-mr-{}", std::process::id()));
    let name = model.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let test = args.test_subset.map_or("2000".to_string(), |n| format!("{n} of 2000 (stratified)"));
    println!(
        "few-shot MR, {name}, k = {}, dev = {}, test = {test}, {} steps, batch {}, seeds {:?}, {} threads, {}",
        args.k,
        args.k_dev,
        args.steps,
        args.batch_size,
        args.seeds,
        args.threads,
        args.optimizer.name()
    );
    let defaults: &[&str] =
        if decoder { &[ZERO_SHOT, "npg", "lora", "pt"] } else { &["npg", "wo_pg", "pt", "mt"] };
    let names: Vec<String> = if args.methods.iter().any(|m| m == "all") {
        SHORT_NAMES.iter().map(|m| m.to_string()).collect()
    } else if args.methods.is_empty() {
        defaults.iter().map(|m| m.to_string()).collect()
    } else {
        args.methods.clone()
    };
    let tasks = args
        .seeds
        .iter()
        .map(|&seed| task_for(&args, &mr, seed, &runs.join(format!("data-{seed}"))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    let mut reports = Vec::new();
    for name in &names {
        if name == ZERO_SHOT {
            if !decoder {
                bail!("`{ZERO_SHOT}` scores label words with an LM head: it needs a decoder");
            }
            rows.push(zero_shot_row(&args, &model, &spec, &tasks)?);
            continue;
        }
        let (method, lr) = method(name, &spec, &args)?;
        // A decoder's `auto` head is LM scoring for template methods and a linear head on
        // the last token for the others; MiniLM keeps the main job's linear heads.
        let head = if method.uses_template() && !decoder {
            HeadConfig::Linear { token: HeadToken::Mask }
        } else {
            HeadConfig::Auto
        };
        let mut accs = Vec::new();
        let mut last: Option<TrainReport> = None;
        let mut tpm = Vec::new();
        let mut added = Vec::new();
        let mut wall = Vec::new();
        for (&seed, task) in args.seeds.iter().zip(&tasks) {
            let cfg = RunConfig {
                model: model.clone(),
                task: task.clone(),
                method: method.clone(),
                head,
                train: TrainConfig {
                    lr,
                    batch_size: args.batch_size,
                    max_steps: args.steps,
                    eval_every: args.eval_every,
                    max_len: 128,
                    seed: 42,
                    threads: args.threads,
                    device: "cpu".into(),
                    frozen_prefix_cache: args.cache && matches!(method, MethodConfig::Lpt(_)),
                    optimizer: args.optimizer,
                    ..Default::default()
                },
                out_dir: None,
            };
            eprint!("  {:<22} seed {:>3} ... ", method.label(), seed);
            let start = Instant::now();
            let report = runner.run(&cfg, &runs.join(format!("{name}-{seed}")))?.report;
            let secs = start.elapsed().as_secs_f64();
            let acc = report.test.as_ref().map(|t| t.headline).unwrap_or(f64::NAN);
            eprintln!(
                "test acc {:.2} ({:.0} s training, {secs:.0} s in all)",
                100.0 * acc,
                report.train_seconds
            );
            accs.push(100.0 * acc);
            tpm.push(report.tokens_per_ms);
            added.push(report.peak_rss_mib - report.rss_start_mib);
            wall.push(secs);
            reports.push(report.clone());
            last = Some(report);
        }
        let r = last.context("no seeds")?;
        rows.push(Row {
            label: method.label(),
            accs,
            trainable: r.trainable_params,
            backbone: r.backbone_params,
            tokens_per_ms: Some(mean_std(&tpm).0),
            peak_rss: r.peak_rss_mib,
            added: Some(mean_std(&added).0),
            wall,
        });
    }
    println!();
    println!("| method | test acc (mean ± std) | trainable params | % of backbone | tokens/ms | peak RSS (MiB) | RSS added by training (MiB) | wall time per run (s) |");
    println!("|---|---|---|---|---|---|---|---|");
    let or_dash =
        |v: Option<f64>, digits: usize| v.map_or("—".to_string(), |x| format!("{x:.digits$}"));
    for r in &rows {
        let (m, s) = mean_std(&r.accs);
        println!(
            "| {} | {m:.2} ± {s:.2} | {} | {:.3} % | {} | {:.0} | {} | {:.0} |",
            r.label,
            r.trainable,
            100.0 * r.trainable as f64 / r.backbone as f64,
            or_dash(r.tokens_per_ms, 2),
            r.peak_rss,
            or_dash(r.added, 0),
            mean_std(&r.wall).0,
        );
    }
    let _ = std::fs::remove_dir_all(&runs);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)?;
    }
    Ok(())
}
