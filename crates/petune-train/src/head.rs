//! Task heads shared by every method (paper §4.1; lpt-reference.md §4):
//! - the MLM verbalizer: the frozen MLM head at the mask position; training loss over
//!   the full vocabulary with the label words' ids as targets (the authors' code), or
//!   restricted to the label words; evaluation always restricted to the label words;
//! - a trainable linear head on one token (the mask position with a template, or the
//!   first text token, `[CLS]`, as model tuning does) for backbones without an MLM
//!   head, such as all-MiniLM-L6-v2.
//!
//! Heads index past any prepended prompt (`n_prefix`).

use petune_core::pool::{first_valid_index, gather_tokens, last_valid_index};
use petune_core::{Backbone, Error, Result, SeqState};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::features::Batch;

/// Training loss of the MLM verbalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerbalizerLoss {
    /// Cross-entropy over the whole vocabulary (the authors' code).
    #[default]
    FullVocab,
    /// Cross-entropy over the label words only.
    LabelWords,
}

/// Which token a linear head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadToken {
    /// The first text token (`[CLS]` / `<s>`).
    Cls,
    /// The template's mask position.
    Mask,
    /// The last real token (GPT-2 sequence classification reads the EOS).
    Last,
}

/// Head choice in a run config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HeadConfig {
    /// MLM verbalizer when the backbone has an MLM head, else a linear head on the mask
    /// position (model tuning: a linear head on `[CLS]`).
    #[default]
    Auto,
    /// The MLM verbalizer.
    Verbalizer {
        /// Training loss.
        #[serde(default)]
        loss: VerbalizerLoss,
    },
    /// A trainable linear classifier.
    Linear {
        /// The token it reads.
        token: HeadToken,
    },
    /// GPT-2 direct LM scoring: length-normalised NLL of each class's label span, the
    /// lowest wins (lpt-reference.md §4.2).
    LmScoring,
}

/// A built head.
#[derive(Debug)]
pub enum Head {
    /// MLM verbalizer.
    Verbalizer {
        /// Label-word vocabulary ids `[C]`.
        label_ids: Tensor,
        /// Training loss.
        loss: VerbalizerLoss,
    },
    /// Linear classifier (trainable, in the trainable store under `head`).
    Linear {
        /// The token it reads.
        token: HeadToken,
        /// `head.classifier`: H → C.
        proj: nn::Linear,
        /// Dropout before the projection (the model's hidden dropout).
        dropout: f64,
    },
    /// GPT-2 LM scoring (frozen LM head; nothing trainable).
    LmScoring,
}

/// Logits a head produces for a batch.
#[derive(Debug)]
pub struct HeadOutput {
    /// What the training loss is computed on (`[B, V]` full vocabulary or `[B, C]`;
    /// for LM scoring the per-example NLL `[B]`).
    pub train_logits: Tensor,
    /// Class scores `[B, C]` (LM scoring: minus the NLL of the batch's own span, `[B]`).
    pub class_logits: Tensor,
}

/// Length-normalised NLL `[B]` of the target tokens (`target_mask` `[B, T]`) under the
/// LM logits of the text positions: token t is predicted from position t − 1.
fn span_nll(backbone: &dyn Backbone, out: &SeqState, batch: &Batch, train: bool) -> Result<Tensor> {
    let target = batch
        .target_mask
        .as_ref()
        .ok_or_else(|| Error::config("head", "LM scoring needs LM-scoring inputs"))?;
    let t = batch.input.seq_len();
    let hidden = out.text_hidden().narrow(1, 0, t - 1); // [B, T-1, H]: positions that predict 1..T
    let logp =
        backbone.lm_logits(&hidden, train)?.to_kind(Kind::Float).log_softmax(-1, Kind::Float); // [B, T-1, V]
    let next = batch.input.input_ids.narrow(1, 1, t - 1); // [B, T-1]
    let tok = logp.gather(2, &next.unsqueeze(-1), false).squeeze_dim(-1); // [B, T-1]
    let m = target.narrow(1, 1, t - 1).to_kind(Kind::Float); // [B, T-1]
    Ok(-(tok * &m).sum_dim_intlist(1, false, Kind::Float)
        / m.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0))
}

impl Head {
    /// The MLM verbalizer with the given label-word ids.
    pub fn verbalizer(
        backbone: &dyn Backbone,
        label_ids: Vec<i64>,
        loss: VerbalizerLoss,
    ) -> Result<Head> {
        if !backbone.spec().capabilities.lm_head {
            return Err(Error::Incompatible {
                method: "MLM verbalizer head".into(),
                backbone: backbone.spec().describe(),
                reason: "the checkpoint has no MLM head; use a linear head".into(),
            });
        }
        Ok(Head::Verbalizer {
            label_ids: Tensor::from_slice(&label_ids).to_device(backbone.device()),
            loss,
        })
    }

