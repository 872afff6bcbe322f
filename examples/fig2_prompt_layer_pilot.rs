//! Paper Figure 2: prompt tuning with its prompt inserted at layer PL — test metric by PL (left, mean ± std band) and training-loss convergence (middle) — plotted as PNG and SVG.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::fig2()`; print it with
//! `--show-setting`. Writes `results/fig2/fig2.md` (the paper's layout) and `fig2.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example fig2_prompt_layer_pilot
//! ./target/release/examples/fig2_prompt_layer_pilot --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/fig2_prompt_layer_pilot --scaled                 # MiniLM-L6 + MR, here
//! ```

fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::fig2(), &assets)?;
    Ok(())
}
