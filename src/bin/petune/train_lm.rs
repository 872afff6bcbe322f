//! `petune train --model DIR --train FILE.jsonl` when the file's rows have `prompt` and
//! `completion`: causal-LM tuning of a decoder (the loss on the completion tokens only;
//! `petune::train::causal_lm`), writing `delta.safetensors`, `delta.json`
//! (`"objective": "causal_lm"`) and `metrics.json`, which `petune generate --delta`
//! loads. A short fixed schedule (AdamW, linear decay, batch 8), not yet the resumable
//! run of the common trainer.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::out::outln;
use anyhow::{bail, Context};
use petune::core::fsio::write_json_atomic;
use petune::core::Arch;
use petune::experiments::catalog::{parse_method, scaled_lr};
use petune::prelude::*;
use petune::train::causal_lm::{
    encode, evaluate, read_instruct_jsonl, save, train, CausalLmManifest, LmFeature, LmTrainConfig,
    OBJECTIVE,
};
use tch::nn::VarStore;

/// What the causal-LM run takes from `petune train`'s flags.
pub struct LmArgs<'a> {
    /// Decoder folder.
    pub model: &'a Path,
    /// Training rows.
    pub train: &'a Path,
    /// Dev rows (loss / perplexity before and after).
    pub dev: Option<&'a Path>,
    /// Method (name, JSON or file); `lora` when absent.
    pub method: Option<&'a str>,
    /// Output folder.
    pub out: PathBuf,
    /// Optimizer steps (default: 3 passes over the data).
    pub steps: Option<i64>,
    /// Peak learning rate (default: the method's scaled default).
    pub lr: Option<f64>,
    /// Seed of the initialisation.
    pub seed: Option<u64>,
    /// Longest sequence (default 512, at most the model's positions).
    pub max_len: Option<usize>,
    /// Print JSON only.
    pub json: bool,
}

const BATCH: usize = 8;

/// Runs the causal-LM tuning.
pub fn run(a: &LmArgs<'_>) -> anyhow::Result<()> {
    tch::manual_seed(a.seed.unwrap_or(42) as i64);
    let m = LoadedModel::from_dir(a.model, &LoadOptions::default())
        .with_context(|| format!("loading {}", a.model.display()))?;
    let spec = m.backbone.spec();
    if spec.arch != Arch::CausalDecoder {
        bail!("prompt/completion files need a causal decoder; {} is not one", spec.describe());
    }
    let eos = spec.eos_id.or(m.tokenizer.eos_id()).context("the model declares no eos id")?;
    let max_len = a.max_len.unwrap_or(512).min(spec.max_positions as usize);
    let method = parse_method(a.method.unwrap_or("lora"), spec)?;
    let read = |p: &Path| -> anyhow::Result<Vec<LmFeature>> {
        let rows = read_instruct_jsonl(p)?;
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                encode(&m.tokenizer, r, eos, max_len)
                    .with_context(|| format!("{}: row {}", p.display(), i + 1))
            })
            .collect()
    };
    let tr = read(a.train)?;
    let dev = a.dev.map(read).transpose()?;
    let steps = match a.steps {
        Some(s) if s < 1 => bail!("--steps must be at least 1"),
        Some(s) => s as usize,
        None => 3 * tr.len().div_ceil(BATCH),
    };
    let lr = a.lr.unwrap_or_else(|| scaled_lr(&method));
    let store = VarStore::new(m.backbone.device());
    let delta = method
        .build(&(store.root() / "delta"), m.backbone.as_ref())?
        .context("model tuning is not supported with the causal-LM loss yet; pick a method")?;
    let pad = m.tokenizer.pad_id();
    let eval =
        |d: &dyn Delta| dev.as_ref().map(|f| evaluate(m.backbone.as_ref(), Some(d), f, pad, BATCH));
    let before = eval(delta.as_ref()).transpose()?;
    let cfg =
        LmTrainConfig { steps, lr, batch_size: BATCH, warmup: steps / 10, ..Default::default() };
    let params = store.variables().into_iter().collect();
    let start = Instant::now();
    let losses = train(m.backbone.as_ref(), delta.as_ref(), params, &tr, pad, &cfg)?;
    let secs = start.elapsed().as_secs_f64();
    let after = eval(delta.as_ref()).transpose()?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let manifest = CausalLmManifest {
        petune_version: env!("CARGO_PKG_VERSION").into(),
        objective: OBJECTIVE.into(),
        method: method.clone(),
        backbone: spec.describe(),
        max_len,
    };
    save(&a.out, &store, &manifest)?;
    let report = serde_json::json!({
        "objective": OBJECTIVE,
        "method": method.label(),
        "steps": steps,
        "lr": lr,
        "train_loss": {"first": losses.first(), "last": losses.last()},
        "dev": dev.as_ref().map(|_| serde_json::json!({
            "loss_before": before.map(|e| e.loss),
            "loss": after.map(|e| e.loss),
            "perplexity_before": before.map(|e| e.perplexity),
            "perplexity": after.map(|e| e.perplexity),
            "tokens": after.map(|e| e.tokens),
        })),
        "seconds": secs,
        "out": a.out,
    });
    write_json_atomic(&a.out.join("metrics.json"), &report)?;
    if a.json {
        outln!("{report}")?;
    } else {
        outln!("{}: {steps} steps of {} in {secs:.0} s", a.train.display(), method.label())?;
        if let (Some(b), Some(e)) = (before, after) {
            outln!(
                "dev completion loss {:.3} → {:.3} (perplexity {:.1} → {:.1}, {} tokens)",
                b.loss,
                e.loss,
                b.perplexity,
                e.perplexity,
                e.tokens
            )?;
        }
        outln!("wrote {} (petune generate --delta {0})", a.out.display())?;
    }
    Ok(())
}
