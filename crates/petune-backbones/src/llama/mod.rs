//! The Llama family: Llama (1, 2, 3.x, SmolLM2...), Mistral and Qwen2 decoders, one
//! backbone for `LlamaForCausalLM`, `MistralForCausalLM` and `Qwen2ForCausalLM`
//! checkpoints (and their bare `*Model` files).
//!
//! Ported from transformers 5.24 (src/transformers/models/llama/modeling_llama.py and the
//! Mistral / Qwen2 modular files): token embeddings (no positions, no norm, no dropout),
//! pre-norm decoder layers with RMSNorm, rotary grouped-query attention and a SwiGLU MLP
//! ([`layer`]), a final RMSNorm and the LM head (tied to `embed_tokens` or its own
//! `lm_head.weight`, no bias). Variables are named by their Hugging Face keys
//! (`model.layers.0.self_attn.q_proj.weight`, ...).
//!
//! # Stages
//! `embed` = `embed_tokens[ids]`; `layers` = the decoder layers; `finish` = `norm`
//! (norm site `Final`). As in transformers 5, the last hidden state (`hidden.L` of
//! `all_hidden_states`) is taken after `norm`.
//!
//! # Positions, masks, inserted tokens, prefixes
//! Rotary angles come from the [`SeqState`]'s positions at every layer: the input's
//! `position_ids` (with left padding pass `clamp(cumsum(mask) - 1, 0)`, as transformers'
//! `generate` does) or `0..T`. A prompt prepended before layer `k` (or at
//! `input_embeds`) takes positions `0..P` and shifts the text by `P`, keeping every
//! text–text offset (docs/sites.md). The causal + padding bias (+ sliding window on
//! Mistral and windowed Qwen2 layers, counted in positions so that padding and
//! prompts never move a real token out of another's window) is rebuilt from the
//! current state too: the text attends every prompt token, the prompt
//! attends itself causally. Attention prefixes (P-tuning v2) are `[B, kv_heads, P, d]`
//! key/values joined to the rotated keys without rotation, visible to every query; the
//! text keeps its positions (transformers' `past_key_values` route would shift them).
//!
//! # Padding id
//! Llama configs usually have no `pad_token_id`; the spec then pads with the
//! end-of-sequence id (what Llama recipes set), else 0. Padded positions are masked.

mod config;
mod layer;

use std::ops::Range;
use std::path::Path;

pub use config::{hf_module, LlamaConfig, RopeParameters, TokenIds};
use layer::{LlamaContext, LlamaLayer};
use petune_core::{
    Backbone, BackboneInput, BackboneSpec, Error, Hooks, KvCache, KvPrefix, LayerKv, LinearSite,
    NormRole, NormSite, Result, SeqState,
};
use tch::{nn::VarStore, Tensor};

use crate::common::attention::{cached_decoder_bias, decoder_bias};
use crate::common::backbone::{layer_of, no_pooler};
use crate::common::cached::{embed_cached, run_layers_cached};
use crate::common::layer_loop::{run_layers, LayerStack};
use crate::common::layers::{embed_words, weight_for, RmsNorm};
use crate::common::rotary::Rotary;
use crate::common::weights::{KeyAction, WeightSource};
use crate::gguf::{GgufFile, LlamaGguf};
use crate::loader::LoadOptions;

/// A Llama-family decoder with its LM head (when the checkpoint has one).
pub struct LlamaBackbone {
    vs: VarStore,
    spec: BackboneSpec,
    config: LlamaConfig,
    embed_tokens: Tensor,
    layers: Vec<LlamaLayer>,
    norm: RmsNorm,
    rotary: Rotary,
    /// Sliding window of each layer.
    windows: Vec<Option<i64>>,
    /// The LM head weight `[V, H]`: `embed_tokens` when tied.
    lm_head: Option<Tensor>,
}

impl std::fmt::Debug for LlamaBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaBackbone").field("spec", &self.spec.describe()).finish()
    }
}

/// Maps a checkpoint key to petune's canonical key: adds the `model.` prefix that bare
/// `LlamaModel` files lack and skips the rotary `inv_freq` buffers older files carry
/// (transformers recomputes them too).
fn normalize_key(key: &str) -> KeyAction {
    if key.ends_with("rotary_emb.inv_freq") {
        return KeyAction::Skip;
    }
    let bare = ["layers.", "embed_tokens.", "norm."].iter().any(|p| key.starts_with(p));
    KeyAction::Use(if bare { format!("model.{key}") } else { key.to_string() })
}

/// Whether `key` (a Hugging Face name) is the weight of one of a layer's seven projections.
fn is_projection_weight(key: &str) -> bool {
    const PROJECTIONS: [&str; 7] = [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ];
    key.strip_suffix(".weight").is_some_and(|stem| PROJECTIONS.iter().any(|p| stem.ends_with(p)))
}

