//! One playing note: its envelope (attack, exponential decay and release),
//! its playhead and how a host addresses it (CLAP voice id, channel, note).

/// Voices that can exist at once (the polyphony parameter's upper bound).
pub const MAX_VOICES: usize = 16;
/// Extra silent-bound slots where stolen or choked voices fade out, so taking a
/// voice away never cuts a waveform mid-cycle.
pub(crate) const GHOSTS: usize = 4;
/// Fade applied to stolen/choked voices and to the end of one-shot samples.
pub(crate) const FADE_OUT_S: f32 = 0.005;
/// Shortest envelope segment; a true zero would step the waveform (a click).
pub(crate) const MIN_SEGMENT_S: f32 = 0.001;
/// Shortest crossfade between generations, for the same reason.
pub(crate) const MIN_MORPH_S: f32 = 0.005;
/// Curvature of the exponential decay/release segments (e^-k at the segment end).
pub(crate) const CURVE_K: f32 = 5.0;
/// Voice-end events that can wait for the next `render` (note-ons steal outside render).
pub(crate) const MAX_PENDING_ENDS: usize = 64;

/// Per-note playback parameters, read from the plugin parameters each block.
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceSettings {
    /// Linear rise time from silence to full level.
    pub attack_s: f32,
    /// Exponential fall time from full level to `sustain`.
    pub decay_s: f32,
    /// Held level (0..1) while the key stays down.
    pub sustain: f32,
    /// Exponential fall time to silence after note-off; the voice ends exactly then.
    pub release_s: f32,
    /// MIDI note that plays the generation at its original pitch.
    pub root_note: f32,
    /// Pitch-bend range in semitones for a full ±1 bend.
    pub bend_range: f32,
    /// Linear output gain of all voices.
    pub gain: f32,
    /// Loop (if the generation is loopable) instead of playing once.
    pub looping: bool,
    /// Crossfade time when a new generation replaces the current one.
    pub morph_s: f32,
    /// Voices allowed to sound at once (1..=MAX_VOICES); more notes steal.
    pub polyphony: usize,
    /// Semitones added to every voice (the Tune parameter).
    pub tune: f32,
    /// Velocity → level shape, −1..1; 0 is linear (see [`shape_velocity`]).
    pub velocity_curve: f32,
    /// How much soft notes are darker, 0..1.
    pub velocity_tone: f32,
    /// How much a voice's own pressure sets its level, 0..1.
    pub voice_pressure: f32,
    /// Semitones of an MPE note's own bend at full deflection.
    pub mpe_bend_range: f32,
    /// MPE on: notes take their channel's last bend, pressure and timbre
    /// (a controller sends them before the note-on).
    pub mpe: bool,
    /// Seconds one loop must last when Length follows the tempo (0: the
    /// generation's own length). Looping voices play at the rate that makes
    /// the grown loop exactly this long, so it stays on the beat.
    pub loop_s: f64,
}

/// Per-voice values a host can modulate (CLAP polyphonic modulation); the
/// index is the parameter's `poly_mod` id.
pub const POLY_TARGETS: usize = 6;

/// One note's expression, from CLAP note expressions, polyphonic aftertouch or
/// an MPE member channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expression {
    /// Semitones added to the note (CLAP tuning).
    Tuning(f32),
    /// MPE per-note pitch bend, −1..1, times `mpe_bend_range`.
    Bend(f32),
    /// Linear gain (CLAP volume, 0..4).
    Volume(f32),
    /// Balance, −1 left .. 1 right.
    Pan(f32),
    /// Pressure 0..1 (with `voice_pressure`, the note's level).
    Pressure(f32),
    /// Timbre 0..1: 1 open, lower is darker (CLAP brightness, MPE CC 74).
    Brightness(f32),
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            attack_s: 0.01,
            decay_s: 0.2,
            sustain: 0.8,
            release_s: 0.3,
            root_note: 60.0,
            bend_range: 2.0,
            gain: 1.0,
            looping: true,
            morph_s: 0.5,
            polyphony: 8,
            tune: 0.0,
            velocity_curve: 0.0,
            velocity_tone: 0.0,
            voice_pressure: 0.0,
            mpe_bend_range: 48.0,
            mpe: false,
            loop_s: 0.0,
        }
    }
}

/// A voice finished (CLAP note-end / NIH-plug `VoiceTerminated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceEnd {
    /// Host voice id given at note-on, if any.
    pub voice_id: Option<i32>,
    /// MIDI channel of the note.
    pub channel: u8,
    /// MIDI note number.
    pub note: u8,
    /// Sample offset in the host block where the voice ended.
    pub timing: u32,
}

/// Envelope segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Slot free.
    Idle,
    /// Linear rise to 1.
    Attack,
    /// Exponential fall to sustain.
    Decay,
    /// Holding at sustain.
    Sustain,
    /// Exponential fall to 0; the voice frees itself at the end.
    Release,
}

