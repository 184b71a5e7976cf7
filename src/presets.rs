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

use crate::params::PARAM_IDS;
use std::collections::BTreeMap;
use std::fmt;

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
    /// `loop`.
    Switch(bool),
    /// `vocoder`: `"built-in"` or `"bigvgan"`.
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
    use nice_plug::prelude::{util, Params};
    if matches!(key, "loop" | "vocoder") {
        return None;
    }
    let params = crate::params::GrownParams::default();
    let (_, ptr, _) = params
        .param_map()
        .into_iter()
        .find(|(id, _, _)| id == key)?;
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

fn param_value(id: &str, key: &str, value: &toml::Value) -> Result<Value, PresetError> {
    let bad = |why: String| PresetError::BadValue {
        id: id.to_owned(),
        key: key.to_owned(),
        why,
    };
    match key {
        "loop" => value
            .as_bool()
            .map(Value::Switch)
            .ok_or_else(|| bad("must be true or false".into())),
        "vocoder" => match value.as_str() {
            Some(choice @ ("built-in" | "bigvgan")) => Ok(Value::Choice(choice.to_owned())),
            _ => Err(bad("must be \"built-in\" or \"bigvgan\"".into())),
        },
        _ => {
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
    }
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
        for id in PARAM_IDS {
            assert!(
                numeric_range(id).is_some() || matches!(*id, "loop" | "vocoder"),
                "{id}"
            );
        }
    }
}
