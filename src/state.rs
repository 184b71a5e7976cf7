//! Restoring saved state without trusting it.
//!
//! nice-plug parses the saved JSON and hands it to [`crate::Grown`]'s
//! `filter_state` before applying it; there [`repair_untrusted`] makes every value one
//! the plugin could have produced itself: a parameter outside its range is
//! clamped, a NaN or a value of the wrong type is dropped (the parameter keeps
//! its current value), an unknown parameter is ignored, a persisted field that
//! does not parse is dropped. What it changed becomes one message, stored in the
//! `restore-notice` field, which the plugin shows in the editor's status line and
//! the log at the next activation.
//!
//! Bytes that are not JSON at all never reach this module: nice-plug refuses them
//! and the instance keeps its previous state (and sound). [`parse_clap_state`]
//! mirrors nice-plug's CLAP framing so that path can be fuzzed and tested too.

use crate::params::GrownParams;
use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::{Enum, Param};
use std::fmt;

/// Persisted field that carries the restore message from `filter_state` (which
/// has no instance) to the instance that loaded the state.
pub const NOTICE_FIELD: &str = "restore-notice";

/// Largest state nice-plug's CLAP wrapper accepts (its `MAX_STATE_BYTES`); a
/// length prefix above it is refused before anything is allocated.
pub const MAX_STATE_BYTES: u64 = 10 * 1024 * 1024;

/// Editor sizes outside this range are replaced by the default, so a corrupt
/// state cannot open a zero-sized or screen-swallowing window.
const EDITOR_SIZE: std::ops::RangeInclusive<u32> = 200..=8192;

/// Why saved bytes could not be read as a state.
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    /// Fewer than the 8 bytes of the length prefix.
    NoLength(usize),
    /// The length prefix is larger than any state Grown writes.
    TooLong(u64),
    /// The prefix promises more bytes than there are.
    Truncated {
        /// Bytes promised by the prefix.
        want: u64,
        /// Bytes present.
        got: usize,
    },
    /// The payload is not a Grown/nice-plug state object.
    NotState(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NoLength(n) => write!(
                f,
                "saved state is {n} bytes, too short to hold its length; keeping the current settings"
            ),
            StateError::TooLong(n) => write!(
                f,
                "saved state claims {n} bytes (more than {MAX_STATE_BYTES}); keeping the current settings"
            ),
            StateError::Truncated { want, got } => write!(
                f,
                "saved state is truncated ({got} of {want} bytes); keeping the current settings"
            ),
            StateError::NotState(m) => write!(
                f,
                "saved state is not a Grown state ({m}); keeping the current settings"
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// Parses a state payload (the JSON nice-plug writes).
pub fn parse_state(json: &[u8]) -> Result<PluginState, StateError> {
    serde_json::from_slice(json).map_err(|e| StateError::NotState(e.to_string()))
}

/// Parses a whole CLAP state stream as nice-plug's wrapper reads it: an 8-byte
/// little-endian length, then that many bytes of JSON. (A stream with extra
/// bytes after the payload is accepted, as the wrapper reads only the length.)
pub fn parse_clap_state(stream: &[u8]) -> Result<PluginState, StateError> {
    let Some((prefix, rest)) = stream.split_first_chunk::<8>() else {
        return Err(StateError::NoLength(stream.len()));
    };
    let want = u64::from_le_bytes(*prefix);
    if want > MAX_STATE_BYTES {
        return Err(StateError::TooLong(want));
    }
    if (rest.len() as u64) < want {
        return Err(StateError::Truncated {
            want,
            got: rest.len(),
        });
    }
    parse_state(&rest[..want as usize])
}

/// One parameter as the state knows it: enough to validate a saved value.
enum Kind<'a> {
    /// A float parameter and its plain range.
    Float(&'a nice_plug::prelude::FloatParam),
    /// An integer parameter and its plain range.
    Int(&'a nice_plug::prelude::IntParam),
    /// An enum parameter: its stable ids and its number of variants.
    Enum(Option<&'static [&'static str]>, usize),
    /// An on/off parameter.
    Bool,
}

fn enum_kind<E: Enum>() -> Kind<'static> {
    Kind::Enum(E::ids(), E::variants().len())
}

/// The parameter with this stable id, if Grown has one.
fn kind<'a>(p: &'a GrownParams, id: &str) -> Option<Kind<'a>> {
    use crate::params::{LoopMode, ModTarget, TempoSync};
    use crate::vocoder::VocoderChoice;
    let e = &p.expression;
    Some(match id {
        "growth" => Kind::Int(&p.grow.growth),
        "seed" => Kind::Int(&p.grow.seed),
        "drift" => Kind::Float(&p.grow.drift),
        "fire-rate" => Kind::Float(&p.grow.fire_rate),
        "mutation" => Kind::Float(&p.grow.mutation),
        "damage" => Kind::Float(&p.grow.damage),
        "length" => Kind::Float(&p.grow.length),
        "root" => Kind::Int(&p.voice.root_note),
        "attack" => Kind::Float(&p.voice.attack),
        "decay" => Kind::Float(&p.voice.decay),
        "sustain" => Kind::Float(&p.voice.sustain),
        "release" => Kind::Float(&p.voice.release),
        "polyphony" => Kind::Int(&p.voice.polyphony),
        "bend-range" => Kind::Float(&p.voice.bend_range),
        "morph" => Kind::Float(&p.output.morph),
        "gain" => Kind::Float(&p.output.gain),
        "loop" => enum_kind::<LoopMode>(),
        "vocoder" => enum_kind::<VocoderChoice>(),
        "drift-sync" | "length-sync" => enum_kind::<TempoSync>(),
        "tune" => Kind::Float(&p.voice.tune),
        "velocity-curve" => Kind::Float(&e.velocity_curve),
        "velocity-tone" => Kind::Float(&e.velocity_tone),
        "wheel-target" | "pressure-target" => enum_kind::<ModTarget>(),
        "wheel-depth" => Kind::Float(&e.wheel_depth),
        "pressure-depth" => Kind::Float(&e.pressure_depth),
        "voice-pressure" => Kind::Float(&e.voice_pressure),
        "mpe" => Kind::Bool,
        "mpe-bend-range" => Kind::Float(&e.mpe_bend_range),
        _ => return None,
    })
}

