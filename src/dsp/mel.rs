//! The mel front end, bit-for-bit in spirit with BigVGAN's `mel_spectrogram`.
//!
//! Every model Grown loads (NCA and vocoder) was trained on this exact analysis,
//! so any drift here shows up as a timbre change or as garbage from the vocoder.
//! The contract (models/README.md): periodic Hann window of `win`, reflect
//! padding of `(n_fft - hop) / 2` on both sides, STFT with `center=False`,
//! magnitude `sqrt(re² + im² + 1e-9)`, Slaney-scale mel basis with Slaney
//! normalisation (librosa `filters.mel(htk=False, norm="slaney")`) and
//! `ln(max(x, 1e-5))`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

/// Floor inside the magnitude square root, as in BigVGAN (`+ 1e-9`).
pub const MAG_EPS: f64 = 1e-9;
/// Floor before the logarithm, as in BigVGAN's `dynamic_range_compression_torch`.
pub const LOG_FLOOR: f32 = 1e-5;

/// Analysis parameters shared by the NCA model, the vocoder and this module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MelConfig {
    /// Sample rate the models were trained at; generations are produced at this rate.
    pub sample_rate: u32,
    /// FFT size; sets the number of linear bins (`n_fft / 2 + 1`) the mel basis maps from.
    pub n_fft: usize,
    /// Frame advance in samples; one spectrogram frame becomes `hop` output samples.
    pub hop: usize,
    /// Window length (≤ n_fft); the window is centred in the FFT frame like torch.stft does.
    pub win: usize,
    /// Number of mel bands, i.e. the spectrogram height the models expect.
    pub n_mels: usize,
    /// Lowest mel band edge in Hz.
    pub fmin: f32,
    /// Highest mel band edge in Hz.
    pub fmax: f32,
}

impl MelConfig {
    /// The BigVGAN 22 kHz / 80-band configuration (the default of models/README.md).
    pub fn bigvgan_22k() -> Self {
        Self {
            sample_rate: 22050,
            n_fft: 1024,
            hop: 256,
            win: 1024,
            n_mels: 80,
            fmin: 0.0,
            fmax: 8000.0,
        }
    }

