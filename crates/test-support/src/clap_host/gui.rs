//! `clap.gui` from both sides: the plugin's editor functions the host calls, and
//! the host's `clap.host.gui` callbacks, which nice-plug requires before it opens
//! an editor (its `gui.create` unwraps the host's extension).
//!
//! Like `ext.rs`, the ABI is written out here because clack-extensions is not a
//! dependency; it mirrors `ext/gui.h` of CLAP 1.x, which is frozen. Only the
//! embedded X11 case is exercised: nice-plug offers no floating windows.

use clack_host::extensions::prelude::*;
use std::ffi::{c_char, c_ulong, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `CLAP_WINDOW_API_X11`.
pub const API_X11: &CStr = c"x11";

/// The `union` inside `clap_window_t`; every member is pointer-sized.
#[derive(Clone, Copy)]
#[repr(C)]
union RawWindowHandle {
    /// `NSView*` on macOS (unused here).
    cocoa: *mut c_void,
    /// An X11 window id: the only member Linux hosts fill in.
    x11: c_ulong,
    /// `HWND` on Windows (unused here).
    win32: *mut c_void,
    /// Any other API's handle (unused here).
    ptr: *mut c_void,
}

/// `clap_window_t`: which windowing API, and the parent window in it.
#[repr(C)]
struct RawWindow {
    /// `CLAP_WINDOW_API_*` string naming the union member in use.
    api: *const c_char,
    /// The parent window.
    specific: RawWindowHandle,
}

/// `clap_gui_resize_hints_t`, passed to `get_resize_hints` (never called here but
/// declared so the vtable's signature is the real one).
#[repr(C)]
struct RawResizeHints {
    /// Whether the width may change.
    can_resize_horizontally: bool,
    /// Whether the height may change.
    can_resize_vertically: bool,
    /// Whether width:height must stay at the ratio below.
    preserve_aspect_ratio: bool,
    /// Aspect ratio numerator.
    aspect_ratio_width: u32,
    /// Aspect ratio denominator.
    aspect_ratio_height: u32,
}

type PluginPtr = *const c_void;

/// `clap_plugin_gui_t`, every function in header order so the layout matches.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawGui {
    /// Whether `api` (floating or embedded) can be used.
    is_api_supported: Option<unsafe extern "C" fn(PluginPtr, *const c_char, bool) -> bool>,
    /// The plugin's favourite API.
    get_preferred_api:
        Option<unsafe extern "C" fn(PluginPtr, *mut *const c_char, *mut bool) -> bool>,
    /// Builds the editor (nice-plug: spawns the window thread, waits for a parent).
    create: Option<unsafe extern "C" fn(PluginPtr, *const c_char, bool) -> bool>,
    /// Tears the editor down (nice-plug: joins the window thread).
    destroy: Option<unsafe extern "C" fn(PluginPtr)>,
    /// Host's display scale.
    set_scale: Option<unsafe extern "C" fn(PluginPtr, f64) -> bool>,
    /// The editor's size in physical pixels, to size the parent window.
    get_size: Option<unsafe extern "C" fn(PluginPtr, *mut u32, *mut u32) -> bool>,
    /// Whether the host may resize the editor.
    can_resize: Option<unsafe extern "C" fn(PluginPtr) -> bool>,
    /// (layout only: declared so the later fields sit at their offsets)
    get_resize_hints: Option<unsafe extern "C" fn(PluginPtr, *mut RawResizeHints) -> bool>,
    /// (layout only)
    adjust_size: Option<unsafe extern "C" fn(PluginPtr, *mut u32, *mut u32) -> bool>,
    /// (layout only)
    set_size: Option<unsafe extern "C" fn(PluginPtr, u32, u32) -> bool>,
    /// Embeds the editor into the host's window.
    set_parent: Option<unsafe extern "C" fn(PluginPtr, *const RawWindow) -> bool>,
    /// (layout only: floating windows only)
    set_transient: Option<unsafe extern "C" fn(PluginPtr, *const RawWindow) -> bool>,
    /// (layout only: floating windows only)
    suggest_title: Option<unsafe extern "C" fn(PluginPtr, *const c_char)>,
    /// Maps the editor window.
    show: Option<unsafe extern "C" fn(PluginPtr) -> bool>,
    /// Unmaps it.
    hide: Option<unsafe extern "C" fn(PluginPtr) -> bool>,
}

