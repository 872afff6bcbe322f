//! Causal-LM tuning on instruction-style data: JSONL rows `{"prompt": ..., "completion":
//! ...}`, the loss the next-token cross-entropy on the completion tokens only (prompt
//! tokens and padding masked: transformers' `ForCausalLMLoss` with `labels = -100` there,
//! src/transformers/loss/loss_utils.py, averaged over the batch's completion tokens),
//! and evaluation as completion-token loss and perplexity.
//!
//! A sequence is the prompt as the tokenizer encodes it (its special tokens included,
//! as `tokenizer(prompt)` gives them) followed by the completion's tokens and the
//! model's end-of-sequence id, so that a tuned model learns to stop. The input's
//! `context_mask` covers the prompt: LPT's generator (and any input-dependent prompt)
//! reads the prompt part only, as GPT-2 LM scoring hides its label span — which is
//! also what `petune generate` binds a delta to, so training and generation see the
//! same late prompt.

use std::io::BufRead;
use std::path::Path;

use petune_backbones::{TextInput, TextTokenizer};
use petune_core::{Backbone, BackboneInput, Delta, Error, Result};
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

use crate::model::forward_input;
use crate::optim::{linear_schedule, AdamW, AdamWConfig};

/// One instruction-style row.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstructExample {
    /// What the model is given.
    pub prompt: String,
    /// What it should answer (the loss is on these tokens).
    pub completion: String,
}

/// Reads a JSONL file of [`InstructExample`]s (blank lines skipped); a bad or empty file
/// is a typed error naming the line.
pub fn read_instruct_jsonl(path: &Path) -> Result<Vec<InstructExample>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: InstructExample = serde_json::from_str(&line).map_err(|e| {
            Error::input(format!(
                "{}:{}: expected {{\"prompt\": ..., \"completion\": ...}}: {e}",
                path.display(),
                i + 1
            ))
        })?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::input(format!("{}: no rows", path.display())));
    }
    Ok(rows)
}

/// One tokenized row: the ids and how many of them are the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmFeature {
    /// Prompt ids, then completion ids and the end-of-sequence id.
    pub ids: Vec<i64>,
    /// Number of prompt ids (the rest are targets).
    pub prompt_len: usize,
}

/// Tokenizes `ex`: an empty prompt or completion, or a sequence longer than `max_len`,
/// is a typed error.
pub fn encode(
    tok: &TextTokenizer,
    ex: &InstructExample,
    eos: i64,
    max_len: usize,
) -> Result<LmFeature> {
    let (prompt, _) = tok.encode_ids(&TextInput::single(ex.prompt.as_str()), max_len, false)?;
    let completion = tok.ids_without_special(&ex.completion)?;
    if prompt.is_empty() || completion.is_empty() {
        return Err(Error::input(format!(
            "a row with an empty prompt or completion ({:?} → {:?})",
            ex.prompt, ex.completion
        )));
    }
    let ids: Vec<i64> = prompt.iter().chain(&completion).copied().chain([eos]).collect();
    if ids.len() > max_len {
        return Err(Error::input(format!(
            "prompt + completion of {} tokens is longer than the limit of {max_len}",
            ids.len()
        )));
    }
    Ok(LmFeature { prompt_len: prompt.len(), ids })
}

/// A padded batch: the model input (the prompt as `context_mask`) and the target mask.
#[derive(Debug)]
pub struct LmBatch {
    /// `[B, T]` ids, attention mask, context mask (prompt tokens).
    pub input: BackboneInput,
    /// 1 on completion tokens (the ones the loss predicts), `[B, T]` int64.
    pub target_mask: Tensor,
}

/// Right-pads `features` with `pad_id` onto `device`.
pub fn collate(features: &[&LmFeature], pad_id: i64, device: Device) -> Result<LmBatch> {
    let t = features.iter().map(|f| f.ids.len()).max().unwrap_or(0);
    if t < 2 {
        return Err(Error::input("a causal-LM batch needs sequences of at least 2 tokens"));
    }
    let (mut ids, mut mask, mut context, mut target) = (vec![], vec![], vec![], vec![]);
    for f in features {
        for i in 0..t {
            let real = i < f.ids.len();
            ids.push(if real { f.ids[i] } else { pad_id });
            mask.push(i64::from(real));
            context.push(i64::from(i < f.prompt_len));
            target.push(i64::from(real && i >= f.prompt_len));
        }
    }
    let b = features.len() as i64;
    let shaped = |v: &[i64]| Tensor::from_slice(v).view([b, t as i64]).to_device(device); // [B, T]
    let input = BackboneInput::new(shaped(&ids))?
        .with_attention_mask(shaped(&mask))?
        .with_context_mask(shaped(&context))?;
    Ok(LmBatch { input, target_mask: shaped(&target) })
}

