//! Generations of audio travelling from the engine (vocoder) thread to the audio thread.
//!
//! A fixed pool of boxed buffers circulates between two lock-free SPSC rings:
//! `full` carries finished generations to the audio thread, `empty` carries
//! buffers the audio thread is done with back to the engine. The audio thread
//! therefore never allocates or frees: it only moves `Box` pointers. Both rings
//! hold the whole pool, so neither push can fail while only pool buffers
//! circulate.

use rtrb::{Consumer, Producer, RingBuffer};

/// Buffers in flight between the vocoder and the audio thread: one playing, one
/// fading out during a morph, one being written, one spare.
pub const GENERATION_POOL: usize = 4;
/// Longest sound a generation buffer holds: the Length parameter's maximum at the
/// highest vocoder sample rate we accept (48 kHz).
pub const GENERATION_CAPACITY: usize = 8 * 48_000;

/// One vocoded sound, ready for the voices to play.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Mono audio; allocated at pool creation with `capacity_samples` zeros so the
    /// engine can overwrite it without reallocating. Only `..len` is valid.
    pub samples: Vec<f32>,
    /// Number of valid samples at the start of `samples` (and of `right` when stereo).
    pub len: usize,
    /// Right channel of a stereo generation (`samples` is then the left); empty
    /// until the engine first makes a stereo sound, then reused like `samples`.
    pub right: Vec<f32>,
    /// True when `right` holds a separate right channel (an `stft-ms` model);
    /// false for mono sounds, which voices play on both channels.
    pub stereo: bool,
    /// Sample rate of `samples` (the vocoder's rate, not the host's).
    pub sample_rate: u32,
    /// Monotonic generation number, so the editor and tests can tell generations apart.
    pub id: u64,
    /// True when the end joins the start seamlessly, so voices may loop it.
    pub looped: bool,
    /// A state on the way to the target, published so that a change is heard
    /// early; the finished sound follows (and is the same whichever were heard).
    pub provisional: bool,
}

impl Generation {
    /// A zeroed buffer of `capacity` samples (engine/pool side only: allocates).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            samples: vec![0.0; capacity],
            len: 0,
            right: Vec::new(),
            stereo: false,
            sample_rate: 0,
            id: 0,
            looped: false,
            provisional: false,
        }
    }

    /// The valid audio.
    pub fn audio(&self) -> &[f32] {
        &self.samples[..self.len.min(self.samples.len())]
    }

    /// Copies `src` in, growing the buffer only if `src` exceeds its capacity
    /// (engine side; the audio thread never calls this).
    pub fn fill_from(&mut self, src: &[f32]) {
        if self.samples.len() < src.len() {
            self.samples.resize(src.len(), 0.0);
        }
        self.samples[..src.len()].copy_from_slice(src);
        self.len = src.len();
        self.stereo = false;
    }

    /// The valid right channel: `right` when stereo, else the mono audio.
    pub fn audio_right(&self) -> &[f32] {
        if self.stereo {
            &self.right[..self.len.min(self.right.len())]
        } else {
            self.audio()
        }
    }

    /// Copies a stereo pair in (engine side; grows the buffers only when
    /// needed, so a circulating buffer allocates its right channel once).
    pub fn fill_stereo_from(&mut self, left: &[f32], right: &[f32]) {
        let n = left.len().min(right.len());
        self.fill_from(&left[..n]);
        if self.right.len() < n {
            self.right.resize(self.samples.len().max(n), 0.0);
        }
        self.right[..n].copy_from_slice(&right[..n]);
        self.stereo = true;
    }
}

/// Engine side of the queue.
pub struct GenerationProducer {
    /// Finished generations towards the audio thread.
    full: Producer<Box<Generation>>,
    /// Buffers coming back for reuse (pre-filled with the whole pool).
    empty: Consumer<Box<Generation>>,
}

/// Audio-thread side of the queue.
pub struct GenerationConsumer {
    /// Finished generations from the engine.
    full: Consumer<Box<Generation>>,
    /// Buffers going back to the engine.
    empty: Producer<Box<Generation>>,
}

/// Creates the queue with `pool` buffers of `capacity_samples` samples each.
/// `pool` is raised to at least 1.
pub fn generation_queue(
    pool: usize,
    capacity_samples: usize,
) -> (GenerationProducer, GenerationConsumer) {
    let pool = pool.max(1);
    let (full_tx, full_rx) = RingBuffer::new(pool);
    let (mut empty_tx, empty_rx) = RingBuffer::new(pool);
    for _ in 0..pool {
        // Capacity equals pool size, so pre-filling cannot fail.
        let _ = empty_tx.push(Box::new(Generation::with_capacity(capacity_samples)));
    }
    (
        GenerationProducer {
            full: full_tx,
            empty: empty_rx,
        },
        GenerationConsumer {
            full: full_rx,
            empty: empty_tx,
        },
    )
}

impl GenerationProducer {
    /// A free buffer (recycled or never used), or `None` while every pool buffer
    /// is queued or held by the voices; the engine should retry later.
    pub fn acquire(&mut self) -> Option<Box<Generation>> {
        self.empty.pop().ok()
    }

