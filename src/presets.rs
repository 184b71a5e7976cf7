//! Presets: a Grown sound (model, seed, growth and every parameter) as a small
//! human-readable TOML file, and the factory presets built into the plugin.
//!
//! ```toml
//! name = "Strings, slow swell"
//! author = "Grown"
//! tags = ["strings", "pad"]
//! model = "bundled:strings.onnx"   # or a path; omitted: the embedded default
//!
//! [params]                          # stable parameter ids, values in the editor's units
//! seed = 3
//! growth = 96
//! attack = 1.5                      # seconds
//! gain = -6.0                       # dB
//! loop = true
//! vocoder = "built-in"
//! ```
//!
//! Values are written in the units the editor shows (seconds, steps, dB, a 0–1
//! share for Sustain, Mutation, Damage), so a preset reads like the panel it
//! came from. A parameter a preset leaves out keeps its default, so presets
//! written before a parameter existed still load. A preset is checked whole
//! when read: an unknown parameter, a value outside its range or of the wrong
//! kind is an error naming the file and the key, never a silent clamp.

use crate::params::{GrownParams, ModTarget, TempoSync, PARAM_IDS};
use crate::vocoder::VocoderChoice;
use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::{util, Enum, Param, ParamPtr, Params};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The factory presets, built into the binary so every bundle carries them:
/// `(id, TOML)`, the id being the file name under `presets/` without `.toml`.
const FACTORY: &[(&str, &str)] = &[
    ("strings-bow", include_str!("../presets/strings-bow.toml")),
    (
        "strings-slow-swell",
        include_str!("../presets/strings-slow-swell.toml"),
    ),
    (
        "strings-living-choir",
        include_str!("../presets/strings-living-choir.toml"),
    ),
    ("trumpet-stab", include_str!("../presets/trumpet-stab.toml")),
    (
        "trumpet-long-call",
        include_str!("../presets/trumpet-long-call.toml"),
    ),
    ("robin-dawn", include_str!("../presets/robin-dawn.toml")),
    ("robin-flock", include_str!("../presets/robin-flock.toml")),
    ("chord-organ", include_str!("../presets/chord-organ.toml")),
    (
        "chord-mutating-drone",
        include_str!("../presets/chord-mutating-drone.toml"),
    ),
    ("clicks-pulse", include_str!("../presets/clicks-pulse.toml")),
    ("clicks-rain", include_str!("../presets/clicks-rain.toml")),
    (
        "stereo-strings-wide",
        include_str!("../presets/stereo-strings-wide.toml"),
    ),
];

/// One parameter value as a preset stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Every numeric parameter, in the editor's unit.
    Number(f64),
    /// `loop`, `mpe`.
    Switch(bool),
    /// A choice by its stable id: `vocoder`, `drift-sync`, `wheel-target`…
    Choice(String),
}

/// A sound to recall.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// File name without `.toml`: what `grown presets` lists and `--preset` takes.
    pub id: String,
    pub name: String,
    pub author: String,
    /// Free words to search by (instrument, character).
    pub tags: Vec<String>,
    /// `bundled:NAME.onnx` or a path; `None` plays the embedded default model.
    pub model: Option<String>,
    /// Stable parameter id → value; ids not listed keep their defaults.
    pub params: BTreeMap<String, Value>,
}

/// Why a preset could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum PresetError {
    /// Not TOML, or a required key (`name`) missing or of the wrong type.
    Syntax { id: String, why: String },
    /// A key under `[params]` that is no parameter of Grown.
    UnknownParam { id: String, key: String },
    /// A parameter value of the wrong kind or outside the parameter's range.
    BadValue {
        id: String,
        key: String,
        why: String,
    },
    /// `--preset` named no factory preset.
    NotFound(String),
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { id, why } => write!(f, "preset {id}: {why}"),
            Self::UnknownParam { id, key } => write!(
                f,
                "preset {id}: unknown parameter '{key}' (known: {})",
                PARAM_IDS.join(", ")
            ),
            Self::BadValue { id, key, why } => write!(f, "preset {id}: {key} {why}"),
            Self::NotFound(id) => {
                write!(f, "no factory preset '{id}' (`grown presets` lists them)")
            }
        }
    }
}

impl std::error::Error for PresetError {}

