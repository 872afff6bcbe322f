//! The main job's methods and their learning-rate grids: the catalog's paper
//! configuration of each method (lpt-reference.md §5) with this job's prompt init, and a
//! small grid per method, chosen on dev per split (issue #13: NPG {1e-3, 5e-3}, static
//! prompts {1e-2, 3e-2}, model tuning {2e-5, 5e-5}; the re-creation's rates are in each).

use anyhow::Context;
use petune::experiments::catalog::{paper_method, scaled_lr, SHORT_NAMES};
use petune::experiments::grid::Grid;
use petune::prelude::*;

/// `--lr NAME=LR,LR,...`: one method's grid.
#[derive(Debug, Clone, PartialEq)]
pub struct LrOverride {
    /// The method's short name.
    pub name: String,
    /// Its learning rates.
    pub lrs: Vec<f64>,
}

/// Parses `NAME=LR,LR,...` (positive, finite rates).
pub fn parse_lr_override(s: &str) -> Result<LrOverride, String> {
    let (name, lrs) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=LR,LR,..."))?;
    let lrs = lrs
        .split(',')
        .map(|v| match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(format!("`{v}` in `{s}`: expected a positive learning rate")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LrOverride { name: name.trim().to_string(), lrs })
}

/// The catalog's short names plus `all`.
fn known_methods() -> String {
    let mut v: Vec<&str> = SHORT_NAMES.to_vec();
    v.push("all");
    v.join(", ")
}

/// The default grid of a method: generated late prompts {1e-3, 5e-3}, static prompts
/// (LPT w/o PG, prompt tuning, P-tuning v2) {1e-2, 3e-2}, model tuning {2e-5, 5e-5}, and
/// the scaled-down runs' one rate for the other methods.
fn default_lrs(method: &MethodConfig) -> Vec<f64> {
    match method {
        MethodConfig::Lpt(c) if matches!(c.generator, GeneratorConfig::Static { .. }) => {
            vec![1e-2, 3e-2]
        }
        MethodConfig::Lpt(_) => vec![1e-3, 5e-3],
        MethodConfig::PromptTuning(_) | MethodConfig::PTuningV2(_) => vec![1e-2, 3e-2],
        MethodConfig::ModelTuning => vec![2e-5, 5e-5],
        other => vec![scaled_lr(other)],
    }
}

/// The paper's configuration of `name` on `spec` with static prompts initialised
/// N(0, `prompt_std`²), and its learning-rate grid: `--lr NAME=...` when given, else one
/// `prompt_lr` for a prompt method when given, else the default grid.
pub fn method_grid(
    name: &str,
    spec: &BackboneSpec,
    overrides: &[LrOverride],
    prompt_lr: Option<f64>,
    prompt_std: f64,
) -> anyhow::Result<(MethodConfig, Grid)> {
    let mut m =
        paper_method(name, spec).with_context(|| format!("methods: {}", known_methods()))?;
    let init = PromptInit::Random { std: prompt_std };
    let prompt = match &mut m {
        MethodConfig::Lpt(c) => {
            if let GeneratorConfig::Static { init: i, .. } = &mut c.generator {
                *i = init;
            }
            true
        }
        MethodConfig::PromptTuning(c) => {
            if c.position == PromptPosition::Authors {
                c.init = init;
            }
            true
        }
        MethodConfig::PTuningV2(_) => true,
        _ => false,
    };
    let lrs = match (overrides.iter().rev().find(|o| o.name == name), prompt_lr) {
        (Some(o), _) => o.lrs.clone(),
        (None, Some(lr)) if prompt => vec![lr],
        _ => default_lrs(&m),
    };
    Ok((m, Grid { lrs, batch_sizes: vec![16], warmup_rates: vec![0.0] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_bad_ones_are_refused() {
        let o = parse_lr_override("npg=1e-3, 5e-3").unwrap();
        assert_eq!(o, LrOverride { name: "npg".into(), lrs: vec![1e-3, 5e-3] });
        for bad in ["npg", "npg=", "npg=0", "npg=-1e-3", "npg=nan", "npg=1e-3,x"] {
            assert!(parse_lr_override(bad).is_err(), "{bad}");
        }
    }
}
