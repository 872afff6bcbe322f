//! The mutual-information probe of the LPT paper (Appendix A): how much label
//! information each layer's hidden states carry, for a trained delta (or the plain
//! backbone).
//!
//! For every layer ℓ (0 = the embedding output) the representation of each example is
//! the hidden state at the head's token (the template's mask, `[CLS]`, or the last
//! token), read after the delta acted (so LPT's prompt is inside from the prompt layer
//! on). A linear softmax probe is trained on part of the examples and scored on the
//! rest (early-stopped on a fifth of its training part). With CE_probe its held-out
//! cross-entropy and CE_prior the held-out cross-entropy of the training label
//! frequencies, the estimate is
//! `I(h_ℓ; y) ≈ CE_prior − CE_probe` (the variational lower bound
//! `I(h; y) ≥ H(y) − CE`, both terms measured the same way), in bits. Repeated over
//! random splits for a mean ± std.

use petune_core::pool::{first_valid_index, gather_tokens, last_valid_index};
use petune_core::{BindCtx, Error, Hooks, NoHooks, Result, SeqState};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::metrics::mean_std;
use crate::data::Dataset;
use crate::features::{collate, Batch};
use crate::head::{Head, HeadToken};
use crate::trained::TrainedModel;

/// How the probes are trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Full-batch Adam steps per probe.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// L2 penalty on the probe weights (keeps the held-out cross-entropy honest).
    pub l2: f64,
    /// Fraction of the examples held out for scoring.
    pub holdout: f64,
    /// One random split per seed.
    pub seeds: Vec<u64>,
    /// The token to read; `None` = the head's (mask for templates, else first / last).
    pub token: Option<HeadToken>,
    /// Examples per forward pass.
    pub batch_size: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            steps: 300,
            lr: 1e-2,
            l2: 1e-3,
            holdout: 0.5,
            seeds: vec![1, 2, 3],
            token: None,
            batch_size: 32,
        }
    }
}

/// The estimate at one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEstimate {
    /// 0 = embedding output, ℓ = output of layer ℓ (1-based, as the paper's PL).
    pub layer: usize,
    /// Mutual information estimate, bits (mean over splits).
    pub mi_bits: f64,
    /// Its standard deviation over splits.
    pub mi_bits_std: f64,
    /// Held-out accuracy of the probe (mean over splits).
    pub accuracy: f64,
    /// Held-out cross-entropy of the probe, nats (mean over splits).
    pub cross_entropy: f64,
}

/// The probe's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// What was probed (method label, or "backbone" without the delta).
    pub model: String,
    /// The token read.
    pub token: HeadToken,
    /// Examples probed.
    pub examples: usize,
    /// Held-out cross-entropy of the label prior, bits (the ceiling of the estimate).
    pub label_entropy_bits: f64,
    /// One entry per layer, embedding output first.
    pub layers: Vec<LayerEstimate>,
}

fn token_index(token: HeadToken, s: &SeqState, batch: &Batch) -> Result<Tensor> {
    Ok(match token {
        HeadToken::Mask => {
            if batch.mask_pos.min().int64_value(&[]) < 0 {
                return Err(Error::config("token", "mask: the inputs have no template"));
            }
            &batch.mask_pos + s.n_prefix
        }
        HeadToken::Cls => first_valid_index(&s.text_mask()) + s.n_prefix,
        HeadToken::Last => last_valid_index(&s.text_mask()) + s.n_prefix,
    })
}

impl TrainedModel {
    /// The token the head reads (probing's default).
    pub fn head_token(&self) -> Result<HeadToken> {
        match &self.head {
            Head::Linear { token, .. } => Ok(*token),
            Head::Verbalizer { .. } => Ok(HeadToken::Mask),
            Head::LmScoring => Err(Error::config(
                "token",
                "an LM-scoring model reads no single token: give the probe a token (last)",
            )),
        }
    }

