//! Interpreter: QuantizeLinear, DequantizeLinear and the QONNX ops Quant, BipolarQuant,
//! Trunc. Expected values from `onnx.reference` and the QONNX reference formulas.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{DType, Op, RoundingMode};
use util::*;

const XQ: [f32; 12] = [
    2.5, 3.5, -2.5, -3.5, 0.5, 1.5, -0.5, 300.0, -300.0, 127.4, -128.6, 1e9,
];

#[test]
fn quantize_linear_ties_to_even_and_saturates() {
    let x = f(&[12], &XQ);
    let y = eval1(
        &Op::QuantizeLinear { axis: None },
        &[&x, &f(&[], &[1.0]), &int(DType::I8, &[], &[0])],
    );
    assert_eq!(y.dtype, DType::I8);
    assert_eq!(iv(&y), [2, 4, -2, -4, 0, 2, 0, 127, -128, 127, -128, 127]);
    let y = eval1(
        &Op::QuantizeLinear { axis: None },
        &[&x, &f(&[], &[0.5]), &int(DType::U8, &[], &[10])],
    );
    assert_eq!(y.dtype, DType::U8);
    assert_eq!(iv(&y), [15, 17, 5, 3, 11, 13, 9, 255, 0, 255, 0, 255]);
}

#[test]
fn quantize_linear_to_int4_and_nan() {
    let i4 = DType::Int {
        bits: 4,
        signed: true,
    };
    let x = f(&[5], &[7.6, -9.0, 2.5, f32::NAN, -0.5]);
    let y = eval1(
        &Op::QuantizeLinear { axis: None },
        &[&x, &f(&[1], &[1.0]), &int(i4, &[1], &[1])],
    );
    assert_eq!(iv(&y), [7, -8, 3, 1, 1]);
}

const XQ2: [f32; 12] = [
    -1.85, 0.74, -0.74, 1.85, 0.37, -1.11, 1.48, 0.0, -1.48, 1.11, -0.37, -1.85,
];

#[test]
fn quantize_dequantize_per_axis() {
    let x = f(&[2, 3, 2], &XQ2);
    let s = f(&[3], &[0.1, 0.2, 0.05]);
    let z = int(DType::I8, &[3], &[0, -5, 3]);
    let q = eval1(&Op::QuantizeLinear { axis: Some(1) }, &[&x, &s, &z]);
    assert_eq!(iv(&q), [-18, 7, -9, 4, 10, -19, 15, 0, -12, 1, -4, -34]);
    let d = eval1(&Op::DequantizeLinear { axis: Some(1) }, &[&q, &s, &z]);
    assert_close(
        &fv(&d),
        &[
            -1.8, 0.7, -0.8, 1.8, 0.35, -1.1, 1.5, 0.0, -1.4, 1.2, -0.35, -1.85,
        ],
        1e-7,
    );
}

#[test]
fn dequantize_is_x_minus_zp_times_scale() {
    let q = int(DType::U8, &[3], &[0, 128, 255]);
    let d = eval1(
        &Op::DequantizeLinear { axis: None },
        &[&q, &f(&[], &[0.1]), &int(DType::U8, &[], &[128])],
    );
    assert_eq!(fv(&d), [-128.0 * 0.1f32, 0.0, 127.0 * 0.1f32]);
}

fn quant(
    x: &[f32],
    scale: f32,
    zp: f32,
    bits: u32,
    signed: bool,
    narrow: bool,
    rounding: RoundingMode,
) -> Vec<f32> {
    let op = Op::Quant {
        bits,
        signed,
        narrow,
        rounding,
    };
    fv(&eval1(
        &op,
        &[&f(&[x.len()], x), &f(&[], &[scale]), &f(&[], &[zp])],
    ))
}

const XQO: [f32; 8] = [-1.3, -0.55, -0.25, 0.0, 0.25, 0.74, 1.1, 5.0];

#[test]
fn qonnx_quant() {
    use RoundingMode::*;
    assert_eq!(
        quant(&XQO, 0.25, 0.0, 4, true, false, Round),
        [-1.25, -0.5, -0.25, 0.0, 0.25, 0.75, 1.0, 1.75]
    );
    assert_eq!(
        quant(&XQO, 0.25, 0.0, 3, true, true, Floor),
        [-0.75, -0.75, -0.25, 0.0, 0.25, 0.5, 0.75, 0.75]
    );
    assert_eq!(
        quant(&XQO, 0.25, 2.0, 4, false, false, Ceil),
        [-0.5, -0.5, -0.25, 0.0, 0.25, 0.75, 1.25, 3.25]
    );
    // Unsigned narrow: [0, 2^b - 2].
    assert_eq!(quant(&[10.0], 1.0, 0.0, 3, false, true, Round), [6.0]);
    // Signed 1-bit is bipolar as in the QONNX implementation.
    assert_eq!(
        quant(&[-0.1, 0.0, 3.0], 0.5, 0.0, 1, true, false, Round),
        [-0.5, 0.5, 0.5]
    );
}

#[test]
fn qonnx_quant_per_row_scale() {
    let x = f(&[2, 4], &pattern(8, 3, 7, 3.0, 0.3));
    let s = f(&[2, 1], &[0.5, 0.25]);
    let op = Op::Quant {
        bits: 3,
        signed: true,
        narrow: false,
        rounding: RoundingMode::Round,
    };
    let y = eval1(&op, &[&x, &s, &f(&[], &[0.0])]);
    assert_eq!(fv(&y), [-1.0, 0.0, 1.0, -0.5, 0.5, -0.5, 0.25, -1.0]);
}

#[test]
fn qonnx_bipolar_quant() {
    let y = eval1(
        &Op::BipolarQuant,
        &[
            &f(&[2, 2], &[-0.1, 0.0, 2.0, -3.0]),
            &f(&[2, 1], &[0.5, 2.0]),
        ],
    );
    assert_eq!(fv(&y), [-0.5, 0.5, 2.0, -2.0]);
}

const XT: [f32; 9] = [-130.0, -37.0, -9.0, -1.0, 0.0, 5.0, 23.0, 127.0, 200.0];

fn trunc(x: &[f32], scale: f32, in_bits: u32, out_bits: u32, rounding: RoundingMode) -> Vec<f32> {
    let op = Op::Trunc {
        in_bits,
        out_bits,
        rounding,
        signed: true,
        narrow: false,
    };
    fv(&eval1(
        &op,
        &[&f(&[x.len()], x), &f(&[], &[scale]), &f(&[], &[0.0])],
    ))
}

#[test]
fn qonnx_trunc() {
    assert_eq!(
        trunc(&XT, 1.0, 8, 4, RoundingMode::Floor),
        [-8.0, -3.0, -1.0, -1.0, 0.0, 0.0, 1.0, 7.0, 7.0]
    );
    assert_eq!(
        trunc(&XT, 1.0, 8, 4, RoundingMode::Round),
        [-8.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 7.0, 7.0]
    );
    let xh: Vec<f32> = XT.iter().map(|v| v * 0.5).collect();
    assert_eq!(
        trunc(&xh, 0.5, 8, 5, RoundingMode::Round),
        [-8.0, -2.5, -0.5, 0.0, 0.0, 0.5, 1.5, 7.5, 7.5]
    );
}
