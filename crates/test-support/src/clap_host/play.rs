//! Playing the plugin the way every host test starts (wait for its first sound,
//! open it on a saved project that names other files) and ends (the engine
//! thread gone).

use super::host::{Blocks, Ev, Plugin, Stereo};
use std::time::{Duration, Instant};

/// Output above this peak counts as sound; a grown texture at default gain is far louder.
pub const AUDIBLE: f32 = 1e-3;
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
