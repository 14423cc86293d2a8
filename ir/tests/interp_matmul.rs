//! Interpreter: Gemm, MatMul (rank-1 and batch broadcasting), MatMulInteger,
//! QLinearMatMul. Expected values from `onnx.reference` / numpy.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::{DType, Op, Tensor};
use util::*;

#[test]
fn gemm_with_transposes_and_broadcast_c() {
    let a = f(&[2, 3], &[-1.5, 1.0, 0.0, -1.0, 1.5, 0.5]);
    let b = f(
        &[4, 3],
        &[
            -1.25, 0.5, -0.5, 1.25, 0.25, -0.75, 1.0, 0.0, -1.0, 0.75, -0.25, -1.25,
        ],
    );
    let c = f(&[4], &[1.0, -1.0, 0.5, 2.0]);
    let want = [3.1875, -2.8125, 0.25, 3.3125, 2.875, -2.625, 0.25, 3.125];
    let op = Op::Gemm {
        alpha: 0.5,
        beta: 2.0,
        trans_a: false,
        trans_b: true,
    };
    assert_eq!(fv(&eval1(&op, &[&a, &b, &c])), want);
    // Same product with A stored transposed and B not, C as a [1, 4] row.
    let at = eval1(&Op::Transpose { perm: vec![1, 0] }, &[&a]);
    let bt = eval1(&Op::Transpose { perm: vec![1, 0] }, &[&b]);
    let c2 = f(&[1, 4], &[1.0, -1.0, 0.5, 2.0]);
    let op = Op::Gemm {
        alpha: 0.5,
        beta: 2.0,
        trans_a: true,
        trans_b: false,
    };
    assert_eq!(fv(&eval1(&op, &[&at, &bt, &c2])), want);
    // Without C.
    let op = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    let y = eval1(&op, &[&a, &b]);
    assert_eq!(
        fv(&y),
        [2.375, -1.625, -1.5, -1.375, 1.75, -1.25, -1.5, -1.75]
    );
}

/// Naive batched matmul of `[.., m, k] x [.., k, n]` with explicit batch broadcasting.
fn naive_matmul(a: &Tensor, b: &Tensor, out: &[usize]) -> Vec<f32> {
    let (av, bv) = (fv(a), fv(b));
    let (ash, bsh) = (a.shape(), b.shape());
    let (m, k) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let n = bsh[bsh.len() - 1];
    let batch = &out[..out.len() - 2];
    let nb: usize = batch.iter().product();
    let offset = |sh: &[usize], bi: usize, mat: usize| {
        // Map the output batch index to the operand's (broadcast) batch index.
        let bdims = &sh[..sh.len() - 2];
        let lead = batch.len() - bdims.len();
        let (mut rem, mut off, mut mul) = (bi, 0, 1);
        for ax in (0..batch.len()).rev() {
            let i = rem % batch[ax];
            rem /= batch[ax];
            if ax >= lead {
                let d = bdims[ax - lead];
                off += if d == 1 { 0 } else { i } * mul;
                mul *= d;
            }
        }
        off * mat
    };
    let mut y = vec![0f32; nb * m * n];
    for bi in 0..nb {
        let (oa, ob) = (offset(ash, bi, m * k), offset(bsh, bi, k * n));
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f32;
                for p in 0..k {
                    acc += av[oa + i * k + p] * bv[ob + p * n + j];
                }
                y[(bi * m + i) * n + j] = acc;
            }
        }
    }
    y
}

#[test]
fn matmul_batch_broadcasting() {
    let mut rng = Rng::new(9);
    for (ash, bsh, out) in [
        (vec![2, 1, 2, 3], vec![3, 3, 5], vec![2, 3, 2, 5]),
        (vec![4, 7, 6], vec![6, 9], vec![4, 7, 9]),
        (vec![3, 6], vec![2, 6, 4], vec![2, 3, 4]),
        (vec![1, 5, 2], vec![3, 1, 2, 2], vec![3, 1, 5, 2]),
    ] {
        let (a, b) = (rng.tensor(&ash), rng.tensor(&bsh));
        let y = eval1(&Op::MatMul, &[&a, &b]);
        assert_eq!(y.shape(), out.as_slice());
        assert_bits(&fv(&y), &naive_matmul(&a, &b, &out));
    }
}

