//! Interpreter robustness: random ops with random (often inconsistent) attributes,
//! shapes (including empty axes) and dtypes must give a result or an error, never a
//! panic. Output types that disagree with the inputs must be rejected.

#[path = "interp_util.rs"]
mod util;

use lnc_ir::interp::eval_op;
use lnc_ir::*;
use util::*;

const DTYPES: [DType; 6] = [
    DType::F32,
    DType::F32,
    DType::I8,
    DType::U8,
    DType::I32,
    DType::I64,
];

fn rand_tensor(rng: &mut Rng, rank: usize, dtype: DType) -> Tensor {
    let shape: Vec<usize> = (0..rank)
        .map(|_| {
            if rng.int(0, 9) == 0 {
                0
            } else {
                rng.int(1, 4) as usize
            }
        })
        .collect();
    rand_tensor_shaped(rng, &shape, dtype)
}

fn rand_tensor_shaped(rng: &mut Rng, shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    match dtype {
        DType::F32 => f(shape, &(0..n).map(|_| rng.f32() * 4.0).collect::<Vec<_>>()),
        d => {
            let (lo, hi) = d.int_range().unwrap();
            let (lo, hi) = (lo.max(-300), hi.min(300));
            int(
                d,
                shape,
                &(0..n).map(|_| rng.int(lo, hi)).collect::<Vec<_>>(),
            )
        }
    }
}

fn pick<T: Clone>(rng: &mut Rng, v: &[T]) -> T {
    v[rng.int(0, v.len() as i64 - 1) as usize].clone()
}

fn u(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    rng.int(lo as i64, hi as i64) as usize
}

