//! The frozen-prefix cache (issue #7 §4): the layers below LPT's prompt layer are frozen
//! and untouched by the method, so their output for a training example can be computed
//! once and reused in every later epoch; a step then runs only the layers from the
//! floor up.
//!
//! The cached states are computed in **eval mode**: the LPT authors keep dropout active
//! in the frozen layers, which a cache cannot (every epoch would need a fresh draw).
//! docs/benchmarks.md measures what that changes on MR few-shot. States are stored per
//! example without padding (`[len, d]`, the backbone's dtype) in memory up to a budget,
//! then spilled to safetensors files in a scratch folder that is removed on drop.

use std::collections::HashMap;
use std::path::PathBuf;

use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{Backbone, Delta, Error, Result, SeqState};
use tch::{Kind, Tensor};

use crate::features::Batch;

/// Per-example frozen-prefix states, memory-bounded with spill to disk.
pub struct PrefixCache {
    budget_bytes: usize,
    used_bytes: usize,
    memory: HashMap<usize, Tensor>,
    spill_dir: PathBuf,
    spilled: HashMap<usize, PathBuf>,
    /// Examples computed because they were not cached.
    pub misses: usize,
    /// Examples served from the cache.
    pub hits: usize,
}

impl PrefixCache {
    /// A cache holding up to `budget_mib` in memory, spilling into `spill_dir`.
    pub fn new(budget_mib: f64, spill_dir: PathBuf) -> PrefixCache {
        PrefixCache {
            budget_bytes: (budget_mib.max(0.0) * 1024.0 * 1024.0) as usize,
            used_bytes: 0,
            memory: HashMap::new(),
            spill_dir,
            spilled: HashMap::new(),
            misses: 0,
            hits: 0,
        }
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Examples spilled to disk.
    pub fn spilled(&self) -> usize {
        self.spilled.len()
    }

    fn store(&mut self, index: usize, state: Tensor) -> Result<()> {
        let bytes = state.numel() * state.kind().elt_size_in_bytes();
        if self.used_bytes + bytes <= self.budget_bytes {
            self.used_bytes += bytes;
            self.memory.insert(index, state);
            return Ok(());
        }
        let path = self.spill_dir.join(format!("{index}.safetensors"));
        write_safetensors(&path, &[("h".to_string(), state)], None)?;
        self.spilled.insert(index, path);
        Ok(())
    }

    fn fetch(&self, index: usize, device: tch::Device) -> Result<Option<Tensor>> {
        if let Some(t) = self.memory.get(&index) {
            return Ok(Some(t.shallow_clone()));
        }
        match self.spilled.get(&index) {
            Some(path) => {
                let mut f = read_safetensors(path, device)?;
                f.tensors
                    .remove("h")
                    .map(Some)
                    .ok_or_else(|| Error::input(format!("{}: no tensor h", path.display())))
            }
            None => Ok(None),
        }
    }

    /// The state at `delta`'s floor for `batch`, whose rows are the training examples
    /// `indices` (right-padded by `collate`): cached rows are reused, missing ones are
    /// computed (eval mode, no autograd) and stored.
    pub fn state(
        &mut self,
        backbone: &dyn Backbone,
        delta: &dyn Delta,
        batch: &Batch,
        indices: &[usize],
    ) -> Result<SeqState> {
        let device = backbone.device();
        let lengths: Vec<i64> = Vec::<i64>::try_from(batch.input.attention_mask.sum_dim_intlist(
            1,
            false,
            Kind::Int64,
        ))?;
        let mut rows: Vec<Option<Tensor>> =
            indices.iter().map(|&i| self.fetch(i, device)).collect::<Result<_>>()?;
        self.hits += rows.iter().filter(|r| r.is_some()).count();
        if rows.iter().any(Option::is_none) {
            let fresh = crate::model::frozen_prefix(backbone, delta, batch)?; // [B, T, d]
            for (r, (&index, slot)) in indices.iter().zip(rows.iter_mut()).enumerate() {
                if slot.is_none() {
                    let state = fresh.hidden.get(r as i64).narrow(0, 0, lengths[r]).copy(); // [len, d]
                    self.store(index, state.shallow_clone())?;
                    *slot = Some(state);
                    self.misses += 1;
                }
            }
        }
        let t = batch.input.seq_len();
        let padded: Vec<Tensor> = rows
            .into_iter()
            .flatten()
            .map(|h| h.constant_pad_nd([0, 0, 0, t - h.size()[0]])) // [len, d] → [T, d]
            .collect();
        Ok(SeqState::for_input(Tensor::stack(&padded, 0), &batch.input))
    }
}

impl Drop for PrefixCache {
    fn drop(&mut self) {
        if !self.spilled.is_empty() {
            let _ = std::fs::remove_dir_all(&self.spill_dir);
        }
    }
}
