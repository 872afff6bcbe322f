//! Building blocks shared by every backbone: a linear projection (in `nn.Linear` and in
//! GPT-2's `Conv1D` layout), a LayerNorm and an RMSNorm that fire their site hooks, the
//! Q/K/V sites of fused projections, activations by their Hugging Face names, dropout,
//! the end of a sublayer (dropout, then the `sublayer_out` hook), and the embeddings'
//! word lookup and id / position range checks.
//!
//! Every projection goes through [`Linear`] (or [`Conv1D`]), so a weight stored another
//! way (a quantized frozen base) is one type to extend, not one per backbone. A weight
//! stored in bfloat16 ([`crate::loader::BaseDtype`]) meets float32 activations through
//! [`weight_for`] and [`upcast`] (the other weight uses: LM heads, DeBERTa's fused
//! projection and relative table).

use petune_core::{
    BackboneInput, Error, Hooks, LinearRole, LinearSite, NormSite, Result, SeqState, Sublayer,
    SublayerSite,
};
use tch::{nn, Kind, Tensor};

use super::weights::WeightSource;
use crate::gguf::QuantizedTensor;

/// Adds `delta` to `weight` (a view of a stored weight) in place, without autograd,
/// after checking the shapes agree: how LoRA merges into frozen weights.
pub fn add_in_place(site: LinearSite, weight: &Tensor, delta: &Tensor) -> Result<()> {
    if weight.size() != delta.size() {
        return Err(Error::Shape {
            ctx: format!("weight delta for {site:?}"),
            expected: format!("{:?}", weight.size()),
            got: delta.size(),
        });
    }
    let _no_grad = tch::no_grad_guard();
    let mut w = weight.shallow_clone();
    let _ = w.f_add_(&delta.to_kind(w.kind()).to_device(w.device()))?;
    Ok(())
}

/// `w` in the dtype a matmul with `x` needs: `w` itself when the dtypes agree, or when
/// autocast is on for `x`'s device (autocast casts both operands to its lower-precision
/// dtype, so a bfloat16 weight is used as stored: no per-op cast at all, where a float32
/// weight is cast at every op — libtorch's autocast caches casts of leaves that require
/// grad only, and frozen weights do not); otherwise `w` cast to `x`'s dtype, so a
/// bfloat16 base under float32 arithmetic computes in float32 with the rounded weights
/// (the cast is transient; autograd keeps it until backward when `x` needs a gradient).
pub fn weight_for(w: &Tensor, x: &Tensor) -> Tensor {
    if w.kind() == x.kind() || autocast_on(x) {
        w.shallow_clone()
    } else {
        w.to_kind(x.kind())
    }
}

/// Whether autocast is on for `x`'s device; an autocast state that cannot be read
/// (a device type without autocast) counts as off, which casts (always correct).
fn autocast_on(x: &Tensor) -> bool {
    matches!(petune_ext::autocast_state(x.device()), Ok((true, _)))
}

/// Rows looked up from a weight table (embeddings) in float32: activations start in
/// float32 whatever the table is stored in (a bfloat16 base), as with a float32 base.
pub fn upcast(t: Tensor) -> Tensor {
    if t.kind() == Kind::BFloat16 {
        t.to_kind(Kind::Float)
    } else {
        t
    }
}

/// The weight of a [`Linear`]: a dense tensor (a variable of the backbone's store), or a
/// frozen base weight kept in its GGUF blocks ([`LoadOptions::quantized_base`]).
///
/// [`LoadOptions::quantized_base`]: crate::loader::LoadOptions::quantized_base
#[derive(Debug)]
pub enum LinearWeight {
    /// `[out, in]`, in the load kind.
    Dense(Tensor),
    /// `[out, in]` as GGUF blocks (a type [`QuantizedTensor::dequantize`] supports, checked
    /// at load), dequantized at each forward pass.
    Quantized(QuantizedTensor),
}

/// A linear projection stored as Hugging Face's `nn.Linear` (`weight: [out, in]`).
#[derive(Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: LinearWeight,
    /// `[out]`.
    pub bias: Option<Tensor>,
    /// The site this projection reports to hooks, if it is one.
    pub site: Option<LinearSite>,
}

impl Linear {
    /// Loads `p.weight` (and `p.bias` when `bias`) from `src`: dense, or quantized when
    /// the source holds the weight's blocks.
    pub fn load(src: &mut WeightSource, p: &nn::Path, d_in: i64, d_out: i64, bias: bool) -> Linear {
        let weight = src.linear_weight(p, "weight", &[d_out, d_in]);
        let bias = bias.then(|| src.param(p, "bias", &[d_out]));
        Linear { weight, bias, site: None }
    }

    /// Names the site hooks will see.
    pub fn at(mut self, site: LinearSite) -> Linear {
        self.site = Some(site);
        self
    }

