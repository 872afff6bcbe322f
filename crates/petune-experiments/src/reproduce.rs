//! Running a paper item ([`PaperSetting`]) on a model and data: the grid search per task,
//! method and seed, the efficiency benchmark, the prompt-layer trade-off and the curves;
//! each writes a table in the paper's layout (`<id>.md`), a JSON file with every run
//! (`<id>.json`) and, for curves, CSVs and PNG/SVG plots.
//!
//! A scaled-down form ([`PaperSetting::scaled`]) runs every item on a small model and
//! one task in minutes, so that each is known to work end to end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use petune_backbones::model_spec;
use petune_core::BackboneSpec;
use petune_train::bench::{BenchConfig, BenchReport};
use petune_train::data::TaskName;
use petune_train::{
    DataSource, FewShotConfig, HeadConfig, MethodConfig, RunConfig, TaskConfig, TrainConfig,
    TrainReport,
};
use serde::{Deserialize, Serialize};

use crate::bench_suite::{added_mib, bench_table, run_bench_jobs, BenchJob};
use crate::catalog::{at_prompt_layer, paper_method, scaled_lr};
use crate::error::{ExperimentError, Result};
use crate::grid::{grid_configs, search, Grid, GridPoint, GridRun};
use crate::paper::{scale_layer, PaperSetting, Study};
use crate::runner::Runner;
use crate::slurm::{id_part, EmitJob, ManifestPoint, Study as SlurmStudy};
use crate::sweep::{plan_points, run_sweep, write_sweep_outputs, Axis, SweepPlan, SweepPoint};
use crate::tables::{
    accuracy_table, curve_table, efficiency_table, paper_task_name, tradeoff_table,
};

/// Where the data of a run comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataRoot {
    /// A folder with one sub-folder per task in its public layout (`SST-2`, `MNLI`, `mr`,
    /// ...; `TaskName::data_dir_name`).
    TaskDirs(PathBuf),
    /// The MR snippets file (MR only).
    MrSnippets(PathBuf),
}

/// Where and how to run an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Hugging Face model folder.
    pub model: PathBuf,
    /// Data.
    pub data: DataRoot,
    /// Output folder.
    pub out: PathBuf,
    /// libtorch threads per run (0 = its default).
    pub threads: usize,
    /// `cpu`, `cuda` or `auto`.
    pub device: String,
}

impl PaperSetting {
    /// The scaled-down form run here: MR only (the paper's few-shot protocol, 100
    /// examples, 200 dev), seeds 13 and 42, 40 steps, inputs up to 128 tokens, batch 16
    /// and one learning rate per method ([`scaled_lr`]), benchmarks at 16 × 128. Full-data
    /// items train one epoch on 1,000 MR examples with seed 42; curves over several
    /// methods keep the prompt layers 7, 13, 19 (of 24); prompt lengths are 1, 5, 20.
    /// Prompt layers are mapped to the model's depth when the item runs.
    pub fn scaled(&self) -> PaperSetting {
        let mut p = self.clone();
        p.tasks = vec![TaskName::Mr];
        p.k_dev = 200;
        p.max_len = 128;
        p.eval_batch_size = 64;
        p.grad_accum = 1;
        p.scaled = true;
        if self.fewshot_k.is_some() {
            p.fewshot_k = Some(100);
            p.seeds = vec![13, 42];
            p.steps = Some(40);
            p.epochs = None;
            p.eval_every = 20;
        } else {
            p.fewshot_k = Some(1000);
            p.seeds = vec![42];
            p.steps = None;
            p.epochs = Some(1);
            p.eval_every = 30;
        }
        match self.study {
            Study::Curve(Axis::PromptLength) => p.values = vec![1, 5, 20],
            Study::Curve(Axis::PromptLayer) if self.methods.len() > 1 => p.values = vec![7, 13, 19],
            _ => {}
        }
        if let Some((b, _)) = p.bench_shape {
            p.bench_shape = Some((b, 128));
        }
        p.notes.push(format!(
            "scaled down: MR only, {}, max 128 tokens, batch 16, one learning rate per method",
            match p.fewshot_k {
                Some(1000) =>
                    "1,000 training examples for one epoch as the full-data stand-in, seed 42"
                        .to_string(),
                _ => "100-shot, 200 dev, seeds 13 and 42, 40 steps".to_string(),
            }
        ));
        p
    }