/// One playing note. `Copy` so a stolen voice can move into a ghost slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Voice {
    /// Envelope segment; `Idle` means the slot is free.
    pub(crate) stage: Stage,
    /// Progress through the current segment, 0..1.
    pub(crate) progress: f32,
    /// Level when the segment began (release starts wherever the envelope was).
    pub(crate) start_level: f32,
    /// Current envelope level.
    pub(crate) level: f32,
    /// Release uses the short fade instead of `release_s` (stolen/choked voices).
    pub(crate) fast_release: bool,
    /// Host voice id for matching note-offs and reporting the end.
    pub(crate) voice_id: Option<i32>,
    /// MIDI channel for matching and reporting.
    pub(crate) channel: u8,
    /// MIDI note for pitch, matching and reporting.
    pub(crate) note: u8,
    /// Velocity as linear gain.
    pub(crate) velocity: f32,
    /// Start order; smaller is older (stealing picks the oldest).
    pub(crate) age: u64,
    /// Playhead in seconds of generation time, unwrapped so that generations of
    /// different lengths each wrap it on their own during a crossfade.
    pub(crate) pos_s: f64,
    /// The note's expression; see [`NoteExpression`].
    pub(crate) expr: NoteExpression,
    /// Host polyphonic modulation: normalised offsets and the plain values they
    /// give (`NaN`: not modulated, the parameter's value applies).
    pub(crate) poly_offset: [f32; POLY_TARGETS],
    pub(crate) poly_value: [f32; POLY_TARGETS],
    /// Level factor from volume, pressure and modulated gain, smoothed towards
    /// its target so expression never steps the waveform.
    pub(crate) expr_gain: f32,
    /// One-pole low-pass state (left, right) for the note's tone.
    pub(crate) lp: [f32; 2],
}

/// What a note's expression is now; neutral values leave the sound untouched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NoteExpression {
    /// Raw velocity 0..1 (the tone follows it).
    pub(crate) velocity: f32,
    pub(crate) tuning: f32,
    pub(crate) bend: f32,
    pub(crate) volume: f32,
    pub(crate) pan: f32,
    pub(crate) pressure: f32,
    pub(crate) brightness: f32,
}

impl NoteExpression {
    pub(crate) const NEUTRAL: NoteExpression = NoteExpression {
        velocity: 1.0,
        tuning: 0.0,
        bend: 0.0,
        volume: 1.0,
        pan: 0.0,
        pressure: 0.0,
        brightness: 1.0,
    };

    /// Applies one expression event; non-finite values are ignored.
    pub(crate) fn set(&mut self, e: Expression) {
        let ok = |x: f32| x.is_finite();
        match e {
            Expression::Tuning(x) if ok(x) => self.tuning = x.clamp(-128.0, 128.0),
            Expression::Bend(x) if ok(x) => self.bend = x.clamp(-1.0, 1.0),
            Expression::Volume(x) if ok(x) => self.volume = x.clamp(0.0, 4.0),
            Expression::Pan(x) if ok(x) => self.pan = x.clamp(-1.0, 1.0),
            Expression::Pressure(x) if ok(x) => self.pressure = x.clamp(0.0, 1.0),
            Expression::Brightness(x) if ok(x) => self.brightness = x.clamp(0.0, 1.0),
            _ => {}
        }
    }
}

/// Velocity → linear level: `curve` 0 is linear; +1 makes the response
/// v^0.25 (soft touch plays loud), −1 makes it v^4.
pub fn shape_velocity(velocity: f32, curve: f32) -> f32 {
    if curve == 0.0 || !curve.is_finite() {
        return velocity;
    }
    velocity.powf(4f32.powf(-curve.clamp(-1.0, 1.0)))
}

/// Low-pass cutoff for a tone 0..1: 1 is open (no filter), 0 is 200 Hz,
/// exponential in between so equal steps sound equal.
pub(crate) fn tone_cutoff_hz(tone: f32) -> Option<f32> {
    (tone < 1.0).then(|| 200.0 * 100f32.powf(tone.clamp(0.0, 1.0)))
}

impl Voice {
    pub(crate) const IDLE: Voice = Voice {
        stage: Stage::Idle,
        progress: 0.0,
        start_level: 0.0,
        level: 0.0,
        fast_release: false,
        voice_id: None,
        channel: 0,
        note: 0,
        velocity: 0.0,
        age: 0,
        pos_s: 0.0,
        expr: NoteExpression::NEUTRAL,
        poly_offset: [0.0; POLY_TARGETS],
        poly_value: [f32::NAN; POLY_TARGETS],
        expr_gain: 1.0,
        lp: [0.0; 2],
    };

    pub(crate) fn active(&self) -> bool {
        self.stage != Stage::Idle
    }

    pub(crate) fn end_event(&self, timing: u32) -> VoiceEnd {
        VoiceEnd {
            voice_id: self.voice_id,
            channel: self.channel,
            note: self.note,
            timing,
        }
    }

