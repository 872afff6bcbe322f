//! P-tuning v2 (Liu et al., ACL 2022; THUDM/P-tuning-v2 `PrefixEncoder` and
//! `*PrefixForSequenceClassification`, lpt-reference.md §7): `len` trained key/value
//! vectors per layer and head, prepended to every layer's own keys and values.
//!
//! Without reparameterisation (the paper's count) the prefix is one embedding
//! `[len, 2·L·kv]`, N(0, 1) as `nn.Embedding`; with it, an embedding `[len, d]` goes
//! through `Linear(d, m) → tanh → Linear(m, 2·L·kv)`. `kv` is the key/value width,
//! `n_kv_heads · head_dim` (`d` except under grouped-query attention, where the prefix is
//! sized by the key/value heads as transformers' cache is). The `2·L·kv` axis is laid out
//! `[L, 2 (key, value), kv_heads, head_dim]` (THUDM's `view(.., 2L, nh, hd)`), and dropout
//! is applied to the prefix while training. Every query attends every prefix slot. On
//! rotary backbones (the Llama family) prefix keys are used as they are, not rotated:
//! they have no position.

use petune_core::{
    Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, KvPrefix, Result, SiteRef,
};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
use tch::Tensor;

/// P-tuning v2 settings (paper: 20 prefix tokens, no reparameterisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PTuningV2Config {
    /// Prefix length per layer.
    #[serde(default = "default_len")]
    pub len: i64,
    /// Hidden size of the reparameterisation MLP (THUDM's `prefix_hidden_size`); none = a
    /// plain prefix embedding.
    #[serde(default)]
    pub reparam_hidden: Option<i64>,
    /// Dropout on the prefix key/values while training (THUDM: the model's hidden dropout).
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_len() -> i64 {
    20
}

fn default_dropout() -> f64 {
    0.1
}

impl Default for PTuningV2Config {
    fn default() -> Self {
        PTuningV2Config { len: default_len(), reparam_hidden: None, dropout: default_dropout() }
    }
}

impl PTuningV2Config {
    /// Trainable parameters: `len·2·L·kv`, or with the MLP
    /// `len·d + (d·m + m) + (m·2L·kv + 2L·kv)`.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        let out = 2 * spec.n_layers as i64 * spec.kv_dim();
        match self.reparam_hidden {
            None => self.len * out,
            Some(m) => self.len * spec.hidden + spec.hidden * m + m + m * out + out,
        }
    }

    /// Checks the config against a backbone before anything is allocated.
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        if self.len < 1 {
            return Err(Error::config("len", "P-tuning v2 needs at least one prefix token"));
        }
        if matches!(self.reparam_hidden, Some(m) if m < 1) {
            return Err(Error::config("reparam_hidden", "must be positive"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", "must be in [0, 1)"));
        }
        if !spec.capabilities.attn_prefix {
            return Err(Error::Incompatible {
                method: "P-tuning v2".into(),
                backbone: spec.describe(),
                reason: "the backbone takes no attention prefixes".into(),
            });
        }
        Ok(())
    }
}

/// PyTorch's `nn.Linear` default init, U(±1/√fan_in) for weight and bias (tch's
/// default Kaiming bound is √6 times wider).
fn torch_default(fan_in: i64) -> nn::LinearConfig {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let u = Init::Uniform { lo: -bound, up: bound };
    nn::LinearConfig { ws_init: u, bs_init: Some(u), bias: true }
}

#[derive(Debug)]
enum PrefixEncoder {
    Plain(Tensor),
    Reparam { embedding: Tensor, up: nn::Linear, out: nn::Linear },
}

/// The trained prefixes.
#[derive(Debug)]
pub struct PTuningV2Delta {
    cfg: PTuningV2Config,
    encoder: PrefixEncoder,
    layers: usize,
    heads: i64,
    head_dim: i64,
    params: i64,
}

impl PTuningV2Delta {
    /// Allocates the prefix encoder under `p` (`p.prefix_encoder.*`, THUDM's names).
    pub fn new(p: &nn::Path, cfg: &PTuningV2Config, backbone: &dyn Backbone) -> Result<Self> {
        let spec = backbone.spec();
        cfg.validate(spec)?;
        let out = 2 * spec.n_layers as i64 * spec.kv_dim();
        let e = p / "prefix_encoder";
        let normal = Init::Randn { mean: 0.0, stdev: 1.0 };
        let encoder = match cfg.reparam_hidden {
            None => PrefixEncoder::Plain((&e / "embedding").var("weight", &[cfg.len, out], normal)),
            Some(m) => PrefixEncoder::Reparam {
                embedding: (&e / "embedding").var("weight", &[cfg.len, spec.hidden], normal),
                up: nn::linear(&e / "trans_0", spec.hidden, m, torch_default(spec.hidden)),
                out: nn::linear(&e / "trans_2", m, out, torch_default(m)),
            },
        };
        Ok(PTuningV2Delta {
            cfg: cfg.clone(),
            encoder,
            layers: spec.n_layers,
            heads: spec.n_kv_heads,
            head_dim: spec.head_dim,
            params: cfg.trainable_params(spec),
        })
    }

    /// All prefixes `[len, 2·L·kv]`.
    fn prefixes(&self) -> Tensor {
        match &self.encoder {
            PrefixEncoder::Plain(t) => t.shallow_clone(),
            PrefixEncoder::Reparam { embedding, up, out } => {
                out.forward(&up.forward(embedding).tanh())
            }
        }
    }
}

struct PrefixHooks {
    /// Per layer: keys and values `[1, heads, len, head_dim]`.
    per_layer: Vec<(Tensor, Tensor)>,
    batch: i64,
}

impl Hooks for PrefixHooks {
    fn attn_prefix(&self, layer: usize) -> Option<KvPrefix> {
        let (k, v) = self.per_layer.get(layer)?;
        let size = |t: &Tensor| {
            let s = t.size();
            [self.batch, s[1], s[2], s[3]]
        };
        Some(KvPrefix { k: k.expand(size(k), false), v: v.expand(size(v), false), mask: None })
    }
}

impl Delta for PTuningV2Delta {
    fn name(&self) -> &'static str {
        "ptuning_v2"
    }

    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        let prefixes = self.prefixes().dropout(self.cfg.dropout, ctx.train); // [len, 2·L·kv]
        let (l, nh, hd) = (self.layers as i64, self.heads, self.head_dim);
        // [len, 2L·kv] → [len, L, 2, kv_heads, hd] → [L, 2, kv_heads, len, hd]
        let kv = prefixes.view([self.cfg.len, l, 2, nh, hd]).permute([1, 2, 3, 0, 4]);
        let per_layer = (0..l)
            .map(|i| {
                let layer = kv.get(i); // [2, nh, len, hd]
                (layer.get(0).unsqueeze(0), layer.get(1).unsqueeze(0)) // [1, nh, len, hd] each
            })
            .collect();
        Ok(Box::new(PrefixHooks { per_layer, batch: ctx.input.batch() }))
    }

    /// Every layer's prefix; a reparameterisation MLP is shared, so its parameters are
    /// split evenly (the remainder on layer 0).
    fn touched_sites(&self) -> Vec<(SiteRef, i64)> {
        let total = self.params;
        let n = self.layers as i64;
        (0..self.layers)
            .map(|layer| {
                let share = total / n + if layer == 0 { total % n } else { 0 };
                (SiteRef::AttnPrefix { layer }, share)
            })
            .collect()
    }
}
