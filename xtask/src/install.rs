//! `cargo xtask install`: copies the finished bundles where hosts look for plugins,
//! each one self-contained.
//!
//! ```text
//! <clap-dir>/<Name>/<Name>.clap                 hosts scan CLAP folders recursively
//! <clap-dir>/<Name>/libonnxruntime.so.1.31.1    found beside the plugin binary
//! <clap-dir>/<Name>/<package>-resources/models/{nca,vocoder}/*.onnx
//! <vst3-dir>/<Name>.vst3/                       the bundle as built: runtime and models inside
//! ```
//!
//! The CLAP gets a folder of its own because a CLAP on Linux is a single file and
//! what it loads at run time must sit beside it; a bare `<Name>.clap` copied into
//! `~/.clap` would play silence with "ONNX Runtime not found". An earlier install is
//! replaced, never merged, so removed models do not linger.

use crate::bundle;
use crate::Workspace;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Where the plugins go: the command line's folders, or the per-user defaults.
pub struct Destinations {
    pub clap: PathBuf,
    pub vst3: PathBuf,
}

impl Destinations {
    /// Parses `[--clap-dir D] [--vst3-dir D]`; the defaults are `~/.clap` and
    /// `~/.vst3`, the per-user folders the CLAP and VST3 specifications name.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut clap = None;
        let mut vst3 = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let slot = match arg.as_str() {
                "--clap-dir" => &mut clap,
                "--vst3-dir" => &mut vst3,
                other => bail!("install: unknown option '{other}'"),
            };
            let value = rest
                .next()
                .with_context(|| format!("install: {arg} needs a folder"))?;
            *slot = Some(PathBuf::from(value));
        }
        let home = || -> Result<PathBuf> {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .context("install: HOME is not set; pass --clap-dir and --vst3-dir")
        };
        Ok(Self {
            clap: match clap {
                Some(dir) => dir,
                None => home()?.join(".clap"),
            },
            vst3: match vst3 {
                Some(dir) => dir,
                None => home()?.join(".vst3"),
            },
        })
    }
}

/// What `cargo xtask bundle` left in `target/bundled` for one package.
pub struct Built {
    /// Bundle name from bundler.toml (`Grown`).
    pub name: String,
    /// The package name, which names the resources folder (`grown-resources`).
    pub package: String,
    /// `target/bundled`.
    pub bundled: PathBuf,
}

/// Copies the CLAP (in a folder of its own, with ONNX Runtime and the models) and
/// the VST3 bundle into `to`, replacing an earlier install. Returns the installed
/// plugin paths.
pub fn install(built: &Built, to: &Destinations) -> Result<[PathBuf; 2]> {
    let clap_file = built.bundled.join(format!("{}.clap", built.name));
    let vst3_bundle = built.bundled.join(format!("{}.vst3", built.name));
    let resources = built.bundled.join(format!("{}-resources", built.package));
    for needed in [&clap_file, &vst3_bundle, &resources] {
        if !needed.exists() {
            bail!(
                "{} is missing: build with `cargo xtask bundle {} --release` first",
                needed.display(),
                built.package
            );
        }
    }
    let runtime = runtime_files(&built.bundled)?;
    if runtime.is_empty() {
        bail!(
            "no libonnxruntime beside {}: run `cargo xtask bundle {} --release`",
            clap_file.display(),
            built.package
        );
    }

    let clap_folder = to.clap.join(&built.name);
    replace_dir(&clap_folder, &format!("{}.clap", built.name))?;
    bundle::install_file(&clap_file, &clap_folder)?;
    for library in &runtime {
        bundle::install_file(library, &clap_folder)?;
    }
    copy_tree(
        &resources,
        &clap_folder.join(format!("{}-resources", built.package)),
    )?;

    let vst3_target = to.vst3.join(format!("{}.vst3", built.name));
    replace_dir(&vst3_target, "Contents")?;
    copy_tree(&vst3_bundle, &vst3_target)?;

    let loose = to.clap.join(format!("{}.clap", built.name));
    if loose.is_file() {
        eprintln!(
            "warning: {} is an older install without ONNX Runtime beside it; remove it \
             so hosts do not list {} twice",
            loose.display(),
            built.name
        );
    }
    Ok([
        clap_folder.join(format!("{}.clap", built.name)),
        vst3_target,
    ])
}

