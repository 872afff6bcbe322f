//! Paper Figure 5: the effect of the prompt length on LPT w/o PG and LPT NPG at the middle layer, plotted as PNG and SVG.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::fig5()`; print it with
//! `--show-setting`. Writes `results/fig5/fig5.md` (the paper's layout) and `fig5.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example fig5_prompt_length
//! ./target/release/examples/fig5_prompt_length --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/fig5_prompt_length --scaled                 # MiniLM-L6 + MR, here
//! ```

fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::fig5(), &assets)?;
    Ok(())
}
