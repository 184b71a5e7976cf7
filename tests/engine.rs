//! End-to-end tests of the engine thread with the embedded default model.
//!
//! They need ONNX Runtime: `cargo xtask fetch-ort` (target/onnxruntime) or
//! `ORT_DYLIB_PATH`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grown::dsp::mel::Spectrogram;
use grown::engine::{Engine, EngineCommand, EngineControls, EngineStatus};
use grown::grow::model::NcaModel;
use grown::grow::nca::Nca;
use grown::grow::Grower;
use grown::play::queue::{generation_queue, Generation, GenerationConsumer};

/// Generous: the test machine may be busy.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Rig {
    engine: Option<Engine>,
    controls: Arc<EngineControls>,
    status: Arc<EngineStatus>,
    consumer: GenerationConsumer,
    snapshots: triple_buffer::Output<Spectrogram>,
}

fn rig() -> Rig {
    rig_with_model(None)
}

fn rig_with_model(model: Option<std::path::PathBuf>) -> Rig {
    rig_with(model, 6, 3)
}

fn rig_with(model: Option<std::path::PathBuf>, growth: u32, seed: u32) -> Rig {
    let controls = Arc::new(EngineControls::default());
    controls.growth.store(growth, Ordering::Relaxed);
    controls.length_s.store(0.4, Ordering::Relaxed);
    controls.seed.store(seed, Ordering::Relaxed);
    let status = Arc::new(EngineStatus::default());
    let (producer, consumer) = generation_queue(4, 22050);
    let (input, output) = triple_buffer::triple_buffer(&Spectrogram::default());
    let engine = Engine::spawn(controls.clone(), status.clone(), producer, input, model);
    Rig {
        engine: Some(engine),
        controls,
        status,
        consumer,
        snapshots: output,
    }
}

impl Rig {
    /// The next finished generation after `after`, and how many provisional
    /// ones came before it.
    fn next_finished(&mut self, after: u64) -> (Box<Generation>, usize) {
        let mut provisional = 0;
        let mut last = after;
        loop {
            let g = self.next_generation(last);
            if !g.provisional {
                return (g, provisional);
            }
            provisional += 1;
            last = g.id;
            self.consumer.recycle(g);
        }
    }

    /// Next generation with an id above `after`, recycling older ones.
    fn next_generation(&mut self, after: u64) -> Box<Generation> {
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            if let Some(g) = self.consumer.receive() {
                if g.id > after {
                    return g;
                }
                self.consumer.recycle(g);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "no generation after {after} within {TIMEOUT:?}; error: {}",
            self.status.error.lock()
        );
    }
}

#[test]
fn engine_grows_vocodes_and_reacts() {
    let mut r = rig();
    let g = r.next_generation(0);
    assert_eq!(*r.status.error.lock(), "");
    assert!(g.looped);
    assert_eq!(g.sample_rate, 22050);
    let frames = (0.4f32 * 22050.0 / 256.0).round() as usize;
    assert_eq!(g.len, frames * 256);
    let audio = g.audio().to_vec();
    assert!(audio.iter().all(|x| x.is_finite()));
    assert!(audio.iter().any(|x| x.abs() > 1e-4), "silent generation");
    assert_eq!(r.status.step.load(Ordering::Relaxed), 6);
    assert!(r.status.steps_per_s.load(Ordering::Relaxed) > 0.0);
    assert!(!r.status.provider.lock().is_empty());
    assert!(r.status.model.lock().contains("embedded:strings"));
    let snap = r.snapshots.read();
    assert_eq!((snap.n_mels, snap.frames), (80, frames));
    let id = g.id;
    r.consumer.recycle(g);

    // A new seed regrows into a different sound.
    r.controls.seed.store(4, Ordering::Relaxed);
    let g = r.next_generation(id);
    assert_ne!(g.audio(), &audio[..]);
    let id = g.id;
    r.consumer.recycle(g);

    // A missing model is reported and the engine keeps going.
    let commands = r.engine.as_ref().unwrap().commands();
    commands
        .send(EngineCommand::LoadModel("/no/such/model.onnx".into()))
        .unwrap();
    let start = Instant::now();
    while r.status.error.lock().is_empty() && start.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(r.status.error.lock().contains("/no/such/model.onnx"));
    assert!(r.status.model.lock().contains("embedded:strings"));

    // Damage: regrows past the target and publishes a new sound. Repeated
    // damage (a dragged control) regrows one period from now, not one per event.
    let regrow = NcaModel::load_embedded_default().unwrap().info.growth_steps;
    for _ in 0..5 {
        commands
            .send(EngineCommand::Damage {
                mel0: 0.2,
                mel1: 0.8,
                t0: 0.1,
                t1: 0.6,
            })
            .unwrap();
    }
    let g = r.next_generation(id);
    let step = r.status.step.load(Ordering::Relaxed);
    assert!(step > 6 && step <= 6 + 2 * regrow, "step {step}");
    let id = g.id;
    r.consumer.recycle(g);

    // Drift keeps stepping and re-vocoding.
    r.controls.growth.store(4, Ordering::Relaxed);
    r.controls.drift.store(40.0, Ordering::Relaxed);
    let g = r.next_generation(id);
    r.consumer.recycle(g);
    let g2 = r.next_generation(id + 1);
    r.consumer.recycle(g2);
    assert!(r.status.step.load(Ordering::Relaxed) > 4);

    // Shutdown is prompt.
    r.controls.drift.store(0.0, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    drop(r.engine.take());
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "drop took {:?}",
        t.elapsed()
    );
}

