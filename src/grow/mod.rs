//! Growing a sound: the automaton and its model, and the [`Grower`] that
//! steps it deterministically to a target with checkpoints and brush damage.

pub mod bank;
pub mod brush;
pub mod grower;
pub mod library;
pub mod model;
pub mod nca;

pub use brush::{brush_queue, BrushConsumer, BrushProducer, BrushStroke, BRUSH_QUEUE};
pub use grower::{
    frames_for, Grower, CHECKPOINT_BUDGET_BYTES, CHECKPOINT_EVERY, DEFAULT_GROWTH, DRIFT_MARGIN,
    MAX_FRAMES, MAX_GROWTH, MIN_FRAMES,
};
