//! Polyphonic sample playback of grown generations.
//!
//! Modelled on NIH-plug's `poly_mod_synth` example (fixed voice array, CLAP
//! style voice-id/channel/note matching, oldest-voice stealing, voice-end
//! events), with a sampler core: every voice reads the *bank*, i.e. the current
//! generation crossfaded with the previous one while a new generation morphs
//! in, through a band-limited windowed-sinc interpolator.
//!
//! Real-time rules: everything is allocated in [`Voices::new`]; `receive`,
//! `note_on`, `note_off`, `choke`, `pitch_bend` and `render` only move `Box`
//! pointers and do arithmetic. Buffers the bank no longer needs go back through
//! the caller's recycle closure, never `drop`.

use crate::play::queue::Generation;
use crate::play::resample::{SincTable, MAX_STRETCH, SINC_RHO};
use crate::play::voice::{
    shape_velocity, tone_cutoff_hz, Expression, NoteExpression, Stage, Voice, VoiceEnd,
    VoiceSettings, FADE_OUT_S, GHOSTS, MAX_PENDING_ENDS, MAX_VOICES, MIN_MORPH_S, POLY_TARGETS,
};

/// Current and previous generation plus the crossfade between them.
struct Bank {
    /// The generation voices move towards (or play alone once the morph is done).
    pub(crate) cur: Option<Box<Generation>>,
    /// The generation fading out (`None`: fading in from silence); silent, kept
    /// only until recycled, once `morph` is 1.
    pub(crate) prev: Option<Box<Generation>>,
    /// A generation that arrived mid-crossfade; it starts when the current fade ends,
    /// so a fast engine can never force a cut. Newer arrivals replace it.
    pub(crate) pending: Option<Box<Generation>>,
    /// A buffer retired inside `render` (which has no recycle closure); handed back
    /// on the next `receive`/`release_unused`.
    pub(crate) retired: Option<Box<Generation>>,
    /// Crossfade progress 0..1 from `prev` to `cur`.
    pub(crate) morph: f32,
}

impl Bank {
    /// Makes `g` the current generation; the old current one fades out over the morph.
    pub(crate) fn promote(
        &mut self,
        g: Box<Generation>,
        recycle: &mut impl FnMut(Box<Generation>),
    ) {
        if let Some(old) = self.prev.take() {
            recycle(old);
        }
        self.prev = self.cur.take();
        self.cur = Some(g);
        self.morph = 0.0;
    }
}

/// The voice array and the generation bank; see the module docs.
pub struct Voices {
    /// Playing notes; `Idle` entries are free.
    voices: [Voice; MAX_VOICES],
    /// Stolen or choked voices finishing a short fade-out.
    ghosts: [Voice; GHOSTS],
    /// What the voices play.
    bank: Bank,
    /// Host sample rate.
    sample_rate: f32,
    /// Pitch bend in −1..1 (scaled by `bend_range` at render time).
    bend: f32,
    /// Next voice age stamp.
    next_age: u64,
    /// Band-limited interpolation kernel.
    sinc: SincTable,
    /// Voice ends produced outside `render` (stealing, choke), reported by the next `render`.
    pending_ends: [VoiceEnd; MAX_PENDING_ENDS],
    /// Number of valid entries in `pending_ends`.
    pending_len: usize,
    /// Each MIDI channel's last MPE bend, pressure and timbre, for notes that
    /// start after them.
    channels: [NoteExpression; 16],
}

impl Default for Voices {
    fn default() -> Self {
        Self::new()
    }
}

impl Voices {
    /// All memory the voices will ever need is allocated here.
    pub fn new() -> Self {
        Self {
            voices: [Voice::IDLE; MAX_VOICES],
            ghosts: [Voice::IDLE; GHOSTS],
            bank: Bank {
                cur: None,
                prev: None,
                pending: None,
                retired: None,
                morph: 1.0,
            },
            sample_rate: 44100.0,
            bend: 0.0,
            next_age: 0,
            sinc: SincTable::new(),
            pending_ends: [VoiceEnd {
                voice_id: None,
                channel: 0,
                note: 0,
                timing: 0,
            }; MAX_PENDING_ENDS],
            pending_len: 0,
            channels: [NoteExpression::NEUTRAL; 16],
        }
    }

    /// Host sample rate; non-finite or non-positive values are ignored.
    pub fn set_output_sample_rate(&mut self, sr: f32) {
        if sr.is_finite() && sr > 0.0 {
            self.sample_rate = sr;
        }
    }

    /// Silences every voice immediately (host reset); the bank is kept.
    pub fn reset(&mut self) {
        self.voices = [Voice::IDLE; MAX_VOICES];
        self.ghosts = [Voice::IDLE; GHOSTS];
        self.pending_len = 0;
        self.bend = 0.0;
        self.channels = [NoteExpression::NEUTRAL; 16];
    }

    /// Number of voices currently holding a note (ghosts excluded).
    pub fn active_count(&self) -> usize {
        self.voices.iter().filter(|v| v.active()).count()
    }

    /// Id of the generation voices are moving towards, if any.
    pub fn current_generation(&self) -> Option<u64> {
        self.bank.cur.as_ref().map(|g| g.id)
    }

    /// Accepts a new generation. Buffers no longer needed go to `recycle`.
    pub fn receive(&mut self, g: Box<Generation>, recycle: &mut impl FnMut(Box<Generation>)) {
        self.release_unused(recycle);
        if g.len == 0 || g.sample_rate == 0 || g.len > g.samples.len() {
            // Nothing playable; keep what we have.
            recycle(g);
            return;
        }
        let sounding = self.voices.iter().chain(&self.ghosts).any(|v| v.active());
        if !sounding {
            // Nobody hears a switch, so make it instant and free the old buffers.
            if let Some(old) = self.bank.pending.take() {
                recycle(old);
            }
            if let Some(old) = self.bank.prev.take() {
                recycle(old);
            }
            if let Some(old) = self.bank.cur.replace(g) {
                recycle(old);
            }
            self.bank.morph = 1.0;
        } else if self.bank.morph < 1.0 {
            if let Some(old) = self.bank.pending.replace(g) {
                recycle(old);
            }
        } else {
            self.bank.promote(g, recycle);
        }
    }

    /// Hands back buffers that no longer contribute to the sound (a finished
    /// crossfade's old generation). `receive` does this too; calling it once per
    /// block returns buffers to the engine sooner.
    pub fn release_unused(&mut self, recycle: &mut impl FnMut(Box<Generation>)) {
        if let Some(old) = self.bank.retired.take() {
            recycle(old);
        }
        if self.bank.morph >= 1.0 {
            if let Some(old) = self.bank.prev.take() {
                recycle(old);
            }
        }
    }

    fn queue_end(&mut self, end: VoiceEnd) {
        if self.pending_len < MAX_PENDING_ENDS {
            self.pending_ends[self.pending_len] = end;
            self.pending_len += 1;
        }
    }

