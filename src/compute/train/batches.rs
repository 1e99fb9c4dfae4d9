//! Mini-batches: which samples each update uses.
//!
//! One update = one mini-batch. An epoch walks the samples in its order, `batch_size`
//! at a time; the last batch of an epoch is smaller when `batch_size` does not divide
//! m. Without a seed the order is 0, 1, …, m − 1 every epoch.
//!
//! With a seed each epoch has its own order, drawn at the start of the epoch, and the
//! algorithm is part of the contract (stable across releases and machines):
//! - the generator is SplitMix64 (Steele, Lea & Flood 2014) with state `seed`: each
//!   draw adds 0x9E3779B97F4A7C15 to the state (wrapping) and returns
//!   `z ^ (z >> 31)` after `z = (z ^ (z >> 30))·0xBF58476D1CE4E5B9`,
//!   `z = (z ^ (z >> 27))·0x94D049BB133111EB` (wrapping products) — one stream for
//!   the whole run;
//! - each epoch starts from the identity order and applies Fisher–Yates: for i from
//!   m − 1 down to 1, draw r and swap positions i and j = ⌊r·(i + 1) / 2⁶⁴⌋ (Lemire's
//!   multiply-shift; its bias is below m/2⁶⁴).

/// SplitMix64: a tiny, well-mixed 64-bit generator whose whole state is one `u64`.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The generator started at `seed` (the request's `seed`).
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next number of the sequence (SplitMix64's step, stable across releases and machines).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A draw in `0..bound` (`bound` ≥ 1) by multiply-shift.
    pub fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }
}

/// The sequence of mini-batches of a run: state goes in and out through `&mut self`,
/// nothing is allocated after [`Batches::new`].
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<usize>,
    size: usize,
    /// Position of the next batch in `order`; `order.len()` means "start a new epoch".
    pos: usize,
    rng: Option<SplitMix64>,
}

impl Batches {
    /// Batches of `size` (1 ≤ size ≤ m) over `m` samples, shuffled per epoch when `seed`.
    pub fn new(m: usize, size: usize, seed: Option<u64>) -> Self {
        Batches {
            order: (0..m).collect(),
            size: size.clamp(1, m.max(1)),
            pos: m,
            rng: seed.map(SplitMix64::new),
        }
    }

    /// The sample indices of the next mini-batch.
    pub fn next_batch(&mut self) -> &[usize] {
        let m = self.order.len();
        if self.pos >= m {
            self.pos = 0;
            if let Some(rng) = &mut self.rng {
                for (i, v) in self.order.iter_mut().enumerate() {
                    *v = i;
                }
                for i in (1..m).rev() {
                    let j = rng.below(i + 1);
                    self.order.swap(i, j);
                }
            }
        }
        let start = self.pos;
        let end = (start + self.size).min(m);
        self.pos = end;
        &self.order[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_published_stream() {
        // Seed 0: the first outputs of Vigna's reference splitmix64.c (0xe220a8397b1dcdaf,
        // 0x6e789e6aa1b965f4, 0x06c45d188009454f), widely quoted as its test vector.
        let mut g = SplitMix64::new(0);
        for w in [
            0xe220_a839_7b1d_cdaf,
            0x6e78_9e6a_a1b9_65f4,
            0x06c4_5d18_8009_454f,
        ] {
            assert_eq!(g.next_u64(), w);
        }
        // Seed 1234567: values from the independent Python SplitMix64 of
        // scripts/train_reference.py (arbitrary-precision ints masked to 64 bits).
        let mut g = SplitMix64::new(1234567);
        for w in [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ] {
            assert_eq!(g.next_u64(), w);
        }
    }

    #[test]
    fn without_a_seed_batches_walk_in_order_and_the_last_is_smaller() {
        let mut b = Batches::new(5, 2, None);
        let got: Vec<Vec<usize>> = (0..4).map(|_| b.next_batch().to_vec()).collect();
        assert_eq!(got, vec![vec![0, 1], vec![2, 3], vec![4], vec![0, 1]]);
    }

    #[test]
    fn a_seed_gives_a_reproducible_permutation_each_epoch() {
        let epochs = |seed| {
            let mut b = Batches::new(6, 3, Some(seed));
            (0..6).map(|_| b.next_batch().to_vec()).collect::<Vec<_>>()
        };
        let a = epochs(42);
        assert_eq!(a, epochs(42));
        for e in 0..3 {
            let mut all = [a[2 * e].clone(), a[2 * e + 1].clone()].concat();
            all.sort();
            assert_eq!(all, (0..6).collect::<Vec<_>>());
        }
        assert_ne!(a, epochs(43));
    }
}
