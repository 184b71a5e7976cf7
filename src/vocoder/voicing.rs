//! The one path from a grown state to a generation. An `stft-ms` state is
//! played by the exact inverse STFT of its four visible channels, in stereo;
//! a mel state goes through a [`Vocoder`], in mono. The engine thread, the
//! offline renderer, the soak test and the benchmarks all voice through here,
//! so what a test or a render hears is what the plugin plays.

use std::fmt;
use std::time::{Duration, Instant};

use super::{Vocoder, VocoderError};
use crate::dsp::mel::Spectrogram;
use crate::dsp::stft_ms::{Compression, StftMs, VISIBLE_CHANNELS};
use crate::grow::model::ModelInfo;
use crate::grow::nca::Nca;
use crate::grow::Grower;
use crate::play::queue::Generation;

/// Why a state could not be voiced; the engine shows it and keeps playing the
/// previous generation.
#[derive(Debug, Clone)]
pub enum VoicingError {
    /// The inverse STFT of an `stft-ms` state failed.
    InverseStft(String),
    /// The vocoder refused a mel state.
    Vocoder(VocoderError),
    /// A mel state arrived with no vocoder to play it.
    NoVocoder,
}

impl VoicingError {
    /// The cause alone, without the stage that failed (for callers that name it).
    pub fn cause(&self) -> String {
        match self {
            Self::InverseStft(e) => e.clone(),
            Self::Vocoder(e) => e.to_string(),
            Self::NoVocoder => "no vocoder is loaded".into(),
        }
    }
}

impl fmt::Display for VoicingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InverseStft(e) => write!(f, "inverse STFT failed: {e}"),
            Self::Vocoder(e) => write!(f, "vocoder failed: {e}"),
            Self::NoVocoder => write!(f, "vocoder failed: no vocoder is loaded"),
        }
    }
}

impl std::error::Error for VoicingError {}

/// What one synthesis made, for filling a generation and for the status line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Voiced {
    /// Sample rate of the audio.
    pub sample_rate: u32,
    /// Whether the audio has its own right channel (`stft-ms`) or is mono.
    pub stereo: bool,
    /// Samples per channel.
    pub len: usize,
    /// Wall time the synthesis took.
    pub took: Duration,
}

impl Voiced {
    /// Synthesis time over the duration of the audio it made (< 1 is faster
    /// than real time); `None` for empty audio.
    pub fn real_time_factor(&self) -> Option<f32> {
        real_time_factor(self.took, self.len, self.sample_rate)
    }
}

/// Synthesis time over audio duration; `None` for empty audio.
pub fn real_time_factor(took: Duration, samples: usize, sample_rate: u32) -> Option<f32> {
    let seconds = samples as f64 / f64::from(sample_rate.max(1));
    (seconds > 0.0).then(|| (took.as_secs_f64() / seconds) as f32)
}

/// Turns a model's grown states into audio; holds the buffers (reused between
/// calls, so voicing allocates only when a sound grows longer) and, for an
/// `stft-ms` model, the inverse STFT whose FFT plans are made once here.
pub struct Voicing {
    /// The inverse STFT of an `stft-ms` model; `None` for mel models.
    stft: Option<StftMs>,
    /// Left (or mono) channel of the last synthesis.
    left: Vec<f32>,
    /// Right channel of the last `stft-ms` synthesis.
    right: Vec<f32>,
    /// Linear gain of the model's `grown.level_db`, applied as generations are
    /// filled so the voices play the model at its recording's level; exactly 1
    /// for uncalibrated files, which then play bit for bit as before.
    gain: f32,
}

impl Voicing {
    /// The voicing of a model with this metadata.
    pub fn for_model(info: &ModelInfo) -> Self {
        let stft = info.stft.clone().map(|cfg| {
            let comp = Compression {
                scale: info.spec_scale,
                offset: info.spec_offset,
            };
            StftMs::new(cfg, comp)
        });
        Self {
            stft,
            left: Vec::new(),
            right: Vec::new(),
            gain: level_gain(info.level_db),
        }
    }

    /// True for `stft-ms` models, which never meet a vocoder.
    pub fn is_stft_ms(&self) -> bool {
        self.stft.is_some()
    }

