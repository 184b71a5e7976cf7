//! The engine thread: owns everything slow (ONNX Runtime, the NCA, the
//! vocoder) and talks to the rest of the plugin only through [`wire`]'s
//! atomics and command channel, a triple buffer of spectrogram snapshots for
//! the editor, and the generation queue to the audio thread. Nothing it does
//! can block the audio thread.

pub mod link;
pub mod record;
pub mod wire;
mod worker;

pub use link::EngineLink;
pub use wire::{EngineCommand, EngineControls, EngineStatus};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};

use crate::dsp::mel::Spectrogram;
use crate::grow::nca::StepCancel;
use crate::grow::BrushConsumer;
use crate::play::queue::GenerationProducer;
use worker::Worker;

/// The background engine. Dropping it stops the thread.
pub struct Engine {
    /// Command channel to the thread.
    commands: Sender<EngineCommand>,
    /// Set on drop; the thread checks it between steps.
    shutdown: Arc<AtomicBool>,
    /// Ends a step running inside ONNX Runtime on drop, so teardown does not
    /// wait for it (a step of a long sound takes up to ~100 ms here).
    step_cancel: Arc<StepCancel>,
    /// The thread, joined on drop if it exits in time.
    thread: Option<JoinHandle<()>>,
    /// Disconnects when the thread has exited (its sender is dropped), so
    /// drop can wait with a timeout instead of an unbounded join.
    exited: Receiver<()>,
}

/// How long drop waits for the thread before giving up on a clean join.
const JOIN_TIMEOUT: Duration = Duration::from_millis(200);
/// Extra time drop waits when the thread is inside a long call (a vocoder
/// run): the plugin library may be unloaded right after the instance is
/// dropped, and code must not keep running from unmapped memory.
const JOIN_GRACE: Duration = Duration::from_secs(3);

impl Engine {
    /// Starts the engine thread, which loads ONNX Runtime and the model
    /// (`model_path`, or the embedded default) itself so the caller never waits.
    pub fn spawn(
        controls: Arc<EngineControls>,
        status: Arc<EngineStatus>,
        producer: GenerationProducer,
        snapshots: triple_buffer::Input<Spectrogram>,
        model_path: Option<PathBuf>,
    ) -> Self {
        Self::spawn_with_brush(controls, status, producer, snapshots, model_path, None)
    }

    /// [`Engine::spawn`] with the engine end of the editor's damage brush
    /// queue ([`brush_queue`]), drained before every step.
    pub fn spawn_with_brush(
        controls: Arc<EngineControls>,
        status: Arc<EngineStatus>,
        producer: GenerationProducer,
        snapshots: triple_buffer::Input<Spectrogram>,
        model_path: Option<PathBuf>,
        brush: Option<BrushConsumer>,
    ) -> Self {
        let (tx, rx) = crossbeam::channel::unbounded();
        let (exit_tx, exit_rx) = crossbeam::channel::bounded::<()>(0);
        let shutdown = Arc::new(AtomicBool::new(false));
        let flag = shutdown.clone();
        let step_cancel = Arc::new(StepCancel::default());
        let cancel = step_cancel.clone();
        let status2 = status.clone();
        let spawned = std::thread::Builder::new()
            .name("grown-engine".into())
            .spawn(move || {
                let _exit = exit_tx;
                let status3 = status.clone();
                let result = catch_unwind(AssertUnwindSafe(move || {
                    Worker::new(controls, status, producer, snapshots, rx, flag, model_path)
                        .with_brush(brush)
                        .with_step_cancel(cancel)
                        .run();
                }));
                if let Err(p) = result {
                    *status3.error.lock() = format!(
                        "the engine stopped after an internal error: {}",
                        crate::onnx::runtime::panic_message(&p)
                    );
                }
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                *status2.error.lock() = format!("could not start the engine thread: {e}");
                None
            }
        };
        Self {
            commands: tx,
            shutdown,
            step_cancel,
            thread,
            exited: exit_rx,
        }
    }

    /// Sender for [`EngineCommand`]s (cloneable, never blocks).
    pub fn commands(&self) -> Sender<EngineCommand> {
        self.commands.clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        self.step_cancel.cancel();
        let Some(thread) = self.thread.take() else {
            return;
        };
        // recv_timeout returns Disconnected as soon as the thread drops its sender.
        let exited = matches!(
            self.exited.recv_timeout(JOIN_TIMEOUT),
            Err(RecvTimeoutError::Disconnected)
        ) || matches!(
            self.exited.recv_timeout(JOIN_GRACE),
            Err(RecvTimeoutError::Disconnected)
        );
        if exited {
            let _ = thread.join();
        }
        // Otherwise the thread is detached; it exits at its next check.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Instant;

    /// A project whose vocoder file is refused but which still selects
    /// BigVGAN must keep showing the refusal, not a generic "no vocoder file".
    #[test]
    fn a_refused_vocoder_stays_the_status_while_bigvgan_is_selected() {
        let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/testdata/tiny_vocoder.onnx");
        let mut bytes = std::fs::read(tiny).unwrap();
        // Same-length edit of the metadata JSON: fmax 8000 → 7000.
        let needle = b"\"fmax\":8000.0";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        bytes[at + 7] = b'7';
        let path = std::env::temp_dir().join(format!("grown-refused-{}.onnx", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();

        let controls = Arc::new(EngineControls::default());
        controls.growth.store(4, Ordering::Relaxed);
        controls.length_s.store(0.2, Ordering::Relaxed);
        controls
            .vocoder
            .store(crate::vocoder::VocoderChoice::BigVgan);
        let status = Arc::new(EngineStatus::default());
        let (producer, mut consumer) = crate::play::queue::generation_queue(4, 22050);
        let (input, _output) = triple_buffer::triple_buffer(&Spectrogram::default());
        let engine = Engine::spawn(controls.clone(), status.clone(), producer, input, None);
        let commands = engine.commands();
        commands
            .send(EngineCommand::LoadVocoder(Some(path.clone())))
            .unwrap();
        let wait_for = |id: u64, consumer: &mut crate::play::queue::GenerationConsumer| {
            let start = Instant::now();
            while status.generation.load(Ordering::Acquire) < id {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "no generation {id}"
                );
                while let Some(g) = consumer.receive() {
                    consumer.recycle(g);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        // Two generations played with the built-in vocoder: the status
        // was written after each.
        wait_for(1, &mut consumer);
        controls.seed.store(2, Ordering::Relaxed);
        wait_for(2, &mut consumer);
        let shown = status.error.lock().clone();
        assert!(
            shown.contains("refused vocoder") && shown.contains("fmax 8000 vs 7000"),
            "{shown:?}"
        );
        // Unloading the file retires the refusal; the choice is still explained.
        commands.send(EngineCommand::LoadVocoder(None)).unwrap();
        wait_for(3, &mut consumer);
        let shown = status.error.lock().clone();
        assert!(shown.contains("no vocoder file is loaded"), "{shown:?}");
        drop(engine);
        let _ = std::fs::remove_file(path);
    }
}
