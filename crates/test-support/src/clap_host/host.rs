//! A small headless CLAP host: loads a `.clap` file, instantiates and activates the
//! plugin, and renders audio from a list of timed events on a separate audio thread,
//! the way a DAW would.

use super::ext::{ParamInfo, Params, State};
use clack_host::events::event_types::{
    MidiEvent, NoteExpressionEvent, NoteExpressionType, NoteOffEvent, NoteOnEvent, ParamModEvent,
    ParamValueEvent, TransportEvent, TransportFlags,
};
use clack_host::events::Match;
use clack_host::events::{EventFlags, EventHeader};
use clack_host::prelude::*;
use clack_host::utils::FixedPoint;
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// `clap.gui` (editor) both ways; only the editor test opens one, but every
/// test host offers `clap.host.gui` as a DAW does.
#[allow(dead_code)]
pub use super::gui;

/// The CLAP id the plugin is published under (lib.rs `CLAP_ID`).
pub const PLUGIN_ID: &str = "com.grown.grown";

/// Host callbacks shared between the plugin's threads.
pub struct Shared {
    /// Set by `request_callback`; the main thread then calls `on_main_thread`.
    callback_requested: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::Release);
    }
}

/// Marker type tying the handler types together.
pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Shared) {
        // nice-plug's gui.create needs clap.host.gui.
        builder.register::<gui::HostGui>();
    }
}

/// A loaded plugin file.
pub struct Library {
    /// The loaded entry; instances keep it alive too.
    entry: PluginEntry,
}

impl Library {
    /// Loads the file and checks it offers the Grown plugin.
    pub fn load(path: &Path) -> Self {
        // SAFETY: loading a plugin runs its initialisation code; this is the plugin under test.
        let entry = unsafe { PluginEntry::load(path) }
            .unwrap_or_else(|e| panic!("could not load {}: {e:?}", path.display()));
        let library = Self { entry };
        library.descriptor_name();
        library
    }

    /// The plugin's display name from its descriptor (also proves the id is listed).
    pub fn descriptor_name(&self) -> String {
        let factory = self
            .entry
            .get_plugin_factory()
            .expect("the entry has no plugin factory");
        let descriptor = factory
            .plugin_descriptors()
            .find(|d| {
                d.id()
                    .is_some_and(|id| id.to_bytes() == PLUGIN_ID.as_bytes())
            })
            .unwrap_or_else(|| panic!("the entry does not list {PLUGIN_ID}"));
        descriptor
            .name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A new, inactive instance.
    pub fn instantiate(&self) -> Plugin {
        let host = HostInfo::new("grown-tests", "Grown", "https://example.invalid", "0.1.0")
            .expect("host info");
        let id = CString::new(PLUGIN_ID).expect("plugin id");
        let mut instance = PluginInstance::<TestHost>::new(
            |_| Shared {
                callback_requested: AtomicBool::new(false),
            },
            |_| (),
            &self.entry,
            &id,
            &host,
        )
        .expect("instantiation failed");
        let handle = instance.plugin_handle();
        let params = handle.get_extension::<Params>().expect("no clap.params");
        let state = handle.get_extension::<State>().expect("no clap.state");
        let param_list = params.list(&handle);
        Plugin {
            instance,
            processor: None,
            params,
            state,
            param_list,
            sample_rate: 0.0,
            max_block: 0,
            steady_time: 0,
            tempo: None,
        }
    }
}

/// One event at a sample position counted from the start of a `render` call.
#[derive(Clone, Copy, Debug)]
pub struct Ev {
    /// Sample position in the render, so events land mid-block like a DAW's.
    pub time: usize,
    /// What happens there.
    pub kind: EvKind,
}

#[derive(Clone, Copy, Debug)]
pub enum EvKind {
    NoteOn {
        key: u8,
        velocity: f64,
    },
    NoteOff {
        key: u8,
    },
    /// Plain value, as `clap.params` reports ranges.
    Param {
        id: u32,
        value: f64,
    },
    /// A note-on with a host note id on a channel, as Bitwig and MPE send them.
    NoteWithId {
        key: u8,
        channel: u8,
        note_id: i32,
        velocity: f64,
    },
    /// A CLAP note expression for one note id.
    Expression {
        note_id: i32,
        key: u8,
        channel: u8,
        kind: NoteExpressionType,
        value: f64,
    },
    /// CLAP polyphonic modulation of parameter `id` for one note id (the
    /// amount in the parameter's CLAP units: normalised for floats).
    PolyMod {
        id: u32,
        note_id: i32,
        key: u8,
        channel: u8,
        amount: f64,
    },
    /// Raw MIDI 1.0 bytes on port 0 (CC, channel pressure, pitch bend).
    Midi([u8; 3]),
}

impl Ev {
    pub fn on(time: usize, key: u8) -> Self {
        Self {
            time,
            kind: EvKind::NoteOn { key, velocity: 0.8 },
        }
    }
    pub fn off(time: usize, key: u8) -> Self {
        Self {
            time,
            kind: EvKind::NoteOff { key },
        }
    }
    pub fn param(time: usize, id: u32, value: f64) -> Self {
        Self {
            time,
            kind: EvKind::Param { id, value },
        }
    }
}

/// Rendered stereo audio.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stereo {
    /// Output channel 0.
    pub left: Vec<f32>,
    /// Output channel 1; kept apart so a channel-specific fault shows.
    pub right: Vec<f32>,
    /// Sample positions of the events the plugin sent (note ends), in the order
    /// sent; a render asserts that each block's are in time order.
    pub events_out: Vec<usize>,
}

