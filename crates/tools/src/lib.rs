//! What runs Grown outside a host: offline rendering to WAV and PNG, and the
//! soak test. The `grown` and `grown-bench` binaries use it; the plugin does not
//! link it.

pub mod render;
pub mod soak;
