//! `cargo xtask bench`: measures the plugin against its references in one run
//! and writes `docs/BENCHMARKS.md` and `docs/benchmarks.json`.
//!
//! The measurements live in two programs, each section in a fresh process so
//! no measurement inherits another's threads or heap:
//! * `grown-bench` (src/bin/grown-bench.rs, built here in release): the
//!   product's own code paths — `Nca::step`, the built-in inverter, the BigVGAN
//!   vocoder, the real `Plugin::process`, the engine thread, instance memory;
//! * `models/grown_train/bench.py` in the project venv: the eager-PyTorch NCA,
//!   the FLOP count of the shipped graph, the matmul peak, librosa's
//!   Griffin-Lim and spectral convergence, ONNX Runtime optimisation sweeps.
//!
//! This file runs them, derives the ratios, checks the targets, prints one
//! table and writes the report. A section that fails is reported as not
//! measured (and the command exits non-zero) instead of hiding the others.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use crate::Workspace;

/// Thread counts measured for ONNX Runtime, PyTorch and the matmul peak.
const THREADS: [usize; 2] = [1, 2];

/// Options of `cargo xtask bench`.
struct Options {
    /// Short timings for a smoke test of the harness; the report goes to
    /// target/bench/ so published figures are never replaced by rough ones.
    quick: bool,
    /// Use the `grown-bench` already in target/release instead of building it
    /// first: on a shared machine whose other builds keep touching the tree,
    /// the release build can take longer than the measurements. The report's
    /// command line says so.
    no_build: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut quick = false;
        let mut no_build = false;
        for a in args {
            match a.as_str() {
                "--quick" => quick = true,
                "--no-build" => no_build = true,
                other => bail!("bench: unknown option '{other}' (--quick, --no-build)"),
            }
        }
        Ok(Self { quick, no_build })
    }
}

/// The project's Python venv: `${GROWN_CACHE:-$HOME/.cache/grown}/venv-<16 hex
/// of sha256(models/requirements.txt)>`, the one `.ci/run` builds.
fn venv_python(root: &Path) -> Result<PathBuf> {
    let req = root.join("models/requirements.txt");
    let bytes = std::fs::read(&req).with_context(|| format!("could not read {}", req.display()))?;
    let digest = Sha256::digest(&bytes);
    let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let cache = match std::env::var_os("GROWN_CACHE").filter(|v| !v.is_empty()) {
        Some(c) => PathBuf::from(c),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            PathBuf::from(home).join(".cache/grown")
        }
    };
    let python = cache.join(format!("venv-{key}")).join("bin/python");
    if !python.is_file() {
        bail!(
            "the Python venv for models/requirements.txt was not found at {}\n\
             create it with `.ci/run` (or python3 -m venv there and \
             `pip install -r models/requirements.txt`), or set GROWN_CACHE to the folder holding it",
            python.display()
        );
    }
    Ok(python)
}

/// Runs a command that prints one JSON object as its last stdout line;
/// its stderr (progress) passes through.
fn run_json(mut cmd: Command, what: &str) -> Result<Value> {
    eprintln!("bench: {what}");
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{what} printed nothing"))?;
    serde_json::from_str(line).with_context(|| format!("{what} printed no JSON: {line}"))
}

/// Figures gathered so far plus the sections that could not be measured.
struct Run {
    /// Everything measured, by section.
    data: Map<String, Value>,
    /// `section: error` for every failed section.
    errors: Vec<String>,
}

impl Run {
    fn record(&mut self, key: &str, result: Result<Value>) {
        match result {
            Ok(v) => {
                self.data.insert(key.to_string(), v);
            }
            Err(e) => {
                eprintln!("bench: {key} not measured: {e:#}");
                self.errors.push(format!("{key}: {e:#}"));
            }
        }
    }

    fn num(&self, pointer: &str) -> Option<f64> {
        Value::Object(self.data.clone())
            .pointer(pointer)
            .and_then(Value::as_f64)
    }

    fn get(&self, pointer: &str) -> Option<Value> {
        Value::Object(self.data.clone()).pointer(pointer).cloned()
    }

    /// The list at `pointer`; `None` where its section was not measured.
    fn array(&self, pointer: &str) -> Option<Vec<Value>> {
        self.get(pointer).and_then(|v| v.as_array().cloned())
    }

    /// The string at `pointer`; `None` where its section was not measured.
    fn text(&self, pointer: &str) -> Option<String> {
        self.get(pointer).and_then(|v| v.as_str().map(String::from))
    }
}

