//! One ONNX Runtime environment per process, found and loaded lazily.
//!
//! The crate is built with `ort`'s `load-dynamic` feature: nothing links
//! against ONNX Runtime at build time, and the shared library is opened the
//! first time a model is loaded. That keeps the plugin loadable (and its
//! built-in features usable) on machines without the library, and lets one
//! binary use either a CPU or a CUDA build of ONNX Runtime.
//!
//! Where the library is looked for, in order:
//! 1. `ORT_DYLIB_PATH` (a file, or a folder holding the library). When it is
//!    set it is the only place looked at, so a wrong value is reported instead
//!    of silently replaced by another copy.
//! 2. Beside the binary that contains this code (the plugin's `.so`/`.dylib`/
//!    `.dll` inside its bundle, or the CLI executable), then
//!    `<dir>/../Resources` (macOS bundles), `<dir>/onnxruntime`,
//!    `<dir>/../onnxruntime`, `<dir>/../../onnxruntime` and
//!    `<dir>/../../target/onnxruntime` (binaries and test executables under
//!    `target/{debug,release}[/deps]`, where `cargo xtask fetch-ort` puts it).
//!
//! Nothing outside those places is guessed, not even the host executable's
//! folder: a library picked up from some unrelated install would make
//! behaviour depend on the machine, and would hide a bundle that lacks its own.
//!
//! The path is canonicalised before loading: ONNX Runtime looks for its
//! provider libraries (`libonnxruntime_providers_*.so`) beside the file it was
//! opened from, and a symlink would make it look in the wrong folder.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

pub use super::locate::{find_dylib, module_path, search_dirs};

/// ONNX Runtime minor version this crate is built against (`api-31`).
pub const REQUIRED_MINOR: u32 = 31;

/// Environment variable that overrides the library search.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Environment variable that forces the CPU provider even when CUDA is
/// available (for reproducible, bit-identical renders on a GPU machine).
pub const FORCE_CPU_ENV: &str = "GROWN_FORCE_CPU";

/// Environment variable that sets the intra-op thread count of new sessions
/// (a positive integer), overriding the half-the-cores default: for
/// benchmarks (`cargo xtask bench` measures 1 and 2 threads) and for users who
/// want to pin the engine's share of the machine.
pub const THREADS_ENV: &str = "GROWN_ORT_THREADS";

/// How to fix a missing library; repeated in every "not found" message so the
/// user never has to look it up.
const HOW_TO_FIX: &str =
    "run `cargo xtask fetch-ort` (puts it in target/onnxruntime and in the bundles), \
     or set ORT_DYLIB_PATH to a libonnxruntime 1.31 file";

/// Which execution provider the runtime uses for new sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// NVIDIA GPU through `libonnxruntime_providers_cuda`.
    Cuda,
    /// The default CPU provider; bit-identical results for equal inputs.
    Cpu,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Cuda => "CUDA",
            Provider::Cpu => "CPU",
        })
    }
}

/// The loaded runtime, shared by every session (and every plugin instance) in
/// the process.
pub struct RuntimeInfo {
    /// Canonical path of the library that was loaded, shown to the user so a
    /// wrong copy is easy to spot.
    pub dylib: PathBuf,
    /// Provider new sessions try first (a session may still fall back to CPU;
    /// see [`SessionProvider`]).
    pub provider: Provider,
    /// Human-readable reason for the provider choice (e.g. why CUDA was not
    /// used), for the editor's status line and bug reports.
    pub why: String,
    /// Version reported by the library, e.g. `1.31.1` (or `1.31` when the build
    /// string cannot be parsed), to diagnose version mismatches.
    pub version: String,
    /// The process-wide environment; sessions must be created from it.
    pub(crate) env: Environment,
    /// Whether one CPU arena allocator is registered on the environment and
    /// sessions use it. Each session otherwise keeps its own arena sized for
    /// its largest step (tens of MiB for a long sound), so every further
    /// plugin instance paid that again; with one shared arena, instances whose
    /// engines do not run at the same moment reuse the same memory.
    pub shared_arena: bool,
}

impl fmt::Debug for RuntimeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeInfo")
            .field("dylib", &self.dylib)
            .field("provider", &self.provider)
            .field("why", &self.why)
            .field("version", &self.version)
            .field("shared_arena", &self.shared_arena)
            .finish_non_exhaustive()
    }
}

