//! Installs the ONNX Runtime shared library from its PyPI wheel.
//!
//! The plugin uses `ort` with `load-dynamic`, so it needs `libonnxruntime.so.1.31.1`
//! at run time. PyPI is the one place this project may download it from, and the
//! wheel carries the exact library the Python side tests against. pip only downloads
//! the wheel; we unpack it ourselves, checking every file against the wheel's RECORD
//! hashes, and write a manifest so later runs can skip the download when the
//! installed files still hash the same.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The ONNX Runtime release the `ort` crate's `api-31` feature expects.
pub const ORT_VERSION: &str = "1.31.1";
/// The library file name the plugin's runtime loader looks for.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";
/// Written last, after every library is in place, so its presence means a complete install.
const MANIFEST: &str = "manifest.txt";
/// A release too old for Grown: the fixture of the wrong-version test
/// (`runtime::tests::old_runtime_is_a_version_error`), never bundled.
pub const OLD_VERSION: &str = "1.20.1";
/// The fixture's library file name.
pub const OLD_LIBRARY: &str = "libonnxruntime.so.1.20.1";

/// Which wheel to install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `onnxruntime`: CPU execution provider only.
    Cpu,
    /// `onnxruntime-gpu`: adds the CUDA (and TensorRT) provider libraries; also runs on CPU.
    Gpu,
}

impl Variant {
    fn package(self) -> &'static str {
        match self {
            Variant::Cpu => "onnxruntime",
            Variant::Gpu => "onnxruntime-gpu",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Cpu => "cpu",
            Variant::Gpu => "gpu",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "cpu" => Some(Variant::Cpu),
            "gpu" => Some(Variant::Gpu),
            _ => None,
        }
    }

    /// Which libraries of the wheel's `onnxruntime/capi/` folder we install.
    fn wants(self, file_name: &str) -> bool {
        match self {
            Variant::Cpu => file_name == ORT_LIBRARY,
            Variant::Gpu => {
                file_name == ORT_LIBRARY
                    || (file_name.starts_with("libonnxruntime_providers_")
                        && file_name.ends_with(".so"))
            }
        }
    }
}

/// What a previous run installed, as recorded in the manifest.
#[derive(Debug, PartialEq)]
struct Manifest {
    /// Which wheel the files came from; a GPU install satisfies a CPU request.
    variant: Variant,
    /// Installed file names (in the install folder) and their SHA-256 in hex.
    files: Vec<(String, String)>,
}

impl Manifest {
    fn render(&self, wheel: &str) -> String {
        let mut text = String::from(
            "# Written by `cargo xtask fetch-ort`: the files it installed and their SHA-256.\n",
        );
        text.push_str(&format!(
            "version {ORT_VERSION}\nvariant {}\n",
            self.variant.name()
        ));
        text.push_str(&format!("wheel {wheel}\n"));
        for (name, hash) in &self.files {
            text.push_str(&format!("file {hash} {name}\n"));
        }
        text
    }

    fn parse(text: &str) -> Option<Self> {
        let mut version_ok = false;
        let mut variant = None;
        let mut files = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut words = line.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("version"), Some(v), None) => version_ok = v == ORT_VERSION,
                (Some("variant"), Some(v), None) => variant = Variant::parse(v),
                (Some("wheel"), Some(_), None) => {}
                (Some("file"), Some(hash), Some(name)) => {
                    files.push((name.to_owned(), hash.to_owned()))
                }
                _ => return None,
            }
        }
        let has_library = files.iter().any(|(name, _)| name == ORT_LIBRARY);
        (version_ok && has_library).then_some(Self {
            variant: variant?,
            files,
        })
    }
}

/// Where `fetch-ort` installs the libraries.
pub fn install_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("onnxruntime")
}

