//! The editor: engine status and every parameter, grouped. Reads engine figures
//! from atomics and spectrogram snapshots through the triple buffer, so opening
//! it never touches the audio path.

use crate::engine::EngineStatus;
use crate::mel::Spectrogram;
use crate::params::GrownParams;
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp,
};
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The editor's app state, kept across open/close cycles of the window.
pub struct GrownEditor {
    /// Parameters to draw and set.
    params: Arc<GrownParams>,
    /// Engine figures and messages to show in the status line.
    status: Arc<EngineStatus>,
    /// Editor end of the engine's spectrogram triple buffer.
    snapshots: Arc<Mutex<triple_buffer::Output<Spectrogram>>>,
    /// Host context for parameter gestures; set when a window opens, dropped when it closes.
    gui: Option<GuiContext>,
}

pub type GrownEguiEditor = EguiEditor<GrownEditor>;

pub fn create(
    params: Arc<GrownParams>,
    status: Arc<EngineStatus>,
    snapshots: Arc<Mutex<triple_buffer::Output<Spectrogram>>>,
) -> Option<GrownEguiEditor> {
    let (w, h) = *params.editor_size.read();
    create_egui_editor(
        EguiEditorState::from_size(LogicalSize::new(w as f32, h as f32), 1.0),
        nice_plug_egui::RepaintNotifier::new(),
        EguiNiceSettings {
            title: "Grown".to_owned(),
            ..Default::default()
        },
        GrownEditor {
            params,
            status,
            snapshots,
            gui: None,
        },
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
        Ok(())
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(33));
        let Some(gui) = &self.gui else { return };
        let setter = gui.param_setter();
        let p = &self.params;

        ui.heading("Grown");
        status_line(ui, &self.status);
        let (n_mels, frames) = {
            let mut out = self.snapshots.lock();
            let s = out.read();
            (s.n_mels, s.frames)
        };
        ui.label(format!("Spectrogram: {n_mels} mels × {frames} frames"));
        ui.separator();

        ui.columns(3, |cols| {
            cols[0].strong("Growth");
            slider(&mut cols[0], "Growth", &p.growth, &setter);
            slider(&mut cols[0], "Seed", &p.seed, &setter);
            slider(&mut cols[0], "Drift", &p.drift, &setter);
            slider(&mut cols[0], "Fire rate", &p.fire_rate, &setter);
            slider(&mut cols[0], "Mutation", &p.mutation, &setter);
            slider(&mut cols[0], "Damage", &p.damage, &setter);
            slider(&mut cols[0], "Length", &p.length, &setter);

            cols[1].strong("Voice");
            slider(&mut cols[1], "Root note", &p.root_note, &setter);
            slider(&mut cols[1], "Attack", &p.attack, &setter);
            slider(&mut cols[1], "Decay", &p.decay, &setter);
            slider(&mut cols[1], "Sustain", &p.sustain, &setter);
            slider(&mut cols[1], "Release", &p.release, &setter);
            slider(&mut cols[1], "Polyphony", &p.polyphony, &setter);
            slider(&mut cols[1], "Pitch-bend range", &p.bend_range, &setter);

            cols[2].strong("Output");
            slider(&mut cols[2], "Morph", &p.morph, &setter);
            slider(&mut cols[2], "Gain", &p.gain, &setter);
            slider(&mut cols[2], "Loop", &p.loop_mode, &setter);
            slider(&mut cols[2], "Vocoder", &p.vocoder, &setter);
        });
    }
}

fn slider<P: Param>(ui: &mut egui::Ui, label: &str, param: &P, setter: &ParamSetter) {
    ui.label(label);
    ui.add(ParamSlider::for_param(param, setter).with_width(140.0));
}

fn status_line(ui: &mut egui::Ui, status: &EngineStatus) {
    let provider = status.provider.lock().clone();
    let model = status.model.lock().clone();
    let error = status.error.lock().clone();
    ui.label(format!(
        "{provider} · {model} · {:.0} steps/s · vocoder {:.1}× real time · step {} · generation {}",
        status.steps_per_s.load(Ordering::Relaxed),
        status.vocoder_rtf.load(Ordering::Relaxed),
        status.step.load(Ordering::Relaxed),
        status.generation.load(Ordering::Relaxed),
    ));
    if !error.is_empty() {
        ui.colored_label(egui::Color32::from_rgb(230, 80, 70), error);
    }
}
