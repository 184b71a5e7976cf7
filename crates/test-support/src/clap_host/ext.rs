//! The two plugin-side CLAP extensions the host tests need: `clap.params` (to find
//! parameter ids and read values back) and `clap.state` (save/load).
//!
//! clack-host ships the extension machinery but not the extensions themselves (they
//! live in clack-extensions, which this package does not depend on). The ABI below
//! mirrors `ext/params.h` and `ext/state.h` of CLAP 1.x, which is frozen.

use clack_host::events::io::{InputEvents, OutputEvents};
use clack_host::extensions::prelude::*;
use clack_host::stream::{InputStream, OutputStream};
use std::ffi::{c_char, c_void, CStr};

/// `CLAP_NAME_SIZE` and `CLAP_PATH_SIZE` from `string-sizes.h`.
const NAME_SIZE: usize = 256;
const PATH_SIZE: usize = 1024;

/// `clap_param_info_t`; every field is there because the C layout has it, in order.
#[repr(C)]
struct RawParamInfo {
    /// Stable id used by param events and `get_value`.
    id: u32,
    /// `CLAP_PARAM_IS_*` bits (unused here).
    flags: u32,
    /// Plugin-private pointer hosts may pass back in events (unused here).
    cookie: *mut c_void,
    /// NUL-terminated display name: the tests look parameters up by it.
    name: [c_char; NAME_SIZE],
    /// Display group path (unused here).
    module: [c_char; PATH_SIZE],
    /// Plain-value range.
    min_value: f64,
    max_value: f64,
    /// Value of a fresh instance (unused here).
    default_value: f64,
}

/// `clap_plugin_params_t`. `text_to_value` is never called; it is declared so the
/// layout matches. (`Copy` because clack's extension handles are.)
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawParams {
    /// Number of parameters.
    count: Option<unsafe extern "C" fn(*const c_void) -> u32>,
    /// Fills a `clap_param_info_t` by index.
    get_info: Option<unsafe extern "C" fn(*const c_void, u32, *mut RawParamInfo) -> bool>,
    /// Current plain value by id.
    get_value: Option<unsafe extern "C" fn(*const c_void, u32, *mut f64) -> bool>,
    /// The plugin's display text for a value.
    value_to_text: Option<unsafe extern "C" fn(*const c_void, u32, f64, *mut c_char, u32) -> bool>,
    text_to_value:
        Option<unsafe extern "C" fn(*const c_void, u32, *const c_char, *mut f64) -> bool>,
    /// Delivers parameter events outside `process()`.
    flush: Option<unsafe extern "C" fn(*const c_void, *const c_void, *const c_void)>,
}

/// `clap_plugin_state_t`; the stream arguments are `clap_ostream_t*` / `clap_istream_t*`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawState {
    /// Writes the state into a `clap_ostream_t`.
    save: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> bool>,
    /// Reads the state from a `clap_istream_t`.
    load: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> bool>,
}

/// A parameter as the plugin describes it.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// The id param events and `get_value` use.
    pub id: u32,
    /// Display name; the tests look parameters up by it.
    pub name: String,
    /// Lowest plain value, to keep automation in range.
    pub min: f64,
    /// Highest plain value (for nice-plug's stepped parameters: the step count).
    pub max: f64,
}

/// The plugin's `clap.params` extension.
#[derive(Copy, Clone)]
pub struct Params(RawExtension<PluginExtensionSide, RawParams>);

// SAFETY: `RawParams` matches the ABI of the extension named by the identifier.
unsafe impl Extension for Params {
    const IDENTIFIERS: &'static [&'static CStr] = &[c"clap.params"];
    type ExtensionSide = PluginExtensionSide;

    unsafe fn from_raw(raw: RawExtension<Self::ExtensionSide>) -> Self {
        // SAFETY: the caller guarantees `raw` points to this extension's struct.
        Self(unsafe { raw.cast() })
    }
}

impl Params {
    /// All parameters, in the plugin's order.
    pub fn list(&self, plugin: &PluginMainThreadHandle) -> Vec<ParamInfo> {
        let raw = plugin.as_shared().use_extension(&self.0);
        let this = plugin.as_raw_ptr().cast::<c_void>();
        let (Some(count), Some(get_info)) = (raw.count, raw.get_info) else {
            panic!("the plugin's clap.params lacks count/get_info");
        };
        // SAFETY: main thread, valid instance, function pointers from the plugin.
        let n = unsafe { count(this) };
        (0..n)
            .map(|index| {
                // SAFETY: an all-zero clap_param_info_t is a valid value (null cookie, empty strings).
                let mut info: RawParamInfo = unsafe { std::mem::zeroed() };
                // SAFETY: as above; `info` outlives the call.
                let ok = unsafe { get_info(this, index, &mut info) };
                assert!(ok, "clap.params get_info({index}) failed");
                // SAFETY: the plugin wrote a NUL-terminated string into the fixed array.
                let name = unsafe { CStr::from_ptr(info.name.as_ptr()) };
                ParamInfo {
                    id: info.id,
                    name: name.to_string_lossy().into_owned(),
                    min: info.min_value,
                    max: info.max_value,
                }
            })
            .collect()
    }

