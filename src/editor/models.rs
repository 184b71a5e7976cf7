//! The model picker: a path field per model kind, the `.onnx` files found in
//! the bundle's models folders, the metadata of the chosen file, and the
//! reason when a file is refused. Files are checked here from their metadata
//! (no ONNX Runtime needed) before the engine is asked to load them, so a
//! wrong file is explained in view instead of only failing in the engine.

use crate::dsp::mel::MelConfig;
use crate::grow::model::{parse_model_bytes, read_metadata, ModelError, ModelInfo};
use crate::vocoder::bigvgan::parse_vocoder_metadata;
use std::path::{Path, PathBuf};

pub use crate::grow::library::{model_dirs, scan};

/// Reads a model file, with the contract's error wording.
fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    if !path.exists() {
        return Err(ModelError::Missing(path.to_path_buf()));
    }
    std::fs::read(path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))
}

/// Checks an NCA file against the contract and, when a vocoder is loaded,
/// against its mel analysis. The error says why and what to do.
pub fn check_nca(path: &Path, vocoder_mel: Option<&MelConfig>) -> Result<ModelInfo, String> {
    let info = read(path)
        .and_then(|b| parse_model_bytes(&b))
        .map_err(|e| e.to_string())?;
    if let Some(diff) = vocoder_mel.and_then(|v| info.mel.mismatch(v)) {
        return Err(format!(
            "refused: its mel analysis differs from the loaded vocoder's ({diff}); \
             unload the vocoder or choose a model trained for it"
        ));
    }
    Ok(info)
}

/// Checks a vocoder file against the contract and the current model's mel analysis.
pub fn check_vocoder(path: &Path, model_mel: Option<&MelConfig>) -> Result<MelConfig, String> {
    let mel = read(path)
        .and_then(|b| read_metadata(&b))
        .and_then(|m| parse_vocoder_metadata(&m))
        .map_err(|e| e.to_string())?;
    if let Some(diff) = model_mel.and_then(|m| mel.mismatch(m)) {
        return Err(format!(
            "refused: its mel analysis differs from the model's ({diff}); \
             choose a vocoder trained on the model's mel settings"
        ));
    }
    Ok(mel)
}

/// One line describing a mel analysis.
pub fn describe_mel(mel: &MelConfig) -> String {
    format!(
        "{} mel bands, {}–{} Hz, {} Hz sample rate, hop {}, FFT {}",
        mel.n_mels, mel.fmin, mel.fmax, mel.sample_rate, mel.hop, mel.n_fft
    )
}

/// Lines describing a model's metadata (what the picker shows).
pub fn describe_model(info: &ModelInfo) -> String {
    format!(
        "Target: {} ({})\n{}\nGrows in {} steps at fire rate {}; {} channels; trained on {} frames",
        info.target,
        info.license,
        describe_mel(&info.mel),
        info.growth_steps,
        info.fire_rate,
        info.channels,
        info.train_frames
    )
}

/// What the user asked the picker to do this frame.
#[derive(Debug, Clone, PartialEq)]
pub enum PickerAction {
    /// Load this NCA file (already checked).
    LoadModel(PathBuf),
    /// Go back to the model built into the plugin.
    BuiltInModel,
    /// Load this vocoder file (already checked).
    LoadVocoder(PathBuf),
    /// Use only the built-in vocoder.
    UnloadVocoder,
}

/// Picker state kept while the editor lives.
#[derive(Default)]
pub struct ModelPicker {
    /// Text of the NCA path field.
    nca_path: String,
    /// Text of the vocoder path field.
    vocoder_path: String,
    /// NCA files found in the models folders (scanned when the window opens).
    found_nca: Vec<PathBuf>,
    /// Vocoder files found in the models folders.
    found_vocoders: Vec<PathBuf>,
    /// Outcome of the last NCA check: shown under the field until the next one.
    nca_check: Option<Result<ModelInfo, String>>,
    /// Outcome of the last vocoder check.
    vocoder_check: Option<Result<MelConfig, String>>,
    /// Mel analysis of the loaded vocoder file, to check models against.
    vocoder_mel: Option<MelConfig>,
}

impl ModelPicker {
    /// Fills the fields from the persisted paths and looks for model files.
    pub fn open(&mut self, model: Option<PathBuf>, vocoder: Option<PathBuf>) {
        let dirs = model_dirs();
        self.found_nca = scan(&dirs, "nca");
        self.found_vocoders = scan(&dirs, "vocoder");
        self.nca_path = model.map(|p| p.display().to_string()).unwrap_or_default();
        self.vocoder_path = vocoder
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.vocoder_mel = vocoder.and_then(|p| check_vocoder(&p, None).ok());
    }