/// Why the runtime could not be started. `Display` is one line that says what
/// happened and how to fix it.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeError {
    /// No library in any searched place.
    NotFound {
        /// Every path looked at, in order, so the user can see what was tried.
        searched: Vec<PathBuf>,
        /// The `ORT_DYLIB_PATH` value when it was set (then it was the only
        /// place searched).
        env_value: Option<String>,
    },
    /// The file exists but could not be opened as ONNX Runtime.
    Load {
        /// The file that failed.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// ONNX Runtime is older than the API this crate needs.
    Version {
        /// The file that was opened.
        path: PathBuf,
        /// The version it reported.
        found: String,
    },
    /// The library loaded, but creating the environment failed (or `ort`
    /// panicked, which is caught and reported here).
    Init(String),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::NotFound {
                env_value: Some(v), ..
            } => write!(
                f,
                "ONNX Runtime not found: {DYLIB_ENV} is `{v}` but there is no libonnxruntime there; \
                 fix or unset it ({HOW_TO_FIX})"
            ),
            RuntimeError::NotFound { searched, .. } => {
                let list: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "ONNX Runtime not found (looked in: {}); {HOW_TO_FIX}",
                    if list.is_empty() {
                        "nowhere: the folder of the binary is unknown".to_string()
                    } else {
                        list.join(", ")
                    }
                )
            }
            RuntimeError::Load { path, message } => write!(
                f,
                "could not load ONNX Runtime from {}: {message}; {HOW_TO_FIX}",
                path.display()
            ),
            RuntimeError::Version { path, found } => write!(
                f,
                "ONNX Runtime at {} is version {found}, but Grown needs 1.{REQUIRED_MINOR} or newer; {HOW_TO_FIX}",
                path.display()
            ),
            RuntimeError::Init(m) => write!(f, "ONNX Runtime failed to start: {m}"),
        }
    }
}

impl std::error::Error for RuntimeError {}

/// The runtime, loaded on first use. Never panics; errors are not cached, so a
/// later call (e.g. after the user installs the library) tries again.
pub fn runtime() -> Result<&'static RuntimeInfo, RuntimeError> {
    static RUNTIME: OnceLock<RuntimeInfo> = OnceLock::new();
    static INIT_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    // Serialise attempts so two plugin instances starting together do not both
    // try to create the (single) environment.
    let _guard = INIT_LOCK.lock();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let env_value = std::env::var_os(DYLIB_ENV).filter(|v| !v.is_empty());
    let dirs = search_dirs(module_path().as_deref().and_then(Path::parent));
    let path = find_dylib(env_value.as_deref(), &dirs)?;
    let info = load(&path)?;
    Ok(RUNTIME.get_or_init(|| info))
}

/// Loads `path` (canonical) and creates the process-wide environment.
fn load(path: &Path) -> Result<RuntimeInfo, RuntimeError> {
    // `ort` reports most failures as values, but a few paths `expect`; a panic
    // must never cross the plugin boundary, so it becomes an error here.
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<RuntimeInfo, RuntimeError> {
        let builder = ort::init_from(path).map_err(|e| match e {
            ort::LoadDynamicError::BadVersion { version_str, path } => RuntimeError::Version {
                path,
                found: version_str,
            },
            other => RuntimeError::Load {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        })?;
        let env = builder
            .with_name("grown")
            .with_telemetry(false)
            .build()
            .map_err(|e| RuntimeError::Init(e.to_string()))?;
        let version = library_version(path)
            .or_else(|| parse_version(ort::info()))
            .unwrap_or_else(|| format!("1.{REQUIRED_MINOR}+"));
        let (provider, why) = choose_provider(path, &env);
        // Without the shared arena sessions still work (each with its own), so
        // a failure here only costs memory and is not an error.
        let shared_arena = register_shared_cpu_arena(&env).is_ok();
        Ok(RuntimeInfo {
            dylib: path.to_path_buf(),
            provider,
            why,
            version,
            env,
            shared_arena,
        })
    }));
    match result {
        Ok(r) => r,
        Err(panic) => Err(RuntimeError::Init(format!(
            "ort panicked while loading {}: {}",
            path.display(),
            panic_message(&panic)
        ))),
    }
}