impl Stereo {
    /// Frames rendered.
    pub fn len(&self) -> usize {
        self.left.len()
    }
    /// True when nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }
    /// Mid signal, used for spectral measurements.
    pub fn mono(&self) -> Vec<f32> {
        self.left
            .iter()
            .zip(&self.right)
            .map(|(l, r)| 0.5 * (l + r))
            .collect()
    }
    pub fn slice(&self, start: usize, end: usize) -> Stereo {
        Stereo {
            left: self.left[start..end].to_vec(),
            right: self.right[start..end].to_vec(),
            events_out: self
                .events_out
                .iter()
                .filter(|&&t| (start..end).contains(&t))
                .map(|t| t - start)
                .collect(),
        }
    }
    pub fn peak(&self) -> f32 {
        self.left
            .iter()
            .chain(&self.right)
            .fold(0.0f32, |m, x| m.max(x.abs()))
    }
    pub fn rms(&self) -> f32 {
        let n = (2 * self.len()).max(1) as f64;
        let sum: f64 = self
            .left
            .iter()
            .chain(&self.right)
            .map(|&x| f64::from(x) * f64::from(x))
            .sum();
        (sum / n).sqrt() as f32
    }
    /// Index of the first non-finite sample, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.left
            .iter()
            .zip(&self.right)
            .position(|(l, r)| !l.is_finite() || !r.is_finite())
    }
}

/// How a render call is cut into process() calls.
#[derive(Clone, Copy, Debug)]
pub enum Blocks<'a> {
    /// Every block has the same length (the last one may be shorter).
    Fixed(usize),
    /// Block lengths cycle through the list: irregular sizes like a real host's.
    Cycle(&'a [usize]),
}

/// An instance plus everything needed to drive it.
pub struct Plugin {
    /// The instance itself; main-thread calls go through it.
    instance: PluginInstance<TestHost>,
    /// Present while activated.
    processor: Option<PluginAudioProcessor<TestHost>>,
    /// `clap.params`, to find ids and read values back.
    params: Params,
    /// `clap.state`, for save/load round trips.
    state: State,
    /// Parameters listed at instantiation.
    pub param_list: Vec<ParamInfo>,
    /// Rate of the current activation, to convert seconds to samples.
    pub sample_rate: f64,
    /// Largest block the current activation allows; renders never exceed it.
    pub max_block: usize,
    /// Monotonic sample counter passed as CLAP `steady_time`.
    steady_time: u64,
    /// Tempo (quarter notes per minute) the host's transport reports, in 4/4;
    /// `None`: no transport, as before a song plays.
    pub tempo: Option<f64>,
}

