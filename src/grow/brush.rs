//! The editor's damage brush: dabs travel to the engine through a lock-free
//! queue and are applied by [`crate::grow::Grower::erase`] between steps.

/// One dab of the editor's damage brush: an ellipse in fractions of the
/// spectrogram, so it does not depend on the grid size the engine has now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BrushStroke {
    /// Centre on the mel axis, 0 (lowest band) ..1 (highest).
    pub mel: f32,
    /// Centre on the time axis, 0..1 of the sound (wraps: time is circular).
    pub t: f32,
    /// Half-height as a fraction of the mel axis.
    pub radius_mel: f32,
    /// Half-width as a fraction of the time axis.
    pub radius_t: f32,
}

/// Editor end of the brush queue.
pub type BrushProducer = rtrb::Producer<BrushStroke>;
/// Engine end of the brush queue.
pub type BrushConsumer = rtrb::Consumer<BrushStroke>;

/// Dabs the brush queue holds; a drag makes one per editor frame, and the
/// engine drains the queue at least every idle wait (10 ms), so this never fills
/// in practice (a full queue drops dabs, it never blocks the editor).
pub const BRUSH_QUEUE: usize = 256;

/// The lock-free (SPSC ring) queue from the editor's damage brush to the engine.
pub fn brush_queue() -> (BrushProducer, BrushConsumer) {
    rtrb::RingBuffer::new(BRUSH_QUEUE)
}
