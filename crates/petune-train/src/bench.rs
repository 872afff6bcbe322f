//! The training-step benchmark of issue #7 (what `petune bench` and
//! `benches/train_step.rs` run): for a method on a backbone, fixed batch × length
//! synthetic inputs, the real training step (forward with the method's no-grad floor,
//! a 2-class linear head on the first token, cross-entropy, backward, clip, AdamW —
//! `adamw_fused` or `hf_adamw`), timed after warm-up; peak memory over the training phase only; and the step's model
//! FLOPs, to report which fraction of the machine's measured matmul rate a step reaches.
//!
//! FLOPs count the matmuls only: per layer and token `2·(4d² + 2d·I)` for the
//! projections and `4·T·d` for scores and context. A model-tuning step costs 3 forwards
//! (forward, input gradients, weight gradients); a layer whose weights are frozen but
//! whose input needs a gradient costs 2; a layer below a method's no-grad floor 1, and
//! 0 when its output comes from the frozen-prefix cache.

use std::time::Instant;

use petune_core::{Backbone, BackboneInput, Error, Result, SeqState};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::features::Batch;
use crate::head::{Head, HeadToken};
use crate::memory::{cuda_used_mib, peak_rss_mib, reset_peak_rss, rss_mib};
use crate::method::MethodConfig;
use crate::optim::{AdamW, AdamWConfig, OptimizerKind};
use crate::precision::{LossScaler, Precision};
use petune_core::{BindCtx, Delta};

/// Shape and length of a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchConfig {
    /// Examples per step.
    pub batch: i64,
    /// Tokens per example (no padding).
    pub seq: i64,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Seed of the synthetic batch and the initialisation.
    pub seed: u64,
    /// Feed the layers above the floor from a frozen-prefix cache (LPT).
    pub cache: bool,
    /// `f32`, `fp16` autocast with loss scaling (CUDA), or `bf16` autocast.
    pub precision: Precision,
    /// The optimizer (`adamw_fused` or `hf_adamw`).
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// TF32 for float32 matmuls on CUDA (off by default, as in PyTorch).
    #[serde(default)]
    pub tf32: bool,
    /// The last layer at every token, as `train.full_last_layer` (off: at the token
    /// the head reads, the trainer's default).
    #[serde(default)]
    pub full_last_layer: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            batch: 16,
            seq: 128,
            steps: 20,
            warmup: 3,
            seed: 42,
            cache: false,
            precision: Precision::F32,
            optimizer: OptimizerKind::AdamwFused,
            tf32: false,
            full_last_layer: false,
        }
    }
}

/// What one benchmark measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Method label (`+ cache` when the frozen-prefix cache fed it).
    pub method: String,
    /// The config.
    pub config: BenchConfig,
    /// Trainable parameters (method + head).
    pub trainable_params: i64,
    /// Median step time, ms.
    pub median_ms: f64,
    /// Fastest and slowest timed step, ms.
    pub min_ms: f64,
    /// Slowest timed step, ms.
    pub max_ms: f64,
    /// Tokens per ms at the median.
    pub tokens_per_ms: f64,
    /// Model FLOPs of one step (matmuls; see the module docs).
    pub gflop_per_step: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// RSS before the method was built, MiB.
    pub rss_start_mib: f64,
    /// Peak RSS during training, MiB.
    pub peak_rss_mib: f64,
    /// On CUDA: GPU memory in use before the method was built, MiB (`cudaMemGetInfo`:
    /// the CUDA context, the backbone's weights and the caching allocator's pool).
    #[serde(default)]
    pub gpu_start_mib: Option<f64>,
    /// On CUDA: GPU memory in use after the timed steps, MiB. libtorch's caching
    /// allocator keeps what it reserved at the step's peak, so this is the peak
    /// reservation (plus the context), measured the same way for the PyTorch peer.
    #[serde(default)]
    pub gpu_peak_mib: Option<f64>,
    /// Threads libtorch used.
    pub threads: i32,
    /// Device.
    pub device: String,
    /// Phase times of a profiled step (median of 3, after the timed steps).
    pub profile: StepProfile,
}

