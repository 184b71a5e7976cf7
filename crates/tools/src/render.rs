//! Offline rendering: the same grower, vocoder, queue and voices as the plugin,
//! driven by a note list instead of a host. Used by the `grown` CLI and by tests.

use grown::dsp::mel::Spectrogram;
use grown::dsp::stft_ms::stft_ms_picture;
use grown::grow::model::NcaModel;
use grown::grow::nca::Nca;
use grown::grow::Grower;
use grown::play::queue;
use grown::play::{SoftLimiter, VoiceSettings, Voices};
use grown::vocoder::inverter::Inverter;
use grown::vocoder::voicing::{stft_ms_visible, Voicing};
use grown::vocoder::Vocoder;
use std::fmt;
use std::path::Path;

/// One note of a render: `KEY@START+DURATION`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteSpec {
    pub key: u8,
    pub start_s: f32,
    pub duration_s: f32,
    pub velocity: f32,
}

#[derive(Debug)]
pub enum RenderError {
    /// The note list could not be parsed; the message names the bad item.
    Notes(String),
    /// The model failed to grow (runtime missing, bad model, NaN...).
    Grow(String),
    /// The vocoder refused the spectrogram.
    Vocoder(String),
    /// Writing the WAV or PNG failed.
    Io(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Notes(m) => write!(f, "bad --notes: {m}"),
            Self::Grow(m) => write!(f, "growing failed: {m}"),
            Self::Vocoder(m) => write!(f, "vocoder failed: {m}"),
            Self::Io(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// Parses `60@0.0+1.5,67@0.5+1.0` (an optional `*VELOCITY` in 0..1 may follow).
pub fn parse_notes(text: &str) -> Result<Vec<NoteSpec>, RenderError> {
    let mut notes = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| {
            RenderError::Notes(format!("'{item}': {why} (expected KEY@START+DURATION)"))
        };
        let (key, rest) = item.split_once('@').ok_or_else(|| bad("missing '@'"))?;
        let (start, rest) = rest.split_once('+').ok_or_else(|| bad("missing '+'"))?;
        let (duration, velocity) = match rest.split_once('*') {
            Some((d, v)) => (
                d,
                v.parse::<f32>()
                    .map_err(|_| bad("velocity is not a number"))?,
            ),
            None => (rest, 0.8),
        };
        let key: u8 = key.parse().map_err(|_| bad("key is not 0..127"))?;
        let start_s: f32 = start.parse().map_err(|_| bad("start is not a number"))?;
        let duration_s: f32 = duration
            .parse()
            .map_err(|_| bad("duration is not a number"))?;
        if key > 127 {
            return Err(bad("key is not 0..127"));
        }
        if !start_s.is_finite() || start_s < 0.0 || !duration_s.is_finite() || duration_s <= 0.0 {
            return Err(bad("start must be ≥ 0 and duration > 0"));
        }
        if !(0.0..=1.0).contains(&velocity) {
            return Err(bad("velocity must be in 0..1"));
        }
        notes.push(NoteSpec {
            key,
            start_s,
            duration_s,
            velocity,
        });
    }
    if notes.is_empty() {
        return Err(RenderError::Notes("no notes given".into()));
    }
    Ok(notes)
}

/// Everything a render depends on; equal requests give bit-identical output.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub seed: u32,
    pub growth: u32,
    pub length_s: f32,
    /// `None` uses the model's recommended fire rate.
    pub fire_rate: Option<f32>,
    pub mutation: f32,
    pub notes: Vec<NoteSpec>,
    pub sample_rate: f32,
    pub voice: VoiceSettings,
    /// Seconds rendered after the last note ends, so releases are heard.
    pub tail_s: f32,
}

impl RenderRequest {
    pub fn new(seed: u32, growth: u32, notes: Vec<NoteSpec>) -> Self {
        Self {
            seed,
            growth,
            length_s: 3.0,
            fire_rate: None,
            mutation: 0.0,
            notes,
            sample_rate: 48_000.0,
            voice: offline_voice_settings(),
            tail_s: 0.5,
        }
    }
}

/// The voices of offline renders (and, with a longer release, of the soak test):
/// fixed here rather than taken from the plugin's defaults, so changing those
/// does not change what determinism and pitch tests hear.
pub fn offline_voice_settings() -> VoiceSettings {
    VoiceSettings {
        attack_s: 0.01,
        decay_s: 0.3,
        sustain: 0.8,
        release_s: 0.3,
        root_note: 60.0,
        bend_range: 2.0,
        gain: 0.5,
        looping: true,
        morph_s: 0.5,
        polyphony: 8,
        ..VoiceSettings::default()
    }
}

/// A finished render: stereo audio plus the grown spectrogram it came from.
pub struct Rendered {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    pub sample_rate: u32,
    pub spectrogram: Spectrogram,
    /// The four visible channels `[4][bins][frames]` of an `stft-ms` model (None
    /// for mel models): what `--png` draws as the research's picture instead.
    pub stft_ms: Option<StftMsGrid>,
}

/// The visible channels of a grown `stft-ms` state, for its picture.
#[derive(Debug, Clone, PartialEq)]
pub struct StftMsGrid {
    /// `[4][bins][frames]`, row-major, as in the NCA state.
    pub visible: Vec<f32>,
    /// Grid height (every STFT bin).
    pub bins: usize,
    /// Grid width.
    pub frames: usize,
}

/// Grows the sound, vocodes it and plays the notes through the plugin's voices.
pub fn render(model: NcaModel, req: &RenderRequest) -> Result<Rendered, RenderError> {
    let mel = model.info.mel.clone();
    let fire_rate = req.fire_rate.unwrap_or(model.info.fire_rate);
    let frames = frames_for(req.length_s, &mel);
    let mut grower = Grower::new(Nca::new(model));
    let spectrogram = grower
        .grow(req.seed, req.growth, frames, fire_rate, req.mutation)
        .map_err(|e| RenderError::Grow(e.to_string()))?
        .clone();

    // The one state → generation path the plugin's engine uses.
    let mut voicing = Voicing::for_model(grower.nca().info());
    let mut inverter = (!voicing.is_stft_ms()).then(|| Inverter::new(mel.clone()));
    let voiced = voicing
        .synthesize(
            &mut grower,
            inverter.as_mut().map(|i| i as &mut dyn Vocoder),
        )
        .map_err(|e| RenderError::Vocoder(e.cause()))?;
    // An stft-ms model is drawn as its visible channels rather than a mel picture.
    let stft_ms = voicing.is_stft_ms().then(|| {
        let nca = grower.nca();
        StftMsGrid {
            visible: stft_ms_visible(nca).to_vec(),
            bins: nca.info().mel.n_mels,
            frames: nca.frames(),
        }
    });

    // The generation travels through the same queue as in the plugin.
    let (mut producer, mut consumer) = queue::generation_queue(2, voiced.len);
    let mut generation = producer
        .acquire()
        .ok_or_else(|| RenderError::Vocoder("no generation buffer".into()))?;
    voicing.fill(&voiced, &mut generation, 1, req.voice.looping);
    producer
        .publish(generation)
        .map_err(|_| RenderError::Vocoder("generation queue full".into()))?;

    let mut voices = Voices::new();
    voices.set_output_sample_rate(req.sample_rate);
    while let Some(g) = consumer.receive() {
        voices.receive(g, &mut |old| consumer.recycle(old));
    }

    // Note events as (sample, is_on, note), ordered so a render is reproducible.
    let sr = req.sample_rate;
    let mut events: Vec<(usize, bool, NoteSpec)> = Vec::new();
    let mut end_s: f32 = 0.0;
    for n in &req.notes {
        events.push(((n.start_s * sr).round() as usize, true, *n));
        events.push((
            ((n.start_s + n.duration_s) * sr).round() as usize,
            false,
            *n,
        ));
        end_s = end_s.max(n.start_s + n.duration_s);
    }
    events.sort_by_key(|e| (e.0, e.1));
    let total = ((end_s + req.voice.release_s + req.tail_s) * sr).ceil() as usize;
    let mut left = vec![0.0f32; total];
    let mut right = vec![0.0f32; total];

    let mut pos = 0usize;
    let mut next = 0usize;
    while pos < total {
        while next < events.len() && events[next].0 <= pos {
            let (_, on, n) = events[next];
            if on {
                voices.note_on(&req.voice, n.key, n.velocity, 0, None);
            } else {
                voices.note_off(n.key, 0, None);
            }
            next += 1;
        }
        let mut end = (pos + 512).min(total);
        if next < events.len() {
            end = end.min(events[next].0.max(pos + 1));
        }
        voices.render(
            &req.voice,
            &mut left[pos..end],
            &mut right[pos..end],
            0,
            &mut |_| {},
        );
        pos = end;
    }
    SoftLimiter::new().process(&mut left, &mut right);
    Ok(Rendered {
        left,
        right,
        sample_rate: sr as u32,
        spectrogram,
        stft_ms,
    })
}

/// NCA grid width for a sound of `length_s` seconds.
pub fn frames_for(length_s: f32, mel: &grown::dsp::mel::MelConfig) -> usize {
    ((length_s.max(0.05) * mel.sample_rate as f32) / mel.hop as f32)
        .round()
        .max(8.0) as usize
}

/// Writes 32-bit float stereo WAV.
pub fn write_wav(path: &Path, r: &Rendered) -> Result<(), RenderError> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: r.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let io = |e: hound::Error| RenderError::Io(format!("cannot write {}: {e}", path.display()));
    let mut w = hound::WavWriter::create(path, spec).map_err(io)?;
    for (l, r) in r.left.iter().zip(&r.right) {
        w.write_sample(*l).map_err(io)?;
        w.write_sample(*r).map_err(io)?;
    }
    w.finalize().map_err(io)
}