/// ONNX Runtime intra-op threads the plugin picks on this machine (runtime.rs:
/// half the cores, 1..=4); the headline NCA figures use it.
fn product_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).clamp(1, 4))
        .unwrap_or(1)
        .min(*THREADS.last().unwrap_or(&1))
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One line describing the machine the figures come from.
fn machine() -> String {
    let cpuinfo = read_trim("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let flags = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let simd = ["avx512f", "avx2", "fma"]
        .iter()
        .filter(|f| flags.split_whitespace().any(|x| x == **f))
        .copied()
        .collect::<Vec<_>>()
        .join("+");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = read_trim("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let virt = if flags.split_whitespace().any(|f| f == "hypervisor") {
        ", virtual machine"
    } else {
        ""
    };
    format!(
        "{model} ({simd}), {cores} cores{virt}, {mem_gib:.0} GiB RAM, Linux {}, no GPU",
        read_trim("/proc/sys/kernel/osrelease")
    )
}

fn rustc_version() -> String {
    Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn run(ws: &Workspace, args: &[String]) -> Result<ExitCode> {
    let opts = Options::parse(args)?;
    let started = Instant::now();
    let root = &ws.root;
    let python = venv_python(root)?;
    let runtime = crate::ort::ensure(&ws.target_dir, crate::ort::Variant::Cpu, false)?;
    let dylib = runtime
        .first()
        .cloned()
        .context("ONNX Runtime install lists no files")?;
    let bench_dir = ws.target_dir.join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    let load_before = read_trim("/proc/loadavg");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = if opts.no_build {
        eprintln!("bench: --no-build: using the existing target/release/grown-bench");
        Command::new("true").status()
    } else {
        eprintln!("bench: building grown-bench (release)");
        Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-j",
                "2",
                "-p",
                "grown",
                "--bin",
                "grown-bench",
            ])
            .current_dir(root)
            .status()
    }
    .context("could not run cargo build")?;
    if !status.success() {
        bail!("building grown-bench failed");
    }
    let exe = ws.target_dir.join("release/grown-bench");
    if !exe.is_file() {
        bail!("{} is missing (run without --no-build)", exe.display());
    }

    let (nca_s, callback_s, regrow_n, vocoder_frames, vocoder_runs) = if opts.quick {
        ("0.5", "0.2", "1", "48", "1")
    } else {
        ("4", "2", "5", "172", "2")
    };
    let rust = |sub: &str, threads: Option<usize>| {
        let mut c = Command::new(&exe);
        c.arg(sub)
            .current_dir(root)
            .env("ORT_DYLIB_PATH", &dylib)
            .env("GROWN_FORCE_CPU", "1")
            .env_remove("GROWN_ORT_THREADS");
        if let Some(t) = threads {
            c.env("GROWN_ORT_THREADS", t.to_string());
        }
        c
    };
    let py = |sub: &str| {
        let mut c = Command::new(&python);
        c.args(["-m", "grown_train.bench", sub])
            .current_dir(root.join("models"))
            .env("PYTHONDONTWRITEBYTECODE", "1");
        c
    };

    let mut run = Run {
        data: Map::new(),
        errors: Vec::new(),
    };

    let mut c = py("prepare");
    c.arg("--out").arg(&bench_dir);
    run.record("prepare", run_json(c, "python: clip + BigVGAN base export"));
    let clip = bench_dir.join("clip.wav");
    let bigvgan_onnx = run
        .get("/prepare/bigvgan/out")
        .and_then(|v| v.as_str().map(PathBuf::from));

    let mut c = rust("inverter", None);
    c.arg("--clip").arg(&clip).arg("--dir").arg(&bench_dir);
    run.record("inverter", run_json(c, "rust: built-in inverter"));

    for t in THREADS {
        let mut c = rust("nca", Some(t));
        c.args(["--frames", "256", "--seconds", nca_s]);
        let r = run_json(c, &format!("rust: NCA steps, {t} thread(s)"));
        run.record(&format!("nca_{t}"), r);
    }
    if let Some(model) = &bigvgan_onnx {
        for t in THREADS {
            let mut c = rust("bigvgan", Some(t));
            c.arg("--model")
                .arg(model)
                .arg("--dir")
                .arg(&bench_dir)
                .args(["--frames", vocoder_frames, "--runs", vocoder_runs]);
            let r = run_json(c, &format!("rust: BigVGAN vocoder, {t} thread(s)"));
            run.record(&format!("bigvgan_{t}"), r);
        }
    }
    let mut c = rust("callback", None);
    c.args(["--seconds", callback_s]);
    run.record(
        "callback",
        run_json(c, "rust: audio callback (real plugin)"),
    );
    let mut c = rust("regrow", None);
    c.args(["--repeats", regrow_n]);
    run.record("regrow", run_json(c, "rust: regrow latency (engine)"));
    let mut c = rust("memory", None);
    c.args(["--instances", "4"]);
    run.record("memory", run_json(c, "rust: memory per instance"));
    let c = rust("memory-parts", None);
    run.record(
        "memory_parts",
        run_json(c, "rust: memory of one instance, by part"),
    );

    let mut c = py("measure");
    c.arg("--dir")
        .arg(&bench_dir)
        .arg("--onnx")
        .arg(root.join("models/nca/strings.onnx"))
        .args(["--threads", "1,2", "--seconds", nca_s]);
    if let Some(model) = &bigvgan_onnx {
        c.arg("--bigvgan").arg(model);
    }
    run.record(
        "python",
        run_json(
            c,
            "python: PyTorch NCA, FLOPs, matmul peak, librosa, ORT sweep",
        ),
    );

    let elapsed = started.elapsed().as_secs_f64();
    let json_path = if opts.quick {
        bench_dir.join("benchmarks.json")
    } else {
        root.join("docs/benchmarks.json")
    };
    let context = Context_ {
        command: match (opts.quick, opts.no_build) {
            (true, _) => "cargo xtask bench --quick".into(),
            (false, true) => "cargo xtask bench --no-build".into(),
            (false, false) => "cargo xtask bench".into(),
        },
        machine: machine(),
        rustc: rustc_version(),
        date: Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        load_before,
        elapsed,
        headline_threads: product_threads(),
        previous: std::fs::read_to_string(&json_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok()),
    };
    let report = Report::build(&run, &context);
    println!("{}", report.table());
    let md_path = json_path.with_file_name("BENCHMARKS.md");
    if let Some(dir) = md_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&md_path, report.markdown(&run, &context))?;
    let flat = serde_json::to_string_pretty(&Value::Object(report.flat.clone()))?;
    std::fs::write(&json_path, flat + "\n")?;
    std::fs::write(
        bench_dir.join("raw.json"),
        serde_json::to_string_pretty(&Value::Object(run.data.clone()))?,
    )?;
    eprintln!(
        "bench: wrote {} and {} in {elapsed:.0} s",
        md_path.display(),
        json_path.display()
    );
    if run.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("bench: {} section(s) not measured", run.errors.len());
        Ok(ExitCode::FAILURE)
    }
}

/// Facts about the run that are not measurements.
struct Context_ {
    /// The command line, for the report.
    command: String,
    /// CPU, cores, memory, kernel.
    machine: String,
    /// Compiler of the measured binary.
    rustc: String,
    /// When the run happened.
    date: String,
    /// /proc/loadavg before the run, to show the machine was quiet.
    load_before: String,
    /// Wall time of the whole run, seconds.
    elapsed: f64,
    /// Thread count of the headline NCA figures (the plugin's own choice here).
    headline_threads: usize,
    /// The flat figures this run replaces, so the report shows what moved
    /// (a regression or a speed-up is otherwise invisible once overwritten).
    previous: Option<Map<String, Value>>,
}

/// Summary figures that moved by at least this fraction count as changed;
/// repeated runs on the shared machine scatter by less.
const CHANGE_SHOWN: f64 = 0.10;

/// Direction of a target.
#[derive(Clone, Copy)]
enum Goal {
    /// Value must be at least the bound.
    AtLeast(f64),
    /// Value must be at most the bound.
    AtMost(f64),
}

/// One row of the summary table.
struct Row {
    /// Key in benchmarks.json.
    key: &'static str,
    /// What is measured, for people.
    label: String,
    /// The figure, if measured.
    value: Option<f64>,
    /// Unit or suffix shown after the value.
    unit: &'static str,
    /// The goal, if the issue sets one.
    goal: Option<Goal>,
    /// Extra condition that must also hold for a pass (inverter quality).
    also: Option<bool>,
}

impl Row {
    fn pass(&self) -> Option<bool> {
        let v = self.value?;
        let ok = match self.goal? {
            Goal::AtLeast(b) => v >= b,
            Goal::AtMost(b) => v <= b,
        };
        Some(ok && self.also.unwrap_or(true))
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Some(Goal::AtLeast(b)) => format!("≥ {}", fmt_num(b)),
            Some(Goal::AtMost(b)) => format!("≤ {}", fmt_num(b)),
            None => "—".into(),
        }
    }

    fn verdict(&self) -> &'static str {
        match (self.goal.is_some(), self.pass()) {
            (false, _) => "",
            (true, Some(true)) => "pass",
            (true, Some(false)) => "MISS",
            (true, None) => "not measured",
        }
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v.fract() == 0.0 && a < 1e9 {
        // Counts (threads, frames, channels) read as integers.
        format!("{v:.0}")
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("not measured".into(), |v| format!("{}{unit}", fmt_num(v)))
}

