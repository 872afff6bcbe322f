//! petune-baselines: every baseline of the LPT paper (Liu et al., Findings of EMNLP 2022,
//! Table 1; lpt-reference.md §7) as a [`petune_core::Delta`] that touches the backbone
//! only through its typed sites, so each runs on every backbone with the common trainer.
//!
//! | method | module | site |
//! |---|---|---|
//! | prompt tuning (LPT code or PEFT convention) | [`prompt_tuning`] | `before_layer(0)` / `input_embeds` |
//! | P-tuning v2 | [`ptuning_v2`] | `attn_prefix` |
//! | Adapter, AdapterDrop | [`adapter`] | `sublayer_out` |
//! | BitFit | [`bitfit`] | `linear`, `norm` |
//! | LoRA | [`lora`] | `linear` (+ merge into the weights) |
//! | S-IDPG-PHM | [`sidpg`] ([`phm`]) | a frozen first pass, then `input_embeds` |
//!
//! Model tuning has no delta (the trainer unfreezes the backbone). [`peft`] reads and
//! writes PEFT's `adapter_config.json` + `adapter_model.safetensors` for LoRA and prompt
//! tuning.

pub mod activation;
pub mod adapter;
pub mod bitfit;
pub mod lora;
pub mod peft;
pub mod phm;
pub mod prompt_tuning;
pub mod ptuning_v2;
pub mod sidpg;

pub use adapter::{AdapterConfig, AdapterDelta, AdapterDropConfig, DropSchedule};
pub use bitfit::{BitFitConfig, BitFitDelta};
pub use lora::{LoraConfig, LoraDelta};
pub use prompt_tuning::{PromptPosition, PromptTuningConfig, PromptTuningDelta};
pub use ptuning_v2::{PTuningV2Config, PTuningV2Delta};
pub use sidpg::{SidpgConfig, SidpgDelta};
