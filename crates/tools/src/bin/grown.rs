//! `grown`: the offline command line. Same engine, vocoder and voices as the plugin.
//! `grown --help` and `grown COMMAND --help` describe every command and option.

use clap::{Parser, Subcommand, ValueEnum};
use grown::grow::model::NcaModel;
use grown::presets::{self, Preset};
use grown_tools::render::{self, RenderRequest};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Prints a line to standard output; a closed pipe (`grown presets | head -1`)
/// ends the program quietly, as for any Unix filter, instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0)
        }
    };
}

/// Grown's command line: render notes, inspect models, vocode audio, soak-test the engine.
#[derive(Parser)]
#[command(name = "grown", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grow a model's sound and play notes on it into a WAV file (and a spectrogram PNG).
    Render(RenderArgs),
    /// Print a model's metadata (the embedded default when no file is given).
    Info {
        /// Model file (.onnx); the embedded default when omitted.
        model: Option<PathBuf>,
    },
    /// Pass a recording's mel spectrogram through the built-in inverter: what a
    /// perfect mel model would sound like through this vocoder.
    Vocode {
        /// Input WAV at the mel front end's rate (22050 Hz).
        #[arg(long, value_name = "IN.wav")]
        audio: PathBuf,
        /// Output WAV.
        #[arg(long, value_name = "OUT.wav")]
        out: PathBuf,
    },
    /// Run the engine and voices for a long time and check level, range, timing and memory.
    Soak(SoakArgs),
    /// List the factory presets, one per line: ID, name, tags.
    Presets,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Factory preset to start from (`grown presets` lists them); the options below
    /// override its values. Offline renders grow once: its Drift and Damage are not played.
    #[arg(long, value_name = "ID")]
    preset: Option<String>,
    /// Model file (.onnx); the embedded default when omitted.
    #[arg(long, value_name = "M.onnx")]
    model: Option<PathBuf>,
    /// Seed of the grown sound [default: 1].
    #[arg(long)]
    seed: Option<u32>,
    /// NCA steps to grow (default: the model's `grown.growth_steps`).
    #[arg(long, value_name = "N")]
    growth: Option<u32>,
    /// Length of the grown loop in seconds (0.05 to 60).
    #[arg(long, value_name = "SEC")]
    length: Option<f32>,
    /// MIDI note that plays the sound at its own pitch [default: 60].
    #[arg(long, value_name = "KEY")]
    root: Option<u8>,
    /// Output sample rate in Hz (8000 to 384000).
    #[arg(long, value_name = "HZ")]
    sample_rate: Option<f32>,
    /// Notes as KEY@START+DURATION in seconds, comma-separated.
    #[arg(long, value_name = "60@0.0+1.5,67@0.5+1.0")]
    notes: String,
    /// Output WAV.
    #[arg(long, value_name = "out.wav")]
    out: PathBuf,
    /// Also write the grown spectrogram as a PNG.
    #[arg(long, value_name = "out.png")]
    png: Option<PathBuf>,
}

/// Whether the soak keeps stepping inside the model's trained range.
#[derive(Clone, Copy, ValueEnum)]
enum Bound {
    On,
    Off,
}

#[derive(clap::Args)]
struct SoakArgs {
    /// Seconds of audio to run (at most a day).
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
    /// Growth steps per second while playing (0 to 64).
    #[arg(long, value_name = "STEPS_PER_S")]
    drift: Option<f32>,
    /// Model file (.onnx); the embedded default when omitted.
    #[arg(long, value_name = "M.onnx")]
    model: Option<PathBuf>,
    /// Seed of the grown sound.
    #[arg(long)]
    seed: Option<u32>,
    /// Confine growth past the model's training to its trained range.
    #[arg(long, value_enum, default_value = "on")]
    bound: Bound,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and succeed; a bad option is one line and exit 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Render(args) => render_cmd(args),
        Command::Info { model } => info_cmd(model),
        Command::Vocode { audio, out } => vocode_cmd(&audio, &out),
        Command::Soak(args) => soak_cmd(args),
        Command::Presets => {
            presets_cmd();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("grown: {message}");
            ExitCode::from(2)
        }
    }
}

fn load_model(path: Option<&Path>) -> Result<NcaModel, String> {
    match path {
        None => NcaModel::load_embedded_default().map_err(|e| e.to_string()),
        Some(p) => NcaModel::load(p).map_err(|e| e.to_string()),
    }
}