impl Plugin {
    pub fn activate(&mut self, sample_rate: f64, max_block: usize) {
        self.deactivate();
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: max_block as u32,
        };
        let processor = self
            .instance
            .activate(|_, _| (), config)
            .unwrap_or_else(|e| {
                panic!("activation at {sample_rate} Hz / {max_block} failed: {e:?}")
            });
        self.processor = Some(processor.into());
        self.sample_rate = sample_rate;
        self.max_block = max_block;
    }

    pub fn deactivate(&mut self) {
        if let Some(mut processor) = self.processor.take() {
            // CLAP wants stop_processing on the audio thread.
            std::thread::scope(|s| {
                s.spawn(|| {
                    processor.ensure_processing_stopped();
                });
            });
            self.instance.deactivate(processor.into_stopped());
        }
    }

    /// The parameter with this display name.
    pub fn param(&self, name: &str) -> ParamInfo {
        self.param_list
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .unwrap_or_else(|| {
                let names: Vec<_> = self.param_list.iter().map(|p| p.name.as_str()).collect();
                panic!("no parameter named {name:?}; the plugin has {names:?}")
            })
    }

    pub fn param_value(&mut self, id: u32) -> f64 {
        let handle = self.instance.plugin_handle();
        self.params.value(&handle, id)
    }

    /// Sets parameters (display name, plain value) through `clap.params` flush, before
    /// activation, so the engine starts with them and grows only the final sound.
    pub fn set_params_inactive(&mut self, values: &[(&str, f64)]) {
        assert!(
            self.processor.is_none(),
            "set_params_inactive on an active plugin"
        );
        let mut input = EventBuffer::new();
        for &(name, value) in values {
            let id = self.param(name).id;
            input.push(&ParamValueEvent::new(
                0,
                ClapId::new(id),
                Pckn::match_all(),
                value,
            ));
        }
        let mut output = EventBuffer::new();
        let handle = self.instance.plugin_handle();
        self.params
            .flush(&handle, &input.as_input(), &mut output.as_output());
        for &(name, value) in values {
            let id = self.param(name).id;
            let now = self.param_value(id);
            assert!(
                (now - value).abs() < 1e-6,
                "{name} reads {now} after flushing {value}"
            );
        }
    }

    /// The plugin's display text for the parameter's current value.
    pub fn param_text(&mut self, id: u32) -> String {
        let value = self.param_value(id);
        let handle = self.instance.plugin_handle();
        self.params.text(&handle, id, value)
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        self.state.save(&handle)
    }

    pub fn load_state(&mut self, bytes: &[u8]) {
        let handle = self.instance.plugin_handle();
        self.state.load(&handle, bytes);
        self.service_main_thread();
    }

    /// Offers a state and reports whether the plugin accepted it.
    #[allow(dead_code)] // used by the abuse tests only
    pub fn try_load_state(&mut self, bytes: &[u8]) -> bool {
        let handle = self.instance.plugin_handle();
        let ok = self.state.try_load(&handle, bytes);
        self.service_main_thread();
        ok
    }

    /// Runs main-thread callbacks the plugin asked for.
    pub fn service_main_thread(&mut self) {
        service(&mut self.instance);
    }

    /// The main-thread side and the audio processor apart, for tests that call
    /// main-thread functions (an editor) while an audio thread processes.
    #[allow(dead_code)] // used by the editor test only
    pub fn split(&mut self) -> (MainThread<'_>, &mut PluginAudioProcessor<TestHost>) {
        let processor = self.processor.as_mut().expect("split before activate");
        (
            MainThread {
                instance: &mut self.instance,
            },
            processor,
        )
    }

    /// Renders `frames` samples on an audio thread, delivering `events` (sorted by
    /// time) at their sample positions.
    pub fn render(&mut self, frames: usize, events: &[Ev], blocks: Blocks) -> Stereo {
        assert!(
            events.windows(2).all(|w| w[0].time <= w[1].time),
            "events must be sorted"
        );
        let max_block = self.max_block;
        let steady_time = self.steady_time;
        let tempo = self.tempo;
        let processor = self.processor.as_mut().expect("render before activate");
        let out = std::thread::scope(|s| {
            s.spawn(move || {
                let mut audio = AudioBlocks::new(max_block, steady_time);
                audio.tempo = tempo;
                render_on_audio_thread(processor, frames, events, blocks, &mut audio)
            })
            .join()
            .expect("the audio thread panicked")
        });
        self.steady_time += frames as u64;
        self.service_main_thread();
        out
    }

    /// Renders silence (no events) in blocks of the activated maximum size.
    pub fn render_silence(&mut self, frames: usize) -> Stereo {
        let block = self.max_block;
        self.render(frames, &[], Blocks::Fixed(block))
    }

    pub fn seconds(&self, s: f64) -> usize {
        (s * self.sample_rate).round() as usize
    }
}

