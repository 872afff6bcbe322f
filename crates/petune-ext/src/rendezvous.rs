//! Where a rank finds its group: [`Rendezvous`] read from the variables that `torchrun`
//! sets (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`: PyTorch's
//! `env://` init method) or, when `RANK` is absent, from Slurm's (`SLURM_PROCID`,
//! `SLURM_NTASKS`, `SLURM_LOCALID`, master = `MASTER_ADDR` or the first host of
//! `SLURM_JOB_NODELIST`). A missing or malformed value is [`Error::Config`] naming the
//! variable.

use petune_core::{Error, Result};

/// The port rank 0 listens on when Slurm's variables are used and `MASTER_PORT` is not set
/// (torch.distributed's default, `TCPStoreOptions::kDefaultPort`).
pub const DEFAULT_SLURM_PORT: u16 = 29500;

/// One rank's place in the group and where rank 0 listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    /// Global rank in `[0, world_size)`.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Rank on this node (picks the device on multi-GPU nodes).
    pub local_rank: usize,
    /// Host of rank 0's store.
    pub master_addr: String,
    /// Port of rank 0's store.
    pub master_port: u16,
}

impl Rendezvous {
    /// Reads the process environment (see the module header for the variables).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables from `var` (the environment, or a map in tests); empty values
    /// count as missing.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let (rank_var, world_var, local_var) = if get("RANK").is_some() {
            ("RANK", "WORLD_SIZE", "LOCAL_RANK")
        } else if get("SLURM_PROCID").is_some() {
            ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")
        } else {
            return Err(config(
                "RANK",
                "not set (nor SLURM_PROCID): set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, \
                 or run under srun",
            ));
        };
        let slurm = rank_var == "SLURM_PROCID";
        let number = |name: &str| -> Result<usize> {
            let v = get(name).ok_or_else(|| config(name, "not set"))?;
            v.trim()
                .parse::<usize>()
                .map_err(|_| config(name, &format!("`{v}` is not a non-negative integer")))
        };
        let rank = number(rank_var)?;
        let world_size = number(world_var)?;
        if world_size == 0 {
            return Err(config(world_var, "must be at least 1"));
        }
        if rank >= world_size {
            return Err(config(
                rank_var,
                &format!("{rank} is not below {world_var} = {world_size}"),
            ));
        }
        // Without LOCAL_RANK the ranks are taken to share one node.
        let local_rank = if get(local_var).is_some() { number(local_var)? } else { rank };
        let master_addr = match get("MASTER_ADDR") {
            Some(a) => a.trim().to_string(),
            None if slurm => {
                let list = get("SLURM_JOB_NODELIST")
                    .ok_or_else(|| config("MASTER_ADDR", "not set (nor SLURM_JOB_NODELIST)"))?;
                first_host(&list).ok_or_else(|| {
                    config("SLURM_JOB_NODELIST", &format!("`{list}` names no host"))
                })?
            }
            None => return Err(config("MASTER_ADDR", "not set")),
        };
        let master_port = match get("MASTER_PORT") {
            Some(p) => p.trim().parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
                config("MASTER_PORT", &format!("`{p}` is not a port in 1..=65535"))
            })?,
            None if slurm => DEFAULT_SLURM_PORT,
            None => return Err(config("MASTER_PORT", "not set")),
        };
        Ok(Self { rank, world_size, local_rank, master_addr, master_port })
    }
}

fn config(field: &str, msg: &str) -> Error {
    Error::Config { field: field.into(), msg: msg.into() }
}

