//! The main job: few-shot MR (real movie-review sentences, the authors' 100-shot
//! protocol) on the real all-MiniLM-L6-v2 with LPT-NPG, LPT w/o PG, prompt tuning and
//! model tuning, over several few-shot seeds, printing the paper-style comparison:
//! test accuracy mean ± std, trainable parameters, training tokens/ms, peak memory.
//!
//! Each run is a `petune train` child process (when the CLI is built next to this
//! example, as scripts/main.sh does) so that its peak RSS is its own.
//!
//! ```sh
//! cargo run --release --example mr_fewshot                # scaled down: 2 seeds, 80 steps
//! cargo run --release --example mr_fewshot -- --seeds 100,13,21,42 --steps 1000 --k-dev 1000
//! ```
//!
//! MiniLM has no MLM head, so the prompt methods classify with a linear head at the
//! template's mask position; model tuning uses a linear head on `[CLS]` without template
//! (paper §4.1). The prompt layer is 4 of 6 (the middle, as PL 13 of 24 in the paper).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use petune::experiments::catalog::{paper_method, scaled_lr, SHORT_NAMES};
use petune::experiments::runner::Runner;
use petune::prelude::*;
use petune::train::data::metrics::mean_std;
use petune::train::head::HeadToken;

#[derive(Parser, Debug)]
struct Args {
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
    /// PEFT convention), ptv2, adapter, adapter_drop, bitfit, lora, sidpg, mt; `all` = every
    /// one.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["npg".to_string(), "wo_pg".into(), "pt".into(), "mt".into()])]
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    petune::train::memory::tune_allocator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join(".assets/all-MiniLM-L6-v2");
    let mr = root.join(".assets/mr/movieReviewSnippets_GroundTruth.txt");
    if !model.join(".ok").exists() || !mr.exists() {
        bail!("the real assets are missing: run scripts/setup.sh");
    }
    let runner = Runner::detect();
    let spec = petune::backbones::spec_from_config(&model.join("config.json"))?;
    let runs = std::env::temp_dir().join(format!("petune-mr-{}", std::process::id()));
    println!(
        "few-shot MR, all-MiniLM-L6-v2, k = {}, dev = {}, test = 2000, {} steps, seeds {:?}, {} threads, {}",
        args.k, args.k_dev, args.steps, args.seeds, args.threads, args.optimizer.name()
    );
    let mut rows = Vec::new();
    let mut reports = Vec::new();
    let names: Vec<String> = if args.methods.iter().any(|m| m == "all") {
        SHORT_NAMES.iter().map(|m| m.to_string()).collect()
    } else {
        args.methods.clone()
    };
    for name in &names {
        let (method, lr) = method(name, &spec, &args)?;
        let head = if method.uses_template() {
            HeadConfig::Linear { token: HeadToken::Mask }
        } else {
            HeadConfig::Auto
        };
        let mut accs = Vec::new();
        let mut last: Option<TrainReport> = None;
        let mut tpm = Vec::new();
        let mut added = Vec::new();
        for &seed in &args.seeds {
            let cfg = RunConfig {
                model: model.clone(),
                task: TaskConfig {
                    kind: TaskName::Mr.into(),
                    data: DataSource::MrSnippets { path: mr.clone() },
                    fewshot: Some(FewShotConfig { k: args.k, seed, k_dev: args.k_dev }),
                    template_style: Default::default(),
                },
                method: method.clone(),
                head,
                train: TrainConfig {
                    lr,
                    batch_size: 16,
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
            let report = runner.run(&cfg, &runs.join(format!("{name}-{seed}")))?.report;
            let acc = report.test.as_ref().map(|t| t.headline).unwrap_or(f64::NAN);
            eprintln!("test acc {:.2} ({:.0} s)", 100.0 * acc, report.train_seconds);
            accs.push(100.0 * acc);
            tpm.push(report.tokens_per_ms);
            added.push(report.peak_rss_mib - report.rss_start_mib);
            reports.push(report.clone());
            last = Some(report);
        }
        let r = last.context("no seeds")?;
        let (m, s) = mean_std(&accs);
        rows.push((
            method.label(),
            m,
            s,
            r.trainable_params,
            r.backbone_params,
            mean_std(&tpm).0,
            r.peak_rss_mib,
            mean_std(&added).0,
        ));
    }
    println!();
    println!("| method | test acc (mean ± std) | trainable params | % of backbone | tokens/ms | peak RSS (MiB) | RSS added by training (MiB) |");
    println!("|---|---|---|---|---|---|---|");
    for (label, m, s, p, total, tpm, peak, added) in &rows {
        println!(
            "| {label} | {m:.2} ± {s:.2} | {p} | {:.3} % | {tpm:.2} | {peak:.0} | {added:.0} |",
            100.0 * *p as f64 / *total as f64
        );
    }
    let _ = std::fs::remove_dir_all(&runs);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)?;
    }
    Ok(())
}
