//! Figures of the product's code paths run directly, without a host: NCA
//! stepping, the built-in inverter and the BigVGAN vocoder.

use super::*;

/// NCA growth rate through the product's own stepping code (`Nca::step_n`:
/// mask drawing, the ONNX Runtime call, the NaN check and the state copy).
/// Median of five timed windows, so one descheduling does not decide it.
pub(super) fn nca(frames: usize, seconds: f64) -> Result<Value> {
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
pub(super) fn read_wav(path: &Path) -> Result<(Vec<f32>, u32)> {
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

pub(super) fn write_wav(path: &Path, audio: &[f32], sample_rate: u32) -> Result<()> {
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
pub(super) fn analyse_clip(clip: &Path, dir: &Path) -> Result<(MelConfig, Spectrogram, usize)> {
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
pub(super) fn inverter(clip: &Path, dir: &Path, iterations: Option<usize>) -> Result<Value> {
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
pub(super) fn bigvgan(model: &Path, dir: &Path, frames: usize, runs: usize) -> Result<Value> {
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