/// Makes sure ONNX Runtime is installed; downloads it only when it is missing, damaged,
/// the wrong variant, or `force` is set. Returns the installed files, main library first.
pub fn ensure(target_dir: &Path, variant: Variant, force: bool) -> Result<Vec<PathBuf>> {
    let dir = install_dir(target_dir);
    if !force {
        if let Some(manifest) = read_manifest(&dir) {
            let variant_ok = variant == Variant::Cpu || manifest.variant == Variant::Gpu;
            if variant_ok && files_match(&dir, &manifest) {
                eprintln!(
                    "ONNX Runtime {ORT_VERSION} ({}) is up to date in {}",
                    manifest.variant.name(),
                    dir.display()
                );
                return Ok(installed_paths(&dir, &manifest));
            }
        }
    }

    let download_dir = target_dir.join("onnxruntime-wheel");
    if download_dir.exists() {
        fs::remove_dir_all(&download_dir)
            .with_context(|| format!("could not clear {}", download_dir.display()))?;
    }
    fs::create_dir_all(&download_dir)?;
    let requirement = format!("{}=={ORT_VERSION}", variant.package());
    let wheel = download_wheel(&requirement, &[], &download_dir)?;

    fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    // Drop the old manifest first: if we stop half-way, the next run must not trust the folder.
    if let Some(old) = read_manifest(&dir) {
        fs::remove_file(dir.join(MANIFEST))?;
        for (name, _) in &old.files {
            let _ = fs::remove_file(dir.join(name));
        }
    }
    let manifest = extract(&wheel, variant, &dir)?;
    let wheel_name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let staged = dir.join(format!("{MANIFEST}.part"));
    fs::write(&staged, manifest.render(&wheel_name))?;
    fs::rename(&staged, dir.join(MANIFEST))?;
    fs::remove_dir_all(&download_dir)
        .with_context(|| format!("could not remove {}", download_dir.display()))?;

    for (name, _) in &manifest.files {
        eprintln!("installed {}", dir.join(name).display());
    }
    Ok(installed_paths(&dir, &manifest))
}

fn installed_paths(dir: &Path, manifest: &Manifest) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = manifest.files.iter().map(|(n, _)| dir.join(n)).collect();
    paths.sort_by_key(|p| p.file_name().map(|n| n != ORT_LIBRARY));
    paths
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    Manifest::parse(&fs::read_to_string(dir.join(MANIFEST)).ok()?)
}

/// True when every recorded file is a regular file (not a link) with the recorded hash.
fn files_match(dir: &Path, manifest: &Manifest) -> bool {
    manifest.files.iter().all(|(name, hash)| {
        let path = dir.join(name);
        let regular = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        regular && sha256_file(&path).is_ok_and(|h| hex(&h) == *hash)
    })
}

/// The interpreter whose pip downloads the wheel: `$GROWN_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("GROWN_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Where `fetch-ort --test-fixtures` installs the too-old library.
pub fn old_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("onnxruntime-old")
}

/// Installs ONNX Runtime [`OLD_VERSION`] (the library only) for the wrong-version
/// test, unless it is already there with the hash recorded beside it.
pub fn ensure_old(target_dir: &Path) -> Result<PathBuf> {
    let dir = old_dir(target_dir);
    let library = dir.join(OLD_LIBRARY);
    let recorded = fs::read_to_string(dir.join("sha256")).unwrap_or_default();
    if sha256_file(&library).is_ok_and(|h| hex(&h) == recorded.trim()) {
        eprintln!(
            "test fixture ONNX Runtime {OLD_VERSION} is up to date in {}",
            dir.display()
        );
        return Ok(library);
    }
    let download_dir = target_dir.join("onnxruntime-old-wheel");
    let _ = fs::remove_dir_all(&download_dir);
    fs::create_dir_all(&download_dir)?;
    // Only the native library is used, so any CPython tag of the Linux x86-64
    // wheel will do; pinning one lets an interpreter newer than the release work.
    let wheel = download_wheel(
        &format!("onnxruntime=={OLD_VERSION}"),
        &[
            "--python-version",
            "3.12",
            "--platform",
            "manylinux_2_27_x86_64",
        ],
        &download_dir,
    )?;
    fs::create_dir_all(&dir)?;
    let _ = fs::remove_file(dir.join("sha256"));
    let files = extract_matching(&wheel, &dir, |name| name == OLD_LIBRARY)?;
    let Some((_, hash)) = files.first() else {
        bail!("{} has no onnxruntime/capi/{OLD_LIBRARY}", wheel.display());
    };
    fs::write(dir.join("sha256"), format!("{hash}\n"))?;
    fs::remove_dir_all(&download_dir)?;
    eprintln!("installed {}", library.display());
    Ok(library)
}

fn download_wheel(requirement: &str, extra_args: &[&str], into: &Path) -> Result<PathBuf> {
    let python = python();
    eprintln!("downloading {requirement} from PyPI with {python} -m pip");
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--progress-bar", "off"])
        .args(extra_args)
        .arg(requirement)
        .arg("-d")
        .arg(into)
        .stdin(Stdio::null())
        .status()
        .with_context(|| {
            format!("could not run `{python} -m pip` (set GROWN_PYTHON to another interpreter)")
        })?;
    if !status.success() {
        bail!("`{python} -m pip download {requirement}` failed ({status})");
    }
    let mut wheels = fs::read_dir(into)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"));
    let wheel = wheels
        .next()
        .with_context(|| format!("pip downloaded no wheel into {}", into.display()))?;
    Ok(wheel)
}