/// The version string the library reports (`OrtGetApiBase()->GetVersionString()`).
/// `ort` checks the minor version while loading but does not expose the
/// string; the library is already loaded, so opening it again only takes a
/// reference, which is released before returning.
#[cfg(unix)]
fn library_version(path: &Path) -> Option<String> {
    use std::ffi::{c_char, c_int, c_void, CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
        fn dlclose(handle: *mut c_void) -> c_int;
    }
    /// `RTLD_LAZY`, 1 on Linux and macOS.
    const RTLD_LAZY: c_int = 1;
    let cpath = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: the library is already loaded by `ort` (this only raises its
    // reference count); the symbol is ONNX Runtime's documented C entry point
    // with this exact signature, and the version string is static.
    unsafe {
        let handle = dlopen(cpath.as_ptr(), RTLD_LAZY);
        if handle.is_null() {
            return None;
        }
        let sym = dlsym(handle, c"OrtGetApiBase".as_ptr());
        let version = if sym.is_null() {
            None
        } else {
            let get_base: unsafe extern "C" fn() -> *const ort::sys::OrtApiBase =
                std::mem::transmute(sym);
            let base = get_base();
            if base.is_null() {
                None
            } else {
                let v = ((*base).GetVersionString)();
                (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
            }
        };
        dlclose(handle);
        version
    }
}

/// See the Unix version; elsewhere only the build-info string is used.
#[cfg(not(unix))]
fn library_version(_path: &Path) -> Option<String> {
    None
}

/// Extracts `1.31.1` from ONNX Runtime's build-info string
/// (`... git-branch=rel-1.31.1, ...`).
fn parse_version(build_info: &str) -> Option<String> {
    let start = build_info.find("rel-")? + 4;
    let rest = &build_info[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let v = rest[..end].trim_end_matches('.');
    (!v.is_empty()).then(|| v.to_string())
}

/// Text of a caught panic payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// File name of the CUDA provider library ONNX Runtime loads on demand.
#[cfg(windows)]
const CUDA_PROVIDER_LIB: &str = "onnxruntime_providers_cuda.dll";
#[cfg(not(windows))]
const CUDA_PROVIDER_LIB: &str = "libonnxruntime_providers_cuda.so";

/// Decides whether sessions should try CUDA, and records why.
fn choose_provider(dylib: &Path, env: &Environment) -> (Provider, String) {
    let dir = dylib.parent().unwrap_or(Path::new("."));
    if std::env::var_os(FORCE_CPU_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return (Provider::Cpu, format!("CPU: {FORCE_CPU_ENV} is set"));
    }
    let cuda_lib = dir.join(CUDA_PROVIDER_LIB);
    if !cuda_lib.is_file() {
        return (
            Provider::Cpu,
            format!("CPU: no {CUDA_PROVIDER_LIB} beside {}", dylib.display()),
        );
    }
    let preload_notes = preload_cuda_libraries(dir);
    let probe = Session::builder(env)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    match probe {
        Ok(()) => (
            Provider::Cuda,
            format!("CUDA: {CUDA_PROVIDER_LIB} registered{preload_notes}"),
        ),
        Err(e) => (
            Provider::Cpu,
            format!(
                "CPU: {CUDA_PROVIDER_LIB} is present but CUDA failed to start ({e}){preload_notes}"
            ),
        ),
    }
}

/// The CUDA provider needs cuDNN and cuBLAS; bundles may carry them (as the
/// NVIDIA Python wheels lay them out) in sibling folders of the runtime. They
/// are preloaded so the dynamic loader finds them without `LD_LIBRARY_PATH`.
/// Returns a note for [`RuntimeInfo::why`] (empty when nothing was preloaded).
fn preload_cuda_libraries(dir: &Path) -> String {
    let cuda_dirs = ["", "cuda", "nvidia/cu13/lib", "../nvidia/cu13/lib"];
    let cudnn_dirs = ["", "cudnn", "nvidia/cudnn/lib", "../nvidia/cudnn/lib"];
    let mut notes = Vec::new();
    let first = |rels: &[&str], marker: &str| {
        rels.iter()
            .map(|r| {
                if r.is_empty() {
                    dir.to_path_buf()
                } else {
                    dir.join(r)
                }
            })
            .find(|d| d.join(marker).is_file())
    };
    if let Some(d) = first(&cuda_dirs, ort::ep::cuda::CUDA_DYLIBS[0]) {
        match ort::ep::cuda::preload_dylibs(Some(&d), None) {
            Ok(()) => notes.push(format!("CUDA libraries preloaded from {}", d.display())),
            Err(e) => notes.push(format!(
                "preloading CUDA libraries from {} failed: {e}",
                d.display()
            )),
        }
    }
    if let Some(d) = first(&cudnn_dirs, ort::ep::cuda::CUDNN_DYLIBS[0]) {
        match ort::ep::cuda::preload_dylibs(None, Some(&d)) {
            Ok(()) => notes.push(format!("cuDNN preloaded from {}", d.display())),
            Err(e) => notes.push(format!("preloading cuDNN from {} failed: {e}", d.display())),
        }
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    }
}

/// Registers one CPU arena allocator (default arena settings) on the
/// environment, for sessions created with `session.use_env_allocators`.
/// `ort` has no safe wrapper for `CreateAndRegisterAllocator`, so this calls
/// the C API directly.
fn register_shared_cpu_arena(env: &Environment) -> Result<(), String> {
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer;
    let info = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Arena,
        MemoryType::Default,
    )
    .map_err(|e| e.to_string())?;
    let api = ort::api();
    // SAFETY: both pointers come from live `ort` objects (the environment
    // outlives every session; ONNX Runtime copies the memory info), a null
    // arena config means the defaults, and a non-null status is read and
    // released exactly once.
    unsafe {
        let status =
            (api.CreateAndRegisterAllocator)(env.ptr().cast_mut(), info.ptr(), std::ptr::null());
        if status.0.is_null() {
            return Ok(());
        }
        let msg = (api.GetErrorMessage)(status.0);
        let text = if msg.is_null() {
            "unknown error".to_string()
        } else {
            std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned()
        };
        (api.ReleaseStatus)(status.0);
        Err(text)
    }
}

/// Number of intra-op threads per session: the engine thread already runs
/// beside the audio thread and the host, so a session takes at most half the
/// cores (and at least one).
fn intra_threads() -> usize {
    if let Some(n) = std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n.min(64);
    }
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).clamp(1, 4))
        .unwrap_or(1)
}

