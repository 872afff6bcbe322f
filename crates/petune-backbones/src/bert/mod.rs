//! BERT and RoBERTa: one post-LN encoder, two embedding variants.
//!
//! Ported from `transformers` (src/transformers/models/bert/modeling_bert.py and
//! roberta/modeling_roberta.py): `BertModel` / `RobertaModel` plus the optional
//! `BertForMaskedLM` / `RobertaForMaskedLM` head. Variables are named by their
//! Hugging Face keys (`bert.encoder.layer.0.attention.self.query.weight`, ...).

mod config;
mod embeddings;
mod heads;
mod layer;

use std::ops::Range;
use std::path::Path;

pub use config::BertConfig;
use heads::{load_mlm_head, Pooler};
use layer::BertLayer;
use petune_core::fsio::read_json;
use petune_core::pool::gather_tokens;
use petune_core::{
    Backbone, BackboneInput, BackboneSpec, Capabilities, Hooks, KvPrefix, Result, SeqState,
};
use tch::{nn::VarStore, Tensor};

use crate::common::attention::encoder_bias;
use crate::common::backbone::{layer_of, no_mlm_head, no_pooler};
use crate::common::layer_loop::{run_layers, run_layers_read_out, LayerStack};
use crate::common::mlm_head::MlmHead;
use crate::common::weights::{KeyAction, WeightSource};
use crate::family::Family;
use crate::loader::LoadOptions;
use embeddings::BertEmbeddings;

/// A BERT or RoBERTa encoder with optional MLM head and pooler.
pub struct BertBackbone {
    vs: VarStore,
    spec: BackboneSpec,
    config: BertConfig,
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    pooler: Option<Pooler>,
    mlm: Option<MlmHead>,
}

impl std::fmt::Debug for BertBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertBackbone").field("spec", &self.spec.describe()).finish()
    }
}

/// Maps a checkpoint key to petune's canonical key: adds the `bert.`/`roberta.` prefix
/// that base-model files lack, renames LayerNorm `gamma`/`beta`, skips buffers and the
/// next-sentence head.
fn normalize_key(family: Family, key: &str) -> KeyAction {
    let prefix = if family == Family::Roberta { "roberta" } else { "bert" };
    if key.ends_with(".position_ids")
        || key.ends_with("embeddings.token_type_ids")
        || key.starts_with("cls.seq_relationship.")
    {
        return KeyAction::Skip;
    }
    let key = if let Some(stem) = key.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = key.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        key.to_string()
    };
    let bare = ["embeddings.", "encoder.", "pooler."].iter().any(|p| key.starts_with(p));
    KeyAction::Use(if bare { format!("{prefix}.{key}") } else { key })
}

impl BertBackbone {
    /// Loads `config.json` and `model.safetensors` from a Hugging Face folder.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<BertBackbone> {
        let config: BertConfig = read_json(&dir.join("config.json"))?;
        Self::from_config(config, &dir.join("model.safetensors"), opts)
    }

    /// Builds the backbone from a parsed config and a weights file, strictly: every
    /// missing, unexpected or mis-shaped key is reported in one error.
    pub fn from_config(
        config: BertConfig,
        weights: &Path,
        opts: &LoadOptions,
    ) -> Result<BertBackbone> {
        config.validate()?;
        let family = config.family()?;
        let mut src = WeightSource::open(weights, opts.device, opts.base_dtype.kind(), |k| {
            normalize_key(family, k)
        })?;
        let head_prefix = if family == Family::Roberta { "lm_head." } else { "cls.predictions." };
        let root_name = if family == Family::Roberta { "roberta" } else { "bert" };
        let caps = Capabilities {
            attn_prefix: true,
            input_embeds: true,
            lm_head: src.has_prefix(head_prefix) || config.declared_capabilities().lm_head,
            pooler: src.has_prefix(&format!("{root_name}.pooler.")),
        };
        let spec = config.spec(caps)?;
        let mut vs = VarStore::new(opts.device);
        let root = vs.root();
        let model = &root / root_name;
        let embeddings = BertEmbeddings::load(&mut src, &(&model / "embeddings"), &config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(&mut src, &(&model / "encoder" / "layer" / i), &config, i))
            .collect::<Result<Vec<_>>>()?;
        let pooler =
            caps.pooler.then(|| Pooler::load(&mut src, &(&model / "pooler"), config.hidden_size));
        let mlm = if caps.lm_head {
            Some(load_mlm_head(&mut src, &root, &config, embeddings.word_embeddings())?)
        } else {
            None
        };
        src.finish()?;
        vs.freeze();
        Ok(BertBackbone { vs, spec, config, embeddings, layers, pooler, mlm })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }
}

/// The encoder layers under the shared loop: one padding bias (none when nothing is
/// masked) for every layer, rebuilt when a hook changed the sequence or a layer has a
/// prefix.
impl LayerStack for BertBackbone {
    type Context = Option<Tensor>;

    fn context(
        &self,
        _layer: usize,
        s: &SeqState,
        prefix_mask: Option<&Tensor>,
    ) -> Result<Option<Tensor>> {
        Ok(encoder_bias(&s.pad_mask, prefix_mask, s.hidden.kind()))
    }

    fn forward_layer(
        &self,
        layer: usize,
        x: &Tensor,
        bias: &Option<Tensor>,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        self.layers[layer].forward(x, bias.as_ref(), prefix, hooks, train)
    }

    /// Only the read rows on the query side: the padding bias masks keys alone.
    fn forward_layer_rows(
        &self,
        layer: usize,
        x: &Tensor,
        index: &Tensor,
        bias: &Option<Tensor>,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Option<Tensor> {
        let xq = gather_tokens(x, index).unsqueeze(1); // [B, 1, H]
        Some(self.layers[layer].forward_queries(x, &xq, bias.as_ref(), prefix, hooks, train))
    }
}

impl Backbone for BertBackbone {
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

    fn layers_read_out(
        &self,
        s: SeqState,
        range: Range<usize>,
        hooks: &dyn Hooks,
        train: bool,
        rows: &Tensor,
    ) -> Result<SeqState> {
        run_layers_read_out(self, s, range, hooks, train, rows)
    }

    fn read_out_rows_only(&self) -> bool {
        true
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

    fn pooler(&self, cls: &Tensor) -> Result<Tensor> {
        match &self.pooler {
            Some(p) => Ok(p.forward(cls)),
            None => Err(no_pooler("this checkpoint has no pooler")),
        }
    }
}
