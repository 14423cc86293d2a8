//! Interpreter: unary, activation, clip, PRelu, binary (broadcasting, integer wrap) and
//! BatchNorm. Float expectations come from `onnx.reference` (opset 19).

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{BinaryOp, DType, Op, UnaryOp};
use std::f32::consts::{LN_2, SQRT_2};
use util::*;

const X: [f32; 8] = [-2.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.0, -4.0];

fn unary(u: UnaryOp, x: &[f32]) -> Vec<f32> {
    fv(&eval1(&Op::Unary(u), &[&f(&[x.len()], x)]))
}

#[test]
fn unary_exact_ops() {
    assert_eq!(
        unary(UnaryOp::Relu, &X),
        [0.0, 0.0, 0.0, 0.5, 1.5, 2.5, 3.0, 0.0]
    );
    assert_eq!(
        unary(UnaryOp::Neg, &X),
        [2.5, 0.5, -0.0, -0.5, -1.5, -2.5, -3.0, 4.0]
    );
    assert_eq!(
        unary(UnaryOp::Abs, &X),
        [2.5, 0.5, 0.0, 0.5, 1.5, 2.5, 3.0, 4.0]
    );
    assert_eq!(
        unary(UnaryOp::Floor, &X),
        [-3.0, -1.0, 0.0, 0.0, 1.0, 2.0, 3.0, -4.0]
    );
    assert_eq!(
        unary(UnaryOp::Ceil, &X),
        [-2.0, -0.0, 0.0, 1.0, 2.0, 3.0, 3.0, -4.0]
    );
    assert_eq!(
        unary(UnaryOp::Sign, &X),
        [-1.0, -1.0, 0.0, 1.0, 1.0, 1.0, 1.0, -1.0]
    );
}

#[test]
fn round_is_half_to_even() {
    let x = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4999998, -3.5];
    assert_eq!(
        unary(UnaryOp::Round, &x),
        [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 4.0, 2.0, -4.0]
    );
}

#[test]
fn unary_transcendental_match_onnx_reference() {
    let cases: [(UnaryOp, [f32; 8]); 6] = [
        (
            UnaryOp::Sigmoid,
            [
                0.07585818, 0.37754068, 0.5, 0.62245935, 0.8175745, 0.9241418, 0.95257413,
                0.01798621,
            ],
        ),
        (
            UnaryOp::Tanh,
            [
                -0.9866143, -0.4621172, 0.0, 0.4621172, 0.9051482, 0.9866143, 0.9950548, -0.9993293,
            ],
        ),
        (
            UnaryOp::Exp,
            [
                0.082085, 0.60653067, 1.0, 1.6487212, 4.481689, 12.182493, 20.085537, 0.01831564,
            ],
        ),
        (
            UnaryOp::Softplus,
            [
                0.07888974, 0.474077, LN_2, 0.974077, 1.7014133, 2.5788898, 3.0485873, 0.01814993,
            ],
        ),
        (
            UnaryOp::Softsign,
            [
                -0.71428573,
                -0.33333334,
                0.0,
                0.33333334,
                0.6,
                0.71428573,
                0.75,
                -0.8,
            ],
        ),
        (
            UnaryOp::HardSwish,
            [
                -0.20833328,
                -0.20833333,
                0.0,
                0.29166666,
                1.125,
                2.2916667,
                3.0,
                -0.0,
            ],
        ),
    ];
    for (u, want) in cases {
        assert_close(&unary(u, &X), &want, 2e-7);
    }
    let p = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert_close(
        &unary(UnaryOp::Log, &p),
        &[0.0, LN_2, 1.0986123, 1.3862944, 1.609438, 1.7917595],
        2e-7,
    );
    assert_close(
        &unary(UnaryOp::Sqrt, &p),
        &[1.0, SQRT_2, 1.7320508, 2.0, 2.236068, 2.4494898],
        2e-7,
    );
    assert_close(
        &unary(UnaryOp::Reciprocal, &p),
        &[1.0, 0.5, 0.33333334, 0.25, 0.2, 0.16666667],
        0.0,
    );
}

#[test]
fn hard_swish_uses_onnx_constants_exactly() {
    // alpha = f32(1/6), beta = 0.5: -2.5 * (alpha * -2.5 + 0.5) = -0.20833328 in f32
    // (x / 6 + 0.5 would give -0.20833336).
    assert_eq!(unary(UnaryOp::HardSwish, &[-2.5])[0], -0.20833328);
}

#[test]
fn softplus_does_not_overflow() {
    let y = unary(UnaryOp::Softplus, &[100.0, -100.0]);
    assert_eq!(y[0], 100.0);
    assert!(y[1] > 0.0 && y[1] < 1e-43, "{}", y[1]); // e^-100 = 3.7e-44
}

