//! A minimal CLAP host (clack-host) that loads the real bundle, for the host
//! tests: audio analysis, bundle and library paths, the extensions the plugin
//! offers, the editor's window and the host itself.

pub mod analysis;
pub mod common;
pub mod ext;
pub mod gui;
pub mod host;
pub mod play;