    /// Moves voice `i` into a ghost slot to fade out quickly, frees its slot and
    /// returns its end event (timing 0, to be set by the caller).
    fn steal(&mut self, i: usize) -> Option<VoiceEnd> {
        let mut v = self.voices[i];
        self.voices[i] = Voice::IDLE;
        if !v.active() {
            return None;
        }
        let end = v.end_event(0);
        v.release(true);
        // A free ghost, else the quietest one (its abrupt end is the least audible).
        let slot = self
            .ghosts
            .iter()
            .position(|g| !g.active())
            .unwrap_or_else(|| {
                let mut best = 0;
                for (j, g) in self.ghosts.iter().enumerate() {
                    if g.level < self.ghosts[best].level {
                        best = j;
                    }
                }
                best
            });
        self.ghosts[slot] = v;
        Some(end)
    }

    /// The voice to steal: the oldest releasing one, else the oldest.
    fn victim(&self) -> Option<usize> {
        let oldest = |releasing: bool| {
            self.voices
                .iter()
                .enumerate()
                .filter(|(_, v)| v.active() && (!releasing || v.stage == Stage::Release))
                .min_by_key(|(_, v)| v.age)
                .map(|(i, _)| i)
        };
        oldest(true).or_else(|| oldest(false))
    }

    /// Starts a note. Steals when `polyphony` voices are already sounding.
    pub fn note_on(
        &mut self,
        s: &VoiceSettings,
        note: u8,
        velocity: f32,
        channel: u8,
        voice_id: Option<i32>,
    ) {
        let polyphony = s.polyphony.clamp(1, MAX_VOICES);
        while self.active_count() >= polyphony {
            match self.victim() {
                Some(i) => {
                    if let Some(end) = self.steal(i) {
                        self.queue_end(end);
                    }
                }
                None => break,
            }
        }
        let Some(slot) = self.voices.iter().position(|v| !v.active()) else {
            return;
        };
        let velocity = if velocity.is_finite() {
            velocity.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.voices[slot] = Voice {
            stage: Stage::Attack,
            progress: 0.0,
            start_level: 0.0,
            level: 0.0,
            fast_release: false,
            voice_id,
            channel,
            note,
            velocity: shape_velocity(velocity, s.velocity_curve),
            age: self.next_age,
            pos_s: 0.0,
            expr: NoteExpression {
                velocity,
                ..if s.mpe {
                    self.channels[usize::from(channel & 15)]
                } else {
                    NoteExpression::NEUTRAL
                }
            },
            // A new note starts at its expression's level (pressure 0), not a
            // fade from 1: the envelope already rises from silence.
            expr_gain: 1.0 - s.voice_pressure.clamp(0.0, 1.0),
            ..Voice::IDLE
        };
        self.next_age += 1;
    }

    /// Whether a note event addresses voices by host voice id: only when it
    /// carries one that a sounding voice has; otherwise by channel and note, so
    /// an id no voice knows still ends the note it names.
    fn addressed_by_id(&self, voice_id: Option<i32>) -> bool {
        voice_id.is_some()
            && self
                .voices
                .iter()
                .any(|v| v.active() && v.voice_id == voice_id)
    }

    /// Releases the matching held voices (by voice id when given and known,
    /// else by channel and note).
    pub fn note_off(&mut self, note: u8, channel: u8, voice_id: Option<i32>) {
        let by_id = self.addressed_by_id(voice_id);
        for v in self.voices.iter_mut() {
            if v.active() && v.stage != Stage::Release && v.matches(note, channel, voice_id, by_id)
            {
                v.release(false);
            }
        }
    }

    /// Ends the matching voices now (with a click-free 5 ms fade) and reports them.
    pub fn choke(&mut self, note: u8, channel: u8, voice_id: Option<i32>) {
        let by_id = self.addressed_by_id(voice_id);
        for i in 0..MAX_VOICES {
            let v = &self.voices[i];
            if v.active() && v.matches(note, channel, voice_id, by_id) {
                if let Some(end) = self.steal(i) {
                    self.queue_end(end);
                }
            }
        }
    }

    /// One note's expression, addressed like a note-off: by host voice id when
    /// a sounding voice has it, else by channel and key (`None`: any).
    pub fn expression(
        &mut self,
        voice_id: Option<i32>,
        channel: Option<u8>,
        note: Option<u8>,
        e: Expression,
    ) {
        let by_id = self.addressed_by_id(voice_id);
        for v in self.voices.iter_mut() {
            if v.active() && v.addressed(voice_id, channel, note, by_id) {
                v.expr.set(e);
            }
        }
    }

    /// An MPE member channel's bend, pressure or timbre: its sounding notes
    /// follow, and notes that start on it later begin there.
    pub fn channel_expression(&mut self, channel: u8, e: Expression) {
        self.channels[usize::from(channel & 15)].set(e);
        self.expression(None, Some(channel), None, e);
    }

    /// Host polyphonic modulation of target `target` for one voice: the
    /// normalised `offset` and the plain `value` it gives.
    pub fn poly_modulate(&mut self, voice_id: i32, target: usize, offset: f32, value: f32) {
        if target >= POLY_TARGETS || !value.is_finite() {
            return;
        }
        for v in self.voices.iter_mut() {
            if v.active() && v.voice_id == Some(voice_id) {
                v.poly_offset[target] = offset;
                v.poly_value[target] = value;
            }
        }
    }

    /// The parameter under `target` moved: every voice it modulates takes the
    /// value `value_at(offset)` of its own offset on top of the new one.
    pub fn poly_rebase(&mut self, target: usize, value_at: impl Fn(f32) -> f32) {
        if target >= POLY_TARGETS {
            return;
        }
        for v in self.voices.iter_mut() {
            if v.active() && !v.poly_value[target].is_nan() {
                let value = value_at(v.poly_offset[target]);
                if value.is_finite() {
                    v.poly_value[target] = value;
                }
            }
        }
    }

    /// Pitch bend for all voices, −1..1 (× `bend_range` semitones).
    pub fn pitch_bend(&mut self, normalized: f32) {
        if normalized.is_finite() {
            self.bend = normalized.clamp(-1.0, 1.0);
        }
    }

    /// Playhead of each held voice in seconds (wrapped to the current generation
    /// when looping), for the editor. Returns how many entries were written.
    pub fn active_playheads(&self, out: &mut [f32; MAX_VOICES]) -> usize {
        let dur = self
            .bank
            .cur
            .as_ref()
            .map(|g| g.len as f64 / g.sample_rate as f64)
            .unwrap_or(0.0);
        let mut n = 0;
        for v in self.voices.iter().filter(|v| v.active()) {
            out[n] = if dur > 0.0 {
                v.pos_s.rem_euclid(dur) as f32
            } else {
                0.0
            };
            n += 1;
        }
        n
    }

    /// Adds the voices into `out_l`/`out_r` (a sub-block starting at `block_offset`
    /// in the host buffer) and reports voices that ended through `ended`, in time
    /// order: hosts may reject a plugin's events that go back in time, and voices
    /// end in slot order, not in the order their releases finish.
    pub fn render(
        &mut self,
        s: &VoiceSettings,
        out_l: &mut [f32],
        out_r: &mut [f32],
        block_offset: u32,
        ended: &mut impl FnMut(VoiceEnd),
    ) {
        let mut ends = EndsInOrder::new();
        self.render_voices(s, out_l, out_r, block_offset, &mut |e| ends.push(e));
        ends.sort();
        for e in ends.as_slice() {
            ended(*e);
        }
    }

    /// [`Voices::render`] without the ordering: ends in the order they happen
    /// to be found. Runs an AVX2 build of the whole voice loop when the CPU
    /// has it, so the interpolator inlines into the per-sample loop instead of
    /// being called once per voice and sample; both builds perform the same
    /// IEEE operations in the same order (Rust never contracts to FMA), so the
    /// output is bit-identical whichever runs.
    fn render_voices(
        &mut self,
        s: &VoiceSettings,
        out_l: &mut [f32],
        out_r: &mut [f32],
        block_offset: u32,
        ended: &mut impl FnMut(VoiceEnd),
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.sinc.avx2 {
            // SAFETY: `avx2` is set only when the CPU reports AVX2 and FMA.
            return unsafe { self.render_voices_avx2(s, out_l, out_r, block_offset, ended) };
        }
        self.render_voices_impl::<false>(s, out_l, out_r, block_offset, ended);
    }

    /// [`render_voices`](Self::render_voices) compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn render_voices_avx2(
        &mut self,
        s: &VoiceSettings,
        out_l: &mut [f32],
        out_r: &mut [f32],
        block_offset: u32,
        ended: &mut impl FnMut(VoiceEnd),
    ) {
        self.render_voices_impl::<true>(s, out_l, out_r, block_offset, ended);
    }

