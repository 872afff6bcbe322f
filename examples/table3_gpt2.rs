//! Paper Table 3: few-shot results on GPT2-large (LM scoring of the label words for the prompt methods, a classification head for model tuning), prompt layer 19 of 36.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::table3()`; print it with
//! `--show-setting`. Writes `results/table3/table3.md` (the paper's layout) and `table3.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example table3_gpt2
//! ./target/release/examples/table3_gpt2 --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/table3_gpt2 --scaled                 # MiniLM-L6 + MR, here
//! ```
//!
//! No GPT-2 checkpoint is among the assets here, so the scaled-down form runs the same
//! methods on MiniLM-L6; with a GPT-2 folder (`--model`) it runs the decoder path.
fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::table3(), &assets)?;
    Ok(())
}
