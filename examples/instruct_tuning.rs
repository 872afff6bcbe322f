//! Instruction tuning with the causal-LM loss: a delta (LoRA on q/v by default, or LPT)
//! trained on examples/data/instruct/train.jsonl (prompt → completion; the loss on the
//! completion only), then greedy generation from the dev prompts before and after, and
//! the dev completion loss / perplexity.
//!
//! ```sh
//! # the tiny fixture (seconds) or SmolLM2-135M-Instruct (scripts/setup.sh; minutes on 2 cores)
//! cargo run --example instruct_tuning -- tests/fixtures/llama-lm
//! cargo run --release --example instruct_tuning -- .assets/smollm2 [lora|lpt] [steps]
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use petune::backbones::gguf::{is_gguf_path, GgufModel};
use petune::backbones::{LlamaBackbone, LlamaConfig};
use petune::prelude::*;
use petune::train::causal_lm::{encode, evaluate, read_instruct_jsonl, train, LmTrainConfig};
use petune::train::generate::{generate, GenerateOptions};
use tch::nn::VarStore;

/// A Hugging Face folder, or a `.gguf` file / folder holding one.
fn load(model: &Path) -> anyhow::Result<(Box<dyn Backbone>, TextTokenizer)> {
    if is_gguf_path(model) {
        let (config, tensors, tok) = GgufModel::open(model)?.into_parts();
        let config = LlamaConfig::from_json(config, model)?;
        let b = LlamaBackbone::from_tensors(config, tensors, model, &LoadOptions::default())?;
        return Ok((Box::new(b), tok));
    }
    let m = LoadedModel::from_dir(model, &LoadOptions::default())?;
    Ok((m.backbone, m.tokenizer))
}

fn main() -> anyhow::Result<()> {
    tch::manual_seed(0);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = Path::new(args.first().map_or("tests/fixtures/llama-lm", String::as_str));
    let method = args.get(1).map_or("lora", String::as_str);
    let steps: usize = args.get(2).map_or(Ok(30), |s| s.parse()).context("steps")?;
    let (backbone, tok) = load(model).with_context(|| format!("loading {}", model.display()))?;
    let spec = backbone.spec();
    let eos = spec.eos_id.context("the model declares no eos id")?;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/instruct");
    let enc = |file: &str| -> anyhow::Result<Vec<_>> {
        let rows = read_instruct_jsonl(&data.join(file))?;
        Ok(rows.iter().map(|r| encode(&tok, r, eos, 256)).collect::<Result<Vec<_>, _>>()?)
    };
    let (tr, dev) = (enc("train.jsonl")?, enc("dev.jsonl")?);
    let cfg = match method {
        "lpt" => MethodConfig::Lpt(LptConfig::npg(spec.n_layers.div_ceil(2) + 1)),
        _ => MethodConfig::Lora(LoraConfig { r: 8, alpha: 16.0, ..Default::default() }),
    };
    let vs = VarStore::new(backbone.device());
    let delta = cfg.build(&(vs.root() / "delta"), backbone.as_ref())?.context("no delta")?;
    let show = |title: &str, d: Option<&dyn Delta>| -> anyhow::Result<()> {
        println!("{title}:");
        let opts =
            GenerateOptions { max_new_tokens: 12, stop_ids: vec![eos], ..Default::default() };
        for f in &dev[..4] {
            let prompt = &f.ids[..f.prompt_len];
            let g = generate(backbone.as_ref(), d, prompt, &opts)?;
            let q = tok.decode(prompt)?.replace('\n', " ");
            println!("  {q:<52} -> {:?}", tok.decode(&g.tokens)?);
        }
        Ok(())
    };
    let pad = tok.pad_id();
    let before = evaluate(backbone.as_ref(), Some(delta.as_ref()), &dev, pad, 8)?;
    show("before tuning", Some(delta.as_ref()))?;
    let params = vs.variables().into_iter().collect();
    let tcfg = LmTrainConfig { steps, lr: 2e-3, batch_size: 8, warmup: 2, ..Default::default() };
    let start = Instant::now();
    let losses = train(backbone.as_ref(), delta.as_ref(), params, &tr, pad, &tcfg)?;
    let secs = start.elapsed().as_secs_f64();
    let after = evaluate(backbone.as_ref(), Some(delta.as_ref()), &dev, pad, 8)?;
    show(&format!("after {steps} steps of {} ({secs:.0} s)", cfg.label()), Some(delta.as_ref()))?;
    println!(
        "train loss {:.3} → {:.3}; dev completion loss {:.3} → {:.3} (perplexity {:.1} → {:.1}, {} tokens)",
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN),
        before.loss,
        after.loss,
        before.perplexity,
        after.perplexity,
        after.tokens
    );
    Ok(())
}
