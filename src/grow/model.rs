//! NCA model files: reading, validating against the contract in
//! `models/README.md`, and opening an ONNX Runtime session for them.
//!
//! Validation happens in two stages. The metadata is read straight from the
//! file's protobuf (no ONNX Runtime needed), so a file from a newer contract
//! or with a missing key is refused with a precise message even on a machine
//! where the runtime is missing. The graph's inputs and outputs are then
//! checked against the session ONNX Runtime built, because only the runtime
//! knows the final types and shapes.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use crate::dsp::mel::MelConfig;
use crate::dsp::stft_ms::{
    StftMsConfig, REPRESENTATION as STFT_MS, VISIBLE_CHANNELS as STFT_VISIBLE,
};
use crate::grow::bank::SeedBank;
use crate::onnx::runtime::{self, SessionProvider};

/// The newest contract version this build understands. Version 2 adds the
/// excerpt seed (`grown.seed_state` kind `excerpt` with `grown.seed_bank`);
/// version-1 files load and play as they always did.
pub const CONTRACT_VERSION: u32 = 2;

/// The first contract version with excerpt seeds.
pub const EXCERPT_CONTRACT_VERSION: u32 = 2;

/// The model that ships inside the binary, so the instrument makes sound
/// without any file next to it.
pub static DEFAULT_MODEL: &[u8] = include_bytes!("../../models/nca/strings.onnx");

/// Source string of [`DEFAULT_MODEL`], shown in the status line.
pub const DEFAULT_MODEL_SOURCE: &str = "embedded:strings";

/// Largest loudness correction a model may ask for: beyond it the grown sound
/// is silence or broken, and a gain would only amplify noise.
pub const MAX_LEVEL_DB: f32 = 60.0;

/// Everything the metadata of an NCA file declares (see models/README.md).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// `grown.contract`; always [`CONTRACT_VERSION`] after validation, kept
    /// for display and for files written back out.
    pub contract: u32,
    /// `grown.representation`: `mel` (one visible log-mel channel, vocoded) or
    /// `stft-ms` (four visible mid/side STFT channels, played by an inverse STFT).
    pub representation: String,
    /// `grown.stft` of an `stft-ms` model (None for mel models); decides
    /// whether the engine runs a vocoder or the exact inverse STFT.
    pub stft: Option<StftMsConfig>,
    /// `grown.channels`: C, the depth of the state tensor.
    pub channels: usize,
    /// `grown.spec_channel`: which channel is the visible spectrogram.
    pub spec_channel: usize,
    /// `grown.spec_scale`: natural-log mel = scale * state + offset.
    pub spec_scale: f32,
    /// `grown.spec_offset`: see `spec_scale`.
    pub spec_offset: f32,
    /// `grown.mel`: the analysis the model was trained on; the vocoder must match.
    /// For `stft-ms` models this is only the grid geometry derived from
    /// `grown.stft` (`n_mels` = bins, `hop`, `sample_rate`); no mel is computed.
    pub mel: MelConfig,
    /// `grown.growth_steps`: the default number of steps to grow.
    pub growth_steps: u32,
    /// `grown.fire_rate`: the default per-cell update probability.
    pub fire_rate: f32,
    /// Standard deviation of the seed noise (`grown.seed_state` `{"kind":…,"std":s}`).
    pub seed_std: f32,
    /// `grown.seed_bank` of an excerpt-seeded model (`grown.seed_state` kind
    /// `excerpt`, contract 2): the seed state is a passage of it plus the seed
    /// noise. Its rows are the visible channels' grids stacked
    /// ([`ModelInfo::visible_channels`] × `mel.n_mels`). None: the seed state
    /// is the noise alone (kind `normal`). Shared, because model info is
    /// cloned for display and the bank can be large.
    pub seed_bank: Option<Arc<SeedBank>>,
    /// `grown.train_frames`: the length the model was trained at (a sensible default length).
    pub train_frames: usize,
    /// `grown.perception`: informational, shown in the model details.
    pub perception: String,
    /// `grown.unroll`: NCA steps applied per call (K rows in `update_mask`).
    pub unroll: usize,
    /// `grown.target`: training target and its author, for attribution.
    pub target: String,
    /// `grown.license`: licence of the training target, for attribution.
    pub license: String,
    /// `grown.level_db` (optional, 0 when absent): gain applied to every
    /// generation after the vocoder, so the model plays as loud as the
    /// recording it grew from. Measured offline (`grown_train calibrate`):
    /// a grown spectrogram's level is whatever training left it at.
    pub level_db: f32,
}

