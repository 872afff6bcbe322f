//! `petune forward`: runs a Hugging Face checkpoint or a GGUF file on a JSONL file of texts and writes
//! `hidden.0` (embedding output) … `hidden.L`, `attention_mask`, `input_ids`,
//! `token_type_ids` and, when the checkpoint has an MLM / LM head, `logits` — the way to
//! check petune against any other implementation.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use petune::core::tensor_io::write_safetensors;
use petune::prelude::*;

/// Arguments of `petune forward`.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Hugging Face model folder (config.json, model.safetensors, and tokenizer.json or
    /// vocab.json + merges.txt), or a GGUF file (or a folder holding one).
    #[arg(long)]
    model: PathBuf,
    /// JSONL file: one `{"text": ...}` or `{"text": ..., "text_pair": ...}` per line.
    #[arg(long)]
    input: PathBuf,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Cut inputs longer than the model's limit instead of failing.
    #[arg(long)]
    truncate: bool,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Keep a GGUF's projection weights in their quantized blocks, dequantized layer by
    /// layer (same values as the default dequantized load).
    #[arg(long)]
    quantized_base: bool,
}

/// Reads a JSONL file of [`TextInput`]s; a bad line is an error naming it.
pub fn read_inputs(path: &Path) -> anyhow::Result<Vec<TextInput>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut inputs = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.with_context(|| format!("{}: cannot read line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let input: TextInput = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: expected {{\"text\": ...}} or {{\"text\": ..., \"text_pair\": ...}}",
                path.display(),
                i + 1
            )
        })?;
        inputs.push(input);
    }
    if inputs.is_empty() {
        bail!("{}: no inputs (the file is empty)", path.display());
    }
    Ok(inputs)
}

/// Runs `petune forward`.
pub fn run(args: &ForwardArgs) -> anyhow::Result<()> {
    let inputs = read_inputs(&args.input)?;
    let source = ModelSource::open(&args.model)?;
    let opts = LoadOptions {
        device: petune::core::parse_device(&args.device)?,
        quantized_base: args.quantized_base,
        ..LoadOptions::default()
    };
    // A folder's tokenizer.json, else vocab.json + merges.txt; a GGUF's metadata.
    let LoadedParts { backbone, tokenizer: tok, .. } = source.load(&opts)?;
    let spec = backbone.spec();
    let opts = EncodeOptions {
        max_len: spec.max_positions as usize,
        truncate: args.truncate,
        padding_side: PaddingSide::Right,
    };
    let batch = tok.encode_batch(&inputs, &opts, backbone.device())?;
    let input = BackboneInput::new(batch.input_ids.shallow_clone())?
        .with_attention_mask(batch.attention_mask.shallow_clone())?
        .with_token_types(batch.token_type_ids.shallow_clone())?;
    let _guard = tch::no_grad_guard();
    let (hidden, last) = all_hidden_states(backbone.as_ref(), &input, &NoHooks, false)?;
    // GPU tensors are fine here: the safetensors writer copies each to the CPU.
    let mut tensors: Vec<(String, tch::Tensor)> =
        hidden.into_iter().enumerate().map(|(i, h)| (format!("hidden.{i}"), h)).collect();
    tensors.push(("input_ids".into(), batch.input_ids));
    tensors.push(("attention_mask".into(), batch.attention_mask));
    tensors.push(("token_type_ids".into(), batch.token_type_ids));
    if spec.capabilities.lm_head {
        tensors.push(("logits".into(), backbone.lm_logits(&last.hidden, false)?));
    }
    let meta = std::collections::HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("petune_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("model".to_string(), source.path().display().to_string()),
    ]);
    write_safetensors(&args.out, &tensors, Some(meta))?;
    eprintln!(
        "wrote {} ({} examples, {} tokens, {} hidden states{})",
        args.out.display(),
        inputs.len(),
        last.seq_len(),
        spec.n_layers + 1,
        if spec.capabilities.lm_head { ", LM logits" } else { "" }
    );
    Ok(())
}
