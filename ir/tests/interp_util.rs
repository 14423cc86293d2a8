//! Helpers shared by the interpreter tests (included with `#[path]` by the `interp_*`
//! test files; compiled on its own it contains no tests).
#![allow(dead_code)]

use lnc_ir::interp::eval_op;
use lnc_ir::{shape, DType, Op, Tensor};

/// A float tensor.
pub fn f(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape, v.to_vec()).expect("valid float tensor")
}

/// An integer tensor.
pub fn int(dtype: DType, shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_int(dtype, shape, v.to_vec()).expect("valid integer tensor")
}

/// Evaluate one op with output types from shape inference.
pub fn eval(op: &Op, ins: &[&Tensor]) -> Result<Vec<Tensor>, String> {
    let tys: Vec<_> = ins.iter().map(|t| t.ty()).collect();
    let refs: Vec<_> = tys.iter().collect();
    let outs = shape::infer(op, &refs)?;
    eval_op(op, ins, &outs)
}

/// Evaluate a single-output op, panicking on error.
pub fn eval1(op: &Op, ins: &[&Tensor]) -> Tensor {
    match eval(op, ins) {
        Ok(mut v) => v.remove(0),
        Err(e) => panic!("{} failed: {e}", op.name()),
    }
}

pub fn fv(t: &Tensor) -> Vec<f32> {
    t.as_f32().expect("f32 tensor").iter().copied().collect()
}

pub fn iv(t: &Tensor) -> Vec<i64> {
    t.as_int()
        .expect("integer tensor")
        .iter()
        .copied()
        .collect()
}

/// Assert two float vectors agree within `tol` (absolute + relative).
pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= tol * (1.0 + w.abs()) || (g.is_nan() && w.is_nan());
        assert!(
            ok,
            "element {i}: got {g}, want {w}\n got: {got:?}\nwant: {want:?}"
        );
    }
}

/// Assert bit-exact equality of float vectors.
pub fn assert_bits(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits(), "element {i}: got {g}, want {w}");
    }
}

/// A tiny deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }

    /// Uniform integer in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        f(shape, &self.vec(n))
    }
}

/// `(i * a) % m - off` scaled: a simple deterministic pattern, reproducible in numpy as
/// `((np.arange(n) * a) % m - off) * scale`.
pub fn pattern(n: usize, a: usize, m: usize, off: f32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * a) % m) as f32 - off) * scale)
        .collect()
}
