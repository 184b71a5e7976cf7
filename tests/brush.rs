//! The editor's damage brush: dabs go through the lock-free queue to the
//! grower, erase exactly the cells under the brush, and the automaton regrows
//! them. Needs ONNX Runtime (`cargo xtask fetch-ort` or `ORT_DYLIB_PATH`).

use grown::grow::model::NcaModel;
use grown::grow::nca::Nca;
use grown::grow::{brush_queue, BrushStroke, Grower};
use grown_test_support::onnx::{nca_model, Rule};

/// Cells erased by `stroke` on an `n_mels` × `frames` grid, computed the
/// obvious way (cell centre inside the ellipse, time wrapping) so the
/// engine's row-by-row version is checked against it.
fn expected_mask(stroke: &BrushStroke, n_mels: usize, frames: usize) -> Vec<bool> {
    let (nm, nf) = (n_mels as f32, frames as f32);
    let rm = (stroke.radius_mel * nm).max(0.5);
    let rt = (stroke.radius_t * nf).max(0.5);
    let (cm, ct) = (stroke.mel * nm, stroke.t * nf);
    let mut mask = vec![false; n_mels * frames];
    for mel in 0..n_mels {
        for f in 0..frames {
            let dy = (mel as f32 + 0.5 - cm) / rm;
            // Shortest circular distance in frames.
            let mut dx = (f as f32 + 0.5 - ct).rem_euclid(nf);
            if dx > nf / 2.0 {
                dx -= nf;
            }
            let dx = dx / rt;
            mask[mel * frames + f] = dx * dx + dy * dy < 1.0 - 1e-4;
        }
    }
    mask
}

/// Sends one dab through a fresh brush queue into `g`, checks it is applied
/// once and the queue drains, and returns the cells it should have erased.
fn dab(g: &mut Grower, stroke: BrushStroke, n_mels: usize, frames: usize) -> Vec<bool> {
    let (mut tx, mut rx) = brush_queue();
    tx.push(stroke).unwrap();
    assert_eq!(g.apply_strokes(&mut rx), 1);
    assert_eq!(g.apply_strokes(&mut rx), 0, "the queue is drained");
    expected_mask(&stroke, n_mels, frames)
}

#[test]
fn brush_erases_exactly_the_cells_under_it_across_the_loop_point() {
    let (channels, n_mels, frames) = (4, 16, 24);
    let m = NcaModel::from_bytes(&nca_model(channels, n_mels, Rule::Conv), "test".into()).unwrap();
    let mut g = Grower::new(Nca::new(m));
    g.grow(5, 12, frames, 0.5, 0.0).unwrap();
    assert!(g.nca().state().iter().all(|v| *v != 0.0));

    // Centred on the loop point, so the dab wraps from the end to the start.
    let stroke = BrushStroke {
        mel: 0.5,
        t: 0.02,
        radius_mel: 0.25,
        radius_t: 0.15,
    };
    let mask = dab(&mut g, stroke, n_mels, frames);
    let erased = mask.iter().filter(|m| **m).count();
    assert!(erased > 20, "brush too small to mean anything: {erased}");
    assert!(mask[8 * frames + frames - 1] && mask[8 * frames], "wraps");
    let cells = n_mels * frames;
    for (c, plane) in g.nca().state().chunks_exact(cells).enumerate() {
        for (i, (v, m)) in plane.iter().zip(&mask).enumerate() {
            assert_eq!(
                *v == 0.0,
                *m,
                "channel {c} mel {} frame {}",
                i / frames,
                i % frames
            );
        }
    }

    // Nonsense from a broken editor is ignored, never a panic.
    let (mut tx, mut rx) = brush_queue();
    tx.push(BrushStroke {
        mel: f32::NAN,
        ..stroke
    })
    .unwrap();
    let before = g.nca().state().to_vec();
    g.apply_strokes(&mut rx);
    assert_eq!(g.nca().state(), &before[..]);
}

/// Mean absolute difference between two spectrograms over the masked cells.
fn region_l1(a: &[f32], b: &[f32], mask: &[bool]) -> f32 {
    let (sum, n) = a
        .iter()
        .zip(b)
        .zip(mask)
        .filter(|(_, m)| **m)
        .fold((0.0f32, 0usize), |(s, n), ((x, y), _)| {
            (s + (x - y).abs(), n + 1)
        });
    sum / n.max(1) as f32
}

