//! numpy's legacy `RandomState` (MT19937) and its `shuffle`, bit for bit.
//!
//! The LPT authors build their few-shot splits with `np.random.seed(seed)` followed by
//! `np.random.shuffle(train_lines)` (`encoder-only/data/generate_low_resource_data.py` in
//! github.com/xyltt/LPT; lpt-reference §6 "Few-shot"). Reproducing *their* splits therefore
//! needs numpy's exact stream, which numpy freezes for the legacy `RandomState`:
//!
//! - seeding an integer `0 <= seed < 2**32` is MT19937's `init_genrand(seed)` (numpy's
//!   `mt19937_seed`, reached from `_legacy_seeding` through `operator.index`), *not*
//!   `init_by_array`, which only array seeds (and Python's own `random.seed`) use;
//! - the generator is the reference MT19937 of Matsumoto and Nishimura (1998);
//! - `shuffle` on a list walks `i = n-1 .. 1` and swaps `x[i]` with `x[j]`,
//!   `j = random_interval(i)`: draw 32-bit words masked to the smallest all-ones mask
//!   covering `i` until one is `<= i` (rejection sampling, numpy `distributions.c`).
//!
//! Golden values from real numpy (scripts/numpy_shuffle_golden.py) are checked in
//! `tests/data_numpy_rng.rs`.

/// MT19937 state size, in 32-bit words.
const N: usize = 624;
/// MT19937 middle-word offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// numpy's legacy `RandomState`, restricted to what the few-shot protocol needs.
#[derive(Clone)]
pub struct RandomState {
    key: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for RandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The 624-word key is noise in a debug print; the position says where the stream is.
        f.debug_struct("RandomState").field("pos", &self.pos).finish_non_exhaustive()
    }
}

impl RandomState {
    /// The state after `np.random.seed(seed)` (or `np.random.RandomState(seed)`).
    ///
    /// numpy accepts exactly the integers `0 ..= 2**32 - 1`, which `u32` encodes.
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        key[0] = seed;
        for i in 1..N {
            let prev = key[i - 1];
            // Knuth's multiplier, as in init_genrand; wrapping = the C code's `& 0xffffffff`.
            key[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        // pos = N forces a full regeneration before the first draw, as numpy does.
        RandomState { key, pos: N }
    }

    /// Regenerates the 624-word block (the reference `genrand_int32` refill).
    fn refill(&mut self) {
        let mag01 = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for i in 0..N {
            let y = (self.key[i] & UPPER_MASK) | (self.key[(i + 1) % N] & LOWER_MASK);
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag01(y);
        }
        self.pos = 0;
    }

    /// The next 32-bit output (`genrand_int32`, numpy's `next_uint32` on the legacy state).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.refill();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        // Tempering.
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// numpy's `random_interval(max)`: a uniform integer in `0 ..= max` by masked rejection.
    ///
    /// Above `u32::MAX` numpy draws 64-bit words (two 32-bit outputs, high word first);
    /// that branch is kept for completeness though no realistic data set reaches it.
    pub fn random_interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        // Smallest all-ones mask >= max.
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        if max <= u64::from(u32::MAX) {
            loop {
                let v = u64::from(self.next_u32()) & mask;
                if v <= max {
                    return v;
                }
            }
        }
        loop {
            let hi = u64::from(self.next_u32());
            let lo = u64::from(self.next_u32());
            let v = ((hi << 32) | lo) & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.shuffle(xs)` on a Python list: Fisher–Yates from the end.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            // `j <= i < xs.len()`, so the cast back to usize cannot truncate.
            let j = self.random_interval(i as u64) as usize;
            xs.swap(i, j);
        }
    }
}

/// The permutation `np.random.seed(seed); xs = list(range(n)); np.random.shuffle(xs)` yields.
pub fn shuffled_indices(n: usize, seed: u32) -> Vec<usize> {
    let mut xs: Vec<usize> = (0..n).collect();
    RandomState::new(seed).shuffle(&mut xs);
    xs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_mt19937_seed_5489() {
        // The reference implementation's default seed; its first output is the widely
        // published 3499211612 (mt19937ar.c test vectors, also C++ std::mt19937).
        let mut rs = RandomState::new(5489);
        assert_eq!(rs.next_u32(), 3_499_211_612);
    }

    #[test]
    fn ten_thousandth_output_of_default_seed() {
        // C++11 [rand.predef]: the 10000th invocation of a default-constructed mt19937
        // yields 4123659995.
        let mut rs = RandomState::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = rs.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn interval_stays_in_range_and_zero_draws_nothing() {
        let mut rs = RandomState::new(1);
        for max in [1u64, 2, 3, 7, 8, 100, 1 << 20] {
            for _ in 0..200 {
                assert!(rs.random_interval(max) <= max);
            }
        }
        let mut a = RandomState::new(3);
        let mut b = RandomState::new(3);
        assert_eq!(a.random_interval(0), 0);
        // max = 0 must not consume the stream.
        assert_eq!(a.next_u32(), b.next_u32());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let p = shuffled_indices(500, 42);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..500).collect::<Vec<_>>());
        assert_ne!(p, s);
    }
}