    /// The grid of `method`'s family (scaled down: its one learning rate, batch 16).
    pub fn grid_for(&self, method: &MethodConfig) -> Grid {
        if self.scaled {
            return Grid::single(scaled_lr(method), 16, 0.06);
        }
        match method {
            MethodConfig::ModelTuning => self.grids.model_tuning.clone(),
            MethodConfig::Adapter(_)
            | MethodConfig::AdapterDrop(_)
            | MethodConfig::BitFit(_)
            | MethodConfig::Lora(_) => self.grids.delta.clone(),
            _ => self.grids.prompt.clone(),
        }
    }

    /// The item's prompt layers on a backbone `n_layers` deep (deduplicated).
    pub fn layers_for(&self, n_layers: usize) -> Vec<usize> {
        let mut v: Vec<usize> =
            self.values.iter().map(|&pl| scale_layer(pl, self.paper_layers, n_layers)).collect();
        v.dedup();
        v
    }

    /// The run config of `method` on `task` with `seed` (grid values filled in later).
    pub fn run_config(
        &self,
        target: &Target,
        task: TaskName,
        method: &MethodConfig,
        seed: u32,
    ) -> RunConfig {
        let data = match &target.data {
            DataRoot::MrSnippets(path) => DataSource::MrSnippets { path: path.clone() },
            DataRoot::TaskDirs(dir) => DataSource::TaskDir { dir: dir.join(task.data_dir_name()) },
        };
        // `Auto`: the checkpoint's MLM / LM head with the label words when it has one,
        // else a linear head at the template's mask; model tuning a linear head on the
        // first token without a template (paper §4.1).
        let head = HeadConfig::Auto;
        RunConfig {
            model: target.model.clone(),
            task: TaskConfig {
                kind: task.into(),
                data,
                fewshot: self.fewshot_k.map(|k| FewShotConfig { k, seed, k_dev: self.k_dev }),
                template_style: Default::default(),
            },
            method: method.clone(),
            head,
            train: TrainConfig {
                max_steps: self.steps.unwrap_or(1000),
                epochs: self.epochs,
                eval_every: self.eval_every,
                eval_batch_size: self.eval_batch_size,
                grad_accum: self.grad_accum,
                max_len: self.max_len,
                truncate: self.truncate,
                seed: if self.fewshot_k.is_some() { 42 } else { seed as u64 },
                threads: target.threads,
                device: target.device.clone(),
                ..TrainConfig::default()
            },
            out_dir: None,
        }
    }
}

/// One selected run of an accuracy table.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Task.
    pub task: TaskName,
    /// Method label.
    pub method: String,
    /// Seed.
    pub seed: u32,
    /// The chosen grid point.
    pub chosen: GridPoint,
    /// Every grid point tried.
    pub tried: Vec<GridRun>,
    /// The chosen run's report.
    pub report: TrainReport,
}

fn spec_of(target: &Target) -> Result<BackboneSpec> {
    Ok(model_spec(&target.model)?)
}

fn methods_of(setting: &PaperSetting, spec: &BackboneSpec) -> Result<Vec<MethodConfig>> {
    setting.methods.iter().map(|m| paper_method(m, spec)).collect()
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| ExperimentError::io(path, e))
}

fn tag(s: &str) -> String {
    s.replace([' ', '(', ')', '/', '=', ','], "")
}

/// Trains every task × method × seed with a grid search; returns the selected runs.
pub fn accuracy_cells(
    runner: &Runner,
    setting: &PaperSetting,
    target: &Target,
    methods: &[MethodConfig],
) -> Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for &task in &setting.tasks {
        for method in methods {
            for &seed in &setting.seeds {
                let cfg = setting.run_config(target, task, method, seed);
                let dir = target
                    .out
                    .join("runs")
                    .join(task.data_dir_name())
                    .join(tag(&method.label()))
                    .join(format!("seed{seed}"));
                eprint!("  {:<6} {:<26} seed {:>3} ... ", task.to_string(), method.label(), seed);
                let sel = search(runner, &cfg, &setting.grid_for(method), &dir)?;
                eprintln!(
                    "dev {:.4} test {:.4} (lr {:e}, batch {}, warm-up {})",
                    sel.outcome.best_dev(),
                    sel.outcome.test(),
                    sel.best.lr,
                    sel.best.batch_size,
                    sel.best.warmup_rate
                );
                cells.push(Cell {
                    task,
                    method: method.label(),
                    seed,
                    chosen: sel.best,
                    tried: sel.tried,
                    report: sel.outcome.report,
                });
            }
        }
    }
    Ok(cells)
}

