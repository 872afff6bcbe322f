//! DeBERTa (v1) disentangled self-attention: content-to-content plus the relative
//! content-to-position (c2p) and position-to-content (p2c) terms.
//!
//! Port of `transformers/models/deberta/modeling_deberta.py::DisentangledSelfAttention`
//! (and `build_relative_position`, `compute_attention_span`) of transformers 5.24:
//!
//! * `in_proj` is one bias-free `[3H, H]` weight whose rows are interleaved per head
//!   (head `h`: q rows `3dh..3dh+d`, k rows `3dh+d..3dh+2d`, v rows `3dh+2d..3dh+3d`);
//!   `q_bias` and `v_bias` are added afterwards (no key bias). The fused output is
//!   sliced per role so the Query, Key and Value sites each see `x → y` (`[B, T, H]`,
//!   heads concatenated head-major), Query and Value with their bias included.
//! * Scale `s = sqrt(d · (1 + len(pos_att_type)))`; `q / s` before any product, and
//!   the p2c position queries are divided by `s` too.
//! * `span = min(T, k)` (`k` = `max_relative_positions`, or `max_position_embeddings`
//!   when it is below 1), `R = rel_embeddings[k - span .. k + span]`,
//!   `δ(i, j) = clamp(i - j + span, 0, 2·span - 1)`;
//!   `c2p[i, j] = q_i · pos_k[δ(i, j)]`, `p2c[i, j] = k_j · pos_q[δ(i, j)]`.
//!   Since `|i - j| < span` whenever `T ≤ k`, this equals indexing the whole table at
//!   `clamp(i - j + k, 0, 2k - 1)`: results do not depend on padding length.
//! * Masking is `masked_fill(!allowed, finfo.min)` then softmax (not an additive bias),
//!   with `allowed[i, j] = mask_i · mask_j`: a padded query row has every key masked
//!   and becomes a uniform average, exactly as in transformers.
//!
//! Relative positions are rebuilt from the current sequence length at every layer, so
//! tokens prepended mid-network (LPT) sit at positions `0..P` and the text at
//! `P..P+T`, as the LPT authors' `DebertaEncoder` does; text-to-text distances are
//! unchanged.
//!
//! **Attention prefixes** (P-tuning v2, `KvPrefix`): prefix keys have no position, so
//! they contribute content-to-content scores only (`q_i · k_p / s`, same scale), while
//! the c2p/p2c terms are computed over the text keys alone; prefix values are attended
//! like any other. See docs/deberta-prefix.md.

use petune_core::{Hooks, KvPrefix, LinearRole, LinearSite, NoHooks, Result};
use tch::{nn, Device, Kind, Tensor};

use super::config::{DebertaConfig, PosAttType};
use crate::common::attention::{kind_min, merge_heads, split_heads};
use crate::common::layers::{add_in_place, dropout, qkv_sites, upcast, weight_for, Linear};
use crate::common::weights::WeightSource;

/// The relative-position index `δ` of a sequence of length `T`.
#[derive(Debug)]
pub struct RelativePositions {
    /// `min(T, k)`.
    span: i64,
    /// `δ(i, j) = clamp(i - j + span, 0, 2·span - 1)`, `[T, T]` int64.
    index: Tensor,
}

impl RelativePositions {
    /// Positions `0..t` (prepended tokens first), relative range `max_rel`.
    pub fn new(t: i64, max_rel: i64, device: Device) -> RelativePositions {
        let span = t.min(max_rel);
        let ids = Tensor::arange(t, (Kind::Int64, device));
        let rel = ids.unsqueeze(1) - ids.unsqueeze(0); // [T, T]: i - j
        let index = (rel + span).clamp(0, 2 * span - 1);
        RelativePositions { span, index }
    }
}

/// Which (query, key) pairs may attend: `[B, 1, T, P + T]` bool from the padding mask
/// `[B, T]` and an optional prefix key mask `[B, P]`.
pub fn pairwise_mask(pad_mask: &Tensor, prefix_mask: Option<&Tensor>) -> Tensor {
    let (b, t) = (pad_mask.size()[0], pad_mask.size()[1]);
    let keys = match prefix_mask {
        Some(pm) => Tensor::cat(&[pm.to_kind(Kind::Int64), pad_mask.to_kind(Kind::Int64)], 1),
        None => pad_mask.shallow_clone(),
    }; // [B, P+T]
    let n_keys = keys.size()[1];
    let queries = pad_mask.ne(0).view([b, 1, t, 1]); // [B, 1, T, 1]
    queries.logical_and(&keys.ne(0).view([b, 1, 1, n_keys])) // [B, 1, T, P+T]
}

