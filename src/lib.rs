//! Grown: an instrument that grows sounds with a neural cellular automaton.
//!
//! The data path reads top to bottom: params → engine → spectrogram → vocoder
//! → queue → voices → output. See ARCHITECTURE.md for the threads.

pub mod dsp;
pub mod editor;
pub mod engine;
pub mod grow;
pub mod onnx;
pub mod params;
pub mod perform;
pub mod picture;
pub mod play;
pub mod presets;
pub mod userdata;
/// Counter-based random numbers (its own crate, so the test models share it).
pub use grown_rng as rng;
pub mod state;
pub mod vocoder;

use dsp::mel::Spectrogram;
use engine::{Engine, EngineControls, EngineLink, EngineStatus};
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use params::{GrownParams, LoopMode};
use parking_lot::Mutex;
use perform::Performance;
use play::queue::{GenerationConsumer, GENERATION_CAPACITY, GENERATION_POOL};
use play::Expression;
use play::{Playheads, SoftLimiter, VoiceSettings, Voices};
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Sub-block length between event checks, so voices see note events sample-accurately
/// without rendering one sample at a time.
const MAX_SUB_BLOCK: usize = 64;

pub struct Grown {
    /// Parameters shared with the host, the editor and the engine.
    params: Arc<GrownParams>,
    /// Parameter values mirrored as atomics for the engine thread, written once per block.
    controls: Arc<EngineControls>,
    /// Engine figures and messages for the editor (steps/s, provider, errors).
    status: Arc<EngineStatus>,
    /// The background engine; spawned on first activation so scanning stays cheap.
    engine: Option<Engine>,
    /// The engine's command sender and the files it was told to load, shared
    /// with the editor's model picker (main and editor threads only).
    link: Arc<Mutex<EngineLink>>,
    /// Where sounding voices are, for the editor's playhead lines.
    playheads: Arc<Playheads>,
    /// Editor end of the damage brush queue (only the editor locks it).
    brush: Arc<Mutex<grow::BrushProducer>>,
    /// Engine end of the brush queue, until the engine takes it.
    brush_consumer: Option<grow::BrushConsumer>,
    /// Audio side of the generation queue: new sounds arrive here, old buffers go back.
    consumer: Option<GenerationConsumer>,
    /// Fixed voice array plus the bank of current/previous generations.
    voices: Voices,
    /// Guards the bus against overs and replaces NaN/Inf with silence.
    limiter: SoftLimiter,
    /// Engine side of the editor's spectrogram triple buffer, until the engine takes it.
    snapshot_input: Option<triple_buffer::Input<Spectrogram>>,
    /// Editor side of the triple buffer; shared because the editor can be reopened.
    snapshot_output: Arc<Mutex<triple_buffer::Output<Spectrogram>>>,
    /// Normalised pitch-bend wheel position, -1..1, kept across blocks.
    bend: f32,
    /// Mod wheel, channel pressure and the host's tempo, kept across blocks.
    performance: Performance,
    /// Voice capacity last reported to the host (CLAP voice info).
    voice_capacity: u32,
}

impl Default for Grown {
    fn default() -> Self {
        let (snapshot_input, snapshot_output) =
            triple_buffer::triple_buffer(&Spectrogram::default());
        let (brush, brush_consumer) = grow::brush_queue();
        Self {
            params: Arc::new(GrownParams::default()),
            controls: Arc::new(EngineControls::default()),
            status: Arc::new(EngineStatus::default()),
            engine: None,
            link: Arc::new(Mutex::new(EngineLink::default())),
            playheads: Arc::new(Playheads::default()),
            brush: Arc::new(Mutex::new(brush)),
            brush_consumer: Some(brush_consumer),
            consumer: None,
            voices: Voices::new(),
            limiter: SoftLimiter::new(),
            snapshot_input: Some(snapshot_input),
            snapshot_output: Arc::new(Mutex::new(snapshot_output)),
            bend: 0.0,
            performance: Performance::default(),
            voice_capacity: 0,
        }
    }
}

impl Grown {
    /// What the engine reports (step, target, generation, errors); for
    /// in-process hosts such as the benchmark that wait for growth to finish.
    pub fn engine_status(&self) -> Arc<EngineStatus> {
        self.status.clone()
    }

