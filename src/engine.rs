//! Growing sounds: [`Grower`] (the synchronous, deterministic core used by the
//! offline renderer and tests) and [`Engine`] (the background thread the
//! plugin runs it on).
//!
//! The engine thread owns everything slow — ONNX Runtime, the NCA, the
//! vocoder — and talks to the rest of the plugin only through atomics
//! ([`EngineControls`] in, [`EngineStatus`] out), a command channel, a triple
//! buffer of spectrogram snapshots for the editor, and the generation queue
//! to the audio thread. Nothing it does can block the audio thread.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use atomic_float::AtomicF32;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::mel::{MelConfig, Spectrogram};
use crate::model::{ModelError, NcaModel};
use crate::nca::{Nca, NcaCheckpoint, StateEnvelope, StepCancel};
use crate::queue::{Generation, GenerationProducer};
use crate::rng;
use crate::stft_ms::{Compression, StftMs, VISIBLE_CHANNELS as STFT_VISIBLE};
use crate::vocoder::bigvgan::BigVgan;
use crate::vocoder::{Inverter, Vocoder};

/// Checkpoints are taken every this many steps; scrubbing backward re-grows
/// at most this many steps from the nearest one.
pub const CHECKPOINT_EVERY: u32 = 16;

/// Memory the checkpoint cache may use. Past it no new checkpoints are taken
/// (the earliest ones, which cover the growth range users scrub through, are
/// kept); scrubbing further back then re-grows from the last one available.
pub const CHECKPOINT_BUDGET_BYTES: usize = 192 << 20;

/// Soft band kept around the state's range at the model's recommended growth
/// step, as a fraction of each channel's span: steps past that point (Drift,
/// or a Growth beyond what the model was trained for) may wander this far
/// outside the trained range and no further (see [`Grower`]).
pub const DRIFT_MARGIN: f32 = 0.1;

/// Shortest and longest sound the engine grows, in frames. A graph wraps its
/// time axis by slicing, so it needs more frames than its widest wrap (12 for
/// the `band9` kernel); 16 is also the trainer's narrowest grid.
pub const MIN_FRAMES: usize = 16;
/// See [`MIN_FRAMES`]; bounds memory (state and checkpoints scale with it).
pub const MAX_FRAMES: usize = 4096;

/// Frames for a sound of `length_s` seconds under `mel` (clamped).
pub fn frames_for(length_s: f32, mel: &MelConfig) -> usize {
    let f = (length_s.max(0.0) as f64 * mel.sample_rate as f64 / mel.hop.max(1) as f64).round();
    if f.is_finite() {
        (f as usize).clamp(MIN_FRAMES, MAX_FRAMES)
    } else {
        MIN_FRAMES
    }
}

/// The parameters that define a trajectory: changing any of them means the
/// cached states no longer lie on the path and growth restarts from the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TrajectoryKey {
    /// Seed of the initial state and of every mask.
    seed: u32,
    /// Length in frames.
    frames: usize,
    /// Fire rate, compared bitwise (any change changes the masks).
    fire_rate: u32,
    /// Mutation amount, compared bitwise.
    mutation: u32,
}

/// Grows an NCA to a requested step count, caching checkpoints so that moving
/// the growth control backward is cheap.
///
/// Determinism: for the same model, `(seed, growth, frames, fire_rate,
/// mutation)` always gives the same spectrogram bit for bit, whatever was
/// grown before, because every step is a pure function of the previous state
/// and `(seed, step index)`. The one exception is [`Grower::damage`], which
/// deliberately branches the trajectory (see there).
///
/// Staying in range: up to the model's recommended growth (`grown.growth_steps`,
/// what it was trained for) the steps are the plain NCA's. The state reached
/// there is recorded per channel, and every later step — Drift, regrowth, or a
/// Growth set beyond it — is confined to that range plus [`DRIFT_MARGIN`]
/// (soft, so the sound keeps moving inside it; see [`Nca::confine`]). That is
/// still a pure function of the state, so determinism holds.
pub struct Grower {
    /// The automaton being grown.
    nca: Nca,
    /// Trajectory the cache belongs to; `None` until the first target.
    key: Option<TrajectoryKey>,
    /// Step count being grown towards.
    target: u32,
    /// Cached states by step count (never step 0: the seed state is cheap to
    /// recompute).
    checkpoints: BTreeMap<u32, NcaCheckpoint>,
    /// Bytes held by `checkpoints`, checked against the budget.
    checkpoint_bytes: usize,
    /// The spectrogram returned by [`Grower::grow`], kept to reuse its memory.
    spec: Spectrogram,
    /// The state's range at the model's recommended growth step on this
    /// trajectory. Models are trained for that many steps; stepped thousands
    /// of times more (an hour of Drift) their state ran away to extreme
    /// log-mel values and the sound decayed into limiter-bound noise, so
    /// every later step is confined to it ([`Nca::confine`]). `Some` exactly
    /// while the state is at or past that step.
    envelope: Option<StateEnvelope>,
    /// Whether later steps are confined; off only to reproduce the unbounded
    /// runaway (`grown soak --bound off`, tests).
    bounded: bool,
}

