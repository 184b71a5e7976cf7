//! Grown as a DAW sees it: the CLAP bundle loaded by a headless host (clack-host).
//!
//! These tests need the bundle: run `cargo xtask bundle grown --release` first (CI
//! does). A missing bundle fails the tests with that instruction rather than
//! skipping them, because a skipped host test reads as a pass. Set
//! `GROWN_CLAP_BUNDLE` to test another file.
//!
//! The allocation test instead loads the debug-assertion build of the library that
//! `cargo test` itself just compiled, so nice-plug's `assert_process_allocs` aborts
//! on any allocation in `process()`; it runs in a child process so that an abort
//! becomes a test failure with the plugin's backtrace instead of killing the runner.
//!
//! Engine timing: ONNX Runtime, the model and the vocoder load lazily on the engine
//! thread, so every scenario first plays notes until sound appears (≤ 30 s), and
//! compares outputs only after growth has settled (the same probe for 3 s).

use grown_test_support::clap_host::analysis;
use grown_test_support::clap_host::common;
use grown_test_support::clap_host::host;
use grown_test_support::clap_host::play;

use analysis::{best_frequency_scale, centroid_hz, spectral_distance, spectrum};
use common::serial;
use host::{Blocks, Ev, Library, Plugin};
use play::{assert_sane, changed_probe, max_diff, probe, set_param, settled_probe, AUDIBLE};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROOT: u8 = 60;

/// The bundle ([`common::bundle_path`]), with a warning when it is older than
/// the sources.
fn bundle_path() -> PathBuf {
    let path = common::bundle_path();
    warn_if_stale(&path);
    path
}

/// A bundle older than the sources tests old code; say so loudly but go on, since
/// a developer may be testing an older build on purpose.
fn warn_if_stale(bundle: &Path) {
    let Ok(built) = bundle.metadata().and_then(|m| m.modified()) else {
        return;
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
            {
                eprintln!(
                    "WARNING: {} is newer than {}; rebuild with `cargo xtask bundle grown --release`",
                    path.display(),
                    bundle.display()
                );
                return;
            }
        }
    }
}

/// Seconds shown by a time parameter such as "0.300 s".
fn param_seconds(plugin: &mut Plugin, name: &str) -> f64 {
    let id = plugin.param(name).id;
    let text = plugin.param_text(id);
    let number: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let value: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("{name} shows {text:?}, not a number of seconds"));
    if text.contains("ms") {
        value / 1000.0
    } else {
        value
    }
}

/// Waits for the first sound ([`play::wait_for_sound`]), then lets its release
/// end so the next probe starts from silence.
fn wait_for_sound(plugin: &mut Plugin) -> Duration {
    let waited = play::wait_for_sound(plugin, ROOT);
    let tail = plugin.seconds(2.0);
    plugin.render_silence(tail);
    waited
}

/// A fresh, activated, sounding instance. `params` (display name, plain value) are
/// set before activation, so the engine grows only the sound they describe: with
/// Drift at 0 its first generation is its last.
fn sounding_instance(
    library: &Library,
    sample_rate: f64,
    block: usize,
    params: &[(&str, f64)],
) -> Plugin {
    let mut plugin = library.instantiate();
    plugin.set_params_inactive(params);
    plugin.activate(sample_rate, block);
    let waited = wait_for_sound(&mut plugin);
    eprintln!("first sound after {waited:?}");
    plugin
}

fn release_library() -> Library {
    Library::load(&bundle_path())
}

