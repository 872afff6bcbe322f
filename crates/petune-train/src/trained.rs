//! A trained method: backbone + delta + head + feature encoder, with evaluation,
//! `predict` on new text, and save / load of the trainable tensors
//! (`delta.safetensors` + `delta.json`).

use std::collections::HashMap;
use std::path::Path;

use petune_backbones::TextTokenizer;
use petune_core::fsio::{read_json, write_json_atomic};
use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{Backbone, BackboneSpec, Delta, Error, Result, SeqState};
use petune_ext::ProcessGroup;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::data::metrics::classification_report;
use crate::data::{ClassificationReport, Dataset, Example, Metric, MetricReport, TaskSpec};
use crate::data_parallel::{gather_predictions, shard_range};
use crate::features::{
    collate, label_word_ids, multi_token_words, Batch, Feature, FeatureEncoder, LmScoring,
};
use crate::head::{Head, HeadConfig, HeadToken};
use crate::method::MethodConfig;

/// What `delta.json` records: enough to rebuild the delta and head on the same backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaManifest {
    /// petune version that wrote it.
    pub petune_version: String,
    /// The method.
    pub method: MethodConfig,
    /// The head as built (never `auto`).
    pub head: HeadConfig,
    /// The task (templates, label words, metric).
    pub task: TaskSpec,
    /// Longest input in tokens.
    pub max_len: usize,
    /// Whether inputs were truncated.
    pub truncate: bool,
    /// The backbone it was trained on (`family`, sizes), for a sanity check on load.
    pub backbone: String,
}

/// A backbone with a trained method on top.
pub struct TrainedModel {
    pub(crate) backbone: Box<dyn Backbone>,
    pub(crate) trainable: VarStore,
    pub(crate) delta: Option<Box<dyn Delta>>,
    pub(crate) head: Head,
    pub(crate) encoder: FeatureEncoder,
    pub(crate) manifest: DeltaManifest,
    /// When false the backbone runs plain (PEFT's `disable_adapter`).
    pub(crate) delta_enabled: bool,
    /// The last layer at every token, not only at the token the head reads.
    pub(crate) full_last_layer: bool,
}

/// One prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Predicted class name.
    pub label: String,
    /// Class index.
    pub index: usize,
    /// Class probabilities (softmax over the class scores).
    pub probs: Vec<f64>,
}

/// Resolves `auto` for `method` on a backbone: a linear head on the first token (last
/// on GPT-2) for methods without a template, LM scoring on GPT-2, the MLM verbalizer
/// where the checkpoint has an MLM head, else a linear head at the mask.
pub fn resolve_head(
    cfg: HeadConfig,
    method: &MethodConfig,
    spec: &BackboneSpec,
) -> Result<HeadConfig> {
    resolve_head_templated(cfg, method, method.uses_template(), spec)
}

/// [`resolve_head`] with whether the inputs carry the template (`false` for a task in
/// [`crate::data::TemplateStyle::Raw`]).
fn resolve_head_templated(
    cfg: HeadConfig,
    method: &MethodConfig,
    templated: bool,
    spec: &BackboneSpec,
) -> Result<HeadConfig> {
    let decoder = spec.arch == petune_core::Arch::CausalDecoder;
    let resolved = match cfg {
        HeadConfig::Auto if !templated && decoder => HeadConfig::Linear { token: HeadToken::Last },
        HeadConfig::Auto if !templated => HeadConfig::Linear { token: HeadToken::Cls },
        HeadConfig::Auto if decoder => HeadConfig::LmScoring,
        HeadConfig::Auto if spec.capabilities.lm_head => {
            HeadConfig::Verbalizer { loss: Default::default() }
        }
        HeadConfig::Auto => HeadConfig::Linear { token: HeadToken::Mask },
        other => other,
    };
    if !templated
        && matches!(
            resolved,
            HeadConfig::Verbalizer { .. }
                | HeadConfig::LmScoring
                | HeadConfig::Linear { token: HeadToken::Mask }
        )
    {
        return Err(Error::config(
            "head",
            format!(
                "{} feeds raw text without a template: use a linear head on cls (or last)",
                method.label()
            ),
        ));
    }
    Ok(resolved)
}

