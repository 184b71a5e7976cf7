//! The lossless stereo representation `stft-ms` (models/README.md, "stft-ms"):
//! four visible NCA channels hold the real and imaginary parts of the mid
//! (`(L+R)/2`) and side (`(L−R)/2`) STFTs, signed-log compressed. Playing such
//! a model needs no vocoder: an overlap-add inverse STFT gives stereo directly.
//!
//! The STFT is *circular* (frame `t` covers samples `t·hop − n_fft/2 ..` modulo
//! the loop length), matching the NCA's wrap-around time axis: `frames · hop`
//! samples, a seamless loop, and an exact inverse. The Python side of the same
//! definition is `models/grown_train/stftms.py`; both are tested against
//! round trips.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use serde::Deserialize;

use crate::dsp::mel::MelConfig;

/// Value of `grown.representation` for these models.
pub const REPRESENTATION: &str = "stft-ms";
/// Visible channels, starting at `grown.spec_channel`: M re, M im, S re, S im.
pub const VISIBLE_CHANNELS: usize = 4;
/// Grown states are clamped to this magnitude before expansion: the training
/// overflow bound, so a runaway cell cannot turn into an exponential blast.
pub const STATE_LIMIT: f32 = 3.0;

/// The analysis an `stft-ms` model's grid is expressed in (`grown.stft`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StftMsConfig {
    /// Sample rate of the audio the grid stands for.
    pub sample_rate: u32,
    /// FFT size; the grid has `n_fft / 2 + 1` rows.
    pub n_fft: usize,
    /// Samples per grid column.
    pub hop: usize,
    /// Window length; must equal `n_fft` (the window fills the frame).
    pub win: usize,
    /// Grid height, `n_fft / 2 + 1` (every bin, DC included).
    pub bins: usize,
    /// Window name; only `hann_periodic` is defined.
    pub window: String,
    /// Time padding; only `circular` is defined.
    pub padding: String,
}

impl StftMsConfig {
    /// The configuration every shipped stereo model uses.
    pub fn default_22k() -> Self {
        Self {
            sample_rate: 22050,
            n_fft: 1024,
            hop: 256,
            win: 1024,
            bins: 513,
            window: "hann_periodic".into(),
            padding: "circular".into(),
        }
    }

    /// Parses and validates `grown.stft`.
    pub fn from_json(s: &str) -> Result<Self, String> {
        let cfg: Self =
            serde_json::from_str(s).map_err(|e| format!("invalid stft config JSON: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The invariants the exact inverse relies on.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.sample_rate == 0 {
            problems.push("sample_rate must be > 0".to_owned());
        }
        if self.n_fft < 4 || !self.n_fft.is_multiple_of(2) {
            problems.push(format!("n_fft must be even and ≥ 4 (got {})", self.n_fft));
        }
        if self.win != self.n_fft {
            problems.push(format!("win {} must equal n_fft {}", self.win, self.n_fft));
        }
        if self.bins != self.n_fft / 2 + 1 {
            problems.push(format!(
                "bins {} must be n_fft/2+1 = {} (every bin is kept)",
                self.bins,
                self.n_fft / 2 + 1
            ));
        }
        // A hop that divides n_fft into ≥ 2 overlapping frames keeps the Hann
        // overlap sum constant, which the inverse divides by.
        if self.hop == 0 || !self.n_fft.is_multiple_of(self.hop) || self.n_fft / self.hop < 2 {
            problems.push(format!(
                "hop {} must divide n_fft {} at least twice",
                self.hop, self.n_fft
            ));
        }
        if self.window != "hann_periodic" {
            problems.push(format!("window `{}` is not `hann_periodic`", self.window));
        }
        if self.padding != "circular" {
            problems.push(format!("padding `{}` is not `circular`", self.padding));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("invalid stft config: {}", problems.join(", ")))
        }
    }

    /// Grid geometry in the shape the rest of the crate reads from
    /// `ModelInfo::mel` (rows = `n_mels`, columns of `hop` samples). Nothing
    /// mel-specific is computed from it for an `stft-ms` model.
    pub fn grid(&self) -> MelConfig {
        MelConfig {
            sample_rate: self.sample_rate,
            n_fft: self.n_fft,
            hop: self.hop,
            win: self.win,
            n_mels: self.bins,
            fmin: 0.0,
            fmax: self.sample_rate as f32 / 2.0,
        }
    }
}