    /// Sends a filled generation to the audio thread. Fails (handing the buffer
    /// back) only if the ring is full, which cannot happen with pool buffers.
    pub fn publish(&mut self, g: Box<Generation>) -> Result<(), Box<Generation>> {
        self.full.push(g).map_err(|rtrb::PushError::Full(g)| g)
    }

    /// Buffers ready to be acquired right now.
    pub fn available(&self) -> usize {
        self.empty.slots()
    }
}

impl GenerationConsumer {
    /// The oldest published generation, if any. Never allocates.
    pub fn receive(&mut self) -> Option<Box<Generation>> {
        self.full.pop().ok()
    }

    /// Returns a buffer to the engine. Never allocates or frees: the return ring
    /// holds the whole pool. A buffer that did not come from this pool and finds
    /// the ring full is leaked rather than freed on the audio thread.
    pub fn recycle(&mut self, g: Box<Generation>) {
        if let Err(rtrb::PushError::Full(g)) = self.empty.push(g) {
            debug_assert!(false, "recycled a generation that is not from this pool");
            std::mem::forget(g);
        }
    }

    /// Generations waiting to be received.
    pub fn pending(&self) -> usize {
        self.full.slots()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_recycling() {
        let (mut tx, mut rx) = generation_queue(2, 64);
        assert_eq!(tx.available(), 2);
        let mut g = tx.acquire().unwrap();
        assert_eq!(g.samples.len(), 64);
        let ptr = g.samples.as_ptr();
        g.fill_from(&[0.5; 10]);
        g.id = 7;
        g.sample_rate = 22050;
        g.looped = true;
        tx.publish(g).unwrap();
        assert_eq!(rx.pending(), 1);
        let got = rx.receive().unwrap();
        assert_eq!(
            (got.id, got.len, got.sample_rate, got.looped),
            (7, 10, 22050, true)
        );
        assert_eq!(got.audio(), &[0.5; 10]);
        assert!(rx.receive().is_none());
        rx.recycle(got);
        // The recycled buffer comes back after the untouched one, same allocation.
        let other = tx.acquire().unwrap();
        let again = tx.acquire().unwrap();
        assert_ne!(other.samples.as_ptr(), ptr);
        assert_eq!(again.samples.as_ptr(), ptr);
        assert_eq!(again.samples.capacity(), 64);
    }

    #[test]
    fn stereo_fill_keeps_channels_and_reuses_the_right_buffer() {
        let mut g = Generation::with_capacity(16);
        g.fill_stereo_from(&[1.0, 2.0, 3.0], &[-1.0, -2.0, -3.0, -4.0]);
        assert!(g.stereo);
        assert_eq!(
            (g.audio(), g.audio_right()),
            (&[1.0, 2.0, 3.0][..], &[-1.0, -2.0, -3.0][..])
        );
        let right = g.right.as_ptr();
        g.fill_stereo_from(&[5.0; 8], &[6.0; 8]);
        assert_eq!(
            g.right.as_ptr(),
            right,
            "the right channel is allocated once"
        );
        assert_eq!(g.audio_right(), &[6.0; 8]);
        // A mono fill afterwards plays the mono audio on the right too.
        g.fill_from(&[7.0; 4]);
        assert!(!g.stereo);
        assert_eq!(g.audio_right(), &[7.0; 4]);
    }

    #[test]
    fn pool_exhaustion_returns_none_until_recycled() {
        let (mut tx, mut rx) = generation_queue(3, 8);
        let held: Vec<_> = (0..3).map(|_| tx.acquire().unwrap()).collect();
        assert!(tx.acquire().is_none());
        for g in held {
            tx.publish(g).unwrap();
        }
        assert!(tx.acquire().is_none());
        let g = rx.receive().unwrap();
        rx.recycle(g);
        assert!(tx.acquire().is_some());
        assert!(tx.acquire().is_none());
        // A foreign buffer overflowing the full ring is handed back, not lost.
        let (mut tx2, _rx2) = generation_queue(1, 8);
        let own = tx2.acquire().unwrap();
        tx2.publish(own).unwrap();
        let foreign = Box::new(Generation::with_capacity(4));
        assert_eq!(tx2.publish(foreign).unwrap_err().samples.len(), 4);
    }

    #[test]
    fn cross_thread_stress_keeps_order_and_buffers() {
        const N: u64 = 20_000;
        let (mut tx, mut rx) = generation_queue(4, 16);
        let producer = std::thread::spawn(move || {
            let mut next = 0u64;
            while next < N {
                if let Some(mut g) = tx.acquire() {
                    g.id = next;
                    g.len = (next % 16) as usize;
                    g.samples[0] = next as f32;
                    tx.publish(g).expect("pool buffers always fit");
                    next += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            tx
        });
        let mut expected = 0u64;
        let mut seen_ptrs = std::collections::HashSet::new();
        while expected < N {
            if let Some(g) = rx.receive() {
                assert_eq!(g.id, expected);
                assert_eq!(g.samples[0], expected as f32);
                assert_eq!(g.samples.len(), 16);
                seen_ptrs.insert(g.samples.as_ptr() as usize);
                rx.recycle(g);
                expected += 1;
            } else {
                std::thread::yield_now();
            }
        }
        let tx = producer.join().unwrap();
        // Only the four pool buffers ever circulated, and all are home again.
        assert!(seen_ptrs.len() <= 4);
        assert_eq!(tx.available(), 4);
    }
}
