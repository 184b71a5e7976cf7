//! The plugin's parameters. IDs are stable forever: hosts store automation and
//! presets by them, so a rename changes only the display name, never the ID.

use nice_plug::prelude::*;
use parking_lot::RwLock;
use std::sync::Arc;

pub use crate::grow::{DEFAULT_GROWTH, MAX_GROWTH};
pub use crate::vocoder::VocoderChoice;

/// How a voice treats the end of the grown sound.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopMode {
    /// Play the grown sound once, then end the voice.
    #[id = "one-shot"]
    #[name = "One-shot"]
    OneShot,
    /// Grown sounds are circular in time, so they loop without a seam.
    #[id = "loop"]
    #[name = "Loop"]
    Loop,
}

#[derive(Params)]
pub struct GrownParams {
    /// Chosen NCA model file; `None` plays the embedded default. Persisted so that
    /// reopening a project grows the same sound.
    #[persist = "model-path"]
    pub model_path: RwLock<Option<String>>,
    /// Chosen BigVGAN vocoder file, if any; persisted for the same reason.
    #[persist = "vocoder-path"]
    pub vocoder_path: RwLock<Option<String>>,
    /// Editor window size in logical pixels, so the editor reopens as the user left it.
    #[persist = "editor-size"]
    pub editor_size: RwLock<(u32, u32)>,
    /// What `state::repair_untrusted` had to change in the last restored state; set by
    /// `filter_state` (which has no instance), shown by the instance at its next
    /// activation, then cleared.
    #[persist = "restore-notice"]
    pub restore_notice: RwLock<Option<String>>,

    /// How the sound grows (the engine thread reads these through
    /// `EngineControls`).
    #[nested(group = "Growth")]
    pub grow: GrowthParams,
    /// How each note plays the grown sound (the audio thread's voices).
    #[nested(group = "Voice")]
    pub voice: VoiceParams,
    /// What reaches the output: crossfades, level, looping and the vocoder.
    #[nested(group = "Output")]
    pub output: OutputParams,
}

/// The growth group: what the NCA grows and how it evolves. IDs are the flat
/// ones hosts stored before the groups existed (no `id_prefix`).
#[derive(Params)]
pub struct GrowthParams {
    /// NCA steps grown from the seed state: the main "shape" control.
    #[id = "growth"]
    pub growth: IntParam,
    /// Seed of the initial state and the update masks; each seed grows a different
    /// but related sound.
    #[id = "seed"]
    pub seed: IntParam,
    /// Steps per second of further evolution once Growth is reached; 0 freezes the sound.
    #[id = "drift"]
    pub drift: FloatParam,
    /// Probability that a cell updates in a step (the models are trained around 0.5).
    #[id = "fire-rate"]
    pub fire_rate: FloatParam,
    /// Noise injected into the hidden channels each step, so drift can wander further.
    #[id = "mutation"]
    pub mutation: FloatParam,
    /// Fraction of the grid erased (then regrown) when this changes.
    #[id = "damage"]
    pub damage: FloatParam,
    /// Seconds of grown sound (the NCA grid's width in frames follows from it).
    #[id = "length"]
    pub length: FloatParam,
}

/// The voice group: envelope, pitch and polyphony of the notes.
#[derive(Params)]
pub struct VoiceParams {
    /// The MIDI note at which the grown sound plays at its original pitch.
    #[id = "root"]
    pub root_note: IntParam,
    /// Seconds from a note-on to full level.
    #[id = "attack"]
    pub attack: FloatParam,
    /// Seconds from full level down to the sustain level.
    #[id = "decay"]
    pub decay: FloatParam,
    /// Level held while the key is down, as a fraction of full level.
    #[id = "sustain"]
    pub sustain: FloatParam,
    /// Seconds a released note takes to fade out.
    #[id = "release"]
    pub release: FloatParam,
    /// Voices that may sound at once; further notes steal the oldest.
    #[id = "polyphony"]
    pub polyphony: IntParam,
    /// Semitones of pitch bend at full wheel deflection.
    #[id = "bend-range"]
    pub bend_range: FloatParam,
}

/// The output group: morph crossfade, gain, looping and the vocoder choice.
#[derive(Params)]
pub struct OutputParams {
    /// Crossfade time when a new generation of the sound replaces the old one.
    #[id = "morph"]
    pub morph: FloatParam,
    /// Output level, smoothed so automation does not click.
    #[id = "gain"]
    pub gain: FloatParam,
    /// Whether voices loop the grown sound (it is circular in time) or play it once.
    #[id = "loop"]
    pub loop_mode: EnumParam<LoopMode>,
    /// Which vocoder plays mel models; `stft-ms` models never use one.
    #[id = "vocoder"]
    pub vocoder: EnumParam<VocoderChoice>,
}

