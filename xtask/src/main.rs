//! `cargo xtask`: nice-plug's bundler, plus what Grown needs beside its plugin
//! binaries at run time (ONNX Runtime and the default models).
//!
//! ```text
//! cargo xtask bundle grown [--release] [cargo build options]
//! cargo xtask install [--clap-dir D] [--vst3-dir D]
//! cargo xtask fetch-ort [--gpu] [--force] [--test-fixtures]
//! cargo xtask bench [--quick]
//! ```
//!
//! Everything else (`bundle-universal`, `known-packages`) goes to nice-plug-xtask unchanged.

mod bench;
mod bundle;
mod install;
mod ort;

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "Usage:
  cargo xtask bundle <package> [--release] [cargo build options]
      nice-plug's bundler; afterwards copies ONNX Runtime and the default models
      into each bundle (fetching ONNX Runtime first when it is missing)
  cargo xtask install [--clap-dir D] [--vst3-dir D]
      builds the release bundle, then installs it self-contained: the CLAP in
      D/Grown/ with ONNX Runtime and the models beside it (default ~/.clap), the
      VST3 bundle as D/Grown.vst3 (default ~/.vst3); replaces an earlier install
  cargo xtask fetch-ort [--gpu] [--force] [--test-fixtures]
      installs target/onnxruntime/libonnxruntime.so.1.31.1 from the PyPI wheel
      (--gpu: the onnxruntime-gpu wheel, with its execution-provider libraries;
      --test-fixtures: also ONNX Runtime 1.20.1 in target/onnxruntime-old/, which
      the wrong-version test must see refused)
  cargo xtask bench [--quick]
      measures the plugin against its references (eager PyTorch, librosa, the matmul
      peak) and writes docs/BENCHMARKS.md and docs/benchmarks.json (--quick: short
      timings, report in target/bench/ instead)
  cargo xtask bundle-universal | known-packages
      passed to nice-plug-xtask unchanged";

/// Paths every subcommand needs, resolved once from `cargo metadata`.
pub struct Workspace {
    /// The workspace root: bundler.toml and models/ are found relative to it.
    pub root: PathBuf,
    /// Cargo's target directory (honours CARGO_TARGET_DIR), where bundles and the
    /// downloaded ONNX Runtime live.
    pub target_dir: PathBuf,
}

impl Workspace {
    fn load() -> Result<Self> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path("./Cargo.toml")
            .no_deps()
            .exec()
            .context("could not run `cargo metadata`")?;
        Ok(Self {
            root: metadata.workspace_root.into_std_path_buf(),
            target_dir: metadata.target_directory.into_std_path_buf(),
        })
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    nice_plug_xtask::chdir_workspace_root()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bundle") => {
            bundle::run(&Workspace::load()?, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("install") => {
            install::run(&Workspace::load()?, &args[1..])?;
            Ok(ExitCode::SUCCESS)
        }
        Some("fetch-ort") => {
            let mut variant = ort::Variant::Cpu;
            let mut force = false;
            let mut fixtures = false;
            for arg in &args[1..] {
                match arg.as_str() {
                    "--gpu" => variant = ort::Variant::Gpu,
                    "--force" => force = true,
                    "--test-fixtures" => fixtures = true,
                    other => anyhow::bail!("fetch-ort: unknown option '{other}'\n\n{USAGE}"),
                }
            }
            let workspace = Workspace::load()?;
            ort::ensure(&workspace.target_dir, variant, force)?;
            if fixtures {
                ort::ensure_old(&workspace.target_dir)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("bench") => {
            let workspace = Workspace::load()?;
            bench::run(&workspace, &args[1..])
        }
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => {
            nice_plug_xtask::main_with_args("cargo xtask", args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
