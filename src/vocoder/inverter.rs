//! The built-in vocoder: mel → linear magnitude → phase, without any model file.
//!
//! 1. Mel to linear magnitude: per frame, non-negative least squares
//!    `min ‖B s − m‖², s ≥ 0`, warm-started from the pseudo-inverse clamped at 0
//!    and refined with multiplicative updates (which keep `s ≥ 0` by construction
//!    and need no step size, so badly scaled mel bands converge alike).
//! 2. Phase: phase-gradient heap integration (PGHI, Průša et al. 2017) gives a
//!    coherent starting phase, then Fast Griffin-Lim (Perraudin et al. 2013,
//!    momentum 0.99) polishes it.
//!
//! Time is treated as circular throughout (frame `t` reads samples modulo the
//! output length), because grown spectrograms loop: the resulting audio's end
//! joins its start without a click.

use std::f32::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::{check_input, Vocoder, VocoderError};
use crate::dsp::mel::{
    nearest_runnable, padded_hann, slaney_mel_basis, sparse_rows, MelConfig, SparseRow, Spectrogram,
};

/// Default number of Fast Griffin-Lim iterations. PGHI already starts close:
/// on the benchmark clip spectral convergence against the recording is
/// −11.25 dB with PGHI alone, −11.31 dB after 8 iterations and −11.27 dB after
/// 16 (librosa's 32 plain Griffin-Lim iterations: −10.4 dB); past a few
/// iterations they only make the spectrum consistent with the NNLS estimate,
/// not closer to the recording. 8 keep that phase polish at half the cost of
/// 16, and every regrowth waits for this.
pub const DEFAULT_ITERATIONS: usize = 8;
/// Multiplicative-update iterations for the mel → linear NNLS.
const NNLS_ITERATIONS: usize = 40;
/// Fast Griffin-Lim momentum (Perraudin et al. recommend 0.99).
const MOMENTUM: f32 = 0.99;
/// Log-mel inputs are clamped to this range before exponentiation so a runaway
/// model cannot produce infinities (real audio stays well inside it).
const LOG_MEL_RANGE: (f32, f32) = (-25.0, 12.0);
/// Relative magnitude below which PGHI does not integrate phase (ltfat's default tolerance).
const PGHI_TOL: f32 = 1e-5;
/// λ of the Gaussian equivalent to a Hann window of length L is `0.25645 · L²` (Průša et al.).
const HANN_GAMMA: f32 = 0.25645;

/// Frames one NNLS block solves together: one AVX register of f32.
const LANES: usize = 8;
/// One value per frame of an NNLS block. Single precision: the multiplicative
/// updates only ever multiply by ratios of sums of positive terms, and the
/// result is played as f32 magnitudes.
type Lanes = [f32; LANES];

/// `level`'s bits as an unsigned number in `f32::total_cmp` order.
fn level_bits(level: f32) -> u32 {
    let b = level.to_bits();
    // Negative values count down from the sign bit, positive ones up from it.
    if b >> 31 == 1 {
        !b
    } else {
        b | 1 << 31
    }
}

/// PGHI heap key of bin `index` (a max-heap pops the loudest bin first, the
/// lowest index among equals), one integer compare per heap step.
fn heap_key(level: f32, index: usize) -> u64 {
    (level_bits(level) as u64) << 32 | (!(index as u32)) as u64
}

/// PGHI seed order key: ascending keys run loudest first, lowest index among equals.
fn seed_key(level: f32, index: usize) -> u64 {
    (!level_bits(level) as u64) << 32 | index as u64
}

/// The bin index a [`heap_key`] holds.
fn heap_index(key: u64) -> usize {
    !(key as u32) as usize
}

/// The bin index a [`seed_key`] holds.
fn seed_index(key: u64) -> usize {
    key as u32 as usize
}

/// Max-heap of PGHI keys with four children per node: half the depth of a
/// binary heap, and a node's children share a cache line, so each pop touches
/// fewer lines. Keys are unique, so it pops in exactly the order any max-heap
/// does.
#[derive(Default)]
struct QuadHeap {
    keys: Vec<u64>,
}

impl QuadHeap {
    fn clear(&mut self) {
        self.keys.clear();
    }

