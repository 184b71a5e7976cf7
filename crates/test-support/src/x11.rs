//! A private X server (Xvfb) for tests that open the editor, and the host's side
//! of it: parent windows as a DAW makes them, and reads of what was drawn.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, CreateWindowAux, ImageFormat, WindowClass};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// A private X server for this test process.
pub struct Xvfb {
    /// The server; killed on drop.
    child: Child,
    /// Display number, to remove the lock files a killed server leaves.
    number: u32,
    /// `:N`, for `DISPLAY`.
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb on the first display number with no lock file; returns it
    /// with the host's connection to it.
    pub fn start() -> (Self, Screen) {
        for n in 90..140 {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                continue;
            }
            let display = format!(":{n}");
            let mut child = match Command::new("Xvfb")
                .args([
                    display.as_str(),
                    "-screen",
                    "0",
                    "1280x1024x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => child,
                Err(e) => panic!(
                    "\n\n*** cannot start Xvfb ({e}): the editor test needs an X server; \
                     install it (Debian: apt-get install xvfb) ***\n"
                ),
            };
            let start = Instant::now();
            let mut error = String::new();
            while start.elapsed() < Duration::from_secs(10) {
                if child.try_wait().ok().flatten().is_some() {
                    break; // lost a race for this display number: try the next
                }
                match x11rb::connect(Some(&display)) {
                    Ok((conn, screen)) => {
                        let xvfb = Self {
                            child,
                            number: n,
                            display,
                        };
                        return (xvfb, Screen::new(conn, screen));
                    }
                    Err(e) => error = e.to_string(),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("Xvfb on {display} failed ({error}); trying the next display");
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("\n\n*** Xvfb did not start on any display :90..:139; the editor test needs an X server ***\n");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, the server cannot remove its lock and socket; the number is free again.
        let n = self.number;
        let _ = std::fs::remove_file(format!("/tmp/.X{n}-lock"));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{n}"));
    }
}

/// The host's side of the X server: parent windows and screen reads.
pub struct Screen {
    /// Connection of the "DAW".
    conn: RustConnection,
    /// Root window: parents go there, screenshots come from there.
    root: u32,
    /// Black, the parent's background: whatever is not black, the editor drew.
    black: u32,
}

impl Screen {
    fn new(conn: RustConnection, screen: usize) -> Self {
        let s = &conn.setup().roots[screen];
        let (root, black) = (s.root, s.black_pixel);
        Self { conn, root, black }
    }

    /// A mapped, black, top-left window of this size, as a DAW's plugin frame.
    pub fn parent(&self, width: u16, height: u16) -> u32 {
        let window = self.conn.generate_id().expect("X id");
        self.conn
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                window,
                self.root,
                0,
                0,
                width,
                height,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new().background_pixel(self.black),
            )
            .expect("create_window");
        self.conn.map_window(window).expect("map_window");
        self.conn.sync().expect("X sync");
        window
    }

    pub fn destroy(&self, window: u32) {
        self.conn.destroy_window(window).expect("destroy_window");
        self.conn.sync().expect("X sync");
    }

    /// Share of non-black pixels in the top-left `width` × `height` of the screen.
    pub fn drawn(&self, width: u16, height: u16) -> f64 {
        let image = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, width, height, !0)
            .expect("get_image")
            .reply()
            .expect("get_image reply");
        // 24-bit depth comes as 32 bits per pixel.
        let pixels = image.data.chunks_exact(4);
        let total = pixels.len().max(1);
        let lit = pixels.filter(|p| p[..3] != [0, 0, 0]).count();
        lit as f64 / total as f64
    }
}
