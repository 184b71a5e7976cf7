//! Hostile hosts and broken files, through the same headless CLAP host as
//! `tests/clap_host.rs` (which explains the bundle it needs:
//! `cargo xtask bundle grown --release`).
//!
//! * Abuse scenarios (random block sizes, sample-rate changes, activation
//!   churn, MIDI garbage, automation on every sample) run against the release
//!   bundle, and again in a child process against the debug-assertion build,
//!   where nice-plug's `assert_process_allocs` aborts on any allocation in
//!   `process()`.
//! * Broken inputs (ONNX Runtime missing or not ONNX Runtime, broken model
//!   files, a vocoder with another mel analysis, corrupt saved state) each run
//!   in a child process, because ONNX Runtime loads once per process and the
//!   plugin's log goes to the process's stderr: the parent checks the child
//!   passed (no panic, finite bounded output, sound or silence as expected) and
//!   that the log names the problem.
//! * Teardown: engine threads are counted through `/proc` and must be gone
//!   within 200 ms of destroying an instance, also mid-growth.

use grown_test_support::clap_host::common;
use grown_test_support::clap_host::host;
use grown_test_support::clap_host::play;

use common::Dice;
use common::{bundle_path, debug_library, ort_library, serial};
use host::{Blocks, Ev, Library, Plugin, Stereo};
use play::{assert_sane, engine_threads, teardown, teardown_to, AUDIBLE, FIRST_SOUND_TIMEOUT};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Engine threads must be gone this soon after an instance is destroyed.
const JOIN_LIMIT: Duration = Duration::from_millis(200);
const ROOT: u8 = 60;
/// Set in a child process: which scenario to run.
const CHILD: &str = "GROWN_ABUSE_CHILD";
/// Settings that make the first sound quick: little growth, the shortest sound.
/// (Float parameters travel normalized through `clap.params`, integers plain.)
const QUICK: &[(&str, f64)] = &[("Growth", 12.0), ("Length", 0.0)];

fn wait_for_sound(plugin: &mut Plugin) -> Duration {
    play::wait_for_sound(plugin, ROOT)
}

/// A fresh, activated, sounding instance with the quick settings.
fn sounding(library: &Library, sample_rate: f64, block: usize) -> Plugin {
    let mut plugin = library.instantiate();
    plugin.set_params_inactive(QUICK);
    plugin.activate(sample_rate, block);
    wait_for_sound(&mut plugin);
    plugin
}

/// Loads ONNX Runtime in this process (a quick instance, then dropped) and
/// returns the engine-named thread count with no instance alive.
fn warm_runtime(library: &Library) -> usize {
    let plugin = sounding(library, 48_000.0, 256);
    drop(plugin);
    std::thread::sleep(Duration::from_millis(100));
    engine_threads()
}

/// A random MIDI storm: note-ons, duplicate note-ons, note-offs for notes that
/// never started, and parameter changes, in time order over `frames`.
fn midi_storm(dice: &mut Dice, plugin: &Plugin, count: usize, frames: usize) -> Vec<Ev> {
    let mut times: Vec<usize> = (0..count)
        .map(|_| dice.below(frames as u64) as usize)
        .collect();
    times.sort_unstable();
    let gain = plugin.param("Gain");
    times
        .into_iter()
        .map(|t| {
            let key = dice.below(128) as u8;
            match dice.below(10) {
                0..=3 => Ev::on(t, key),
                4 => Ev::on(t, ROOT), // duplicates of one key pile up
                5..=8 => Ev::off(t, key),
                _ => Ev::param(t, gain.id, gain.min + dice.unit() * (gain.max - gain.min)),
            }
        })
        .collect()
}

/// Releases every key and checks the plugin falls silent (no stuck voice).
fn all_notes_off_and_silent(plugin: &mut Plugin, what: &str) {
    let offs: Vec<Ev> = (0..128).map(|k| Ev::off(0, k as u8)).collect();
    let block = plugin.max_block;
    let release = plugin.render(plugin.seconds(2.0), &offs, Blocks::Fixed(block));
    assert_sane(&release, what);
    let tail = plugin.render(plugin.seconds(0.2), &[], Blocks::Fixed(block));
    assert!(
        tail.peak() < 1e-5,
        "{what}: still sounding (peak {}) 2 s after releasing every key",
        tail.peak()
    );
}

