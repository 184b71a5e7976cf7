//! Pure signal math, no threads and no ONNX: the mel front end shared with
//! the Python side, and the `stft-ms` representation and its inverse.

pub mod mel;
pub mod stft_ms;
