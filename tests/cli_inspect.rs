//! `lnc inspect` and `lnc convert` on hand-written `.lnir` models, and model-loading errors.

mod cli_util;

use cli_util::{lnc, scratch};

#[test]
fn inspect_text() {
    let r = lnc(&["inspect", "tests/data/tiny_cnn.lnir"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn inspect_json() {
    let r = lnc(&["inspect", "--json", "tests/data/tiny_cnn.lnir"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    // stem 3456 + depthwise 1152 + pointwise 2048 + group conv 1024 + fc 160
    assert_eq!(v["macs"], 7840);
    assert_eq!(v["macs_by_kind"]["depthwise"], 1152);
    assert_eq!(v["macs_by_kind"]["pointwise"], 2048);
    assert_eq!(v["macs_by_kind"]["other_conv"], 3456 + 1024);
    assert_eq!(v["macs_by_kind"]["gemm"], 160);
    assert_eq!(v["params"], 216 + 8 + 72 + 128 + 4 * 16 + 64 + 160 + 10);
    assert_eq!(v["weight_params"], 216 + 8 + 72 + 128 + 64 + 160 + 10);
    assert_eq!(v["ops"]["conv"], 4);
    assert_eq!(v["inputs"][0]["name"], "x");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([1, 10]));
    assert_eq!(v["layers"].as_array().unwrap().len(), 12);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn inspect_is_deterministic() {
    for args in [
        &["inspect", "tests/data/tiny_cnn.lnir"][..],
        &["inspect", "--json", "tests/data/quantized.lnir"],
    ] {
        let a = lnc(args);
        let b = lnc(args);
        assert_eq!(a.code, 0, "{}", a.stderr);
        assert_eq!(a.stdout, b.stdout);
    }
}

#[test]
fn inspect_quantized_types() {
    let r = lnc(&["inspect", "tests/data/quantized.lnir"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn model_errors() {
    let cases: &[&[&str]] = &[
        &["inspect", "tests/data/missing.lnir"],
        &["inspect", "tests/data/model.txt"],
        &["inspect", "tests/data/bad_syntax.lnir"],
        &["inspect", "tests/data/bad_type.lnir"],
        &["inspect", "tests/data"],
        &["convert", "tests/data/tiny_cnn.lnir", "-o", "out.pb"],
    ];
    let mut report = String::new();
    for args in cases {
        let r = lnc(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
        assert_eq!(r.stdout, "");
        report.push_str(&format!("$ lnc {}\n{}\n", args.join(" "), r.error_report()));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["inspect"][..],
        &["frobnicate"],
        &["inspect", "a.lnir", "--bogus"],
        &[],
    ] {
        let r = lnc(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
}

#[test]
fn convert_lnir_is_canonical() {
    let dir = scratch("convert_lnir");
    let out = dir.join("tiny.lnir");
    let r = lnc(&[
        "convert",
        "tests/data/tiny_cnn.lnir",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let original =
        std::fs::read_to_string(cli_util::root().join("tests/data/tiny_cnn.lnir")).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), original);
}

/// Needs the ONNX frontend (export and import).
#[test]
fn convert_through_onnx_preserves_the_model() {
    let dir = scratch("convert_onnx");
    let onnx = dir.join("tiny.onnx");
    let back = dir.join("tiny.lnir");
    let r = lnc(&[
        "convert",
        "tests/data/tiny_cnn.lnir",
        "-o",
        onnx.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = lnc(&[
        "convert",
        onnx.to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let a = lnc(&["inspect", "--json", "tests/data/tiny_cnn.lnir"]);
    let b = lnc(&["inspect", "--json", onnx.to_str().unwrap()]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&a.stdout).unwrap(),
        serde_json::from_str(&b.stdout).unwrap(),
    );
    for key in ["params", "macs", "macs_by_kind", "inputs", "outputs"] {
        assert_eq!(a[key], b[key], "{key}");
    }
}