/// Why a model could not be used. `Display` is one clear line.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    /// The file does not exist.
    Missing(PathBuf),
    /// The bytes are not an ONNX model (wrong file, or truncated).
    NotOnnx(String),
    /// An ONNX model that breaks the Grown contract; the text says which rule.
    Contract(String),
    /// Written for a newer contract than this build understands.
    FutureVersion(u32),
    /// The file could not be read.
    Io(String),
    /// ONNX Runtime is unavailable or failed (loading or running the model).
    Runtime(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Missing(p) => write!(f, "model file not found: {}", p.display()),
            ModelError::NotOnnx(m) => write!(f, "not an ONNX model: {m}"),
            ModelError::Contract(m) => write!(f, "model breaks the Grown contract: {m}"),
            ModelError::FutureVersion(v) => write!(
                f,
                "model uses contract version {v}, this build understands version {CONTRACT_VERSION}; update Grown"
            ),
            ModelError::Io(m) => write!(f, "could not read model: {m}"),
            ModelError::Runtime(m) => write!(f, "ONNX Runtime error: {m}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// A loaded NCA model: its validated metadata and a ready session.
pub struct NcaModel {
    /// Validated metadata.
    pub info: ModelInfo,
    /// Where it came from: a path, or [`DEFAULT_MODEL_SOURCE`]; for the status line.
    pub source: String,
    /// Which provider runs the session and why, for the status line.
    pub provider: SessionProvider,
    /// The ONNX Runtime session (one NCA step, or `unroll` steps, per run).
    pub(crate) session: Session,
}

impl fmt::Debug for NcaModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NcaModel")
            .field("info", &self.info)
            .field("source", &self.source)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl NcaModel {
    /// Loads and validates an NCA model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        if !path.exists() {
            return Err(ModelError::Missing(path.to_path_buf()));
        }
        let bytes =
            std::fs::read(path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes, path.display().to_string())
    }

    /// The model embedded in the binary ([`DEFAULT_MODEL`]).
    pub fn load_embedded_default() -> Result<Self, ModelError> {
        Self::from_bytes(DEFAULT_MODEL, DEFAULT_MODEL_SOURCE.to_string())
    }

    /// Validates ONNX bytes and opens a session; `source` names them in messages.
    pub fn from_bytes(bytes: &[u8], source: String) -> Result<Self, ModelError> {
        let meta = read_metadata(bytes)?;
        let info = parse_metadata(&meta)?;
        let (session, provider) =
            runtime::create_session(bytes).map_err(|e| classify_load_error(&source, e))?;
        check_graph(&session, &info)?;
        Ok(Self {
            info,
            source,
            provider,
            session,
        })
    }
}

/// ONNX Runtime's load errors are either "these bytes are not a model" or
/// everything else (missing runtime, unsupported operator, ...).
fn classify_load_error(source: &str, e: String) -> ModelError {
    if e.to_ascii_lowercase().contains("protobuf") {
        ModelError::NotOnnx(format!("{source}: {e}"))
    } else {
        ModelError::Runtime(format!("{source}: {e}"))
    }
}

/// Reads and validates the metadata of ONNX bytes without ONNX Runtime: the
/// pure half of [`NcaModel::from_bytes`], and the entry point the fuzz target
/// `model_metadata` drives. Never panics, whatever the bytes.
pub fn parse_model_bytes(bytes: &[u8]) -> Result<ModelInfo, ModelError> {
    parse_metadata(&read_metadata(bytes)?)
}

/// [`parse_model_bytes`] on untrusted bytes with its promises checked: no
/// panic, and accepted metadata satisfies the contract's invariants. The entry
/// point of the `model_metadata` fuzz target and of the stable mutation test.
#[doc(hidden)]
pub fn fuzz_metadata(bytes: &[u8]) {
    match parse_model_bytes(bytes) {
        Ok(info) => {
            assert!(info.contract >= 1 && info.contract <= CONTRACT_VERSION);
            assert!(info.channels >= 1 && info.spec_channel < info.channels);
            assert!(info.spec_scale.is_finite() && info.spec_scale != 0.0);
            assert!(info.spec_offset.is_finite());
            assert!(info.fire_rate > 0.0 && info.fire_rate <= 1.0);
            assert!(info.seed_std.is_finite() && info.seed_std >= 0.0);
            assert!(info.unroll >= 1 && info.growth_steps >= 1 && info.train_frames >= 1);
            assert!(info.mel.n_mels >= 1 && info.mel.hop >= 1);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
}

/// Value of a required metadata key.
pub(crate) fn required<'a>(
    map: &'a HashMap<String, String>,
    key: &str,
) -> Result<&'a str, ModelError> {
    map.get(key)
        .map(|s| s.as_str())
        .ok_or_else(|| ModelError::Contract(format!("metadata key `{key}` is missing")))
}

/// Parses a required numeric key.
fn number<T: std::str::FromStr>(map: &HashMap<String, String>, key: &str) -> Result<T, ModelError> {
    let v = required(map, key)?;
    v.trim().parse().map_err(|_| {
        ModelError::Contract(format!("metadata `{key}` = `{v}` is not a valid number"))
    })
}