/// Where one step's time goes, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StepProfile {
    /// Embeddings and the layers below the floor (no autograd), or the cache lookup.
    pub below_floor_ms: f64,
    /// The layers from the floor up, the head and the loss.
    pub above_forward_ms: f64,
    /// Backward.
    pub backward_ms: f64,
    /// Gradient clipping and the AdamW update.
    pub optimizer_ms: f64,
}

/// Forward-pass matmul FLOPs of one layer for `b × t` tokens.
pub fn layer_flops(d: i64, inter: i64, b: i64, t: i64) -> f64 {
    let per_token = 2.0 * (4 * d * d + 2 * d * inter) as f64 + 4.0 * (t * d) as f64;
    per_token * (b * t) as f64
}

/// Model FLOPs of one training step of `method` (see the module docs); `rows_only`:
/// the last layer runs at the read tokens alone ([`BenchSession::last_layer_rows_only`]).
pub fn step_flops(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    trains_backbone: bool,
    cfg: &BenchConfig,
    rows_only: bool,
) -> f64 {
    let spec = backbone.spec();
    let f = layer_flops(spec.hidden, spec.intermediate, cfg.batch, cfg.seq);
    let n = spec.n_layers;
    let floor = delta.map(|d| d.grad_floor()).unwrap_or(0).min(n);
    let (below, above) = (floor as f64, (n - floor) as f64);
    let per_layer_above = if trains_backbone { 3.0 } else { 2.0 };
    let below_cost = if cfg.cache { 0.0 } else { 1.0 };
    let full = f * (below * below_cost + above * per_layer_above);
    if !rows_only || above < 1.0 {
        return full;
    }
    // The last layer at one query token per example: keys and values of every token.
    let read_out = read_out_layer_flops(spec.hidden, spec.intermediate, cfg.batch, cfg.seq);
    full - (f - read_out) * per_layer_above
}

/// Forward-pass matmul FLOPs of a layer computed at one query token per example
/// (`Backbone::layers_read_out`): the key and value projections of all `b × t`
/// tokens, the rest of [`layer_flops`] for `b` tokens attending `t`.
pub fn read_out_layer_flops(d: i64, inter: i64, b: i64, t: i64) -> f64 {
    let kv = 2.0 * (2 * d * d) as f64 * (b * t) as f64;
    let query = 2.0 * (2 * d * d + 2 * d * inter) as f64 + 4.0 * (t * d) as f64;
    kv + query * b as f64
}

/// The measured rate of the model's largest matmul (`[b·t, d] × [d, I]`), GFLOP/s.
/// In the precision's matmul type (float16 for `fp16` autocast, bfloat16 for `bf16`), with
/// TF32 for float32 on CUDA as `tf32` says.
pub fn matmul_gflops(
    m: i64,
    k: i64,
    n: i64,
    device: tch::Device,
    reps: usize,
    precision: Precision,
    tf32: bool,
) -> Result<f64> {
    let _no_grad = tch::no_grad_guard();
    petune_ext::set_allow_tf32_cublas(tf32)?;
    let kind = precision.matmul_kind();
    let a = Tensor::randn([m, k], (kind, device));
    let b = Tensor::randn([k, n], (kind, device));
    for _ in 0..3 {
        let _ = a.matmul(&b);
    }
    let t0 = Instant::now();
    for _ in 0..reps {
        let _ = a.matmul(&b);
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    let s = t0.elapsed().as_secs_f64();
    Ok(2.0 * (m * k * n) as f64 * reps as f64 / s / 1e9)
}

/// A ready-to-step training set-up on a synthetic batch.
pub struct BenchSession<'a> {
    backbone: &'a dyn Backbone,
    method: MethodConfig,
    _vs: VarStore,
    delta: Option<Box<dyn Delta>>,
    head: Head,
    opt: AdamW,
    batch: Batch,
    cached: Option<SeqState>,
    scaler: LossScaler,
    cfg: BenchConfig,
}