/// The plugin's `clap.gui` extension.
#[derive(Copy, Clone)]
pub struct Gui(RawExtension<PluginExtensionSide, RawGui>);

// SAFETY: `RawGui` matches the ABI of the extension named by the identifier.
unsafe impl Extension for Gui {
    const IDENTIFIERS: &'static [&'static CStr] = &[c"clap.gui"];
    type ExtensionSide = PluginExtensionSide;

    unsafe fn from_raw(raw: RawExtension<Self::ExtensionSide>) -> Self {
        // SAFETY: the caller guarantees `raw` points to this extension's struct.
        Self(unsafe { raw.cast() })
    }
}

/// Every call takes the main-thread handle: CLAP's gui functions are `[main-thread]`.
impl Gui {
    fn raw(&self, plugin: &PluginMainThreadHandle) -> RawGui {
        *plugin.as_shared().use_extension(&self.0)
    }

    pub fn is_api_supported(&self, plugin: &PluginMainThreadHandle, api: &CStr) -> bool {
        let f = self
            .raw(plugin)
            .is_api_supported
            .expect("gui lacks is_api_supported");
        // SAFETY: main thread, valid instance, NUL-terminated api string.
        unsafe { f(plugin.as_raw_ptr().cast(), api.as_ptr(), false) }
    }

    /// The preferred API's name and whether it is a floating window.
    pub fn preferred_api(&self, plugin: &PluginMainThreadHandle) -> Option<(String, bool)> {
        let f = self
            .raw(plugin)
            .get_preferred_api
            .expect("gui lacks get_preferred_api");
        let mut api: *const c_char = std::ptr::null();
        let mut floating = true;
        // SAFETY: main thread, valid instance; both out-pointers outlive the call.
        let ok = unsafe { f(plugin.as_raw_ptr().cast(), &mut api, &mut floating) };
        if !ok || api.is_null() {
            return None;
        }
        // SAFETY: the plugin returns a static NUL-terminated API name.
        let name = unsafe { CStr::from_ptr(api) };
        Some((name.to_string_lossy().into_owned(), floating))
    }

    /// Creates an embedded (not floating) editor.
    pub fn create(&self, plugin: &PluginMainThreadHandle, api: &CStr) -> bool {
        let f = self.raw(plugin).create.expect("gui lacks create");
        // SAFETY: main thread, valid instance, NUL-terminated api string.
        unsafe { f(plugin.as_raw_ptr().cast(), api.as_ptr(), false) }
    }

    pub fn destroy(&self, plugin: &PluginMainThreadHandle) {
        let f = self.raw(plugin).destroy.expect("gui lacks destroy");
        // SAFETY: main thread, valid instance.
        unsafe { f(plugin.as_raw_ptr().cast()) }
    }

    pub fn set_scale(&self, plugin: &PluginMainThreadHandle, scale: f64) -> bool {
        let f = self.raw(plugin).set_scale.expect("gui lacks set_scale");
        // SAFETY: main thread, valid instance.
        unsafe { f(plugin.as_raw_ptr().cast(), scale) }
    }

    /// The editor's size in physical pixels, if it reports one.
    pub fn size(&self, plugin: &PluginMainThreadHandle) -> Option<(u32, u32)> {
        let f = self.raw(plugin).get_size.expect("gui lacks get_size");
        let (mut w, mut h) = (0u32, 0u32);
        // SAFETY: main thread, valid instance; both out-pointers outlive the call.
        let ok = unsafe { f(plugin.as_raw_ptr().cast(), &mut w, &mut h) };
        ok.then_some((w, h))
    }

    pub fn can_resize(&self, plugin: &PluginMainThreadHandle) -> bool {
        let f = self.raw(plugin).can_resize.expect("gui lacks can_resize");
        // SAFETY: main thread, valid instance.
        unsafe { f(plugin.as_raw_ptr().cast()) }
    }

