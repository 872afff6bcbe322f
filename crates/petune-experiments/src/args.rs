//! The command line shared by the paper examples (`examples/table*.rs`, `fig*.rs`):
//! the model and data folders for the paper's setting, or `--scaled` for the
//! scaled-down run on the assets of `scripts/setup.sh`, and overrides for seeds, steps,
//! methods and tasks; `--emit-slurm DIR` / `--collect DIR` run an item's grid as a Slurm
//! job array (`slurm`, `collect`), with the resources of [`SlurmArgs`] (shared with
//! `petune sweep`).

use std::path::{Path, PathBuf};

use clap::{Args, Parser};
use petune_train::data::TaskName;

use crate::collect::Collected;
use crate::error::{ExperimentError, Result};
use crate::paper::PaperSetting;
use crate::reproduce::{DataRoot, Target};
use crate::runner::Runner;
use crate::slurm::SlurmOptions;

/// The job array's resources (`--emit-slurm`), shared with the paper examples.
#[derive(Args, Debug, Clone)]
pub struct SlurmArgs {
    /// `#SBATCH --time` of each array task.
    #[arg(long, default_value = "04:00:00")]
    pub slurm_time: String,
    /// `#SBATCH --cpus-per-task` (also each run's libtorch threads).
    #[arg(long, default_value_t = 4)]
    pub slurm_cpus: usize,
    /// `#SBATCH --partition` (none: the cluster's default).
    #[arg(long)]
    pub slurm_partition: Option<String>,
    /// `#SBATCH --gpus` per array task (0: no GPU requested).
    #[arg(long, default_value_t = 0)]
    pub slurm_gpus: usize,
    /// `#SBATCH --job-name`.
    #[arg(long, default_value = "petune-sweep")]
    pub slurm_job_name: String,
    /// Further `#SBATCH` options, repeatable (`--slurm-extra=--mem=16G`).
    #[arg(long)]
    pub slurm_extra: Vec<String>,
    /// The `petune` binary the array tasks run (default: this one when it is `petune`,
    /// else the one built next to it; `PETUNE=...` at run time overrides it too).
    #[arg(long)]
    pub petune: Option<PathBuf>,
    /// Pass `--nproc N` to each `petune train`: N data-parallel ranks per point on the
    /// task's node, the task's CPUs shared among them (left out unless given).
    #[arg(long)]
    pub nproc: Option<usize>,
    /// Write into an emit folder that exists and is not empty.
    #[arg(long)]
    pub force: bool,
}

impl SlurmArgs {
    /// The options of `slurm::emit`.
    pub fn options(&self) -> Result<SlurmOptions> {
        let petune = match &self.petune {
            Some(p) => p.clone(),
            None => match Runner::detect() {
                Runner::Cli(p) => p,
                Runner::InProcess => {
                    return Err(ExperimentError::invalid(
                        "no petune binary next to this one: build it (cargo build --release --bin petune) or give --petune PATH",
                    ))
                }
            },
        };
        Ok(SlurmOptions {
            petune,
            job_name: self.slurm_job_name.clone(),
            time: self.slurm_time.clone(),
            cpus: self.slurm_cpus,
            partition: self.slurm_partition.clone(),
            gpus: self.slurm_gpus,
            extra: self.slurm_extra.clone(),
            nproc: self.nproc,
            force: self.force,
            collect_command: "petune sweep --collect".into(),
        })
    }
}

/// Prints what collecting found (the points not finished, on stderr) and wrote.
pub fn print_collected(c: &Collected, out: &Path) {
    eprintln!("{}", c.summary());
    let files: Vec<String> = c.written.iter().map(|f| format!("{}/{f}", out.display())).collect();
    println!("wrote {}", files.join(", "));
}

/// Prints where an emitted job array is and how to submit and collect it.
pub fn print_emitted(dir: &Path, n: usize, collect: &str) {
    let d = dir.display();
    println!("wrote {n} points to {d}/points and {d}/{}", crate::slurm::SCRIPT);
    println!("submit:  sbatch {d}/{}", crate::slurm::SCRIPT);
    println!("collect: {collect} {d}");
}