    /// Synthesizes the grower's current state. `vocoder` plays mel states and
    /// is not used for `stft-ms` ones (`None` is fine there).
    pub fn synthesize(
        &mut self,
        grower: &mut Grower,
        vocoder: Option<&mut dyn Vocoder>,
    ) -> Result<Voiced, VoicingError> {
        if let Some(stft) = self.stft.as_mut() {
            let nca = grower.nca();
            let t0 = Instant::now();
            stft.synthesize(
                stft_ms_visible(nca),
                nca.frames(),
                &mut self.left,
                &mut self.right,
            )
            .map_err(VoicingError::InverseStft)?;
            return Ok(Voiced {
                sample_rate: stft.config().sample_rate,
                stereo: true,
                len: self.left.len(),
                took: t0.elapsed(),
            });
        }
        let vocoder = vocoder.ok_or(VoicingError::NoVocoder)?;
        self.synthesize_mel(grower.spectrogram(), vocoder)
    }

    /// Vocodes a mel spectrogram (already taken from a grown state) in mono.
    pub fn synthesize_mel(
        &mut self,
        spec: &Spectrogram,
        vocoder: &mut dyn Vocoder,
    ) -> Result<Voiced, VoicingError> {
        let t0 = Instant::now();
        vocoder
            .synthesize(spec, &mut self.left)
            .map_err(VoicingError::Vocoder)?;
        Ok(Voiced {
            sample_rate: vocoder.mel_config().sample_rate,
            stereo: false,
            len: self.left.len(),
            took: t0.elapsed(),
        })
    }

    /// Left (or mono) channel of the last synthesis.
    pub fn left(&self) -> &[f32] {
        &self.left
    }

    /// Right channel of the last synthesis (empty for mono).
    pub fn right(&self) -> &[f32] {
        &self.right
    }

    /// Copies the last synthesis into a generation buffer, as generation `id`.
    pub fn fill(&self, voiced: &Voiced, slot: &mut Generation, id: u64, looped: bool) {
        if voiced.stereo {
            slot.fill_stereo_from(&self.left, &self.right);
        } else {
            slot.fill_from(&self.left);
        }
        if self.gain != 1.0 {
            let n = slot.len;
            for v in &mut slot.samples[..n] {
                *v *= self.gain;
            }
            if slot.stereo {
                for v in &mut slot.right[..n] {
                    *v *= self.gain;
                }
            }
        }
        slot.sample_rate = voiced.sample_rate;
        slot.id = id;
        slot.looped = looped;
    }
}

/// Linear gain of a level in dB (0 dB is exactly 1).
pub fn level_gain(level_db: f32) -> f32 {
    if level_db == 0.0 {
        1.0
    } else {
        10f32.powf(level_db / 20.0)
    }
}

/// The four visible channels `[4][bins][frames]` of an `stft-ms` state (M re,
/// M im, S re, S im; empty when the state is too small to hold them).
pub fn stft_ms_visible(nca: &Nca) -> &[f32] {
    let info = nca.info();
    let plane = info.mel.n_mels * nca.frames();
    let from = info.spec_channel * plane;
    nca.state()
        .get(from..from + VISIBLE_CHANNELS * plane)
        .unwrap_or(&[])
}

/// The editor snapshot of an `stft-ms` model: its four visible channels
/// stacked as rows (`n_mels` = 4 · bins, raw state values, M re, M im, S re,
/// S im), which is what [`crate::dsp::stft_ms::stft_ms_picture`] draws (with
/// `bins = n_mels / 4`). There is no log-mel channel to show for such a model.
/// Allocates only when the size grows.
pub fn stft_ms_snapshot(nca: &Nca, out: &mut Spectrogram) {
    let frames = nca.frames();
    let visible = stft_ms_visible(nca);
    out.n_mels = VISIBLE_CHANNELS * nca.info().mel.n_mels;
    out.frames = frames;
    out.data.clear();
    out.data.extend_from_slice(visible);
    out.data.resize(out.n_mels * frames, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_factor_is_time_over_duration() {
        let rtf = real_time_factor(Duration::from_millis(250), 22050, 22050).unwrap();
        assert!((rtf - 0.25).abs() < 1e-6);
        assert_eq!(real_time_factor(Duration::from_secs(1), 0, 22050), None);
    }
}
