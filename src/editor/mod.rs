//! The editor: the live spectrogram with playheads and the damage brush, every
//! parameter grouped, the engine's status, and the model picker.
//!
//! It only reads engine figures from atomics, spectrogram snapshots through
//! the triple buffer and playheads from atomics, and writes brush dabs into a
//! lock-free ring, so opening, drawing or closing it never touches the audio
//! path. Its own locks (snapshot output, brush producer, engine link) are
//! shared with nothing on the audio thread.

mod gl_libraries;
pub mod models;
pub mod presets;
pub mod spectrogram;

use crate::dsp::mel::Spectrogram;
use crate::engine::{EngineLink, EngineStatus};
use crate::grow::BrushProducer;
use crate::params::GrownParams;
use crate::play::Playheads;
use gl_libraries::GlLibraries;
use models::{ModelPicker, PickerAction};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::editor::ResizeHint;
use nice_plug::prelude::*;
use nice_plug_egui::resizable_window::ResizableWindow;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp,
};
use parking_lot::Mutex;
use presets::{BrowserAction, PresetBrowser};
use spectrogram::SpectrogramView;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Smallest useful window (logical pixels): the spectrogram and one row of
/// each parameter group still fit; below it everything scrolls.
pub const MIN_SIZE: (f32, f32) = (640.0, 420.0);
/// Largest window we offer to grow to.
pub const MAX_SIZE: (f32, f32) = (3840.0, 2160.0);
/// Repaint interval: the engine publishes snapshots at ~30 Hz.
const FRAME: std::time::Duration = std::time::Duration::from_millis(33);
/// How often egui-baseview polls nice-plug-egui's repaint notifier: practically
/// never. The notifier starts out set (and host parameter or state changes set
/// it while a window is up), so its first poll, 16 ms after the window is
/// created, asks baseview 0.4 for a frame; when that comes before the host maps
/// the window, baseview sends its first Present request before it has selected
/// Present events (`PresentState::handle_present_notify` runs ahead of
/// `handle_window_mapped`), never sees the completion and never draws: a blank
/// editor. `ui` repaints every `FRAME` anyway, so the notifier adds nothing.
const NOTIFIER_POLL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Everything the plugin shares with the editor.
pub struct EditorShared {
    /// Parameters to draw and set; also holds the persisted size and model paths.
    pub params: Arc<GrownParams>,
    /// Engine figures and messages for the status line.
    pub status: Arc<EngineStatus>,
    /// Editor end of the engine's spectrogram triple buffer.
    pub snapshots: Arc<Mutex<triple_buffer::Output<Spectrogram>>>,
    /// Where sounding voices are, written by the audio thread.
    pub playheads: Arc<Playheads>,
    /// Editor end of the damage brush queue.
    pub brush: Arc<Mutex<BrushProducer>>,
    /// Engine command sender for the model picker.
    pub link: Arc<Mutex<EngineLink>>,
}

/// The editor's app state, kept across open/close cycles of the window.
pub struct GrownEditor {
    /// What the plugin shares with us.
    shared: EditorShared,
    /// Host context for parameter gestures; set when a window opens, dropped when it closes.
    gui: Option<GuiContext>,
    /// Spectrogram texture, axes and brush state.
    view: SpectrogramView,
    /// Damage brush radius as a fraction of the spectrogram's height
    /// (editor-only, not a host parameter: it changes no sound by itself).
    brush_radius: f32,
    /// Path fields and checks of the model picker.
    picker: ModelPicker,
    /// Factory and user presets, save as, Save WAV.
    browser: PresetBrowser,
    /// Keeps baseview's GL library loaded from the first open on, so that closing
    /// a window does not unload (and leak) Mesa each time; see `gl_libraries`.
    gl: Option<GlLibraries>,
}

pub type GrownEguiEditor = EguiEditor<GrownEditor>;

