//! A real job on the real assets of scripts/setup.sh, with no training: fill-mask
//! top-5 with splade-tiny's MLM head, and sentence similarity with all-MiniLM-L6-v2
//! (mean pooling + cosine, as sentence-transformers does for this model).
//!
//! `cargo run --release --example real_assets_demo`

use anyhow::Context;
use petune::prelude::*;
use tch::{Device, Kind, Tensor};

fn encode(tok: &TextTokenizer, texts: &[TextInput]) -> anyhow::Result<(BackboneInput, Tensor)> {
    let opts = EncodeOptions { max_len: 512, truncate: false, padding_side: PaddingSide::Right };
    let b = tok.encode_batch(texts, &opts, Device::Cpu)?;
    let input = BackboneInput::new(b.input_ids.shallow_clone())?
        .with_attention_mask(b.attention_mask.shallow_clone())?
        .with_token_types(b.token_type_ids)?;
    Ok((input, b.input_ids))
}

fn fill_mask(dir: &std::path::Path) -> anyhow::Result<()> {
    let backbone = load_backbone(dir, &LoadOptions::default())?;
    let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), backbone.spec().pad_id)?;
    let mask_id = tok.token_id("[MASK]").context("no [MASK] token")?;
    let sentences = [
        "the capital of france is [MASK] .",
        "the movie was [MASK] and i loved it .",
        "she drank a cup of [MASK] .",
    ];
    println!("fill-mask with splade-tiny (MLM head fine-tuned for retrieval):");
    for s in sentences {
        let (input, ids) = encode(&tok, &[TextInput::single(s)])?;
        let out = backbone.forward_t(&input, &NoHooks, false)?;
        let pos = ids.get(0).eq(mask_id).nonzero().int64_value(&[0, 0]);
        let logits = backbone.lm_logits(&out.hidden.get(0).get(pos), false)?;
        let (_, top) = logits.softmax(-1, Kind::Float).topk(5, -1, true, true);
        let words: Vec<String> =
            Vec::<i64>::try_from(&top)?.into_iter().filter_map(|i| tok.token(i)).collect();
        println!("  {s:<45} -> {}", words.join(", "));
    }
    Ok(())
}

fn similarity(dir: &std::path::Path) -> anyhow::Result<()> {
    let backbone = load_backbone(dir, &LoadOptions::default())?;
    let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), backbone.spec().pad_id)?;
    let texts = [
        "A late prompt could be better than many prompts.",
        "Inserting one prompt in a middle layer beats prompting every layer.",
        "The film was a delight from start to finish.",
        "I enjoyed every minute of this movie.",
        "The stock market fell sharply on Monday.",
    ];
    let inputs: Vec<TextInput> = texts.iter().map(|t| TextInput::single(*t)).collect();
    let (input, _) = encode(&tok, &inputs)?;
    let out = backbone.forward_t(&input, &NoHooks, false)?;
    let mask = input.attention_mask.unsqueeze(-1).to_kind(Kind::Float); // [B, T, 1]
    let mean = (out.hidden * &mask).sum_dim_intlist(1, false, Kind::Float)
        / mask.sum_dim_intlist(1, false, Kind::Float);
    let emb = &mean / mean.norm_scalaropt_dim(2.0, [-1].as_slice(), true); // [B, H]
    let sim = emb.matmul(&emb.tr()); // [B, B]
    println!("\ncosine similarity with all-MiniLM-L6-v2 (mean pooling):");
    for (i, t) in texts.iter().enumerate() {
        let row: Vec<String> = (0..texts.len())
            .map(|j| format!("{:5.2}", sim.double_value(&[i as i64, j as i64])))
            .collect();
        println!("  [{}] {:<68} {}", i, t, row.join(" "));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    let _guard = tch::no_grad_guard();
    fill_mask(&assets.join("splade-tiny")).context("run scripts/setup.sh to install the assets")?;
    similarity(&assets.join("all-MiniLM-L6-v2"))?;
    Ok(())
}