#[test]
fn default_model_grows_deterministically_and_scrubs() {
    let mk = || Grower::new(Nca::new(NcaModel::load_embedded_default().unwrap()));
    let (mut a, mut b) = (mk(), mk());
    let sa = a.grow(11, 20, 24, 0.5, 0.0).unwrap().clone();
    let sb = b.grow(11, 20, 24, 0.5, 0.0).unwrap().clone();
    assert_eq!(sa, sb);
    assert!(sa.is_finite());
    let other = b.grow(12, 20, 24, 0.5, 0.0).unwrap().clone();
    assert_ne!(sa, other);
    // Back from 20 to 17 (checkpoint 16 + 1 step) equals a fresh growth to 17.
    a.grow(11, 17, 24, 0.5, 0.0).unwrap();
    let fresh = mk().grow(11, 17, 24, 0.5, 0.0).unwrap().clone();
    assert_eq!(a.spectrogram().clone(), fresh);
}

/// A project saved with a model file that is gone on this machine must still
/// play (the built-in model) and say why.
#[test]
fn a_missing_model_on_restore_falls_back_to_the_built_in_one() {
    let gone = std::env::temp_dir().join("grown-test-no-such-model.onnx");
    let _ = std::fs::remove_file(&gone);
    let mut r = rig_with_model(Some(gone));
    let g = r.next_generation(0);
    assert!(g.audio().iter().any(|x| x.abs() > 1e-4), "silent fallback");
    let error = r.status.error.lock().clone();
    assert!(
        error.contains("grown-test-no-such-model.onnx") && error.contains("built-in model"),
        "warning not shown: {error:?}"
    );
    assert!(r.status.model.lock().contains("embedded:strings"));
    r.consumer.recycle(g);
}

/// Save WAV: the engine writes the generation the voices play, at the host's
/// rate, as one loop; the status says where (or why not).
#[test]
fn save_wav_writes_the_playing_generation_at_the_host_rate() {
    let mut r = rig();
    r.controls.host_rate.store(44_100.0, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("grown-save-wav-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let commands = r.engine.as_ref().unwrap().commands();
    // Asked before anything was grown, or while growing: whichever generation
    // was last published, never a partial one.
    let g = r.next_generation(0);
    let path = dir.join("take.wav");
    commands
        .send(EngineCommand::SaveWav {
            path: path.clone(),
            looping: true,
        })
        .unwrap();
    let start = Instant::now();
    let saved = loop {
        if let Ok(p) = &*r.status.saved.lock() {
            break p.clone();
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "not saved: {:?}",
            r.status.saved.lock()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(saved, path);
    let bytes = std::fs::read(&path).unwrap();
    // 32-bit float stereo at 44.1 kHz, as long as the generation.
    assert_eq!(
        u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
        44_100
    );
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    let frames = u32::from_le_bytes(bytes[data + 4..data + 8].try_into().unwrap()) as usize / 8;
    let expect = (g.len as f64 * 44_100.0 / f64::from(g.sample_rate)).round() as usize;
    assert_eq!(frames, expect);
    let samples: Vec<f32> = bytes[data + 8..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let rms = (samples.iter().map(|x| x * x).sum::<f32>() / samples.len() as f32).sqrt();
    let src = g.audio();
    let src_rms = (src.iter().map(|x| x * x).sum::<f32>() / src.len() as f32).sqrt();
    assert!(
        (rms / src_rms - 1.0).abs() < 0.05,
        "file rms {rms} vs generation {src_rms}"
    );
    r.consumer.recycle(g);

    // A folder that cannot be made is reported, not a crash.
    let blocked = dir.join("take.wav").join("inside-a-file.wav");
    commands
        .send(EngineCommand::SaveWav {
            path: blocked,
            looping: false,
        })
        .unwrap();
    let start = Instant::now();
    let why = loop {
        if let Err(why) = &*r.status.saved.lock() {
            break why.clone();
        }
        assert!(start.elapsed() < TIMEOUT);
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(why.starts_with("could not save"), "{why}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A new seed is heard early (a provisional generation a few steps in), and
/// the finished generation is bit-identical to the same seed grown on a fresh
/// engine; going back to the previous seed resumes it without regrowing.
#[test]
fn a_new_seed_is_heard_early_and_finishes_as_grown_directly() {
    let mut a = rig_with(None, 40, 3);
    let (first, early) = a.next_finished(0);
    assert!(early >= 1, "the first growth published nothing early");
    let seed3 = first.audio().to_vec();
    let last = first.id;
    a.consumer.recycle(first);

    a.controls.seed.store(9, Ordering::Relaxed);
    let (nine, early) = a.next_finished(last);
    assert!(early >= 1, "the seed change published nothing early");
    let mut b = rig_with(None, 40, 9);
    let (direct, _) = b.next_finished(0);
    assert!(
        nine.audio()
            .iter()
            .zip(direct.audio())
            .all(|(x, y)| x.to_bits() == y.to_bits())
            && nine.len == direct.len,
        "seed 9 after seed 3 differs from seed 9 grown directly"
    );
    let last = nine.id;
    a.consumer.recycle(nine);
    b.consumer.recycle(direct);

    // Back to seed 3: kept, so it is finished at once (no early generation).
    a.controls.seed.store(3, Ordering::Relaxed);
    let (back, early) = a.next_finished(last);
    assert_eq!(early, 0, "seed 3 was regrown");
    assert!(back
        .audio()
        .iter()
        .zip(&seed3)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    a.consumer.recycle(back);
}
