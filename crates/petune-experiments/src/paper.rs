//! The settings of the LPT paper's tables and figures (Liu et al., Findings of EMNLP
//! 2022), one constructor each, from lpt-reference.md §5–§8. What the paper does not
//! state is marked in each setting's `notes` as inferred (`[I]`) or unknown (`[U]`).
//!
//! Prompt layers are given in the paper's numbering on the paper's backbone
//! (`paper_layers` deep) and mapped to the same relative depth of the backbone actually
//! run ([`scale_layer`]): PL 13 of 24 is PL 4 of 6 on MiniLM-L6.

use petune_train::data::TaskName;
use serde::{Deserialize, Serialize};

use crate::grid::Grid;
use crate::sweep::Axis;

/// What a paper item measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Study {
    /// Test metric per task × method, mean ± std over seeds (Tables 1–4).
    Accuracy,
    /// Trainable parameters, training speed and memory per method (Table 5).
    Efficiency,
    /// Accuracy and efficiency of LPT at several prompt layers (Table 10).
    PromptLayerTradeoff,
    /// Test metric against an axis, with convergence curves (Figures 2, 4, 5).
    Curve(Axis),
}

/// Learning-rate grids by method family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grids {
    /// LPT, prompt tuning, P-tuning v2, S-IDPG.
    pub prompt: Grid,
    /// Adapter, AdapterDrop, BitFit, LoRA.
    pub delta: Grid,
    /// Model tuning.
    pub model_tuning: Grid,
}

/// One table or figure of the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperSetting {
    /// `table1`, `fig2`, ...
    pub id: String,
    /// What the item shows.
    pub title: String,
    /// What it measures.
    pub study: Study,
    /// The Hugging Face checkpoints the paper used.
    pub backbones: Vec<String>,
    /// Depth of the paper's backbone, for mapping prompt layers.
    pub paper_layers: usize,
    /// Tasks, in the paper's column order.
    pub tasks: Vec<TaskName>,
    /// Methods by short name (catalog), in the paper's row order.
    pub methods: Vec<String>,
    /// Few-shot training examples in total, or full data.
    pub fewshot_k: Option<usize>,
    /// Sampled dev examples (few-shot).
    pub k_dev: usize,
    /// Few-shot split seeds (few-shot) or training seeds (full data).
    pub seeds: Vec<u32>,
    /// Hyper-parameter grids, selected on dev per task, method and seed.
    pub grids: Grids,
    /// Optimizer steps (few-shot).
    pub steps: Option<i64>,
    /// Epochs (full data).
    pub epochs: Option<i64>,
    /// Longest input.
    pub max_len: usize,
    /// Cut longer inputs (the authors' GPT-2 code truncates to 256) instead of failing.
    #[serde(default)]
    pub truncate: bool,
    /// Dev evaluation interval in steps.
    pub eval_every: i64,
    /// Evaluation batch.
    pub eval_batch_size: usize,
    /// Forward passes per optimizer step.
    pub grad_accum: usize,
    /// Prompt layers (paper numbering) or prompt lengths the item varies.
    pub values: Vec<usize>,
    /// Batch × length of the efficiency measurement.
    pub bench_shape: Option<(i64, i64)>,
    /// What is inferred or unknown.
    pub notes: Vec<String>,
    /// The scaled-down form: one learning rate per method (`catalog::scaled_lr`)
    /// instead of the grids.
    #[serde(default)]
    pub scaled: bool,
}

/// `pl` (1-based, of `paper_layers`) at the same relative depth of an `n_layers` backbone.
///
/// ```
/// use petune_experiments::paper::scale_layer;
///
/// assert_eq!(scale_layer(13, 24, 6), 4); // the middle of RoBERTa-large → of MiniLM-L6
/// assert_eq!(scale_layer(19, 36, 24), 13); // GPT2-large's PL 19 → a 24-layer model
/// ```
pub fn scale_layer(pl: usize, paper_layers: usize, n_layers: usize) -> usize {
    if paper_layers == n_layers {
        return pl.clamp(1, n_layers);
    }
    let rel = (pl.saturating_sub(1)) as f64 * n_layers as f64 / paper_layers as f64;
    (1 + rel.round() as usize).clamp(1, n_layers)
}

