//! Benchmark jobs (docs/benchmarks.md, paper Tables 5 and 10): one method's training
//! step at a fixed batch × length, run in a child `petune bench` process so that its
//! memory peak is its own, and the markdown table with the ratios to model tuning.

use std::path::PathBuf;
use std::process::Command;

use petune_backbones::{load_backbone, BaseDtype, LoadOptions};
use petune_core::BackboneSpec;
use petune_train::bench::{bench_method, matmul_gflops, BenchConfig, BenchReport};
use petune_train::MethodConfig;
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::runner::Runner;

/// One benchmark: a method on a model (a Hugging Face folder or a GGUF file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchJob {
    /// Hugging Face model folder or GGUF file.
    pub model: PathBuf,
    /// The method.
    pub method: MethodConfig,
    /// Batch, length, steps, cache.
    pub config: BenchConfig,
    /// libtorch threads (0 = its default).
    pub threads: usize,
    /// `cpu`, `cuda` or `auto`.
    pub device: String,
    /// Keep a GGUF model's projection weights quantized (`LoadOptions::quantized_base`).
    #[serde(default)]
    pub quantized_base: bool,
    /// How the frozen weights are stored (`LoadOptions::base_dtype`).
    #[serde(default)]
    pub base_dtype: BaseDtype,
}

/// Runs `job` in this process.
pub fn run_bench_job(job: &BenchJob) -> Result<BenchReport> {
    if job.threads > 0 {
        tch::set_num_threads(job.threads as i32);
    }
    if job.quantized_base && job.method.trains_backbone() {
        return Err(petune_core::Error::Incompatible {
            method: job.method.label(),
            backbone: job.model.display().to_string(),
            reason: "a quantized base cannot be trained: drop --quantized-base".into(),
        }
        .into());
    }
    if job.base_dtype != BaseDtype::F32 && job.method.trains_backbone() {
        return Err(petune_core::Error::Incompatible {
            method: job.method.label(),
            backbone: job.model.display().to_string(),
            reason: "model tuning trains every base weight: drop --base-dtype bf16".into(),
        }
        .into());
    }
    let opts = LoadOptions {
        device: petune_core::parse_device(&job.device)?,
        quantized_base: job.quantized_base,
        base_dtype: job.base_dtype,
    };
    let backbone = load_backbone(&job.model, &opts)?;
    Ok(bench_method(backbone.as_ref(), &job.method, &job.config)?)
}

impl Runner {
    /// Runs `job`: `petune bench --single JOB` in a child process, or in this process.
    pub fn bench(&self, job: &BenchJob) -> Result<BenchReport> {
        let Runner::Cli(cli) = self else {
            return run_bench_job(job);
        };
        let out = Command::new(cli)
            .args(["bench", "--model"])
            .arg(&job.model)
            .arg("--single")
            .arg(serde_json::to_string(job)?)
            .output()
            .map_err(|e| ExperimentError::io(cli, e))?;
        let run = format!("bench {}", job.method.label());
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(ExperimentError::Run { run, msg });
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| ExperimentError::Run { run, msg: format!("unreadable report: {e}") })
    }
}

/// Runs `jobs` in turn (each in its own process when `runner` is the CLI), calling
/// `done` after each, then measures the rate of `spec`'s largest matmul at the first
/// job's shape, device, precision and threads. The rate is measured after the jobs: a
/// CUDA context (and cached blocks) held by this process would count in every child's
/// GPU-memory figures. Returns the reports and the rate in GFLOP/s.
pub fn run_bench_jobs(
    runner: &Runner,
    jobs: &[BenchJob],
    spec: &BackboneSpec,
    mut done: impl FnMut(&BenchJob, &BenchReport),
) -> Result<(Vec<BenchReport>, f64)> {
    let Some(first) = jobs.first() else {
        return Err(petune_core::Error::config("methods", "no method to benchmark").into());
    };
    let mut reports = Vec::with_capacity(jobs.len());
    for job in jobs {
        let report = runner.bench(job)?;
        done(job, &report);
        reports.push(report);
    }
    if first.threads > 0 {
        tch::set_num_threads(first.threads as i32);
    }
    let c = &first.config;
    let device = petune_core::parse_device(&first.device)?;
    let (m, k, n) = (c.batch * c.seq, spec.hidden, spec.intermediate);
    let rate = matmul_gflops(m, k, n, device, 20, c.precision, c.tf32)?;
    Ok((reports, rate))
}

/// Memory a run added above the idle process, MiB: GPU memory on CUDA, RSS on CPU.
pub fn added_mib(r: &BenchReport) -> f64 {
    let (start, peak) = peak_memory(r);
    peak - start
}

/// (start, peak) memory of a run, MiB: GPU memory on CUDA, process RSS on CPU.
pub fn peak_memory(r: &BenchReport) -> (f64, f64) {
    match (r.gpu_start_mib, r.gpu_peak_mib) {
        (Some(start), Some(peak)) => (start, peak),
        _ => (r.rss_start_mib, r.peak_rss_mib),
    }
}

/// `x / model tuning's x` as text, `-` without a model-tuning row.
fn ratio(x: f64, mt: Option<f64>) -> String {
    mt.map(|m| format!("{:.2}", x / m)).unwrap_or_else(|| "-".into())
}

/// The benchmark table: speed, FLOPs, share of the matmul rate `peak_gflops`, memory and
/// the ratios to model tuning, with the step's phase profile.
pub fn bench_table(reports: &[BenchReport], peak_gflops: f64) -> String {
    let mt = reports.iter().find(|r| r.method == "model tuning");
    let mut s = String::from(
        "| method | optimizer | trainable | median step (ms) | tokens/ms | × MT speed | GFLOP/step | % of matmul rate | peak memory (MiB) | added (MiB) | × MT added | below floor / above fwd / backward / optimizer (ms) | optimizer / backward |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        s += &format!(
            "| {} | {} | {} | {:.1} | {:.2} | {} | {:.1} | {:.0} % | {:.0} | {:.0} | {} | {:.0} / {:.0} / {:.0} / {:.1} | {:.3} |\n",
            r.method,
            if r.config.full_last_layer {
                format!("{}, full last layer", r.config.optimizer.name())
            } else {
                r.config.optimizer.name().to_string()
            },
            r.trainable_params,
            r.median_ms,
            r.tokens_per_ms,
            ratio(r.tokens_per_ms, mt.map(|m| m.tokens_per_ms)),
            r.gflop_per_step,
            100.0 * r.gflops / peak_gflops,
            peak_memory(r).1,
            added_mib(r),
            ratio(added_mib(r), mt.map(added_mib)),
            r.profile.below_floor_ms,
            r.profile.above_forward_ms,
            r.profile.backward_ms,
            r.profile.optimizer_ms,
            r.profile.optimizer_ms / r.profile.backward_ms.max(1e-9)
        );
    }
    s
}