/// `major.minor.patch` as numbers; missing parts count as 0, junk as `None`.
fn version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, patch))
}

/// Makes a parsed state safe to apply (see the module docs) and returns what
/// was changed, one item per problem. Also writes the combined message (or
/// `null`) into [`NOTICE_FIELD`], overwriting whatever the file carried there.
pub fn repair_untrusted(state: &mut PluginState) -> Vec<String> {
    let mut notes = Vec::new();
    let ours = env!("CARGO_PKG_VERSION");
    match version(&state.version) {
        Some(v) if Some(v) > version(ours) => notes.push(format!(
            "saved by Grown {} (this is {ours}): settings it added are ignored",
            state.version
        )),
        Some(_) => {}
        None if state.version.is_empty() => {}
        None => notes.push(format!(
            "saved state has an unreadable version `{}`",
            truncate(&state.version)
        )),
    }

    let reference = GrownParams::default();
    let mut unknown = Vec::new();
    state.params.retain(|id, value| {
        let Some(kind) = kind(&reference, id) else {
            unknown.push(truncate(id));
            return false;
        };
        match check_value(&kind, value) {
            Ok(None) => true,
            Ok(Some(note)) => {
                notes.push(format!("`{id}`: {note}"));
                true
            }
            Err(note) => {
                notes.push(format!(
                    "`{}`: {note}; kept the current value",
                    truncate(id)
                ));
                false
            }
        }
    });
    if !unknown.is_empty() {
        unknown.sort();
        notes.push(format!(
            "unknown parameters ignored: {}",
            unknown.join(", ")
        ));
    }

    let mut bad_fields = Vec::new();
    let mut unknown_fields = Vec::new();
    state.fields.retain(|key, data| match key.as_str() {
        "model-path" | "vocoder-path" | "preset-name" => {
            let ok = serde_json::from_str::<Option<String>>(data)
                .is_ok_and(|p| p.is_none_or(|p| !p.is_empty() && !p.contains('\0')));
            if !ok {
                bad_fields.push(key.clone());
            }
            ok
        }
        "editor-size" => {
            let ok = serde_json::from_str::<(u32, u32)>(data)
                .is_ok_and(|(w, h)| EDITOR_SIZE.contains(&w) && EDITOR_SIZE.contains(&h));
            if !ok {
                bad_fields.push(key.clone());
            }
            ok
        }
        NOTICE_FIELD => false,
        _ => {
            unknown_fields.push(truncate(key));
            false
        }
    });
    if !bad_fields.is_empty() {
        notes.push(format!(
            "unreadable saved fields dropped: {}",
            bad_fields.join(", ")
        ));
    }
    if !unknown_fields.is_empty() {
        unknown_fields.sort();
        notes.push(format!(
            "unknown saved fields ignored: {}",
            unknown_fields.join(", ")
        ));
    }

    let notice = if notes.is_empty() {
        None
    } else {
        Some(format!("restored state with changes: {}", notes.join("; ")))
    };
    // serde_json cannot fail on an Option<String>.
    let data = serde_json::to_string(&notice).unwrap_or_else(|_| "null".into());
    state.fields.insert(NOTICE_FIELD.to_string(), data);
    notes
}

