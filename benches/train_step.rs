//! Criterion benchmark of one training step per method (issue #7), the same step
//! `petune bench` times (`petune::train::bench::BenchSession`): real all-MiniLM-L6-v2
//! when `scripts/setup.sh` has installed it, else the tiny BERT fixture.
//!
//! ```sh
//! cargo bench --bench train_step                 # batch 16 × 128 on MiniLM
//! PETUNE_BENCH_THREADS=2 cargo bench --bench train_step -- lora
//! ```
// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use petune::prelude::*;
use petune::train::bench::{BenchConfig, BenchSession};

fn methods(n_layers: usize) -> Vec<(&'static str, MethodConfig, bool)> {
    let pl = n_layers / 2 + 1;
    vec![
        ("model_tuning", MethodConfig::ModelTuning, false),
        ("lpt_npg", MethodConfig::Lpt(LptConfig::npg(pl)), false),
        ("lpt_npg_cached", MethodConfig::Lpt(LptConfig::npg(pl)), true),
        ("lora", MethodConfig::Lora(LoraConfig::default()), false),
        ("prompt_tuning", MethodConfig::PromptTuning(PromptTuningConfig::default()), false),
        ("adapter", MethodConfig::Adapter(AdapterConfig::default()), false),
        ("bitfit", MethodConfig::BitFit(BitFitConfig::default()), false),
    ]
}

fn train_step(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let real = root.join(".assets/all-MiniLM-L6-v2");
    let (dir, cfg) = if real.join(".ok").exists() {
        (real, BenchConfig::default())
    } else {
        (
            root.join("tests/fixtures/bert-mlm"),
            BenchConfig { batch: 4, seq: 32, ..BenchConfig::default() },
        )
    };
    let threads =
        std::env::var("PETUNE_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    petune::train::memory::tune_allocator();
    let backbone = match load_backbone(&dir, &LoadOptions::default()) {
        Ok(b) => b,
        Err(e) => panic!("loading {}: {e}", dir.display()),
    };
    let mut group = c.benchmark_group(format!("train_step/{}x{}", cfg.batch, cfg.seq));
    group.sample_size(10);
    for (name, method, cache) in methods(backbone.spec().n_layers) {
        let cfg = BenchConfig { cache, ..cfg.clone() };
        let mut session = match BenchSession::new(backbone.as_ref(), &method, &cfg) {
            Ok(s) => s,
            Err(e) => panic!("{name}: {e}"),
        };
        group.bench_function(name, |b| {
            b.iter(|| session.step().map(|_| ()).unwrap_or_else(|e| panic!("{e}")))
        });
        if method.trains_backbone() {
            // Model tuning unfroze the backbone; later methods need it frozen again.
            for (_, t) in backbone.var_store().variables() {
                let _ = t.set_requires_grad(false);
            }
        }
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
