//! The live spectrogram: the NCA's visible channel as an image (magma
//! colours, high frequencies at the top), a mel-scaled frequency axis with Hz
//! labels, a time axis in seconds, the playheads of sounding voices, and the
//! damage brush.
//!
//! Everything here is pure geometry and colour except [`SpectrogramView::show`],
//! so the mapping between the picture and the engine's cells is unit tested.

use crate::dsp::mel::{hz_to_mel, MelConfig, Spectrogram};
use crate::grow::{BrushProducer, BrushStroke};
use crate::picture;
use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, TextureHandle, Vec2};

/// Colour of level `x` in 0..1: the shared colour map ([`crate::picture::magma`]).
pub fn magma(x: f32) -> Color32 {
    let [r, g, b] = picture::magma(x);
    Color32::from_rgb(r, g, b)
}

/// Rows of the `stft-ms` picture: enough for its log2 axis to look smooth.
const STFT_PICTURE_ROWS: usize = 256;
/// Ink gain of the `stft-ms` picture; the CLI's PNG uses the same.
const STFT_PICTURE_GAIN: f32 = 0.4;

/// Converts a spectrogram into RGBA texels, highest mel band in the top row,
/// with the level mapping `grown render --png` uses ([`picture::level_colour`]).
pub fn to_pixels(spec: &Spectrogram, out: &mut Vec<Color32>) {
    out.clear();
    let (rows, cols) = (spec.n_mels, spec.frames);
    if rows == 0 || cols == 0 || spec.data.len() < rows * cols {
        return;
    }
    let max = picture::loudest(spec);
    out.reserve(rows * cols);
    for mel in (0..rows).rev() {
        for &v in &spec.data[mel * cols..(mel + 1) * cols] {
            let [r, g, b] = picture::level_colour(v, max);
            out.push(Color32::from_rgb(r, g, b));
        }
    }
}

/// Height (0 at the bottom, 1 at the top) at which frequency `hz` sits: the
/// position of the mel band whose centre is `hz`, on the Slaney mel scale
/// the model's bands use. `None` outside the bands.
pub fn hz_to_fraction(hz: f32, mel: &MelConfig) -> Option<f32> {
    let n = mel.n_mels;
    if n == 0 {
        return None;
    }
    let (lo, hi) = (hz_to_mel(mel.fmin as f64), hz_to_mel(mel.fmax as f64));
    if hi <= lo {
        return None;
    }
    // Band i (0-based) is centred at lo + (i + 1) * step.
    let step = (hi - lo) / (n + 1) as f64;
    let band = (hz_to_mel(hz as f64) - lo) / step - 1.0;
    let frac = ((band + 0.5) / n as f64) as f32;
    (0.0..=1.0).contains(&frac).then_some(frac)
}

/// Frequencies labelled on the axis, thinned out so labels do not overlap.
const HZ_TICKS: [f32; 12] = [
    50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0, 11000.0,
];

/// "500 Hz", "2 kHz", "2.5 kHz".
pub fn hz_label(hz: f32) -> String {
    if hz >= 1000.0 {
        let k = hz / 1000.0;
        if (k - k.round()).abs() < 1e-3 {
            format!("{k:.0} kHz")
        } else {
            format!("{k:.1} kHz")
        }
    } else {
        format!("{hz:.0} Hz")
    }
}

/// Tick spacing in seconds for a sound of `duration` seconds: about 4–10 ticks.
pub fn time_tick(duration: f32) -> f32 {
    [0.1, 0.25, 0.5, 1.0, 2.0]
        .into_iter()
        .find(|t| duration / t <= 10.0)
        .unwrap_or(5.0)
}

