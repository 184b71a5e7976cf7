//! Band-limited resampling: a Kaiser-windowed sinc, tabulated once, read as
//! a polyphase filter at rates ≤ 1 (the common case) and stretched above 1.

/// Windowed-sinc zero crossings on each side of the interpolation point.
pub(crate) const SINC_ZEROS: usize = 14;
/// Table entries per zero crossing (linear interpolation in between).
pub(crate) const SINC_RES: usize = 512;
/// Cutoff as a fraction of the (lower) Nyquist, leaving room for the Kaiser
/// transition band. 14 zero crossings / 0.875 = 16 samples each side, so the
/// polyphase rows are exactly `POLY_TAPS` long.
pub(crate) const SINC_RHO: f32 = 0.875;
/// Taps per output sample at rates ≤ 1 (the common case: 22.05 kHz generations
/// played at 44.1/48 kHz up to about +13 semitones).
pub(crate) const POLY_TAPS: usize = 32;
/// Fractional-position phases of the polyphase table (linearly interpolated).
pub(crate) const POLY_PHASES: usize = 256;
/// Kaiser β (≈ 80 dB stopband).
pub(crate) const KAISER_BETA: f64 = 7.9;
/// Highest rate the kernel stretches for; beyond it cost would grow without bound
/// (8 = three octaves above a 1:1 rate), so it is the documented aliasing limit.
pub(crate) const MAX_STRETCH: f32 = 8.0;

/// Modified Bessel function of the first kind, order 0 (for the Kaiser window).
pub(crate) fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Band-limited interpolator: a Kaiser-windowed sinc tabulated in units of zero
/// crossings, so the same table serves every cutoff (stretching the kernel for
/// rates above 1 moves the cutoff to the new Nyquist).
pub(crate) struct SincTable {
    /// `h(u)` for `u = j / SINC_RES`, `j in 0..=SINC_ZEROS*SINC_RES`, plus a zero guard;
    /// the general (stretched-kernel) path for rates above 1.
    pub(crate) taps: Vec<f32>,
    /// Polyphase rows for rates ≤ 1: row `p` holds the `POLY_TAPS` weights for
    /// fractional position `p / POLY_PHASES`, contiguous so the dot product vectorises.
    pub(crate) poly: Vec<f32>,
    /// The CPU has AVX2 and FMA, detected once here so the per-sample dispatch
    /// is one predictable branch (the release build targets baseline x86-64).
    #[cfg(target_arch = "x86_64")]
    pub(crate) avx2: bool,
}

