//! Pieces every backbone shares: strict weight loading, linear/LayerNorm modules that
//! fire site hooks, activations, and attention over a state's padding mask.

pub mod attention;
pub mod layers;
pub mod weights;
