//! Figures of the whole plugin inside that host: the audio callback, regrowth
//! after a seed change, and instance memory.

use super::*;

/// Lowest and highest note of the benchmark chords: two octaves around the
/// root (C4 = 60), the range a player spreads a chord over. The cost per voice
/// depends on pitch: up to about +13 semitones a fixed 32-tap polyphase kernel
/// runs; above it the kernel stretches with the playback rate.
pub(super) const CHORD: (u8, u8) = (48, 72);

/// Note `i` of a chord of `n` notes spread evenly over [`CHORD`] (one voice
/// plays the root).
pub(super) fn chord_note(i: usize, n: usize) -> u8 {
    if n <= 1 {
        return 60;
    }
    let span = usize::from(CHORD.1 - CHORD.0);
    CHORD.0 + ((i * span + (n - 1) / 2) / (n - 1)) as u8
}

/// Audio callback cost: the real `Plugin::process` with 1, 8 and 16 held
/// voices at 32- and 512-sample blocks, 48 kHz.
pub(super) fn callback(seconds: f64) -> Result<Value> {
    let mut inst = Instance::new(16)?;
    let ready = inst.wait_until_grown(Duration::from_secs(180))?;
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

/// Seed change → the new seed heard (its first generation, provisional or
/// not) and fully grown (its finished generation) at the audio side of the
/// queue, for the default growth ([`DEFAULT_GROWTH`]) at the default length, through the
/// real engine thread; then the time to go back to the previous seed.
pub(super) fn regrow(repeats: usize) -> Result<Value> {
    let controls = Arc::new(EngineControls::default());
    controls.growth.store(DEFAULT_GROWTH, Ordering::Relaxed);
    let status = Arc::new(EngineStatus::default());
    let (producer, mut consumer) = generation_queue(GENERATION_POOL, GENERATION_CAPACITY);
    let (snapshots, _editor) = triple_buffer::triple_buffer(&Spectrogram::default());
    let engine = Engine::spawn(controls.clone(), status.clone(), producer, snapshots, None);
    // Waits for generations after `after`: returns the first one's time and
    // the finished one's (id, time).
    let mut wait = |after: u64, timeout: Duration| -> Result<(Duration, u64, Duration)> {
        let t0 = Instant::now();
        let mut first = None;
        loop {
            while let Some(g) = consumer.receive() {
                let (id, provisional) = (g.id, g.provisional);
                consumer.recycle(g);
                if id > after {
                    let heard = *first.get_or_insert(t0.elapsed());
                    if !provisional {
                        return Ok((heard, id, t0.elapsed()));
                    }
                }
            }
            if t0.elapsed() > timeout {
                let err = status.error.lock().clone();
                bail!("no generation within {timeout:?} ({err})");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    let (_, mut last, first) = wait(0, Duration::from_secs(180))?;
    let (mut heard_ms, mut grown_ms, mut back_ms) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..repeats {
        // Idle engine first, as when a user turns the knob on a settled sound.
        std::thread::sleep(Duration::from_millis(200));
        let previous = controls.seed.load(Ordering::Relaxed);
        controls.seed.store(100 + r as u32, Ordering::Relaxed);
        let (heard, id, grown) = wait(last, Duration::from_secs(120))?;
        last = id;
        heard_ms.push(heard.as_secs_f64() * 1e3);
        grown_ms.push(grown.as_secs_f64() * 1e3);
        // Back to the seed before, and forward again: both recently grown.
        std::thread::sleep(Duration::from_millis(200));
        controls.seed.store(previous, Ordering::Relaxed);
        let (_, id, back) = wait(last, Duration::from_secs(120))?;
        last = id;
        back_ms.push(back.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(200));
        controls.seed.store(100 + r as u32, Ordering::Relaxed);
        let (_, id, _) = wait(last, Duration::from_secs(120))?;
        last = id;
    }
    let steps_per_s = status.steps_per_s.load(Ordering::Relaxed);
    let vocoder_rtf = status.vocoder_rtf.load(Ordering::Relaxed);
    drop(engine);
    let all = grown_ms.clone();
    Ok(json!({
        "first_audible_ms": median(&mut heard_ms),
        "latency_ms": median(&mut grown_ms),
        "latency_ms_all": all,
        "return_ms": median(&mut back_ms),
        "growth_steps": DEFAULT_GROWTH,
        "length_s": controls.length_s.load(Ordering::Relaxed),
        "engine_steps_per_s": steps_per_s,
        "engine_vocoder_rtf": vocoder_rtf,
        "first_generation_s": first.as_secs_f64(),
        "threads": ort_threads(),
    }))
}

/// Resident set size of this process, MiB.
pub(super) fn rss_mb() -> Result<f64> {
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
/// default model and playing its finished first sound (growth done).
pub(super) fn memory(instances: usize) -> Result<Value> {
    let baseline = rss_mb()?;
    let mut alive = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..instances.max(1) {
        let mut inst = Instance::new(8)?;
        // Settled, so no two instances grow at once (their ONNX Runtime
        // arena is shared and would hold both runs' buffers).
        inst.wait_until_grown(Duration::from_secs(180))?;
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
pub(super) fn memory_parts() -> Result<Value> {
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
        .grow(1, DEFAULT_GROWTH, frames, 0.5, 0.0)
        .map_err(|e| anyhow!("{e}"))?
        .clone();
    let checkpoints = grower.checkpoint_count();
    mark(
        &format!("growing {DEFAULT_GROWTH} steps at 3 s (state, ORT arena, checkpoints)"),
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