    fn push(&mut self, key: u64) {
        let mut i = self.keys.len();
        self.keys.push(key);
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.keys[parent] >= key {
                break;
            }
            self.keys[i] = self.keys[parent];
            i = parent;
        }
        self.keys[i] = key;
    }

    fn pop(&mut self) -> Option<u64> {
        let last = self.keys.pop()?;
        let n = self.keys.len();
        if n == 0 {
            return Some(last);
        }
        let top = self.keys[0];
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            for c in first + 1..(first + 4).min(n) {
                if self.keys[c] > self.keys[best] {
                    best = c;
                }
            }
            if self.keys[best] <= last {
                break;
            }
            self.keys[i] = self.keys[best];
            i = best;
        }
        self.keys[i] = last;
        Some(top)
    }
}

/// Griffin-Lim style mel inverter. Plans, window, basis and its Gram inverse are
/// built once; per-call buffers grow to the largest spectrogram seen and are reused.
pub struct Inverter {
    /// The analysis being inverted.
    cfg: MelConfig,
    /// Fast Griffin-Lim iterations per synthesis.
    iterations: usize,
    /// Non-zero spans of the mel basis (B), used for B·s and Bᵀ·r.
    rows: Vec<SparseRow>,
    /// (B Bᵀ + εI)⁻¹, row-major `[n_mels][n_mels]`: the pseudo-inverse is Bᵀ·this
    /// (inverted in f64, stored in the solve's precision).
    gram_inv: Vec<f32>,
    /// Whether the CPU runs the AVX2 build of the NNLS (the same IEEE
    /// operations in the same order, so the output does not depend on it).
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
    /// Analysis window (f32 copy of the periodic Hann, zero-padded to n_fft).
    window: Vec<f32>,
    /// The window times the inverse FFT's 1/n_fft scaling, so overlap-add does
    /// one multiply per sample.
    synth_window: Vec<f32>,
    /// Forward FFT plan (re-analysis inside Griffin-Lim).
    fwd: Arc<dyn RealToComplex<f32>>,
    /// Inverse FFT plan (synthesis).
    inv: Arc<dyn ComplexToReal<f32>>,
    /// Time-domain frame buffer shared by both FFT directions.
    frame: Vec<f32>,
    /// One spectrum buffer shared by both FFT directions.
    bins: Vec<Complex<f32>>,
    /// Forward FFT scratch.
    scratch_fwd: Vec<Complex<f32>>,
    /// Inverse FFT scratch.
    scratch_inv: Vec<Complex<f32>>,
    /// Target linear magnitudes `[frame][bin]`.
    mag: Vec<f32>,
    /// Current Fast Griffin-Lim estimate `t_n` `[frame][bin]`.
    spec: Vec<Complex<f32>>,
    /// Previous consistent spectrum `c_{n-1}` for the momentum term.
    prev: Vec<Complex<f32>>,
    /// PGHI phase `[frame][bin]`.
    phase: Vec<f32>,
    /// PGHI: whether a bin's phase is already fixed.
    done: Vec<bool>,
    /// PGHI heap of [`heap_key`]s, kept to reuse its allocation.
    heap: QuadHeap,
    /// PGHI: natural log of each target magnitude `[frame][bin]`, computed once
    /// per synthesis (it is read many times per bin).
    logm: Vec<f32>,
    /// PGHI: bins above the tolerance as sort keys ([`seed_key`]), loudest
    /// first (kept for its allocation).
    order: Vec<u64>,
    /// Overlap-add normalisation (sum of squared windows per output sample).
    wsum: Vec<f32>,
    /// NNLS scratch, one lane per frame of a block of [`LANES`] frames (the
    /// frames are independent, so a block shares each weight load and the
    /// lane loops vectorise): the mel values.
    mel_tmp: Vec<Lanes>,
    /// Scratch: Bᵀ m for the multiplicative updates.
    numer: Vec<Lanes>,
    /// Scratch: NNLS iterate.
    s_tmp: Vec<Lanes>,
    /// Scratch: B s.
    bs: Vec<Lanes>,
    /// Scratch: Bᵀ B s, the multiplicative-update denominator.
    denom: Vec<Lanes>,
    /// Consistent spectrum `c_n` = STFT(ISTFT(t_n)) of the current iteration.
    cons: Vec<Complex<f32>>,
}

impl Inverter {
    /// An inverter with [`DEFAULT_ITERATIONS`] Griffin-Lim iterations.
    pub fn new(cfg: MelConfig) -> Self {
        Self::with_iterations(cfg, DEFAULT_ITERATIONS)
    }