/// The dab for a pointer at `pos` over the image `rect`, with a brush of
/// `radius` as a fraction of the image height (the dab is round on screen).
pub fn stroke_at(rect: Rect, pos: Pos2, radius: f32) -> Option<BrushStroke> {
    if rect.width() <= 0.0 || rect.height() <= 0.0 || !rect.contains(pos) {
        return None;
    }
    let radius = radius.clamp(0.0, 1.0);
    Some(BrushStroke {
        mel: (rect.bottom() - pos.y) / rect.height(),
        t: (pos.x - rect.left()) / rect.width(),
        radius_mel: radius,
        radius_t: radius * rect.height() / rect.width(),
    })
}

/// Dabs along a drag from `from` to `to`, spaced half a radius apart so a
/// fast drag erases a continuous stroke; at most `max` of them.
pub fn strokes_along(
    rect: Rect,
    from: Pos2,
    to: Pos2,
    radius: f32,
    max: usize,
) -> Vec<BrushStroke> {
    let spacing = (radius * rect.height() * 0.5).max(1.0);
    let n = ((to - from).length() / spacing)
        .ceil()
        .clamp(1.0, max.max(1) as f32) as usize;
    (1..=n)
        .filter_map(|i| stroke_at(rect, from + (to - from) * (i as f32 / n as f32), radius))
        .collect()
}

/// Width of the frequency labels left of the image.
const AXIS_LEFT: f32 = 52.0;
/// Height of the time labels under the image.
const AXIS_BOTTOM: f32 = 18.0;
/// Most dabs sent per editor frame, so a wild drag cannot flood the queue.
const MAX_DABS_PER_FRAME: usize = 24;

/// The spectrogram widget's state, kept while the editor lives (the texture
/// only while a window is open: it belongs to that window's egui context).
pub struct SpectrogramView {
    /// GPU copy of the last snapshot; `None` until the first frame of a window.
    texture: Option<TextureHandle>,
    /// Texels of the snapshot being converted (handed to egui on upload).
    pixels: Vec<Color32>,
    /// Grid size of the last snapshot, for the time axis and playheads.
    grid: (usize, usize),
    /// Pointer position of the previous frame of a drag, to fill gaps.
    last_drag: Option<Pos2>,
    /// Dabs the engine queue refused because it was full (shown, never blocking).
    pub dropped: u64,
}

impl SpectrogramView {
    pub fn new() -> Self {
        Self {
            texture: None,
            pixels: Vec::new(),
            grid: (0, 0),
            last_drag: None,
            dropped: 0,
        }
    }

    /// Drops the texture when the window closes.
    pub fn close(&mut self) {
        self.texture = None;
        self.last_drag = None;
    }

    /// Uploads `spec` when `fresh` (or when there is no texture yet). An
    /// `stft-ms` model's snapshot stacks its four channels, which a magma
    /// image of log-mel levels cannot show: it gets the research's CMYK
    /// picture instead (`stft_ms::stft_ms_picture`, log2 frequency axis).
    pub fn update(&mut self, ctx: &egui::Context, spec: &Spectrogram, fresh: bool, stft: bool) {
        if !fresh && self.texture.is_some() {
            return;
        }
        let rows = if stft {
            self.pixels.clear();
            let bins = spec.n_mels / crate::dsp::stft_ms::VISIBLE_CHANNELS;
            let rgba = crate::dsp::stft_ms::stft_ms_picture(
                &spec.data,
                bins,
                spec.frames,
                STFT_PICTURE_ROWS,
                STFT_PICTURE_GAIN,
            );
            self.pixels.extend(
                rgba.chunks_exact(4)
                    .map(|p| Color32::from_rgba_unmultiplied(p[0], p[1], p[2], p[3])),
            );
            STFT_PICTURE_ROWS
        } else {
            to_pixels(spec, &mut self.pixels);
            spec.n_mels
        };
        if self.pixels.is_empty() || spec.frames == 0 {
            return;
        }
        self.grid = (rows, spec.frames);
        let image = egui::ColorImage::new([spec.frames, rows], std::mem::take(&mut self.pixels));
        let options = egui::TextureOptions::LINEAR;
        match &mut self.texture {
            Some(t) => t.set(image, options),
            None => self.texture = Some(ctx.load_texture("grown-spectrogram", image, options)),
        }
    }

