//! The `grown` command line as a user meets it: help on every command, and a
//! bad invocation answered with a clear error and exit status 2.

use std::process::Command;

fn grown(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grown"))
        .args(args)
        .output()
        .expect("run grown");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_on_every_command() {
    let (rc, out, _) = grown(&["--help"]);
    assert_eq!(rc, 0);
    for command in ["render", "info", "vocode", "soak"] {
        assert!(
            out.contains(command),
            "`grown --help` does not list {command}"
        );
        let (rc, out, err) = grown(&[command, "--help"]);
        assert_eq!(rc, 0, "`grown {command} --help`: {err}");
        assert!(out.contains(&format!("Usage: grown {command}")), "{out}");
    }
    let (_, out, _) = grown(&["render", "--help"]);
    for flag in [
        "--model",
        "--seed",
        "--growth",
        "--length",
        "--root",
        "--sample-rate",
        "--notes",
        "--out",
        "--png",
    ] {
        assert!(out.contains(flag), "render --help lacks {flag}");
    }
}

#[test]
fn bad_invocations_are_one_clear_error() {
    for (args, says) in [
        (
            &["render", "--bogus", "1"][..],
            "unexpected argument '--bogus'",
        ),
        (&["render", "--notes", "60@0+1"][..], "--out"),
        (
            &[
                "render", "--notes", "60@0+1", "--out", "x.wav", "--seed", "two",
            ][..],
            "invalid value 'two'",
        ),
        (&["soak", "--bound", "maybe"][..], "invalid value 'maybe'"),
        (&["dance"][..], "unrecognized subcommand 'dance'"),
        (&[][..], "Usage: grown <COMMAND>"),
    ] {
        let (rc, _, err) = grown(args);
        assert_eq!(rc, 2, "grown {args:?}: {err}");
        assert!(err.contains(says), "grown {args:?} said: {err}");
    }
    // The command's own checks keep their one-line `grown:` messages.
    let (rc, _, err) = grown(&[
        "render", "--notes", "60@0+1", "--out", "x.wav", "--length", "99",
    ]);
    assert_eq!(rc, 2);
    assert_eq!(
        err.trim(),
        "grown: --length must be between 0.05 and 60 seconds"
    );
    let (rc, _, err) = grown(&["info", "/nonexistent/model.onnx"]);
    assert_eq!(rc, 2);
    assert!(err.starts_with("grown: model file not found"), "{err}");
}