impl<'a> BenchSession<'a> {
    /// Builds `method` and a 2-class linear head on `backbone` and a synthetic batch.
    pub fn new(
        backbone: &'a dyn Backbone,
        method: &MethodConfig,
        cfg: &BenchConfig,
    ) -> Result<Self> {
        let spec = backbone.spec();
        let device = backbone.device();
        cfg.precision.check_device(device)?;
        petune_ext::set_allow_tf32_cublas(cfg.tf32)?;
        tch::manual_seed(cfg.seed as i64);
        let vs = VarStore::new(device);
        let delta = method.build(&(vs.root() / "delta"), backbone)?;
        let head = Head::linear(&(vs.root() / "head"), spec.hidden, 2, HeadToken::Cls, 0.1);
        crate::trainer::check_backbone_trainable(method, backbone)?;
        let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        if method.trains_backbone() {
            for (name, t) in backbone.var_store().variables() {
                let _ = t.set_requires_grad(true);
                params.push((name, t));
            }
        }
        let opt =
            AdamW::new(params, AdamWConfig { kind: cfg.optimizer, ..AdamWConfig::default() })?;
        let (b, t) = (cfg.batch, cfg.seq);
        if b < 1 || t < 2 || t > spec.max_positions {
            return Err(Error::config(
                "bench",
                format!("batch ≥ 1 and 2 ≤ seq ≤ {}", spec.max_positions),
            ));
        }
        let ids = Tensor::randint_low(5, spec.vocab, [b, t], (Kind::Int64, device));
        let input = BackboneInput::new(ids)?
            .with_token_types(Tensor::zeros([b, t], (Kind::Int64, device)))?;
        let batch = Batch {
            input,
            mask_pos: Tensor::full([b], t / 2, (Kind::Int64, device)),
            labels: Tensor::randint(2, [b], (Kind::Int64, device)),
            n_tokens: b * t,
            target_mask: None,
        };
        let cached = if cfg.cache {
            let d = delta.as_deref().filter(|d| d.frozen_prefix_cacheable()).ok_or_else(|| {
                Error::config("cache", format!("{} has no frozen prefix to cache", method.label()))
            })?;
            let prefix = || crate::model::frozen_prefix(backbone, d, &batch);
            Some(cfg.precision.autocast(device, prefix)?)
        } else {
            None
        };
        Ok(BenchSession {
            backbone,
            method: method.clone(),
            _vs: vs,
            delta,
            head,
            opt,
            batch,
            cached,
            scaler: LossScaler::new(cfg.precision, None),
            cfg: cfg.clone(),
        })
    }

    /// Whether a step computes its last layer at the read tokens alone: the default,
    /// for a head that reads one token per example, on a family that computes those
    /// rows alone, under row-wise hooks (`Backbone::layers_read_out`).
    pub fn last_layer_rows_only(&self) -> Result<bool> {
        if self.cfg.full_last_layer
            || !self.backbone.read_out_rows_only()
            || self.head.read_rows(&self.batch)?.is_none()
        {
            return Ok(false);
        }
        let Some(delta) = self.delta.as_deref() else { return Ok(true) };
        let ctx = BindCtx { backbone: self.backbone, input: &self.batch.input, train: true };
        Ok(delta.bind(&ctx)?.row_wise())
    }

    /// One training step; returns the loss.
    pub fn step(&mut self) -> Result<f64> {
        let device = self.backbone.device();
        let loss = self.cfg.precision.autocast(device, || -> Result<Tensor> {
            let (b, d, head) = (self.backbone, self.delta.as_deref(), &self.head);
            let s0 = self.cached.clone();
            let full = self.cfg.full_last_layer;
            let out = crate::model::head_output(b, d, head, &self.batch, s0, true, full)?;
            Ok(self.head.loss(&out, &self.batch.labels))
        })?;
        self.scaler.backward(&loss);
        self.scaler.step(&mut self.opt, 1.0, 1e-5)?;
        Ok(loss.double_value(&[]))
    }

