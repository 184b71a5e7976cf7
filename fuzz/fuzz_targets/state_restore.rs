//! Saved state from a host: the CLAP framing, the JSON, and the
//! repair (`state::repair_untrusted`) that runs before nice-plug applies it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    grown::state::fuzz_restore(data);
});