    /// Draws the view in a `size` area. `playheads` are seconds; `brush` is
    /// the radius as a fraction of the image height, `None` where the picture's
    /// rows are not the state's rows (the `stft-ms` log2 view), so a dab
    /// would erase somewhere else than where it was drawn.
    #[allow(clippy::too_many_arguments)]
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        size: Vec2,
        mel: Option<&MelConfig>,
        playheads: &[f32],
        brush: Option<f32>,
        queue: &mut BrushProducer,
    ) {
        let (outer, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
        let image = Rect::from_min_max(
            outer.min + Vec2::new(AXIS_LEFT, 0.0),
            outer.max - Vec2::new(0.0, AXIS_BOTTOM),
        );
        let painter = ui.painter_at(outer);
        painter.rect_filled(image, 2.0, Color32::from_rgb(0, 0, 4));
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        if let Some(t) = &self.texture {
            painter.image(t.id(), image, uv, Color32::WHITE);
        }
        let text = ui.visuals().text_color();
        let font = FontId::proportional(11.0);
        let tick = Stroke::new(1.0, text.gamma_multiply(0.6));

        // Frequency axis (needs the model's mel config).
        if let Some(mel) = mel {
            let mut last_y = f32::INFINITY;
            for hz in HZ_TICKS {
                let Some(frac) = hz_to_fraction(hz, mel) else {
                    continue;
                };
                let y = image.bottom() - frac * image.height();
                if last_y - y < 14.0 {
                    continue;
                }
                last_y = y;
                painter.line_segment(
                    [Pos2::new(image.left() - 4.0, y), Pos2::new(image.left(), y)],
                    tick,
                );
                painter.text(
                    Pos2::new(image.left() - 6.0, y),
                    Align2::RIGHT_CENTER,
                    hz_label(hz),
                    font.clone(),
                    text,
                );
            }
        }

        // Time axis and playheads, in seconds of the grown sound.
        let (_, frames) = self.grid;
        let duration = mel.map_or(0.0, |m| {
            frames as f32 * m.hop as f32 / m.sample_rate.max(1) as f32
        });
        if duration > 0.0 {
            let step = time_tick(duration);
            let mut t = 0.0f32;
            while t <= duration + 1e-4 {
                let x = image.left() + t / duration * image.width();
                painter.line_segment(
                    [
                        Pos2::new(x, image.bottom()),
                        Pos2::new(x, image.bottom() + 4.0),
                    ],
                    tick,
                );
                let align = if t == 0.0 {
                    Align2::LEFT_TOP
                } else {
                    Align2::CENTER_TOP
                };
                painter.text(
                    Pos2::new(x, image.bottom() + 4.0),
                    align,
                    format!("{t:.2} s").replace(".00 s", " s"),
                    font.clone(),
                    text,
                );
                t += step;
            }
            let head = Stroke::new(2.0, Color32::from_rgb(120, 230, 255));
            for &s in playheads {
                let x = image.left() + (s / duration).clamp(0.0, 1.0) * image.width();
                painter.line_segment(
                    [Pos2::new(x, image.top()), Pos2::new(x, image.bottom())],
                    head,
                );
            }
        }

        // The damage brush: drag to erase, the automaton regrows it.
        let Some(brush) = brush else {
            self.last_drag = None;
            return;
        };
        let radius_px = brush * image.height();
        if let Some(pos) = response.hover_pos().filter(|p| image.contains(*p)) {
            painter.circle_stroke(pos, radius_px, Stroke::new(1.5, Color32::WHITE));
        }
        let pressed =
            response.is_pointer_button_down_on() && ui.input(|i| i.pointer.primary_down());
        match response.interact_pointer_pos().filter(|_| pressed) {
            Some(pos) if image.contains(pos) => {
                let from = self.last_drag.unwrap_or(pos);
                let dabs = if from == pos {
                    stroke_at(image, pos, brush).into_iter().collect()
                } else {
                    strokes_along(image, from, pos, brush, MAX_DABS_PER_FRAME)
                };
                for dab in dabs {
                    if queue.push(dab).is_err() {
                        self.dropped += 1;
                    }
                }
                self.last_drag = Some(pos);
            }
            _ => self.last_drag = None,
        }
    }
}

