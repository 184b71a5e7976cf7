//! Playing the plugin the way every host test starts (wait for its first sound,
//! open it on a saved project that names other files) and ends (the engine
//! thread gone).

use super::host::{Blocks, Ev, Plugin, Stereo};
use std::time::{Duration, Instant};

/// Output above this peak counts as sound; a grown texture at default gain is far louder.
pub const AUDIBLE: f32 = 1e-3;
/// How long the output must stay the same to count as settled. The engine
/// publishes an early generation a few steps into a growth and the finished
/// one after it (up to ~1.5 s later on a loaded machine), and probes render
/// much faster than real time, so two equal probes in a row prove nothing.
pub const SETTLE_QUIET: Duration = Duration::from_secs(3);
/// Largest sample difference between two probes that still counts as the same
/// sound (−120 dBFS, below 24-bit resolution): consecutive probes of a slow
/// preset differ by rounding (~1e-8), and no growth change is that small.
pub const SAME_SOUND: f32 = 1e-6;
/// How long growth may take to reach its target after a parameter change.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the engine may take to load ONNX Runtime and grow its first sound.
/// `GROWN_ABUSE_TIMEOUT_S` stretches it (under valgrind everything is ~50× slower).
pub const FIRST_SOUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Fails on any non-finite sample or a peak above full scale: the limiter
/// guarantees both whatever the host does.
pub fn assert_sane(audio: &Stereo, what: &str) {
    if let Some(i) = audio.first_non_finite() {
        panic!(
            "{what}: non-finite sample at {i} (left {}, right {})",
            audio.left[i], audio.right[i]
        );
    }
    let peak = audio.peak();
    assert!(peak <= 1.0, "{what}: peak {peak} above full scale");
}

/// Plays `key` now and then until the plugin makes sound; returns how long that
/// took. ONNX Runtime, the model and the vocoder load lazily on the engine
/// thread, so every scenario starts here.
pub fn wait_for_sound(plugin: &mut Plugin, key: u8) -> Duration {
    let limit = std::env::var("GROWN_ABUSE_TIMEOUT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(FIRST_SOUND_TIMEOUT, Duration::from_secs);
    let start = Instant::now();
    let chunk = plugin.seconds(0.1);
    let block = plugin.max_block;
    loop {
        let held = plugin.render(chunk, &[Ev::on(0, key)], Blocks::Fixed(block));
        let released = plugin.render(chunk, &[Ev::off(0, key)], Blocks::Fixed(block));
        assert_sane(&held, "waiting for sound");
        assert_sane(&released, "waiting for sound");
        if held.peak() > AUDIBLE || released.peak() > AUDIBLE {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "no sound {limit:?} after note-on: the engine never delivered a generation \
             (is libonnxruntime.so.1.31.1 beside the plugin? see stderr)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Loads into `plugin` its own saved state after `edit` changed the JSON (its
/// `fields` hold the model and vocoder references, `params` the parameters),
/// as a project saved elsewhere would arrive.
pub fn load_edited_state(plugin: &mut Plugin, edit: impl FnOnce(&mut serde_json::Value)) {
    let state = plugin.save_state();
    // nice-plug frames its JSON with a little-endian u64 length.
    let mut value: serde_json::Value = serde_json::from_slice(&state[8..]).expect("state JSON");
    edit(&mut value);
    let payload = serde_json::to_vec(&value).expect("state JSON");
    let mut bytes = (payload.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    plugin.load_state(&bytes);
}

/// Threads of this process named `grown-engine`. Linux threads inherit their
/// creator's name, so ONNX Runtime's process-wide threads, started from the
/// first engine that loads it, carry the name too: tests that count take a
/// baseline after loading ONNX Runtime once.
pub fn engine_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|name| name.trim() == "grown-engine")
        })
        .count()
}

/// Drops an instance and returns how long until the engine-named thread count
/// is back at `baseline`.
pub fn teardown_to(plugin: Plugin, baseline: usize) -> Duration {
    let start = Instant::now();
    drop(plugin);
    while engine_threads() > baseline && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// Drops an instance and returns how long until its engine thread was gone.
pub fn teardown(plugin: Plugin) -> Duration {
    let before = engine_threads();
    let start = Instant::now();
    drop(plugin);
    while engine_threads() >= before && before > 0 {
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// Sets a parameter by display name to a plain value, at the start of a short render.
pub fn set_param(plugin: &mut Plugin, name: &str, plain: f64) {
    let info = plugin.param(name);
    assert!(
        (info.min..=info.max).contains(&plain),
        "{name} = {plain} is outside {}..{}",
        info.min,
        info.max
    );
    let block = plugin.max_block;
    let out = plugin.render(block, &[Ev::param(0, info.id, plain)], Blocks::Fixed(block));
    assert_sane(&out, name);
    let now = plugin.param_value(info.id);
    assert!(
        (now - plain).abs() < 1e-6,
        "{name} reads back {now} after automating it to {plain}"
    );
}

/// Holds `key` for `hold_s`, releases it and renders the whole release tail,
/// so the next probe starts from silence.
pub fn probe(plugin: &mut Plugin, key: u8, hold_s: f64) -> Stereo {
    let release_s = plugin.param_value(plugin.param("Release").id);
    let hold = plugin.seconds(hold_s);
    let tail = plugin.seconds(release_s.max(0.55) + 0.05);
    let block = plugin.max_block;
    let mut out = plugin.render(hold, &[Ev::on(0, key)], Blocks::Fixed(block));
    let release = plugin.render(tail, &[Ev::off(0, key)], Blocks::Fixed(block));
    out.left.extend(release.left);
    out.right.extend(release.right);
    assert_sane(&out, "probe");
    out
}

/// Largest absolute sample difference of two renders (infinite when their
/// lengths differ).
pub fn max_diff(a: &Stereo, b: &Stereo) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.left
        .iter()
        .chain(&a.right)
        .zip(b.left.iter().chain(&b.right))
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Repeats a probe until it stays the same ([`SAME_SOUND`]) and audible for [`SETTLE_QUIET`]: growth has
/// reached its target and any morph crossfade is over.
pub fn settled_probe(plugin: &mut Plugin, key: u8, hold_s: f64) -> Stereo {
    let start = Instant::now();
    let mut previous = probe(plugin, key, hold_s);
    let mut unchanged_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let next = probe(plugin, key, hold_s);
        if max_diff(&next, &previous) > SAME_SOUND {
            unchanged_since = Instant::now();
        } else if next.peak() > AUDIBLE && unchanged_since.elapsed() >= SETTLE_QUIET {
            return next;
        }
        assert!(
            start.elapsed() < SETTLE_TIMEOUT,
            "the output of note {key} still changes after {SETTLE_TIMEOUT:?} (peak {})",
            next.peak()
        );
        previous = next;
    }
}

/// After a parameter change: waits until the probe differs from `before` (the engine
/// plays the old sound until the new one has grown and been vocoded), then until it
/// settles.
pub fn changed_probe(
    plugin: &mut Plugin,
    before: &Stereo,
    key: u8,
    hold_s: f64,
    what: &str,
) -> Stereo {
    let start = Instant::now();
    while max_diff(&probe(plugin, key, hold_s), before) <= SAME_SOUND {
        assert!(
            start.elapsed() < SETTLE_TIMEOUT,
            "{what} left the samples unchanged for {SETTLE_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    settled_probe(plugin, key, hold_s)
}
