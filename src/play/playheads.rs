//! Where the sounding voices are, for the editor's playhead lines: written by
//! the audio thread once per block, read by the editor.

use std::sync::atomic::{AtomicUsize, Ordering};

use atomic_float::AtomicF32;

use crate::play::voice::MAX_VOICES;

/// Playhead positions of the sounding voices: written by the audio thread
/// once per block (atomics, no allocation), read by the editor to draw them.
/// A read may mix two blocks; that only moves a line by a few milliseconds.
pub struct Playheads {
    /// How many entries of `seconds` are valid.
    pub count: AtomicUsize,
    /// Position of each sounding voice in the grown sound, in seconds.
    pub seconds: [AtomicF32; MAX_VOICES],
}

impl Default for Playheads {
    fn default() -> Self {
        Self {
            count: AtomicUsize::new(0),
            seconds: std::array::from_fn(|_| AtomicF32::new(0.0)),
        }
    }
}

impl Playheads {
    /// Stores the positions (at most [`MAX_VOICES`]).
    pub fn publish(&self, seconds: &[f32]) {
        let n = seconds.len().min(MAX_VOICES);
        for (slot, s) in self.seconds.iter().zip(&seconds[..n]) {
            slot.store(*s, Ordering::Relaxed);
        }
        self.count.store(n, Ordering::Release);
    }

    /// Copies the positions into `out`; returns how many.
    pub fn read(&self, out: &mut [f32; MAX_VOICES]) -> usize {
        let n = self.count.load(Ordering::Acquire).min(MAX_VOICES);
        for (o, slot) in out.iter_mut().zip(&self.seconds[..n]) {
            *o = slot.load(Ordering::Relaxed);
        }
        n
    }
}
