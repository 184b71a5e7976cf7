//! [`Grower`]: the synchronous, deterministic core of growing a sound, used
//! by the engine thread, the offline renderer and tests alike.

use std::collections::BTreeMap;

use crate::dsp::mel::{MelConfig, Spectrogram};
use crate::grow::brush::{BrushConsumer, BrushStroke};
use crate::grow::model::ModelError;
use crate::grow::nca::{Nca, NcaCheckpoint, StateEnvelope};

/// Upper bound of the Growth parameter; also bounds the checkpoint cache
/// (states past it are never scrubbed back to).
pub const MAX_GROWTH: i32 = 1024;

/// Growth a new instance starts at: the plugin's parameter default and the
/// engine's control default, so an engine spawned before the first parameter
/// sync grows the same sound. It is the embedded default model's trained
/// growth (`grown.growth_steps`, a test holds them equal): the sound the
/// evaluation hears, and grown in half the time of a longer default.
pub const DEFAULT_GROWTH: u32 = 48;

/// Checkpoints are taken every this many steps; scrubbing backward re-grows
/// at most this many steps from the nearest one.
pub const CHECKPOINT_EVERY: u32 = 16;

/// Memory the checkpoint cache may use. Past it no new checkpoints are taken
/// (the earliest ones, which cover the growth range users scrub through, are
/// kept); scrubbing further back then re-grows from the last one available.
pub const CHECKPOINT_BUDGET_BYTES: usize = 192 << 20;

/// Trajectories left behind whose grown state is kept, so going back to a
/// recent seed (or length, fire rate, mutation) continues from where it was
/// instead of regrowing from its seed state. One state each (~1.3 MB for the
/// default model at 3 s).
pub const PARKED_TRAJECTORIES: usize = 4;

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
    /// Recently left trajectories, oldest first ([`PARKED_TRAJECTORIES`]).
    parked: Vec<Parked>,
    /// The state lies on its trajectory (no damage or brush since it began),
    /// so it may be parked and resumed as that trajectory's.
    pure: bool,
}

/// A trajectory's state kept after leaving it, with what resuming it needs.
struct Parked {
    key: TrajectoryKey,
    state: NcaCheckpoint,
    envelope: Option<StateEnvelope>,
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
            parked: Vec::new(),
            pure: true,
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
            self.park();
            self.key = Some(key);
            self.checkpoints.clear();
            self.checkpoint_bytes = 0;
            self.pure = true;
            // A parked state at or below the target is a state this trajectory
            // reaches anyway: resuming from it is growing the same sound.
            match self.unpark(key, growth) {
                Some(p) => {
                    self.nca.restore(&p.state);
                    self.envelope = p.envelope;
                    self.envelope_after_jump();
                }
                None => {
                    self.nca.reset(u64::from(seed), key.frames);
                    self.envelope = None;
                }
            }
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

    /// Keeps the current state of a trajectory being left, if it lies on it.
    fn park(&mut self) {
        let Some(key) = self.key else { return };
        if !self.pure || self.nca.steps() == 0 {
            return;
        }
        self.parked.retain(|p| p.key != key);
        if self.parked.len() >= PARKED_TRAJECTORIES {
            self.parked.remove(0);
        }
        self.parked.push(Parked {
            key,
            state: self.nca.snapshot(),
            envelope: self.envelope.clone(),
        });
    }

    /// Takes the parked state of `key`, if one is at or below `growth` steps.
    fn unpark(&mut self, key: TrajectoryKey, growth: u32) -> Option<Parked> {
        let i = self
            .parked
            .iter()
            .position(|p| p.key == key && p.state.steps <= growth)?;
        Some(self.parked.remove(i))
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
        // Drift grows past it are never restored, and caching them would let
        // an hour of drifting fill the whole budget.
        if steps == 0 || steps > MAX_GROWTH as u32 || self.checkpoints.contains_key(&steps) {
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
        self.pure = false;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grow::model::NcaModel;
    use grown_test_support::onnx::{nca_model, Rule};

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
        let max = MAX_GROWTH as u32;
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

    /// Going back to a recent seed resumes its parked state; the sound is the
    /// one fresh growth gives, for the growth it had and for more.
    #[test]
    fn returning_to_a_recent_seed_resumes_it_bit_for_bit() {
        let fresh = |seed, growth| bits(grower().grow(seed, growth, 20, 0.5, 0.02).unwrap());
        let mut g = grower();
        g.grow(3, 60, 20, 0.5, 0.02).unwrap();
        g.grow(4, 60, 20, 0.5, 0.02).unwrap();
        // Seed 3 comes back at its step 60: nothing left to grow.
        g.set_target(3, 60, 20, 0.5, 0.02);
        assert!(g.done(), "seed 3 was regrown from its seed state");
        assert_eq!(bits(g.spectrogram()), fresh(3, 60));
        // Further than it was: continues from 60.
        assert_eq!(bits(g.grow(4, 75, 20, 0.5, 0.02).unwrap()), fresh(4, 75));
        // A damaged trajectory is not parked: coming back regrows it.
        g.damage(0, 2, 0, 5);
        g.grow(5, 10, 20, 0.5, 0.02).unwrap();
        g.set_target(4, 75, 20, 0.5, 0.02);
        assert!(!g.done());
        assert_eq!(bits(g.grow(4, 75, 20, 0.5, 0.02).unwrap()), fresh(4, 75));
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
        let floor = crate::dsp::mel::LOG_FLOOR.ln() - 1e-4;
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

    #[test]
    fn nan_model_reports_error() {
        let m = NcaModel::from_bytes(&nca_model(4, 8, Rule::Poison), "poison".into()).unwrap();
        let mut g = Grower::new(Nca::new(m));
        let e = g.grow(1, 5, 16, 1.0, 0.0).unwrap_err();
        assert!(e.to_string().contains("kept the previous state"), "{e}");
        assert_eq!(g.nca().steps(), 0);
    }
}