fn seconds(min: f32, max: f32, default: f32, name: &str) -> FloatParam {
    FloatParam::new(
        name,
        default,
        FloatRange::Skewed {
            min,
            max,
            factor: FloatRange::skew_factor(-2.0),
        },
    )
    .with_unit(" s")
    .with_value_to_string(formatters::v2s_f32_rounded(3))
}

impl Default for GrownParams {
    fn default() -> Self {
        Self {
            model_path: RwLock::new(None),
            vocoder_path: RwLock::new(None),
            editor_size: RwLock::new((960, 700)),
            restore_notice: RwLock::new(None),

            grow: GrowthParams::default(),
            voice: VoiceParams::default(),
            output: OutputParams::default(),
        }
    }
}

impl Default for GrowthParams {
    fn default() -> Self {
        Self {
            growth: IntParam::new(
                "Growth",
                DEFAULT_GROWTH as i32,
                IntRange::Linear {
                    min: 0,
                    max: MAX_GROWTH,
                },
            )
            .with_unit(" steps"),
            seed: IntParam::new("Seed", 1, IntRange::Linear { min: 0, max: 65535 }),
            drift: FloatParam::new(
                "Drift",
                0.0,
                FloatRange::Skewed {
                    min: 0.0,
                    max: 64.0,
                    factor: FloatRange::skew_factor(-1.5),
                },
            )
            .with_unit(" steps/s")
            .with_value_to_string(formatters::v2s_f32_rounded(2)),
            fire_rate: FloatParam::new(
                "Fire rate",
                0.5,
                FloatRange::Linear {
                    min: 0.05,
                    max: 1.0,
                },
            )
            .with_value_to_string(formatters::v2s_f32_rounded(2)),
            mutation: FloatParam::new("Mutation", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_value_to_string(formatters::v2s_f32_rounded(3)),
            damage: FloatParam::new("Damage", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            length: seconds(0.5, 8.0, 3.0, "Length"),
        }
    }
}

impl Default for VoiceParams {
    fn default() -> Self {
        Self {
            root_note: IntParam::new("Root note", 60, IntRange::Linear { min: 0, max: 127 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            attack: seconds(0.001, 5.0, 0.01, "Attack"),
            decay: seconds(0.001, 5.0, 0.3, "Decay"),
            sustain: FloatParam::new("Sustain", 0.8, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            release: seconds(0.001, 10.0, 0.3, "Release"),
            polyphony: IntParam::new(
                "Polyphony",
                8,
                IntRange::Linear {
                    min: 1,
                    max: crate::play::MAX_VOICES as i32,
                },
            )
            .with_unit(" voices"),
            bend_range: FloatParam::new(
                "Pitch-bend range",
                2.0,
                FloatRange::Linear {
                    min: 0.0,
                    max: 24.0,
                },
            )
            .with_step_size(1.0)
            .with_unit(" st"),
        }
    }
}

impl Default for OutputParams {
    fn default() -> Self {
        Self {
            morph: seconds(0.0, 4.0, 0.5, "Morph"),
            gain: FloatParam::new(
                "Gain",
                util::db_to_gain(-6.0),
                FloatRange::Skewed {
                    min: util::db_to_gain(-36.0),
                    max: util::db_to_gain(6.0),
                    factor: FloatRange::gain_skew_factor(-36.0, 6.0),
                },
            )
            .with_smoother(SmoothingStyle::Logarithmic(20.0))
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            loop_mode: EnumParam::new("Loop", LoopMode::Loop),
            vocoder: EnumParam::new("Vocoder", VocoderChoice::BuiltIn),
        }
    }
}

/// Reads a persisted path field; a poisoned or empty value reads as `None`.
pub fn read_path(field: &RwLock<Option<String>>) -> Option<std::path::PathBuf> {
    field.read().as_ref().map(std::path::PathBuf::from)
}

/// The file a persisted model field (`kind` `nca` or `vocoder`) means on this
/// machine: bundled models by name first, then the stored path
/// ([`crate::grow::library::resolve`]). Touches the file system: main thread only.
pub fn read_model(field: &RwLock<Option<String>>, kind: &str) -> Option<std::path::PathBuf> {
    let stored = field.read().clone()?;
    let dirs = crate::grow::library::model_dirs();
    Some(crate::grow::library::resolve(&stored, &dirs, kind))
}

/// Stable IDs, listed once so tests and hosts can check that none changes by accident.
pub const PARAM_IDS: &[&str] = &[
    "growth",
    "seed",
    "drift",
    "fire-rate",
    "mutation",
    "damage",
    "length",
    "root",
    "attack",
    "decay",
    "sustain",
    "release",
    "polyphony",
    "bend-range",
    "morph",
    "gain",
    "loop",
    "vocoder",
];

/// Shared handle type used by the plugin, the editor and the offline renderer.
pub type SharedParams = Arc<GrownParams>;