// ----------------------------------------------------------------------------
// Abuse scenarios; each takes a library so it can run on both builds.

/// Random block sizes 1..=8192 changing on every call, at several sample rates
/// with reactivation in between, under a MIDI storm.
fn random_blocks_and_rates(library: &Library) {
    let mut dice = Dice(1);
    let mut plugin = sounding(library, 48_000.0, 8192);
    for &rate in &[44_100.0, 96_000.0, 22_050.0, 192_000.0, 48_000.0] {
        plugin.activate(rate, 8192);
        let sizes: Vec<usize> = (0..64).map(|_| 1 + dice.below(8192) as usize).collect();
        let frames = plugin.seconds(1.5);
        let events = midi_storm(&mut dice, &plugin, 300, frames);
        let out = plugin.render(frames, &events, Blocks::Cycle(&sizes));
        assert_sane(&out, &format!("random blocks at {rate} Hz"));
        assert!(out.peak() > AUDIBLE, "silent at {rate} Hz");
    }
    all_notes_off_and_silent(&mut plugin, "after random blocks");
}

/// 10 000 random MIDI events over 20 s, then every key released.
fn ten_thousand_midi_events(library: &Library) {
    let mut dice = Dice(2);
    let mut plugin = sounding(library, 48_000.0, 512);
    let frames = plugin.seconds(20.0);
    let events = midi_storm(&mut dice, &plugin, 10_000, frames);
    let out = plugin.render(frames, &events, Blocks::Fixed(512));
    assert_sane(&out, "MIDI storm");
    assert!(out.peak() > AUDIBLE, "the MIDI storm made no sound");
    all_notes_off_and_silent(&mut plugin, "after the MIDI storm");
}

/// Every parameter automated to a random value on every sample while notes play.
fn automation_on_every_sample(library: &Library) {
    let mut dice = Dice(3);
    let mut plugin = sounding(library, 48_000.0, 512);
    let params = plugin.param_list.clone();
    let frames = 4096;
    let mut events = vec![Ev::on(0, ROOT), Ev::on(0, ROOT + 7)];
    for t in 0..frames {
        for p in &params {
            let mut v = p.min + dice.unit() * (p.max - p.min);
            if p.max - p.min > 1.0 {
                v = v.round();
            }
            events.push(Ev::param(t, p.id, v));
        }
    }
    let out = plugin.render(frames, &events, Blocks::Fixed(512));
    assert_sane(&out, "automation on every sample");
    // Extreme values held for a while: parameters at their minimum, then maximum.
    for end in [0.0, 1.0] {
        let events: Vec<Ev> = params
            .iter()
            .map(|p| Ev::param(0, p.id, p.min + end * (p.max - p.min)))
            .collect();
        let out = plugin.render(plugin.seconds(1.0), &events, Blocks::Fixed(512));
        assert_sane(&out, &format!("every parameter at {end}"));
    }
}

/// Activate/deactivate 200 times at random rates and maximum block sizes.
fn activation_churn(library: &Library) -> Duration {
    let mut dice = Dice(4);
    let mut plugin = sounding(library, 48_000.0, 512);
    let rates = [22_050.0, 44_100.0, 48_000.0, 88_200.0, 96_000.0, 192_000.0];
    let start = Instant::now();
    for i in 0..200 {
        let rate = rates[dice.below(rates.len() as u64) as usize];
        let block = 1 + dice.below(8192) as usize;
        plugin.activate(rate, block);
        if i % 10 == 0 {
            let out = plugin.render(block.min(256), &[Ev::on(0, ROOT)], Blocks::Fixed(block));
            assert_sane(&out, "activation churn");
        }
        plugin.deactivate();
    }
    let took = start.elapsed();
    plugin.activate(48_000.0, 512);
    let out = plugin.render(plugin.seconds(0.3), &[Ev::on(0, ROOT)], Blocks::Fixed(512));
    assert_sane(&out, "after activation churn");
    assert!(out.peak() > AUDIBLE, "silent after 200 reactivations");
    took
}

// ----------------------------------------------------------------------------
// Tests against the release bundle.