/// Checks `grown.contract`: the first thing read, so a future file is
/// reported as such even if its other keys changed.
pub(crate) fn check_contract(map: &HashMap<String, String>) -> Result<u32, ModelError> {
    let v: u32 = number(map, "grown.contract")?;
    if v > CONTRACT_VERSION {
        return Err(ModelError::FutureVersion(v));
    }
    if v < 1 {
        return Err(ModelError::Contract(format!(
            "metadata `grown.contract` = {v} is not a version"
        )));
    }
    Ok(v)
}

/// Parses and validates the metadata of an NCA file (pure; no runtime needed).
pub fn parse_metadata(map: &HashMap<String, String>) -> Result<ModelInfo, ModelError> {
    let contract = check_contract(map)?;
    let kind = required(map, "grown.kind")?;
    if kind != "nca" {
        return Err(ModelError::Contract(if kind == "vocoder" {
            "this is a vocoder file (`grown.kind` = vocoder), not an NCA model".to_string()
        } else {
            format!("metadata `grown.kind` = `{kind}`, expected `nca`")
        }));
    }
    let representation = required(map, "grown.representation")?.to_string();
    let stft = match representation.as_str() {
        "mel" => None,
        STFT_MS => Some(
            StftMsConfig::from_json(required(map, "grown.stft")?)
                .map_err(|e| ModelError::Contract(format!("`grown.stft`: {e}")))?,
        ),
        other => {
            return Err(ModelError::Contract(format!(
                "metadata `grown.representation` = `{other}`, expected `mel` or `stft-ms`"
            )))
        }
    };
    let channels: usize = number(map, "grown.channels")?;
    if channels == 0 {
        return Err(ModelError::Contract(
            "`grown.channels` must be at least 1".into(),
        ));
    }
    let spec_channel: usize = number(map, "grown.spec_channel")?;
    if spec_channel >= channels {
        return Err(ModelError::Contract(format!(
            "`grown.spec_channel` = {spec_channel} is not a channel (the model has {channels})"
        )));
    }
    let spec_scale: f32 = number(map, "grown.spec_scale")?;
    if !spec_scale.is_finite() || spec_scale == 0.0 {
        return Err(ModelError::Contract(format!(
            "`grown.spec_scale` = {spec_scale} must be finite and non-zero"
        )));
    }
    let spec_offset: f32 = number(map, "grown.spec_offset")?;
    if !spec_offset.is_finite() {
        return Err(ModelError::Contract(
            "`grown.spec_offset` must be finite".into(),
        ));
    }
    let mel = match &stft {
        Some(cfg) => cfg.grid(),
        None => MelConfig::from_json(required(map, "grown.mel")?)
            .map_err(|e| ModelError::Contract(format!("`grown.mel`: {e}")))?,
    };
    if stft.is_some() && spec_channel + STFT_VISIBLE > channels {
        return Err(ModelError::Contract(format!(
            "`grown.spec_channel` = {spec_channel}: an stft-ms model needs {STFT_VISIBLE} visible channels from there (the model has {channels})"
        )));
    }
    let growth_steps: u32 = number(map, "grown.growth_steps")?;
    if growth_steps == 0 {
        return Err(ModelError::Contract(
            "`grown.growth_steps` must be at least 1".into(),
        ));
    }
    let fire_rate: f32 = number(map, "grown.fire_rate")?;
    if !(fire_rate > 0.0 && fire_rate <= 1.0) {
        return Err(ModelError::Contract(format!(
            "`grown.fire_rate` = {fire_rate} must be in (0, 1]"
        )));
    }
    let (seed_std, excerpt) = parse_seed_state(required(map, "grown.seed_state")?)?;
    let train_frames: usize = number(map, "grown.train_frames")?;
    if train_frames == 0 {
        return Err(ModelError::Contract(
            "`grown.train_frames` must be at least 1".into(),
        ));
    }
    let perception = required(map, "grown.perception")?.to_string();
    let unroll: usize = number(map, "grown.unroll")?;
    if unroll == 0 {
        return Err(ModelError::Contract(
            "`grown.unroll` must be at least 1".into(),
        ));
    }
    let target = required(map, "grown.target")?.to_string();
    let license = required(map, "grown.license")?.to_string();
    // Optional: files made before loudness calibration play exactly as they did.
    let level_db: f32 = match map.get("grown.level_db") {
        None => 0.0,
        Some(_) => number(map, "grown.level_db")?,
    };
    if !(level_db.is_finite() && level_db.abs() <= MAX_LEVEL_DB) {
        return Err(ModelError::Contract(format!(
            "`grown.level_db` = {level_db} must be finite and within ±{MAX_LEVEL_DB} dB"
        )));
    }
    let seed_bank = if excerpt {
        if contract < EXCERPT_CONTRACT_VERSION {
            return Err(ModelError::Contract(format!(
                "`grown.seed_state` kind `excerpt` needs `grown.contract` ≥ {EXCERPT_CONTRACT_VERSION} (the file says {contract})"
            )));
        }
        // An stft-ms bank holds all four visible channels' grids, stacked.
        let rows = visible_channels(stft.is_some()) * mel.n_mels;
        let bank = SeedBank::from_json(required(map, "grown.seed_bank")?, rows)
            .map_err(|e| ModelError::Contract(format!("`grown.seed_bank`: {e}")))?;
        Some(Arc::new(bank))
    } else {
        None
    };
    Ok(ModelInfo {
        contract,
        representation,
        stft,
        channels,
        spec_channel,
        spec_scale,
        spec_offset,
        mel,
        growth_steps,
        fire_rate,
        seed_std,
        seed_bank,
        train_frames,
        perception,
        unroll,
        target,
        license,
        level_db,
    })
}

