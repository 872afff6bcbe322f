//! The zero-shot floor: the untuned backbone answering through a head that has nothing
//! to train (decoder LM scoring, lpt-reference.md §4.2, or the MLM verbalizer, paper
//! §4.1), so that a tuned method's accuracy can be read against what the frozen model
//! already knows with the same template and label words.

use petune_core::{Error, Result};

use crate::data::TaskSpec;
use crate::head::HeadConfig;
use crate::method::MethodConfig;
use crate::trained::{build_trainable, feature_encoder, input_limit, DeltaManifest, TrainedModel};
use crate::trainer::{count_params, LoadedModel};

/// `model` with `method`'s delta built and switched off and `head` resolved for it, as
/// a [`TrainedModel`] to evaluate: the plain backbone answers. `method` only decides the
/// head (`auto` → LM scoring on a decoder, the verbalizer with an MLM head) and the
/// inputs; it has to use the task template.
///
/// Errors ([`Error::Config`]): a method without a template, or a head with trainable
/// parameters (an untrained linear head is a coin flip, not a zero-shot floor).
pub fn zero_shot(
    model: LoadedModel,
    method: &MethodConfig,
    head: HeadConfig,
    task: &TaskSpec,
    max_len: usize,
) -> Result<TrainedModel> {
    if !method.uses_template() {
        return Err(Error::config(
            "method",
            format!(
                "zero-shot scoring reads the task template, which {} does not use",
                method.label()
            ),
        ));
    }
    let LoadedModel { backbone, tokenizer } = model;
    let (trainable, delta, head, head_cfg) =
        build_trainable(head, method, backbone.as_ref(), &tokenizer, task)?;
    let head_vars: Vec<_> =
        trainable.variables().into_iter().filter(|(name, _)| name.starts_with("head")).collect();
    if count_params(&head_vars) > 0 {
        return Err(Error::config(
            "head",
            format!("{head_cfg:?} has trainable parameters: zero-shot needs LM scoring or the MLM verbalizer"),
        ));
    }
    let limit = input_limit(max_len, backbone.spec());
    let encoder = feature_encoder(head_cfg, method, tokenizer, task, limit, false)?;
    let manifest = DeltaManifest {
        petune_version: env!("CARGO_PKG_VERSION").into(),
        method: method.clone(),
        head: head_cfg,
        task: task.clone(),
        max_len,
        truncate: false,
        backbone: backbone.spec().describe(),
    };
    let mut trained = TrainedModel::assemble(backbone, trainable, delta, head, encoder, manifest);
    trained.set_delta_enabled(false)?;
    Ok(trained)
}