/// One Markdown list item per summary row whose value moved by
/// [`CHANGE_SHOWN`] or more between the flat figures `previous` (an earlier
/// run) and `current` (this one). A flat figure can be in other units than its
/// row (a fraction shown as a percentage), so the change is taken between flat
/// figures and the old value is shown at the row's scale.
fn moved_rows(
    rows: &[Row],
    current: &Map<String, Value>,
    previous: &Map<String, Value>,
) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            let shown = r.value?;
            let new = current.get(r.key)?.as_f64()?;
            let old = previous.get(r.key)?.as_f64()?;
            let change = new / old - 1.0;
            (old != 0.0 && new != 0.0 && change.abs() >= CHANGE_SHOWN).then(|| {
                format!(
                    "* `{}`: {} → {} ({:+.0} %)",
                    r.key,
                    fmt_opt(Some(shown * old / new), r.unit),
                    fmt_opt(Some(shown), r.unit),
                    100.0 * change
                )
            })
        })
        .collect()
}

/// Derived figures, targets and the flat JSON.
struct Report {
    /// Summary rows, in the issue's order.
    rows: Vec<Row>,
    /// benchmarks.json: flat keys.
    flat: Map<String, Value>,
}

impl Report {
    fn build(run: &Run, ctx: &Context_) -> Self {
        let h = ctx.headline_threads;
        let ours = |t: usize| run.num(&format!("/nca_{t}/steps_per_s"));
        let torch = |t: usize| run.num(&format!("/python/nca/notebook/{t}/steps_per_s"));
        let same = |t: usize| run.num(&format!("/python/nca/same_arch/{t}/steps_per_s"));
        let peak = |t: usize| run.num(&format!("/python/nca/peak/{t}/peak_flops"));
        let flops = run.num("/python/nca/shipped/flops_per_step");
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let pct_peak = |t: usize| {
            ours(t)
                .zip(flops)
                .zip(peak(t))
                .map(|((s, f), p)| 100.0 * s * f / p)
        };
        let inv_s = run.num("/inverter/synth_s");
        let lib_s = run.num("/python/vocoder/librosa_s");
        let inv_sc = run.num("/python/vocoder/inverter_sc/sc_db");
        let lib_sc = run.num("/python/vocoder/librosa_sc/sc_db");
        let callback = |voices: u64, block: u64, field: &str| {
            run.get("/callback/rows")
                .and_then(|rows| {
                    rows.as_array()?
                        .iter()
                        .find(|r| {
                            r["voices"].as_u64() == Some(voices)
                                && r["block"].as_u64() == Some(block)
                        })
                        .cloned()
                })
                .and_then(|r| r[field].as_f64())
        };
        let rows = vec![
            Row {
                key: "nca_steps_per_s",
                label: format!("NCA steps/s, 80×256, C=16, ORT CPU {h} thread(s)"),
                value: ours(h),
                unit: "",
                goal: None,
                also: None,
            },
            Row {
                key: "nca_vs_pytorch_ratio",
                label: format!("NCA vs notebook NCA in eager PyTorch ({h} thread(s))"),
                value: ratio(ours(h), torch(h)),
                unit: "×",
                goal: Some(Goal::AtLeast(3.0)),
                also: None,
            },
            Row {
                key: "nca_percent_of_peak",
                label: format!("NCA conv FLOP rate / sgemm peak ({h} thread(s))"),
                value: pct_peak(h),
                unit: " %",
                goal: Some(Goal::AtLeast(25.0)),
                also: None,
            },
            Row {
                key: "inverter_vs_librosa_speed_ratio",
                label: "built-in inverter speed / librosa mel_to_audio (GL 32)".into(),
                value: ratio(lib_s, inv_s),
                unit: "×",
                goal: Some(Goal::AtLeast(20.0)),
                also: inv_sc.zip(lib_sc).map(|(a, b)| a <= b),
            },
            Row {
                key: "inverter_sc_db",
                label: "inverter spectral convergence (lower is better)".into(),
                value: inv_sc,
                unit: " dB",
                goal: None,
                also: None,
            },
            Row {
                key: "librosa_sc_db",
                label: "librosa Griffin-Lim spectral convergence".into(),
                value: lib_sc,
                unit: " dB",
                goal: None,
                also: None,
            },
            Row {
                key: "bigvgan_cpu_rtf",
                label:
                    "BigVGAN base ONNX, plugin vocoder, CPU 2 threads, RTF = compute s / audio s"
                        .into(),
                value: run.num("/bigvgan_2/rtf"),
                unit: "",
                goal: Some(Goal::AtMost(1.0)),
                also: None,
            },
            Row {
                key: "callback_fraction_16v_512",
                label: "audio callback, 16 voices, block 512, share of real time".into(),
                value: callback(16, 512, "fraction_of_realtime").map(|f| 100.0 * f),
                unit: " %",
                goal: Some(Goal::AtMost(2.0)),
                also: run.num("/callback/allocations").map(|a| a == 0.0),
            },
            Row {
                key: "regrow_latency_ms",
                label: "seed change → new generation heard, 96 steps, CPU".into(),
                value: run.num("/regrow/latency_ms"),
                unit: " ms",
                goal: Some(Goal::AtMost(500.0)),
                also: None,
            },
            Row {
                key: "rss_first_mb",
                label: "resident memory, first instance (whole process)".into(),
                value: run.num("/memory/first_mb"),
                unit: " MiB",
                goal: Some(Goal::AtMost(150.0)),
                also: None,
            },
            Row {
                key: "rss_extra_mb",
                label: "resident memory per further instance (mean of 3)".into(),
                value: run.num("/memory/extra_mb"),
                unit: " MiB",
                goal: Some(Goal::AtMost(30.0)),
                also: None,
            },
        ];

        let mut flat = Map::new();
        for r in &rows {
            // callback_fraction_16v_512 is a fraction in the JSON (0.01 = 1 %).
            let v = if r.key == "callback_fraction_16v_512" {
                r.value.map(|v| v / 100.0)
            } else {
                r.value
            };
            flat.insert(r.key.into(), v.map_or(Value::Null, |v| json!(v)));
        }
        let mut put = |k: &str, v: Option<f64>| {
            flat.insert(k.into(), v.map_or(Value::Null, |v| json!(v)));
        };
        put("nca_threads", Some(h as f64));
        for t in THREADS {
            put(&format!("nca_steps_per_s_{t}t"), ours(t));
            put(&format!("pytorch_notebook_steps_per_s_{t}t"), torch(t));
            put(&format!("pytorch_same_arch_steps_per_s_{t}t"), same(t));
            put(
                &format!("nca_vs_pytorch_ratio_{t}t"),
                ratio(ours(t), torch(t)),
            );
            put(
                &format!("nca_vs_pytorch_same_arch_ratio_{t}t"),
                ratio(ours(t), same(t)),
            );
            put(
                &format!("matmul_peak_gflops_{t}t"),
                peak(t).map(|p| p / 1e9),
            );
            put(&format!("nca_percent_of_peak_{t}t"), pct_peak(t));
            put(
                &format!("bigvgan_cpu_rtf_{t}t"),
                run.num(&format!("/bigvgan_{t}/rtf")),
            );
        }
        put("nca_flops_per_step", flops);
        put(
            "pytorch_notebook_flops_per_step",
            run.num("/python/nca/notebook/flops_per_step"),
        );
        put("inverter_rtf", run.num("/inverter/rtf"));
        put("librosa_rtf", run.num("/python/vocoder/librosa_rtf"));
        put(
            "bigvgan_ort_python_best_rtf",
            run.num("/python/bigvgan/best/rtf"),
        );
        put("bigvgan_parameters", run.num("/prepare/bigvgan/parameters"));
        for voices in [1, 8, 16] {
            for block in [32, 512] {
                put(
                    &format!("callback_ns_per_sample_{voices}v_{block}"),
                    callback(voices, block, "ns_per_sample"),
                );
                put(
                    &format!("callback_fraction_{voices}v_{block}"),
                    callback(voices, block, "fraction_of_realtime"),
                );
                put(
                    &format!("callback_cpu_fraction_{voices}v_{block}"),
                    callback(voices, block, "cpu_fraction_of_realtime"),
                );
            }
        }
        put("callback_allocations", run.num("/callback/allocations"));
        put(
            "nca_padded_graph_steps_per_s_python_1t",
            run.num("/python/nca/padding/padded_steps_per_s"),
        );
        put(
            "nca_plain_graph_steps_per_s_python_1t",
            run.num("/python/nca/padding/plain_steps_per_s"),
        );
        put("rss_baseline_mb", run.num("/memory/baseline_mb"));
        flat.insert("date".into(), json!(ctx.date));
        flat.insert("load_before".into(), json!(ctx.load_before));
        flat.insert("machine".into(), json!(ctx.machine));
        flat.insert("command".into(), json!(ctx.command));
        flat.insert(
            "cuda".into(),
            json!("not measured: no GPU lent to this task"),
        );
        Self { rows, flat }
    }