    /// An inverter with a chosen number of Fast Griffin-Lim iterations (0 = PGHI phase only).
    pub fn with_iterations(cfg: MelConfig, iterations: usize) -> Self {
        let cfg = if cfg.validate().is_ok() {
            cfg
        } else {
            nearest_runnable(cfg)
        };
        let n_freqs = cfg.n_freqs();
        let n_mels = cfg.n_mels;
        let basis = slaney_mel_basis(&cfg);
        let rows = sparse_rows(&basis, n_mels, n_freqs);
        let gram_inv = gram_inverse(&rows, n_mels)
            .into_iter()
            .map(|g| g as f32)
            .collect();
        let mut planner = RealFftPlanner::<f32>::new();
        let fwd = planner.plan_fft_forward(cfg.n_fft);
        let inv = planner.plan_fft_inverse(cfg.n_fft);
        let window: Vec<f32> = padded_hann(cfg.n_fft, cfg.win)
            .into_iter()
            .map(|w| w as f32)
            .collect();
        let scale = 1.0 / cfg.n_fft as f32;
        let synth_window = window.iter().map(|&w| w * scale).collect();
        Self {
            frame: fwd.make_input_vec(),
            bins: fwd.make_output_vec(),
            scratch_fwd: fwd.make_scratch_vec(),
            scratch_inv: inv.make_scratch_vec(),
            fwd,
            inv,
            window,
            synth_window,
            rows,
            gram_inv,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            iterations,
            mag: Vec::new(),
            spec: Vec::new(),
            prev: Vec::new(),
            phase: Vec::new(),
            done: Vec::new(),
            heap: QuadHeap::default(),
            logm: Vec::new(),
            order: Vec::new(),
            wsum: Vec::new(),
            mel_tmp: vec![[0.0; LANES]; n_mels],
            numer: vec![[0.0; LANES]; n_freqs],
            s_tmp: vec![[0.0; LANES]; n_freqs],
            bs: vec![[0.0; LANES]; n_mels],
            denom: vec![[0.0; LANES]; n_freqs],
            cons: Vec::new(),
            cfg,
        }
    }

    /// Fast Griffin-Lim iterations in use.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Changes the Fast Griffin-Lim iterations of later syntheses (0: the
    /// PGHI phase alone, about a third of the time at nearly the same
    /// spectral convergence; the engine's early generations use it).
    pub fn set_iterations(&mut self, iterations: usize) {
        self.iterations = iterations;
    }

    /// The linear magnitude estimate of the last synthesis, `[frame][n_fft/2+1]`
    /// (for diagnostics and tests).
    pub fn magnitudes(&self) -> &[f32] {
        &self.mag
    }

