//! The model families this crate loads, by their Hugging Face `model_type`: the one
//! place the crate dispatches on a family (loader, tokenizer defaults). The core spec
//! only carries the `model_type` name; no method matches on a family.

use petune_core::{Error, Result};

/// A family of checkpoints with one backbone implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// BERT and its descendants (MiniLM, splade...).
    Bert,
    /// RoBERTa (BERT layers, RoBERTa position ids); also `xlm-roberta`, `camembert`.
    Roberta,
    /// DeBERTa v1.
    Deberta,
    /// GPT-2.
    Gpt2,
    /// Llama (1, 2, 3.x; SmolLM2 and other `LlamaForCausalLM` checkpoints).
    Llama,
    /// Mistral (sliding-window attention).
    Mistral,
    /// Qwen2 / Qwen2.5 (biased q/k/v projections).
    Qwen2,
}

impl Family {
    /// Every family, in the order the docs list them.
    pub const ALL: [Family; 7] = [
        Family::Bert,
        Family::Roberta,
        Family::Deberta,
        Family::Gpt2,
        Family::Llama,
        Family::Mistral,
        Family::Qwen2,
    ];

    /// The canonical `model_type` (what the spec reports).
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::Deberta => "deberta",
            Family::Gpt2 => "gpt2",
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
        }
    }

    /// The family of a `config.json` `model_type`, or `Error::Unsupported`.
    pub fn from_model_type(model_type: &str) -> Result<Family> {
        match model_type {
            "xlm-roberta" | "camembert" => Ok(Family::Roberta),
            other => Family::ALL.into_iter().find(|f| f.model_type() == other).ok_or_else(|| {
                let known: Vec<&str> = Family::ALL.iter().map(|f| f.model_type()).collect();
                Error::Unsupported {
                    what: format!("model_type `{other}`"),
                    msg: format!("petune loads {} checkpoints (DeBERTa v1)", known.join(", ")),
                }
            }),
        }
    }
}