/// One line of a wheel's RECORD: path, `sha256=<urlsafe base64>`, size.
fn record_hash(line: &str) -> Option<(&str, &str)> {
    let mut fields = line.rsplitn(3, ',');
    let _size = fields.next()?;
    let hash = fields.next()?.strip_prefix("sha256=")?;
    let path = fields.next()?;
    Some((path, hash))
}

fn extract(wheel: &Path, variant: Variant, dir: &Path) -> Result<Manifest> {
    let files = extract_matching(wheel, dir, |name| variant.wants(name))?;
    if !files.iter().any(|(name, _)| name == ORT_LIBRARY) {
        bail!("{} has no onnxruntime/capi/{ORT_LIBRARY}", wheel.display());
    }
    Ok(Manifest { variant, files })
}

/// Unpacks the wheel's `onnxruntime/capi/` files that `wants` names into `dir`,
/// each checked against the RECORD hash; returns their names and hex SHA-256.
fn extract_matching(
    wheel: &Path,
    dir: &Path,
    wants: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>> {
    let file =
        fs::File::open(wheel).with_context(|| format!("could not open {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a valid wheel", wheel.display()))?;

    let record_name = archive
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| n.ends_with(".dist-info/RECORD"))
        .map(|n| n.into_owned())
        .context("the wheel has no RECORD file")?;
    let mut record = String::new();
    archive.by_name(&record_name)?.read_to_string(&mut record)?;

    let mut files = Vec::new();
    for line in record.lines() {
        let Some((path, expected)) = record_hash(line) else {
            continue;
        };
        let Some(name) = path.strip_prefix("onnxruntime/capi/") else {
            continue;
        };
        if name.contains('/') || !wants(name) {
            continue;
        }
        let mut entry = archive.by_name(path)?;
        if entry.is_symlink() {
            bail!("{path} is a link inside the wheel; expected a real file");
        }
        let staged = dir.join(format!("{name}.part"));
        let mut out = fs::File::create(&staged)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])?;
        }
        out.sync_all()?;
        let digest: [u8; 32] = hasher.finalize().into();
        if base64_url(&digest) != expected {
            let _ = fs::remove_file(&staged);
            bail!("{path} does not match the hash in the wheel's RECORD; the download is damaged");
        }
        fs::rename(&staged, dir.join(name))?;
        files.push((name.to_owned(), hex(&digest)));
    }
    Ok(files)
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// URL-safe base64 without padding: the encoding of hashes in a wheel's RECORD (PEP 376).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_known_vectors() {
        assert_eq!(base64_url(b""), "");
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(b"foob"), "Zm9vYg");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
        // The RECORD entry of an empty file: sha256 of "" in urlsafe base64.
        let empty: [u8; 32] = Sha256::digest(b"").into();
        assert_eq!(
            base64_url(&empty),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn record_lines_parse_from_the_right() {
        let line = "onnxruntime/capi/libonnxruntime.so.1.31.1,sha256=abc_-,12345";
        assert_eq!(
            record_hash(line),
            Some(("onnxruntime/capi/libonnxruntime.so.1.31.1", "abc_-"))
        );
        assert_eq!(record_hash("onnxruntime-1.31.1.dist-info/RECORD,,"), None);
    }

    #[test]
    fn manifest_round_trips_and_rejects_other_versions() {
        let manifest = Manifest {
            variant: Variant::Gpu,
            files: vec![
                (ORT_LIBRARY.to_owned(), "00ff".to_owned()),
                (
                    "libonnxruntime_providers_cuda.so".to_owned(),
                    "abcd".to_owned(),
                ),
            ],
        };
        let text = manifest.render("x.whl");
        assert_eq!(Manifest::parse(&text), Some(manifest));
        assert_eq!(Manifest::parse(&text.replace(ORT_VERSION, "1.30.0")), None);
        assert_eq!(Manifest::parse("version 1.31.1\nvariant cpu\n"), None);
    }

    #[test]
    fn variants_pick_their_libraries() {
        assert!(Variant::Cpu.wants(ORT_LIBRARY));
        assert!(!Variant::Cpu.wants("libonnxruntime_providers_cuda.so"));
        assert!(Variant::Gpu.wants("libonnxruntime_providers_cuda.so"));
        assert!(Variant::Gpu.wants("libonnxruntime_providers_shared.so"));
        assert!(!Variant::Gpu.wants("onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so"));
    }
}