#[test]
fn matmul_rank1_operands() {
    let v = f(&[3], &[1., 2., 3.]);
    let m = f(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
    let y = eval1(&Op::MatMul, &[&v, &m]);
    assert_eq!(y.shape(), &[2]);
    assert_eq!(fv(&y), [4., 5.]);
    let y = eval1(&Op::MatMul, &[&f(&[2, 3], &[1., 0., 0., 1., 1., 1.]), &v]);
    assert_eq!(y.shape(), &[2]);
    assert_eq!(fv(&y), [1., 6.]);
    let y = eval1(&Op::MatMul, &[&v, &v]);
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(fv(&y), [14.]);
    // Batched matrix times vector.
    let y = eval1(
        &Op::MatMul,
        &[&f(&[2, 1, 3], &[1., 1., 1., 0., 1., 0.]), &v],
    );
    assert_eq!(y.shape(), &[2, 1]);
    assert_eq!(fv(&y), [6., 2.]);
}

#[test]
fn matmul_integer_matches_onnx_reference() {
    let a = int(
        DType::U8,
        &[2, 3, 4],
        &(0..24).map(|i| (i * 37) % 256).collect::<Vec<_>>(),
    );
    let b = int(
        DType::I8,
        &[4, 3],
        &(0..12).map(|i| (i * 29) % 255 - 127).collect::<Vec<_>>(),
    );
    let y = eval1(
        &Op::MatMulInteger,
        &[
            &a,
            &b,
            &int(DType::U8, &[], &[12]),
            &int(DType::I8, &[3], &[1, -3, 5]),
        ],
    );
    assert_eq!(y.dtype, DType::I32);
    assert_eq!(y.shape(), &[2, 3, 3]);
    #[rustfmt::skip]
    let want = [
        -8715, -2973, 681, -13743, 3087, 13797, -18515, -7493, -479,
        -35319, -21657, -12963, -28315, -12013, -1639, -34623, -24129, -17451,
    ];
    assert_eq!(iv(&y), want);
}

#[test]
fn matmul_integer_per_row_zero_point() {
    let a = int(DType::U8, &[2, 2], &[3, 4, 10, 20]);
    let b = int(DType::U8, &[2, 1], &[1, 2]);
    let y = eval1(
        &Op::MatMulInteger,
        &[
            &a,
            &b,
            &int(DType::U8, &[2], &[1, 10]),
            &int(DType::U8, &[], &[0]),
        ],
    );
    // row 0: (2, 3) . (1, 2) = 8; row 1: (0, 10) . (1, 2) = 20
    assert_eq!(iv(&y), [8, 20]);
}

#[test]
fn qlinear_matmul_matches_onnx_reference() {
    let a = int(
        DType::U8,
        &[2, 4],
        &(0..8).map(|i| (i * 37) % 256).collect::<Vec<_>>(),
    );
    let b = int(
        DType::U8,
        &[4, 3],
        &(0..12).map(|i| (i * 53) % 256).collect::<Vec<_>>(),
    );
    let s = |v: f32| f(&[], &[v]);
    let z = |v: i64| int(DType::U8, &[], &[v]);
    let y = eval1(
        &Op::QLinearMatMul,
        &[
            &a,
            &s(0.05),
            &z(120),
            &b,
            &s(0.03),
            &z(130),
            &s(0.7),
            &z(10),
        ],
    );
    assert_eq!(y.dtype, DType::U8);
    assert_eq!(iv(&y), [43, 19, 35, 0, 42, 15]);
}

#[test]
fn qlinear_matmul_per_column_scale() {
    // acc = [[2, 4]], b_scale per column [1, 0.5], y_scale 1: [2, 2] + zp 1.
    let a = int(DType::I8, &[1, 2], &[1, 1]);
    let b = int(DType::I8, &[2, 2], &[1, 2, 1, 2]);
    let zi = |v: i64| int(DType::I8, &[], &[v]);
    let y = eval1(
        &Op::QLinearMatMul,
        &[
            &a,
            &f(&[], &[1.0]),
            &zi(0),
            &b,
            &f(&[2], &[1.0, 0.5]),
            &int(DType::I8, &[2], &[0, 0]),
            &f(&[], &[1.0]),
            &zi(1),
        ],
    );
    assert_eq!(iv(&y), [3, 3]);
}
