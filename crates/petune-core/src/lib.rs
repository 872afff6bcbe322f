//! petune-core: the contract every petune backbone and method is written against.
//!
//! No model code and no method code lives here (design.md §2): only the backbone spec
//! and typed site vocabulary, the hooks a backbone fires, the sequence state that
//! carries hidden states, padding mask and prepended-token count through the layer
//! stack, the delta and backbone traits, tensor file I/O, and the one error type.

pub mod backbone;
pub mod delta;
pub mod device;
pub mod dropout;
pub mod error;
pub mod fsio;
pub mod hooks;
pub mod input;
pub mod kv_cache;
pub mod mixed;
pub mod pool;
pub mod recording;
pub mod site;
pub mod spec;
pub mod state;
pub mod tensor_io;

pub use backbone::{all_hidden_states, Backbone};
pub use delta::{BindCtx, Delta};
pub use device::{cuda_backend_load_result, is_device_name, load_cuda_backend, parse_device};
pub use error::{Error, KindMismatch, Result, ShapeMismatch, WeightReport};
pub use hooks::{Hooks, KvPrefix, NoHooks, Stack};
pub use input::BackboneInput;
pub use kv_cache::{KvCache, LayerKv};
pub use mixed::{bind_mixed, MixedHooks};
pub use recording::{RecordingHooks, SiteEvent};
pub use site::{
    HfModule, HfNames, LinearRole, LinearSite, LinearSiteInfo, NormKind, NormRole, NormSite,
    NormSiteInfo, SiteRef, Sublayer, SublayerSite,
};
pub use spec::{Arch, BackboneSpec, Capabilities};
pub use state::{ReadRows, SeqState};
