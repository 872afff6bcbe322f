//! `petune train --config RUN.json`: one training run, writing `delta.safetensors`,
//! `delta.json`, `metrics.json` and `log.jsonl` to the output folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use petune::core::fsio::read_json;
use petune::prelude::*;

/// Arguments of `petune train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run config (JSON): model, task, method, head, train, out_dir.
    #[arg(long)]
    config: PathBuf,
    /// Output folder (overrides `out_dir`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON only.
    #[arg(long)]
    json: bool,
}

/// Runs `petune train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut cfg: RunConfig = read_json(&args.config)?;
    if let Some(out) = &args.out {
        cfg.out_dir = Some(out.clone());
    }
    let opts = LoadOptions { device: cfg.train.device()?, ..LoadOptions::default() };
    let model = LoadedModel::from_dir(&cfg.model, &opts)
        .with_context(|| format!("loading {}", cfg.model.display()))?;
    let result = LptTrainer::new(model, cfg.clone()).quiet(args.json).fit()?;
    let r = &result.report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("method            {}", r.method);
    println!("task              {}", r.task);
    if let Some(d) = &r.best_dev {
        println!("best dev {:<8} {:.4} (step {})", d.key, d.headline, r.best_step);
    }
    if let Some(t) = &r.test {
        println!("test {:<12} {:.4}", t.key, t.headline);
    }
    println!(
        "trainable params  {} ({:.4} % of {})",
        r.trainable_params,
        100.0 * r.trainable_params as f64 / r.backbone_params as f64,
        r.backbone_params
    );
    println!("tokens / ms       {:.2}", r.tokens_per_ms);
    println!("peak RSS          {:.0} MiB", r.peak_rss_mib);
    if let Some(dir) = &cfg.out_dir {
        println!("wrote             {}", dir.display());
    }
    Ok(())
}
