//! Vocoders turn a natural-log mel spectrogram into audio.
//!
//! Two implementations share one trait so the engine can switch between them
//! at run time: the built-in [`Inverter`] (no model file needed, always
//! available) and the BigVGAN ONNX vocoder in [`bigvgan`].

pub mod bigvgan;
pub mod inverter;
pub mod voicing;

pub use bigvgan::BigVgan;
pub use inverter::Inverter;

use crate::dsp::mel::{MelConfig, Spectrogram};
use nice_plug::prelude::Enum;

/// Which vocoder turns the grown mel spectrogram into audio.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocoderChoice {
    /// The built-in spectrogram inverter: no GPU, no extra model.
    #[id = "built-in"]
    #[name = "Built-in"]
    BuiltIn,
    /// A BigVGAN ONNX model, when one is loaded; falls back to built-in otherwise.
    #[id = "bigvgan"]
    #[name = "BigVGAN"]
    BigVgan,
}

/// Why a vocoder could not produce audio; every variant is a recoverable value
/// so the engine can report it instead of panicking inside the plugin.
#[derive(Debug, Clone)]
pub enum VocoderError {
    /// The spectrogram (or model) was made with a different mel analysis.
    MelMismatch(String),
    /// The vocoder model failed to load or run.
    Model(String),
    /// The input contained NaN or infinity.
    NonFinite,
}

impl std::fmt::Display for VocoderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VocoderError::MelMismatch(m) => write!(f, "mel configuration mismatch: {m}"),
            VocoderError::Model(m) => write!(f, "vocoder model error: {m}"),
            VocoderError::NonFinite => write!(f, "spectrogram contains NaN or infinite values"),
        }
    }
}

impl std::error::Error for VocoderError {}

/// Mel → audio. Implementations run on the engine thread, never the audio thread.
pub trait Vocoder: Send {
    /// Short name for the status line ("built-in", "BigVGAN").
    fn name(&self) -> &'static str;
    /// The analysis the vocoder expects its input to come from.
    fn mel_config(&self) -> &MelConfig;
    /// Replaces `audio` with the synthesis of `mel`.
    /// `audio.len()` afterwards == `mel.frames * hop`, at `mel_config().sample_rate`.
    fn synthesize(&mut self, mel: &Spectrogram, audio: &mut Vec<f32>) -> Result<(), VocoderError>;
}

/// Shared input checks: shape against the config and finiteness.
pub fn check_input(cfg: &MelConfig, mel: &Spectrogram) -> Result<(), VocoderError> {
    if mel.n_mels != cfg.n_mels {
        return Err(VocoderError::MelMismatch(format!(
            "spectrogram has {} mel bands, vocoder expects {}",
            mel.n_mels, cfg.n_mels
        )));
    }
    if mel.data.len() != mel.n_mels * mel.frames {
        return Err(VocoderError::MelMismatch(format!(
            "spectrogram data holds {} values, expected {} × {}",
            mel.data.len(),
            mel.n_mels,
            mel.frames
        )));
    }
    if !mel.is_finite() {
        return Err(VocoderError::NonFinite);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_checks() {
        let cfg = MelConfig::bigvgan_22k();
        let mut s = Spectrogram::new(80, 4);
        assert!(check_input(&cfg, &s).is_ok());
        s.data[7] = f32::NAN;
        assert!(matches!(
            check_input(&cfg, &s),
            Err(VocoderError::NonFinite)
        ));
        let s = Spectrogram::new(100, 4);
        let e = check_input(&cfg, &s).unwrap_err();
        assert!(matches!(e, VocoderError::MelMismatch(_)));
        assert!(e.to_string().contains("100 mel bands"));
    }
}
