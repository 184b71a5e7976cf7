//! `grown`: the offline command line. Same engine, vocoder and voices as the plugin.
//!
//! grown render [--model M] [--seed S] [--growth N] [--length SEC] [--root KEY]
//!              [--sample-rate HZ] --notes "60@0.0+1.5,67@0.5+1.0" --out out.wav [--png out.png]
//! grown info [model.onnx]
//! grown vocode --audio in.wav --out out.wav
//! grown soak [--seconds S] [--drift STEPS_PER_S] [--model M] [--seed S] [--bound on|off]

use grown::grow::model::NcaModel;
use grown::render::{self, RenderRequest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: grown render [--model M.onnx] [--seed S] [--growth N] [--length SEC] \
[--root KEY] [--sample-rate HZ] --notes \"60@0.0+1.5,67@0.5+1.0\" --out out.wav [--png out.png]\n       grown info [model.onnx]\n       grown vocode --audio in.wav --out out.wav\n       grown soak [--seconds S] [--drift STEPS_PER_S] [--model M.onnx] [--seed S] [--bound on|off]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("grown: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("render") => render_cmd(&parse_flags(&args[1..])?),
        Some("info") => info_cmd(args.get(1).map(PathBuf::from)),
        Some("vocode") => vocode_cmd(&parse_flags(&args[1..])?),
        Some("soak") => soak_cmd(&parse_flags(&args[1..])?),
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing command\n{USAGE}")),
    }
}

fn parse_flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    const KNOWN: &[&str] = &[
        "model",
        "seed",
        "growth",
        "length",
        "root",
        "sample-rate",
        "notes",
        "out",
        "png",
        "seconds",
        "drift",
        "bound",
        "audio",
    ];
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument '{arg}'"))?;
        if !KNOWN.contains(&name) {
            return Err(format!("unknown option --{name}"));
        }
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_owned(), value.clone());
    }
    Ok(flags)
}

fn number<T: std::str::FromStr>(
    flags: &HashMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match flags.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{name} '{v}' is not a valid number")),
    }
}

fn load_model(path: Option<&Path>) -> Result<NcaModel, String> {
    match path {
        None => NcaModel::load_embedded_default().map_err(|e| e.to_string()),
        Some(p) => NcaModel::load(p).map_err(|e| e.to_string()),
    }
}

fn render_cmd(flags: &HashMap<String, String>) -> Result<(), String> {
    let out = flags
        .get("out")
        .map(PathBuf::from)
        .ok_or("render needs --out FILE.wav")?;
    let notes = render::parse_notes(flags.get("notes").ok_or("render needs --notes")?)
        .map_err(|e| e.to_string())?;
    let model_path = flags.get("model").map(PathBuf::from);
    let model = load_model(model_path.as_deref())?;
    let growth_default = model.info.growth_steps;

    let mut req = RenderRequest::new(
        number(flags, "seed", 1u32)?,
        number(flags, "growth", growth_default)?,
        notes,
    );
    req.length_s = number(flags, "length", req.length_s)?;
    req.voice.root_note = number(flags, "root", 60u8)? as f32;
    req.sample_rate = number(flags, "sample-rate", req.sample_rate)?;
    if !(8000.0..=384_000.0).contains(&req.sample_rate) {
        return Err("--sample-rate must be between 8000 and 384000".into());
    }
    if !(0.05..=60.0).contains(&req.length_s) {
        return Err("--length must be between 0.05 and 60 seconds".into());
    }
    if req.growth > grown::params::MAX_GROWTH as u32 {
        return Err(format!(
            "--growth must be at most {}",
            grown::params::MAX_GROWTH
        ));
    }

    let rendered = render::render(model, &req).map_err(|e| e.to_string())?;
    render::write_wav(&out, &rendered).map_err(|e| e.to_string())?;
    if let Some(png) = flags.get("png") {
        match &rendered.stft_ms {
            // Stereo models: the research's CMYK picture of the four channels.
            Some(grid) => render::write_stft_ms_png(Path::new(png), grid),
            None => render::write_png(Path::new(png), &rendered.spectrogram),
        }
        .map_err(|e| e.to_string())?;
    }
    let peak = rendered
        .left
        .iter()
        .chain(&rendered.right)
        .fold(0.0f32, |m, v| m.max(v.abs()));
    println!(
        "wrote {} ({:.2} s at {} Hz, peak {:.3}); grew {} steps with seed {}",
        out.display(),
        rendered.left.len() as f32 / rendered.sample_rate as f32,
        rendered.sample_rate,
        peak,
        req.growth,
        req.seed
    );
    Ok(())
}

/// The recording's own mel through the built-in inverter: what a perfect mel model
/// would sound like through this vocoder (the hearing evaluation's ceiling).
fn vocode_cmd(flags: &HashMap<String, String>) -> Result<(), String> {
    use grown::vocoder::Vocoder;
    let input = flags.get("audio").ok_or("vocode needs --audio IN.wav")?;
    let out = flags.get("out").ok_or("vocode needs --out OUT.wav")?;
    let mut reader = hound::WavReader::open(input).map_err(|e| format!("{input}: {e}"))?;
    let spec = reader.spec();
    let cfg = grown::dsp::mel::MelConfig::bigvgan_22k();
    if spec.sample_rate != cfg.sample_rate {
        return Err(format!(
            "{input} is at {} Hz; the mel front end needs {} Hz",
            spec.sample_rate, cfg.sample_rate
        ));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let full = (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 / full))
                .collect::<Result<_, _>>()
        }
    }
    .map_err(|e| format!("{input}: {e}"))?;
    let channels = spec.channels.max(1) as usize;
    let mono: Vec<f32> = interleaved
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect();
    let mel = grown::dsp::mel::MelAnalyzer::new(cfg.clone()).analyze(&mono);
    let mut audio = Vec::new();
    grown::vocoder::inverter::Inverter::new(cfg.clone())
        .synthesize(&mel, &mut audio)
        .map_err(|e| e.to_string())?;
    let wav = hound::WavSpec {
        channels: 1,
        sample_rate: cfg.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(out, wav).map_err(|e| format!("{out}: {e}"))?;
    for v in &audio {
        writer.write_sample(*v).map_err(|e| format!("{out}: {e}"))?;
    }
    writer.finalize().map_err(|e| format!("{out}: {e}"))?;
    println!("wrote {out} ({} mel frames inverted)", mel.frames);
    Ok(())
}

