//! Pieces every backbone shares: strict weight loading, config checks, linear and norm
//! modules that fire site hooks, activations, attention over a state's padding mask
//! (grouped-query, causal, sliding-window), rotary positions, the layer-loop protocol,
//! the post-attention half of a post-LN encoder layer, the encoders' MLM head, and the
//! `impl Backbone` boilerplate (range check, missing-head errors).

pub mod attention;
pub mod backbone;
pub mod cached;
pub mod config;
pub mod layer_loop;
pub mod layers;
pub mod mlm_head;
pub mod post_ln;
pub mod rotary;
pub mod weights;
