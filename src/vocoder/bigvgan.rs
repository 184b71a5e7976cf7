//! BigVGAN (or any contract-conforming neural vocoder) through ONNX Runtime.
//!
//! The file follows the vocoder section of models/README.md: metadata
//! `grown.kind = vocoder` and `grown.mel`, input `mel` `[1, n_mels, frames]`,
//! output `audio` `[1, 1, frames * hop]`.
//!
//! Long spectrograms are synthesised in chunks so memory stays bounded and the
//! engine can keep its steps/s up. Each chunk is run with extra frames of
//! context on both sides (a GAN vocoder's receptive field spans many frames;
//! without context every chunk boundary would click) and neighbouring chunks
//! are crossfaded over a few frames. Context is taken circularly because grown
//! sounds loop: the end of the sound is the context of its start, which also
//! makes the loop seam click-free.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use super::{check_input, Vocoder, VocoderError};
use crate::dsp::mel::{MelConfig, Spectrogram};
use crate::grow::model::{check_contract, check_tensor, read_metadata, required, ModelError};
use crate::onnx::runtime::{self, SessionProvider};

/// Frames synthesised per chunk (the part each chunk "owns").
const CHUNK: usize = 64;
/// Frames of context fed on each side of a chunk and then discarded.
const CONTEXT: usize = 16;
/// Frames over which neighbouring chunks crossfade (inside the context).
const XFADE: usize = 4;

/// A neural vocoder loaded from an ONNX file.
pub struct BigVgan {
    /// The analysis the vocoder was trained on (`grown.mel`).
    mel: MelConfig,
    /// The session (input `mel`, output `audio`).
    session: Session,
    /// Which provider runs it, for the status line.
    pub provider: SessionProvider,
    /// Path it was loaded from, for the status line.
    pub source: String,
    /// Chunk input `[n_mels][window]`, reused between chunks and calls.
    window: Vec<f32>,
    /// Overlap-add weights per output sample of the whole sound, reused.
    weight: Vec<f32>,
    /// One chunk's audio, reused.
    chunk: Vec<f32>,
    /// When set, synthesis stops between chunks (the engine is shutting down
    /// and must not keep running from a plugin library about to be unloaded).
    cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for BigVgan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigVgan")
            .field("mel", &self.mel)
            .field("source", &self.source)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// Model errors become vocoder errors with the same one-line message.
fn model_err(e: ModelError) -> VocoderError {
    VocoderError::Model(e.to_string())
}

impl BigVgan {
    /// Loads and validates a vocoder file.
    pub fn load(path: &Path) -> Result<Self, VocoderError> {
        if !path.exists() {
            return Err(model_err(ModelError::Missing(path.to_path_buf())));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| model_err(ModelError::Io(format!("{}: {e}", path.display()))))?;
        Self::from_bytes(&bytes, path.display().to_string())
    }

    /// Validates ONNX bytes and opens a session; `source` names them in messages.
    pub fn from_bytes(bytes: &[u8], source: String) -> Result<Self, VocoderError> {
        let meta = read_metadata(bytes).map_err(model_err)?;
        let mel = parse_vocoder_metadata(&meta).map_err(model_err)?;
        let (session, provider) = runtime::create_session(bytes)
            .map_err(|e| VocoderError::Model(format!("{source}: {e}")))?;
        let n = mel.n_mels as i64;
        let input = session
            .inputs()
            .iter()
            .find(|i| i.name() == "mel")
            .ok_or_else(|| {
                model_err(ModelError::Contract(
                    "the vocoder has no input named `mel`".into(),
                ))
            })?;
        check_tensor(
            "input `mel`",
            input.dtype(),
            &[Some(1), Some(n), None],
            true,
        )
        .map_err(model_err)?;
        if session.inputs().len() != 1 {
            return Err(model_err(ModelError::Contract(
                "the vocoder must take exactly one input, `mel`".into(),
            )));
        }
        let output = session
            .outputs()
            .iter()
            .find(|o| o.name() == "audio")
            .ok_or_else(|| {
                model_err(ModelError::Contract(
                    "the vocoder has no output named `audio`".into(),
                ))
            })?;
        check_tensor(
            "output `audio`",
            output.dtype(),
            &[Some(1), Some(1), None],
            false,
        )
        .map_err(model_err)?;
        Ok(Self {
            mel,
            session,
            provider,
            source,
            window: Vec::new(),
            weight: Vec::new(),
            chunk: Vec::new(),
            cancel: None,
        })
    }

