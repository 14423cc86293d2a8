//! `lnc zoo`: listing, generating models as `.lnir` and `.onnx`, and option errors.
//! Everything but the usage errors needs the zoo (and `.onnx` the frontend).

mod cli_util;

use cli_util::{lnc, scratch};

fn first_model() -> String {
    let r = lnc(&["zoo", "--list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .next()
        .expect("the zoo lists at least one model")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn lists_models() {
    let r = lnc(&["zoo", "--list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().count() >= 1);
    for line in r.stdout.lines() {
        assert_eq!(line, line.trim_end());
        assert!(
            line.split_whitespace().count() >= 2,
            "name and description: {line}"
        );
    }
}

#[test]
fn generates_lnir_and_onnx_that_inspect_alike() {
    let name = first_model();
    let dir = scratch("zoo_gen");
    let lnir = dir.join("m.lnir");
    let onnx = dir.join("m.onnx");
    let common = [
        "--input-size",
        "32",
        "--width",
        "0.25",
        "--classes",
        "10",
        "--seed",
        "7",
    ];
    for out in [&lnir, &onnx] {
        let mut args = vec!["zoo", name.as_str()];
        args.extend(common);
        args.extend(["-o", out.to_str().unwrap()]);
        let r = lnc(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let a = lnc(&["inspect", "--json", lnir.to_str().unwrap()]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = lnc(&["inspect", "--json", onnx.to_str().unwrap()]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&a.stdout).unwrap(),
        serde_json::from_str(&b.stdout).unwrap(),
    );
    assert!(a["macs"].as_u64().unwrap() > 0);
    assert_eq!(
        a["outputs"][0]["shape"].as_array().unwrap().last().unwrap(),
        10
    );
    for key in ["params", "macs", "macs_by_kind", "inputs", "outputs", "ops"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    // Same seed, same bytes.
    let again = dir.join("again.lnir");
    let mut args = vec!["zoo", name.as_str()];
    args.extend(common);
    args.extend(["-o", again.to_str().unwrap()]);
    assert_eq!(lnc(&args).code, 0);
    assert_eq!(
        std::fs::read(&lnir).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn unknown_model_is_an_error() {
    let dir = scratch("zoo_unknown");
    let out = dir.join("x.lnir");
    let r = lnc(&["zoo", "no_such_net", "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: unknown model 'no_such_net'"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

#[test]
fn bad_output_extension_is_an_error() {
    let r = lnc(&["zoo", "anything", "-o", "model.txt"]);
    assert_eq!(r.code, 1);
    insta::assert_snapshot!(r.error_report());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["zoo"][..],
        &["zoo", "mobilenet_v2"],
        &["zoo", "--list", "mobilenet_v2"],
        &["zoo", "x", "-o", "y.lnir", "--width", "wide"],
    ] {
        let r = lnc(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
}

/// Every zoo model prints as `.lnir` that parses back and prints byte-identically.
#[test]
fn every_zoo_model_round_trips_through_lnir() {
    let r = lnc(&["zoo", "--list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dir = scratch("zoo_round_trip");
    for name in r.stdout.lines().filter_map(|l| l.split_whitespace().next()) {
        let a = dir.join(format!("{name}.lnir"));
        let b = dir.join(format!("{name}.2.lnir"));
        let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
        let r = lnc(&[
            "zoo",
            name,
            "--input-size",
            "32",
            "--width",
            "0.25",
            "--classes",
            "10",
            "-o",
            a_s,
        ]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let r = lnc(&["convert", a_s, "-o", b_s]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{name} does not round-trip"
        );
    }
}
