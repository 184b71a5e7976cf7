//! Soak test: a long stretch of simulated playing with Drift on, rendered
//! offline as fast as the machine allows (`grown soak`).
//!
//! The engine's work (NCA drift steps, vocoding) and the audio callback's work
//! (receiving generations, voices, limiter, in 128-sample blocks as a host at
//! 48 kHz would call it) run on one thread in simulated time, so the run is
//! deterministic and the audio callback can be timed on its own. Measured:
//! * the worst and 99.9th-percentile callback time against the block's deadline;
//! * resident memory, sampled through the run (flat after warm-up, or a leak);
//! * spectral flux between consecutive generations of the grown spectrogram
//!   (the sound must keep evolving: flux never collapses to zero);
//! * how far the grown spectrogram strays outside the range the model produces
//!   at its recommended growth step (the engine confines drift to it, within
//!   [`grown::grow::DRIFT_MARGIN`] of each channel's span, because unconfined
//!   an hour of drift runs away to extreme log-mel values);
//! * non-finite and out-of-range output samples (must be none).

use grown::dsp::mel::Spectrogram;
use grown::grow::model::NcaModel;
use grown::grow::nca::Nca;
use grown::grow::Grower;
use grown::play::queue;
use grown::play::{SoftLimiter, VoiceSettings, Voices};
use grown::rng;
use grown::vocoder::inverter::Inverter;
use grown::vocoder::voicing::Voicing;
use std::time::Instant;

/// How far (ln-mel) a generation may stray outside the allowed range before
/// the soak fails: float rounding only, since the engine's bound is exact.
pub const EXCURSION_TOLERANCE: f32 = 1e-3;

/// RNG stream of the simulated player (separate from every NCA stream).
const PLAYER_STREAM: u64 = 0x504c_4159;

/// What to soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Seconds of audio to render (3600 for the full soak).
    pub seconds: f64,
    /// Host sample rate.
    pub sample_rate: f32,
    /// Host block size; 128 at 48 kHz is a 2.67 ms deadline.
    pub block: usize,
    /// Drift in NCA steps per second of (simulated) time.
    pub drift: f32,
    /// Seconds of simulated time between generations while drifting (the
    /// plugin's engine re-vocodes every 0.5 s of wall time; a longer interval
    /// keeps an hour's soak short without changing what the audio side sees).
    pub vocode_every_s: f64,
    /// Mutation (noise into hidden channels), as the Mutation parameter.
    pub mutation: f32,
    /// Seed of the sound and of the simulated player.
    pub seed: u32,
    /// Growth before drifting starts.
    pub growth: u32,
    /// Seconds of grown sound.
    pub length_s: f32,
    /// Seconds of audio between memory samples.
    pub rss_every_s: f64,
    /// Whether the engine confines drift to the trained range (off only to
    /// reproduce the runaway it prevents: `grown soak --bound off`).
    pub bounded: bool,
}

impl Default for SoakConfig {
    fn default() -> Self {
        Self {
            seconds: 3600.0,
            sample_rate: 48_000.0,
            block: 128,
            drift: 2.0,
            vocode_every_s: 5.0,
            mutation: 0.02,
            seed: 1,
            growth: 96,
            length_s: 3.0,
            rss_every_s: 60.0,
            bounded: true,
        }
    }
}

