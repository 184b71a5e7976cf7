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
use grown::grow::DEFAULT_GROWTH;
use grown::play::queue::generation_queue;
use grown::play::queue::{GENERATION_CAPACITY, GENERATION_POOL};
use grown::vocoder::bigvgan::BigVgan;
use grown::vocoder::{Inverter, Vocoder};
use grown::Grown;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use serde_json::{json, Value};

mod host;
mod offline;
mod plugin;

use host::*;
use offline::*;
use plugin::*;

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