    /// The hidden state at `token` of every example after the embeddings and after each
    /// layer, with the active delta, in eval mode: `L + 1` tensors `[N, H]` (float, CPU).
    pub fn layer_features(
        &self,
        ds: &Dataset,
        token: HeadToken,
        batch_size: usize,
    ) -> Result<Vec<Tensor>> {
        let _guard = tch::no_grad_guard();
        let features = self.encoder.encode(ds)?;
        if self.encoder.lm.is_some() {
            return Err(Error::config(
                "probe",
                "LM-scoring features carry the label span; probe a model with a classification head",
            ));
        }
        let backbone = self.backbone.as_ref();
        let n = backbone.spec().n_layers;
        let mut per_layer: Vec<Vec<Tensor>> = (0..=n).map(|_| Vec::new()).collect();
        for chunk in features.chunks(batch_size.max(1)) {
            let refs: Vec<_> = chunk.iter().collect();
            let batch = collate(&refs, self.encoder.tokenizer.pad_id(), backbone.device())?;
            let hooks: Box<dyn Hooks + '_> = match self.active_delta() {
                Some(d) => d.bind(&BindCtx { backbone, input: &batch.input, train: false })?,
                None => Box::new(NoHooks),
            };
            let mut s = backbone.embed(&batch.input, hooks.as_ref(), false)?;
            let read = |s: &SeqState| -> Result<Tensor> {
                let h = gather_tokens(&s.hidden, &token_index(token, s, &batch)?); // [B, H]
                Ok(h.to_kind(Kind::Float).to_device(Device::Cpu))
            };
            per_layer[0].push(read(&s)?);
            for (i, slot) in per_layer.iter_mut().enumerate().skip(1) {
                s = backbone.layers(s, i - 1..i, hooks.as_ref(), false)?;
                if i == n {
                    s = backbone.finish(s, hooks.as_ref(), false)?;
                }
                slot.push(read(&s)?);
            }
        }
        Ok(per_layer.into_iter().map(|v| Tensor::cat(&v, 0)).collect())
    }
}

/// Held-out (cross-entropy of the probe, accuracy, cross-entropy of the prior), nats.
fn fit_probe(
    x: &Tensor,
    y: &Tensor,
    train: &Tensor,
    eval: &Tensor,
    classes: i64,
    cfg: &ProbeConfig,
) -> Result<(f64, f64, f64)> {
    let (xt, yt) = (x.index_select(0, train), y.index_select(0, train));
    let (xe, ye) = (x.index_select(0, eval), y.index_select(0, eval));
    // Standardise with the training part's statistics: one learning rate fits every layer.
    let mean = xt.mean_dim(0, true, Kind::Float);
    let std = xt.std_dim(0, false, true).clamp_min(1e-6);
    let (xt, xe) = ((&xt - &mean) / &std, (&xe - &mean) / &std);
    // Early stopping on a fifth of the training part: a linear probe on hundreds of
    // dimensions overfits a few hundred examples within a few hundred steps, and an
    // overfitted probe's cross-entropy (hence the estimate) is meaningless.
    let n_train = xt.size()[0];
    let n_val = (n_train / 5).max(1);
    let (xv, yv) = (xt.narrow(0, 0, n_val), yt.narrow(0, 0, n_val));
    let (xf, yf) = (xt.narrow(0, n_val, n_train - n_val), yt.narrow(0, n_val, n_train - n_val));
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(
        vs.root() / "probe",
        x.size()[1],
        classes,
        nn::LinearConfig { ws_init: nn::Init::Const(0.0), ..Default::default() },
    );
    let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
    let val_ce = |l: &nn::Linear| -> f64 {
        let _guard = tch::no_grad_guard();
        l.forward(&xv).cross_entropy_for_logits(&yv).double_value(&[])
    };
    let mut best = (val_ce(&linear), linear.ws.copy(), linear.bs.as_ref().map(Tensor::copy));
    for step in 1..=cfg.steps {
        let loss = linear.forward(&xf).cross_entropy_for_logits(&yf)
            + cfg.l2 * linear.ws.pow_tensor_scalar(2).sum(Kind::Float);
        opt.backward_step(&loss);
        if step % 5 == 0 {
            let v = val_ce(&linear);
            if v < best.0 {
                best = (v, linear.ws.copy(), linear.bs.as_ref().map(Tensor::copy));
            }
        }
    }
    tch::no_grad(|| {
        linear.ws.shallow_clone().copy_(&best.1);
        if let (Some(b), Some(saved)) = (&linear.bs, &best.2) {
            b.shallow_clone().copy_(saved);
        }
    });
    let _guard = tch::no_grad_guard();
    let logits = linear.forward(&xe);
    let ce = logits.cross_entropy_for_logits(&ye).double_value(&[]);
    let acc = logits.argmax(1, false).eq_tensor(&ye).to_kind(Kind::Float).mean(Kind::Float);
    // The prior: training label frequencies (add-one smoothed) scored on the held-out labels.
    let counts = yf.bincount::<Tensor>(None, classes).to_kind(Kind::Double) + 1.0;
    let log_prior = (&counts / counts.sum(Kind::Double)).log();
    let prior_ce = -log_prior.index_select(0, &ye).mean(Kind::Double).double_value(&[]);
    Ok((ce, acc.double_value(&[]), prior_ce))
}

/// The estimate for one representation `x` `[N, H]` of labels `y` `[N]` (int64), over
/// `cfg.seeds` random splits (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MiEstimate {
    /// Mean over splits, bits.
    pub mi_bits: f64,
    /// Standard deviation over splits, bits.
    pub mi_bits_std: f64,
    /// Held-out probe accuracy (mean).
    pub accuracy: f64,
    /// Held-out probe cross-entropy, nats (mean).
    pub cross_entropy: f64,
    /// Held-out cross-entropy of the label prior, bits (mean).
    pub prior_bits: f64,
}

