//! The paper-reproduction layer on the tiny BERT: every study kind (accuracy table with
//! a learning-rate grid selected on dev, efficiency, prompt-layer trade-off, curves by
//! prompt layer and by prompt length) runs end to end through `petune` children and
//! writes its table in the paper's layout, its JSON file and, for curves, CSV and plots.

mod common;

use std::path::Path;

use common::tiny_task::*;
use common::*;
use petune::experiments::grid::Grid;
use petune::experiments::paper::{self, PaperSetting};
use petune::experiments::reproduce::{reproduce, DataRoot, Target};
use petune::experiments::runner::Runner;
use petune::prelude::*;

/// A task folder in the authors' MR layout (`label\ttext`, no header).
fn write_mr(dir: &Path) {
    let mr = dir.join("mr");
    std::fs::create_dir_all(&mr).unwrap();
    for (split, n, off) in [("train", 24, 0), ("dev", 8, 3), ("test", 8, 1)] {
        let lines: Vec<String> =
            examples(n, off).iter().map(|e| format!("{}\t{}", e.label, e.text_a)).collect();
        std::fs::write(mr.join(format!("{split}.tsv")), lines.join("\n")).unwrap();
    }
}

fn tiny(mut p: PaperSetting) -> PaperSetting {
    p.tasks = vec![TaskName::Mr];
    p.fewshot_k = Some(8);
    p.k_dev = 8;
    p.seeds = vec![13, 42];
    p.steps = Some(2);
    p.eval_every = 2;
    p.max_len = 32;
    let two = Grid { lrs: vec![1e-3, 5e-3], batch_sizes: vec![4], warmup_rates: vec![0.0] };
    p.grids.prompt = two.clone();
    p.grids.delta = two;
    p.grids.model_tuning = Grid::single(1e-4, 4, 0.0);
    p.bench_shape = Some((2, 16));
    p
}

fn target(tag: &str) -> Target {
    let dir = temp_dir(tag);
    write_mr(&dir);
    Target {
        model: fixture("bert-mlm"),
        data: DataRoot::TaskDirs(dir.clone()),
        out: dir.join("out"),
        threads: 1,
        device: "cpu".into(),
    }
}

fn runner() -> Runner {
    Runner::Cli(env!("CARGO_BIN_EXE_petune").into())
}

#[test]
fn every_catalog_method_builds_on_every_backbone() {
    init();
    for name in ["bert-mlm", "roberta-mlm", "deberta-mlm", "gpt2-lm"] {
        let backbone = load(&fixture(name));
        for short in petune::experiments::catalog::SHORT_NAMES {
            let method =
                petune::experiments::catalog::paper_method(short, backbone.spec()).unwrap();
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let built = method.build(&vs.root(), backbone.as_ref());
            assert!(built.is_ok(), "{short} on {name}: {:?}", built.err());
        }
    }
    // GPT2-large's LoRA is the paper's: r = 4 on the fused c_attn, 737,280 parameters.
    let spec = petune::backbones::spec_from_config(&fixture("configs/gpt2-large.json")).unwrap();
    let lora = petune::experiments::catalog::paper_method("lora", &spec).unwrap();
    assert_eq!(lora.delta_params(&spec), 737_280);
}

