//! GPT-2: a pre-LN causal decoder with a tied LM head.
//!
//! Ported from `transformers` 5.24 (src/transformers/models/gpt2/modeling_gpt2.py):
//! `GPT2Model` + `GPT2LMHeadModel`'s head, variables named by their Hugging Face keys
//! (`transformer.h.0.attn.c_attn.weight`, ...), `Conv1D` weights in the file's
//! `[in, out]` layout.
//!
//! # Stages
//! `embed` = `wte + wpe` (+ dropout); `layers` = the blocks; `finish` = `ln_f`
//! (norm site `Final`, layer `None`). As in transformers 5, the last hidden state
//! (`hidden.L` of `all_hidden_states`) is taken *after* `ln_f`; `lm_logits` multiplies
//! it by `wte` (or an untied `lm_head.weight`), no bias.
//!
//! # Masks, inserted tokens, prefixes
//! The additive causal + padding bias is rebuilt from the current [`SeqState`] at every
//! block (`common::attention::attention_bias` with `causal = true`): a prompt
//! prepended before block `k` comes first, every text token attends to it, and it
//! attends only to itself, causally (the LPT authors' GPT-2 convention). Left or right
//! padding both work; with left padding pass explicit `position_ids`. Prompt tokens
//! never get position embeddings (see `embeddings.rs`). Attention prefixes
//! (P-tuning v2) are visible to every query, and the text keeps positions `0..T`
//! (unlike transformers' `past_key_values` route, which would shift them by `P`).
//!
//! # Padding id
//! GPT-2's vocabulary has no padding token (`pad_token_id: null`); the spec then uses
//! id 0, as the LPT authors' code sets `config.pad_token_id = 0`. Padded positions are
//! masked, so the id only shows in the hidden states *at* padded positions.

mod block;
mod config;
mod embeddings;

use std::ops::Range;
use std::path::Path;

use block::Gpt2Block;
pub use config::Gpt2Config;
use embeddings::Gpt2Embeddings;
use petune_core::fsio::read_json;
use petune_core::{
    Backbone, BackboneInput, BackboneSpec, Error, Hooks, KvCache, KvPrefix, LayerKv, NormRole,
    NormSite, Result, SeqState,
};
use tch::{nn::VarStore, Tensor};

use crate::common::attention::{attention_bias, cached_decoder_bias};
use crate::common::backbone::{layer_of, no_pooler};
use crate::common::cached::{embed_cached, run_layers_cached};
use crate::common::layer_loop::{run_layers, LayerStack};
use crate::common::layers::{weight_for, LayerNorm};
use crate::common::weights::{hf_renamed_key, KeyAction, WeightSource};
use crate::loader::LoadOptions;

/// A GPT-2 decoder with its LM head.
pub struct Gpt2Backbone {
    vs: VarStore,
    spec: BackboneSpec,
    config: Gpt2Config,
    embeddings: Gpt2Embeddings,
    blocks: Vec<Gpt2Block>,
    ln_f: LayerNorm,
    /// The LM head weight `[V, H]`: `wte` when tied.
    lm_head: Option<Tensor>,
}

impl std::fmt::Debug for Gpt2Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpt2Backbone").field("spec", &self.spec.describe()).finish()
    }
}

/// Maps a checkpoint key to petune's canonical key: adds the `transformer.` prefix that
/// `GPT2Model` files (e.g. the original `gpt2` repository) lack and skips the attention
/// mask buffers older files carry (`attn.bias`, `attn.masked_bias`; transformers
/// ignores them too).
fn normalize_key(key: &str) -> KeyAction {
    let key = hf_renamed_key(key);
    if key.ends_with(".attn.bias") || key.ends_with(".attn.masked_bias") {
        return KeyAction::Skip;
    }
    let bare = ["h.", "wte.", "wpe.", "ln_f."].iter().any(|p| key.starts_with(p));
    KeyAction::Use(if bare { format!("transformer.{key}") } else { key })
}

impl Gpt2Backbone {
    /// Loads `config.json` and `model.safetensors` from a Hugging Face folder.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Gpt2Backbone> {
        let config: Gpt2Config = read_json(&dir.join("config.json"))?;
        Self::from_config(config, &dir.join("model.safetensors"), opts)
    }

    /// Builds the backbone from a parsed config and a weights file, strictly: every
    /// missing, unexpected or mis-shaped key is reported in one error.
    pub fn from_config(
        config: Gpt2Config,
        weights: &Path,
        opts: &LoadOptions,
    ) -> Result<Gpt2Backbone> {
        config.validate()?;
        let mut src =
            WeightSource::open(weights, opts.device, opts.base_dtype.kind(), normalize_key)?;
        let caps = config.capabilities(src.contains("lm_head.weight"));
        let spec = config.spec(caps)?;
        let mut vs = VarStore::new(opts.device);
        let root = vs.root();
        let model = &root / "transformer";
        let embeddings = Gpt2Embeddings::load(&mut src, &model, &config);
        let blocks = (0..config.n_layer)
            .map(|i| Gpt2Block::load(&mut src, &(&model / "h" / i), &config, i))
            .collect::<Result<Vec<_>>>()?;
        let ln_f =
            LayerNorm::load(&mut src, &(&model / "ln_f"), config.n_embd, config.layer_norm_epsilon)
                .at(NormSite { layer: None, role: NormRole::Final });
        let lm_head = if config.tie_word_embeddings {
            // A tied copy, when a file carries one, is the same tensor as `wte`.
            src.skip("lm_head.weight");
            Some(embeddings.wte().shallow_clone())
        } else if caps.lm_head {
            Some(src.param(&(&root / "lm_head"), "weight", &[config.vocab_size, config.n_embd]))
        } else {
            None
        };
        src.finish()?;
        vs.freeze();
        Ok(Gpt2Backbone { vs, spec, config, embeddings, blocks, ln_f, lm_head })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }
}

