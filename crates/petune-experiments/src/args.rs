//! The command line shared by the paper examples (`examples/table*.rs`, `fig*.rs`):
//! the model and data folders for the paper's setting, or `--scaled` for the
//! scaled-down run on the assets of `scripts/setup.sh`, and overrides for seeds, steps,
//! methods and tasks.

use std::path::{Path, PathBuf};

use clap::Parser;
use petune_train::data::TaskName;

use crate::error::{ExperimentError, Result};
use crate::paper::PaperSetting;
use crate::reproduce::{DataRoot, Target};
use crate::runner::Runner;

/// Arguments of a paper example.
#[derive(Parser, Debug)]
pub struct PaperArgs {
    /// Hugging Face model folder (the paper's backbone, e.g. roberta-large).
    #[arg(long, required_unless_present = "scaled")]
    pub model: Option<PathBuf>,
    /// Data folder with one sub-folder per task in its public layout (GLUE TSV: SST-2,
    /// MNLI, MRPC, QNLI, QQP, RTE; LM-BFF: mpqa, mr, subj, trec).
    #[arg(long, required_unless_present = "scaled")]
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
    let (setting, target) = args.resolve(paper, assets)?;
    if args.show_setting {
        println!("{}", serde_json::to_string_pretty(&setting)?);
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
