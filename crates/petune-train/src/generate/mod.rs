//! Autoregressive generation from a causal decoder, with or without a tuned delta:
//! the prompt runs once (the prefill), then each new token costs one position through
//! the key/value cache ([`petune_core::kv_cache`]; transformers' `generate` with
//! `use_cache=True`, src/transformers/generation/utils.py).
//!
//! The delta is bound once, to the prompt: its prompt tokens (prompt tuning, LPT's late
//! prompt, S-IDPG) are prepended during the prefill and stay in the cache, generated
//! from the prompt alone (the input's `context_mask` covers the prompt, as GPT-2 LM
//! scoring hides its label span), so the generation equals a full forward pass over
//! prompt + generated tokens whose generator reads the prompt part; P-tuning v2's
//! prefixes and the weight-space deltas (LoRA, BitFit, adapters) act on every step.

pub mod chat;
pub mod sampling;

use petune_core::{
    Arch, Backbone, BackboneInput, BindCtx, Delta, Error, Hooks, KvCache, NoHooks, Result,
};
use tch::{Kind, Tensor};

pub use sampling::{Decoding, Sampler};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Tokens to generate at most (≥ 1).
    pub max_new_tokens: usize,
    /// Greedy or sampling.
    pub decoding: Decoding,
    /// Stop after any of these ids (the end-of-sequence token, included in the output);
    /// empty = always generate `max_new_tokens`.
    pub stop_ids: Vec<i64>,
    /// Keep the logits of every generated position (tests, scoring).
    pub keep_logits: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 32,
            decoding: Decoding::Greedy,
            stop_ids: Vec::new(),
            keep_logits: false,
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A stop id (end of sequence) was generated.
    Eos,
    /// `max_new_tokens` were generated.
    Length,
}

/// The result of [`generate`].
#[derive(Debug)]
pub struct Generation {
    /// The generated ids (the stop id, when one ended the generation, included).
    pub tokens: Vec<i64>,
    /// Why it stopped.
    pub stop: StopReason,
    /// With `keep_logits`: the logits `[N, V]` each generated token was chosen from (row
    /// `i`: after the prompt and tokens `0..i`), float32 on the CPU.
    pub logits: Option<Tensor>,
}

/// Checks what [`generate`] is asked for, before any computation: a typed error naming
/// the problem.
pub fn validate(backbone: &dyn Backbone, prompt: &[i64], opts: &GenerateOptions) -> Result<()> {
    let spec = backbone.spec();
    if spec.arch != Arch::CausalDecoder {
        return Err(Error::Unsupported {
            what: "generation".into(),
            msg: format!("{} is not a causal decoder", spec.describe()),
        });
    }
    if !spec.capabilities.lm_head {
        return Err(Error::Unsupported {
            what: "generation".into(),
            msg: format!("{} has no LM head", spec.describe()),
        });
    }
    if prompt.is_empty() {
        return Err(Error::input("the prompt is empty: nothing to continue"));
    }
    if opts.max_new_tokens == 0 {
        return Err(Error::config("max_new_tokens", "must be at least 1"));
    }
    opts.decoding.validate()?;
    let total = prompt.len() as u128 + opts.max_new_tokens as u128;
    if total > spec.max_positions.max(0) as u128 {
        return Err(Error::input(format!(
            "a prompt of {} tokens plus {} new tokens needs {total} positions, beyond the model's {}",
            prompt.len(),
            opts.max_new_tokens,
            spec.max_positions
        )));
    }
    if let Some(bad) = prompt.iter().chain(&opts.stop_ids).find(|&&t| t < 0 || t >= spec.vocab) {
        return Err(Error::input(format!(
            "token id {bad} is outside the vocabulary of {} ids",
            spec.vocab
        )));
    }
    Ok(())
}

/// Logits `[B, V]` of the last position of one cached call on `input`.
fn cached_logits(
    backbone: &dyn Backbone,
    input: &BackboneInput,
    hooks: &dyn Hooks,
    cache: &mut KvCache,
) -> Result<Tensor> {
    let n = backbone.spec().n_layers;
    let s = backbone.embed_cached(input, hooks, cache)?;
    let s = backbone.layers_cached(s, 0..n, hooks, cache)?;
    let s = backbone.finish(s, hooks, false)?;
    let last = s.hidden.select(1, s.seq_len() - 1); // [B, H]
    backbone.lm_logits(&last, false) // [B, V]
}

/// The prompt `[1, T]` as the model's input, the whole prompt readable by a generator.
pub fn prompt_input(backbone: &dyn Backbone, prompt: &[i64]) -> Result<BackboneInput> {
    let ids = Tensor::from_slice(prompt).view([1, -1]).to_device(backbone.device()); // [1, T]
    let context = ids.ones_like();
    BackboneInput::new(ids)?.with_context_mask(context)
}

/// Continues `prompt` (token ids) with `backbone` and, when given, `delta`.
pub fn generate(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    prompt: &[i64],
    opts: &GenerateOptions,
) -> Result<Generation> {
    validate(backbone, prompt, opts)?;
    let _guard = tch::no_grad_guard();
    let mut sampler = Sampler::new(opts.decoding)?;
    let input = prompt_input(backbone, prompt)?;
    let hooks: Box<dyn Hooks + '_> = match delta {
        Some(d) => d.bind(&BindCtx { backbone, input: &input, train: false })?,
        None => Box::new(NoHooks),
    };
    let mut cache = KvCache::new(backbone.spec().n_layers);
    let mut logits = cached_logits(backbone, &input, hooks.as_ref(), &mut cache)?;
    let mut tokens = Vec::with_capacity(opts.max_new_tokens);
    let mut kept = Vec::new();
    let mut stop = StopReason::Length;
    loop {
        let row = logits.get(0).to_kind(Kind::Float).to_device(tch::Device::Cpu); // [V]
        let token = sampler.next_token(&Vec::<f32>::try_from(&row)?)?;
        if opts.keep_logits {
            kept.push(row);
        }
        tokens.push(token);
        if opts.stop_ids.contains(&token) {
            stop = StopReason::Eos;
            break;
        }
        if tokens.len() == opts.max_new_tokens {
            break;
        }
        let ids = Tensor::from_slice(&[token]).view([1, 1]).to_device(backbone.device()); // [1, 1]
        let step = BackboneInput::new(ids)?;
        logits = cached_logits(backbone, &step, hooks.as_ref(), &mut cache)?;
    }
    let logits = opts.keep_logits.then(|| Tensor::stack(&kept, 0)); // [N, V]
    Ok(Generation { tokens, stop, logits })
}
