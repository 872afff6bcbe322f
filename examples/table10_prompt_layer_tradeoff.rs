//! Paper Table 10 (Appendix D): LPT NPG at prompt layers 7, 13 and 19 — accuracy against training speed and memory.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::table10()`; print it with
//! `--show-setting`. Writes `results/table10/table10.md` (the paper's layout) and `table10.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example table10_prompt_layer_tradeoff
//! ./target/release/examples/table10_prompt_layer_tradeoff --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/table10_prompt_layer_tradeoff --scaled                 # MiniLM-L6 + MR, here
//! ```
//!
//! Prompt layers are mapped to the same relative depth of the model run (3, 4, 6 on
//! MiniLM-L6).
fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::table10(), &assets)?;
    Ok(())
}