    /// One training step timed by phase (ms): the layers below the floor (no autograd),
    /// the layers above with the head (forward), backward, clip + optimizer.
    pub fn profile_step(&mut self) -> Result<StepProfile> {
        let sync = |b: &dyn Backbone| {
            if b.device().is_cuda() {
                tch::Cuda::synchronize(0);
            }
        };
        let n = self.backbone.spec().n_layers;
        let t0 = Instant::now();
        let delta = self.delta.as_deref();
        let hooks: Box<dyn petune_core::Hooks + '_> = match delta {
            Some(d) => d.bind(&petune_core::BindCtx {
                backbone: self.backbone,
                input: &self.batch.input,
                train: true,
            })?,
            None => Box::new(petune_core::NoHooks),
        };
        let floor = delta.map(|d| d.grad_floor()).unwrap_or(0).min(n);
        let precision = self.cfg.precision;
        let s = match &self.cached {
            Some(s0) => s0.clone(),
            None => precision.autocast(self.backbone.device(), || -> Result<SeqState> {
                let _g = (floor > 0).then(tch::no_grad_guard);
                let s = self.backbone.embed(&self.batch.input, hooks.as_ref(), true)?;
                self.backbone.layers(s, 0..floor, hooks.as_ref(), true)
            })?,
        };
        sync(self.backbone);
        let t1 = Instant::now();
        let rows =
            if self.cfg.full_last_layer { None } else { self.head.read_rows(&self.batch)? };
        let loss = precision.autocast(self.backbone.device(), || -> Result<Tensor> {
            let (b, h) = (self.backbone, hooks.as_ref());
            let s = crate::model::run_range(b, s, floor..n, h, true, rows.as_ref())?;
            let s = self.backbone.finish(s, h, true)?;
            let out = crate::model::score(b, &self.head, &self.batch, &s, true, rows.is_some())?;
            Ok(self.head.loss(&out, &self.batch.labels))
        })?;
        let _ = loss.double_value(&[]);
        let t2 = Instant::now();
        self.scaler.backward(&loss);
        sync(self.backbone);
        let t3 = Instant::now();
        self.scaler.step(&mut self.opt, 1.0, 1e-5)?;
        sync(self.backbone);
        let t4 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        Ok(StepProfile {
            below_floor_ms: ms(t0, t1),
            above_forward_ms: ms(t1, t2),
            backward_ms: ms(t2, t3),
            optimizer_ms: ms(t3, t4),
        })
    }

    /// Runs warm-up and timed steps and reports.
    pub fn run(mut self, rss_start: f64, gpu_start: Option<f64>) -> Result<BenchReport> {
        for _ in 0..self.cfg.warmup {
            self.step()?;
        }
        let mut times = Vec::with_capacity(self.cfg.steps);
        for _ in 0..self.cfg.steps.max(1) {
            let t0 = Instant::now();
            self.step()?;
            if self.backbone.device().is_cuda() {
                tch::Cuda::synchronize(0);
            }
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let gpu_peak = gpu_start.and(cuda_used_mib());
        times.sort_by(f64::total_cmp);
        let mut profiles = (0..3).map(|_| self.profile_step()).collect::<Result<Vec<_>>>()?;
        profiles.sort_by(|a, b| {
            let total = |p: &StepProfile| {
                p.below_floor_ms + p.above_forward_ms + p.backward_ms + p.optimizer_ms
            };
            total(a).total_cmp(&total(b))
        });
        let profile = profiles[1];
        let median = times[times.len() / 2];
        let gflop = step_flops(
            self.backbone,
            self.delta.as_deref(),
            self.method.trains_backbone(),
            &self.cfg,
            self.last_layer_rows_only()?,
        ) / 1e9;
        let trainable = self.opt.params().iter().map(|p| p.tensor.numel() as i64).sum();
        let label = if self.cfg.cache {
            format!("{} + cache", self.method.label())
        } else {
            self.method.label()
        };
        Ok(BenchReport {
            method: label,
            config: self.cfg.clone(),
            trainable_params: trainable,
            median_ms: median,
            min_ms: times[0],
            max_ms: times[times.len() - 1],
            tokens_per_ms: (self.cfg.batch * self.cfg.seq) as f64 / median,
            gflop_per_step: gflop,
            gflops: gflop / (median / 1e3),
            rss_start_mib: rss_start,
            peak_rss_mib: peak_rss_mib(),
            gpu_start_mib: gpu_start,
            gpu_peak_mib: gpu_peak,
            threads: tch::get_num_threads(),
            device: format!("{:?}", self.backbone.device()),
            profile,
        })
    }
}

/// Benchmarks `method` on `backbone`: memory is measured from here on.
pub fn bench_method(
    backbone: &dyn Backbone,
    method: &MethodConfig,
    cfg: &BenchConfig,
) -> Result<BenchReport> {
    reset_peak_rss();
    let rss_start = rss_mib();
    let gpu_start = if backbone.device().is_cuda() { cuda_used_mib() } else { None };
    BenchSession::new(backbone, method, cfg)?.run(rss_start, gpu_start)
}