fn rand_op(rng: &mut Rng, rank: usize) -> Op {
    let k = [u(rng, 1, 3), u(rng, 1, 3)];
    let conv = |rng: &mut Rng| Conv2d {
        kernel: k,
        strides: [u(rng, 0, 3), u(rng, 1, 3)],
        pads: [u(rng, 0, 3), u(rng, 0, 2), u(rng, 0, 3), u(rng, 0, 2)],
        dilations: [u(rng, 1, 2), u(rng, 0, 2)],
        group: u(rng, 0, 3),
    };
    let pool = |rng: &mut Rng| Pool2d {
        kernel: k,
        strides: [u(rng, 1, 3), u(rng, 1, 3)],
        pads: [u(rng, 0, 2), u(rng, 0, 2), u(rng, 0, 2), u(rng, 0, 2)],
        dilations: [u(rng, 1, 2), u(rng, 1, 2)],
        ceil_mode: rng.int(0, 1) == 1,
    };
    let axis = u(rng, 0, rank);
    let rm = pick(
        rng,
        &[
            RoundingMode::Round,
            RoundingMode::Floor,
            RoundingMode::Ceil,
            RoundingMode::Trunc,
        ],
    );
    match rng.int(0, 33) {
        0 => Op::Conv(conv(rng)),
        1 => Op::ConvTranspose(ConvTranspose2d {
            kernel: k,
            strides: [u(rng, 1, 3), u(rng, 1, 2)],
            pads: [u(rng, 0, 2), u(rng, 0, 2), u(rng, 0, 2), u(rng, 0, 2)],
            dilations: [u(rng, 1, 2), u(rng, 1, 2)],
            group: u(rng, 1, 2),
            output_padding: [u(rng, 0, 1), u(rng, 0, 1)],
        }),
        2 => Op::QLinearConv(conv(rng)),
        3 => Op::ConvInteger(conv(rng)),
        4 => Op::MaxPool(pool(rng)),
        5 => Op::AveragePool {
            pool: pool(rng),
            count_include_pad: rng.int(0, 1) == 1,
        },
        6 => pick(
            rng,
            &[
                Op::GlobalAveragePool,
                Op::GlobalMaxPool,
                Op::Identity,
                Op::PRelu,
                Op::MatMul,
            ],
        ),
        7 => Op::Unary(pick(
            rng,
            &[
                UnaryOp::Relu,
                UnaryOp::Neg,
                UnaryOp::Abs,
                UnaryOp::Sign,
                UnaryOp::Sqrt,
                UnaryOp::HardSwish,
                UnaryOp::Round,
            ],
        )),
        8 => Op::Binary(pick(
            rng,
            &[
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::Max,
                BinaryOp::Min,
                BinaryOp::Pow,
            ],
        )),
        9 => Op::Clip {
            min: pick(rng, &[f64::NEG_INFINITY, -1.0, 0.0, 2.5]),
            max: pick(rng, &[6.0, 0.0, 1.0e30]),
        },
        10 => Op::BatchNorm { epsilon: 1e-5 },
        11 => Op::Concat { axis },
        12 => Op::Split {
            axis,
            sizes: (0..u(rng, 1, 3)).map(|_| u(rng, 0, 3)).collect(),
        },
        13 => Op::Slice {
            axes: (0..u(rng, 0, 2))
                .map(|_| SliceAxis {
                    axis: u(rng, 0, rank),
                    start: rng.int(-2, 4),
                    end: rng.int(-2, 4),
                    step: pick(rng, &[-2, -1, 0, 1, 2]),
                })
                .collect(),
        },
        14 => Op::Reshape {
            shape: (0..u(rng, 0, 3)).map(|_| u(rng, 0, 6)).collect(),
        },
        15 => Op::Transpose {
            perm: (0..rank).map(|_| u(rng, 0, rank)).collect(),
        },
        16 => Op::Transpose {
            perm: (0..rank).rev().collect(),
        },
        17 => Op::Gather { axis },
        18 => Op::Expand {
            shape: (0..u(rng, 0, 4)).map(|_| u(rng, 0, 3)).collect(),
        },
        19 => Op::Cast {
            to: pick(
                rng,
                &[
                    DType::F32,
                    DType::I8,
                    DType::U8,
                    DType::Bool,
                    DType::Ternary,
                    DType::I64,
                ],
            ),
        },
        20 => Op::Pad {
            pads: (0..2 * rank).map(|_| rng.int(-3, 3)).collect(),
            mode: pick(rng, &[PadMode::Constant, PadMode::Reflect, PadMode::Edge]),
            value: pick(rng, &[0.0, 1.5, -2.0]),
        },
        21 => Op::Reduce {
            kind: pick(
                rng,
                &[
                    ReduceKind::Sum,
                    ReduceKind::Mean,
                    ReduceKind::Max,
                    ReduceKind::Min,
                ],
            ),
            axes: (0..rank).filter(|_| rng.int(0, 1) == 1).collect(),
            keepdims: rng.int(0, 1) == 1,
        },
        22 => Op::Softmax {
            axis,
            coerce_2d: rng.int(0, 1) == 1,
            log: rng.int(0, 1) == 1,
        },
        23 => Op::Gemm {
            alpha: 0.5,
            beta: pick(rng, &[0.0, 1.0]),
            trans_a: rng.int(0, 1) == 1,
            trans_b: rng.int(0, 1) == 1,
        },
        24 => Op::Resize(Resize {
            mode: pick(rng, &[ResizeMode::Nearest, ResizeMode::Linear]),
            coord: pick(
                rng,
                &[
                    CoordTransform::HalfPixel,
                    CoordTransform::PytorchHalfPixel,
                    CoordTransform::AlignCorners,
                    CoordTransform::Asymmetric,
                ],
            ),
            nearest: pick(rng, &[NearestMode::RoundPreferFloor, NearestMode::Ceil]),
            scales: (0..rank)
                .map(|_| pick(rng, &[0.5, 1.0, 1.5, 2.0, 0.0]))
                .collect(),
        }),
        25 => Op::QuantizeLinear {
            axis: if rng.int(0, 1) == 1 { Some(axis) } else { None },
        },
        26 => Op::DequantizeLinear {
            axis: if rng.int(0, 1) == 1 { Some(axis) } else { None },
        },
        27 => Op::QLinearMatMul,
        28 => Op::MatMulInteger,
        29 => Op::Quant {
            bits: u(rng, 0, 33) as u32,
            signed: rng.int(0, 1) == 1,
            narrow: rng.int(0, 1) == 1,
            rounding: rm,
        },
        30 => Op::BipolarQuant,
        31 => Op::Trunc {
            in_bits: u(rng, 0, 40) as u32,
            out_bits: u(rng, 1, 8) as u32,
            rounding: rm,
            signed: true,
            narrow: false,
        },
        32 => Op::LeakyRelu { alpha: 0.1 },
        _ => Op::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
    }
}

