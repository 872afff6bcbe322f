//! Choosing the next token from a row of logits: greedy (argmax), or temperature and
//! nucleus (top-p) sampling (Holtzman et al., 2020, "The Curious Case of Neural Text
//! Degeneration", §3.1), as transformers' `TemperatureLogitsWarper` then
//! `TopPLogitsWarper` (src/transformers/generation/logits_process.py) order them.
//!
//! Sampling draws from petune's own seeded Mersenne Twister (numpy's `RandomState`, the
//! generator of the few-shot protocol), not from libtorch's global generator: the same
//! seed gives the same tokens whatever else runs in the process (tests run in parallel
//! threads), on every device.

use petune_core::{Error, Result};

use crate::data::numpy_rng::RandomState;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoding {
    /// The most likely token (the first of equal maxima).
    Greedy,
    /// A draw from `softmax(logits / temperature)` restricted to the smallest set of
    /// most likely tokens whose probability reaches `top_p`.
    Sample {
        /// Softmax temperature, finite and > 0.
        temperature: f64,
        /// Nucleus mass in `(0, 1]` (1 = no restriction).
        top_p: f64,
        /// Seed of the draws.
        seed: u32,
    },
}

impl Decoding {
    /// Checks the sampling parameters: a typed error naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if let Decoding::Sample { temperature, top_p, .. } = *self {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(Error::config(
                    "temperature",
                    format!("must be a finite number > 0 when sampling, got {temperature}"),
                ));
            }
            if !(top_p > 0.0 && top_p <= 1.0) {
                return Err(Error::config("top_p", format!("must be in (0, 1], got {top_p}")));
            }
        }
        Ok(())
    }
}

/// The state of a decoding: the rule and, when sampling, its random stream.
#[derive(Debug, Clone)]
pub struct Sampler {
    decoding: Decoding,
    rng: Option<RandomState>,
}

impl Sampler {
    /// A sampler for `decoding` (validated).
    pub fn new(decoding: Decoding) -> Result<Sampler> {
        decoding.validate()?;
        let rng = match decoding {
            Decoding::Greedy => None,
            Decoding::Sample { seed, .. } => Some(RandomState::new(seed)),
        };
        Ok(Sampler { decoding, rng })
    }

    /// The next token for one row of logits (`[V]`, as `f32`). Non-finite logits are a
    /// typed error (a diverged model), never a silent pick.
    pub fn next_token(&mut self, logits: &[f32]) -> Result<i64> {
        if logits.is_empty() {
            return Err(Error::input("no logits to choose a token from"));
        }
        if let Some(bad) = logits.iter().position(|x| x.is_nan() || *x == f32::INFINITY) {
            return Err(Error::input(format!(
                "the logits are not finite (token {bad}: {}): cannot choose a token",
                logits[bad]
            )));
        }
        if logits.iter().all(|x| *x == f32::NEG_INFINITY) {
            return Err(Error::input("every logit is -inf: no token can be chosen"));
        }
        match (self.decoding, self.rng.as_mut()) {
            (Decoding::Sample { temperature, top_p, .. }, Some(rng)) => {
                Ok(sample(logits, temperature, top_p, uniform(rng)) as i64)
            }
            _ => Ok(argmax(logits) as i64),
        }
    }
}

/// Index of the first maximum.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best
}

/// A float in `[0, 1)` with 53 random bits (numpy's `random_sample`).
fn uniform(rng: &mut RandomState) -> f64 {
    let a = f64::from(rng.next_u32() >> 5);
    let b = f64::from(rng.next_u32() >> 6);
    (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
}

/// The token that `u` (uniform in `[0, 1)`) picks from the tempered nucleus of `logits`.
fn sample(logits: &[f32], temperature: f64, top_p: f64, u: f64) -> usize {
    // Softmax in f64 with the maximum subtracted (stable).
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, ((l as f64 - max) / temperature).exp()))
        .filter(|p| p.1 > 0.0) // -inf logits (and underflows) are never drawn
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    // Most likely first; equal probabilities by index, so the order is deterministic.
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // Keep tokens until the mass reaches top_p (the one that crosses it included;
    // always at least one), as TopPLogitsWarper keeps the complement of the tail whose
    // mass is at most 1 - top_p.
    let mut kept = 0;
    let mut mass = 0.0;
    for p in &probs {
        kept += 1;
        mass += p.1 / total;
        if mass >= top_p {
            break;
        }
    }
    let nucleus = &probs[..kept];
    let nucleus_total: f64 = nucleus.iter().map(|p| p.1).sum();
    let target = u * nucleus_total;
    let mut acc = 0.0;
    for p in nucleus {
        acc += p.1;
        if target < acc {
            return p.0;
        }
    }
    nucleus[kept - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(Decoding::Greedy).unwrap();
        assert_eq!(s.next_token(&[0.1, 3.0, -1.0, 3.0]).unwrap(), 1);
        assert!(s.next_token(&[0.0, f32::NAN]).is_err());
        assert!(s.next_token(&[]).is_err());
        assert!(s.next_token(&[f32::NEG_INFINITY; 3]).is_err());
        // A -inf logit is never drawn, even at the tail.
        let mut t =
            Sampler::new(Decoding::Sample { temperature: 1.0, top_p: 1.0, seed: 1 }).unwrap();
        let x = [0.0, f32::NEG_INFINITY, 0.0];
        assert!((0..100).all(|_| t.next_token(&x).unwrap() != 1));
    }

    #[test]
    fn top_p_keeps_the_nucleus_and_the_same_seed_gives_the_same_draws() {
        // probs ∝ e^[2, 1, 0, -5] = 0.665, 0.245, 0.090, 0.0005: top_p 0.8 keeps {0, 1}.
        let logits = [2.0f32, 1.0, 0.0, -5.0];
        let draws = |seed| {
            let mut s =
                Sampler::new(Decoding::Sample { temperature: 1.0, top_p: 0.8, seed }).unwrap();
            (0..200).map(|_| s.next_token(&logits).unwrap()).collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7));
        assert_ne!(a, draws(8));
        assert!(a.iter().all(|&t| t == 0 || t == 1), "{a:?}");
        let ones = a.iter().filter(|&&t| t == 1).count();
        // 0.245 / 0.910 of 200 draws ≈ 54.
        assert!((30..80).contains(&ones), "{ones}");
        // A tiny top_p is greedy; a tiny temperature too.
        assert_eq!(sample(&logits, 1.0, 1e-6, 0.99), 0);
        assert_eq!(sample(&logits, 1e-4, 1.0, 0.99), 0);
        // u near 1 with top_p 1 reaches the tail.
        assert_eq!(sample(&logits, 1.0, 1.0, 0.99999), 3);
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        for (temperature, top_p) in
            [(0.0, 1.0), (-1.0, 1.0), (f64::NAN, 1.0), (1.0, 0.0), (1.0, 1.5)]
        {
            let d = Decoding::Sample { temperature, top_p, seed: 0 };
            assert!(Sampler::new(d).is_err(), "{temperature} {top_p}");
        }
    }
}