/// The ONNX Runtime files the bundle step put beside the CLAP (the library, and
/// with `fetch-ort --gpu` its execution-provider libraries).
fn runtime_files(bundled: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(bundled)? {
        let path = entry?.path();
        let is_runtime = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libonnxruntime"));
        if is_runtime && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Removes an earlier install at `dir`, but only when it holds `marker` (the
/// plugin file or `Contents`): a folder of the same name that is not ours is an
/// error, never deleted.
fn replace_dir(dir: &Path, marker: &str) -> Result<()> {
    if fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    if !dir.is_dir() || !dir.join(marker).exists() {
        bail!(
            "{} exists and is not an earlier install (no {marker} inside); move it away first",
            dir.display()
        );
    }
    fs::remove_dir_all(dir).with_context(|| format!("could not remove {}", dir.display()))
}

/// Copies the folder `from` to `to` as real files (links are followed), so the
/// install does not depend on the build tree.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("could not create {}", to.display()))?;
    for entry in fs::read_dir(from)? {
        let path = entry?.path();
        if path.is_dir() {
            copy_tree(
                &path,
                &to.join(path.file_name().context("nameless folder")?),
            )?;
        } else {
            bundle::install_file(&path, to)?;
        }
    }
    Ok(())
}

/// Runs the release bundle for `package`, then installs it.
pub fn run(workspace: &Workspace, args: &[String]) -> Result<()> {
    let to = Destinations::parse(args)?;
    let package = "grown".to_owned();
    bundle::build(workspace, &package)?;
    let built = Built {
        name: bundle::bundle_name(&workspace.root, &package)?,
        package,
        bundled: workspace.target_dir.join("bundled"),
    };
    let [clap, vst3] = install(&built, &to)?;
    println!("Installed {}", clap.display());
    println!("Installed {}", vst3.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A `target/bundled` as the bundle step leaves it.
    fn fake_bundled(root: &Path) -> Built {
        let b = root.join("bundled");
        let write = |rel: &str, bytes: &[u8]| {
            let path = b.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        };
        write("Grown.clap", b"clap");
        write("Grown", b"cli");
        write("libonnxruntime.so.1.31.1", b"ort");
        write("grown-resources/models/nca/chord.onnx", b"chord");
        write("Grown.vst3/Contents/x86_64-linux/Grown.so", b"vst3");
        write(
            "Grown.vst3/Contents/x86_64-linux/libonnxruntime.so.1.31.1",
            b"ort",
        );
        write(
            "Grown.vst3/Contents/Resources/models/nca/chord.onnx",
            b"chord",
        );
        Built {
            name: "Grown".into(),
            package: "grown".into(),
            bundled: b,
        }
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn installs_a_self_contained_clap_folder_and_vst3_bundle() {
        let root = scratch("install");
        let built = fake_bundled(&root);
        let to = Destinations::parse(&strings(&[
            "--clap-dir",
            root.join("clap").to_str().unwrap(),
            "--vst3-dir",
            root.join("vst3").to_str().unwrap(),
        ]))
        .unwrap();

        let [clap, vst3] = install(&built, &to).unwrap();

        assert_eq!(clap, root.join("clap/Grown/Grown.clap"));
        assert_eq!(vst3, root.join("vst3/Grown.vst3"));
        for (rel, bytes) in [
            ("clap/Grown/Grown.clap", "clap"),
            ("clap/Grown/libonnxruntime.so.1.31.1", "ort"),
            ("clap/Grown/grown-resources/models/nca/chord.onnx", "chord"),
            ("vst3/Grown.vst3/Contents/x86_64-linux/Grown.so", "vst3"),
            (
                "vst3/Grown.vst3/Contents/x86_64-linux/libonnxruntime.so.1.31.1",
                "ort",
            ),
            (
                "vst3/Grown.vst3/Contents/Resources/models/nca/chord.onnx",
                "chord",
            ),
        ] {
            let path = root.join(rel);
            assert!(
                fs::symlink_metadata(&path).unwrap().is_file(),
                "{rel} is not a real file"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), bytes, "{rel}");
        }
        // The CLI binary is not a plugin and stays out of the plugin folders.
        assert!(!root.join("clap/Grown/Grown").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reinstalling_replaces_the_old_install_and_drops_removed_models() {
        let root = scratch("reinstall");
        let built = fake_bundled(&root);
        let to = Destinations {
            clap: root.join("clap"),
            vst3: root.join("vst3"),
        };
        install(&built, &to).unwrap();
        fs::remove_file(built.bundled.join("grown-resources/models/nca/chord.onnx")).unwrap();
        fs::write(
            built.bundled.join("grown-resources/models/nca/new.onnx"),
            b"n",
        )
        .unwrap();

        install(&built, &to).unwrap();

        let models = root.join("clap/Grown/grown-resources/models/nca");
        assert!(models.join("new.onnx").is_file());
        assert!(
            !models.join("chord.onnx").exists(),
            "a removed model lingers"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_foreign_folder_of_the_same_name_is_left_alone() {
        let root = scratch("foreign");
        let built = fake_bundled(&root);
        fs::create_dir_all(root.join("clap/Grown")).unwrap();
        fs::write(root.join("clap/Grown/notes.txt"), b"mine").unwrap();
        let to = Destinations {
            clap: root.join("clap"),
            vst3: root.join("vst3"),
        };

        let error = install(&built, &to).unwrap_err().to_string();

        assert!(error.contains("is not an earlier install"), "{error}");
        assert_eq!(
            fs::read(root.join("clap/Grown/notes.txt")).unwrap(),
            b"mine"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_bundle_says_how_to_build_it() {
        let root = scratch("missing");
        let built = Built {
            name: "Grown".into(),
            package: "grown".into(),
            bundled: root.join("bundled"),
        };
        let to = Destinations {
            clap: root.join("clap"),
            vst3: root.join("vst3"),
        };
        let error = install(&built, &to).unwrap_err().to_string();
        assert!(
            error.contains("cargo xtask bundle grown --release"),
            "{error}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn options_are_checked() {
        let error = Destinations::parse(&strings(&["--clap"]))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("unknown option '--clap'"), "{error}");
        let error = Destinations::parse(&strings(&["--vst3-dir"]))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("--vst3-dir needs a folder"), "{error}");
    }
}