    /// A linear head under `p` with PyTorch's default `nn.Linear` init.
    pub fn linear(p: &nn::Path, hidden: i64, classes: i64, token: HeadToken, dropout: f64) -> Head {
        let bound = 1.0 / (hidden as f64).sqrt();
        let cfg = nn::LinearConfig {
            ws_init: nn::Init::Uniform { lo: -bound, up: bound },
            bs_init: Some(nn::Init::Uniform { lo: -bound, up: bound }),
            bias: true,
        };
        Head::Linear { token, proj: nn::linear(p / "classifier", hidden, classes, cfg), dropout }
    }

    /// The text position `[B]` each example is scored from, for the heads that read
    /// one token per example (the verbalizer and linear heads): what lets the backbone
    /// compute its last layer at those tokens alone (`Backbone::layers_read_out`).
    /// `None` for LM scoring, which reads every position.
    pub fn read_rows(&self, batch: &Batch) -> Result<Option<Tensor>> {
        let mask_pos = || -> Result<Tensor> {
            if batch.mask_pos.min().int64_value(&[]) < 0 {
                return Err(Error::config(
                    "head",
                    "this head reads the mask position, but the inputs have no template",
                ));
            }
            Ok(batch.mask_pos.shallow_clone())
        };
        // The text part of every state's mask is the input's (prompts are prepended).
        let text_mask = &batch.input.attention_mask;
        Ok(Some(match self {
            Head::Verbalizer { .. } | Head::Linear { token: HeadToken::Mask, .. } => mask_pos()?,
            Head::Linear { token: HeadToken::Cls, .. } => first_valid_index(text_mask),
            Head::Linear { token: HeadToken::Last, .. } => last_valid_index(text_mask),
            Head::LmScoring => return Ok(None),
        }))
    }

    /// Scores a batch from the backbone's final state.
    pub fn forward(
        &self,
        backbone: &dyn Backbone,
        out: &SeqState,
        batch: &Batch,
        train: bool,
    ) -> Result<HeadOutput> {
        match self.read_rows(batch)? {
            Some(rows) => {
                let rows = out.check_rows(&rows)?;
                let h = gather_tokens(&out.hidden, &out.text_index(rows.tensor())); // [B, H]
                self.forward_read(backbone, &h, train)
            }
            None => {
                let nll = span_nll(backbone, out, batch, train)?; // [B]
                Ok(HeadOutput { class_logits: -&nll, train_logits: nll })
            }
        }
    }

    /// Scores from the final hidden states `h` `[B, H]` of the tokens at
    /// [`Head::read_rows`] (LM scoring reads every position: a typed refusal).
    pub fn forward_read(
        &self,
        backbone: &dyn Backbone,
        h: &Tensor,
        train: bool,
    ) -> Result<HeadOutput> {
        match self {
            Head::Verbalizer { label_ids, loss } => {
                let vocab = backbone.lm_logits(h, train)?; // [B, V]
                let class_logits = vocab.index_select(1, label_ids); // [B, C]
                let train_logits = match loss {
                    VerbalizerLoss::FullVocab => vocab,
                    VerbalizerLoss::LabelWords => class_logits.shallow_clone(),
                };
                Ok(HeadOutput { train_logits, class_logits })
            }
            Head::Linear { proj, dropout, .. } => {
                let h = petune_core::dropout::dropout(h.shallow_clone(), *dropout, train);
                let class_logits = proj.forward(&h.to_kind(Kind::Float));
                Ok(HeadOutput { train_logits: class_logits.shallow_clone(), class_logits })
            }
            Head::LmScoring => Err(Error::config(
                "head",
                "LM scoring reads every position, not one token per example",
            )),
        }
    }

    /// Cross-entropy training loss for class labels `[B]`.
    pub fn loss(&self, out: &HeadOutput, labels: &Tensor) -> Tensor {
        if let Head::LmScoring = self {
            // The authors' get_loss: mean over the batch of each example's normalised NLL.
            return out.train_logits.mean(Kind::Float);
        }
        let targets = match self {
            Head::Verbalizer { label_ids, loss: VerbalizerLoss::FullVocab } => {
                label_ids.index_select(0, labels)
            }
            _ => labels.shallow_clone(),
        };
        out.train_logits.to_kind(Kind::Float).cross_entropy_for_logits(&targets)
    }
}