    /// Draws the picker; `current` is the engine's loaded model.
    pub fn show(&mut self, ui: &mut egui::Ui, current: Option<&ModelInfo>) -> Option<PickerAction> {
        let mut action = None;
        let error = egui::Color32::from_rgb(230, 80, 70);
        egui::Grid::new("grown-models")
            .num_columns(2)
            .spacing([8.0, 4.0])
            .show(ui, |ui| {
                ui.label("NCA model");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut self.nca_path)
                            .hint_text("built-in (strings); type or pick a .onnx path")
                            .desired_width(300.0),
                    );
                    pick_found(ui, "grown-found-nca", &self.found_nca, &mut self.nca_path);
                    if ui.button("Load").clicked() {
                        let path = PathBuf::from(self.nca_path.trim());
                        let check = check_nca(&path, self.vocoder_mel.as_ref());
                        if check.is_ok() {
                            action = Some(PickerAction::LoadModel(path));
                        }
                        self.nca_check = Some(check);
                    }
                    if ui.button("Built-in").clicked() {
                        self.nca_path.clear();
                        self.nca_check = None;
                        action = Some(PickerAction::BuiltInModel);
                    }
                });
                ui.end_row();
                ui.label("");
                match (&self.nca_check, current) {
                    (Some(Err(e)), _) => {
                        ui.colored_label(error, e);
                    }
                    (Some(Ok(info)), _) => {
                        ui.label(describe_model(info));
                    }
                    (None, Some(info)) => {
                        ui.label(describe_model(info));
                    }
                    (None, None) => {
                        ui.label("no model loaded yet");
                    }
                }
                ui.end_row();

                ui.label("Vocoder");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut self.vocoder_path)
                            .hint_text("built-in inverter; or a BigVGAN .onnx path")
                            .desired_width(300.0),
                    );
                    pick_found(
                        ui,
                        "grown-found-vocoder",
                        &self.found_vocoders,
                        &mut self.vocoder_path,
                    );
                    if ui.button("Load").clicked() {
                        let path = PathBuf::from(self.vocoder_path.trim());
                        let check = check_vocoder(&path, current.map(|i| &i.mel));
                        if let Ok(mel) = &check {
                            self.vocoder_mel = Some(mel.clone());
                            action = Some(PickerAction::LoadVocoder(path));
                        }
                        self.vocoder_check = Some(check);
                    }
                    if ui.button("Unload").clicked() {
                        self.vocoder_path.clear();
                        self.vocoder_check = None;
                        self.vocoder_mel = None;
                        action = Some(PickerAction::UnloadVocoder);
                    }
                });
                ui.end_row();
                ui.label("");
                match &self.vocoder_check {
                    Some(Err(e)) => {
                        ui.colored_label(error, e);
                    }
                    Some(Ok(mel)) => {
                        ui.label(format!("BigVGAN: {}", describe_mel(mel)));
                    }
                    None if self.vocoder_mel.is_some() => {
                        let mel = self.vocoder_mel.as_ref().map(describe_mel);
                        ui.label(format!("BigVGAN: {}", mel.unwrap_or_default()));
                    }
                    None => {
                        ui.label(
                            "built-in inverter (choose BigVGAN under Output after loading one)",
                        );
                    }
                }
                ui.end_row();
            });
        action
    }
}

/// A drop-down of the found files that fills `path` when one is picked.
fn pick_found(ui: &mut egui::Ui, id: &str, found: &[PathBuf], path: &mut String) {
    ui.add_enabled_ui(!found.is_empty(), |ui| {
        egui::ComboBox::from_id_salt(id)
            .selected_text("found…")
            .width(90.0)
            .show_ui(ui, |ui| {
                for p in found {
                    let name = p.file_name().map_or_else(
                        || p.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    if ui.selectable_label(false, name).clicked() {
                        *path = p.display().to_string();
                    }
                }
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use grown_test_support::onnx::nca_model;
    use grown_test_support::onnx::Rule;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("grown-editor-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn the_shipped_models_are_found_and_accepted() {
        let dirs = model_dirs();
        let found = scan(&dirs, "nca");
        assert!(
            found.iter().any(|p| p.ends_with("strings.onnx")),
            "{found:?} in {dirs:?}"
        );
        let info = check_nca(
            found.iter().find(|p| p.ends_with("strings.onnx")).unwrap(),
            None,
        )
        .unwrap();
        assert!(describe_model(&info).contains("Grows in"));
    }

    #[test]
    fn wrong_files_are_refused_with_the_reason() {
        let e = check_nca(Path::new("/no/such/model.onnx"), None).unwrap_err();
        assert!(
            e.contains("not found") && e.contains("/no/such/model.onnx"),
            "{e}"
        );
        let junk = temp("junk.onnx", b"this is not onnx");
        let e = check_nca(&junk, None).unwrap_err();
        assert!(e.contains("not an ONNX model"), "{e}");

        // A valid 8-band test model next to a vocoder for the 80-band default mel.
        let small = temp("small.onnx", &nca_model(4, 8, Rule::Conv));
        let info = check_nca(&small, None).unwrap();
        assert_eq!(info.mel.n_mels, 8);
        let e = check_nca(&small, Some(&MelConfig::bigvgan_22k())).unwrap_err();
        assert!(e.starts_with("refused") && e.contains("n_mels"), "{e}");
        // An NCA file is not a vocoder.
        let e = check_vocoder(&small, None).unwrap_err();
        assert!(e.contains("not a vocoder"), "{e}");
    }
}