#[derive(Serialize)]
struct AccuracyFile<'a> {
    setting: &'a PaperSetting,
    target: &'a Target,
    table: &'a str,
    runs: &'a [Cell],
}

#[derive(Serialize)]
struct EfficiencyFile<'a> {
    setting: &'a PaperSetting,
    target: &'a Target,
    table: &'a str,
    matmul_gflops: f64,
    reports: &'a [BenchReport],
}

fn bench_all(
    runner: &Runner,
    setting: &PaperSetting,
    target: &Target,
    methods: &[MethodConfig],
) -> Result<(Vec<BenchReport>, f64)> {
    let spec = spec_of(target)?;
    let (batch, seq) = setting.bench_shape.unwrap_or((16, 128));
    let config = BenchConfig { batch, seq, steps: 20, warmup: 3, ..BenchConfig::default() };
    let jobs: Vec<BenchJob> = methods
        .iter()
        .map(|method| BenchJob {
            model: target.model.clone(),
            method: method.clone(),
            config: config.clone(),
            threads: target.threads,
            device: target.device.clone(),
            quantized_base: false,
            base_dtype: Default::default(),
        })
        .collect();
    run_bench_jobs(runner, &jobs, &spec, |job, r| {
        eprintln!(
            "  bench {:<28} {:.2} tokens/ms, {:.0} MiB added",
            job.method.label(),
            r.tokens_per_ms,
            added_mib(r)
        )
    })
}

fn header(setting: &PaperSetting, target: &Target, backbone: &str) -> String {
    let mut s = format!(
        "# {} — {}\n\nPaper backbone(s): {}. Run on: {} ({}).\n\n",
        setting.id,
        setting.title,
        setting.backbones.join(", "),
        target.model.display(),
        backbone
    );
    for n in &setting.notes {
        s += &format!("- {n}\n");
    }
    s + "\n"
}

/// `setting` as it runs on `spec`: a model with fewer positions than the setting's
/// length cuts inputs to them (when the setting truncates).
fn fitted(setting: &PaperSetting, spec: &BackboneSpec) -> PaperSetting {
    let mut fitted = setting.clone();
    if (spec.max_positions as usize) < setting.max_len && setting.truncate {
        fitted.max_len = spec.max_positions as usize;
    }
    fitted
}

/// Writes an accuracy item's table in the paper's layout (`<out>/<id>.md`, rows in the
/// order of `rows`) and its runs (`<out>/<id>.json`); returns the markdown. Shared by a
/// local run and by collecting a job array.
pub fn accuracy_report(
    setting: &PaperSetting,
    target: &Target,
    backbone: &str,
    cells: &[Cell],
    rows: &[String],
) -> Result<String> {
    std::fs::create_dir_all(&target.out).map_err(|e| ExperimentError::io(&target.out, e))?;
    let table = accuracy_table(setting, cells, rows);
    let md = header(setting, target, backbone) + &table;
    let file = AccuracyFile { setting, target, table: &table, runs: cells };
    write(&target.out.join(format!("{}.json", setting.id)), &serde_json::to_string_pretty(&file)?)?;
    write(&target.out.join(format!("{}.md", setting.id)), &md)?;
    Ok(md)
}