    /// Synthesises every chunk and overlap-adds it into `audio` (weights
    /// accumulated in `self.weight`; the caller normalises).
    fn overlap_add(
        &mut self,
        mel: &Spectrogram,
        audio: &mut [f32],
        chunk_audio: &mut Vec<f32>,
    ) -> Result<(), VocoderError> {
        let hop = self.mel.hop;
        let frames = mel.frames;
        let total = (frames * hop) as isize;
        let n_mels = self.mel.n_mels;
        let single = boundaries(frames).count() == 1;
        let (h, x, ctx) = (hop as isize, XFADE as isize, CONTEXT as isize);
        let ramp = (2 * XFADE * hop) as f32;
        for (b0, b1) in boundaries(frames) {
            if self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(VocoderError::Model("cancelled".into()));
            }
            // Window [b0 - CONTEXT, b1 + CONTEXT), read circularly.
            let len = b1 - b0 + 2 * CONTEXT;
            self.window.resize(n_mels * len, 0.0);
            for m in 0..n_mels {
                let row = mel.row(m);
                let dst = &mut self.window[m * len..(m + 1) * len];
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = row[((b0 + j) as isize - ctx).rem_euclid(frames as isize) as usize];
                }
            }
            chunk_audio.resize(len * hop, 0.0);
            self.run(len, chunk_audio)?;
            let (b0, b1) = (b0 as isize, b1 as isize);
            // Linear ramps over [b - XFADE, b + XFADE) at each boundary sum to
            // one with the neighbour's. A single chunk wraps onto itself
            // through its context and needs no ramps.
            let (lo, hi) = if single {
                (0, total)
            } else {
                ((b0 - x) * h, (b1 + x) * h)
            };
            let start = (b0 - ctx) * h;
            for g in lo..hi {
                let w = if single {
                    1.0
                } else {
                    let up = (g - (b0 - x) * h) as f32 + 0.5;
                    let down = ((b1 + x) * h - g) as f32 - 0.5;
                    (up.min(down) / ramp).clamp(0.0, 1.0)
                };
                let idx = g.rem_euclid(total) as usize;
                audio[idx] += w * chunk_audio[(g - start) as usize];
                self.weight[idx] += w;
            }
        }
        Ok(())
    }

    /// Synthesises `mel` in one model run, without chunking and without
    /// circular context (the edges see the model's own padding), exactly as
    /// the Python reference runs it. For reference comparisons and offline use
    /// on short inputs; [`Vocoder::synthesize`] is what the engine uses.
    pub fn synthesize_linear(
        &mut self,
        mel: &Spectrogram,
        audio: &mut Vec<f32>,
    ) -> Result<(), VocoderError> {
        check_input(&self.mel, mel)?;
        audio.clear();
        audio.resize(mel.frames * self.mel.hop, 0.0);
        if mel.frames == 0 {
            return Ok(());
        }
        self.window.clear();
        self.window.extend_from_slice(&mel.data);
        self.run(mel.frames, audio)
    }

    /// Makes synthesis stop with an error between chunks once `flag` is set.
    pub fn set_cancel(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    /// Runs the model on `self.window` (`frames` frames) and returns the audio.
    fn run(&mut self, frames: usize, out: &mut [f32]) -> Result<(), VocoderError> {
        let n = self.mel.n_mels as i64;
        let input = TensorRef::from_array_view(([1, n, frames as i64], &self.window[..]))
            .map_err(|e| VocoderError::Model(e.to_string()))?;
        let inputs: [SessionInputValue<'_>; 1] = [input.into()];
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| VocoderError::Model(format!("{}: {e}", self.source)))?;
        let value = outputs
            .get("audio")
            .ok_or_else(|| VocoderError::Model("the vocoder returned no `audio`".into()))?;
        let (_, audio) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| VocoderError::Model(format!("`audio`: {e}")))?;
        if audio.len() < out.len() {
            return Err(VocoderError::Model(format!(
                "`audio` has {} samples for {frames} frames, expected {}",
                audio.len(),
                out.len()
            )));
        }
        if audio.iter().any(|v| !v.is_finite()) {
            return Err(VocoderError::NonFinite);
        }
        out.copy_from_slice(&audio[..out.len()]);
        Ok(())
    }
}

