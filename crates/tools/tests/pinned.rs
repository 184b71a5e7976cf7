//! Behaviour pins: offline renders hash to fixed values, every parameter keeps
//! its stable ID, and a state saved by an earlier build restores to the same
//! values. A restructuring must leave all three untouched.
//!
//! When behaviour changes on purpose (a retrained or re-exported model, a DSP
//! change, new model metadata such as a level calibration), run
//! `GROWN_PRINT_PINS=1 cargo test --test pinned -- --nocapture`, check that the
//! change is the intended one, and paste the printed hashes into
//! [`PINNED_RENDERS`]. Parameter IDs and the saved-state fixture are never
//! updated: hosts store automation and projects by them.
//!
//! The renders need ONNX Runtime: `cargo xtask fetch-ort` (target/onnxruntime)
//! or `ORT_DYLIB_PATH`.

use grown::grow::model::NcaModel;
use grown::params::GrownParams;
use grown::Grown;
use grown_tools::render::{parse_notes, render, RenderRequest};
use nice_plug::params::InternalParamMut;
use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::{Param, ParamPtr, Params, Plugin};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One pinned offline render: which model, how it is grown and played, and the
/// FNV-1a 64 hash of its output (see [`audio_hash`]).
struct Pin {
    /// File under `models/nca/`, or `None` for the embedded default model.
    model: Option<&'static str>,
    seed: u32,
    growth: u32,
    mutation: f32,
    notes: &'static str,
    hash: u64,
}

/// The pinned renders: the one place to update when output changes on purpose.
const PINNED_RENDERS: &[Pin] = &[
    // The embedded default (mel, built-in inverter).
    Pin {
        model: None,
        seed: 3,
        growth: 40,
        mutation: 0.0,
        notes: "60@0.0+0.6,67@0.2+0.5*0.5",
        hash: 0xfa284fe02850fd64,
    },
    // Another mel model, with mutation noise on the hidden channels.
    Pin {
        model: Some("chord.onnx"),
        seed: 11,
        growth: 48,
        mutation: 0.2,
        notes: "57@0.0+0.5,64@0.1+0.4",
        hash: 0xc034100d00c0d94c,
    },
    // An stft-ms model: the exact inverse STFT, in stereo.
    Pin {
        model: Some("strings_stereo.onnx"),
        seed: 5,
        growth: 32,
        mutation: 0.0,
        notes: "60@0.0+0.5,72@0.25+0.3",
        hash: 0x91b21544208440ed,
    },
];

/// FNV-1a 64 over the little-endian bits of every left sample, then every
/// right one, then the sample rate: a bit-exact fingerprint with no dependency.
fn audio_hash(left: &[f32], right: &[f32], sample_rate: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: [u8; 4]| {
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for x in left.iter().chain(right) {
        eat(x.to_bits().to_le_bytes());
    }
    eat(sample_rate.to_le_bytes());
    h
}

/// The repository root, where `models/` and `tests/fixtures/` live.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn render_pin(pin: &Pin) -> u64 {
    let root = repo();
    let model = match pin.model {
        None => NcaModel::load_embedded_default().unwrap(),
        Some(file) => NcaModel::load(&root.join("models/nca").join(file)).unwrap(),
    };
    let mut req = RenderRequest::new(pin.seed, pin.growth, parse_notes(pin.notes).unwrap());
    req.length_s = 0.6;
    req.mutation = pin.mutation;
    req.tail_s = 0.1;
    let r = render(model, &req).unwrap();
    assert!(r.left.iter().any(|x| x.abs() > 1e-4), "silent render");
    audio_hash(&r.left, &r.right, r.sample_rate)
}

#[test]
fn offline_renders_are_bit_identical_to_the_pins() {
    let print = std::env::var_os("GROWN_PRINT_PINS").is_some();
    let mut wrong = Vec::new();
    for pin in PINNED_RENDERS {
        let got = render_pin(pin);
        let name = pin.model.unwrap_or("embedded default");
        if print {
            println!("{name}: hash: {got:#018x},");
        }
        if got != pin.hash {
            wrong.push(format!("{name}: {got:#018x} (pinned {:#018x})", pin.hash));
        }
    }
    assert!(
        wrong.is_empty(),
        "renders changed (see this file's header if on purpose):\n{}",
        wrong.join("\n")
    );
}

/// Every parameter ID, as hosts have stored them since they were added (IDs are
/// only ever added, never renamed or removed).
const PINNED_IDS: &[&str] = &[
    "attack",
    "bend-range",
    "damage",
    "decay",
    "drift",
    "drift-sync",
    "fire-rate",
    "gain",
    "growth",
    "length",
    "length-sync",
    "loop",
    "morph",
    "mpe",
    "mpe-bend-range",
    "mutation",
    "polyphony",
    "pressure-depth",
    "pressure-target",
    "release",
    "root",
    "seed",
    "sustain",
    "tune",
    "velocity-curve",
    "velocity-tone",
    "vocoder",
    "voice-pressure",
    "wheel-depth",
    "wheel-target",
];