/// Shortens attacker-controlled text before it goes into a message.
fn truncate(s: &str) -> String {
    const MAX: usize = 48;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Checks one saved value against its parameter: `Ok(None)` keeps it as is,
/// `Ok(Some(note))` keeps a corrected value, `Err(note)` drops it.
fn check_value(kind: &Kind, value: &mut ParamValue) -> Result<Option<String>, String> {
    match (kind, value) {
        (Kind::Float(p), ParamValue::F32(v)) => {
            if !v.is_finite() {
                return Err(format!("{v} is not a number"));
            }
            let (lo, hi) = (p.preview_plain(0.0), p.preview_plain(1.0));
            let clamped = v.clamp(lo.min(hi), lo.max(hi));
            if clamped != *v {
                let note = format!("{v} clamped to {clamped}");
                *v = clamped;
                return Ok(Some(note));
            }
            Ok(None)
        }
        (Kind::Int(p), ParamValue::I32(v)) => {
            let (lo, hi) = (p.preview_plain(0.0), p.preview_plain(1.0));
            let clamped = (*v).clamp(lo.min(hi), lo.max(hi));
            if clamped != *v {
                let note = format!("{v} clamped to {clamped}");
                *v = clamped;
                return Ok(Some(note));
            }
            Ok(None)
        }
        (Kind::Enum(ids, _), ParamValue::String(s)) => match ids {
            Some(ids) if ids.contains(&s.as_str()) => Ok(None),
            _ => Err(format!("unknown choice `{}`", truncate(s))),
        },
        (Kind::Enum(_, n), ParamValue::I32(i)) => {
            if *i >= 0 && (*i as usize) < *n {
                Ok(None)
            } else {
                Err(format!("choice {i} does not exist"))
            }
        }
        (Kind::Bool, ParamValue::Bool(_)) => Ok(None),
        (_, other) => Err(format!("value of the wrong type ({other:?})")),
    }
}

/// Everything a state restore does with untrusted bytes, with its promises
/// checked: never a panic, and a sanitized state holds only known parameters
/// with in-range values and only fields Grown reads. The entry point of the
/// `state_restore` fuzz target and of the stable mutation test; panics (the
/// fuzzer's crash signal) only when a promise is broken.
#[doc(hidden)]
pub fn fuzz_restore(bytes: &[u8]) {
    use nice_plug::prelude::Params;
    for parsed in [parse_clap_state(bytes), parse_state(bytes)] {
        let Ok(mut state) = parsed else {
            continue;
        };
        repair_untrusted(&mut state);
        let reference = GrownParams::default();
        for (id, value) in &state.params {
            let kind = kind(&reference, id).expect("repair_untrusted kept an unknown parameter");
            let mut copy = value.clone();
            assert!(
                matches!(check_value(&kind, &mut copy), Ok(None)),
                "repair_untrusted kept a bad value for {id}: {value:?}"
            );
        }
        for key in state.fields.keys() {
            assert!(
                matches!(
                    key.as_str(),
                    "model-path" | "vocoder-path" | "preset-name" | "editor-size" | NOTICE_FIELD
                ),
                "repair_untrusted kept field {key}"
            );
        }
        let params = GrownParams::default();
        params.deserialize_fields(&state.fields);
        let (w, h) = *params.editor_size.read();
        assert!(EDITOR_SIZE.contains(&w) && EDITOR_SIZE.contains(&h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nice_plug::prelude::Params;
    use std::collections::BTreeMap;

    fn good() -> PluginState {
        let mut params = BTreeMap::new();
        params.insert("growth".to_string(), ParamValue::I32(48));
        params.insert("length".to_string(), ParamValue::F32(2.5));
        params.insert("loop".to_string(), ParamValue::String("loop".into()));
        let mut fields = BTreeMap::new();
        fields.insert("model-path".to_string(), "null".to_string());
        fields.insert("editor-size".to_string(), "[760,520]".to_string());
        PluginState {
            version: env!("CARGO_PKG_VERSION").to_string(),
            params,
            fields,
        }
    }

    fn notice(state: &PluginState) -> Option<String> {
        serde_json::from_str(&state.fields[NOTICE_FIELD]).unwrap()
    }

    #[test]
    fn a_good_state_passes_unchanged() {
        let mut s = good();
        let before = serde_json::to_string(&s.params).unwrap();
        assert!(repair_untrusted(&mut s).is_empty());
        assert_eq!(serde_json::to_string(&s.params).unwrap(), before);
        assert_eq!(notice(&s), None);
    }

    #[test]
    fn out_of_range_values_are_clamped_and_bad_ones_dropped() {
        let mut s = good();
        s.params.insert("growth".into(), ParamValue::I32(i32::MAX));
        s.params.insert("release".into(), ParamValue::F32(-3.0));
        s.params.insert("gain".into(), ParamValue::F32(f32::NAN));
        s.params
            .insert("polyphony".into(), ParamValue::String("many".into()));
        s.params
            .insert("vocoder".into(), ParamValue::String("wavenet".into()));
        s.params.insert("loop".into(), ParamValue::I32(7));
        s.params.insert("future-knob".into(), ParamValue::F32(1.0));
        let notes = repair_untrusted(&mut s);
        assert!(matches!(
            s.params["growth"],
            ParamValue::I32(crate::params::MAX_GROWTH)
        ));
        assert!(matches!(s.params["release"], ParamValue::F32(v) if v == 0.001));
        for dropped in ["gain", "polyphony", "vocoder", "loop", "future-knob"] {
            assert!(!s.params.contains_key(dropped), "{dropped} kept");
        }
        let all = notes.join("\n");
        for want in [
            "`growth`: 2147483647 clamped to 1024",
            "`gain`: NaN is not a number",
            "`polyphony`: value of the wrong type",
            "`vocoder`: unknown choice `wavenet`",
            "`loop`: choice 7 does not exist",
            "unknown parameters ignored: future-knob",
        ] {
            assert!(all.contains(want), "missing {want:?} in {all}");
        }
        assert!(notice(&s)
            .unwrap()
            .starts_with("restored state with changes"));
    }

    #[test]
    fn future_versions_and_bad_fields_are_reported() {
        let mut s = good();
        s.version = "9.0.0".into();
        s.fields
            .insert("editor-size".into(), "[0, 99999999]".into());
        s.fields.insert("model-path".into(), "42".into());
        s.fields.insert("vocoder-path".into(), "\"\"".into());
        s.fields.insert("new-thing".into(), "{}".into());
        let notes = repair_untrusted(&mut s).join("\n");
        assert!(notes.contains("saved by Grown 9.0.0"), "{notes}");
        assert!(
            notes
                .contains("unreadable saved fields dropped: editor-size, model-path, vocoder-path"),
            "{notes}"
        );
        assert!(notes.contains("unknown saved fields ignored: new-thing"));
        assert_eq!(s.fields.len(), 1, "{:?}", s.fields);
        // Past versions and missing versions are fine.
        for v in ["0.0.1", ""] {
            let mut s = good();
            s.version = v.into();
            assert!(repair_untrusted(&mut s).is_empty(), "{v}");
        }
        let mut s = good();
        s.version = "banana".into();
        assert!(repair_untrusted(&mut s)[0].contains("unreadable version"));
    }

    #[test]
    fn a_carried_notice_is_replaced() {
        let mut s = good();
        s.fields.insert(NOTICE_FIELD.into(), "\"old news\"".into());
        assert!(repair_untrusted(&mut s).is_empty());
        assert_eq!(notice(&s), None);
    }

    #[test]
    fn framing_errors_are_specific() {
        let err = |b: &[u8]| parse_clap_state(b).err();
        assert_eq!(err(b""), Some(StateError::NoLength(0)));
        assert_eq!(err(&[1, 2, 3]), Some(StateError::NoLength(3)));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert_eq!(err(&huge), Some(StateError::TooLong(u64::MAX)));
        let json = serde_json::to_vec(&good()).unwrap();
        let mut framed = (json.len() as u64).to_le_bytes().to_vec();
        framed.extend_from_slice(&json);
        let back = parse_clap_state(&framed).unwrap();
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&good()).unwrap()
        );
        let cut = &framed[..framed.len() - 5];
        assert!(matches!(
            parse_clap_state(cut),
            Err(StateError::Truncated { .. })
        ));
        let mut junk = 5u64.to_le_bytes().to_vec();
        junk.extend_from_slice(b"hello");
        let e = parse_clap_state(&junk).unwrap_err();
        assert!(e.to_string().contains("not a Grown state"), "{e}");
        assert!(e.to_string().contains("keeping the current settings"));
    }

    #[test]
    fn sanitized_fields_apply_to_real_params() {
        let mut s = good();
        s.fields
            .insert("model-path".into(), "\"/tmp/x.onnx\"".into());
        repair_untrusted(&mut s);
        let p = GrownParams::default();
        p.deserialize_fields(&s.fields);
        assert_eq!(
            crate::params::read_path(&p.model_path),
            Some("/tmp/x.onnx".into())
        );
        assert_eq!(*p.restore_notice.read(), None);
    }
}
