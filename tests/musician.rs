//! What a musician plays beyond keys, through the CLAP bundle in the headless
//! host: presets (loaded the way the editor and a host load them, as a plugin
//! state), per-note expression (CLAP note expressions, MPE), polyphonic
//! modulation, the mod wheel and tempo sync.
//!
//! Needs the bundle, like `clap_host.rs` (`cargo xtask bundle grown --release`;
//! `GROWN_CLAP_BUNDLE` picks another file).

use clack_host::events::event_types::NoteExpressionType;
use grown::presets;
use grown_test_support::clap_host::analysis::{best_frequency_scale, spectrum};
use grown_test_support::clap_host::common::{self, serial};
use grown_test_support::clap_host::host::{Blocks, Ev, EvKind, Library, Plugin, Stereo};
use grown_test_support::clap_host::play::{
    self, assert_sane, changed_probe, max_diff, probe, set_param, settled_probe, AUDIBLE,
};

const ROOT: u8 = 60;
const RATE: f64 = 48_000.0;

fn sounding_instance(library: &Library) -> Plugin {
    let mut plugin = library.instantiate();
    plugin.activate(RATE, 512);
    play::wait_for_sound(&mut plugin, ROOT);
    plugin.render_silence(plugin.seconds(2.0));
    plugin
}

/// Renders one note from silence: `start` events at sample 0, held `hold_s`,
/// released, then its tail.
fn play_note(plugin: &mut Plugin, start: &[EvKind], key: u8, hold_s: f64) -> Stereo {
    plugin.render_silence(plugin.seconds(1.0));
    let hold = plugin.seconds(hold_s);
    let events: Vec<Ev> = start.iter().map(|&kind| Ev { time: 0, kind }).collect();
    let mut out = plugin.render(hold, &events, Blocks::Fixed(512));
    let off = Ev {
        time: 0,
        kind: EvKind::Midi([0x80 | channel_of(start), key, 0]),
    };
    let tail = plugin.render(plugin.seconds(0.6), &[off], Blocks::Fixed(512));
    out.left.extend(tail.left);
    out.right.extend(tail.right);
    assert_sane(&out, "note");
    out
}

/// The channel of the first note-on in `start` (0 when none).
fn channel_of(start: &[EvKind]) -> u8 {
    start
        .iter()
        .find_map(|k| match k {
            EvKind::NoteWithId { channel, .. } => Some(*channel),
            _ => None,
        })
        .unwrap_or(0)
}

fn note(key: u8, channel: u8, note_id: i32) -> EvKind {
    EvKind::NoteWithId {
        key,
        channel,
        note_id,
        velocity: 0.8,
    }
}

/// The spectral scale of `played` against the root note's `reference`.
fn pitch_scale(reference: &Stereo, played: &Stereo, plugin: &Plugin) -> f64 {
    let low = reference.slice(plugin.seconds(0.05), plugin.seconds(1.0));
    let high = played.slice(plugin.seconds(0.025), plugin.seconds(0.5));
    best_frequency_scale(
        &spectrum(&low.mono(), RATE),
        &spectrum(&high.mono(), RATE),
        (1.5, 2.5),
        14_000.0,
    )
}