/// The signed-log compression: state `v` ↔ linear STFT part
/// `x = sign(v)·(exp(scale·|v| + offset) − exp(offset))` (`grown.spec_scale`,
/// `grown.spec_offset`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compression {
    /// Log gain (`grown.spec_scale`).
    pub scale: f32,
    /// `ln(eps)`, where the mapping turns from linear to logarithmic (`grown.spec_offset`).
    pub offset: f32,
}

impl Compression {
    /// State value → linear STFT part (clamped to ±[`STATE_LIMIT`], NaN → 0).
    pub fn expand(&self, v: f32) -> f32 {
        if v.is_nan() {
            return 0.0;
        }
        let a = v.abs().min(STATE_LIMIT);
        let x = (self.scale * a + self.offset).exp() - self.offset.exp();
        if v < 0.0 {
            -x
        } else {
            x
        }
    }

    /// Linear STFT part → state value (the inverse of `expand` inside the limit).
    pub fn compress(&self, x: f32) -> f32 {
        let v = ((x.abs() + self.offset.exp()).ln() - self.offset) / self.scale;
        if x < 0.0 {
            -v
        } else {
            v
        }
    }
}

/// Circular STFT and its overlap-add inverse for mid/side stereo. FFT plans and
/// scratch buffers are made once here (engine thread), never per call.
pub struct StftMs {
    /// The analysis.
    cfg: StftMsConfig,
    /// State ↔ linear mapping.
    comp: Compression,
    /// Periodic Hann window of `n_fft`.
    window: Vec<f32>,
    /// Σ w² over the frames covering one sample (1.5 for Hann at hop n/4); the
    /// inverse divides by it so analysis then synthesis is the identity.
    ola_norm: f32,
    /// Inverse real FFT plan (synthesis).
    inverse: Arc<dyn ComplexToReal<f32>>,
    /// Forward real FFT plan (analysis, used by tests and tools).
    forward: Arc<dyn RealToComplex<f32>>,
    /// One frame's spectrum, reused.
    spectrum: Vec<Complex<f32>>,
    /// One frame's samples, reused.
    frame: Vec<f32>,
    /// FFT scratch (large enough for both directions).
    scratch: Vec<Complex<f32>>,
    /// Mid signal being accumulated, reused.
    mid: Vec<f32>,
    /// Side signal being accumulated, reused.
    side: Vec<f32>,
}

impl std::fmt::Debug for StftMs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StftMs")
            .field("cfg", &self.cfg)
            .field("comp", &self.comp)
            .finish_non_exhaustive()
    }
}

impl StftMs {
    /// Plans the FFTs for `cfg` (validated by [`StftMsConfig::from_json`]).
    pub fn new(cfg: StftMsConfig, comp: Compression) -> Self {
        let n = cfg.n_fft;
        let mut planner = RealFftPlanner::<f32>::new();
        let inverse = planner.plan_fft_inverse(n);
        let forward = planner.plan_fft_forward(n);
        let scratch_len = inverse
            .get_scratch_len()
            .max(forward.get_scratch_len())
            .max(1);
        let window: Vec<f32> = (0..n)
            .map(|i| {
                let s = (std::f64::consts::PI * i as f64 / n as f64).sin();
                (s * s) as f32
            })
            .collect();
        let ola_norm =
            (window.iter().map(|w| f64::from(w * w)).sum::<f64>() / cfg.hop as f64) as f32;
        Self {
            window,
            ola_norm,
            inverse,
            forward,
            spectrum: vec![Complex::new(0.0, 0.0); n / 2 + 1],
            frame: vec![0.0; n],
            scratch: vec![Complex::new(0.0, 0.0); scratch_len],
            mid: Vec::new(),
            side: Vec::new(),
            cfg,
            comp,
        }
    }

    /// The analysis this instance runs.
    pub fn config(&self) -> &StftMsConfig {
        &self.cfg
    }