    /// Mel → linear magnitude for every frame (NNLS, see module docs), a block
    /// of [`LANES`] frames at a time; each lane does exactly the arithmetic of
    /// its frame alone.
    fn mel_to_linear(&mut self, mel: &Spectrogram) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only when the CPU reports AVX2.
            return unsafe { self.mel_to_linear_avx2(mel) };
        }
        self.mel_to_linear_impl(mel);
    }

    /// [`mel_to_linear`](Self::mel_to_linear) compiled for AVX2: every lane
    /// loop is one 8-wide instruction instead of two 4-wide ones.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn mel_to_linear_avx2(&mut self, mel: &Spectrogram) {
        self.mel_to_linear_impl(mel);
    }

    /// The body of [`mel_to_linear`](Self::mel_to_linear), inlined into each build.
    #[inline(always)]
    fn mel_to_linear_impl(&mut self, mel: &Spectrogram) {
        let n_mels = self.cfg.n_mels;
        let n_freqs = self.cfg.n_freqs();
        let frames = mel.frames;
        self.mag.clear();
        self.mag.resize(frames * n_freqs, 0.0);
        for t0 in (0..frames).step_by(LANES) {
            let used = LANES.min(frames - t0);
            for (i, m) in self.mel_tmp.iter_mut().enumerate() {
                for (l, v) in m.iter_mut().enumerate() {
                    // Lanes past the last frame repeat it and are not read back.
                    let t = t0 + l.min(used - 1);
                    *v = mel.at(i, t).clamp(LOG_MEL_RANGE.0, LOG_MEL_RANGE.1).exp();
                }
            }
            // Warm start: pseudo-inverse Bᵀ (B Bᵀ)⁻¹ m, clamped at a small positive
            // floor so multiplicative updates can still move every bin.
            for (i, b) in self.bs.iter_mut().enumerate() {
                let g = &self.gram_inv[i * n_mels..(i + 1) * n_mels];
                let mut acc = [-0.0; LANES];
                for (&gij, m) in g.iter().zip(&self.mel_tmp) {
                    for l in 0..LANES {
                        acc[l] += gij * m[l];
                    }
                }
                *b = acc;
            }
            transpose_apply(&self.rows, &self.bs, &mut self.s_tmp);
            let mut floor = [0f32; LANES];
            for s in &self.s_tmp {
                for l in 0..LANES {
                    floor[l] = floor[l].max(s[l]);
                }
            }
            for f in &mut floor {
                *f = *f * 1e-4 + 1e-12;
            }
            transpose_apply(&self.rows, &self.mel_tmp, &mut self.numer);
            for (s, n) in self.s_tmp.iter_mut().zip(&self.numer) {
                for l in 0..LANES {
                    // Bins no mel band covers stay silent.
                    s[l] = if n[l] > 0.0 { s[l].max(floor[l]) } else { 0.0 };
                }
            }
            for _ in 0..NNLS_ITERATIONS {
                forward_apply(&self.rows, &self.s_tmp, &mut self.bs);
                transpose_apply(&self.rows, &self.bs, &mut self.denom);
                // Unconditional, so it vectorises: a bin no band covers has
                // s = 0 and n = 0, and stays 0.
                for ((s, n), d) in self.s_tmp.iter_mut().zip(&self.numer).zip(&self.denom) {
                    let mut v = *s;
                    for l in 0..LANES {
                        v[l] *= n[l] / (d[l] + 1e-30);
                    }
                    *s = v;
                }
            }
            for l in 0..used {
                let t = t0 + l;
                let row = &mut self.mag[t * n_freqs..(t + 1) * n_freqs];
                for (m, s) in row.iter_mut().zip(&self.s_tmp) {
                    *m = s[l];
                }
            }
        }
    }

    /// PGHI: integrate the phase gradient implied by the log magnitude, loudest bins first.
    fn pghi(&mut self, frames: usize) {
        let n_freqs = self.cfg.n_freqs();
        let m_fft = self.cfg.n_fft as f32;
        let a = self.cfg.hop as f32;
        let lambda = HANN_GAMMA * (self.cfg.win as f32).powi(2);
        let total = frames * n_freqs;
        // Log magnitudes once per bin: the sort, the heap and both phase
        // derivatives read them many times each.
        self.logm.clear();
        self.logm
            .extend(self.mag.iter().map(|&m| m.max(1e-12).ln()));
        let max_level = self.mag.iter().fold(0f32, |a, &b| a.max(b));
        let tol = (max_level * PGHI_TOL).max(1e-12).ln();
        self.phase.clear();
        self.phase.resize(total, 0.0);
        self.done.clear();
        self.done.resize(total, false);
        self.heap.clear();
        let logm = &self.logm;
        // Phase advance per frame (instantaneous frequency) of bin (t, k).
        let dphi_time = |t: usize, k: usize| -> f32 {
            let row = t * n_freqs;
            let (lo, hi, span) = if k == 0 {
                (k, k + 1, 1.0)
            } else if k + 1 == n_freqs {
                (k - 1, k, 1.0)
            } else {
                (k - 1, k + 1, 2.0)
            };
            let ds = (logm[row + hi] - logm[row + lo]) / span;
            a * m_fft / lambda * ds + 2.0 * PI * a * k as f32 / m_fft
        };
        // Phase advance per bin (local group delay), time treated circularly.
        let dphi_freq = |t: usize, k: usize| -> f32 {
            if frames < 3 {
                return 0.0;
            }
            let next = (t + 1) % frames;
            let prev = (t + frames - 1) % frames;
            let ds = (logm[next * n_freqs + k] - logm[prev * n_freqs + k]) / 2.0;
            -lambda / (a * m_fft) * ds
        };
        // Seeds in descending order: each unvisited loud bin starts a new island at phase 0.
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(
            (0..total)
                .filter(|&i| logm[i] > tol)
                .map(|i| seed_key(logm[i], i)),
        );
        // Keys are unique (they hold the index), so an unstable sort is exact.
        order.sort_unstable();
        for &key in &order {
            let seed = seed_index(key);
            if self.done[seed] {
                continue;
            }
            self.done[seed] = true;
            self.phase[seed] = 0.0;
            self.heap.push(heap_key(logm[seed], seed));
            while let Some(key) = self.heap.pop() {
                let index = heap_index(key);
                let t = index / n_freqs;
                let k = index % n_freqs;
                let here = self.phase[index];
                // Time neighbours (circular).
                if frames > 1 {
                    let tn = (t + 1) % frames;
                    let j = tn * n_freqs + k;
                    if !self.done[j] && logm[j] > tol {
                        self.phase[j] = here + 0.5 * (dphi_time(t, k) + dphi_time(tn, k));
                        self.done[j] = true;
                        self.heap.push(heap_key(logm[j], j));
                    }
                    let tp = (t + frames - 1) % frames;
                    let j = tp * n_freqs + k;
                    if !self.done[j] && logm[j] > tol {
                        self.phase[j] = here - 0.5 * (dphi_time(t, k) + dphi_time(tp, k));
                        self.done[j] = true;
                        self.heap.push(heap_key(logm[j], j));
                    }
                }
                // Frequency neighbours.
                if k + 1 < n_freqs {
                    let j = index + 1;
                    if !self.done[j] && logm[j] > tol {
                        self.phase[j] = here + 0.5 * (dphi_freq(t, k) + dphi_freq(t, k + 1));
                        self.done[j] = true;
                        self.heap.push(heap_key(logm[j], j));
                    }
                }
                if k > 0 {
                    let j = index - 1;
                    if !self.done[j] && logm[j] > tol {
                        self.phase[j] = here - 0.5 * (dphi_freq(t, k) + dphi_freq(t, k - 1));
                        self.done[j] = true;
                        self.heap.push(heap_key(logm[j], j));
                    }
                }
            }
        }
        self.order = order;
        // PGHI phases refer to the window centre; FFT phases refer to the frame
        // start, which is n_fft/2 samples earlier: a factor (−1)^k.
        self.spec.clear();
        self.spec.resize(total, Complex::new(0.0, 0.0));
        for (idx, s) in self.spec.iter_mut().enumerate() {
            let k = idx % n_freqs;
            let centre_shift = if k % 2 == 1 { PI } else { 0.0 };
            let ph = self.phase[idx] + centre_shift;
            *s = Complex::from_polar(self.mag[idx], ph);
        }
    }

    /// Circular inverse STFT of `spec` with magnitudes forced to the target (P_C2 then
    /// synthesis). Writes `signal.len() == frames * hop` samples.
    fn istft_projected(&mut self, frames: usize, signal: &mut [f32]) {
        let n_freqs = self.cfg.n_freqs();
        let n = self.cfg.n_fft;
        let len = signal.len();
        let pad = self.cfg.pad();
        signal.iter_mut().for_each(|v| *v = 0.0);
        for t in 0..frames {
            let row = t * n_freqs;
            let spec = &self.spec[row..row + n_freqs];
            let mag = &self.mag[row..row + n_freqs];
            for ((b, &c), &target) in self.bins.iter_mut().zip(spec).zip(mag) {
                // |c|² instead of `norm()` (a `hypot` call per bin): the
                // magnitudes here are far from overflow, and this loop runs
                // once per bin and iteration.
                let norm2 = c.re * c.re + c.im * c.im;
                *b = if norm2 > 1e-38 {
                    c * (target / norm2.sqrt())
                } else {
                    Complex::new(target, 0.0)
                };
            }
            // realfft requires purely real DC and Nyquist bins.
            self.bins[0].im = 0.0;
            self.bins[n_freqs - 1].im = 0.0;
            let _ = self.inv.process_with_scratch(
                &mut self.bins,
                &mut self.frame,
                &mut self.scratch_inv,
            );
            let start = (t * self.cfg.hop + len * n.div_ceil(len.max(1)) - pad) % len;
            let frame = &self.frame;
            let w = &self.synth_window;
            // The frame's samples land in at most two contiguous runs when the
            // sound is at least one FFT long, so no per-sample modulo there.
            if n <= len {
                let first = n.min(len - start);
                for ((o, &x), &w) in signal[start..start + first].iter_mut().zip(frame).zip(w) {
                    *o += x * w;
                }
                for ((o, &x), &w) in signal[..n - first]
                    .iter_mut()
                    .zip(&frame[first..])
                    .zip(&w[first..])
                {
                    *o += x * w;
                }
            } else {
                for (i, (&x, &w)) in frame.iter().zip(w).enumerate() {
                    signal[(start + i) % len] += x * w;
                }
            }
        }
        for (s, &w) in signal.iter_mut().zip(&self.wsum) {
            if w > 1e-9 {
                *s /= w;
            }
        }
    }

    /// Circular STFT of `signal` into `bins_out` (`[frame][bin]`).
    fn stft(&mut self, frames: usize, signal: &[f32], out: &mut [Complex<f32>]) {
        let n_freqs = self.cfg.n_freqs();
        let n = self.cfg.n_fft;
        let len = signal.len();
        let pad = self.cfg.pad();
        for t in 0..frames {
            let start = (t * self.cfg.hop + len * n.div_ceil(len.max(1)) - pad) % len;
            if n <= len {
                // At most two contiguous runs (see `istft_projected`).
                let first = n.min(len - start);
                let (head, tail) = self.frame.split_at_mut(first);
                let (w_head, w_tail) = self.window.split_at(first);
                for ((x, &s), &w) in head.iter_mut().zip(&signal[start..]).zip(w_head) {
                    *x = s * w;
                }
                for ((x, &s), &w) in tail.iter_mut().zip(signal).zip(w_tail) {
                    *x = s * w;
                }
            } else {
                for (i, (x, &w)) in self.frame.iter_mut().zip(&self.window).enumerate() {
                    *x = signal[(start + i) % len] * w;
                }
            }
            let _ = self.fwd.process_with_scratch(
                &mut self.frame,
                &mut self.bins,
                &mut self.scratch_fwd,
            );
            out[t * n_freqs..(t + 1) * n_freqs].copy_from_slice(&self.bins);
        }
    }
}

