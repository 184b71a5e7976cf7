//! The preset browser: factory and user presets, previous/next, search by
//! name or tag, save as, and Save WAV. Applying a preset restores a whole
//! plugin state through the host context (the path a host's state load takes),
//! so it is checked, persisted and undoable like any restore.

use crate::presets::{self, Preset};
use crate::userdata;
use std::path::PathBuf;

/// What the user asked the browser for.
pub enum BrowserAction {
    /// Play this preset.
    Apply(Box<Preset>),
    /// Save the current sound as a user preset with this name.
    SaveAs(String),
    /// Write the sound playing now as a WAV file.
    SaveWav,
}

/// Browser state, kept while the editor lives.
#[derive(Default)]
pub struct PresetBrowser {
    /// Factory presets, then the user's.
    list: Vec<Preset>,
    /// How many of `list` are factory presets.
    factory: usize,
    /// Files in the user folder that did not read.
    errors: Vec<String>,
    /// Search words (name, id or tag).
    query: String,
    /// Name typed for Save as.
    save_name: String,
    /// The last thing the browser did, shown under it.
    pub message: String,
    /// Set once `refresh` ran.
    loaded: bool,
}

impl PresetBrowser {
    /// Reads the factory presets and the user folder again.
    pub fn refresh(&mut self) {
        self.list = presets::factory();
        self.factory = self.list.len();
        self.errors.clear();
        if let Some(dir) = userdata::presets_dir() {
            let (user, errors) = presets::read_dir(&dir);
            self.list.extend(user);
            self.errors = errors;
        }
        self.loaded = true;
    }

    /// Indices of the presets that match the search, in list order.
    pub fn visible(&self) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| self.list[i].matches(&self.query))
            .collect()
    }

    /// The preset `delta` steps from the one named `current` among the visible
    /// ones (wrapping), or the first one when `current` is not among them.
    pub fn step(&self, current: Option<&str>, delta: isize) -> Option<&Preset> {
        let visible = self.visible();
        if visible.is_empty() {
            return None;
        }
        let at = visible
            .iter()
            .position(|&i| Some(self.list[i].name.as_str()) == current);
        let n = visible.len() as isize;
        let next = match at {
            Some(k) => (k as isize + delta).rem_euclid(n),
            None if delta < 0 => n - 1,
            None => 0,
        };
        Some(&self.list[visible[next as usize]])
    }

    /// Draws the browser; `current` is the name of the preset playing.
    pub fn show(&mut self, ui: &mut egui::Ui, current: Option<&str>) -> Option<BrowserAction> {
        if !self.loaded {
            self.refresh();
        }
        let mut action = None;
        ui.horizontal(|ui| {
            ui.strong("Preset");
            if ui.button(" < ").on_hover_text("Previous preset").clicked() {
                action = self.step(current, -1).cloned().map(apply);
            }
            let label = current.unwrap_or("(none)").to_owned();
            egui::ComboBox::from_id_salt("grown-preset")
                .selected_text(label)
                .width(220.0)
                .show_ui(ui, |ui| {
                    for i in self.visible() {
                        let p = &self.list[i];
                        let text = if i < self.factory {
                            p.name.clone()
                        } else {
                            format!("{} (user)", p.name)
                        };
                        let on = Some(p.name.as_str()) == current;
                        if ui
                            .selectable_label(on, text)
                            .on_hover_text(p.tags.join(", "))
                            .clicked()
                        {
                            action = Some(apply(p.clone()));
                        }
                    }
                });
            if ui.button(" > ").on_hover_text("Next preset").clicked() {
                action = self.step(current, 1).cloned().map(apply);
            }
            ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.query)
                    .hint_text("name or tag: pad, robin…")
                    .desired_width(140.0),
            );
        });
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.save_name)
                    .hint_text("name for a new preset")
                    .desired_width(180.0),
            );
            let named = !self.save_name.trim().is_empty();
            if ui
                .add_enabled(named, egui::Button::new("Save as"))
                .on_hover_text("Save the current sound in your preset folder")
                .clicked()
            {
                action = Some(BrowserAction::SaveAs(self.save_name.trim().to_owned()));
            }
            if ui
                .button("Save WAV")
                .on_hover_text(
                    "Write the sound playing now as a WAV file (one loop when Loop is on)",
                )
                .clicked()
            {
                action = Some(BrowserAction::SaveWav);
            }
            if !self.message.is_empty() {
                ui.label(egui::RichText::new(&self.message).weak());
            }
        });
        for e in &self.errors {
            ui.colored_label(egui::Color32::from_rgb(230, 80, 70), e);
        }
        action
    }

    /// Saves `preset` in the user folder and lists it; returns where.
    pub fn save(&mut self, preset: &Preset) -> Result<PathBuf, String> {
        let dir = userdata::presets_dir().ok_or("no user data folder (HOME is not set)")?;
        let path = presets::save(preset, &dir).map_err(|e| format!("could not save: {e}"))?;
        self.refresh();
        self.save_name.clear();
        Ok(path)
    }
}

fn apply(p: Preset) -> BrowserAction {
    BrowserAction::Apply(Box::new(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_and_previous_wrap_within_the_search() {
        let mut b = PresetBrowser::default();
        b.list = presets::factory();
        b.factory = b.list.len();
        b.loaded = true;
        let first = b.list[0].name.clone();
        let last = b.list.last().unwrap().name.clone();
        assert_eq!(b.step(None, 1).unwrap().name, first);
        assert_eq!(b.step(Some(&first), -1).unwrap().name, last);
        assert_eq!(b.step(Some(&last), 1).unwrap().name, first);
        b.query = "robin".into();
        let robins: Vec<String> = b
            .visible()
            .iter()
            .map(|&i| b.list[i].name.clone())
            .collect();
        assert!(robins.len() >= 2 && robins.iter().all(|n| n.to_lowercase().contains("robin")));
        assert_eq!(b.step(Some(&robins[0]), 1).unwrap().name, robins[1]);
        b.query = "no-such-tag".into();
        assert!(b.step(None, 1).is_none());
    }
}
