//! Paper Table 2: few-shot results (100 training examples sampled with the authors' protocol, dev of 1,000) of every method on RoBERTa-large over the ten tasks, mean ± std over 4 splits.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::table2()`; print it with
//! `--show-setting`. Writes `results/table2/table2.md` (the paper's layout) and `table2.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example table2_few_shot
//! ./target/release/examples/table2_few_shot --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/table2_few_shot --scaled                 # MiniLM-L6 + MR, here
//! ```
//!
//! `--data` holds the original task folders; the few-shot splits are sampled from them
//! exactly as the authors' `generate_low_resource_data.py`.
fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::table2(), &assets)?;
    Ok(())
}