    /// Copies the growth parameters, after the performance, into the engine's
    /// atomics; cheap and lock-free.
    fn sync_controls(&self) -> perform::Performed {
        let p = &self.params;
        let c = &self.controls;
        let now = perform::perform(p, &self.performance);
        c.growth.store(now.growth.max(0) as u32, Ordering::Relaxed);
        c.seed
            .store(p.grow.seed.value().max(0) as u32, Ordering::Relaxed);
        c.drift.store(now.drift, Ordering::Relaxed);
        c.fire_rate
            .store(p.grow.fire_rate.value(), Ordering::Relaxed);
        c.mutation.store(now.mutation, Ordering::Relaxed);
        c.damage.store(now.damage, Ordering::Relaxed);
        c.length_s.store(now.length_s, Ordering::Relaxed);
        c.vocoder.store(p.output.vocoder.value());
        now
    }

    fn voice_settings(&self, now: &perform::Performed) -> VoiceSettings {
        let p = &self.params;
        let e = &p.expression;
        VoiceSettings {
            attack_s: p.voice.attack.value(),
            decay_s: p.voice.decay.value(),
            sustain: p.voice.sustain.value(),
            release_s: p.voice.release.value(),
            root_note: p.voice.root_note.value() as f32,
            bend_range: p.voice.bend_range.value(),
            gain: 1.0,
            looping: p.output.loop_mode.value() == LoopMode::Loop,
            morph_s: now.morph_s,
            polyphony: p.voice.polyphony.value().clamp(1, play::MAX_VOICES as i32) as usize,
            tune: p.voice.tune.value(),
            velocity_curve: e.velocity_curve.value(),
            velocity_tone: e.velocity_tone.value(),
            voice_pressure: e.voice_pressure.value(),
            mpe_bend_range: e.mpe_bend_range.value(),
            mpe: e.mpe.value(),
            loop_s: now.loop_s,
        }
    }

    /// Tells a running engine about model files changed by a state restore or the editor.
    fn sync_model_files(&mut self) {
        if self.engine.is_none() {
            return;
        }
        let model = params::read_model(&self.params.model_path, "nca");
        let vocoder = params::read_model(&self.params.vocoder_path, "vocoder");
        self.link.lock().sync(model, vocoder);
    }

    fn handle_event(&mut self, event: NoteEvent<()>, settings: &VoiceSettings) {
        match event {
            NoteEvent::NoteOn {
                voice_id,
                channel,
                key,
                velocity,
                ..
            } => {
                if let Some(note) = key.number() {
                    self.voices.note_on(
                        settings,
                        note,
                        velocity,
                        channel.number().unwrap_or(0),
                        voice_id.id(),
                    );
                }
            }
            NoteEvent::NoteOff {
                voice_id,
                channel,
                key,
                ..
            } => {
                if let Some(note) = key.number() {
                    self.voices
                        .note_off(note, channel.number().unwrap_or(0), voice_id.id());
                }
            }
            NoteEvent::Choke {
                voice_id,
                channel,
                key,
                ..
            } => {
                if let Some(note) = key.number() {
                    self.voices
                        .choke(note, channel.number().unwrap_or(0), voice_id.id());
                }
            }
            NoteEvent::MidiPitchBend { channel, value, .. } => {
                let bend = (value * 2.0 - 1.0).clamp(-1.0, 1.0);
                if self.mpe_member(channel) {
                    self.voices
                        .channel_expression(channel, Expression::Bend(bend));
                } else {
                    self.bend = bend;
                    self.voices.pitch_bend(self.bend);
                }
            }
            NoteEvent::MidiChannelPressure {
                channel, pressure, ..
            } => {
                if self.mpe_member(channel) {
                    self.voices
                        .channel_expression(channel, Expression::Pressure(pressure));
                } else if pressure.is_finite() {
                    self.performance.pressure = pressure.clamp(0.0, 1.0);
                }
            }
            NoteEvent::MidiCC {
                channel, cc, value, ..
            } => match cc {
                control_change::MODULATION_MSB if value.is_finite() => {
                    self.performance.wheel = value.clamp(0.0, 1.0);
                }
                // MPE timbre: centre (64) and up leave the note open, lower darkens.
                control_change::SOUND_CONTROLLER_5 if self.mpe_member(channel) => {
                    let bright = Expression::Brightness((2.0 * value).min(1.0));
                    self.voices.channel_expression(channel, bright);
                }
                _ => {}
            },
            NoteEvent::PolyPressure {
                voice_id,
                channel,
                key,
                pressure,
                ..
            } => self.note_expression(voice_id, channel, key, Expression::Pressure(pressure)),
            NoteEvent::PolyTuning {
                voice_id,
                channel,
                key,
                tuning,
                ..
            } => self.note_expression(voice_id, channel, key, Expression::Tuning(tuning)),
            NoteEvent::PolyVolume {
                voice_id,
                channel,
                key,
                gain,
                ..
            } => self.note_expression(voice_id, channel, key, Expression::Volume(gain)),
            NoteEvent::PolyPan {
                voice_id,
                channel,
                key,
                pan,
                ..
            } => self.note_expression(voice_id, channel, key, Expression::Pan(pan)),
            NoteEvent::PolyBrightness {
                voice_id,
                channel,
                key,
                brightness,
                ..
            } => self.note_expression(voice_id, channel, key, Expression::Brightness(brightness)),
            NoteEvent::PolyModulation {
                voice_id,
                poly_modulation_id: id,
                normalized_offset,
                ..
            } => {
                let at = perform::poly_base(&self.params, id) + normalized_offset;
                let value = perform::poly_value(&self.params, id, at);
                self.voices
                    .poly_modulate(voice_id, id as usize, normalized_offset, value);
            }
            NoteEvent::MonoAutomation {
                poly_modulation_id: id,
                normalized_value,
                ..
            } => {
                let params = &self.params;
                self.voices.poly_rebase(id as usize, |offset| {
                    perform::poly_value(params, id, normalized_value + offset)
                });
            }
            _ => {}
        }
    }