/// Builds the editor at the persisted size (logical pixels, so it is the same
/// physical size on any display scale).
pub fn create(shared: EditorShared) -> Option<GrownEguiEditor> {
    let (w, h) = *shared.params.editor_size.read();
    let (w, h) = clamp_size(w as f32, h as f32);
    create_egui_editor(
        EguiEditorState::from_size(LogicalSize::new(w, h), 1.0),
        nice_plug_egui::RepaintNotifier::new(),
        EguiNiceSettings {
            title: "Grown".to_owned(),
            repaint_poll_interval: NOTIFIER_POLL,
            resize_hint: ResizeHint::resizable().with_min_max_logical_size(
                Some(LogicalSize::new(MIN_SIZE.0, MIN_SIZE.1)),
                Some(LogicalSize::new(MAX_SIZE.0, MAX_SIZE.1)),
            ),
            ..Default::default()
        },
        GrownEditor {
            shared,
            gui: None,
            view: SpectrogramView::new(),
            brush_radius: 0.08,
            picker: ModelPicker::default(),
            browser: PresetBrowser::default(),
            gl: None,
        },
    )
}

/// A persisted size from an older version or another machine may be absurd.
pub fn clamp_size(w: f32, h: f32) -> (f32, f32) {
    let fix = |v: f32, lo: f32, hi: f32| if v.is_finite() { v.clamp(lo, hi) } else { lo };
    (
        fix(w, MIN_SIZE.0, MAX_SIZE.0),
        fix(h, MIN_SIZE.1, MAX_SIZE.1),
    )
}

impl NiceEguiApp for GrownEditor {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui);
        // baseview has made this window's GL context: its library is loaded now.
        if self.gl.is_none() {
            self.gl = Some(GlLibraries::reference_loaded());
        }
        let p = &self.shared.params;
        self.picker.open(
            crate::params::read_model(&p.model_path, "nca"),
            crate::params::read_model(&p.vocoder_path, "vocoder"),
        );
        Ok(())
    }

    fn editor_closed(&mut self) {
        self.gui = None;
        self.view.close();
    }

    fn resized(&mut self, new_size: nice_plug_egui::baseview::WindowSize) {
        let (w, h) = clamp_size(
            new_size.logical.width as f32,
            new_size.logical.height as f32,
        );
        *self.shared.params.editor_size.write() = (w.round() as u32, h.round() as u32);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        ui.ctx().request_repaint_after(FRAME);
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let min = egui::Vec2::new(MIN_SIZE.0, MIN_SIZE.1);
        ResizableWindow::new("grown-editor")
            .min_size(min)
            .max_size(egui::Vec2::new(MAX_SIZE.0, MAX_SIZE.1))
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .auto_shrink([false, false])
                    .show(ui, |ui| self.contents(ui, &setter, &gui));
            });
    }
}