    /// The one table printed to the terminal (and the report's summary).
    fn table(&self) -> String {
        let mut out = String::new();
        let w = self
            .rows
            .iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<w$}  {:>14}  {:>8}  result",
            "measurement", "value", "target"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<w$}  {:>14}  {:>8}  {}",
                r.label,
                fmt_opt(r.value, r.unit),
                r.goal_text(),
                r.verdict()
            );
        }
        out
    }

    fn markdown(&self, run: &Run, ctx: &Context_) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `{}` on {} — do not edit by hand; re-run the command instead \
             (it takes about {:.0} minutes here).\n",
            ctx.command,
            ctx.date,
            (ctx.elapsed / 60.0).ceil()
        );
        let _ = writeln!(md, "* **Machine**: {}", ctx.machine);
        let _ = writeln!(
            md,
            "* **Load before the run** (`/proc/loadavg`): {}",
            ctx.load_before
        );
        let load1: f64 = ctx
            .load_before
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if load1 >= 1.0 {
            let _ = writeln!(
                md,
                "* **Shared machine**: other work was running when this run started (1-minute \
                 load {load1:.1} on {} cores), so figures are pessimistic and noisy — the 2-thread \
                 ones most, since they need both cores; single-thread figures and ratios measured \
                 side by side in the same run are the more trustworthy. Re-run on a quiet machine \
                 for clean figures.",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
        }
        let _ = writeln!(md, "* **Rust**: {} (release, thin LTO)", ctx.rustc);
        if let Some(v) = run.get("/python/versions") {
            let _ = writeln!(
                md,
                "* **Python side**: torch {}, onnxruntime {}, librosa {}, numpy {}, Python {}",
                v["torch"].as_str().unwrap_or("?"),
                v["onnxruntime"].as_str().unwrap_or("?"),
                v["librosa"].as_str().unwrap_or("?"),
                v["numpy"].as_str().unwrap_or("?"),
                v["python"].as_str().unwrap_or("?")
            );
        }
        let _ = writeln!(
            md,
            "* **ONNX Runtime** (plugin side): 1.31.1 CPU, `target/onnxruntime`, loaded with `ORT_DYLIB_PATH`"
        );
        let _ = writeln!(md, "* Every section runs in its own process; raw figures: `target/bench/raw.json`. Flat figures: `docs/benchmarks.json`.\n");

        let _ = writeln!(md, "## Summary\n");
        let _ = writeln!(md, "| measurement | value | target | result |");
        let _ = writeln!(md, "|---|---:|---:|---|");
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} (`{}`) | {} | {} | {} |",
                r.label,
                r.key,
                fmt_opt(r.value, r.unit),
                r.goal_text(),
                match r.verdict() {
                    "MISS" => "**miss**",
                    v => v,
                }
            );
        }
        self.changes(&mut md, ctx);
        if !run.errors.is_empty() {
            let _ = writeln!(md, "\nNot measured in this run:\n");
            for e in &run.errors {
                let _ = writeln!(md, "* {e}");
            }
        }
        md.push('\n');
        sections::write_all(&mut md, run, self, ctx);
        md
    }

    /// Lists the summary figures that moved by [`CHANGE_SHOWN`] or more since
    /// the run whose figures this one replaces.
    fn changes(&self, md: &mut String, ctx: &Context_) {
        let Some(previous) = &ctx.previous else {
            return;
        };
        let field = |key: &str| previous.get(key).and_then(Value::as_str).unwrap_or("?");
        let load = previous
            .get("load_before")
            .and_then(Value::as_str)
            .map_or(String::new(), |l| format!(", load before it: {l}"));
        let moved = moved_rows(&self.rows, &self.flat, previous);
        let _ = writeln!(
            md,
            "\nSince the previous run (`{}` on {}{load}), {} by {:.0} % or more{}",
            field("command"),
            field("date"),
            if moved.is_empty() {
                "no summary figure moved"
            } else {
                "these summary figures moved"
            },
            100.0 * CHANGE_SHOWN,
            if moved.is_empty() { "." } else { ":\n" }
        );
        for line in moved {
            let _ = writeln!(md, "{line}");
        }
    }

    fn flat_num(&self, key: &str) -> Option<f64> {
        self.flat.get(key).and_then(Value::as_f64)
    }
}

/// The detailed sections of BENCHMARKS.md.
mod sections {
    use super::*;

    pub(super) fn write_all(md: &mut String, run: &Run, report: &Report, ctx: &Context_) {
        nca(md, run, report, ctx);
        vocoders(md, run, report);
        callback(md, run);
        regrow(md, run);
        memory(md, run);
        let _ = writeln!(md, "## CUDA\n");
        let _ = writeln!(
            md,
            "Not measured: no GPU lent to this task. (`cargo xtask fetch-ort --gpu` installs the \
             CUDA build; the plugin then prefers the CUDA provider unless `GROWN_FORCE_CPU` is set.)\n"
        );
        misses(md, run, report);
        method(md);
    }

    fn val(run: &Run, pointer: &str, unit: &str) -> String {
        fmt_opt(run.num(pointer), unit)
    }

    /// A Markdown table's header row and its alignment row.
    fn table_head(md: &mut String, header: &str, align: &str) {
        let _ = writeln!(md, "{header}\n{align}");
    }

