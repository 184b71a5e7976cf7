//! The engine thread's loop: reads the controls, grows, vocodes and
//! publishes generations and editor snapshots.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError};

use super::wire::{EngineCommand, EngineControls, EngineStatus};
use crate::dsp::mel::Spectrogram;
use crate::grow::model::NcaModel;
use crate::grow::nca::{Nca, StepCancel};
use crate::grow::{frames_for, BrushConsumer, Grower};
use crate::play::queue::{Generation, GenerationProducer};
use crate::rng;
use crate::vocoder::bigvgan::BigVgan;
use crate::vocoder::voicing::{stft_ms_snapshot, Voicing};
use crate::vocoder::{Inverter, Vocoder, VocoderChoice};

/// The control values last acted on, to detect changes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Applied {
    /// Seed.
    seed: u32,
    /// Growth steps.
    growth: u32,
    /// Frames (from length and the model's mel config).
    frames: usize,
    /// Fire rate.
    fire_rate: f32,
    /// Mutation.
    mutation: f32,
    /// Damage control value.
    damage: f32,
    /// Vocoder choice.
    vocoder: VocoderChoice,
}

/// Minimum time between editor snapshots (~30 Hz).
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(33);
/// Time between re-vocodes while drifting.
const DRIFT_VOCODE_INTERVAL: Duration = Duration::from_millis(500);
/// An excerpt-seeded model's seed state is a passage of its recording, so a
/// few steps in it already sounds like the new seed: a change is published
/// then, ahead of the finished growth.
const EARLY_STEPS_EXCERPT: u32 = 8;
/// Only growth at least this much longer than the early step gets an early
/// generation (a short growth is finished about as soon).
const EARLY_MIN_GAIN: u32 = 16;

/// Idle wait per loop iteration (commands wake it earlier).
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// State of the engine thread.
pub(super) struct Worker {
    /// Control values from the plugin.
    controls: Arc<EngineControls>,
    /// Status values to the plugin.
    status: Arc<EngineStatus>,
    /// Generations to the audio thread.
    producer: GenerationProducer,
    /// Spectrograms to the editor.
    snapshots: triple_buffer::Input<Spectrogram>,
    /// Commands from the plugin.
    commands: Receiver<EngineCommand>,
    /// Stop request.
    shutdown: Arc<AtomicBool>,
    /// Registered with every automaton this thread builds, so the plugin can
    /// end a running step at teardown (see [`Engine`]).
    step_cancel: Option<Arc<StepCancel>>,
    /// Model to load at start (None = embedded default).
    initial_model: Option<PathBuf>,
    /// Whether the start-up model load was attempted (not retried every loop).
    tried_initial: bool,
    /// The growing NCA, once a model is loaded.
    grower: Option<Grower>,
    /// The built-in vocoder, for the current model's mel config.
    inverter: Option<Inverter>,
    /// The BigVGAN vocoder, when a file is loaded.
    bigvgan: Option<BigVgan>,
    /// Turns the current model's states into audio (the inverse STFT of an
    /// `stft-ms` model, or the chosen vocoder); made at model load.
    voicing: Option<Voicing>,
    /// Controls last acted on.
    applied: Option<Applied>,
    /// Steps added beyond `growth` by drift and by regrowth after damage.
    extra: u32,
    /// Fractional drift steps owed (wall-clock accumulator).
    drift_credit: f64,
    /// Last time drift credit was accumulated.
    last_tick: Instant,
    /// The current state differs from the last vocoded one and should be
    /// vocoded once the target is reached.
    dirty: bool,
    /// Step count of the last vocoded state (drift re-vocodes only on change).
    vocoded_step: Option<u32>,
    /// When the last generation was made.
    last_vocode: Instant,
    /// When the last editor snapshot was published.
    last_snapshot: Instant,
    /// The last snapshot is older than the state.
    snapshot_stale: bool,
    /// Generation ids (monotonic).
    generation: u64,
    /// A generation buffer acquired but not yet published (kept on failure
    /// because the producer side cannot give buffers back).
    spare: Option<Box<Generation>>,
    /// Smoothed seconds per step.
    step_time: Option<f64>,
    /// Set when stepping failed; cleared when the controls change (no retry
    /// loop on a model that produces NaN).
    stuck: bool,
    /// Number of damage events (seeds each rectangle's position).
    damage_events: u64,
    /// What the error in `status.error` is about, so success at one thing
    /// clears only its own error.
    error_source: Option<ErrorSource>,
    /// Dabs from the editor's damage brush, if the plugin wired one.
    brush: Option<BrushConsumer>,
    /// A copy of the last published generation, for Save WAV.
    take: super::record::Take,
    /// Step at which the growth under way publishes an early (provisional)
    /// generation, if it does.
    early_at: Option<u32>,
}