/// What a soak measured.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// Seconds of audio rendered.
    pub audio_s: f64,
    /// Wall-clock seconds the whole soak took (engine work included).
    pub wall_s: f64,
    /// Wall-clock seconds spent in the audio callbacks alone.
    pub callback_s: f64,
    /// Number of audio callbacks.
    pub blocks: u64,
    /// The block's deadline in microseconds (block / sample rate).
    pub deadline_us: f64,
    /// Slowest callback in microseconds of wall time (includes the time the
    /// OS gave the core to other processes, so it depends on machine load).
    pub worst_us: f64,
    /// 99.9th-percentile callback wall time in microseconds.
    pub p999_us: f64,
    /// Callbacks whose wall time exceeded the deadline.
    pub over_deadline: u64,
    /// Slowest callback in microseconds of this thread's CPU time: the work
    /// itself, without preemption (equal to wall time where unavailable).
    pub cpu_worst_us: f64,
    /// 99.9th-percentile callback CPU time in microseconds.
    pub cpu_p999_us: f64,
    /// Callbacks whose CPU time exceeded the deadline.
    pub cpu_over_deadline: u64,
    /// Generations published to the audio side.
    pub generations: u64,
    /// NCA steps grown in total (initial growth plus drift).
    pub steps: u32,
    /// Spectral flux between consecutive generations (mean |Δ ln mel|).
    pub flux: Vec<f64>,
    /// The visible channel's ln-mel range at the model's recommended growth
    /// step (seed and length of the soak): what the model was trained to grow.
    pub trained_range: (f32, f32),
    /// What the generations may span: `trained_range` widened by
    /// [`grown::grow::DRIFT_MARGIN`] of its width on each side, and never
    /// below the contract's floor `ln(1e-5)`.
    pub allowed_range: (f32, f32),
    /// Lowest and highest ln-mel value of any generation.
    pub visible_range: (f32, f32),
    /// Largest distance (ln-mel) of any generation's value outside
    /// `allowed_range`; 0 when every generation stayed inside.
    pub excursion: f32,
    /// Resident memory in KiB at (audio seconds, KiB) points.
    pub rss_kib: Vec<(f64, u64)>,
    /// Output samples that were NaN or infinite.
    pub non_finite: u64,
    /// Largest absolute output sample.
    pub peak: f32,
    /// Notes played by the simulated player.
    pub notes: u64,
}

impl SoakReport {
    /// Smallest flux between consecutive generations (0 would mean the sound froze).
    pub fn min_flux(&self) -> f64 {
        self.flux.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The `q`-quantile (0..=1) of the flux between generations (0 if none).
    pub fn flux_quantile(&self, q: f64) -> f64 {
        let mut sorted = self.flux.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n => sorted[((q.clamp(0.0, 1.0) * (n - 1) as f64).round()) as usize],
        }
    }

    /// Memory growth over the second half of the run, in KiB (negative if it shrank).
    pub fn rss_growth_second_half_kib(&self) -> i64 {
        let Some(&(end_s, end)) = self.rss_kib.last() else {
            return 0;
        };
        let half = end_s / 2.0;
        let mid = self
            .rss_kib
            .iter()
            .find(|(t, _)| *t >= half)
            .map_or(end, |(_, kib)| *kib);
        end as i64 - mid as i64
    }

    /// Highest memory sample in KiB.
    pub fn rss_peak_kib(&self) -> u64 {
        self.rss_kib.iter().map(|(_, k)| *k).max().unwrap_or(0)
    }

    /// How many times faster than real time the soak ran.
    pub fn speed(&self) -> f64 {
        self.audio_s / self.wall_s.max(1e-9)
    }

    /// Human-readable summary, one figure per line.
    pub fn summary(&self) -> String {
        let flux_min = self.min_flux();
        let flux_mean = self.flux.iter().sum::<f64>() / self.flux.len().max(1) as f64;
        format!(
            "audio:        {:.0} s in {:.1} s wall ({:.1}x real time; callbacks {:.1} s)\n\
             callbacks:    {} blocks, deadline {:.1} us\n\
             cpu time:     worst {:.1} us, p99.9 {:.1} us; {} over the deadline\n\
             wall time:    worst {:.1} us, p99.9 {:.1} us; {} over the deadline (includes preemption)\n\
             output:       peak {:.3}, {} non-finite samples, {} notes played\n\
             growth:       {} NCA steps, {} generations\n\
             flux:         min {:.3e}, median {:.3e}, mean {:.3e}, p99 {:.3e}, max {:.3e} (mean |delta ln mel| between generations)\n\
             range:        ln mel {:.2}..{:.2} over all generations; trained {:.2}..{:.2}, allowed {:.2}..{:.2}; excursion {:.3}\n\
             memory:       first {} KiB, peak {} KiB, last {} KiB; second half {:+} KiB",
            self.audio_s,
            self.wall_s,
            self.speed(),
            self.callback_s,
            self.blocks,
            self.deadline_us,
            self.cpu_worst_us,
            self.cpu_p999_us,
            self.cpu_over_deadline,
            self.worst_us,
            self.p999_us,
            self.over_deadline,
            self.peak,
            self.non_finite,
            self.notes,
            self.steps,
            self.generations,
            if flux_min.is_finite() { flux_min } else { 0.0 },
            self.flux_quantile(0.5),
            flux_mean,
            self.flux_quantile(0.99),
            self.flux_quantile(1.0),
            self.visible_range.0,
            self.visible_range.1,
            self.trained_range.0,
            self.trained_range.1,
            self.allowed_range.0,
            self.allowed_range.1,
            self.excursion,
            self.rss_kib.first().map_or(0, |s| s.1),
            self.rss_peak_kib(),
            self.rss_kib.last().map_or(0, |s| s.1),
            self.rss_growth_second_half_kib(),
        )
    }
}

