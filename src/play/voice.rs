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