/// A factory preset arrives as a whole plugin state (what the editor's
/// browser hands the host context): the plugin reports its values, and two
/// presets play different sounds; reloading the first plays it again.
#[test]
fn factory_presets_load_as_plugin_state_and_play_their_sound() {
    let _serial = serial();
    let library = Library::load(&common::bundle_path());
    let mut plugin = sounding_instance(&library);
    let framed = |id: &str| {
        let state = presets::find(id).unwrap().to_state();
        let json = serde_json::to_vec(&state).unwrap();
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&json);
        bytes
    };
    // Two presets without Drift, so each settles to one repeatable sound.
    let (bow, swell) = (
        presets::find("strings-bow").unwrap(),
        presets::find("strings-slow-swell").unwrap(),
    );
    assert_ne!(bow.number("seed"), swell.number("seed"));

    plugin.load_state(&framed("strings-bow"));
    let seed = plugin.param("Seed").id;
    let release = plugin.param("Release").id;
    assert_eq!(
        plugin.param_value(seed).round(),
        bow.number("seed").unwrap()
    );
    assert!(
        plugin.param_text(release).starts_with("0.600"),
        "{}",
        plugin.param_text(release)
    );
    let first = settled_probe(&mut plugin, ROOT, 0.8);
    assert!(first.peak() > AUDIBLE);

    plugin.load_state(&framed("strings-slow-swell"));
    assert_eq!(
        plugin.param_value(seed).round(),
        swell.number("seed").unwrap()
    );
    assert!(
        plugin.param_text(release).starts_with("3.500"),
        "{}",
        plugin.param_text(release)
    );
    let second = changed_probe(&mut plugin, &first, ROOT, 0.8, "strings-slow-swell");
    assert!(second.peak() > AUDIBLE);

    // The saved project names the preset, and reloading the first plays it again.
    let saved = plugin.save_state();
    let json: serde_json::Value = serde_json::from_slice(&saved[8..]).unwrap();
    assert_eq!(json["fields"]["preset-name"], "\"Strings, slow swell\"");
    plugin.load_state(&framed("strings-bow"));
    let again = changed_probe(&mut plugin, &second, ROOT, 0.8, "strings-bow again");
    assert!(
        max_diff(&again, &first) < 1e-6,
        "strings-bow plays differently the second time"
    );
}

/// CLAP tuning on one note id plays that note an octave up, exactly as the
/// key an octave up does; polyphonic modulation of Tune does the same; an MPE
/// bend on a member channel bends that note; pressure swells its own note.
#[test]
fn note_expressions_poly_modulation_and_mpe_shape_single_notes() {
    let _serial = serial();
    let library = Library::load(&common::bundle_path());
    let mut plugin = sounding_instance(&library);
    set_param(&mut plugin, "Sustain", 1.0);
    settled_probe(&mut plugin, ROOT, 0.5);

    let octave = play_note(&mut plugin, &[note(ROOT + 12, 0, 1)], ROOT + 12, 0.8);
    assert!(octave.peak() > AUDIBLE);
    let tuned = play_note(
        &mut plugin,
        &[
            note(ROOT, 0, 2),
            EvKind::Expression {
                note_id: 2,
                key: ROOT,
                channel: 0,
                kind: NoteExpressionType::Tuning,
                value: 12.0,
            },
        ],
        ROOT,
        0.8,
    );
    assert!(
        max_diff(&tuned, &octave) < 1e-6,
        "tuning +12 is not the octave"
    );

    // Tune is polyphonically modulatable: +0.25 of its ±24 st range is +12.
    let tune = plugin.param("Tune").id;
    let knob = plugin.param_value(tune);
    let modulated = play_note(
        &mut plugin,
        &[
            note(ROOT, 0, 3),
            EvKind::PolyMod {
                id: tune,
                note_id: 3,
                key: ROOT,
                channel: 0,
                amount: 0.25,
            },
        ],
        ROOT,
        0.8,
    );
    assert!(
        max_diff(&modulated, &octave) < 1e-6,
        "poly-modulated Tune is not the octave"
    );
    assert_eq!(
        plugin.param_value(tune),
        knob,
        "poly modulation moved the knob"
    );

    // MPE: the bend comes first on the note's own channel (48 st range, +¼).
    let root = play_note(&mut plugin, &[note(ROOT, 0, 4)], ROOT, 1.0);
    set_param(&mut plugin, "MPE", 1.0);
    let bend = 8192 + 2048u16;
    let bent = play_note(
        &mut plugin,
        &[
            EvKind::Midi([0xE2, (bend & 0x7f) as u8, (bend >> 7) as u8]),
            note(ROOT, 2, 5),
        ],
        ROOT,
        0.5,
    );
    let scale = pitch_scale(&root, &bent, &plugin);
    assert!(
        (scale - 2.0).abs() <= 0.02,
        "MPE bend scaled the spectrum by {scale}"
    );

    // Pressure → level: silent until pressed, then as loud as a plain note.
    set_param(&mut plugin, "MPE", 0.0);
    let plain = play_note(&mut plugin, &[note(ROOT, 0, 8)], ROOT, 0.5);
    set_param(&mut plugin, "Voice pressure → level", 1.0);
    let unpressed = play_note(&mut plugin, &[note(ROOT, 0, 6)], ROOT, 0.5);
    assert!(
        unpressed.peak() < AUDIBLE,
        "unpressed note sounds: {}",
        unpressed.peak()
    );
    let pressed = play_note(
        &mut plugin,
        &[
            note(ROOT, 0, 7),
            EvKind::Expression {
                note_id: 7,
                key: ROOT,
                channel: 0,
                kind: NoteExpressionType::Pressure,
                value: 1.0,
            },
        ],
        ROOT,
        0.5,
    );
    // The level follows pressure through a 5 ms smoother, so compare after it.
    let after = |x: &Stereo| x.slice(plugin.seconds(0.05), x.len());
    assert!(
        max_diff(&after(&pressed), &after(&plain)) < 1e-5,
        "full pressure is not the plain note"
    );
}

