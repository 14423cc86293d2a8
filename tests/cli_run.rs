//! `lnc run`: `.npy` inputs and outputs, input matching and input errors.
//!
//! The tests run in a scratch directory with relative `.npy` names so that messages are
//! stable; models are given by absolute path.

mod cli_util;

use cli_util::{lnc_in, npy_f32, npy_i8, npy_raw, read_f32, read_npy, root, scratch};
use std::path::{Path, PathBuf};

fn model(name: &str) -> String {
    root()
        .join("tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

const A: [f32; 6] = [1.0, -2.0, 3.0, -4.0, 5.0, -6.5];
const B: [f32; 6] = [0.5, 0.5, 0.5, 0.5, 0.5, 7.0];
const C: [f32; 3] = [1.0, -2.0, 0.5];

fn elementwise_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    write(&dir, "a.npy", &npy_f32(&[2, 3], &A));
    write(&dir, "b.npy", &npy_f32(&[2, 3], &B));
    dir
}

fn check_elementwise(dir: &Path) {
    let (shape, sum) = read_f32(&dir.join("sum.npy"));
    assert_eq!(shape, vec![2, 3]);
    let want: Vec<f32> = A.iter().zip(&B).map(|(a, b)| a + b).collect();
    assert_eq!(sum, want);
    let (shape, out) = read_f32(&dir.join("out.npy"));
    assert_eq!(shape, vec![2, 3]);
    let want: Vec<f32> = want
        .iter()
        .enumerate()
        .map(|(i, s)| s.max(0.0) * C[i % 3])
        .collect();
    assert_eq!(out, want);
}

/// Needs the interpreter.
#[test]
fn runs_with_positional_inputs() {
    let dir = elementwise_dir("positional");
    let r = lnc_in(
        &dir,
        &[
            "run",
            &model("elementwise.lnir"),
            "--input",
            "a.npy",
            "-i",
            "b.npy",
            "-o",
            "sum.npy",
            "--output",
            "out.npy",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    check_elementwise(&dir);
}

/// Needs the interpreter.
#[test]
fn runs_with_named_inputs_and_outputs() {
    let dir = elementwise_dir("named");
    let r = lnc_in(
        &dir,
        &[
            "run",
            &model("elementwise.lnir"),
            "-i",
            "b=b.npy",
            "-i",
            "a=a.npy",
            "-o",
            "out=out.npy",
            "-o",
            "sum=sum.npy",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    check_elementwise(&dir);
}

/// Needs the interpreter: quantize / dequantize and a 4-bit input given as `|i1`.
#[test]
fn runs_quantized_model_with_sub_byte_input() {
    let dir = scratch("quantized");
    write(&dir, "x.npy", &npy_f32(&[4], &[0.2, -1.3, 100.0, 0.75]));
    write(&dir, "k.npy", &npy_i8(&[3], &[1, -8, 7]));
    let r = lnc_in(
        &dir,
        &[
            "run",
            &model("quantized.lnir"),
            "-i",
            "x.npy",
            "-i",
            "k.npy",
            "-o",
            "q.npy",
            "-o",
            "dq.npy",
            "-o",
            "k32.npy",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // q = saturate(round_half_even(x / 0.5) + 1)
    let (descr, shape, data) = read_npy(&dir.join("q.npy"));
    assert_eq!((descr.as_str(), shape), ("|i1", vec![4]));
    assert_eq!(
        data.iter().map(|&b| b as i8).collect::<Vec<_>>(),
        vec![1, -2, 127, 3]
    );
    let (_, dq) = read_f32(&dir.join("dq.npy"));
    assert_eq!(dq, vec![0.0, -1.5, 63.0, 1.0]);
    let (descr, _, data) = read_npy(&dir.join("k32.npy"));
    assert_eq!(descr, "<i4");
    let k: Vec<i32> = data
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(k, vec![1, -8, 7]);
}

/// Needs the interpreter.
#[test]
fn runs_a_cnn() {
    let dir = scratch("cnn");
    let x: Vec<f32> = (0..192)
        .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5)
        .collect();
    write(&dir, "x.npy", &npy_f32(&[1, 3, 8, 8], &x));
    let r = lnc_in(
        &dir,
        &[
            "run",
            &model("tiny_cnn.lnir"),
            "-i",
            "x.npy",
            "-o",
            "prob.npy",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (shape, p) = read_f32(&dir.join("prob.npy"));
    assert_eq!(shape, vec![1, 10]);
    assert!(p.iter().all(|v| v.is_finite() && *v > 0.0));
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

/// Errors found before the interpreter runs.
#[test]
fn input_errors() {
    let dir = elementwise_dir("errors");
    write(&dir, "wrong_shape.npy", &npy_f32(&[3, 2], &A));
    write(&dir, "ints.npy", &npy_i8(&[2, 3], &[1, 2, 3, 4, 5, 6]));
    write(&dir, "f64.npy", &npy_raw("<f8", &[2, 3], &[0; 48]));
    write(&dir, "short.npy", &npy_raw("<f4", &[2, 3], &[0; 20]));
    write(&dir, "garbage.npy", b"PK\x03\x04 definitely not numpy");
    write(&dir, "k_big.npy", &npy_i8(&[3], &[1, 8, 0]));
    write(&dir, "x4.npy", &npy_f32(&[4], &[0.0; 4]));
    let ew = model("elementwise.lnir");
    let q = model("quantized.lnir");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "run",
            &ew,
            "-i",
            "a.npy",
            "-i",
            "wrong_shape.npy",
            "-o",
            "s.npy",
            "-o",
            "o.npy",
        ],
        vec![
            "run", &ew, "-i", "a.npy", "-i", "ints.npy", "-o", "s.npy", "-o", "o.npy",
        ],
        vec![
            "run", &ew, "-i", "f64.npy", "-i", "b.npy", "-o", "s.npy", "-o", "o.npy",
        ],
        vec![
            "run",
            &ew,
            "-i",
            "a.npy",
            "-i",
            "short.npy",
            "-o",
            "s.npy",
            "-o",
            "o.npy",
        ],
        vec![
            "run",
            &ew,
            "-i",
            "garbage.npy",
            "-i",
            "b.npy",
            "-o",
            "s.npy",
            "-o",
            "o.npy",
        ],
        vec![
            "run",
            &ew,
            "-i",
            "missing.npy",
            "-i",
            "b.npy",
            "-o",
            "s.npy",
            "-o",
            "o.npy",
        ],
        vec!["run", &ew, "-i", "a.npy", "-i", "b.npy", "-o", "s.npy"],
        vec!["run", &ew, "-i", "a.npy", "-o", "s.npy", "-o", "o.npy"],
        vec![
            "run", &ew, "-i", "a.npy", "-i", "b.npy", "-i", "b.npy", "-o", "s.npy", "-o", "o.npy",
        ],
        vec![
            "run", &ew, "-i", "a=a.npy", "-i", "a=b.npy", "-o", "s.npy", "-o", "o.npy",
        ],
        vec![
            "run",
            &q,
            "-i",
            "x4.npy",
            "-i",
            "k_big.npy",
            "-o",
            "1.npy",
            "-o",
            "2.npy",
            "-o",
            "3.npy",
        ],
        vec![
            "run", &q, "-i", "x4.npy", "-i", "x4.npy", "-o", "1.npy", "-o", "2.npy", "-o", "3.npy",
        ],
    ];
    let mut report = String::new();
    for args in &cases {
        let r = lnc_in(&dir, args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        let shown: Vec<&str> = args
            .iter()
            .map(|a| {
                if a.ends_with(".lnir") {
                    a.rsplit('/').next().unwrap()
                } else {
                    *a
                }
            })
            .collect();
        report.push_str(&format!(
            "$ lnc {}\n{}\n",
            shown.join(" "),
            r.error_report()
        ));
    }
    insta::assert_snapshot!(report);
    // Nothing was written on error.
    assert!(!dir.join("s.npy").exists());
}

#[test]
fn fortran_order_is_rejected() {
    let dir = elementwise_dir("fortran");
    let mut bytes = npy_f32(&[2, 3], &A);
    let at = bytes.windows(5).position(|w| w == b"False").unwrap();
    bytes[at..at + 5].copy_from_slice(b"True ");
    write(&dir, "f.npy", &bytes);
    let r = lnc_in(
        &dir,
        &[
            "run",
            &model("elementwise.lnir"),
            "-i",
            "f.npy",
            "-i",
            "b.npy",
            "-o",
            "s.npy",
            "-o",
            "o.npy",
        ],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "error: input 'a': invalid .npy file f.npy: Fortran-order arrays are not supported; save C order (np.ascontiguousarray(x))\n");
}