    pub(crate) fn release(&mut self, fast: bool) {
        if self.active() {
            self.stage = Stage::Release;
            self.progress = 0.0;
            self.start_level = self.level;
            self.fast_release |= fast;
        }
    }

    /// The settings this voice plays with: the shared ones, with whatever the
    /// host modulates for this voice alone.
    pub(crate) fn settings(&self, s: &VoiceSettings) -> VoiceSettings {
        let mut own = s.clone();
        let v = &self.poly_value;
        let pick = |i: usize, base: f32| if v[i].is_nan() { base } else { v[i] };
        own.attack_s = pick(0, s.attack_s);
        own.decay_s = pick(1, s.decay_s);
        own.sustain = pick(2, s.sustain);
        own.release_s = pick(3, s.release_s);
        own.tune = pick(4, s.tune);
        own
    }

    /// Whether the host modulates anything of this voice alone.
    pub(crate) fn is_modulated(&self) -> bool {
        self.poly_value.iter().any(|v| !v.is_nan())
    }

    /// Level factor the note's expression asks for now (smoothed in `render`):
    /// volume, pressure (by `voice_pressure`) and a modulated gain ratio.
    pub(crate) fn expr_gain_target(&self, s: &VoiceSettings) -> f32 {
        let d = s.voice_pressure.clamp(0.0, 1.0);
        let pressure = 1.0 - d + d * self.expr.pressure;
        let gain = self.poly_value[5];
        let gain = if gain.is_nan() { 1.0 } else { gain };
        self.expr.volume * pressure * gain
    }

    /// The note's tone 0..1 (1 open): velocity (by `velocity_tone`) times brightness.
    pub(crate) fn tone(&self, s: &VoiceSettings) -> f32 {
        let d = s.velocity_tone.clamp(0.0, 1.0);
        (1.0 - d * (1.0 - self.expr.velocity)) * self.expr.brightness
    }

    /// Whether an expression addressed to (voice id, channel, key) is for this
    /// voice: by id when `by_id`, else by channel and key, `None` matching any.
    pub(crate) fn addressed(
        &self,
        voice_id: Option<i32>,
        channel: Option<u8>,
        note: Option<u8>,
        by_id: bool,
    ) -> bool {
        if by_id {
            return self.voice_id == voice_id;
        }
        channel.is_none_or(|c| c == self.channel) && note.is_none_or(|n| n == self.note)
    }

    pub(crate) fn matches(
        &self,
        note: u8,
        channel: u8,
        voice_id: Option<i32>,
        by_id: bool,
    ) -> bool {
        if by_id {
            self.voice_id == voice_id
        } else {
            self.channel == channel && self.note == note
        }
    }

    /// Advances the envelope by one sample; returns the level, or `None` when the
    /// release has finished.
    #[inline]
    pub(crate) fn envelope(&mut self, s: &VoiceSettings, inv_sr: f32) -> Option<f32> {
        match self.stage {
            Stage::Idle => return None,
            Stage::Attack => {
                self.progress += inv_sr / s.attack_s.max(MIN_SEGMENT_S);
                if self.progress >= 1.0 {
                    self.stage = Stage::Decay;
                    self.progress = 0.0;
                    self.start_level = 1.0;
                    self.level = 1.0;
                } else {
                    self.level = self.start_level + (1.0 - self.start_level) * self.progress;
                }
            }
            Stage::Decay => {
                let sustain = s.sustain.clamp(0.0, 1.0);
                self.progress += inv_sr / s.decay_s.max(MIN_SEGMENT_S);
                if self.progress >= 1.0 {
                    self.stage = Stage::Sustain;
                    self.level = sustain;
                } else {
                    self.level = sustain + (self.start_level - sustain) * curve(self.progress);
                }
            }
            Stage::Sustain => {
                // Follow sustain automation smoothly (~5 ms) instead of stepping.
                let target = s.sustain.clamp(0.0, 1.0);
                self.level += (target - self.level) * (inv_sr / FADE_OUT_S).min(1.0);
            }
            Stage::Release => {
                let time = if self.fast_release {
                    FADE_OUT_S
                } else {
                    s.release_s.max(MIN_SEGMENT_S)
                };
                self.progress += inv_sr / time;
                if self.progress >= 1.0 {
                    // Identity fields stay so the caller can report the end.
                    self.stage = Stage::Idle;
                    self.level = 0.0;
                    return None;
                }
                self.level = self.start_level * curve(self.progress);
            }
        }
        Some(self.level)
    }
}

/// Exponential segment shape from 1 (x = 0) to exactly 0 (x = 1).
#[inline]
pub(crate) fn curve(x: f32) -> f32 {
    // e^-5, the curve's raw end value that the normalisation maps to 0.
    pub(crate) const END: f32 = 0.006_737_947;
    (((-CURVE_K * x).exp() - END) / (1.0 - END)).max(0.0)
}