    /// Whether `channel` is an MPE member channel (one note's own), not the master.
    fn mpe_member(&self, channel: u8) -> bool {
        channel != 0 && self.params.expression.mpe.value()
    }

    fn note_expression(&mut self, voice_id: VoiceID, channel: Channel, key: Key, e: Expression) {
        self.voices
            .expression(voice_id.id(), channel.number(), key.number(), e);
    }
}

impl Plugin for Grown {
    const NAME: &'static str = "Grown";
    const VENDOR: &'static str = "Grown";
    const URL: &'static str = "https://example.invalid/grown";
    const EMAIL: &'static str = "grown@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: None,
        main_output_channels: NonZeroU32::new(2),
        ..AudioIOLayout::const_default()
    }];

    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = editor::GrownEguiEditor;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn filter_state(state: &mut PluginState) {
        // A saved state may come from a newer version, another plugin or a
        // corrupt file: clamp, drop and report instead of trusting it.
        state::repair_untrusted(state);
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(editor::EditorShared {
            params: self.params.clone(),
            status: self.status.clone(),
            snapshots: self.snapshot_output.clone(),
            playheads: self.playheads.clone(),
            brush: self.brush.clone(),
            link: self.link.clone(),
        })
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.voices
            .set_output_sample_rate(buffer_config.sample_rate);
        self.controls
            .host_rate
            .store(buffer_config.sample_rate, Ordering::Relaxed);
        self.sync_controls();
        // Shown once: what a restored state had to have corrected.
        if let Some(notice) = self.params.restore_notice.write().take() {
            nice_error!("grown: {notice}");
            *self.status.error.lock() = notice;
        }
        if self.engine.is_none() {
            // The engine loads ONNX Runtime and the model on its own thread, so neither
            // scanning nor activation waits for them.
            let (producer, consumer) = play::generation_queue(GENERATION_POOL, GENERATION_CAPACITY);
            let Some(snapshots) = self.snapshot_input.take() else {
                return false;
            };
            let model = params::read_model(&self.params.model_path, "nca");
            let vocoder = params::read_model(&self.params.vocoder_path, "vocoder");
            let engine = Engine::spawn_with_brush(
                self.controls.clone(),
                self.status.clone(),
                producer,
                snapshots,
                model.clone(),
                self.brush_consumer.take(),
            );
            if let Some(path) = &vocoder {
                let _ = engine
                    .commands()
                    .send(engine::EngineCommand::LoadVocoder(Some(path.clone())));
            }
            *self.link.lock() = EngineLink {
                commands: Some(engine.commands()),
                model,
                vocoder,
            };
            self.engine = Some(engine);
            self.consumer = Some(consumer);
        } else {
            self.sync_model_files();
        }
        true
    }

    fn reset(&mut self) {
        self.voices.reset();
        self.bend = 0.0;
        self.performance = Performance::default();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let transport = context.transport();
        self.performance.tempo = transport.tempo;
        if let (Some(n), Some(d)) = (transport.time_sig_numerator, transport.time_sig_denominator) {
            if n > 0 && d > 0 {
                self.performance.beats_per_bar = f64::from(n) * 4.0 / f64::from(d);
            }
        }
        let now = self.sync_controls();
        if let Some(consumer) = &mut self.consumer {
            while let Some(generation) = consumer.receive() {
                self.voices
                    .receive(generation, &mut |old| consumer.recycle(old));
            }
            // Buffers whose crossfade finished go back to the engine without waiting
            // for the next generation.
            self.voices.release_unused(&mut |old| consumer.recycle(old));
        }

        let mut settings = self.voice_settings(&now);
        if self.voice_capacity != settings.polyphony as u32 {
            self.voice_capacity = settings.polyphony as u32;
            context.set_current_voice_capacity(self.voice_capacity);
        }
        let num_samples = buffer.samples();
        let outputs = buffer.as_slice();
        let (left, right) = outputs.split_at_mut(1);
        let (left, right) = (&mut *left[0], &mut *right[0]);
        left.fill(0.0);
        right.fill(0.0);

        let mut next_event = context.next_event();
        let mut block_start = 0usize;
        while block_start < num_samples {
            // Events due at or before this sample take effect first.
            while let Some(event) = next_event {
                if event.timing() as usize > block_start {
                    break;
                }
                let moves_controls = matches!(
                    event,
                    NoteEvent::MidiCC { .. } | NoteEvent::MidiChannelPressure { .. }
                );
                self.handle_event(event, &settings);
                if moves_controls {
                    // The wheel or pressure may move Growth or Morph mid-block.
                    let now = self.sync_controls();
                    settings = self.voice_settings(&now);
                }
                next_event = context.next_event();
            }
            let mut block_end = (block_start + MAX_SUB_BLOCK).min(num_samples);
            if let Some(event) = next_event {
                block_end = block_end.min(event.timing() as usize).max(block_start + 1);
            }

            let mut ended = |end: play::VoiceEnd| {
                let _ = context.try_send_event(NoteEvent::VoiceTerminated {
                    timing: end.timing,
                    voice_id: end.voice_id.map_or(VoiceID::Wildcard, VoiceID::ID),
                    channel: Channel::Number(end.channel),
                    key: Key::Number(end.note),
                });
            };
            self.voices.render(
                &settings,
                &mut left[block_start..block_end],
                &mut right[block_start..block_end],
                block_start as u32,
                &mut ended,
            );
            for i in block_start..block_end {
                let gain = self.params.output.gain.smoothed.next();
                left[i] *= gain;
                right[i] *= gain;
            }
            block_start = block_end;
        }
        self.limiter.process(left, right);
        let mut heads = [0.0f32; play::MAX_VOICES];
        let n = self.voices.active_playheads(&mut heads);
        self.playheads.publish(&heads[..n]);
        ProcessStatus::Normal
    }

    fn deactivate(&mut self) {
        self.voices.reset();
    }
}

impl ClapPlugin for Grown {
    const CLAP_ID: &'static str = "com.grown.grown";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Plays sounds grown by a neural cellular automaton");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::Instrument,
        ClapFeature::Synthesizer,
        ClapFeature::Sampler,
        ClapFeature::Stereo,
    ];
    const CLAP_POLY_MODULATION_CONFIG: Option<PolyModulationConfig> = Some(PolyModulationConfig {
        max_voice_capacity: play::MAX_VOICES as u32,
        supports_overlapping_voices: true,
    });
}

impl Vst3Plugin for Grown {
    const VST3_CLASS_ID: [u8; 16] = *b"GrownNcaInstrmnt";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Synth];
}

nice_export_clap!(Grown);
nice_export_vst3!(Grown);
