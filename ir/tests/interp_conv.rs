//! Interpreter: Conv, ConvTranspose, QLinearConv, ConvInteger.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{Conv2d, ConvTranspose2d, DType, Op, Tensor};
use util::*;

fn conv_op(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    group: usize,
) -> Conv2d {
    Conv2d {
        kernel,
        strides,
        pads,
        dilations,
        group,
    }
}

/// Naive 7-loop convolution in the interpreter's summation order
/// (c, ky, kx ascending from zero, bias last).
fn naive_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, c: &Conv2d) -> (Vec<usize>, Vec<f32>) {
    let (xs, ws) = (fv(x), fv(w));
    let [n, ci, h, wi] = x.shape().try_into().unwrap();
    let [m, cpg, kh, kw] = w.shape().try_into().unwrap();
    let oh = (h + c.pads[0] + c.pads[2] - ((kh - 1) * c.dilations[0] + 1)) / c.strides[0] + 1;
    let ow = (wi + c.pads[1] + c.pads[3] - ((kw - 1) * c.dilations[1] + 1)) / c.strides[1] + 1;
    let mpg = m / c.group;
    let mut y = vec![0f32; n * m * oh * ow];
    for ni in 0..n {
        for mo in 0..m {
            let g = mo / mpg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f32;
                    for cc in 0..cpg {
                        let cabs = g * cpg + cc;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * c.strides[0] + ky * c.dilations[0]) as i64
                                    - c.pads[0] as i64;
                                let ix = (ox * c.strides[1] + kx * c.dilations[1]) as i64
                                    - c.pads[1] as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wi as i64 {
                                    continue;
                                }
                                let xv =
                                    xs[((ni * ci + cabs) * h + iy as usize) * wi + ix as usize];
                                let wv = ws[((mo * cpg + cc) * kh + ky) * kw + kx];
                                acc += wv * xv;
                            }
                        }
                    }
                    if let Some(b) = b {
                        acc += fv(b)[mo];
                    }
                    y[((ni * m + mo) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (vec![n, m, oh, ow], y)
}

fn check_conv(seed: u64, x_shape: [usize; 4], m: usize, c: Conv2d, bias: bool) {
    let mut rng = Rng::new(seed);
    let x = rng.tensor(&x_shape);
    let w = rng.tensor(&[m, x_shape[1] / c.group, c.kernel[0], c.kernel[1]]);
    let b = rng.tensor(&[m]);
    let ins: Vec<&Tensor> = if bias { vec![&x, &w, &b] } else { vec![&x, &w] };
    let y = eval1(&Op::Conv(c.clone()), &ins);
    let (shape, want) = naive_conv(&x, &w, bias.then_some(&b), &c);
    assert_eq!(y.shape(), shape.as_slice());
    // Same summation order as the naive loop: bit-exact.
    assert_bits(&fv(&y), &want);
}

#[test]
fn conv_plain_padded() {
    check_conv(
        1,
        [1, 3, 7, 6],
        4,
        conv_op([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),
        true,
    );
}

#[test]
fn conv_strided_asymmetric_pads() {
    check_conv(
        2,
        [2, 3, 9, 8],
        5,
        conv_op([3, 2], [2, 3], [1, 0, 2, 1], [1, 1], 1),
        true,
    );
}

#[test]
fn conv_dilated() {
    check_conv(
        3,
        [1, 2, 10, 9],
        3,
        conv_op([3, 3], [1, 2], [2, 2, 2, 2], [2, 3], 1),
        false,
    );
}

#[test]
fn conv_grouped() {
    check_conv(
        4,
        [1, 6, 6, 7],
        9,
        conv_op([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 3),
        true,
    );
}

#[test]
fn conv_depthwise_stride2() {
    check_conv(
        5,
        [1, 8, 11, 11],
        8,
        conv_op([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 8),
        true,
    );
}

#[test]
fn conv_depthwise_multiplier() {
    // group = C, two output channels per input channel.
    check_conv(
        6,
        [1, 4, 5, 5],
        8,
        conv_op([5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 4),
        false,
    );
}

#[test]
fn conv_pointwise_fast_path() {
    // 1x1 stride 1 goes through the GEMM path; more rows and columns than one block.
    check_conv(
        7,
        [2, 13, 23, 29],
        11,
        conv_op([1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1),
        true,
    );
    check_conv(
        8,
        [1, 12, 5, 5],
        6,
        conv_op([1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 2),
        true,
    );
}

#[test]
fn conv_pointwise_strided_and_padded() {
    check_conv(
        9,
        [1, 4, 7, 7],
        3,
        conv_op([1, 1], [2, 2], [0, 0, 0, 0], [1, 1], 1),
        true,
    );
    check_conv(
        10,
        [1, 4, 4, 4],
        3,
        conv_op([1, 1], [1, 1], [1, 1, 1, 1], [1, 1], 1),
        true,
    );
}

#[test]
fn conv_pads_larger_than_kernel_reach() {
    // Output rows/columns that see only padding get the bias alone.
    check_conv(
        11,
        [1, 1, 3, 3],
        2,
        conv_op([2, 2], [1, 1], [3, 3, 3, 3], [1, 1], 1),
        true,
    );
}

#[test]
fn conv_hand_computed() {
    // x = 1..9 in a 3x3 image, w = [[1, 0], [0, -1]], bias 10: y = x[i,j] - x[i+1,j+1] + 10.
    let x = f(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let w = f(&[1, 1, 2, 2], &[1., 0., 0., -1.]);
    let b = f(&[1], &[10.]);
    let y = eval1(
        &Op::Conv(conv_op([2, 2], [1, 1], [0, 0, 0, 0], [1, 1], 1)),
        &[&x, &w, &b],
    );
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(fv(&y), [6., 6., 6., 6.]);
}

#[test]
fn conv_shape_mismatch_is_an_error() {
    let x = f(&[1, 3, 4, 4], &[0.; 48]);
    let w = f(&[2, 2, 3, 3], &[0.; 36]);
    let op = Op::Conv(conv_op([3, 3], [1, 1], [0, 0, 0, 0], [1, 1], 1));
    assert!(eval(&op, &[&x, &w]).is_err());
    // Output types that disagree with the inputs are rejected, not trusted.
    let w = f(&[2, 3, 3, 3], &[0.; 54]);
    let bad = vec![lnc_ir::TensorType::f32(vec![1, 2, 5, 5])];
    let err = lnc_ir::interp::eval_op(&op, &[&x, &w], &bad).unwrap_err();
    assert!(err.contains("output 0"), "{err}");
}

/// Naive ConvTranspose by scatter, accumulating per output in (c, ky, kx) order.
fn naive_conv_transpose(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    c: &ConvTranspose2d,
) -> (Vec<usize>, Vec<f32>) {
    let (xs, ws) = (fv(x), fv(w));
    let [n, ci, h, wi] = x.shape().try_into().unwrap();
    let [_, mpg, kh, kw] = w.shape().try_into().unwrap();
    let m = mpg * c.group;
    let full = |i: usize, a: usize, k: usize| {
        c.strides[a] * (i - 1) + c.output_padding[a] + (k - 1) * c.dilations[a] + 1
    };
    let oh = full(h, 0, kh) - c.pads[0] - c.pads[2];
    let ow = full(wi, 1, kw) - c.pads[1] - c.pads[3];
    let cpg = ci / c.group;
    let mut y = vec![0f32; n * m * oh * ow];
    for ni in 0..n {
        for mo in 0..m {
            let (g, mi) = (mo / mpg, mo % mpg);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f32;
                    for cc in 0..cpg {
                        let cabs = g * cpg + cc;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let ty = (oy + c.pads[0]) as i64 - (ky * c.dilations[0]) as i64;
                                let tx = (ox + c.pads[1]) as i64 - (kx * c.dilations[1]) as i64;
                                if ty < 0
                                    || tx < 0
                                    || ty % c.strides[0] as i64 != 0
                                    || tx % c.strides[1] as i64 != 0
                                {
                                    continue;
                                }
                                let (iy, ix) = (
                                    (ty / c.strides[0] as i64) as usize,
                                    (tx / c.strides[1] as i64) as usize,
                                );
                                if iy >= h || ix >= wi {
                                    continue;
                                }
                                acc += ws[((cabs * mpg + mi) * kh + ky) * kw + kx]
                                    * xs[((ni * ci + cabs) * h + iy) * wi + ix];
                            }
                        }
                    }
                    if let Some(b) = b {
                        acc += fv(b)[mo];
                    }
                    y[((ni * m + mo) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (vec![n, m, oh, ow], y)
}

#[test]
fn conv_transpose_stride2_output_padding_matches_onnx_reference() {
    // Values from onnx.reference (ConvTranspose, strides 2, pads 1, output_padding 1).
    let x = f(&[1, 2, 3, 3], &pattern(18, 7, 11, 5.0, 0.25));
    let w = f(&[2, 3, 3, 3], &pattern(54, 5, 13, 6.0, 0.125));
    let b = f(&[3], &[0.5, -1.0, 0.25]);
    let op = ConvTranspose2d {
        kernel: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
        output_padding: [1, 1],
    };
    let y = eval1(&Op::ConvTranspose(op), &[&x, &w, &b]);
    assert_eq!(y.shape(), &[1, 3, 6, 6]);
    #[rustfmt::skip]
    let want = [
        0.90625, -0.90625, 0.375, 1.03125, -0.5, 0.4375, -0.34375, 1.3125, 0.5625, 0.625, 1.8125, -0.1875,
        1.03125, 1.125, 0.15625, 1.34375, 1.34375, -0.375, 0.65625, -0.0625, 0.53125, 2.0, 0.0625, -0.03125,
        0.8125, 1.09375, -0.0625, 1.3125, 1.125, -0.5, 0.71875, -0.40625, 0.96875, 1.125, -0.5, 1.125,
        -0.15625, -0.15625, -1.34375, -0.375, -0.46875, -1.5625, 0.3125, -0.875, -0.9375, -0.1875, -1.84375, -1.40625,
        -2.0, -0.46875, -1.125, -2.40625, -0.59375, -0.28125, -1.03125, -0.875, -0.90625, -1.90625, -1.46875, 0.46875,
        -1.78125, -0.4375, -0.90625, -2.375, -0.375, -0.375, -1.46875, -0.3125, -1.09375, -2.5625, -0.375, -0.375,
        0.71875, -1.125, 0.09375, 0.96875, -0.53125, 0.40625, -0.75, 1.3125, 0.3125, -0.6875, 1.71875, -0.28125,
        0.5625, 0.6875, -0.0625, 1.0625, 1.03125, -0.6875, 0.03125, -0.5625, 0.40625, 0.1875, -0.25, -0.34375,
        0.40625, 0.78125, -0.21875, 1.15625, 0.875, -0.75, 0.3125, -0.71875, 0.8125, 0.96875, -0.75, 0.875,
    ];
    // Dyadic inputs: every sum is exact, so the comparison is exact.
    assert_eq!(fv(&y), want);
}

#[test]
fn conv_transpose_grouped_dilated() {
    // Values from a numpy scatter implementation (onnx.reference fails on group > 1).
    let x = f(&[1, 4, 2, 3], &pattern(24, 5, 9, 4.0, 0.5));
    let w = f(&[4, 1, 2, 2], &pattern(16, 3, 7, 3.0, 0.25));
    let op = ConvTranspose2d {
        kernel: [2, 2],
        strides: [2, 1],
        pads: [0, 1, 1, 0],
        dilations: [1, 2],
        group: 2,
        output_padding: [1, 0],
    };
    let y = eval1(&Op::ConvTranspose(op), &[&x, &w]);
    assert_eq!(y.shape(), &[1, 2, 4, 4]);
    #[rustfmt::skip]
    let want = [
        0.625, 1.375, -1.0, 0.0, 0.875, -0.25, -1.625, 0.375, 1.0, -0.875, -0.25, 0.75, -0.625, 2.0, -0.125, 0.75,
        -0.25, 1.0, -0.625, 0.75, -0.125, 1.25, -0.5, 0.75, 0.5, -0.875, 1.25, 0.375, 0.25, -1.375, 1.0, 0.0,
    ];
    assert_eq!(fv(&y), want);
}

#[test]
fn conv_transpose_random_vs_naive() {
    let cases = [
        ([1, 4, 5, 4], 3, 2, [2, 2], [1, 1], [1, 0, 0, 1], [1, 1]),
        ([2, 2, 3, 3], 2, 1, [3, 2], [2, 1], [0, 0, 0, 0], [2, 1]),
        ([1, 6, 4, 4], 6, 3, [1, 2], [1, 1], [0, 1, 0, 1], [0, 0]),
    ];
    for (seed, (xs, mpg, group, strides, dil, pads, opad)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(100 + seed as u64);
        let x = rng.tensor(&xs);
        let w = rng.tensor(&[xs[1], mpg, 3, 2]);
        let b = rng.tensor(&[mpg * group]);
        let op = ConvTranspose2d {
            kernel: [3, 2],
            strides,
            pads,
            dilations: dil,
            group,
            output_padding: opad,
        };
        let y = eval1(&Op::ConvTranspose(op.clone()), &[&x, &w, &b]);
        let (shape, want) = naive_conv_transpose(&x, &w, Some(&b), &op);
        assert_eq!(y.shape(), shape.as_slice());
        assert_bits(&fv(&y), &want);
    }
}

#[test]
fn qlinear_conv_matches_ort_formula() {
    // Exact expected values computed with numpy as ONNX Runtime requantizes (and equal to
    // onnx.reference for this case): per-channel w scale, bias, pads 1.
    let x = int(
        DType::U8,
        &[1, 2, 4, 4],
        &(0..32).map(|i| (i * 37) % 256).collect::<Vec<_>>(),
    );
    let w = int(
        DType::I8,
        &[3, 2, 3, 3],
        &(0..54).map(|i| (i * 29) % 255 - 127).collect::<Vec<_>>(),
    );
    let op = Op::QLinearConv(conv_op([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1));
    let xs = f(&[], &[0.02]);
    let xzp = int(DType::U8, &[], &[128]);
    let ws = f(&[3], &[0.01, 0.005, 0.02]);
    let wzp = int(DType::I8, &[3], &[0, 0, 0]);
    let ys = f(&[], &[0.1]);
    let yzp = int(DType::U8, &[], &[100]);
    let bias = int(DType::I32, &[3], &[100, -2000, 50]);
    let y = eval1(&op, &[&x, &xs, &xzp, &w, &ws, &wzp, &ys, &yzp, &bias]);
    assert_eq!(y.dtype, DType::U8);
    #[rustfmt::skip]
    let want = [
        105, 118, 69, 76, 124, 159, 156, 127, 80, 50, 98, 94, 122, 118, 78, 79,
        98, 104, 79, 84, 106, 124, 124, 112, 86, 71, 93, 92, 107, 104, 86, 86,
        151, 101, 182, 39, 138, 136, 70, 157, 31, 149, 159, 66, 129, 110, 48, 50,
    ];
    assert_eq!(iv(&y), want);
}

#[test]
fn qlinear_conv_against_float_reference() {
    // Random int8 data: dequantize, float conv, quantize; the integer path may differ by
    // one step where the float conv rounds differently.
    let mut rng = Rng::new(77);
    let c = conv_op([3, 3], [2, 1], [1, 1, 0, 1], [1, 2], 2);
    let xq: Vec<i64> = (0..2 * 4 * 7 * 8).map(|_| rng.int(-128, 127)).collect();
    let wq: Vec<i64> = (0..6 * 2 * 9).map(|_| rng.int(-127, 127)).collect();
    let (xs, xzp, ys, yzp) = (0.05f32, -3i64, 0.8f32, 5i64);
    let ws = [0.01f32, 0.02, 0.015, 0.03, 0.005, 0.012];
    let wzp = [0i64, 1, -2, 0, 3, 0];
    let bq: Vec<i64> = (0..6).map(|_| rng.int(-500, 500)).collect();
    let x = int(DType::I8, &[2, 4, 7, 8], &xq);
    let w = int(DType::I8, &[6, 2, 3, 3], &wq);
    let ins = [
        &x,
        &f(&[], &[xs]),
        &int(DType::I8, &[], &[xzp]),
        &w,
        &f(&[6], &ws),
        &int(DType::I8, &[6], &wzp),
        &f(&[], &[ys]),
        &int(DType::I8, &[], &[yzp]),
        &int(DType::I32, &[6], &bq),
    ];
    let y = eval1(&Op::QLinearConv(c.clone()), &ins);
    // Float reference.
    let xf = f(
        &[2, 4, 7, 8],
        &xq.iter()
            .map(|&v| (v - xzp) as f32 * xs)
            .collect::<Vec<_>>(),
    );
    let wf = f(
        &[6, 2, 3, 3],
        &wq.iter()
            .enumerate()
            .map(|(i, &v)| (v - wzp[i / 18]) as f32 * ws[i / 18])
            .collect::<Vec<_>>(),
    );
    let bf = f(
        &[6],
        &bq.iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * xs * ws[i])
            .collect::<Vec<_>>(),
    );
    let yf = eval1(&Op::Conv(c), &[&xf, &wf, &bf]);
    assert_eq!(y.shape(), yf.shape());
    let want: Vec<i64> = fv(&yf)
        .iter()
        .map(|&v| ((v / ys).round_ties_even() as i64 + yzp).clamp(-128, 127))
        .collect();
    let got = iv(&y);
    let max_diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .max()
        .unwrap();
    assert!(max_diff <= 1, "max difference {max_diff}");
    assert!(got.iter().zip(&want).filter(|(a, b)| a != b).count() < got.len() / 20);
}

#[test]
fn conv_integer_matches_onnx_reference() {
    let x = int(
        DType::U8,
        &[1, 2, 4, 4],
        &(0..32).map(|i| (i * 37) % 256).collect::<Vec<_>>(),
    );
    let w = int(
        DType::I8,
        &[3, 2, 3, 3],
        &(0..54).map(|i| (i * 29) % 255 - 127).collect::<Vec<_>>(),
    );
    let op = Op::ConvInteger(conv_op([3, 3], [2, 2], [0, 1, 1, 0], [1, 1], 1));
    let y = eval1(
        &op,
        &[
            &x,
            &w,
            &int(DType::U8, &[], &[3]),
            &int(DType::I8, &[], &[-2]),
        ],
    );
    assert_eq!(y.dtype, DType::I32);
    assert_eq!(y.shape(), &[1, 3, 2, 2]);
    assert_eq!(
        iv(&y),
        [
            23976, 14344, -24490, -85510, 37920, 39568, -14362, -68470, -6276, -31088, -4234,
            -51430
        ]
    );
}

#[test]
fn conv_integer_per_channel_zero_point() {
    // 1x1 conv: y[m] = sum_c (x[c] - 1) * (w[m, c] - wzp[m]).
    let x = int(DType::U8, &[1, 2, 1, 1], &[5, 7]);
    let w = int(DType::I8, &[2, 2, 1, 1], &[1, 2, 3, 4]);
    let op = Op::ConvInteger(conv_op([1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1));
    let y = eval1(
        &op,
        &[
            &x,
            &w,
            &int(DType::U8, &[], &[1]),
            &int(DType::I8, &[2], &[1, -1]),
        ],
    );
    // m0: 4*0 + 6*1 = 6; m1: 4*4 + 6*5 = 46
    assert_eq!(iv(&y), [6, 46]);
}
