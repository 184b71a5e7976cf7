//! The fuzz targets' entry points (`fuzz/`), driven by a deterministic mutation
//! loop on stable Rust, so every `cargo test` exercises them even where
//! cargo-fuzz cannot run. Seeds: a valid saved state (raw and with the CLAP
//! length prefix) and the embedded model; mutations: bit flips, interesting
//! bytes, insertions, deletions, truncations, duplicated chunks and extreme
//! numbers spliced into the text. Crashes found by `cargo fuzz` are added to
//! `regressions` below.

use grown_test_support::clap_host::common;

use grown::grow::model::fuzz_metadata;
use grown::state::fuzz_restore;

/// SplitMix64, so a failure names a reproducible iteration.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        common::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Text that breaks number parsing and range checks.
const EXTREMES: &[&str] = &[
    "1e309",
    "-1e309",
    "NaN",
    "-0",
    "4294967296",
    "-2147483649",
    "99999999999999999999",
    "0.0",
    "1e-45",
    "\"\"",
    "null",
    "[]",
    "{}",
    "true",
    "\"\\u0000\"",
    "-1",
];

fn mutate(dice: &mut Dice, input: &mut Vec<u8>) {
    for _ in 0..1 + dice.below(4) {
        let len = input.len();
        match dice.below(8) {
            0 if len > 0 => {
                let i = dice.below(len);
                input[i] ^= 1 << dice.below(8);
            }
            1 if len > 0 => {
                let i = dice.below(len);
                input[i] = [0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'9'][dice.below(7)];
            }
            2 => {
                let i = dice.below(len + 1);
                let n = 1 + dice.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| dice.next() as u8).collect();
                input.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = dice.below(len);
                let n = 1 + dice.below((len - i).min(64));
                input.drain(i..i + n);
            }
            4 => input.truncate(dice.below(len + 1)),
            5 if len > 0 => {
                let i = dice.below(len);
                let n = 1 + dice.below((len - i).min(128));
                let chunk = input[i..i + n].to_vec();
                let at = dice.below(len + 1);
                input.splice(at..at, chunk);
            }
            _ => {
                // Replace a run of digits (a number in JSON, a length in protobuf text).
                let from = dice.below(len + 1);
                let Some(found) = input[from..].iter().position(u8::is_ascii_digit) else {
                    continue;
                };
                let start = from + found;
                let end = input[start..]
                    .iter()
                    .position(|b| !b.is_ascii_digit() && *b != b'.')
                    .map_or(input.len(), |e| start + e);
                let with = EXTREMES[dice.below(EXTREMES.len())].as_bytes().to_vec();
                input.splice(start..end, with);
            }
        }
    }
}

fn framed(json: &[u8]) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json);
    out
}

const STATE_SEED: &[u8] = include_bytes!("../fuzz/corpus/state_restore/valid.json");

#[test]
fn state_restore_survives_mutations() {
    // A seed nice-plug would refuse would only fuzz the JSON parser.
    let mut seed = grown::state::parse_state(STATE_SEED).expect("the seed state does not parse");
    assert!(
        grown::state::repair_untrusted(&mut seed).is_empty(),
        "the seed state needs fixing"
    );
    let seeds = [STATE_SEED.to_vec(), framed(STATE_SEED)];
    let mut dice = Dice(0x5747);
    for i in 0..20_000 {
        let mut input = seeds[i % 2].clone();
        mutate(&mut dice, &mut input);
        if i % 3 == 0 && input.len() >= 8 && i % 2 == 1 {
            // Keep the length prefix honest sometimes, so the JSON is what gets fuzzed.
            let n = (input.len() - 8) as u64;
            input[..8].copy_from_slice(&n.to_le_bytes());
        }
        let result = std::panic::catch_unwind(|| fuzz_restore(&input));
        assert!(
            result.is_ok(),
            "iteration {i}: panic on {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn model_metadata_survives_mutations() {
    let seed = grown::grow::model::DEFAULT_MODEL;
    let mut dice = Dice(0x4f4e4e58);
    for i in 0..4_000 {
        let mut input = seed.to_vec();
        mutate(&mut dice, &mut input);
        let result = std::panic::catch_unwind(|| fuzz_metadata(&input));
        assert!(
            result.is_ok(),
            "iteration {i}: panic ({} bytes)",
            input.len()
        );
    }
}

/// Inputs that once broke a promise (from `cargo fuzz` or the loops above).
#[test]
fn regressions() {
    let cases: [&[u8]; 5] = [b"", b"\0\0\0\0\0\0\0\0", b"{}", b"[]", b"null"];
    for case in cases {
        fuzz_restore(case);
        fuzz_metadata(case);
    }
}
