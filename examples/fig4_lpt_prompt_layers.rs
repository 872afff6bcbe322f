//! Paper Figure 4: LPT NPG and LPT w/o PG by prompt layer, mean ± std over seeds, plotted as PNG and SVG.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::fig4()`; print it with
//! `--show-setting`. Writes `results/fig4/fig4.md` (the paper's layout) and `fig4.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example fig4_lpt_prompt_layers
//! ./target/release/examples/fig4_lpt_prompt_layers --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/fig4_lpt_prompt_layers --scaled                 # MiniLM-L6 + MR, here
//! ```

fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::fig4(), &assets)?;
    Ok(())
}
