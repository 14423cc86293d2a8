//! Interpreter: Reduce{Sum,Mean,Max,Min} and Softmax / LogSoftmax (opset < 13 `coerce_2d`
//! and opset 13 semantics). Softmax expectations from numpy / `onnx.reference`.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{DType, Op, ReduceKind};
use util::*;

fn red(kind: ReduceKind, axes: &[usize], keepdims: bool) -> Op {
    Op::Reduce {
        kind,
        axes: axes.to_vec(),
        keepdims,
    }
}

#[test]
fn reduce_over_axes() {
    // x[i, j, k] = i*6 + j*2 + k
    let x = f(&[2, 3, 2], &(0..12).map(|v| v as f32).collect::<Vec<_>>());
    let y = eval1(&red(ReduceKind::Sum, &[1], false), &[&x]);
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(fv(&y), [6., 9., 24., 27.]);
    let y = eval1(&red(ReduceKind::Mean, &[0, 2], true), &[&x]);
    assert_eq!(y.shape(), &[1, 3, 1]);
    assert_eq!(fv(&y), [3.5, 5.5, 7.5]);
    let y = eval1(&red(ReduceKind::Max, &[], false), &[&x]);
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(fv(&y), [11.]);
    let y = eval1(&red(ReduceKind::Min, &[2], true), &[&x]);
    assert_eq!(y.shape(), &[2, 3, 1]);
    assert_eq!(fv(&y), [0., 2., 4., 6., 8., 10.]);
}

#[test]
fn integer_reductions_wrap() {
    let x = int(DType::I8, &[2, 2], &[100, 100, -100, 27]);
    assert_eq!(
        iv(&eval1(&red(ReduceKind::Sum, &[1], false), &[&x])),
        [-56, -73]
    );
    assert_eq!(
        iv(&eval1(&red(ReduceKind::Max, &[0], false), &[&x])),
        [100, 100]
    );
    assert_eq!(iv(&eval1(&red(ReduceKind::Min, &[], true), &[&x])), [-100]);
}

const XS: [f32; 24] = [
    -1.2,
    0.90000004,
    0.0,
    -0.90000004,
    1.2,
    0.3,
    -0.6,
    1.5,
    0.6,
    -0.3,
    -1.2,
    0.90000004,
    0.0,
    -0.90000004,
    1.2,
    0.3,
    -0.6,
    1.5,
    0.6,
    -0.3,
    -1.2,
    0.90000004,
    0.0,
    -0.90000004,
];

fn softmax(axis: usize, coerce_2d: bool, log: bool) -> Vec<f32> {
    fv(&eval1(
        &Op::Softmax {
            axis,
            coerce_2d,
            log,
        },
        &[&f(&[2, 3, 4], &XS)],
    ))
}

#[test]
fn softmax_opset13_normalises_one_axis() {
    #[rustfmt::skip]
    let want = [
        0.055331692, 0.54053885, 0.54053885, 0.05533169, 0.6099311, 0.296654, 0.296654, 0.60993105,
        0.33473727, 0.16280715, 0.16280715, 0.33473727, 0.54053885, 0.05533169, 0.54053885, 0.54053885,
        0.296654, 0.60993105, 0.296654, 0.296654, 0.16280715, 0.33473727, 0.16280715, 0.16280715,
    ];
    assert_close(&softmax(1, false, false), &want, 3e-7);
    #[rustfmt::skip]
    let want = [
        -2.8944094, -0.61518884, -0.61518884, -2.8944094, -0.4944093, -1.2151889, -1.2151889, -0.49440938,
        -1.0944093, -1.8151889, -1.8151889, -1.0944093, -0.61518884, -2.8944094, -0.61518884, -0.61518884,
        -1.2151889, -0.49440938, -1.2151889, -1.2151889, -1.8151889, -1.0944093, -1.8151889, -1.8151889,
    ];
    assert_close(&softmax(1, false, true), &want, 3e-7);
}

#[test]
fn softmax_coerce_2d_normalises_flattened_rows() {
    #[rustfmt::skip]
    let want = [
        0.01569408, 0.12816055, 0.052106187, 0.021184793, 0.17299864, 0.07033599, 0.028596485, 0.23352374,
        0.09494367, 0.038601216, 0.01569408, 0.12816055, 0.056062136, 0.022793163, 0.18613285, 0.075675964,
        0.030767556, 0.25125307, 0.102151886, 0.041531857, 0.01688559, 0.13789062, 0.056062136, 0.022793163,
    ];
    let y = softmax(1, true, false);
    assert_close(&y, &want, 3e-7);
    // Each flattened row of 12 sums to one (and differs from the opset-13 result).
    for row in y.chunks(12) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
    #[rustfmt::skip]
    let want = [
        -4.1544714, -2.0544715, -2.9544716, -3.8544717, -1.7544715, -2.6544716, -3.5544715, -1.4544716,
        -2.3544717, -3.2544715, -4.1544714, -2.0544715, -2.8812947, -3.7812948, -1.6812946, -2.5812945,
        -3.4812946, -1.3812946, -2.2812946, -3.1812944, -4.0812945, -1.9812946, -2.8812947, -3.7812948,
    ];
    assert_close(&softmax(1, true, true), &want, 3e-7);
    // Axis 2 (last): both semantics agree.
    assert_eq!(softmax(2, true, false), softmax(2, false, false));
}

#[test]
fn softmax_is_stable_for_large_inputs() {
    let y = fv(&eval1(
        &Op::Softmax {
            axis: 0,
            coerce_2d: false,
            log: false,
        },
        &[&f(&[2], &[1000.0, 1000.0])],
    ));
    assert_eq!(y, [0.5, 0.5]);
}