#[test]
fn scanning_and_instantiation_are_fast() {
    let _serial = serial();
    let bundle = bundle_path();
    // A private copy makes this the first load of that file in this process, so the
    // time includes dlopen and the entry's init, as in a host's scan.
    let scratch = std::env::temp_dir().join(format!("grown-scan-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let copy = scratch.join("Grown.clap");
    std::fs::copy(&bundle, &copy).unwrap();

    let start = Instant::now();
    let library = Library::load(&copy);
    let name = library.descriptor_name();
    let scanned = start.elapsed();
    let mut plugin = library.instantiate();
    plugin.activate(48_000.0, 512);
    let ready = start.elapsed();
    eprintln!("scan {scanned:?}, scan + instantiate + activate {ready:?}");
    assert_eq!(name, "Grown");
    assert!(
        scanned < Duration::from_millis(100),
        "scan took {scanned:?}"
    );
    assert!(
        ready < Duration::from_millis(100),
        "load + instantiate + activate took {ready:?}: ONNX Runtime and models must load on the engine thread"
    );

    // Every stable parameter is there, each under its own id.
    let names: Vec<&str> = plugin.param_list.iter().map(|p| p.name.as_str()).collect();
    for wanted in ["Growth", "Seed", "Release", "Gain"] {
        assert!(names.contains(&wanted), "no {wanted} in {names:?}");
    }
    assert_eq!(plugin.param_list.len(), grown::params::PARAM_IDS.len());
    let mut ids: Vec<u32> = plugin.param_list.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        plugin.param_list.len(),
        "duplicate parameter ids"
    );

    let silence = plugin.render_silence(4096);
    assert_sane(&silence, "silence");
    assert_eq!(silence.peak(), 0.0, "output without notes");
    let start = Instant::now();
    drop(plugin);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "destroying an instance took {:?}",
        start.elapsed()
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn notes_sound_sample_accurately_and_release_to_silence() {
    let _serial = serial();
    let library = release_library();
    let mut plugin = sounding_instance(&library, 48_000.0, 512, &[]);
    let release_s = param_seconds(&mut plugin, "Release");
    let attack_s = param_seconds(&mut plugin, "Attack");
    plugin.render_silence(plugin.seconds(release_s + 0.5));

    // Note-on in the middle of the second block, note-off 0.4 s later mid-block too.
    let on = 512 + 100;
    let off = on + plugin.seconds(0.4) + 37;
    let total = off + plugin.seconds(release_s + 0.3);
    let out = plugin.render(
        total,
        &[Ev::on(on, ROOT), Ev::off(off, ROOT)],
        Blocks::Fixed(512),
    );
    assert_sane(&out, "note");

    let before = out.slice(0, on);
    assert_eq!(
        before.peak(),
        0.0,
        "sound before the note-on's sample offset"
    );
    let onset = out
        .mono()
        .iter()
        .position(|x| x.abs() > 0.0)
        .expect("the note never sounded");
    assert!(
        onset <= on + 8,
        "note-on at sample {on} first sounds at {onset}"
    );
    let attack_end = on + plugin.seconds(attack_s) + 1;
    assert!(
        out.slice(on, attack_end + plugin.seconds(0.02)).peak() > AUDIBLE,
        "inaudible right after the attack"
    );
    let held = out.slice(on + plugin.seconds(0.1), off);
    eprintln!("held note: peak {:.3}, rms {:.3}", held.peak(), held.rms());
    assert!(held.rms() > AUDIBLE / 4.0, "held note rms {}", held.rms());

    // Release: still sounding just after note-off, silent once the release is over.
    let just_after = out.slice(off, off + plugin.seconds(0.01));
    assert!(
        just_after.peak() > AUDIBLE,
        "sound stopped at note-off; release is {release_s} s"
    );
    let after_release = out.slice(off + plugin.seconds(release_s + 0.05), total);
    assert!(
        after_release.peak() < 1e-5,
        "still {} peak {release_s} s (release) + 50 ms after note-off",
        after_release.peak()
    );
}

/// Voices that end within one sub-block end in time order, not slot order:
/// eight notes released in reverse slot order, a sample apart, end in the same
/// few samples (the host asserts every block's output events are in time
/// order), and each sends exactly one note end.
#[test]
fn note_ends_of_many_voices_go_out_in_time_order() {
    let _serial = serial();
    let library = release_library();
    let mut plugin = sounding_instance(&library, 48_000.0, 512, &[]);
    let release_s = param_seconds(&mut plugin, "Release");
    plugin.render_silence(plugin.seconds(release_s + 0.5));
    let keys: Vec<u8> = (0..8).map(|i| ROOT + 2 * i).collect();
    let on = 100;
    let off = on + plugin.seconds(0.3);
    let mut events: Vec<Ev> = keys.iter().map(|&k| Ev::on(on, k)).collect();
    // Slot 7 is released first, slot 0 last.
    events.extend(
        keys.iter()
            .rev()
            .enumerate()
            .map(|(i, &k)| Ev::off(off + i, k)),
    );
    let total = off + plugin.seconds(release_s + 0.3);
    let out = plugin.render(total, &events, Blocks::Fixed(512));
    assert_sane(&out, "eight notes");
    assert_eq!(
        out.events_out.len(),
        keys.len(),
        "one note end per voice, at {:?}",
        out.events_out
    );
    assert!(out.events_out.iter().all(|&t| t >= off));
    // And with a chord stolen by a lowered polyphony mid-release.
    let mut events: Vec<Ev> = keys.iter().map(|&k| Ev::on(on, k)).collect();
    let poly = plugin.param("Polyphony").id;
    events.push(Ev::param(off, poly, 2.0));
    events.extend(
        keys.iter()
            .rev()
            .enumerate()
            .map(|(i, &k)| Ev::off(off + 1 + i, k)),
    );
    let out = plugin.render(total, &events, Blocks::Cycle(&[512, 7, 300]));
    assert_eq!(out.events_out.len(), keys.len(), "{:?}", out.events_out);
}

/// A fresh instance whose restored state names its model as `stored` (what the
/// `model-path` field of a saved project holds), activated and sounding.
fn instance_with_stored_model(library: &Library, stored: &str) -> Plugin {
    let mut plugin = library.instantiate();
    play::load_edited_state(&mut plugin, |state| {
        state["fields"]["model-path"] = serde_json::to_string(&Some(stored)).unwrap().into();
    });
    plugin.activate(48_000.0, 512);
    wait_for_sound(&mut plugin);
    plugin
}

/// A project moves between machines: a bundled model stored by name, or by an
/// absolute path from another machine, opens with this bundle's model of that
/// name and plays exactly what this bundle's file plays (not the built-in one).
#[test]
fn a_project_from_another_machine_plays_its_bundled_model() {
    let _serial = serial();
    let library = release_library();
    let here = bundle_path()
        .parent()
        .unwrap()
        .join("grown-resources/models/nca/chord.onnx");
    assert!(here.is_file(), "the bundle has no {}", here.display());
    let listen = |stored: &str| {
        let mut plugin = instance_with_stored_model(&library, stored);
        settled_probe(&mut plugin, ROOT, 0.5)
    };
    let direct = listen(&here.display().to_string());
    let by_name = listen("bundled:chord.onnx");
    let foreign = listen("/Users/someone/Music/Grown.clap/grown-resources/models/nca/chord.onnx");
    assert_eq!(max_diff(&direct, &by_name), 0.0, "bundled:chord.onnx");
    assert_eq!(max_diff(&direct, &foreign), 0.0, "another machine's path");
    let mut plugin = sounding_instance(&library, 48_000.0, 512, &[]);
    let built_in = settled_probe(&mut plugin, ROOT, 0.5);
    assert!(
        max_diff(&direct, &built_in) > 1e-3,
        "chord sounds like the built-in model"
    );
}

#[test]
fn every_sample_rate_and_block_size_plays_the_same_sound() {
    let _serial = serial();
    let library = release_library();
    let mut plugin = sounding_instance(&library, 48_000.0, 512, &[]);
    settled_probe(&mut plugin, ROOT, 0.5);

    // Reactivation keeps the grown sound, so each configuration sounds at once.
    let irregular: &[usize] = &[1, 7, 64, 333, 512, 2, 4096, 1000];
    let mut centroids = Vec::new();
    for sample_rate in [44_100.0, 48_000.0, 96_000.0] {
        for max_block in [1usize, 64, 512, 4096] {
            plugin.activate(sample_rate, max_block);
            let blocks = if max_block == 4096 {
                Blocks::Cycle(irregular)
            } else {
                Blocks::Fixed(max_block)
            };
            let hold = plugin.seconds(0.4);
            let tail = plugin.seconds(0.5);
            let total = hold + tail;
            // Mid-block when blocks are long enough to have a middle.
            let on = max_block / 2 + 3;
            let out = plugin.render(total, &[Ev::on(on, ROOT), Ev::off(on + hold, ROOT)], blocks);
            let what = format!("{sample_rate} Hz, blocks of {max_block}");
            assert_sane(&out, &what);
            assert_eq!(
                out.slice(0, on).peak(),
                0.0,
                "{what}: sound before the note"
            );
            // The same stretch of the sound in every configuration: 0.05..0.4 s.
            let held = out.slice(on + plugin.seconds(0.05), on + hold);
            assert!(held.rms() > AUDIBLE / 4.0, "{what}: rms {}", held.rms());
            let centroid = centroid_hz(&spectrum(&held.mono(), sample_rate));
            assert!(
                out.slice(total - plugin.seconds(0.1), total).peak() < 1e-5,
                "{what}: not silent after the release"
            );
            centroids.push((what, centroid));
        }
    }
    let reference = centroids
        .iter()
        .find(|(what, _)| what == "48000 Hz, blocks of 512")
        .map(|(_, c)| *c)
        .unwrap();
    for (what, centroid) in &centroids {
        assert!(
            (0.95..1.05).contains(&(centroid / reference)),
            "{what}: spectral centroid {centroid:.0} Hz vs {reference:.0} Hz at 48 kHz / 512; all: {centroids:?}"
        );
    }
}

#[test]
fn an_octave_up_doubles_the_pitch() {
    let _serial = serial();
    let library = release_library();
    let sample_rate = 48_000.0;
    let mut plugin = sounding_instance(&library, sample_rate, 512, &[]);
    // Full sustain, so the level does not change while we average the spectrum.
    set_param(&mut plugin, "Sustain", 1.0);
    // Note 72 plays the grown sound twice as fast, so half the time covers the same
    // stretch of it: compare 0.05..1.0 s at note 60 with 0.025..0.5 s at note 72.
    let low = settled_probe(&mut plugin, ROOT, 1.0);
    let high = probe(&mut plugin, ROOT + 12, 0.5);
    let low = low.slice(plugin.seconds(0.05), plugin.seconds(1.0));
    let high = high.slice(plugin.seconds(0.025), plugin.seconds(0.5));
    let low = spectrum(&low.mono(), sample_rate);
    let high = spectrum(&high.mono(), sample_rate);

    let centroid_ratio = centroid_hz(&high) / centroid_hz(&low);
    let scale = best_frequency_scale(&low, &high, (1.5, 2.5), 14_000.0);
    eprintln!("octave: centroid ratio {centroid_ratio:.3}, best spectral scale {scale:.3}");
    assert!(
        (1.7..2.3).contains(&centroid_ratio),
        "spectral centroid ratio {centroid_ratio:.3} for an octave (want 2 ± 15 %)"
    );
    assert!(
        (scale - 2.0).abs() <= 0.06,
        "the octave's spectrum is the root's scaled by {scale:.3} (want 2 ± 3 %)"
    );
}

#[test]
fn seeds_change_the_sound_and_the_same_seed_repeats_it() {
    let _serial = serial();
    let library = release_library();
    let sample_rate = 48_000.0;
    let mut first = sounding_instance(&library, sample_rate, 512, &[]);
    let mut twin = sounding_instance(&library, sample_rate, 512, &[]);
    let seed = first.param("Seed");
    let base = first.param_value(seed.id).round();
    let other_seed = if base < seed.max {
        base + 1.0
    } else {
        base - 1.0
    };
    let mut other = sounding_instance(&library, sample_rate, 512, &[("Seed", other_seed)]);

    let a = settled_probe(&mut first, ROOT, 0.5);
    let b = settled_probe(&mut twin, ROOT, 0.5);
    let c = settled_probe(&mut other, ROOT, 0.5);
    assert!(
        a == b,
        "two instances with seed {base} differ (max diff {})",
        max_diff(&a, &b)
    );
    assert!(
        a != c,
        "seeds {base} and {other_seed} give identical samples"
    );
    let distance = spectral_distance(
        &spectrum(&a.mono(), sample_rate),
        &spectrum(&c.mono(), sample_rate),
        8_000.0,
    );
    assert!(
        distance > 1e-3,
        "seeds {base} and {other_seed} give the same spectrum (distance {distance:.2e})"
    );
}

#[test]
fn automating_growth_changes_the_sound() {
    let _serial = serial();
    let library = release_library();
    let sample_rate = 48_000.0;
    let mut plugin = sounding_instance(&library, sample_rate, 512, &[]);
    let growth = plugin.param("Growth");
    let before = settled_probe(&mut plugin, ROOT, 0.5);
    let current = plugin.param_value(growth.id).round();
    let target = (current / 4.0).round().max(growth.min + 1.0);
    assert!(target != current, "Growth is already at {current}");

    // Sample-accurate automation in the middle of a block, while a note plays.
    let out = plugin.render(
        4096,
        &[
            Ev::on(0, ROOT),
            Ev::param(1234, growth.id, target),
            Ev::off(3000, ROOT),
        ],
        Blocks::Fixed(512),
    );
    assert_sane(&out, "automation");
    assert!((plugin.param_value(growth.id) - target).abs() < 1e-6);
    plugin.render_silence(plugin.seconds(1.0));

    let what = format!("Growth {current} → {target}");
    let after = changed_probe(&mut plugin, &before, ROOT, 0.5, &what);
    let distance = spectral_distance(
        &spectrum(&before.mono(), sample_rate),
        &spectrum(&after.mono(), sample_rate),
        8_000.0,
    );
    assert!(
        before != after,
        "Growth {current} → {target} left the samples unchanged"
    );
    assert!(
        distance > 1e-3,
        "Growth {current} → {target} left the spectrum unchanged (distance {distance:.2e})"
    );
}

#[test]
fn saved_state_reproduces_the_sound_in_a_new_instance() {
    let _serial = serial();
    let library = release_library();
    let sample_rate = 48_000.0;
    let probe_instance = library.instantiate();
    let seed = probe_instance.param("Seed");
    let growth = probe_instance.param("Growth");
    let seed_value = (seed.min + 8.0).min(seed.max);
    let growth_value = (growth.min + 48.0).min(growth.max);
    drop(probe_instance);
    let mut original = sounding_instance(
        &library,
        sample_rate,
        512,
        &[("Seed", seed_value), ("Growth", growth_value)],
    );
    let expected = settled_probe(&mut original, ROOT, 0.5);
    let state = original.save_state();
    assert!(!state.is_empty(), "empty state");
    drop(original);

    let mut restored = library.instantiate();
    restored.load_state(&state);
    assert!((restored.param_value(seed.id) - seed_value).abs() < 1e-6);
    assert!((restored.param_value(growth.id) - growth_value).abs() < 1e-6);
    restored.activate(sample_rate, 512);
    wait_for_sound(&mut restored);
    let got = settled_probe(&mut restored, ROOT, 0.5);
    assert!(
        got == expected,
        "restored instance differs (max diff {})",
        max_diff(&got, &expected)
    );
}

/// Set in the child process that runs the allocation scenario.
const ALLOC_CHILD: &str = "GROWN_ALLOC_CHECK_CHILD";

#[test]
fn debug_build_never_allocates_on_the_audio_thread() {
    if std::env::var_os(ALLOC_CHILD).is_some() {
        allocation_scenario();
        return;
    }
    let _serial = serial();
    let library = common::debug_library();
    let ort = common::ort_library();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "debug_build_never_allocates_on_the_audio_thread",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ALLOC_CHILD, &library)
        .env("ORT_DYLIB_PATH", &ort)
        .output()
        .expect("could not run the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the debug build failed under assert_process_allocs ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}

/// Everything the audio thread does in normal use, against the debug-assertion build:
/// first generation arriving, notes at offsets, automation of every kind of parameter,
/// all block sizes, reactivation at another rate, a state load, many voices.
fn allocation_scenario() {
    let path = PathBuf::from(std::env::var_os(ALLOC_CHILD).unwrap());
    let library = Library::load(&path);
    let mut plugin = sounding_instance(&library, 48_000.0, 4096, &[]);
    let growth = plugin.param("Growth");
    let seed = plugin.param("Seed");
    let gain = plugin.param("Gain");
    let irregular: &[usize] = &[1, 64, 512, 4096, 3, 1000];
    for blocks in [
        Blocks::Fixed(1),
        Blocks::Fixed(64),
        Blocks::Fixed(4096),
        Blocks::Cycle(irregular),
    ] {
        let events = [
            Ev::on(10, ROOT),
            Ev::on(11, ROOT + 7),
            Ev::param(500, gain.id, 0.3),
            Ev::on(700, ROOT + 12),
            Ev::param(900, growth.id, 20.0),
            Ev::off(2000, ROOT),
            Ev::param(2500, seed.id, 3.0),
            Ev::off(3000, ROOT + 7),
            Ev::off(3001, ROOT + 12),
        ];
        let out = plugin.render(8000, &events, blocks);
        assert_sane(&out, "allocation scenario");
    }
    // Voices from sixteen simultaneous notes, then a generation change while they sound.
    let chord: Vec<Ev> = (0..20).map(|k| Ev::on(k * 3, 40 + k as u8)).collect();
    plugin.render(4096, &chord, Blocks::Fixed(256));
    plugin.render(4096, &[Ev::param(0, growth.id, 60.0)], Blocks::Fixed(256));
    std::thread::sleep(Duration::from_millis(500));
    plugin.render(48_000, &[], Blocks::Fixed(256));
    let state = plugin.save_state();
    plugin.load_state(&state);
    plugin.activate(96_000.0, 64);
    let out = plugin.render(
        96_000,
        &[Ev::on(5, ROOT), Ev::off(50_000, ROOT)],
        Blocks::Fixed(64),
    );
    assert_sane(&out, "after reactivation");

    // Expression, polyphonic modulation, MPE, controllers and a tempo.
    use clack_host::events::event_types::NoteExpressionType;
    use host::EvKind;
    for (name, value) in [("MPE", 1.0), ("Velocity → tone", 0.5), ("Length sync", 5.0)] {
        let id = plugin.param(name).id;
        plugin.render(64, &[Ev::param(0, id, value)], Blocks::Fixed(64));
    }
    plugin.tempo = Some(128.0);
    let tune = plugin.param("Tune").id;
    let at = |time: usize, kind: EvKind| Ev { time, kind };
    let note = |key: u8, channel: u8, note_id: i32| EvKind::NoteWithId {
        key,
        channel,
        note_id,
        velocity: 0.6,
    };
    let expression = |note_id: i32, kind: NoteExpressionType, value: f64| EvKind::Expression {
        note_id,
        key: ROOT,
        channel: 1,
        kind,
        value,
    };
    let events = [
        at(0, EvKind::Midi([0xE1, 0, 80])),
        at(1, note(ROOT, 1, 1)),
        at(2, expression(1, NoteExpressionType::Tuning, 0.5)),
        at(3, expression(1, NoteExpressionType::Volume, 0.7)),
        at(4, expression(1, NoteExpressionType::Pressure, 0.4)),
        at(
            5,
            EvKind::PolyMod {
                id: tune,
                note_id: 1,
                key: ROOT,
                channel: 1,
                amount: 0.1,
            },
        ),
        at(6, Ev::param(0, tune, 0.6).kind),
        at(7, EvKind::Midi([0xB0, 1, 90])),
        at(8, EvKind::Midi([0xD1, 70, 0])),
        at(9, EvKind::Midi([0xB1, 74, 30])),
        at(3000, EvKind::Midi([0x81, ROOT, 0])),
    ];
    let out = plugin.render(8000, &events, Blocks::Fixed(64));
    assert_sane(&out, "expression");
}