impl SincTable {
    pub(crate) fn new() -> Self {
        let n = SINC_ZEROS * SINC_RES;
        let norm = bessel_i0(KAISER_BETA);
        let mut taps = Vec::with_capacity(n + 2);
        for j in 0..=n {
            let u = j as f64 / SINC_RES as f64;
            let sinc = if j == 0 {
                1.0
            } else {
                (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u)
            };
            let r = u / SINC_ZEROS as f64;
            let w = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
            taps.push((sinc * w) as f32);
        }
        taps.push(0.0);
        taps.push(0.0);
        let half = POLY_TAPS / 2;
        let mut poly = Vec::with_capacity((POLY_PHASES + 1) * POLY_TAPS);
        for p in 0..=POLY_PHASES {
            let frac = p as f64 / POLY_PHASES as f64;
            for k in 0..POLY_TAPS {
                // Tap k reads src[centre - half + 1 + k], at distance frac + half - 1 - k.
                let d = frac + (half as f64 - 1.0 - k as f64);
                let u = (d.abs() * SINC_RHO as f64).min(SINC_ZEROS as f64);
                let r = u / SINC_ZEROS as f64;
                let sinc = if u == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u)
                };
                let w = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
                poly.push((sinc * w * SINC_RHO as f64) as f32);
            }
        }
        Self {
            taps,
            poly,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"),
        }
    }

    /// [`read`](Self::read) at the unstretched cutoff (`scale == SINC_RHO`), via the
    /// polyphase table: two 32-tap dot products and a blend between adjacent phases.
    #[cfg(test)]
    pub(crate) fn read_poly(&self, src: &[f32], x: f64, wrap: bool) -> f32 {
        self.read_poly_pair(src, None, x, wrap).0
    }

    /// [`read_poly`](Self::read_poly) of a left and an optional right source at
    /// the same position (the right result repeats the left for mono): the
    /// position and kernel rows are worked out once for both channels.
    ///
    /// Runs an AVX2 build of the same code when the CPU has it (8-wide dot
    /// products, an inline `floor`). Both builds perform the same IEEE
    /// operations in the same order (Rust never contracts to FMA on its own),
    /// so the output is bit-identical whichever runs. The voices choose the
    /// build once per block instead (`Voices::render_voices`) and inline
    /// [`read_poly_pair_impl`](Self::read_poly_pair_impl); this per-call
    /// dispatch is what the tests compare the builds with.
    #[cfg(test)]
    #[inline]
    pub(crate) fn read_poly_pair(
        &self,
        src: &[f32],
        src_r: Option<&[f32]>,
        x: f64,
        wrap: bool,
    ) -> (f32, f32) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only when the CPU reports AVX2 and FMA.
            return unsafe { self.read_poly_pair_avx2(src, src_r, x, wrap) };
        }
        self.read_poly_pair_impl::<false>(src, src_r, x, wrap)
    }

    /// [`read_poly_pair`](Self::read_poly_pair) compiled for AVX2.
    #[cfg(all(test, target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn read_poly_pair_avx2(
        &self,
        src: &[f32],
        src_r: Option<&[f32]>,
        x: f64,
        wrap: bool,
    ) -> (f32, f32) {
        self.read_poly_pair_impl::<true>(src, src_r, x, wrap)
    }

    /// The body of [`read_poly_pair`](Self::read_poly_pair), inlined into each
    /// build; `WIDE` only inside functions compiled for AVX2 (see [`dot`]).
    #[inline(always)]
    pub(crate) fn read_poly_pair_impl<const WIDE: bool>(
        &self,
        src: &[f32],
        src_r: Option<&[f32]>,
        x: f64,
        wrap: bool,
    ) -> (f32, f32) {
        if src.is_empty() {
            return (0.0, 0.0);
        }
        let centre = x.floor();
        let pos = (x - centre) as f32 * POLY_PHASES as f32;
        let p = (pos as usize).min(POLY_PHASES - 1);
        let f = pos - p as f32;
        let lo = centre as i64 - (POLY_TAPS as i64 / 2 - 1);
        let row_a = &self.poly[p * POLY_TAPS..(p + 1) * POLY_TAPS];
        let row_b = &self.poly[(p + 1) * POLY_TAPS..(p + 2) * POLY_TAPS];
        let l = poly_one::<WIDE>(src, lo, row_a, row_b, f, wrap);
        let r = match src_r {
            Some(r) => poly_one::<WIDE>(r, lo, row_a, row_b, f, wrap),
            None => l,
        };
        (l, r)
    }

    /// Value of `src` at fractional index `x`, low-passed at `scale` × the source
    /// Nyquist (`scale ≤ 1`). `wrap` treats the source as circular; otherwise it
    /// is zero outside.
    #[inline]
    pub(crate) fn read(&self, src: &[f32], x: f64, scale: f32, wrap: bool) -> f32 {
        let len = src.len() as i64;
        if len == 0 {
            return 0.0;
        }
        let reach = SINC_ZEROS as f32 / scale;
        let centre = x.floor() as i64;
        let frac = (x - centre as f64) as f32;
        let half = reach.ceil() as i64;
        let lo = centre - half + 1;
        let hi = centre + half;
        let step = scale * SINC_RES as f32;
        let limit = (SINC_ZEROS * SINC_RES) as f32;
        let mut acc = 0f32;
        let tap = |d: f32| -> f32 {
            let u = d.abs() * step;
            if u >= limit {
                return 0.0;
            }
            let i = u as usize;
            let f = u - i as f32;
            let a = self.taps[i];
            a + (self.taps[i + 1] - a) * f
        };
        if lo >= 0 && hi < len {
            for (k, &v) in src[lo as usize..=hi as usize].iter().enumerate() {
                let d = frac + (centre - lo - k as i64) as f32;
                acc += v * tap(d);
            }
        } else {
            for n in lo..=hi {
                let v = if (0..len).contains(&n) {
                    src[n as usize]
                } else if wrap {
                    src[n.rem_euclid(len) as usize]
                } else {
                    continue;
                };
                let d = frac + (centre - n) as f32;
                acc += v * tap(d);
            }
        }
        acc * scale
    }
}

