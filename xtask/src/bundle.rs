//! Completes nice-plug's bundles with the files Grown loads at run time.
//!
//! Layout (Linux; `<Name>` is bundler.toml's `name`, `<package>` the Cargo package):
//!
//! ```text
//! target/bundled/
//!   <Name>.clap                                   CLAP plugin (a single file on Linux)
//!   <Name>                                        the package's binary (the `grown` CLI)
//!   libonnxruntime.so.1.31.1                      beside both of them
//!   <package>-resources/models/nca/*.onnx         default models for CLAP and the CLI
//!   <package>-resources/models/vocoder/*.onnx     (when present)
//!   <Name>.vst3/Contents/x86_64-linux/<Name>.so   VST3 plugin
//!   <Name>.vst3/Contents/x86_64-linux/libonnxruntime.so.1.31.1
//!   <Name>.vst3/Contents/Resources/models/{nca,vocoder}/*.onnx
//! ```
//!
//! `src/onnx/runtime.rs` finds the library beside the plugin binary; the model search
//! looks in `<binary dir>/../Resources/models` (VST3) and
//! `<binary dir>/<package>-resources/models` (CLAP, CLI). Everything is copied as
//! real files, never links, so a bundle survives being copied elsewhere on its own.

use crate::{ort, Workspace};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The part of bundler.toml we read: nice-plug-xtask names bundles after `name`.
#[derive(Deserialize)]
struct PackageConfig {
    /// Display name nice-plug uses for the bundle files; defaults to the package name.
    name: Option<String>,
}

/// The packages a `bundle` command line names, parsed the way nice-plug-xtask does:
/// either `-p a -p b ...` or a single leading package name.
pub fn packages(args: &[String]) -> Vec<String> {
    let mut packages = Vec::new();
    let mut rest = args.iter().peekable();
    if rest.peek().map(|a| a.as_str()) == Some("-p") {
        while rest.peek().map(|a| a.as_str()) == Some("-p") {
            rest.next();
            if let Some(name) = rest.next() {
                packages.push(name.clone());
            }
        }
    } else if let Some(name) = rest.next() {
        packages.push(name.clone());
    }
    packages
}

pub fn bundle_name(root: &Path, package: &str) -> Result<String> {
    let path = root.join("bundler.toml");
    if !path.exists() {
        return Ok(package.to_owned());
    }
    let text =
        fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?;
    let config: HashMap<String, PackageConfig> =
        toml::from_str(&text).with_context(|| format!("could not parse {}", path.display()))?;
    Ok(config
        .get(package)
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| package.to_owned()))
}

/// Runs nice-plug's bundler with `args` (`bundle <package> [options]`), then completes
/// every bundle it made. ONNX Runtime is fetched first: the bundle is useless without
/// it, and a missing network shows up before a long build, not after it.
pub fn run(workspace: &Workspace, args: &[String]) -> Result<()> {
    let runtime = ort::ensure(&workspace.target_dir, ort::Variant::Cpu, false)?;
    nice_plug_xtask::main_with_args("cargo xtask", args.iter().cloned())?;
    for package in packages(&args[1..]) {
        install_runtime_files(workspace, &package, &runtime)?;
    }
    Ok(())
}

/// The release bundle of `package`, as `cargo xtask bundle <package> --release` makes it.
pub fn build(workspace: &Workspace, package: &str) -> Result<()> {
    let args = ["bundle", package, "--release"].map(String::from);
    run(workspace, &args)
}