impl Default for SpectrogramView {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_put_high_bands_on_top_and_scale_to_the_loudest_cell() {
        let mut s = Spectrogram::new(2, 3);
        // Band 0 (low) quiet, band 1 (high) loud.
        s.data = vec![-20.0, -20.0, -20.0, 1.0, 1.0, 1.0];
        let mut px = Vec::new();
        to_pixels(&s, &mut px);
        assert_eq!(px.len(), 6);
        assert_eq!(px[0], magma(1.0), "top row is the high band");
        assert_eq!(px[5], magma(0.0));
        s.data[0] = f32::NAN;
        to_pixels(&s, &mut px);
        assert_eq!(px[3], magma(0.0));
        to_pixels(&Spectrogram::default(), &mut px);
        assert!(px.is_empty());
    }

    #[test]
    fn mel_axis_matches_the_band_centres() {
        let mel = MelConfig::bigvgan_22k();
        let n = mel.n_mels as f64;
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
        // The centre of band 40 sits at fraction 40.5 / 80.
        let centre = crate::dsp::mel::mel_to_hz(lo + 41.0 * (hi - lo) / (n + 1.0)) as f32;
        let f = hz_to_fraction(centre, &mel).unwrap();
        assert!((f - 40.5 / 80.0).abs() < 1e-4, "{f}");
        // Monotonic, and mel-scaled, not linear: 500 Hz is 1/16 of 8 kHz but
        // sits more than twice as high (Slaney: ~7.5 of ~45 mels).
        let a = hz_to_fraction(500.0, &mel).unwrap();
        let b = hz_to_fraction(1000.0, &mel).unwrap();
        let c = hz_to_fraction(4000.0, &mel).unwrap();
        assert!(a < b && b < c);
        assert!(a > 2.0 / 16.0, "{a}");
        assert_eq!(hz_to_fraction(11000.0, &mel), None);
        assert_eq!(hz_label(500.0), "500 Hz");
        assert_eq!(hz_label(2000.0), "2 kHz");
        assert_eq!(hz_label(2500.0), "2.5 kHz");
        assert_eq!(time_tick(3.0), 0.5);
        assert_eq!(time_tick(0.5), 0.1);
        assert_eq!(time_tick(8.0), 1.0);
    }

    #[test]
    fn pointer_maps_to_cells_and_the_dab_is_round_on_screen() {
        let rect = Rect::from_min_size(Pos2::new(100.0, 50.0), Vec2::new(400.0, 200.0));
        let s = stroke_at(rect, Pos2::new(200.0, 100.0), 0.1).unwrap();
        assert!((s.t - 0.25).abs() < 1e-6);
        assert!((s.mel - 0.75).abs() < 1e-6, "top of the image is high mel");
        assert!((s.radius_mel - 0.1).abs() < 1e-6);
        // 20 px high and 20 px wide.
        assert!((s.radius_t * 400.0 - 20.0).abs() < 1e-4);
        assert_eq!(stroke_at(rect, Pos2::new(50.0, 100.0), 0.1), None);
        // A fast drag is filled in, up to the cap.
        let dabs = strokes_along(
            rect,
            Pos2::new(110.0, 60.0),
            Pos2::new(490.0, 60.0),
            0.1,
            100,
        );
        assert_eq!(dabs.len(), 38);
        assert!((dabs.last().unwrap().t - 0.975).abs() < 1e-5);
        assert_eq!(
            strokes_along(rect, Pos2::new(110.0, 60.0), Pos2::new(490.0, 60.0), 0.1, 5).len(),
            5
        );
    }
}