impl ModelInfo {
    /// Channels from `spec_channel` on that hold what is heard: one log-mel
    /// channel, or an stft-ms model's four mid/side re/im channels.
    pub fn visible_channels(&self) -> usize {
        visible_channels(self.stft.is_some())
    }
}

/// [`ModelInfo::visible_channels`] for a model that is (or is not) stft-ms.
fn visible_channels(stft_ms: bool) -> usize {
    if stft_ms {
        STFT_VISIBLE
    } else {
        1
    }
}

/// `{"kind":"normal"|"excerpt","std":s}` → `(s, is_excerpt)`.
fn parse_seed_state(s: &str) -> Result<(f32, bool), ModelError> {
    let bad = |why: String| ModelError::Contract(format!("`grown.seed_state` = `{s}`: {why}"));
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| bad(format!("invalid JSON ({e})")))?;
    let excerpt = match v.get("kind").and_then(|k| k.as_str()) {
        Some("normal") => false,
        Some("excerpt") => true,
        Some(other) => {
            return Err(bad(format!(
                "kind `{other}` is not supported (only `normal` or `excerpt`)"
            )))
        }
        None => return Err(bad("missing `kind`".into())),
    };
    let std = v
        .get("std")
        .and_then(|x| x.as_f64())
        .ok_or_else(|| bad("missing numeric `std`".into()))?;
    if !(std.is_finite() && std >= 0.0) {
        return Err(bad("`std` must be finite and ≥ 0".into()));
    }
    Ok((std as f32, excerpt))
}

/// Checks the session's inputs and outputs against the contract's graph table.
fn check_graph(session: &Session, info: &ModelInfo) -> Result<(), ModelError> {
    let c = info.channels as i64;
    let m = info.mel.n_mels as i64;
    let k = info.unroll as i64;
    let mut saw_state = false;
    let mut saw_mask = false;
    for input in session.inputs() {
        match input.name() {
            "state" => {
                check_tensor("input `state`", input.dtype(), &[Some(1), Some(c), Some(m), None], true)?;
                saw_state = true;
            }
            "update_mask" => {
                check_tensor("input `update_mask`", input.dtype(), &[Some(k), Some(1), Some(m), None], true)?;
                saw_mask = true;
            }
            other => {
                return Err(ModelError::Contract(format!(
                    "unexpected input `{other}` (the graph must take exactly `state` and `update_mask`)"
                )))
            }
        }
    }
    if !saw_state {
        return Err(ModelError::Contract(
            "the graph has no input named `state`".into(),
        ));
    }
    if !saw_mask {
        return Err(ModelError::Contract(
            "the graph has no input named `update_mask`".into(),
        ));
    }
    let out = session
        .outputs()
        .iter()
        .find(|o| o.name() == "next_state")
        .ok_or_else(|| ModelError::Contract("the graph has no output named `next_state`".into()))?;
    check_tensor(
        "output `next_state`",
        out.dtype(),
        &[Some(1), Some(c), Some(m), None],
        false,
    )
}