#[test]
fn parametric_activations() {
    let x = f(&[8], &X);
    let y = eval1(&Op::LeakyRelu { alpha: 0.1 }, &[&x]);
    assert_close(&fv(&y), &[-0.25, -0.05, 0.0, 0.5, 1.5, 2.5, 3.0, -0.4], 0.0);
    let y = eval1(&Op::Elu { alpha: 0.7 }, &[&x]);
    assert_close(
        &fv(&y),
        &[
            -0.64254045,
            -0.27542853,
            0.0,
            0.5,
            1.5,
            2.5,
            3.0,
            -0.6871791,
        ],
        2e-7,
    );
    let y = eval1(
        &Op::HardSigmoid {
            alpha: 0.25,
            beta: 0.4,
        },
        &[&x],
    );
    assert_close(
        &fv(&y),
        &[0.0, 0.275, 0.4, 0.525, 0.775, 1.0, 1.0, 0.0],
        1e-7,
    );
    let y = eval1(
        &Op::Clip {
            min: -1.0,
            max: 2.0,
        },
        &[&x],
    );
    assert_eq!(fv(&y), [-1.0, -0.5, 0.0, 0.5, 1.5, 2.0, 2.0, -1.0]);
    let y = eval1(
        &Op::Clip {
            min: f64::NEG_INFINITY,
            max: 0.0,
        },
        &[&x],
    );
    assert_eq!(fv(&y), [-2.5, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, -4.0]);
}

#[test]
fn clip_on_integers_uses_integer_bounds() {
    let x = int(DType::I8, &[5], &[-128, -7, 0, 6, 127]);
    let y = eval1(
        &Op::Clip {
            min: -6.0,
            max: 6.0,
        },
        &[&x],
    );
    assert_eq!(y.dtype, DType::I8);
    assert_eq!(iv(&y), [-6, -6, 0, 6, 6]);
    // Relu6 on uint8 with an open lower bound.
    let x = int(DType::U8, &[3], &[0, 5, 200]);
    assert_eq!(
        iv(&eval1(
            &Op::Clip {
                min: f64::NEG_INFINITY,
                max: 6.0
            },
            &[&x]
        )),
        [0, 5, 6]
    );
}

#[test]
fn integer_unary_ops_wrap() {
    let x = int(DType::I8, &[4], &[-128, -3, 0, 5]);
    assert_eq!(iv(&eval1(&Op::Unary(UnaryOp::Relu), &[&x])), [0, 0, 0, 5]);
    assert_eq!(
        iv(&eval1(&Op::Unary(UnaryOp::Neg), &[&x])),
        [-128, 3, 0, -5]
    );
    assert_eq!(iv(&eval1(&Op::Unary(UnaryOp::Abs), &[&x])), [-128, 3, 0, 5]);
    assert_eq!(iv(&eval1(&Op::Unary(UnaryOp::Sign), &[&x])), [-1, -1, 0, 1]);
}

#[test]
fn prelu_broadcasts_slope() {
    let x = f(&[1, 3, 2, 2], &pattern(12, 5, 7, 3.0, 1.0));
    let s = f(&[3, 1, 1], &[0.1, 0.2, 0.3]);
    let y = eval1(&Op::PRelu, &[&x, &s]);
    assert_close(
        &fv(&y),
        &[
            -0.3, 2.0, 0.0, -0.2, 3.0, 1.0, -0.2, -0.6, 2.0, 0.0, -0.6, 3.0,
        ],
        0.0,
    );
}

#[test]
fn binary_broadcasting() {
    let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let row = f(&[1, 3], &[10., 20., 30.]);
    let col = f(&[2, 1], &[100., 200.]);
    let s = f(&[], &[2.]);
    assert_eq!(
        fv(&eval1(&Op::Binary(BinaryOp::Add), &[&a, &row])),
        [11., 22., 33., 14., 25., 36.]
    );
    assert_eq!(
        fv(&eval1(&Op::Binary(BinaryOp::Sub), &[&col, &row])),
        [90., 80., 70., 190., 180., 170.]
    );
    assert_eq!(
        fv(&eval1(&Op::Binary(BinaryOp::Mul), &[&s, &a])),
        [2., 4., 6., 8., 10., 12.]
    );
    assert_eq!(
        fv(&eval1(&Op::Binary(BinaryOp::Div), &[&a, &s])),
        [0.5, 1., 1.5, 2., 2.5, 3.]
    );
    // Both operands broadcast: [2,1] x [1,3] -> [2,3].
    let y = eval1(
        &Op::Binary(BinaryOp::Max),
        &[&col, &f(&[3], &[150., 50., 250.])],
    );
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(fv(&y), [150., 100., 250., 200., 200., 250.]);
    let y = eval1(
        &Op::Binary(BinaryOp::Min),
        &[
            &f(&[2, 1, 2], &[1., 5., 2., 6.]),
            &f(&[3, 1], &[3., 0., 4.]),
        ],
    );
    assert_eq!(y.shape(), &[2, 3, 2]);
    assert_eq!(fv(&y), [1., 3., 0., 0., 1., 4., 2., 3., 0., 0., 2., 4.]);
    let y = eval1(
        &Op::Binary(BinaryOp::Pow),
        &[
            &f(&[2, 3], &[4., 3., 2., 1., 4., 3.]),
            &f(&[1, 3], &[1., 2., 0.5]),
        ],
    );
    assert_close(&fv(&y), &[4.0, 9.0, SQRT_2, 1.0, 16.0, 1.7320508], 1e-7);
    // Incompatible shapes are an error.
    assert!(eval(&Op::Binary(BinaryOp::Add), &[&a, &f(&[2], &[1., 2.])]).is_err());
}