    /// The parameter's current plain value.
    pub fn value(&self, plugin: &PluginMainThreadHandle, id: u32) -> f64 {
        let raw = plugin.as_shared().use_extension(&self.0);
        let get_value = raw.get_value.expect("clap.params lacks get_value");
        let mut value = f64::NAN;
        // SAFETY: main thread, valid instance, `value` outlives the call.
        let ok = unsafe { get_value(plugin.as_raw_ptr().cast(), id, &mut value) };
        assert!(ok, "clap.params get_value({id}) failed");
        value
    }

    /// Delivers parameter events outside `process()`, as hosts do for an inactive
    /// plugin (here: to set parameters before the engine starts).
    pub fn flush(
        &self,
        plugin: &PluginMainThreadHandle,
        input: &InputEvents,
        output: &mut OutputEvents,
    ) {
        let raw = plugin.as_shared().use_extension(&self.0);
        let flush = raw.flush.expect("clap.params lacks flush");
        let input = std::ptr::from_ref(input.as_raw()).cast::<c_void>();
        let output = std::ptr::from_ref(output.as_raw()).cast::<c_void>();
        // SAFETY: main thread, plugin not processing; both lists outlive the call.
        unsafe { flush(plugin.as_raw_ptr().cast(), input, output) };
    }

    /// The plugin's own display text for a plain value (e.g. "0.300 s").
    pub fn text(&self, plugin: &PluginMainThreadHandle, id: u32, value: f64) -> String {
        let raw = plugin.as_shared().use_extension(&self.0);
        let value_to_text = raw.value_to_text.expect("clap.params lacks value_to_text");
        let mut text = [0 as c_char; NAME_SIZE];
        // SAFETY: main thread, valid instance; the plugin writes at most `NAME_SIZE` bytes.
        let ok = unsafe {
            value_to_text(
                plugin.as_raw_ptr().cast(),
                id,
                value,
                text.as_mut_ptr(),
                NAME_SIZE as u32,
            )
        };
        assert!(ok, "clap.params value_to_text({id}) failed");
        // SAFETY: the plugin NUL-terminates within the buffer.
        unsafe { CStr::from_ptr(text.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The plugin's `clap.state` extension.
#[derive(Copy, Clone)]
pub struct State(RawExtension<PluginExtensionSide, RawState>);

// SAFETY: `RawState` matches the ABI of the extension named by the identifier.
unsafe impl Extension for State {
    const IDENTIFIERS: &'static [&'static CStr] = &[c"clap.state"];
    type ExtensionSide = PluginExtensionSide;

    unsafe fn from_raw(raw: RawExtension<Self::ExtensionSide>) -> Self {
        // SAFETY: the caller guarantees `raw` points to this extension's struct.
        Self(unsafe { raw.cast() })
    }
}

impl State {
    pub fn save(&self, plugin: &PluginMainThreadHandle) -> Vec<u8> {
        let raw = plugin.as_shared().use_extension(&self.0);
        let save = raw.save.expect("clap.state lacks save");
        let mut bytes = Vec::new();
        let mut stream = OutputStream::from_writer(&mut bytes);
        let stream_ptr = std::ptr::from_mut(stream.as_raw_mut()).cast::<c_void>();
        // SAFETY: main thread, valid instance; the stream lives until the call returns.
        let ok = unsafe { save(plugin.as_raw_ptr().cast(), stream_ptr) };
        assert!(ok, "clap.state save failed");
        bytes
    }

    pub fn load(&self, plugin: &PluginMainThreadHandle, bytes: &[u8]) {
        assert!(self.try_load(plugin, bytes), "clap.state load failed");
    }

    /// Loads a state and returns whether the plugin accepted it (false for
    /// the corrupt states the abuse tests feed it).
    pub fn try_load(&self, plugin: &PluginMainThreadHandle, bytes: &[u8]) -> bool {
        let raw = plugin.as_shared().use_extension(&self.0);
        let load = raw.load.expect("clap.state lacks load");
        let mut reader = bytes;
        let mut stream = InputStream::from_reader(&mut reader);
        let stream_ptr = std::ptr::from_mut(stream.as_raw_mut()).cast::<c_void>();
        // SAFETY: main thread, valid instance; the stream lives until the call returns.
        unsafe { load(plugin.as_raw_ptr().cast(), stream_ptr) }
    }
}
