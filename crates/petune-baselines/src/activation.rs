//! The bottleneck activations the baselines use, by their Hugging Face names
//! (`gelu`, `gelu_new` = tanh approximation, `relu`, `tanh`).

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// A bottleneck non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// Exact GELU.
    Gelu,
    /// GELU, tanh approximation (OpenDelta's adapter default).
    #[default]
    GeluNew,
    /// ReLU.
    Relu,
    /// tanh (P-tuning v2's reparameterisation MLP).
    Tanh,
}

impl Act {
    /// Applies the activation.
    pub fn forward(self, x: &Tensor) -> Tensor {
        match self {
            Act::Gelu => x.gelu("none"),
            Act::GeluNew => x.gelu("tanh"),
            Act::Relu => x.relu(),
            Act::Tanh => x.tanh(),
        }
    }
}