    fn nca(md: &mut String, run: &Run, report: &Report, ctx: &Context_) {
        let _ = writeln!(md, "## 1. NCA growth\n");
        let flops = run.num("/python/nca/shipped/flops_per_step");
        let nb_flops = run.num("/python/nca/notebook/flops_per_step");
        let _ = writeln!(
            md,
            "Default model (`embedded:strings`, {} channels, {} hidden, perception `{}`) on an \
             80 × 256 grid, one step per ONNX Runtime call through the plugin's own `Nca::step` \
             (mask drawing, session run, NaN check, state copy). The headline uses {} thread(s): \
             what the plugin picks on this machine (half the cores).\n",
            val(run, "/nca_1/channels", ""),
            run.get("/python/nca/shipped/hidden")
                .map_or("?".into(), |v| v.to_string()),
            run.text("/python/nca/shipped/perception")
                .unwrap_or_else(|| "?".into()),
            ctx.headline_threads
        );
        table_head(
            md,
            "| ORT threads | Grown steps/s | notebook NCA, eager PyTorch | ratio | shipped \
             architecture, eager PyTorch | ratio | Grown GFLOP/s | sgemm peak GFLOP/s | % of peak |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        );
        for t in THREADS {
            let f = |k: &str| fmt_opt(report.flat_num(&format!("{k}_{t}t")), "");
            let rate = report
                .flat_num(&format!("nca_steps_per_s_{t}t"))
                .zip(flops)
                .map(|(s, f)| s * f / 1e9);
            let _ = writeln!(
                md,
                "| {t} | {} | {} | {}× | {} | {}× | {} | {} | {} % |",
                f("nca_steps_per_s"),
                f("pytorch_notebook_steps_per_s"),
                f("nca_vs_pytorch_ratio"),
                f("pytorch_same_arch_steps_per_s"),
                f("nca_vs_pytorch_same_arch_ratio"),
                fmt_opt(rate, ""),
                f("matmul_peak_gflops"),
                f("nca_percent_of_peak"),
            );
        }
        let _ = writeln!(
            md,
            "\n* FLOPs per step (Conv/MatMul nodes of the shipped graph, shapes from ONNX Runtime, \
             multiply-add = 2): **{}** for Grown; {} for the notebook NCA (3×3 identity/Sobel/Laplacian \
             perception, 16 channels, 128 hidden), which therefore does more work per step.",
            fmt_opt(flops.map(|f| f / 1e6), " MFLOP"),
            fmt_opt(nb_flops.map(|f| f / 1e6), " MFLOP"),
        );
        let unroll = run.num("/nca_1/unroll").unwrap_or(1.0);
        if unroll > 1.0 {
            let _ = writeln!(
                md,
                "* K-step unrolled model (K = {unroll}): {} steps/s.",
                val(run, "/nca_1/unrolled_steps_per_s", "")
            );
        } else {
            let _ = writeln!(
                md,
                "* K-step unrolled model: **not shipped** (every model in `models/nca` has \
                 `grown.unroll` = 1), so only single-step figures exist."
            );
        }
        if run.get("/python/nca/padding/already_aligned").is_some() {
            let _ = writeln!(
                md,
                "* The shipped graph's perception features are already padded to a multiple of 8 \
                 channels (`export.pad_feature_channels`), so ORT runs the update MLP with its \
                 blocked NCHWc kernels; zero-weight padding columns are not counted as FLOPs."
            );
        } else if let Some(padded) = run.num("/python/nca/padding/padded_steps_per_s") {
            let plain = run.num("/python/nca/padding/plain_steps_per_s");
            let _ = writeln!(
                md,
                "* Feature padding, measured side by side (ONNX Runtime from Python, 1 thread, \
                 windows interleaved): the shipped graph {} steps/s; the same graph with its 97 \
                 perception channels padded to 104 by `export.pad_feature_channels` (zero ramp \
                 channels and zero weight columns; output bit-identical: {}) {} steps/s, {}× the \
                 speed. The shipped `.onnx` files predate that exporter change; the next export \
                 ships it.",
                fmt_opt(plain, ""),
                run.get("/python/nca/padding/bit_identical")
                    .map_or("?".into(), |v| v.to_string()),
                fmt_num(padded),
                fmt_opt(plain.map(|p| padded / p), ""),
            );
        }
        let _ = writeln!(
            md,
            "* sgemm peak: best of 5 runs of numpy (OpenBLAS) and torch matmul at 1024², 1536² and \
             2048² float32, at the same thread count.\n"
        );
    }

    fn vocoders(md: &mut String, run: &Run, report: &Report) {
        let _ = writeln!(md, "## 2. Vocoders\n");
        let _ = writeln!(
            md,
            "Clip: 5 s of `models/targets/strings.ogg` from 10 s (orchestra), mono, resampled to \
             22.05 kHz; its mel from the plugin's `MelAnalyzer` (BigVGAN front end). Both inverters \
             get exactly that log-mel.\n"
        );
        table_head(
            md,
            &format!(
                "| | time for {} s | real-time factor | spectral convergence | lag searched |",
                val(run, "/inverter/seconds_audio", "")
            ),
            "|---|---:|---:|---:|---:|",
        );
        let _ = writeln!(
            md,
            "| Grown built-in inverter ({} Fast Griffin-Lim iterations after PGHI, 1 thread) | {} | {} | {} | {} |",
            val(run, "/inverter/iterations", ""),
            val(run, "/inverter/synth_s", " s"),
            val(run, "/inverter/rtf", ""),
            val(run, "/python/vocoder/inverter_sc/sc_db", " dB"),
            val(run, "/python/vocoder/inverter_sc/lag", " samples"),
        );
        let _ = writeln!(
            md,
            "| librosa {} `feature.inverse.mel_to_audio` (NNLS + 32 Griffin-Lim iterations, {} thread(s), faster of 1 and 2) | {} | {} | {} | {} |",
            run.text("/python/vocoder/librosa_version")
                .unwrap_or_default(),
            val(run, "/python/vocoder/librosa_threads", ""),
            val(run, "/python/vocoder/librosa_s", " s"),
            val(run, "/python/vocoder/librosa_rtf", ""),
            val(run, "/python/vocoder/librosa_sc/sc_db", " dB"),
            val(run, "/python/vocoder/librosa_sc/lag", " samples"),
        );
        let _ = writeln!(
            md,
            "\nSpeed ratio {}; spectral convergence 20·log10(‖S − Ŝ‖/‖S‖) on the linear STFT \
             magnitude (n_fft 1024, hop 256, Hann) of each output re-analysed against the original \
             clip, after the best alignment within ±256 samples (both methods searched alike).\n",
            fmt_opt(report.flat_num("inverter_vs_librosa_speed_ratio"), "×")
        );
        let _ = writeln!(md, "### BigVGAN base on CPU\n");
        let _ = writeln!(
            md,
            "BigVGAN v2 22 kHz 80-band base configuration ({} parameters, random weights: speed does \
             not depend on them), exported by `python -m grown_train export-bigvgan` (TorchScript \
             exporter, opset 17) into `target/bench/` (not committed). {} GFLOP per second of audio \
             (Conv/ConvTranspose nodes).\n",
            fmt_opt(run.num("/prepare/bigvgan/parameters").map(|p| p / 1e6), " M"),
            fmt_opt(
                run.num("/python/bigvgan/flops_per_audio_second").map(|f| f / 1e9),
                ""
            ),
        );
        let _ = writeln!(
            md,
            "Through the plugin's `BigVgan` vocoder (Rust, ONNX Runtime 1.31.1, optimisation level \
             All, deterministic compute; 64-frame chunks with 16 frames of context each side), {} \
             frames ({} s of audio), median of 2 runs:\n",
            val(run, "/bigvgan_2/frames", ""),
            val(run, "/bigvgan_2/seconds_audio", "")
        );
        table_head(
            md,
            "| ORT threads | real-time factor (< 1 is faster than real time) |",
            "|---:|---:|",
        );
        for t in THREADS {
            let _ = writeln!(
                md,
                "| {t} | {} |",
                val(run, &format!("/bigvgan_{t}/rtf"), "")
            );
        }
        if let Some(rows) = run.array("/python/bigvgan/sweep") {
            let _ = writeln!(
                md,
                "\nGraph optimisation levels × threads, ONNX Runtime 1.31.1 from Python, whole mel in \
                 one call (no chunking), {} s of audio:\n",
                val(run, "/python/bigvgan/sweep_seconds_audio", "")
            );
            table_head(
                md,
                "| level | threads | real-time factor | session build |",
                "|---|---:|---:|---:|",
            );
            for r in rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    r["level"].as_str().unwrap_or("?"),
                    r["threads"],
                    fmt_opt(r["rtf"].as_f64(), ""),
                    fmt_opt(r["session_s"].as_f64(), " s"),
                );
            }
        }
        md.push('\n');
    }

    fn callback(md: &mut String, run: &Run) {
        let _ = writeln!(md, "## 3. Audio callback\n");
        let _ = writeln!(
            md,
            "The real plugin (`grown::Grown`) driven through `nice_plug::Plugin::process` by a minimal \
             host at 48 kHz after its engine delivered the first generation; held notes {}, loop on, \
             default envelope; {} s of audio per row after 0.1 s of warm-up. Allocations counted by a \
             per-thread counting global allocator (allocations + frees inside `process`). \
             \"Share of real time\" is wall-clock time inside `process` per second of audio (median \
             of 10 windows); \"CPU share\" is the audio thread's own CPU time (its thread clock) \
             over the same windows, which leaves out time the thread sat descheduled, so on a \
             loaded machine it is the truer measure of the code's cost.\n",
            run.text("/callback/notes")
                .unwrap_or_default(),
            val(run, "/callback/seconds", "")
        );
        table_head(md, "| voices | block | ns per output sample | share of real time | CPU share | worst block | allocations |", "|---:|---:|---:|---:|---:|---:|---:|");
        if let Some(rows) = run.array("/callback/rows") {
            for r in rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r["voices"],
                    r["block"],
                    fmt_opt(r["ns_per_sample"].as_f64(), ""),
                    fmt_opt(r["fraction_of_realtime"].as_f64().map(|f| f * 100.0), " %"),
                    fmt_opt(
                        r["cpu_fraction_of_realtime"].as_f64().map(|f| f * 100.0),
                        " %"
                    ),
                    fmt_opt(r["worst_block_fraction"].as_f64().map(|f| f * 100.0), " %"),
                    r["allocations"],
                );
            }
        }
        md.push('\n');
    }

    fn regrow(md: &mut String, run: &Run) {
        let _ = writeln!(md, "## 4. Regrow latency\n");
        let _ = writeln!(
            md,
            "`grown::engine::Engine` with the default model, Growth 96, Length {} s, built-in vocoder, \
             ONNX Runtime at the plugin's default thread count; the Seed control changes on a settled \
             engine and the clock stops when a generation with a new id arrives on the \
             `GenerationConsumer` (polled every 0.2 ms; a host polls once per block, adding up to one \
             block). Median **{}** of {:?} ms. Engine-reported growth {} steps/s, vocoder real-time \
             factor {}.\n",
            val(run, "/regrow/length_s", ""),
            val(run, "/regrow/latency_ms", " ms"),
            run.array("/regrow/latency_ms_all")
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_f64)
                .map(|v| v.round() as i64)
                .collect::<Vec<_>>(),
            val(run, "/regrow/engine_steps_per_s", ""),
            val(run, "/regrow/engine_vocoder_rtf", ""),
        );
    }

    fn memory(md: &mut String, run: &Run) {
        let _ = writeln!(md, "## 5. Memory\n");
        let rss: Vec<String> = run
            .array("/memory/rss_mb")
            .unwrap_or_default()
            .iter()
            .map(|v| fmt_opt(v.as_f64(), ""))
            .collect();
        let _ = writeln!(
            md,
            "VmRSS of one process holding 1, 2, 3, 4 plugin instances, each activated at 48 kHz \
             with the default model and playing its first generation: {} MiB (the empty bench \
             process: {} MiB). Further instances add {} MiB on average (largest step {}). All \
             sessions of the process share one CPU arena registered on the ONNX Runtime \
             environment (`session.use_env_allocators`); before that each session kept its own \
             and every further instance added ~54 MiB.\n",
            rss.join(", "),
            val(run, "/memory/baseline_mb", ""),
            val(run, "/memory/extra_mb", ""),
            val(run, "/memory/extra_max_mb", " MiB"),
        );
        if let Some(parts) = run.array("/memory_parts/parts") {
            let _ = writeln!(
                md,
                "Where one instance's memory goes (RSS growth per part, built in engine order in a \
                 fresh process; {} frames, {} checkpoints):\n",
                val(run, "/memory_parts/frames", ""),
                val(run, "/memory_parts/checkpoints", "")
            );
            table_head(md, "| part | MiB |", "|---|---:|");
            for p in parts {
                let _ = writeln!(
                    md,
                    "| {} | {} |",
                    p["part"].as_str().unwrap_or("?"),
                    fmt_opt(p["mb"].as_f64(), "")
                );
            }
            md.push('\n');
        }
    }

    fn misses(md: &mut String, run: &Run, report: &Report) {
        let missed: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| r.pass() == Some(false))
            .collect();
        let _ = writeln!(md, "## Missed targets\n");
        if missed.is_empty() {
            let _ = writeln!(md, "None in this run.\n");
            return;
        }
        for r in missed {
            let _ = writeln!(
                md,
                "* **{}** — {} against {}. {}\n",
                r.key,
                fmt_opt(r.value, r.unit),
                r.goal_text(),
                notes::why(r.key, run, report)
            );
        }
    }

    fn method(md: &mut String) {
        let _ = writeln!(md, "## Method\n");
        let _ = writeln!(
            md,
            "* Rust figures: `src/bin/grown-bench.rs` (release), one process per section, \
             `ORT_DYLIB_PATH` = `target/onnxruntime/libonnxruntime.so.1.31.1`, `GROWN_FORCE_CPU=1`, \
             `GROWN_ORT_THREADS` = the thread count in the tables.\n\
             * Python figures: `models/grown_train/bench.py` in the project venv.\n\
             * Rates are medians of 5 timed windows after 8 warm-up steps, on both sides alike; \
             eager PyTorch runs under `torch.inference_mode()` with the per-step fire mask drawn by \
             `torch.rand`, as in the notebook.\n\
             * Targets are goals, not assertions: the command exits non-zero only when a section \
             could not be measured.\n"
        );
    }
}