/// The range of numeric parameter `key` in the editor's unit, read from the
/// parameter itself so a preset that reads can always be applied; Gain is in dB.
/// Integer parameters (steps, seed, notes, voices) take whole numbers only.
fn numeric_range(key: &str) -> Option<(f64, f64, bool)> {
    let params = GrownParams::default();
    let (_, ptr, _) = params
        .param_map()
        .into_iter()
        .find(|(id, _, _)| id == key)?;
    if !matches!(ptr, ParamPtr::FloatParam(_) | ParamPtr::IntParam(_)) {
        return None;
    }
    // SAFETY: the pointer comes from `params`, alive until the end of this function.
    let (lo, hi, whole) = unsafe {
        (
            ptr.preview_plain(0.0),
            ptr.preview_plain(1.0),
            ptr.step_count().is_some(),
        )
    };
    let (lo, hi) = if key == "gain" {
        (util::gain_to_db(lo), util::gain_to_db(hi))
    } else {
        (lo, hi)
    };
    // Round away f32 noise (0.05 reads back as 0.0500000007).
    let clean = |v: f32| (f64::from(v) * 1e4).round() / 1e4;
    Some((clean(lo), clean(hi), whole))
}

impl Preset {
    /// Reads the TOML text of the preset `id`.
    pub fn parse(id: &str, text: &str) -> Result<Self, PresetError> {
        let syntax = |why: String| PresetError::Syntax {
            id: id.to_owned(),
            why,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax(e.message().to_owned()))?;
        let text_of = |key: &str| -> Result<Option<String>, PresetError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(syntax(format!("`{key}` must be a string"))),
            }
        };
        let name = text_of("name")?.ok_or_else(|| syntax("has no `name`".into()))?;
        let tags = match table.get("tags") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| syntax("`tags` must be a list of strings".into()))?,
            Some(_) => return Err(syntax("`tags` must be a list of strings".into())),
        };
        let mut params = BTreeMap::new();
        if let Some(section) = table.get("params") {
            let section = section
                .as_table()
                .ok_or_else(|| syntax("`params` must be a table".into()))?;
            for (key, value) in section {
                params.insert(key.clone(), param_value(id, key, value)?);
            }
        }
        Ok(Self {
            id: id.to_owned(),
            name,
            author: text_of("author")?.unwrap_or_default(),
            tags,
            model: text_of("model")?,
            params,
        })
    }

    /// The value of numeric parameter `key`, if the preset sets it.
    pub fn number(&self, key: &str) -> Option<f64> {
        match self.params.get(key) {
            Some(Value::Number(v)) => Some(*v),
            _ => None,
        }
    }

    /// `loop`, if the preset sets it.
    pub fn switch(&self, key: &str) -> Option<bool> {
        match self.params.get(key) {
            Some(Value::Switch(v)) => Some(*v),
            _ => None,
        }
    }
}

/// The stable ids a choice parameter takes.
fn choices(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "vocoder" => VocoderChoice::ids(),
        "drift-sync" | "length-sync" => TempoSync::ids(),
        "wheel-target" | "pressure-target" => ModTarget::ids(),
        _ => None,
    }
}

/// On/off parameters (`loop` is a choice in the plugin, a switch in presets).
fn is_switch(key: &str) -> bool {
    matches!(key, "loop" | "mpe")
}

fn param_value(id: &str, key: &str, value: &toml::Value) -> Result<Value, PresetError> {
    let bad = |why: String| PresetError::BadValue {
        id: id.to_owned(),
        key: key.to_owned(),
        why,
    };
    if is_switch(key) {
        return value
            .as_bool()
            .map(Value::Switch)
            .ok_or_else(|| bad("must be true or false".into()));
    }
    if let Some(ids) = choices(key) {
        return match value.as_str() {
            Some(choice) if ids.contains(&choice) => Ok(Value::Choice(choice.to_owned())),
            _ => Err(bad(format!("must be one of \"{}\"", ids.join("\", \"")))),
        };
    }
    let Some((min, max, whole)) = numeric_range(key) else {
        return Err(PresetError::UnknownParam {
            id: id.to_owned(),
            key: key.to_owned(),
        });
    };
    let v = match value {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        _ => return Err(bad("must be a number".into())),
    };
    if !(min..=max).contains(&v) {
        return Err(bad(format!("{v} is outside {min}..={max}")));
    }
    if whole && v.fract() != 0.0 {
        return Err(bad(format!("{v} must be a whole number")));
    }
    Ok(Value::Number(v))
}