    /// Stereo audio from the four visible channels `visible` (`[4][bins][frames]`,
    /// row-major, as they sit in the NCA state from `grown.spec_channel` on).
    /// Writes `frames · hop` samples to each of `left` / `right` (resized; they
    /// keep their capacity between calls).
    pub fn synthesize(
        &mut self,
        visible: &[f32],
        frames: usize,
        left: &mut Vec<f32>,
        right: &mut Vec<f32>,
    ) -> Result<(), String> {
        let bins = self.cfg.bins;
        let plane = bins * frames;
        if frames == 0 || visible.len() < VISIBLE_CHANNELS * plane {
            return Err(format!(
                "stft-ms synthesis needs 4 × {bins} × {frames} values, got {}",
                visible.len()
            ));
        }
        let n = frames * self.cfg.hop;
        let mut mid = std::mem::take(&mut self.mid);
        let mut side = std::mem::take(&mut self.side);
        for (k, out) in [&mut mid, &mut side].into_iter().enumerate() {
            out.clear();
            out.resize(n, 0.0);
            let re = &visible[2 * k * plane..(2 * k + 1) * plane];
            let im = &visible[(2 * k + 1) * plane..(2 * k + 2) * plane];
            for t in 0..frames {
                self.inverse_frame(re, im, frames, t, out);
            }
        }
        let gain = 1.0 / self.ola_norm;
        left.clear();
        right.clear();
        left.extend(mid.iter().zip(&side).map(|(m, s)| (m + s) * gain));
        right.extend(mid.iter().zip(&side).map(|(m, s)| (m - s) * gain));
        self.mid = mid;
        self.side = side;
        Ok(())
    }

    /// Inverse FFT of frame `t`, windowed and added into `out` around the loop.
    fn inverse_frame(&mut self, re: &[f32], im: &[f32], frames: usize, t: usize, out: &mut [f32]) {
        let bins = self.cfg.bins;
        for (b, c) in self.spectrum.iter_mut().enumerate() {
            let i = b * frames + t;
            *c = Complex::new(self.comp.expand(re[i]), self.comp.expand(im[i]));
        }
        // A real signal's DC and Nyquist bins are real; the imaginary parts a
        // grown grid may hold there have no waveform (numpy's irfft drops them too).
        self.spectrum[0].im = 0.0;
        self.spectrum[bins - 1].im = 0.0;
        // Cannot fail: the buffers have the planned sizes and the two
        // imaginary parts it checks were just zeroed.
        let _ = self.inverse.process_with_scratch(
            &mut self.spectrum,
            &mut self.frame,
            &mut self.scratch,
        );
        let n_fft = self.cfg.n_fft;
        let len = out.len();
        let scale = 1.0 / n_fft as f32;
        let start = (t * self.cfg.hop + len * n_fft - n_fft / 2) % len;
        for (j, (x, w)) in self.frame.iter().zip(&self.window).enumerate() {
            out[(start + j) % len] += x * w * scale;
        }
    }

    /// The four visible channels (`[4][bins][frames]`, compressed) of stereo
    /// audio whose length is a multiple of `hop`; the inverse of [`Self::synthesize`].
    pub fn analyze(&mut self, left: &[f32], right: &[f32]) -> Result<Vec<f32>, String> {
        let n = left.len();
        let hop = self.cfg.hop;
        if n == 0 || n != right.len() || !n.is_multiple_of(hop) {
            return Err(format!(
                "analysis needs equal, non-empty channels of a multiple of {hop} samples"
            ));
        }
        let frames = n / hop;
        let bins = self.cfg.bins;
        let plane = bins * frames;
        let mut out = vec![0.0; VISIBLE_CHANNELS * plane];
        let n_fft = self.cfg.n_fft;
        for k in 0..2 {
            for t in 0..frames {
                let start = (t * hop + n * n_fft - n_fft / 2) % n;
                for j in 0..n_fft {
                    let i = (start + j) % n;
                    let (l, r) = (left[i], right[i]);
                    let x = if k == 0 { (l + r) * 0.5 } else { (l - r) * 0.5 };
                    self.frame[j] = x * self.window[j];
                }
                let _ = self.forward.process_with_scratch(
                    &mut self.frame,
                    &mut self.spectrum,
                    &mut self.scratch,
                );
                for (b, c) in self.spectrum.iter().enumerate() {
                    out[2 * k * plane + b * frames + t] = self.comp.compress(c.re);
                    out[(2 * k + 1) * plane + b * frames + t] = self.comp.compress(c.im);
                }
            }
        }
        Ok(out)
    }
}