/// Copies ONNX Runtime and the models into every bundle nice-plug made for `package`.
pub fn install_runtime_files(
    workspace: &Workspace,
    package: &str,
    runtime: &[PathBuf],
) -> Result<()> {
    let name = bundle_name(&workspace.root, package)?;
    let bundled = workspace.target_dir.join("bundled");
    let models = model_files(&workspace.root)?;
    let mut done = false;

    let clap = bundled.join(format!("{name}.clap"));
    if clap.is_file() {
        for library in runtime {
            install_file(library, &bundled)?;
        }
        install_models(
            &models,
            &workspace.root,
            &bundled.join(format!("{package}-resources")),
        )?;
        eprintln!(
            "Added ONNX Runtime and {} model(s) beside {}",
            models.len(),
            clap.display()
        );
        done = true;
    }

    let vst3 = bundled.join(format!("{name}.vst3"));
    if let Some(binary_dir) = vst3_binary_dir(&vst3, &name)? {
        for library in runtime {
            install_file(library, &binary_dir)?;
        }
        install_models(
            &models,
            &workspace.root,
            &vst3.join("Contents").join("Resources"),
        )?;
        eprintln!(
            "Added ONNX Runtime and {} model(s) to {}",
            models.len(),
            vst3.display()
        );
        done = true;
    }

    if !done {
        eprintln!(
            "warning: no CLAP or VST3 bundle of '{package}' found in {}",
            bundled.display()
        );
    }
    Ok(())
}

/// The `Contents/<arch>-linux` folder holding `<name>.so`, found rather than computed so
/// that cross-compiled bundles are completed too.
fn vst3_binary_dir(vst3: &Path, name: &str) -> Result<Option<PathBuf>> {
    let contents = vst3.join("Contents");
    if !contents.is_dir() {
        return Ok(None);
    }
    for entry in fs::read_dir(&contents)? {
        let dir = entry?.path();
        let is_arch = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-linux"));
        if is_arch && dir.join(format!("{name}.so")).is_file() {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// The default models shipped with every bundle: `models/nca/*.onnx` and
/// `models/vocoder/*.onnx`, as paths relative to the workspace root.
fn model_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for folder in ["models/nca", "models/vocoder"] {
        let dir = root.join(folder);
        if !dir.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "onnx") && path.is_file() {
                files.push(path.strip_prefix(root)?.to_path_buf());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Replaces `<resources>/models` with a fresh copy, so models removed from the
/// repository do not linger in old bundles.
fn install_models(models: &[PathBuf], root: &Path, resources: &Path) -> Result<()> {
    let models_dir = resources.join("models");
    if models_dir.exists() {
        fs::remove_dir_all(&models_dir)
            .with_context(|| format!("could not clear {}", models_dir.display()))?;
    }
    for relative in models {
        // `relative` starts with `models/`, so it lands under `<resources>/models/`.
        let destination = resources.join(relative);
        let parent = destination
            .parent()
            .context("model path without a folder")?;
        install_file(&root.join(relative), parent)?;
    }
    Ok(())
}

/// Copies `source` into `folder` as a regular file. An existing file or link of the
/// same name is removed first: `fs::copy` onto a link would write through it.
pub fn install_file(source: &Path, folder: &Path) -> Result<()> {
    let file_name = source.file_name().context("source has no file name")?;
    fs::create_dir_all(folder).with_context(|| format!("could not create {}", folder.display()))?;
    let destination = folder.join(file_name);
    if fs::symlink_metadata(&destination).is_ok() {
        fs::remove_file(&destination)
            .with_context(|| format!("could not replace {}", destination.display()))?;
    }
    fs::copy(source, &destination).with_context(|| {
        format!(
            "could not copy {} to {}",
            source.display(),
            destination.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn packages_follow_nice_plug_argument_rules() {
        assert_eq!(packages(&strings(&["grown", "--release"])), ["grown"]);
        assert_eq!(
            packages(&strings(&["-p", "a", "-p", "b", "--release"])),
            ["a", "b"]
        );
        assert!(packages(&[]).is_empty());
    }

    #[test]
    fn install_file_replaces_a_link_with_a_real_file() {
        let dir = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("out")).unwrap();
        fs::write(dir.join("lib.so"), b"new").unwrap();
        fs::write(dir.join("elsewhere"), b"old").unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("out/lib.so")).unwrap();

        install_file(&dir.join("lib.so"), &dir.join("out")).unwrap();

        let meta = fs::symlink_metadata(dir.join("out/lib.so")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(fs::read(dir.join("out/lib.so")).unwrap(), b"new");
        assert_eq!(fs::read(dir.join("elsewhere")).unwrap(), b"old");
        fs::remove_dir_all(&dir).unwrap();
    }
}
