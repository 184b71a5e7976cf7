//! Helpers every CLAP host test shares: where the bundle under test lives.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// The cargo target directory this test binary was built in
/// (`target/<profile>/deps/<test>` → `target`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test binary outside a cargo target directory")
        .to_path_buf()
}

/// The release bundle (`GROWN_CLAP_BUNDLE` overrides it); missing fails the test
/// with the command that builds it, because a skipped host test reads as a pass.
pub fn bundle_path() -> PathBuf {
    let path = std::env::var_os("GROWN_CLAP_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bundled").join("Grown.clap"));
    assert!(
        path.is_file(),
        "\n\n*** {} is missing: build it with `cargo xtask bundle grown --release` \
         before `cargo test` (the CLAP host tests load the real bundle) ***\n",
        path.display()
    );
    path
}

/// One scenario at a time: every instance runs its own engine thread, and parallel
/// engines on a 2-core machine would turn the timing checks into noise.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The ONNX Runtime `cargo xtask fetch-ort` put in the target directory, for
/// child processes that load the debug library outside the bundle.
pub fn ort_library() -> PathBuf {
    let ort = target_dir()
        .join("onnxruntime")
        .join("libonnxruntime.so.1.31.1");
    assert!(
        ort.is_file(),
        "{} is missing: run `cargo xtask fetch-ort`",
        ort.display()
    );
    ort
}

/// SplitMix64 step: the tests' reproducible randomness (a failure names its seed).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Counter-based randomness, so every run of a test plays the same events.
pub struct Dice(pub u64);

impl Dice {
    pub fn roll(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.roll() % n
    }
    pub fn unit(&mut self) -> f64 {
        (self.roll() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The debug-assertion build of the plugin `cargo test` made beside this test
/// binary (allocation checks and the leak check load it).
pub fn debug_library() -> PathBuf {
    let library = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("libgrown.so");
    assert!(library.is_file(), "{} is missing", library.display());
    library
}