/// The research's stereo similarity (models/grown_train/metrics.py
/// `stereo_similarity`): mid and side waveform cosines `cm`, `cs` after
/// zero-padding to the longer length, combined as `sign(q)·sqrt(|q|/2)` with
/// `q = cm·|cm| + cs·|cs|`; a channel silent (peak < 1e-6) in both counts as 1,
/// in only one as 0.
pub fn stereo_similarity(a: (&[f32], &[f32]), b: (&[f32], &[f32])) -> f64 {
    let n = a.0.len().max(a.1.len()).max(b.0.len()).max(b.1.len());
    let at = |x: &[f32], i: usize| f64::from(x.get(i).copied().unwrap_or(0.0));
    let mut q = 0.0;
    for sign in [1.0, -1.0] {
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        let (mut pa, mut pb) = (0.0f64, 0.0f64);
        for i in 0..n {
            let x = 0.5 * (at(a.0, i) + sign * at(a.1, i));
            let y = 0.5 * (at(b.0, i) + sign * at(b.1, i));
            ab += x * y;
            aa += x * x;
            bb += y * y;
            pa = pa.max(x.abs());
            pb = pb.max(y.abs());
        }
        let (silent_a, silent_b) = (pa < 1e-6, pb < 1e-6);
        let c = if silent_a && silent_b {
            1.0
        } else if silent_a || silent_b {
            0.0
        } else {
            ab / (aa.sqrt() * bb.sqrt())
        };
        q += c * c.abs();
    }
    q.signum() * (q.abs() / 2.0).sqrt()
}

/// Bin drawn in each picture row counted from the bottom: row 0 is DC, the
/// others log2-spaced from bin 1 to the top bin (`stftms.picture_rows`).
pub fn picture_rows(bins: usize, height: usize) -> Vec<usize> {
    if height < 2 || bins < 2 {
        return vec![0; height];
    }
    let top = ((bins - 1) as f64).log2();
    let mut rows = Vec::with_capacity(height);
    rows.push(0);
    for r in 0..height - 1 {
        let pos = r as f64 / (height - 2).max(1) as f64;
        let b = (pos * top).exp2().floor() as usize;
        rows.push(b.clamp(1, bins - 1));
    }
    rows
}