/// `DisentangledSelfAttention` of one layer.
#[derive(Debug)]
pub struct DisentangledSelfAttention {
    index: usize,
    in_proj: Tensor,
    q_bias: Tensor,
    v_bias: Tensor,
    pos_proj: Option<Linear>,
    pos_q_proj: Option<Linear>,
    heads: i64,
    head_dim: i64,
    max_rel: i64,
    scale: f64,
    attn_dropout: f64,
    pos_dropout: f64,
}

impl DisentangledSelfAttention {
    /// Loads `p` = `encoder.layer.{index}.attention.self`.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        cfg: &DebertaConfig,
        index: usize,
    ) -> DisentangledSelfAttention {
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let head_dim = h / heads;
        let in_proj = src.param(&(p / "in_proj"), "weight", &[3 * h, h]);
        let q_bias = src.param(p, "q_bias", &[h]);
        let v_bias = src.param(p, "v_bias", &[h]);
        let pos_proj =
            cfg.uses(PosAttType::C2p).then(|| Linear::load(src, &(p / "pos_proj"), h, h, false));
        let pos_q_proj =
            cfg.uses(PosAttType::P2c).then(|| Linear::load(src, &(p / "pos_q_proj"), h, h, true));
        DisentangledSelfAttention {
            index,
            in_proj,
            q_bias,
            v_bias,
            pos_proj,
            pos_q_proj,
            heads,
            head_dim,
            max_rel: cfg.max_relative(),
            scale: ((head_dim * cfg.scale_factor()) as f64).sqrt(),
            attn_dropout: cfg.attention_probs_dropout_prob,
            pos_dropout: cfg.hidden_dropout_prob,
        }
    }

    /// Adds `delta` `[H, H]` to the Query, Key or Value rows of `in_proj`, whose rows
    /// are laid out `[heads, 3, head_dim]` (q, k, v interleaved per head).
    pub fn add_to_qkv_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        let which = match site.role {
            LinearRole::Query => 0,
            LinearRole::Key => 1,
            _ => 2,
        };
        let h = self.heads * self.head_dim;
        let rows = self.in_proj.view([self.heads, 3, self.head_dim, h]).select(1, which); // [nh, d, H] view
        let delta = delta.reshape([self.heads, self.head_dim, -1]); // [H, H] → [nh, d, H]
        add_in_place(site, &rows, &delta)
    }

    /// Attention context `[B, T, H]` for `x` `[B, T, H]`.
    ///
    /// `allowed` is [`pairwise_mask`]'s `[B, 1, T, P + T]`; `rel` the relative positions
    /// of length `T` with the shared `rel_embeddings` table `[2k, H]` (None without
    /// relative attention); `prefix` an already checked `KvPrefix`.
    pub fn forward(
        &self,
        x: &Tensor,
        allowed: &Tensor,
        rel: Option<(&RelativePositions, &Tensor)>,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        let (b, t, h) = (x.size()[0], x.size()[1], x.size()[2]);
        let (nh, d) = (self.heads, self.head_dim);
        // The checkpoint interleaves q, k, v rows per head: [B, T, nh, 3, d].
        let qkv = x.linear(&weight_for(&self.in_proj, x), None::<&Tensor>).view([b, t, nh, 3, d]);
        let part = |i: i64| qkv.select(3, i).reshape([b, t, h]); // [B, T, H], head-major
        let [q, k, v] = qkv_sites(
            hooks,
            self.index,
            x,
            [part(0) + &self.q_bias, part(1), part(2) + &self.v_bias],
        );
        let q = split_heads(&q, nh) / self.scale; // [B, nh, T, d]
        let k = split_heads(&k, nh);
        let v = split_heads(&v, nh);
        let c2c = q.matmul(&k.transpose(-1, -2)); // [B, nh, T, T]
        let scores = match rel.and_then(|(r, table)| self.relative_scores(&q, &k, r, table, train))
        {
            Some(c2p_p2c) => c2c + c2p_p2c,
            None => c2c,
        };
        let (scores, v) = match prefix {
            // Prefix keys carry no position: content-to-content scores only.
            Some(p) => {
                let pk = p.k.to_kind(q.kind());
                let prefix_scores = q.matmul(&pk.transpose(-1, -2)); // [B, nh, T, P]
                (
                    Tensor::cat(&[prefix_scores, scores], -1), // [B, nh, T, P+T]
                    Tensor::cat(&[p.v.to_kind(v.kind()), v], 2), // [B, nh, P+T, d]
                )
            }
            None => (scores, v),
        };
        let kind = scores.kind();
        let probs = scores.masked_fill(&allowed.logical_not(), kind_min(kind)).softmax(-1, kind);
        let probs = dropout(probs, self.attn_dropout, train);
        merge_heads(&probs.matmul(&v)) // [B, T, H]
    }

    /// `c2p + p2c` (`[B, nh, T, T]`), or None when neither term is configured.
    fn relative_scores(
        &self,
        q: &Tensor,
        k: &Tensor,
        rel: &RelativePositions,
        table: &Tensor,
        train: bool,
    ) -> Option<Tensor> {
        let (b, t) = (q.size()[0], q.size()[2]);
        let (nh, d, span) = (self.heads, self.head_dim, rel.span);
        let r = upcast(table.narrow(0, self.max_rel - span, 2 * span)); // [2s, H]
        let r = dropout(r, self.pos_dropout, train);
        let heads = |x: Tensor| x.view([1, 2 * span, nh, d]).permute([0, 2, 1, 3]); // [1, nh, 2s, d]
        let none = NoHooks;
        let mut score: Option<Tensor> = None;
        if let Some(pos_proj) = &self.pos_proj {
            let pos_k = heads(pos_proj.forward(&r, &none));
            let c2p = q.matmul(&pos_k.transpose(-1, -2)); // [B, nh, T, 2s]
            let idx = rel.index.view([1, 1, t, t]).expand([b, nh, t, t], false); // [B, nh, T, T]
            score = Some(c2p.gather(-1, &idx, false)); // [B, nh, T, T]
        }
        if let Some(pos_q_proj) = &self.pos_q_proj {
            let pos_q = heads(pos_q_proj.forward(&r, &none)) / self.scale;
            // [B, nh, T(j), 2s]
            let p2c = k.matmul(&pos_q.transpose(-1, -2).to_kind(k.kind()));
            // Row j, column i picks δ(i, j): gather with δᵀ, then swap to [B, nh, T(i), T(j)].
            let idx = rel.index.transpose(0, 1).view([1, 1, t, t]).expand([b, nh, t, t], false);
            let p2c = p2c.gather(-1, &idx, false).transpose(-1, -2);
            score = Some(match score {
                Some(s) => s + p2c,
                None => p2c,
            });
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_index_follows_hf_span_rules() {
        let rel = RelativePositions::new(3, 64, Device::Cpu);
        assert_eq!(rel.span, 3);
        let got = Vec::<Vec<i64>>::try_from(&rel.index).unwrap();
        // i - j + 3, clamped to [0, 5]
        assert_eq!(got, vec![vec![3, 2, 1], vec![4, 3, 2], vec![5, 4, 3]]);
        let rel = RelativePositions::new(5, 2, Device::Cpu);
        assert_eq!(rel.span, 2);
        let got = Vec::<Vec<i64>>::try_from(&rel.index).unwrap();
        assert_eq!(got[0], vec![2, 1, 0, 0, 0]);
        assert_eq!(got[4], vec![3, 3, 3, 3, 2]);
    }

    #[test]
    fn pairwise_mask_masks_padded_queries_and_keys() {
        let pad = Tensor::from_slice2(&[[1i64, 1, 0]]);
        let m = pairwise_mask(&pad, Some(&Tensor::from_slice2(&[[1i64, 0]])));
        assert_eq!(m.size(), [1, 1, 3, 5]);
        let got = Vec::<Vec<bool>>::try_from(&m.view([3, 5])).unwrap();
        assert_eq!(got[0], vec![true, false, true, true, false]);
        assert_eq!(got[2], vec![false; 5]);
    }
}