#[test]
fn random_block_sizes_and_sample_rate_changes() {
    let _serial = serial();
    random_blocks_and_rates(&Library::load(&bundle_path()));
}

#[test]
fn ten_thousand_random_midi_events_leave_no_stuck_voice() {
    let _serial = serial();
    ten_thousand_midi_events(&Library::load(&bundle_path()));
}

#[test]
fn automating_every_parameter_on_every_sample() {
    let _serial = serial();
    automation_on_every_sample(&Library::load(&bundle_path()));
}

#[test]
fn two_hundred_activations() {
    let _serial = serial();
    let took = activation_churn(&Library::load(&bundle_path()));
    eprintln!("200 activate/deactivate cycles: {took:?}");
    assert!(took < Duration::from_secs(20), "200 cycles took {took:?}");
}

#[test]
fn eight_instances_share_one_runtime_and_tear_down_quickly() {
    let _serial = serial();
    let library = Library::load(&bundle_path());
    let before = warm_runtime(&library);
    let start = Instant::now();
    let mut plugins: Vec<Plugin> = (0..8)
        .map(|seed| {
            let mut p = library.instantiate();
            let mut params = QUICK.to_vec();
            params.push(("Seed", seed as f64 + 1.0));
            p.set_params_inactive(&params);
            p.activate(48_000.0, 256);
            p
        })
        .collect();
    for p in &mut plugins {
        wait_for_sound(p);
    }
    eprintln!("8 instances sounding after {:?}", start.elapsed());
    assert_eq!(
        engine_threads(),
        before + 8,
        "one engine thread per instance"
    );
    let outputs: Vec<Stereo> = plugins
        .iter_mut()
        .map(|p| p.render(p.seconds(0.3), &[Ev::on(0, ROOT)], Blocks::Fixed(256)))
        .collect();
    for (i, out) in outputs.iter().enumerate() {
        assert_sane(out, &format!("instance {i}"));
        assert!(out.peak() > AUDIBLE, "instance {i} silent");
    }
    assert!(
        outputs[0] != outputs[1],
        "instances with different seeds play identical samples"
    );
    let mut worst = Duration::ZERO;
    for (i, p) in plugins.into_iter().enumerate() {
        worst = worst.max(teardown_to(p, before + 7 - i));
    }
    eprintln!("slowest of 8 teardowns: {worst:?}");
    assert_eq!(engine_threads(), before, "engine threads left behind");
    assert!(worst < JOIN_LIMIT, "a teardown took {worst:?}");
}

#[test]
fn teardown_while_the_engine_is_mid_step() {
    let _serial = serial();
    let library = Library::load(&bundle_path());
    let baseline = warm_runtime(&library);
    let mut times = Vec::new();
    for wait_ms in [0u64, 10, 30, 150, 400] {
        let mut plugin = library.instantiate();
        // Long growth of a long sound: the engine is busy stepping for seconds.
        plugin.set_params_inactive(&[("Growth", 1024.0), ("Length", 1.0)]);
        plugin.activate(48_000.0, 512);
        plugin.render(512, &[Ev::on(0, ROOT)], Blocks::Fixed(512));
        std::thread::sleep(Duration::from_millis(wait_ms));
        let took = teardown_to(plugin, baseline);
        times.push((wait_ms, took));
    }
    eprintln!("teardown after (ms since activation, time to join): {times:?}");
    assert_eq!(engine_threads(), baseline, "engine threads left behind");
    // Right after activation the engine is loading the model (ONNX Runtime's
    // session creation cannot be interrupted, but takes ~10-40 ms); later it is
    // inside a step, which the plugin's drop terminates (`nca::StepCancel`).
    for (wait_ms, took) in times {
        assert!(
            took < JOIN_LIMIT,
            "teardown {wait_ms} ms after activation took {took:?}"
        );
    }
}