#[test]
fn accuracy_table_selects_on_dev_and_writes_the_paper_layout() {
    init();
    let mut p = tiny(paper::table2());
    p.methods = vec!["npg".into(), "mt".into()];
    let t = target("paper-table2");
    let md = reproduce(&runner(), &p, &t).unwrap();
    assert!(md.contains("| Method | Params | MR | Avg |"), "{md}");
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| LPT NPG") || l.starts_with("| model tuning"))
        .collect();
    assert_eq!(rows.len(), 2, "{md}");
    assert!(rows.iter().all(|r| r.contains(" ± ")), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.out.join("table2.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * 2); // methods × seeds
                                   // NPG tried both learning rates and kept the one with the best dev metric.
    let npg = &runs[0];
    let tried = npg["tried"].as_array().unwrap();
    assert_eq!(tried.len(), 2);
    let best = tried.iter().map(|r| r["best_dev"].as_f64().unwrap()).fold(f64::MIN, f64::max);
    let chosen = tried.iter().find(|r| r["point"] == npg["chosen"]).unwrap();
    assert_eq!(chosen["best_dev"].as_f64().unwrap(), best);
    assert!(t.out.join("table2.md").is_file());
}

#[test]
fn efficiency_and_tradeoff_tables_have_a_row_per_method_and_layer() {
    init();
    let mut p = tiny(paper::table5());
    p.methods = vec!["mt".into(), "npg".into()];
    let t = target("paper-table5");
    let md = reproduce(&runner(), &p, &t).unwrap();
    assert!(md.contains("| model tuning |") && md.contains("| LPT NPG (PL 2) |"), "{md}");
    assert!(md.contains("| 1.00 |"), "model tuning is its own reference: {md}");

    let p = tiny(paper::table10());
    let t = target("paper-table10");
    let md = reproduce(&runner(), &p, &t).unwrap();
    // PL 7, 13 and 19 of 24 all map to PL 2 of the fixture's 2 layers: one row.
    assert_eq!(md.lines().filter(|l| l.starts_with("| LPT NPG (PL 2) |")).count(), 1, "{md}");
}

#[test]
fn curves_write_csv_plots_and_a_table_per_task() {
    init();
    let mut p = tiny(paper::fig4());
    p.methods = vec!["npg".into()];
    p.values = vec![1, 13];
    p.seeds = vec![13];
    let t = target("paper-fig4");
    let md = reproduce(&runner(), &p, &t).unwrap();
    assert!(md.contains("| Method | PL 1 | PL 2 |"), "{md}");
    let dir = t.out.join("mr");
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");
    for stem in ["prompt_layers", "convergence"] {
        assert!(
            dir.join(format!("{stem}.png")).is_file() && dir.join(format!("{stem}.svg")).is_file()
        );
    }

    let mut p = tiny(paper::fig5());
    p.methods = vec!["wo_pg".into(), "mt".into()];
    p.values = vec![1, 4];
    p.seeds = vec![13];
    let t = target("paper-fig5");
    let md = reproduce(&runner(), &p, &t).unwrap();
    assert!(md.contains("| Method | l 1 | l 4 |"), "{md}");
    // Model tuning has no prompt: one run, shown in every column.
    let csv = std::fs::read_to_string(t.out.join("mr/sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 + 1, "{csv}");
    assert!(t.out.join("mr/prompt_lengths.svg").is_file());
}

/// Array task `i` of an emitted job array, run by bash without Slurm.
fn array_task(dir: &Path, i: usize) -> std::process::Output {
    std::process::Command::new("bash")
        .arg(dir.join(petune::experiments::slurm::SCRIPT))
        .env("SLURM_ARRAY_TASK_ID", i.to_string())
        .env_remove("SLURM_CPUS_PER_TASK")
        .output()
        .unwrap()
}

/// The table rows of a paper markdown file (`| ...` lines).
fn table_rows(md: &str) -> Vec<&str> {
    md.lines().filter(|l| l.starts_with('|')).collect()
}

#[test]
fn a_paper_grid_emitted_as_a_job_array_collects_to_the_local_table() {
    use petune::experiments::reproduce::paper_jobs;
    use petune::experiments::slurm::{emit, SlurmOptions};
    init();
    let mut p = tiny(paper::table2());
    p.methods = vec!["npg".into()];
    p.seeds = vec![13];
    let t = target("paper-slurm");
    let (study, jobs) = paper_jobs(&p, &t).unwrap();
    let ids: Vec<String> = jobs.iter().map(|j| j.point.id.clone()).collect();
    // One task × method × seed, two learning rates: two array tasks.
    assert_eq!(ids, ["mr-LPTNPGPL2-seed13-lr1e-3-bs4-wu0", "mr-LPTNPGPL2-seed13-lr5e-3-bs4-wu0"]);
    let opts = SlurmOptions { petune: env!("CARGO_BIN_EXE_petune").into(), ..Default::default() };
    let arr = emit(&t.out.with_file_name("array"), study, jobs, &opts).unwrap();
    for i in 0..2 {
        let o = array_task(&arr, i);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let c = petune::experiments::collect::collect(&arr, None, false).unwrap();
    assert_eq!(c.finished(), 2);
    let collected = c.markdown.unwrap();
    assert!(arr.join("table2.md").is_file() && arr.join("table2.json").is_file());
    let local = reproduce(&runner(), &p, &t).unwrap();
    assert_eq!(table_rows(&collected), table_rows(&local), "{collected}\n{local}");
    assert_eq!(table_rows(&local).len(), 3, "{local}");

    // A curve: per task CSV, plots and the table, as a local run writes them.
    let mut p = tiny(paper::fig5());
    p.methods = vec!["wo_pg".into()];
    p.values = vec![1, 4];
    p.seeds = vec![13];
    let t = target("paper-slurm-curve");
    let (study, jobs) = paper_jobs(&p, &t).unwrap();
    assert_eq!(jobs.len(), 2 * 2, "lengths × learning rates");
    assert_eq!(jobs[0].point.id, "mr-LPTwoPG-prompt_len1-seed13-lr1e-3-bs4-wu0");
    let arr = emit(&t.out.with_file_name("array"), study, jobs, &opts).unwrap();
    for i in 0..4 {
        let o = array_task(&arr, i);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let collected = petune::experiments::collect::collect(&arr, None, false).unwrap();
    let local = reproduce(&runner(), &p, &t).unwrap();
    let collected = collected.markdown.unwrap();
    assert!(collected.contains("| Method | l 1 | l 4 |"), "{collected}");
    assert_eq!(table_rows(&collected), table_rows(&local), "{collected}\n{local}");
    let csv = |dir: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("mr/sweep.csv")).unwrap();
        text.lines().map(|l| l.split(',').take(7).collect::<Vec<_>>().join(",")).collect()
    };
    assert_eq!(csv(&arr), csv(&t.out));
    assert!(arr.join("mr/prompt_lengths.svg").is_file());

    // The efficiency items measure this machine: not a job array.
    let err = paper_jobs(&tiny(paper::table5()), &t).unwrap_err();
    assert!(err.to_string().contains("one machine"), "{err}");
}