/// out = B s (per mel band), for every lane.
#[inline(always)]
fn forward_apply(rows: &[SparseRow], s: &[Lanes], out: &mut [Lanes]) {
    for (o, r) in out.iter_mut().zip(rows) {
        let mut acc = [-0.0; LANES];
        for (&w, x) in r.weights.iter().zip(&s[r.start..]) {
            for l in 0..LANES {
                acc[l] += w * x[l];
            }
        }
        *o = acc;
    }
}

/// out = Bᵀ m (per linear bin), for every lane.
#[inline(always)]
fn transpose_apply(rows: &[SparseRow], m: &[Lanes], out: &mut [Lanes]) {
    out.iter_mut().for_each(|v| *v = [0.0; LANES]);
    for (r, mv) in rows.iter().zip(m) {
        let mv = *mv;
        let span = &mut out[r.start..r.start + r.weights.len()];
        for (o, &w) in span.iter_mut().zip(&r.weights) {
            // A local copy lets the lane loop become one vector operation
            // instead of eight scalar read-modify-writes.
            let mut v = *o;
            for l in 0..LANES {
                v[l] += w * mv[l];
            }
            *o = v;
        }
    }
}

/// (B Bᵀ + εI)⁻¹ by Gauss-Jordan in f64. ε is relative to the mean diagonal and
/// only guards against empty bands (e.g. fmin/fmax combinations that leave a
/// band without any FFT bin).
fn gram_inverse(rows: &[SparseRow], n: usize) -> Vec<f64> {
    let mut g = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (&rows[i], &rows[j]);
            let lo = a.start.max(b.start);
            let hi = (a.start + a.weights.len()).min(b.start + b.weights.len());
            let mut acc = 0f64;
            for k in lo..hi {
                acc += a.weights[k - a.start] as f64 * b.weights[k - b.start] as f64;
            }
            g[i * n + j] = acc;
        }
    }
    let mean_diag = (0..n).map(|i| g[i * n + i]).sum::<f64>() / n as f64;
    let eps = mean_diag.max(1e-30) * 1e-9;
    for i in 0..n {
        g[i * n + i] += eps;
    }
    let mut inv = vec![0f64; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    for col in 0..n {
        let pivot_row = (col..n)
            .max_by(|&x, &y| g[x * n + col].abs().total_cmp(&g[y * n + col].abs()))
            .unwrap_or(col);
        if pivot_row != col {
            for k in 0..n {
                g.swap(col * n + k, pivot_row * n + k);
                inv.swap(col * n + k, pivot_row * n + k);
            }
        }
        let p = g[col * n + col];
        if p.abs() < 1e-300 {
            continue;
        }
        for k in 0..n {
            g[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for r in 0..n {
            if r != col {
                let f = g[r * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        g[r * n + k] -= f * g[col * n + k];
                        inv[r * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    inv
}

impl Vocoder for Inverter {
    fn name(&self) -> &'static str {
        "built-in"
    }

    fn mel_config(&self) -> &MelConfig {
        &self.cfg
    }

    fn synthesize(&mut self, mel: &Spectrogram, audio: &mut Vec<f32>) -> Result<(), VocoderError> {
        check_input(&self.cfg, mel)?;
        let frames = mel.frames;
        let hop = self.cfg.hop;
        let len = frames * hop;
        audio.clear();
        audio.resize(len, 0.0);
        if frames == 0 {
            return Ok(());
        }
        self.mel_to_linear(mel);
        // Overlap-add normalisation for the circular frame layout.
        self.wsum.clear();
        self.wsum.resize(len, 0.0);
        let n = self.cfg.n_fft;
        let pad = self.cfg.pad();
        for t in 0..frames {
            let start = (t * hop + len * n.div_ceil(len) - pad) % len;
            for (i, &w) in self.window.iter().enumerate() {
                self.wsum[(start + i) % len] += w * w;
            }
        }
        self.pghi(frames);
        let total = frames * self.cfg.n_freqs();
        self.prev.clear();
        self.prev.extend_from_slice(&self.spec);
        let mut cons = std::mem::take(&mut self.cons);
        cons.resize(total, Complex::new(0.0, 0.0));
        for _ in 0..self.iterations {
            self.istft_projected(frames, audio);
            self.stft(frames, audio, &mut cons);
            for ((t, &c), p) in self.spec.iter_mut().zip(&cons).zip(self.prev.iter_mut()) {
                *t = c + (c - *p) * MOMENTUM;
                *p = c;
            }
        }
        self.cons = cons;
        self.istft_projected(frames, audio);
        if audio.iter().any(|v| !v.is_finite()) {
            return Err(VocoderError::NonFinite);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::mel::MelAnalyzer;

    fn tone(sr: f32, f0: f32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| {
                let t = n as f32 / sr;
                (1..=4)
                    .map(|h| 0.3 / h as f32 * (2.0 * PI * f0 * h as f32 * t).sin())
                    .sum::<f32>()
            })
            .collect()
    }

    fn spectral_convergence_db(reference: &Spectrogram, estimate: &Spectrogram) -> f32 {
        let mut num = 0f64;
        let mut den = 0f64;
        for (&a, &b) in reference.data.iter().zip(&estimate.data) {
            let (a, b) = ((a as f64).exp(), (b as f64).exp());
            num += (a - b) * (a - b);
            den += a * a;
        }
        (10.0 * (num / den).log10()) as f32
    }

    #[test]
    fn reanalysed_tone_converges_and_keeps_pitch() {
        let cfg = MelConfig::bigvgan_22k();
        let sr = cfg.sample_rate as f32;
        let audio = tone(sr, 440.0, 22050);
        let mut analyzer = MelAnalyzer::new(cfg.clone());
        let mel = analyzer.analyze(&audio);
        let mut inv = Inverter::new(cfg.clone());
        let mut out = Vec::new();
        inv.synthesize(&mel, &mut out).unwrap();
        assert_eq!(out.len(), mel.frames * cfg.hop);
        let again = analyzer.analyze(&out);
        assert_eq!(again.frames, mel.frames);
        let sc = spectral_convergence_db(&mel, &again);
        assert!(sc < -15.0, "spectral convergence {sc} dB");
        let (f, _) = crate::play::voices::tests::peak_hz(&out, sr);
        assert!((f - 440.0).abs() < 0.02 * 440.0, "dominant {f} Hz");
        // Fewer iterations must not be better than more (PGHI alone is the floor).
        let mut inv0 = Inverter::with_iterations(cfg, 0);
        let mut out0 = Vec::new();
        inv0.synthesize(&mel, &mut out0).unwrap();
        let sc0 = spectral_convergence_db(&mel, &analyzer.analyze(&out0));
        eprintln!(
            "spectral convergence: PGHI only {sc0:.1} dB, +{DEFAULT_ITERATIONS} FGLA {sc:.1} dB"
        );
        assert!(sc <= sc0 + 0.5);
    }

    #[test]
    fn non_finite_input_is_an_error_not_a_panic() {
        let cfg = MelConfig::bigvgan_22k();
        let mut inv = Inverter::with_iterations(cfg, 2);
        let mut mel = Spectrogram::new(80, 8);
        mel.data[3] = f32::INFINITY;
        let mut out = Vec::new();
        assert!(matches!(
            inv.synthesize(&mel, &mut out),
            Err(VocoderError::NonFinite)
        ));
        mel.data[3] = f32::NAN;
        assert!(matches!(
            inv.synthesize(&mel, &mut out),
            Err(VocoderError::NonFinite)
        ));
        let wrong = Spectrogram::new(64, 8);
        assert!(matches!(
            inv.synthesize(&wrong, &mut out),
            Err(VocoderError::MelMismatch(_))
        ));
        // Degenerate sizes work: empty, and fewer frames than one FFT spans.
        inv.synthesize(&Spectrogram::new(80, 0), &mut out).unwrap();
        assert!(out.is_empty());
        let mut tiny = Spectrogram::new(80, 2);
        tiny.data.iter_mut().for_each(|v| *v = 0.0);
        inv.synthesize(&tiny, &mut out).unwrap();
        assert_eq!(out.len(), 512);
        assert!(out.iter().all(|v| v.is_finite()));
        // Huge values are clamped instead of overflowing.
        tiny.data.iter_mut().for_each(|v| *v = 1e6);
        inv.synthesize(&tiny, &mut out).unwrap();
        assert!(out.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn loop_seam_is_click_free() {
        // A steady tone whose analysis is cut to a frame count that does not hold a
        // whole number of periods: the circular inverter must still join end to start
        // smoothly. Measure the seam step against the typical sample-to-sample step.
        let cfg = MelConfig::bigvgan_22k();
        let sr = cfg.sample_rate as f32;
        let audio = tone(sr, 330.0, 256 * 64);
        let mut analyzer = MelAnalyzer::new(cfg.clone());
        let mel = analyzer.analyze(&audio);
        let mut inv = Inverter::with_iterations(cfg, 16);
        let mut out = Vec::new();
        inv.synthesize(&mel, &mut out).unwrap();
        let steps: Vec<f32> = out.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let max_inner = steps.iter().fold(0f32, |a, &b| a.max(b));
        let seam = (out[0] - out[out.len() - 1]).abs();
        assert!(max_inner > 0.0);
        assert!(
            seam <= max_inner * 1.05,
            "seam step {seam} vs max inner step {max_inner}"
        );
        // The edges are not silent (circular treatment, not a fade).
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let mid = rms(&out[out.len() / 2 - 256..out.len() / 2 + 256]);
        assert!(rms(&out[..256]) > 0.3 * mid && rms(&out[out.len() - 256..]) > 0.3 * mid);
    }

    #[test]
    fn deterministic() {
        let cfg = MelConfig::bigvgan_22k();
        let audio = tone(22050.0, 220.0, 256 * 16);
        let mel = MelAnalyzer::new(cfg.clone()).analyze(&audio);
        let mut a = Vec::new();
        let mut b = Vec::new();
        Inverter::with_iterations(cfg.clone(), 4)
            .synthesize(&mel, &mut a)
            .unwrap();
        let mut inv = Inverter::with_iterations(cfg, 4);
        inv.synthesize(&Spectrogram::new(80, 40), &mut b).unwrap();
        inv.synthesize(&mel, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn the_quad_heap_pops_in_descending_order() {
        let mut h = QuadHeap::default();
        let mut want = Vec::new();
        for i in 0..1000u64 {
            let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20;
            h.push(k);
            want.push(k);
            if i % 3 == 0 {
                // Interleaved pops, as PGHI pops while it pushes neighbours.
                want.sort_unstable();
                assert_eq!(h.pop(), want.pop());
            }
        }
        want.sort_unstable();
        while let Some(k) = h.pop() {
            assert_eq!(Some(k), want.pop());
        }
        assert!(want.is_empty());
    }

    #[test]
    fn each_frame_gets_the_magnitudes_it_gets_alone() {
        // The NNLS solves frames in blocks; a frame's estimate must not depend
        // on its block mates, nor on where a short last block is padded.
        let cfg = MelConfig::bigvgan_22k();
        let audio: Vec<f32> = tone(22050.0, 220.0, 256 * 11)
            .iter()
            .zip(tone(22050.0, 1375.0, 256 * 11))
            .enumerate()
            .map(|(i, (a, b))| a + b * (i as f32 / 2816.0))
            .collect();
        let mel = MelAnalyzer::new(cfg.clone()).analyze(&audio);
        assert!(!mel.frames.is_multiple_of(LANES) && mel.frames > LANES);
        let n_freqs = cfg.n_freqs();
        let mut inv = Inverter::with_iterations(cfg, 0);
        let mut out = Vec::new();
        inv.synthesize(&mel, &mut out).unwrap();
        let all = inv.magnitudes().to_vec();
        for t in [0, 5, LANES, mel.frames - 1] {
            let mut one = Spectrogram::new(mel.n_mels, 1);
            for i in 0..mel.n_mels {
                one.data[i] = mel.at(i, t);
            }
            inv.synthesize(&one, &mut out).unwrap();
            assert_eq!(
                inv.magnitudes(),
                &all[t * n_freqs..(t + 1) * n_freqs],
                "frame {t}"
            );
        }
    }
}