/// The ten tasks of Tables 1–2, in the paper's column order.
pub const TEN_TASKS: [TaskName; 10] = [
    TaskName::Sst2,
    TaskName::Mpqa,
    TaskName::Mr,
    TaskName::Subj,
    TaskName::Trec,
    TaskName::Mnli,
    TaskName::Mrpc,
    TaskName::Qnli,
    TaskName::Qqp,
    TaskName::Rte,
];

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The encoder grids (Table 7, App. C): prompt methods lr {5e-4, 1e-3, 5e-3}, warm-up
/// {0, 0.06}; the baselines' grids are not published [I].
fn encoder_grids(batch_sizes: &[usize]) -> Grids {
    Grids {
        prompt: Grid {
            lrs: vec![5e-4, 1e-3, 5e-3],
            batch_sizes: batch_sizes.to_vec(),
            warmup_rates: vec![0.0, 0.06],
        },
        delta: Grid {
            lrs: vec![1e-4, 5e-4, 1e-3],
            batch_sizes: batch_sizes.to_vec(),
            warmup_rates: vec![0.06],
        },
        model_tuning: Grid {
            lrs: vec![1e-5, 2e-5],
            batch_sizes: batch_sizes.to_vec(),
            warmup_rates: vec![0.06],
        },
    }
}

fn base(id: &str, title: &str, study: Study) -> PaperSetting {
    PaperSetting {
        id: id.into(),
        title: title.into(),
        study,
        backbones: s(&["roberta-large"]),
        paper_layers: 24,
        tasks: TEN_TASKS.to_vec(),
        methods: crate::catalog::PAPER_ROWS.iter().map(|m| m.to_string()).collect(),
        fewshot_k: Some(100),
        k_dev: 1000,
        seeds: vec![100, 13, 21, 42],
        grids: encoder_grids(&[8, 16, 32]),
        steps: Some(1000),
        epochs: None,
        max_len: 512,
        truncate: false,
        eval_every: 100,
        eval_batch_size: 32,
        grad_accum: 1,
        values: vec![],
        bench_shape: None,
        notes: vec![
            "baseline learning-rate grids are not published: {1e-4, 5e-4, 1e-3} for Adapter, AdapterDrop, BitFit, LoRA and {1e-5, 2e-5} for model tuning [I]".into(),
            "best configurations per task and seed are not released; selection is on dev per task, method and seed [I]".into(),
        ],
        scaled: false,
    }
}

/// Table 1: full data, RoBERTa-large, the ten tasks, every method.
pub fn table1() -> PaperSetting {
    let mut p = base(
        "table1",
        "Full-data results on RoBERTa-large (GLUE: dev; other tasks: test)",
        Study::Accuracy,
    );
    p.fewshot_k = None;
    p.seeds = vec![42];
    p.grids = encoder_grids(&[16, 32]);
    p.steps = None;
    p.epochs = Some(10);
    p.eval_every = 500;
    p.notes.push("full data: 10 epochs, evaluation every epoch in the paper; here every 500 steps [I]; one seed (42) as the authors' scripts [I]".into());
    p
}

/// Table 2: few-shot (100 training examples), RoBERTa-large, every method, 4 splits.
pub fn table2() -> PaperSetting {
    let mut p = base(
        "table2",
        "Few-shot results (100 training examples) on RoBERTa-large, mean ± std over 4 splits",
        Study::Accuracy,
    );
    p.notes.push("which 4 of the seeds 100, 13, 21, 42, 87 the paper used is [U]".into());
    p
}

/// Table 3: GPT2-large (few-shot), the methods that apply to a decoder.
pub fn table3() -> PaperSetting {
    let mut p =
        base("table3", "Few-shot results (100 training examples) on GPT2-large", Study::Accuracy);
    p.backbones = s(&["gpt2-large"]);
    p.paper_layers = 36;
    p.tasks = vec![
        TaskName::Sst2,
        TaskName::Subj,
        TaskName::Trec,
        TaskName::Mrpc,
        TaskName::Qnli,
        TaskName::Rte,
    ];
    p.methods =
        s(&["mt", "adapter", "adapter_drop", "bitfit", "lora", "pt", "ptv2", "wo_pg", "npg"]);
    p.grids = encoder_grids(&[4]);
    p.grids.model_tuning = Grid::single(2e-5, 4, 0.06);
    p.grad_accum = 4;
    p.max_len = 256;
    p.truncate = true;
    p.eval_batch_size = 8;
    p.notes.push("tasks: those the authors' GPT-2 code has processors for among the paper's ten [I]; batch 4 × accumulation 4 (search_gpt2.py) [I]".into());
    p
}

/// Table 4: the prompt generators against prompt tuning on DeBERTa-large (full data).
pub fn table4() -> PaperSetting {
    let mut p = base(
        "table4",
        "Prompt generators on DeBERTa-large (full data): PT, LPT w/o PG, MPPG, APPG, NPG",
        Study::Accuracy,
    );
    p.backbones = s(&["microsoft/deberta-large"]);
    p.methods = s(&["pt", "wo_pg", "mppg", "appg", "npg"]);
    p.tasks = vec![TaskName::Sst2, TaskName::Mrpc, TaskName::Qnli, TaskName::Rte];
    p.fewshot_k = None;
    p.seeds = vec![42];
    p.grids = encoder_grids(&[16, 32]);
    p.steps = None;
    p.epochs = Some(10);
    p.max_len = 256;
    p.eval_every = 500;
    p.notes.push("task columns [I]; the authors' DeBERTa logs cover RTE (NPG 82.7, APPG 82.0, MPPG 79.4, w/o PG 73.3, PT 64.3 against the paper's 84.4 / 82.6 / 81.1 / 75.1 / 64.6)".into());
    p
}

