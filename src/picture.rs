//! What a spectrogram looks like: one colour map and one level mapping, shared
//! by the editor's live picture and `grown render --png`, so the picture a user
//! saves is the picture they saw.

use crate::dsp::mel::Spectrogram;

/// Levels (natural-log mel) shown below the loudest cell: ~95 dB, enough to
/// see quiet partials without the log floor (ln 1e-5 ≈ -11.5) washing out.
pub const DYNAMIC_RANGE: f32 = 11.0;

/// Control points of a magma-like colour map (dark purple → orange → pale
/// yellow), evenly spaced; perceptually ordered so level reads as brightness.
const MAGMA: [[u8; 3]; 9] = [
    [0, 0, 4],
    [28, 16, 68],
    [79, 18, 123],
    [129, 37, 129],
    [181, 54, 122],
    [229, 80, 100],
    [251, 135, 97],
    [254, 194, 135],
    [252, 253, 191],
];

/// Colour of level `x` in 0..1 (clamped; NaN is the darkest colour).
pub fn magma(x: f32) -> [u8; 3] {
    let x = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let pos = x * (MAGMA.len() - 1) as f32;
    let i = (pos.floor() as usize).min(MAGMA.len() - 2);
    let f = pos - i as f32;
    let (a, b) = (MAGMA[i], MAGMA[i + 1]);
    let mix = |k: usize| (a[k] as f32 + (b[k] as f32 - a[k] as f32) * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// The loudest finite cell of `spec` (0 when there is none): the top of the
/// level mapping, so a quiet sound is still visible.
pub fn loudest(spec: &Spectrogram) -> f32 {
    let max = spec
        .data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if max.is_finite() {
        max
    } else {
        0.0
    }
}

/// Colour of a cell at level `v` in a spectrogram whose loudest cell is
/// `max`: black at `max - DYNAMIC_RANGE` and below, pale at `max`.
pub fn level_colour(v: f32, max: f32) -> [u8; 3] {
    magma((v - (max - DYNAMIC_RANGE)) / DYNAMIC_RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magma_runs_dark_to_bright_and_survives_nan() {
        assert_eq!(magma(0.0), [0, 0, 4]);
        assert_eq!(magma(1.0), [252, 253, 191]);
        assert_eq!(magma(f32::NAN), magma(0.0));
        assert_eq!(magma(7.0), magma(1.0));
        let lum = |c: [u8; 3]| 0.3 * c[0] as f32 + 0.59 * c[1] as f32 + 0.11 * c[2] as f32;
        for i in 0..20 {
            assert!(lum(magma(i as f32 / 20.0)) < lum(magma((i + 1) as f32 / 20.0)));
        }
    }

    #[test]
    fn levels_are_relative_to_the_loudest_cell() {
        let s = Spectrogram {
            n_mels: 1,
            frames: 3,
            data: vec![-2.0, f32::NAN, -2.0 - DYNAMIC_RANGE],
        };
        assert_eq!(loudest(&s), -2.0);
        assert_eq!(level_colour(-2.0, loudest(&s)), magma(1.0));
        assert_eq!(level_colour(-20.0, loudest(&s)), magma(0.0));
        assert_eq!(loudest(&Spectrogram::default()), 0.0);
    }
}
