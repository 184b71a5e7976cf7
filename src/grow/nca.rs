//! The neural cellular automaton: a state tensor `[C][n_mels][frames]` and one
//! ONNX model call per step.
//!
//! All randomness is counter-based ([`crate::rng`]): the seed state, the
//! per-step fire masks and the mutation noise are pure functions of
//! `(seed, step, cell)`. The state after `n` steps therefore depends only on
//! the seed, the step count, the length and the fire rate / mutation used, so a
//! checkpoint is just a copy of the state and its step count, and any two
//! instances given the same inputs produce bit-identical output (on CPU).

use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, SessionInputValue};
use ort::value::{Tensor, TensorRef};
use ort::AsPointer;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dsp::mel::Spectrogram;
use crate::grow::bank;
use crate::grow::model::{ModelError, ModelInfo, NcaModel};
use crate::rng;

/// A saved NCA state, to jump back to without re-growing from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct NcaCheckpoint {
    /// Steps applied to reach this state; masks of later steps are derived
    /// from it, so no generator state needs saving.
    pub steps: u32,
    /// Seed of the trajectory (restoring also restores the seed).
    pub seed: u64,
    /// Length in frames; the state's size depends on it.
    pub frames: usize,
    /// The state tensor `[C][n_mels][frames]`.
    pub state: Vec<f32>,
}

/// Per-channel range of a state, and the soft bound [`Nca::confine`] keeps a
/// state inside. Taken from the state at the model's recommended growth step
/// (the range it was trained to produce), so a sound that keeps stepping far
/// past that point stays a sound the model knows instead of running away.
#[derive(Clone, Debug, PartialEq)]
pub struct StateEnvelope {
    /// Per channel: values at or above this are left alone from below.
    lo: Vec<f32>,
    /// Per channel: values at or below this are left alone from above.
    hi: Vec<f32>,
    /// Per channel: width of the soft band outside `lo..=hi`; values beyond an
    /// edge are compressed into it (monotonically, so neighbouring cells stay
    /// distinct and the sound keeps moving) and can never leave it.
    knee: Vec<f32>,
    /// Mel models only (else empty): per band of the visible channel, the log
    /// of its RMS magnitude at the recorded step. Every later step shifts each
    /// band back to it, so a sound drifting far past its training keeps its
    /// level and spectral balance while its pattern moves, instead of swelling
    /// into a loud checkerboard (strings: +15 dB by Growth 1024 without it,
    /// within 2 dB with it).
    band_level: Vec<f32>,
}

impl StateEnvelope {
    /// Narrowest soft band, for a channel whose recorded range is (nearly)
    /// a single value: it keeps the tanh argument finite.
    const MIN_KNEE: f32 = 1e-3;

    /// The outermost values channel `ch` can take after confinement
    /// (before the visible channel's contract floor).
    pub fn bounds(&self, ch: usize) -> (f32, f32) {
        (self.lo[ch] - self.knee[ch], self.hi[ch] + self.knee[ch])
    }

    /// Number of channels covered.
    pub fn channels(&self) -> usize {
        self.lo.len()
    }
}

/// A running NCA: the model plus its state and reusable buffers.
pub struct Nca {
    /// The model; owns the ONNX Runtime session.
    model: NcaModel,
    /// Seed of the current trajectory.
    seed: u64,
    /// Current length in frames.
    frames: usize,
    /// Steps applied since the seed state.
    steps: u32,
    /// State `[C][n_mels][frames]`, the model's `state` input (viewed, not copied).
    state: Vec<f32>,
    /// Fire masks `[unroll][n_mels][frames]`, the model's `update_mask` input;
    /// kept between steps so stepping never allocates.
    mask: Vec<f32>,
    /// Run options holding the preallocated `next_state` output for the current
    /// length, so ONNX Runtime writes into one buffer for every step. Built on
    /// the first step after a length change.
    run: Option<Run>,
    /// Lets another thread stop a running step (instance teardown).
    cancel: Option<Arc<StepCancel>>,
    /// Position of `state` among the session's inputs (inputs are passed
    /// positionally to avoid building a name map per step).
    state_input: usize,
}