/// What an engine error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorSource {
    /// Loading an NCA model.
    Model,
    /// Loading the vocoder file.
    VocoderFile,
    /// Stepping the NCA.
    Growth,
    /// Vocoding.
    Vocoding,
}

/// Outcome of one vocode attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vocoded {
    /// A generation was published.
    Published,
    /// Every buffer is in use; try again shortly.
    NoBuffer,
    /// The vocoder failed; reported, not retried until the sound changes.
    Failed,
}

impl Worker {
    pub(super) fn new(
        controls: Arc<EngineControls>,
        status: Arc<EngineStatus>,
        producer: GenerationProducer,
        snapshots: triple_buffer::Input<Spectrogram>,
        commands: Receiver<EngineCommand>,
        shutdown: Arc<AtomicBool>,
        initial_model: Option<PathBuf>,
    ) -> Self {
        let now = Instant::now();
        Self {
            controls,
            status,
            producer,
            snapshots,
            commands,
            shutdown,
            step_cancel: None,
            initial_model,
            tried_initial: false,
            grower: None,
            inverter: None,
            bigvgan: None,
            voicing: None,
            applied: None,
            extra: 0,
            drift_credit: 0.0,
            last_tick: now,
            dirty: true,
            vocoded_step: None,
            last_vocode: now,
            last_snapshot: now - SNAPSHOT_INTERVAL,
            snapshot_stale: true,
            generation: 0,
            spare: None,
            step_time: None,
            stuck: false,
            damage_events: 0,
            error_source: None,
            brush: None,
            take: super::record::Take::default(),
            early_at: None,
        }
    }

    pub(super) fn with_brush(mut self, brush: Option<BrushConsumer>) -> Self {
        self.brush = brush;
        self
    }

    pub(super) fn with_step_cancel(mut self, cancel: Arc<StepCancel>) -> Self {
        self.step_cancel = Some(cancel);
        self
    }

