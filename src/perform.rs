//! What the performance does to the parameters before the engine and the voices
//! see them: the mod wheel and channel pressure moving their targets, the host's
//! tempo setting Drift and Length when they are synced, and the values a host's
//! polyphonic modulation gives one voice. Pure arithmetic on the parameters, so
//! the audio thread computes it every block without allocating.

use crate::params::{poly_mod, GrownParams, ModTarget, TempoSync};
use nice_plug::prelude::Param;

/// Tempo assumed while a synced parameter has no host tempo (a stand-alone
/// app, a stopped host that reports none): every DAW's default.
pub const FALLBACK_BPM: f64 = 120.0;

/// Controller and transport values the audio thread keeps between blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Performance {
    /// Mod wheel (CC 1), 0..1.
    pub wheel: f32,
    /// Channel pressure (the master channel's under MPE), 0..1.
    pub pressure: f32,
    /// Host tempo in quarter notes per minute, if it reports one.
    pub tempo: Option<f64>,
    /// Quarter notes per bar (4 in 4/4, 3 in 6/8).
    pub beats_per_bar: f64,
}

impl Default for Performance {
    fn default() -> Self {
        Self {
            wheel: 0.0,
            pressure: 0.0,
            tempo: None,
            beats_per_bar: 4.0,
        }
    }
}

impl Performance {
    /// Tempo in use: the host's when it is a sane number, else [`FALLBACK_BPM`].
    pub fn bpm(&self) -> f64 {
        match self.tempo {
            Some(t) if t.is_finite() && (1.0..=999.0).contains(&t) => t,
            _ => FALLBACK_BPM,
        }
    }

    /// Seconds of `sync`'s note value at the current tempo; `None` when Free.
    pub fn note_seconds(&self, sync: TempoSync) -> Option<f64> {
        let bar = if self.beats_per_bar.is_finite() && self.beats_per_bar > 0.0 {
            self.beats_per_bar
        } else {
            4.0
        };
        let beats = match sync {
            TempoSync::Free => return None,
            TempoSync::Sixteenth => 0.25,
            TempoSync::Eighth => 0.5,
            TempoSync::Quarter => 1.0,
            TempoSync::Half => 2.0,
            TempoSync::Bar => bar,
            TempoSync::TwoBars => 2.0 * bar,
            TempoSync::FourBars => 4.0 * bar,
        };
        Some(beats * 60.0 / self.bpm())
    }
}

/// What the engine and the voices play this block, after the performance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Performed {
    pub growth: i32,
    /// Steps per second.
    pub drift: f32,
    pub mutation: f32,
    pub damage: f32,
    /// Seconds of grown sound.
    pub length_s: f32,
    pub morph_s: f32,
    /// Seconds one loop lasts when Length follows the tempo, else 0.
    pub loop_s: f64,
}

/// `note_s` doubled or halved until it lies in `min..=max`, so a synced
/// Length is always a whole number of note values (or a whole fraction).
pub fn fit_length(note_s: f64, min: f64, max: f64) -> f64 {
    let mut s = note_s;
    for _ in 0..32 {
        if s < min {
            s *= 2.0;
        } else if s > max {
            s /= 2.0;
        } else {
            break;
        }
    }
    s.clamp(min, max)
}

/// The plain value `param` takes with `shift` added to its normalised value.
fn shifted<P: Param>(param: &P, shift: f32) -> P::Plain {
    param.preview_plain(param.modulated_normalized_value() + shift)
}

/// The growth and morph values after the wheel, pressure and tempo.
pub fn perform(p: &GrownParams, perf: &Performance) -> Performed {
    let e = &p.expression;
    let shift = |target: ModTarget| {
        let mut sum = 0.0;
        if e.wheel_target.value() == target {
            sum += e.wheel_depth.value() * perf.wheel;
        }
        if e.pressure_target.value() == target {
            sum += e.pressure_depth.value() * perf.pressure;
        }
        if sum.is_finite() {
            sum
        } else {
            0.0
        }
    };
    let g = &p.grow;
    let value_of = |param: &nice_plug::prelude::FloatParam, s: f32| {
        if s == 0.0 {
            param.value()
        } else {
            shifted(param, s)
        }
    };
    let growth = match shift(ModTarget::Growth) {
        0.0 => g.growth.value(),
        s => shifted(&g.growth, s),
    };
    let mut drift = value_of(&g.drift, shift(ModTarget::Drift));
    if let Some(note_s) = perf.note_seconds(g.drift_sync.value()) {
        // Synced Drift counts steps per note value.
        drift = (f64::from(drift) / note_s) as f32;
    }
    let (min_len, max_len) = (
        f64::from(g.length.preview_plain(0.0)),
        f64::from(g.length.preview_plain(1.0)),
    );
    let (length_s, loop_s) = match perf.note_seconds(g.length_sync.value()) {
        Some(note_s) => {
            let s = fit_length(note_s, min_len, max_len);
            (s as f32, s)
        }
        None => (g.length.value(), 0.0),
    };
    Performed {
        growth,
        drift,
        mutation: value_of(&g.mutation, shift(ModTarget::Mutation)),
        damage: value_of(&g.damage, shift(ModTarget::Damage)),
        length_s,
        morph_s: value_of(&p.output.morph, shift(ModTarget::Morph)),
        loop_s,
    }
}