/// Summed next-token cross-entropy of the completion tokens and their count: token `t`
/// is predicted from position `t − 1` of the text (past any prepended prompt).
pub fn completion_nll(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    batch: &LmBatch,
    train: bool,
) -> Result<(Tensor, i64)> {
    let out = forward_input(backbone, delta, &batch.input, train)?;
    let t = batch.input.seq_len();
    let hidden = out.text_hidden().narrow(1, 0, t - 1); // [B, T-1, H]: predict 1..T
    let logp = backbone.lm_logits(&hidden, train)?.log_softmax(-1, Kind::Float); // [B, T-1, V]
    let next = batch.input.input_ids.narrow(1, 1, t - 1); // [B, T-1]
    let tok = logp.gather(2, &next.unsqueeze(-1), false).squeeze_dim(-1); // [B, T-1]
    let m = batch.target_mask.narrow(1, 1, t - 1).to_kind(Kind::Float); // [B, T-1]
    let n = m.sum(Kind::Float).double_value(&[]) as i64;
    Ok((-(tok * m).sum(Kind::Float), n))
}

/// The training loss of a batch: mean cross-entropy over its completion tokens.
pub fn causal_lm_loss(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    batch: &LmBatch,
    train: bool,
) -> Result<Tensor> {
    let (sum, n) = completion_nll(backbone, delta, batch, train)?;
    if n == 0 {
        return Err(Error::input("the batch has no completion tokens"));
    }
    Ok(sum / n as f64)
}

/// Completion-token loss and perplexity of a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmEval {
    /// Mean cross-entropy per completion token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Completion tokens scored.
    pub tokens: i64,
}

/// Evaluates `features` in eval mode without gradients, `batch_size` rows at a time.
pub fn evaluate(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    features: &[LmFeature],
    pad_id: i64,
    batch_size: usize,
) -> Result<LmEval> {
    let _guard = tch::no_grad_guard();
    let (mut sum, mut tokens) = (0.0, 0);
    for chunk in features.chunks(batch_size.max(1)) {
        let refs: Vec<&LmFeature> = chunk.iter().collect();
        let batch = collate(&refs, pad_id, backbone.device())?;
        let (s, n) = completion_nll(backbone, delta, &batch, false)?;
        sum += s.double_value(&[]);
        tokens += n;
    }
    if tokens == 0 {
        return Err(Error::input("nothing to evaluate: no completion tokens"));
    }
    let loss = sum / tokens as f64;
    Ok(LmEval { loss, perplexity: loss.exp(), tokens })
}

/// A short causal-LM fine-tuning run (examples, tests): AdamW with linear warm-up and
/// decay over `steps`, batches drawn in order, cycling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmTrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Rows per batch.
    pub batch_size: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Gradient clipping norm (0 = none).
    pub max_grad_norm: f64,
    /// Weight decay.
    pub weight_decay: f64,
}

impl Default for LmTrainConfig {
    fn default() -> Self {
        LmTrainConfig {
            steps: 20,
            lr: 1e-3,
            batch_size: 4,
            warmup: 0,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
        }
    }
}

/// Trains `params` (the delta's tensors) with the causal-LM loss; returns the loss of
/// every step.
pub fn train(
    backbone: &dyn Backbone,
    delta: &dyn Delta,
    params: Vec<(String, Tensor)>,
    features: &[LmFeature],
    pad_id: i64,
    cfg: &LmTrainConfig,
) -> Result<Vec<f64>> {
    if features.is_empty() || cfg.steps == 0 || cfg.batch_size == 0 {
        return Err(Error::config("causal_lm", "needs rows, steps ≥ 1 and a batch size ≥ 1"));
    }
    let adam = AdamWConfig { weight_decay: cfg.weight_decay, ..AdamWConfig::default() };
    let mut opt = AdamW::new(params, adam)?;
    let mut losses = Vec::with_capacity(cfg.steps);
    let n_batches = features.len().div_ceil(cfg.batch_size);
    for step in 0..cfg.steps {
        let b = step % n_batches;
        let rows = &features[b * cfg.batch_size..((b + 1) * cfg.batch_size).min(features.len())];
        let refs: Vec<&LmFeature> = rows.iter().collect();
        let batch = collate(&refs, pad_id, backbone.device())?;
        let loss = causal_lm_loss(backbone, Some(delta), &batch, true)?;
        loss.backward();
        if cfg.max_grad_norm > 0.0 {
            opt.clip_grad_norm(cfg.max_grad_norm)?;
        }
        let lr = cfg.lr * linear_schedule(step as i64, cfg.warmup as i64, cfg.steps as i64);
        opt.step(lr)?;
        losses.push(loss.double_value(&[]));
    }
    Ok(losses)
}