impl GrownEditor {
    fn contents(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, gui: &GuiContext) {
        let status = self.shared.status.clone();
        let info = status.model_info.lock().clone();
        // `stft-ms` models play without a vocoder and have no mel axis.
        let stft = info.as_ref().is_some_and(|i| i.stft.is_some());

        ui.horizontal(|ui| {
            ui.heading("Grown");
            ui.label(egui::RichText::new(status.model.lock().clone()).weak());
        });
        let current = self.shared.params.preset_name.read().clone();
        if let Some(action) = self.browser.show(ui, current.as_deref()) {
            self.browse(action, gui);
        }
        let saved = match &*status.saved.lock() {
            Ok(path) => format!("Saved {}", path.display()),
            Err(why) => why.clone(),
        };
        if !saved.is_empty() {
            ui.label(egui::RichText::new(saved).weak());
        }
        status_line(ui, &status, self.view.dropped);

        // Spectrogram: upload a new snapshot when there is one.
        {
            let mut out = self.shared.snapshots.lock();
            let fresh = out.update();
            self.view.update(ui.ctx(), out.output_buffer(), fresh, stft);
        }
        let mut heads = [0.0f32; crate::play::MAX_VOICES];
        let n = self.shared.playheads.read(&mut heads);
        let width = ui.available_width();
        let height = (ui.ctx().content_rect().height() * 0.36).clamp(140.0, 900.0);
        {
            let mut brush = self.shared.brush.lock();
            self.view.show(
                ui,
                egui::Vec2::new(width, height),
                info.as_ref().filter(|_| !stft).map(|i| &i.mel),
                &heads[..n],
                (!stft).then_some(self.brush_radius),
                &mut brush,
            );
        }
        ui.horizontal(|ui| {
            ui.label("Damage brush");
            ui.add(
                egui::Slider::new(&mut self.brush_radius, 0.01..=0.5)
                    .custom_formatter(|v, _| format!("{:.0} %", v * 100.0))
                    .custom_parser(|s| {
                        s.trim_end_matches('%')
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .map(|v| v / 100.0)
                    }),
            )
            .on_hover_text("Brush radius, in % of the spectrogram's height");
            ui.label(
                egui::RichText::new(
                    "drag on the spectrogram to erase cells; the automaton regrows them",
                )
                .weak(),
            );
        });
        ui.separator();

        let p = self.shared.params.clone();
        ui.columns(3, |cols| {
            group(&mut cols[0], "Growth", setter, |ui, s| {
                row(ui, "Growth", &p.grow.growth, s);
                row(ui, "Seed", &p.grow.seed, s);
                row(ui, "Drift", &p.grow.drift, s);
                row(ui, "Fire rate", &p.grow.fire_rate, s);
                row(ui, "Mutation", &p.grow.mutation, s);
                row(ui, "Damage", &p.grow.damage, s);
                row(ui, "Length", &p.grow.length, s);
                row(ui, "Drift sync", &p.grow.drift_sync, s);
                row(ui, "Length sync", &p.grow.length_sync, s);
            });
            group(&mut cols[1], "Voice", setter, |ui, s| {
                row(ui, "Root note", &p.voice.root_note, s);
                row(ui, "Attack", &p.voice.attack, s);
                row(ui, "Decay", &p.voice.decay, s);
                row(ui, "Sustain", &p.voice.sustain, s);
                row(ui, "Release", &p.voice.release, s);
                row(ui, "Polyphony", &p.voice.polyphony, s);
                row(ui, "Bend range", &p.voice.bend_range, s);
                row(ui, "Tune", &p.voice.tune, s);
            });
            group(&mut cols[2], "Output", setter, |ui, s| {
                row(ui, "Morph", &p.output.morph, s);
                row(ui, "Gain", &p.output.gain, s);
                row(ui, "Loop", &p.output.loop_mode, s);
                if !stft {
                    row(ui, "Vocoder", &p.output.vocoder, s);
                }
            });
        });
        egui::CollapsingHeader::new("Expression")
            .default_open(false)
            .show(ui, |ui| {
                let e = &p.expression;
                ui.columns(2, |cols| {
                    group(&mut cols[0], "Touch", setter, |ui, s| {
                        row(ui, "Vel. curve", &e.velocity_curve, s);
                        row(ui, "Vel. → tone", &e.velocity_tone, s);
                        row(ui, "Pressure → level", &e.voice_pressure, s);
                        row(ui, "MPE", &e.mpe, s);
                        row(ui, "MPE bend", &e.mpe_bend_range, s);
                    });
                    group(&mut cols[1], "Controllers", setter, |ui, s| {
                        row(ui, "Wheel →", &e.wheel_target, s);
                        row(ui, "Wheel depth", &e.wheel_depth, s);
                        row(ui, "Pressure →", &e.pressure_target, s);
                        row(ui, "Press. depth", &e.pressure_depth, s);
                    });
                });
            });
        ui.label(
            egui::RichText::new(
                "Drag a slider, or click its value to type one; double-click resets.",
            )
            .weak(),
        );
        ui.separator();

        egui::CollapsingHeader::new("Models")
            .default_open(true)
            .show(ui, |ui| {
                if let Some(action) = self.picker.show(ui, info.as_ref()) {
                    self.apply(action);
                }
            });
    }

