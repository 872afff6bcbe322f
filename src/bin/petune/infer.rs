//! `petune predict` and `petune eval`: a trained delta folder (`delta.json` +
//! `delta.safetensors`, as `petune train` writes it) on its backbone, for new texts or
//! a labelled JSONL / CSV file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use petune::prelude::*;
use petune::train::data::load::{load_csv, load_jsonl};

/// Arguments shared by `predict` and `eval`.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// The trained delta folder.
    #[arg(long)]
    delta: PathBuf,
    /// The backbone it was trained on (a Hugging Face folder).
    #[arg(long)]
    model: PathBuf,
    /// JSONL (`{"text": ..., "text_pair": ..., "label": ...}`) or CSV with a header.
    #[arg(long)]
    input: PathBuf,
    /// Evaluation batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Print JSON only.
    #[arg(long)]
    json: bool,
}

fn load(args: &InferArgs) -> anyhow::Result<TrainedModel> {
    load_trained(&args.model, &args.delta)
}

/// A trained delta folder on its backbone folder.
pub fn load_trained(model: &Path, delta: &Path) -> anyhow::Result<TrainedModel> {
    let m = LoadedModel::from_dir(model, &LoadOptions::default())
        .with_context(|| format!("loading {}", model.display()))?;
    TrainedModel::load(delta, m.backbone, m.tokenizer)
        .with_context(|| format!("loading the delta in {}", delta.display()))
}

pub fn dataset(path: &Path, model: &TrainedModel) -> anyhow::Result<petune::train::data::Dataset> {
    let task = &model.manifest().task;
    let labels = Some(task.label_names.as_slice());
    let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    Ok(if csv {
        load_csv(path, &task.name, labels)?
    } else {
        load_jsonl(path, &task.name, labels)?
    })
}

/// Runs `petune predict`: one JSON line per input (label, index, probabilities).
pub fn predict(args: &InferArgs) -> anyhow::Result<()> {
    let model = load(args)?;
    let ds = dataset(&args.input, &model).or_else(|_| unlabelled(&args.input))?;
    let texts: Vec<(String, Option<String>)> =
        ds.examples.iter().map(|e| (e.text_a.clone(), e.text_b.clone())).collect();
    for (text, p) in texts.iter().zip(model.predict(&texts)?) {
        if args.json {
            println!("{}", serde_json::to_string(&p)?);
        } else {
            println!("{:<10} {:.3}  {}", p.label, p.probs[p.index], text.0);
        }
    }
    Ok(())
}

/// Texts without labels: a JSONL file whose lines have only `text` / `text_pair`.
fn unlabelled(path: &Path) -> anyhow::Result<petune::train::data::Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let a = v["text"]
            .as_str()
            .with_context(|| format!("{}:{}: no \"text\"", path.display(), i + 1))?;
        let b = v.get("text_pair").and_then(|t| t.as_str()).map(str::to_string);
        examples.push(petune::train::data::Example { text_a: a.to_string(), text_b: b, label: 0 });
    }
    Ok(petune::train::data::Dataset { task: "predict".into(), label_names: vec![], examples })
}

/// Runs `petune eval`: the task's metric on a labelled file.
pub fn eval(args: &InferArgs) -> anyhow::Result<()> {
    let model = load(args)?;
    let ds = dataset(&args.input, &model)?;
    let report = model.evaluate(&ds, args.batch_size)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} on {} ({} examples): {} = {:.4}",
            model.manifest().method.label(),
            args.input.display(),
            ds.examples.len(),
            report.key,
            report.headline
        );
    }
    Ok(())
}
