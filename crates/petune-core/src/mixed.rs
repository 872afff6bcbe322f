//! Mixed-delta batches: one batch whose examples belong to different trained deltas of
//! the same backbone (different tasks), each example getting its own prompt, prefix,
//! LoRA, adapter or bias delta — at inference. PEFT offers this for LoRA only
//! (`adapter_names=` in `forward`); here it works for every method, because every
//! petune hook is row-wise: what a delta does to example `i` depends on example `i`
//! alone.
//!
//! Each delta is bound on the sub-batch of its own rows; at every site the state is
//! split by rows, handed to the member hooks, and the results are put back in place
//! (`index_copy`). Prefix key/values of different lengths are padded and masked, so a
//! P-tuning v2 task and a LoRA task share a batch exactly. Prompts prepended to the
//! sequence must have one length across the batch (positions would shift otherwise):
//! a typed error says so.

use tch::{Kind, Tensor};

use crate::backbone::Backbone;
use crate::delta::{BindCtx, Delta};
use crate::error::{Error, Result};
use crate::hooks::{Hooks, KvPrefix, NoHooks};
use crate::input::BackboneInput;
use crate::site::{LinearSite, NormSite, SublayerSite};
use crate::state::SeqState;

struct Member<'a> {
    /// Rows of the full batch, `[n]` int64.
    rows: Tensor,
    hooks: Box<dyn Hooks + 'a>,
}

/// Hooks that dispatch each example to the hooks of its own delta.
pub struct MixedHooks<'a> {
    members: Vec<Member<'a>>,
    batch: i64,
}

/// Binds `deltas` on one batch: example `i` is served by `deltas[groups[i]]`, or by the
/// plain backbone where that entry is `None`.
pub fn bind_mixed<'a>(
    deltas: &[Option<&'a dyn Delta>],
    groups: &[usize],
    backbone: &dyn Backbone,
    input: &BackboneInput,
    train: bool,
) -> Result<MixedHooks<'a>> {
    let batch = input.batch();
    if groups.len() as i64 != batch {
        return Err(Error::Shape {
            ctx: "mixed batch groups".into(),
            expected: format!("[{batch}] (one delta index per example)"),
            got: vec![groups.len() as i64],
        });
    }
    if let Some(bad) = groups.iter().find(|&&g| g >= deltas.len()) {
        return Err(Error::input(format!(
            "mixed batch: delta index {bad} but only {} deltas were given",
            deltas.len()
        )));
    }
    let mut members = Vec::new();
    for (k, delta) in deltas.iter().enumerate() {
        let rows: Vec<i64> =
            groups.iter().enumerate().filter(|(_, &g)| g == k).map(|(i, _)| i as i64).collect();
        if rows.is_empty() {
            continue;
        }
        let rows = Tensor::from_slice(&rows).to_device(input.device());
        let hooks: Box<dyn Hooks + 'a> = match delta {
            Some(d) => {
                let sub = input.select_rows(&rows);
                d.bind(&BindCtx { backbone, input: &sub, train })?
            }
            None => Box::new(NoHooks),
        };
        members.push(Member { rows, hooks });
    }
    Ok(MixedHooks { members, batch })
}

impl MixedHooks<'_> {
    /// Scatters per-member `[n_k, ..]` parts back into one `[B, ..]` tensor.
    fn gather(&self, parts: Vec<Tensor>) -> Tensor {
        let first = &parts[0];
        let mut size = first.size();
        size[0] = self.batch;
        let out = Tensor::zeros(size.as_slice(), (first.kind(), first.device()));
        self.members.iter().zip(parts).fold(out, |acc, (m, part)| acc.index_copy(0, &m.rows, &part))
    }

    /// Applies a sequence-changing hook member by member and reassembles the state.
    fn map_state(
        &self,
        s: SeqState,
        f: impl Fn(&dyn Hooks, SeqState) -> Result<SeqState>,
    ) -> Result<SeqState> {
        if let [only] = self.members.as_slice() {
            if only.rows.size()[0] == self.batch {
                return f(only.hooks.as_ref(), s);
            }
        }
        let outs = self
            .members
            .iter()
            .map(|m| f(m.hooks.as_ref(), s.select_rows(&m.rows)))
            .collect::<Result<Vec<_>>>()?;
        let (len, n_prefix) = (outs[0].seq_len(), outs[0].n_prefix);
        if outs.iter().any(|o| o.seq_len() != len || o.n_prefix != n_prefix) {
            return Err(Error::Incompatible {
                method: "mixed batch".into(),
                backbone: "this batch".into(),
                reason: "its deltas prepend prompts of different lengths; batch such tasks \
                         separately"
                    .into(),
            });
        }
        let mut parts = (Vec::new(), Vec::new(), Vec::new());
        for o in outs {
            parts.0.push(o.hidden);
            parts.1.push(o.pad_mask);
            parts.2.push(o.positions);
        }
        Ok(SeqState {
            hidden: self.gather(parts.0),
            pad_mask: self.gather(parts.1),
            positions: self.gather(parts.2),
            n_prefix,
        })
    }

    /// Applies a row-wise tensor hook member by member on `y` `[B, ..]`, handing each
    /// member its rows of `y` and, where the hook takes one, of its input `x`.
    fn map_rows(
        &self,
        x: Option<&Tensor>,
        y: Tensor,
        f: impl Fn(&dyn Hooks, Option<&Tensor>, Tensor) -> Tensor,
    ) -> Tensor {
        if let [only] = self.members.as_slice() {
            if only.rows.size()[0] == self.batch {
                return f(only.hooks.as_ref(), x, y);
            }
        }
        self.members.iter().fold(y.shallow_clone(), |acc, m| {
            let sub_x = x.map(|x| x.index_select(0, &m.rows));
            let part = f(m.hooks.as_ref(), sub_x.as_ref(), y.index_select(0, &m.rows));
            acc.index_copy(0, &m.rows, &part)
        })
    }
}

