//! `petune probe`: the LPT paper's mutual-information probe (Appendix A) — a linear
//! probe per layer on a trained delta's hidden states, the estimate I(h_ℓ; y) in bits
//! per layer as a table, JSON and a PNG/SVG plot (mean ± std over random splits);
//! `--compare-base` adds the plain backbone's curve.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use petune::core::fsio::read_json;
use petune::experiments::plot::{line_plot, Labels, Series};
use petune::prelude::*;
use petune::train::data::numpy_rng::shuffled_indices;
use petune::train::data::Dataset;
use petune::train::head::HeadToken;
use petune::train::probe::{probe_layers, ProbeConfig, ProbeReport};

use crate::infer::{dataset, load_trained};
use crate::out::outln;

/// Which split of a run config's task to probe on.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Dev,
    Test,
}

/// Arguments of `petune probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The trained delta folder.
    #[arg(long)]
    delta: PathBuf,
    /// The backbone it was trained on (a Hugging Face folder).
    #[arg(long)]
    model: PathBuf,
    /// A labelled JSONL / CSV file to probe on.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    input: Option<PathBuf>,
    /// Or a run config (JSON) whose task data (few-shot protocol included) to probe on.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The split of `--config`'s task.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Probe a random subset (seeded) of at most this many examples.
    #[arg(long)]
    limit: Option<usize>,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Print JSON only.
    #[arg(long)]
    json: bool,
    /// Random probe splits (one probe per layer and seed).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1u64, 2, 3])]
    seeds: Vec<u64>,
    /// Adam steps per probe.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Fraction of the examples held out to score the probes.
    #[arg(long, default_value_t = 0.5)]
    holdout: f64,
    /// Token to read (`mask`, `cls`, `last`; default: the head's).
    #[arg(long)]
    token: Option<String>,
    /// Also probe the backbone with the delta disabled.
    #[arg(long)]
    compare_base: bool,
    /// Write probe.json and mi_by_layer.{png,svg} here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn print_table(r: &ProbeReport) -> anyhow::Result<()> {
    outln!(
        "{} — token {:?}, {} examples, label entropy {:.3} bits",
        r.model,
        r.token,
        r.examples,
        r.label_entropy_bits
    )?;
    outln!("| layer | MI (bits) | probe accuracy | probe CE (nats) |")?;
    outln!("|---|---|---|---|")?;
    for l in &r.layers {
        outln!(
            "| {} | {:.3} ± {:.3} | {:.3} | {:.3} |",
            l.layer,
            l.mi_bits,
            l.mi_bits_std,
            l.accuracy,
            l.cross_entropy
        )?;
    }
    Ok(())
}

/// Runs `petune probe`.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let mut model = load_trained(&args.model, &args.delta, false, BaseDtype::F32)?;
    let mut ds: Dataset = match (&args.input, &args.config) {
        (Some(path), _) => dataset(path, &model)?,
        (None, Some(config)) => {
            let cfg: RunConfig = read_json(config)?;
            let data = cfg.task.load()?;
            match args.split {
                SplitArg::Train => data.train,
                SplitArg::Dev => data.dev,
                SplitArg::Test => data.test.context("the run config's task has no test set")?,
            }
        }
        (None, None) => anyhow::bail!("give --input FILE or --config RUN.json"),
    };
    if let Some(n) = args.limit.filter(|&n| n < ds.examples.len()) {
        // A seeded random subset: split files are often sorted by label.
        let keep = shuffled_indices(ds.examples.len(), 0);
        ds.examples = keep[..n].iter().map(|&i| ds.examples[i].clone()).collect();
    }
    let classes: std::collections::BTreeSet<usize> = ds.examples.iter().map(|e| e.label).collect();
    if classes.len() < 2 {
        anyhow::bail!(
            "{} examples of {} class(es): mutual information with the label needs at least two classes",
            ds.examples.len(),
            classes.len()
        );
    }
    let token = match args.token.as_deref() {
        None => None,
        Some(t) => Some(
            serde_json::from_value::<HeadToken>(serde_json::json!(t))
                .map_err(|_| anyhow::anyhow!("--token {t}: one of mask, cls, last"))?,
        ),
    };
    let cfg = ProbeConfig {
        steps: args.steps,
        holdout: args.holdout,
        seeds: args.seeds.clone(),
        token,
        batch_size: args.batch_size,
        ..ProbeConfig::default()
    };
    let mut reports = vec![probe_layers(&model, &ds, &cfg)?];
    if args.compare_base {
        model.set_delta_enabled(false)?;
        let token = Some(reports[0].token);
        reports.push(probe_layers(&model, &ds, &ProbeConfig { token, ..cfg.clone() })?);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reports)?)?;
    } else {
        for r in &reports {
            print_table(r)?;
            outln!()?;
        }
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("probe.json"), serde_json::to_string_pretty(&reports)?)?;
        let series: Vec<Series> = reports
            .iter()
            .map(|r| Series {
                name: r.model.clone(),
                points: r
                    .layers
                    .iter()
                    .map(|l| (l.layer as f64, l.mi_bits, l.mi_bits_std))
                    .collect(),
            })
            .collect();
        let labels = Labels {
            title: "Estimated I(h; y) by layer (mean ± std over probe splits)",
            x: "layer (0 = embeddings)",
            y: "mutual information (bits)",
        };
        line_plot(&out.join("mi_by_layer"), &series, &labels)?;
        if !args.json {
            outln!("wrote {}/probe.json, mi_by_layer.{{png,svg}}", out.display())?;
        }
    }
    Ok(())
}
