//! Where the ONNX Runtime library is looked for (the order is documented in
//! [`super::runtime`]): the plugin's own bundle, the CLI's and test
//! executables' target folders, or `ORT_DYLIB_PATH` alone when it is set.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::runtime::RuntimeError;

/// Folders searched when `ORT_DYLIB_PATH` is not set, in order, without
/// duplicates. `module_dir` is the folder of the binary holding this code.
/// The running executable's folder is not searched: in a plugin that is the
/// host's, and a library found there would hide a bundle that lacks its own.
pub fn search_dirs(module_dir: Option<&Path>) -> Vec<PathBuf> {
    let Some(base) = module_dir else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for rel in [
        "",
        "../Resources",
        "onnxruntime",
        "../onnxruntime",
        "../../onnxruntime",
        "../../target/onnxruntime",
    ] {
        let dir = normalize(&base.join(rel));
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Lexically removes `..` and `.` so the list shown to users is readable and
/// duplicates are detected (no filesystem access; symlinks are resolved later
/// by `canonicalize` on the file actually chosen).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Chooses the library file: `env_value` (from `ORT_DYLIB_PATH`) when given,
/// otherwise the first of `dirs` that holds one. The result is canonical (a
/// real file, not a symlink).
pub fn find_dylib(env_value: Option<&OsStr>, dirs: &[PathBuf]) -> Result<PathBuf, RuntimeError> {
    if let Some(v) = env_value {
        let p = PathBuf::from(v);
        let found = if p.is_dir() {
            dylib_in_dir(&p)
        } else if p.is_file() {
            Some(p.clone())
        } else {
            None
        };
        return match found.and_then(|f| std::fs::canonicalize(f).ok()) {
            Some(f) => Ok(f),
            None => Err(RuntimeError::NotFound {
                searched: vec![p],
                env_value: Some(v.to_string_lossy().into_owned()),
            }),
        };
    }
    for dir in dirs {
        if let Some(f) = dylib_in_dir(dir).and_then(|f| std::fs::canonicalize(f).ok()) {
            return Ok(f);
        }
    }
    Err(RuntimeError::NotFound {
        searched: dirs.to_vec(),
        env_value: None,
    })
}

/// The ONNX Runtime library in `dir`, if any: the unversioned name first, then
/// the highest versioned one (`libonnxruntime.so.1.31.1`,
/// `libonnxruntime.1.31.1.dylib`). Provider libraries are never picked.
fn dylib_in_dir(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join(format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let Some(name) = p.file_name().and_then(OsStr::to_str) else {
                return false;
            };
            let linux = name.starts_with("libonnxruntime.so.");
            let mac = name.starts_with("libonnxruntime.") && name.ends_with(".dylib");
            (linux || mac) && !name.contains("providers") && p.is_file()
        })
        .collect();
    // Highest version last; compare numerically so 1.31 beats 1.4.
    versioned.sort_by_key(|p| version_key(p));
    versioned.pop()
}

/// Numeric version parts of a library file name, for sorting.
fn version_key(p: &Path) -> Vec<u64> {
    p.file_name()
        .and_then(OsStr::to_str)
        .unwrap_or("")
        .split('.')
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Path of the binary (shared library or executable) that contains this
/// function, so a plugin finds the runtime inside its own bundle even though
/// the process's executable is the host.
#[cfg(unix)]
pub fn module_path() -> Option<PathBuf> {
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::os::unix::ffi::OsStrExt;

    /// `Dl_info` from `<dlfcn.h>`; identical layout on glibc, musl and macOS.
    #[repr(C)]
    struct DlInfo {
        /// Path of the object containing the address.
        dli_fname: *const c_char,
        /// Base address of that object.
        dli_fbase: *mut c_void,
        /// Nearest symbol name.
        dli_sname: *const c_char,
        /// Nearest symbol address.
        dli_saddr: *mut c_void,
    }
    extern "C" {
        fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    }
    let mut info = DlInfo {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let addr = module_path as *const c_void;
    // SAFETY: dladdr only reads the loader's tables and fills `info`; the
    // returned name points into loader memory valid while the object is loaded.
    let ok = unsafe { dladdr(addr, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let p = PathBuf::from(OsStr::from_bytes(name.to_bytes()));
    // Some loaders report the main executable by a bare or relative name.
    if p.is_absolute() {
        Some(p)
    } else {
        std::env::current_exe().ok()
    }
}

/// Path of the binary that contains this function; off Unix, the running
/// executable (the right answer for the CLI and the stand-alone app; a plugin
/// there would need the DLL's own path).
#[cfg(not(unix))]
pub fn module_path() -> Option<PathBuf> {
    std::env::current_exe().ok()
}
