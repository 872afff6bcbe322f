//! `petune bench`: the training-step benchmark of docs/benchmarks.md — for each method,
//! fixed batch × length, median step time after warm-up, tokens per ms, peak memory of
//! the training phase, model FLOPs and the fraction of the measured matmul rate; each
//! method in its own child process so that its memory peak is its own.

use std::path::PathBuf;

use crate::out::{out, outln};
use anyhow::bail;
use clap::builder::RangedU64ValueParser;
use clap::Args;
use petune::backbones::model_spec;
use petune::experiments::bench_suite::{bench_table, run_bench_job, run_bench_jobs, BenchJob};
use petune::experiments::catalog::parse_method;
use petune::experiments::runner::Runner;
use petune::prelude::*;
use petune::train::bench::BenchConfig;
use petune::train::estimate::check_fits;
use petune::train::{OptimizerKind, Precision};

/// Arguments of `petune bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A Hugging Face model folder or a GGUF file.
    #[arg(long)]
    model: PathBuf,
    /// Keep a GGUF model's frozen projection weights quantized, dequantized layer by
    /// layer (not with model tuning).
    #[arg(long)]
    quantized_base: bool,
    /// Store the frozen weight matrices in `bf16` or `f32` (default); model tuning is
    /// skipped with `bf16` (its weights train).
    #[arg(long, default_value = "f32", value_parser = crate::infer::parse_base_dtype)]
    base_dtype: BaseDtype,
    /// Methods: names (`mt`, `lora`, `npg`, `wo_pg`, `pt`, `ptv2`, `adapter`, `bitfit`,
    /// `sidpg_phm`, ... — LPT at the middle layer), inline JSON, or JSON files.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["model_tuning".to_string(), "npg".into(), "lora".into(), "prompt_tuning".into()])]
    methods: Vec<String>,
    /// Also run LPT methods fed by the frozen-prefix cache.
    #[arg(long)]
    cache: bool,
    /// Examples per step.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(i64).range(1..=4096))]
    batch: i64,
    /// Tokens per example (at most the model's positions).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(i64).range(2..=65536))]
    seq: i64,
    /// Timed steps.
    #[arg(long, default_value_t = 20, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    steps: usize,
    /// Warm-up steps.
    #[arg(long, default_value_t = 3, value_parser = RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    warmup: usize,
    /// libtorch threads (0 = its default).
    #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1024))]
    threads: usize,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// `f32`, `fp16` (CUDA autocast with loss scaling) or `bf16` (autocast, CUDA or CPU).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    precision: Precision,
    /// Optimizers, each method runs with each: `adamw_fused` (the trainer's default),
    /// `hf_adamw` (the LPT authors' recurrence, per tensor).
    #[arg(long, value_delimiter = ',', default_value = "adamw_fused", value_parser = parse_optimizer)]
    optimizer: Vec<OptimizerKind>,
    /// Let CUDA run float32 matmuls in TF32 (off by default, as in PyTorch).
    #[arg(long)]
    tf32: bool,
    /// The last layer: `read_out` (at the token the head reads, the trainer's default)
    /// or `full` (every token, as `train.full_last_layer`); each method runs with each.
    #[arg(long, value_delimiter = ',', default_value = "read_out", value_parser = parse_last_layer)]
    last_layer: Vec<bool>,
    /// Print JSON lines only.
    #[arg(long)]
    json: bool,
    /// Internal: run one job (JSON) in this process.
    #[arg(long, hide = true)]
    single: Option<String>,
}