    /// Applies, saves or records what the preset browser asked for.
    fn browse(&mut self, action: BrowserAction, gui: &GuiContext) {
        match action {
            BrowserAction::Apply(preset) => {
                // The host's own state-restore path: checked, and the engine
                // follows the model through `activate`.
                gui.set_state(preset.to_state());
                self.browser.message = format!("Loaded {}", preset.name);
            }
            BrowserAction::SaveAs(name) => {
                let state = gui.get_state();
                let preset = crate::presets::Preset::from_state(&state, &name, vec!["user".into()]);
                self.browser.message = match self.browser.save(&preset) {
                    Ok(path) => {
                        *self.shared.params.preset_name.write() = Some(name);
                        format!("Saved {}", path.display())
                    }
                    Err(e) => e,
                };
            }
            BrowserAction::SaveWav => {
                let p = &self.shared.params;
                let Some(dir) = crate::userdata::recordings_dir() else {
                    self.browser.message = "no user data folder (HOME is not set)".into();
                    return;
                };
                let name = p
                    .preset_name
                    .read()
                    .clone()
                    .unwrap_or_else(|| "grown".to_owned());
                let file = format!(
                    "{}-seed{}-{}.wav",
                    crate::userdata::slug(&name),
                    p.grow.seed.value(),
                    crate::userdata::timestamp()
                );
                let looping = p.output.loop_mode.value() == crate::params::LoopMode::Loop;
                let sent = self
                    .shared
                    .link
                    .lock()
                    .send(crate::engine::EngineCommand::SaveWav {
                        path: dir.join(file),
                        looping,
                    });
                self.browser.message = if sent {
                    "Saving…".into()
                } else {
                    "the engine is not running yet".into()
                };
            }
        }
    }

    /// Records the chosen files in the persisted parameters and tells the engine.
    fn apply(&mut self, action: PickerAction) {
        let p = &self.shared.params;
        match action {
            PickerAction::LoadModel(path) => {
                *p.model_path.write() = Some(crate::grow::library::reference(
                    &path,
                    &crate::grow::library::model_dirs(),
                    "nca",
                ))
            }
            PickerAction::BuiltInModel => *p.model_path.write() = None,
            PickerAction::LoadVocoder(path) => {
                *p.vocoder_path.write() = Some(crate::grow::library::reference(
                    &path,
                    &crate::grow::library::model_dirs(),
                    "vocoder",
                ))
            }
            PickerAction::UnloadVocoder => *p.vocoder_path.write() = None,
        }
        let model = crate::params::read_model(&p.model_path, "nca");
        let vocoder = crate::params::read_model(&p.vocoder_path, "vocoder");
        self.shared.link.lock().sync(model, vocoder);
    }
}

/// A framed, titled parameter group, one labelled slider per row.
fn group(
    ui: &mut egui::Ui,
    title: &str,
    setter: &ParamSetter,
    rows: impl FnOnce(&mut egui::Ui, &Row),
) {
    ui.group(|ui| {
        let inner = ui.available_width();
        ui.set_max_width(inner);
        ui.strong(title);
        ui.spacing_mut().item_spacing.y = 5.0;
        // One slider width per group, so the sliders line up.
        let slider = (inner - LABEL_WIDTH - VALUE_WIDTH).max(40.0);
        rows(ui, &Row { setter, slider });
    });
}

/// What every row of a group shares.
struct Row<'a> {
    /// Parameter setter of the open window.
    setter: &'a ParamSetter<'a>,
    /// Slider width in this group.
    slider: f32,
}

/// Width of the parameter names left of the sliders.
const LABEL_WIDTH: f32 = 74.0;
/// Room kept right of a slider for its value and unit ("0.300 s", "8 voices").
const VALUE_WIDTH: f32 = 78.0;

/// One labelled parameter: the slider shows the value with its unit, click the
/// value to type one, double-click (or Ctrl-click) the slider to reset it.
fn row<P: Param>(ui: &mut egui::Ui, label: &str, param: &P, r: &Row) {
    ui.horizontal(|ui| {
        ui.allocate_ui_with_layout(
            egui::Vec2::new(LABEL_WIDTH, ui.spacing().interact_size.y),
            egui::Layout::left_to_right(egui::Align::Center),
            |ui| {
                ui.set_min_width(LABEL_WIDTH);
                ui.add(egui::Label::new(label).truncate());
            },
        );
        ui.add(ParamSlider::for_param(param, r.setter).with_width(r.slider));
    });
}