impl Grower {
    /// Wraps an NCA; nothing is grown until a target is set.
    pub fn new(nca: Nca) -> Self {
        Self {
            nca,
            key: None,
            target: 0,
            checkpoints: BTreeMap::new(),
            checkpoint_bytes: 0,
            spec: Spectrogram::default(),
            envelope: None,
            bounded: true,
        }
    }

    /// Switches the confinement of steps past the model's recommended growth
    /// off (or back on), to measure what it prevents. Restarts the trajectory.
    pub fn set_bounded(&mut self, bounded: bool) {
        self.bounded = bounded;
        self.key = None;
    }

    /// The step from which later steps are confined: the model's recommended growth.
    fn confine_from(&self) -> u32 {
        self.nca.info().growth_steps.max(1)
    }

    /// Keeps the envelope in step with a state that was just reset or
    /// restored: before the recording step there is none (it is recorded on
    /// the way, from the state the trajectory reaches there); at or past it
    /// the envelope recorded on the way up still holds, because a state past
    /// it can only be restored from above it.
    fn envelope_after_jump(&mut self) {
        if self.nca.steps() < self.confine_from() {
            self.envelope = None;
        }
    }

    /// The automaton (for its model info, step count and state).
    pub fn nca(&self) -> &Nca {
        &self.nca
    }

    /// Gives the automaton back.
    pub fn into_nca(self) -> Nca {
        self.nca
    }

    /// Number of cached checkpoints (for tests and diagnostics).
    pub fn checkpoint_count(&self) -> usize {
        self.checkpoints.len()
    }

    /// The step count currently grown towards.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// True when the automaton sits at the target.
    pub fn done(&self) -> bool {
        self.key.is_some() && self.nca.steps() == self.target
    }

    /// Sets what to grow. A new trajectory restarts from the seed state; a
    /// lower step count restores the nearest checkpoint at or below it (or
    /// the seed state); a higher one continues from the current state.
    pub fn set_target(
        &mut self,
        seed: u32,
        growth: u32,
        frames: usize,
        fire_rate: f32,
        mutation: f32,
    ) {
        let key = TrajectoryKey {
            seed,
            frames: frames.max(1),
            fire_rate: fire_rate.to_bits(),
            mutation: mutation.to_bits(),
        };
        if self.key != Some(key) {
            self.key = Some(key);
            self.checkpoints.clear();
            self.checkpoint_bytes = 0;
            self.nca.reset(u64::from(seed), key.frames);
            self.envelope = None;
        }
        self.target = growth;
        if growth < self.nca.steps() {
            match self.checkpoints.range(..=growth).next_back() {
                Some((_, c)) => self.nca.restore(c),
                None => self.nca.reset(u64::from(seed), key.frames),
            }
            self.envelope_after_jump();
        }
    }

    /// Applies up to `max_steps` steps towards the target; returns how many
    /// were applied. On error the state stays at the last good step.
    pub fn advance(&mut self, max_steps: u32) -> Result<u32, ModelError> {
        let Some(key) = self.key else {
            return Ok(0);
        };
        let fire = f32::from_bits(key.fire_rate);
        let mutation = f32::from_bits(key.mutation);
        let confine_from = self.confine_from();
        let mut applied = 0;
        while applied < max_steps && self.nca.steps() < self.target {
            let before = self.nca.steps();
            let mut want = (self.target - before).min(max_steps - applied);
            // Stop exactly at the recording step, and confine after every
            // single step past it (an unrolled call would skip confinement
            // between its steps, and the result would depend on batching).
            if before < confine_from {
                want = want.min(confine_from - before);
            } else if self.bounded {
                want = 1;
            }
            let n = self.nca.step_n(want, fire, mutation)?;
            applied += n.max(1);
            let now = self.nca.steps();
            if now == confine_from {
                self.envelope = Some(self.nca.envelope(DRIFT_MARGIN));
            } else if now > confine_from && self.bounded {
                if let Some(env) = &self.envelope {
                    self.nca.confine(env);
                }
            }
            if now / CHECKPOINT_EVERY > before / CHECKPOINT_EVERY {
                self.store_checkpoint();
            }
        }
        Ok(applied)
    }

    /// Caches the current state if the budget allows.
    fn store_checkpoint(&mut self) {
        let steps = self.nca.steps();
        // Scrubbing only reaches steps up to the Growth maximum: states that
        // Drift grows past it are never restored, and caching them made an
        // hour of drifting fill the whole budget (docs/RELIABILITY.md, soak).
        if steps == 0
            || steps > crate::params::MAX_GROWTH as u32
            || self.checkpoints.contains_key(&steps)
        {
            return;
        }
        let bytes = std::mem::size_of_val(self.nca.state());
        if self.checkpoint_bytes + bytes > CHECKPOINT_BUDGET_BYTES {
            return;
        }
        self.checkpoints.insert(steps, self.nca.snapshot());
        self.checkpoint_bytes += bytes;
    }