impl LlamaBackbone {
    /// Loads `config.json` and the weights (`model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`) from a Hugging Face folder.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<LlamaBackbone> {
        let config = LlamaConfig::from_file(&dir.join("config.json"))?;
        let src =
            WeightSource::open_model_dir(dir, opts.device, opts.base_dtype.kind(), normalize_key)?;
        Self::build(config, src, opts)
    }

    /// Builds the backbone from a parsed config and a weights file, strictly: every
    /// missing, unexpected or mis-shaped key is reported in one error.
    pub fn from_config(
        config: LlamaConfig,
        weights: &Path,
        opts: &LoadOptions,
    ) -> Result<LlamaBackbone> {
        config.validate()?;
        let src = WeightSource::open(weights, opts.device, opts.base_dtype.kind(), normalize_key)?;
        Self::build(config, src, opts)
    }

    /// Builds the backbone from a config and tensors named by their Hugging Face keys
    /// (e.g. dequantized from a GGUF file), as strictly as from a file; `origin` names
    /// their source in errors.
    pub fn from_tensors(
        config: LlamaConfig,
        tensors: impl IntoIterator<Item = (String, Tensor)>,
        origin: &Path,
        opts: &LoadOptions,
    ) -> Result<LlamaBackbone> {
        config.validate()?;
        let src = WeightSource::from_tensors(
            origin,
            tensors,
            opts.device,
            opts.base_dtype.kind(),
            normalize_key,
        );
        Self::build(config, src, opts)
    }

    /// Builds the backbone from a parsed GGUF file, keeping every projection weight
    /// (`q/k/v/o_proj`, `gate/up/down_proj`) in its GGUF blocks, dequantized layer by layer
    /// in the forward pass ([`LoadOptions::quantized_base`]); embeddings, norms, biases and an
    /// untied LM head are dequantized once. Same values as the dequantized load.
    pub fn from_gguf_quantized(
        config: LlamaConfig,
        llama: &LlamaGguf,
        file: &GgufFile,
        opts: &LoadOptions,
    ) -> Result<LlamaBackbone> {
        config.validate()?;
        let (mut dense, mut quantized) = (Vec::new(), Vec::new());
        for m in &llama.tensors {
            let q = llama.quantized(file, &m.hf)?;
            if is_projection_weight(&m.hf) {
                quantized.push(q);
            } else {
                dense.push((m.hf.clone(), q.dequantize()?));
            }
        }
        let src = WeightSource::from_tensors(
            file.path(),
            dense,
            opts.device,
            opts.base_dtype.kind(),
            normalize_key,
        )
        .with_quantized(quantized);
        Self::build(config, src, opts)
    }

    fn build(
        config: LlamaConfig,
        mut src: WeightSource,
        opts: &LoadOptions,
    ) -> Result<LlamaBackbone> {
        config.validate()?;
        let caps = config.capabilities(src.contains("lm_head.weight"));
        let spec = config.spec(caps)?;
        let mut vs = VarStore::new(opts.device);
        let root = vs.root();
        let model = &root / "model";
        let (h, v) = (config.hidden_size, config.vocab_size);
        let embed_tokens = src.param(&(&model / "embed_tokens"), "weight", &[v, h]);
        let layers = (0..config.num_hidden_layers)
            .map(|i| LlamaLayer::load(&mut src, &(&model / "layers" / i), &config, i))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(&mut src, &(&model / "norm"), h, config.rms_norm_eps)
            .at(NormSite { layer: None, role: NormRole::Final });
        let lm_head = if config.tie_word_embeddings {
            // A tied copy, when a file carries one, is the same tensor as `embed_tokens`.
            src.skip("lm_head.weight");
            Some(embed_tokens.shallow_clone())
        } else if caps.lm_head {
            Some(src.param(&(&root / "lm_head"), "weight", &[v, h]))
        } else {
            None
        };
        src.finish()?;
        let (theta, scaling) = config.rope()?;
        let rotary = Rotary::new(config.head_size(), theta, scaling, opts.device);
        let windows = (0..config.num_hidden_layers)
            .map(|l| config.layer_window(l))
            .collect::<Result<Vec<_>>>()?;
        vs.freeze();
        Ok(LlamaBackbone { vs, spec, config, embed_tokens, layers, norm, rotary, windows, lm_head })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }
}

/// The decoder layers under the shared loop: one causal bias per window size and one set
/// of rotary angles, from the state as it is now.
impl LayerStack for LlamaBackbone {
    type Context = LlamaContext;

    fn context(
        &self,
        layer: usize,
        s: &SeqState,
        prefix_mask: Option<&Tensor>,
    ) -> Result<LlamaContext> {
        let kind = s.hidden.kind();
        let window = self.windows.get(layer).copied().flatten();
        let bias = decoder_bias(&s.pad_mask, &s.positions, prefix_mask, window, kind); // [B, 1, T, P+T]
        let (cos, sin) = self.rotary.angles(&s.positions, kind); // [B, 1, T, d]
        Ok(LlamaContext { bias, cos, sin })
    }