/// What to do about an engine error, for the usual ones.
pub fn advice(error: &str) -> Option<&'static str> {
    let e = error.to_ascii_lowercase();
    if e.contains("onnx runtime") || e.contains("libonnxruntime") || e.contains("ort_dylib_path") {
        Some(
            "Reinstall the bundle so libonnxruntime sits beside the plugin, or set ORT_DYLIB_PATH.",
        )
    } else if e.contains("mel analysis differs") {
        Some("Pick a model and vocoder trained on the same mel settings, or unload the vocoder.")
    } else if e.contains("contract") || e.contains("not an onnx model") || e.contains("not found") {
        Some("Choose another model file under Models, or press Built-in.")
    } else if e.contains("growth stopped") || e.contains("kept the previous state") {
        Some("Change Seed, Fire rate or Mutation, or load another model.")
    } else {
        None
    }
}

fn status_line(ui: &mut egui::Ui, status: &EngineStatus, dropped: u64) {
    let provider = status.provider.lock().clone();
    let error = status.error.lock().clone();
    let provider = if provider.is_empty() {
        "starting the engine…".to_owned()
    } else {
        provider
    };
    ui.label(provider);
    ui.label(format!(
        "{:.0} NCA steps/s · vocoder RTF {:.2} · step {} of {} · generation {}{}",
        status.steps_per_s.load(Ordering::Relaxed),
        status.vocoder_rtf.load(Ordering::Relaxed),
        status.step.load(Ordering::Relaxed),
        status.target.load(Ordering::Relaxed),
        status.generation.load(Ordering::Relaxed),
        if dropped > 0 {
            format!(" · {dropped} brush dabs dropped (engine busy)")
        } else {
            String::new()
        },
    ));
    if !error.is_empty() {
        let red = egui::Color32::from_rgb(230, 80, 70);
        let text = match advice(&error) {
            Some(what) => format!("{error}\n→ {what}"),
            None => error,
        };
        ui.colored_label(red, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_sizes_are_clamped() {
        assert_eq!(clamp_size(10.0, 10.0), MIN_SIZE);
        assert_eq!(clamp_size(f32::NAN, 1e9), (MIN_SIZE.0, MAX_SIZE.1));
        assert_eq!(clamp_size(900.0, 640.0), (900.0, 640.0));
    }

    #[test]
    fn playheads_round_trip_and_clamp_to_the_voice_count() {
        let heads = Playheads::default();
        let mut out = [0.0f32; crate::play::MAX_VOICES];
        assert_eq!(heads.read(&mut out), 0);
        heads.publish(&[0.5, 1.25, 2.0]);
        assert_eq!(heads.read(&mut out), 3);
        assert_eq!(&out[..3], &[0.5, 1.25, 2.0]);
        heads.publish(&[1.0; 40]);
        assert_eq!(heads.read(&mut out), crate::play::MAX_VOICES);
    }

    #[test]
    fn the_engine_link_sends_each_change_once() {
        use crate::engine::EngineCommand;
        let mut link = EngineLink::default();
        // No engine yet: nothing to send, nothing recorded.
        link.sync(Some("a.onnx".into()), None);
        assert_eq!(link.model, None);
        let (tx, rx) = crossbeam::channel::unbounded();
        link.commands = Some(tx);
        link.sync(Some("a.onnx".into()), None);
        link.sync(Some("a.onnx".into()), None);
        assert_eq!(rx.try_recv(), Ok(EngineCommand::LoadModel("a.onnx".into())));
        assert!(rx.try_recv().is_err(), "an unchanged file is not reloaded");
        link.sync(None, Some("v.onnx".into()));
        assert_eq!(rx.try_recv(), Ok(EngineCommand::LoadBuiltInModel));
        assert_eq!(
            rx.try_recv(),
            Ok(EngineCommand::LoadVocoder(Some("v.onnx".into())))
        );
        link.sync(None, None);
        assert_eq!(rx.try_recv(), Ok(EngineCommand::LoadVocoder(None)));
    }

    #[test]
    fn common_errors_come_with_advice() {
        assert!(advice("ONNX Runtime error: could not find libonnxruntime").is_some());
        assert!(advice("could not load x.onnx: model breaks the Grown contract: key").is_some());
        assert!(advice("refused vocoder v.onnx: its mel analysis differs").is_some());
        assert_eq!(advice("something new"), None);
    }
}