    /// Grows to `growth` steps and returns the spectrogram (blocking).
    pub fn grow(
        &mut self,
        seed: u32,
        growth: u32,
        frames: usize,
        fire_rate: f32,
        mutation: f32,
    ) -> Result<&Spectrogram, ModelError> {
        self.set_target(seed, growth, frames, fire_rate, mutation);
        while !self.done() {
            self.advance(u32::MAX)?;
        }
        Ok(self.spectrogram())
    }

    /// The current state as a spectrogram.
    pub fn spectrogram(&mut self) -> &Spectrogram {
        self.nca.spectrogram_into(&mut self.spec);
        &self.spec
    }

    /// Erases a region (cell ranges as in [`Nca::damage`]). The damaged state
    /// becomes the trajectory from here on: later checkpoints are dropped and
    /// the damaged state is cached at the current step, so growing forward
    /// regrows the wound while scrubbing back before this step undoes it.
    pub fn damage(&mut self, mel0: usize, mel1: usize, f0: usize, f1: usize) {
        self.nca.damage(mel0, mel1, f0, f1);
        self.branch_here();
    }

    /// Erases one elliptical brush dab (cells whose centre lies inside it, all
    /// channels), branching the trajectory like [`Grower::damage`]. Time wraps.
    pub fn erase(&mut self, stroke: &BrushStroke) {
        let n_mels = self.nca.info().mel.n_mels;
        let frames = self.nca.frames();
        let ok = [stroke.mel, stroke.t, stroke.radius_mel, stroke.radius_t]
            .iter()
            .all(|v| v.is_finite());
        if n_mels == 0 || frames == 0 || !ok {
            return;
        }
        let (nm, nf) = (n_mels as f32, frames as f32);
        // At least half a cell, so the smallest brush still erases the cell under it.
        let rm = (stroke.radius_mel.clamp(0.0, 1.0) * nm).max(0.5);
        let rt = (stroke.radius_t.clamp(0.0, 1.0) * nf).max(0.5);
        let cm = stroke.mel.clamp(0.0, 1.0) * nm;
        let ct = stroke.t.rem_euclid(1.0) * nf;
        let m0 = (cm - rm).floor().max(0.0) as usize;
        let m1 = ((cm + rm).ceil().max(0.0) as usize).min(n_mels);
        for mel in m0..m1 {
            let dy = (mel as f32 + 0.5 - cm) / rm;
            if dy.abs() >= 1.0 {
                continue;
            }
            let half = rt * (1.0 - dy * dy).sqrt();
            // Frames whose centre (f + 0.5) lies within ct ± half.
            let (a, b) = ((ct - half - 0.5).ceil(), (ct + half - 0.5).floor() + 1.0);
            if b <= a {
                continue;
            }
            if b - a >= nf {
                self.nca.damage(mel, mel + 1, 0, frames);
                continue;
            }
            // a and b are whole numbers, so rem_euclid is exact.
            let (f0, f1) = (a.rem_euclid(nf) as usize, b.rem_euclid(nf) as usize);
            self.nca.damage(mel, mel + 1, f0, f1);
        }
        self.branch_here();
    }

    /// Applies every brush dab waiting in the queue; returns how many.
    pub fn apply_strokes(&mut self, strokes: &mut BrushConsumer) -> usize {
        let mut n = 0;
        while let Ok(stroke) = strokes.pop() {
            self.erase(&stroke);
            n += 1;
        }
        n
    }

    /// Makes the (just damaged) current state the trajectory from here on.
    fn branch_here(&mut self) {
        let steps = self.nca.steps();
        let dropped: Vec<u32> = self.checkpoints.range(steps..).map(|(s, _)| *s).collect();
        for s in dropped {
            if let Some(c) = self.checkpoints.remove(&s) {
                self.checkpoint_bytes -= std::mem::size_of_val(c.state.as_slice());
            }
        }
        if steps > 0 {
            self.store_checkpoint();
        }
    }

    /// Damage given as fractions `0..1` of the mel and time axes.
    pub fn damage_fraction(&mut self, mel0: f32, mel1: f32, t0: f32, t1: f32) {
        let n_mels = self.nca.info().mel.n_mels;
        let frames = self.nca.frames();
        let cell = |x: f32, n: usize| ((x.clamp(0.0, 1.0) * n as f32).round() as usize).min(n);
        let (m0, m1) = (cell(mel0.min(mel1), n_mels), cell(mel0.max(mel1), n_mels));
        // Time may wrap (t0 > t1 erases across the loop point).
        let (f0, f1) = (cell(t0, frames), cell(t1, frames));
        self.damage(m0, m1, f0, f1);
    }
}

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
    /// 0 = built-in inverter, 1 = BigVGAN (when a vocoder file is loaded).
    pub vocoder: AtomicU8,
}

