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

/// A note value that Drift or Length follows at the host's tempo, or `Free`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempoSync {
    /// Not synced: Drift in steps per second, Length in seconds.
    #[id = "free"]
    #[name = "Free"]
    Free,
    #[id = "1/16"]
    #[name = "1/16"]
    Sixteenth,
    #[id = "1/8"]
    #[name = "1/8"]
    Eighth,
    #[id = "1/4"]
    #[name = "1/4"]
    Quarter,
    #[id = "1/2"]
    #[name = "1/2"]
    Half,
    #[id = "1-bar"]
    #[name = "1 bar"]
    Bar,
    #[id = "2-bars"]
    #[name = "2 bars"]
    TwoBars,
    #[id = "4-bars"]
    #[name = "4 bars"]
    FourBars,
}

/// What a global controller (mod wheel, channel pressure) moves.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModTarget {
    #[id = "off"]
    #[name = "Off"]
    Off,
    #[id = "growth"]
    #[name = "Growth"]
    Growth,
    #[id = "drift"]
    #[name = "Drift"]
    Drift,
    #[id = "mutation"]
    #[name = "Mutation"]
    Mutation,
    #[id = "damage"]
    #[name = "Damage"]
    Damage,
    #[id = "morph"]
    #[name = "Morph"]
    Morph,
}

/// CLAP polyphonic modulation ids: which per-voice value a host modulates.
pub mod poly_mod {
    pub const ATTACK: u32 = 0;
    pub const DECAY: u32 = 1;
    pub const SUSTAIN: u32 = 2;
    pub const RELEASE: u32 = 3;
    pub const TUNE: u32 = 4;
    pub const GAIN: u32 = 5;
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
    /// Name of the preset last applied or saved (`None` once edited away from
    /// nothing); persisted so the browser shows it when the project reopens.
    #[persist = "preset-name"]
    pub preset_name: RwLock<Option<String>>,

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
    /// How the player's hands shape the sound: velocity, wheel, pressure, MPE.
    #[nested(group = "Expression")]
    pub expression: ExpressionParams,
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
    /// When not Free, Drift counts steps per this note value at the host's tempo.
    #[id = "drift-sync"]
    pub drift_sync: EnumParam<TempoSync>,
    /// When not Free, Length is this note value at the host's tempo (doubled or
    /// halved into Length's range), and looping voices lock their loop to it.
    #[id = "length-sync"]
    pub length_sync: EnumParam<TempoSync>,
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
    /// Semitones added to every voice; hosts may modulate it per voice.
    #[id = "tune"]
    pub tune: FloatParam,
}

/// The expression group: what velocity, the mod wheel, pressure and MPE do.
#[derive(Params)]
pub struct ExpressionParams {
    /// Shape of velocity → level: 0 linear, above 0 soft touch plays louder,
    /// below 0 a hard touch is needed.
    #[id = "velocity-curve"]
    pub velocity_curve: FloatParam,
    /// How much softer notes are also darker (a per-voice low-pass); 0 leaves
    /// the timbre alone.
    #[id = "velocity-tone"]
    pub velocity_tone: FloatParam,
    /// What the mod wheel (CC 1) moves.
    #[id = "wheel-target"]
    pub wheel_target: EnumParam<ModTarget>,
    /// How far a full wheel moves its target, as a share of the target's range.
    #[id = "wheel-depth"]
    pub wheel_depth: FloatParam,
    /// What channel pressure (aftertouch) moves.
    #[id = "pressure-target"]
    pub pressure_target: EnumParam<ModTarget>,
    /// How far full pressure moves its target, as a share of its range.
    #[id = "pressure-depth"]
    pub pressure_depth: FloatParam,
    /// How much a voice's own pressure (polyphonic aftertouch, CLAP pressure,
    /// MPE channel pressure) sets its level: 0 ignores it, 1 silent until pressed.
    #[id = "voice-pressure"]
    pub voice_pressure: FloatParam,
    /// MPE: channel 1 is the master, every other channel carries one note's
    /// pitch bend, pressure and timbre (CC 74).
    #[id = "mpe"]
    pub mpe: BoolParam,
    /// Semitones of an MPE note's own pitch bend at full deflection.
    #[id = "mpe-bend-range"]
    pub mpe_bend_range: FloatParam,
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
            expression: ExpressionParams::default(),
            preset_name: RwLock::new(None),
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
            drift_sync: EnumParam::new("Drift sync", TempoSync::Free),
            length_sync: EnumParam::new("Length sync", TempoSync::Free),
        }
    }
}

impl Default for VoiceParams {
    fn default() -> Self {
        Self {
            root_note: IntParam::new("Root note", 60, IntRange::Linear { min: 0, max: 127 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            attack: seconds(0.001, 5.0, 0.01, "Attack").with_poly_modulation_id(poly_mod::ATTACK),
            decay: seconds(0.001, 5.0, 0.3, "Decay").with_poly_modulation_id(poly_mod::DECAY),
            sustain: FloatParam::new("Sustain", 0.8, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage())
                .with_poly_modulation_id(poly_mod::SUSTAIN),
            release: seconds(0.001, 10.0, 0.3, "Release")
                .with_poly_modulation_id(poly_mod::RELEASE),
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
            tune: FloatParam::new(
                "Tune",
                0.0,
                FloatRange::Linear {
                    min: -24.0,
                    max: 24.0,
                },
            )
            .with_poly_modulation_id(poly_mod::TUNE)
            .with_unit(" st")
            .with_value_to_string(formatters::v2s_f32_rounded(2)),
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
            .with_poly_modulation_id(poly_mod::GAIN)
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            loop_mode: EnumParam::new("Loop", LoopMode::Loop),
            vocoder: EnumParam::new("Vocoder", VocoderChoice::BuiltIn),
        }
    }
}

impl Default for ExpressionParams {
    fn default() -> Self {
        let share = |name: &str, default: f32, min: f32| {
            FloatParam::new(name, default, FloatRange::Linear { min, max: 1.0 })
                .with_value_to_string(formatters::v2s_f32_rounded(2))
        };
        Self {
            velocity_curve: share("Velocity curve", 0.0, -1.0),
            velocity_tone: share("Velocity → tone", 0.0, 0.0),
            wheel_target: EnumParam::new("Mod wheel →", ModTarget::Off),
            wheel_depth: share("Mod wheel depth", 1.0, -1.0),
            pressure_target: EnumParam::new("Pressure →", ModTarget::Off),
            pressure_depth: share("Pressure depth", 1.0, -1.0),
            voice_pressure: share("Voice pressure → level", 0.0, 0.0),
            mpe: BoolParam::new("MPE", false),
            mpe_bend_range: FloatParam::new(
                "MPE bend range",
                48.0,
                FloatRange::Linear {
                    min: 1.0,
                    max: 96.0,
                },
            )
            .with_step_size(1.0)
            .with_unit(" st"),
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
    "drift-sync",
    "length-sync",
    "tune",
    "velocity-curve",
    "velocity-tone",
    "wheel-target",
    "wheel-depth",
    "pressure-target",
    "pressure-depth",
    "voice-pressure",
    "mpe",
    "mpe-bend-range",
];

/// Shared handle type used by the plugin, the editor and the offline renderer.
pub type SharedParams = Arc<GrownParams>;