#[test]
fn parameter_ids_are_unchanged() {
    let params = GrownParams::default();
    let mut ids: Vec<String> = params.param_map().into_iter().map(|(id, ..)| id).collect();
    ids.sort();
    assert_eq!(ids, PINNED_IDS);
    let mut listed: Vec<&str> = grown::params::PARAM_IDS.to_vec();
    listed.sort_unstable();
    assert_eq!(listed, PINNED_IDS);
}

/// The parameters as nice-plug's wrappers save them: plain values, enums by
/// their stable ID.
fn saved_params(params: &GrownParams) -> BTreeMap<String, ParamValue> {
    params
        .param_map()
        .into_iter()
        .map(|(id, ptr, _)| {
            // SAFETY: the pointers come from `params`, which outlives this call.
            let value = unsafe {
                match ptr {
                    ParamPtr::FloatParam(p) => ParamValue::F32((*p).unmodulated_plain_value()),
                    ParamPtr::IntParam(p) => ParamValue::I32((*p).unmodulated_plain_value()),
                    ParamPtr::BoolParam(p) => ParamValue::Bool((*p).unmodulated_plain_value()),
                    ParamPtr::EnumParam(p) => match (*p).unmodulated_plain_id() {
                        Some(id) => ParamValue::String(id.to_owned()),
                        None => ParamValue::I32((*p).unmodulated_plain_value()),
                    },
                }
            };
            (id, value)
        })
        .collect()
}

/// Restores `state` into `params` as nice-plug's wrappers do: the plugin's
/// `filter_state` first, then each value by its ID, then the persisted fields.
fn restore(params: &GrownParams, mut state: PluginState) {
    Grown::filter_state(&mut state);
    let map: BTreeMap<String, ParamPtr> = params
        .param_map()
        .into_iter()
        .map(|(id, ptr, _)| (id, ptr))
        .collect();
    for (id, value) in &state.params {
        let ptr = map.get(id).unwrap_or_else(|| panic!("unknown id {id}"));
        // SAFETY: the pointers come from `params`, which outlives this call.
        unsafe {
            match (ptr, value) {
                (ParamPtr::FloatParam(p), ParamValue::F32(v)) => {
                    (**p)._internal_set_plain_value(*v);
                }
                (ParamPtr::IntParam(p), ParamValue::I32(v)) => {
                    (**p)._internal_set_plain_value(*v);
                }
                (ParamPtr::BoolParam(p), ParamValue::Bool(v)) => {
                    (**p)._internal_set_plain_value(*v);
                }
                (ParamPtr::EnumParam(p), ParamValue::String(s)) => {
                    assert!((**p).set_from_id(s), "enum {id}: unknown {s}");
                }
                (ParamPtr::EnumParam(p), ParamValue::I32(v)) => {
                    (**p)._internal_set_plain_value(*v);
                }
                _ => panic!("{id}: value {value:?} of the wrong type"),
            }
        }
    }
    params.deserialize_fields(&state.fields);
}

const STATE_FIXTURE: &str = "tests/fixtures/state-0.1.0.json";

/// A state saved by Grown 0.1.0 (commit dda80ba: every parameter moved off its
/// default, every persisted field set, serialised as nice-plug's wrappers do)
/// restores to exactly the values it holds. Never regenerate the fixture: it
/// stands for the projects users saved with that build.
#[test]
fn saved_state_from_0_1_0_restores_identically() {
    let path = repo().join(STATE_FIXTURE);
    let text = std::fs::read_to_string(&path).unwrap();
    let saved: PluginState = serde_json::from_str(&text).unwrap();
    let defaults = saved_params(&GrownParams::default());
    for (id, value) in &saved.params {
        assert_ne!(
            format!("{value:?}"),
            format!("{:?}", defaults[id]),
            "{id} is at its default: the fixture would not notice a lost value"
        );
    }

    let params = GrownParams::default();
    restore(&params, serde_json::from_str(&text).unwrap());
    let mut restored = saved_params(&params);
    // Parameters added since 0.1.0 are not in the file: they stay at their defaults.
    restored.retain(|id, value| {
        saved.params.contains_key(id) || {
            assert_eq!(format!("{value:?}"), format!("{:?}", defaults[id]), "{id}");
            false
        }
    });
    assert_eq!(
        serde_json::to_value(&restored).unwrap(),
        serde_json::to_value(&saved.params).unwrap()
    );
    let mut fields = params.serialize_fields();
    let mut want = saved.fields.clone();
    // The restore notice is the plugin's own message field, rewritten on every restore.
    fields.remove("restore-notice");
    want.remove("restore-notice");
    // Added since 0.1.0: a project from then names no preset.
    assert_eq!(fields.remove("preset-name").as_deref(), Some("null"));
    assert_eq!(fields, want);
    assert_eq!(
        grown::params::read_path(&params.model_path),
        Some("/projects/sounds/robin.onnx".into())
    );
    assert_eq!(*params.editor_size.read(), (1100, 760));
}
