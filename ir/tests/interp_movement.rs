//! Interpreter: Identity, Concat, Split, Slice, Reshape, Transpose, Gather, Expand, Cast,
//! Pad.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{DType, Op, PadMode, SliceAxis, Tensor};
use util::*;

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    f(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
}

#[test]
fn identity_copies() {
    let x = int(DType::U8, &[2, 2], &[1, 2, 3, 255]);
    assert!(eval1(&Op::Identity, &[&x]).bit_eq(&x));
}

#[test]
fn concat_middle_axis() {
    let a = iota(&[2, 1, 2]);
    let b = f(&[2, 2, 2], &[10., 11., 12., 13., 14., 15., 16., 17.]);
    let y = eval1(&Op::Concat { axis: 1 }, &[&a, &b, &a]);
    assert_eq!(y.shape(), &[2, 4, 2]);
    assert_eq!(
        fv(&y),
        [0., 1., 10., 11., 12., 13., 0., 1., 2., 3., 14., 15., 16., 17., 2., 3.]
    );
    let i = int(DType::I8, &[1, 2], &[-1, 2]);
    let y = eval1(&Op::Concat { axis: 0 }, &[&i, &i]);
    assert_eq!(iv(&y), [-1, 2, -1, 2]);
}

#[test]
fn split_along_axis() {
    let x = iota(&[2, 3, 2]);
    let ys = eval(
        &Op::Split {
            axis: 1,
            sizes: vec![1, 2],
        },
        &[&x],
    )
    .unwrap();
    assert_eq!(ys.len(), 2);
    assert_eq!(ys[0].shape(), &[2, 1, 2]);
    assert_eq!(fv(&ys[0]), [0., 1., 6., 7.]);
    assert_eq!(fv(&ys[1]), [2., 3., 4., 5., 8., 9., 10., 11.]);
}

#[test]
fn slice_with_negative_steps() {
    let x = iota(&[2, 3, 4]);
    let op = Op::Slice {
        axes: vec![
            SliceAxis {
                axis: 1,
                start: 0,
                end: 3,
                step: 2,
            },
            SliceAxis {
                axis: 2,
                start: 3,
                end: -1,
                step: -2,
            },
        ],
    };
    let y = eval1(&op, &[&x]);
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_eq!(fv(&y), [3., 1., 11., 9., 15., 13., 23., 21.]);
    // Full reversal through index 0 (end = -1) and a plain sub-range.
    let op = Op::Slice {
        axes: vec![
            SliceAxis {
                axis: 2,
                start: 3,
                end: -1,
                step: -1,
            },
            SliceAxis {
                axis: 0,
                start: 1,
                end: 2,
                step: 1,
            },
        ],
    };
    let y = eval1(&op, &[&x]);
    assert_eq!(y.shape(), &[1, 3, 4]);
    assert_eq!(
        fv(&y),
        [15., 14., 13., 12., 19., 18., 17., 16., 23., 22., 21., 20.]
    );
    // Empty result.
    let op = Op::Slice {
        axes: vec![SliceAxis {
            axis: 1,
            start: 1,
            end: 1,
            step: 1,
        }],
    };
    assert_eq!(eval1(&op, &[&x]).shape(), &[2, 0, 4]);
}

#[test]
fn reshape_keeps_row_major_order() {
    let x = iota(&[2, 3]);
    let y = eval1(
        &Op::Reshape {
            shape: vec![3, 1, 2],
        },
        &[&x],
    );
    assert_eq!(y.shape(), &[3, 1, 2]);
    assert_eq!(fv(&y), [0., 1., 2., 3., 4., 5.]);
    assert!(eval(&Op::Reshape { shape: vec![4] }, &[&x]).is_err());
}

#[test]
fn transpose_permutes() {
    let x = iota(&[2, 3, 4]);
    let y = eval1(
        &Op::Transpose {
            perm: vec![2, 0, 1],
        },
        &[&x],
    );
    assert_eq!(y.shape(), &[4, 2, 3]);
    let v = fv(&y);
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(v[(k * 2 + i) * 3 + j], (i * 12 + j * 4 + k) as f32);
            }
        }
    }
    // Channel shuffle: [1, 2, 3] -> transpose(0, 2, 1).
    let x = int(DType::I8, &[1, 2, 3], &[0, 1, 2, 3, 4, 5]);
    assert_eq!(
        iv(&eval1(
            &Op::Transpose {
                perm: vec![0, 2, 1]
            },
            &[&x]
        )),
        [0, 3, 1, 4, 2, 5]
    );
}

#[test]
fn gather_negative_indices() {
    let x = iota(&[2, 3, 2]);
    let idx = int(DType::I64, &[2, 2], &[-1, 0, 1, -3]);
    let y = eval1(&Op::Gather { axis: 1 }, &[&x, &idx]);
    assert_eq!(y.shape(), &[2, 2, 2, 2]);
    // x[b, i, k] = b*6 + i*2 + k; indices -> [[2, 0], [1, 0]].
    assert_eq!(
        fv(&y),
        [4., 5., 0., 1., 2., 3., 0., 1., 10., 11., 6., 7., 8., 9., 6., 7.]
    );
    // Scalar index removes the axis.
    let y = eval1(&Op::Gather { axis: 0 }, &[&x, &int(DType::I32, &[], &[-1])]);
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(fv(&y), [6., 7., 8., 9., 10., 11.]);
}