/// Trainable parameters of a resolved head for `classes` labels: `d·C + C` for a linear
/// head, none for the verbalizer and LM scoring (they reuse the frozen LM head).
pub fn head_params(head: HeadConfig, spec: &BackboneSpec, classes: i64) -> i64 {
    match head {
        HeadConfig::Linear { .. } => spec.hidden * classes + classes,
        _ => 0,
    }
}

/// [`resolve_head`], then, for an `auto` head on a task whose label words are its class
/// names by default ([`TaskSpec::label_words_from_names`]), a linear head at the mask
/// instead of the verbalizer when some name is not one token for `tokenizer` (a
/// verbalizer the user did not ask for must not fail on words the user did not choose).
pub fn resolve_head_for_words(
    cfg: HeadConfig,
    method: &MethodConfig,
    spec: &BackboneSpec,
    tokenizer: &TextTokenizer,
    task: &TaskSpec,
) -> Result<HeadConfig> {
    let templated = method.uses_template() && !task.raw_text;
    let resolved = resolve_head_templated(cfg, method, templated, spec)?;
    if cfg == HeadConfig::Auto
        && task.label_words_from_names
        && matches!(resolved, HeadConfig::Verbalizer { .. })
    {
        let bad = multi_token_words(tokenizer, &task.label_words)?;
        if !bad.is_empty() {
            let names: Vec<&str> = bad.iter().map(|(w, _)| w.as_str()).collect();
            tracing::info!(
                "class names {} are not single tokens: using a linear head at the mask (give \
                 `label_words` for the MLM verbalizer)",
                names.join(", ")
            );
            return Ok(HeadConfig::Linear { token: HeadToken::Mask });
        }
    }
    Ok(resolved)
}

/// The trainable parameters' store with `method`'s delta (under `delta`) and the head
/// (under `head`) built in it, `auto` resolved: what training starts from (seeded by
/// the caller) and what loading fills.
pub(crate) type Trainable = (VarStore, Option<Box<dyn Delta>>, Head, HeadConfig);

/// Builds [`Trainable`] for `method` and `head` on `backbone`.
pub(crate) fn build_trainable(
    head: HeadConfig,
    method: &MethodConfig,
    backbone: &dyn Backbone,
    tokenizer: &TextTokenizer,
    task: &TaskSpec,
) -> Result<Trainable> {
    let trainable = VarStore::new(backbone.device());
    let delta = method.build(&(trainable.root() / "delta"), backbone)?;
    let (head, resolved) = build_head(head, method, backbone, tokenizer, task, &trainable)?;
    Ok((trainable, delta, head, resolved))
}

/// Resolves `auto` and builds the head (in `vs` under `head`).
pub(crate) fn build_head(
    cfg: HeadConfig,
    method: &MethodConfig,
    backbone: &dyn Backbone,
    tokenizer: &TextTokenizer,
    task: &TaskSpec,
    vs: &VarStore,
) -> Result<(Head, HeadConfig)> {
    let resolved = resolve_head_for_words(cfg, method, backbone.spec(), tokenizer, task)?;
    let head = match resolved {
        HeadConfig::Verbalizer { loss } => {
            Head::verbalizer(backbone, label_word_ids(tokenizer, &task.label_words)?, loss)?
        }
        HeadConfig::Linear { token } => Head::linear(
            &(vs.root() / "head"),
            backbone.spec().hidden,
            task.label_names.len() as i64,
            token,
            0.1,
        ),
        HeadConfig::LmScoring => {
            if !backbone.spec().capabilities.lm_head {
                return Err(Error::Incompatible {
                    method: "LM scoring head".into(),
                    backbone: backbone.spec().describe(),
                    reason: "the checkpoint has no LM head".into(),
                });
            }
            Head::LmScoring
        }
        HeadConfig::Auto => unreachable_auto()?,
    };
    Ok((head, resolved))
}

/// The longest input the encoder lets through: `max_len`, but never more than the
/// backbone's positions (a longer input would only fail at the embeddings; this way it
/// fails at tokenization with a message that says how to fix it, or is truncated).
pub(crate) fn input_limit(max_len: usize, spec: &BackboneSpec) -> usize {
    max_len.min(spec.max_positions.max(3) as usize)
}

