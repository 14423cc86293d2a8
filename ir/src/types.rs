//! Static tensor types: shape + element type + optional quantization.

use crate::dtype::{DType, Quant};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest number of elements any single tensor may have (2^31). Anything larger is
/// rejected as an absurd size before memory is allocated.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Product of the dimensions with overflow and size checks.
pub fn checked_numel(shape: &[usize]) -> Result<usize, String> {
    let mut n: usize = 1;
    for &d in shape {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| {
                format!("shape {shape:?} exceeds the limit of {MAX_ELEMENTS} elements")
            })?;
    }
    Ok(n)
}

/// The static type of a value in the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub quant: Option<Quant>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorType {
            dtype,
            shape: shape.into(),
            quant: None,
        }
    }

    pub fn f32(shape: impl Into<Vec<usize>>) -> Self {
        Self::new(DType::F32, shape)
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements; only valid for types that passed [`TensorType::check`].
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Check that the element count is within [`MAX_ELEMENTS`] and the dtype is valid.
    pub fn check(&self) -> Result<(), String> {
        self.dtype.validate()?;
        checked_numel(&self.shape)?;
        if let Some(q) = &self.quant {
            if q.scale.len() != q.zero_point.len() {
                return Err("quantization scale and zero point lengths differ".into());
            }
            match q.axis {
                None if q.scale.len() != 1 => {
                    return Err("per-tensor quantization needs exactly one scale".into())
                }
                Some(a) if a >= self.rank() || self.shape[a] != q.scale.len() => {
                    return Err(format!(
                        "per-axis quantization on axis {a} needs {} scales, got {}",
                        self.shape.get(a).copied().unwrap_or(0),
                        q.scale.len()
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorType {
            dtype,
            shape: self.shape.clone(),
            quant: None,
        }
    }

    pub fn with_shape(&self, shape: Vec<usize>) -> Self {
        TensorType {
            dtype: self.dtype,
            shape,
            quant: None,
        }
    }
}

impl fmt::Display for TensorType {
    /// `f32[1,3,224,224]`; quantization is printed by the `.lnir` printer separately.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}