/// Resident set size of this process in KiB (Linux `/proc`; 0 elsewhere).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time consumed by the calling thread, in nanoseconds; `None` where the
/// clock is unavailable.
#[cfg(target_os = "linux")]
pub fn thread_cpu_ns() -> Option<u64> {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        /// Whole seconds.
        tv_sec: i64,
        /// Nanoseconds.
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    /// `CLOCK_THREAD_CPUTIME_ID` from `<time.h>`.
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    if cfg!(not(target_pointer_width = "64")) {
        return None;
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which outlives the call.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// CPU time consumed by the calling thread: not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_ns() -> Option<u64> {
    None
}

/// The 99.9th percentile of a microsecond histogram.
fn p999(histogram: &[u64], total: u64) -> f64 {
    let wanted = (total as f64 * 0.999).ceil() as u64;
    let mut seen = 0;
    for (us, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= wanted {
            return us as f64 + 1.0;
        }
    }
    histogram.len() as f64
}

/// Mean absolute difference of two equally shaped spectrograms.
fn flux(a: &Spectrogram, b: &Spectrogram) -> f64 {
    if a.data.len() != b.data.len() || a.data.is_empty() {
        return f64::INFINITY;
    }
    let sum: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum();
    sum / a.data.len() as f64
}

/// Lowest and highest value of a spectrogram.
fn value_range(s: &Spectrogram) -> (f32, f32) {
    s.data
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        })
}

/// A pending note-off of the simulated player.
#[derive(Clone, Copy)]
struct Held {
    /// Sample at which the note is released.
    off_at: u64,
    /// The key.
    key: u8,
}