    /// Adds `delta` `[out, in]` to the weight in place; a quantized weight refuses (its
    /// blocks cannot hold the sum).
    pub fn add_to_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        match &self.weight {
            LinearWeight::Dense(w) => add_in_place(site, w, delta),
            LinearWeight::Quantized(q) => Err(Error::Unsupported {
                what: format!("changing the quantized base weight of {site:?}"),
                msg: format!(
                    "`{}` is kept in its {} blocks (quantized_base): load the model without \
                     quantized_base to merge into it",
                    q.name(),
                    q.ggml_type()
                ),
            }),
        }
    }

    /// `y = x Wᵀ + b`, then the site's `linear` hook. A quantized weight is dequantized
    /// here and dropped after use (autograd keeps it until the backward pass when `x`
    /// needs a gradient; the weight itself never does).
    pub fn forward(&self, x: &Tensor, hooks: &dyn Hooks) -> Tensor {
        let y = match &self.weight {
            LinearWeight::Dense(w) => x.linear(&weight_for(w, x), self.bias.as_ref()),
            LinearWeight::Quantized(q) => {
                let w = q.dequantize_t().to_kind(x.kind()); // [out, in]
                x.linear(&w, self.bias.as_ref())
            }
        };
        match self.site {
            Some(site) => hooks.linear(site, x, y),
            None => y,
        }
    }
}

/// A projection stored as Hugging Face's `Conv1D` (GPT-2): `weight: [in, out]`,
/// `y = x W + b`. The file's layout is kept (no transpose on load), so HF checkpoints
/// load unmodified; hooks see the same `x → y` as for [`Linear`].
///
/// Port of `transformers/pytorch_utils.py::Conv1D`.
#[derive(Debug)]
pub struct Conv1D {
    /// `[in, out]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Tensor,
    /// The site this projection reports to hooks, if it is one.
    pub site: Option<LinearSite>,
}

impl Conv1D {
    /// Loads `p.weight` (`[d_in, d_out]`) and `p.bias` (`[d_out]`) from `src`.
    pub fn load(src: &mut WeightSource, p: &nn::Path, d_in: i64, d_out: i64) -> Conv1D {
        let weight = src.param(p, "weight", &[d_in, d_out]);
        let bias = src.param(p, "bias", &[d_out]);
        Conv1D { weight, bias, site: None }
    }

    /// Names the site hooks will see.
    pub fn at(mut self, site: LinearSite) -> Conv1D {
        self.site = Some(site);
        self
    }

    /// Adds `delta` `[out, in]` (the `nn.Linear` layout) to the `[in, out]` weight in
    /// place; `cols` restricts it to a column range (one role of a fused `c_attn`).
    pub fn add_to_weight(
        &self,
        site: LinearSite,
        delta: &Tensor,
        cols: Option<(i64, i64)>,
    ) -> Result<()> {
        let w = match cols {
            Some((start, len)) => self.weight.narrow(1, start, len),
            None => self.weight.shallow_clone(),
        };
        add_in_place(site, &w.transpose(0, 1), delta) // [out, in] view of [in, out]
    }

    /// `y = x W + b` on `[.., in]` → `[.., out]` (HF's `addmm` on the flattened input),
    /// then the site's `linear` hook.
    pub fn forward(&self, x: &Tensor, hooks: &dyn Hooks) -> Tensor {
        let (d_in, d_out) = (self.weight.size()[0], self.weight.size()[1]);
        let mut out_size = x.size();
        if let Some(last) = out_size.last_mut() {
            *last = d_out;
        }
        let w = weight_for(&self.weight, x); // [in, out]
        let y = self.bias.addmm(&x.reshape([-1, d_in]), &w).view(out_size.as_slice()); // [.., out]
        match self.site {
            Some(site) => hooks.linear(site, x, y),
            None => y,
        }
    }
}

/// Fires the Query, Key and Value sites of `layer`, in that order, on the three
/// `[B, T, H]` slices of a fused projection of `x` (GPT-2's `c_attn`, DeBERTa's
/// `in_proj`): deltas see one ordinary projection per role whatever the checkpoint fuses.
pub fn qkv_sites(
    hooks: &dyn Hooks,
    layer: usize,
    x: &Tensor,
    [q, k, v]: [Tensor; 3],
) -> [Tensor; 3] {
    let site = |role| LinearSite { layer, role };
    [
        hooks.linear(site(LinearRole::Query), x, q),
        hooks.linear(site(LinearRole::Key), x, k),
        hooks.linear(site(LinearRole::Value), x, v),
    ]
}

/// LayerNorm over the last dimension.
#[derive(Debug)]
pub struct LayerNorm {
    /// Scale `[H]`.
    pub weight: Tensor,
    /// Shift `[H]`.
    pub bias: Tensor,
    /// Epsilon.
    pub eps: f64,
    /// The site hooks will see.
    pub site: Option<NormSite>,
}