    /// The body of [`render_voices`](Self::render_voices), inlined into each
    /// build; `WIDE` (8-wide dot products) only in the AVX2 one.
    #[inline(always)]
    fn render_voices_impl<const WIDE: bool>(
        &mut self,
        s: &VoiceSettings,
        out_l: &mut [f32],
        out_r: &mut [f32],
        block_offset: u32,
        ended: &mut impl FnMut(VoiceEnd),
    ) {
        for e in &self.pending_ends[..self.pending_len] {
            ended(VoiceEnd {
                timing: block_offset,
                ..*e
            });
        }
        self.pending_len = 0;
        // A lowered polyphony parameter takes voices away (oldest first, faded).
        let polyphony = s.polyphony.clamp(1, MAX_VOICES);
        while self.active_count() > polyphony {
            match self.victim() {
                Some(i) => {
                    if let Some(end) = self.steal(i) {
                        ended(VoiceEnd {
                            timing: block_offset,
                            ..end
                        });
                    }
                }
                None => break,
            }
        }

        let n = out_l.len().min(out_r.len());
        let sr = self.sample_rate;
        let inv_sr = 1.0 / sr;
        let morph_step = inv_sr / s.morph_s.max(MIN_MORPH_S);
        let looping = s.looping;
        let gain = if s.gain.is_finite() { s.gain } else { 0.0 };
        let bend = self.bend
            * if s.bend_range.is_finite() {
                s.bend_range
            } else {
                0.0
            };
        let root = if s.root_note.is_finite() {
            s.root_note
        } else {
            60.0
        };
        let bank = &self.bank;
        let sinc = &self.sinc;
        let morph0 = bank.morph;
        // Tempo-locked loops play at the rate that makes one loop `loop_s` long.
        // The engine grows them that long to within half a frame; a sound of
        // another length (grown before the tempo or sync changed) plays at its
        // own rate until its regrown successor arrives, never transposed.
        let loop_lock = match bank.cur.as_deref() {
            Some(g) if looping && g.looped && s.loop_s > 0.0 && s.loop_s.is_finite() => {
                let ratio = (g.len as f64 / g.sample_rate as f64) / s.loop_s;
                if (ratio - 1.0).abs() <= LOOP_LOCK_TOLERANCE {
                    ratio
                } else {
                    1.0
                }
            }
            _ => 1.0,
        };
        let expr_step = (inv_sr / FADE_OUT_S).min(1.0);
        // Per-layer constants: (samples, source rate, is current, loops).
        let layers = [
            bank.cur.as_deref().map(|g| (g, true)),
            bank.prev.as_deref().map(|g| (g, false)),
        ];
        let have_audio = bank.cur.is_some() || bank.prev.is_some();
        for (is_ghost, v) in self
            .voices
            .iter_mut()
            .map(|v| (false, v))
            .chain(self.ghosts.iter_mut().map(|v| (true, v)))
        {
            if !v.active() {
                continue;
            }
            // A voice the host modulates alone plays its own copy of the settings.
            let own;
            let vs = if v.is_modulated() {
                own = v.settings(s);
                &own
            } else {
                s
            };
            let mut semis = v.note as f32 - root + bend;
            if vs.tune != 0.0 || v.expr.tuning != 0.0 || v.expr.bend != 0.0 {
                semis += finite_or_zero(vs.tune)
                    + v.expr.tuning
                    + v.expr.bend * finite_or_zero(vs.mpe_bend_range);
            }
            let pitch = (semis / 12.0).exp2() as f64 * loop_lock;
            let dt = pitch / sr as f64;
            let amp = v.velocity * gain;
            let gain_target = v.expr_gain_target(vs);
            let pan = ((1.0 - v.expr.pan).min(1.0), (1.0 + v.expr.pan).min(1.0));
            let lowpass = tone_cutoff_hz(v.tone(vs))
                .map(|hz| 1.0 - (-2.0 * std::f32::consts::PI * hz * inv_sr).exp());
            // Outside a crossfade only the current generation is heard, so the
            // playhead can be folded into its length; this keeps the per-sample wrap
            // below cheap and f64 precision intact over hours.
            if let (true, Some(g)) = (morph0 >= 1.0, bank.cur.as_deref()) {
                if looping && g.looped {
                    v.pos_s = v.pos_s.rem_euclid(g.len as f64 / g.sample_rate as f64);
                }
            }
            // (source, right source of a stereo generation, source rate,
            // kernel scale, wraps, is current)
            let views = layers.map(|l| {
                l.map(|(g, is_cur)| {
                    let gsr = g.sample_rate as f64;
                    let rate = (pitch * gsr / sr as f64) as f32;
                    let scale = SINC_RHO / rate.clamp(1.0, MAX_STRETCH);
                    let right = (g.stereo && g.right.len() >= g.len).then(|| &g.right[..g.len]);
                    (
                        &g.samples[..g.len],
                        right,
                        gsr,
                        scale,
                        looping && g.looped,
                        is_cur,
                    )
                })
            });
            for i in 0..n {
                let Some(env) = v.envelope(vs, inv_sr) else {
                    if !is_ghost {
                        ended(VoiceEnd {
                            voice_id: v.voice_id,
                            channel: v.channel,
                            note: v.note,
                            timing: block_offset + i as u32,
                        });
                    }
                    break;
                };
                let morph = (morph0 + morph_step * i as f32).min(1.0);
                let mut sample = 0f32;
                let mut sample_r = 0f32;
                let mut any_left = false;
                for &(src, src_r, gsr, scale, wrap, is_cur) in views.iter().flatten() {
                    let w = if is_cur { morph } else { 1.0 - morph };
                    if w <= 0.0 {
                        continue;
                    }
                    let x = v.pos_s * gsr;
                    let len = src.len() as f64;
                    if wrap {
                        any_left = true;
                        let xw = if x < len {
                            x
                        } else if x < 2.0 * len {
                            x - len
                        } else {
                            x.rem_euclid(len)
                        };
                        let (l, r) = read_layer::<WIDE>(sinc, src, src_r, xw, scale, true);
                        sample += w * l;
                        sample_r += w * r;
                    } else if x < len {
                        any_left = true;
                        // Fade the last few ms so a one-shot never ends on a step.
                        let remaining = (len - x) / gsr;
                        let tail = ((remaining / FADE_OUT_S as f64) as f32).min(1.0);
                        let (l, r) = read_layer::<WIDE>(sinc, src, src_r, x, scale, false);
                        sample += w * tail * l;
                        sample_r += w * tail * r;
                    }
                }
                if !any_left && have_audio && morph >= 1.0 {
                    // One-shot reached the end of everything it was playing.
                    if !is_ghost {
                        ended(v.end_event(block_offset + i as u32));
                    }
                    *v = Voice::IDLE;
                    break;
                }
                // Neutral expression multiplies by exactly 1 and skips the filter,
                // so a plain note renders bit for bit as without it.
                v.expr_gain += (gain_target - v.expr_gain) * expr_step;
                match lowpass {
                    Some(a) => {
                        v.lp[0] += a * (sample - v.lp[0]);
                        v.lp[1] += a * (sample_r - v.lp[1]);
                        sample = v.lp[0];
                        sample_r = v.lp[1];
                    }
                    None => v.lp = [sample, sample_r],
                }
                out_l[i] += sample * env * amp * v.expr_gain * pan.0;
                out_r[i] += sample_r * env * amp * v.expr_gain * pan.1;
                v.pos_s += dt;
            }
        }

        // Advance the crossfade; finish it and start a waiting generation.
        let bank = &mut self.bank;
        bank.morph = (bank.morph + morph_step * n as f32).min(1.0);
        if bank.morph >= 1.0 && bank.pending.is_some() && bank.retired.is_none() {
            if let Some(next) = bank.pending.take() {
                let mut slot = None;
                bank.promote(next, &mut |old| slot = Some(old));
                bank.retired = slot;
            }
        }
    }
}

