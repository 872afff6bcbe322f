//! [`ProcessGroup`]: one rank's handle on a group of training processes, for data-parallel
//! training (issue #17): c10d's `ProcessGroupGloo`, the backend `torch.distributed` uses on
//! CPU, connected through a c10d `TCPStore` hosted by rank 0, as
//! `torch.distributed.init_process_group("gloo", init_method="env://")` does; sum
//! all-reduce, broadcast and barrier (`csrc/petune_dist.cpp`).
//!
//! Every collective waits at most the group's timeout: a peer that hangs makes it an
//! [`Error::Extension`] naming the operation after the timeout, one that died (its
//! connection dropped) at once; never a hang. Collectives must be called by every rank in
//! the same order; a rank whose tensor differs in shape or dtype makes the call an error
//! on every rank.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::time::Duration;

use petune_core::{Error, Result};
use tch::Tensor;

use crate::ffi;
use crate::rendezvous::Rendezvous;

/// One rank's membership of a process group; dropping it leaves the group. Rank 0 hosts
/// the store, so its drop waits (at most the timeout: longer if a peer died) until every
/// other rank has dropped its group, then stops the store.
#[derive(Debug)]
pub struct ProcessGroup {
    handle: NonNull<c_void>,
    rank: usize,
    world_size: usize,
    timeout: Duration,
}

impl ProcessGroup {
    /// Joins the group of `world_size` ranks whose rank 0 listens on `master_addr:port`
    /// (rank 0 starts the store there), waiting at most `timeout` for every rank to
    /// arrive. `timeout` also bounds every later collective.
    pub fn new(
        master_addr: &str,
        port: u16,
        rank: usize,
        world_size: usize,
        timeout: Duration,
    ) -> Result<Self> {
        if world_size == 0 || rank >= world_size {
            return Err(Error::Input(format!(
                "process group: rank {rank} is not in [0, {world_size})"
            )));
        }
        let timeout_ms =
            i64::try_from(timeout.as_millis()).ok().filter(|&ms| ms > 0).ok_or_else(|| {
                Error::Input(format!("process group: timeout {timeout:?} must be at least 1 ms"))
            })?;
        let host = CString::new(master_addr).map_err(|_| {
            Error::Input(format!("process group: master address {master_addr:?} contains a NUL"))
        })?;
        let (rank_i, world_i) = (rank as i64, world_size as i64);
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: `host` is a NUL-terminated string and `out` a valid slot, both alive for
        // the call; the C++ side writes `out` only on success and catches every exception.
        ffi::check("process_group_new", unsafe {
            ffi::petune_ext_pg_new(host.as_ptr(), port, rank_i, world_i, timeout_ms, &mut out)
        })?;
        let handle = NonNull::new(out).ok_or_else(|| Error::Extension {
            op: "process_group_new".into(),
            msg: "no handle returned".into(),
        })?;
        Ok(Self { handle, rank, world_size, timeout })
    }

    /// Joins the group described by a [`Rendezvous`] (e.g. read from the environment).
    pub fn from_rendezvous(rdv: &Rendezvous, timeout: Duration) -> Result<Self> {
        Self::new(&rdv.master_addr, rdv.master_port, rdv.rank, rdv.world_size, timeout)
    }

    /// This process's rank in `[0, world_size)`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The bound on every wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Replaces `tensor` (CPU, contiguous) by its sum over all ranks (Gloo's ring
    /// all-reduce), the same bits on every rank.
    pub fn all_reduce_sum_(&self, tensor: &mut Tensor) -> Result<()> {
        // SAFETY: the handle is live (owned by self); the tensor pointer is valid for the
        // call, which checks it and catches every exception.
        ffi::check("all_reduce", unsafe {
            ffi::petune_ext_pg_all_reduce_sum_(
                self.handle.as_ptr(),
                tensor.as_ptr() as ffi::TensorPtr,
            )
        })
    }

    /// Replaces `tensor` (CPU, contiguous) on every rank by rank `root`'s.
    pub fn broadcast_(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        if root >= self.world_size {
            return Err(Error::Input(format!(
                "broadcast: root {root} is not in [0, {})",
                self.world_size
            )));
        }
        // SAFETY: as in `all_reduce_sum_`.
        ffi::check("broadcast", unsafe {
            ffi::petune_ext_pg_broadcast_(
                self.handle.as_ptr(),
                tensor.as_ptr() as ffi::TensorPtr,
                root as i64,
            )
        })
    }

    /// Returns once every rank has reached it.
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: the handle is live; no other pointers.
        ffi::check("barrier", unsafe { ffi::petune_ext_pg_barrier(self.handle.as_ptr()) })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from petune_ext_pg_new and is freed exactly once, here.
        // A failure to close a connection has nowhere to go from Drop; it is ignored.
        let _ = ffi::check("process_group_destroy", unsafe {
            ffi::petune_ext_pg_destroy(self.handle.as_ptr())
        });
    }
}
