//! ONNX Runtime: loading the shared library once per process and choosing
//! the execution provider each session runs on.

pub mod locate;
pub mod runtime;