impl Nca {
    /// Wraps a model; the state starts as seed 0 at the model's training length.
    pub fn new(model: NcaModel) -> Self {
        let state_input = model
            .session
            .inputs()
            .iter()
            .position(|i| i.name() == "state")
            .unwrap_or(0);
        let frames = model.info.train_frames.max(1);
        let mut nca = Self {
            model,
            seed: 0,
            frames: 0,
            steps: 0,
            state: Vec::new(),
            mask: Vec::new(),
            run: None,
            cancel: None,
            state_input,
        };
        nca.reset(0, frames);
        nca
    }

    /// Lets `cancel` stop this automaton's steps from another thread: once
    /// [`StepCancel::cancel`] is called, a running step ends with an error at
    /// ONNX Runtime's next node and every later step fails at once.
    pub fn set_cancel(&mut self, cancel: Arc<StepCancel>) {
        self.run = None;
        self.cancel = Some(cancel);
    }

    /// The model's metadata.
    pub fn info(&self) -> &ModelInfo {
        &self.model.info
    }

    /// The model (source, provider) for status display.
    pub fn model(&self) -> &NcaModel {
        &self.model
    }

    /// Gives the model back (e.g. to rebuild with another length policy).
    pub fn into_model(self) -> NcaModel {
        self.model
    }

    /// Steps applied since the seed state.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Seed of the current trajectory.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current length in frames.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The raw state `[C][n_mels][frames]` (for tests and diagnostics).
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// Cells per channel.
    fn cells(&self) -> usize {
        self.model.info.mel.n_mels * self.frames
    }

    /// Starts a new trajectory: the seed state for `seed` at `frames` frames
    /// (at least 1). Allocates only when the length grows.
    pub fn reset(&mut self, seed: u64, frames: usize) {
        let frames = frames.max(1);
        let info = &self.model.info;
        if frames != self.frames {
            self.frames = frames;
            self.run = None;
            let cells = info.mel.n_mels * frames;
            self.state.resize(info.channels * cells, 0.0);
            self.mask.resize(info.unroll * cells, 0.0);
        }
        self.seed = seed;
        self.steps = 0;
        let std = info.seed_std;
        let n_mels = info.mel.n_mels;
        let cells = n_mels * frames;
        if let Some(bank) = &info.seed_bank {
            // Excerpt seed: the visible channel starts as a passage of the
            // recording; the noise below perturbs it like every other cell.
            let span = bank::start_span(bank.frames, frames);
            let start = (rng::uniform(seed, rng::EXCERPT_STREAM, 0) * span as f32) as usize;
            let visible = info.spec_channel * cells;
            let rows = info.visible_channels() * n_mels;
            self.state.fill(0.0);
            bank.passage_into(
                start.min(span - 1),
                rows,
                &mut self.state[visible..visible + rows * frames],
            );
            for (i, v) in self.state.iter_mut().enumerate() {
                *v += rng::normal(seed, 0, i as u64) * std;
            }
        } else {
            for (i, v) in self.state.iter_mut().enumerate() {
                *v = rng::normal(seed, 0, i as u64) * std;
            }
        }
    }

    /// Applies one NCA step: each cell updates with probability `fire_rate`
    /// (mask drawn from stream `1 + step`), then hidden channels get normal
    /// noise of standard deviation `mutation`. On error (the model failed or
    /// produced NaN/Inf) the state is left as it was.
    pub fn step(&mut self, fire_rate: f32, mutation: f32) -> Result<(), ModelError> {
        self.step_n(1, fire_rate, mutation).map(|_| ())
    }

    /// Applies up to `n` steps in one model call when the model is unrolled
    /// (`grown.unroll` K > 1); returns how many were applied (≥ 1 when `n` ≥ 1).
    /// Mutation is per step, so with mutation > 0 one step is applied per call.
    /// The result is identical to calling [`Nca::step`] that many times.
    pub fn step_n(&mut self, n: u32, fire_rate: f32, mutation: f32) -> Result<u32, ModelError> {
        if n == 0 {
            return Ok(0);
        }
        let info = &self.model.info;
        let k = info.unroll as u32;
        let apply = if mutation > 0.0 { 1 } else { n.min(k) };
        let cells = self.cells();
        // A mask row of zeros leaves every cell unchanged (contract), so an
        // unrolled model can apply fewer than K steps.
        for (j, row) in self.mask.chunks_exact_mut(cells).enumerate() {
            if (j as u32) < apply {
                let stream = 1 + u64::from(self.steps) + j as u64;
                for (c, m) in row.iter_mut().enumerate() {
                    *m = if rng::uniform(self.seed, stream, c as u64) < fire_rate {
                        1.0
                    } else {
                        0.0
                    };
                }
            } else {
                row.fill(0.0);
            }
        }
        self.run_model()?;
        if mutation > 0.0 {
            self.mutate(mutation);
        }
        self.steps = self.steps.saturating_add(apply);
        Ok(apply)
    }