    fn context_kind(&self, layer: usize) -> usize {
        match self.windows.get(layer).copied().flatten() {
            Some(w) => w as usize + 1,
            None => 0,
        }
    }

    fn forward_layer(
        &self,
        layer: usize,
        x: &Tensor,
        ctx: &LlamaContext,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        self.layers[layer].forward(x, ctx, prefix, hooks, train)
    }

    fn cached_context(
        &self,
        layer: usize,
        s: &SeqState,
        past: Option<&LayerKv>,
        prefix_mask: Option<&Tensor>,
    ) -> Result<LlamaContext> {
        let kind = s.hidden.kind();
        let window = self.windows.get(layer).copied().flatten();
        let past = past.map(|p| (&p.mask, &p.positions));
        let bias = cached_decoder_bias(past, &s.pad_mask, &s.positions, prefix_mask, window, kind); // [B, 1, Tn, P+Tc+Tn]
        let (cos, sin) = self.rotary.angles(&s.positions, kind); // [B, 1, Tn, d]
        Ok(LlamaContext { bias, cos, sin })
    }

    fn forward_layer_cached(
        &self,
        layer: usize,
        x: &Tensor,
        ctx: &LlamaContext,
        prefix: Option<&KvPrefix>,
        past: Option<&LayerKv>,
        hooks: &dyn Hooks,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        Ok(self.layers[layer].forward_cached(x, ctx, prefix, past, hooks, false))
    }
}

impl Backbone for LlamaBackbone {
    fn spec(&self) -> &BackboneSpec {
        &self.spec
    }

    fn var_store(&self) -> &VarStore {
        &self.vs
    }

    fn embed(&self, input: &BackboneInput, hooks: &dyn Hooks, _train: bool) -> Result<SeqState> {
        input.check_against(&self.spec)?;
        let s = embed_words(&self.embed_tokens, input, hooks)?;
        let (p, t) = (s.n_prefix, input.seq_len());
        if s.seq_len() != p + t {
            return Err(Error::Shape {
                ctx: "input_embeds hook output".into(),
                expected: format!("[B, {p} + {t}, H] (prepended tokens + text)"),
                got: s.hidden.size(),
            });
        }
        Ok(s)
    }

    fn layers(
        &self,
        s: SeqState,
        range: Range<usize>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Result<SeqState> {
        run_layers(self, s, range, hooks, train)
    }

    /// No position embeddings: generated tokens are positioned in the layers only.
    fn embed_cached(
        &self,
        input: &BackboneInput,
        hooks: &dyn Hooks,
        cache: &mut KvCache,
    ) -> Result<SeqState> {
        embed_cached(input, hooks, cache, |i, h| self.embed(i, h, false), |_, _| 0)
    }

    fn layers_cached(
        &self,
        s: SeqState,
        range: Range<usize>,
        hooks: &dyn Hooks,
        cache: &mut KvCache,
    ) -> Result<SeqState> {
        run_layers_cached(self, s, range, hooks, cache)
    }

    fn finish(&self, s: SeqState, hooks: &dyn Hooks, _train: bool) -> Result<SeqState> {
        let hidden = self.norm.forward(&s.hidden, hooks);
        Ok(s.with_hidden(hidden))
    }

    fn word_embeddings(&self) -> Tensor {
        self.embed_tokens.shallow_clone()
    }

    fn lm_logits(&self, hidden: &Tensor, _train: bool) -> Result<Tensor> {
        match &self.lm_head {
            Some(w) => Ok(hidden.linear(&weight_for(w, hidden), None::<&Tensor>)),
            None => Err(Error::Unsupported {
                what: "LM logits".into(),
                msg: format!(
                    "this {} checkpoint unties its LM head but stores no lm_head.weight",
                    self.spec.model_type
                ),
            }),
        }
    }

    fn add_to_linear_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        layer_of(&self.layers, site)?.add_to_linear_weight(site, delta)
    }

    fn pooler(&self, _cls: &Tensor) -> Result<Tensor> {
        Err(no_pooler("the Llama family has no pooler (use the last valid token)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_model_keys_get_the_model_prefix_and_rotary_buffers_are_skipped() {
        let canonical = |k: &str| normalize_key(k).canonical();
        assert_eq!(
            canonical("layers.3.self_attn.q_proj.weight").unwrap(),
            "model.layers.3.self_attn.q_proj.weight"
        );
        assert_eq!(canonical("embed_tokens.weight").unwrap(), "model.embed_tokens.weight");
        assert_eq!(canonical("norm.weight").unwrap(), "model.norm.weight");
        assert_eq!(canonical("lm_head.weight").unwrap(), "lm_head.weight");
        assert!(canonical("model.layers.0.self_attn.rotary_emb.inv_freq").is_none());
    }
}