/// Which provider a particular session ended up on, and why (a model may fail
/// on CUDA and fall back to CPU even when the runtime prefers CUDA).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionProvider {
    /// The provider that runs this session.
    pub provider: Provider,
    /// Why, for the status line.
    pub why: String,
}

impl fmt::Display for SessionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// Creates a session from ONNX bytes with the runtime's preferred provider,
/// falling back to CPU if CUDA fails for this model. Errors are plain text
/// (callers wrap them in their own error types).
pub(crate) fn create_session(bytes: &[u8]) -> Result<(Session, SessionProvider), String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    let attempt = |cuda: bool| -> Result<Session, String> {
        let result = catch_unwind(AssertUnwindSafe(|| -> Result<Session, String> {
            let mut builder = configured_builder(rt)?;
            if cuda {
                builder = builder
                    .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                    .map_err(|e| e.to_string())?;
            }
            builder.commit_from_memory(bytes).map_err(|e| e.to_string())
        }));
        result.unwrap_or_else(|p| Err(format!("ort panicked: {}", panic_message(&p))))
    };
    if rt.provider == Provider::Cuda {
        match attempt(true) {
            Ok(s) => {
                return Ok((
                    s,
                    SessionProvider {
                        provider: Provider::Cuda,
                        why: rt.why.clone(),
                    },
                ))
            }
            Err(e) => {
                let s = attempt(false)?;
                return Ok((
                    s,
                    SessionProvider {
                        provider: Provider::Cpu,
                        why: format!("CPU: CUDA failed for this model ({e})"),
                    },
                ));
            }
        }
    }
    let s = attempt(false)?;
    Ok((
        s,
        SessionProvider {
            provider: Provider::Cpu,
            why: rt.why.clone(),
        },
    ))
}

