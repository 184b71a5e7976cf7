//! The output's last stage: a soft limiter that also silences NaN/Inf.

/// Output safety: a smooth knee above −1 dBFS that never exceeds ±1, and NaN/Inf → 0.
/// Stateless, so it cannot pump; the knee is C¹ so it adds no edge of its own.
#[derive(Clone, Debug, Default)]
pub struct SoftLimiter {
    /// Knee start (linear), below which samples pass unchanged.
    threshold: f32,
}

impl SoftLimiter {
    /// A limiter with its knee at −1 dBFS.
    pub fn new() -> Self {
        Self {
            threshold: 10f32.powf(-1.0 / 20.0),
        }
    }

    /// Limits both channels in place.
    pub fn process(&mut self, l: &mut [f32], r: &mut [f32]) {
        let t = self.threshold;
        let room = 1.0 - t;
        let shape = |x: &mut f32| {
            if !x.is_finite() {
                *x = 0.0;
            } else if x.abs() > t {
                let over = (x.abs() - t) / room;
                *x = x.signum() * (t + room * over.tanh());
            }
        };
        l.iter_mut().for_each(shape);
        r.iter_mut().for_each(shape);
    }
}