/// The blocks under the shared loop. The causal + padding bias follows the state as it
/// is now: a prompt prepended just above is attended by the text and sees only itself,
/// causally.
impl LayerStack for Gpt2Backbone {
    type Context = Tensor;

    fn context(&self, _layer: usize, s: &SeqState, prefix_mask: Option<&Tensor>) -> Result<Tensor> {
        Ok(attention_bias(&s.pad_mask, prefix_mask, true, s.hidden.kind())) // [B, 1, T, P+T]
    }

    fn forward_layer(
        &self,
        layer: usize,
        x: &Tensor,
        bias: &Tensor,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        self.blocks[layer].forward(x, bias, prefix, hooks, train)
    }

    fn cached_context(
        &self,
        _layer: usize,
        s: &SeqState,
        past: Option<&LayerKv>,
        prefix_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let past = past.map(|p| (&p.mask, &p.positions));
        let kind = s.hidden.kind();
        Ok(cached_decoder_bias(past, &s.pad_mask, &s.positions, prefix_mask, None, kind))
        // [B, 1, Tn, P+Tc+Tn]
    }

    fn forward_layer_cached(
        &self,
        layer: usize,
        x: &Tensor,
        bias: &Tensor,
        prefix: Option<&KvPrefix>,
        past: Option<&LayerKv>,
        hooks: &dyn Hooks,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        Ok(self.blocks[layer].forward_cached(x, bias, prefix, past, hooks, false))
    }
}

impl Backbone for Gpt2Backbone {
    fn spec(&self) -> &BackboneSpec {
        &self.spec
    }

    fn var_store(&self) -> &VarStore {
        &self.vs
    }

    fn embed(&self, input: &BackboneInput, hooks: &dyn Hooks, train: bool) -> Result<SeqState> {
        input.check_against(&self.spec)?;
        self.embeddings.forward(input, hooks, train)
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

    /// A prompt prepended at `input_embeds` shifts the text's position embeddings only
    /// when the hooks ask for `positions_include_prefix` (embeddings.rs): that shift
    /// carries over to every generated token.
    fn embed_cached(
        &self,
        input: &BackboneInput,
        hooks: &dyn Hooks,
        cache: &mut KvCache,
    ) -> Result<SeqState> {
        let shift = |s: &SeqState, h: &dyn Hooks| {
            if s.n_prefix > 0 && h.positions_include_prefix() {
                s.n_prefix
            } else {
                0
            }
        };
        embed_cached(input, hooks, cache, |i, h| self.embed(i, h, false), shift)
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
        let hidden = self.ln_f.forward(&s.hidden, hooks);
        Ok(s.with_hidden(hidden))
    }

    fn word_embeddings(&self) -> Tensor {
        self.embeddings.wte().shallow_clone()
    }

    fn lm_logits(&self, hidden: &Tensor, _train: bool) -> Result<Tensor> {
        match &self.lm_head {
            Some(w) => Ok(hidden.linear(&weight_for(w, hidden), None::<&Tensor>)),
            None => Err(Error::Unsupported {
                what: "LM logits".into(),
                msg: "this gpt2 checkpoint unties its LM head but stores no lm_head.weight".into(),
            }),
        }
    }

    fn add_to_linear_weight(&self, site: petune_core::LinearSite, delta: &Tensor) -> Result<()> {
        layer_of(&self.blocks, site)?.add_to_linear_weight(site, delta)
    }

    fn pooler(&self, _cls: &Tensor) -> Result<Tensor> {
        Err(no_pooler("GPT-2 has no pooler (use the last valid token)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(key: &str) -> Option<String> {
        normalize_key(key).canonical()
    }

    #[test]
    fn bare_gpt2_model_keys_and_mask_buffers() {
        // The original `gpt2` repository: no `transformer.` prefix, mask buffers saved.
        assert_eq!(
            canonical("h.3.attn.c_attn.weight").unwrap(),
            "transformer.h.3.attn.c_attn.weight"
        );
        assert_eq!(canonical("wte.weight").unwrap(), "transformer.wte.weight");
        assert_eq!(canonical("ln_f.bias").unwrap(), "transformer.ln_f.bias");
        assert_eq!(canonical("transformer.wpe.weight").unwrap(), "transformer.wpe.weight");
        assert_eq!(canonical("lm_head.weight").unwrap(), "lm_head.weight");
        assert!(canonical("h.0.attn.bias").is_none());
        assert!(canonical("transformer.h.0.attn.masked_bias").is_none());
        // The attention projection's bias is a parameter, not the mask buffer.
        assert!(canonical("h.0.attn.c_attn.bias").is_some());
    }
}
