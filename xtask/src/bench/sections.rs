//! The detailed sections of BENCHMARKS.md.

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
    if let Some(shipped) = run.num("/python/nca/layout/shipped_steps_per_s") {
        let traced = run.num("/python/nca/layout/traced_steps_per_s");
        let _ = writeln!(
            md,
            "* Graph layout, measured side by side (ONNX Runtime from Python, 1 thread, windows \
             interleaved): the shipped graph, whose features come in whole blocks of 16 channels \
             (`export.BlockedStep`: each perception kernel a blocked depthwise convolution, the \
             concatenation and the update MLP in ORT's NCHWc layout), {} steps/s; the same \
             weights in the traced layout (`perceive`'s order, padded to 104 channels, \
             concatenated in plain layout and reordered every step) {} steps/s: {}× the speed. \
             The two differ by rounding only (largest difference after 8 steps: {}).",
            fmt_num(shipped),
            fmt_opt(traced, ""),
            fmt_opt(traced.map(|t| shipped / t), ""),
            val(run, "/python/nca/layout/max_abs_diff_8_steps", ""),
        );
    }
    let _ = writeln!(
        md,
        "* FLOPs count multiply-adds by non-zero weights only: padding channels and the zero \
         taps of the fixed 3×3 kernels do no work (the identity kernel counts as one tap)."
    );
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
    let _ =
        writeln!(
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
        "`grown::engine::Engine` with the default model, Growth {} (the default), Length {} s, built-in vocoder, \
         ONNX Runtime at the plugin's default thread count; the Seed control changes on a settled \
         engine and the clock stops when a generation with a new id arrives on the \
         `GenerationConsumer` (polled every 0.2 ms; a host polls once per block, adding up to one \
         block). Median **{}** of {:?} ms. Engine-reported growth {} steps/s, vocoder real-time \
         factor {}.\n",
        val(run, "/regrow/growth_steps", ""),
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
         with the default model and playing its finished first sound (growth done): {} MiB (the empty bench \
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
        "* Rust figures: `crates/tools/src/bin/grown-bench/` (release), one process per section, \
         `ORT_DYLIB_PATH` = `target/onnxruntime/libonnxruntime.so.1.31.1`, `GROWN_FORCE_CPU=1`, \
         `GROWN_ORT_THREADS` = the thread count in the tables.\n\
         * Python figures: `models/grown_train/bench.py` in the project venv.\n\
         * NCA rates: Grown (1 thread, 2 threads) and eager PyTorch (both thread counts) are \
         timed in 3 alternating rounds, each round the median of 5 windows after 8 warm-up \
         steps (all rounds in `raw.json`), so a slow phase of this shared machine weighs on \
         both sides of a ratio; Grown's figure is the median of its rounds, PyTorch's the \
         fastest (its 2-thread rate here varies 2–3× from one process to the next); eager \
         PyTorch runs under `torch.inference_mode()` with the per-step fire mask drawn by \
         `torch.rand`, as in the notebook.\n\
         * Targets are goals, not assertions: the command exits non-zero only when a section \
         could not be measured.\n"
    );
}