fn render_cmd(args: RenderArgs) -> Result<(), String> {
    let out = args.out;
    let notes = render::parse_notes(&args.notes).map_err(|e| e.to_string())?;
    // Arguments first: a mistyped option or preset is reported before a model is loaded.
    let preset = args
        .preset
        .as_deref()
        .map(presets::find)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut req = RenderRequest::new(1, 0, notes);
    if let Some(preset) = &preset {
        apply_preset(preset, &mut req);
    }
    req.seed = args.seed.unwrap_or(req.seed);
    req.length_s = args.length.unwrap_or(req.length_s);
    if let Some(root) = args.root {
        req.voice.root_note = f32::from(root);
    }
    req.sample_rate = args.sample_rate.unwrap_or(req.sample_rate);
    if !(8000.0..=384_000.0).contains(&req.sample_rate) {
        return Err("--sample-rate must be between 8000 and 384000".into());
    }
    if !(0.05..=60.0).contains(&req.length_s) {
        return Err("--length must be between 0.05 and 60 seconds".into());
    }
    let preset_model = preset
        .as_ref()
        .and_then(|p| p.model.as_deref())
        .map(|stored| {
            grown::grow::library::resolve(stored, &grown::grow::library::model_dirs(), "nca")
        });
    let model = load_model(args.model.as_deref().or(preset_model.as_deref()))?;
    let preset_growth = preset.as_ref().and_then(|p| p.number("growth"));
    req.growth = args
        .growth
        .or(preset_growth.map(|g| g as u32))
        .unwrap_or(model.info.growth_steps);
    if req.growth > grown::params::MAX_GROWTH as u32 {
        return Err(format!(
            "--growth must be at most {}",
            grown::params::MAX_GROWTH
        ));
    }

    let rendered = render::render(model, &req).map_err(|e| e.to_string())?;
    render::write_wav(&out, &rendered).map_err(|e| e.to_string())?;
    if let Some(png) = &args.png {
        match &rendered.stft_ms {
            // Stereo models: the research's CMYK picture of the four channels.
            Some(grid) => render::write_stft_ms_png(png, grid),
            None => render::write_png(png, &rendered.spectrogram),
        }
        .map_err(|e| e.to_string())?;
    }
    let peak = rendered
        .left
        .iter()
        .chain(&rendered.right)
        .fold(0.0f32, |m, v| m.max(v.abs()));
    say!(
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

/// What a preset sets that an offline render plays: the growth settings and the
/// voices. Drift, Damage, the vocoder choice, tempo sync and expression need the
/// engine, a host or a player, and are left out.
fn apply_preset(preset: &Preset, req: &mut RenderRequest) {
    let number = |key: &str| preset.number(key);
    if let Some(seed) = number("seed") {
        req.seed = seed as u32;
    }
    if let Some(length) = number("length") {
        req.length_s = length as f32;
    }
    req.fire_rate = number("fire-rate").map(|f| f as f32).or(req.fire_rate);
    req.mutation = number("mutation").map_or(req.mutation, |m| m as f32);
    let voice = &mut req.voice;
    for (key, slot) in [
        ("attack", &mut voice.attack_s),
        ("decay", &mut voice.decay_s),
        ("sustain", &mut voice.sustain),
        ("release", &mut voice.release_s),
        ("root", &mut voice.root_note),
        ("bend-range", &mut voice.bend_range),
        ("morph", &mut voice.morph_s),
        ("tune", &mut voice.tune),
    ] {
        if let Some(v) = number(key) {
            *slot = v as f32;
        }
    }
    if let Some(db) = number("gain") {
        voice.gain = nice_plug::util::db_to_gain(db as f32);
    }
    if let Some(voices) = number("polyphony") {
        voice.polyphony = voices as usize;
    }
    if let Some(looping) = preset.switch("loop") {
        voice.looping = looping;
    }
}

fn presets_cmd() {
    for p in presets::factory() {
        say!("{:<22} {:<28} {}", p.id, p.name, p.tags.join(", "));
    }
}

/// The recording's own mel through the built-in inverter: what a perfect mel model
/// would sound like through this vocoder (the hearing evaluation's ceiling).
fn vocode_cmd(input_path: &Path, out_path: &Path) -> Result<(), String> {
    use grown::vocoder::Vocoder;
    let (input, out) = (input_path.display(), out_path.display());
    let mut reader = hound::WavReader::open(input_path).map_err(|e| format!("{input}: {e}"))?;
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
    let mut writer = hound::WavWriter::create(out_path, wav).map_err(|e| format!("{out}: {e}"))?;
    for v in &audio {
        writer.write_sample(*v).map_err(|e| format!("{out}: {e}"))?;
    }
    writer.finalize().map_err(|e| format!("{out}: {e}"))?;
    say!("wrote {out} ({} mel frames inverted)", mel.frames);
    Ok(())
}

fn info_cmd(path: Option<PathBuf>) -> Result<(), String> {
    let model = load_model(path.as_deref())?;
    let i = &model.info;
    say!("source:          {}", model.source);
    say!("contract:        {}", i.contract);
    say!("representation:  {}", i.representation);
    say!(
        "channels:        {} (spectrogram in channel {})",
        i.channels,
        i.spec_channel
    );
    match &i.stft {
        Some(cfg) => {
            say!(
                "mapping:         channels {}..{} = M re, M im, S re, S im; x = sign(v)·(exp({} * |v| + {}) − exp({}))",
                i.spec_channel,
                i.spec_channel + 3,
                i.spec_scale,
                i.spec_offset,
                i.spec_offset
            );
            say!(
                "stft:            n_fft {}, hop {}, {} bins, {} Hz (played by inverse STFT, no vocoder)",
                cfg.n_fft, cfg.hop, cfg.bins, cfg.sample_rate
            );
        }
        None => {
            say!(
                "mapping:         ln(mel) = {} * state + {}",
                i.spec_scale,
                i.spec_offset
            );
            say!("mel:             {}", i.mel.to_json());
        }
    }
    say!("growth steps:    {}", i.growth_steps);
    say!("fire rate:       {}", i.fire_rate);
    match &i.seed_bank {
        Some(bank) => say!(
            "seed state:      a passage of its {}-frame bank + normal(0, {}²)",
            bank.frames,
            i.seed_std
        ),
        None => say!("seed state:      normal(0, {}²)", i.seed_std),
    }
    say!("train frames:    {}", i.train_frames);
    say!("perception:      {}", i.perception);
    say!("target:          {}", i.target);
    say!("licence:         {}", i.license);
    say!("level:           {:+.2} dB (grown.level_db)", i.level_db);
    match grown::onnx::runtime::runtime() {
        Ok(rt) => say!(
            "onnx runtime:    {} ({}; {})",
            rt.dylib.display(),
            rt.provider,
            rt.why
        ),
        Err(e) => say!("onnx runtime:    unavailable: {e}"),
    }
    Ok(())
}

/// Memory growth over the second half of a soak above which it counts as a leak.
const SOAK_LEAK_KIB: i64 = 16 * 1024;

fn soak_cmd(args: SoakArgs) -> Result<(), String> {
    let defaults = grown_tools::soak::SoakConfig::default();
    let cfg = grown_tools::soak::SoakConfig {
        seconds: args.seconds.unwrap_or(defaults.seconds),
        drift: args.drift.unwrap_or(defaults.drift),
        seed: args.seed.unwrap_or(defaults.seed),
        bounded: matches!(args.bound, Bound::On),
        ..defaults
    };
    if !(cfg.seconds > 0.0 && cfg.seconds <= 24.0 * 3600.0) {
        return Err("--seconds must be in (0, 86400]".into());
    }
    if !(0.0..=64.0).contains(&cfg.drift) {
        return Err("--drift must be between 0 and 64 steps/s".into());
    }
    let model = load_model(args.model.as_deref())?;
    say!(
        "soak: {:.0} s of audio at {} Hz / {} samples, drift {} steps/s, seed {}",
        cfg.seconds,
        cfg.sample_rate,
        cfg.block,
        cfg.drift,
        cfg.seed
    );
    let report = grown_tools::soak::run(model, &cfg, |line| say!("  {line}"))?;
    say!("{}", report.summary());
    let mut failures = Vec::new();
    if report.non_finite > 0 {
        failures.push(format!("{} non-finite output samples", report.non_finite));
    }
    if report.peak > 1.0 {
        failures.push(format!("output peak {} above full scale", report.peak));
    }
    if report.excursion.is_nan() || report.excursion > grown_tools::soak::EXCURSION_TOLERANCE {
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
        say!("soak passed");
        Ok(())
    } else {
        Err(format!("soak failed: {}", failures.join("; ")))
    }
}
