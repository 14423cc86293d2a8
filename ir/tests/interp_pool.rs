//! Interpreter: MaxPool, AveragePool (count_include_pad, ceil_mode, dilation) and the
//! global pools. Expected values from `onnx.reference` (onnx 1.23), which agrees with
//! ONNX Runtime on these cases.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{DType, Op, Pool2d};
use util::*;

fn pool(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    ceil_mode: bool,
) -> Pool2d {
    Pool2d {
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
    }
}

fn avg(p: Pool2d, cip: bool) -> Op {
    Op::AveragePool {
        pool: p,
        count_include_pad: cip,
    }
}

#[test]
fn average_pool_padded_ceil_mode_both_counts() {
    let x = f(&[1, 1, 4, 4], &pattern(16, 7, 11, 5.0, 0.5));
    let p = pool([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], true);
    let y = eval1(&avg(p.clone(), false), &[&x]);
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    assert_close(
        &fv(&y),
        &[
            -0.625, 0.5, 1.25, -0.25, 0.11111111, -0.6666667, 0.0, 0.6666667, 0.5,
        ],
        1e-7,
    );
    // The last window overhangs the padded input by one: the end pad counts (2 taps per
    // axis), the overhang does not.
    let y = eval1(&avg(p, true), &[&x]);
    assert_close(
        &fv(&y),
        &[
            -0.2777778,
            0.33333334,
            0.41666666,
            -0.16666667,
            0.11111111,
            -0.33333334,
            0.0,
            0.33333334,
            0.125,
        ],
        1e-7,
    );
}

#[test]
fn average_pool_ceil_overhang_without_pads() {
    let x = f(&[1, 1, 5, 5], &pattern(25, 3, 7, 3.0, 1.0));
    let p = pool([2, 2], [2, 2], [0, 0, 0, 0], [1, 1], true);
    let want = [-1.0, -0.25, 2.5, 1.0, 0.0, -2.5, -1.0, 1.5, -1.0];
    // No explicit pads: both conventions divide the overhanging window by its 1 or 2 taps.
    assert_eq!(fv(&eval1(&avg(p.clone(), false), &[&x])), want);
    assert_eq!(fv(&eval1(&avg(p, true), &[&x])), want);
}

#[test]
fn average_pool_dilated_count_include_pad() {
    let x = f(&[1, 1, 5, 5], &pattern(25, 3, 7, 3.0, 1.0));
    let p = pool([2, 2], [1, 2], [1, 1, 0, 1], [2, 2], false);
    let y = eval1(&avg(p, true), &[&x]);
    assert_eq!(y.shape(), &[1, 1, 4, 3]);
    assert_eq!(
        fv(&y),
        [0.25, 0.25, 0.0, 0.5, 0.5, 0.0, 1.0, 1.5, 0.5, -0.25, 0.75, 1.0]
    );
}

#[test]
fn max_pool_dilated_padded_ceil() {
    let x = f(&[1, 1, 5, 5], &pattern(25, 3, 7, 3.0, 1.0));
    let y = eval1(
        &Op::MaxPool(pool([2, 2], [2, 2], [1, 0, 0, 1], [2, 1], true)),
        &[&x],
    );
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    assert_eq!(fv(&y), [1.0, 0.0, 3.0, 3.0, 2.0, 3.0, 3.0, 2.0, -2.0]);
}

#[test]
fn max_pool_padding_is_never_selected() {
    // All values negative: a zero padding would win, -inf padding does not.
    let x = f(&[1, 1, 2, 2], &[-4., -3., -2., -1.]);
    let y = eval1(
        &Op::MaxPool(pool([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false)),
        &[&x],
    );
    assert_eq!(fv(&y), [-1., -1., -1., -1.]);
    // Integer max pool.
    let x = int(DType::I8, &[1, 1, 2, 2], &[-128, -7, 3, -2]);
    let y = eval1(
        &Op::MaxPool(pool([2, 2], [1, 1], [0, 0, 1, 1], [1, 1], false)),
        &[&x],
    );
    assert_eq!(iv(&y), [3, -2, 3, -2]);
}

#[test]
fn global_pools() {
    let x = f(&[2, 2, 2, 2], &pattern(16, 5, 9, 4.0, 0.5));
    // x = [-2, 0.5, -1.5, 1, | -1, 1.5, -0.5, 2, | 0, -2, 0.5, -1.5, | 1, -1, 1.5, -0.5]
    let y = eval1(&Op::GlobalAveragePool, &[&x]);
    assert_eq!(y.shape(), &[2, 2, 1, 1]);
    assert_eq!(fv(&y), [-0.5, 0.5, -0.75, 0.25]);
    let y = eval1(&Op::GlobalMaxPool, &[&x]);
    assert_eq!(fv(&y), [1.0, 2.0, 0.5, 1.5]);
    let x = int(DType::U8, &[1, 2, 3], &[1, 9, 3, 0, 4, 2]);
    assert_eq!(iv(&eval1(&Op::GlobalMaxPool, &[&x])), [9, 4]);
}
