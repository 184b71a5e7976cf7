//! What crosses between the plugin, the editor and the engine thread:
//! controls in (atomics), status out (atomics and editor-side mutexes) and
//! commands (a channel). None of it blocks the audio thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use atomic_float::AtomicF32;
use parking_lot::Mutex;

use crate::grow::DEFAULT_GROWTH;
use crate::vocoder::VocoderChoice;

/// Controls written by the plugin (parameters) and read by the engine thread.
pub struct EngineControls {
    /// Target growth in NCA steps.
    pub growth: AtomicU32,
    /// Seed of the sound.
    pub seed: AtomicU32,
    /// Steps per second to keep growing after the target is reached (0 = still).
    pub drift: AtomicF32,
    /// Probability that a cell updates in a step.
    pub fire_rate: AtomicF32,
    /// Standard deviation of the noise added to hidden channels each step.
    pub mutation: AtomicF32,
    /// Fraction of the sound to erase; each change erases a new region.
    pub damage: AtomicF32,
    /// Length of the grown sound in seconds.
    pub length_s: AtomicF32,
    /// Which vocoder plays mel models (BigVGAN only when a file is loaded).
    pub vocoder: AtomicVocoderChoice,
    /// The host's sample rate (set at activation), for Save WAV.
    pub host_rate: AtomicF32,
}

impl Default for EngineControls {
    fn default() -> Self {
        Self {
            growth: AtomicU32::new(DEFAULT_GROWTH),
            seed: AtomicU32::new(1),
            drift: AtomicF32::new(0.0),
            fire_rate: AtomicF32::new(0.5),
            mutation: AtomicF32::new(0.0),
            damage: AtomicF32::new(0.0),
            length_s: AtomicF32::new(3.0),
            vocoder: AtomicVocoderChoice::default(),
            host_rate: AtomicF32::new(48_000.0),
        }
    }
}

/// A [`VocoderChoice`] the audio thread can write and the engine read
/// without a lock.
#[derive(Default)]
pub struct AtomicVocoderChoice(AtomicU8);

impl AtomicVocoderChoice {
    /// Stores a choice.
    pub fn store(&self, choice: VocoderChoice) {
        self.0.store(choice as u8, Ordering::Relaxed);
    }

    /// The last stored choice.
    pub fn load(&self) -> VocoderChoice {
        match self.0.load(Ordering::Relaxed) {
            1 => VocoderChoice::BigVgan,
            _ => VocoderChoice::BuiltIn,
        }
    }
}

/// What the engine reports, for the editor and the plugin.
pub struct EngineStatus {
    /// NCA steps per second while growing (smoothed).
    pub steps_per_s: AtomicF32,
    /// Vocoder time divided by the duration of the audio it made (< 1 is faster than real time).
    pub vocoder_rtf: AtomicF32,
    /// Id of the last generation published to the audio thread.
    pub generation: AtomicU64,
    /// Current NCA step count.
    pub step: AtomicU32,
    /// Step count being grown towards (growth plus drift/regrowth), for progress display.
    pub target: AtomicU32,
    /// Which execution provider runs the model, and why.
    pub provider: Mutex<String>,
    /// The model in use (path or `embedded:strings`) and its training target.
    pub model: Mutex<String>,
    /// Metadata of the model in use, for the editor's axes (mel config) and
    /// for checking a vocoder against it before loading.
    pub model_info: Mutex<Option<crate::grow::model::ModelInfo>>,
    /// Outcome of the last Save WAV: the file written, or why not.
    pub saved: Mutex<Result<std::path::PathBuf, String>>,
    /// Last error, empty when everything works. The engine keeps playing the
    /// previous sound when something fails.
    pub error: Mutex<String>,
}

impl Default for EngineStatus {
    fn default() -> Self {
        Self {
            steps_per_s: AtomicF32::new(0.0),
            vocoder_rtf: AtomicF32::new(0.0),
            generation: AtomicU64::new(0),
            step: AtomicU32::new(0),
            target: AtomicU32::new(0),
            provider: Mutex::default(),
            model: Mutex::default(),
            model_info: Mutex::default(),
            saved: Mutex::new(Err(String::new())),
            error: Mutex::default(),
        }
    }
}

/// Requests to the engine thread.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineCommand {
    /// Replace the NCA model (kept if the new one fails).
    LoadModel(PathBuf),
    /// Load (Some) or unload (None) the BigVGAN vocoder file.
    LoadVocoder(Option<PathBuf>),
    /// Go back to the model embedded in the plugin (the editor's "Built-in").
    LoadBuiltInModel,
    /// Erase a region given as fractions 0..1 of the mel and time axes.
    Damage {
        /// Lower mel edge.
        mel0: f32,
        /// Upper mel edge.
        mel1: f32,
        /// Start time (wraps when greater than `t1`).
        t0: f32,
        /// End time.
        t1: f32,
    },
    /// Write the sound playing now to `path` as a WAV at the host's rate: one
    /// seamless loop when `looping`, else the one-shot with its end faded.
    SaveWav { path: PathBuf, looping: bool },
}