/// The plain value a voice plays for polyphonic-modulation target `id` at
/// `normalized` (the parameter's value plus the voice's offset). Gain is a
/// ratio to the parameter's own gain, which the output applies to all voices.
pub fn poly_value(p: &GrownParams, id: u32, normalized: f32) -> f32 {
    let v = &p.voice;
    match id {
        poly_mod::ATTACK => v.attack.preview_plain(normalized),
        poly_mod::DECAY => v.decay.preview_plain(normalized),
        poly_mod::SUSTAIN => v.sustain.preview_plain(normalized),
        poly_mod::RELEASE => v.release.preview_plain(normalized),
        poly_mod::TUNE => v.tune.preview_plain(normalized),
        poly_mod::GAIN => {
            let gain = &p.output.gain;
            let base = gain.preview_plain(gain.unmodulated_normalized_value());
            gain.preview_plain(normalized) / base.max(1e-6)
        }
        _ => f32::NAN,
    }
}

/// The unmodulated normalised value of polyphonic-modulation target `id`
/// (what a host's offsets are relative to).
pub fn poly_base(p: &GrownParams, id: u32) -> f32 {
    let v = &p.voice;
    match id {
        poly_mod::ATTACK => v.attack.unmodulated_normalized_value(),
        poly_mod::DECAY => v.decay.unmodulated_normalized_value(),
        poly_mod::SUSTAIN => v.sustain.unmodulated_normalized_value(),
        poly_mod::RELEASE => v.release.unmodulated_normalized_value(),
        poly_mod::TUNE => v.tune.unmodulated_normalized_value(),
        poly_mod::GAIN => p.output.gain.unmodulated_normalized_value(),
        _ => f32::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_values_follow_the_tempo_and_the_bar() {
        let mut perf = Performance {
            tempo: Some(120.0),
            ..Performance::default()
        };
        assert_eq!(perf.note_seconds(TempoSync::Quarter), Some(0.5));
        assert_eq!(perf.note_seconds(TempoSync::Bar), Some(2.0));
        assert_eq!(perf.note_seconds(TempoSync::Free), None);
        perf.tempo = Some(90.0);
        perf.beats_per_bar = 3.0;
        assert_eq!(perf.note_seconds(TempoSync::TwoBars), Some(4.0));
        perf.tempo = Some(f64::NAN);
        assert_eq!(perf.bpm(), FALLBACK_BPM);
    }

    #[test]
    fn synced_length_is_a_whole_multiple_or_fraction_of_the_note() {
        assert_eq!(fit_length(0.125, 0.5, 8.0), 0.5);
        assert_eq!(fit_length(16.0, 0.5, 8.0), 8.0);
        assert_eq!(fit_length(2.4, 0.5, 8.0), 2.4);
        assert_eq!(fit_length(10.0, 0.5, 8.0), 5.0);
    }

    #[test]
    fn wheel_pressure_and_tempo_move_their_targets() {
        use nice_plug::prelude::*;
        let p = GrownParams::default();
        let rest = perform(&p, &Performance::default());
        assert_eq!(rest.growth, p.grow.growth.value());
        assert_eq!(rest.length_s, p.grow.length.value());
        assert_eq!(rest.loop_s, 0.0);

        let set = |param: &dyn Fn(&GrownParams) -> ParamPtr, normalized: f32| unsafe {
            param(&p)._internal_set_normalized_value(normalized)
        };
        // Mod wheel → Growth at full depth: a full wheel reaches the top.
        set(
            &|p| p.expression.wheel_target.as_ptr(),
            p.expression
                .wheel_target
                .preview_normalized(ModTarget::Growth),
        );
        let full = Performance {
            wheel: 1.0,
            ..Performance::default()
        };
        assert_eq!(perform(&p, &full).growth, crate::params::MAX_GROWTH);
        let half = Performance {
            wheel: 0.5,
            ..Performance::default()
        };
        let g = perform(&p, &half).growth;
        assert!(g > rest.growth && g < crate::params::MAX_GROWTH, "{g}");

        // Pressure → Morph with negative depth shortens the crossfade.
        set(
            &|p| p.expression.pressure_target.as_ptr(),
            p.expression
                .pressure_target
                .preview_normalized(ModTarget::Morph),
        );
        set(&|p| p.expression.pressure_depth.as_ptr(), 0.0);
        let pressed = Performance {
            pressure: 1.0,
            ..Performance::default()
        };
        assert!(perform(&p, &pressed).morph_s < rest.morph_s);

        // Length sync 1 bar at 100 BPM: 2.4 s, and the loop locked to it;
        // Drift sync 1/4: 1 step per quarter is 100/60 steps per second.
        set(
            &|p| p.grow.length_sync.as_ptr(),
            p.grow.length_sync.preview_normalized(TempoSync::Bar),
        );
        set(
            &|p| p.grow.drift_sync.as_ptr(),
            p.grow.drift_sync.preview_normalized(TempoSync::Quarter),
        );
        set(
            &|p| p.grow.drift.as_ptr(),
            p.grow.drift.preview_normalized(1.0),
        );
        let song = Performance {
            tempo: Some(100.0),
            ..Performance::default()
        };
        let out = perform(&p, &song);
        assert!(
            (out.length_s - 2.4).abs() < 1e-6 && out.loop_s == 2.4,
            "{out:?}"
        );
        assert!((out.drift - 100.0 / 60.0).abs() < 1e-3, "{}", out.drift);
    }

    #[test]
    fn poly_values_are_the_parameters_own_mapping() {
        let p = GrownParams::default();
        let tune = poly_value(&p, poly_mod::TUNE, 1.0);
        assert_eq!(tune, 24.0);
        let unity = poly_value(&p, poly_mod::GAIN, poly_base(&p, poly_mod::GAIN));
        assert!((unity - 1.0).abs() < 1e-6);
        assert!(poly_value(&p, 99, 0.5).is_nan());
    }
}
