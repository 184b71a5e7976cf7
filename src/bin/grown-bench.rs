//! `grown-bench`: the Rust half of `cargo xtask bench`.
//!
//! Each subcommand measures one thing in a fresh process (so one measurement's
//! threads, caches and heap never colour another's) and prints one JSON object
//! on stdout; progress goes to stderr. The xtask runs them, runs the Python
//! reference side (`models/grown_train/bench.py`), and writes the report.
//!
//! ```text
//! grown-bench nca [--frames 256] [--seconds 4]
//! grown-bench inverter --clip clip.wav --dir target/bench [--iterations N]
//! grown-bench bigvgan --model vocoder.onnx --dir target/bench [--frames 172] [--runs 2]
//! grown-bench callback [--seconds 2]
//! grown-bench regrow [--repeats 5]
//! grown-bench memory [--instances 4]
//! grown-bench memory-parts
//! ```
//!
//! ONNX Runtime's intra-op thread count comes from `GROWN_ORT_THREADS`, which
//! the xtask sets per run. Build in release: the allocation counter only exists
//! there (debug builds already carry nice-plug's own global allocator).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use grown::dsp::mel::{MelAnalyzer, MelConfig, Spectrogram};
use grown::engine::{Engine, EngineControls, EngineStatus};
use grown::grow::model::NcaModel;
use grown::grow::nca::Nca;
use grown::play::queue::generation_queue;
use grown::play::queue::{GENERATION_CAPACITY, GENERATION_POOL};
use grown::vocoder::bigvgan::BigVgan;
use grown::vocoder::{Inverter, Vocoder};
use grown::Grown;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use serde_json::{json, Value};

/// Counts heap operations per thread, so the audio thread's allocations can be
/// told apart from the engine thread's, which allocate freely and run at the
/// same time.
#[cfg(not(debug_assertions))]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Allocations, reallocations and frees made by this thread. A const
        /// initialiser without a destructor, so reading it never allocates.
        static OPS: Cell<u64> = const { Cell::new(0) };
    }

    fn bump() {
        OPS.with(|c| c.set(c.get() + 1));
    }

    /// The system allocator plus the per-thread counter.
    pub struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            bump();
            System.alloc(layout)
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            bump();
            System.alloc_zeroed(layout)
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            bump();
            System.realloc(ptr, layout, new_size)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            bump();
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// Heap operations made by the calling thread so far.
    pub fn ops() -> Option<u64> {
        Some(OPS.with(Cell::get))
    }
}

#[cfg(debug_assertions)]
mod counting {
    /// Not counted in debug builds (nice-plug owns the global allocator there).
    pub fn ops() -> Option<u64> {
        None
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grown-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<Value> {
    let opts = Options::parse(args.get(1..).unwrap_or(&[]))?;
    match args.first().map(String::as_str) {
        Some("nca") => nca(opts.usize("frames", 256)?, opts.f64("seconds", 4.0)?),
        Some("inverter") => inverter(
            &opts.path("clip")?,
            &opts.path("dir")?,
            opts.get("iterations").map(str::parse).transpose()?,
        ),
        Some("bigvgan") => bigvgan(
            &opts.path("model")?,
            &opts.path("dir")?,
            opts.usize("frames", 172)?,
            opts.usize("runs", 2)?,
        ),
        Some("callback") => callback(opts.f64("seconds", 2.0)?),
        Some("regrow") => regrow(opts.usize("repeats", 5)?),
        Some("memory") => memory(opts.usize("instances", 4)?),
        Some("memory-parts") => memory_parts(),
        _ => bail!(
            "usage: grown-bench nca|inverter|bigvgan|callback|regrow|memory|memory-parts [--key value ...] \
             (normally run by `cargo xtask bench`)"
        ),
    }
}

/// `--key value` pairs.
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| anyhow!("expected --option, got `{k}`"))?;
            let v = it.next().ok_or_else(|| anyhow!("--{key} needs a value"))?;
            out.push((key.to_string(), v.clone()));
        }
        Ok(Self(out))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        self.get(key)
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("--{key} is required"))
    }

    fn usize(&self, key: &str, default: usize) -> Result<usize> {
        self.get(key).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("--{key} {v}"))
        })
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64> {
        self.get(key).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("--{key} {v}"))
        })
    }
}