/// Table 5: tuned parameters, training speed and memory of every method on RoBERTa-large
/// and GPT2-large, inputs of 256 tokens.
pub fn table5() -> PaperSetting {
    let mut p = base(
        "table5",
        "Efficiency: trainable parameters, training speed (tokens/ms) and memory, length 256",
        Study::Efficiency,
    );
    p.backbones = s(&["roberta-large", "gpt2-large"]);
    p.tasks = vec![TaskName::Rte];
    p.bench_shape = Some((16, 256));
    p.notes.push(
        "batch: the largest with which model tuning fits a 24 GB RTX 3090, not stated [U]; 16 here"
            .into(),
    );
    p.notes.push("speed = (batch × 256) / median step time, memory = peak (RSS on CPU, allocator on CUDA) [I]".into());
    p
}

/// Table 10: LPT NPG at prompt layers 7, 13 and 19: accuracy, speed and memory.
pub fn table10() -> PaperSetting {
    let mut p = base(
        "table10",
        "LPT NPG at prompt layers 7, 13, 19 on RoBERTa-large: performance against cost",
        Study::PromptLayerTradeoff,
    );
    p.methods = s(&["npg"]);
    p.values = vec![7, 13, 19];
    p.bench_shape = Some((16, 256));
    p
}

/// Figure 2: prompt tuning with the prompt inserted at different layers (left) and the
/// convergence at some of them (middle).
pub fn fig2() -> PaperSetting {
    let mut p = base(
        "fig2",
        "Prompt tuning with the prompt inserted at layer PL: performance and convergence",
        Study::Curve(Axis::PromptLayer),
    );
    p.methods = s(&["wo_pg"]);
    p.tasks = vec![TaskName::Sst2, TaskName::Rte];
    p.values = vec![1, 4, 7, 10, 13, 16, 19, 22, 24];
    p.grids.prompt.warmup_rates = vec![0.06];
    p.notes.push("the prompt layers and tasks of the pilot panels [I]".into());
    p
}

/// Figure 4: LPT (NPG and w/o PG) across prompt layers.
pub fn fig4() -> PaperSetting {
    let mut p =
        base("fig4", "LPT NPG and LPT w/o PG by prompt layer", Study::Curve(Axis::PromptLayer));
    p.methods = s(&["wo_pg", "npg"]);
    p.tasks = vec![TaskName::Sst2, TaskName::Rte];
    p.values = vec![1, 4, 7, 10, 13, 16, 19, 22, 24];
    p.grids.prompt.warmup_rates = vec![0.06];
    p.notes.push("the tasks and layers drawn [I]".into());
    p
}

/// Figure 5: the prompt length of LPT w/o PG and LPT NPG at the middle layer.
pub fn fig5() -> PaperSetting {
    let mut p = base(
        "fig5",
        "Prompt length: LPT w/o PG and LPT NPG at PL 13",
        Study::Curve(Axis::PromptLength),
    );
    p.methods = s(&["wo_pg", "npg"]);
    p.tasks = vec![TaskName::Sst2, TaskName::Rte];
    p.values = vec![1, 5, 10, 20, 50];
    p.grids.prompt.warmup_rates = vec![0.06];
    p.notes.push("the lengths and tasks drawn [I]".into());
    p
}

/// Every item by id.
pub fn by_id(id: &str) -> Option<PaperSetting> {
    Some(match id {
        "table1" => table1(),
        "table2" => table2(),
        "table3" => table3(),
        "table4" => table4(),
        "table5" => table5(),
        "table10" => table10(),
        "fig2" => fig2(),
        "fig4" => fig4(),
        "fig5" => fig5(),
        _ => return None,
    })
}

/// The ids of [`by_id`].
pub const IDS: [&str; 9] =
    ["table1", "table2", "table3", "table4", "table5", "table10", "fig2", "fig4", "fig5"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_map_to_the_same_relative_depth() {
        assert_eq!(scale_layer(13, 24, 24), 13);
        assert_eq!(scale_layer(13, 24, 6), 4);
        assert_eq!(scale_layer(1, 24, 6), 1);
        assert_eq!(scale_layer(24, 24, 6), 6);
        assert_eq!(scale_layer(19, 36, 24), 13);
    }

    #[test]
    fn every_id_has_a_setting_with_its_id() {
        for id in IDS {
            assert_eq!(by_id(id).map(|p| p.id), Some(id.to_string()));
        }
        assert!(by_id("table9").is_none());
    }
}