/// Inputs that fit the weight-carrying ops (most random inputs do not).
fn fitting_inputs(rng: &mut Rng, op: &Op) -> Option<Vec<Tensor>> {
    let scalar = |rng: &mut Rng, d: DType| rand_tensor_shaped(rng, &[], d);
    let img = |rng: &mut Rng, c: usize, d: DType| {
        let shape = [u(rng, 1, 2), c, u(rng, 0, 6), u(rng, 0, 6)];
        rand_tensor_shaped(rng, &shape, d)
    };
    let pos = |rng: &mut Rng, shape: &[usize]| {
        let n = shape.iter().product();
        f(
            shape,
            &(0..n).map(|_| rng.f32().abs() + 0.01).collect::<Vec<_>>(),
        )
    };
    Some(match op {
        Op::Conv(c) | Op::QLinearConv(c) | Op::ConvInteger(c) => {
            let g = c.group.max(1);
            let (cpg, m) = (u(rng, 1, 2), g * u(rng, 1, 2));
            let quant = !matches!(op, Op::Conv(_));
            let (xd, wd) = if quant {
                (DType::U8, DType::I8)
            } else {
                (DType::F32, DType::F32)
            };
            let x = img(rng, g * cpg, xd);
            let w = rand_tensor_shaped(rng, &[m, cpg, c.kernel[0], c.kernel[1]], wd);
            let per_ch: &[usize] = if rng.int(0, 1) == 1 { &[m] } else { &[] };
            match op {
                Op::Conv(_) => vec![x, w, rand_tensor_shaped(rng, &[m], DType::F32)],
                Op::ConvInteger(_) => {
                    vec![x, w, scalar(rng, xd), rand_tensor_shaped(rng, per_ch, wd)]
                }
                _ => vec![
                    x,
                    pos(rng, &[]),
                    scalar(rng, xd),
                    w,
                    pos(rng, per_ch),
                    rand_tensor_shaped(rng, per_ch, wd),
                    pos(rng, &[]),
                    scalar(rng, DType::U8),
                    rand_tensor_shaped(rng, &[m], DType::I32),
                ],
            }
        }
        Op::ConvTranspose(c) => {
            let g = c.group.max(1);
            let (cpg, mpg) = (u(rng, 1, 2), u(rng, 1, 2));
            let x = img(rng, g * cpg, DType::F32);
            let w = rand_tensor_shaped(rng, &[g * cpg, mpg, c.kernel[0], c.kernel[1]], DType::F32);
            vec![x, w, rand_tensor_shaped(rng, &[g * mpg], DType::F32)]
        }
        Op::BatchNorm { .. } => {
            let c = u(rng, 1, 3);
            let sh = [2, c, u(rng, 0, 3)];
            let x = rand_tensor_shaped(rng, &sh, DType::F32);
            let mut v = vec![x];
            v.extend((0..3).map(|_| rand_tensor_shaped(rng, &[c], DType::F32)));
            v.push(pos(rng, &[c]));
            v
        }
        Op::QLinearMatMul => {
            let (m, k, n) = (u(rng, 0, 3), u(rng, 0, 3), u(rng, 1, 3));
            let sh = [u(rng, 1, 2), m, k];
            let a = rand_tensor_shaped(rng, &sh, DType::U8);
            let b = rand_tensor_shaped(rng, &[k, n], DType::U8);
            vec![
                a,
                pos(rng, &[]),
                scalar(rng, DType::U8),
                b,
                pos(rng, &[n]),
                rand_tensor_shaped(rng, &[n], DType::U8),
                pos(rng, &[]),
                scalar(rng, DType::I8),
            ]
        }
        _ => return None,
    })
}

#[test]
fn random_ops_never_panic() {
    // `LNC_INTERP_FUZZ_SEED` explores other cases locally.
    let seed = std::env::var("LNC_INTERP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12345);
    let mut rng = Rng::new(seed);
    let (mut ok, mut err) = (0, 0);
    let mut by_op = std::collections::BTreeMap::new();
    for _ in 0..20_000 {
        let rank = u(&mut rng, 0, 4);
        let op = rand_op(&mut rng, rank);
        let n_in = match op.arity() {
            Arity::Exact(n) => n,
            Arity::Range(lo, hi) => u(&mut rng, lo, hi),
            Arity::AtLeast(lo) => u(&mut rng, lo, lo + 2),
        };
        // Inputs: mostly the same shape (so many cases get past shape inference).
        let dt = pick(&mut rng, &DTYPES);
        let base = rand_tensor(&mut rng, rank, dt);
        let ins: Vec<Tensor> = (0..n_in)
            .map(|i| match rng.int(0, 3) {
                0 if i > 0 => {
                    let (r, d) = (u(&mut rng, 0, 4), pick(&mut rng, &DTYPES));
                    rand_tensor(&mut rng, r, d)
                }
                1 if i > 0 => rand_tensor_shaped(&mut rng, &[], base.dtype),
                2 if i > 0 => rand_tensor_shaped(
                    &mut rng,
                    &[base.shape().get(1).copied().unwrap_or(1)],
                    base.dtype,
                ),
                _ => base.clone(),
            })
            .collect();
        let ins = match fitting_inputs(&mut rng, &op) {
            Some(fit) if rng.int(0, 3) > 0 => fit,
            _ => ins,
        };
        let refs: Vec<&Tensor> = ins.iter().collect();
        match eval(&op, &refs) {
            Ok(_) => {
                ok += 1;
                *by_op.entry(op.name()).or_insert(0) += 1;
            }
            Err(_) => err += 1,
        }
        // Made-up output types must be rejected or handled, never trusted blindly.
        let fake = vec![
            TensorType::new(
                pick(&mut rng, &DTYPES),
                vec![u(&mut rng, 0, 3); u(&mut rng, 0, 4)]
            );
            op.num_outputs()
        ];
        let _ = eval_op(&op, &refs, &fake);
    }
    eprintln!("random ops: {ok} evaluated, {err} rejected; evaluated per op: {by_op:?}");
    // The generator must exercise the kernels, not only the error paths.
    assert!(
        ok > 2_000,
        "only {ok} successful evaluations ({err} errors)"
    );
}