/// One layer's (left, right) sample at source position `x`: the polyphase
/// kernel at rates ≤ 1, the stretched kernel above. Mono generations play the
/// same sample on both channels. A function, not a closure, so it inlines into
/// the voice loop's AVX2 build (a closure is compiled on its own, for baseline
/// x86-64).
#[inline(always)]
fn read_layer<const WIDE: bool>(
    sinc: &SincTable,
    src: &[f32],
    src_r: Option<&[f32]>,
    x: f64,
    scale: f32,
    wrap: bool,
) -> (f32, f32) {
    if scale >= SINC_RHO {
        sinc.read_poly_pair_impl::<WIDE>(src, src_r, x, wrap)
    } else {
        let l = sinc.read(src, x, scale, wrap);
        match src_r {
            Some(r) => (l, sinc.read(r, x, scale, wrap)),
            None => (l, l),
        }
    }
}

/// Largest rate change a tempo-locked loop makes (2 %, a third of a
/// semitone): more than half a frame of the shortest Length (0.5 s).
const LOOP_LOCK_TOLERANCE: f64 = 0.02;

fn finite_or_zero(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// The most voice ends one render can report: every queued end, every voice
/// stolen by a lowered polyphony, and every voice and ghost ending.
const MAX_ENDS_PER_RENDER: usize = MAX_PENDING_ENDS + 2 * MAX_VOICES + GHOSTS;

/// A render's voice ends, gathered on the stack so they can go out in time
/// order without allocating.
struct EndsInOrder {
    ends: [VoiceEnd; MAX_ENDS_PER_RENDER],
    len: usize,
}

impl EndsInOrder {
    fn new() -> Self {
        Self {
            ends: [VoiceEnd {
                voice_id: None,
                channel: 0,
                note: 0,
                timing: 0,
            }; MAX_ENDS_PER_RENDER],
            len: 0,
        }
    }

    fn push(&mut self, e: VoiceEnd) {
        if self.len < MAX_ENDS_PER_RENDER {
            self.ends[self.len] = e;
            self.len += 1;
        }
    }

    /// Stable insertion sort by timing (a handful of items; no allocation).
    fn sort(&mut self) {
        let ends = &mut self.ends[..self.len];
        for i in 1..ends.len() {
            let mut j = i;
            while j > 0 && ends[j - 1].timing > ends[j].timing {
                ends.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    fn as_slice(&self) -> &[VoiceEnd] {
        &self.ends[..self.len]
    }
}

// `pub(crate)` so other modules' tests share its pitch measurement.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::play::limiter::SoftLimiter;
    use realfft::RealFftPlanner;

    const OUT_SR: f32 = 44100.0;

    fn sine_generation(
        freq: f32,
        sr: u32,
        len: usize,
        id: u64,
        amp: f32,
        phase: f32,
    ) -> Box<Generation> {
        let mut g = Box::new(Generation::with_capacity(len));
        for (n, s) in g.samples.iter_mut().enumerate() {
            *s = amp * (2.0 * std::f32::consts::PI * freq * n as f32 / sr as f32 + phase).sin();
        }
        g.len = len;
        g.sample_rate = sr;
        g.id = id;
        g.looped = true;
        g
    }

    fn settings() -> VoiceSettings {
        VoiceSettings {
            attack_s: 0.001,
            decay_s: 0.001,
            sustain: 1.0,
            release_s: 0.05,
            root_note: 60.0,
            bend_range: 2.0,
            gain: 1.0,
            looping: true,
            morph_s: 0.05,
            polyphony: 8,
            ..VoiceSettings::default()
        }
    }

    fn voices_with(g: Box<Generation>) -> (Voices, usize) {
        let mut v = Voices::new();
        v.set_output_sample_rate(OUT_SR);
        let mut back = 0;
        v.receive(g, &mut |_| back += 1);
        (v, back)
    }

    /// Renders `len` samples in 64-sample sub-blocks; returns (left, ends).
    fn render(v: &mut Voices, s: &VoiceSettings, len: usize) -> (Vec<f32>, Vec<VoiceEnd>) {
        let mut l = vec![0.0; len];
        let mut r = vec![0.0; len];
        let mut ends = Vec::new();
        let mut start = 0;
        while start < len {
            let end = (start + 64).min(len);
            let mut got = [None; 8];
            let mut k = 0;
            v.render(
                s,
                &mut l[start..end],
                &mut r[start..end],
                start as u32,
                &mut |e| {
                    got[k] = Some(e);
                    k += 1;
                },
            );
            ends.extend(got.iter().flatten());
            start = end;
        }
        assert_eq!(l, r, "voices are centred");
        (l, ends)
    }

    /// Peak frequency (Hann window, FFT, parabolic interpolation on log
    /// magnitudes) and the peak bin's magnitude.
    pub(crate) fn peak_hz(x: &[f32], sr: f32) -> (f32, f32) {
        let n = x.len().next_power_of_two() * 2;
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(n);
        let mut buf = fft.make_input_vec();
        for (i, &v) in x.iter().enumerate() {
            buf[i] =
                v * (0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / x.len() as f32).cos());
        }
        let mut spec = fft.make_output_vec();
        fft.process(&mut buf, &mut spec).unwrap();
        let mags: Vec<f32> = spec.iter().map(|c| c.norm()).collect();
        let k = (1..mags.len() - 1)
            .max_by(|&a, &b| mags[a].total_cmp(&mags[b]))
            .unwrap();
        let (l, c, r) = (mags[k - 1].ln(), mags[k].ln(), mags[k + 1].ln());
        let d = 0.5 * (l - r) / (l - 2.0 * c + r);
        ((k as f32 + d) * sr / n as f32, mags[k])
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn root_note_keeps_pitch_and_octave_doubles_it() {
        let s = settings();
        for (note, expect) in [
            (60u8, 441.0f32),
            (72, 882.0),
            (53, 441.0 * (-7f32 / 12.0).exp2()),
        ] {
            let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
            v.note_on(&s, note, 1.0, 0, None);
            let (out, _) = render(&mut v, &s, 22050);
            let (f, _) = peak_hz(&out[2048..], OUT_SR);
            assert!(
                (f - expect).abs() < 0.003 * expect,
                "note {note}: {f} Hz vs {expect}"
            );
            // Level is preserved through the resampler (sine amplitude 0.5 → RMS 0.354).
            assert!(
                (rms(&out[4096..]) - 0.3536).abs() < 0.01,
                "rms {}",
                rms(&out[4096..])
            );
        }
        // Pitch bend: +1 × 2 semitones.
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.pitch_bend(1.0);
        v.note_on(&s, 60, 1.0, 0, None);
        let (out, _) = render(&mut v, &s, 22050);
        let (f, _) = peak_hz(&out[2048..], OUT_SR);
        assert!((f - 441.0 * (2f32 / 12.0).exp2()).abs() < 2.0, "bent {f}");
    }

    #[test]
    fn high_notes_do_not_alias() {
        let s = VoiceSettings {
            root_note: 60.0,
            ..settings()
        };
        // 5 kHz at 22.05 kHz: 4410 samples hold exactly 1000 cycles, so it loops cleanly.
        let src = || sine_generation(5000.0, 22050, 4410, 1, 0.5, 0.0);
        // +12: 10 kHz is below the output Nyquist and must come through intact.
        let (mut v, _) = voices_with(src());
        v.note_on(&s, 72, 1.0, 0, None);
        let (out, _) = render(&mut v, &s, 16384);
        let (f, _) = peak_hz(&out[4096..], OUT_SR);
        assert!((f - 10000.0).abs() < 20.0, "+12 peak at {f}");
        assert!(rms(&out[4096..]) > 0.3);
        // +36: 40 kHz cannot be represented at 44.1 kHz; a naive resampler folds it
        // to 4.1 kHz at full level. Band-limited, almost nothing may remain.
        let (mut v, _) = voices_with(src());
        v.note_on(&s, 96, 1.0, 0, None);
        let (out, _) = render(&mut v, &s, 16384);
        let level = rms(&out[4096..]) / 0.3536;
        assert!(
            level < 1e-3,
            "aliased energy at {:.1} dB",
            20.0 * level.log10()
        );
    }

    #[test]
    fn release_reaches_silence_and_reports_the_end() {
        let s = settings();
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 3, Some(42));
        let (out, ends) = render(&mut v, &s, 4410);
        assert!(rms(&out[2000..]) > 0.3 && ends.is_empty());
        // Wrong channel or id does nothing.
        v.note_off(60, 4, None);
        v.note_off(60, 3, Some(7));
        assert_eq!(v.active_count(), 1);
        v.note_off(60, 3, Some(42));
        let release_len = (s.release_s * OUT_SR) as usize;
        let (out, ends) = render(&mut v, &s, release_len + 256);
        assert!(
            out[..64].iter().any(|x| x.abs() > 0.2),
            "release starts from full level"
        );
        // Smooth: no sample jumps more than a 441 Hz sine at 0.5 can move.
        assert!(out.windows(2).all(|w| (w[1] - w[0]).abs() < 0.04));
        assert!(out[release_len + 2..].iter().all(|&x| x == 0.0));
        assert_eq!(ends.len(), 1);
        assert_eq!(
            (ends[0].voice_id, ends[0].channel, ends[0].note),
            (Some(42), 3, 60)
        );
        assert!((ends[0].timing as i64 - release_len as i64).abs() <= 2);
        assert_eq!(v.active_count(), 0);
    }

    /// Voices whose releases finish in one render report their ends in time
    /// order, whatever their slots: the later-released low slot ends last.
    #[test]
    fn ends_in_one_render_go_out_in_time_order() {
        let s = settings();
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, Some(1));
        v.note_on(&s, 64, 1.0, 0, Some(2));
        render(&mut v, &s, 1000);
        let release_len = (s.release_s * OUT_SR) as usize;
        let mut l = vec![0.0; release_len + 512];
        let mut r = l.clone();
        // Voice 2 (the higher slot) released 20 samples before voice 1.
        v.note_off(64, 0, Some(2));
        v.render(&s, &mut l[..20], &mut r[..20], 0, &mut |_| {});
        v.note_off(60, 0, Some(1));
        let mut ends = Vec::new();
        v.render(&s, &mut l[20..], &mut r[20..], 20, &mut |e| ends.push(e));
        let order: Vec<_> = ends.iter().map(|e| (e.voice_id, e.timing)).collect();
        assert_eq!(order.len(), 2, "{order:?}");
        assert_eq!((order[0].0, order[1].0), (Some(2), Some(1)), "{order:?}");
        assert!(order[0].1 < order[1].1, "{order:?}");
    }

    #[test]
    fn voice_stealing_with_polyphony_two() {
        let s = VoiceSettings {
            polyphony: 2,
            ..settings()
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.2, 0.0));
        v.note_on(&s, 60, 1.0, 0, None);
        v.note_on(&s, 64, 1.0, 0, None);
        let _ = render(&mut v, &s, 256);
        v.note_on(&s, 67, 1.0, 0, None); // steals 60, the oldest
        let (_, ends) = render(&mut v, &s, 64);
        assert_eq!(ends.iter().map(|e| e.note).collect::<Vec<_>>(), vec![60]);
        assert_eq!(ends[0].timing, 0);
        assert_eq!(v.active_count(), 2);
        // A releasing voice is stolen before an older held one.
        v.note_off(67, 0, None);
        v.note_on(&s, 71, 1.0, 0, None);
        let (out, ends) = render(&mut v, &s, 4410);
        assert_eq!(ends.iter().map(|e| e.note).collect::<Vec<_>>(), vec![67]);
        // The stolen voice fades instead of cutting: steps stay small.
        assert!(out.windows(2).all(|w| (w[1] - w[0]).abs() < 0.1));
        // Choke ends the matching voice at once (reported on the next render).
        v.choke(64, 0, None);
        let (_, ends) = render(&mut v, &s, 64);
        assert_eq!(ends.iter().map(|e| e.note).collect::<Vec<_>>(), vec![64]);
        assert_eq!(v.active_count(), 1);
        // Lowering polyphony to 1 with two voices steals the oldest.
        v.note_on(&s, 72, 1.0, 0, None);
        let one = VoiceSettings { polyphony: 1, ..s };
        let (_, ends) = render(&mut v, &one, 64);
        assert_eq!(ends.iter().map(|e| e.note).collect::<Vec<_>>(), vec![71]);
        assert_eq!(v.active_count(), 1);
    }

    #[test]
    fn crossfade_to_a_new_generation_has_no_step() {
        let s = VoiceSettings {
            morph_s: 0.02,
            ..settings()
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, None);
        let (a, _) = render(&mut v, &s, 1000);
        // The new generation is the same tone inverted: a hard switch would jump by
        // up to 1.0; a crossfade passes smoothly through silence.
        let mut back = Vec::new();
        v.receive(
            sine_generation(441.0, 22050, 22050, 2, 0.5, std::f32::consts::PI),
            &mut |g| back.push(g),
        );
        assert!(back.is_empty(), "the old generation is still fading");
        // A third generation mid-fade waits; a fourth replaces it (third recycled).
        let inverted = |id| sine_generation(441.0, 22050, 22050, id, 0.5, std::f32::consts::PI);
        v.receive(inverted(3), &mut |g| back.push(g));
        v.receive(inverted(4), &mut |g| back.push(g));
        assert_eq!(back.iter().map(|g| g.id).collect::<Vec<_>>(), vec![3]);
        let (b, _) = render(&mut v, &s, 4000);
        let max_step = 2.0 * std::f32::consts::PI * 441.0 / OUT_SR * 0.5 * 1.15;
        let joined: Vec<f32> = a.iter().chain(&b).copied().collect();
        let worst = joined
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(worst < max_step, "step {worst} vs {max_step}");
        // Mid-fade the two tones cancel; afterwards the inverted tone plays at full level.
        let mid = (0.01 * OUT_SR) as usize;
        assert!(rms(&b[mid - 40..mid + 40]) < 0.05);
        assert!(rms(&b[1000..1800]) > 0.3);
        assert_eq!(v.current_generation(), Some(4));
        let (_, _) = render(&mut v, &s, 2000);
        // Finished fades hand their buffers back (1 and 2 by now).
        v.release_unused(&mut |g| back.push(g));
        let mut ids: Vec<u64> = back.iter().map(|g| g.id).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    #[test]
    fn one_shot_ends_and_reports() {
        let s = VoiceSettings {
            looping: false,
            ..settings()
        };
        // 0.1 s at 22.05 kHz = 4410 output samples at the root pitch.
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 2205, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 1, Some(9));
        let (out, ends) = render(&mut v, &s, 6000);
        assert_eq!(ends.len(), 1);
        assert_eq!(
            (ends[0].note, ends[0].channel, ends[0].voice_id),
            (60, 1, Some(9))
        );
        assert!(
            (ends[0].timing as i64 - 4410).abs() <= 2,
            "ended at {}",
            ends[0].timing
        );
        assert!(out[4412..].iter().all(|&x| x == 0.0));
        assert!(
            out.windows(2).all(|w| (w[1] - w[0]).abs() < 0.04),
            "one-shot end fades"
        );
        assert_eq!(v.active_count(), 0);
        // Looping the same generation keeps sounding.
        let s = settings();
        v.note_on(&s, 60, 1.0, 1, None);
        let (out, ends) = render(&mut v, &s, 9000);
        assert!(ends.is_empty() && rms(&out[8000..]) > 0.3);
        let mut heads = [0.0; MAX_VOICES];
        assert_eq!(v.active_playheads(&mut heads), 1);
        assert!((heads[0] - (9000.0 / OUT_SR) % 0.1).abs() < 1e-3);
    }

    #[test]
    fn stereo_generations_keep_their_channels_and_mono_is_duplicated() {
        let s = settings();
        let mut g = sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0);
        let right: Vec<f32> = g.samples.iter().map(|x| -0.5 * x).collect();
        let left = g.samples.clone();
        g.fill_stereo_from(&left, &right);
        let (mut v, _) = voices_with(g);
        v.note_on(&s, 60, 1.0, 0, None);
        let (mut l, mut r) = (vec![0.0f32; 4096], vec![0.0f32; 4096]);
        nice_assert_no_alloc::assert_no_alloc(|| {
            for (bl, br) in l.chunks_mut(64).zip(r.chunks_mut(64)) {
                v.render(&s, bl, br, 0, &mut |_| {});
            }
        });
        assert!(rms(&l[2048..]) > 0.3);
        for (a, b) in l[2048..].iter().zip(&r[2048..]) {
            assert!(
                (b + 0.5 * a).abs() < 1e-4,
                "right {b} is not -0.5 × left {a}"
            );
        }
        // A mono generation sounds the same on both sides.
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 2, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, None);
        let (mut l, mut r) = (vec![0.0f32; 1024], vec![0.0f32; 1024]);
        v.render(&s, &mut l, &mut r, 0, &mut |_| {});
        assert!(rms(&l) > 0.1);
        assert_eq!(l, r);
    }

    /// Level of the partial at `hz` (a single-bin DFT with a Hann window).
    fn level_at(x: &[f32], hz: f32) -> f32 {
        let n = x.len() as f32;
        let (mut re, mut im) = (0f64, 0f64);
        for (i, &v) in x.iter().enumerate() {
            let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n).cos();
            let ph = 2.0 * std::f64::consts::PI * f64::from(hz) * i as f64 / f64::from(OUT_SR);
            re += f64::from(v * w) * ph.cos();
            im += f64::from(v * w) * ph.sin();
        }
        ((re * re + im * im).sqrt() / f64::from(n) * 4.0) as f32
    }

    #[test]
    fn note_expression_tunes_only_the_note_it_addresses() {
        let s = settings();
        // CLAP tuning by voice id: +12 on voice 7 only.
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, Some(7));
        v.note_on(&s, 60, 1.0, 0, Some(8));
        v.expression(Some(7), Some(0), Some(60), Expression::Tuning(12.0));
        let (out, _) = render(&mut v, &s, 16384);
        let tail = &out[4096..];
        assert!(level_at(tail, 882.0) > 0.3, "{}", level_at(tail, 882.0));
        assert!(level_at(tail, 441.0) > 0.3, "voice 8 keeps its pitch");
        // MPE: a bend on channel 3 (range 48, a quarter up) moves that channel's note only.
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 2, None);
        v.note_on(&s, 60, 1.0, 3, None);
        v.expression(None, Some(3), None, Expression::Bend(0.25));
        let (out, _) = render(&mut v, &s, 16384);
        let tail = &out[4096..];
        assert!(level_at(tail, 882.0) > 0.3 && level_at(tail, 441.0) > 0.3);
        // MPE: a bend sent before the note-on (as controllers do) starts the note bent.
        let mpe = VoiceSettings {
            mpe: true,
            ..settings()
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.channel_expression(4, Expression::Bend(0.25));
        v.note_on(&mpe, 60, 1.0, 4, None);
        v.note_on(&s, 60, 1.0, 4, None);
        let (out, _) = render(&mut v, &mpe, 16384);
        let tail = &out[4096..];
        assert!(
            level_at(tail, 882.0) > 0.3 && level_at(tail, 441.0) > 0.3,
            "MPE off ignores it"
        );
        // An expression for a note nobody plays changes nothing.
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, Some(1));
        v.expression(Some(99), Some(5), Some(61), Expression::Tuning(7.0));
        let (out, _) = render(&mut v, &s, 8192);
        let (f, _) = peak_hz(&out[2048..], OUT_SR);
        assert!((f - 441.0).abs() < 2.0, "{f}");
    }

    #[test]
    fn volume_pressure_and_pan_change_level_without_a_step() {
        let s = VoiceSettings {
            voice_pressure: 1.0,
            ..settings()
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, Some(1));
        // Pressure 0 with full depth: the note waits silent for the player to press.
        let (quiet, _) = render(&mut v, &s, 4096);
        assert!(rms(&quiet[1024..]) < 1e-6, "{}", rms(&quiet[1024..]));
        v.expression(Some(1), None, None, Expression::Pressure(1.0));
        let (pressed, _) = render(&mut v, &s, 8192);
        assert!((rms(&pressed[2048..]) - 0.3536).abs() < 0.01);
        // The swell is smoothed: no sample jumps by more than a full-scale sine's slope allows.
        let slope = 2.0 * std::f32::consts::PI * 441.0 / OUT_SR * 0.5;
        let worst = pressed
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1.5 * slope, "step {worst} vs slope {slope}");
        // CLAP volume halves it.
        v.expression(Some(1), None, None, Expression::Volume(0.5));
        let (half, _) = render(&mut v, &s, 8192);
        assert!(
            (rms(&half[2048..]) - 0.1768).abs() < 0.01,
            "{}",
            rms(&half[2048..])
        );
        // Pan hard left: the right channel falls silent, the left keeps its level.
        v.expression(Some(1), None, None, Expression::Pan(-1.0));
        let (mut l, mut r) = (vec![0.0; 8192], vec![0.0; 8192]);
        for k in (0..8192).step_by(64) {
            v.render(&s, &mut l[k..k + 64], &mut r[k..k + 64], 0, &mut |_| {});
        }
        assert!(rms(&r[2048..]) < 1e-4 && rms(&l[2048..]) > 0.15);
    }

    #[test]
    fn velocity_curve_and_tone_shape_soft_notes() {
        assert_eq!(shape_velocity(0.5, 0.0), 0.5);
        assert!(shape_velocity(0.5, 1.0) > 0.8 && shape_velocity(0.5, -1.0) < 0.07);
        assert_eq!(shape_velocity(1.0, -1.0), 1.0);
        // A soft note with Velocity → tone is darker: a 5 kHz partial loses most
        // of its level, while a hard note keeps it.
        let s = VoiceSettings {
            velocity_tone: 1.0,
            ..settings()
        };
        let src = || sine_generation(5000.0, 22050, 4410, 1, 0.5, 0.0);
        let level = |velocity: f32| {
            let (mut v, _) = voices_with(src());
            v.note_on(&s, 60, velocity, 0, None);
            let (out, _) = render(&mut v, &s, 8192);
            rms(&out[2048..]) / velocity
        };
        let (soft, hard) = (level(0.2), level(1.0));
        assert!((hard - 0.3536).abs() < 0.01, "hard {hard}");
        assert!(soft < 0.3 * hard, "soft {soft} vs hard {hard}");
    }

    #[test]
    fn poly_modulation_retunes_one_voice_and_follows_the_parameter() {
        let s = settings();
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, Some(3));
        v.note_on(&s, 60, 1.0, 0, Some(4));
        v.poly_modulate(3, 4, 0.25, 12.0);
        let (out, _) = render(&mut v, &s, 16384);
        assert!(level_at(&out[4096..], 882.0) > 0.3 && level_at(&out[4096..], 441.0) > 0.3);
        // The parameter moves: the voice keeps its offset on top (here +7 st).
        v.poly_rebase(4, |offset| if offset == 0.25 { 7.0 } else { f32::NAN });
        let (out, _) = render(&mut v, &s, 16384);
        let fifth = 441.0 * (7f32 / 12.0).exp2();
        assert!(level_at(&out[4096..], fifth) > 0.3 && level_at(&out[4096..], 882.0) < 0.05);
    }

    #[test]
    fn a_tempo_locked_loop_lasts_exactly_loop_s() {
        // A 1 s generation locked to a 1.01 s loop plays 1 % slower, so its
        // 441 Hz sine comes out at 441 / 1.01.
        let s = VoiceSettings {
            loop_s: 1.01,
            ..settings()
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&s, 60, 1.0, 0, None);
        let (out, _) = render(&mut v, &s, 32768);
        let (f, _) = peak_hz(&out[4096..], OUT_SR);
        assert!((f - 441.0 / 1.01).abs() < 0.5, "{f}");
        // A generation of another length (grown before the tempo changed) is
        // not transposed to fit: it plays at its pitch until the regrown one comes.
        let far = VoiceSettings {
            loop_s: 1.5,
            ..settings()
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&far, 60, 1.0, 0, None);
        let (out, _) = render(&mut v, &far, 16384);
        let (f, _) = peak_hz(&out[2048..], OUT_SR);
        assert!((f - 441.0).abs() < 1.0, "{f}");
        // One-shot voices are not locked.
        let one_shot = VoiceSettings {
            looping: false,
            ..s
        };
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        v.note_on(&one_shot, 60, 1.0, 0, None);
        let (out, _) = render(&mut v, &one_shot, 16384);
        let (f, _) = peak_hz(&out[2048..], OUT_SR);
        assert!((f - 441.0).abs() < 1.0, "{f}");
    }

    #[test]
    fn render_note_on_and_receive_do_not_allocate() {
        let s = settings();
        let (mut v, _) = voices_with(sine_generation(441.0, 22050, 22050, 1, 0.5, 0.0));
        let mut spare = Some(sine_generation(441.0, 22050, 22050, 2, 0.5, 0.0));
        let mut l = vec![0.0f32; 256];
        let mut r = vec![0.0f32; 256];
        let mut back: [Option<Box<Generation>>; 4] = [None, None, None, None];
        let mut limiter = SoftLimiter::new();
        nice_assert_no_alloc::assert_no_alloc(|| {
            let mut ends = 0;
            for note in 0..20u8 {
                v.note_on(&s, 40 + note, 0.8, 0, Some(note as i32));
                v.render(&s, &mut l, &mut r, 0, &mut |_| ends += 1);
            }
            if let Some(g) = spare.take() {
                let mut k = 0;
                v.receive(g, &mut |old| {
                    back[k] = Some(old);
                    k += 1;
                });
            }
            v.note_off(45, 0, None);
            v.choke(50, 0, Some(10));
            v.pitch_bend(0.5);
            v.expression(Some(12), None, None, Expression::Tuning(3.0));
            v.expression(None, Some(0), None, Expression::Pressure(0.5));
            v.poly_modulate(13, 0, 0.1, 0.2);
            v.poly_rebase(0, |o| o + 0.1);
            let toned = VoiceSettings {
                velocity_tone: 0.5,
                loop_s: 1.5,
                ..s.clone()
            };
            v.render(&toned, &mut l, &mut r, 0, &mut |_| ends += 1);
            v.render(&s, &mut l, &mut r, 0, &mut |_| ends += 1);
            limiter.process(&mut l, &mut r);
            assert!(ends > 0);
        });
        // Keep boxes alive until here so their drop is outside the no-alloc region.
        drop(back);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_builds_agree_bit_for_bit() {
        let mut t = SincTable::new();
        if !t.avx2 {
            eprintln!("no AVX2 on this CPU: only the baseline build runs");
            return;
        }
        let l: Vec<f32> = (0..300).map(|n| (0.37 * n as f32).sin() * 0.8).collect();
        let r: Vec<f32> = (0..300).map(|n| (0.11 * n as f32).cos() * 0.5).collect();
        let positions = (0..997).map(|i| i as f64 * 0.3011 - 7.0);
        let mut fast = Vec::new();
        for x in positions.clone() {
            for wrap in [false, true] {
                let (a, b) = t.read_poly_pair(&l, Some(&r), x, wrap);
                fast.push((a.to_bits(), b.to_bits()));
            }
        }
        t.avx2 = false;
        let mut slow = Vec::new();
        for x in positions {
            for wrap in [false, true] {
                let (a, b) = t.read_poly_pair(&l, Some(&r), x, wrap);
                slow.push((a.to_bits(), b.to_bits()));
            }
        }
        assert_eq!(fast, slow);
        assert!(fast.iter().any(|&(a, b)| a != 0 && b != a));
    }

    /// The voices' AVX2 build plays bit for bit what the baseline build plays:
    /// notes below, at and far above the root (the stretched kernel), through
    /// a crossfade to a new generation and a release.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn voice_loop_builds_agree_bit_for_bit() {
        let s = VoiceSettings {
            morph_s: 0.01,
            ..settings()
        };
        let play = |avx2: bool| {
            let (mut v, _) = voices_with(sine_generation(441.0, 22050, 9000, 1, 0.5, 0.0));
            if !avx2 {
                v.sinc.avx2 = false;
            }
            for (note, vel) in [(48, 0.7), (60, 1.0), (67, 0.5), (96, 0.9)] {
                v.note_on(&s, note, vel, 0, None);
            }
            let (mut out, _) = render(&mut v, &s, 700);
            v.receive(
                sine_generation(330.0, 22050, 7000, 2, 0.4, 1.0),
                &mut |_| {},
            );
            out.extend(render(&mut v, &s, 900).0);
            v.note_off(60, 0, None);
            out.extend(render(&mut v, &s, 3000).0);
            out.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        if !Voices::new().sinc.avx2 {
            eprintln!("no AVX2 on this CPU: only the baseline build runs");
            return;
        }
        let (fast, slow) = (play(true), play(false));
        assert!(fast.iter().any(|&b| f32::from_bits(b).abs() > 0.1));
        assert_eq!(fast, slow);
    }

    #[test]
    fn polyphase_path_matches_the_direct_kernel() {
        let t = SincTable::new();
        let src: Vec<f32> = (0..200)
            .map(|n| ((n * 7919 % 101) as f32 / 50.0) - 1.0)
            .collect();
        for &x in &[0.0, 0.3, 5.999, 17.25, 100.5, 183.7, 199.9] {
            for wrap in [false, true] {
                let a = t.read_poly(&src, x, wrap);
                let b = t.read(&src, x, SINC_RHO, wrap);
                assert!((a - b).abs() < 2e-3, "x {x} wrap {wrap}: {a} vs {b}");
            }
        }
        // A tone well inside the passband is reproduced at fractional positions.
        let tone: Vec<f32> = (0..200).map(|n| (0.3 * n as f32).sin()).collect();
        for &x in &[40.0, 50.25, 77.5, 123.875] {
            let want = (0.3 * x as f32).sin();
            assert!(
                (t.read_poly(&tone, x, false) - want).abs() < 2e-3,
                "tone at {x}"
            );
        }
    }

    #[test]
    fn limiter_is_smooth_bounded_and_sanitises() {
        let mut lim = SoftLimiter::new();
        let mut l = vec![0.5, 0.89, 0.95, 2.0, 100.0, -100.0, f32::NAN, f32::INFINITY];
        let mut r = l.clone();
        lim.process(&mut l, &mut r);
        assert_eq!(l[..2], [0.5, 0.89]);
        assert!(l[2] < 0.95 && l[2] > 0.9);
        assert!(l[3] <= 1.0 && l[3] > l[2]);
        assert!(l[4] <= 1.0 && l[5] >= -1.0 && l[4] > 0.999);
        assert_eq!(l[6..], [0.0, 0.0]);
        assert_eq!(l, r);
        // Monotonic and continuous across the knee.
        let mut ramp: Vec<f32> = (0..2000).map(|i| i as f32 * 0.001).collect();
        let mut other = ramp.clone();
        lim.process(&mut ramp, &mut other);
        assert!(ramp
            .windows(2)
            .all(|w| w[1] >= w[0] && w[1] - w[0] <= 0.0011));
    }

    #[test]
    fn no_generation_is_silent_and_safe() {
        let s = settings();
        let mut v = Voices::new();
        v.set_output_sample_rate(48000.0);
        v.note_on(&s, 60, 1.0, 0, None);
        let (out, _) = render(&mut v, &s, 512);
        assert!(out.iter().all(|&x| x == 0.0));
        // Non-finite settings never produce non-finite output.
        let bad = VoiceSettings {
            root_note: f32::NAN,
            gain: f32::INFINITY,
            ..settings()
        };
        let mut back = Vec::new();
        v.receive(sine_generation(441.0, 22050, 2205, 1, 0.5, 0.0), &mut |g| {
            back.push(g)
        });
        let (out, _) = render(&mut v, &bad, 512);
        assert!(out.iter().all(|x| x.is_finite()));
        v.reset();
        assert_eq!(v.active_count(), 0);
    }
}
