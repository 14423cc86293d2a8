//! Bad input through the CLI: every malformed or unsupported model is an error that names
//! the node (or tensor) and the reason, exits with status 1, and never panics.
//! The library-level cases (one test each, with assertions on the error kind) are in
//! `frontend/tests/errors.rs`; this runs the same fixtures end to end through `lnc`.

mod cli_util;

use cli_util::lnc;

fn check(path: &str) -> String {
    let r = lnc(&["inspect", path]);
    assert_eq!(
        r.code, 1,
        "{path}: expected exit code 1, got {}: {}",
        r.code, r.stderr
    );
    assert!(
        !r.stderr.contains("panicked"),
        "{path}: panic: {}",
        r.stderr
    );
    assert!(r.stderr.starts_with("error: "), "{path}: {}", r.stderr);
    r.stderr
        .replace(&cli_util::root().display().to_string(), "<root>")
}

#[test]
fn malformed_and_unsupported_models_are_errors() {
    let mut fixtures: Vec<String> = std::fs::read_dir(cli_util::root().join("frontend/tests/data"))
        .expect("fixtures")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("bad_") && n.ends_with(".onnx"))
        .map(|n| format!("frontend/tests/data/{n}"))
        .collect();
    fixtures.push("tests/data/bad_shape_mismatch.onnx".into());
    fixtures.push("tests/data/bad_conv_channels.onnx".into());
    fixtures.sort();
    assert!(fixtures.len() >= 20, "fixtures missing: {fixtures:?}");
    let report: Vec<String> = fixtures.iter().map(|f| check(f)).collect();
    insta::assert_snapshot!(report.join(""));
}

#[test]
fn random_bytes_and_truncated_files_are_errors() {
    let dir = cli_util::scratch("errors");
    // Deterministic "random" bytes (xorshift).
    let mut s: u64 = 0x9e3779b97f4a7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    let rnd = dir.join("random.onnx");
    std::fs::write(&rnd, &bytes).unwrap();
    check(rnd.to_str().unwrap());

    let model =
        std::fs::read(cli_util::root().join("examples/models/squeezenet1_1_tiny.onnx")).unwrap();
    for cut in [1, 17, 1000, model.len() / 2, model.len() - 1] {
        let p = dir.join(format!("trunc{cut}.onnx"));
        std::fs::write(&p, &model[..cut]).unwrap();
        check(p.to_str().unwrap());
    }
}

#[test]
fn input_shape_resolves_symbolic_dims_and_is_checked() {
    let m = "frontend/tests/data/bad_symbolic_dim.onnx";
    let ok = lnc(&["inspect", m, "--input-shape", "x=1,5"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("x  f32[1,5]"), "{}", ok.stdout);
    let mut report = Vec::new();
    for bad in ["x=2,3,8,8", "x=1,a", "x", "z=3"] {
        let mut args = vec!["inspect", m, "--input-shape", "x=1,5"];
        if bad == "z=3" {
            args.extend(["--input-shape", bad]);
        } else {
            args = vec!["inspect", m, "--input-shape", bad];
        }
        let r = lnc(&args);
        assert_eq!(r.code, 1, "{bad}: {}", r.stderr);
        report.push(format!("{bad}: {}", r.stderr));
    }
    insta::assert_snapshot!(report.join(""));
}
