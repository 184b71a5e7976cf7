//! Grown as a stand-alone application (JACK, ALSA or a silent dummy backend), built
//! with `--features standalone`. Mostly for trying the editor without a host, and
//! for the headless editor screenshot (`tests/editor_screenshot.sh`).
//! `grown-standalone --help` lists nice-plug's options (`--backend dummy`, ...).

fn main() {
    nice_plug::nice_export_standalone::<grown::Grown>();
}