    /// Parses the `grown.mel` metadata JSON and rejects configurations that the
    /// analysis cannot run with (so later code never has to panic on them).
    pub fn from_json(s: &str) -> Result<Self, String> {
        let cfg: MelConfig =
            serde_json::from_str(s).map_err(|e| format!("invalid mel config JSON: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Serialises to the same JSON shape `from_json` reads.
    pub fn to_json(&self) -> String {
        // Serialising a plain struct of numbers cannot fail; fall back to an
        // empty object rather than panicking anyway.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Checks the invariants the analysis and the inverter rely on.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.sample_rate == 0 {
            problems.push("sample_rate must be > 0".to_owned());
        }
        if self.n_fft < 2 || !self.n_fft.is_multiple_of(2) {
            problems.push(format!("n_fft must be even and ≥ 2 (got {})", self.n_fft));
        }
        if self.hop == 0 || self.hop > self.n_fft {
            problems.push(format!("hop must be in 1..=n_fft (got {})", self.hop));
        }
        if self.win == 0 || self.win > self.n_fft {
            problems.push(format!("win must be in 1..=n_fft (got {})", self.win));
        }
        if self.n_mels == 0 {
            problems.push("n_mels must be > 0".to_owned());
        }
        if !(self.fmin.is_finite() && self.fmax.is_finite() && self.fmin >= 0.0) {
            problems.push("fmin/fmax must be finite and fmin ≥ 0".to_owned());
        } else if self.fmax <= self.fmin {
            problems.push(format!("fmax {} must exceed fmin {}", self.fmax, self.fmin));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("invalid mel config: {}", problems.join(", ")))
        }
    }

    /// `None` when both configs describe the same analysis (floats within 1e-3),
    /// otherwise a human-readable list such as `"n_mels 80 vs 100, hop 256 vs 512"`.
    pub fn mismatch(&self, other: &MelConfig) -> Option<String> {
        let mut diffs = Vec::new();
        let mut int = |name: &str, a: usize, b: usize| {
            if a != b {
                diffs.push(format!("{name} {a} vs {b}"));
            }
        };
        int(
            "sample_rate",
            self.sample_rate as usize,
            other.sample_rate as usize,
        );
        int("n_fft", self.n_fft, other.n_fft);
        int("hop", self.hop, other.hop);
        int("win", self.win, other.win);
        int("n_mels", self.n_mels, other.n_mels);
        for (name, a, b) in [
            ("fmin", self.fmin, other.fmin),
            ("fmax", self.fmax, other.fmax),
        ] {
            // NaN compares unequal to everything, so it always counts as a mismatch.
            let equal = (a - b).abs() <= 1e-3;
            if !equal {
                diffs.push(format!("{name} {a} vs {b}"));
            }
        }
        if diffs.is_empty() {
            None
        } else {
            Some(diffs.join(", "))
        }
    }

    /// Number of linear-frequency bins of one STFT frame.
    pub fn n_freqs(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Reflect padding applied on each side before framing (BigVGAN's `(n_fft - hop) / 2`).
    pub fn pad(&self) -> usize {
        (self.n_fft - self.hop.min(self.n_fft)) / 2
    }

    /// Number of frames the analysis yields for `len` input samples (0 for empty input).
    /// For `len` a multiple of `hop` this is exactly `len / hop`.
    pub fn frames_for(&self, len: usize) -> usize {
        if len == 0 || self.hop == 0 {
            return 0;
        }
        let padded = len + 2 * self.pad();
        if padded < self.n_fft {
            0
        } else {
            (padded - self.n_fft) / self.hop + 1
        }
    }
}

impl Default for MelConfig {
    fn default() -> Self {
        Self::bigvgan_22k()
    }
}

/// Natural-log mel spectrogram, row-major `[mel][frame]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spectrogram {
    /// Number of rows (mel bands).
    pub n_mels: usize,
    /// Number of columns (frames of `hop` samples).
    pub frames: usize,
    /// `n_mels * frames` values, row-major so one band is contiguous (the editor draws rows).
    pub data: Vec<f32>,
}

impl Spectrogram {
    /// A spectrogram filled with the log floor, i.e. silence.
    pub fn new(n_mels: usize, frames: usize) -> Self {
        Self {
            n_mels,
            frames,
            data: vec![LOG_FLOOR.ln(); n_mels * frames],
        }
    }

    /// Value at (`mel`, `frame`); panics on out-of-range indices like slice indexing does.
    pub fn at(&self, mel: usize, frame: usize) -> f32 {
        self.data[mel * self.frames + frame]
    }

    /// One mel band over time.
    pub fn row(&self, mel: usize) -> &[f32] {
        &self.data[mel * self.frames..(mel + 1) * self.frames]
    }

    /// Resizes in place, reusing the allocation where possible (engine loops call this).
    pub fn resize(&mut self, n_mels: usize, frames: usize) {
        self.n_mels = n_mels;
        self.frames = frames;
        self.data.clear();
        self.data.resize(n_mels * frames, LOG_FLOOR.ln());
    }

    /// True when every value is finite (vocoders refuse anything else).
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// Slaney mel scale (librosa `hz_to_mel(htk=False)`): linear below 1 kHz, logarithmic above.
pub fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`] (librosa `mel_to_hz(htk=False)`).
pub fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        F_SP * mel
    }
}

/// The mel filterbank `[n_mels][n_fft/2+1]`, computed in f64 and rounded to f32
/// exactly like librosa `filters.mel(htk=False, norm="slaney", dtype=float32)`.
pub fn slaney_mel_basis(cfg: &MelConfig) -> Vec<f32> {
    let n_freqs = cfg.n_freqs();
    let n_mels = cfg.n_mels;
    let sr = cfg.sample_rate as f64;
    // librosa: fft_frequencies = linspace(0, sr/2, n_fft/2 + 1).
    let fftfreqs: Vec<f64> = (0..n_freqs)
        .map(|k| {
            if n_freqs > 1 {
                k as f64 * (sr / 2.0) / (n_freqs - 1) as f64
            } else {
                0.0
            }
        })
        .collect();
    // librosa: mel_frequencies(n_mels + 2, fmin, fmax) = mel_to_hz(linspace(mel(fmin), mel(fmax))).
    let mel_lo = hz_to_mel(cfg.fmin as f64);
    let mel_hi = hz_to_mel(cfg.fmax as f64);
    let n_pts = n_mels + 2;
    let mel_f: Vec<f64> = (0..n_pts)
        .map(|i| {
            // numpy linspace: start + i * step, with the last point pinned to stop.
            let step = (mel_hi - mel_lo) / (n_pts - 1).max(1) as f64;
            let m = if i == n_pts - 1 {
                mel_hi
            } else {
                mel_lo + i as f64 * step
            };
            mel_to_hz(m)
        })
        .collect();
    let mut basis = vec![0f32; n_mels * n_freqs];
    for i in 0..n_mels {
        let fdiff_lo = mel_f[i + 1] - mel_f[i];
        let fdiff_hi = mel_f[i + 2] - mel_f[i + 1];
        // Slaney normalisation: each triangle has unit area in Hz.
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (k, &f) in fftfreqs.iter().enumerate() {
            let lower = -(mel_f[i] - f) / fdiff_lo;
            let upper = (mel_f[i + 2] - f) / fdiff_hi;
            let w = lower.min(upper).max(0.0);
            basis[i * n_freqs + k] = (w * enorm) as f32;
        }
    }
    basis
}

/// One mel filter stored as its non-zero span, so analysis and inversion cost
/// O(n_fft) per frame instead of O(n_mels · n_fft).
#[derive(Clone, Debug)]
pub struct SparseRow {
    /// First linear bin with a non-zero weight.
    pub start: usize,
    /// Weights for bins `start..start + weights.len()`.
    pub weights: Vec<f32>,
}

/// Splits a dense `[n_mels][n_freqs]` basis into per-row non-zero spans.
pub fn sparse_rows(basis: &[f32], n_mels: usize, n_freqs: usize) -> Vec<SparseRow> {
    (0..n_mels)
        .map(|i| {
            let row = &basis[i * n_freqs..(i + 1) * n_freqs];
            match row.iter().position(|&w| w != 0.0) {
                Some(start) => {
                    let end = n_freqs - row.iter().rev().position(|&w| w != 0.0).unwrap_or(0);
                    SparseRow {
                        start,
                        weights: row[start..end].to_vec(),
                    }
                }
                None => SparseRow {
                    start: 0,
                    weights: Vec::new(),
                },
            }
        })
        .collect()
}

/// Periodic Hann window of `win` samples centred in `n_fft` (torch.stft's placement).
pub fn padded_hann(n_fft: usize, win: usize) -> Vec<f64> {
    let mut w = vec![0f64; n_fft];
    let offset = (n_fft - win) / 2;
    for n in 0..win {
        w[offset + n] = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / win as f64).cos();
    }
    w
}

/// Index into `0..len` after reflecting `i` about the ends (numpy/torch "reflect",
/// repeated for pads longer than the signal so short inputs never panic).
fn reflect_index(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let mut j = i.rem_euclid(period);
    if j >= len as isize {
        j = period - j;
    }
    j as usize
}

/// Computes log-mel spectrograms; FFT plan, window, basis and scratch are built once.
pub struct MelAnalyzer {
    /// The analysis this instance implements.
    cfg: MelConfig,
    /// Forward real FFT of `n_fft` points (f64 so tiny bins stay accurate in the log domain).
    fft: Arc<dyn RealToComplex<f64>>,
    /// Periodic Hann of `win`, zero-padded to `n_fft`.
    window: Vec<f64>,
    /// Dense basis `[n_mels][n_freqs]`, exposed for the inverter and for tests.
    basis: Vec<f32>,
    /// Non-zero spans of `basis`, used for the actual projection.
    rows: Vec<SparseRow>,
    /// Windowed frame handed to the FFT (the FFT overwrites it).
    frame: Vec<f64>,
    /// FFT output.
    spectrum: Vec<Complex<f64>>,
    /// FFT scratch so `analyze` does not allocate per frame.
    scratch: Vec<Complex<f64>>,
    /// Linear magnitudes of the current frame.
    mag: Vec<f64>,
}

impl MelAnalyzer {
    /// Builds the plan and basis. An invalid config is clamped into something
    /// runnable rather than panicking; callers validate configs from files.
    pub fn new(cfg: MelConfig) -> Self {
        let mut cfg = cfg;
        if cfg.validate().is_err() {
            cfg = nearest_runnable(cfg);
        }
        let mut planner = RealFftPlanner::<f64>::new();
        let fft = planner.plan_fft_forward(cfg.n_fft);
        let window = padded_hann(cfg.n_fft, cfg.win);
        let basis = slaney_mel_basis(&cfg);
        let rows = sparse_rows(&basis, cfg.n_mels, cfg.n_freqs());
        let frame = fft.make_input_vec();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        let mag = vec![0.0; cfg.n_freqs()];
        Self {
            cfg,
            fft,
            window,
            basis,
            rows,
            frame,
            spectrum,
            scratch,
            mag,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &MelConfig {
        &self.cfg
    }

    /// Mel basis `[n_mels][n_fft/2+1]`.
    pub fn basis(&self) -> &[f32] {
        &self.basis
    }

    /// Log-mel spectrogram of `audio` (sampled at `config().sample_rate`).
    pub fn analyze(&mut self, audio: &[f32]) -> Spectrogram {
        let mut out = Spectrogram::default();
        self.analyze_into(audio, &mut out);
        out
    }

    /// Like [`analyze`](Self::analyze) but reuses `out`'s allocation.
    pub fn analyze_into(&mut self, audio: &[f32], out: &mut Spectrogram) {
        let frames = self.cfg.frames_for(audio.len());
        out.resize(self.cfg.n_mels, frames);
        let pad = self.cfg.pad() as isize;
        let hop = self.cfg.hop as isize;
        for t in 0..frames {
            let start = t as isize * hop - pad;
            for (n, (x, w)) in self.frame.iter_mut().zip(&self.window).enumerate() {
                let idx = start + n as isize;
                let s = if idx >= 0 && (idx as usize) < audio.len() {
                    audio[idx as usize]
                } else {
                    audio[reflect_index(idx, audio.len())]
                };
                *x = s as f64 * w;
            }
            // Lengths come from the plan itself, so this cannot fail.
            let _ = self.fft.process_with_scratch(
                &mut self.frame,
                &mut self.spectrum,
                &mut self.scratch,
            );
            for (m, c) in self.mag.iter_mut().zip(&self.spectrum) {
                *m = (c.re * c.re + c.im * c.im + MAG_EPS).sqrt();
            }
            for (i, row) in self.rows.iter().enumerate() {
                let mut acc = 0f64;
                for (w, m) in row.weights.iter().zip(&self.mag[row.start..]) {
                    acc += *w as f64 * m;
                }
                out.data[i * frames + t] = (acc as f32).max(LOG_FLOOR).ln();
            }
        }
    }
}

/// Replaces impossible values with the nearest runnable ones (used only when a
/// caller skipped validation; keeps `MelAnalyzer::new` panic-free).
pub(crate) fn nearest_runnable(mut cfg: MelConfig) -> MelConfig {
    cfg.sample_rate = cfg.sample_rate.max(1);
    cfg.n_fft = (cfg.n_fft.max(2) + 1) & !1;
    cfg.hop = cfg.hop.clamp(1, cfg.n_fft);
    cfg.win = cfg.win.clamp(1, cfg.n_fft);
    cfg.n_mels = cfg.n_mels.max(1);
    if !(cfg.fmin.is_finite() && cfg.fmin >= 0.0) {
        cfg.fmin = 0.0;
    }
    if !(cfg.fmax.is_finite() && cfg.fmax > cfg.fmin) {
        cfg.fmax = cfg.fmin.max(cfg.sample_rate as f32 / 2.0) + 1.0;
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_mismatch() {
        let cfg = MelConfig::bigvgan_22k();
        let parsed = MelConfig::from_json(&cfg.to_json()).unwrap();
        assert_eq!(parsed, cfg);
        let readme = r#"{"sample_rate":22050,"n_fft":1024,"hop":256,"win":1024,"n_mels":80,"fmin":0.0,"fmax":8000.0}"#;
        assert_eq!(MelConfig::from_json(readme).unwrap(), cfg);
        assert!(cfg.mismatch(&parsed).is_none());
        let mut other = cfg.clone();
        other.n_mels = 100;
        other.hop = 512;
        other.fmax = 8000.0005;
        assert_eq!(
            cfg.mismatch(&other).as_deref(),
            Some("hop 256 vs 512, n_mels 80 vs 100")
        );
        other.fmax = 11025.0;
        assert!(cfg.mismatch(&other).unwrap().contains("fmax 8000 vs 11025"));
        assert!(MelConfig::from_json("{}").is_err());
        assert!(MelConfig::from_json(&readme.replace("\"hop\":256", "\"hop\":0")).is_err());
    }

    #[test]
    fn slaney_scale_matches_librosa_values() {
        // librosa.hz_to_mel(1000) == 15, hz_to_mel(8000) == 45.245640...
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(8000.0) - 45.245_640_471_924_965).abs() < 1e-9);
        assert!((hz_to_mel(440.0) - 6.6).abs() < 1e-12);
        for hz in [0.0, 100.0, 999.0, 1000.0, 4321.0, 11025.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }

    #[test]
    fn basis_has_slaney_shape() {
        let cfg = MelConfig::bigvgan_22k();
        let basis = slaney_mel_basis(&cfg);
        let nf = cfg.n_freqs();
        assert_eq!(basis.len(), 80 * nf);
        let df = cfg.sample_rate as f64 / cfg.n_fft as f64;
        for i in 0..cfg.n_mels {
            let row = &basis[i * nf..(i + 1) * nf];
            assert!(row.iter().all(|&w| w >= 0.0));
            // Slaney norm: each triangle integrates to ~1 over Hz (sum * bin width),
            // except the narrowest low bands, which are sampled too coarsely.
            let area: f64 = row.iter().map(|&w| w as f64).sum::<f64>() * df;
            let tol = if i > 40 { 0.02 } else { 0.1 };
            if i > 10 {
                assert!((area - 1.0).abs() < tol, "band {i} area {area}");
            }
            // Triangles are unimodal: rising then falling.
            let peak = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            assert!(row[..peak].windows(2).all(|w| w[0] <= w[1]));
            assert!(row[peak..].windows(2).all(|w| w[0] >= w[1]));
        }
        // Nothing above fmax = 8000 Hz (bin 371.5).
        for k in 372..nf {
            assert!((0..80).all(|i| basis[i * nf + k] == 0.0));
        }
        // A value worked by hand from librosa's formula: band 10, bin 19 (409.1 Hz).
        let mel_f = |i: usize| mel_to_hz(i as f64 * hz_to_mel(8000.0) / 81.0);
        let f = 19.0 * df;
        let w = ((f - mel_f(10)) / (mel_f(11) - mel_f(10)))
            .min((mel_f(12) - f) / (mel_f(12) - mel_f(11)))
            .max(0.0)
            * 2.0
            / (mel_f(12) - mel_f(10));
        assert!((basis[10 * nf + 19] as f64 - w).abs() < 1e-7);
        assert!(w > 0.0);
    }

    #[test]
    fn frame_count_matches_bigvgan() {
        let cfg = MelConfig::bigvgan_22k();
        assert_eq!(cfg.pad(), 384);
        assert_eq!(cfg.frames_for(256 * 100), 100);
        assert_eq!(cfg.frames_for(22050), 86);
        assert_eq!(cfg.frames_for(0), 0);
        let mut a = MelAnalyzer::new(cfg);
        // Short inputs (shorter than the pad) must not panic.
        let s = a.analyze(&[0.5; 300]);
        assert_eq!((s.n_mels, s.frames), (80, 1));
        assert!(s.is_finite());
        assert_eq!(a.analyze(&[]).frames, 0);
    }

    #[test]
    fn sine_lands_in_the_right_band_and_silence_hits_the_floor() {
        let cfg = MelConfig::bigvgan_22k();
        let sr = cfg.sample_rate as f32;
        let mut a = MelAnalyzer::new(cfg.clone());
        let audio: Vec<f32> = (0..256 * 40)
            .map(|n| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / sr).sin())
            .collect();
        let s = a.analyze(&audio);
        let t = 20;
        let best = (0..80)
            .max_by(|&i, &j| s.at(i, t).total_cmp(&s.at(j, t)))
            .unwrap();
        // 1000 Hz is mel 15; band centres are i+1 steps of 45.2456/81 mel.
        let centre = mel_to_hz((best + 1) as f64 * hz_to_mel(8000.0) / 81.0);
        assert!((centre - 1000.0).abs() < 40.0, "peak band centre {centre}");
        let silent = a.analyze(&vec![0.0; 2560]);
        // sqrt(1e-9) * band weight stays below 1e-5, so silence sits at ln(1e-5).
        assert!(silent
            .data
            .iter()
            .all(|&v| (v - LOG_FLOOR.ln()).abs() < 1e-6));
    }

    /// Reference vectors from the Python side (`models/testdata/mel_reference.json`,
    /// written by `grown_train` with BigVGAN's recipe in float64). Skips only while
    /// the file has not been generated yet.
    #[test]
    fn matches_python_reference() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/testdata/mel_reference.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("mel_reference.json not present; skipping reference comparison");
            return;
        };
        let v: serde_json::Value = serde_json::from_str(&text).expect("reference JSON parses");
        let cfg: MelConfig = serde_json::from_value(v["config"].clone()).expect("config");
        let tol = v["tolerance"].as_f64().unwrap_or(1e-4);
        assert!(tol <= 1e-4);
        let mut analyzer = MelAnalyzer::new(cfg.clone());
        let nf = cfg.n_freqs();
        let rows = v["mel_basis_rows"].as_array().expect("basis rows");
        assert!(!rows.is_empty());
        for r in rows {
            let row = r["row"].as_u64().unwrap() as usize;
            let start = r["start"].as_u64().unwrap() as usize;
            let values = r["values"].as_array().unwrap();
            let ours = &analyzer.basis()[row * nf..(row + 1) * nf];
            // Same support, same values (relative to the row's peak).
            assert!(
                ours[..start].iter().all(|&w| w == 0.0),
                "row {row} starts early"
            );
            assert!(
                ours[start + values.len()..].iter().all(|&w| w == 0.0),
                "row {row} ends late"
            );
            for (k, want) in values.iter().enumerate() {
                let want = want.as_f64().unwrap();
                let got = ours[start + k] as f64;
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                    "basis[{row}][{}]: {got} vs {want}",
                    start + k
                );
            }
        }
        let cases = v["cases"].as_array().expect("cases");
        assert!(!cases.is_empty());
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            let signal: Vec<f32> = case["signal"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let want = case["log_mel"].as_array().unwrap();
            let got = analyzer.analyze(&signal);
            assert_eq!(
                got.frames,
                case["n_frames"].as_u64().unwrap() as usize,
                "{name} frames"
            );
            assert_eq!(want.len(), got.n_mels, "{name} bands");
            let mut worst = 0f64;
            for (m, row) in want.iter().enumerate() {
                for (t, x) in row.as_array().unwrap().iter().enumerate() {
                    worst = worst.max((got.at(m, t) as f64 - x.as_f64().unwrap()).abs());
                }
            }
            eprintln!("{name}: max abs log-mel difference {worst:.2e}");
            assert!(worst <= tol, "{name}: max abs difference {worst} > {tol}");
        }
    }
}