/// The mod wheel moves Growth without moving its knob; back at rest the sound
/// returns exactly.
#[test]
fn the_mod_wheel_moves_its_target() {
    let _serial = serial();
    let library = Library::load(&common::bundle_path());
    let mut plugin = sounding_instance(&library);
    let before = settled_probe(&mut plugin, ROOT, 0.5);
    let growth = plugin.param("Growth").id;
    let knob = plugin.param_value(growth);
    set_param(&mut plugin, "Mod wheel →", 1.0); // Growth
                                                // Float parameters travel normalised in CLAP: 0.475 is a depth of −0.05.
    set_param(&mut plugin, "Mod wheel depth", 0.475);
    plugin.render(
        512,
        &[Ev {
            time: 0,
            kind: EvKind::Midi([0xB0, 1, 127]),
        }],
        Blocks::Fixed(512),
    );
    let moved = changed_probe(&mut plugin, &before, ROOT, 0.5, "mod wheel up");
    assert!(moved.peak() > AUDIBLE);
    assert_eq!(
        plugin.param_value(growth),
        knob,
        "the wheel moved the Growth knob"
    );
    plugin.render(
        512,
        &[Ev {
            time: 0,
            kind: EvKind::Midi([0xB0, 1, 0]),
        }],
        Blocks::Fixed(512),
    );
    let back = changed_probe(&mut plugin, &moved, ROOT, 0.5, "mod wheel down");
    assert!(
        max_diff(&back, &before) < 1e-6,
        "wheel at rest does not restore the sound"
    );
}

/// Correlation of `x` with itself `lag` samples later.
fn self_similarity(x: &[f32], lag: usize) -> f64 {
    let n = x.len() - lag;
    let (a, b) = (&x[..n], &x[lag..]);
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(p, q)| f64::from(*p) * f64::from(*q))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

/// Length synced to one bar loops every bar of the host's tempo, and follows
/// the tempo when it changes.
#[test]
fn length_synced_to_a_bar_loops_on_the_bar() {
    let _serial = serial();
    let library = Library::load(&common::bundle_path());
    let mut plugin = library.instantiate();
    plugin.tempo = Some(120.0);
    plugin.activate(RATE, 512);
    play::wait_for_sound(&mut plugin, ROOT);
    set_param(&mut plugin, "Sustain", 1.0);
    set_param(&mut plugin, "Length sync", 5.0); // 1 bar
    for (tempo, bar_s, other_s) in [(120.0, 2.0, 2.4), (100.0, 2.4, 2.0)] {
        plugin.tempo = Some(tempo);
        // Hold a note until two bars in a row repeat: the new length has grown.
        let hold = plugin.seconds(2.0 * bar_s + 0.5);
        let start = std::time::Instant::now();
        let out = loop {
            let out = probe(&mut plugin, ROOT, hold as f64 / RATE);
            let held = &out.mono()[plugin.seconds(0.3)..hold];
            if self_similarity(held, plugin.seconds(bar_s)) > 0.99 {
                break out;
            }
            assert!(
                start.elapsed() < play::SETTLE_TIMEOUT,
                "{tempo} BPM never loops on the bar"
            );
        };
        let held = &out.mono()[plugin.seconds(0.3)..hold];
        let on_bar = self_similarity(held, plugin.seconds(bar_s));
        let off_bar = self_similarity(held, plugin.seconds(other_s));
        eprintln!("{tempo} BPM: similarity {on_bar:.4} a bar later, {off_bar:.4} at {other_s} s");
        assert!(
            on_bar > 0.99 && off_bar < on_bar - 0.05,
            "{on_bar} vs {off_bar}"
        );
    }
}