/// The feature encoder a method and head need: the task template for prompt methods,
/// the LM-scoring layout for `LmScoring`, raw text for model tuning.
pub(crate) fn feature_encoder(
    head: HeadConfig,
    method: &MethodConfig,
    tokenizer: TextTokenizer,
    task: &TaskSpec,
    max_len: usize,
    truncate: bool,
) -> Result<FeatureEncoder> {
    if head == HeadConfig::LmScoring {
        let pattern = task.lm_pattern.as_deref().ok_or_else(|| {
            Error::config(
                "head",
                format!("task `{}` has no LM-scoring pattern for GPT-2", task.name),
            )
        })?;
        let lm = LmScoring::new(&tokenizer, pattern, &task.label_words)?;
        return Ok(FeatureEncoder { tokenizer, template: None, max_len, truncate, lm: Some(lm) });
    }
    let template = (method.uses_template() && !task.raw_text).then(|| task.template.clone());
    Ok(FeatureEncoder { tokenizer, template, max_len, truncate, lm: None })
}

fn unreachable_auto() -> Result<Head> {
    Err(Error::config("head", "auto head was not resolved"))
}

impl TrainedModel {
    /// Puts the parts together, delta enabled, the last layer at the read token.
    pub(crate) fn assemble(
        backbone: Box<dyn Backbone>,
        trainable: VarStore,
        delta: Option<Box<dyn Delta>>,
        head: Head,
        encoder: FeatureEncoder,
        manifest: DeltaManifest,
    ) -> TrainedModel {
        let (delta_enabled, full_last_layer) = (true, false);
        TrainedModel {
            backbone,
            trainable,
            delta,
            head,
            encoder,
            manifest,
            delta_enabled,
            full_last_layer,
        }
    }

    /// The backbone.
    pub fn backbone(&self) -> &dyn Backbone {
        self.backbone.as_ref()
    }

    /// The manifest (`delta.json`).
    pub fn manifest(&self) -> &DeltaManifest {
        &self.manifest
    }

