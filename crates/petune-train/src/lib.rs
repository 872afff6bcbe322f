//! petune-train: the trainer every petune method shares (`Trainer::from_config(cfg)?
//! .fit()`), with its tasks (the paper's and the user's own) and data loaders, the LPT
//! authors' few-shot protocol, the paper's metrics, heads, AdamW (PyTorch's fused kernel
//! or the authors' HF recurrence) and schedule, locked and fingerprinted output folders, checkpoints and resume.

pub mod bench;
pub mod causal_lm;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod data_parallel;
pub(crate) mod dp_run;
pub mod estimate;
pub mod features;
pub mod generate;
pub mod head;
pub mod memory;
pub mod method;
pub mod model;
pub mod optim;
pub mod precision;
pub mod prefix_cache;
pub mod probe;
pub mod progress;
pub mod quickstart;
pub(crate) mod run;
pub mod run_dir;
pub mod trained;
pub mod trainer;
pub mod zero_shot;

pub use config::{
    CustomTask, DataSource, FewShotConfig, NonFinitePolicy, RunConfig, TaskConfig, TaskData,
    TaskKind, TrainConfig,
};
pub use head::{Head, HeadConfig, HeadToken, VerbalizerLoss};
pub use method::{MethodConfig, METHOD_NAMES};
pub use optim::OptimizerKind;
pub use precision::{LossScaler, Precision};
pub use run_dir::{OutputLock, RunDir};
pub use trained::{
    head_params, resolve_head, resolve_head_for_words, DeltaManifest, Prediction, TrainedModel,
};
pub use trainer::{
    EventHandler, FitResult, LoadedModel, LptTrainer, TrainEvent, TrainReport, Trainer,
};
