//! Writes the few-shot MR splits petune trains on (the authors' sampling, seed by seed)
//! as JSON lines, with petune's own token ids in both input forms: the template
//! (`{S1} . It was [MASK] .`, with the mask index) and the raw text. A reference
//! implementation in another framework (scripts/reference_prompt_methods.py) reads these
//! files, so that both sides train and evaluate on identical examples and ids.
//!
//! ```sh
//! cargo run --release --example export_fewshot_splits -- --seeds 13,42 --k-dev 1000 --out /tmp/mr-splits
//! ```
//!
//! Output: `OUT/seed-S/{train,dev,test}.jsonl`, one object a line: `text`, `label`,
//! `ids_template`, `mask_pos`, `ids_raw`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use petune::backbones::TextTokenizer;
use petune::prelude::*;
use petune::train::data::Dataset;
use petune::train::features::FeatureEncoder;

#[derive(Parser, Debug)]
struct Args {
    /// Few-shot seeds (the authors' are 100, 13, 21, 42, 87).
    #[arg(long, value_delimiter = ',', default_values_t = vec![13u32, 42])]
    seeds: Vec<u32>,
    /// Training examples (k-shot, in total).
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Dev examples sampled by the few-shot protocol.
    #[arg(long, default_value_t = 1000)]
    k_dev: usize,
    /// Longest input in tokens (as the runs use).
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

/// Writes `ds` with both encodings to `path`.
fn write_split(
    path: &Path,
    ds: &Dataset,
    template: &FeatureEncoder,
    raw: &FeatureEncoder,
) -> anyhow::Result<()> {
    let t = template.encode(ds)?;
    let r = raw.encode(ds)?;
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for ((ex, ft), fr) in ds.examples.iter().zip(&t).zip(&r) {
        let line = serde_json::json!({
            "text": ex.text_a,
            "label": ex.label,
            "ids_template": ft.ids,
            "mask_pos": ft.mask_pos,
            "ids_raw": fr.ids,
        });
        writeln!(f, "{line}")?;
    }
    f.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join(".assets/all-MiniLM-L6-v2");
    let mr = root.join(".assets/mr/movieReviewSnippets_GroundTruth.txt");
    if !model.join(".ok").exists() || !mr.exists() {
        bail!("the real assets are missing: run scripts/setup.sh");
    }
    let spec = petune::backbones::spec_from_config(&model.join("config.json"))?;
    let tokenizer = TextTokenizer::from_model_dir(&model, &spec)?;
    for &seed in &args.seeds {
        let task = TaskConfig {
            kind: TaskName::Mr.into(),
            data: DataSource::MrSnippets { path: mr.clone() },
            fewshot: Some(FewShotConfig { k: args.k, seed, k_dev: args.k_dev }),
            template_style: Default::default(),
        };
        let data = task.load()?;
        let encoder = |template| FeatureEncoder {
            tokenizer: tokenizer.clone(),
            template,
            max_len: args.max_len,
            truncate: false,
            lm: None,
        };
        let (template, raw) = (encoder(Some(data.spec.template.clone())), encoder(None));
        let dir = args.out.join(format!("seed-{seed}"));
        std::fs::create_dir_all(&dir)?;
        let test = data.test.as_ref().context("MR has a test set")?;
        for (name, ds) in [("train", &data.train), ("dev", &data.dev), ("test", test)] {
            write_split(&dir.join(format!("{name}.jsonl")), ds, &template, &raw)?;
        }
        println!(
            "seed {seed}: train {}, dev {}, test {} -> {}",
            data.train.len(),
            data.dev.len(),
            test.len(),
            dir.display()
        );
    }
    Ok(())
}