/// Checks one tensor's element type and shape. `expected` gives the fixed
/// size of each axis, or `None` for the dynamic frames axis. For inputs the
/// frames axis must really be dynamic (the plugin chooses the length) and the
/// other axes must be fixed as declared, except that a dynamic leading axis
/// is accepted; outputs may leave any axis symbolic (exporters often do).
pub(crate) fn check_tensor(
    what: &str,
    ty: &ValueType,
    expected: &[Option<i64>],
    input: bool,
) -> Result<(), ModelError> {
    let ValueType::Tensor {
        ty: elem, shape, ..
    } = ty
    else {
        return Err(ModelError::Contract(format!(
            "{what} must be a tensor, found {ty}"
        )));
    };
    if *elem != TensorElementType::Float32 {
        return Err(ModelError::Contract(format!(
            "{what} must be float32, found {elem}"
        )));
    }
    if shape.len() != expected.len() {
        return Err(ModelError::Contract(format!(
            "{what} must have {} axes, found {} ({ty})",
            expected.len(),
            shape.len()
        )));
    }
    for (axis, (&got, want)) in shape.iter().zip(expected).enumerate() {
        match want {
            Some(w) => {
                let dynamic_ok = !input || axis == 0;
                if got != *w && !(got < 0 && dynamic_ok) {
                    return Err(ModelError::Contract(format!(
                        "{what} axis {axis} must be {w}, found {} ({ty})",
                        if got < 0 {
                            "dynamic".to_string()
                        } else {
                            got.to_string()
                        }
                    )));
                }
            }
            None => {
                if input && got >= 0 {
                    return Err(ModelError::Contract(format!(
                        "{what} axis {axis} (frames) must be dynamic, found fixed size {got}"
                    )));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Minimal protobuf reading: enough to check that bytes are a ModelProto and to
// pull out `metadata_props` without ONNX Runtime.

/// One field of a protobuf message.
enum Field<'a> {
    /// Wire type 0 (value not needed: only presence is checked).
    Varint,
    /// Wire types 1 and 5 (not needed beyond skipping).
    Fixed,
    /// Wire type 2.
    Bytes(&'a [u8]),
}

/// Reads a varint at `*pos`.
fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Splits a message into `(field number, value)` pairs, or explains why the
/// bytes are not a well-formed message.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let at = pos;
        let key = read_varint(buf, &mut pos)
            .ok_or_else(|| format!("malformed field key at byte {at}"))?;
        let (num, wire) = (key >> 3, key & 7);
        if num == 0 {
            return Err(format!("field number 0 at byte {at}"));
        }
        let field = match wire {
            0 => {
                read_varint(buf, &mut pos)
                    .ok_or_else(|| format!("malformed varint at byte {at}"))?;
                Field::Varint
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if pos + n > buf.len() {
                    return Err(format!(
                        "field {num} at byte {at} runs past the end ({} bytes)",
                        buf.len()
                    ));
                }
                pos += n;
                Field::Fixed
            }
            2 => {
                let len = read_varint(buf, &mut pos)
                    .ok_or_else(|| format!("malformed length at byte {at}"))?
                    as usize;
                if len > buf.len() - pos {
                    return Err(format!(
                        "field {num} at byte {at} claims {len} bytes but only {} remain (truncated file?)",
                        buf.len() - pos
                    ));
                }
                let b = &buf[pos..pos + len];
                pos += len;
                Field::Bytes(b)
            }
            _ => return Err(format!("invalid wire type {wire} at byte {at}")),
        };
        out.push((num, field));
    }
    Ok(out)
}

/// Checks that `bytes` look like an ONNX ModelProto and returns its
/// `metadata_props` as a map.
pub fn read_metadata(bytes: &[u8]) -> Result<HashMap<String, String>, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::NotOnnx("the file is empty".into()));
    }
    let top = fields(bytes).map_err(ModelError::NotOnnx)?;
    // ModelProto: 1 = ir_version, 7 = graph, 14 = metadata_props.
    if !top
        .iter()
        .any(|(n, f)| *n == 7 && matches!(f, Field::Bytes(_)))
    {
        return Err(ModelError::NotOnnx(
            "no graph in the file (not a ModelProto)".into(),
        ));
    }
    if !top
        .iter()
        .any(|(n, f)| *n == 1 && matches!(f, Field::Varint))
    {
        return Err(ModelError::NotOnnx(
            "no ir_version in the file (not a ModelProto)".into(),
        ));
    }
    let mut map = HashMap::new();
    for (n, f) in &top {
        if let (14, Field::Bytes(entry)) = (*n, f) {
            let mut key = None;
            let mut value = String::new();
            for (en, ef) in
                fields(entry).map_err(|e| ModelError::NotOnnx(format!("metadata entry: {e}")))?
            {
                if let Field::Bytes(b) = ef {
                    let s = String::from_utf8_lossy(b).into_owned();
                    match en {
                        1 => key = Some(s),
                        2 => value = s,
                        _ => {}
                    }
                }
            }
            if let Some(k) = key {
                map.insert(k, value);
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use grown_test_support::onnx::*;

    fn valid_map() -> HashMap<String, String> {
        let bytes = nca_model(4, 8, Rule::Conv);
        read_metadata(&bytes).unwrap()
    }

    fn contract_err(map: &HashMap<String, String>) -> String {
        match parse_metadata(map) {
            Err(ModelError::Contract(m)) => m,
            other => panic!("expected a contract error, got {other:?}"),
        }
    }

    #[test]
    fn parses_valid_metadata() {
        let info = parse_metadata(&valid_map()).unwrap();
        assert_eq!(info.contract, 1);
        assert_eq!(info.channels, 4);
        assert_eq!(info.spec_channel, 0);
        assert_eq!(info.spec_scale, 4.0);
        assert_eq!(info.spec_offset, -5.0);
        assert_eq!(info.mel.n_mels, 8);
        assert_eq!(info.mel.hop, 64);
        assert_eq!(info.growth_steps, 24);
        assert_eq!(info.fire_rate, 0.5);
        assert_eq!(info.seed_std, 0.1);
        assert_eq!(info.train_frames, 16);
        assert_eq!(info.unroll, 1);
        assert_eq!(info.target, "test target");
        assert_eq!(info.license, "CC0");
    }

    #[test]
    fn every_key_is_required() {
        let keys = [
            "grown.contract",
            "grown.kind",
            "grown.representation",
            "grown.channels",
            "grown.spec_channel",
            "grown.spec_scale",
            "grown.spec_offset",
            "grown.mel",
            "grown.growth_steps",
            "grown.fire_rate",
            "grown.seed_state",
            "grown.train_frames",
            "grown.perception",
            "grown.unroll",
            "grown.target",
            "grown.license",
        ];
        for k in keys {
            let mut m = valid_map();
            m.remove(k);
            let msg = contract_err(&m);
            assert!(msg.contains(k) && msg.contains("missing"), "{k}: {msg}");
        }
    }

    /// [`valid_map`] turned into an stft-ms model's metadata.
    fn stft_ms_map() -> HashMap<String, String> {
        let mut m = valid_map();
        m.remove("grown.mel");
        m.insert("grown.representation".into(), "stft-ms".into());
        m.insert(
            "grown.stft".into(),
            r#"{"sample_rate":22050,"n_fft":1024,"hop":256,"win":1024,"bins":513,"window":"hann_periodic","padding":"circular"}"#.into(),
        );
        m
    }

    #[test]
    fn stft_ms_metadata_parses_to_a_513_row_grid() {
        let mut m = stft_ms_map();
        let info = parse_metadata(&m).unwrap();
        assert_eq!(info.stft, Some(StftMsConfig::default_22k()));
        assert_eq!((info.mel.n_mels, info.mel.hop), (513, 256));
        // Four visible channels must fit from spec_channel on.
        m.insert("grown.spec_channel".into(), (info.channels - 3).to_string());
        assert!(contract_err(&m).contains("4 visible channels"));
        m.insert("grown.spec_channel".into(), "0".into());
        m.insert("grown.stft".into(), m["grown.stft"].replace("513", "512"));
        assert!(contract_err(&m).contains("bins 512"));
    }

    #[test]
    fn future_and_bad_versions() {
        let mut m = valid_map();
        m.insert("grown.contract".into(), "3".into());
        // Other keys of a future file may mean something else: version first.
        m.remove("grown.mel");
        assert_eq!(parse_metadata(&m), Err(ModelError::FutureVersion(3)));
        assert!(ModelError::FutureVersion(3)
            .to_string()
            .contains("update Grown"));
        m.insert("grown.contract".into(), "0".into());
        assert!(contract_err(&m).contains("grown.contract"));
        m.insert("grown.contract".into(), "one".into());
        assert!(contract_err(&m).contains("not a valid number"));
    }

    /// Contract 2's excerpt seed: parsed with its bank; refused with the
    /// exact reason when the version, the bank or the representation is wrong.
    /// Version-1 files are unchanged by version 2.
    #[test]
    fn excerpt_seed_needs_version_2_and_a_bank() {
        use crate::grow::bank::tests::bank_json;
        let mut m = valid_map();
        let n_mels = parse_metadata(&m).unwrap().mel.n_mels;
        assert_eq!(parse_metadata(&m).unwrap().seed_bank, None);
        m.insert("grown.contract".into(), "2".into());
        assert_eq!(parse_metadata(&m).unwrap().seed_bank, None);
        m.insert(
            "grown.seed_state".into(),
            r#"{"kind":"excerpt","std":0.1}"#.into(),
        );
        assert!(contract_err(&m).contains("`grown.seed_bank` is missing"));
        let values: Vec<f32> = (0..n_mels * 3).map(|i| i as f32 * 0.5).collect();
        m.insert("grown.seed_bank".into(), bank_json(&values, 3));
        let info = parse_metadata(&m).unwrap();
        let bank = info.seed_bank.expect("excerpt model without its bank");
        assert_eq!((bank.frames, &bank.values), (3, &values));
        m.insert(
            "grown.seed_bank".into(),
            bank_json(&values[..n_mels * 2], 3),
        );
        assert!(contract_err(&m).contains("grown.seed_bank"));
        m.insert("grown.seed_bank".into(), bank_json(&values, 3));
        m.insert("grown.contract".into(), "1".into());
        assert!(contract_err(&m).contains("needs `grown.contract` ≥ 2"));
    }

    /// An stft-ms bank carries all four visible channels: 4 × 513 rows; a
    /// bank of one channel's rows is refused.
    #[test]
    fn an_stft_ms_excerpt_bank_holds_four_visible_grids() {
        use crate::grow::bank::tests::bank_json;
        let mut m = stft_ms_map();
        m.insert("grown.contract".into(), "2".into());
        m.insert(
            "grown.seed_state".into(),
            r#"{"kind":"excerpt","std":0.05}"#.into(),
        );
        let one: Vec<f32> = (0..513 * 2).map(|i| (i % 7) as f32 * 0.25).collect();
        m.insert("grown.seed_bank".into(), bank_json(&one, 2));
        assert!(contract_err(&m).contains("2052 rows x 2 frames"));
        let four: Vec<f32> = (0..4 * 513 * 2).map(|i| (i % 7) as f32 * 0.25).collect();
        m.insert("grown.seed_bank".into(), bank_json(&four, 2));
        let info = parse_metadata(&m).unwrap();
        assert_eq!(info.visible_channels(), 4);
        assert_eq!(info.seed_bank.expect("no bank").values, four);
    }

    #[test]
    fn specific_value_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("grown.kind", "vocoder", "vocoder file"),
            ("grown.kind", "gan", "expected `nca`"),
            // A stft-ms model declares its STFT instead of a mel config.
            ("grown.representation", "stft-ms", "`grown.stft` is missing"),
            ("grown.representation", "wave", "expected `mel`"),
            ("grown.channels", "0", "at least 1"),
            ("grown.spec_channel", "4", "not a channel"),
            ("grown.spec_scale", "0", "non-zero"),
            ("grown.spec_offset", "inf", "finite"),
            ("grown.mel", "{\"n_mels\":80}", "grown.mel"),
            (
                "grown.mel",
                r#"{"sample_rate":8000,"n_fft":256,"hop":64,"win":256,"n_mels":0,"fmin":0,"fmax":4000}"#,
                "n_mels",
            ),
            ("grown.growth_steps", "0", "at least 1"),
            ("grown.growth_steps", "-3", "not a valid number"),
            ("grown.fire_rate", "1.5", "(0, 1]"),
            ("grown.fire_rate", "0", "(0, 1]"),
            (
                "grown.seed_state",
                "{\"kind\":\"uniform\",\"std\":1}",
                "not supported",
            ),
            ("grown.seed_state", "{\"kind\":\"normal\"}", "std"),
            ("grown.seed_state", "normal", "invalid JSON"),
            (
                "grown.seed_state",
                "{\"kind\":\"crop\",\"std\":0.1}",
                "only `normal` or `excerpt`",
            ),
            ("grown.train_frames", "0", "at least 1"),
            ("grown.unroll", "0", "at least 1"),
        ];
        for (k, v, want) in cases {
            let mut m = valid_map();
            m.insert(k.to_string(), v.to_string());
            let msg = contract_err(&m);
            assert!(msg.contains(want), "{k}={v}: {msg}");
        }
    }

    #[test]
    fn not_onnx_is_detected_without_runtime() {
        assert!(matches!(read_metadata(b""), Err(ModelError::NotOnnx(_))));
        assert!(matches!(
            read_metadata(b"hello, this is text"),
            Err(ModelError::NotOnnx(_))
        ));
        let bytes = nca_model(4, 8, Rule::Conv);
        // Truncation anywhere inside the graph or metadata is caught.
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 3] {
            match read_metadata(&bytes[..cut]) {
                Err(ModelError::NotOnnx(m)) => assert!(
                    m.contains("truncated")
                        || m.contains("past the end")
                        || m.contains("malformed"),
                    "{m}"
                ),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn missing_file() {
        let p = Path::new("/no/such/model.onnx");
        let e = NcaModel::load(p).unwrap_err();
        assert_eq!(e, ModelError::Missing(p.to_path_buf()));
        assert!(e.to_string().contains("/no/such/model.onnx"));
    }

    #[test]
    fn embedded_default_metadata_is_valid() {
        let meta = read_metadata(DEFAULT_MODEL).expect("embedded model is not ONNX");
        let info = parse_metadata(&meta).expect("embedded model breaks the contract");
        assert_eq!(info.representation, "mel");
        assert!(!info.license.is_empty());
        // A new instance opens at the growth the default model was trained for.
        assert_eq!(info.growth_steps, crate::grow::DEFAULT_GROWTH);
    }

    // --- tests below need ONNX Runtime (ORT_DYLIB_PATH or target/onnxruntime) ---

    fn load(bytes: Vec<u8>) -> Result<NcaModel, ModelError> {
        NcaModel::from_bytes(&bytes, "test".into())
    }

    fn graph_err(b: &ModelBuilder) -> String {
        match load(b.build()) {
            Err(ModelError::Contract(m)) => m,
            Err(e) => panic!("expected a contract error, got {e}"),
            Ok(_) => panic!("expected a contract error, model loaded"),
        }
    }

    #[test]
    fn loads_valid_model() {
        let m = load(nca_model(4, 8, Rule::Conv)).unwrap();
        assert_eq!(m.info.channels, 4);
        assert_eq!(m.source, "test");
    }

    #[test]
    fn loads_embedded_default() {
        let m = NcaModel::load_embedded_default().unwrap();
        assert_eq!(m.source, DEFAULT_MODEL_SOURCE);
    }

    #[test]
    fn wrong_input_names_are_contract_errors() {
        let mut b = ModelBuilder::default();
        b.input("x", FLOAT, &nca_dims(1, 4, 8))
            .input("update_mask", FLOAT, &nca_dims(1, 1, 8))
            .output("next_state", FLOAT, &nca_dims(1, 4, 8))
            .node("Mul", &["x", "update_mask"], &["next_state"], &[]);
        nca_meta(&mut b, 4, 8);
        assert!(graph_err(&b).contains("unexpected input `x`"));

        let mut b = ModelBuilder::default();
        b.input("state", FLOAT, &nca_dims(1, 4, 8))
            .output("next_state", FLOAT, &nca_dims(1, 4, 8))
            .node("Identity", &["state"], &["next_state"], &[]);
        nca_meta(&mut b, 4, 8);
        assert!(graph_err(&b).contains("no input named `update_mask`"));

        let mut b = ModelBuilder::default();
        b.input("state", FLOAT, &nca_dims(1, 4, 8))
            .input("update_mask", FLOAT, &nca_dims(1, 1, 8))
            .output("out", FLOAT, &nca_dims(1, 4, 8))
            .node("Mul", &["state", "update_mask"], &["out"], &[]);
        nca_meta(&mut b, 4, 8);
        assert!(graph_err(&b).contains("no output named `next_state`"));
    }

    #[test]
    fn wrong_dtype_and_shapes_are_contract_errors() {
        // float64 state.
        let mut b = ModelBuilder::default();
        b.input("state", DOUBLE, &nca_dims(1, 4, 8))
            .input("update_mask", FLOAT, &nca_dims(1, 1, 8))
            .output("next_state", DOUBLE, &nca_dims(1, 4, 8))
            .node("Identity", &["state"], &["next_state"], &[])
            .node("Identity", &["update_mask"], &["unused"], &[]);
        nca_meta(&mut b, 4, 8);
        let m = graph_err(&b);
        assert!(m.contains("input `state`") && m.contains("float32"), "{m}");

        // Channel count disagrees with grown.channels.
        let mut b = nca_builder(4, 8, Rule::Conv);
        b.meta("grown.channels", "6");
        let m = graph_err(&b);
        assert!(m.contains("axis 1 must be 6"), "{m}");

        // n_mels disagrees with grown.mel.
        let mut b = nca_builder(4, 8, Rule::Conv);
        b.meta("grown.mel", &test_mel_json(10));
        let m = graph_err(&b);
        assert!(m.contains("axis 2 must be 10"), "{m}");

        // Fixed frames axis.
        let mut b = ModelBuilder::default();
        b.input(
            "state",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(8), Dim::Fixed(16)],
        )
        .input(
            "update_mask",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(8), Dim::Fixed(16)],
        )
        .output(
            "next_state",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(8), Dim::Fixed(16)],
        )
        .node("Mul", &["state", "update_mask"], &["next_state"], &[]);
        nca_meta(&mut b, 4, 8);
        let m = graph_err(&b);
        assert!(m.contains("(frames) must be dynamic"), "{m}");

        // Rank 3 state.
        let mut b = ModelBuilder::default();
        b.input(
            "state",
            FLOAT,
            &[Dim::Fixed(4), Dim::Fixed(8), Dim::Param("f")],
        )
        .input(
            "update_mask",
            FLOAT,
            &[Dim::Fixed(1), Dim::Fixed(8), Dim::Param("f")],
        )
        .output(
            "next_state",
            FLOAT,
            &[Dim::Fixed(4), Dim::Fixed(8), Dim::Param("f")],
        )
        .node("Mul", &["state", "update_mask"], &["next_state"], &[]);
        nca_meta(&mut b, 4, 8);
        let m = graph_err(&b);
        assert!(m.contains("must have 4 axes, found 3"), "{m}");

        // Unroll 2 needs a mask with 2 rows.
        let mut b = nca_builder(4, 8, Rule::Conv);
        b.meta("grown.unroll", "2");
        let m = graph_err(&b);
        assert!(m.contains("input `update_mask` axis 0 must be 2"), "{m}");
    }

    #[test]
    fn garbage_with_valid_header_is_not_onnx() {
        // Well-formed protobuf framing, nonsense graph: ONNX Runtime refuses it.
        let mut b = nca_builder(4, 8, Rule::Conv);
        b.node("NoSuchOperator", &["state"], &["zzz"], &[]);
        let e = load(b.build()).unwrap_err();
        assert!(
            matches!(e, ModelError::Runtime(_) | ModelError::NotOnnx(_)),
            "{e:?}"
        );
    }
}
