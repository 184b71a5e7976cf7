//! Playing generations from MIDI on the audio thread: the queue that brings
//! them from the engine, the voices that play them, the resampler and
//! envelope inside each voice, the output limiter and the playhead display.
//! Nothing here allocates, locks or blocks once built.

pub mod limiter;
pub mod playheads;
pub mod queue;
pub mod resample;
pub mod voice;
pub mod voices;

pub use limiter::SoftLimiter;
pub use playheads::Playheads;
pub use queue::{generation_queue, Generation, GenerationConsumer, GenerationProducer};
pub use voice::{shape_velocity, Expression, VoiceEnd, VoiceSettings, MAX_VOICES};
pub use voices::Voices;
