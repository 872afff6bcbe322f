//! The late-prompt generators of LPT (paper §3.2, Eqs. 2–3; lpt-reference.md §3):
//! a static prompt (LPT w/o PG), the naive prompt generator (NPG), and the pooling
//! prompt generators (APPG, MPPG). Variable names follow the authors' modules
//! (`prompt_generator.proj_down`, `proj_up`; `prompt_embedding`).

use petune_core::pool::{adaptive_pool, gather_tokens, AdaptivePool};
use petune_core::{Error, Result};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::config::{GeneratorConfig, LinearInit, LptConfig, PoolKind, PromptInit};

/// A linear with a selectable init (tch's default is Kaiming-uniform, √6 ≈ 2.45× wider
/// than PyTorch's `nn.Linear`, so the authors' init must be asked for explicitly).
fn linear(p: nn::Path, d_in: i64, d_out: i64, init: LinearInit) -> nn::Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let (ws_init, bs_init) = match init {
        LinearInit::TorchDefault => {
            (Init::Uniform { lo: -bound, up: bound }, Init::Uniform { lo: -bound, up: bound })
        }
        LinearInit::HfNormal => (Init::Randn { mean: 0.0, stdev: 0.02 }, Init::Const(0.0)),
    };
    nn::linear(p, d_in, d_out, nn::LinearConfig { ws_init, bs_init: Some(bs_init), bias: true })
}

/// A trainable `[len, hidden]` prompt named `p.name`, initialised per `init` (shared
/// by LPT w/o PG and the prompt-tuning baselines).
pub fn prompt_var(
    p: &nn::Path,
    name: &str,
    len: i64,
    hidden: i64,
    init: &PromptInit,
    word_embeddings: Option<&Tensor>,
) -> Result<Tensor> {
    if len < 1 {
        return Err(Error::config("len", "a prompt needs at least one token"));
    }
    Ok(match init {
        PromptInit::Random { std } => {
            p.var(name, &[len, hidden], Init::Randn { mean: 0.0, stdev: *std })
        }
        PromptInit::Vocab { first_n } => {
            let words = word_embeddings.ok_or_else(|| {
                Error::config("init", "vocabulary init needs the backbone's word embeddings")
            })?;
            let vocab = words.size()[0];
            if *first_n < 1 || *first_n > vocab {
                return Err(Error::config(
                    "init.first_n",
                    format!("must be in 1..={vocab} (the vocabulary size), got {first_n}"),
                ));
            }
            let rows = Tensor::randint(*first_n, [len], (Kind::Int64, words.device()));
            let init =
                words.index_select(0, &rows).detach().to_kind(Kind::Float).to_device(p.device());
            p.var_copy(name, &init)
        }
    })
}

/// A prompt generator.
#[derive(Debug)]
pub enum PromptGenerator {
    /// One learned prompt `[l, d]`.
    Static {
        /// `prompt_embedding.weight` `[l, d]`.
        prompt: Tensor,
    },
    /// NPG: one token → `[l, d]`.
    Naive {
        /// `proj_down`: d → m.
        down: nn::Linear,
        /// `proj_up`: m → l·d.
        up: nn::Linear,
        /// Prompt length.
        len: i64,
    },
    /// APPG / MPPG: every valid token → m, adaptive pool to l, ReLU, m → d.
    Pool {
        /// `proj_down`: d → m.
        down: nn::Linear,
        /// `proj_up`: m → d, shared across positions.
        up: nn::Linear,
        /// Prompt length.
        len: i64,
        /// Pooling.
        pool: AdaptivePool,
    },
}

impl PromptGenerator {
    /// Builds the generator under `p` (in the trainable store). `word_embeddings` is
    /// needed only for vocabulary-sampled static prompts.
    pub fn new(
        p: &nn::Path,
        cfg: &LptConfig,
        hidden: i64,
        word_embeddings: Option<&Tensor>,
    ) -> Result<Self> {
        Ok(match &cfg.generator {
            GeneratorConfig::Static { len, init } => {
                let prompt = prompt_var(
                    &(p / "prompt_embedding"),
                    "weight",
                    *len,
                    hidden,
                    init,
                    word_embeddings,
                )?;
                PromptGenerator::Static { prompt }
            }
            GeneratorConfig::Naive { len, bottleneck, init } => {
                let g = p / "prompt_generator";
                PromptGenerator::Naive {
                    down: linear(&g / "proj_down", hidden, *bottleneck, *init),
                    up: linear(&g / "proj_up", *bottleneck, len * hidden, *init),
                    len: *len,
                }
            }
            GeneratorConfig::Pool { pool, len, bottleneck, init } => {
                let g = p / "prompt_generator";
                PromptGenerator::Pool {
                    down: linear(&g / "proj_down", hidden, *bottleneck, *init),
                    up: linear(&g / "proj_up", *bottleneck, hidden, *init),
                    len: *len,
                    pool: match pool {
                        PoolKind::Avg => AdaptivePool::Avg,
                        PoolKind::Max => AdaptivePool::Max,
                    },
                }
            }
        })
    }

    /// The prompt for a batch: `[B, l, d]` (or `[l, d]` for a static prompt, shared).
    ///
    /// `hidden` `[B, T, d]` and `mask` `[B, T]` are the text states at the prompt layer;
    /// `anchor` `[B]` is the token NPG reads (first token for encoders, last context
    /// token for GPT-2).
    pub fn generate(&self, hidden: &Tensor, mask: &Tensor, anchor: &Tensor) -> Tensor {
        use tch::nn::Module;
        match self {
            PromptGenerator::Static { prompt } => prompt.shallow_clone(),
            PromptGenerator::Naive { down, up, len } => {
                let (b, d) = (hidden.size()[0], hidden.size()[2]);
                let h = gather_tokens(hidden, anchor); // [B, d]
                up.forward(&down.forward(&h).relu()).view([b, *len, d]) // [B, l·d] → [B, l, d], token j = [j·d, (j+1)·d)
            }
            PromptGenerator::Pool { down, up, len, pool } => {
                let z = down.forward(hidden); // [B, T, m]
                let pooled = adaptive_pool(&z, mask, *len, *pool); // [B, l, m]
                up.forward(&pooled.relu()) // [B, l, d]
            }
        }
    }

    /// Whether the prompt depends on the input (and gets output dropout).
    pub fn is_instance_aware(&self) -> bool {
        !matches!(self, PromptGenerator::Static { .. })
    }
}
