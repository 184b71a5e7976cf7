//! Offline renders of the shipped models, as `grown render` makes them.

use grown::grow::model::NcaModel;
use grown_tools::render::{parse_notes, render, write_stft_ms_png, RenderRequest};

/// The shipped stereo model, grown and played exactly as `grown render
/// --model models/nca/strings_stereo.onnx` does, has a real stereo image.
#[test]
fn shipped_stereo_model_renders_with_side_energy() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = NcaModel::load(&root.join("models/nca/strings_stereo.onnx")).unwrap();
    assert!(model.info.stft.is_some());
    let mut req = RenderRequest::new(
        3,
        model.info.growth_steps,
        parse_notes("60@0.0+0.8").unwrap(),
    );
    req.length_s = 0.4;
    let r = render(model, &req).unwrap();
    let rms = |x: &mut dyn Iterator<Item = f32>| {
        let (s, n) = x.fold((0.0f64, 0usize), |(s, n), v| (s + f64::from(v * v), n + 1));
        (s / n.max(1) as f64).sqrt()
    };
    let pairs = || r.left.iter().zip(&r.right);
    let mid = rms(&mut pairs().map(|(l, r)| 0.5 * (l + r)));
    let side = rms(&mut pairs().map(|(l, r)| 0.5 * (l - r)));
    assert!(mid > 1e-3, "silent render (mid RMS {mid})");
    assert!(side / mid > 0.05, "side/mid {} — a mono copy", side / mid);
    let grid = r.stft_ms.as_ref().unwrap();
    assert_eq!(grid.visible.len(), 4 * 513 * grid.frames);
    let png = std::env::temp_dir().join(format!("grown-stft-ms-{}.png", std::process::id()));
    write_stft_ms_png(&png, grid).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    let _ = std::fs::remove_file(&png);
}