/// The first host of a Slurm node list in its compressed form (`node[01-04,07],gpu5` →
/// `node01`; `rack[1-2]-n[3,5]` → `rack1-n3`), as `scontrol show hostnames` would print
/// first. `None` for an empty or unbalanced list.
pub fn first_host(list: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = list.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            ',' => break,
            '[' => {
                // The first element of the bracket: up to its first ',' or '-'.
                let mut first = String::new();
                let mut closed = false;
                let mut taking = true;
                for c in chars.by_ref() {
                    match c {
                        ']' => {
                            closed = true;
                            break;
                        }
                        ',' | '-' => taking = false,
                        c if taking => first.push(c),
                        _ => {}
                    }
                }
                if !closed || first.is_empty() {
                    return None;
                }
                out.push_str(&first);
            }
            ']' => return None,
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn rdv(vars: &[(&str, &str)]) -> Result<Rendezvous> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Rendezvous::from_vars(|k| map.get(k).cloned())
    }

    fn field_of(r: Result<Rendezvous>) -> String {
        match r {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn torchrun_variables() {
        let r = rdv(&[
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("LOCAL_RANK", "0"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "1234"),
        ])
        .unwrap();
        assert_eq!(
            r,
            Rendezvous {
                rank: 1,
                world_size: 2,
                local_rank: 0,
                master_addr: "10.0.0.1".into(),
                master_port: 1234
            }
        );
    }

    #[test]
    fn slurm_variables_take_the_first_node() {
        let r = rdv(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "gpu[07-08,11],cpu1"),
        ])
        .unwrap();
        assert_eq!((r.rank, r.world_size, r.local_rank), (3, 4, 1));
        assert_eq!((r.master_addr.as_str(), r.master_port), ("gpu07", DEFAULT_SLURM_PORT));
        // MASTER_ADDR wins over the node list.
        let r = rdv(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
            ("SLURM_JOB_NODELIST", "gpu[07-08]"),
            ("MASTER_ADDR", "login1"),
            ("MASTER_PORT", "4000"),
        ])
        .unwrap();
        assert_eq!((r.master_addr.as_str(), r.master_port, r.local_rank), ("login1", 4000, 0));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let base = [("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")];
        assert_eq!(field_of(rdv(&[])), "RANK");
        assert_eq!(field_of(rdv(&[&base[..], &[("RANK", "x")]].concat())), "RANK");
        assert_eq!(field_of(rdv(&[&base[..], &[("RANK", "2")]].concat())), "RANK");
        assert_eq!(
            field_of(rdv(&[("RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")])),
            "WORLD_SIZE"
        );
        assert_eq!(field_of(rdv(&[("RANK", "0"), ("WORLD_SIZE", "0")])), "WORLD_SIZE");
        assert_eq!(
            field_of(rdv(&[("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_PORT", "1")])),
            "MASTER_ADDR"
        );
        assert_eq!(
            field_of(rdv(&[("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "h")])),
            "MASTER_PORT"
        );
        assert_eq!(
            field_of(rdv(&[
                ("RANK", "0"),
                ("WORLD_SIZE", "1"),
                ("MASTER_ADDR", "h"),
                ("MASTER_PORT", "70000")
            ])),
            "MASTER_PORT"
        );
        assert_eq!(
            field_of(rdv(&[&base[..], &[("RANK", "0"), ("LOCAL_RANK", "-1")]].concat())),
            "LOCAL_RANK"
        );
        assert_eq!(field_of(rdv(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")])), "MASTER_ADDR");
        assert_eq!(
            field_of(rdv(&[
                ("SLURM_PROCID", "0"),
                ("SLURM_NTASKS", "1"),
                ("SLURM_JOB_NODELIST", "n[1-")
            ])),
            "SLURM_JOB_NODELIST"
        );
    }

    #[test]
    fn node_lists() {
        assert_eq!(first_host("node[01-04,07],gpu5").as_deref(), Some("node01"));
        assert_eq!(first_host("rack[1-2]-n[3,5]").as_deref(), Some("rack1-n3"));
        assert_eq!(first_host("a,b").as_deref(), Some("a"));
        assert_eq!(first_host("solo").as_deref(), Some("solo"));
        assert_eq!(first_host("n[3]").as_deref(), Some("n3"));
        assert_eq!(first_host(""), None);
        assert_eq!(first_host("n[]"), None);
        assert_eq!(first_host("n]"), None);
    }
}
