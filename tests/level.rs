//! Loudness calibration (`grown.level_db`): the same model with the key reaches
//! the voices exactly that much louder, and a file without it as it always did.
//!
//! Needs ONNX Runtime: `cargo xtask fetch-ort` (target/onnxruntime) or `ORT_DYLIB_PATH`.

use grown::grow::model::NcaModel;
use grown::grow::nca::Nca;
use grown::grow::Grower;
use grown::play::queue::Generation;
use grown::vocoder::voicing::Voicing;
use grown::vocoder::{Inverter, Vocoder};
use grown_test_support::onnx::{nca_builder, Rule};

/// The generation the voices receive for a test model with (or without) the key:
/// grown, vocoded and filled through the plugin's one voicing path.
fn generation(level_db: Option<&str>) -> Vec<f32> {
    let mut b = nca_builder(4, 80, Rule::Conv);
    if let Some(db) = level_db {
        b.meta("grown.level_db", db);
    }
    let model = NcaModel::from_bytes(&b.build(), "test".into()).expect("test model loads");
    let mel = model.info.mel.clone();
    let mut grower = Grower::new(Nca::new(model));
    grower.grow(7, 12, 32, 0.5, 0.0).expect("grows");
    let mut voicing = Voicing::for_model(grower.nca().info());
    let mut inverter = Inverter::new(mel);
    let voiced = voicing
        .synthesize(&mut grower, Some(&mut inverter as &mut dyn Vocoder))
        .expect("voices");
    let mut slot = Generation::with_capacity(voiced.len);
    voicing.fill(&voiced, &mut slot, 1, true);
    slot.samples[..slot.len].to_vec()
}

#[test]
fn level_db_scales_the_generation_by_exactly_its_gain() {
    let plain = generation(None);
    assert!(
        plain.iter().any(|v| v.abs() > 1e-4),
        "the test model must sound"
    );
    assert_eq!(
        plain,
        generation(Some("0")),
        "0 dB is bit-identical to no key"
    );
    let quieter = generation(Some("-20"));
    assert_eq!(quieter.len(), plain.len());
    for (q, p) in quieter.iter().zip(&plain) {
        assert!(
            (q - 0.1 * p).abs() <= 1e-6 * p.abs().max(1.0),
            "{q} vs 0.1 × {p}"
        );
    }
    let louder = generation(Some("6.0206"));
    for (l, p) in louder.iter().zip(&plain) {
        assert!(
            (l - 2.0 * p).abs() <= 1e-5 * p.abs().max(1.0),
            "{l} vs 2 × {p}"
        );
    }
}

#[test]
fn a_level_beyond_60_db_or_not_a_number_is_refused_with_its_key() {
    for bad in ["61", "-75", "inf", "NaN", "loud"] {
        let mut b = nca_builder(4, 80, Rule::Conv);
        b.meta("grown.level_db", bad);
        let err = NcaModel::from_bytes(&b.build(), "test".into())
            .err()
            .unwrap_or_else(|| panic!("level_db = {bad} was accepted"))
            .to_string();
        assert!(err.contains("grown.level_db"), "{bad}: {err}");
    }
}