/// Runs the plugin's main-thread callback if it asked for one.
fn service(instance: &mut PluginInstance<TestHost>) {
    let requested =
        instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::AcqRel));
    if requested {
        instance.call_on_main_thread_callback();
    }
}

/// The main-thread side of an active instance while its processor is lent to an
/// audio thread ([`Plugin::split`]).
#[allow(dead_code)] // used by the editor test only
pub struct MainThread<'a> {
    /// The instance, for main-thread handles and callbacks.
    instance: &'a mut PluginInstance<TestHost>,
}

#[allow(dead_code)] // used by the editor test only
impl MainThread<'_> {
    pub fn handle(&mut self) -> PluginMainThreadHandle<'_> {
        self.instance.plugin_handle()
    }

    /// Runs main-thread callbacks the plugin asked for (editor and parameter tasks).
    pub fn service(&mut self) {
        service(self.instance);
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.deactivate();
    }
}

fn render_on_audio_thread(
    processor: &mut PluginAudioProcessor<TestHost>,
    frames: usize,
    events: &[Ev],
    blocks: Blocks,
    audio: &mut AudioBlocks,
) -> Stereo {
    let processor = processor
        .ensure_processing_started()
        .expect("start_processing failed");
    let mut out = Stereo {
        left: Vec::with_capacity(frames),
        right: Vec::with_capacity(frames),
        events_out: Vec::new(),
    };
    let max_block = audio.left.len();
    let mut next_event = 0;
    let mut position = 0;
    let mut block_index = 0;
    while position < frames {
        let wanted = match blocks {
            Blocks::Fixed(n) => n,
            Blocks::Cycle(list) => list[block_index % list.len()],
        };
        block_index += 1;
        let n = wanted.clamp(1, max_block).min(frames - position);
        let due = std::iter::from_fn(|| {
            let ev = events.get(next_event).filter(|ev| ev.time < position + n)?;
            next_event += 1;
            Some(((ev.time.max(position) - position) as u32, ev.kind))
        });
        let (left, right) = audio.process(processor, n, due);
        out.left.extend_from_slice(left);
        out.right.extend_from_slice(right);
        out.events_out
            .extend(audio.sent_times().iter().map(|&t| position + t as usize));
        position += n;
    }
    out
}

/// Buffers and event lists for calling `process()` block after block on one
/// audio thread, made once so the host itself does not allocate per block.
pub struct AudioBlocks {
    /// Output channel 0, `max_block` long.
    left: Vec<f32>,
    /// Output channel 1.
    right: Vec<f32>,
    /// clack's buffer descriptors, reused.
    ports: AudioPorts,
    /// Events for the current block.
    in_events: EventBuffer,
    /// Whatever the plugin sends back (note ends).
    out_events: EventBuffer,
    /// Times of the events the last `process()` sent, in the order sent.
    sent: Vec<u32>,
    /// Monotonic sample counter passed as CLAP `steady_time`.
    steady_time: u64,
    /// Transport tempo, if the host reports one (4/4, playing from bar 1).
    pub tempo: Option<f64>,
}

impl AudioBlocks {
    pub fn new(max_block: usize, steady_time: u64) -> Self {
        Self {
            left: vec![0.0; max_block],
            right: vec![0.0; max_block],
            ports: AudioPorts::with_capacity(2, 1),
            in_events: EventBuffer::with_capacity(16),
            out_events: EventBuffer::with_capacity(64),
            sent: Vec::with_capacity(64),
            steady_time,
            tempo: None,
        }
    }

