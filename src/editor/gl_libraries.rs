//! Keeps the system's OpenGL libraries loaded from the first editor window on.
//!
//! baseview opens `libEGL.so.1` (or, without EGL 1.5, GLX's `libGL.so.1`) for
//! every editor window and closes it when the window closes. The last close
//! unloads libglvnd, Mesa's EGL vendor library and libglapi, and what those
//! allocated for their own lifetime is never freed: libglapi's dispatch-stub
//! names (`_glapi_get_proc_address`, reached from the first `eglMakeCurrent`)
//! and EGL's display setup, ≈ 7 KiB requested (≈ 10 KiB of heap with malloc's
//! chunk headers) on every open. One more reference, taken while baseview holds
//! the library, makes them load once per plugin instance instead. (Mesa still
//! unloads its driver, `*_dri.so`, at `eglTerminate`: ≤ 0.2 KiB per open.)
//!
//! Only libraries already loaded are referenced (`RTLD_NOLOAD`): nothing new is
//! loaded and no library initialiser runs, so this cannot change which GL
//! implementation baseview picks. The references go when the editor (which
//! lives as long as the plugin instance) is dropped.

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::ptr::NonNull;

    extern "C" {
        /// glibc: opens a shared object, or with `RTLD_NOLOAD` only references a loaded one.
        fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
        /// glibc: drops a reference `dlopen` returned.
        fn dlclose(handle: *mut c_void) -> c_int;
    }

    /// `<dlfcn.h>`: resolve symbols lazily (a mode is required alongside `RTLD_NOLOAD`).
    const RTLD_LAZY: c_int = 0x1;
    /// `<dlfcn.h>`: return a handle only for an object already loaded.
    const RTLD_NOLOAD: c_int = 0x4;

    /// The names baseview 0.4 opens: `libEGL.so.1`/`libEGL.so` for EGL, and
    /// x11-dl's `libGL.so.1`/`libGL.so` for its GLX fallback.
    const NAMES: [&CStr; 4] = [c"libEGL.so.1", c"libEGL.so", c"libGL.so.1", c"libGL.so"];

    /// References to the GL libraries that were loaded when it was made.
    pub struct GlLibraries {
        /// One `dlopen` handle per name that was loaded; each is closed on drop.
        handles: Vec<NonNull<c_void>>,
    }

    // SAFETY: a dlopen handle is a process-wide token; glibc's dlopen/dlclose are
    // thread-safe, so the handle may be closed from any thread.
    unsafe impl Send for GlLibraries {}

    impl GlLibraries {
        /// References whichever of baseview's GL libraries are loaded now.
        pub fn reference_loaded() -> Self {
            let handles = NAMES
                .iter()
                .filter_map(|name| {
                    // SAFETY: a NUL-terminated name; with RTLD_NOLOAD nothing is
                    // loaded and no initialiser runs, a loaded object only gains a
                    // reference (or null comes back).
                    NonNull::new(unsafe { dlopen(name.as_ptr(), RTLD_LAZY | RTLD_NOLOAD) })
                })
                .collect();
            Self { handles }
        }

        /// How many of the names were loaded (tests).
        #[cfg(test)]
        pub fn count(&self) -> usize {
            self.handles.len()
        }
    }

    impl Drop for GlLibraries {
        fn drop(&mut self) {
            for handle in self.handles.drain(..) {
                // SAFETY: each handle came from dlopen above and is closed once.
                // baseview holds its own reference while a window uses the
                // library, so this never unloads it under a live window.
                unsafe { dlclose(handle.as_ptr()) };
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    /// Elsewhere baseview does not reload its GL library per window.
    pub struct GlLibraries;

    impl GlLibraries {
        pub fn reference_loaded() -> Self {
            Self
        }
    }
}

pub use imp::GlLibraries;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn only_loaded_libraries_are_referenced() {
        // The unit-test binary draws nothing, so no GL library is loaded (the
        // editor tests run in other processes): nothing may be loaded for it.
        assert_eq!(GlLibraries::reference_loaded().count(), 0);
    }
}