/// Session options shared by every model: full graph optimisation, a modest
/// thread count, deterministic kernels (bit-identical output for equal
/// inputs is part of the instrument's contract), and the environment's shared
/// CPU arena when it was registered.
fn configured_builder(rt: &RuntimeInfo) -> Result<SessionBuilder, String> {
    let builder = Session::builder(&rt.env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| e.to_string())?
        .with_intra_threads(intra_threads())
        .map_err(|e| e.to_string())?
        .with_deterministic_compute(true)
        .map_err(|e| e.to_string())?;
    if rt.shared_arena {
        builder.with_env_allocators().map_err(|e| e.to_string())
    } else {
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("grown-rt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn search_dirs_cover_bundle_and_target_layouts() {
        let bundle = search_dirs(Some(Path::new("/b/Contents/MacOS")));
        assert_eq!(bundle[0], PathBuf::from("/b/Contents/MacOS"));
        assert!(bundle.contains(&PathBuf::from("/b/Contents/Resources")));
        let dirs = search_dirs(Some(Path::new("/w/target/debug/deps")));
        assert_eq!(dirs[0], PathBuf::from("/w/target/debug/deps"));
        assert!(dirs.contains(&PathBuf::from("/w/target/onnxruntime")));
        assert!(dirs.contains(&PathBuf::from("/w/target/debug/onnxruntime")));
        // Nothing outside the module's own surroundings.
        assert!(bundle.iter().all(|d| d.starts_with("/b")), "{bundle:?}");
        let mut uniq = dirs.clone();
        uniq.dedup();
        assert_eq!(uniq.len(), dirs.len());
    }

    #[test]
    fn missing_library_is_a_clear_error() {
        let empty = tempdir("empty");
        let err = find_dylib(None, std::slice::from_ref(&empty)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&empty.display().to_string()), "{msg}");
        assert!(msg.contains("cargo xtask fetch-ort"), "{msg}");
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");

        let bad = OsStr::new("/definitely/not/here/libonnxruntime.so");
        let err = find_dylib(Some(bad), std::slice::from_ref(&empty)).unwrap_err();
        assert!(matches!(
            err,
            RuntimeError::NotFound {
                env_value: Some(_),
                ..
            }
        ));
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn finds_versioned_file_and_resolves_symlinks() {
        let d = tempdir("found");
        let real_dir = d.join("real");
        std::fs::create_dir_all(&real_dir).unwrap();
        let real = real_dir.join("libonnxruntime.so.1.31.1");
        std::fs::write(&real, b"x").unwrap();
        std::fs::write(real_dir.join("libonnxruntime.so.1.4.0"), b"x").unwrap();
        std::fs::write(real_dir.join("libonnxruntime_providers_shared.so"), b"x").unwrap();
        let link_dir = d.join("link");
        std::fs::create_dir_all(&link_dir).unwrap();
        std::os::unix::fs::symlink(&real, link_dir.join("libonnxruntime.so")).unwrap();

        let found = find_dylib(None, &[d.join("nothing"), link_dir.clone()]).unwrap();
        assert_eq!(found, std::fs::canonicalize(&real).unwrap());
        let found = find_dylib(None, std::slice::from_ref(&real_dir)).unwrap();
        assert_eq!(found, std::fs::canonicalize(&real).unwrap());
        // A folder in ORT_DYLIB_PATH is searched too.
        let found = find_dylib(Some(real_dir.as_os_str()), &[]).unwrap();
        assert_eq!(found, std::fs::canonicalize(&real).unwrap());
    }

    #[test]
    fn version_from_build_info() {
        assert_eq!(
            parse_version("ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc").as_deref(),
            Some("1.31.1")
        );
        assert_eq!(parse_version("no version here"), None);
    }

    #[test]
    fn loads_real_runtime_with_version() {
        let rt = runtime()
            .expect("ONNX Runtime missing: run `cargo xtask fetch-ort` or set ORT_DYLIB_PATH");
        assert!(rt.version.starts_with("1."), "{}", rt.version);
        let minor: u32 = rt.version.split('.').nth(1).unwrap().parse().unwrap();
        assert!(minor >= REQUIRED_MINOR);
        assert!(rt.dylib.is_absolute() && rt.dylib.is_file());
        assert_eq!(std::fs::canonicalize(&rt.dylib).unwrap(), rt.dylib);
        // Every plugin instance's sessions draw on one arena (see the field).
        assert!(rt.shared_arena, "the shared CPU arena was not registered");
        // No CUDA provider in the test setups: CPU, with the reason recorded.
        if rt.provider == Provider::Cpu {
            assert!(rt.why.starts_with("CPU"), "{}", rt.why);
        }
    }

    #[cfg(unix)]
    #[test]
    fn cuda_failure_falls_back_to_cpu_with_reason() {
        let rt = runtime()
            .expect("ONNX Runtime missing: run `cargo xtask fetch-ort` or set ORT_DYLIB_PATH");
        // A folder that looks like a CUDA bundle whose libraries are broken.
        let d = tempdir("cuda");
        let lib = d.join("libonnxruntime.so.1.31.1");
        std::fs::write(&lib, b"x").unwrap();
        std::fs::write(d.join(CUDA_PROVIDER_LIB), b"not a library").unwrap();
        let cu = d.join("nvidia/cu13/lib");
        std::fs::create_dir_all(&cu).unwrap();
        std::fs::write(cu.join(ort::ep::cuda::CUDA_DYLIBS[0]), b"not a library").unwrap();
        let (provider, why) = choose_provider(&lib, &rt.env);
        assert_eq!(provider, Provider::Cpu);
        assert!(why.contains("CUDA failed to start"), "{why}");
        assert!(why.contains("preloading CUDA libraries from"), "{why}");
        // Without the provider library the reason says so.
        std::fs::remove_file(d.join(CUDA_PROVIDER_LIB)).unwrap();
        let (provider, why) = choose_provider(&lib, &rt.env);
        assert_eq!(provider, Provider::Cpu);
        assert!(
            why.contains("no libonnxruntime_providers_cuda.so beside"),
            "{why}"
        );
    }

    #[test]
    fn module_path_is_this_binary() {
        let p = module_path().expect("dladdr failed");
        assert!(p.is_file(), "{}", p.display());
    }

    /// Runs in a child process (see `bad_library_is_error_not_panic`), where
    /// no runtime has been loaded yet: `runtime()` must return an error whose
    /// text contains `GROWN_RUNTIME_CHILD`.
    #[test]
    fn child_bad_runtime() {
        let Some(expect) = std::env::var_os("GROWN_RUNTIME_CHILD") else {
            return;
        };
        let expect = expect.to_string_lossy().into_owned();
        let err = runtime().expect_err("runtime loaded from a bad ORT_DYLIB_PATH");
        assert!(err.to_string().contains(&expect), "{err}");
        // Still an error (not a cached success, not a panic) on the next call.
        assert!(runtime().is_err());
        println!("CHILD-OK {err}");
    }

    /// Runs `child_bad_runtime` in a fresh process with `ORT_DYLIB_PATH` set
    /// to `path` (the runtime can only be loaded once per process).
    fn run_child(path: &Path, expect: &str) -> String {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "onnx::runtime::tests::child_bad_runtime",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GROWN_RUNTIME_CHILD", expect)
            .env(DYLIB_ENV, path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("CHILD-OK"), "{stdout}");
        stdout
    }

    #[test]
    fn bad_library_is_error_not_panic() {
        // Nothing at the path.
        run_child(
            Path::new("/no/such/onnxruntime/libonnxruntime.so"),
            "/no/such/onnxruntime",
        );
        // A file that is not a library.
        let d = tempdir("garbage");
        let f = d.join("libonnxruntime.so.1.31.1");
        std::fs::write(&f, b"this is not a shared library").unwrap();
        let out = run_child(&f, "could not load ONNX Runtime from");
        assert!(out.contains("libonnxruntime.so.1.31.1"), "{out}");
    }

    /// A real ONNX Runtime that is too old (1.20.1, installed by `cargo xtask
    /// fetch-ort --test-fixtures`) is refused with the version it has, the one
    /// needed and how to fix it, instead of failing later on a missing API.
    #[test]
    fn old_runtime_is_a_version_error() {
        let target = std::env::current_exe()
            .unwrap()
            .ancestors()
            .nth(3)
            .expect("test binary outside a cargo target directory")
            .to_path_buf();
        let old = target.join("onnxruntime-old/libonnxruntime.so.1.20.1");
        assert!(
            old.is_file(),
            "{} is missing: run `cargo xtask fetch-ort --test-fixtures`",
            old.display()
        );
        let out = run_child(&old, "is version 1.20.1, but Grown needs 1.31 or newer");
        assert!(out.contains("cargo xtask fetch-ort"), "{out}");
    }
}
