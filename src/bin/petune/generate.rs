//! `petune generate`: continues a prompt with a causal decoder (GPT-2, the Llama family),
//! optionally with a tuned delta (`petune train`'s output folder), greedily or by
//! seeded temperature / top-p sampling, through the key/value cache
//! (`petune::train::generate`). `--chat` wraps the prompt in the model's chat template.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use petune::prelude::*;
use petune::train::causal_lm::{is_causal_lm_delta, load_delta};
use petune::train::generate::chat::{chat_template_of, render_chat, Message};
use petune::train::generate::{generate, Decoding, GenerateOptions, StopReason};

use crate::infer::load_trained;
use crate::out::outln;

/// Arguments of `petune generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Decoder model: a Hugging Face folder (GPT-2, Llama, Mistral, Qwen2) or a GGUF file.
    #[arg(long)]
    model: PathBuf,
    /// A delta trained on this model (`petune train`'s output folder: a classification
    /// run, or causal-LM tuning on prompt/completion rows).
    #[arg(long)]
    delta: Option<PathBuf>,
    /// The text to continue.
    #[arg(long, conflicts_with = "prompt_file", required_unless_present = "prompt_file")]
    prompt: Option<String>,
    /// Read the text to continue from a file (taken as it is, newlines included).
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    max_new_tokens: u32,
    /// Sample at this temperature (> 0) instead of decoding greedily.
    #[arg(long)]
    temperature: Option<f64>,
    /// Sample from the smallest set of tokens whose probability reaches P (nucleus
    /// sampling, in (0, 1]); implies sampling (at temperature 1 unless given).
    #[arg(long)]
    top_p: Option<f64>,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Wrap the prompt as a user turn of the model's chat template (GGUF metadata or
    /// tokenizer_config.json) and open the assistant's turn.
    #[arg(long)]
    chat: bool,
    /// Stop when the model generates its end-of-sequence token.
    #[arg(long)]
    stop_at_eos: bool,
    /// Keep a GGUF model's frozen projection weights in their quantized blocks
    /// (docs/gguf.md, "The quantized base").
    #[arg(long)]
    quantized_base: bool,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (without --delta).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object (text, token ids, why it stopped, timings) instead of the text.
    #[arg(long)]
    json: bool,
}

/// How to choose tokens, from the flags: sampling when a temperature or top-p is given.
fn decoding(args: &GenerateArgs) -> Decoding {
    match (args.temperature, args.top_p) {
        (None, None) => Decoding::Greedy,
        (t, p) => Decoding::Sample {
            temperature: t.unwrap_or(1.0),
            top_p: p.unwrap_or(1.0),
            seed: args.seed,
        },
    }
}

/// Runs `petune generate`.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let text = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the prompt file {}", f.display()))?,
        (None, None) => bail!("give --prompt or --prompt-file"),
    };
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens as usize,
        decoding: decoding(args),
        stop_ids: Vec::new(),
        keep_logits: false,
    };
    // Refuse bad flags before the model loads.
    opts.decoding.validate()?;
    if opts.max_new_tokens == 0 {
        bail!("--max-new-tokens must be at least 1");
    }
    let causal_delta = args.delta.as_deref().filter(|d| is_causal_lm_delta(d));
    let (trained, loaded) = match &args.delta {
        Some(delta) if causal_delta.is_none() => {
            if args.device != "cpu" {
                bail!("--device is only supported without --delta for now");
            }
            (Some(load_trained(&args.model, delta, args.quantized_base, BaseDtype::F32)?), None)
        }
        _ => {
            let opts = LoadOptions {
                device: petune::core::parse_device(&args.device)?,
                quantized_base: args.quantized_base,
                ..LoadOptions::default()
            };
            let m = LoadedModel::from_dir(&args.model, &opts)
                .with_context(|| format!("loading {}", args.model.display()))?;
            (None, Some(m))
        }
    };
    // A causal-LM tuned delta (`petune train` on prompt/completion rows).
    let lm_delta = match (causal_delta, &loaded) {
        (Some(dir), Some(m)) => Some(
            load_delta(dir, m.backbone.as_ref())
                .with_context(|| format!("loading the delta in {}", dir.display()))?,
        ),
        _ => None,
    };
    let (backbone, delta, tokenizer) = match (&trained, &loaded) {
        (Some(t), _) => (t.backbone(), t.active_delta(), &t.encoder().tokenizer),
        (None, Some(m)) => {
            (m.backbone.as_ref(), lm_delta.as_ref().map(|(_, d, _)| d.as_ref()), &m.tokenizer)
        }
        (None, None) => bail!("no model loaded"),
    };
    let spec = backbone.spec();
    let (prompt_text, ids) = if args.chat {
        let Some(template) = chat_template_of(&args.model)? else {
            bail!(
                "{} has no chat template (GGUF tokenizer.chat_template or tokenizer_config.json \
                 chat_template); drop --chat",
                args.model.display()
            );
        };
        let token = |id: Option<i64>| id.and_then(|i| tokenizer.token(i));
        let (bos, eos) = (token(spec.bos_id), token(spec.eos_id));
        let rendered =
            render_chat(&template, &[Message::user(text)], true, bos.as_deref(), eos.as_deref())?;
        // The template writes the special tokens itself (apply_chat_template tokenizes
        // with add_special_tokens=False).
        let ids = tokenizer.ids_without_special(&rendered)?;
        (rendered, ids)
    } else {
        let (ids, _) = tokenizer.encode_ids(
            &TextInput::single(text.as_str()),
            spec.max_positions as usize,
            false,
        )?;
        (text, ids)
    };
    let stop_ids = if args.stop_at_eos {
        let ids: Vec<i64> = spec.eos_id.into_iter().chain(tokenizer.eos_id()).collect();
        if ids.is_empty() {
            bail!("--stop-at-eos: the model declares no end-of-sequence token");
        }
        ids
    } else {
        Vec::new()
    };
    let opts = GenerateOptions { stop_ids, ..opts };
    let start = Instant::now();
    let g = generate(backbone, delta, &ids, &opts)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let out = tokenizer.decode(&g.tokens)?;
    let stop = match g.stop {
        StopReason::Eos => "eos",
        StopReason::Length => "length",
    };
    if args.json {
        let v = serde_json::json!({
            "prompt": prompt_text,
            "prompt_tokens": ids.len(),
            "text": out,
            "tokens": g.tokens,
            "stop": stop,
            "ms": ms,
        });
        outln!("{v}")?;
    } else {
        outln!("{out}")?;
    }
    eprintln!(
        "{} prompt tokens, {} new ({stop}) in {ms:.0} ms ({:.1} tokens/s)",
        ids.len(),
        g.tokens.len(),
        g.tokens.len() as f64 / (ms / 1e3)
    );
    Ok(())
}
