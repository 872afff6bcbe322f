//! DeBERTa (v1): a post-LN encoder with disentangled relative attention.
//!
//! Ported from `transformers` 5.24 (src/transformers/models/deberta/modeling_deberta.py):
//! `DebertaModel` plus the optional `DebertaForMaskedLM` head, variables named by their
//! Hugging Face keys (`deberta.encoder.layer.0.attention.self.in_proj.weight`, ...).
//! `tests/fixtures/README.md` documents the forward this reproduces.
//!
//! # Sites
//! As BERT's (docs/sites.md): the fused `in_proj` is sliced so that Query, Key and
//! Value are separate linear sites (Query and Value have a bias, `q_bias`/`v_bias`;
//! Key has none, as the spec's inventory records). The relative-position projections
//! (`pos_proj`, `pos_q_proj`) act on the relative-embedding table, not on tokens, and
//! are not sites.
//!
//! # Inserted tokens
//! The padding mask and the relative positions are derived from the current
//! [`SeqState`] at every layer: after a prompt of `P` tokens is prepended before layer
//! `k`, layers `k..` see positions `0..P` for the prompt and `P..P+T` for the text, and
//! the pairwise mask over `P + T` (the LPT authors' `DebertaEncoder` convention).
//!
//! # Attention prefixes
//! `capabilities.attn_prefix` is true: prefix keys contribute content-to-content scores
//! only and the c2p/p2c terms cover the text keys alone (docs/deberta-prefix.md).
//!
//! # Heads
//! The MLM head is read from whichever layout the weights have (`cls.predictions.*` or
//! `lm_predictions.lm_head.*`); `config.legacy` decides only when the file has neither
//! (spec without weights) or both (then the other one is reported as unexpected).
//! transformers instead always follows `legacy` and would re-initialise a head stored
//! under the other name. There is no pooler (`ContextPooler` belongs to
//! `DebertaForSequenceClassification`).

mod attention;
mod config;
mod embeddings;
mod heads;
mod layer;

use std::ops::Range;
use std::path::Path;

pub use config::{DebertaConfig, MlmHeadLayout, PosAttType};
use petune_core::fsio::read_json;
use petune_core::{
    Backbone, BackboneInput, BackboneSpec, Capabilities, Hooks, KvPrefix, Result, SeqState,
};
use tch::{nn::VarStore, Tensor};

use crate::common::backbone::{layer_of, no_mlm_head, no_pooler};
use crate::common::layer_loop::{run_layers, LayerStack};
use crate::common::mlm_head::MlmHead;
use crate::common::weights::{hf_renamed_key, KeyAction, WeightSource};
use crate::loader::LoadOptions;
use attention::{pairwise_mask, RelativePositions};
use embeddings::DebertaEmbeddings;
use heads::load_mlm_head;
use layer::DebertaLayer;

/// A DeBERTa (v1) encoder with an optional MLM head.
pub struct DebertaBackbone {
    vs: VarStore,
    spec: BackboneSpec,
    config: DebertaConfig,
    embeddings: DebertaEmbeddings,
    rel_embeddings: Option<Tensor>,
    layers: Vec<DebertaLayer>,
    mlm: Option<MlmHead>,
}

impl std::fmt::Debug for DebertaBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebertaBackbone").field("spec", &self.spec.describe()).finish()
    }
}

/// Maps a checkpoint key to petune's canonical key: adds the `deberta.` prefix that
/// base-model files lack, renames `gamma`/`beta`, skips the `position_ids` buffer and,
/// like transformers (`_keys_to_ignore_on_load_unexpected`), absolute position
/// embeddings that a `position_biased_input = false` model does not use.
fn normalize_key(cfg: &DebertaConfig, key: &str) -> KeyAction {
    let key = hf_renamed_key(key);
    if key.ends_with("embeddings.position_ids")
        || (!cfg.position_biased_input && key.contains("position_embeddings"))
    {
        return KeyAction::Skip;
    }
    let bare = ["embeddings.", "encoder."].iter().any(|p| key.starts_with(p));
    KeyAction::Use(if bare { format!("deberta.{key}") } else { key })
}