/// The research's picture of an `stft-ms` grid: RGBA pixels, `frames` wide and
/// `height` tall, row 0 at the top (highest frequency). |M re|, |M im|, |S re|,
/// |S im| (times `gain`, clipped to 1) are the C, M, Y, K inks; CMYK → RGB,
/// then inverted, so silence is black. Frequency runs on a log2 axis
/// ([`picture_rows`]). `visible` is `[4][bins][frames]` as in the NCA state.
/// Pure, so the editor can call it for its view mode. The Python twin is
/// `stftms.picture`.
pub fn stft_ms_picture(
    visible: &[f32],
    bins: usize,
    frames: usize,
    height: usize,
    gain: f32,
) -> Vec<u8> {
    let mut px = vec![0u8; frames * height * 4];
    let plane = bins * frames;
    if visible.len() < VISIBLE_CHANNELS * plane || bins == 0 {
        return px;
    }
    let rows = picture_rows(bins, height);
    for (r, &bin) in rows.iter().enumerate() {
        let y = height - 1 - r;
        for t in 0..frames {
            let ink = |ch: usize| {
                let v = (visible[ch * plane + bin * frames + t] * gain).abs();
                if v.is_nan() {
                    0.0
                } else {
                    v.min(1.0)
                }
            };
            let (c, m, ye, k) = (ink(0), ink(1), ink(2), ink(3));
            let rgb = [
                (1.0 - c) * (1.0 - k),
                (1.0 - m) * (1.0 - k),
                (1.0 - ye) * (1.0 - k),
            ];
            let o = (y * frames + t) * 4;
            for (i, v) in rgb.iter().enumerate() {
                px[o + i] = ((1.0 - v) * 255.0).round() as u8;
            }
            px[o + 3] = 255;
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp() -> Compression {
        Compression {
            scale: 4.0,
            offset: 0.01f32.ln(),
        }
    }

    /// A deterministic stereo signal with a tone, noise, clicks, a DC offset and
    /// a wide image (the recordings' own round trip is the Python test, which
    /// can decode Vorbis; Rust would need a new dependency for that).
    fn test_signal(n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut l = Vec::with_capacity(n);
        let mut r = Vec::with_capacity(n);
        for i in 0..n {
            let t = i as f32 / 22050.0;
            let tone = (2.0 * std::f32::consts::PI * 220.0 * t).sin() * 0.3;
            let click = if i % 5000 < 40 { 0.5 } else { 0.0 };
            l.push(tone + 0.1 * noise() + click + 0.05);
            r.push(0.7 * tone + 0.1 * noise() - click);
        }
        (l, r)
    }

    #[test]
    fn config_parses_and_rejects_lossy_grids() {
        let json = r#"{"sample_rate":22050,"n_fft":1024,"hop":256,"win":1024,"bins":513,"window":"hann_periodic","padding":"circular"}"#;
        let cfg = StftMsConfig::from_json(json).unwrap();
        assert_eq!(cfg, StftMsConfig::default_22k());
        assert_eq!(cfg.grid().n_mels, 513);
        let no_dc = json.replace("513", "512");
        assert!(StftMsConfig::from_json(&no_dc)
            .unwrap_err()
            .contains("bins 512"));
        let bad_hop = json.replace("\"hop\":256", "\"hop\":300");
        assert!(StftMsConfig::from_json(&bad_hop)
            .unwrap_err()
            .contains("hop 300"));
    }

    #[test]
    fn compression_round_trips_and_clamps() {
        let c = comp();
        for x in [-200.0f32, -1.0, -1e-3, 0.0, 2e-4, 0.5, 256.0] {
            let back = c.expand(c.compress(x));
            assert!((back - x).abs() <= 1e-4 * x.abs().max(1e-2), "{x} → {back}");
        }
        assert_eq!(c.expand(f32::NAN), 0.0);
        assert_eq!(c.expand(100.0), c.expand(STATE_LIMIT));
        assert_eq!(c.expand(-100.0), -c.expand(STATE_LIMIT));
    }

    #[test]
    fn round_trip_is_exact_in_stereo() {
        let (l, r) = test_signal(256 * 40);
        let mut s = StftMs::new(StftMsConfig::default_22k(), comp());
        let visible = s.analyze(&l, &r).unwrap();
        assert_eq!(visible.len(), 4 * 513 * 40);
        let (mut l2, mut r2) = (Vec::new(), Vec::new());
        s.synthesize(&visible, 40, &mut l2, &mut r2).unwrap();
        let sim = stereo_similarity((&l, &r), (&l2, &r2));
        assert!(sim >= 0.999, "similarity {sim}");
        let err = l.iter().zip(&l2).chain(r.iter().zip(&r2));
        let worst = err.map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-3, "max error {worst}");
        // Reused buffers give the same answer (no state leaks between calls).
        let (mut l3, mut r3) = (Vec::new(), Vec::new());
        s.synthesize(&visible, 40, &mut l3, &mut r3).unwrap();
        assert_eq!(l2, l3);
        assert_eq!(r2, r3);
    }

    #[test]
    fn synthesis_rejects_short_input() {
        let mut s = StftMs::new(StftMsConfig::default_22k(), comp());
        let (mut l, mut r) = (Vec::new(), Vec::new());
        assert!(s.synthesize(&[0.0; 10], 4, &mut l, &mut r).is_err());
    }

    #[test]
    fn similarity_rules() {
        let (l, r) = test_signal(4000);
        assert!((stereo_similarity((&l, &r), (&l, &r)) - 1.0).abs() < 1e-9);
        let neg: Vec<f32> = l.iter().map(|x| -x).collect();
        let negr: Vec<f32> = r.iter().map(|x| -x).collect();
        assert!((stereo_similarity((&l, &r), (&neg, &negr)) + 1.0).abs() < 1e-9);
        // Mono vs mono: side silent in both counts as 1.
        assert!((stereo_similarity((&l, &l), (&l[..3000], &l[..3000])) - 1.0).abs() < 0.2);
        // A mono copy loses the side cosine entirely.
        let m: Vec<f32> = l.iter().zip(&r).map(|(a, b)| 0.5 * (a + b)).collect();
        assert!(stereo_similarity((&l, &r), (&m, &m)) <= 1.0 / 2f64.sqrt() + 1e-9);
    }

    #[test]
    fn picture_maps_inks_to_inverted_rgb() {
        let (bins, frames) = (513, 3);
        let plane = bins * frames;
        let mut v = vec![0.0f32; 4 * plane];
        for b in 0..bins {
            v[b * frames] = 1.0; // |M re| → cyan → inverted red
            v[3 * plane + b * frames + 1] = -2.0; // |S im| → black → inverted white
        }
        let px = stft_ms_picture(&v, bins, frames, 32, 1.0);
        assert_eq!(px.len(), 3 * 32 * 4);
        for y in 0..32 {
            let at = |t: usize| &px[(y * frames + t) * 4..(y * frames + t) * 4 + 4];
            assert_eq!(at(0), &[255, 0, 0, 255]);
            assert_eq!(at(1), &[255, 255, 255, 255]);
            assert_eq!(at(2), &[0, 0, 0, 255]);
        }
        let rows = picture_rows(513, 32);
        assert_eq!((rows[0], rows[1], rows[31]), (0, 1, 512));
        assert!(rows.windows(2).all(|w| w[0] <= w[1]));
        // log2 axis: the middle row is far below the middle bin.
        assert!(rows[16] < 64);
    }
}