/// Writes a curve item's outputs: per task `<out>/<task>/sweep.csv` and plots, the table
/// per task in `<out>/<id>.md`, every run in `<out>/<id>.json`; returns the markdown.
/// Shared by a local run and by collecting a job array.
pub fn curve_report(
    setting: &PaperSetting,
    target: &Target,
    backbone: &str,
    axis: Axis,
    values: &[usize],
    per_task: &[(TaskName, Vec<SweepPoint>)],
) -> Result<String> {
    let mut md = header(setting, target, backbone);
    let mut all = BTreeMap::new();
    for (task, points) in per_task {
        let dir = target.out.join(task.data_dir_name());
        std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
        let plots = write_sweep_outputs(&dir, axis, points)?;
        md += &format!("## {}\n\n{}\n", paper_task_name(*task), curve_table(axis, values, points));
        md += &format!(
            "Plots: {}\n\n",
            plots
                .iter()
                .map(|p| format!("{}/{p}.png", task.data_dir_name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        all.insert(task.to_string(), points.iter().map(point_json).collect::<Vec<_>>());
    }
    let file = serde_json::json!({"setting": setting, "target": target, "runs": all});
    write(&target.out.join(format!("{}.json", setting.id)), &serde_json::to_string_pretty(&file)?)?;
    write(&target.out.join(format!("{}.md", setting.id)), &md)?;
    Ok(md)
}

/// The axis values of a curve item on `spec` (prompt layers mapped to its depth).
fn curve_values(setting: &PaperSetting, axis: Axis, spec: &BackboneSpec) -> Vec<usize> {
    match axis {
        Axis::PromptLayer => setting.layers_for(spec.n_layers),
        Axis::PromptLength => setting.values.clone(),
    }
}

/// The sweep plan of a curve item on one task.
fn curve_plan(
    setting: &PaperSetting,
    target: &Target,
    task: TaskName,
    methods: &[MethodConfig],
    axis: Axis,
    values: &[usize],
) -> SweepPlan {
    SweepPlan {
        base: setting.run_config(target, task, &methods[0], setting.seeds[0]),
        methods: methods.iter().map(|m| (m.clone(), setting.grid_for(m))).collect(),
        axis,
        values: values.to_vec(),
        seeds: setting.seeds.iter().map(|&s| s as u64).collect(),
    }
}

/// Runs `setting` on `target` and writes `<out>/<id>.md` and `<out>/<id>.json`; returns
/// the markdown.
pub fn reproduce(runner: &Runner, setting: &PaperSetting, target: &Target) -> Result<String> {
    std::fs::create_dir_all(&target.out).map_err(|e| ExperimentError::io(&target.out, e))?;
    let spec = spec_of(target)?;
    let setting = &fitted(setting, &spec);
    let methods = methods_of(setting, &spec)?;
    let backbone = spec.describe();
    let md_path = target.out.join(format!("{}.md", setting.id));
    let json_path = target.out.join(format!("{}.json", setting.id));
    let mut md = header(setting, target, &backbone);
    match setting.study {
        Study::Accuracy => {
            let cells = accuracy_cells(runner, setting, target, &methods)?;
            let rows: Vec<String> = methods.iter().map(MethodConfig::label).collect();
            return accuracy_report(setting, target, &backbone, &cells, &rows);
        }
        Study::Efficiency => {
            let (reports, peak) = bench_all(runner, setting, target, &methods)?;
            let table = efficiency_table(&reports);
            md += &table;
            md += &format!("\nDetail (matmul rate {peak:.1} GFLOP/s):\n\n");
            md += &bench_table(&reports, peak);
            let file = EfficiencyFile {
                setting,
                target,
                table: &table,
                matmul_gflops: peak,
                reports: &reports,
            };
            write(&json_path, &serde_json::to_string_pretty(&file)?)?;
        }
        Study::PromptLayerTradeoff => {
            let layers = setting.layers_for(spec.n_layers);
            let at_layers: Vec<MethodConfig> = methods
                .iter()
                .flat_map(|m| layers.iter().map(move |&pl| at_prompt_layer(m, pl)))
                .collect();
            let cells = accuracy_cells(runner, setting, target, &at_layers)?;
            let (reports, _) = bench_all(runner, setting, target, &at_layers)?;
            let table = tradeoff_table(setting, &cells, &reports, &at_layers);
            md += &table;
            let file = AccuracyFile { setting, target, table: &table, runs: &cells };
            write(&json_path, &serde_json::to_string_pretty(&file)?)?;
        }
        Study::Curve(axis) => {
            if methods.is_empty() || setting.seeds.is_empty() {
                return Err(ExperimentError::invalid("a curve needs a method and a seed"));
            }
            let values = curve_values(setting, axis, &spec);
            let mut per_task = Vec::new();
            for &task in &setting.tasks {
                let plan = curve_plan(setting, target, task, &methods, axis, &values);
                let dir = target.out.join(task.data_dir_name());
                per_task.push((task, run_sweep(runner, &plan, &dir)?));
            }
            return curve_report(setting, target, &backbone, axis, &values, &per_task);
        }
    }
    write(&md_path, &md)?;
    Ok(md)
}

fn point_json(p: &SweepPoint) -> serde_json::Value {
    serde_json::json!({
        "method": p.method, "x": p.x, "seed": p.seed,
        "report": p.outcome.report, "losses": p.outcome.losses,
    })
}

/// One job per grid point of `point`'s grid search, ids `<prefix>-<grid point>`.
fn grid_jobs(
    jobs: &mut Vec<EmitJob>,
    prefix: &str,
    point: ManifestPoint,
    cfg: &RunConfig,
    grid: &Grid,
) {
    for (gp, cfg) in grid_configs(cfg, grid) {
        let id = format!("{prefix}-{}", gp.tag());
        jobs.push(EmitJob { point: ManifestPoint { id, grid: gp, ..point.clone() }, cfg });
    }
}

/// `setting` on `target` as job-array points (`slurm::emit`), one per task × method ×
/// seed × grid point, ids `<task>-<method>-seed<s>-<grid point>` (curves:
/// `<task>-<method>-<axis><x>-seed<s>-<grid point>`), with what collecting needs to
/// write the same tables as [`reproduce`]. Accuracy tables and curves only: the
/// efficiency items measure speed and memory, which belong on one machine.
pub fn paper_jobs(setting: &PaperSetting, target: &Target) -> Result<(SlurmStudy, Vec<EmitJob>)> {
    let spec = spec_of(target)?;
    let setting = fitted(setting, &spec);
    let methods = methods_of(&setting, &spec)?;
    let mut jobs = Vec::new();
    let (rows, values) = match setting.study {
        Study::Accuracy => {
            for &task in &setting.tasks {
                for method in &methods {
                    for &seed in &setting.seeds {
                        let cfg = setting.run_config(target, task, method, seed);
                        let label = method.label();
                        let prefix = format!(
                            "{}-{}-seed{seed}",
                            id_part(task.data_dir_name()),
                            id_part(&label)
                        );
                        let point = ManifestPoint {
                            id: String::new(),
                            task: Some(task),
                            method: label,
                            x: None,
                            seed: seed.into(),
                            grid: GridPoint { lr: 0.0, batch_size: 0, warmup_rate: 0.0 },
                        };
                        grid_jobs(&mut jobs, &prefix, point, &cfg, &setting.grid_for(method));
                    }
                }
            }
            (methods.iter().map(MethodConfig::label).collect(), Vec::new())
        }
        Study::Curve(axis) => {
            if methods.is_empty() || setting.seeds.is_empty() {
                return Err(ExperimentError::invalid("a curve needs a method and a seed"));
            }
            let values = curve_values(&setting, axis, &spec);
            for &task in &setting.tasks {
                let plan = curve_plan(&setting, target, task, &methods, axis, &values);
                for p in plan_points(&plan)? {
                    let prefix = format!("{}-{}", id_part(task.data_dir_name()), id_part(&p.tag));
                    let point = ManifestPoint {
                        id: String::new(),
                        task: Some(task),
                        method: p.method.clone(),
                        x: p.x,
                        seed: p.seed,
                        grid: GridPoint { lr: 0.0, batch_size: 0, warmup_rate: 0.0 },
                    };
                    grid_jobs(&mut jobs, &prefix, point, &p.cfg, &p.grid);
                }
            }
            (Vec::new(), values)
        }
        Study::Efficiency | Study::PromptLayerTradeoff => {
            return Err(ExperimentError::invalid(format!(
                "{} measures training speed and memory: run it on one machine, not as a job array",
                setting.id
            )));
        }
    };
    let study = SlurmStudy::Paper {
        setting: Box::new(setting),
        target: target.clone(),
        backbone: spec.describe(),
        rows,
        values,
    };
    Ok((study, jobs))
}