    /// Adds mutation noise for the step just applied to every hidden channel.
    fn mutate(&mut self, amount: f32) {
        let cells = self.cells();
        let spec = self.model.info.spec_channel;
        let stream = rng::MUTATION_STREAM + u64::from(self.steps);
        for (ch, plane) in self.state.chunks_exact_mut(cells).enumerate() {
            if ch == spec {
                continue;
            }
            let base = (ch * cells) as u64;
            for (i, v) in plane.iter_mut().enumerate() {
                *v += rng::normal(self.seed, stream, base + i as u64) * amount;
            }
        }
    }

    /// One session run: `state` + `mask` → preallocated output → `state`.
    fn run_model(&mut self) -> Result<(), ModelError> {
        let info = &self.model.info;
        let c = info.channels as i64;
        let m = info.mel.n_mels as i64;
        let f = self.frames as i64;
        let k = info.unroll as i64;
        if self.run.is_none() {
            let out = Tensor::from_array(([1, c, m, f], vec![0.0f32; self.state.len()]))
                .map_err(|e| ModelError::Runtime(format!("allocating the output: {e}")))?;
            let opts = RunOptions::new()
                .map_err(|e| ModelError::Runtime(e.to_string()))?
                .with_outputs(
                    OutputSelector::no_default()
                        .with("next_state")
                        .preallocate("next_state", out),
                );
            self.run = Some(Run::new(opts, self.cancel.clone()));
        }
        let Some(run) = self.run.as_ref().map(|r| &r.options) else {
            return Err(ModelError::Runtime("run options missing".into()));
        };
        let state_in = TensorRef::from_array_view(([1, c, m, f], &self.state[..]))
            .map_err(|e| ModelError::Runtime(e.to_string()))?;
        let mask_in = TensorRef::from_array_view(([k, 1, m, f], &self.mask[..]))
            .map_err(|e| ModelError::Runtime(e.to_string()))?;
        let (a, b): (SessionInputValue<'_>, SessionInputValue<'_>) =
            (state_in.into(), mask_in.into());
        let inputs = if self.state_input == 0 {
            [a, b]
        } else {
            [b, a]
        };
        let outputs = self
            .model
            .session
            .run_with_options(inputs, run)
            .map_err(|e| ModelError::Runtime(format!("step {}: {e}", self.steps)))?;
        let Some(value) = outputs.get("next_state") else {
            return Err(ModelError::Contract(
                "the model returned no `next_state`".into(),
            ));
        };
        let (_, next) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Contract(format!("`next_state`: {e}")))?;
        if next.len() != self.state.len() {
            return Err(ModelError::Contract(format!(
                "`next_state` has {} values, expected {}",
                next.len(),
                self.state.len()
            )));
        }
        if let Some(bad) = next.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::Runtime(format!(
                "the model produced {} at step {} (cell {bad}); kept the previous state",
                next[bad], self.steps
            )));
        }
        self.state.copy_from_slice(next);
        Ok(())
    }

    /// The per-channel range of the current state, with soft bands of
    /// `margin` times each channel's span (at least [`StateEnvelope`]'s
    /// minimum) beyond it.
    pub fn envelope(&self, margin: f32) -> StateEnvelope {
        let cells = self.cells().max(1);
        let channels = self.model.info.channels;
        let mut env = StateEnvelope {
            lo: Vec::with_capacity(channels),
            hi: Vec::with_capacity(channels),
            knee: Vec::with_capacity(channels),
            band_level: Vec::new(),
        };
        if self.model.info.stft.is_none() && self.cells() > 0 {
            env.band_level = (0..self.model.info.mel.n_mels)
                .map(|band| self.band_log_level(band))
                .collect();
        }
        for plane in self.state.chunks_exact(cells) {
            let (lo, hi) = plane
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            // Only finite states are ever stored (run_model refuses others),
            // but an empty plane would leave the fold's infinities.
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 0.0) };
            env.lo.push(lo);
            env.hi.push(hi);
            env.knee
                .push((margin.max(0.0) * (hi - lo)).max(StateEnvelope::MIN_KNEE));
        }
        env
    }

    /// Keeps the state inside `env`: each value outside its channel's
    /// `lo..=hi` is compressed into the soft band beyond that edge
    /// (`edge ± knee · tanh(excess / knee)`: continuous, monotonic, never
    /// past `edge ± knee`); values inside are untouched. For mel models the
    /// visible channel is also held at or above the contract's floor,
    /// `ln(1e-5)` (no analysed sound is quieter), and each of its bands is
    /// first shifted back to its recorded level (see `band_level`). A pure
    /// function of the state, so confined trajectories stay deterministic.
    /// Returns how many values were changed by the range and floor.
    pub fn confine(&mut self, env: &StateEnvelope) -> usize {
        let cells = self.cells();
        if env.channels() != self.model.info.channels || cells == 0 {
            return 0;
        }
        if env.band_level.len() == self.model.info.mel.n_mels {
            let (frames, scale) = (self.frames, self.model.info.spec_scale);
            let from = self.model.info.spec_channel * cells;
            for (band, target) in env.band_level.iter().enumerate() {
                let shift = (target - self.band_log_level(band)) / scale;
                let row = from + band * frames;
                for v in &mut self.state[row..row + frames] {
                    *v += shift;
                }
            }
        }
        let info = &self.model.info;
        // The visible channel's floor in state units (scale is non-zero by contract).
        let floor = (info.stft.is_none()).then(|| {
            let f = (crate::dsp::mel::LOG_FLOOR.ln() - info.spec_offset) / info.spec_scale;
            (info.spec_channel, f, info.spec_scale > 0.0)
        });
        let mut changed = 0;
        for (ch, plane) in self.state.chunks_exact_mut(cells).enumerate() {
            let (lo, hi, k) = (env.lo[ch], env.hi[ch], env.knee[ch]);
            let floor = floor.filter(|f| f.0 == ch);
            for v in plane.iter_mut() {
                let mut x = *v;
                if x > hi {
                    x = hi + k * ((x - hi) / k).tanh();
                } else if x < lo {
                    x = lo - k * ((lo - x) / k).tanh();
                }
                if let Some((_, f, below)) = floor {
                    x = if below { x.max(f) } else { x.min(f) };
                }
                if x.to_bits() != v.to_bits() {
                    *v = x;
                    changed += 1;
                }
            }
        }
        changed
    }

    /// Natural log of the RMS magnitude of one mel band of the visible channel:
    /// the band's level as the vocoder will play it (power, not mean magnitude:
    /// a checkerboard with the same mean magnitude plays louder).
    fn band_log_level(&self, band: usize) -> f32 {
        let info = &self.model.info;
        let from = info.spec_channel * self.cells() + band * self.frames;
        let row = &self.state[from..from + self.frames];
        let sum: f64 = row
            .iter()
            .map(|v| (2.0 * f64::from(info.spec_scale * v + info.spec_offset)).exp())
            .sum();
        (0.5 * (sum / self.frames.max(1) as f64).max(1e-60).ln()) as f32
    }

    /// Writes the visible channel as a natural-log mel spectrogram
    /// (`scale * state + offset`). Allocates only when the size grows.
    pub fn spectrogram_into(&self, out: &mut Spectrogram) {
        let info = &self.model.info;
        let cells = self.cells();
        out.n_mels = info.mel.n_mels;
        out.frames = self.frames;
        out.data.resize(cells, 0.0);
        let plane = &self.state[info.spec_channel * cells..(info.spec_channel + 1) * cells];
        for (o, s) in out.data.iter_mut().zip(plane) {
            *o = info.spec_scale * s + info.spec_offset;
        }
    }

    /// Zeroes every channel in mel bands `mel0..mel1` and frames `f0..f1`
    /// (half-open, clamped). Time is circular: `f0 > f1` erases `f0..frames`
    /// and `0..f1`.
    pub fn damage(&mut self, mel0: usize, mel1: usize, f0: usize, f1: usize) {
        let n_mels = self.model.info.mel.n_mels;
        let frames = self.frames;
        let (mel0, mel1) = (mel0.min(n_mels), mel1.min(n_mels));
        let (f0, f1) = (f0.min(frames), f1.min(frames));
        let ranges: [(usize, usize); 2] = if f0 <= f1 {
            [(f0, f1), (0, 0)]
        } else {
            [(f0, frames), (0, f1)]
        };
        let cells = self.cells();
        for plane in self.state.chunks_exact_mut(cells) {
            for mel in mel0..mel1 {
                let row = &mut plane[mel * frames..(mel + 1) * frames];
                for &(a, b) in &ranges {
                    row[a..b].fill(0.0);
                }
            }
        }
    }

    /// Copies the current state.
    pub fn snapshot(&self) -> NcaCheckpoint {
        NcaCheckpoint {
            steps: self.steps,
            seed: self.seed,
            frames: self.frames,
            state: self.state.clone(),
        }
    }

    /// Restores a checkpoint taken from this NCA (same model). A checkpoint
    /// whose size does not fit the model is ignored.
    pub fn restore(&mut self, c: &NcaCheckpoint) {
        let info = &self.model.info;
        if c.state.len() != info.channels * info.mel.n_mels * c.frames {
            return;
        }
        if c.frames != self.frames {
            self.reset(c.seed, c.frames);
        }
        self.state.copy_from_slice(&c.state);
        self.seed = c.seed;
        self.steps = c.steps;
    }
}

