//! `petune params`: trainable / total parameters of a method on a backbone, computed
//! from `config.json` alone (no weights are read), as JSON and in PEFT's
//! `print_trainable_parameters` wording.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use petune::backbones::spec_from_config;
use petune::prelude::*;
use petune::train::{head_params, resolve_head, METHOD_NAMES};
use serde::Serialize;

/// Arguments of `petune params`.
#[derive(Args, Debug)]
pub struct ParamsArgs {
    /// A Hugging Face model folder (its `config.json` is read).
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
    #[arg(long, default_value_t = 2)]
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

/// Parses a method given as a file, inline JSON or a bare name; with a backbone spec,
/// `npg`, `appg`, `mppg` and `wo_pg` name LPT at the middle prompt layer (PL = L/2 + 1)
/// and `adapter_drop` drops the lowest half of the layers.
pub fn parse_method_for(arg: &str, spec: Option<&BackboneSpec>) -> anyhow::Result<MethodConfig> {
    let short = match arg {
        "mt" => Some("model_tuning"),
        "pt" => Some("prompt_tuning"),
        "ptv2" => Some("ptuning_v2"),
        "sidpg" => Some("sidpg_phm"),
        _ => None,
    };
    if let Some(name) = short {
        return parse_method_for(name, spec);
    }
    if let Some(spec) = spec {
        let pl = spec.n_layers / 2 + 1;
        let lpt = match arg {
            "npg" => Some(LptConfig::npg(pl)),
            "appg" => Some(LptConfig::pooling(pl, PoolKind::Avg, 10)),
            "mppg" => Some(LptConfig::pooling(pl, PoolKind::Max, 10)),
            "wo_pg" => Some(LptConfig::static_prompt(pl)),
            _ => None,
        };
        if let Some(c) = lpt {
            return Ok(MethodConfig::Lpt(c));
        }
        if arg == "adapter_drop" {
            return Ok(MethodConfig::AdapterDrop(petune::baselines::AdapterDropConfig {
                adapter: Default::default(),
                drop_lowest: spec.n_layers / 2,
                schedule: Default::default(),
            }));
        }
    }
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else if METHOD_NAMES.contains(&arg) {
        format!("{{\"method\": \"{arg}\"}}")
    } else {
        bail!("--method {arg}: not a file, JSON, or one of {}", METHOD_NAMES.join(", "));
    };
    serde_json::from_str(&text)
        .with_context(|| format!("--method: not a valid method config: {text}"))
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

/// `1234567` → `1,234,567` (PEFT prints with `:,d`).
fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
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
    let config = match (&args.model, &args.config) {
        (Some(dir), _) => dir.join("config.json"),
        (None, Some(c)) => c.clone(),
        (None, None) => bail!("give --model DIR or --config config.json"),
    };
    let spec =
        spec_from_config(&config).with_context(|| format!("reading {}", config.display()))?;
    let method = parse_method_for(&args.method, Some(&spec))?;
    let r = report(&spec, &method, parse_head(&args.head)?, args.classes)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{} on {} (head: {:?})", r.method, r.backbone, r.head);
        println!("{}", peft_line(&r));
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}