/// A preset value as the plugin's saved state holds it (gain linear, `loop`
/// as its choice id), or `None` when the kinds do not fit.
fn saved_value(key: &str, ptr: ParamPtr, value: &Value) -> Option<ParamValue> {
    Some(match (ptr, value) {
        (ParamPtr::FloatParam(_), Value::Number(v)) if key == "gain" => {
            ParamValue::F32(util::db_to_gain(*v as f32))
        }
        (ParamPtr::FloatParam(_), Value::Number(v)) => ParamValue::F32(*v as f32),
        (ParamPtr::IntParam(_), Value::Number(v)) => ParamValue::I32(*v as i32),
        (ParamPtr::BoolParam(_), Value::Switch(on)) => ParamValue::Bool(*on),
        (ParamPtr::EnumParam(_), Value::Switch(on)) if key == "loop" => {
            ParamValue::String(if *on { "loop" } else { "one-shot" }.to_owned())
        }
        (ParamPtr::EnumParam(_), Value::Choice(id)) => ParamValue::String(id.clone()),
        _ => return None,
    })
}

/// A saved-state value in a preset's units.
fn preset_value(key: &str, value: &ParamValue) -> Option<Value> {
    // Four decimals: what the editor shows, without f32 noise (0.300000012).
    let clean = |v: f32| (f64::from(v) * 1e4).round() / 1e4;
    Some(match value {
        ParamValue::F32(v) if key == "gain" => Value::Number(clean(util::gain_to_db(*v))),
        ParamValue::F32(v) => Value::Number(clean(*v)),
        ParamValue::I32(v) => Value::Number(f64::from(*v)),
        ParamValue::Bool(on) => Value::Switch(*on),
        ParamValue::String(id) if key == "loop" => Value::Switch(id == "loop"),
        ParamValue::String(id) => Value::Choice(id.clone()),
    })
}

/// Every parameter at its default, as the plugin saves it.
fn default_params() -> BTreeMap<String, ParamValue> {
    let params = GrownParams::default();
    let mut out = BTreeMap::new();
    for (id, ptr, _) in params.param_map() {
        // SAFETY: the pointers come from `params`, alive until the end of this loop.
        let value = unsafe {
            match ptr {
                ParamPtr::FloatParam(p) => ParamValue::F32((*p).default_plain_value()),
                ParamPtr::IntParam(p) => ParamValue::I32((*p).default_plain_value()),
                ParamPtr::BoolParam(p) => ParamValue::Bool((*p).default_plain_value()),
                ParamPtr::EnumParam(p) => {
                    let index = (*p).default_plain_value();
                    let ids = if id == "loop" {
                        crate::params::LoopMode::ids()
                    } else {
                        choices(&id)
                    };
                    match ids.and_then(|ids| ids.get(index as usize)) {
                        Some(s) => ParamValue::String((*s).to_owned()),
                        None => ParamValue::I32(index),
                    }
                }
            }
        };
        out.insert(id, value);
    }
    out
}

impl Preset {
    /// The plugin state that plays this preset: every parameter the preset
    /// leaves out at its default (a preset is a whole sound), the model, and
    /// the preset's name. Editor and host load it the same way, through the
    /// plugin's state restore (which checks it like any saved state).
    pub fn to_state(&self) -> PluginState {
        let params_now = GrownParams::default();
        let ptrs: BTreeMap<String, ParamPtr> = params_now
            .param_map()
            .into_iter()
            .map(|(id, ptr, _)| (id, ptr))
            .collect();
        let mut params = default_params();
        for (key, value) in &self.params {
            if let Some(saved) = ptrs.get(key).and_then(|&ptr| saved_value(key, ptr, value)) {
                params.insert(key.clone(), saved);
            }
        }
        let json = |v: &Option<String>| serde_json::to_string(v).unwrap_or_else(|_| "null".into());
        let mut fields = BTreeMap::new();
        fields.insert("model-path".to_owned(), json(&self.model));
        fields.insert("preset-name".to_owned(), json(&Some(self.name.clone())));
        PluginState {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            params,
            fields,
        }
    }

    /// The sound a plugin state holds, as a preset named `name`: every
    /// parameter Grown has, and the model as the state names it.
    pub fn from_state(state: &PluginState, name: &str, tags: Vec<String>) -> Self {
        let params = state
            .params
            .iter()
            .filter(|(key, _)| PARAM_IDS.contains(&key.as_str()))
            .filter_map(|(key, value)| Some((key.clone(), preset_value(key, value)?)))
            .collect();
        let model = state
            .fields
            .get("model-path")
            .and_then(|json| serde_json::from_str::<Option<String>>(json).ok())
            .flatten();
        Self {
            id: crate::userdata::slug(name),
            name: name.to_owned(),
            author: String::new(),
            tags,
            model,
            params,
        }
    }