/// Stops a step that is running inside ONNX Runtime from another thread, so
/// destroying an instance never waits for a long step (a Length of 8 s steps
/// for 40-100 ms here) to finish: the engine thread must be gone within 200 ms.
#[derive(Default)]
pub struct StepCancel {
    /// The run options of the automaton that may be stepping (null when none
    /// exist). The engine thread sets it when it builds them and clears it
    /// before it releases them, under this lock, so [`StepCancel::cancel`]
    /// never touches released options.
    options: Mutex<RawRunOptions>,
    /// Once set, options attached later are terminated at once, so a step
    /// that starts after the cancel also ends immediately.
    cancelled: AtomicBool,
}

/// ONNX Runtime's run options, only ever used under [`StepCancel`]'s lock.
struct RawRunOptions(*mut ort::sys::OrtRunOptions);

// SAFETY: the pointer is only dereferenced by ONNX Runtime's
// `RunOptionsSetTerminate`, which may be called from any thread while a run
// uses the options, and only while the options are alive (see
// `StepCancel::options`).
unsafe impl Send for RawRunOptions {}

impl Default for RawRunOptions {
    fn default() -> Self {
        Self(std::ptr::null_mut())
    }
}

impl StepCancel {
    /// Ends the running step (if any) and every later one.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let options = self.options.lock();
        terminate(&options);
    }

    /// Whether [`StepCancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn attach(&self, ptr: *mut ort::sys::OrtRunOptions) {
        let mut options = self.options.lock();
        options.0 = ptr;
        if self.is_cancelled() {
            terminate(&options);
        }
    }

    fn detach(&self, ptr: *mut ort::sys::OrtRunOptions) {
        let mut options = self.options.lock();
        if options.0 == ptr {
            options.0 = std::ptr::null_mut();
        }
    }
}

