//! Counter-based random numbers: every value is a pure function of
//! `(seed, stream, index)`.
//!
//! The NCA needs reproducible randomness that can be recomputed for any step
//! without replaying the steps before it: a checkpoint then only has to store
//! the state, and scrubbing backward in growth never has to rewind a generator.
//! A stateful PRNG would force us to store and restore its state alongside
//! every checkpoint, so instead each value is a hash of its coordinates.
//!
//! The hash is SplitMix64 (Steele, Lea & Flood 2014): the seed and stream are
//! folded into a starting key, and `index` picks the index-th output of the
//! SplitMix64 sequence from that key. SplitMix64's finaliser passes BigCrush
//! when used this way, which is far more than a cellular automaton needs.
//!
//! Streams used by the crate (documented here so they never collide):
//! * `0`: initial state of the NCA (one normal per cell and channel);
//! * `1 + k`: the fire-rate mask of NCA step `k`;
//! * [`MUTATION_STREAM`]` + k`: mutation noise of NCA step `k`;
//! * [`DAMAGE_STREAM`]: placement of damage rectangles;
//! * [`EXCERPT_STREAM`]: where in its bank an excerpt seed's passage starts.

/// The golden-ratio increment of SplitMix64: consecutive indices are this far
/// apart in the underlying Weyl sequence.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// First stream used for mutation noise (step `k` uses `MUTATION_STREAM + k`).
/// Far away from the mask streams `1 + k` so the two never overlap.
pub const MUTATION_STREAM: u64 = 1 << 62;

/// Stream used to place damage rectangles.
pub const DAMAGE_STREAM: u64 = (1 << 62) + (1 << 61);

/// Stream of an excerpt seed's passage start (index 0).
pub const EXCERPT_STREAM: u64 = (1 << 62) + (1 << 61) + (1 << 60);

/// SplitMix64's output finaliser (variant 13 of Stafford's mixers).
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64 random bits for `(seed, stream, index)`.
#[inline]
pub fn bits(seed: u64, stream: u64, index: u64) -> u64 {
    // Fold seed and stream into a key through two rounds of the finaliser so
    // that nearby seeds and nearby streams give unrelated sequences.
    let key = mix(mix(seed.wrapping_add(GOLDEN)) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    mix(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// Uniform in `[0, 1)`, with 24 bits of resolution so every value is exactly
/// representable as an `f32` (no rounding up to 1.0).
#[inline]
pub fn uniform(seed: u64, stream: u64, index: u64) -> f32 {
    (bits(seed, stream, index) >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// Standard normal (mean 0, variance 1) via Box–Muller.
///
/// Both uniforms come from one 64-bit hash, so the value stays a function of
/// `(seed, stream, index)` alone. The transform is evaluated in `f64` and
/// rounded to `f32`, which absorbs last-bit differences between platform
/// `ln`/`cos` implementations in practically every case.
#[inline]
pub fn normal(seed: u64, stream: u64, index: u64) -> f32 {
    let h = bits(seed, stream, index);
    // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1).
    let u1 = ((h >> 32) as f64 + 1.0) * (1.0 / 4_294_967_296.0);
    let u2 = (h & 0xFFFF_FFFF) as f64 * (1.0 / 4_294_967_296.0);
    let r = (-2.0 * u1.ln()).sqrt();
    (r * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_stateless() {
        for i in 0..100 {
            assert_eq!(uniform(7, 3, i).to_bits(), uniform(7, 3, i).to_bits());
            assert_eq!(normal(7, 3, i).to_bits(), normal(7, 3, i).to_bits());
        }
        // Order of evaluation must not matter.
        let forward: Vec<f32> = (0..50).map(|i| normal(1, 0, i)).collect();
        let backward: Vec<f32> = (0..50).rev().map(|i| normal(1, 0, i)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
    }

    #[test]
    fn seeds_streams_and_indices_differ() {
        let a: Vec<u64> = (0..64).map(|i| bits(1, 0, i)).collect();
        let b: Vec<u64> = (0..64).map(|i| bits(2, 0, i)).collect();
        let c: Vec<u64> = (0..64).map(|i| bits(1, 1, i)).collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len(), "indices collide");
    }

    #[test]
    fn uniform_range_and_moments() {
        let n = 200_000u64;
        let mut sum = 0.0f64;
        let mut sum2 = 0.0f64;
        for i in 0..n {
            let u = uniform(42, 5, i);
            assert!((0.0..1.0).contains(&u));
            sum += u as f64;
            sum2 += (u as f64) * (u as f64);
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "var {var}");
    }

    #[test]
    fn normal_moments() {
        let n = 200_000u64;
        let (mut sum, mut sum2, mut beyond3) = (0.0f64, 0.0f64, 0usize);
        for i in 0..n {
            let z = normal(9, 0, i) as f64;
            assert!(z.is_finite());
            sum += z;
            sum2 += z * z;
            if z.abs() > 3.0 {
                beyond3 += 1;
            }
        }
        let mean = sum / n as f64;
        let std = (sum2 / n as f64 - mean * mean).sqrt();
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((std - 1.0).abs() < 0.01, "std {std}");
        // P(|z| > 3) = 0.27 %; a broken transform is far off.
        let frac = beyond3 as f64 / n as f64;
        assert!((0.0015..0.004).contains(&frac), "tail {frac}");
    }

    #[test]
    fn fire_mask_rate() {
        let n = 100_000u64;
        let fired = (0..n).filter(|&i| uniform(3, 1, i) < 0.25).count();
        let rate = fired as f64 / n as f64;
        assert!((rate - 0.25).abs() < 0.01, "rate {rate}");
    }
}
