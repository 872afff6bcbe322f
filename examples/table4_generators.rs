//! Paper Table 4: the prompt generators (NPG, APPG, MPPG), LPT without a generator and prompt tuning on DeBERTa-large, full data.
//!
//! The setting (backbone, prompt layer, lengths, learning-rate grid, batch sizes, steps,
//! seeds, splits, metric) is `petune::experiments::paper::table4()`; print it with
//! `--show-setting`. Writes `results/table4/table4.md` (the paper's layout) and `table4.json`.
//!
//! ```sh
//! cargo build --release --bin petune --example table4_generators
//! ./target/release/examples/table4_generators --model DIR --data DIR   # the paper's setting
//! ./target/release/examples/table4_generators --scaled                 # MiniLM-L6 + MR, here
//! ```

fn main() -> anyhow::Result<()> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets");
    petune::experiments::args::run_example(petune::experiments::paper::table4(), &assets)?;
    Ok(())
}