    /// The trainable tensors (delta + head), by name.
    pub fn trainable_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.trainable.variables().into_iter().collect();
        if self.manifest.method.trains_backbone() {
            v.extend(self.backbone.var_store().variables());
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The active delta (none when disabled or for model tuning).
    pub fn active_delta(&self) -> Option<&dyn Delta> {
        self.delta.as_deref().filter(|_| self.delta_enabled)
    }

    /// Runs the backbone with the active delta on an encoded batch, in eval mode.
    pub fn forward(&self, batch: &Batch) -> Result<SeqState> {
        crate::model::forward(self.backbone.as_ref(), self.active_delta(), batch, false)
    }

    /// The head's scores on an encoded batch, in eval mode: the last layer only at the
    /// token the head reads ([`crate::model::head_output`]) unless
    /// [`TrainedModel::set_full_last_layer`].
    pub fn head_output(&self, batch: &Batch) -> Result<crate::head::HeadOutput> {
        let (b, d, full) = (self.backbone.as_ref(), self.active_delta(), self.full_last_layer);
        crate::model::head_output(b, d, &self.head, batch, None, false, full)
    }

    /// Computes the last layer at every token when scoring (off by default: at the
    /// token the head reads, the same values up to rounding). A run sets it from its
    /// `train.full_last_layer`, so that its dev and test scores reproduce runs made
    /// before the read-out bit for bit.
    pub fn set_full_last_layer(&mut self, on: bool) {
        self.full_last_layer = on;
    }

    /// Turns the delta off (the plain backbone answers, head unchanged) or back on. A
    /// merged LoRA is unmerged first, so "off" really is the base model.
    pub fn set_delta_enabled(&mut self, enabled: bool) -> Result<()> {
        if !enabled {
            if let Some(d) = self.delta.as_deref().filter(|d| d.is_merged()) {
                d.unmerge(self.backbone.as_ref())?;
            }
        }
        self.delta_enabled = enabled;
        Ok(())
    }

    /// Folds the delta into the backbone's weights (LoRA): inference then costs what the
    /// plain backbone costs. Other methods answer with a typed error.
    pub fn merge_delta(&self) -> Result<()> {
        match self.delta.as_deref() {
            Some(d) => d.merge(self.backbone.as_ref()),
            None => Err(Error::config("method", "model tuning has no delta to merge")),
        }
    }

    /// Undoes [`TrainedModel::merge_delta`].
    pub fn unmerge_delta(&self) -> Result<()> {
        match self.delta.as_deref() {
            Some(d) => d.unmerge(self.backbone.as_ref()),
            None => Err(Error::config("method", "model tuning has no delta to unmerge")),
        }
    }

    /// The feature encoder (template, tokenizer, limits) of this model.
    pub fn encoder(&self) -> &FeatureEncoder {
        &self.encoder
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Class scores `[N, C]` for encoded features, in batches, without gradients.
    pub(crate) fn scores(&self, features: &[Feature], batch_size: usize) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let device = self.backbone.device();
        let classes = self.manifest.task.label_names.len();
        let lm = matches!(self.head, Head::LmScoring);
        // Length-sorted batches waste little on padding; rows are put back in order below.
        let mut order: Vec<usize> = (0..features.len()).collect();
        order.sort_by_key(|&i| features[i].ids.len());
        let sorted: Vec<Feature> = order.iter().map(|&i| features[i].clone()).collect();
        let mut out = Vec::new();
        for chunk in sorted.chunks(batch_size.max(1)) {
            // LM scoring runs every class's label span and stacks minus the NLLs.
            let variants: Vec<Vec<Feature>> = if lm {
                (0..classes).map(|c| chunk.iter().map(|f| f.with_candidate(c)).collect()).collect()
            } else {
                vec![chunk.to_vec()]
            };
            let mut cols = Vec::new();
            for v in &variants {
                let refs: Vec<&Feature> = v.iter().collect();
                let batch = collate(&refs, self.encoder.tokenizer.pad_id(), device)?;
                cols.push(self.head_output(&batch)?.class_logits.to_kind(Kind::Float));
            }
            out.push(if lm { Tensor::stack(&cols, 1) } else { cols.swap_remove(0) });
            // [B, C]
        }
        let sorted_scores = Tensor::cat(&out, 0); // [N, C], row i is example order[i]
        let index: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        let index = Tensor::from_slice(&index).to_device(sorted_scores.device());
        Ok(sorted_scores.zeros_like().index_put(&[Some(index)], &sorted_scores, false))
    }

    /// Predicted class of each encoded feature; with a process group each rank predicts
    /// its share and every rank gets all of them (sharded evaluation).
    pub(crate) fn predictions(
        &self,
        features: &[Feature],
        batch_size: usize,
        pg: Option<&ProcessGroup>,
    ) -> Result<Vec<usize>> {
        let (mine, pg) = match pg {
            Some(pg) if pg.world_size() > 1 => {
                let share = shard_range(features.len(), pg.rank(), pg.world_size())?;
                (&features[share], Some(pg))
            }
            _ => (features, None),
        };
        let local = if mine.is_empty() {
            Vec::new()
        } else {
            let argmax = self.scores(mine, batch_size)?.argmax(1, false);
            Vec::<i64>::try_from(&argmax)?.into_iter().map(|p| p as usize).collect()
        };
        match pg {
            Some(pg) => gather_predictions(pg, &local, features.len()),
            None => Ok(local),
        }
    }

    /// Metric of the task on encoded features (MNLI's average needs both sets: see
    /// [`TrainedModel::evaluate_mnli_features`]; one set scores as accuracy).
    pub(crate) fn evaluate_features(
        &self,
        features: &[Feature],
        batch_size: usize,
        pg: Option<&ProcessGroup>,
    ) -> Result<MetricReport> {
        Ok(self.evaluate_features_detailed(features, batch_size, pg)?.0)
    }

    /// The metric and the per-class report of encoded features, from one pass.
    pub(crate) fn evaluate_features_detailed(
        &self,
        features: &[Feature],
        batch_size: usize,
        pg: Option<&ProcessGroup>,
    ) -> Result<(MetricReport, ClassificationReport)> {
        let preds = self.predictions(features, batch_size, pg)?;
        let golds: Vec<usize> = features.iter().map(|f| f.label).collect();
        let metric = if self.manifest.task.metric == Metric::MnliAvg {
            Metric::Accuracy
        } else {
            self.manifest.task.metric
        };
        let classes = classification_report(&preds, &golds, &self.manifest.task.label_names)?;
        Ok((metric.compute(&preds, &golds)?, classes))
    }

    /// MNLI: matched and mismatched accuracy and their average.
    pub(crate) fn evaluate_mnli_features(
        &self,
        matched: &[Feature],
        mismatched: &[Feature],
        batch_size: usize,
        pg: Option<&ProcessGroup>,
    ) -> Result<MetricReport> {
        let golds = |f: &[Feature]| f.iter().map(|x| x.label).collect::<Vec<_>>();
        let (pm, pmm) = (
            self.predictions(matched, batch_size, pg)?,
            self.predictions(mismatched, batch_size, pg)?,
        );
        Metric::compute_mnli(&pm, &golds(matched), &pmm, &golds(mismatched))
    }

    /// Evaluates on a labelled dataset.
    pub fn evaluate(&self, ds: &Dataset, batch_size: usize) -> Result<MetricReport> {
        self.evaluate_features(&self.encoder.encode(ds)?, batch_size, None)
    }

    /// Evaluates on a labelled dataset: the task's metric, and per-class precision,
    /// recall, F1 with the confusion matrix.
    pub fn evaluate_detailed(
        &self,
        ds: &Dataset,
        batch_size: usize,
    ) -> Result<(MetricReport, ClassificationReport)> {
        self.evaluate_features_detailed(&self.encoder.encode(ds)?, batch_size, None)
    }

    /// Cut over-long inputs instead of failing (overrides what the delta was trained
    /// with, e.g. for `petune predict --truncate`).
    pub fn set_truncate(&mut self, truncate: bool) {
        self.encoder.truncate = truncate;
    }

    /// Predicts the class of each `(text, text_pair)`, 32 per forward pass.
    pub fn predict(&self, texts: &[(String, Option<String>)]) -> Result<Vec<Prediction>> {
        self.predict_batched(texts, 32)
    }

    /// Predicts the class of each `(text, text_pair)`, `batch_size` per forward pass
    /// (at least 1).
    pub fn predict_batched(
        &self,
        texts: &[(String, Option<String>)],
        batch_size: usize,
    ) -> Result<Vec<Prediction>> {
        let examples: Vec<Example> = texts
            .iter()
            .map(|(a, b)| Example { text_a: a.clone(), text_b: b.clone(), label: 0 })
            .collect();
        let ds = Dataset {
            task: self.manifest.task.name.clone(),
            label_names: self.manifest.task.label_names.clone(),
            examples,
        };
        let probs =
            self.scores(&self.encoder.encode(&ds)?, batch_size.max(1))?.softmax(-1, Kind::Double);
        let rows = probs.size()[0];
        (0..rows)
            .map(|i| {
                let p = Vec::<f64>::try_from(&probs.get(i))?;
                let index = p
                    .iter()
                    .enumerate()
                    .fold(0, |best, (j, v)| if *v > p[best] { j } else { best });
                Ok(Prediction {
                    label: self.manifest.task.label_names[index].clone(),
                    index,
                    probs: p,
                })
            })
            .collect()
    }

    /// Writes `delta.safetensors` (trainable tensors only, `{"format": "pt"}`) and
    /// `delta.json` into `dir`, atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let meta = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("petune_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ]);
        write_safetensors(&dir.join("delta.safetensors"), &self.trainable_tensors(), Some(meta))?;
        write_json_atomic(&dir.join("delta.json"), &self.manifest)
    }