    /// The preset as TOML, parameters in the plugin's order.
    pub fn to_toml(&self) -> String {
        let mut top = toml::Table::new();
        top.insert("name".into(), self.name.clone().into());
        if !self.author.is_empty() {
            top.insert("author".into(), self.author.clone().into());
        }
        let tags: Vec<toml::Value> = self.tags.iter().map(|t| t.clone().into()).collect();
        top.insert("tags".into(), tags.into());
        if let Some(model) = &self.model {
            top.insert("model".into(), model.clone().into());
        }
        let mut params = toml::Table::new();
        for key in PARAM_IDS {
            let value = match self.params.get(*key) {
                Some(Value::Number(v)) if numeric_range(key).is_some_and(|r| r.2) => {
                    toml::Value::Integer(*v as i64)
                }
                Some(Value::Number(v)) => toml::Value::Float(*v),
                Some(Value::Switch(on)) => toml::Value::Boolean(*on),
                Some(Value::Choice(id)) => toml::Value::String(id.clone()),
                None => continue,
            };
            params.insert((*key).to_owned(), value);
        }
        top.insert("params".into(), params.into());
        toml::to_string(&top).unwrap_or_default()
    }

    /// Whether `query` (words, any case) matches the name, id or a tag.
    pub fn matches(&self, query: &str) -> bool {
        query.split_whitespace().all(|word| {
            let word = word.to_lowercase();
            self.name.to_lowercase().contains(&word)
                || self.id.contains(&word)
                || self.tags.iter().any(|t| t.to_lowercase().contains(&word))
        })
    }
}

/// The user's presets in `dir` (by file name), and an error for each file that
/// did not read: a broken file is reported, never a reason to hide the rest.
pub fn read_dir(dir: &Path) -> (Vec<Preset>, Vec<String>) {
    let mut presets = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (presets, errors);
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for file in files {
        let id = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read_to_string(&file) {
            Ok(text) => match Preset::parse(&id, &text) {
                Ok(p) => presets.push(p),
                Err(e) => errors.push(e.to_string()),
            },
            Err(e) => errors.push(format!("preset {id}: {e}")),
        }
    }
    (presets, errors)
}

