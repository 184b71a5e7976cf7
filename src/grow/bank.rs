//! Seed banks: the passage of its own recording an excerpt-seeded model grows
//! from (contract version 2, `grown.seed_state` kind `excerpt`).
//!
//! Grown from noise, a small NCA turns a trumpet or a string section into a
//! haze. A model with a bank starts every trajectory from a passage of the
//! recording it learned, perturbed by the seed noise, and growth regrows the
//! passage; Seed chooses the passage. This file decodes `grown.seed_bank` and
//! cuts passages; [`crate::grow::nca::Nca::reset`] adds the noise.
//!
//! The passage is defined once, here and in `grown_train/excerpt.py`: start
//! uniform over [`start_span`], and the first [`crossfade_len`] frames blended
//! from the frames after the passage's end, so a looping generation flows
//! from its last frame into its first as the recording did.

use std::fmt;

/// Frames over which a passage's end is crossfaded into its start
/// (`LOOP_XFADE` in `grown_train/excerpt.py`).
pub const LOOP_XFADE: usize = 8;

/// Largest bank a file may carry, in frames: bounds memory for a hostile file
/// (`MAX_BANK_FRAMES` there is 2048; the margin lets future exporters grow).
pub const MAX_BANK_FRAMES: usize = 1 << 16;

/// A decoded `grown.seed_bank`: the visible channel's values (state units)
/// `[n_mels][frames]`.
#[derive(Clone, PartialEq)]
pub struct SeedBank {
    /// Length in frames.
    pub frames: usize,
    /// Values, mel-major: band `m`, frame `f` is `values[m * frames + f]`.
    pub values: Vec<f32>,
}

impl fmt::Debug for SeedBank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hundreds of thousands of values say nothing in a log line.
        write!(f, "SeedBank {{ frames: {} }}", self.frames)
    }
}

impl SeedBank {
    /// Decodes `{"frames":T,"f16":"<base64>"}` for a grid of `n_mels` bands.
    /// Every value must be finite.
    pub fn from_json(s: &str, n_mels: usize) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("invalid JSON ({e})"))?;
        let frames = v
            .get("frames")
            .and_then(|x| x.as_u64())
            .ok_or("missing integer `frames`")? as usize;
        if frames == 0 || frames > MAX_BANK_FRAMES {
            return Err(format!(
                "`frames` = {frames} must be in 1..={MAX_BANK_FRAMES}"
            ));
        }
        let text = v
            .get("f16")
            .and_then(|x| x.as_str())
            .ok_or("missing base64 string `f16`")?;
        let bytes = decode_base64(text)?;
        let want = n_mels * frames * 2;
        if bytes.len() != want {
            return Err(format!(
                "{} bytes of float16, expected {want} ({n_mels} rows x {frames} frames)",
                bytes.len()
            ));
        }
        let values: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        if values.iter().any(|x| !x.is_finite()) {
            return Err("a value is not finite".into());
        }
        Ok(Self { frames, values })
    }

    /// Writes the passage of `out.len() / n_mels` frames starting at `start`
    /// into `out` `[n_mels][frames]`: bank frames wrap, and the first
    /// [`crossfade_len`] frames fade in from the frames after the passage's end.
    pub fn passage_into(&self, start: usize, n_mels: usize, out: &mut [f32]) {
        let frames = out.len() / n_mels.max(1);
        let n = self.frames;
        let xf = crossfade_len(frames);
        for (m, row) in out.chunks_exact_mut(frames).enumerate().take(n_mels) {
            let src = &self.values[m * n..(m + 1) * n];
            for (f, v) in row.iter_mut().enumerate() {
                let here = src[(start + f) % n];
                *v = if f < xf {
                    let w = (f as f32 + 0.5) / xf as f32;
                    w * here + (1.0 - w) * src[(start + frames + f) % n]
                } else {
                    here
                };
            }
        }
    }
}

/// Frames of the loop crossfade for a grid `frames` wide.
pub fn crossfade_len(frames: usize) -> usize {
    LOOP_XFADE.min(frames / 2)
}

