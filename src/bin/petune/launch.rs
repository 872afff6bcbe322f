//! `petune train --nproc N`: N local data-parallel ranks as child processes of this
//! binary (what `torchrun --standalone --nproc-per-node N` does for a PyTorch script):
//! each gets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR=127.0.0.1` and a free
//! `MASTER_PORT`, and the command line without `--nproc` (plus `--threads 1` unless
//! threads were given). Rank 0's output is this command's; the other ranks' stderr is
//! forwarded line by line with a `[rank r]` prefix and their stdout dropped. The first
//! rank to fail stops the others, and the command fails naming it.
//!
//! Under `torchrun` or `srun` the environment already describes the group:
//! [`group_from_env`] joins it (docs/scaling-out.md).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use petune::ext::{ProcessGroup, Rendezvous};

/// The variables `torchrun` and Slurm set, in `Rendezvous::from_env`'s order: the
/// group size, when this process is one rank of several.
fn env_world_size() -> Option<(&'static str, usize)> {
    let get = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    let (var, value) = if get("RANK").is_some() {
        ("WORLD_SIZE", get("WORLD_SIZE"))
    } else if get("SLURM_PROCID").is_some() {
        ("SLURM_NTASKS", get("SLURM_NTASKS"))
    } else {
        return None;
    };
    let n = value.and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1);
    Some((var, n))
}

/// Joins the data-parallel group the environment describes (`RANK`/`WORLD_SIZE`... or
/// Slurm's), when it has more than one rank; `None` for a single process. Returns the
/// group and this rank's local rank (its device on a multi-GPU node).
pub fn group_from_env(timeout: Duration) -> anyhow::Result<Option<(ProcessGroup, usize)>> {
    match env_world_size() {
        Some((_, n)) if n > 1 => {}
        _ => return Ok(None),
    }
    let rdv = Rendezvous::from_env()?;
    let pg = ProcessGroup::from_rendezvous(&rdv, timeout).with_context(|| {
        format!(
            "rank {} of {} joining the group at {}:{} (waited at most {:?})",
            rdv.rank, rdv.world_size, rdv.master_addr, rdv.master_port, timeout
        )
    })?;
    Ok(Some((pg, rdv.local_rank)))
}

/// This process's command line without `--nproc N` / `--nproc=N`, with `--threads 1`
/// added unless threads were given.
fn child_args(threads_given: bool) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let s = a.to_string_lossy();
        if s == "--nproc" {
            args.next();
        } else if !s.starts_with("--nproc=") {
            out.push(a);
        }
    }
    if !threads_given {
        out.extend(["--threads".into(), "1".into()]);
    }
    out
}

/// A port nothing listens on now (the OS picks it; rank 0's store binds it next).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Runs `n` local ranks of this command and waits for them (see the module header).
pub fn launch(n: usize, threads_given: bool) -> anyhow::Result<()> {
    if let Some((var, w)) = env_world_size().filter(|&(_, w)| w > 1) {
        bail!(
            "--nproc {n}: this process is already one rank of {w} ({var} = {w}, set by torchrun \
             or srun); leave --nproc out there, the environment describes the group"
        );
    }
    let exe = std::env::current_exe().context("finding the petune binary")?;
    let port = free_port()?;
    let args = child_args(threads_given);
    let mut children: Vec<Child> = Vec::with_capacity(n);
    let mut forwarders = Vec::new();
    for rank in 0..n {
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string());
        if rank > 0 {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                stop(&mut children);
                return Err(e).with_context(|| format!("starting rank {rank} ({})", exe.display()));
            }
        };
        if let Some(err) = child.stderr.take() {
            forwarders.push(std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[rank {rank}] {line}");
                }
            }));
        }
        children.push(child);
    }
    let outcome = wait_all(&mut children);
    for f in forwarders {
        let _ = f.join();
    }
    outcome
}

/// Waits until every rank has succeeded, or one has failed (then stops the rest).
fn wait_all(children: &mut [Child]) -> anyhow::Result<()> {
    let n = children.len();
    let mut done = vec![false; n];
    while done.iter().any(|d| !d) {
        for (rank, child) in children.iter_mut().enumerate() {
            if done[rank] {
                continue;
            }
            match child.try_wait() {
                Ok(Some(status)) if status.success() => done[rank] = true,
                Ok(Some(status)) => {
                    stop(children);
                    bail!("rank {rank} of {n} failed ({status}); the other ranks were stopped");
                }
                Ok(None) => {}
                Err(e) => {
                    stop(children);
                    return Err(e).context(format!("waiting for rank {rank} of {n}"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Kills and reaps every rank still running.
fn stop(children: &mut [Child]) {
    for c in children.iter_mut() {
        if matches!(c.try_wait(), Ok(None)) {
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}
