//! petune-train: the trainer every petune method shares (`LptTrainer::new(model,
//! cfg).fit()`), with its tasks and data loaders, the LPT authors' few-shot protocol,
//! the paper's metrics, heads, HF-faithful AdamW and schedule, checkpoints and resume.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod features;
pub mod head;
pub mod memory;
pub mod method;
pub mod model;
pub mod optim;
pub mod precision;
pub mod prefix_cache;
pub mod probe;
pub mod progress;
pub mod trained;
pub mod trainer;

pub use config::{DataSource, FewShotConfig, RunConfig, TaskConfig, TaskData, TrainConfig};
pub use head::{Head, HeadConfig, HeadToken, VerbalizerLoss};
pub use method::{MethodConfig, METHOD_NAMES};
pub use precision::{LossScaler, Precision};
pub use trained::{head_params, resolve_head, DeltaManifest, Prediction, TrainedModel};
pub use trainer::{FitResult, LoadedModel, LptTrainer, TrainReport, Trainer};
