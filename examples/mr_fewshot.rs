//! The main job: few-shot MR (real movie-review sentences, the authors' 100-shot
//! protocol) on the real all-MiniLM-L6-v2 with LPT-NPG, LPT w/o PG, prompt tuning and
//! model tuning, over several few-shot seeds, printing the paper-style comparison:
//! test accuracy mean ± std, trainable parameters, training tokens/ms, peak memory.
//!
//! Each run is a child process so that its peak RSS is its own.
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
use std::process::Command;

use anyhow::{bail, Context};
use clap::Parser;
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
    /// Write the table and every report as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Internal: run one config (JSON) and print its report.
    #[arg(long, hide = true)]
    single: Option<String>,
}

/// Every method this example knows.
const ALL_METHODS: [&str; 14] = [
    "npg",
    "appg",
    "mppg",
    "wo_pg",
    "pt",
    "pt_peft",
    "ptv2",
    "adapter",
    "adapter_drop",
    "bitfit",
    "lora",
    "sidpg",
    "mt",
    "all",
];

fn method(name: &str, args: &Args) -> anyhow::Result<(MethodConfig, f64)> {
    let init = PromptInit::Random { std: args.prompt_std };
    let lr = args.prompt_lr;
    Ok(match name {
        "npg" => (MethodConfig::Lpt(LptConfig::npg(4)), lr),
        "appg" => (MethodConfig::Lpt(LptConfig::pooling(4, PoolKind::Avg, 10)), lr),
        "mppg" => (MethodConfig::Lpt(LptConfig::pooling(4, PoolKind::Max, 10)), lr),
        "wo_pg" => {
            let mut c = LptConfig::static_prompt(4);
            c.generator = GeneratorConfig::Static { len: 20, init };
            (MethodConfig::Lpt(c), lr)
        }
        "pt" => (
            MethodConfig::PromptTuning(PromptTuningConfig { len: 20, init, ..Default::default() }),
            lr,
        ),
        "pt_peft" => (
            MethodConfig::PromptTuning(PromptTuningConfig {
                len: 20,
                init: PromptInit::Vocab { first_n: 5000 },
                position: PromptPosition::Peft,
            }),
            lr,
        ),
        "ptv2" => (MethodConfig::PTuningV2(PTuningV2Config::default()), lr),
        "adapter" => (MethodConfig::Adapter(AdapterConfig::default()), 2e-3),
        "adapter_drop" => (
            MethodConfig::AdapterDrop(AdapterDropConfig {
                adapter: AdapterConfig::default(),
                drop_lowest: 3,
                schedule: DropSchedule::Fixed,
            }),
            2e-3,
        ),
        "bitfit" => (MethodConfig::BitFit(BitFitConfig::default()), 5e-3),
        "lora" => (MethodConfig::Lora(LoraConfig::default()), 2e-3),
        "sidpg" => (MethodConfig::SidpgPhm(SidpgConfig::default()), 2e-3),
        "mt" => (MethodConfig::ModelTuning, 5e-5),
        other => bail!("unknown method `{other}` (one of {})", ALL_METHODS.join(", ")),
    })
}

/// Runs one config in a child process: `petune train --config FILE --json` when the
/// CLI is built next to this example (scripts/main.sh builds it), else this example
/// itself in `--single` mode.
fn run_child(exe: &Path, cfg: &RunConfig) -> anyhow::Result<std::process::Output> {
    let cli = exe.parent().and_then(Path::parent).map(|d| d.join("petune"));
    match cli.filter(|p| p.is_file()) {
        Some(cli) => {
            let file = std::env::temp_dir().join(format!("petune-mr-{}.json", std::process::id()));
            std::fs::write(&file, serde_json::to_string_pretty(cfg)?)?;
            let out =
                Command::new(cli).args(["train", "--json", "--config"]).arg(&file).output()?;
            let _ = std::fs::remove_file(&file);
            Ok(out)
        }
        None => Ok(Command::new(exe).arg("--single").arg(serde_json::to_string(cfg)?).output()?),
    }
}

fn run_single(json: &str) -> anyhow::Result<()> {
    let cfg: RunConfig = serde_json::from_str(json)?;
    let model = LoadedModel::from_dir(&cfg.model, &LoadOptions::default())?;
    let r = LptTrainer::new(model, cfg).quiet(true).fit()?;
    println!("{}", serde_json::to_string(&r.report)?);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    petune::train::memory::tune_allocator();
    if let Some(json) = &args.single {
        return run_single(json);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join(".assets/all-MiniLM-L6-v2");
    let mr = root.join(".assets/mr/movieReviewSnippets_GroundTruth.txt");
    if !model.join(".ok").exists() || !mr.exists() {
        bail!("the real assets are missing: run scripts/setup.sh");
    }
    let exe = std::env::current_exe()?;
    println!(
        "few-shot MR, all-MiniLM-L6-v2, k = {}, dev = {}, test = 2000, {} steps, seeds {:?}, {} threads",
        args.k, args.k_dev, args.steps, args.seeds, args.threads
    );
    let mut rows = Vec::new();
    let mut reports = Vec::new();
    let names: Vec<String> = if args.methods.iter().any(|m| m == "all") {
        ALL_METHODS.iter().filter(|&&m| m != "all").map(|m| m.to_string()).collect()
    } else {
        args.methods.clone()
    };
    for name in &names {
        let (method, lr) = method(name, &args)?;
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
                    name: TaskName::Mr,
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
                    ..Default::default()
                },
                out_dir: None,
            };
            eprint!("  {:<22} seed {:>3} ... ", method.label(), seed);
            let out = run_child(&exe, &cfg)?;
            if !out.status.success() {
                bail!("run failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let report: TrainReport =
                serde_json::from_slice(&out.stdout).context("child report")?;
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
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)?;
    }
    Ok(())
}