/// Estimates I(x; y) with linear probes (module docs).
pub fn estimate_mi(x: &Tensor, y: &Tensor, classes: i64, cfg: &ProbeConfig) -> Result<MiEstimate> {
    if !(cfg.holdout > 0.0 && cfg.holdout < 1.0) {
        return Err(Error::config("holdout", "must be in (0, 1)"));
    }
    if cfg.seeds.is_empty() || cfg.steps == 0 {
        return Err(Error::config("seeds", "give at least one seed and one step"));
    }
    let n = x.size()[0];
    let n_eval = ((n as f64) * cfg.holdout).round() as i64;
    if n_eval < 2 || n - n_eval < 2 {
        return Err(Error::input(format!("{n} examples are too few to probe (need 4 or more)")));
    }
    let (mut mi, mut acc, mut ce, mut prior) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &seed in &cfg.seeds {
        tch::manual_seed(seed as i64);
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let eval = perm.narrow(0, 0, n_eval);
        let train = perm.narrow(0, n_eval, n - n_eval);
        let (c, a, p) = fit_probe(x, y, &train, &eval, classes, cfg)?;
        mi.push((p - c) / std::f64::consts::LN_2);
        acc.push(a);
        ce.push(c);
        prior.push(p / std::f64::consts::LN_2);
    }
    let (mi_bits, mi_bits_std) = mean_std(&mi);
    Ok(MiEstimate {
        mi_bits,
        mi_bits_std,
        accuracy: mean_std(&acc).0,
        cross_entropy: mean_std(&ce).0,
        prior_bits: mean_std(&prior).0,
    })
}

/// Probes every layer of `model` on the labelled `ds` (module docs).
pub fn probe_layers(model: &TrainedModel, ds: &Dataset, cfg: &ProbeConfig) -> Result<ProbeReport> {
    let token = match cfg.token {
        Some(t) => t,
        None => model.head_token()?,
    };
    let classes = model.manifest().task.label_names.len() as i64;
    let labels: Vec<i64> = ds.examples.iter().map(|e| e.label as i64).collect();
    let y = Tensor::from_slice(&labels);
    let mut layers = Vec::new();
    let mut prior_bits = 0.0;
    for (layer, x) in model.layer_features(ds, token, cfg.batch_size)?.iter().enumerate() {
        let e = estimate_mi(x, &y, classes, cfg)?;
        prior_bits = e.prior_bits;
        layers.push(LayerEstimate {
            layer,
            mi_bits: e.mi_bits,
            mi_bits_std: e.mi_bits_std,
            accuracy: e.accuracy,
            cross_entropy: e.cross_entropy,
        });
    }
    let method = &model.manifest().method;
    let model_name = if model.delta_enabled || method.trains_backbone() {
        method.label()
    } else {
        format!("backbone ({} disabled)", method.label())
    };
    Ok(ProbeReport {
        model: model_name,
        token,
        examples: ds.examples.len(),
        label_entropy_bits: prior_bits,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: i64) -> Tensor {
        Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2)
    }

    #[test]
    fn a_label_carrying_feature_has_about_one_bit_and_noise_about_none() {
        tch::set_num_threads(1);
        tch::manual_seed(0);
        let n = 200;
        let y = labels(n);
        let noise = Tensor::randn([n, 8], (Kind::Float, Device::Cpu));
        // Feature 0 is the label (±1) plus small noise: the label is linearly readable.
        let signal = noise.copy();
        signal.narrow(1, 0, 1).copy_(
            &((y.to_kind(Kind::Float) * 2.0 - 1.0).unsqueeze(1) * 3.0
                + noise.narrow(1, 0, 1) * 0.1),
        );
        let cfg = ProbeConfig::default();
        let informative = estimate_mi(&signal, &y, 2, &cfg).unwrap();
        let random = estimate_mi(&noise, &y, 2, &cfg).unwrap();
        assert!((informative.prior_bits - 1.0).abs() < 0.05, "{informative:?}");
        assert!(informative.mi_bits > 0.8 && informative.accuracy > 0.95, "{informative:?}");
        assert!(random.mi_bits < 0.2 && random.mi_bits < informative.mi_bits - 0.6, "{random:?}");
    }

    #[test]
    fn too_few_examples_or_a_bad_split_are_typed_errors() {
        let x = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
        let y = labels(3);
        assert!(matches!(estimate_mi(&x, &y, 2, &ProbeConfig::default()), Err(Error::Input(_))));
        let cfg = ProbeConfig { holdout: 1.0, ..ProbeConfig::default() };
        assert!(matches!(estimate_mi(&x, &y, 2, &cfg), Err(Error::Config { .. })));
    }
}
