//! `petune bench`: the training-step benchmark of docs/benchmarks.md — for each method,
//! fixed batch × length, median step time after warm-up, tokens per ms, peak memory of
//! the training phase, model FLOPs and the fraction of the measured matmul rate; each
//! method in its own child process so that its memory peak is its own.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use petune::backbones::spec_from_config;
use petune::prelude::*;
use petune::train::bench::{bench_method, matmul_gflops, BenchConfig, BenchReport};
use serde::{Deserialize, Serialize};

use crate::params::parse_method_for;

/// Arguments of `petune bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A Hugging Face model folder.
    #[arg(long)]
    model: PathBuf,
    /// Methods: names (`mt`, `lora`, `npg`, `wo_pg`, `pt`, `ptv2`, `adapter`, `bitfit`,
    /// `sidpg_phm`, ... — LPT at the middle layer), inline JSON, or JSON files.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["model_tuning".to_string(), "npg".into(), "lora".into(), "prompt_tuning".into()])]
    methods: Vec<String>,
    /// Also run LPT methods fed by the frozen-prefix cache.
    #[arg(long)]
    cache: bool,
    /// Examples per step.
    #[arg(long, default_value_t = 16)]
    batch: i64,
    /// Tokens per example.
    #[arg(long, default_value_t = 128)]
    seq: i64,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Warm-up steps.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// libtorch threads (0 = its default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// `cpu`, `cuda` or `auto`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print JSON lines only.
    #[arg(long)]
    json: bool,
    /// Internal: run one job (JSON) in this process.
    #[arg(long, hide = true)]
    single: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    model: PathBuf,
    method: MethodConfig,
    config: BenchConfig,
    threads: usize,
    device: String,
}

fn device(name: &str) -> tch::Device {
    match name {
        "cpu" => tch::Device::Cpu,
        "cuda" => tch::Device::Cuda(0),
        _ => tch::Device::cuda_if_available(),
    }
}

fn run_job(job: &Job) -> anyhow::Result<BenchReport> {
    if job.threads > 0 {
        tch::set_num_threads(job.threads as i32);
    }
    let opts = LoadOptions { device: device(&job.device), ..LoadOptions::default() };
    let backbone = load_backbone(&job.model, &opts)
        .with_context(|| format!("loading {}", job.model.display()))?;
    Ok(bench_method(backbone.as_ref(), &job.method, &job.config)?)
}

/// Runs `petune bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(json) = &args.single {
        let job: Job = serde_json::from_str(json)?;
        println!("{}", serde_json::to_string(&run_job(&job)?)?);
        return Ok(());
    }
    let spec = spec_from_config(&args.model.join("config.json"))?;
    let exe = std::env::current_exe()?;
    let base = BenchConfig {
        batch: args.batch,
        seq: args.seq,
        steps: args.steps,
        warmup: args.warmup,
        ..BenchConfig::default()
    };
    let mut jobs = Vec::new();
    for m in &args.methods {
        let method = parse_method_for(m, Some(&spec))?;
        let lpt = matches!(method, MethodConfig::Lpt(_));
        jobs.push(Job {
            model: args.model.clone(),
            method: method.clone(),
            config: base.clone(),
            threads: args.threads,
            device: args.device.clone(),
        });
        if args.cache && lpt {
            let config = BenchConfig { cache: true, ..base.clone() };
            jobs.push(Job {
                model: args.model.clone(),
                method,
                config,
                threads: args.threads,
                device: args.device.clone(),
            });
        }
    }
    if args.threads > 0 {
        tch::set_num_threads(args.threads as i32);
    }
    let peak = matmul_gflops(
        args.batch * args.seq,
        spec.hidden,
        spec.intermediate,
        device(&args.device),
        20,
    );
    if !args.json {
        println!(
            "{}: batch {} × {} tokens, {} timed steps after {} warm-up, {} threads, matmul [{}×{}]·[{}×{}] = {:.1} GFLOP/s",
            spec.describe(), args.batch, args.seq, args.steps, args.warmup, tch::get_num_threads(),
            args.batch * args.seq, spec.hidden, spec.hidden, spec.intermediate, peak
        );
    }
    let mut reports = Vec::new();
    for job in &jobs {
        if !args.json {
            eprint!("  {} ... ", job.method.label());
        }
        let out = Command::new(&exe)
            .args(["bench", "--model"])
            .arg(&args.model)
            .arg("--single")
            .arg(serde_json::to_string(job)?)
            .output()?;
        if !out.status.success() {
            bail!("{}: {}", job.method.label(), String::from_utf8_lossy(&out.stderr));
        }
        let r: BenchReport = serde_json::from_slice(&out.stdout).context("child report")?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({"report": r, "matmul_gflops": peak}))?
            );
        } else {
            eprintln!("{:.1} ms", r.median_ms);
        }
        reports.push(r);
    }
    if args.json {
        return Ok(());
    }
    let mt = reports.iter().find(|r| r.method == "model tuning");
    println!();
    println!("| method | trainable | median step (ms) | tokens/ms | × MT speed | GFLOP/step | % of matmul rate | peak RSS (MiB) | added (MiB) | × MT added | below floor / above fwd / backward / optimizer (ms) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        let added = r.peak_rss_mib - r.rss_start_mib;
        let (speed, mem) = match mt {
            Some(m) => (
                format!("{:.2}", r.tokens_per_ms / m.tokens_per_ms),
                format!("{:.2}", added / (m.peak_rss_mib - m.rss_start_mib)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {:.1} | {:.2} | {speed} | {:.1} | {:.0} % | {:.0} | {:.0} | {mem} | {:.0} / {:.0} / {:.0} / {:.0} |",
            r.method,
            r.trainable_params,
            r.median_ms,
            r.tokens_per_ms,
            r.gflop_per_step,
            100.0 * r.gflops / peak,
            r.peak_rss_mib,
            added,
            r.profile.below_floor_ms,
            r.profile.above_forward_ms,
            r.profile.backward_ms,
            r.profile.optimizer_ms
        );
    }
    Ok(())
}