/// Mean over the brushed bands of |difference of the band's mean level inside
/// the mask|: how far the region's spectral envelope is from the other's.
/// The shipped models grow textures (cells keep moving, as bow noise does), so
/// this, not the cell-by-cell difference, is what "regrown" means audibly.
fn envelope_l1(a: &[f32], b: &[f32], mask: &[bool], frames: usize) -> f32 {
    let (mut total, mut bands) = (0.0f32, 0);
    for (row, m) in mask.chunks_exact(frames).enumerate() {
        let cells: Vec<usize> = (0..frames)
            .filter(|f| m[*f])
            .map(|f| row * frames + f)
            .collect();
        if cells.is_empty() {
            continue;
        }
        let mean = |s: &[f32]| cells.iter().map(|i| s[*i]).sum::<f32>() / cells.len() as f32;
        total += (mean(a) - mean(b)).abs();
        bands += 1;
    }
    total / bands.max(1) as f32
}

#[test]
fn the_default_model_regrows_a_brushed_region_within_its_recommended_steps() {
    let model = NcaModel::load_embedded_default().unwrap();
    let info = model.info.clone();
    let steps = info.growth_steps;
    let frames = info.train_frames;
    let n_mels = info.mel.n_mels;
    let mut g = Grower::new(Nca::new(model));
    let before = g
        .grow(9, steps, frames, info.fire_rate, 0.0)
        .unwrap()
        .clone();

    let stroke = BrushStroke {
        mel: 0.35,
        t: 0.5,
        radius_mel: 0.2,
        radius_t: 0.2,
    };
    let mask = dab(&mut g, stroke, n_mels, frames);
    let cells = n_mels * frames;
    // Zero right after, in every channel (the visible one reads as spec_offset).
    for plane in g.nca().state().chunks_exact(cells) {
        for (v, m) in plane.iter().zip(&mask) {
            if *m {
                assert_eq!(*v, 0.0);
            }
        }
    }
    let damaged = g.spectrogram().clone();
    let wound = envelope_l1(&damaged.data, &before.data, &mask, frames);
    let wound_cells = region_l1(&damaged.data, &before.data, &mask);
    assert!(
        wound > 0.5,
        "the brush changed too little to test regrowth: {wound}"
    );

    // The model's recommended number of steps later:
    let regrown = g
        .grow(9, 2 * steps, frames, info.fire_rate, 0.0)
        .unwrap()
        .clone();
    assert_eq!(g.nca().steps(), 2 * steps);
    let left = envelope_l1(&regrown.data, &before.data, &mask, frames);
    let left_cells = region_l1(&regrown.data, &before.data, &mask);
    eprintln!(
        "brush regrowth after {steps} steps: envelope L1 {wound:.3} → {left:.3}, \
         cell L1 {wound_cells:.3} → {left_cells:.3}"
    );
    // The default model is excerpt-seeded: it restores a passage of its
    // recording, and a hole 40% of the grid wide and high only partly refills
    // from the passage around it (1.88 → 1.36 for the shipped strings, no
    // better by 16× the steps; the noise-seeded model it replaced, a haze,
    // refilled below 0.3×). A model that ignored the damage would stay at 1×.
    assert!(
        left < 0.8 * wound,
        "the region's envelope did not regrow: L1 to the pre-damage content {wound:.3} → {left:.3}"
    );
    // This model grows a moving texture: even undamaged cells drift from
    // their earlier values, so the healed region is compared with the same
    // region of an undamaged twin grown just as long, not with the old cells.
    let mut twin = Grower::new(Nca::new(NcaModel::load_embedded_default().unwrap()));
    let undamaged = twin
        .grow(9, 2 * steps, frames, info.fire_rate, 0.0)
        .unwrap()
        .clone();
    let drift_cells = region_l1(&undamaged.data, &before.data, &mask);
    eprintln!("undamaged twin's cell drift in the same region: {drift_cells:.3}");
    assert!(
        left_cells < wound_cells.max(1.3 * drift_cells),
        "healed cells are further from the old content ({left_cells:.3}) than the wound \
         ({wound_cells:.3}) or 1.3× an undamaged twin's drift ({drift_cells:.3})"
    );
}