/// Checks the vocoder metadata and returns its mel config.
pub fn parse_vocoder_metadata(map: &HashMap<String, String>) -> Result<MelConfig, ModelError> {
    check_contract(map)?;
    let kind = required(map, "grown.kind")?;
    if kind != "vocoder" {
        return Err(ModelError::Contract(format!(
            "`grown.kind` = `{kind}`: this is not a vocoder file"
        )));
    }
    MelConfig::from_json(required(map, "grown.mel")?)
        .map_err(|e| ModelError::Contract(format!("`grown.mel`: {e}")))
}

/// Chunk boundaries `b_0 = 0 < b_1 < ... < b_n = frames`, as equal as possible,
/// each chunk at least `2 * XFADE` long so crossfades never overlap.
fn boundaries(frames: usize) -> impl Iterator<Item = (usize, usize)> {
    let n = frames.div_ceil(CHUNK).max(1);
    let n = if frames / n < 2 * XFADE { 1 } else { n };
    (0..n).map(move |i| (i * frames / n, (i + 1) * frames / n))
}

impl Vocoder for BigVgan {
    fn name(&self) -> &'static str {
        "BigVGAN"
    }

    fn mel_config(&self) -> &MelConfig {
        &self.mel
    }

    fn synthesize(&mut self, mel: &Spectrogram, audio: &mut Vec<f32>) -> Result<(), VocoderError> {
        check_input(&self.mel, mel)?;
        let hop = self.mel.hop;
        let frames = mel.frames;
        let total = frames * hop;
        audio.clear();
        audio.resize(total, 0.0);
        if frames == 0 {
            return Ok(());
        }
        self.weight.clear();
        self.weight.resize(total, 0.0);
        let mut chunk_audio = std::mem::take(&mut self.chunk);
        let result = self.overlap_add(mel, audio, &mut chunk_audio);
        self.chunk = chunk_audio;
        result?;
        for (a, w) in audio.iter_mut().zip(&self.weight) {
            if *w > 0.0 {
                *a /= *w;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grown_test_support::onnx::{test_mel_json, Attr, Dim, ModelBuilder, FLOAT};

    /// A "vocoder" whose sample `t*hop + j` is the mean over bands of frame
    /// `t` (local: no temporal context), so chunked synthesis must reproduce
    /// it exactly wherever the frames are.
    fn local_vocoder(n_mels: usize, hop: usize) -> Vec<u8> {
        let mut b = ModelBuilder::default();
        b.input(
            "mel",
            FLOAT,
            &[
                Dim::Fixed(1),
                Dim::Fixed(n_mels as i64),
                Dim::Param("frames"),
            ],
        )
        .output(
            "audio",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(1), Dim::Param("samples")],
        )
        .init_i64("shape4", &[4], &[1, 1, 1, hop as i64])
        .init_i64("flat", &[3], &[1, 1, -1])
        .init_i64("ax", &[1], &[3])
        .node(
            "ReduceMean",
            &["mel"],
            &["mean"],
            &[Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 1)],
        )
        .node("Unsqueeze", &["mean", "ax"], &["m4"], &[])
        .node("Expand", &["m4", "shape4"], &["rep"], &[])
        .node("Reshape", &["rep", "flat"], &["audio"], &[]);
        b.meta("grown.contract", "1")
            .meta("grown.kind", "vocoder")
            .meta("grown.mel", &test_mel_json(n_mels));
        b.build()
    }

    fn spectrogram(n_mels: usize, frames: usize) -> Spectrogram {
        let mut s = Spectrogram::new(n_mels, frames);
        for (i, v) in s.data.iter_mut().enumerate() {
            *v = crate::rng::normal(3, 0, i as u64);
        }
        s
    }

    fn expected(s: &Spectrogram, hop: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for f in 0..s.frames {
            let mean = (0..s.n_mels).map(|m| s.at(m, f)).sum::<f32>() / s.n_mels as f32;
            out.extend(std::iter::repeat_n(mean, hop));
        }
        out
    }

    #[test]
    fn chunk_boundaries_cover_everything() {
        for frames in [1, 7, 8, 63, 64, 65, 200, 1000] {
            let b: Vec<_> = boundaries(frames).collect();
            assert_eq!(b[0].0, 0);
            assert_eq!(b.last().unwrap().1, frames);
            for w in b.windows(2) {
                assert_eq!(w[0].1, w[1].0);
            }
            if b.len() > 1 {
                assert!(b.iter().all(|(a, c)| c - a >= 2 * XFADE && c - a <= CHUNK));
            }
        }
    }

    #[test]
    fn chunked_synthesis_matches_whole() {
        let hop = 64;
        let mut v = BigVgan::from_bytes(&local_vocoder(8, hop), "test".into()).unwrap();
        assert_eq!(v.mel_config().n_mels, 8);
        for frames in [5, 64, 150, 300] {
            let s = spectrogram(8, frames);
            let mut audio = Vec::new();
            v.synthesize(&s, &mut audio).unwrap();
            assert_eq!(audio.len(), frames * hop);
            let want = expected(&s, hop);
            for (i, (a, w)) in audio.iter().zip(&want).enumerate() {
                assert!(
                    (a - w).abs() < 1e-5,
                    "frames {frames} sample {i}: {a} vs {w}"
                );
            }
        }
    }

    #[test]
    fn refuses_wrong_files() {
        let mut b = ModelBuilder::default();
        b.input(
            "mel",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(8), Dim::Param("f")],
        )
        .output(
            "audio",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(8), Dim::Param("f")],
        )
        .node("Identity", &["mel"], &["audio"], &[]);
        b.meta("grown.contract", "1")
            .meta("grown.kind", "nca")
            .meta("grown.mel", &test_mel_json(8));
        let e = BigVgan::from_bytes(&b.build(), "x".into()).unwrap_err();
        assert!(e.to_string().contains("not a vocoder"), "{e}");

        b.meta("grown.kind", "vocoder")
            .meta("grown.mel", &test_mel_json(10));
        let e = BigVgan::from_bytes(&b.build(), "x".into()).unwrap_err();
        assert!(e.to_string().contains("axis 1 must be 10"), "{e}");

        b.meta("grown.contract", "3");
        let e = BigVgan::from_bytes(&b.build(), "x".into()).unwrap_err();
        assert!(e.to_string().contains("contract version 3"), "{e}");

        let e = BigVgan::load(Path::new("/no/such/vocoder.onnx")).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn mel_mismatch_is_refused_per_call() {
        let mut v = BigVgan::from_bytes(&local_vocoder(8, 64), "test".into()).unwrap();
        let s = spectrogram(10, 16);
        let mut audio = Vec::new();
        assert!(matches!(
            v.synthesize(&s, &mut audio),
            Err(VocoderError::MelMismatch(_))
        ));
    }

    #[test]
    fn tiny_vocoder_from_python_matches_reference() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/testdata");
        let (model, reference) = (
            dir.join("tiny_vocoder.onnx"),
            dir.join("tiny_vocoder_reference.json"),
        );
        if !model.exists() || !reference.exists() {
            eprintln!("skipping: {} not generated yet", model.display());
            return;
        }
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&reference).unwrap()).unwrap();
        let n_mels = r["n_mels"].as_u64().unwrap() as usize;
        let frames = r["frames"].as_u64().unwrap() as usize;
        let tol = r["tolerance"].as_f64().unwrap() as f32;
        let mut mel = Spectrogram::new(n_mels, frames);
        for (m, row) in r["mel"].as_array().unwrap().iter().enumerate() {
            for (f, v) in row.as_array().unwrap().iter().enumerate() {
                mel.data[m * frames + f] = v.as_f64().unwrap() as f32;
            }
        }
        let want: Vec<f32> = r["audio"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();

        let mut v = BigVgan::load(&model).unwrap();
        assert_eq!(v.mel_config().hop, r["hop"].as_u64().unwrap() as usize);
        let mut audio = Vec::new();
        v.synthesize_linear(&mel, &mut audio).unwrap();
        assert_eq!(audio.len(), want.len());
        let worst = audio
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= tol, "max deviation {worst} > {tol}");

        // The chunked, circular path equals one whole run away from the ends
        // (where only the circular context differs from zero padding): the
        // context covers the receptive field and the crossfades are exact.
        let frames = 200;
        let hop = v.mel_config().hop;
        let mut long = spectrogram(n_mels, frames);
        long.data.iter_mut().for_each(|x| *x -= 5.0);
        let mut whole = Vec::new();
        v.synthesize_linear(&long, &mut whole).unwrap();
        v.synthesize(&long, &mut audio).unwrap();
        assert_eq!(audio.len(), frames * hop);
        assert!(audio.iter().all(|x| x.is_finite()));
        let interior = 40 * hop..(frames - 40) * hop;
        let worst = interior
            .map(|i| (audio[i] - whole[i]).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "chunked vs whole: {worst}");
    }
}