/// `src` (at `src_rate`) at `out_rate`, band-limited with the voices' own
/// kernel, for offline use (allocates). `circular` reads the source as a loop,
/// so the result loops too; it then lasts the nearest whole number of samples.
pub fn resample(src: &[f32], src_rate: f64, out_rate: f64, circular: bool) -> Vec<f32> {
    if src.is_empty() || !(src_rate > 0.0 && out_rate > 0.0) {
        return Vec::new();
    }
    let table = SincTable::new();
    let n = ((src.len() as f64) * out_rate / src_rate).round().max(1.0) as usize;
    // Source samples per output sample, exact for the loop when circular.
    let step = src.len() as f64 / n as f64;
    let scale = SINC_RHO / (step as f32).clamp(1.0, MAX_STRETCH);
    (0..n)
        .map(|i| table.read(src, i as f64 * step, scale, circular))
        .collect()
}

/// One channel of [`SincTable::read_poly_pair_impl`]: the 32 source samples
/// from `lo` (zero or wrapped outside `src`) against two adjacent phase rows,
/// blended by `f`. A function, not a closure, so it inlines into the AVX2
/// builds that call it: a closure is compiled on its own, for baseline x86-64.
#[inline(always)]
fn poly_one<const WIDE: bool>(
    src: &[f32],
    lo: i64,
    row_a: &[f32],
    row_b: &[f32],
    f: f32,
    wrap: bool,
) -> f32 {
    let len = src.len();
    let (a, b) = if lo >= 0 && lo as usize + POLY_TAPS <= len {
        let s = &src[lo as usize..lo as usize + POLY_TAPS];
        dot2::<WIDE>(s, row_a, row_b)
    } else {
        let mut buf = [0f32; POLY_TAPS];
        for (k, v) in buf.iter_mut().enumerate() {
            let n = lo + k as i64;
            *v = if (0..len as i64).contains(&n) {
                src[n as usize]
            } else if wrap && len > 0 {
                src[n.rem_euclid(len as i64) as usize]
            } else {
                0.0
            };
        }
        dot2::<WIDE>(&buf, row_a, row_b)
    };
    a + (b - a) * f
}

/// Two dot products of the [`POLY_TAPS`] samples `s` with the rows `a` and
/// `b`, each in 8 lanes: lane `l` sums the products of taps `l`, `8 + l`,
/// `16 + l` and `24 + l` as a tree, `(p0 + p1) + (p2 + p3)`, so a voice's
/// sample waits for two dependent vector adds instead of four, and the lanes
/// are then summed by [`hsum8`]'s tree.
#[inline(always)]
pub(crate) fn dot2<const WIDE: bool>(s: &[f32], a: &[f32], b: &[f32]) -> (f32, f32) {
    (dot::<WIDE>(s, a), dot::<WIDE>(s, b))
}

/// One dot product as [`dot2`] describes, in 8-wide AVX vectors when `WIDE`
/// (which only code compiled for AVX2 passes, after the CPU check), else in
/// 4-wide SSE ones (part of every x86-64 CPU). Written with intrinsics: left
/// to itself the compiler vectorised the two rows of [`dot2`] against each
/// other, broadcasting every sample and shuffling the rows, several times the
/// instructions. The operations and their order are exactly the portable
/// version's, so every build agrees bit for bit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot<const WIDE: bool>(s: &[f32], row: &[f32]) -> f32 {
    let (s, row) = (&s[..POLY_TAPS], &row[..POLY_TAPS]);
    if WIDE {
        // SAFETY: `WIDE` is set only by builds entered after the CPU reported AVX2.
        unsafe { dot_avx(s, row) }
    } else {
        // SAFETY: SSE is part of x86-64.
        unsafe { dot_sse(s, row) }
    }
}

