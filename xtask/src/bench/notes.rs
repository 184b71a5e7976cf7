//! Why each target can be missed and what would move it; the text is chosen
//! from what the run measured, so it stays true when the figures change.

use super::*;

pub(super) fn why(key: &str, run: &Run, report: &Report) -> String {
    let f = |v: Option<f64>| fmt_opt(v, "");
    let flops = report.flat_num("nca_flops_per_step");
    match key {
        "nca_vs_pytorch_ratio_1t" | "nca_vs_pytorch_ratio_2t" => {
            let t = if key.ends_with("_2t") { 2 } else { 1 };
            let sps = report.flat_num(&format!("nca_steps_per_s_{t}t"));
            let torch1 = report.flat_num("pytorch_notebook_steps_per_s_1t");
            let torch2 = report.flat_num("pytorch_notebook_steps_per_s_2t");
            let ours1 = report.flat_num("nca_steps_per_s_1t");
            let ours2 = report.flat_num("nca_steps_per_s_2t");
            format!(
                "**Limit:** both sides run the same kind of kernels — depthwise convolutions, \
                 two 1×1 convolutions (the update MLP) and element-wise ops over 20,480 cells — \
                 and eager PyTorch's per-op overhead is small next to a {} ms step, so a runtime \
                 swap alone cannot be 3× faster than PyTorch's oneDNN kernels. Against PyTorch \
                 running Grown's own architecture the ratio is {}× ({t} thread(s)). From 1 to 2 \
                 threads eager PyTorch went {}× faster in this run and Grown {}×: ONNX Runtime \
                 splits each of the step's ~15 nodes over its pool and waits at the end of each, \
                 while the 2-core machine also runs the measuring process. **Already done:** \
                 the exported step's features come in whole blocks of 16 channels \
                 (`export.BlockedStep`), so ONNX Runtime runs perception, concatenation and MLP \
                 in its blocked layout instead of reordering the ~100-channel feature tensor \
                 every step: {}× the traced layout's rate, side by side in this run (section 1). \
                 **What would move it further:** a hand-written fused step that computes each \
                 cache-sized tile's features and feeds them straight to the MLP (ONNX Runtime \
                 materialises and concatenates ~9 MB of features per step), or fewer features \
                 per cell (a retrained architecture).",
                f(sps.map(|s| 1e3 / s)),
                f(report.flat_num(&format!("nca_vs_pytorch_same_arch_ratio_{t}t"))),
                f(torch2.zip(torch1).map(|(a, b)| a / b)),
                f(ours2.zip(ours1).map(|(a, b)| a / b)),
                f(run
                    .num("/python/nca/layout/shipped_steps_per_s")
                    .zip(run.num("/python/nca/layout/traced_steps_per_s"))
                    .map(|(a, b)| a / b)),
            )
        }
        "nca_percent_of_peak_1t" | "nca_percent_of_peak_2t" => {
            let t = if key.ends_with("_2t") { 2 } else { 1 };
            let sps = report.flat_num(&format!("nca_steps_per_s_{t}t"));
            let peak = report.flat_num(&format!("matmul_peak_gflops_{t}t"));
            format!(
                "**Limit:** the step does {} MFLOP at {} GFLOP/s against a measured sgemm peak \
                 of {} GFLOP/s. ONNX Runtime's profiler (1 thread, during development) puts \
                 about half of a step in the 112 → 64 1×1 convolution, which its blocked kernel \
                 runs at ~90 % of that peak; the rest does little or no arithmetic: the \
                 memory-bound depthwise perception, copying the ~9 MB feature tensor into one \
                 (~15 %), reordering the inputs into the blocked layout, masking and the \
                 residual add. At 60 % of peak a step would take {} ms. **What would move it:** \
                 perception and MLP fused per cache-sized tile (a hand-written kernel; a graph \
                 cannot express it to ONNX Runtime), and fewer bytes per cell (fp16/bf16 \
                 activations).",
                f(flops.map(|x| x / 1e6)),
                f(sps.zip(flops).map(|(s, x)| s * x / 1e9)),
                f(peak),
                f(flops.zip(peak).map(|(x, p)| 1e3 * x / (0.6 * p * 1e9))),
            )
        }
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
                     numpy/scipy over the whole clip. **Already done** (a run before it \
                     measured 6.1×): PGHI computes each bin's log magnitude once instead \
                     of inside its sort comparator and neighbour lookups (that sort was most of \
                     the time), the STFT/ISTFT loops copy contiguous runs instead of taking a \
                     modulo per sample, the projection uses |c|² instead of `hypot`; the NNLS \
                     solves 8 frames at once, in f32, as one AVX2 vector per step when the CPU \
                     has it (each lane the same arithmetic as its frame alone), and PGHI sorts \
                     integer keys and pops them from a 4-ary heap; the default \
                     is 8 Fast Griffin-Lim iterations instead of 16 (spectral convergence against \
                     the recording on this clip: PGHI alone −11.25 dB, 2 iterations −11.63, 4 \
                     −11.41, 8 −11.31, 16 −11.27; librosa −10.4). Not 4, although they would pass \
                     this ratio with a better convergence here: in the hearing evaluation they took \
                     the synthetic chord's partials from fine structure 0.57 to 0.43 (its ceiling \
                     0.67 to 0.56), while the real recordings moved by 0.02 at most. \
                     **What would move it:** spreading the \
                     independent per-frame work (NNLS, FFTs) over threads, which the plugin \
                     avoids because its engine shares two cores with the audio thread; fewer NNLS \
                     iterations; a PGHI that integrates phase without a global priority order. ",
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
                 machine). **Already done:** the whole voice loop runs an AVX2 build when the \
                 CPU has it, with the kernel inlined into it (runtime detection; the same IEEE \
                 operations in the same order, so output is bit-identical to the SSE2 build, \
                 which a test checks; until the kernel stopped being a closure it was compiled \
                 for SSE2 even there), the stereo pair shares one position and kernel-row \
                 lookup, and both the four 8-tap products and the 8 lanes are summed as trees \
                 (two dependent adds per dot product instead of four). \
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
            // The finished generation's vocoder pass, and the early one's (its
            // phase estimate alone, about a third of a pass).
            let passes = 4.0 / 3.0;
            let grow_ms = total.zip(vocode_ms).map(|(t, v)| t - passes * v);
            let peak1 = report.flat_num("matmul_peak_gflops_1t");
            let steps = run.num("/regrow/growth_steps").unwrap_or(f64::NAN);
            let floor_ms = flops.zip(peak1).map(|(x, p)| steps * x / (p * 1e9) * 1e3);
            let needed = floor_ms
                .zip(vocode_ms)
                .map(|(fl, v)| 100.0 * fl / (500.0 - passes * v).max(1.0));
            let reached = report.flat_num("nca_percent_of_peak");
            let verdict = match needed.zip(reached) {
                Some((n, r)) if n <= r => format!(
                    "Section 1's NCA reaches more than that, so the arithmetic allows it: at \
                     section 1's {} steps/s the growth would take ~{} ms. The engine grew at \
                     fewer steps/s in this run because other work shared the cores (see the \
                     load above); a quiet run is the one to judge it by.",
                    f(report.flat_num("nca_steps_per_s")),
                    f(report
                        .flat_num("nca_steps_per_s")
                        .map(|r| steps * 1e3 / r + passes * vocode_ms.unwrap_or(0.0))),
                ),
                _ => "So it cannot be met with this model on this CPU at one engine thread (the \
                      plugin gives ONNX Runtime half the cores)."
                    .to_owned(),
            };
            format!(
                "**Limit:** a new seed restarts growth from its seed state. Of the {} ms, one \
                 vocoder pass takes ~{} ms (real-time factor {} on {} s of sound), and the early \
                 generation's (its phase estimate alone) about a third of that; the rest, ~{} ms, \
                 is {} NCA steps one after another (~{} steps/s on the 258-frame grid of the \
                 default length). Growth is the bulk, and it is bounded by arithmetic: {} steps \
                 are ~{} GFLOP, which even at 100 % of this machine's measured 1-thread sgemm \
                 peak ({} GFLOP/s) take {} ms; with this run's vocoder passes the target needs \
                 the NCA at {} % of that peak, against the {} % it reaches (section 1) and the \
                 ~25–30 % thin 1×1 convolutions get from any CPU runtime. {} **What the musician \
                 hears instead:** the new seed within `regrow_first_audible_ms`, because the \
                 engine publishes an early generation 8 steps in (the default model's seed state \
                 is a passage of its recording, so that is already the new seed's sound; the \
                 finished one morphs in after it and is bit-identical to a direct growth), and a \
                 recent seed again within `regrow_return_ms`, because the last four grown seeds \
                 are kept. **What would move it:** less arithmetic per step (evaluating the \
                 update MLP only on the cells that fire, ~half of them, or a narrower hidden \
                 layer), speculative growth of the neighbouring seeds while idle, or a GPU.",
                f(total),
                f(vocode_ms),
                f(vrtf),
                f(Some(len)),
                f(grow_ms),
                f(Some(steps)),
                f(grow_ms.map(|g| steps * 1e3 / g)),
                f(Some(steps)),
                f(flops.map(|x| steps * x / 1e9)),
                f(peak1),
                f(floor_ms),
                f(needed),
                f(reached),
                verdict,
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