/// Why each target can be missed and what would move it; the text is chosen
/// from what the run measured, so it stays true when the figures change.
mod notes {
    use super::*;

    pub(super) fn why(key: &str, run: &Run, report: &Report) -> String {
        let h = report.flat_num("nca_threads").unwrap_or(1.0) as usize;
        let f = |v: Option<f64>| fmt_opt(v, "");
        let sps = report.flat_num(&format!("nca_steps_per_s_{h}t"));
        let flops = report.flat_num("nca_flops_per_step");
        let peak = report.flat_num(&format!("matmul_peak_gflops_{h}t"));
        match key {
            "nca_vs_pytorch_ratio" => {
                let padded = run.num("/python/nca/padding/padded_steps_per_s");
                let plain = run.num("/python/nca/padding/plain_steps_per_s");
                let gain = padded.zip(plain).map(|(a, b)| a / b);
                let projected = report
                    .flat_num("nca_vs_pytorch_ratio")
                    .zip(gain)
                    .map(|(r, g)| r * g);
                format!(
                    "**Limit:** both sides run the same kind of kernels — a few depthwise \
                     convolutions, two 1×1 convolutions (the update MLP) and element-wise ops over \
                     20,480 cells — and eager PyTorch's per-op overhead (a dozen ops, microseconds \
                     each) is small next to a {} ms step, so a runtime swap alone cannot be 3× faster \
                     than PyTorch's oneDNN/MKL kernels. Against PyTorch running Grown's own \
                     architecture the ratio is {}× ({} thread(s)). ONNX Runtime's profiler (1 thread, \
                     during development) puts ~45 % of a step in the 97 → 64 1×1 convolution + ReLU, \
                     which misses ORT's blocked NCHWc kernels because 97 input channels are not a \
                     multiple of 8, and ~20 % in the perception's concatenations and layout reorders. \
                     **Done this session:** the exporter now pads the features to 104 channels \
                     (`export.pad_feature_channels`, zero weights, bit-identical output); {} \
                     **What would move it further:** compute all perception kernels as one grouped convolution instead of \
                     a concatenation, ship a K-step unrolled model, or a fused hand-written step \
                     kernel that keeps each tile's features in cache.",
                    f(sps.map(|s| 1e3 / s)),
                    f(report.flat_num(&format!("nca_vs_pytorch_same_arch_ratio_{h}t"))),
                    h,
                    match (gain, projected) {
                        (Some(g), Some(p)) => format!(
                            "measured side by side in this run it gives {}× the step rate, i.e. a \
                             projected ratio of {}× once the shipped models are re-exported.",
                            fmt_num(g),
                            fmt_num(p)
                        ),
                        _ => "the shipped model file is already padded (see section 1), so this \
                              run's figures include it wherever the measuring binary embeds that \
                              file."
                            .to_string(),
                    },
                )
            }
            "nca_percent_of_peak" => format!(
                "**Limit:** the step does {} MFLOP at {} GFLOP/s against a measured sgemm peak of \
                 {} GFLOP/s. The FLOPs sit in thin matrix products (20,480 cells × 97 → 64 and \
                 64 → 16 channels) that ORT runs through its generic NCHW path (97 input channels are \
                 not a multiple of 8, so its blocked NCHWc kernels are skipped), and a third of the time goes to FLOP-free work: concatenating \
                 the ~8 MB feature tensor, layout reorders, masking. At 25 % of peak a step would \
                 take {} ms. **What would move it:** the same levers — NCHWc-friendly channel \
                 counts, no concatenation, fusion of perception and MLP per cache-sized tile — and \
                 fewer bytes per cell (fp16/bf16 activations).",
                f(flops.map(|x| x / 1e6)),
                f(sps.zip(flops).map(|(s, x)| s * x / 1e9)),
                f(peak),
                f(flops.zip(peak).map(|(x, p)| 1e3 * x / (0.25 * p * 1e9))),
            ),
            "inverter_vs_librosa_speed_ratio" => {
                let speed = report.flat_num("inverter_vs_librosa_speed_ratio");
                let better = report
                    .flat_num("inverter_sc_db")
                    .zip(report.flat_num("librosa_sc_db"))
                    .map(|(a, b)| a <= b);
                let mut out = String::new();
                if speed.is_some_and(|s| s < 20.0) {
                    out.push_str(&format!(
                        "**Speed limit:** the inverter does more than librosa per frame — a \
                         40-iteration multiplicative NNLS for mel → linear, phase-gradient heap \
                         integration, then {} Fast Griffin-Lim iterations (an STFT/ISTFT pair each) \
                         — on one thread, while librosa's NNLS and Griffin-Lim are vectorised \
                         numpy/scipy over the whole clip. **Done this session** (the previous run \
                         measured 6.1×): PGHI computes each bin's log magnitude once instead \
                         of inside its sort comparator and neighbour lookups (that sort was most of \
                         the time), the STFT/ISTFT loops copy contiguous runs instead of taking a \
                         modulo per sample, the projection uses |c|² instead of `hypot`, and the \
                         default is 16 Fast Griffin-Lim iterations instead of 32 (spectral convergence \
                         on this clip: PGHI alone −11.25 dB, 16 iterations −11.27 dB, 32 iterations \
                         −11.32 dB; librosa −10.35 dB). **What would move it:** spreading the \
                         independent per-frame work (NNLS, FFTs) over threads, which the plugin \
                         avoids because its engine shares two cores with the audio thread; an f32 \
                         NNLS with fewer iterations; an AVX2 FFT build. ",
                        f(run.num("/inverter/iterations"))
                    ));
                }
                if better == Some(false) {
                    out.push_str(
                        "**Quality limit:** the inverter's spectral convergence is worse than \
                         librosa's on this clip; more Griffin-Lim iterations or a better mel → \
                         linear estimate would move it.",
                    );
                }
                out
            }
            "bigvgan_cpu_rtf" => {
                let per_s = run.num("/python/bigvgan/flops_per_audio_second");
                let peak2 = report.flat_num("matmul_peak_gflops_2t");
                let rtf = report.flat_num("bigvgan_cpu_rtf");
                let raw = run.num("/python/bigvgan/best/rtf");
                format!(
                    "**Definition:** real-time factor = compute seconds per second of audio, so \
                     the target (at least real time) is RTF ≤ 1, and {} means the vocoder runs at \
                     {}× real time. **Limit:** BigVGAN base needs {} GFLOP per second of audio; at the measured \
                     2-thread sgemm peak ({} GFLOP/s) even perfect kernels could not beat a \
                     real-time factor of {}. ONNX Runtime reaches {} GFLOP/s on it ({} % of peak): \
                     most layers are wide 1-D convolutions, and every residual block wraps them in \
                     anti-aliased SnakeBeta activations (2× upsampling, a 12-tap low-pass and \
                     downsampling on each of up to 512 channels), which are depthwise and \
                     memory-bound. The plugin path adds its chunking: 64-frame chunks re-synthesise \
                     16 frames of context on each side (~1.5× the work; one whole-mel call in the \
                     sweep: {}). **What would move it:** a GPU (the CUDA provider; not measured \
                     here), a smaller generator than the base configuration, int8 weights, or \
                     longer chunks with less context when vocoding offline.",
                    f(rtf),
                    f(rtf.map(|r| 1.0 / r)),
                    f(per_s.map(|x| x / 1e9)),
                    f(peak2),
                    f(per_s.zip(peak2).map(|(x, p)| x / (p * 1e9))),
                    f(per_s.zip(rtf).map(|(x, r)| x / r / 1e9)),
                    f(per_s.zip(rtf).zip(peak2).map(|((x, r), p)| 100.0 * x / r / (p * 1e9))),
                    f(raw),
                )
            }
            "callback_fraction_16v_512" => {
                let ns16 = report.flat_num("callback_ns_per_sample_16v_512");
                let allocs = report.flat_num("callback_allocations");
                let cpu16 = report.flat_num("callback_cpu_fraction_16v_512");
                let mut out = format!(
                    "**Limit:** every voice reads the bank through a band-limited windowed-sinc \
                     interpolator: two 32-tap dot products and a blend per output sample (a \
                     generation at 22.05 kHz played at 48 kHz and any pitch), i.e. {} ns per voice \
                     and sample here (wall clock; by the audio thread's own CPU clock the 16-voice \
                     share is {} %, the gap being time the thread sat descheduled on this loaded \
                     machine). **Done this session:** the kernel runs an AVX2 build when the CPU has \
                     it (runtime detection; the same IEEE operations in the same order, so output is \
                     bit-identical to the SSE2 build, which a test checks), the stereo pair shares \
                     one position and kernel-row lookup, and the 8-lane sums reduce as a tree. \
                     **What would move it:** a 16-tap kernel for voices pitched down (where the wider \
                     transition band is inaudible), resampling each generation once to the output \
                     rate so voices near the root note need fewer taps, or rendering voices in \
                     blocks (positions first, then dot products) so the per-sample bookkeeping \
                     vectorises too.",
                    f(ns16.map(|n| n / 16.0)),
                    f(cpu16.map(|c| 100.0 * c)),
                );
                if allocs.is_some_and(|a| a > 0.0) {
                    out.push_str(" The callback also allocated, which must be fixed first.");
                }
                out
            }
            "regrow_latency_ms" => {
                let total = run.num("/regrow/latency_ms");
                let vrtf = run.num("/regrow/engine_vocoder_rtf");
                let len = run.num("/regrow/length_s").unwrap_or(3.0);
                let vocode_ms = vrtf.map(|r| r * len * 1e3);
                let grow_ms = total.zip(vocode_ms).map(|(t, v)| t - v);
                let peak1 = report.flat_num("matmul_peak_gflops_1t");
                let floor_ms = flops.zip(peak1).map(|(x, p)| 96.0 * x / (p * 1e9) * 1e3);
                format!(
                    "**Limit:** a new seed restarts growth from noise. Of the {} ms, one vocoder \
                     pass takes ~{} ms (real-time factor {} on {} s of sound); the rest, ~{} ms, \
                     is 96 NCA steps one after another (~{} steps/s on the 258-frame grid of the \
                     default length). Growth is the bulk, and it is bounded by arithmetic: 96 steps \
                     are ~{} GFLOP, which even at 100 % of this machine's measured 1-thread sgemm \
                     peak ({} GFLOP/s) take {} ms; with this run's vocoder pass the target needs the \
                     NCA at {} % of that peak, against the {} % it reaches (section 1) and the ~25–30 \
                     % thin 1×1 convolutions get from any CPU runtime. So it cannot be met with this \
                     model on this CPU at one engine thread (the plugin gives ONNX Runtime half the \
                     cores). **Done this session:** the vocoder pass costs about \
                     half what it did (see the inverter), and the exporter's feature padding (section \
                     1) speeds every step once the models are re-exported. **What would move it:** \
                     less arithmetic per step (evaluating the update MLP only on the cells that \
                     fire, ~half of them, or a narrower hidden layer), a GPU, or publishing \
                     intermediate generations while growing so the change is heard after a first \
                     fraction of the steps.",
                    f(total),
                    f(vocode_ms),
                    f(vrtf),
                    f(Some(len)),
                    f(grow_ms),
                    f(grow_ms.map(|g| 96e3 / g)),
                    f(flops.map(|x| 96.0 * x / 1e9)),
                    f(peak1),
                    f(floor_ms),
                    f(floor_ms
                        .zip(vocode_ms)
                        .map(|(fl, v)| 100.0 * fl / (500.0 - v).max(1.0))),
                    f(report.flat_num("nca_percent_of_peak")),
                )
            }
            "rss_first_mb" | "rss_extra_mb" => {
                let grow = run.array("/memory_parts/parts").and_then(|parts| {
                    parts
                        .iter()
                        .find(|p| p["part"].as_str().is_some_and(|s| s.starts_with("growing")))
                        .and_then(|p| p["mb"].as_f64())
                });
                format!(
                    "**Limit:** per instance the largest part is growing itself ({} MiB in the \
                     table above, measured in a process holding one instance): ONNX Runtime's \
                     buffers for one step's intermediates at full length (the feature tensor alone is \
                     8 MiB at 258 frames, plus padded copies, the 64-channel hidden layer and the \
                     output), plus the NCA state and {} checkpoints of 1.3 MiB. **Done this \
                     session:** every session now draws on one CPU arena registered on the shared \
                     ONNX Runtime environment (`session.use_env_allocators`), so instances reuse the \
                     same intermediate buffers instead of each keeping its own arena (54 MiB per \
                     further instance before). **What would move it further:** stepping the grid in \
                     time tiles (with a circular halo) so intermediates scale with the tile, not the \
                     sound; a smaller checkpoint cache; or a fused step kernel with no full-size \
                     intermediates.",
                    f(grow),
                    f(run.num("/memory_parts/checkpoints")),
                )
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &'static str, value: Option<f64>) -> Row {
        Row {
            key,
            label: key.into(),
            value,
            unit: " ms",
            goal: None,
            also: None,
        }
    }

    #[test]
    fn only_figures_that_moved_enough_are_listed() {
        let previous: Map<String, Value> = serde_json::from_str(
            r#"{"slower": 100.5, "steady": 100.5, "zero": 0.0, "text": "x", "share": 0.022}"#,
        )
        .unwrap();
        let current: Map<String, Value> = serde_json::from_str(
            r#"{"slower": 125.5, "steady": 105.5, "zero": 3.5, "text": 3.5, "new": 3.5,
                "share": 0.033}"#,
        )
        .unwrap();
        let rows = [
            row("slower", Some(125.5)),
            row("steady", Some(105.5)),
            row("zero", Some(3.5)),
            row("text", Some(3.5)),
            row("new", Some(3.5)),
            row("steady", None),
            // The flat figure a fraction, its row a percentage.
            row("share", Some(3.3)),
        ];
        assert_eq!(
            moved_rows(&rows, &current, &previous),
            [
                "* `slower`: 100.5 ms → 125.5 ms (+25 %)",
                "* `share`: 2.200 ms → 3.300 ms (+50 %)",
            ]
        );
    }
}
