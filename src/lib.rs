//! # petune
//!
//! Parameter-efficient tuning on libtorch: Late Prompt Tuning (Liu et al., Findings of
//! EMNLP 2022) and the baselines of its paper, on Hugging Face backbones loaded from
//! local folders, in Rust.
//!
//! This facade re-exports the workspace crates:
//! - [`core`]: the contract (backbone spec, typed sites, hooks, sequence state,
//!   deltas, errors, tensor I/O);
//! - [`backbones`]: BERT / RoBERTa, DeBERTa (v1), GPT-2 and the Llama family, loaded
//!   strictly from `config.json` + `model.safetensors` (or a GGUF file), and tokenization
//!   from `tokenizer.json` (or `vocab.json` + `merges.txt`, or the GGUF metadata);
//! - [`lpt`]: Late Prompt Tuning (static prompt, NPG, APPG, MPPG);
//! - [`train`]: the common trainer (`Trainer::from_config(cfg)?.fit()`), tasks (the
//!   paper's and your own), data,
//!   few-shot protocol, metrics, heads, AdamW, checkpoints;
//! - [`experiments`]: the paper's methods by name and the settings of its tables and
//!   figures, grids, sweeps, plots and result tables.
//!
//! ```no_run
//! use petune::prelude::*;
//!
//! # fn main() -> petune::core::Result<()> {
//! let backbone = load_backbone("path/to/all-MiniLM-L6-v2", &LoadOptions::default())?;
//! let tok = TextTokenizer::from_model_dir("path/to/all-MiniLM-L6-v2", backbone.spec())?;
//! let opts = EncodeOptions { max_len: 128, truncate: false, padding_side: PaddingSide::Right };
//! let batch = tok.encode_batch(&[TextInput::single("a late prompt")], &opts, backbone.device())?;
//! let input = BackboneInput::new(batch.input_ids)?.with_attention_mask(batch.attention_mask)?;
//! let out = backbone.forward_t(&input, &NoHooks, false)?;
//! println!("{:?}", out.hidden.size()); // [1, T, 384]
//! # Ok(()) }
//! ```

pub use petune_backbones as backbones;
pub use petune_baselines as baselines;
pub use petune_core as core;
pub use petune_experiments as experiments;
pub use petune_ext as ext;
pub use petune_lpt as lpt;
pub use petune_train as train;

/// The names most programs need.
pub mod prelude {
    pub use petune_backbones::{
        load_backbone, model_spec, BaseDtype, BertBackbone, DebertaBackbone, EncodeOptions,
        Gpt2Backbone, LoadOptions, LoadedParts, ModelDir, ModelSource, PaddingSide, TextInput,
        TextTokenizer,
    };
    pub use petune_baselines::{
        AdapterConfig, AdapterDropConfig, BitFitConfig, DropSchedule, LoraConfig, PTuningV2Config,
        PromptPosition, PromptTuningConfig, SidpgConfig,
    };
    pub use petune_core::{
        all_hidden_states, Backbone, BackboneInput, BackboneSpec, Delta, Error, Hooks, LinearRole,
        LinearSite, NoHooks, Result, SeqState,
    };
    pub use petune_lpt::{GeneratorConfig, LptConfig, LptDelta, PoolKind, PromptInit};
    pub use petune_train::data::TaskName;
    pub use petune_train::{
        CustomTask, DataSource, FewShotConfig, HeadConfig, LoadedModel, LptTrainer, MethodConfig,
        RunConfig, TaskConfig, TrainConfig, TrainReport, TrainedModel, Trainer,
    };
}