/// Arguments of a paper example.
#[derive(Parser, Debug)]
pub struct PaperArgs {
    /// Hugging Face model folder (the paper's backbone, e.g. roberta-large).
    #[arg(long, required_unless_present_any = ["scaled", "collect"])]
    pub model: Option<PathBuf>,
    /// Data folder with one sub-folder per task in its public layout (GLUE TSV: SST-2,
    /// MNLI, MRPC, QNLI, QQP, RTE; LM-BFF: mpqa, mr, subj, trec).
    #[arg(long, required_unless_present_any = ["scaled", "collect"])]
    pub data: Option<PathBuf>,
    /// The scaled-down run on the real assets here: all-MiniLM-L6-v2 and MR.
    #[arg(long)]
    pub scaled: bool,
    /// Output folder (default `results/<id>`, `results/<id>-scaled` with `--scaled`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seeds instead of the setting's.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u32>,
    /// Optimizer steps instead of the setting's.
    #[arg(long)]
    pub steps: Option<i64>,
    /// Methods (catalog short names) instead of the setting's.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Tasks instead of the setting's.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// libtorch threads per run (0 = its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// `cpu`, `cuda` or `auto`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print the setting as JSON and exit.
    #[arg(long)]
    pub show_setting: bool,
    /// Do not train: write the item's grid as a Slurm job array into this folder (one
    /// run config per task × method × seed × grid point, and `sweep.sbatch`).
    #[arg(long, conflicts_with = "collect")]
    pub emit_slurm: Option<PathBuf>,
    /// Do not train: write the item's table (into `--out`, default this folder) from the
    /// finished points of a job array emitted with `--emit-slurm`.
    #[arg(long)]
    pub collect: Option<PathBuf>,
    /// With `--collect`: build the table from the finished points even when some are not.
    #[arg(long, requires = "collect")]
    pub allow_missing: bool,
    /// The job array's resources.
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

impl PaperArgs {
    /// The setting to run (scaled and overridden) and where to run it; `assets` is the
    /// folder `scripts/setup.sh` fills (`.assets`), used by `--scaled`.
    pub fn resolve(&self, paper: PaperSetting, assets: &Path) -> Result<(PaperSetting, Target)> {
        let mut setting = if self.scaled { paper.scaled() } else { paper };
        if !self.seeds.is_empty() {
            setting.seeds = self.seeds.clone();
        }
        if let Some(steps) = self.steps {
            setting.steps = Some(steps);
            setting.epochs = None;
        }
        if !self.methods.is_empty() {
            setting.methods = self.methods.clone();
        }
        if !self.tasks.is_empty() {
            setting.tasks = self
                .tasks
                .iter()
                .map(|t| t.parse::<TaskName>())
                .collect::<petune_core::Result<_>>()?;
        }
        let (model, data) = if self.scaled {
            let model = assets.join("all-MiniLM-L6-v2");
            let mr = assets.join("mr/movieReviewSnippets_GroundTruth.txt");
            if !model.join("config.json").is_file() || !mr.is_file() {
                return Err(ExperimentError::invalid(format!(
                    "--scaled needs the real assets in {}: run scripts/setup.sh",
                    assets.display()
                )));
            }
            (self.model.clone().unwrap_or(model), DataRoot::MrSnippets(mr))
        } else {
            let (Some(model), Some(data)) = (&self.model, &self.data) else {
                return Err(ExperimentError::invalid("give --model and --data, or --scaled"));
            };
            (model.clone(), DataRoot::TaskDirs(data.clone()))
        };
        let suffix = if self.scaled { "-scaled" } else { "" };
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("results/{}{suffix}", setting.id)));
        let target =
            Target { model, data, out, threads: self.threads, device: self.device.clone() };
        Ok((setting, target))
    }
}

/// The whole of a paper example: parses the command line, resolves the setting (paper
/// scale or `--scaled`), runs it (child `petune train` processes when the CLI is built
/// next to the example) and prints the table; `assets` is the `.assets` folder.
pub fn run_example(paper: PaperSetting, assets: &Path) -> Result<()> {
    let args = PaperArgs::parse();
    if let Some(dir) = &args.collect {
        let c = crate::collect::collect(dir, args.out.as_deref(), args.allow_missing)?;
        print_collected(&c, args.out.as_deref().unwrap_or(dir));
        if let Some(md) = &c.markdown {
            println!("{md}");
        }
        return Ok(());
    }
    let (setting, target) = args.resolve(paper, assets)?;
    if args.show_setting {
        println!("{}", serde_json::to_string_pretty(&setting)?);
        return Ok(());
    }
    if let Some(dir) = &args.emit_slurm {
        let (study, jobs) = crate::reproduce::paper_jobs(&setting, &target)?;
        let n = jobs.len();
        let exe =
            std::env::current_exe().map_err(|e| ExperimentError::io("<this executable>", e))?;
        let collect = format!("{} --collect", exe.display());
        let opts = SlurmOptions { collect_command: collect.clone(), ..args.slurm.options()? };
        let dir = crate::slurm::emit(dir, study, jobs, &opts)?;
        print_emitted(&dir, n, &collect);
        return Ok(());
    }
    petune_train::memory::tune_allocator();
    let runner = Runner::detect();
    eprintln!(
        "{}: {} on {} ({}), writing {}",
        setting.id,
        setting.title,
        target.model.display(),
        match &runner {
            Runner::Cli(p) => format!("runs through {}", p.display()),
            Runner::InProcess => "runs in this process".into(),
        },
        target.out.display()
    );
    let md = crate::reproduce::reproduce(&runner, &setting, &target)?;
    println!("{md}");
    Ok(())
}