/// Runs `petune bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(json) = &args.single {
        let job: BenchJob = serde_json::from_str(json)?;
        outln!("{}", serde_json::to_string(&run_bench_job(&job)?)?)?;
        return Ok(());
    }
    let spec = model_spec(&args.model)?;
    petune::core::parse_device(&args.device)?;
    check_size(args, &spec)?;
    let exe = std::env::current_exe()?;
    let base = BenchConfig {
        batch: args.batch,
        seq: args.seq,
        steps: args.steps,
        warmup: args.warmup,
        precision: args.precision,
        tf32: args.tf32,
        ..BenchConfig::default()
    };
    let mut jobs = Vec::new();
    for m in &args.methods {
        let method = parse_method(m, &spec)?;
        if args.quantized_base && method.trains_backbone() {
            eprintln!("  {} skipped: a quantized base cannot be trained", method.label());
            continue;
        }
        if args.base_dtype != BaseDtype::F32 && method.trains_backbone() {
            eprintln!("  {} skipped: a bf16 base cannot be trained", method.label());
            continue;
        }
        // LPT also runs fed by the frozen-prefix cache when asked.
        let caches: &[bool] = if args.cache && matches!(method, MethodConfig::Lpt(_)) {
            &[false, true]
        } else {
            &[false]
        };
        for &cache in caches {
            for (&optimizer, &full_last_layer) in
                args.optimizer.iter().flat_map(|o| args.last_layer.iter().map(move |l| (o, l)))
            {
                jobs.push(BenchJob {
                    model: args.model.clone(),
                    method: method.clone(),
                    config: BenchConfig { cache, optimizer, full_last_layer, ..base.clone() },
                    threads: args.threads,
                    device: args.device.clone(),
                    quantized_base: args.quantized_base,
                    base_dtype: args.base_dtype,
                });
            }
        }
    }
    let json = args.json;
    // The first failed write of a streamed report (a closed stdout), returned once the
    // jobs are done.
    let mut streamed = Ok(());
    let (reports, peak) = run_bench_jobs(&Runner::Cli(exe), &jobs, &spec, |job, r| {
        if json {
            if streamed.is_ok() {
                streamed = outln!("{}", serde_json::json!({ "report": r }));
            }
        } else {
            let full = if job.config.full_last_layer { ", full last layer" } else { "" };
            let opt = format!("{}{full}", job.config.optimizer.name());
            eprintln!("  {} ({opt}) ... {:.1} ms", job.method.label(), r.median_ms);
        }
    })?;
    streamed?;
    let device = petune::core::parse_device(&args.device)?;
    if args.json {
        outln!("{}", serde_json::to_string(&serde_json::json!({ "matmul_gflops": peak }))?)?;
    } else {
        outln!(
            "\n{}: batch {} × {} tokens, {} timed steps after {} warm-up, {} threads, {:?}, {}, base {}, TF32 {}, matmul [{}×{}]·[{}×{}] = {:.1} GFLOP/s\n",
            spec.describe(), args.batch, args.seq, args.steps, args.warmup, tch::get_num_threads(),
            device, args.precision.name(), args.base_dtype.name(), if args.tf32 { "on" } else { "off" },
            args.batch * args.seq, spec.hidden, spec.hidden, spec.intermediate, peak
        )?;
        out!("{}", bench_table(&reports, peak))?;
    }
    Ok(())
}

/// Refuses a batch that cannot fit: longer than the model's positions, or activations
/// beyond this machine's memory (petune_train::estimate::check_fits).
fn check_size(args: &BenchArgs, spec: &BackboneSpec) -> anyhow::Result<()> {
    if args.seq > spec.max_positions {
        bail!("--seq {}: {} has {} positions", args.seq, spec.describe(), spec.max_positions);
    }
    Ok(check_fits(spec, args.batch, args.seq, true, "--batch × --seq")?)
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("`{s}`: expected f32, fp16 or bf16"))
}

/// `full` → true (every token), `read_out` → false.
fn parse_last_layer(s: &str) -> Result<bool, String> {
    match s {
        "full" => Ok(true),
        "read_out" => Ok(false),
        _ => Err(format!("`{s}`: expected read_out or full")),
    }
}

fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("`{s}`: expected adamw_fused or hf_adamw"))
}