    /// Applies waiting brush dabs, then regrows like any damage.
    fn drain_brush(&mut self) {
        let (Some(g), Some(brush)) = (self.grower.as_mut(), self.brush.as_mut()) else {
            return;
        };
        if g.apply_strokes(brush) > 0 {
            self.after_damage();
        }
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Shows an error and remembers what it is about.
    fn set_error(&mut self, source: ErrorSource, e: impl Into<String>) {
        let message = e.into();
        // The editor may be closed (or absent in a headless host): the log is
        // where a user or a test finds out why the sound did not change.
        nice_plug::nice_error!("grown: {message}");
        *self.status.error.lock() = message;
        self.error_source = Some(source);
    }

    /// Clears the shown error if it is about `source` (an error about
    /// something else stays visible).
    fn clear_error(&mut self, source: ErrorSource) {
        if self.error_source == Some(source) {
            self.status.error.lock().clear();
            self.error_source = None;
        }
    }

    pub(super) fn run(mut self) {
        while !self.stopping() {
            while let Ok(cmd) = self.commands.try_recv() {
                self.handle(cmd);
                if self.stopping() {
                    return;
                }
            }
            if !self.tried_initial {
                self.tried_initial = true;
                let path = self.initial_model.clone();
                self.load_model(path.as_deref());
                continue;
            }
            if self.grower.is_none() {
                self.wait();
                continue;
            }
            self.apply_controls();
            if self.stopping() {
                return;
            }
            self.drain_brush();
            self.tick();
        }
    }

    /// Waits for a command or the idle interval.
    fn wait(&mut self) {
        match self.commands.recv_timeout(IDLE_WAIT) {
            Ok(cmd) => self.handle(cmd),
            Err(RecvTimeoutError::Timeout) => {}
            // The plugin dropped the sender: nothing more will come, but keep
            // honouring the shutdown flag rather than exiting silently.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(IDLE_WAIT),
        }
    }

    fn handle(&mut self, cmd: EngineCommand) {
        match cmd {
            EngineCommand::LoadModel(p) => {
                self.tried_initial = true;
                self.load_model(Some(&p));
            }
            EngineCommand::LoadVocoder(p) => {
                // A vocoder is checked against the model's mel analysis, so the
                // model must be loaded first: otherwise a mismatching vocoder
                // restored from a project would be accepted and then refuse
                // every model, leaving the instrument silent.
                if !self.tried_initial {
                    self.tried_initial = true;
                    let path = self.initial_model.clone();
                    self.load_model(path.as_deref());
                }
                self.load_vocoder(p.as_deref())
            }
            EngineCommand::LoadBuiltInModel => {
                self.tried_initial = true;
                self.load_model(None);
            }
            EngineCommand::Damage { mel0, mel1, t0, t1 } => {
                if let Some(g) = self.grower.as_mut() {
                    g.damage_fraction(mel0, mel1, t0, t1);
                    self.after_damage();
                }
            }
            EngineCommand::SaveWav { path, looping } => {
                let rate = self.controls.host_rate.load(Ordering::Relaxed);
                let result = super::record::write_wav(&path, &self.take, rate, looping)
                    .map(|_| path.clone())
                    .map_err(|e| format!("could not save {}: {e}", path.display()));
                match &result {
                    Ok(p) => nice_plug::nice_log!("grown: saved {}", p.display()),
                    Err(e) => nice_plug::nice_error!("grown: {e}"),
                }
                *self.status.saved.lock() = result;
            }
        }
    }

    /// Loads a model; on failure keeps the previous one and reports why.
    fn load_model(&mut self, path: Option<&Path>) {
        let loaded = match path {
            Some(p) => NcaModel::load(p),
            None => NcaModel::load_embedded_default(),
        };
        let model = match loaded {
            Ok(m) => m,
            Err(e) => {
                let what = path.map_or("the built-in model".to_string(), |p| {
                    p.display().to_string()
                });
                let message = format!("could not load {what}: {e}");
                // A project reopened on a machine without its model file must
                // still play: with nothing loaded yet, fall back to the built-in
                // model and keep the warning visible.
                if self.grower.is_none() && path.is_some() {
                    self.load_model(None);
                    self.set_error(
                        ErrorSource::Model,
                        format!("{message}; playing the built-in model instead"),
                    );
                } else {
                    self.set_error(ErrorSource::Model, message);
                }
                return;
            }
        };
        // An stft-ms model never meets the vocoder, so its analysis need not match it.
        if let (Some(v), None) = (&self.bigvgan, &model.info.stft) {
            if let Some(diff) = model.info.mel.mismatch(v.mel_config()) {
                self.set_error(
                    ErrorSource::Model,
                    format!(
                    "refused model {}: its mel analysis differs from the loaded vocoder's ({diff}); \
                     unload the vocoder or choose a matching model",
                    model.source
                ),
                );
                return;
            }
        }
        *self.status.model.lock() = format!(
            "{} — {} ({})",
            model.source, model.info.target, model.info.license
        );
        *self.status.provider.lock() = model.provider.why.clone();
        *self.status.model_info.lock() = Some(model.info.clone());
        // An stft-ms model is played by its inverse STFT and needs no inverter.
        self.inverter = match &model.info.stft {
            Some(_) => None,
            None => Some(Inverter::new(model.info.mel.clone())),
        };
        self.voicing = Some(Voicing::for_model(&model.info));
        let mut nca = Nca::new(model);
        if let Some(c) = &self.step_cancel {
            nca.set_cancel(c.clone());
        }
        self.grower = Some(Grower::new(nca));
        self.applied = None;
        self.extra = 0;
        self.dirty = true;
        self.vocoded_step = None;
        self.stuck = false;
        self.clear_error(ErrorSource::Model);
        self.clear_error(ErrorSource::Growth);
        self.clear_error(ErrorSource::Vocoding);
    }

    /// Loads or unloads the BigVGAN vocoder; refuses one whose mel analysis
    /// differs from the model's.
    fn load_vocoder(&mut self, path: Option<&Path>) {
        let Some(path) = path else {
            // Unloading also retires a refusal: the file it was about is gone.
            let refused = self.error_source == Some(ErrorSource::VocoderFile);
            self.clear_error(ErrorSource::VocoderFile);
            if self.bigvgan.take().is_some() || refused {
                self.dirty = true;
            }
            return;
        };
        let mut v = match BigVgan::load(path) {
            Ok(v) => v,
            Err(e) => {
                self.set_error(
                    ErrorSource::VocoderFile,
                    format!("could not load vocoder {}: {e}", path.display()),
                );
                return;
            }
        };
        if let Some(g) = &self.grower {
            if let Some(diff) = g.nca().info().mel.mismatch(v.mel_config()) {
                self.set_error(
                    ErrorSource::VocoderFile,
                    format!(
                        "refused vocoder {}: its mel analysis differs from the model's ({diff})",
                        path.display()
                    ),
                );
                return;
            }
        }
        v.set_cancel(self.shutdown.clone());
        self.bigvgan = Some(v);
        self.dirty = true;
        self.clear_error(ErrorSource::VocoderFile);
    }

    /// Reads the controls and retargets the grower when they changed.
    fn apply_controls(&mut self) {
        let Some(grower) = self.grower.as_mut() else {
            return;
        };
        let c = &self.controls;
        let mel = &grower.nca().info().mel;
        let now = Applied {
            seed: c.seed.load(Ordering::Relaxed),
            growth: c.growth.load(Ordering::Relaxed),
            frames: frames_for(c.length_s.load(Ordering::Relaxed), mel),
            fire_rate: clamp_control(c.fire_rate.load(Ordering::Relaxed), 0.0, 1.0),
            mutation: clamp_control(c.mutation.load(Ordering::Relaxed), 0.0, 10.0),
            damage: clamp_control(c.damage.load(Ordering::Relaxed), 0.0, 1.0),
            vocoder: c.vocoder.load(),
        };
        let prev = self.applied;
        if prev == Some(now) {
            return;
        }
        self.applied = Some(now);
        self.stuck = false;
        let trajectory_changed = prev.is_none_or(|p| {
            (
                p.seed,
                p.frames,
                p.fire_rate.to_bits(),
                p.mutation.to_bits(),
            ) != (
                now.seed,
                now.frames,
                now.fire_rate.to_bits(),
                now.mutation.to_bits(),
            ) || p.growth != now.growth
        });
        if trajectory_changed {
            self.extra = 0;
            self.drift_credit = 0.0;
            self.dirty = true;
        }
        if prev.is_some_and(|p| p.vocoder != now.vocoder) {
            self.dirty = true;
        }
        self.retarget();
        if trajectory_changed {
            self.early_at = self.early_step();
        }
        self.snapshot_stale = true;
        let damage_changed = prev.is_some_and(|p| (p.damage - now.damage).abs() > 1e-4);
        if damage_changed && now.damage > 0.0 {
            self.damage_control(now.seed, now.damage);
        }
    }

    /// The step of the growth just set at which to publish early: a few steps in
    /// for an excerpt-seeded model (its seed state is its recording), half its
    /// trained growth for a noise-seeded one (before that it is still noise);
    /// none when growth resumes past that point (a checkpoint, a parked
    /// seed: the sound there is already the one being grown) or when the
    /// finished sound is about as near.
    fn early_step(&self) -> Option<u32> {
        let g = self.grower.as_ref()?;
        let info = g.nca().info();
        let early = if info.seed_bank.is_some() {
            EARLY_STEPS_EXCERPT
        } else {
            info.growth_steps / 2
        };
        (g.nca().steps() < early && g.target() >= early + EARLY_MIN_GAIN).then_some(early)
    }

    /// Points the grower at the applied controls plus the steps that drift
    /// and regrowth after damage added beyond Growth.
    fn retarget(&mut self) {
        if let (Some(a), Some(g)) = (self.applied, self.grower.as_mut()) {
            g.set_target(
                a.seed,
                a.growth.saturating_add(self.extra),
                a.frames,
                a.fire_rate,
                a.mutation,
            );
        }
    }

    /// Erases a rectangle covering `amount` of the sound, centred near the
    /// middle at a position drawn from the seed.
    fn damage_control(&mut self, seed: u32, amount: f32) {
        let Some(g) = self.grower.as_mut() else {
            return;
        };
        let side = amount.sqrt();
        let n = self.damage_events;
        self.damage_events += 1;
        let jitter =
            |i: u64| (rng::uniform(u64::from(seed), rng::DAMAGE_STREAM, 2 * n + i) - 0.5) * 0.5;
        let (cm, ct) = (0.5 + jitter(0) * (1.0 - side), 0.5 + jitter(1));
        let (mel0, mel1) = (cm - side / 2.0, cm + side / 2.0);
        let (t0, t1) = (
            (ct - side / 2.0).rem_euclid(1.0),
            (ct + side / 2.0).rem_euclid(1.0),
        );
        if side >= 1.0 {
            g.damage_fraction(0.0, 1.0, 0.0, 1.0);
        } else {
            g.damage_fraction(mel0, mel1, t0, t1);
        }
        self.after_damage();
    }

    /// After damage: grow further so the wound regrows, then vocode.
    fn after_damage(&mut self) {
        let Some(g) = self.grower.as_mut() else {
            return;
        };
        // Regrow for one growth period from *now*: a damage knob being dragged
        // fires many events, and stacking a period per event would queue
        // minutes of growth.
        let regrow = g.nca().info().growth_steps;
        let growth = self.applied.map_or(0, |a| a.growth);
        let wanted = g
            .nca()
            .steps()
            .saturating_add(regrow)
            .saturating_sub(growth);
        self.extra = self.extra.max(wanted);
        self.retarget();
        self.dirty = true;
        self.snapshot_stale = true;
        self.stuck = false;
    }

    /// One loop iteration with a model loaded: a step, a vocode, or a wait.
    fn tick(&mut self) {
        let Some(grower) = self.grower.as_mut() else {
            return;
        };
        self.status.target.store(grower.target(), Ordering::Relaxed);
        if !grower.done() && !self.stuck {
            let t0 = Instant::now();
            let result = grower.advance(1);
            let dt = t0.elapsed().as_secs_f64();
            match result {
                Ok(n) if n > 0 => {
                    let per = dt / f64::from(n);
                    let s = self.step_time.map_or(per, |s| 0.8 * s + 0.2 * per);
                    self.step_time = Some(s);
                    if s > 0.0 {
                        self.status
                            .steps_per_s
                            .store((1.0 / s) as f32, Ordering::Relaxed);
                    }
                }
                Ok(_) => {}
                // Teardown ended the step (StepCancel): not an error to show.
                Err(_) if self.shutdown.load(Ordering::Acquire) => return,
                Err(e) => {
                    self.stuck = true;
                    let message = format!("growth stopped: {e}");
                    nice_plug::nice_error!("grown: {message}");
                    *self.status.error.lock() = message;
                    self.error_source = Some(ErrorSource::Growth);
                }
            }
            let steps = grower.nca().steps();
            self.status.step.store(steps, Ordering::Relaxed);
            self.snapshot_stale = true;
            self.publish_snapshot(false);
            if self.early_at.is_some_and(|at| steps >= at) && !self.stuck {
                self.early_at = None;
                // Heard now, while growth goes on; a failure here is retried by
                // the finished generation.
                self.vocode_as(true);
            }
            self.last_tick = Instant::now();
            if !self.stuck {
                self.clear_error(ErrorSource::Growth);
            }
            return;
        }
        self.status
            .step
            .store(grower.nca().steps(), Ordering::Relaxed);
        self.publish_snapshot(true);
        let now = Instant::now();
        let dt = now.duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        if self.dirty && !self.stuck {
            match self.vocode() {
                Vocoded::Published | Vocoded::Failed => self.dirty = false,
                Vocoded::NoBuffer => self.wait(),
            }
            return;
        }
        let drift = clamp_control(self.controls.drift.load(Ordering::Relaxed), 0.0, 1000.0);
        if drift > 0.0 && !self.stuck {
            self.drift_credit = (self.drift_credit + dt * f64::from(drift)).min(4.0);
            if self.drift_credit >= 1.0 {
                let whole = self.drift_credit.floor();
                self.drift_credit -= whole;
                self.extra = self.extra.saturating_add(whole as u32);
                self.retarget();
                return;
            }
            let changed = self.vocoded_step != self.grower.as_ref().map(|g| g.nca().steps());
            if changed && self.last_vocode.elapsed() >= DRIFT_VOCODE_INTERVAL {
                self.vocode();
                return;
            }
        } else {
            self.drift_credit = 0.0;
        }
        self.wait();
    }

    /// Publishes the current spectrogram to the editor, at most ~30 times a
    /// second unless `force` (then only if it changed since the last one).
    fn publish_snapshot(&mut self, force: bool) {
        if !self.snapshot_stale {
            return;
        }
        if !force && self.last_snapshot.elapsed() < SNAPSHOT_INTERVAL {
            return;
        }
        let Some(g) = self.grower.as_ref() else {
            return;
        };
        let nca = g.nca();
        if nca.info().stft.is_some() {
            stft_ms_snapshot(nca, self.snapshots.input_buffer_mut());
        } else {
            nca.spectrogram_into(self.snapshots.input_buffer_mut());
        }
        self.snapshots.publish();
        self.last_snapshot = Instant::now();
        self.snapshot_stale = false;
    }

    /// Voices the current state and publishes it as a finished generation.
    fn vocode(&mut self) -> Vocoded {
        self.vocode_as(false)
    }

    /// Voices the current state and publishes it, as a provisional generation
    /// (a step on the way, heard early) or a finished one.
    fn vocode_as(&mut self, provisional: bool) -> Vocoded {
        let Some(mut slot) = self.spare.take().or_else(|| self.producer.acquire()) else {
            return Vocoded::NoBuffer;
        };
        let (Some(grower), Some(voicing)) = (self.grower.as_mut(), self.voicing.as_mut()) else {
            self.spare = Some(slot);
            return Vocoded::Failed;
        };
        // An early generation is heard for a moment before the finished one:
        // the built-in inverter gives it its phase estimate alone, without the
        // Griffin-Lim refinement, so it arrives sooner.
        let full_iterations = self.inverter.as_ref().map(Inverter::iterations);
        if let (true, Some(i)) = (provisional, self.inverter.as_mut()) {
            i.set_iterations(0);
        }
        let want_bigvgan = self.controls.vocoder.load() == VocoderChoice::BigVgan;
        let vocoder: Option<&mut dyn Vocoder> = match (&mut self.bigvgan, &mut self.inverter) {
            _ if voicing.is_stft_ms() => None,
            (Some(b), _) if want_bigvgan => Some(b),
            (_, Some(i)) => Some(i),
            _ => {
                self.spare = Some(slot);
                return Vocoded::Failed;
            }
        };
        let step = grower.nca().steps();
        let result = voicing.synthesize(grower, vocoder);
        if let (Some(i), Some(n)) = (self.inverter.as_mut(), full_iterations) {
            i.set_iterations(n);
        }
        self.last_vocode = Instant::now();
        let voiced = match result {
            Ok(voiced) => voiced,
            Err(e) => {
                self.spare = Some(slot);
                self.vocoded_step = Some(step);
                if !self.stopping() {
                    self.set_error(ErrorSource::Vocoding, e.to_string());
                }
                return Vocoded::Failed;
            }
        };
        if let Some(rtf) = voiced.real_time_factor() {
            self.status.vocoder_rtf.store(rtf, Ordering::Relaxed);
        }
        self.generation += 1;
        voicing.fill(&voiced, &mut slot, self.generation, true);
        slot.provisional = provisional;
        self.take = super::record::Take::capture(&slot);
        let mel_without_bigvgan = !voiced.stereo && want_bigvgan && self.bigvgan.is_none();
        match self.producer.publish(slot) {
            Ok(()) => {
                self.status
                    .generation
                    .store(self.generation, Ordering::Release);
                self.vocoded_step = Some(step);
                if mel_without_bigvgan {
                    // A refused or unreadable vocoder file already says why
                    // there is none, more usefully than this would.
                    if self.error_source != Some(ErrorSource::VocoderFile) {
                        self.set_error(
                            ErrorSource::Vocoding,
                            "BigVGAN is selected but no vocoder file is loaded; using the built-in vocoder",
                        );
                    }
                } else {
                    self.clear_error(ErrorSource::Vocoding);
                }
                Vocoded::Published
            }
            Err(slot) => {
                self.spare = Some(slot);
                Vocoded::NoBuffer
            }
        }
    }
}

/// Clamps a control value; NaN becomes the lower bound.
fn clamp_control(v: f32, lo: f32, hi: f32) -> f32 {
    if v.is_nan() {
        lo
    } else {
        v.clamp(lo, hi)
    }
}