/// What a causal-LM tuned delta's `delta.json` records (`"objective": "causal_lm"`): the
/// method, the backbone it was trained on and the sequence limit. `delta.safetensors`
/// next to it holds the delta's tensors by their trainable-store names.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CausalLmManifest {
    /// petune version that wrote it.
    pub petune_version: String,
    /// Always `causal_lm` (tells this manifest from a classification delta's).
    pub objective: String,
    /// The method.
    pub method: crate::method::MethodConfig,
    /// The backbone it was trained on (`BackboneSpec::describe`).
    pub backbone: String,
    /// Longest sequence (prompt + completion) in tokens.
    pub max_len: usize,
}

/// The objective name in [`CausalLmManifest::objective`].
pub const OBJECTIVE: &str = "causal_lm";

/// Whether the delta folder `dir` holds a causal-LM tuned delta.
pub fn is_causal_lm_delta(dir: &Path) -> bool {
    let Ok(v) = petune_core::fsio::read_json::<serde_json::Value>(&dir.join("delta.json")) else {
        return false;
    };
    v.get("objective").and_then(|o| o.as_str()) == Some(OBJECTIVE)
}

/// Writes `delta.safetensors` (the store's tensors, `{"format": "pt"}`) and `delta.json`
/// into `dir`, atomically.
pub fn save(dir: &Path, store: &tch::nn::VarStore, manifest: &CausalLmManifest) -> Result<()> {
    let meta = std::collections::HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("petune_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    let mut tensors: Vec<(String, Tensor)> = store.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    petune_core::tensor_io::write_safetensors(
        &dir.join("delta.safetensors"),
        &tensors,
        Some(meta),
    )?;
    petune_core::fsio::write_json_atomic(&dir.join("delta.json"), manifest)
}

/// Rebuilds the delta saved in `dir` on `backbone` (the one it was trained on) and loads
/// its tensors strictly (every missing, unexpected or mis-shaped tensor is an error).
pub fn load_delta(
    dir: &Path,
    backbone: &dyn Backbone,
) -> Result<(tch::nn::VarStore, Box<dyn Delta>, CausalLmManifest)> {
    let manifest: CausalLmManifest = petune_core::fsio::read_json(&dir.join("delta.json"))?;
    if manifest.objective != OBJECTIVE {
        return Err(Error::config("objective", format!("expected {OBJECTIVE}")));
    }
    if manifest.backbone != backbone.spec().describe() {
        return Err(Error::Incompatible {
            method: format!("delta in {}", dir.display()),
            backbone: backbone.spec().describe(),
            reason: format!("it was trained on {}", manifest.backbone),
        });
    }
    let store = tch::nn::VarStore::new(backbone.device());
    let delta = manifest
        .method
        .build(&(store.root() / "delta"), backbone)?
        .ok_or_else(|| Error::config("method", "model tuning has no delta to load"))?;
    let path = dir.join("delta.safetensors");
    let file = petune_core::tensor_io::read_safetensors(&path, backbone.device())?;
    let targets: Vec<(String, Tensor)> = store.variables().into_iter().collect();
    crate::checkpoint::copy_into(&path, &file.tensors, &targets, true)?;
    Ok((store, delta, manifest))
}

/// Whether a JSONL file's first row has `prompt` and `completion` fields (an
/// instruction-style file, trained with the causal-LM loss).
pub fn looks_like_instruct_jsonl(path: &Path) -> bool {
    let is_jsonl = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else { return false };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(first) else { return false };
    is_jsonl && v.get("prompt").is_some() && v.get("completion").is_some()
}