    /// Block-relative times of the events the last [`AudioBlocks::process`] sent.
    pub fn sent_times(&self) -> &[u32] {
        &self.sent
    }

    /// One `process()` call of `n` samples with `events` (block-relative time, what),
    /// in time order; returns the left and right output.
    pub fn process(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TestHost>,
        n: usize,
        events: impl IntoIterator<Item = (u32, EvKind)>,
    ) -> (&[f32], &[f32]) {
        self.in_events.clear();
        for (time, kind) in events {
            match kind {
                EvKind::NoteOn { key, velocity } => {
                    self.in_events
                        .push(&NoteOnEvent::new(time, note_address(key), velocity))
                }
                EvKind::NoteOff { key } => {
                    self.in_events
                        .push(&NoteOffEvent::new(time, note_address(key), 0.0))
                }
                EvKind::Param { id, value } => self.in_events.push(&ParamValueEvent::new(
                    time,
                    ClapId::new(id),
                    Pckn::match_all(),
                    value,
                )),
                EvKind::NoteWithId {
                    key,
                    channel,
                    note_id,
                    velocity,
                } => self.in_events.push(&NoteOnEvent::new(
                    time,
                    note_of(key, channel, note_id),
                    velocity,
                )),
                EvKind::Expression {
                    note_id,
                    key,
                    channel,
                    kind,
                    value,
                } => self.in_events.push(&NoteExpressionEvent::new(
                    time,
                    note_of(key, channel, note_id),
                    kind,
                    value,
                )),
                EvKind::PolyMod {
                    id,
                    note_id,
                    key,
                    channel,
                    amount,
                } => self.in_events.push(&ParamModEvent::new(
                    time,
                    ClapId::new(id),
                    note_of(key, channel, note_id),
                    amount,
                )),
                EvKind::Midi(bytes) => self.in_events.push(&MidiEvent::new(time, 0, bytes)),
            }
        }
        let transport = self.tempo.map(transport_at);
        self.out_events.clear();

        // Garbage in the buffers proves the plugin writes every output sample.
        let (left, right) = (&mut self.left[..n], &mut self.right[..n]);
        left.fill(f32::NAN);
        right.fill(f32::NAN);
        let mut outputs = self.ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only([&mut *left, &mut *right].into_iter()),
        }]);
        processor
            .process(
                &InputAudioBuffers::empty(),
                &mut outputs,
                &self.in_events.as_input(),
                &mut self.out_events.as_output(),
                Some(self.steady_time),
                transport.as_ref(),
            )
            .expect("process() failed");
        // CLAP: a plugin's output events must be in time order; hosts may drop
        // or reject them otherwise. Every scenario checks it.
        self.sent.clear();
        self.sent
            .extend(self.out_events.iter().map(|e| e.header().time()));
        assert!(
            self.sent.windows(2).all(|w| w[0] <= w[1]),
            "the plugin sent events out of time order: {:?}",
            self.sent
        );
        self.steady_time += n as u64;
        (&self.left[..n], &self.right[..n])
    }
}

/// Port 0, `channel`, `key`, one host note id.
fn note_of(key: u8, channel: u8, note_id: i32) -> Pckn {
    Pckn::new(0u16, u16::from(channel), u16::from(key), note_id as u32)
}

/// A playing 4/4 transport at `tempo` from the song's start.
fn transport_at(tempo: f64) -> TransportEvent {
    let zero = FixedPoint::from_int(0);
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags: TransportFlags::HAS_TEMPO
            | TransportFlags::HAS_BEATS_TIMELINE
            | TransportFlags::HAS_TIME_SIGNATURE
            | TransportFlags::IS_PLAYING,
        song_pos_beats: zero,
        song_pos_seconds: zero,
        tempo,
        tempo_inc: 0.0,
        loop_start_beats: zero,
        loop_end_beats: zero,
        loop_start_seconds: zero,
        loop_end_seconds: zero,
        bar_start: zero,
        bar_number: 0,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

/// Port 0, channel 0, the key, any note id (nice-plug then matches by key).
fn note_address(key: u8) -> Pckn {
    Pckn::new(0u16, 0u16, u16::from(key), Match::<u32>::All)
}