impl Hooks for MixedHooks<'_> {
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        let wants: Vec<bool> =
            self.members.iter().map(|m| m.hooks.positions_include_prefix()).collect();
        if wants.iter().any(|&w| w != wants[0]) {
            return Err(Error::Incompatible {
                method: "mixed batch".into(),
                backbone: "this batch".into(),
                reason: "its prompts follow different position conventions (authors vs PEFT)"
                    .into(),
            });
        }
        self.map_state(s, |h, s| h.input_embeds(s))
    }

    /// Members must agree (checked in `input_embeds`, which fails otherwise).
    fn positions_include_prefix(&self) -> bool {
        self.members.iter().any(|m| m.hooks.positions_include_prefix())
    }

    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        self.map_state(s, |h, s| h.before_layer(layer, s))
    }

    fn attn_prefix(&self, layer: usize) -> Option<KvPrefix> {
        let parts: Vec<Option<KvPrefix>> =
            self.members.iter().map(|m| m.hooks.attn_prefix(layer)).collect();
        let template = parts.iter().flatten().next()?;
        let (heads, dim) = (template.k.size()[1], template.k.size()[3]);
        let (kind, device) = (template.k.kind(), template.k.device());
        let longest = parts.iter().flatten().map(|p| p.k.size()[2]).max().unwrap_or(0);
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        let mut masks = Vec::new();
        for (m, part) in self.members.iter().zip(&parts) {
            let n = m.rows.size()[0];
            let (k, v, mask) = match part {
                Some(p) => {
                    let len = p.k.size()[2];
                    let mask = match &p.mask {
                        Some(mask) => mask.to_kind(Kind::Int64),
                        None => Tensor::ones([n, len], (Kind::Int64, device)),
                    };
                    // Pad shorter prefixes with masked slots: [n, heads, longest, dim].
                    let pad = longest - len;
                    let zeros = Tensor::zeros([n, heads, pad, dim], (kind, device));
                    (
                        Tensor::cat(
                            &[p.k.expand([n, heads, len, dim], false), zeros.shallow_clone()],
                            2,
                        ),
                        Tensor::cat(&[p.v.expand([n, heads, len, dim], false), zeros], 2),
                        Tensor::cat(&[mask, Tensor::zeros([n, pad], (Kind::Int64, device))], 1),
                    )
                }
                None => {
                    let zeros = Tensor::zeros([n, heads, longest, dim], (kind, device));
                    (
                        zeros.shallow_clone(),
                        zeros,
                        Tensor::zeros([n, longest], (Kind::Int64, device)),
                    )
                }
            };
            ks.push(k);
            vs.push(v);
            masks.push(mask);
        }
        Some(KvPrefix { k: self.gather(ks), v: self.gather(vs), mask: Some(self.gather(masks)) })
    }

    fn row_wise(&self) -> bool {
        self.members.iter().all(|m| m.hooks.row_wise())
    }

    fn linear(&self, site: LinearSite, x: &Tensor, y: Tensor) -> Tensor {
        self.map_rows(Some(x), y, |h, x, y| match x {
            Some(x) => h.linear(site, x, y),
            None => y,
        })
    }

    fn norm(&self, site: NormSite, y: Tensor) -> Tensor {
        self.map_rows(None, y, |h, _, y| h.norm(site, y))
    }

    fn sublayer_out(&self, site: SublayerSite, h: Tensor) -> Tensor {
        self.map_rows(None, h, |hooks, _, h| hooks.sublayer_out(site, h))
    }
}
