//! What Grown's tests share: the plugin's unit tests, the integration tests
//! and the host tests depend on this crate (a dev-dependency), so none of it
//! ships inside the plugin.

pub mod clap_host;
pub mod onnx;
pub mod x11;
