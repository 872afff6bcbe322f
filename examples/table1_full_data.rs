//! Paper Table 1: full-data results of every method on RoBERTa-large over the ten tasks (GLUE reported on dev, the other tasks on test), one row per method with its trainable parameters.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::table1()`; print it with
//! `--show-setting`. Writes `results/table1/table1.md` (the paper's layout) and `table1.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example table1_full_data
//! ./target/release/examples/table1_full_data --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/table1_full_data --scaled                 # MiniLM-L6 + MR, here
//! ```
//!
//! `--data` holds one folder per task: GLUE TSV (`SST-2`, `MNLI`, `MRPC`, `QNLI`, `QQP`,
//! `RTE`) and LM-BFF (`mpqa`, `mr`, `subj`, `trec`). The scaled-down form trains on
//! 100-shot MR for 60 steps instead of full data.
fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::table1(), &assets)?;
    Ok(())
}
