//! Element types and quantization parameters.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Element type of a tensor.
///
/// Integer-like types (all but `F32`) are stored as `i64` in [`crate::Tensor`]; the dtype
/// defines the legal range. Sub-byte integers, bipolar and ternary are what compressed
/// networks (int4, binary, ternary weights) carry; `Fixed` is a two's-complement
/// fixed-point number `raw * 2^-frac` as FPGA datapaths use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F32,
    I8,
    U8,
    I16,
    I32,
    I64,
    Bool,
    /// Sub-byte integer of 1..=7 bits.
    Int {
        bits: u8,
        signed: bool,
    },
    /// {-1, +1}.
    Bipolar,
    /// {-1, 0, +1}.
    Ternary,
    /// Fixed point: `bits` total (1..=64), `frac` fractional bits (may be negative).
    Fixed {
        bits: u8,
        frac: i8,
        signed: bool,
    },
}

impl DType {
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32)
    }

    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    /// Storage width in bits (the logical width for sub-byte types).
    pub fn bits(self) -> u32 {
        match self {
            DType::F32 | DType::I32 => 32,
            DType::I8 | DType::U8 => 8,
            DType::I16 => 16,
            DType::I64 => 64,
            DType::Bool | DType::Bipolar => 1,
            DType::Ternary => 2,
            DType::Int { bits, .. } | DType::Fixed { bits, .. } => bits as u32,
        }
    }

    /// Inclusive range of the raw integer values, `None` for float.
    pub fn int_range(self) -> Option<(i64, i64)> {
        let signed_range = |b: u32| {
            if b >= 64 {
                (i64::MIN, i64::MAX)
            } else {
                (-(1i64 << (b - 1)), (1i64 << (b - 1)) - 1)
            }
        };
        let unsigned_range = |b: u32| (0, if b >= 63 { i64::MAX } else { (1i64 << b) - 1 });
        Some(match self {
            DType::F32 => return None,
            DType::I8 => signed_range(8),
            DType::U8 => unsigned_range(8),
            DType::I16 => signed_range(16),
            DType::I32 => signed_range(32),
            DType::I64 => signed_range(64),
            DType::Bool => (0, 1),
            DType::Bipolar => (-1, 1),
            DType::Ternary => (-1, 1),
            DType::Int { bits, signed } | DType::Fixed { bits, signed, .. } => {
                if signed {
                    signed_range(bits as u32)
                } else {
                    unsigned_range(bits as u32)
                }
            }
        })
    }

    /// Whether a raw integer value is representable.
    pub fn contains(self, v: i64) -> bool {
        match self {
            DType::Bipolar => v == -1 || v == 1,
            _ => match self.int_range() {
                Some((lo, hi)) => v >= lo && v <= hi,
                None => true,
            },
        }
    }

    /// Validate the parameters of parameterised types.
    pub fn validate(self) -> Result<(), String> {
        match self {
            DType::Int { bits, .. } if !(1..=7).contains(&bits) => {
                Err(format!("sub-byte integer must have 1..=7 bits, got {bits}"))
            }
            DType::Fixed { bits, .. } if !(1..=64).contains(&bits) => {
                Err(format!("fixed point must have 1..=64 bits, got {bits}"))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::F32 => f.write_str("f32"),
            DType::I8 => f.write_str("i8"),
            DType::U8 => f.write_str("u8"),
            DType::I16 => f.write_str("i16"),
            DType::I32 => f.write_str("i32"),
            DType::I64 => f.write_str("i64"),
            DType::Bool => f.write_str("bool"),
            DType::Int { bits, signed: true } => write!(f, "i{bits}"),
            DType::Int {
                bits,
                signed: false,
            } => write!(f, "u{bits}"),
            DType::Bipolar => f.write_str("bipolar"),
            DType::Ternary => f.write_str("ternary"),
            DType::Fixed {
                bits,
                frac,
                signed: true,
            } => write!(f, "fix{bits}_{frac}"),
            DType::Fixed {
                bits,
                frac,
                signed: false,
            } => write!(f, "ufix{bits}_{frac}"),
        }
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown dtype '{s}'");
        let d = match s {
            "f32" => DType::F32,
            "i8" => DType::I8,
            "u8" => DType::U8,
            "i16" => DType::I16,
            "i32" => DType::I32,
            "i64" => DType::I64,
            "bool" => DType::Bool,
            "bipolar" => DType::Bipolar,
            "ternary" => DType::Ternary,
            _ => {
                let (signed, rest) = if let Some(r) = s.strip_prefix("ufix") {
                    (false, Some(r))
                } else if let Some(r) = s.strip_prefix("fix") {
                    (true, Some(r))
                } else {
                    (true, None)
                };
                if let Some(rest) = rest {
                    let (b, fr) = rest.split_once('_').ok_or_else(bad)?;
                    DType::Fixed {
                        bits: b.parse().map_err(|_| bad())?,
                        frac: fr.parse().map_err(|_| bad())?,
                        signed,
                    }
                } else if let Some(b) = s.strip_prefix('i') {
                    DType::Int {
                        bits: b.parse().map_err(|_| bad())?,
                        signed: true,
                    }
                } else if let Some(b) = s.strip_prefix('u') {
                    DType::Int {
                        bits: b.parse().map_err(|_| bad())?,
                        signed: false,
                    }
                } else {
                    return Err(bad());
                }
            }
        };
        d.validate()?;
        Ok(d)
    }
}

/// Affine quantization parameters attached to a tensor type: `real = scale * (q - zero_point)`.
///
/// Per-tensor when `axis` is `None` (one scale and zero point), per-axis otherwise
/// (one entry per index along `axis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub axis: Option<usize>,
}
