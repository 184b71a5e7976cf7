//! The models that ship inside the bundle, and how saved state names a chosen
//! file so a project opens on another machine.
//!
//! A project stores the model the user chose. An absolute path breaks as soon
//! as the project moves (another user, another disk), so a bundled model is
//! stored by name (`bundled:strings.onnx`) and found again in whatever bundle
//! loads the project; any other file is stored by path, and a path that does
//! not exist here falls back to the bundled model of the same file name.
//! When neither exists, the path is kept so the engine reports it missing.

use std::path::{Path, PathBuf};

/// Prefix of a stored reference to a bundled model.
pub const BUNDLED: &str = "bundled:";

/// Folders that may hold `nca/` and `vocoder/` model folders: inside the
/// bundle beside the plugin binary (CLAP and stand-alone:
/// `<dir>/grown-resources/models`; VST3: `<dir>/../Resources/models`), and
/// the source checkout this binary was built from (for development builds).
pub fn model_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) =
        crate::onnx::runtime::module_path().and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(dir.join("grown-resources/models"));
        dirs.push(dir.join("../Resources/models"));
    }
    dirs.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models"
    )));
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The `.onnx` files in `<dir>/<kind>/` for every dir, sorted, without duplicates.
pub fn scan(dirs: &[PathBuf], kind: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d.join(kind)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        })
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// What saved state stores for the chosen `path` of a `kind` (`nca` or
/// `vocoder`) model: `bundled:NAME` when it is one of the bundled files, else
/// the path itself.
pub fn reference(path: &Path, dirs: &[PathBuf], kind: &str) -> String {
    let bundled = path
        .canonicalize()
        .ok()
        .filter(|p| scan(dirs, kind).contains(p))
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match bundled {
        Some(name) => format!("{BUNDLED}{name}"),
        None => path.display().to_string(),
    }
}

/// The file a stored reference means on this machine: a bundled model by
/// name, else the stored path if it exists, else the bundled model with the
/// path's file name, else the stored path (so the engine says it is missing).
pub fn resolve(stored: &str, dirs: &[PathBuf], kind: &str) -> PathBuf {
    let bundled = |name: &str| {
        // A plain file name only: a reference never reaches outside the folders.
        (Path::new(name).file_name() == Some(name.as_ref()))
            .then(|| {
                dirs.iter()
                    .map(|d| d.join(kind).join(name))
                    .find(|p| p.is_file())
            })
            .flatten()
    };
    if let Some(name) = stored.strip_prefix(BUNDLED) {
        return bundled(name).unwrap_or_else(|| PathBuf::from(stored));
    }
    let path = PathBuf::from(stored);
    if path.exists() {
        return path;
    }
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(bundled)
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two bundles' model folders (`a` ships chord.onnx, `b` nothing) and a user file.
    fn fixture() -> (PathBuf, Vec<PathBuf>, PathBuf) {
        let root = std::env::temp_dir().join(format!("grown-library-{}", std::process::id()));
        let a = root.join("a");
        std::fs::create_dir_all(a.join("nca")).unwrap();
        std::fs::create_dir_all(root.join("b/nca")).unwrap();
        std::fs::write(a.join("nca/chord.onnx"), b"x").unwrap();
        let mine = root.join("mine.onnx");
        std::fs::write(&mine, b"x").unwrap();
        (root.clone(), vec![root.join("b"), a], mine)
    }

    #[test]
    fn bundled_models_are_stored_by_name_and_found_again() {
        let (root, dirs, mine) = fixture();
        let chord = dirs[1].join("nca/chord.onnx");
        assert_eq!(reference(&chord, &dirs, "nca"), "bundled:chord.onnx");
        assert_eq!(
            resolve("bundled:chord.onnx", &dirs, "nca")
                .canonicalize()
                .unwrap(),
            chord.canonicalize().unwrap()
        );
        // A user's own file keeps its path, and resolves to it.
        let stored = reference(&mine, &dirs, "nca");
        assert_eq!(stored, mine.display().to_string());
        assert_eq!(resolve(&stored, &dirs, "nca"), mine);
        // The same file name under the wrong kind is not a bundled vocoder.
        assert!(reference(&chord, &dirs, "vocoder").ends_with("chord.onnx"));
        assert!(!reference(&chord, &dirs, "vocoder").starts_with(BUNDLED));
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn a_project_from_another_machine_finds_the_bundled_model() {
        let (root, dirs, _) = fixture();
        // An older project saved an absolute path from another machine.
        let elsewhere = "/Users/someone/Music/Grown.clap/grown-resources/models/nca/chord.onnx";
        assert_eq!(
            resolve(elsewhere, &dirs, "nca"),
            dirs[1].join("nca/chord.onnx")
        );
        // Nothing of that name here: the path stays, so the engine reports it missing.
        let gone = "/Users/someone/models/strings_v9.onnx";
        assert_eq!(resolve(gone, &dirs, "nca"), PathBuf::from(gone));
        assert_eq!(
            resolve("bundled:strings_v9.onnx", &dirs, "nca"),
            PathBuf::from("bundled:strings_v9.onnx")
        );
        // A reference never climbs out of the models folders.
        assert_eq!(
            resolve("bundled:../nca/chord.onnx", &dirs, "nca"),
            PathBuf::from("bundled:../nca/chord.onnx")
        );
        std::fs::remove_dir_all(root).ok();
    }
}
