//! Spectral measurements robust enough for grown textures, which rarely have one
//! clear fundamental: averaged magnitude spectra, their centroid, and the frequency
//! scale that best maps one spectrum onto another.

use realfft::RealFftPlanner;

/// Frame length of the averaged spectra; 4096 gives ~11 Hz bins at 44.1 kHz.
const FRAME: usize = 4096;

/// Averaged magnitude spectrum (Welch: Hann frames, 50 % overlap), bin width
/// `sample_rate / FRAME`.
pub fn spectrum(audio: &[f32]) -> Vec<f64> {
    assert!(audio.len() >= FRAME, "need at least {FRAME} samples, got {}", audio.len());
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(FRAME);
    let window: Vec<f64> = (0..FRAME)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / FRAME as f64).cos())
        .collect();
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut sum = vec![0.0; FRAME / 2 + 1];
    let mut frames = 0;
    let mut start = 0;
    while start + FRAME <= audio.len() {
        for (i, x) in input.iter_mut().enumerate() {
            *x = f64::from(audio[start + i]) * window[i];
        }
        fft.process(&mut input, &mut output).expect("fft");
        for (s, c) in sum.iter_mut().zip(&output) {
            *s += c.norm();
        }
        frames += 1;
        start += FRAME / 2;
    }
    sum.iter_mut().for_each(|s| *s /= frames as f64);
    sum
}

/// Frequency in Hz of FFT bin `bin`.
pub fn bin_hz(bin: f64, sample_rate: f64) -> f64 {
    bin * sample_rate / FRAME as f64
}

/// Power-weighted mean frequency in Hz, ignoring DC and everything below 20 Hz.
pub fn centroid_hz(spectrum: &[f64], sample_rate: f64) -> f64 {
    let (mut weighted, mut total) = (0.0, 0.0);
    for (bin, m) in spectrum.iter().enumerate() {
        let hz = bin_hz(bin as f64, sample_rate);
        if hz < 20.0 {
            continue;
        }
        let power = m * m;
        weighted += hz * power;
        total += power;
    }
    assert!(total > 0.0, "centroid of a silent spectrum");
    weighted / total
}

/// The factor `r` that best explains `higher(f) ≈ lower(f / r)` (same sample rate),
/// searched over `range` in steps of 0.005, scored by the correlation of the
/// log-magnitude spectra over 60 Hz .. `max_hz`.
pub fn best_frequency_scale(lower: &[f64], higher: &[f64], sample_rate: f64, range: (f64, f64), max_hz: f64) -> f64 {
    let log = |m: f64| (m + 1e-9).ln();
    let interpolate = |s: &[f64], bin: f64| -> f64 {
        let i = bin.floor() as usize;
        if i + 1 >= s.len() {
            return 0.0;
        }
        let t = bin - i as f64;
        s[i] * (1.0 - t) + s[i + 1] * t
    };
    let first = (60.0 * FRAME as f64 / sample_rate).ceil() as usize;
    let last = ((max_hz * FRAME as f64 / sample_rate) as usize).min(higher.len() - 1);
    let mut best = (f64::NEG_INFINITY, range.0);
    let mut r = range.0;
    while r <= range.1 + 1e-12 {
        let a: Vec<f64> = (first..=last).map(|b| log(higher[b])).collect();
        let b: Vec<f64> = (first..=last).map(|b| log(interpolate(lower, b as f64 / r))).collect();
        let score = correlation(&a, &b);
        if score > best.0 {
            best = (score, r);
        }
        r += 0.005;
    }
    best.1
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

/// Distance between two spectra that ignores overall level: 1 - correlation of
/// their log magnitudes over 60 Hz .. `max_hz`. 0 for identical shapes.
pub fn spectral_distance(a: &[f64], b: &[f64], sample_rate: f64, max_hz: f64) -> f64 {
    let first = (60.0 * FRAME as f64 / sample_rate).ceil() as usize;
    let last = ((max_hz * FRAME as f64 / sample_rate) as usize).min(a.len() - 1);
    let la: Vec<f64> = a[first..=last].iter().map(|m| (m + 1e-9).ln()).collect();
    let lb: Vec<f64> = b[first..=last].iter().map(|m| (m + 1e-9).ln()).collect();
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
        let low = spectrum(&tones(&[220.0, 440.0, 660.0, 1320.0], sr, 1.0));
        let high = spectrum(&tones(&[440.0, 880.0, 1320.0, 2640.0], sr, 1.0));
        let ratio = centroid_hz(&high, sr) / centroid_hz(&low, sr);
        assert!((ratio - 2.0).abs() < 0.02, "centroid ratio {ratio}");
        let scale = best_frequency_scale(&low, &high, sr, (1.5, 2.5), 6000.0);
        assert!((scale - 2.0).abs() < 0.02, "scale {scale}");
        assert!(spectral_distance(&low, &low, sr, 6000.0) < 1e-9);
        assert!(spectral_distance(&low, &high, sr, 6000.0) > 0.05);
    }
}
