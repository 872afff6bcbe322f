//! Two and three real processes on 127.0.0.1 over c10d's Gloo: the group's collectives give
//! every rank the same, right answer, a mismatch is an error on every rank, and a peer that
//! is gone or hangs makes the survivor's collective a clean error within the timeout. The test binary re-runs itself (the ignored `rank_child` below)
//! as each rank, with the rendezvous variables set. Run with `--test-threads 1`.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use petune_core::Error;
use petune_ext::{ProcessGroup, Rendezvous};
use tch::{Kind, Tensor};

/// The collectives' timeout in the children: short, so the dead-peer case is quick.
const TIMEOUT: Duration = Duration::from_secs(4);

/// A port nobody listens on now (the OS picks it; freed before rank 0 binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(scenario: &str, rank: usize, world: usize, port: u16) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rank_child", "--ignored", "--test-threads", "1", "--nocapture"])
        .env("PETUNE_TEST_SCENARIO", scenario)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .spawn()
        .unwrap()
}

/// Runs `scenario` as `world` ranks and asserts every one exits 0.
fn run_ranks(scenario: &str, world: usize) {
    let port = free_port();
    let children: Vec<Child> = (0..world).map(|r| spawn(scenario, r, world, port)).collect();
    for (r, mut c) in children.into_iter().enumerate() {
        let status = c.wait().unwrap();
        assert!(status.success(), "{scenario}: rank {r} failed ({status})");
    }
}

#[test]
fn two_ranks_sum_broadcast_and_barrier() {
    run_ranks("collectives", 2);
}

#[test]
fn three_ranks_sum() {
    run_ranks("collectives", 3);
}

#[test]
fn a_peer_that_left_is_an_error_within_the_timeout() {
    run_ranks("dead_peer", 2);
}

#[test]
fn a_peer_that_hangs_is_an_error_after_the_timeout() {
    run_ranks("hung_peer", 2);
}

#[test]
fn a_master_that_left_is_an_error_within_the_timeout() {
    run_ranks("dead_master", 2);
}

#[test]
fn bad_arguments_are_errors() {
    assert!(matches!(ProcessGroup::new("127.0.0.1", 1, 2, 2, TIMEOUT), Err(Error::Input(_))));
    assert!(matches!(
        ProcessGroup::new("127.0.0.1", 1, 0, 1, Duration::ZERO),
        Err(Error::Input(_))
    ));
    // A one-rank group needs no peer; a CUDA-less mismatch is caught on the C++ side.
    let pg = ProcessGroup::new("127.0.0.1", free_port(), 0, 1, TIMEOUT).unwrap();
    let mut t = Tensor::from_slice(&[1f32, 2., 3.]);
    pg.all_reduce_sum_(&mut t).unwrap();
    assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1., 2., 3.]);
    let mut strided = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu)).tr();
    match pg.all_reduce_sum_(&mut strided) {
        Err(Error::Extension { op, msg }) => {
            assert_eq!(op, "all_reduce");
            assert!(msg.contains("contiguous"), "{msg}");
        }
        other => panic!("expected an extension error, got {other:?}"),
    }
    assert!(matches!(pg.broadcast_(&mut t, 1), Err(Error::Input(_))));
}

/// A collective this rank's peer will not complete: the error it gives, and how long it took.
fn failed_all_reduce(pg: &ProcessGroup) -> (Error, Duration) {
    let start = Instant::now();
    let mut t = Tensor::from_slice(&[1f32]);
    let err = pg.all_reduce_sum_(&mut t).unwrap_err();
    let took = start.elapsed();
    eprintln!("rank {} got, after {took:?}: {err}", pg.rank());
    (err, took)
}