impl Default for EngineControls {
    fn default() -> Self {
        Self {
            growth: AtomicU32::new(32),
            seed: AtomicU32::new(1),
            drift: AtomicF32::new(0.0),
            fire_rate: AtomicF32::new(0.5),
            mutation: AtomicF32::new(0.0),
            damage: AtomicF32::new(0.0),
            length_s: AtomicF32::new(3.0),
            vocoder: AtomicU8::new(0),
        }
    }
}

/// What the engine reports, for the editor and the plugin.
#[derive(Default)]
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
    pub model_info: Mutex<Option<crate::model::ModelInfo>>,
    /// Last error, empty when everything works. The engine keeps playing the
    /// previous sound when something fails.
    pub error: Mutex<String>,
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
}

/// One dab of the editor's damage brush: an ellipse in fractions of the
/// spectrogram, so it does not depend on the grid size the engine has now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BrushStroke {
    /// Centre on the mel axis, 0 (lowest band) ..1 (highest).
    pub mel: f32,
    /// Centre on the time axis, 0..1 of the sound (wraps: time is circular).
    pub t: f32,
    /// Half-height as a fraction of the mel axis.
    pub radius_mel: f32,
    /// Half-width as a fraction of the time axis.
    pub radius_t: f32,
}

/// Editor end of the brush queue.
pub type BrushProducer = rtrb::Producer<BrushStroke>;
/// Engine end of the brush queue.
pub type BrushConsumer = rtrb::Consumer<BrushStroke>;

/// Dabs the brush queue holds; a drag makes one per editor frame, and the
/// engine drains the queue at least every [`IDLE_WAIT`], so this never fills
/// in practice (a full queue drops dabs, it never blocks the editor).
pub const BRUSH_QUEUE: usize = 256;

/// The lock-free (SPSC ring) queue from the editor's damage brush to the engine.
pub fn brush_queue() -> (BrushProducer, BrushConsumer) {
    rtrb::RingBuffer::new(BRUSH_QUEUE)
}

/// The background engine. Dropping it stops the thread.
pub struct Engine {
    /// Command channel to the thread.
    commands: Sender<EngineCommand>,
    /// Set on drop; the thread checks it between steps.
    shutdown: Arc<AtomicBool>,
    /// Ends a step running inside ONNX Runtime on drop, so teardown does not
    /// wait for it (a step of a long sound takes up to ~100 ms here).
    step_cancel: Arc<StepCancel>,
    /// The thread, joined on drop if it exits in time.
    thread: Option<JoinHandle<()>>,
    /// Disconnects when the thread has exited (its sender is dropped), so
    /// drop can wait with a timeout instead of an unbounded join.
    exited: Receiver<()>,
}

/// How long drop waits for the thread before giving up on a clean join.
const JOIN_TIMEOUT: Duration = Duration::from_millis(200);
/// Extra time drop waits when the thread is inside a long call (a vocoder
/// run): the plugin library may be unloaded right after the instance is
/// dropped, and code must not keep running from unmapped memory.
const JOIN_GRACE: Duration = Duration::from_secs(3);

impl Engine {
    /// Starts the engine thread, which loads ONNX Runtime and the model
    /// (`model_path`, or the embedded default) itself so the caller never waits.
    pub fn spawn(
        controls: Arc<EngineControls>,
        status: Arc<EngineStatus>,
        producer: GenerationProducer,
        snapshots: triple_buffer::Input<Spectrogram>,
        model_path: Option<PathBuf>,
    ) -> Self {
        Self::spawn_with_brush(controls, status, producer, snapshots, model_path, None)
    }

    /// [`Engine::spawn`] with the engine end of the editor's damage brush
    /// queue ([`brush_queue`]), drained before every step.
    pub fn spawn_with_brush(
        controls: Arc<EngineControls>,
        status: Arc<EngineStatus>,
        producer: GenerationProducer,
        snapshots: triple_buffer::Input<Spectrogram>,
        model_path: Option<PathBuf>,
        brush: Option<BrushConsumer>,
    ) -> Self {
        let (tx, rx) = crossbeam::channel::unbounded();
        let (exit_tx, exit_rx) = crossbeam::channel::bounded::<()>(0);
        let shutdown = Arc::new(AtomicBool::new(false));
        let flag = shutdown.clone();
        let step_cancel = Arc::new(StepCancel::default());
        let cancel = step_cancel.clone();
        let status2 = status.clone();
        let spawned = std::thread::Builder::new()
            .name("grown-engine".into())
            .spawn(move || {
                let _exit = exit_tx;
                let status3 = status.clone();
                let result = catch_unwind(AssertUnwindSafe(move || {
                    Worker::new(controls, status, producer, snapshots, rx, flag, model_path)
                        .with_brush(brush)
                        .with_step_cancel(cancel)
                        .run();
                }));
                if let Err(p) = result {
                    *status3.error.lock() = format!(
                        "the engine stopped after an internal error: {}",
                        crate::runtime::panic_message(&p)
                    );
                }
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                *status2.error.lock() = format!("could not start the engine thread: {e}");
                None
            }
        };
        Self {
            commands: tx,
            shutdown,
            step_cancel,
            thread,
            exited: exit_rx,
        }
    }

