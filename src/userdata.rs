//! Where Grown keeps what a user makes: saved presets and recorded WAV files,
//! under the platform's per-user data folder. Main and engine threads only.

use std::path::PathBuf;

/// Overrides the data folder (tests, portable installs).
pub const DATA_DIR_ENV: &str = "GROWN_DATA_DIR";

/// `Grown` under the platform's user data folder: `$XDG_DATA_HOME` or
/// `~/.local/share` on Linux, `~/Library/Application Support` on macOS,
/// `%APPDATA%` on Windows; or `$GROWN_DATA_DIR` as it is.
pub fn data_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env(DATA_DIR_ENV) {
        return Some(dir);
    }
    let base = if cfg!(target_os = "windows") {
        env("APPDATA")?
    } else if cfg!(target_os = "macos") {
        env("HOME")?.join("Library/Application Support")
    } else {
        env("XDG_DATA_HOME").or_else(|| env("HOME").map(|h| h.join(".local/share")))?
    };
    Some(base.join("Grown"))
}

/// The user's presets: `<data>/presets`.
pub fn presets_dir() -> Option<PathBuf> {
    data_dir().map(|d| d.join("presets"))
}

/// Sounds saved from the editor: `<data>/recordings`.
pub fn recordings_dir() -> Option<PathBuf> {
    data_dir().map(|d| d.join("recordings"))
}

/// A file-name-safe form of `name`: lower-case letters, digits and single
/// dashes, at most 60 characters; `"preset"` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "preset".to_owned()
    } else {
        out
    }
}

/// `YYYYMMDD-HHMMSS` (UTC) of the current time, for file names that sort by date.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("Strings, slow swell"), "strings-slow-swell");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("  ***  "), "preset");
        assert!(slug(&"x".repeat(500)).len() <= 60);
    }

    #[test]
    fn timestamps_are_dates() {
        let t = timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert!(t.starts_with("20"), "{t}");
        assert_eq!(&t[8..9], "-");
    }
}
