//! `petune inspect`: a checkpoint's typed site inventory (docs/sites.md) and, with a
//! method, which sites it touches and how many trainable parameters serve each — PEFT's
//! `targeted_module_names`, typed.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use petune::prelude::*;
use serde_json::json;
use tch::nn::VarStore;

use crate::out::outln;
use petune::experiments::catalog::parse_method;

/// Arguments of `petune inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A Hugging Face model folder.
    #[arg(long)]
    model: PathBuf,
    /// A method (name, inline JSON or file) whose touched sites to list.
    #[arg(long)]
    method: Option<String>,
    /// Print JSON only.
    #[arg(long)]
    json: bool,
}

/// Runs `petune inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let backbone = load_backbone(&args.model, &LoadOptions::default())
        .with_context(|| format!("loading {}", args.model.display()))?;
    let spec = backbone.spec();
    let mut out = json!({
        "backbone": spec.describe(),
        "model_type": spec.model_type,
        "heads": {"query": spec.n_heads, "key_value": spec.n_kv_heads, "head_dim": spec.head_dim},
        "arch": spec.arch,
        "capabilities": spec.capabilities,
        "total_params": spec.total_params,
        "linear_sites": spec.linear_sites,
        "norm_sites": spec.norm_sites,
        "sublayer_sites": spec.sublayer_sites(),
    });
    let mut touched = Vec::new();
    if let Some(m) = &args.method {
        let method = parse_method(m, spec)?;
        let vs = VarStore::new(backbone.device());
        match method.build(&vs.root(), backbone.as_ref())? {
            Some(delta) => {
                touched = delta.touched_sites();
                out["method"] = json!(method.label());
                out["grad_floor"] = json!(delta.grad_floor());
                out["touched_sites"] = json!(touched
                    .iter()
                    .map(|(s, n)| json!({"site": s, "params": n}))
                    .collect::<Vec<_>>());
                out["delta_params"] = json!(touched.iter().map(|(_, n)| n).sum::<i64>());
            }
            None => out["method"] = json!("model tuning: every backbone weight"),
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    outln!(
        "{} — {} parameters; capabilities {:?}",
        spec.describe(),
        spec.total_params,
        spec.capabilities
    )?;
    outln!(
        "{} query heads, {} key/value heads of size {}",
        spec.n_heads,
        spec.n_kv_heads,
        spec.head_dim
    )?;
    outln!(
        "{} linear sites (per layer: {}), {} norm sites ({:?}), {} sublayer sites",
        spec.linear_sites.len(),
        spec.linear_sites
            .iter()
            .filter(|s| s.site.layer == 0)
            .map(|s| format!(
                "{:?} {}→{}{} [{}]",
                s.site.role,
                s.d_in,
                s.d_out,
                if s.has_bias { "+b" } else { "" },
                s.hf_module.path()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        spec.norm_sites.len(),
        spec.norm_sites.first().map(|n| n.kind),
        spec.sublayer_sites().len()
    )?;
    if let Some(label) = out.get("method") {
        outln!(
            "method {label}: {} sites touched, {} parameters, no autograd below layer {}",
            touched.len(),
            touched.iter().map(|(_, n)| n).sum::<i64>(),
            out["grad_floor"]
        )?;
        for (site, n) in &touched {
            outln!("  {:<60} {n}", format!("{site:?}"))?;
        }
    }
    Ok(())
}
