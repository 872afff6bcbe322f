//! Two and three real ranks on 127.0.0.1, unequal shares of a batch of 5: after
//! `average_gradients_`, every rank holds the one-rank mean gradient over the whole batch.
//! The trainer's exchange, `sum_gradients_`: a gradient only rank 0 has reaches every
//! rank, a tensor no rank touched keeps none, step scalars are summed; and
//! `gather_predictions` gives every rank all shares.
//! The test binary re-runs itself (the ignored `rank_child`) as each rank.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use petune_ext::{ProcessGroup, Rendezvous};
use petune_train::data_parallel::{
    average_gradients_, gather_predictions, shard_range, sum_gradients_,
};
use tch::{Device, Kind, Tensor};

fn run_ranks(world: usize) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let children: Vec<_> = (0..world)
        .map(|r| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "rank_child", "--ignored", "--test-threads", "1"])
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for (r, mut c) in children.into_iter().enumerate() {
        let status = c.wait().unwrap();
        assert!(status.success(), "rank {r} of {world} failed ({status})");
    }
}

#[test]
fn two_unequal_shares_give_the_one_rank_mean_gradient() {
    run_ranks(2);
}

#[test]
fn three_unequal_shares_give_the_one_rank_mean_gradient() {
    run_ranks(3);
}

/// Mean squared error of a linear map over `rows` of a fixed batch, and its gradients.
fn grads(rows: std::ops::Range<usize>) -> Vec<Tensor> {
    tch::manual_seed(7);
    let x = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
    let y = Tensor::randn([5, 2], (Kind::Float, Device::Cpu));
    let w = Tensor::randn([3, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let b = Tensor::randn([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let (s, n) = (rows.start as i64, rows.len() as i64);
    // [n, 2]: predictions for this share only.
    let pred = x.narrow(0, s, n).matmul(&w) + &b;
    let loss = (pred - y.narrow(0, s, n)).square().mean(Kind::Float);
    loss.backward();
    vec![w.grad().copy(), b.grad().copy()]
}

#[test]
#[ignore = "a rank of the multi-process tests, started by them with the variables set"]
fn rank_child() {
    tch::set_num_threads(1);
    let rdv = Rendezvous::from_env().unwrap();
    let pg = ProcessGroup::from_rendezvous(&rdv, Duration::from_secs(20)).unwrap();
    let share = shard_range(5, pg.rank(), pg.world_size()).unwrap();
    let local = share.len();
    let mut g = grads(share);
    average_gradients_(&pg, &mut g, local, 5).unwrap();
    let want = grads(0..5);
    for (got, want) in g.iter().zip(&want) {
        let diff = (got - want).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "rank {}: max |diff| {diff}", pg.rank());
    }
    // Without the weights (a plain mean of the shares' means) the result would differ.
    let plain = grads(shard_range(5, 0, pg.world_size()).unwrap());
    let d = (&plain[0] - &want[0]).abs().max().double_value(&[]);
    assert!(d > 1e-4, "the shares are not distinguishable: {d}");

    let (rank, w) = (pg.rank() as f64, pg.world_size() as f64);
    let a = Tensor::from_slice(&[1f32, 2.]).set_requires_grad(true);
    let b = Tensor::from_slice(&[3f32]).set_requires_grad(true);
    let c = Tensor::from_slice(&[5f32]).set_requires_grad(true);
    (&a * (rank + 1.0)).sum(Kind::Float).backward(); // a's gradient: rank + 1
    if pg.rank() == 0 {
        (&b * 2.0).sum(Kind::Float).backward(); // b's: 2, on rank 0 only
    }
    let mut scalars = [rank, 1.0];
    let params = [a.shallow_clone(), b.shallow_clone(), c.shallow_clone()];
    let stats = sum_gradients_(&pg, &params, &mut scalars).unwrap();
    assert_eq!(stats.bytes, (2 + 1 + 1 + 3 + 2) * 4);
    let sum = (w * (w + 1.0) / 2.0) as f32;
    assert_eq!(Vec::<f32>::try_from(&a.grad()).unwrap(), vec![sum, sum]);
    assert_eq!(Vec::<f32>::try_from(&b.grad()).unwrap(), vec![2.0], "rank {rank}");
    assert!(!c.grad().defined(), "no rank touched c");
    assert_eq!(scalars, [w * (w - 1.0) / 2.0, w]);

    let all: Vec<usize> = (0..7).map(|i| (i * 5) % 3).collect();
    let mine = &all[shard_range(7, pg.rank(), pg.world_size()).unwrap()];
    assert_eq!(gather_predictions(&pg, mine, 7).unwrap(), all);
    assert!(gather_predictions(&pg, &[], 7).is_err(), "a share of the wrong size");
    pg.barrier().unwrap();
}
