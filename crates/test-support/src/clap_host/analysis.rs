//! Spectral measurements robust enough for grown textures, which rarely have one
//! clear fundamental: averaged magnitude spectra, their centroid, and the frequency
//! scale that best maps one spectrum onto another.

use realfft::RealFftPlanner;

/// Analysis frame duration: 0.1 s gives 10 Hz bins at every sample rate, so spectra
/// of different rates are measured alike.
const FRAME_S: f64 = 0.1;
/// Lowest frequency the measures look at: below it sit DC and window leakage.
const LOW_HZ: f64 = 40.0;

/// An averaged magnitude spectrum.
pub struct Spectrum {
    /// Mean magnitude per bin.
    pub mags: Vec<f64>,
    /// Width of one bin in Hz.
    pub bin_hz: f64,
}

impl Spectrum {
    /// Bin range covering `LOW_HZ ..= max_hz`.
    fn band(&self, max_hz: f64) -> std::ops::RangeInclusive<usize> {
        let first = (LOW_HZ / self.bin_hz).ceil() as usize;
        let last = ((max_hz / self.bin_hz) as usize).min(self.mags.len() - 1);
        first..=last
    }
}

/// Welch-averaged magnitude spectrum: Hann frames of `FRAME_S`, 50 % overlap.
pub fn spectrum(audio: &[f32], sample_rate: f64) -> Spectrum {
    let frame = (FRAME_S * sample_rate).round() as usize;
    assert!(
        audio.len() >= frame,
        "need at least {frame} samples, got {}",
        audio.len()
    );
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(frame);
    let window: Vec<f64> = (0..frame)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / frame as f64).cos())
        .collect();
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut sum = vec![0.0; frame / 2 + 1];
    let mut frames = 0;
    let mut start = 0;
    while start + frame <= audio.len() {
        for (i, x) in input.iter_mut().enumerate() {
            *x = f64::from(audio[start + i]) * window[i];
        }
        fft.process(&mut input, &mut output).expect("fft");
        for (s, c) in sum.iter_mut().zip(&output) {
            *s += c.norm();
        }
        frames += 1;
        start += frame / 2;
    }
    sum.iter_mut().for_each(|s| *s /= frames as f64);
    Spectrum {
        mags: sum,
        bin_hz: sample_rate / frame as f64,
    }
}

/// Power-weighted mean frequency in Hz, from `LOW_HZ` up.
pub fn centroid_hz(spectrum: &Spectrum) -> f64 {
    let (mut weighted, mut total) = (0.0, 0.0);
    for bin in spectrum.band(f64::INFINITY) {
        let power = spectrum.mags[bin] * spectrum.mags[bin];
        weighted += bin as f64 * spectrum.bin_hz * power;
        total += power;
    }
    assert!(total > 0.0, "centroid of a silent spectrum");
    weighted / total
}

/// The factor `r` that best explains `higher(f) ≈ lower(f / r)`, searched over
/// `range` in steps of 0.005, scored by the correlation of the log-magnitude
/// spectra over `LOW_HZ ..= max_hz`.
pub fn best_frequency_scale(
    lower: &Spectrum,
    higher: &Spectrum,
    range: (f64, f64),
    max_hz: f64,
) -> f64 {
    let at = |s: &Spectrum, hz: f64| -> f64 {
        let position = hz / s.bin_hz;
        let i = position.floor() as usize;
        if i + 1 >= s.mags.len() {
            return 0.0;
        }
        let t = position - i as f64;
        s.mags[i] * (1.0 - t) + s.mags[i + 1] * t
    };
    let band = higher.band(max_hz);
    let a: Vec<f64> = band.clone().map(|b| log(higher.mags[b])).collect();
    let mut best = (f64::NEG_INFINITY, range.0);
    let mut r = range.0;
    while r <= range.1 + 1e-12 {
        let b: Vec<f64> = band
            .clone()
            .map(|bin| log(at(lower, bin as f64 * higher.bin_hz / r)))
            .collect();
        let score = correlation(&a, &b);
        if score > best.0 {
            best = (score, r);
        }
        r += 0.005;
    }
    best.1
}

fn log(magnitude: f64) -> f64 {
    (magnitude + 1e-9).ln()
}

/// Pearson correlation.
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt().max(1e-30)
}

/// Distance between two spectra of the same sample rate that ignores overall level:
/// 1 - correlation of their log magnitudes over `LOW_HZ ..= max_hz`; 0 for equal shapes.
pub fn spectral_distance(a: &Spectrum, b: &Spectrum, max_hz: f64) -> f64 {
    assert_eq!(a.bin_hz, b.bin_hz, "spectra of different resolutions");
    let band = a.band(max_hz);
    let la: Vec<f64> = band.clone().map(|i| log(a.mags[i])).collect();
    let lb: Vec<f64> = band.map(|i| log(b.mags[i])).collect();
    1.0 - correlation(&la, &lb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones(freqs: &[f64], sample_rate: f64, seconds: f64) -> Vec<f32> {
        let n = (sample_rate * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / sample_rate;
                freqs
                    .iter()
                    .enumerate()
                    .map(|(k, f)| (2.0 * std::f64::consts::PI * f * t).sin() / (k + 1) as f64)
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn an_octave_doubles_centroid_and_scale() {
        let sr = 48_000.0;
        let low = spectrum(&tones(&[220.0, 440.0, 660.0, 1320.0], sr, 1.0), sr);
        let high = spectrum(&tones(&[440.0, 880.0, 1320.0, 2640.0], sr, 1.0), sr);
        let ratio = centroid_hz(&high) / centroid_hz(&low);
        assert!((ratio - 2.0).abs() < 0.02, "centroid ratio {ratio}");
        let scale = best_frequency_scale(&low, &high, (1.5, 2.5), 6000.0);
        assert!((scale - 2.0).abs() < 0.02, "scale {scale}");
        assert!(spectral_distance(&low, &low, 6000.0) < 1e-9);
        assert!(spectral_distance(&low, &high, 6000.0) > 0.05);
    }

    #[test]
    fn the_same_tones_measure_alike_at_every_sample_rate() {
        let centroids: Vec<f64> = [44_100.0, 48_000.0, 96_000.0]
            .iter()
            .map(|&sr| centroid_hz(&spectrum(&tones(&[110.0, 330.0, 990.0], sr, 0.5), sr)))
            .collect();
        for c in &centroids {
            assert!((c / centroids[0] - 1.0).abs() < 0.01, "{centroids:?}");
        }
    }
}