/// Sets the terminate flag of live run options (nothing for null).
fn terminate(options: &RawRunOptions) {
    if options.0.is_null() {
        return;
    }
    let api = ort::api();
    // SAFETY: the caller holds `StepCancel::options`' lock, so the options are
    // alive (see `RawRunOptions`); a returned error status is released here.
    unsafe {
        let status = (api.RunOptionsSetTerminate)(options.0);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
        }
    }
}

/// Run options registered with a [`StepCancel`] for as long as they live.
struct Run {
    /// The options every step of the current length runs with.
    options: RunOptions<HasSelectedOutputs>,
    /// Where they are registered; unregistered on drop.
    cancel: Option<Arc<StepCancel>>,
}

impl Run {
    fn new(options: RunOptions<HasSelectedOutputs>, cancel: Option<Arc<StepCancel>>) -> Self {
        if let Some(c) = &cancel {
            c.attach(options.ptr().cast_mut());
        }
        Self { options, cancel }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(c) = &self.cancel {
            c.detach(self.options.ptr().cast_mut());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use grown_test_support::onnx::{nca_builder_unrolled, nca_model, Rule};

    pub(crate) fn test_nca(rule: Rule) -> Nca {
        Nca::new(NcaModel::from_bytes(&nca_model(4, 8, rule), "test".into()).unwrap())
    }

    fn spec(n: &Nca) -> Vec<u32> {
        let mut s = Spectrogram::default();
        n.spectrogram_into(&mut s);
        s.data.iter().map(|v| v.to_bits()).collect()
    }

    /// A cancel ends the step running at that moment and every later one,
    /// including steps of run options built after it (a length change); an
    /// automaton that was never cancelled keeps stepping.
    #[test]
    fn step_cancel_ends_running_and_later_steps() {
        let cancel = Arc::new(StepCancel::default());
        let mut n = test_nca(Rule::Conv);
        n.set_cancel(cancel.clone());
        n.reset(1, 4096);
        n.step(1.0, 0.0).expect("steps before the cancel succeed");
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                cancel.cancel();
            })
        };
        let mut stepped = 0u32;
        let err = loop {
            match n.step(1.0, 0.0) {
                Ok(()) => stepped += 1,
                Err(e) => break e,
            }
            assert!(stepped < 100_000, "the cancel never stopped a step");
        };
        canceller.join().unwrap();
        assert!(cancel.is_cancelled());
        assert!(matches!(err, ModelError::Runtime(_)), "{err}");
        // New run options (another length) are terminated as they are built.
        n.reset(1, 64);
        assert!(n.step(1.0, 0.0).is_err());
        let mut other = test_nca(Rule::Conv);
        other.reset(1, 64);
        other
            .step(1.0, 0.0)
            .expect("an automaton without the cancel steps");
    }

    #[test]
    fn seed_state_and_spectrogram_mapping() {
        let mut n = test_nca(Rule::Conv);
        n.reset(11, 16);
        assert_eq!(n.state().len(), 4 * 8 * 16);
        for (i, v) in n.state().iter().enumerate().step_by(37) {
            assert_eq!(*v, rng::normal(11, 0, i as u64) * 0.1);
        }
        let mut s = Spectrogram::default();
        n.spectrogram_into(&mut s);
        assert_eq!((s.n_mels, s.frames), (8, 16));
        // Channel 0, scale 4, offset -5.
        assert_eq!(s.at(2, 3), 4.0 * n.state()[2 * 16 + 3] - 5.0);
    }

    /// An excerpt seed (contract 2) starts as a passage of the bank plus the
    /// seed noise, at a start drawn from the seed; hidden channels hold the
    /// noise alone.
    #[test]
    fn excerpt_seed_is_a_passage_plus_noise() {
        use crate::grow::bank::{tests::bank_json, SeedBank};
        use grown_test_support::onnx::nca_builder;
        let bank_frames = 64;
        // Band m, frame f: a ramp that tells every position apart (exact in f16).
        let values: Vec<f32> = (0..8 * bank_frames)
            .map(|i| (i % bank_frames) as f32 / 32.0 + (i / bank_frames) as f32)
            .collect();
        let json = bank_json(&values, bank_frames);
        let mut b = nca_builder(4, 8, Rule::Conv);
        b.meta("grown.contract", "2")
            .meta("grown.seed_state", r#"{"kind":"excerpt","std":0.1}"#)
            .meta("grown.seed_bank", &json);
        let mut n = Nca::new(NcaModel::from_bytes(&b.build(), "test".into()).unwrap());
        let bank = SeedBank::from_json(&json, 8).unwrap();
        let mut starts = std::collections::BTreeSet::new();
        for seed in 1..40u64 {
            n.reset(seed, 16);
            let span = bank::start_span(bank_frames, 16);
            let start = (rng::uniform(seed, rng::EXCERPT_STREAM, 0) * span as f32) as usize;
            starts.insert(start);
            let mut passage = vec![0.0; 8 * 16];
            bank.passage_into(start, 8, &mut passage);
            for (i, v) in n.state().iter().enumerate() {
                let noise = rng::normal(seed, 0, i as u64) * 0.1;
                let want = if i < 8 * 16 {
                    passage[i] + noise
                } else {
                    noise
                };
                assert_eq!(*v, want, "seed {seed} cell {i}");
            }
        }
        assert!(starts.len() > 20, "seeds choose few passages: {starts:?}");
        // A grid longer than the bank wraps around it.
        n.reset(3, 100);
        assert!(n.state().iter().all(|v| v.is_finite()));
    }

    /// An stft-ms excerpt seed fills all four visible channels (mid and side,
    /// re and im) from the bank's stacked grids; the hidden ones hold noise.
    #[test]
    fn stft_ms_excerpt_seed_fills_the_four_visible_channels() {
        use crate::grow::bank::{tests::bank_json, SeedBank};
        use grown_test_support::onnx::nca_builder;
        let (rows, bank_frames, frames) = (4 * 513, 24, 8);
        let values: Vec<f32> = (0..rows * bank_frames)
            .map(|i| ((i * 7) % 61) as f32 / 32.0)
            .collect();
        let json = bank_json(&values, bank_frames);
        let mut b = nca_builder(6, 513, Rule::Conv);
        b.meta("grown.contract", "2")
            .meta("grown.representation", "stft-ms")
            .meta(
                "grown.stft",
                r#"{"sample_rate":22050,"n_fft":1024,"hop":256,"win":1024,"bins":513,"window":"hann_periodic","padding":"circular"}"#,
            )
            .meta("grown.seed_state", r#"{"kind":"excerpt","std":0.05}"#)
            .meta("grown.seed_bank", &json);
        let mut n = Nca::new(NcaModel::from_bytes(&b.build(), "test".into()).unwrap());
        let seed = 9;
        n.reset(seed, frames);
        let bank = SeedBank::from_json(&json, rows).unwrap();
        let start = (rng::uniform(seed, rng::EXCERPT_STREAM, 0)
            * bank::start_span(bank_frames, frames) as f32) as usize;
        let mut passage = vec![0.0; rows * frames];
        bank.passage_into(start, rows, &mut passage);
        for (i, v) in n.state().iter().enumerate() {
            let noise = rng::normal(seed, 0, i as u64) * 0.05;
            let want = passage.get(i).copied().unwrap_or(0.0) + noise;
            assert_eq!(*v, want, "cell {i}");
        }
        // Side im (visible channel 3) holds the bank's last grid.
        assert!(n.state()[3 * 513 * frames..4 * 513 * frames]
            .iter()
            .any(|v| v.abs() > 0.5));
    }

    #[test]
    fn deterministic_across_instances() {
        let mut a = test_nca(Rule::Conv);
        let mut b = test_nca(Rule::Conv);
        a.reset(5, 24);
        b.reset(5, 24);
        for _ in 0..12 {
            a.step(0.5, 0.02).unwrap();
            b.step(0.5, 0.02).unwrap();
        }
        assert_eq!(a.steps(), 12);
        assert_eq!(spec(&a), spec(&b));
        assert_eq!(a.state(), b.state());
        // And the model actually changed the state.
        let mut fresh = test_nca(Rule::Conv);
        fresh.reset(5, 24);
        assert_ne!(fresh.state(), a.state());
    }

    #[test]
    fn seeds_differ() {
        let mut a = test_nca(Rule::Conv);
        let mut b = test_nca(Rule::Conv);
        a.reset(1, 16);
        b.reset(2, 16);
        for _ in 0..4 {
            a.step(0.5, 0.0).unwrap();
            b.step(0.5, 0.0).unwrap();
        }
        assert_ne!(spec(&a), spec(&b));
    }

    #[test]
    fn fire_rate_zero_keeps_state_and_mutation_spares_spectrogram() {
        let mut n = test_nca(Rule::Conv);
        n.reset(3, 16);
        let before = n.state().to_vec();
        n.step(0.0, 0.0).unwrap();
        assert_eq!(
            n.state(),
            &before[..],
            "no cell fired, yet the state changed"
        );
        let spec_before = spec(&n);
        n.step(0.0, 0.5).unwrap();
        assert_eq!(
            spec(&n),
            spec_before,
            "mutation touched the spectrogram channel"
        );
        assert_ne!(n.state(), &before[..], "mutation did nothing");
        assert_eq!(n.steps(), 2);
    }

    #[test]
    fn nan_output_is_an_error_and_state_is_kept() {
        let mut n = test_nca(Rule::Poison);
        n.reset(4, 16);
        let before = n.state().to_vec();
        let e = n.step(1.0, 0.0).unwrap_err();
        assert!(e.to_string().contains("kept the previous state"), "{e}");
        assert_eq!(n.state(), &before[..]);
        assert_eq!(n.steps(), 0);
    }

    #[test]
    fn checkpoint_restore_continues_identically() {
        let mut a = test_nca(Rule::Conv);
        a.reset(9, 16);
        for _ in 0..3 {
            a.step(0.5, 0.0).unwrap();
        }
        let cp = a.snapshot();
        for _ in 0..3 {
            a.step(0.5, 0.0).unwrap();
        }
        let after6 = a.state().to_vec();
        let mut b = test_nca(Rule::Conv);
        b.reset(1, 40);
        b.restore(&cp);
        assert_eq!((b.steps(), b.frames(), b.seed()), (3, 16, 9));
        for _ in 0..3 {
            b.step(0.5, 0.0).unwrap();
        }
        assert_eq!(b.state(), &after6[..]);
    }

    #[test]
    fn damage_zeroes_region_with_wrap() {
        let mut n = test_nca(Rule::Conv);
        n.reset(2, 16);
        n.damage(2, 4, 14, 2);
        let cells = 8 * 16;
        for ch in 0..4 {
            for mel in 0..8 {
                for f in 0..16 {
                    let v = n.state()[ch * cells + mel * 16 + f];
                    let inside = (2..4).contains(&mel) && !(2..14).contains(&f);
                    assert_eq!(v == 0.0, inside, "ch {ch} mel {mel} f {f}");
                }
            }
        }
    }

    #[test]
    fn unrolled_model_matches_single_steps() {
        let unrolled = nca_builder_unrolled(4, 8, Rule::Conv, 3).build();
        let mut k3 = Nca::new(NcaModel::from_bytes(&unrolled, "k3".into()).unwrap());
        let mut k1 = test_nca(Rule::Conv);
        k3.reset(8, 16);
        k1.reset(8, 16);
        // 3 steps in one call, then 2 (the third mask row is zero).
        assert_eq!(k3.step_n(3, 0.5, 0.0).unwrap(), 3);
        assert_eq!(k3.step_n(2, 0.5, 0.0).unwrap(), 2);
        for _ in 0..5 {
            k1.step(0.5, 0.0).unwrap();
        }
        assert_eq!(k3.steps(), 5);
        assert_eq!(k3.state(), k1.state());
        // With mutation, one step per call so the noise stays per step.
        assert_eq!(k3.step_n(3, 0.5, 0.1).unwrap(), 1);
    }

    #[test]
    fn confine_compresses_only_outliers_and_keeps_the_floor() {
        let mut n = test_nca(Rule::Conv);
        n.reset(6, 16);
        let env = n.envelope(0.1);
        let inside = n.state().to_vec();
        assert_eq!(
            n.confine(&env),
            0,
            "a state inside its own envelope changed"
        );
        assert_eq!(n.state(), &inside[..]);
        // Push channel 1 out both ways, from just past its bounds to far
        // beyond: bounded, order kept, nearby outliers still distinct.
        let cells = 8 * 16;
        let (lo, hi) = env.bounds(1);
        let reach = 2.0 * (hi - lo);
        for (i, v) in n.state[cells..2 * cells].iter_mut().enumerate() {
            *v = (i as f32 / cells as f32 - 0.5) * reach * 2.0;
        }
        n.confine(&env);
        let plane = &n.state()[cells..2 * cells];
        assert!(plane.iter().all(|v| (lo..=hi).contains(v)), "{plane:?}");
        assert!(plane.windows(2).all(|w| w[0] <= w[1]), "order lost");
        let distinct = plane.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(distinct > cells / 20, "outliers flattened: {plane:?}");
        // The visible channel never goes below ln(1e-5) (scale 4, offset -5).
        n.state[..cells].fill(-100.0);
        n.confine(&env);
        let floor = (crate::dsp::mel::LOG_FLOOR.ln() + 5.0) / 4.0;
        assert!(n.state()[..cells].iter().all(|v| *v >= floor));
    }

    #[test]
    fn length_change_reallocates_and_runs() {
        let mut n = test_nca(Rule::Conv);
        n.reset(1, 16);
        n.step(0.5, 0.0).unwrap();
        n.reset(1, 40);
        n.step(0.5, 0.0).unwrap();
        let mut s = Spectrogram::default();
        n.spectrogram_into(&mut s);
        assert_eq!(s.frames, 40);
        assert!(s.is_finite());
    }
}
