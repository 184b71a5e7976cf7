//! `grown`: the offline command line. Same engine, vocoder and voices as the plugin.
//!
//! grown render [--model M] [--seed S] [--growth N] [--length SEC] [--root KEY]
//!              [--sample-rate HZ] --notes "60@0.0+1.5,67@0.5+1.0" --out out.wav [--png out.png]
//! grown info [model.onnx]

use grown::model::NcaModel;
use grown::render::{self, RenderRequest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: grown render [--model M.onnx] [--seed S] [--growth N] [--length SEC] \
[--root KEY] [--sample-rate HZ] --notes \"60@0.0+1.5,67@0.5+1.0\" --out out.wav [--png out.png]\n       grown info [model.onnx]";

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
        render::write_png(Path::new(png), &rendered.spectrogram).map_err(|e| e.to_string())?;
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
    println!(
        "mapping:         ln(mel) = {} * state + {}",
        i.spec_scale, i.spec_offset
    );
    println!("mel:             {}", i.mel.to_json());
    println!("growth steps:    {}", i.growth_steps);
    println!("fire rate:       {}", i.fire_rate);
    println!("seed state:      normal(0, {}²)", i.seed_std);
    println!("train frames:    {}", i.train_frames);
    println!("perception:      {}", i.perception);
    println!("target:          {}", i.target);
    println!("licence:         {}", i.license);
    match grown::runtime::runtime() {
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