/// The error for a picture that cannot be written to `path`.
fn png_error(path: &Path, e: impl std::fmt::Display) -> RenderError {
    RenderError::Io(format!("cannot write {}: {e}", path.display()))
}

/// Writes `w` × `h` 8-bit RGB pixels (row-major, 3 bytes each) as a PNG; both
/// pictures `grown render` writes end here.
fn write_rgb_png(path: &Path, w: usize, h: usize, pixels: &[u8]) -> Result<(), RenderError> {
    let file = std::fs::File::create(path).map_err(|e| png_error(path, e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| png_error(path, e))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| png_error(path, e))
}

/// Writes the spectrogram as a PNG (low frequencies at the bottom), scaled so that
/// each frame and mel bin covers whole pixels, in the editor's colours and level
/// mapping ([`grown::picture`]).
pub fn write_png(path: &Path, s: &Spectrogram) -> Result<(), RenderError> {
    if s.frames == 0 || s.n_mels == 0 {
        return Err(png_error(path, "empty spectrogram"));
    }
    let sx = (768 / s.frames).clamp(1, 8);
    let sy = 4usize;
    let (w, h) = (s.frames * sx, s.n_mels * sy);
    let max = grown::picture::loudest(s);
    let mut pixels = vec![0u8; w * h * 3];
    for y in 0..h {
        let mel = s.n_mels - 1 - y / sy;
        for x in 0..w {
            let c = grown::picture::level_colour(s.at(mel, x / sx), max);
            pixels[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    }
    write_rgb_png(path, w, h, &pixels)
}

/// Writes the research's picture of an `stft-ms` grid ([`stft_ms_picture`]:
/// CMYK inks from |M re|, |M im|, |S re|, |S im|, inverted, log2 frequency axis).
pub fn write_stft_ms_png(path: &Path, g: &StftMsGrid) -> Result<(), RenderError> {
    if g.frames == 0 || g.bins == 0 {
        return Err(png_error(path, "empty grid"));
    }
    let sx = (768 / g.frames).clamp(1, 8);
    let h = 384usize;
    // Gain 0.4: a state of 2.5 (a loud bin) is full ink, seed noise (~0.1) barely shows.
    let small = stft_ms_picture(&g.visible, g.bins, g.frames, h, 0.4);
    let w = g.frames * sx;
    let mut pixels = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let s = (y * g.frames + x / sx) * 4;
            pixels[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&small[s..s + 3]);
        }
    }
    write_rgb_png(path, w, h, &pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The saved picture has the editor's colours, cell for cell.
    #[test]
    fn png_shows_what_the_editor_shows() {
        let mut spec = Spectrogram::new(3, 4);
        spec.data = (0..12).map(|i| -12.0 + i as f32).collect();
        let path = std::env::temp_dir().join(format!("grown-png-{}.png", std::process::id()));
        write_png(&path, &spec).unwrap();
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0u8; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        std::fs::remove_file(&path).ok();
        let mut editor = Vec::new();
        grown::editor::spectrogram::to_pixels(&spec, &mut editor);
        let (w, sx, sy) = (
            info.width as usize,
            info.width as usize / 4,
            info.height as usize / 3,
        );
        for row in 0..3 {
            for col in 0..4 {
                let at = (row * sy * w + col * sx) * 3;
                let e = editor[row * 4 + col];
                assert_eq!(&buf[at..at + 3], &[e.r(), e.g(), e.b()], "cell {row},{col}");
            }
        }
    }

    #[test]
    fn parses_notes_and_rejects_bad_ones() {
        let n = parse_notes("60@0.0+1.5, 67@0.5+1.0*0.5").unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[1].key, 67);
        assert_eq!(n[1].velocity, 0.5);
        assert!((n[0].duration_s - 1.5).abs() < 1e-6);
        for bad in [
            "", "60", "60@x+1", "60@0+0", "200@0+1", "60@-1+1", "60@0+1*2",
        ] {
            assert!(parse_notes(bad).is_err(), "{bad} should fail");
        }
    }
}
