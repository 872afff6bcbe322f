//! Paper Table 5: trainable parameters, training speed (tokens/ms) and memory of every method at length 256, with the ratios to model tuning; each method benchmarked in its own process.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::table5()`; print it with
//! `--show-setting`. Writes `results/table5/table5.md` (the paper's layout) and `table5.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example table5_efficiency
//! ./target/release/examples/table5_efficiency --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/table5_efficiency --scaled                 # MiniLM-L6 + MR, here
//! ```
//!
//! Run it once per backbone (`--model roberta-large`, `--model gpt2-large`), with
//! `--device cuda` on a GPU. The scaled-down form measures MiniLM-L6 at 16 × 128.
fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::table5(), &assets)?;
    Ok(())
}
