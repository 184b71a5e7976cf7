//! A minimal in-process host for the real plugin: `activate()` and `process()`
//! contexts, and an instance driven block by block as a DAW would.

use super::*;

/// Minimal host side of `activate()`.
pub(super) struct HostActivate;

impl ActivateContext<Grown> for HostActivate {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, _samples: u32) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// Most note events one block carries here (one per voice).
pub(super) const MAX_EVENTS: usize = 16;

/// Minimal host side of `process()`: a fixed array of note events (no
/// allocation per block) and a transport.
pub(super) struct HostProcess {
    /// Events of the coming block, in timing order.
    events: [Option<NoteEvent<()>>; MAX_EVENTS],
    /// Events queued.
    len: usize,
    /// Next event handed to the plugin.
    next: usize,
    /// Stopped transport at the session rate.
    transport: Transport,
}

impl HostProcess {
    pub(super) fn new(sample_rate: f32) -> Self {
        Self {
            events: [None; MAX_EVENTS],
            len: 0,
            next: 0,
            transport: Transport::new(sample_rate),
        }
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// Queues a note-on at the start of the coming block.
    pub(super) fn note_on(&mut self, note: u8) {
        if self.len < MAX_EVENTS {
            self.events[self.len] = Some(NoteEvent::NoteOn {
                timing: 0,
                voice_id: VoiceID::Wildcard,
                channel: Channel::Number(0),
                key: Key::Number(note),
                velocity: 0.8,
            });
            self.len += 1;
        }
    }
}

impl ProcessContext<Grown> for HostProcess {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<NoteEvent<()>> {
        if self.next < self.len {
            self.next += 1;
            self.events[self.next - 1]
        } else {
            None
        }
    }
    fn try_send_event(
        &mut self,
        _event: NoteEvent<()>,
    ) -> Result<(), (NoteEvent<()>, nice_plug::context::process::SendEventError)> {
        Ok(())
    }
    fn set_latency_samples(&self, _samples: u32) {}
    fn request_restart(&self) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

pub(super) const SAMPLE_RATE: f32 = 48_000.0;
pub(super) const MAX_BLOCK: usize = 512;

/// A plugin instance driven like a host drives it: parameters set through
/// their pointers, smoothers reset at activation, `process()` per block.
pub(super) struct Instance {
    pub(super) plugin: Grown,
    pub(super) host: HostProcess,
    pub(super) left: Vec<f32>,
    pub(super) right: Vec<f32>,
}

impl Instance {
    /// Creates and activates an instance (which spawns its engine thread).
    pub(super) fn new(polyphony: i32) -> Result<Self> {
        let mut plugin = Grown::default();
        let params = plugin.params();
        for (id, ptr, _) in params.param_map() {
            // SAFETY: the pointers come from the live params object, which
            // outlives this loop; this is what a host wrapper does.
            unsafe {
                if id == "polyphony" {
                    let n = ptr.preview_normalized(polyphony as f32);
                    ptr._internal_set_normalized_value(n);
                }
                ptr._internal_update_smoother(SAMPLE_RATE, true);
            }
        }
        let layout = AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        };
        let config = BufferConfig {
            sample_rate: SAMPLE_RATE,
            min_buffer_size: None,
            max_buffer_size: MAX_BLOCK as u32,
            process_mode: ProcessMode::Realtime,
        };
        if !plugin.activate(&layout, &config, &mut HostActivate) {
            bail!("activate() refused");
        }
        plugin.reset();
        Ok(Self {
            plugin,
            host: HostProcess::new(SAMPLE_RATE),
            left: vec![0.0; MAX_BLOCK],
            right: vec![0.0; MAX_BLOCK],
        })
    }

    /// One `process()` call of `n` samples; returns its duration and the
    /// heap operations the call made on this thread.
    pub(super) fn process(&mut self, n: usize) -> (Duration, Option<u64>) {
        let (took, _, ops) = self.process_cpu(n);
        (took, ops)
    }

    /// [`process`](Self::process) that also returns the CPU time this thread
    /// spent in the call (`None` where the platform has no thread clock).
    pub(super) fn process_cpu(&mut self, n: usize) -> (Duration, Option<Duration>, Option<u64>) {
        let (l, r) = (&mut self.left[..n], &mut self.right[..n]);
        let mut buffer = Buffer::default();
        // SAFETY: both slices live until `process` returns and have length `n`.
        unsafe {
            buffer.set_slices(n, |s| {
                s.clear();
                s.push(l);
                s.push(r);
            });
        }
        let mut aux = AuxiliaryBuffers {
            inputs: &mut [],
            outputs: &mut [],
        };
        let ops0 = counting::ops();
        let cpu0 = thread_cpu_time();
        let t0 = Instant::now();
        let _ = self.plugin.process(&mut buffer, &mut aux, &mut self.host);
        let took = t0.elapsed();
        let cpu = thread_cpu_time()
            .zip(cpu0)
            .map(|(a, b)| a.saturating_sub(b));
        let ops = counting::ops().zip(ops0).map(|(a, b)| a - b);
        drop(buffer);
        self.host.clear();
        (took, cpu, ops)
    }

    pub(super) fn peak(&self, n: usize) -> f32 {
        self.left[..n]
            .iter()
            .chain(&self.right[..n])
            .fold(0.0f32, |m, v| m.max(v.abs()))
    }

    /// [`Instance::wait_for_sound`], then until growth has reached its target
    /// and the finished generation plays: the instance settled, its engine idle.
    pub(super) fn wait_until_grown(&mut self, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        self.wait_for_sound(timeout)?;
        let status = self.plugin.engine_status();
        loop {
            let (step, target) = (
                status.step.load(std::sync::atomic::Ordering::Relaxed),
                status.target.load(std::sync::atomic::Ordering::Relaxed),
            );
            if target > 0 && step >= target {
                // The finished generation is vocoded right after the last step.
                std::thread::sleep(Duration::from_millis(300));
                self.process(MAX_BLOCK);
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!("growth did not finish within {timeout:?}");
            }
            self.process(MAX_BLOCK);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Holds a note until sound comes out: the engine has grown and vocoded
    /// its first generation (early or finished) and the audio thread has received it.
    pub(super) fn wait_for_sound(&mut self, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        self.host.note_on(60);
        loop {
            self.process(MAX_BLOCK);
            if self.peak(MAX_BLOCK) > 1e-4 {
                self.plugin.reset();
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!("no sound within {timeout:?}: the engine produced no generation");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// CPU time the calling thread has used (the soak test's clock). On a shared
/// machine wall-clock windows include time the thread sat descheduled; this
/// clock does not, so it shows the callback's own cost beside the wall-clock figure.
pub(super) fn thread_cpu_time() -> Option<Duration> {
    grown_tools::soak::thread_cpu_ns().map(Duration::from_nanos)
}
