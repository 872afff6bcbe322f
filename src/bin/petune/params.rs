//! `petune params`: trainable / total parameters of a method on a backbone, computed
//! from `config.json` alone (no weights are read), as JSON and in PEFT's
//! `print_trainable_parameters` wording.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use petune::backbones::{model_spec, spec_from_config};
use petune::experiments::catalog::parse_method;
// PEFT prints counts with `:,d`, as the paper tables do.
use crate::out::outln;
use petune::experiments::tables::thousands;
use petune::prelude::*;
use petune::train::{head_params, resolve_head};
use serde::Serialize;

/// Arguments of `petune params`.
#[derive(Args, Debug)]
pub struct ParamsArgs {
    /// A Hugging Face model folder (its `config.json` is read) or a GGUF file (its
    /// metadata and tensor table).
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    model: Option<PathBuf>,
    /// A `config.json` file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The method: a JSON file, inline JSON (`{"method": "lora", "r": 4}`) or a bare
    /// method name for its defaults.
    #[arg(long)]
    method: String,
    /// Head (`auto`, or JSON such as `{"kind": "linear", "token": "cls"}`).
    #[arg(long, default_value = "auto")]
    head: String,
    /// Number of classes of the task (linear heads).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(2..=1_000_000))]
    classes: i64,
    /// Print JSON only.
    #[arg(long)]
    json: bool,
}

/// What `petune params` reports.
#[derive(Debug, Serialize)]
pub struct ParamReport {
    /// Method label.
    pub method: String,
    /// Backbone description.
    pub backbone: String,
    /// The resolved head.
    pub head: HeadConfig,
    /// Parameters of the method itself (the backbone's for model tuning).
    pub delta_params: i64,
    /// Parameters of the head.
    pub head_params: i64,
    /// Trainable parameters in all.
    pub trainable_params: i64,
    /// Backbone + method + head (PEFT's "all params").
    pub all_params: i64,
    /// 100 · trainable / all.
    pub trainable_percent: f64,
}

/// Parses a head given as `auto` or JSON.
pub fn parse_head(arg: &str) -> anyhow::Result<HeadConfig> {
    let text = if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else {
        format!("{{\"kind\": \"{arg}\"}}")
    };
    serde_json::from_str(&text).with_context(|| format!("--head: not a valid head: {arg}"))
}

/// Counts `method` on `spec`.
pub fn report(
    spec: &BackboneSpec,
    method: &MethodConfig,
    head: HeadConfig,
    classes: i64,
) -> anyhow::Result<ParamReport> {
    let head = resolve_head(head, method, spec)?;
    let delta_params = method.delta_params(spec);
    let head_params = head_params(head, spec, classes);
    let trainable = delta_params + head_params;
    let all = if method.trains_backbone() {
        spec.total_params + head_params
    } else {
        spec.total_params + trainable
    };
    Ok(ParamReport {
        method: method.label(),
        backbone: spec.describe(),
        head,
        delta_params,
        head_params,
        trainable_params: trainable,
        all_params: all,
        trainable_percent: 100.0 * trainable as f64 / all as f64,
    })
}

/// PEFT's `print_trainable_parameters` line.
pub fn peft_line(r: &ParamReport) -> String {
    format!(
        "trainable params: {} || all params: {} || trainable%: {:.4}",
        thousands(r.trainable_params),
        thousands(r.all_params),
        r.trainable_percent
    )
}

/// Runs `petune params`.
pub fn run(args: &ParamsArgs) -> anyhow::Result<()> {
    let (spec, read) = match (&args.model, &args.config) {
        (Some(model), _) => (model_spec(model), model),
        (None, Some(c)) => (spec_from_config(c), c),
        (None, None) => bail!("give --model DIR or --config config.json"),
    };
    let spec = spec.with_context(|| format!("reading {}", read.display()))?;
    let method = parse_method(&args.method, &spec)?;
    let r = report(&spec, &method, parse_head(&args.head)?, args.classes)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        outln!("{} on {} (head: {:?})", r.method, r.backbone, r.head)?;
        outln!("{}", peft_line(&r))?;
        outln!("{}", serde_json::to_string(&r)?)?;
    }
    Ok(())
}