    /// Rebuilds a saved method on `backbone` (the same checkpoint it was trained on) and
    /// loads its tensors strictly.
    pub fn load(
        dir: &Path,
        backbone: Box<dyn Backbone>,
        tokenizer: TextTokenizer,
    ) -> Result<TrainedModel> {
        let manifest: DeltaManifest = read_json(&dir.join("delta.json"))?;
        if manifest.backbone != backbone.spec().describe() {
            return Err(Error::Incompatible {
                method: format!("delta in {}", dir.display()),
                backbone: backbone.spec().describe(),
                reason: format!("it was trained on {}", manifest.backbone),
            });
        }
        let (trainable, delta, head, _) = build_trainable(
            manifest.head,
            &manifest.method,
            backbone.as_ref(),
            &tokenizer,
            &manifest.task,
        )?;
        let path = dir.join("delta.safetensors");
        let file = read_safetensors(&path, backbone.device())?;
        let mut targets: Vec<(String, Tensor)> = trainable.variables().into_iter().collect();
        if manifest.method.trains_backbone() {
            targets.extend(backbone.var_store().variables());
        }
        crate::checkpoint::copy_into(&path, &file.tensors, &targets, true)?;
        let encoder = feature_encoder(
            manifest.head,
            &manifest.method,
            tokenizer,
            &manifest.task,
            input_limit(manifest.max_len, backbone.spec()),
            manifest.truncate,
        )?;
        Ok(TrainedModel::assemble(backbone, trainable, delta, head, encoder, manifest))
    }
}
