//! Interpreter: Resize (nearest and linear, every coordinate transform and nearest
//! mode). Expected values from `onnx.reference` (opset 19, scales input).

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{CoordTransform, DType, NearestMode, Op, Resize, ResizeMode, Tensor};
use util::*;

fn xa() -> Tensor {
    f(&[1, 1, 2, 3], &[-2.5, 1.0, -1.0, 2.5, 0.5, -1.5])
}

fn xb() -> Tensor {
    f(&[1, 1, 4, 5], &pattern(20, 7, 13, 6.0, 0.25))
}

fn resize(
    x: &Tensor,
    mode: ResizeMode,
    coord: CoordTransform,
    nearest: NearestMode,
    scales: [f32; 4],
) -> Tensor {
    eval1(
        &Op::Resize(Resize {
            mode,
            coord,
            nearest,
            scales: scales.to_vec(),
        }),
        &[x],
    )
}

use CoordTransform::*;
use NearestMode::*;
use ResizeMode::*;

#[test]
fn nearest_asymmetric_floor_upsample() {
    let y = resize(&xa(), Nearest, Asymmetric, Floor, [1., 1., 2., 2.]);
    assert_eq!(y.shape(), &[1, 1, 4, 6]);
    #[rustfmt::skip]
    let want = [
        -2.5, -2.5, 1.0, 1.0, -1.0, -1.0, -2.5, -2.5, 1.0, 1.0, -1.0, -1.0,
        2.5, 2.5, 0.5, 0.5, -1.5, -1.5, 2.5, 2.5, 0.5, 0.5, -1.5, -1.5,
    ];
    assert_eq!(fv(&y), want);
}

#[test]
fn nearest_half_pixel_prefer_floor_vs_ceil() {
    let y = resize(
        &xa(),
        Nearest,
        HalfPixel,
        RoundPreferFloor,
        [1., 1., 1.5, 1.7],
    );
    assert_eq!(y.shape(), &[1, 1, 3, 5]);
    assert_eq!(
        fv(&y),
        [-2.5, -2.5, 1.0, -1.0, -1.0, -2.5, -2.5, 1.0, -1.0, -1.0, 2.5, 2.5, 0.5, -1.5, -1.5]
    );
    let y = resize(
        &xa(),
        Nearest,
        HalfPixel,
        RoundPreferCeil,
        [1., 1., 1.5, 1.7],
    );
    assert_eq!(
        fv(&y),
        [-2.5, -2.5, 1.0, -1.0, -1.0, 2.5, 2.5, 0.5, -1.5, -1.5, 2.5, 2.5, 0.5, -1.5, -1.5]
    );
}

#[test]
fn nearest_align_corners_ceil_downsample() {
    let y = resize(&xb(), Nearest, AlignCorners, Ceil, [1., 1., 0.6, 0.8]);
    assert_eq!(y.shape(), &[1, 1, 2, 4]);
    assert_eq!(fv(&y), [-1.5, -1.25, 0.5, -1.0, -1.25, -1.0, 0.75, -0.75]);
}

#[test]
fn nearest_pytorch_half_pixel_downsample() {
    let y = resize(
        &xb(),
        Nearest,
        PytorchHalfPixel,
        RoundPreferFloor,
        [1., 1., 0.6, 0.7],
    );
    assert_eq!(y.shape(), &[1, 1, 2, 3]);
    assert_eq!(fv(&y), [-1.5, -1.25, 0.5, -0.25, 0.0, -1.5]);
}

#[test]
fn nearest_on_integers_selects_exactly() {
    let x = int(DType::I8, &[1, 1, 2, 3], &[-3, 7, 1, 5, -8, 2]);
    let y = resize(&x, Nearest, Asymmetric, RoundPreferCeil, [1., 1., 2., 1.5]);
    assert_eq!(y.dtype, DType::I8);
    assert_eq!(
        iv(&y),
        [-3, 7, 7, 1, 5, -8, -8, 2, 5, -8, -8, 2, 5, -8, -8, 2]
    );
}

#[test]
fn linear_half_pixel() {
    let y = resize(&xa(), Linear, HalfPixel, RoundPreferFloor, [1., 1., 2., 2.]);
    #[rustfmt::skip]
    let want = [
        -2.5, -1.625, 0.125, 0.5, -0.5, -1.0, -1.25, -0.71875, 0.34375, 0.375, -0.625, -1.125,
        1.25, 1.09375, 0.78125, 0.125, -0.875, -1.375, 2.5, 2.0, 1.0, 0.0, -1.0, -1.5,
    ];
    assert_eq!(fv(&y), want);
}

#[test]
fn linear_pytorch_half_pixel() {
    let y = resize(
        &xb(),
        Linear,
        PytorchHalfPixel,
        RoundPreferFloor,
        [1., 1., 0.5, 1.6],
    );
    assert_eq!(y.shape(), &[1, 1, 2, 8]);
    #[rustfmt::skip]
    let want = [
        -0.375, -0.3203125, -0.2421875, -0.1640625, -0.08593751, -0.0078125065, 0.07031249, 0.125,
        -0.75, 0.015624976, 0.90625006, -0.031249952, -0.4609375, -0.3828125, -0.3046875, -0.25,
    ];
    assert_eq!(fv(&y), want);
    // Output size 1 along H takes the -0.5 coordinate; along W 0.2f32 * 5 != 1 in f64.
    let y = resize(
        &xb(),
        Linear,
        PytorchHalfPixel,
        RoundPreferFloor,
        [1., 1., 0.25, 0.2],
    );
    assert_eq!(y.shape(), &[1, 1, 1, 1]);
    assert_eq!(fv(&y), [-1.25]);
}

#[test]
fn linear_align_corners() {
    let y = resize(
        &xa(),
        Linear,
        AlignCorners,
        RoundPreferFloor,
        [1., 1., 1.5, 2.],
    );
    assert_eq!(y.shape(), &[1, 1, 3, 6]);
    #[rustfmt::skip]
    let want = [
        -2.5, -1.1, 0.3, 0.6, -0.2, -1.0, 0.0, 0.3, 0.6, 0.35, -0.45, -1.25,
        2.5, 1.7, 0.9, 0.1, -0.7, -1.5,
    ];
    assert_eq!(fv(&y), want);
}

#[test]
fn linear_asymmetric() {
    let y = resize(
        &xa(),
        Linear,
        Asymmetric,
        RoundPreferFloor,
        [1., 1., 2., 1.5],
    );
    assert_eq!(y.shape(), &[1, 1, 4, 4]);
    #[rustfmt::skip]
    let want = [
        -2.5, -0.16666667, 0.33333334, -1.0, 0.0, 0.5, 0.083333336, -1.25,
        2.5, 1.1666666, -0.16666667, -1.5, 2.5, 1.1666666, -0.16666667, -1.5,
    ];
    assert_eq!(fv(&y), want);
}

#[test]
fn identity_scales_copy() {
    let y = resize(&xb(), Linear, HalfPixel, RoundPreferFloor, [1., 1., 1., 1.]);
    assert!(y.bit_eq(&xb()));
}