#[test]
fn max_propagates_nan() {
    let y = eval1(
        &Op::Binary(BinaryOp::Max),
        &[&f(&[2], &[f32::NAN, 1.0]), &f(&[2], &[0.0, f32::NAN])],
    );
    assert!(fv(&y).iter().all(|v| v.is_nan()));
}

#[test]
fn integer_binary_wraps_to_the_dtype() {
    let a = int(DType::I8, &[4], &[100, -100, 127, -128]);
    let b = int(DType::I8, &[4], &[100, -100, 1, -1]);
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Add), &[&a, &b])),
        [-56, 56, -128, 127]
    );
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Mul), &[&a, &b])),
        [16, 16, 127, -128]
    );
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Sub), &[&a, &b])),
        [0, 0, 126, -127]
    );
    let a = int(DType::U8, &[3], &[250, 3, 0]);
    let b = int(DType::U8, &[3], &[10, 5, 1]);
    assert_eq!(iv(&eval1(&Op::Binary(BinaryOp::Add), &[&a, &b])), [4, 8, 1]);
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Sub), &[&a, &b])),
        [240, 254, 255]
    );
    let a = int(DType::I32, &[2], &[i32::MAX as i64, i32::MIN as i64]);
    let b = int(DType::I32, &[2], &[1, -1]);
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Add), &[&a, &b])),
        [i32::MIN as i64, i32::MAX as i64]
    );
    // Sub-byte: int4 wraps at 8.
    let i4 = DType::Int {
        bits: 4,
        signed: true,
    };
    let y = eval1(
        &Op::Binary(BinaryOp::Add),
        &[&int(i4, &[2], &[7, -8]), &int(i4, &[2], &[1, -1])],
    );
    assert_eq!(iv(&y), [-8, 7]);
}

#[test]
fn integer_division_truncates_and_rejects_zero() {
    let a = int(DType::I32, &[4], &[7, -7, 7, -7]);
    let b = int(DType::I32, &[4], &[2, 2, -2, -2]);
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Div), &[&a, &b])),
        [3, -3, -3, 3]
    );
    let z = int(DType::I32, &[4], &[1, 0, 1, 1]);
    let err = eval(&Op::Binary(BinaryOp::Div), &[&a, &z]).unwrap_err();
    assert!(err.contains("division by zero"), "{err}");
    // i8: -128 / -1 wraps to -128.
    let y = eval1(
        &Op::Binary(BinaryOp::Div),
        &[&int(DType::I8, &[1], &[-128]), &int(DType::I8, &[1], &[-1])],
    );
    assert_eq!(iv(&y), [-128]);
}

#[test]
fn integer_pow() {
    let a = int(DType::I32, &[4], &[2, -3, 5, 2]);
    let b = int(DType::I32, &[4], &[10, 3, 0, -1]);
    assert_eq!(
        iv(&eval1(&Op::Binary(BinaryOp::Pow), &[&a, &b])),
        [1024, -27, 1, 0]
    );
    let y = eval1(
        &Op::Binary(BinaryOp::Pow),
        &[&int(DType::I8, &[1], &[2]), &int(DType::I8, &[1], &[7])],
    );
    assert_eq!(iv(&y), [-128]);
    let err = eval(
        &Op::Binary(BinaryOp::Pow),
        &[&int(DType::I8, &[1], &[0]), &int(DType::I8, &[1], &[-1])],
    );
    assert!(err.is_err());
}

#[test]
fn ternary_results_must_stay_representable() {
    let t = int(DType::Ternary, &[3], &[-1, 0, 1]);
    let y = eval1(&Op::Binary(BinaryOp::Mul), &[&t, &t]);
    assert_eq!(iv(&y), [1, 0, 1]);
    assert!(eval(&Op::Binary(BinaryOp::Add), &[&t, &t]).is_err());
}

#[test]
fn batch_norm_matches_onnx_reference() {
    let x = f(&[2, 3, 2, 2], &pattern(24, 7, 11, 5.0, 0.5));
    let p = |v: [f32; 3]| f(&[3], &v);
    let y = eval1(
        &Op::BatchNorm { epsilon: 1e-3 },
        &[
            &x,
            &p([1.0, 0.5, -2.0]),
            &p([0.1, -0.2, 0.3]),
            &p([0.5, -1.0, 0.25]),
            &p([1.0, 4.0, 0.25]),
        ],
    );
    #[rustfmt::skip]
    let want = [
        -2.8985014, 0.5997502, -1.3992506, 2.0990007, 0.17495315, -0.32498437, 0.5499063, 0.049968764,
        9.282055, -4.69003, 3.294018, 11.278067, 0.5997502, -1.3992506, 2.0990007, 0.1,
        -0.32498437, 0.5499063, 0.049968764, -0.44996876, -4.69003, 3.294018, 11.278067, -2.6940181,
    ];
    assert_close(&fv(&y), &want, 2e-7);
}