/// [`dot`] in 8-wide AVX vectors. The caller guarantees AVX and that both
/// slices hold [`POLY_TAPS`] values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn dot_avx(s: &[f32], row: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_loadu_ps,
        _mm256_mul_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
    };
    let (s, row) = (s.as_ptr(), row.as_ptr());
    let p0 = _mm256_mul_ps(_mm256_loadu_ps(s), _mm256_loadu_ps(row));
    let p1 = _mm256_mul_ps(_mm256_loadu_ps(s.add(8)), _mm256_loadu_ps(row.add(8)));
    let p2 = _mm256_mul_ps(_mm256_loadu_ps(s.add(16)), _mm256_loadu_ps(row.add(16)));
    let p3 = _mm256_mul_ps(_mm256_loadu_ps(s.add(24)), _mm256_loadu_ps(row.add(24)));
    let acc = _mm256_add_ps(_mm256_add_ps(p0, p1), _mm256_add_ps(p2, p3));
    // hsum8: t = [v0+v4, v1+v5, v2+v6, v3+v7]; (t0 + t2) + (t1 + t3).
    let t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps::<0b01>(u, u)))
}

/// [`dot`] in 4-wide SSE vectors: lanes 0–3 and 4–7 separately. The caller
/// guarantees that both slices hold [`POLY_TAPS`] values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_sse(s: &[f32], row: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadu_ps, _mm_movehl_ps, _mm_mul_ps,
        _mm_shuffle_ps,
    };
    let (s, row) = (s.as_ptr(), row.as_ptr());
    let lo = _mm_add_ps(
        _mm_add_ps(
            _mm_mul_ps(_mm_loadu_ps(s), _mm_loadu_ps(row)),
            _mm_mul_ps(_mm_loadu_ps(s.add(8)), _mm_loadu_ps(row.add(8))),
        ),
        _mm_add_ps(
            _mm_mul_ps(_mm_loadu_ps(s.add(16)), _mm_loadu_ps(row.add(16))),
            _mm_mul_ps(_mm_loadu_ps(s.add(24)), _mm_loadu_ps(row.add(24))),
        ),
    );
    let hi = _mm_add_ps(
        _mm_add_ps(
            _mm_mul_ps(_mm_loadu_ps(s.add(4)), _mm_loadu_ps(row.add(4))),
            _mm_mul_ps(_mm_loadu_ps(s.add(12)), _mm_loadu_ps(row.add(12))),
        ),
        _mm_add_ps(
            _mm_mul_ps(_mm_loadu_ps(s.add(20)), _mm_loadu_ps(row.add(20))),
            _mm_mul_ps(_mm_loadu_ps(s.add(28)), _mm_loadu_ps(row.add(28))),
        ),
    );
    let t = _mm_add_ps(lo, hi);
    let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps::<0b01>(u, u)))
}

/// One dot product as [`dot2`] describes, for other architectures.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn dot<const WIDE: bool>(s: &[f32], row: &[f32]) -> f32 {
    hsum8(dot_lanes(s, row))
}

/// The 8 lane sums of `s · row` over [`POLY_TAPS`] taps, as [`dot2`] describes.
/// A function, not a closure, so it inlines into AVX2 builds.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn dot_lanes(s: &[f32], row: &[f32]) -> [f32; 8] {
    let row = &row[..POLY_TAPS];
    let mut p = [[0f32; 8]; 4];
    for (k, pk) in p.iter_mut().enumerate() {
        for l in 0..8 {
            pk[l] = s[8 * k + l] * row[8 * k + l];
        }
    }
    let mut acc = [0f32; 8];
    for l in 0..8 {
        acc[l] = (p[0][l] + p[1][l]) + (p[2][l] + p[3][l]);
    }
    acc
}

/// Sum of 8 lanes as a tree (high half onto low half, then again): three
/// dependent adds instead of seven, in an order that SSE2 and AVX2 builds
/// both follow exactly.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
pub(crate) fn hsum8(v: [f32; 8]) -> f32 {
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The intrinsics and the portable lanes perform the same operations in
    /// the same order: equal bits, on values spanning many magnitudes.
    #[test]
    fn the_dot_product_is_the_portable_one_bit_for_bit() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            unit * 10f32.powi((state % 7) as i32 - 3)
        };
        for _ in 0..2000 {
            let s: Vec<f32> = (0..POLY_TAPS).map(|_| next()).collect();
            let row: Vec<f32> = (0..POLY_TAPS).map(|_| next()).collect();
            let portable = hsum8(dot_lanes(&s, &row));
            assert_eq!(dot::<false>(&s, &row).to_bits(), portable.to_bits());
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                assert_eq!(dot::<true>(&s, &row).to_bits(), portable.to_bits());
            }
        }
    }
}
