//! Tensor values: the constant pool's contents and the interpreter's data.

use crate::dtype::DType;
use crate::types::{checked_numel, TensorType};
use ndarray::{ArrayD, IxDyn};

/// Storage of a tensor. Every integer-like dtype is stored widened to `i64`; the
/// [`DType`] next to it defines the legal range (see [`DType::int_range`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(ArrayD<f32>),
    Int(ArrayD<i64>),
}

/// A dense tensor with its element type.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dtype: DType,
    pub data: Data,
}

impl Tensor {
    /// A float tensor from a flat row-major vector.
    pub fn from_f32(shape: &[usize], values: Vec<f32>) -> Result<Tensor, String> {
        let n = checked_numel(shape)?;
        if n != values.len() {
            return Err(format!(
                "shape {shape:?} needs {n} values, got {}",
                values.len()
            ));
        }
        let a = ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| e.to_string())?;
        Ok(Tensor {
            dtype: DType::F32,
            data: Data::F32(a),
        })
    }

    /// An integer-like tensor from a flat row-major vector; values must be in range.
    pub fn from_int(dtype: DType, shape: &[usize], values: Vec<i64>) -> Result<Tensor, String> {
        if dtype.is_float() {
            return Err("from_int needs an integer dtype".into());
        }
        dtype.validate()?;
        let n = checked_numel(shape)?;
        if n != values.len() {
            return Err(format!(
                "shape {shape:?} needs {n} values, got {}",
                values.len()
            ));
        }
        if let Some(v) = values.iter().find(|&&v| !dtype.contains(v)) {
            return Err(format!("value {v} is out of range for {dtype}"));
        }
        let a = ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| e.to_string())?;
        Ok(Tensor {
            dtype,
            data: Data::Int(a),
        })
    }

    pub fn f32_array(a: ArrayD<f32>) -> Tensor {
        Tensor {
            dtype: DType::F32,
            data: Data::F32(a),
        }
    }

    /// Build from an i64 array; the caller guarantees the values fit `dtype`.
    pub fn int_array(dtype: DType, a: ArrayD<i64>) -> Tensor {
        debug_assert!(dtype.is_int());
        Tensor {
            dtype,
            data: Data::Int(a),
        }
    }

    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor::f32_array(ArrayD::from_elem(IxDyn(&[]), v))
    }

    pub fn zeros(ty: &TensorType) -> Tensor {
        match ty.dtype {
            DType::F32 => Tensor::f32_array(ArrayD::zeros(IxDyn(&ty.shape))),
            d => Tensor::int_array(d, ArrayD::zeros(IxDyn(&ty.shape))),
        }
    }

    pub fn shape(&self) -> &[usize] {
        match &self.data {
            Data::F32(a) => a.shape(),
            Data::Int(a) => a.shape(),
        }
    }

    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// The type of this tensor (without quantization parameters).
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype, self.shape().to_vec())
    }

    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match &self.data {
            Data::F32(a) => Some(a),
            Data::Int(_) => None,
        }
    }

    pub fn as_int(&self) -> Option<&ArrayD<i64>> {
        match &self.data {
            Data::Int(a) => Some(a),
            Data::F32(_) => None,
        }
    }

    /// All values as f64 (row-major), whatever the dtype.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(a) => a.iter().map(|&v| v as f64).collect(),
            Data::Int(a) => a.iter().map(|&v| v as f64).collect(),
        }
    }

    /// All values as i64 (row-major); floats are truncated toward zero.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            Data::F32(a) => a.iter().map(|&v| v as i64).collect(),
            Data::Int(a) => a.iter().copied().collect(),
        }
    }

    /// Bit-exact equality (floats compared by bits, so NaN == NaN of the same payload).
    pub fn bit_eq(&self, other: &Tensor) -> bool {
        if self.dtype != other.dtype || self.shape() != other.shape() {
            return false;
        }
        match (&self.data, &other.data) {
            (Data::F32(a), Data::F32(b)) => a
                .iter()
                .zip(b.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            (Data::Int(a), Data::Int(b)) => a == b,
            _ => false,
        }
    }

    /// A stable 64-bit FNV-1a hash of dtype, shape and contents (for elided printing).
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        };
        eat(self.dtype.to_string().as_bytes());
        for &d in self.shape() {
            eat(&(d as u64).to_le_bytes());
        }
        match &self.data {
            Data::F32(a) => a.iter().for_each(|v| eat(&v.to_bits().to_le_bytes())),
            Data::Int(a) => a.iter().for_each(|v| eat(&v.to_le_bytes())),
        }
        h
    }
}