impl LayerNorm {
    /// Loads `p.weight` and `p.bias` (checkpoints' `gamma`/`beta` are renamed on read).
    pub fn load(src: &mut WeightSource, p: &nn::Path, dim: i64, eps: f64) -> LayerNorm {
        let weight = src.param(p, "weight", &[dim]);
        let bias = src.param(p, "bias", &[dim]);
        LayerNorm { weight, bias, eps, site: None }
    }

    /// Names the site hooks will see.
    pub fn at(mut self, site: NormSite) -> LayerNorm {
        self.site = Some(site);
        self
    }

    /// Normalise, then the site's `norm` hook.
    pub fn forward(&self, x: &Tensor, hooks: &dyn Hooks) -> Tensor {
        let dim = self.weight.size();
        let y = x.layer_norm(dim.as_slice(), Some(&self.weight), Some(&self.bias), self.eps, true);
        match self.site {
            Some(site) => hooks.norm(site, y),
            None => y,
        }
    }
}

/// RMSNorm over the last dimension (`LlamaRMSNorm`, transformers 5.24
/// models/llama/modeling_llama.py): `w · (x / sqrt(mean(x²) + eps))`, the normalisation
/// computed in float32 and cast back before the scale; no bias.
#[derive(Debug)]
pub struct RmsNorm {
    /// Scale `[H]`.
    pub weight: Tensor,
    /// Epsilon (inside the square root).
    pub eps: f64,
    /// The site hooks will see.
    pub site: Option<NormSite>,
}

impl RmsNorm {
    /// Loads `p.weight`.
    pub fn load(src: &mut WeightSource, p: &nn::Path, dim: i64, eps: f64) -> RmsNorm {
        RmsNorm { weight: src.param(p, "weight", &[dim]), eps, site: None }
    }

    /// Names the site hooks will see.
    pub fn at(mut self, site: NormSite) -> RmsNorm {
        self.site = Some(site);
        self
    }

    /// Normalise, then the site's `norm` hook.
    pub fn forward(&self, x: &Tensor, hooks: &dyn Hooks) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let var = xf.square().mean_dim([-1].as_slice(), true, Kind::Float); // [.., 1]
        let y = &self.weight * (xf * (var + self.eps).rsqrt()).to_kind(x.kind());
        match self.site {
            Some(site) => hooks.norm(site, y),
            None => y,
        }
    }
}

/// Activation functions, by the names `config.json` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact (erf) GELU: HF `gelu`.
    Gelu,
    /// tanh-approximated GELU: HF `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`.
    GeluTanh,
    /// ReLU.
    Relu,
    /// SiLU / swish.
    Silu,
    /// tanh.
    Tanh,
}

impl Activation {
    /// Parses a Hugging Face `hidden_act` / `activation_function` value.
    pub fn from_hf(name: &str, field: &str) -> Result<Activation> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            other => return Err(Error::Unsupported {
                what: format!("{field} `{other}`"),
                msg: "petune knows gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, tanh"
                    .into(),
            }),
        })
    }

    /// Applies the activation.
    pub fn forward(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Gelu => x.gelu("none"),
            Activation::GeluTanh => x.gelu("tanh"),
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
            Activation::Tanh => x.tanh(),
        }
    }
}

/// The end of every sublayer (attention or FFN) of every backbone: dropout on the output
/// projection `y`, then the `sublayer_out` hook of (`layer`, `kind`), before the
/// residual add (and, post-LN, the LayerNorm) that the caller does.
pub fn sublayer_out(
    y: Tensor,
    p: f64,
    train: bool,
    hooks: &dyn Hooks,
    layer: usize,
    kind: Sublayer,
) -> Tensor {
    hooks.sublayer_out(SublayerSite { layer, kind }, dropout(y, p, train))
}

/// The first step of every embedding block: `table[input_ids]` `[B, T, H]` with the
/// input's padding mask and positions, passed through the `input_embeds` hook (which may
/// prepend tokens, so the state can be longer than the input).
pub fn embed_words(table: &Tensor, input: &BackboneInput, hooks: &dyn Hooks) -> Result<SeqState> {
    let words = upcast(Tensor::embedding(table, &input.input_ids, -1, false, false)); // [B, T, H]
    hooks.input_embeds(SeqState::for_input(words, input))
}

/// The embeddings' range check: the largest of `positions` (for an input of `seq`
/// tokens) must index a table of `max_positions` rows, else a typed input error
/// instead of an out-of-range embedding lookup.
pub fn check_positions(positions: &Tensor, seq: i64, max_positions: i64) -> Result<()> {
    let max_pos = positions.max().int64_value(&[]);
    if max_pos >= max_positions {
        return Err(Error::input(format!(
            "input of {seq} tokens needs position {max_pos}, beyond the model's {max_positions} position embeddings"
        )));
    }
    Ok(())
}

/// Dropout that is a no-op outside training or at p = 0 (no kernel launched); the
/// CPU path draws 16-bit masks ([`petune_core::dropout`]).
pub use petune_core::dropout::dropout;