#[test]
fn gather_out_of_range_is_an_error() {
    let x = iota(&[2, 3]);
    for bad in [3, -4] {
        let err = eval(
            &Op::Gather { axis: 1 },
            &[&x, &int(DType::I64, &[1], &[bad])],
        )
        .unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }
}

#[test]
fn expand_broadcasts() {
    let x = f(&[3, 1], &[1., 2., 3.]);
    let y = eval1(
        &Op::Expand {
            shape: vec![2, 3, 2],
        },
        &[&x],
    );
    assert_eq!(y.shape(), &[2, 3, 2]);
    assert_eq!(fv(&y), [1., 1., 2., 2., 3., 3., 1., 1., 2., 2., 3., 3.]);
}

fn cast(to: DType, x: &Tensor) -> Tensor {
    eval1(&Op::Cast { to }, &[x])
}

#[test]
fn cast_float_to_int_truncates_and_saturates() {
    let x = f(
        &[8],
        &[-200.7, -1.9, -0.5, 0.5, 1.9, 127.9, 300.0, f32::NAN],
    );
    assert_eq!(iv(&cast(DType::I8, &x)), [-128, -1, 0, 0, 1, 127, 127, 0]);
    assert_eq!(iv(&cast(DType::U8, &x)), [0, 0, 0, 0, 1, 127, 255, 0]);
    assert_eq!(
        iv(&cast(DType::I32, &f(&[2], &[3e10, -3e10]))),
        [i32::MAX as i64, i32::MIN as i64]
    );
}

#[test]
fn cast_int_to_int_wraps() {
    let x = int(DType::I32, &[4], &[200, -129, 300, -1]);
    assert_eq!(iv(&cast(DType::I8, &x)), [-56, 127, 44, -1]);
    assert_eq!(iv(&cast(DType::U8, &x)), [200, 127, 44, 255]);
    let i4 = DType::Int {
        bits: 4,
        signed: true,
    };
    assert_eq!(iv(&cast(i4, &x)), [-8, -1, -4, -1]);
}

#[test]
fn cast_to_bool_and_float() {
    assert_eq!(
        iv(&cast(DType::Bool, &int(DType::I32, &[3], &[0, 3, -1]))),
        [0, 1, 1]
    );
    assert_eq!(
        iv(&cast(DType::Bool, &f(&[4], &[0.0, -0.0, 0.1, f32::NAN]))),
        [0, 0, 1, 1]
    );
    assert_eq!(
        fv(&cast(DType::F32, &int(DType::I32, &[2], &[16_777_217, -3]))),
        [16_777_216.0, -3.0]
    );
}

#[test]
fn cast_fixed_point_by_value() {
    let fix = DType::Fixed {
        bits: 8,
        frac: 2,
        signed: true,
    };
    let y = cast(fix, &f(&[4], &[1.3, -1.3, 100.0, 0.2]));
    assert_eq!(iv(&y), [5, -5, 127, 0]);
    assert_eq!(fv(&cast(DType::F32, &y)), [1.25, -1.25, 31.75, 0.0]);
    assert_eq!(iv(&cast(DType::I8, &y)), [1, -1, 31, 0]);
    assert!(eval(&Op::Cast { to: DType::Bipolar }, &[&f(&[1], &[0.5])]).is_err());
}

fn pad(x: &Tensor, pads: &[i64], mode: PadMode, value: f32) -> Vec<f32> {
    fv(&eval1(
        &Op::Pad {
            pads: pads.to_vec(),
            mode,
            value,
        },
        &[x],
    ))
}

#[test]
fn pad_modes_with_cropping() {
    let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    // Axis 1 is cropped by one at the end, then padded by two at the beginning.
    let pads = [0, 2, 1, -1];
    assert_eq!(
        pad(&x, &pads, PadMode::Constant, 9.0),
        [9., 9., 1., 2., 9., 9., 4., 5., 9., 9., 9., 9.]
    );
    assert_eq!(
        pad(&x, &pads, PadMode::Reflect, 0.0),
        [1., 2., 1., 2., 4., 5., 4., 5., 1., 2., 1., 2.]
    );
    assert_eq!(
        pad(&x, &pads, PadMode::Edge, 0.0),
        [1., 1., 1., 2., 4., 4., 4., 5., 4., 4., 4., 5.]
    );
}

#[test]
fn pad_reflect_matches_numpy() {
    let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let y = pad(&x, &[1, 2, 1, 3], PadMode::Reflect, 0.0);
    #[rustfmt::skip]
    let want = [
        6., 5., 4., 5., 6., 5., 4., 5., 3., 2., 1., 2., 3., 2., 1., 2.,
        6., 5., 4., 5., 6., 5., 4., 5., 3., 2., 1., 2., 3., 2., 1., 2.,
    ];
    assert_eq!(y, want);
}

#[test]
fn pad_integer_constant() {
    let x = int(DType::I8, &[2], &[5, -5]);
    let y = eval1(
        &Op::Pad {
            pads: vec![1, 2],
            mode: PadMode::Constant,
            value: -3.0,
        },
        &[&x],
    );
    assert_eq!(iv(&y), [-3, 5, -5, -3, -3]);
    assert!(eval(
        &Op::Pad {
            pads: vec![1, 0],
            mode: PadMode::Constant,
            value: 1000.0
        },
        &[&x]
    )
    .is_err());
}