/// How many start positions a passage `frames` wide (plus its crossfade tail)
/// has in a bank of `bank_frames`; at least 1.
pub fn start_span(bank_frames: usize, frames: usize) -> usize {
    bank_frames
        .saturating_sub(frames + crossfade_len(frames))
        .saturating_add(1)
        .max(1)
}

/// IEEE half precision to single (exact; subnormals, infinities and NaN kept).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man * 2^-24, exact in f32.
            let v = man as f32 * (1.0 / (1u32 << 24) as f32);
            return if sign != 0 { -v } else { v };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Standard base64 (RFC 4648, `+/`, `=` padding) to bytes.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let s = text.as_bytes();
    if !s.len().is_multiple_of(4) {
        return Err("base64 length is not a multiple of 4".into());
    }
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, quad) in s.chunks_exact(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) || quad[..4 - pad].contains(&b'=') {
            return Err("misplaced base64 padding".into());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | sextet(c).ok_or_else(|| format!("`{}` is not base64", c as char))?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn encode_base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in bytes.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    /// `grown.seed_bank` for `values` `[n_mels][frames]` (all exactly representable in f16).
    pub(crate) fn bank_json(values: &[f32], frames: usize) -> String {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| f32_to_f16_exact(v).to_le_bytes())
            .collect();
        format!(r#"{{"frames":{frames},"f16":"{}"}}"#, encode_base64(&bytes))
    }

    /// f16 bits of a value that is exactly a normal f16 (tests only use such values).
    fn f32_to_f16_exact(v: f32) -> u16 {
        if v == 0.0 {
            return 0;
        }
        let b = v.to_bits();
        let sign = ((b >> 31) as u16) << 15;
        let exp = ((b >> 23) & 0xff) as i32 - 112;
        assert!(
            (1..31).contains(&exp) && b & 0x1fff == 0,
            "{v} is not an exact f16"
        );
        sign | (exp as u16) << 10 | ((b >> 13) & 0x3ff) as u16
    }

    #[test]
    fn base64_round_trips_every_padding() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(decode_base64(&encode_base64(&bytes)).unwrap(), bytes);
        }
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert!(decode_base64("aGk").unwrap_err().contains("multiple of 4"));
        assert!(decode_base64("a=Gk").unwrap_err().contains("padding"));
        assert!(decode_base64("aG*k").unwrap_err().contains("not base64"));
    }

    #[test]
    fn half_precision_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn decodes_and_refuses() {
        let values: Vec<f32> = (0..2 * 5).map(|i| i as f32 * 0.25 - 1.0).collect();
        let bank = SeedBank::from_json(&bank_json(&values, 5), 2).unwrap();
        assert_eq!(bank.frames, 5);
        assert_eq!(bank.values, values);
        assert!(SeedBank::from_json(&bank_json(&values, 5), 3)
            .unwrap_err()
            .contains("expected 30"));
        assert!(SeedBank::from_json(r#"{"f16":""}"#, 2)
            .unwrap_err()
            .contains("frames"));
        assert!(SeedBank::from_json(r#"{"frames":1}"#, 2)
            .unwrap_err()
            .contains("f16"));
        // 0x7c00: +inf.
        let inf = format!(r#"{{"frames":1,"f16":"{}"}}"#, encode_base64(&[0, 0x7c]));
        assert!(SeedBank::from_json(&inf, 1)
            .unwrap_err()
            .contains("not finite"));
    }

    #[test]
    fn passage_loops_into_its_start() {
        // One band, frames 0..40 hold their own index.
        let bank = SeedBank {
            frames: 40,
            values: (0..40).map(|i| i as f32).collect(),
        };
        let mut out = vec![0.0; 20];
        bank.passage_into(3, 1, &mut out);
        // Past the crossfade: the bank itself.
        assert_eq!(
            &out[8..],
            &(11..23).map(|i| i as f32).collect::<Vec<_>>()[..]
        );
        // First frame: mostly the frame after the end (23 + 0), fading to the start.
        assert_eq!(out[0], (0.5 / 8.0) * 3.0 + (7.5 / 8.0) * 23.0);
        assert_eq!(out[7], (7.5 / 8.0) * 10.0 + (0.5 / 8.0) * 30.0);
        assert_eq!(start_span(40, 20), 13);
        assert_eq!(start_span(10, 20), 1);
    }
}