#[test]
fn corrupt_states_are_refused_and_the_sound_stays() {
    let _serial = serial();
    let library = Library::load(&bundle_path());
    let mut plugin = sounding(&library, 48_000.0, 512);
    let good = plugin.save_state();
    let probe = |p: &mut Plugin| {
        let out = p.render(
            p.seconds(0.3),
            &[Ev::on(0, ROOT), Ev::off(9000, ROOT)],
            Blocks::Fixed(512),
        );
        p.render_silence(p.seconds(0.6));
        out
    };
    plugin.render_silence(plugin.seconds(1.0));
    // The same probe for SETTLE_QUIET: growth has finished (the early
    // generation is followed by the finished one) and no tail is left.
    let mut before = probe(&mut plugin);
    let start = Instant::now();
    let mut unchanged_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let again = probe(&mut plugin);
        if play::max_diff(&again, &before) > play::SAME_SOUND {
            unchanged_since = Instant::now();
        } else if unchanged_since.elapsed() >= play::SETTLE_QUIET {
            break;
        }
        assert!(
            start.elapsed() < FIRST_SOUND_TIMEOUT,
            "the sound never settled"
        );
        before = again;
    }
    let mut dice = Dice(5);
    let random: Vec<u8> = (0..4096).map(|_| dice.roll() as u8).collect();
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(&good[8..]);
    let mut lying = 100u64.to_le_bytes().to_vec();
    lying.extend_from_slice(b"{\"version\":");
    let mut not_json = 9u64.to_le_bytes().to_vec();
    not_json.extend_from_slice(b"not json!");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("three bytes", vec![1, 2, 3]),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("random bytes", random),
        ("huge length", huge),
        ("length past the end", lying),
        ("not JSON", not_json),
    ];
    for (what, bytes) in &cases {
        assert!(!plugin.try_load_state(bytes), "{what}: accepted");
        let now = probe(&mut plugin);
        assert_sane(&now, what);
        assert!(
            now == before,
            "{what}: the sound changed after a refused state"
        );
    }
    // A state that parses but holds nonsense: clamped, and the instance plays.
    let json = String::from_utf8_lossy(&good[8..]).into_owned();
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["version"] = "99.0.0".into();
    value["params"]["growth"] = serde_json::json!({"i32": 2_000_000_000});
    value["params"]["gain"] = serde_json::json!({"f32": 1e30});
    value["params"]["length"] = serde_json::json!({"f32": -5.0});
    value["params"]["polyphony"] = serde_json::json!({"string": "lots"});
    value["params"]["from-the-future"] = serde_json::json!({"f32": 1.0});
    value["fields"]["editor-size"] = "[0,0]".into();
    value["fields"]["model-path"] = "12".into();
    let payload = serde_json::to_vec(&value).unwrap();
    let mut future = (payload.len() as u64).to_le_bytes().to_vec();
    future.extend_from_slice(&payload);
    assert!(
        plugin.try_load_state(&future),
        "a readable future state was refused"
    );
    let growth = plugin.param("Growth");
    assert_eq!(plugin.param_value(growth.id), growth.max);
    let gain = plugin.param("Gain");
    assert!((plugin.param_value(gain.id) - gain.max).abs() < 1e-6);
    plugin.activate(48_000.0, 512);
    let out = probe(&mut plugin);
    assert_sane(&out, "future state");
}

// ----------------------------------------------------------------------------
// Child processes: the allocation checker and the broken inputs.

