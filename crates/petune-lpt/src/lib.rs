//! petune-lpt: Late Prompt Tuning (Liu, Sun, Huang, Qiu, *Late Prompt Tuning: A Late
//! Prompt Could Be Better Than Many Prompts*, Findings of EMNLP 2022; code
//! github.com/xyltt/LPT).
//!
//! A prompt is generated from the hidden states at one middle layer (the prompt layer)
//! and prepended there; only the generator (plus a head) is trained, and no gradient
//! flows below the prompt layer. Variants: LPT w/o PG (static prompt), NPG, APPG, MPPG.
//! Prompt tuning as the authors run it is a static prompt at prompt layer 1.

pub mod config;
pub mod delta;
pub mod generator;

pub use config::{GeneratorConfig, LinearInit, LptConfig, PoolKind, PromptInit};
pub use delta::LptDelta;
pub use generator::{prompt_var, PromptGenerator};