    /// Sender for [`EngineCommand`]s (cloneable, never blocks).
    pub fn commands(&self) -> Sender<EngineCommand> {
        self.commands.clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        self.step_cancel.cancel();
        let Some(thread) = self.thread.take() else {
            return;
        };
        // recv_timeout returns Disconnected as soon as the thread drops its sender.
        let exited = matches!(
            self.exited.recv_timeout(JOIN_TIMEOUT),
            Err(RecvTimeoutError::Disconnected)
        ) || matches!(
            self.exited.recv_timeout(JOIN_GRACE),
            Err(RecvTimeoutError::Disconnected)
        );
        if exited {
            let _ = thread.join();
        }
        // Otherwise the thread is detached; it exits at its next check.
    }
}

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
    vocoder: u8,
}

/// Minimum time between editor snapshots (~30 Hz).
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(33);
/// Time between re-vocodes while drifting.
const DRIFT_VOCODE_INTERVAL: Duration = Duration::from_millis(500);
/// Idle wait per loop iteration (commands wake it earlier).
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// State of the engine thread.
struct Worker {
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
    /// The inverse STFT that plays an `stft-ms` model instead of a vocoder
    /// (None for mel models); its FFT plans are made once, at model load.
    stft: Option<StftMs>,
    /// Right channel reused between `stft-ms` syntheses (`audio` holds the left).
    audio_right: Vec<f32>,
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
    /// Audio buffer reused between vocodes.
    audio: Vec<f32>,
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
    fn new(
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
            stft: None,
            audio_right: Vec::new(),
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
            audio: Vec::new(),
            spare: None,
            step_time: None,
            stuck: false,
            damage_events: 0,
            error_source: None,
            brush: None,
        }
    }

    fn with_brush(mut self, brush: Option<BrushConsumer>) -> Self {
        self.brush = brush;
        self
    }

    fn with_step_cancel(mut self, cancel: Arc<StepCancel>) -> Self {
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

    fn run(mut self) {
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
        match &model.info.stft {
            Some(cfg) => {
                let comp = Compression {
                    scale: model.info.spec_scale,
                    offset: model.info.spec_offset,
                };
                self.stft = Some(StftMs::new(cfg.clone(), comp));
                self.inverter = None;
            }
            None => {
                self.stft = None;
                self.inverter = Some(Inverter::new(model.info.mel.clone()));
            }
        }
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
            fire_rate: sanitize(c.fire_rate.load(Ordering::Relaxed), 0.0, 1.0),
            mutation: sanitize(c.mutation.load(Ordering::Relaxed), 0.0, 10.0),
            damage: sanitize(c.damage.load(Ordering::Relaxed), 0.0, 1.0),
            vocoder: c.vocoder.load(Ordering::Relaxed),
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
        grower.set_target(
            now.seed,
            now.growth.saturating_add(self.extra),
            now.frames,
            now.fire_rate,
            now.mutation,
        );
        self.snapshot_stale = true;
        let damage_changed = prev.is_some_and(|p| (p.damage - now.damage).abs() > 1e-4);
        if damage_changed && now.damage > 0.0 {
            self.damage_control(now.seed, now.damage);
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
        if let Some(a) = self.applied {
            let key_growth = a.growth.saturating_add(self.extra);
            g.set_target(a.seed, key_growth, a.frames, a.fire_rate, a.mutation);
        }
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
            self.status
                .step
                .store(grower.nca().steps(), Ordering::Relaxed);
            self.snapshot_stale = true;
            self.publish_snapshot(false);
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
        let drift = sanitize(self.controls.drift.load(Ordering::Relaxed), 0.0, 1000.0);
        if drift > 0.0 && !self.stuck {
            self.drift_credit = (self.drift_credit + dt * f64::from(drift)).min(4.0);
            if self.drift_credit >= 1.0 {
                let whole = self.drift_credit.floor();
                self.drift_credit -= whole;
                self.extra = self.extra.saturating_add(whole as u32);
                if let (Some(a), Some(g)) = (self.applied, self.grower.as_mut()) {
                    g.set_target(
                        a.seed,
                        a.growth.saturating_add(self.extra),
                        a.frames,
                        a.fire_rate,
                        a.mutation,
                    );
                }
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

    /// Vocodes the current state and publishes it as a generation.
    fn vocode(&mut self) -> Vocoded {
        let Some(mut slot) = self.spare.take().or_else(|| self.producer.acquire()) else {
            return Vocoded::NoBuffer;
        };
        let Some(grower) = self.grower.as_mut() else {
            self.spare = Some(slot);
            return Vocoded::Failed;
        };
        if let Some(stft) = self.stft.as_mut() {
            return match Self::synthesize_stereo(
                stft,
                grower,
                slot,
                &mut self.audio,
                &mut self.audio_right,
                &mut self.generation,
                &mut self.producer,
                &self.status,
            ) {
                Ok(step) => {
                    self.vocoded_step = Some(step);
                    self.last_vocode = Instant::now();
                    self.clear_error(ErrorSource::Vocoding);
                    Vocoded::Published
                }
                Err((slot, None)) => {
                    self.spare = slot;
                    Vocoded::NoBuffer
                }
                Err((slot, Some(e))) => {
                    self.spare = slot;
                    self.vocoded_step = Some(grower_steps(&self.grower));
                    self.last_vocode = Instant::now();
                    if !self.stopping() {
                        self.set_error(ErrorSource::Vocoding, e);
                    }
                    Vocoded::Failed
                }
            };
        }
        let want_bigvgan = self.controls.vocoder.load(Ordering::Relaxed) == 1;
        let vocoder: &mut dyn Vocoder = match (&mut self.bigvgan, &mut self.inverter) {
            (Some(b), _) if want_bigvgan => b,
            (_, Some(i)) => i,
            _ => {
                self.spare = Some(slot);
                return Vocoded::Failed;
            }
        };
        let sample_rate = vocoder.mel_config().sample_rate;
        let step = grower.nca().steps();
        let spec = grower.spectrogram();
        let t0 = Instant::now();
        let result = vocoder.synthesize(spec, &mut self.audio);
        let took = t0.elapsed().as_secs_f64();
        self.last_vocode = Instant::now();
        if let Err(e) = result {
            self.spare = Some(slot);
            self.vocoded_step = Some(step);
            if !self.stopping() {
                self.set_error(ErrorSource::Vocoding, format!("vocoder failed: {e}"));
            }
            return Vocoded::Failed;
        }
        let seconds = self.audio.len() as f64 / f64::from(sample_rate.max(1));
        if seconds > 0.0 {
            self.status
                .vocoder_rtf
                .store((took / seconds) as f32, Ordering::Relaxed);
        }
        slot.fill_from(&self.audio);
        slot.sample_rate = sample_rate;
        self.generation += 1;
        slot.id = self.generation;
        slot.looped = true;
        match self.producer.publish(slot) {
            Ok(()) => {
                self.status
                    .generation
                    .store(self.generation, Ordering::Release);
                self.vocoded_step = Some(step);
                if want_bigvgan && self.bigvgan.is_none() {
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

/// The editor snapshot of an `stft-ms` model: its four visible channels
/// stacked as rows (`n_mels` = 4 · bins, raw state values, M re, M im, S re,
/// S im), which is what [`crate::stft_ms::stft_ms_picture`] draws (with
/// `bins = n_mels / 4`). There is no log-mel channel to show for such a model.
/// Allocates only when the size grows.
pub fn stft_ms_snapshot(nca: &Nca, out: &mut Spectrogram) {
    let info = nca.info();
    let frames = nca.frames();
    let plane = info.mel.n_mels * frames;
    let from = info.spec_channel * plane;
    let visible = nca
        .state()
        .get(from..from + STFT_VISIBLE * plane)
        .unwrap_or(&[]);
    out.n_mels = STFT_VISIBLE * info.mel.n_mels;
    out.frames = frames;
    out.data.clear();
    out.data.extend_from_slice(visible);
    out.data.resize(out.n_mels * frames, 0.0);
}

/// Steps of the grower, if any (for bookkeeping after a borrow ended).
fn grower_steps(g: &Option<Grower>) -> u32 {
    g.as_ref().map_or(0, |g| g.nca().steps())
}

impl Worker {
    /// Plays an `stft-ms` state through the exact inverse STFT (no vocoder) and
    /// publishes it as a stereo generation. Returns the step it was made at, or
    /// the unused slot and an error (None: the queue was full).
    #[allow(clippy::too_many_arguments)]
    fn synthesize_stereo(
        stft: &mut StftMs,
        grower: &mut Grower,
        mut slot: Box<Generation>,
        left: &mut Vec<f32>,
        right: &mut Vec<f32>,
        generation: &mut u64,
        producer: &mut GenerationProducer,
        status: &EngineStatus,
    ) -> Result<u32, (Option<Box<Generation>>, Option<String>)> {
        let nca = grower.nca();
        let step = nca.steps();
        let info = nca.info();
        let frames = nca.frames();
        let plane = info.mel.n_mels * frames;
        let state = nca.state();
        let from = info.spec_channel * plane;
        let visible = state.get(from..from + STFT_VISIBLE * plane).unwrap_or(&[]);
        let t0 = Instant::now();
        if let Err(e) = stft.synthesize(visible, frames, left, right) {
            return Err((Some(slot), Some(format!("inverse STFT failed: {e}"))));
        }
        let sample_rate = stft.config().sample_rate;
        let seconds = left.len() as f64 / f64::from(sample_rate.max(1));
        if seconds > 0.0 {
            status.vocoder_rtf.store(
                (t0.elapsed().as_secs_f64() / seconds) as f32,
                Ordering::Relaxed,
            );
        }
        slot.fill_stereo_from(left, right);
        slot.sample_rate = sample_rate;
        *generation += 1;
        slot.id = *generation;
        slot.looped = true;
        match producer.publish(slot) {
            Ok(()) => {
                status.generation.store(*generation, Ordering::Release);
                Ok(step)
            }
            Err(slot) => Err((Some(slot), None)),
        }
    }
}

/// Clamps a control value; NaN becomes the lower bound.
fn sanitize(v: f32, lo: f32, hi: f32) -> f32 {
    if v.is_nan() {
        lo
    } else {
        v.clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_onnx::{nca_model, Rule};

    fn grower() -> Grower {
        let m = NcaModel::from_bytes(&nca_model(4, 8, Rule::Conv), "test".into()).unwrap();
        Grower::new(Nca::new(m))
    }

    fn bits(s: &Spectrogram) -> Vec<u32> {
        s.data.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn frames_for_length() {
        let mel = MelConfig::bigvgan_22k();
        assert_eq!(frames_for(1.0, &mel), 86);
        assert_eq!(frames_for(0.0, &mel), MIN_FRAMES);
        assert_eq!(frames_for(1e9, &mel), MAX_FRAMES);
        assert_eq!(frames_for(f32::NAN, &mel), MIN_FRAMES);
    }

    #[test]
    fn grow_is_deterministic_and_seed_dependent() {
        let mut a = grower();
        let mut b = grower();
        let sa = bits(a.grow(7, 40, 24, 0.5, 0.01).unwrap());
        let sb = bits(b.grow(7, 40, 24, 0.5, 0.01).unwrap());
        assert_eq!(sa, sb);
        let sc = bits(b.grow(8, 40, 24, 0.5, 0.01).unwrap());
        assert_ne!(sa, sc);
    }

    #[test]
    fn no_checkpoints_past_the_growth_maximum() {
        let mut g = grower();
        let max = crate::params::MAX_GROWTH as u32;
        g.grow(1, max + 40, 8, 0.5, 0.0).unwrap();
        assert_eq!(g.checkpoint_count(), (max / CHECKPOINT_EVERY) as usize);
    }

    #[test]
    fn backward_scrub_equals_fresh_growth() {
        let mut g = grower();
        g.grow(3, 70, 20, 0.5, 0.02).unwrap();
        assert_eq!(g.checkpoint_count(), 4); // 16, 32, 48, 64
        for target in [50, 33, 32, 5, 0, 64] {
            let scrubbed = bits(g.grow(3, target, 20, 0.5, 0.02).unwrap());
            let fresh = bits(grower().grow(3, target, 20, 0.5, 0.02).unwrap());
            assert_eq!(scrubbed, fresh, "target {target}");
            assert_eq!(g.nca().steps(), target);
        }
        // Backward to 50 restored checkpoint 48 and stepped 2, not 50.
        g.set_target(3, 50, 20, 0.5, 0.02);
        assert_eq!(g.nca().steps(), 48);
    }

    #[test]
    fn changing_trajectory_parameters_regrows() {
        let mut g = grower();
        let base = bits(g.grow(1, 20, 16, 0.5, 0.0).unwrap());
        let other_rate = bits(g.grow(1, 20, 16, 0.7, 0.0).unwrap());
        assert_ne!(base, other_rate);
        let again = bits(g.grow(1, 20, 16, 0.5, 0.0).unwrap());
        assert_eq!(base, again);
        let longer = g.grow(1, 20, 32, 0.5, 0.0).unwrap();
        assert_eq!(longer.frames, 32);
    }

    #[test]
    fn damage_branches_history() {
        let mut g = grower();
        g.grow(2, 40, 16, 0.5, 0.0).unwrap();
        g.damage_fraction(0.0, 1.0, 0.25, 0.5);
        let damaged = g.spectrogram().clone();
        // Frames 4..8 of the visible channel are zero → offset value.
        assert_eq!(damaged.at(3, 5), -5.0);
        // Regrowing from the damage continues from the damaged state...
        let regrown = bits(g.grow(2, 60, 16, 0.5, 0.0).unwrap());
        let undamaged = bits(grower().grow(2, 60, 16, 0.5, 0.0).unwrap());
        assert_ne!(regrown, undamaged);
        // ...and scrubbing back before it undoes it.
        let before = bits(g.grow(2, 30, 16, 0.5, 0.0).unwrap());
        assert_eq!(before, bits(grower().grow(2, 30, 16, 0.5, 0.0).unwrap()));
    }

    /// The largest distance of any state value outside `env`'s bounds.
    fn excess(nca: &Nca, env: &StateEnvelope) -> f32 {
        let cells = nca.state().len() / env.channels();
        nca.state()
            .chunks_exact(cells)
            .enumerate()
            .flat_map(|(ch, plane)| {
                let (lo, hi) = env.bounds(ch);
                plane.iter().map(move |v| (lo - v).max(v - hi).max(0.0))
            })
            .fold(0.0, f32::max)
    }

    #[test]
    fn drift_past_the_trained_growth_stays_in_range_and_keeps_changing() {
        let (seed, frames, mutation) = (5, 16, 0.02);
        let trained = grower().nca().info().growth_steps;
        let far = trained + 600;
        let mut bounded = grower();
        bounded.grow(seed, trained, frames, 0.5, mutation).unwrap();
        let env = bounded.nca().envelope(DRIFT_MARGIN);
        // Unconfined, this model runs away (so this test can fail)...
        let mut free = grower();
        free.set_bounded(false);
        free.grow(seed, far, frames, 0.5, mutation).unwrap();
        let runaway = excess(free.nca(), &env);
        assert!(
            runaway > 10.0,
            "the test model no longer runs away: {runaway}"
        );
        // ...confined, it stays in the trained range and keeps changing (the
        // floor is applied in state units: allow the mapping's rounding).
        let floor = crate::mel::LOG_FLOOR.ln() - 1e-4;
        let mut previous = bits(bounded.spectrogram());
        for target in (trained + 10..=far).step_by(10) {
            let spec = bounded.grow(seed, target, frames, 0.5, mutation).unwrap();
            assert!(
                spec.data.iter().all(|v| *v >= floor),
                "below ln(1e-5) at {target}"
            );
            let now = bits(spec);
            assert_ne!(now, previous, "the sound froze at step {target}");
            previous = now;
            let e = excess(bounded.nca(), &env);
            assert!(e < 1e-5, "left the trained range by {e} at step {target}");
        }
        // The first `trained` steps are the plain NCA's, bit for bit...
        for target in [1, trained - 1, trained] {
            let plain = bits(free.grow(seed, target, frames, 0.5, mutation).unwrap());
            let kept = bits(bounded.grow(seed, target, frames, 0.5, mutation).unwrap());
            assert_eq!(plain, kept, "step {target}");
        }
        // ...and confinement is deterministic, however the steps are reached.
        let direct = bits(grower().grow(seed, far, frames, 0.5, mutation).unwrap());
        let scrubbed = bits(bounded.grow(seed, far, frames, 0.5, mutation).unwrap());
        assert_eq!(direct, scrubbed);
        assert_eq!(previous, direct);
    }

    /// A project whose vocoder file is refused but which still selects
    /// BigVGAN must keep showing the refusal, not a generic "no vocoder file".
    #[test]
    fn a_refused_vocoder_stays_the_status_while_bigvgan_is_selected() {
        let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/testdata/tiny_vocoder.onnx");
        let mut bytes = std::fs::read(tiny).unwrap();
        // Same-length edit of the metadata JSON: fmax 8000 → 7000.
        let needle = b"\"fmax\":8000.0";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        bytes[at + 7] = b'7';
        let path = std::env::temp_dir().join(format!("grown-refused-{}.onnx", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();

        let controls = Arc::new(EngineControls::default());
        controls.growth.store(4, Ordering::Relaxed);
        controls.length_s.store(0.2, Ordering::Relaxed);
        controls.vocoder.store(1, Ordering::Relaxed);
        let status = Arc::new(EngineStatus::default());
        let (producer, mut consumer) = crate::queue::generation_queue(4, 22050);
        let (input, _output) = triple_buffer::triple_buffer(&Spectrogram::default());
        let engine = Engine::spawn(controls.clone(), status.clone(), producer, input, None);
        let commands = engine.commands();
        commands
            .send(EngineCommand::LoadVocoder(Some(path.clone())))
            .unwrap();
        let wait_for = |id: u64, consumer: &mut crate::queue::GenerationConsumer| {
            let start = Instant::now();
            while status.generation.load(Ordering::Acquire) < id {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "no generation {id}"
                );
                while let Some(g) = consumer.receive() {
                    consumer.recycle(g);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        // Two generations played with the built-in vocoder: the status
        // was written after each.
        wait_for(1, &mut consumer);
        controls.seed.store(2, Ordering::Relaxed);
        wait_for(2, &mut consumer);
        let shown = status.error.lock().clone();
        assert!(
            shown.contains("refused vocoder") && shown.contains("fmax 8000 vs 7000"),
            "{shown:?}"
        );
        // Unloading the file retires the refusal; the choice is still explained.
        commands.send(EngineCommand::LoadVocoder(None)).unwrap();
        wait_for(3, &mut consumer);
        let shown = status.error.lock().clone();
        assert!(shown.contains("no vocoder file is loaded"), "{shown:?}");
        drop(engine);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn nan_model_reports_error() {
        let m = NcaModel::from_bytes(&nca_model(4, 8, Rule::Poison), "poison".into()).unwrap();
        let mut g = Grower::new(Nca::new(m));
        let e = g.grow(1, 5, 16, 1.0, 0.0).unwrap_err();
        assert!(e.to_string().contains("kept the previous state"), "{e}");
        assert_eq!(g.nca().steps(), 0);
    }
}
