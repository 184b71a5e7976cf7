//! The `grown` command line as a user meets it: help on every command, and a
//! bad invocation answered with a clear error and exit status 2.

use std::process::{Command, Stdio};

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
    for command in ["render", "info", "vocode", "soak", "presets"] {
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
        "--preset",
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

/// The samples of a WAV `grown render` wrote (32-bit float, interleaved).
#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    // `grown presets | head -1`: the reader is gone before the listing is
    // written, so the first write fails; that must be a quiet exit, not a panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_grown"))
        .arg("presets")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

fn wav_samples(path: &std::path::Path) -> Vec<f32> {
    hound::WavReader::open(path)
        .expect("rendered WAV")
        .samples::<f32>()
        .map(|s| s.expect("WAV sample"))
        .collect()
}

#[test]
fn factory_presets_are_listed_and_render_their_own_sound() {
    let (rc, out, err) = grown(&["presets"]);
    assert_eq!(rc, 0, "{err}");
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(ids.len() >= 12, "{} presets:\n{out}", ids.len());

    let dir = std::env::temp_dir().join(format!("grown-cli-presets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let render = |preset: &str, extra: &[&str]| {
        let wav = dir.join(format!("{preset}{}.wav", extra.len()));
        let mut args = vec!["render", "--preset", preset, "--notes", "60@0+2"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", wav.to_str().unwrap()]);
        let (rc, _, err) = grown(&args);
        assert_eq!(rc, 0, "grown {args:?}: {err}");
        wav_samples(&wav)
    };
    let strings = render("strings-bow", &[]);
    let trumpet = render("trumpet-stab", &[]);
    for (name, audio) in [("strings-bow", &strings), ("trumpet-stab", &trumpet)] {
        let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.01, "{name} is silent (peak {peak})");
    }
    assert_ne!(strings, trumpet, "two presets rendered the same audio");
    // An explicit option overrides the preset: another seed, another sound.
    assert_ne!(render("strings-bow", &["--seed", "2"]), strings);

    let (rc, _, err) = grown(&[
        "render", "--preset", "nope", "--notes", "60@0+1", "--out", "x.wav",
    ]);
    assert_eq!(rc, 2);
    assert_eq!(
        err.trim(),
        "grown: no factory preset 'nope' (`grown presets` lists them)"
    );
    std::fs::remove_dir_all(&dir).ok();
}