/// Runs `scenario` in a child process with extra environment; returns its stderr
/// after checking it passed.
fn run_child(scenario: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_scenario",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, scenario)
    .env_remove("ORT_DYLIB_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("could not run the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child scenario {scenario} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stderr
}

/// The entry point of every child process (does nothing in a normal run).
#[test]
fn child_scenario() {
    let Ok(scenario) = std::env::var(CHILD) else {
        return;
    };
    let library = std::env::var_os("GROWN_ABUSE_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(bundle_path);
    let library = Library::load(&library);
    match scenario.as_str() {
        "alloc" => {
            random_blocks_and_rates(&library);
            ten_thousand_midi_events(&library);
            automation_on_every_sample(&library);
            activation_churn(&library);
        }
        "silent" => broken_plays_silence(&library),
        // A short full lifecycle, small enough to run under valgrind (leak check).
        "lifecycle" => {
            for _ in 0..2 {
                let mut plugin = sounding(&library, 48_000.0, 512);
                let out = plugin.render(4800, &[Ev::on(0, ROOT)], Blocks::Fixed(512));
                assert_sane(&out, "lifecycle");
                plugin.activate(44_100.0, 256);
                drop(plugin);
            }
        }
        "fallback" => broken_falls_back(&library),
        other => panic!("unknown scenario {other}"),
    }
}

/// State that points the instance at the files in `GROWN_ABUSE_MODEL` /
/// `GROWN_ABUSE_VOCODER` (either may be unset).
fn instance_with_files(library: &Library) -> Plugin {
    let mut plugin = library.instantiate();
    let field = |var: &str| {
        std::env::var(var)
            .ok()
            .map(|p| serde_json::to_string(&Some(p)).unwrap())
    };
    play::load_edited_state(&mut plugin, |state| {
        if let Some(model) = field("GROWN_ABUSE_MODEL") {
            state["fields"]["model-path"] = model.into();
        }
        if let Some(vocoder) = field("GROWN_ABUSE_VOCODER") {
            state["fields"]["vocoder-path"] = vocoder.into();
            state["params"]["vocoder"] = serde_json::json!({"string": "bigvgan"});
        }
    });
    plugin.set_params_inactive(QUICK);
    plugin
}

/// The engine cannot make any sound: the output must be silence, finite, for a while.
fn broken_plays_silence(library: &Library) {
    let mut plugin = instance_with_files(library);
    plugin.activate(48_000.0, 512);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let out = plugin.render(
            4800,
            &[Ev::on(0, ROOT), Ev::off(4000, ROOT)],
            Blocks::Fixed(512),
        );
        assert_sane(&out, "broken input");
        assert_eq!(
            out.peak(),
            0.0,
            "sound from an instance that cannot grow one"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = teardown(plugin);
    assert!(took < JOIN_LIMIT, "teardown took {took:?}");
}

/// The broken file is refused and the built-in model (or vocoder) plays.
fn broken_falls_back(library: &Library) {
    let mut plugin = instance_with_files(library);
    plugin.activate(48_000.0, 512);
    wait_for_sound(&mut plugin);
    let out = plugin.render(48_000, &[Ev::on(0, ROOT)], Blocks::Fixed(512));
    assert_sane(&out, "fallback");
    assert!(out.peak() > AUDIBLE);
}

#[test]
fn debug_build_never_allocates_under_abuse() {
    let _serial = serial();
    let library = debug_library();
    let ort = ort_library();
    run_child(
        "alloc",
        &[
            ("GROWN_ABUSE_LIBRARY", library.as_os_str()),
            ("ORT_DYLIB_PATH", ort.as_os_str()),
        ],
    );
}

/// A scratch folder for broken files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("grown-abuse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Checks that `log` contains every one of `wanted`.
fn assert_logged(log: &str, what: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(
            log.contains(w),
            "{what}: the log does not say {w:?}:\n{log}"
        );
    }
}

#[test]
fn missing_or_foreign_onnx_runtime_is_a_message_and_silence() {
    let _serial = serial();
    let missing = Path::new("/no/such/dir/libonnxruntime.so");
    let log = run_child("silent", &[("ORT_DYLIB_PATH", missing.as_os_str())]);
    assert_logged(
        &log,
        "missing runtime",
        &[
            "ONNX Runtime not found",
            "/no/such/dir",
            "cargo xtask fetch-ort",
        ],
    );
    // A real shared library that is not ONNX Runtime.
    let foreign = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.is_file())
    .expect("libz.so.1 not found");
    let log = run_child("silent", &[("ORT_DYLIB_PATH", foreign.as_os_str())]);
    assert_logged(
        &log,
        "foreign library",
        &["could not load ONNX Runtime from", "libz.so"],
    );
    // A file that is not a library at all.
    let d = scratch("ort");
    let text = d.join("libonnxruntime.so.1.31.1");
    std::fs::write(&text, b"not a library").unwrap();
    let log = run_child("silent", &[("ORT_DYLIB_PATH", text.as_os_str())]);
    assert_logged(&log, "text file", &["could not load ONNX Runtime from"]);
}

#[test]
fn broken_model_files_fall_back_to_the_built_in_model_with_a_message() {
    use grown_test_support::onnx::{
        nca_builder, nca_dims, nca_meta, nca_model, ModelBuilder, Rule, DOUBLE, FLOAT,
    };
    let _serial = serial();
    let ort = ort_library();
    let d = scratch("models");
    let real = grown::grow::model::DEFAULT_MODEL;
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut future = nca_builder(4, 80, Rule::Conv);
    future.meta("grown.contract", "7");
    let mut wrong_names = ModelBuilder::default();
    wrong_names
        .input("x", FLOAT, &nca_dims(1, 4, 80))
        .input("update_mask", FLOAT, &nca_dims(1, 1, 80))
        .output("next_state", FLOAT, &nca_dims(1, 4, 80))
        .node("Mul", &["x", "update_mask"], &["next_state"], &[]);
    nca_meta(&mut wrong_names, 4, 80);
    let mut wrong_shape = nca_builder(4, 80, Rule::Conv);
    wrong_shape.meta("grown.channels", "6");
    let mut wrong_dtype = ModelBuilder::default();
    wrong_dtype
        .input("state", DOUBLE, &nca_dims(1, 4, 80))
        .input("update_mask", FLOAT, &nca_dims(1, 1, 80))
        .output("next_state", DOUBLE, &nca_dims(1, 4, 80))
        .node("Identity", &["state"], &["next_state"], &[]);
    nca_meta(&mut wrong_dtype, 4, 80);
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        (
            "missing",
            d.join("nope.onnx"),
            vec!["model file not found", "nope.onnx"],
        ),
        (
            "truncated",
            write("cut.onnx", &real[..real.len() / 2]),
            vec!["not an ONNX model", "truncated"],
        ),
        (
            "text",
            write("text.onnx", b"hello, I am not a model"),
            vec!["not an ONNX model"],
        ),
        (
            "future contract",
            write("future.onnx", &future.build()),
            vec!["contract version 7", "update Grown"],
        ),
        (
            "wrong input names",
            write("names.onnx", &wrong_names.build()),
            vec!["unexpected input `x`"],
        ),
        (
            "wrong shape",
            write("shape.onnx", &wrong_shape.build()),
            vec!["axis 1 must be 6"],
        ),
        (
            "wrong dtype",
            write("dtype.onnx", &wrong_dtype.build()),
            vec!["input `state` must be float32"],
        ),
    ];
    for (what, path, wanted) in cases {
        let log = run_child(
            "fallback",
            &[
                ("ORT_DYLIB_PATH", ort.as_os_str()),
                ("GROWN_ABUSE_MODEL", path.as_os_str()),
            ],
        );
        let mut all = wanted.clone();
        all.push("playing the built-in model instead");
        assert_logged(&log, what, &all);
    }
    // A model that loads but grows NaN: nothing valid to play, so silence.
    let nan = write("nan.onnx", &nca_model(4, 80, Rule::Poison));
    let log = run_child(
        "silent",
        &[
            ("ORT_DYLIB_PATH", ort.as_os_str()),
            ("GROWN_ABUSE_MODEL", nan.as_os_str()),
        ],
    );
    assert_logged(
        &log,
        "NaN model",
        &["growth stopped", "kept the previous state"],
    );
}

#[test]
fn a_vocoder_with_another_mel_analysis_is_refused() {
    let _serial = serial();
    let ort = ort_library();
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/testdata/tiny_vocoder.onnx");
    let bytes = std::fs::read(&tiny).unwrap();
    // Same length edit inside the metadata JSON: fmax 8000 → 7000.
    let needle = b"\"fmax\":8000.0";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("tiny vocoder has no fmax 8000");
    let mut edited = bytes.clone();
    // `"fmax":` is 7 bytes; the 8 that follows becomes a 7.
    edited[at + 7] = b'7';
    let d = scratch("vocoder");
    let path = d.join("other_mel.onnx");
    std::fs::write(&path, &edited).unwrap();
    let log = run_child(
        "fallback",
        &[
            ("ORT_DYLIB_PATH", ort.as_os_str()),
            ("GROWN_ABUSE_VOCODER", path.as_os_str()),
        ],
    );
    assert_logged(
        &log,
        "mel mismatch",
        &[
            "refused vocoder",
            "mel analysis differs",
            "fmax 8000 vs 7000",
        ],
    );
}