    /// Embeds the editor into the X11 window `parent`.
    pub fn set_parent_x11(&self, plugin: &PluginMainThreadHandle, parent: u32) -> bool {
        let f = self.raw(plugin).set_parent.expect("gui lacks set_parent");
        let window = RawWindow {
            api: API_X11.as_ptr(),
            specific: RawWindowHandle {
                x11: c_ulong::from(parent),
            },
        };
        // SAFETY: main thread, valid instance; `window` outlives the call.
        unsafe { f(plugin.as_raw_ptr().cast(), &window) }
    }

    pub fn show(&self, plugin: &PluginMainThreadHandle) -> bool {
        let f = self.raw(plugin).show.expect("gui lacks show");
        // SAFETY: main thread, valid instance.
        unsafe { f(plugin.as_raw_ptr().cast()) }
    }

    pub fn hide(&self, plugin: &PluginMainThreadHandle) -> bool {
        let f = self.raw(plugin).hide.expect("gui lacks hide");
        // SAFETY: main thread, valid instance.
        unsafe { f(plugin.as_raw_ptr().cast()) }
    }
}

/// `clap_host_gui_t`: what an editor may ask of the host.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawHostGui {
    /// The editor's resize constraints changed.
    resize_hints_changed: Option<unsafe extern "C" fn(*const clap_host)>,
    /// The editor wants the parent window resized.
    request_resize: Option<unsafe extern "C" fn(*const clap_host, u32, u32) -> bool>,
    /// A floating editor wants to be shown.
    request_show: Option<unsafe extern "C" fn(*const clap_host) -> bool>,
    /// A floating editor wants to be hidden.
    request_hide: Option<unsafe extern "C" fn(*const clap_host) -> bool>,
    /// The editor window went away by itself (`was_destroyed`: it must be destroyed).
    closed: Option<unsafe extern "C" fn(*const clap_host, bool)>,
}

/// Editors that closed themselves (`clap_host_gui.closed`), process-wide: the
/// callback gets only the `clap_host` pointer and a test drives one editor at a
/// time. A host-driven open/close cycle must never see one.
pub static CLOSED_BY_PLUGIN: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn resize_hints_changed(_host: *const clap_host) {}

unsafe extern "C" fn request_resize(_host: *const clap_host, _width: u32, _height: u32) -> bool {
    // The test's parent window keeps its size; accepting is what a DAW does.
    true
}

unsafe extern "C" fn request_show(_host: *const clap_host) -> bool {
    false
}

unsafe extern "C" fn request_hide(_host: *const clap_host) -> bool {
    false
}

unsafe extern "C" fn closed(_host: *const clap_host, _was_destroyed: bool) {
    CLOSED_BY_PLUGIN.fetch_add(1, Ordering::Relaxed);
}

/// The host's `clap.gui` extension, registered by every test host (`host.rs`).
#[derive(Copy, Clone)]
pub struct HostGui(pub RawExtension<HostExtensionSide, RawHostGui>);

// SAFETY: `RawHostGui` matches the ABI of the extension named by the identifier.
unsafe impl Extension for HostGui {
    const IDENTIFIERS: &'static [&'static CStr] = &[c"clap.gui"];
    type ExtensionSide = HostExtensionSide;

    unsafe fn from_raw(raw: RawExtension<Self::ExtensionSide>) -> Self {
        // SAFETY: the caller guarantees `raw` points to this extension's struct.
        Self(unsafe { raw.cast() })
    }
}

// SAFETY: `IMPLEMENTATION` points to a `RawHostGui`, the extension's C struct.
unsafe impl<H: HostHandlers> ExtensionImplementation<H> for HostGui {
    const IMPLEMENTATION: RawExtensionImplementation =
        RawExtensionImplementation::new(&RawHostGui {
            resize_hints_changed: Some(resize_hints_changed),
            request_resize: Some(request_resize),
            request_show: Some(request_show),
            request_hide: Some(request_hide),
            closed: Some(closed),
        });
}