/// Runs the soak. `progress` receives a line now and then (the CLI prints it).
pub fn run(
    model: NcaModel,
    cfg: &SoakConfig,
    mut progress: impl FnMut(&str),
) -> Result<SoakReport, String> {
    let start = Instant::now();
    let mel = model.info.mel.clone();
    let fire_rate = model.info.fire_rate;
    let frames = grown::grow::frames_for(cfg.length_s, &mel);
    let trained = model.info.growth_steps;
    let floor = if model.info.stft.is_none() {
        grown::dsp::mel::LOG_FLOOR.ln()
    } else {
        f32::NEG_INFINITY
    };
    let mut grower = Grower::new(Nca::new(model));
    grower.set_bounded(cfg.bounded);
    let mut inverter = Inverter::new(mel.clone());
    let capacity = queue::GENERATION_CAPACITY;
    let (mut producer, mut consumer) = queue::generation_queue(queue::GENERATION_POOL, capacity);
    let mut voices = Voices::new();
    voices.set_output_sample_rate(cfg.sample_rate);
    let mut limiter = SoftLimiter::new();
    let settings = VoiceSettings {
        release_s: 0.4,
        ..crate::render::offline_voice_settings()
    };

    let block = cfg.block.max(1);
    let sr = f64::from(cfg.sample_rate);
    let total_samples = (cfg.seconds * sr).round() as u64;
    // The range the model grows at its recommended step, on this very
    // trajectory (growing on from here is the same as growing from the seed).
    let trained_range = grower
        .grow(cfg.seed, trained, frames, fire_rate, cfg.mutation)
        .map(value_range)
        .map_err(|e| format!("growth failed at step {trained}: {e}"))?;
    let margin = grown::grow::DRIFT_MARGIN * (trained_range.1 - trained_range.0);
    let mut report = SoakReport {
        deadline_us: block as f64 / sr * 1e6,
        trained_range,
        allowed_range: (
            (trained_range.0 - margin).max(floor),
            trained_range.1 + margin,
        ),
        visible_range: (f32::INFINITY, f32::NEG_INFINITY),
        ..SoakReport::default()
    };
    // Callback times in whole microseconds; the last bucket collects the rest.
    let mut histogram = vec![0u64; 100_000];
    let mut cpu_histogram = vec![0u64; 100_000];
    let mut left = vec![0.0f32; block];
    let mut right = vec![0.0f32; block];
    let mut voicing = Voicing::for_model(grower.nca().info());
    let mut previous: Option<Spectrogram> = None;
    let mut held: Vec<Held> = Vec::with_capacity(64);
    let mut next_note_at: u64 = 0;
    let mut drift_credit = 0.0f64;
    let mut target = cfg.growth;
    let mut next_vocode_at: u64 = 0;
    let mut next_rss_at: u64 = 0;
    let vocode_every = ((cfg.vocode_every_s.max(0.01)) * sr) as u64;
    let rss_every = ((cfg.rss_every_s.max(0.1)) * sr) as u64;
    let mut position: u64 = 0;

    while position < total_samples {
        // --- engine side, in simulated time ---------------------------------
        if position >= next_vocode_at {
            grower
                .grow(cfg.seed, target, frames, fire_rate, cfg.mutation)
                .map_err(|e| format!("growth failed at step {target}: {e}"))?;
            let spec = grower.spectrogram().clone();
            let (lo, hi) = value_range(&spec);
            let allowed = report.allowed_range;
            report.visible_range = (
                report.visible_range.0.min(lo),
                report.visible_range.1.max(hi),
            );
            report.excursion = report.excursion.max(allowed.0 - lo).max(hi - allowed.1);
            if let Some(prev) = &previous {
                report.flux.push(flux(prev, &spec));
            }
            let voiced = voicing
                .synthesize_mel(&spec, &mut inverter)
                .map_err(|e| e.to_string())?;
            if let Some(mut slot) = producer.acquire() {
                report.generations += 1;
                voicing.fill(&voiced, &mut slot, report.generations, true);
                // A full queue means the audio side is behind; the next interval retries.
                if producer.publish(slot).is_err() {
                    return Err("generation queue refused a buffer it handed out".into());
                }
            }
            previous = Some(spec);
            next_vocode_at = position + vocode_every;
            // Drift owed over the next interval, whole steps only.
            drift_credit += f64::from(cfg.drift.max(0.0)) * vocode_every as f64 / sr;
            let whole = drift_credit.floor();
            drift_credit -= whole;
            target = target.saturating_add(whole as u32);
        }
        if position >= next_rss_at {
            report.rss_kib.push((position as f64 / sr, rss_kib()));
            next_rss_at = position + rss_every;
            if report.rss_kib.len().is_multiple_of(10) {
                progress(&format!(
                    "{:>6.0} s of audio, {:.1} s wall, {} steps, RSS {} KiB",
                    position as f64 / sr,
                    start.elapsed().as_secs_f64(),
                    grower.nca().steps(),
                    rss_kib()
                ));
            }
        }

        // --- the simulated player: decisions made before the callback ------
        let n = block.min((total_samples - position) as usize);
        let block_end = position + n as u64;
        // Each event as (offset in block, key, on?), applied at its offset.
        let mut events: [(usize, u8, bool); 8] = [(0, 0, false); 8];
        let mut n_events = 0;
        held.retain(|h| {
            if h.off_at < block_end && n_events < events.len() {
                events[n_events] = ((h.off_at.saturating_sub(position)) as usize, h.key, false);
                n_events += 1;
                false
            } else {
                true
            }
        });
        if next_note_at < block_end && n_events < events.len() {
            let i = report.notes;
            let r = |k: u64| rng::uniform(u64::from(cfg.seed), PLAYER_STREAM, 4 * i + k);
            let key = 36 + (r(0) * 48.0) as u8;
            let offset = (next_note_at.saturating_sub(position)) as usize;
            events[n_events] = (offset, key, true);
            n_events += 1;
            // Keys repeat while still held, so duplicate note-ons happen too.
            let length = (0.05 + f64::from(r(1)) * 3.0) * sr;
            held.push(Held {
                off_at: next_note_at + length as u64,
                key,
            });
            next_note_at += ((0.1 + f64::from(r(2)) * 1.2) * sr) as u64;
            report.notes += 1;
        }
        events[..n_events].sort_by_key(|e| e.0);

        // --- the audio callback, timed -------------------------------------
        let t0 = Instant::now();
        let c0 = thread_cpu_ns();
        while let Some(g) = consumer.receive() {
            voices.receive(g, &mut |old| consumer.recycle(old));
        }
        voices.release_unused(&mut |old| consumer.recycle(old));
        let (l, r) = (&mut left[..n], &mut right[..n]);
        l.fill(0.0);
        r.fill(0.0);
        let mut at = 0;
        for &(offset, key, on) in &events[..n_events] {
            let offset = offset.min(n);
            if offset > at {
                voices.render(
                    &settings,
                    &mut l[at..offset],
                    &mut r[at..offset],
                    at as u32,
                    &mut |_| {},
                );
                at = offset;
            }
            if on {
                voices.note_on(&settings, key, 0.8, 0, None);
            } else {
                voices.note_off(key, 0, None);
            }
        }
        if at < n {
            voices.render(
                &settings,
                &mut l[at..],
                &mut r[at..],
                at as u32,
                &mut |_| {},
            );
        }
        limiter.process(l, r);
        let dt = t0.elapsed();
        let cpu_us = match (c0, thread_cpu_ns()) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e3,
            _ => dt.as_secs_f64() * 1e6,
        };
        // --- end of callback -------------------------------------------------

        let us = dt.as_secs_f64() * 1e6;
        report.callback_s += dt.as_secs_f64();
        report.worst_us = report.worst_us.max(us);
        if us > report.deadline_us {
            report.over_deadline += 1;
        }
        let bucket = (us as usize).min(histogram.len() - 1);
        histogram[bucket] += 1;
        report.cpu_worst_us = report.cpu_worst_us.max(cpu_us);
        if cpu_us > report.deadline_us {
            report.cpu_over_deadline += 1;
        }
        let bucket = (cpu_us as usize).min(cpu_histogram.len() - 1);
        cpu_histogram[bucket] += 1;
        report.blocks += 1;
        for x in l.iter().chain(r.iter()) {
            if x.is_finite() {
                report.peak = report.peak.max(x.abs());
            } else {
                report.non_finite += 1;
            }
        }
        position = block_end;
    }

    report.audio_s = position as f64 / sr;
    report.steps = grower.nca().steps();
    report.rss_kib.push((report.audio_s, rss_kib()));
    report.p999_us = p999(&histogram, report.blocks);
    report.cpu_p999_us = p999(&cpu_histogram, report.blocks);
    report.wall_s = start.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_of_equal_spectrograms_is_zero() {
        let mut a = Spectrogram::new(4, 3);
        a.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as f32);
        let mut b = a.clone();
        assert_eq!(flux(&a, &b), 0.0);
        b.data[0] += 1.2;
        assert!((flux(&a, &b) - 0.1).abs() < 1e-6);
        assert!(flux(&a, &Spectrogram::new(2, 2)).is_infinite());
    }

    #[test]
    fn percentile_from_histogram() {
        let mut h = vec![0u64; 10];
        h[2] = 999;
        h[7] = 1;
        assert_eq!(p999(&h, 1000), 3.0);
        h[2] = 998;
        h[7] = 2;
        assert_eq!(p999(&h, 1000), 8.0);
        if cfg!(target_os = "linux") {
            assert!(thread_cpu_ns().is_some());
        }
    }

    #[test]
    fn rss_is_read() {
        if cfg!(target_os = "linux") {
            assert!(rss_kib() > 1000);
        }
    }

    #[test]
    fn report_figures() {
        let r = SoakReport {
            rss_kib: vec![(0.0, 100), (10.0, 300), (20.0, 310), (30.0, 305)],
            flux: vec![0.5, 0.2],
            ..SoakReport::default()
        };
        assert_eq!(r.rss_growth_second_half_kib(), -5);
        assert_eq!(r.rss_peak_kib(), 310);
        assert_eq!(r.min_flux(), 0.2);
    }

    /// A short soak with the embedded model (needs ONNX Runtime).
    #[test]
    fn short_soak_keeps_evolving_and_stays_bounded() {
        let model = NcaModel::load_embedded_default().unwrap();
        let cfg = SoakConfig {
            seconds: 12.0,
            vocode_every_s: 2.0,
            drift: 4.0,
            growth: 24,
            length_s: 1.0,
            rss_every_s: 1.0,
            ..SoakConfig::default()
        };
        let r = run(model, &cfg, |_| {}).unwrap();
        assert_eq!(r.non_finite, 0);
        assert!(r.peak > 1e-3 && r.peak <= 1.0, "peak {}", r.peak);
        assert_eq!(r.generations, 6);
        assert_eq!(r.steps, 24 + 4 * 10);
        assert!(r.min_flux() > 0.0, "{:?}", r.flux);
        assert!(r.notes > 5);
        assert_eq!(r.blocks, (12.0f64 * 48_000.0 / 128.0).ceil() as u64);
    }
}
