//! The extension's contract: bad calls are typed errors (never an abort), the fused step
//! is PyTorch's AdamW recurrence, the foreach norm is the global 2-norm, autocast takes
//! the dtype it is given and restores the previous state.

use petune_core::Error;
use petune_ext::{
    allow_tf32_cublas, autocast, autocast_state, foreach_mul_, foreach_mul_scalar_, fused_adamw_,
    grads_to_none, release_free_heap, set_allow_tf32_cublas, total_norm, AdamWHyper, AutocastDtype,
    AutocastGuard,
};
use tch::{Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn hyper() -> AdamWHyper {
    AdamWHyper { lr: 0.1, beta1: 0.9, beta2: 0.999, weight_decay: 0.1, eps: 1e-8 }
}

fn ext_err<T: std::fmt::Debug>(r: petune_core::Result<T>) -> (String, String) {
    match r {
        Err(Error::Extension { op, msg }) => (op, msg),
        other => panic!("expected an extension error, got {other:?}"),
    }
}

/// One parameter with its gradient, moments and step counter.
fn state(values: &[f32], grad: &[f32]) -> [Tensor; 5] {
    [
        Tensor::from_slice(values),
        Tensor::from_slice(grad),
        Tensor::zeros([values.len() as i64], CPU),
        Tensor::zeros([values.len() as i64], CPU),
        Tensor::zeros([], CPU),
    ]
}

#[test]
fn fused_adamw_is_pytorchs_recurrence() {
    tch::set_num_threads(1);
    let [p, g, m, v, s] = state(&[1.0, -2.0], &[0.5, 0.25]);
    let h = hyper();
    let (mut x, mut mm, mut vv) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
    for t in 1..=3 {
        fused_adamw_(
            &[p.shallow_clone()],
            &[g.shallow_clone()],
            &[m.shallow_clone()],
            &[v.shallow_clone()],
            &[s.shallow_clone()],
            &h,
            None,
        )
        .unwrap();
        for i in 0..2 {
            let gi = [0.5, 0.25][i];
            x[i] *= 1.0 - h.lr * h.weight_decay; // decay first (torch)
            mm[i] = h.beta1 * mm[i] + (1.0 - h.beta1) * gi;
            vv[i] = h.beta2 * vv[i] + (1.0 - h.beta2) * gi * gi;
            let bc1 = 1.0 - h.beta1.powi(t);
            let bc2 = 1.0 - h.beta2.powi(t);
            x[i] -= h.lr / bc1 * mm[i] / (vv[i].sqrt() / bc2.sqrt() + h.eps);
        }
        assert_eq!(s.double_value(&[]), t as f64, "the step counter is incremented");
    }
    for (i, want) in x.iter().enumerate() {
        let got = p.double_value(&[i as i64]);
        assert!((got - want).abs() < 1e-6, "{i}: {got} vs {want}");
    }
}

/// The kernel's `grad_scale` divides the gradient (and writes the divided one back):
/// a step with gradient `g` and scale 4 is the step with gradient `g / 4`. A scale that
/// is not a float32 scalar is a typed error.
#[test]
fn grad_scale_divides_the_gradient_inside_the_kernel() {
    tch::set_num_threads(1);
    let [p, g, m, v, s] = state(&[1.0, -2.0], &[2.0, 1.0]);
    let [q, gq, mq, vq, sq] = state(&[1.0, -2.0], &[0.5, 0.25]);
    let one = |t: &Tensor| [t.shallow_clone()];
    let four = Tensor::from(4.0f32);
    fused_adamw_(&one(&p), &one(&g), &one(&m), &one(&v), &one(&s), &hyper(), Some(&four)).unwrap();
    fused_adamw_(&one(&q), &one(&gq), &one(&mq), &one(&vq), &one(&sq), &hyper(), None).unwrap();
    assert!(p.equal(&q) && m.equal(&mq) && v.equal(&vq), "{p} vs {q}");
    assert!(g.equal(&gq), "the divided gradient is written back: {g}");
    for bad in [Tensor::from(4.0f64), Tensor::from_slice(&[4.0f32, 4.0])] {
        let (op, msg) = ext_err(fused_adamw_(
            &one(&p),
            &one(&g),
            &one(&m),
            &one(&v),
            &one(&s),
            &hyper(),
            Some(&bad),
        ));
        assert_eq!(op, "fused_adamw_");
        assert!(msg.contains("grad_scale"), "{msg}");
    }
}

/// `grads_to_none` leaves the gradient undefined; the next backward stores a fresh one.
#[test]
fn grads_to_none_releases_the_gradient() {
    let x = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    (&x * 3.0).sum(Kind::Float).backward();
    assert!(x.grad().defined());
    grads_to_none(&[x.shallow_clone()]).unwrap();
    assert!(!x.grad().defined());
    (&x * 2.0).sum(Kind::Float).backward();
    assert_eq!(Vec::<f32>::try_from(&x.grad()).unwrap(), vec![2.0, 2.0]);
}

/// `release_free_heap` runs (glibc's malloc_trim) after memory was freed.
#[test]
fn release_free_heap_runs() {
    drop(Tensor::ones([1 << 20], CPU));
    assert!(release_free_heap().is_ok());
}

#[test]
fn mismatched_lists_are_errors() {
    let [p, g, m, v, s] = state(&[1.0], &[1.0]);
    let (op, msg) = ext_err(fused_adamw_(
        &[p.shallow_clone(), p.shallow_clone()],
        &[g],
        &[m],
        &[v],
        &[s],
        &hyper(),
        None,
    ));
    assert_eq!(op, "fused_adamw_");
    assert!(msg.contains("params 2") && msg.contains("grads 1"), "{msg}");
}

#[test]
fn a_wrong_dtype_shape_or_step_is_an_error_from_cpp() {
    let [p, g, m, v, s] = state(&[1.0, 2.0], &[1.0, 1.0]);
    let h = hyper();
    let g64 = g.to_kind(Kind::Double);
    let (_, msg) = ext_err(fused_adamw_(
        &[p.shallow_clone()],
        &[g64],
        &[m.shallow_clone()],
        &[v.shallow_clone()],
        &[s.shallow_clone()],
        &h,
        None,
    ));
    assert!(msg.contains("dtype") && msg.contains("Double"), "{msg}");
    let short = Tensor::zeros([1], CPU);
    let (_, msg) = ext_err(fused_adamw_(
        &[p.shallow_clone()],
        &[g.shallow_clone()],
        &[short],
        &[v.shallow_clone()],
        &[s.shallow_clone()],
        &h,
        None,
    ));
    assert!(msg.contains("shape"), "{msg}");
    let int_step = Tensor::zeros([], (Kind::Int64, Device::Cpu));
    let (_, msg) = ext_err(fused_adamw_(
        &[p.shallow_clone()],
        &[g.shallow_clone()],
        &[m.shallow_clone()],
        &[v.shallow_clone()],
        &[int_step],
        &h,
        None,
    ));
    assert!(msg.contains("state_steps"), "{msg}");
    let undefined = Tensor::new();
    let (_, msg) = ext_err(fused_adamw_(
        &[p.shallow_clone()],
        &[undefined],
        &[m.shallow_clone()],
        &[v.shallow_clone()],
        &[s.shallow_clone()],
        &h,
        None,
    ));
    assert!(msg.contains("undefined"), "{msg}");
    let ints = Tensor::from_slice(&[1i64, 2]);
    let (_, msg) = ext_err(fused_adamw_(
        &[ints.shallow_clone()],
        &[ints.shallow_clone()],
        &[ints.shallow_clone()],
        &[ints.shallow_clone()],
        &[s.shallow_clone()],
        &h,
        None,
    ));
    assert!(msg.contains("floating point"), "{msg}");
    let (_, msg) = ext_err(fused_adamw_(&[], &[], &[], &[], &[], &h, None));
    assert!(msg.contains("no parameters"), "{msg}");
    // Nothing was touched by the refused calls.
    assert_eq!(p.double_value(&[0]), 1.0);
    assert_eq!(s.double_value(&[]), 0.0);
}

#[test]
fn libtorchs_own_exceptions_come_back_as_errors() {
    // _foreach_mul_.Tensor wants a 0-dim factor: libtorch's check, not ours.
    let t = Tensor::ones([3], CPU);
    let (op, msg) = ext_err(foreach_mul_(&[t.shallow_clone()], &Tensor::from_slice(&[2.0f32])));
    assert_eq!(op, "foreach_mul_");
    assert!(msg.contains("dim"), "{msg}");
    // An integer tensor cannot hold the float result in place.
    let ints = Tensor::from_slice(&[1i64, 2]);
    let (_, msg) = ext_err(foreach_mul_scalar_(&[ints], 0.5));
    assert!(!msg.is_empty());
    let (_, msg) = ext_err(total_norm(&[]));
    assert!(msg.contains("no tensors"), "{msg}");
    assert_eq!(t.double_value(&[0]), 1.0);
}

#[test]
fn total_norm_and_scaling() {
    tch::set_num_threads(1);
    tch::manual_seed(1);
    let ts = [Tensor::randn([4, 3], CPU), Tensor::randn([7], CPU), Tensor::randn([2, 2, 2], CPU)];
    let flat = Tensor::cat(&ts.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0);
    let want = flat.norm().double_value(&[]);
    let got = total_norm(&ts).unwrap();
    assert_eq!(got.kind(), Kind::Float);
    assert!(got.size().is_empty(), "a scalar");
    assert!((got.double_value(&[]) - want).abs() < 1e-5 * want, "{got} vs {want}");
    let before: Vec<Tensor> = ts.iter().map(Tensor::copy).collect();
    foreach_mul_(&ts, &Tensor::from(0.5f32)).unwrap();
    foreach_mul_scalar_(&ts, 4.0).unwrap();
    for (t, b) in ts.iter().zip(&before) {
        assert!(t.allclose(&(b * 2.0), 0.0, 0.0, false));
    }
}

#[test]
fn autocast_uses_the_dtype_asked_for_and_restores_the_state() {
    tch::set_num_threads(1);
    let a = Tensor::ones([4, 4], CPU);
    assert!(!autocast_state(Device::Cpu).unwrap().0);
    let kind = autocast(Device::Cpu, AutocastDtype::Bf16, || {
        let inner = {
            let _nested = AutocastGuard::new(Device::Cpu, AutocastDtype::Bf16).unwrap();
            a.matmul(&a).kind()
        };
        // The inner guard's exit restored "enabled", not "off".
        assert_eq!(autocast_state(Device::Cpu).unwrap(), (true, Some(AutocastDtype::Bf16)));
        assert_eq!(inner, Kind::BFloat16);
        a.matmul(&a).kind()
    })
    .unwrap();
    assert_eq!(kind, Kind::BFloat16);
    assert!(!autocast_state(Device::Cpu).unwrap().0);
    assert_eq!(a.matmul(&a).kind(), Kind::Float);
    // CUDA's autocast state can be set without a GPU (it is a thread-local switch).
    let (_, before) = autocast_state(Device::Cuda(0)).unwrap();
    {
        let _g = AutocastGuard::new(Device::Cuda(0), AutocastDtype::Bf16).unwrap();
        assert_eq!(autocast_state(Device::Cuda(0)).unwrap(), (true, Some(AutocastDtype::Bf16)));
    }
    assert_eq!(autocast_state(Device::Cuda(0)).unwrap(), (false, before));
    let err = AutocastGuard::new(Device::Mps, AutocastDtype::Bf16).unwrap_err().to_string();
    assert!(err.contains("autocast"), "{err}");
}

#[test]
fn tf32_switch_round_trips() {
    let before = allow_tf32_cublas().unwrap();
    assert!(!before, "off by default, as in PyTorch");
    set_allow_tf32_cublas(true).unwrap();
    assert!(allow_tf32_cublas().unwrap());
    set_allow_tf32_cublas(false).unwrap();
    assert!(!allow_tf32_cublas().unwrap());
}
