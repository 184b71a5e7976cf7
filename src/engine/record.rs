//! "Save WAV": the sound the voices play now, written as a file at the host's
//! rate. The engine keeps a copy of each generation it publishes (its own
//! thread may allocate and write files; the audio thread never does).

use crate::play::resample::resample;
use crate::play::Generation;
use std::io::Write;
use std::path::Path;

/// A copy of the last published generation.
#[derive(Clone, Debug, Default)]
pub struct Take {
    pub left: Vec<f32>,
    /// Present for stereo generations.
    pub right: Option<Vec<f32>>,
    pub sample_rate: u32,
    /// Whether the generation is circular (it loops without a seam).
    pub looped: bool,
}

impl Take {
    /// Copies what `g` plays.
    pub fn capture(g: &Generation) -> Self {
        Self {
            left: g.audio().to_vec(),
            right: g.stereo.then(|| g.audio_right().to_vec()),
            sample_rate: g.sample_rate,
            looped: g.looped,
        }
    }
}

/// Writes `take` at `rate` Hz as a 32-bit float stereo WAV. With `looping`
/// (and a circular take) the file is exactly one seamless loop and carries a
/// `smpl` chunk marking it, so samplers loop it as Grown does; otherwise the
/// last 5 ms fade out, as a one-shot voice ends.
pub fn write_wav(path: &Path, take: &Take, rate: f32, looping: bool) -> std::io::Result<usize> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_owned());
    if take.left.is_empty() || take.sample_rate == 0 {
        return Err(bad("nothing has been grown yet"));
    }
    if !(rate.is_finite() && (8_000.0..=384_000.0).contains(&rate)) {
        return Err(bad("the host sample rate is unknown"));
    }
    let circular = looping && take.looped;
    let (src_rate, out_rate) = (f64::from(take.sample_rate), f64::from(rate));
    let left = resample(&take.left, src_rate, out_rate, circular);
    let mut right = match &take.right {
        Some(r) => resample(r, src_rate, out_rate, circular),
        None => left.clone(),
    };
    let mut left = left;
    let frames = left.len().min(right.len());
    if !circular {
        let fade = ((0.005 * out_rate) as usize).min(frames);
        for k in 0..fade {
            let g = k as f32 / fade as f32;
            left[frames - 1 - k] *= g;
            right[frames - 1 - k] *= g;
        }
    }
    let rate = rate.round() as u32;
    let data_bytes = (frames * 8) as u32;
    let smpl_bytes: u32 = if circular { 36 + 24 } else { 0 };
    let mut out = Vec::with_capacity(data_bytes as usize + 128);
    out.extend_from_slice(b"RIFF");
    let riff =
        4 + (8 + 16) + (8 + 4) + (8 + data_bytes) + if circular { 8 + smpl_bytes } else { 0 };
    out.extend_from_slice(&riff.to_le_bytes());
    out.extend_from_slice(b"WAVE");
    // fmt: IEEE float, 2 channels.
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 8).to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    // fact: required beside non-PCM formats.
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&(frames as u32).to_le_bytes());
    if circular {
        out.extend_from_slice(b"smpl");
        out.extend_from_slice(&smpl_bytes.to_le_bytes());
        let period_ns = (1e9 / f64::from(rate)).round() as u32;
        for v in [0u32, 0, period_ns, 60, 0, 0, 0, 1, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        // One forward loop over the whole file (end inclusive).
        for v in [0u32, 0, 0, frames as u32 - 1, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_bytes.to_le_bytes());
    for i in 0..frames {
        out.extend_from_slice(&sanitize(left[i]).to_le_bytes());
        out.extend_from_slice(&sanitize(right[i]).to_le_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("wav.part");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&out)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(frames)
}

fn sanitize(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-4.0, 4.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 441 Hz sine over exactly 1 s at 22.05 kHz: 441 whole cycles, circular.
    fn sine_take() -> Take {
        let left = (0..22050)
            .map(|n| 0.5 * (2.0 * std::f32::consts::PI * 441.0 * n as f32 / 22050.0).sin())
            .collect();
        Take {
            left,
            right: None,
            sample_rate: 22050,
            looped: true,
        }
    }

    /// (rate, channels, frames of data as f32 pairs, has smpl) of a written file.
    fn read_back(bytes: &[u8]) -> (u32, u16, Vec<(f32, f32)>, bool) {
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize + 8,
            bytes.len()
        );
        assert_eq!(&bytes[8..12], b"WAVE");
        let mut at = 12;
        let (mut rate, mut channels, mut data, mut smpl) = (0, 0, Vec::new(), false);
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let body = &bytes[at + 8..at + 8 + size];
            match id {
                b"fmt " => {
                    assert_eq!(u16::from_le_bytes([body[0], body[1]]), 3, "IEEE float");
                    channels = u16::from_le_bytes([body[2], body[3]]);
                    rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                }
                b"data" => {
                    data = body
                        .chunks_exact(8)
                        .map(|c| {
                            (
                                f32::from_le_bytes(c[0..4].try_into().unwrap()),
                                f32::from_le_bytes(c[4..8].try_into().unwrap()),
                            )
                        })
                        .collect()
                }
                b"smpl" => smpl = true,
                _ => {}
            }
            at += 8 + size;
        }
        (rate, channels, data, smpl)
    }

    #[test]
    fn a_looping_take_is_one_seamless_loop_at_the_host_rate() {
        let dir = std::env::temp_dir().join(format!("grown-wav-{}", std::process::id()));
        let path = dir.join("loop.wav");
        let frames = write_wav(&path, &sine_take(), 48_000.0, true).unwrap();
        assert_eq!(frames, 48_000);
        let (rate, channels, data, smpl) = read_back(&std::fs::read(&path).unwrap());
        assert_eq!(
            (rate, channels, data.len(), smpl),
            (48_000, 2, 48_000, true)
        );
        // The loop seam is no bigger than any step inside the sine.
        let step = |a: f32, b: f32| (a - b).abs();
        let inside = data
            .windows(2)
            .map(|w| step(w[0].0, w[1].0))
            .fold(0.0, f32::max);
        let seam = step(data[data.len() - 1].0, data[0].0);
        assert!(seam <= inside * 1.01, "seam {seam} vs {inside}");
        assert!(data.iter().all(|(l, r)| l == r), "mono plays on both sides");
        let peak = data.iter().fold(0f32, |m, (l, _)| m.max(l.abs()));
        assert!((peak - 0.5).abs() < 0.01, "{peak}");

        // One-shot: no loop chunk, and the end fades to silence.
        let once = dir.join("once.wav");
        write_wav(&once, &sine_take(), 44_100.0, false).unwrap();
        let (rate, _, data, smpl) = read_back(&std::fs::read(&once).unwrap());
        assert_eq!((rate, smpl), (44_100, false));
        assert_eq!(data.last().unwrap().0, 0.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nothing_to_save_or_no_rate_is_a_clear_error() {
        let path = std::env::temp_dir().join("grown-never.wav");
        let empty = write_wav(&path, &Take::default(), 48_000.0, true).unwrap_err();
        assert_eq!(empty.to_string(), "nothing has been grown yet");
        let rate = write_wav(&path, &sine_take(), f32::NAN, true).unwrap_err();
        assert_eq!(rate.to_string(), "the host sample rate is unknown");
        assert!(!path.exists());
    }
}
