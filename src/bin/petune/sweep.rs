//! `petune sweep`: one run config trained over prompt layers × seeds (× methods), each
//! run a `petune train` child process; writes `sweep.csv`, the test metric against the
//! prompt layer as mean ± std over seeds (`prompt_layers.png/.svg`, as the paper's
//! Figures 4–5), and the training-loss curves averaged over seeds
//! (`convergence.png/.svg`, as Figure 2-middle).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use petune::core::fsio::read_json;
use petune::prelude::*;
use petune::train::data::metrics::mean_std;

use crate::params::parse_method_for;
use crate::plot::{line_plot, Labels, Series};

/// Arguments of `petune sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The base run config (JSON).
    #[arg(long)]
    config: PathBuf,
    /// Prompt layers (paper numbering, 1-based) for LPT methods.
    #[arg(long, value_delimiter = ',')]
    prompt_layers: Vec<usize>,
    /// Seeds: few-shot split seeds when the config samples a few-shot split, else
    /// training seeds.
    #[arg(long, value_delimiter = ',', default_values_t = vec![13u64, 42])]
    seeds: Vec<u64>,
    /// Methods to sweep instead of the config's (names, inline JSON or files).
    #[arg(long, value_delimiter = ';')]
    methods: Vec<String>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

struct RunResult {
    method: String,
    prompt_layer: Option<usize>,
    seed: u64,
    report: TrainReport,
    losses: Vec<(i64, f64)>,
}

fn train_child(cfg: &RunConfig, dir: &Path) -> anyhow::Result<TrainReport> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("run.json");
    std::fs::write(&file, serde_json::to_string_pretty(cfg)?)?;
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["train", "--json", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .output()?;
    if !out.status.success() {
        bail!("run {} failed: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("reading the run's report")
}

fn losses(dir: &Path) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(dir.join("log.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v.get("step")?.as_i64()?, v.get("loss")?.as_f64()?)))
        .collect()
}

/// Runs `petune sweep`.
pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let base: RunConfig = read_json(&args.config)?;
    let spec = petune::backbones::spec_from_config(&base.model.join("config.json"))?;
    let methods: Vec<MethodConfig> = if args.methods.is_empty() {
        vec![base.method.clone()]
    } else {
        args.methods
            .iter()
            .map(|m| parse_method_for(m, Some(&spec)))
            .collect::<anyhow::Result<_>>()?
    };
    if args.seeds.is_empty() {
        bail!("--seeds: give at least one seed");
    }
    std::fs::create_dir_all(&args.out)?;
    let mut results = Vec::new();
    for method in &methods {
        let layers: Vec<Option<usize>> = match method {
            MethodConfig::Lpt(_) if !args.prompt_layers.is_empty() => {
                args.prompt_layers.iter().map(|&l| Some(l)).collect()
            }
            MethodConfig::Lpt(c) => vec![Some(c.prompt_layer)],
            _ => vec![None],
        };
        for pl in layers {
            for &seed in &args.seeds {
                let mut cfg = base.clone();
                cfg.method = method.clone();
                if let (MethodConfig::Lpt(c), Some(pl)) = (&mut cfg.method, pl) {
                    c.prompt_layer = pl;
                }
                match &mut cfg.task.fewshot {
                    Some(f) => f.seed = seed as u32,
                    None => cfg.train.seed = seed,
                }
                let tag = format!(
                    "{}-pl{}-seed{seed}",
                    method.label().replace([' ', '(', ')', '/', '='], ""),
                    pl.unwrap_or(0)
                );
                let dir = args.out.join("runs").join(&tag);
                eprint!(
                    "  {:<28} PL {:>2} seed {:>3} ... ",
                    method.label(),
                    pl.map(|p| p.to_string()).unwrap_or("-".into()),
                    seed
                );
                let report = train_child(&cfg, &dir)?;
                let test = report.test.as_ref().map(|t| t.headline).unwrap_or(f64::NAN);
                eprintln!("test {test:.4}");
                // "LPT NPG (PL 4)" → "LPT NPG": the layer has its own column.
                let name = cfg.method.label().split(" (PL").next().unwrap_or_default().to_string();
                results.push(RunResult {
                    method: name,
                    prompt_layer: pl,
                    seed,
                    report,
                    losses: losses(&dir),
                });
            }
        }
    }
    write_csv(&args.out.join("sweep.csv"), &results)?;
    plot(&args.out, &results)?;
    println!(
        "wrote {}/sweep.csv, prompt_layers.{{png,svg}}, convergence.{{png,svg}}",
        args.out.display()
    );
    Ok(())
}

fn write_csv(path: &Path, results: &[RunResult]) -> anyhow::Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "method,prompt_layer,seed,test,best_dev,best_step,trainable_params,tokens_per_ms,peak_rss_mib")?;
    for r in results {
        let rep = &r.report;
        writeln!(
            f,
            "\"{}\",{},{},{},{},{},{},{:.4},{:.1}",
            r.method,
            r.prompt_layer.map(|p| p.to_string()).unwrap_or_default(),
            r.seed,
            rep.test.as_ref().map(|t| t.headline.to_string()).unwrap_or_default(),
            rep.best_dev.as_ref().map(|t| t.headline.to_string()).unwrap_or_default(),
            rep.best_step,
            rep.trainable_params,
            rep.tokens_per_ms,
            rep.peak_rss_mib
        )?;
    }
    Ok(())
}

/// One series per name: `(x, mean, std)` of the values collected at each x.
fn summarise<X>(
    groups: BTreeMap<String, BTreeMap<X, Vec<f64>>>,
    to_f64: impl Fn(X) -> f64,
) -> Vec<Series> {
    groups
        .into_iter()
        .map(|(name, by_x)| Series {
            name,
            points: by_x
                .into_iter()
                .map(|(x, values)| {
                    let (mean, std) = mean_std(&values);
                    (to_f64(x), mean, std)
                })
                .collect(),
        })
        .collect()
}

fn plot(out: &Path, results: &[RunResult]) -> anyhow::Result<()> {
    // Test metric against the prompt layer, one line per method, mean ± std over seeds.
    let mut by_layer: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
    for r in results {
        if let (Some(pl), Some(t)) = (r.prompt_layer, &r.report.test) {
            by_layer
                .entry(r.method.clone())
                .or_default()
                .entry(pl)
                .or_default()
                .push(100.0 * t.headline);
        }
    }
    let series = summarise(by_layer, |pl| pl as f64);
    if series.iter().any(|s| !s.points.is_empty()) {
        let labels = Labels {
            title: "Test metric by prompt layer (mean ± std over seeds)",
            x: "prompt layer (PL)",
            y: "test metric (%)",
        };
        line_plot(&out.join("prompt_layers"), &series, &labels)?;
    }
    // Training loss by step, one line per (method, PL), mean ± std over seeds.
    let mut curves: BTreeMap<String, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for r in results {
        let name = match r.prompt_layer {
            Some(pl) => format!("{} PL {pl}", r.method),
            None => r.method.clone(),
        };
        for &(step, loss) in &r.losses {
            curves.entry(name.clone()).or_default().entry(step).or_default().push(loss);
        }
    }
    let series = summarise(curves, |step| step as f64);
    if series.iter().any(|s| !s.points.is_empty()) {
        let labels =
            Labels { title: "Training loss (mean ± std over seeds)", x: "step", y: "loss" };
        line_plot(&out.join("convergence"), &series, &labels)?;
    }
    Ok(())
}