/// Writes `preset` to `dir` as `<slug of its name>.toml` (replacing a preset of
/// the same name) and returns the path.
pub fn save(preset: &Preset, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.toml", crate::userdata::slug(&preset.name)));
    // Written beside and renamed, so a crash never leaves half a preset.
    let tmp = path.with_extension("toml.part");
    std::fs::write(&tmp, preset.to_toml())?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Every factory preset, in listing order. The files are checked by this
/// module's tests; one that failed to read would be left out, never a panic.
pub fn factory() -> Vec<Preset> {
    FACTORY
        .iter()
        .filter_map(|(id, text)| Preset::parse(id, text).ok())
        .collect()
}

/// The factory preset `id`.
pub fn find(id: &str) -> Result<Preset, PresetError> {
    FACTORY
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(id, text)| Preset::parse(id, text))
        .unwrap_or_else(|| Err(PresetError::NotFound(id.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_factory_preset_reads_and_names_a_bundled_model() {
        for (id, text) in FACTORY {
            Preset::parse(id, text).unwrap_or_else(|e| panic!("{e}"));
        }
        let presets = factory();
        assert!(presets.len() >= 12, "{} factory presets", presets.len());
        let mut ids: Vec<&str> = presets.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), presets.len(), "duplicate ids");
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/nca");
        for p in &presets {
            assert!(!p.name.is_empty() && !p.tags.is_empty(), "{}", p.id);
            let model = p
                .model
                .as_deref()
                .expect("factory presets name their model");
            let file = model.strip_prefix("bundled:").expect("a bundled model");
            assert!(
                shipped.join(file).is_file(),
                "{}: no models/nca/{file}",
                p.id
            );
        }
    }

    #[test]
    fn a_preset_reads_every_kind_of_value() {
        let p = Preset::parse(
            "x",
            r#"
            name = "X"
            tags = ["a"]
            [params]
            seed = 7
            attack = 1.5
            gain = -12
            loop = false
            vocoder = "bigvgan"
            "#,
        )
        .unwrap();
        assert_eq!(p.number("seed"), Some(7.0));
        assert_eq!(p.number("attack"), Some(1.5));
        assert_eq!(p.number("gain"), Some(-12.0));
        assert_eq!(p.switch("loop"), Some(false));
        assert_eq!(p.params["vocoder"], Value::Choice("bigvgan".into()));
        assert_eq!(p.model, None);
        assert_eq!(p.number("growth"), None, "unset parameters keep defaults");
    }

    #[test]
    fn bad_presets_get_their_specific_error() {
        let read = |body: &str| Preset::parse("bad", &format!("name = \"B\"\n{body}"));
        assert!(matches!(
            read("[params]\nwarp = 1"),
            Err(PresetError::UnknownParam { key, .. }) if key == "warp"
        ));
        let out_of_range = read("[params]\nsustain = 1.5").unwrap_err().to_string();
        assert_eq!(out_of_range, "preset bad: sustain 1.5 is outside 0..=1");
        let fractional = read("[params]\nseed = 2.5").unwrap_err().to_string();
        assert!(
            fractional.contains("must be a whole number"),
            "{fractional}"
        );
        let kind = read("[params]\nloop = 1").unwrap_err().to_string();
        assert!(kind.contains("loop must be true or false"), "{kind}");
        assert!(matches!(
            Preset::parse("n", "tags = []"),
            Err(PresetError::Syntax { why, .. }) if why.contains("no `name`")
        ));
        assert!(matches!(
            Preset::parse("t", "name = "),
            Err(PresetError::Syntax { .. })
        ));
        assert_eq!(
            find("nope").unwrap_err().to_string(),
            "no factory preset 'nope' (`grown presets` lists them)"
        );
    }

    /// Ranges come from the parameters, in the editor's units.
    #[test]
    fn preset_ranges_are_the_parameters_ranges() {
        assert_eq!(numeric_range("sustain"), Some((0.0, 1.0, false)));
        assert_eq!(numeric_range("release"), Some((0.001, 10.0, false)));
        assert_eq!(numeric_range("gain"), Some((-36.0, 6.0, false)));
        assert_eq!(numeric_range("fire-rate"), Some((0.05, 1.0, false)));
        assert_eq!(numeric_range("seed"), Some((0.0, 65_535.0, true)));
        assert_eq!(numeric_range("loop"), None);
        assert_eq!(numeric_range("warp"), None);
        assert_eq!(numeric_range("wheel-target"), None);
        for id in PARAM_IDS {
            assert!(
                numeric_range(id).is_some() || is_switch(id) || choices(id).is_some(),
                "{id} cannot be written in a preset"
            );
        }
    }

    #[test]
    fn choices_and_switches_read_by_their_ids() {
        let p = Preset::parse(
            "c",
            "name = \"C\"\n[params]\nmpe = true\nlength-sync = \"1-bar\"\nwheel-target = \"growth\"",
        )
        .unwrap();
        assert_eq!(p.switch("mpe"), Some(true));
        assert_eq!(p.params["length-sync"], Value::Choice("1-bar".into()));
        let bad = Preset::parse("c", "name = \"C\"\n[params]\nwheel-target = \"tempo\"")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("wheel-target must be one of \"off\", \"growth\""),
            "{bad}"
        );
    }

    /// A preset becomes a plugin state the restore accepts untouched, and the
    /// state reads back as the same preset; its TOML reads back too.
    #[test]
    fn presets_round_trip_through_plugin_state_and_toml() {
        for preset in factory() {
            let mut state = preset.to_state();
            let notes = crate::state::repair_untrusted(&mut state);
            assert!(notes.is_empty(), "{}: {notes:?}", preset.id);
            let back = Preset::from_state(&state, &preset.name, preset.tags.clone());
            assert_eq!(back.model, preset.model, "{}", preset.id);
            for (key, value) in &preset.params {
                match (value, &back.params[key]) {
                    (Value::Number(a), Value::Number(b)) => {
                        assert!((a - b).abs() < 1e-3, "{} {key}: {a} vs {b}", preset.id)
                    }
                    (a, b) => assert_eq!(a, b, "{} {key}", preset.id),
                }
            }
            // Every parameter is in the state: unlisted ones at their defaults.
            assert_eq!(back.params.len(), PARAM_IDS.len());
            let reread = Preset::parse(&back.id, &back.to_toml()).unwrap();
            assert_eq!(reread.params, back.params, "{}", preset.id);
            assert_eq!(reread.name, preset.name);
        }
    }

    #[test]
    fn user_presets_save_and_list_with_broken_files_reported() {
        let dir = std::env::temp_dir().join(format!("grown-presets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut p = find("robin-dawn").unwrap();
        p.name = "My dawn / take 2".into();
        let path = save(&p, &dir).unwrap();
        assert_eq!(path.file_name().unwrap(), "my-dawn-take-2.toml");
        std::fs::write(dir.join("broken.toml"), "name = ").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a preset").unwrap();
        let (presets, errors) = read_dir(&dir);
        assert_eq!(presets.len(), 1);
        assert_eq!(presets[0].name, "My dawn / take 2");
        assert_eq!(presets[0].params, p.params);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("preset broken:"), "{errors:?}");
        assert!(p.matches("DAWN bird") || p.matches("dawn"));
        assert!(!p.matches("trumpet"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