impl DebertaBackbone {
    /// Loads `config.json` and `model.safetensors` from a Hugging Face folder.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<DebertaBackbone> {
        let config: DebertaConfig = read_json(&dir.join("config.json"))?;
        Self::from_config(config, &dir.join("model.safetensors"), opts)
    }

    /// Builds the backbone from a parsed config and a weights file, strictly: every
    /// missing, unexpected or mis-shaped key is reported in one error.
    pub fn from_config(
        config: DebertaConfig,
        weights: &Path,
        opts: &LoadOptions,
    ) -> Result<DebertaBackbone> {
        config.validate()?;
        let mut src = WeightSource::open(weights, opts.device, opts.base_dtype.kind(), |k| {
            normalize_key(&config, k)
        })?;
        let legacy = src.has_prefix(MlmHeadLayout::Legacy.key_prefix());
        let modern = src.has_prefix(MlmHeadLayout::LmPredictions.key_prefix());
        let layout = match (legacy, modern) {
            (true, false) => MlmHeadLayout::Legacy,
            (false, true) => MlmHeadLayout::LmPredictions,
            _ => config.declared_head(),
        };
        let caps = Capabilities {
            attn_prefix: true,
            input_embeds: true,
            lm_head: legacy || modern || config.declared_capabilities().lm_head,
            pooler: false,
        };
        let spec = config.spec(caps, layout)?;
        let mut vs = VarStore::new(opts.device);
        let root = vs.root();
        let model = &root / "deberta";
        let embeddings = DebertaEmbeddings::load(&mut src, &(&model / "embeddings"), &config);
        let encoder = &model / "encoder";
        let rel_embeddings = config.relative_attention.then(|| {
            src.param(
                &(&encoder / "rel_embeddings"),
                "weight",
                &[2 * config.max_relative(), config.hidden_size],
            )
        });
        let layers = (0..config.num_hidden_layers)
            .map(|i| DebertaLayer::load(&mut src, &(&encoder / "layer" / i), &config, i))
            .collect::<Result<Vec<_>>>()?;
        let mlm = if caps.lm_head {
            let word = embeddings.word_embeddings();
            Some(load_mlm_head(&mut src, &root, &config, layout, word)?)
        } else {
            None
        };
        src.finish()?;
        vs.freeze();
        Ok(DebertaBackbone { vs, spec, config, embeddings, rel_embeddings, layers, mlm })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &DebertaConfig {
        &self.config
    }
}

/// The attention context of a DeBERTa layer: the pairwise mask `[B, 1, T, P+T]` and the
/// relative positions of the current length (when the model uses relative attention).
pub struct DebertaContext {
    allowed: Tensor,
    rel: Option<RelativePositions>,
}

/// The encoder layers under the shared loop. Mask and relative positions follow the
/// state as it is now, so a prompt prepended by `before_layer` is attended and
/// positioned first.
impl LayerStack for DebertaBackbone {
    type Context = DebertaContext;

    fn context(
        &self,
        _layer: usize,
        s: &SeqState,
        prefix_mask: Option<&Tensor>,
    ) -> Result<DebertaContext> {
        let (t, dev) = (s.seq_len(), s.hidden.device());
        let allowed = pairwise_mask(&s.pad_mask, prefix_mask); // [B, 1, T, P+T]
        let rel = self
            .rel_embeddings
            .as_ref()
            .map(|_| RelativePositions::new(t, self.config.max_relative(), dev));
        Ok(DebertaContext { allowed, rel })
    }

    fn forward_layer(
        &self,
        layer: usize,
        x: &Tensor,
        ctx: &DebertaContext,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        let rel = ctx.rel.as_ref().zip(self.rel_embeddings.as_ref());
        self.layers[layer].forward(x, &ctx.allowed, rel, prefix, hooks, train)
    }
}

impl Backbone for DebertaBackbone {
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

    fn finish(&self, s: SeqState, _hooks: &dyn Hooks, _train: bool) -> Result<SeqState> {
        Ok(s)
    }

    fn word_embeddings(&self) -> Tensor {
        self.embeddings.word_embeddings().shallow_clone()
    }

    fn lm_logits(&self, hidden: &Tensor, _train: bool) -> Result<Tensor> {
        match &self.mlm {
            Some(head) => Ok(head.forward(hidden)),
            None => Err(no_mlm_head(&self.spec.model_type)),
        }
    }

    fn add_to_linear_weight(&self, site: petune_core::LinearSite, delta: &Tensor) -> Result<()> {
        layer_of(&self.layers, site)?.add_to_linear_weight(site, delta)
    }

    fn pooler(&self, _cls: &Tensor) -> Result<Tensor> {
        Err(no_pooler("DeBERTa has no BERT-style pooler"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_model_keys_get_the_deberta_prefix_and_unused_positions_are_skipped() {
        let cfg: DebertaConfig = serde_json::from_str(
            r#"{"model_type": "deberta", "vocab_size": 10, "hidden_size": 8,
                "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
                "position_biased_input": false}"#,
        )
        .unwrap();
        let canonical = |k: &str| normalize_key(&cfg, k).canonical();
        assert_eq!(
            canonical("encoder.layer.0.attention.self.in_proj.weight").unwrap(),
            "deberta.encoder.layer.0.attention.self.in_proj.weight"
        );
        assert_eq!(
            canonical("embeddings.LayerNorm.gamma").unwrap(),
            "deberta.embeddings.LayerNorm.weight"
        );
        assert_eq!(
            canonical("lm_predictions.lm_head.bias").unwrap(),
            "lm_predictions.lm_head.bias"
        );
        assert!(canonical("deberta.embeddings.position_embeddings.weight").is_none());
        assert!(canonical("deberta.embeddings.position_ids").is_none());
    }
}
