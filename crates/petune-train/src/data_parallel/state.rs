//! Making every rank start from rank 0's state: its tensors (trainable tensors, Adam
//! moments, step counters, best-so-far tensors), grouped by dtype into one flat
//! broadcast each, and its bytes (the serialized progress of a resumed run). What
//! `DistributedDataParallel`'s constructor does with `_sync_module_states`, extended to
//! the optimizer so that a run resumed on rank 0 alone resumes on every rank.

use petune_core::{Error, Result};
use petune_ext::ProcessGroup;
use tch::{Device, Kind, Tensor};

/// Replaces every tensor of `tensors` by rank `root`'s, in place: one broadcast per dtype
/// present (in the order of first appearance), through host memory. Every rank must pass
/// tensors of the same shapes and dtypes in the same order.
pub fn broadcast_tensors_(pg: &ProcessGroup, tensors: &[Tensor], root: usize) -> Result<()> {
    let _no_grad = tch::no_grad_guard();
    let mut kinds: Vec<Kind> = Vec::new();
    for t in tensors {
        if !kinds.contains(&t.kind()) {
            kinds.push(t.kind());
        }
    }
    for kind in kinds {
        let group: Vec<&Tensor> = tensors.iter().filter(|t| t.kind() == kind).collect();
        let parts: Vec<Tensor> = group
            .iter()
            .map(|t| t.f_to_device(Device::Cpu).and_then(|t| t.f_reshape([-1])))
            .collect::<std::result::Result<_, _>>()?;
        // flat: [Σ numel] of this dtype, in the given order.
        let mut flat = Tensor::f_cat(&parts, 0)?.f_contiguous()?;
        drop(parts);
        pg.broadcast_(&mut flat, root)?;
        let mut offset = 0i64;
        for t in group {
            let n = t.numel() as i64;
            let src = flat.f_narrow(0, offset, n)?.f_reshape(t.size())?.f_to_device(t.device())?;
            t.shallow_clone().f_copy_(&src)?;
            offset += n;
        }
    }
    Ok(())
}

/// Rank `root`'s `bytes` on every rank (the argument is ignored elsewhere): a length,
/// then the bytes.
pub fn broadcast_bytes(pg: &ProcessGroup, bytes: &[u8], root: usize) -> Result<Vec<u8>> {
    let mine = pg.rank() == root;
    let mut len = Tensor::from_slice(&[if mine { bytes.len() as i64 } else { 0 }]);
    pg.broadcast_(&mut len, root)?;
    let n = len.int64_value(&[0]);
    let n = usize::try_from(n)
        .map_err(|_| Error::Input(format!("broadcast: rank {root} sent a length of {n}")))?;
    let mut buf = if mine {
        Tensor::from_slice(bytes)
    } else {
        Tensor::f_zeros([n as i64], (Kind::Uint8, Device::Cpu))?
    };
    if n > 0 {
        pg.broadcast_(&mut buf, root)?;
    }
    Ok(Vec::<u8>::try_from(&buf)?)
}