fn info_cmd(path: Option<PathBuf>) -> Result<(), String> {
    let model = load_model(path.as_deref())?;
    let i = &model.info;
    println!("source:          {}", model.source);
    println!("contract:        {}", i.contract);
    println!("representation:  {}", i.representation);
    println!(
        "channels:        {} (spectrogram in channel {})",
        i.channels, i.spec_channel
    );
    match &i.stft {
        Some(cfg) => {
            println!(
                "mapping:         channels {}..{} = M re, M im, S re, S im; x = sign(v)·(exp({} * |v| + {}) − exp({}))",
                i.spec_channel,
                i.spec_channel + 3,
                i.spec_scale,
                i.spec_offset,
                i.spec_offset
            );
            println!(
                "stft:            n_fft {}, hop {}, {} bins, {} Hz (played by inverse STFT, no vocoder)",
                cfg.n_fft, cfg.hop, cfg.bins, cfg.sample_rate
            );
        }
        None => {
            println!(
                "mapping:         ln(mel) = {} * state + {}",
                i.spec_scale, i.spec_offset
            );
            println!("mel:             {}", i.mel.to_json());
        }
    }
    println!("growth steps:    {}", i.growth_steps);
    println!("fire rate:       {}", i.fire_rate);
    println!("seed state:      normal(0, {}²)", i.seed_std);
    println!("train frames:    {}", i.train_frames);
    println!("perception:      {}", i.perception);
    println!("target:          {}", i.target);
    println!("licence:         {}", i.license);
    println!("level:           {:+.2} dB (grown.level_db)", i.level_db);
    match grown::onnx::runtime::runtime() {
        Ok(rt) => println!(
            "onnx runtime:    {} ({}; {})",
            rt.dylib.display(),
            rt.provider,
            rt.why
        ),
        Err(e) => println!("onnx runtime:    unavailable: {e}"),
    }
    Ok(())
}

/// Memory growth over the second half of a soak above which it counts as a leak.
const SOAK_LEAK_KIB: i64 = 16 * 1024;

fn soak_cmd(flags: &HashMap<String, String>) -> Result<(), String> {
    let defaults = grown::soak::SoakConfig::default();
    let cfg = grown::soak::SoakConfig {
        seconds: number(flags, "seconds", defaults.seconds)?,
        drift: number(flags, "drift", defaults.drift)?,
        seed: number(flags, "seed", defaults.seed)?,
        bounded: match flags.get("bound").map(String::as_str) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => return Err(format!("--bound must be on or off, not '{other}'")),
        },
        ..defaults
    };
    if !(cfg.seconds > 0.0 && cfg.seconds <= 24.0 * 3600.0) {
        return Err("--seconds must be in (0, 86400]".into());
    }
    if !(0.0..=64.0).contains(&cfg.drift) {
        return Err("--drift must be between 0 and 64 steps/s".into());
    }
    let model = load_model(flags.get("model").map(PathBuf::from).as_deref())?;
    println!(
        "soak: {:.0} s of audio at {} Hz / {} samples, drift {} steps/s, seed {}",
        cfg.seconds, cfg.sample_rate, cfg.block, cfg.drift, cfg.seed
    );
    let report = grown::soak::run(model, &cfg, |line| println!("  {line}"))?;
    println!("{}", report.summary());
    let mut failures = Vec::new();
    if report.non_finite > 0 {
        failures.push(format!("{} non-finite output samples", report.non_finite));
    }
    if report.peak > 1.0 {
        failures.push(format!("output peak {} above full scale", report.peak));
    }
    if report.excursion.is_nan() || report.excursion > grown::soak::EXCURSION_TOLERANCE {
        failures.push(format!(
            "the drifting sound left the model's trained range: ln mel {:.2}..{:.2}, allowed {:.2}..{:.2}",
            report.visible_range.0,
            report.visible_range.1,
            report.allowed_range.0,
            report.allowed_range.1
        ));
    }
    if cfg.drift > 0.0 && report.min_flux().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        failures.push("the sound stopped evolving (spectral flux 0)".into());
    }
    // CPU time, not wall time: on a loaded machine the OS preempts any thread,
    // which says nothing about the plugin (wall figures are printed above).
    if report.cpu_p999_us > report.deadline_us {
        failures.push(format!(
            "99.9th-percentile callback CPU time {:.1} us exceeds the {:.1} us deadline",
            report.cpu_p999_us, report.deadline_us
        ));
    }
    let leak = report.rss_growth_second_half_kib();
    if leak > SOAK_LEAK_KIB {
        failures.push(format!(
            "memory grew {leak} KiB over the second half (limit {SOAK_LEAK_KIB})"
        ));
    }
    if failures.is_empty() {
        println!("soak passed");
        Ok(())
    } else {
        Err(format!("soak failed: {}", failures.join("; ")))
    }
}
