//! Runs every measurement section (each in its own process) and writes the
//! report: the body of `cargo xtask bench`.

use super::*;

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

/// Alternating NCA timing rounds (see [`run`]).
const NCA_ROUNDS: usize = 3;

/// One result from several rounds of the same measurement: the first round's
/// JSON with `steps_per_s` at each of `arms` (JSON pointers; "" for the top)
/// replaced by the median over rounds (`best`: the fastest round), and the
/// rounds' own figures beside it as `steps_per_s_rounds`. None when no round
/// was measured.
fn merge_rounds(rounds: &[Value], arms: &[&str], best: bool) -> Option<Value> {
    let mut merged = rounds.first()?.clone();
    for arm in arms {
        let mut rates: Vec<f64> = rounds
            .iter()
            .filter_map(|r| r.pointer(&format!("{arm}/steps_per_s"))?.as_f64())
            .collect();
        let Some(slot) = merged.pointer_mut(arm).and_then(Value::as_object_mut) else {
            continue;
        };
        slot.insert("steps_per_s_rounds".into(), json!(rates.clone()));
        rates.sort_by(f64::total_cmp);
        let pick = if best {
            rates.last()
        } else {
            rates.get(rates.len() / 2)
        };
        if let Some(&rate) = pick {
            slot.insert("steps_per_s".into(), json!(rate));
        }
    }
    Some(merged)
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
                "grown-tools",
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

    // Grown's NCA and eager PyTorch's are timed in alternating rounds, Grown's
    // figure the median of its rounds, PyTorch's the best: a slow phase of a shared
    // machine (its second core can come and go) then hits both sides of a
    // ratio instead of one.
    let rounds = if opts.quick { 1 } else { NCA_ROUNDS };
    let round_s = format!("{}", nca_s.parse::<f64>().unwrap_or(4.0) / rounds as f64);
    let mut ours: Vec<Vec<Value>> = vec![Vec::new(); THREADS.len()];
    let mut torch = Vec::new();
    for round in 1..=rounds {
        for (i, t) in THREADS.into_iter().enumerate() {
            let mut c = rust("nca", Some(t));
            c.args(["--frames", "256", "--seconds", &round_s]);
            let what = format!("rust: NCA steps, {t} thread(s), round {round}/{rounds}");
            match run_json(c, &what) {
                Ok(v) => ours[i].push(v),
                Err(e) => run.record(&format!("nca_{t}"), Err(e)),
            }
        }
        let mut c = py("torch-nca");
        c.arg("--onnx")
            .arg(root.join("models/nca/strings.onnx"))
            .args(["--threads", "1,2", "--frames", "256", "--seconds", &round_s]);
        let what = format!("python: eager PyTorch NCA, round {round}/{rounds}");
        match run_json(c, &what) {
            Ok(v) => torch.push(v),
            Err(e) => run.record("torch_nca", Err(e)),
        }
    }
    for (i, t) in THREADS.into_iter().enumerate() {
        if let Some(merged) = merge_rounds(&ours[i], &[""], false) {
            run.record(&format!("nca_{t}"), Ok(merged));
        }
    }
    let arms: Vec<String> = ["notebook", "same_arch"]
        .iter()
        .flat_map(|arm| THREADS.map(|t| format!("/{arm}/{t}")))
        .collect();
    let arms: Vec<&str> = arms.iter().map(String::as_str).collect();
    // The reference at its best: eager PyTorch's 2-thread rate on this VM
    // varies 2-3x between processes (thread-pool start-up), so the fastest
    // round is the one a ratio must beat.
    if let Some(merged) = merge_rounds(&torch, &arms, true) {
        run.record("torch_nca", Ok(merged));
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
