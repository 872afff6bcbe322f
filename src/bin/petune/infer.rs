//! `petune predict` and `petune eval`: a trained delta folder (`delta.json` +
//! `delta.safetensors`, as `petune train` writes it) on its backbone, for new texts or
//! a labelled file. Both read CSV, JSONL and Parquet exactly as `train` does
//! (petune_train::data::load: BOM, CRLF, quoting; `predict` needs no `label` column).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use petune::prelude::*;
use petune::train::data::load::{load_file, load_texts};
use petune::train::data::{ClassificationReport, Dataset};
use petune::train::Prediction;

use crate::out::{out, outln};
use crate::train::class_table;

/// How `predict` writes its predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line: text, label name, class probabilities by name.
    Jsonl,
    /// A header `text,[text_pair,]label,p_<class>...` and one row per input.
    Csv,
}

/// Arguments shared by `predict` and `eval`.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// The trained delta folder.
    #[arg(long)]
    delta: PathBuf,
    /// The backbone it was trained on (a Hugging Face folder or a GGUF file).
    #[arg(long)]
    model: PathBuf,
    /// Keep a GGUF model's frozen projection weights quantized, dequantized layer by
    /// layer (same values as the default load).
    #[arg(long)]
    quantized_base: bool,
    /// Store the frozen backbone weight matrices in `bf16` (half the bytes, arithmetic
    /// in f32 with the rounded weights) or `f32` (default).
    #[arg(long, default_value = "f32", value_parser = parse_base_dtype)]
    base_dtype: BaseDtype,
    /// CSV with a header, JSONL (`{"text": ..., "text_pair": ..., "label": ...}`) or
    /// Parquet; `predict` needs no label.
    #[arg(long)]
    input: PathBuf,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: u32,
    /// Cut over-long inputs instead of failing.
    #[arg(long)]
    truncate: bool,
    /// `predict`: output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// `predict`: write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `eval`: print JSON only (`predict`: the same as `--format jsonl`).
    #[arg(long)]
    json: bool,
}

/// A trained delta folder on its backbone folder.
pub fn load_trained(
    model: &Path,
    delta: &Path,
    quantized_base: bool,
    base_dtype: BaseDtype,
) -> anyhow::Result<TrainedModel> {
    if !delta.join("delta.json").is_file() {
        bail!(
            "{}: no delta.json here; --delta takes the output folder of `petune train`",
            delta.display()
        );
    }
    let opts = LoadOptions { quantized_base, base_dtype, ..LoadOptions::default() };
    let m = LoadedModel::from_dir(model, &opts)
        .with_context(|| format!("loading {}", model.display()))?;
    TrainedModel::load(delta, m.backbone, m.tokenizer)
        .with_context(|| format!("loading the delta in {}", delta.display()))
}

fn load(args: &InferArgs) -> anyhow::Result<TrainedModel> {
    let mut model = load_trained(&args.model, &args.delta, args.quantized_base, args.base_dtype)?;
    if args.truncate {
        model.set_truncate(true);
    }
    Ok(model)
}

/// Parses `--base-dtype` (`f32` or `bf16`).
pub fn parse_base_dtype(s: &str) -> Result<BaseDtype, String> {
    BaseDtype::parse(s).map_err(|e| e.to_string())
}

/// A labelled file for `model`'s task (its class names).
pub fn dataset(path: &Path, model: &TrainedModel) -> anyhow::Result<Dataset> {
    let task = &model.manifest().task;
    Ok(load_file(path, &task.name, Some(task.label_names.as_slice()))?)
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The predictions in `format`, one line per input.
fn render(
    format: Format,
    labels: &[String],
    texts: &[(String, Option<String>)],
    preds: &[Prediction],
) -> anyhow::Result<String> {
    let pairs = texts.iter().any(|t| t.1.is_some());
    let mut out = String::new();
    if format == Format::Csv {
        let mut head = vec!["text".to_string()];
        if pairs {
            head.push("text_pair".into());
        }
        head.push("label".into());
        head.extend(labels.iter().map(|l| csv_field(&format!("p_{l}"))));
        out.push_str(&head.join(","));
        out.push('\n');
    }
    for ((text, pair), p) in texts.iter().zip(preds) {
        match format {
            Format::Jsonl => {
                // Written field by field: text first, probabilities in class order.
                let js = |v: &str| serde_json::to_string(v);
                let probs: Vec<String> = labels
                    .iter()
                    .zip(&p.probs)
                    .map(|(l, v)| Ok(format!("{}: {v:.6}", js(l)?)))
                    .collect::<serde_json::Result<_>>()?;
                out.push_str(&format!("{{\"text\": {}", js(text)?));
                if let Some(b) = pair {
                    out.push_str(&format!(", \"text_pair\": {}", js(b)?));
                }
                out.push_str(&format!(
                    ", \"label\": {}, \"probs\": {{{}}}}}",
                    js(&p.label)?,
                    probs.join(", ")
                ));
            }
            Format::Csv => {
                let mut row = vec![csv_field(text)];
                if pairs {
                    row.push(csv_field(pair.as_deref().unwrap_or("")));
                }
                row.push(csv_field(&p.label));
                row.extend(p.probs.iter().map(|v| format!("{v:.6}")));
                out.push_str(&row.join(","));
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// Runs `petune predict`: the predicted class name and the probability of every class.
pub fn predict(args: &InferArgs) -> anyhow::Result<()> {
    let texts = load_texts(&args.input)?;
    let model = load(args)?;
    let preds = model.predict_batched(&texts, args.batch_size as usize)?;
    let format = if args.json { Format::Jsonl } else { args.format };
    let text = render(format, &model.manifest().task.label_names, &texts, &preds)?;
    match &args.out {
        Some(path) => {
            petune::core::fsio::write_atomic(path, text.as_bytes())?;
            eprintln!("wrote {} predictions to {}", preds.len(), path.display());
        }
        None => out!("{text}")?,
    }
    Ok(())
}

/// The confusion matrix as a table (rows: gold, columns: predicted).
fn confusion_table(c: &ClassificationReport) -> String {
    let names: Vec<&str> = c.classes.iter().map(|s| s.label.as_str()).collect();
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(4).max(4);
    let cells = c.confusion.iter().flatten().map(|v| v.to_string().len()).max().unwrap_or(1);
    let col = w.max(cells);
    let mut out = format!("confusion matrix (rows: gold, columns: predicted)\n  {:<w$}", "");
    for n in &names {
        out.push_str(&format!("  {n:>col$}"));
    }
    out.push('\n');
    for (n, row) in names.iter().zip(&c.confusion) {
        out.push_str(&format!("  {n:<w$}"));
        for v in row {
            out.push_str(&format!("  {v:>col$}"));
        }
        out.push('\n');
    }
    out
}

/// Runs `petune eval`: the task's metric, per-class precision / recall / F1 and the
/// confusion matrix on a labelled file.
pub fn eval(args: &InferArgs) -> anyhow::Result<()> {
    let model = load(args)?;
    let ds = dataset(&args.input, &model)?;
    let (report, classes) = model.evaluate_detailed(&ds, args.batch_size as usize)?;
    if args.json {
        let out = serde_json::json!({"metric": report, "classes": classes});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    outln!(
        "{} on {} ({} examples): {} = {:.4}",
        model.manifest().method.label(),
        args.input.display(),
        ds.examples.len(),
        report.key,
        report.headline
    )?;
    out!("{}", class_table(&classes, &args.input.display().to_string()))?;
    out!("{}", confusion_table(&classes))?;
    Ok(())
}