/// Intra-op threads the sessions of this process were created with.
fn ort_threads() -> Value {
    std::env::var(grown::onnx::runtime::THREADS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Value::Null, Value::from)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// NCA growth rate through the product's own stepping code (`Nca::step_n`:
/// mask drawing, the ONNX Runtime call, the NaN check and the state copy).
/// Median of five timed windows, so one descheduling does not decide it.
fn nca(frames: usize, seconds: f64) -> Result<Value> {
    let model = NcaModel::load_embedded_default().map_err(|e| anyhow!("{e}"))?;
    let info = model.info.clone();
    let provider = model.provider.why.clone();
    let mut nca = Nca::new(model);
    nca.reset(1, frames);
    let (fire, mutation) = (info.fire_rate, 0.0);
    for _ in 0..8 {
        nca.step(fire, mutation).map_err(|e| anyhow!("{e}"))?;
    }
    let windows = 5;
    let mut rates = Vec::new();
    let mut total_steps = 0u64;
    for _ in 0..windows {
        let t0 = Instant::now();
        let mut n = 0u64;
        while n < 4 || t0.elapsed().as_secs_f64() < seconds / windows as f64 {
            nca.step(fire, mutation).map_err(|e| anyhow!("{e}"))?;
            n += 1;
        }
        rates.push(n as f64 / t0.elapsed().as_secs_f64());
        total_steps += n;
    }
    let single = median(&mut rates);
    // A K-step unrolled model applies K steps per call; only measured if shipped.
    let unrolled = if info.unroll > 1 {
        let k = info.unroll as u32;
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed().as_secs_f64() < seconds / windows as f64 {
            n += u64::from(nca.step_n(k, fire, mutation).map_err(|e| anyhow!("{e}"))?);
        }
        json!(n as f64 / t0.elapsed().as_secs_f64())
    } else {
        Value::Null
    };
    Ok(json!({
        "steps_per_s": single,
        "steps_per_s_windows": rates,
        "steps_timed": total_steps,
        "unroll": info.unroll,
        "unrolled_steps_per_s": unrolled,
        "channels": info.channels,
        "n_mels": info.mel.n_mels,
        "frames": frames,
        "threads": ort_threads(),
        "provider": provider,
        "model": grown::grow::model::DEFAULT_MODEL_SOURCE,
    }))
}

/// Reads a mono (or first-channel) WAV file as f32.
fn read_wav(path: &Path) -> Result<(Vec<f32>, u32)> {
    let mut r = hound::WavReader::open(path).with_context(|| format!("{}", path.display()))?;
    let spec = r.spec();
    let ch = usize::from(spec.channels.max(1));
    let all: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    Ok((all.into_iter().step_by(ch).collect(), spec.sample_rate))
}

fn write_wav(path: &Path, audio: &[f32], sample_rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in audio {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

/// The clip's natural-log mel, written as raw little-endian f32 `[n_mels][frames]`
/// so the Python side inverts exactly the same numbers.
fn analyse_clip(clip: &Path, dir: &Path) -> Result<(MelConfig, Spectrogram, usize)> {
    let cfg = MelConfig::bigvgan_22k();
    let (audio, sr) = read_wav(clip)?;
    if sr != cfg.sample_rate {
        bail!(
            "{} is {sr} Hz; the bench needs {} Hz",
            clip.display(),
            cfg.sample_rate
        );
    }
    let mel = MelAnalyzer::new(cfg.clone()).analyze(&audio);
    let bytes: Vec<u8> = mel.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("mel.f32"), bytes)?;
    Ok((cfg, mel, audio.len()))
}

/// Built-in inverter: real-time factor (median of 3 runs after a warm-up run
/// that builds the FFT plans) and its audio for the Python side to score.
/// `iterations` overrides the product's Fast Griffin-Lim count (for sweeps;
/// the report uses the product default).
fn inverter(clip: &Path, dir: &Path, iterations: Option<usize>) -> Result<Value> {
    let (cfg, mel, clip_len) = analyse_clip(clip, dir)?;
    let mut inv = match iterations {
        Some(n) => Inverter::with_iterations(cfg.clone(), n),
        None => Inverter::new(cfg.clone()),
    };
    let mut audio = Vec::new();
    inv.synthesize(&mel, &mut audio)?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        inv.synthesize(&mel, &mut audio)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let took = median(&mut times);
    let seconds = audio.len() as f64 / f64::from(cfg.sample_rate);
    write_wav(&dir.join("inverter.wav"), &audio, cfg.sample_rate)?;
    Ok(json!({
        "seconds_audio": seconds,
        "clip_samples": clip_len,
        "frames": mel.frames,
        "n_mels": mel.n_mels,
        "synth_s": took,
        "rtf": took / seconds,
        "iterations": inv.iterations(),
    }))
}

/// BigVGAN through the plugin's own vocoder code (chunked, with context and
/// crossfades): real-time factor on the first `frames` frames of the clip's
/// mel (2 s by default: the model is slow on CPU and the bench must stay
/// short), median of `runs` runs after a short warm-up.
fn bigvgan(model: &Path, dir: &Path, frames: usize, runs: usize) -> Result<Value> {
    let raw = std::fs::read(dir.join("mel.f32")).context("mel.f32 (run `inverter` first)")?;
    let data: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let t_load = Instant::now();
    let mut v = BigVgan::load(model)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let cfg = v.mel_config().clone();
    let available = data.len() / cfg.n_mels;
    let frames = frames.clamp(32, available.max(32));
    let mut mel = Spectrogram::new(cfg.n_mels, frames);
    for m in 0..cfg.n_mels {
        for f in 0..frames.min(available) {
            mel.data[m * frames + f] = data[m * available + f];
        }
    }
    let mut audio = Vec::new();
    let mut warm = Spectrogram::new(cfg.n_mels, 32);
    for m in 0..cfg.n_mels {
        for f in 0..32 {
            warm.data[m * 32 + f] = mel.at(m, f);
        }
    }
    v.synthesize(&warm, &mut audio)?;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        v.synthesize(&mel, &mut audio)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let took = median(&mut times);
    let seconds = audio.len() as f64 / f64::from(cfg.sample_rate);
    Ok(json!({
        "seconds_audio": seconds,
        "synth_s": took,
        "rtf": took / seconds,
        "frames": frames,
        "load_s": load_s,
        "threads": ort_threads(),
        "provider": v.provider.why,
    }))
}

/// Minimal host side of `activate()`.
struct HostActivate;

impl ActivateContext<Grown> for HostActivate {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, _samples: u32) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// Most note events one block carries here (one per voice).
const MAX_EVENTS: usize = 16;

/// Minimal host side of `process()`: a fixed array of note events (no
/// allocation per block) and a transport.
struct HostProcess {
    /// Events of the coming block, in timing order.
    events: [Option<NoteEvent<()>>; MAX_EVENTS],
    /// Events queued.
    len: usize,
    /// Next event handed to the plugin.
    next: usize,
    /// Stopped transport at the session rate.
    transport: Transport,
}

impl HostProcess {
    fn new(sample_rate: f32) -> Self {
        Self {
            events: [None; MAX_EVENTS],
            len: 0,
            next: 0,
            transport: Transport::new(sample_rate),
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// Queues a note-on at the start of the coming block.
    fn note_on(&mut self, note: u8) {
        if self.len < MAX_EVENTS {
            self.events[self.len] = Some(NoteEvent::NoteOn {
                timing: 0,
                voice_id: VoiceID::Wildcard,
                channel: Channel::Number(0),
                key: Key::Number(note),
                velocity: 0.8,
            });
            self.len += 1;
        }
    }
}

impl ProcessContext<Grown> for HostProcess {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<NoteEvent<()>> {
        if self.next < self.len {
            self.next += 1;
            self.events[self.next - 1]
        } else {
            None
        }
    }
    fn try_send_event(
        &mut self,
        _event: NoteEvent<()>,
    ) -> Result<(), (NoteEvent<()>, nice_plug::context::process::SendEventError)> {
        Ok(())
    }
    fn set_latency_samples(&self, _samples: u32) {}
    fn request_restart(&self) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

const SAMPLE_RATE: f32 = 48_000.0;
const MAX_BLOCK: usize = 512;

/// A plugin instance driven like a host drives it: parameters set through
/// their pointers, smoothers reset at activation, `process()` per block.
struct Instance {
    plugin: Grown,
    host: HostProcess,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl Instance {
    /// Creates and activates an instance (which spawns its engine thread).
    fn new(polyphony: i32) -> Result<Self> {
        let mut plugin = Grown::default();
        let params = plugin.params();
        for (id, ptr, _) in params.param_map() {
            // SAFETY: the pointers come from the live params object, which
            // outlives this loop; this is what a host wrapper does.
            unsafe {
                if id == "polyphony" {
                    let n = ptr.preview_normalized(polyphony as f32);
                    ptr._internal_set_normalized_value(n);
                }
                ptr._internal_update_smoother(SAMPLE_RATE, true);
            }
        }
        let layout = AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        };
        let config = BufferConfig {
            sample_rate: SAMPLE_RATE,
            min_buffer_size: None,
            max_buffer_size: MAX_BLOCK as u32,
            process_mode: ProcessMode::Realtime,
        };
        if !plugin.activate(&layout, &config, &mut HostActivate) {
            bail!("activate() refused");
        }
        plugin.reset();
        Ok(Self {
            plugin,
            host: HostProcess::new(SAMPLE_RATE),
            left: vec![0.0; MAX_BLOCK],
            right: vec![0.0; MAX_BLOCK],
        })
    }

    /// One `process()` call of `n` samples; returns its duration and the
    /// heap operations the call made on this thread.
    fn process(&mut self, n: usize) -> (Duration, Option<u64>) {
        let (took, _, ops) = self.process_cpu(n);
        (took, ops)
    }

    /// [`process`](Self::process) that also returns the CPU time this thread
    /// spent in the call (`None` where the platform has no thread clock).
    fn process_cpu(&mut self, n: usize) -> (Duration, Option<Duration>, Option<u64>) {
        let (l, r) = (&mut self.left[..n], &mut self.right[..n]);
        let mut buffer = Buffer::default();
        // SAFETY: both slices live until `process` returns and have length `n`.
        unsafe {
            buffer.set_slices(n, |s| {
                s.clear();
                s.push(l);
                s.push(r);
            });
        }
        let mut aux = AuxiliaryBuffers {
            inputs: &mut [],
            outputs: &mut [],
        };
        let ops0 = counting::ops();
        let cpu0 = thread_cpu_time();
        let t0 = Instant::now();
        let _ = self.plugin.process(&mut buffer, &mut aux, &mut self.host);
        let took = t0.elapsed();
        let cpu = thread_cpu_time()
            .zip(cpu0)
            .map(|(a, b)| a.saturating_sub(b));
        let ops = counting::ops().zip(ops0).map(|(a, b)| a - b);
        drop(buffer);
        self.host.clear();
        (took, cpu, ops)
    }

    fn peak(&self, n: usize) -> f32 {
        self.left[..n]
            .iter()
            .chain(&self.right[..n])
            .fold(0.0f32, |m, v| m.max(v.abs()))
    }

    /// Holds a note until sound comes out: the engine has grown and vocoded
    /// its first generation and the audio thread has received it.
    fn wait_for_sound(&mut self, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        self.host.note_on(60);
        loop {
            self.process(MAX_BLOCK);
            if self.peak(MAX_BLOCK) > 1e-4 {
                self.plugin.reset();
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!("no sound within {timeout:?}: the engine produced no generation");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// CPU time the calling thread has used (the soak test's clock). On a shared
/// machine wall-clock windows include time the thread sat descheduled; this
/// clock does not, so it shows the callback's own cost beside the wall-clock figure.
fn thread_cpu_time() -> Option<Duration> {
    grown::soak::thread_cpu_ns().map(Duration::from_nanos)
}

/// Lowest and highest note of the benchmark chords: two octaves around the
/// root (C4 = 60), the range a player spreads a chord over. The cost per voice
/// depends on pitch: up to about +13 semitones a fixed 32-tap polyphase kernel
/// runs; above it the kernel stretches with the playback rate.
const CHORD: (u8, u8) = (48, 72);

/// Note `i` of a chord of `n` notes spread evenly over [`CHORD`] (one voice
/// plays the root).
fn chord_note(i: usize, n: usize) -> u8 {
    if n <= 1 {
        return 60;
    }
    let span = usize::from(CHORD.1 - CHORD.0);
    CHORD.0 + ((i * span + (n - 1) / 2) / (n - 1)) as u8
}

/// Audio callback cost: the real `Plugin::process` with 1, 8 and 16 held
/// voices at 32- and 512-sample blocks, 48 kHz.
fn callback(seconds: f64) -> Result<Value> {
    let mut inst = Instance::new(16)?;
    let ready = inst.wait_for_sound(Duration::from_secs(180))?;
    // Let the morph from silence to the first generation finish.
    std::thread::sleep(Duration::from_millis(100));
    let mut rows = Vec::new();
    let mut total_ops = Some(0u64);
    for voices in [1usize, 8, 16] {
        for block in [32usize, 512] {
            inst.plugin.reset();
            for i in 0..voices {
                inst.host.note_on(chord_note(i, voices));
            }
            inst.process(block);
            // Warm-up: past the attack, caches warm.
            let warm = (0.1 * f64::from(SAMPLE_RATE)) as usize / block;
            for _ in 0..warm {
                inst.process(block);
            }
            // Ten windows; the median window is the figure, so one
            // descheduling of this thread does not decide it.
            let windows = 10;
            let per_window = ((seconds * f64::from(SAMPLE_RATE)) as usize / block / windows).max(1);
            let mut ns_windows = Vec::with_capacity(windows);
            let mut cpu_ns_windows = Vec::with_capacity(windows);
            let mut took = Duration::ZERO;
            let mut ops = Some(0u64);
            let mut worst = Duration::ZERO;
            let mut peak = 0.0f32;
            for _ in 0..windows {
                let mut window = Duration::ZERO;
                let mut window_cpu = Some(Duration::ZERO);
                for _ in 0..per_window {
                    let (d, c, o) = inst.process_cpu(block);
                    window += d;
                    window_cpu = window_cpu.zip(c).map(|(a, b)| a + b);
                    worst = worst.max(d);
                    ops = ops.zip(o).map(|(a, b)| a + b);
                    peak = peak.max(inst.peak(block));
                }
                took += window;
                ns_windows.push(window.as_secs_f64() * 1e9 / (per_window * block) as f64);
                if let Some(c) = window_cpu {
                    cpu_ns_windows.push(c.as_secs_f64() * 1e9 / (per_window * block) as f64);
                }
            }
            if peak <= 1e-4 {
                bail!("{voices} voices at block {block} rendered silence");
            }
            total_ops = total_ops.zip(ops).map(|(a, b)| a + b);
            let mean_ns = took.as_secs_f64() * 1e9 / (windows * per_window * block) as f64;
            let ns = median(&mut ns_windows);
            let fraction = ns * f64::from(SAMPLE_RATE) / 1e9;
            let cpu_ns = (!cpu_ns_windows.is_empty()).then(|| median(&mut cpu_ns_windows));
            rows.push(json!({
                "cpu_ns_per_sample": cpu_ns,
                "cpu_fraction_of_realtime": cpu_ns.map(|n| n * f64::from(SAMPLE_RATE) / 1e9),
                "voices": voices,
                "block": block,
                "ns_per_sample": ns,
                "mean_ns_per_sample": mean_ns,
                "fraction_of_realtime": fraction,
                "worst_block_fraction": worst.as_secs_f64() / (block as f64 / f64::from(SAMPLE_RATE)),
                "allocations": ops,
            }));
        }
    }
    Ok(json!({
        "sample_rate": SAMPLE_RATE,
        "notes": format!("{}..{} spread evenly (one voice: 60)", CHORD.0, CHORD.1),
        "seconds": seconds,
        "rows": rows,
        "allocations": total_ops,
        "first_sound_s": ready.as_secs_f64(),
        "driven": "grown::Grown through nice_plug::Plugin::process (real plugin code path)",
    }))
}

/// Seed change → first new generation at the audio side of the queue, for
/// the default growth (96 steps) at the default length, through the real
/// engine thread.
fn regrow(repeats: usize) -> Result<Value> {
    let controls = Arc::new(EngineControls::default());
    controls.growth.store(96, Ordering::Relaxed);
    let status = Arc::new(EngineStatus::default());
    let (producer, mut consumer) = generation_queue(GENERATION_POOL, GENERATION_CAPACITY);
    let (snapshots, _editor) = triple_buffer::triple_buffer(&Spectrogram::default());
    let engine = Engine::spawn(controls.clone(), status.clone(), producer, snapshots, None);
    let wait_generation = |consumer: &mut grown::play::queue::GenerationConsumer,
                           after: u64,
                           timeout: Duration|
     -> Result<(u64, Duration)> {
        let t0 = Instant::now();
        loop {
            while let Some(g) = consumer.receive() {
                let id = g.id;
                consumer.recycle(g);
                if id > after {
                    return Ok((id, t0.elapsed()));
                }
            }
            if t0.elapsed() > timeout {
                let err = status.error.lock().clone();
                bail!("no generation within {timeout:?} ({err})");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    let (mut last, first) = wait_generation(&mut consumer, 0, Duration::from_secs(180))?;
    let mut ms = Vec::new();
    for r in 0..repeats {
        // Idle engine first, as when a user turns the knob on a settled sound.
        std::thread::sleep(Duration::from_millis(200));
        controls.seed.store(100 + r as u32, Ordering::Relaxed);
        let (id, took) = wait_generation(&mut consumer, last, Duration::from_secs(120))?;
        last = id;
        ms.push(took.as_secs_f64() * 1e3);
    }
    let steps_per_s = status.steps_per_s.load(Ordering::Relaxed);
    let vocoder_rtf = status.vocoder_rtf.load(Ordering::Relaxed);
    drop(engine);
    let all = ms.clone();
    Ok(json!({
        "latency_ms": median(&mut ms),
        "latency_ms_all": all,
        "growth_steps": 96,
        "length_s": controls.length_s.load(Ordering::Relaxed),
        "engine_steps_per_s": steps_per_s,
        "engine_vocoder_rtf": vocoder_rtf,
        "first_generation_s": first.as_secs_f64(),
        "threads": ort_threads(),
    }))
}

/// Resident set size of this process, MiB.
fn rss_mb() -> Result<f64> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/self/status"))?;
    Ok(kb / 1024.0)
}

/// Resident memory with 1..=n plugin instances, each activated with the
/// default model and playing its first generation.
fn memory(instances: usize) -> Result<Value> {
    let baseline = rss_mb()?;
    let mut alive = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..instances.max(1) {
        let mut inst = Instance::new(8)?;
        inst.wait_for_sound(Duration::from_secs(180))?;
        // Past the morph, so the previous-generation slot is settled too.
        for _ in 0..100 {
            inst.process(MAX_BLOCK);
        }
        alive.push(inst);
        rss.push(rss_mb()?);
    }
    let first = rss[0];
    let extra: Vec<f64> = rss.windows(2).map(|w| w[1] - w[0]).collect();
    let mean_extra = if extra.is_empty() {
        Value::Null
    } else {
        json!(extra.iter().sum::<f64>() / extra.len() as f64)
    };
    let max_extra = extra.iter().copied().fold(f64::NAN, f64::max);
    drop(alive);
    Ok(json!({
        "baseline_mb": baseline,
        "rss_mb": rss,
        "first_mb": first,
        "extra_mb": mean_extra,
        "extra_max_mb": if max_extra.is_nan() { Value::Null } else { json!(max_extra) },
        "threads": ort_threads(),
    }))
}

/// Where one instance's memory goes: the resident-set growth of each part the
/// engine builds, added one after another in a fresh process (the order the
/// engine thread builds them in).
fn memory_parts() -> Result<Value> {
    use grown::grow::{frames_for, Grower};
    let mut parts = Vec::new();
    let mut last = rss_mb()?;
    let mut mark = |name: &str, parts: &mut Vec<Value>| -> Result<()> {
        let now = rss_mb()?;
        parts.push(json!({ "part": name, "mb": now - last }));
        last = now;
        Ok(())
    };
    grown::onnx::runtime::runtime()?;
    mark(
        "ONNX Runtime library + environment (once per process)",
        &mut parts,
    )?;
    let model = NcaModel::load_embedded_default().map_err(|e| anyhow!("{e}"))?;
    let cfg = model.info.mel.clone();
    mark("NCA model session", &mut parts)?;
    let mut grower = Grower::new(Nca::new(model));
    let frames = frames_for(3.0, &cfg);
    let spec = grower
        .grow(1, 96, frames, 0.5, 0.0)
        .map_err(|e| anyhow!("{e}"))?
        .clone();
    let checkpoints = grower.checkpoint_count();
    mark(
        "growing 96 steps at 3 s (state, ORT arena, checkpoints)",
        &mut parts,
    )?;
    let mut inverter = Inverter::new(cfg);
    let mut audio = Vec::new();
    inverter.synthesize(&spec, &mut audio)?;
    mark("built-in inverter, 3 s", &mut parts)?;
    let (producer, consumer) = generation_queue(GENERATION_POOL, GENERATION_CAPACITY);
    mark("generation queue (4 buffers of 8 s at 48 kHz)", &mut parts)?;
    let voices = grown::play::Voices::new();
    mark("voices", &mut parts)?;
    drop((producer, consumer, voices, grower));
    Ok(json!({ "parts": parts, "frames": frames, "checkpoints": checkpoints }))
}