/// One rank of a scenario; only run as a child of the tests above.
#[test]
#[ignore = "a rank of the multi-process tests, started by them with the variables set"]
fn rank_child() {
    tch::set_num_threads(1);
    let scenario = std::env::var("PETUNE_TEST_SCENARIO").unwrap();
    let rdv = Rendezvous::from_env().unwrap();
    let pg = ProcessGroup::from_rendezvous(&rdv, TIMEOUT).unwrap();
    let (rank, world) = (pg.rank(), pg.world_size());
    assert_eq!((rank, world), (rdv.rank, rdv.world_size));
    match scenario.as_str() {
        "collectives" => {
            // Rank r holds (r + 1) * [1, 2, 3, 4]: the sum is world (world + 1) / 2 times that.
            let base = Tensor::from_slice(&[1f32, 2., 3., 4.]).reshape([2, 2]);
            let mut t = &base * (rank as f64 + 1.);
            pg.all_reduce_sum_(&mut t).unwrap();
            let k = (world * (world + 1) / 2) as f64;
            assert_eq!(t.size(), vec![2, 2]);
            let got = Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap();
            let want = Vec::<f32>::try_from(&(&base * k).flatten(0, -1)).unwrap();
            assert_eq!(got, want);
            // Integer tensors too, and a second all-reduce (fresh keys).
            let mut n = Tensor::from_slice(&[rank as i64, 10]);
            pg.all_reduce_sum_(&mut n).unwrap();
            let s: i64 = (0..world as i64).sum();
            assert_eq!(Vec::<i64>::try_from(&n).unwrap(), vec![s, 10 * world as i64]);
            // Broadcast from the last rank.
            let root = world - 1;
            let mut b = Tensor::from_slice(&[rank as f64, -1.]);
            pg.broadcast_(&mut b, root).unwrap();
            assert_eq!(Vec::<f64>::try_from(&b).unwrap(), vec![root as f64, -1.]);
            // Mismatched shapes or dtypes are an error on every rank, not a bad sum, and the
            // group stays usable after it.
            let mut m = Tensor::zeros([1 + rank as i64], (Kind::Float, tch::Device::Cpu));
            match pg.all_reduce_sum_(&mut m) {
                Err(Error::Extension { msg, .. }) => assert!(msg.contains("shape"), "{msg}"),
                other => panic!("expected a shape error, got {other:?}"),
            }
            let kind = if rank == 0 { Kind::Float } else { Kind::Double };
            let mut d = Tensor::zeros([3], (kind, tch::Device::Cpu));
            assert!(matches!(pg.broadcast_(&mut d, 0), Err(Error::Extension { .. })));
            let mut again = Tensor::from_slice(&[1f32]);
            pg.all_reduce_sum_(&mut again).unwrap();
            assert_eq!(Vec::<f32>::try_from(&again).unwrap(), vec![world as f32]);
            // A larger, odd-sized buffer (Gloo's ring splits it in chunks).
            let big = Tensor::arange(100_003, (Kind::Float, tch::Device::Cpu));
            let mut b2 = &big * (rank as f64 + 1.);
            pg.all_reduce_sum_(&mut b2).unwrap();
            let want = Vec::<f32>::try_from(&(&big * k)).unwrap();
            assert_eq!(Vec::<f32>::try_from(&b2).unwrap(), want);
            pg.barrier().unwrap();
        }
        "dead_peer" => {
            pg.barrier().unwrap();
            if rank == 1 {
                // Dies before the collective, without leaving (as a crash would); rank 0,
                // the store's host, stays up.
                std::mem::forget(pg);
                std::process::exit(0);
            }
            let (err, took) = failed_all_reduce(&pg);
            // Its connection dropped: Gloo notices at once, or at the latest at the timeout.
            assert!(matches!(err, Error::Extension { ref op, .. } if op == "all_reduce"));
            assert!(took < TIMEOUT + Duration::from_secs(5), "{took:?}");
        }
        "hung_peer" => {
            pg.barrier().unwrap();
            if rank == 1 {
                // Alive, connected, and never joins the collective: rank 0 must give up at
                // the timeout. Then it goes without leaving.
                std::thread::sleep(TIMEOUT + Duration::from_secs(2));
                std::mem::forget(pg);
                std::process::exit(0);
            }
            let (err, took) = failed_all_reduce(&pg);
            assert!(matches!(err, Error::Extension { ref op, .. } if op == "all_reduce"));
            assert!(took >= TIMEOUT - Duration::from_millis(100), "{took:?}");
            assert!(took < TIMEOUT + Duration::from_secs(5), "{took:?}");
        }
        "dead_master" => {
            pg.barrier().unwrap_or_else(|e| {
                // Rank 0 may be gone before rank 1 has finished the barrier's bookkeeping.
                assert_eq!(rank, 1, "{e}");
            });
            if rank == 0 {
                // Rank 0 hosts the store: dying (no clean leave) stops it under the other
                // rank's feet.
                std::mem::forget(pg);
                std::process::exit(0);
            }
            let (err, took) = failed_all_reduce(&pg);
            assert!(matches!(err, Error::Extension { ref op, .. } if op == "all_reduce"));
            assert!(took < TIMEOUT + Duration::from_secs(5), "{took:?}");
        }
        other => panic!("unknown scenario {other}"),
    }
}
