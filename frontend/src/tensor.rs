//! Conversion between ONNX `TensorProto` and [`lnc_ir::Tensor`], and the ONNX element type
//! codes.
//!
//! Decoding never trusts the file: dims are checked (non-negative, element count within
//! [`lnc_ir::MAX_ELEMENTS`]) and the amount of data present is compared with what the dims
//! claim *before* anything is allocated, so allocation is bounded by the size of the input.

use crate::proto::tensor_proto::{DataLocation, DataType as Dt};
use crate::proto::TensorProto;
use lnc_ir::types::checked_numel;
use lnc_ir::{DType, Data, Tensor};

/// The signed 4-bit integer dtype (ONNX `INT4`).
pub(crate) const I4: DType = DType::Int {
    bits: 4,
    signed: true,
};
/// The unsigned 4-bit integer dtype (ONNX `UINT4`).
pub(crate) const U4: DType = DType::Int {
    bits: 4,
    signed: false,
};

/// Name of an ONNX element type code, for messages.
pub(crate) fn onnx_dtype_name(code: i32) -> String {
    match Dt::try_from(code) {
        Ok(d) => d.as_str_name().to_string(),
        Err(_) => format!("unknown element type {code}"),
    }
}

/// Map an ONNX element type code to an IR dtype. `allow_int4` admits INT4/UINT4 (opset 21
/// Q/DQ operands).
pub(crate) fn dtype_from_onnx(code: i32, allow_int4: bool) -> Result<DType, String> {
    let d = match Dt::try_from(code) {
        Ok(Dt::Float) => DType::F32,
        Ok(Dt::Uint8) => DType::U8,
        Ok(Dt::Int8) => DType::I8,
        Ok(Dt::Int16) => DType::I16,
        Ok(Dt::Int32) => DType::I32,
        Ok(Dt::Int64) => DType::I64,
        Ok(Dt::Bool) => DType::Bool,
        Ok(Dt::Int4) if allow_int4 => I4,
        Ok(Dt::Uint4) if allow_int4 => U4,
        Ok(Dt::Int4 | Dt::Uint4) => {
            return Err(format!(
                "element type {} needs opset 21 (INT4/UINT4 are only supported for \
                 QuantizeLinear/DequantizeLinear)",
                onnx_dtype_name(code)
            ))
        }
        Ok(Dt::Undefined) => return Err("element type is undefined".into()),
        _ => {
            return Err(format!(
                "element type {} is not supported",
                onnx_dtype_name(code)
            ))
        }
    };
    Ok(d)
}

/// Map an IR dtype to an ONNX element type code, if ONNX (at opset 17) can express it.
pub(crate) fn dtype_to_onnx(d: DType) -> Option<i32> {
    Some(match d {
        DType::F32 => Dt::Float as i32,
        DType::U8 => Dt::Uint8 as i32,
        DType::I8 => Dt::Int8 as i32,
        DType::I16 => Dt::Int16 as i32,
        DType::I32 => Dt::Int32 as i32,
        DType::I64 => Dt::Int64 as i32,
        DType::Bool => Dt::Bool as i32,
        _ => return None,
    })
}

/// Convert ONNX dims to a static shape (non-negative, within the element limit).
pub(crate) fn dims_to_shape(dims: &[i64]) -> Result<Vec<usize>, String> {
    let mut shape = Vec::with_capacity(dims.len().min(64));
    for &d in dims {
        if d < 0 {
            return Err(format!("negative dimension {d} in dims {dims:?}"));
        }
        shape.push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
    }
    checked_numel(&shape)?;
    Ok(shape)
}

/// Decode a `TensorProto` into a tensor. Errors do not name the tensor (callers do).
pub(crate) fn decode(tp: &TensorProto, allow_int4: bool) -> Result<Tensor, String> {
    if tp.data_location == Some(DataLocation::External as i32) || !tp.external_data.is_empty() {
        return Err(
            "external data is not supported (save the model with the weights inside \
                    the file)"
                .into(),
        );
    }
    if tp.segment.is_some() {
        return Err("segmented tensors are not supported".into());
    }
    let code = tp.data_type.unwrap_or(0);
    let dtype = dtype_from_onnx(code, allow_int4)?;
    let shape = dims_to_shape(&tp.dims)?;
    let n = checked_numel(&shape)?;
    let raw = tp.raw_data.as_deref();
    let count_err = |field: &str, got: usize| {
        format!("{field} has {got} value(s), dims {:?} need {n}", tp.dims)
    };
    // Bytes per element in raw_data (4-bit types are packed two per byte).
    let raw_len = |elem: usize| -> Result<&[u8], String> {
        let raw = raw.unwrap_or_default();
        let want = if elem == 0 {
            n.div_ceil(2)
        } else {
            n.saturating_mul(elem)
        };
        if raw.len() != want {
            return Err(format!(
                "raw_data has {} byte(s), dims {:?} of {} need {want}",
                raw.len(),
                tp.dims,
                onnx_dtype_name(code)
            ));
        }
        Ok(raw)
    };
    if dtype == DType::F32 {
        let vals: Vec<f32> = if raw.is_some() {
            raw_len(4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            if tp.float_data.len() != n {
                return Err(count_err("float_data", tp.float_data.len()));
            }
            tp.float_data.clone()
        };
        return Tensor::from_f32(&shape, vals);
    }
    let vals: Vec<i64> = if raw.is_some() {
        match dtype {
            DType::U8 => raw_len(1)?.iter().map(|&b| b as i64).collect(),
            DType::I8 => raw_len(1)?.iter().map(|&b| b as i8 as i64).collect(),
            DType::Bool => raw_len(1)?.iter().map(|&b| (b != 0) as i64).collect(),
            DType::I16 => raw_len(2)?
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            DType::I32 => raw_len(4)?
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            DType::I64 => raw_len(8)?
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            DType::Int { bits: 4, signed } => {
                unpack4(raw_len(0)?.iter().map(|&b| b as u32), n, signed)
            }
            _ => {
                return Err(format!(
                    "element type {} is not supported",
                    onnx_dtype_name(code)
                ))
            }
        }
    } else {
        match dtype {
            DType::I64 => {
                if tp.int64_data.len() != n {
                    return Err(count_err("int64_data", tp.int64_data.len()));
                }
                tp.int64_data.clone()
            }
            DType::Int { bits: 4, signed } => {
                if tp.int32_data.len() != n.div_ceil(2) {
                    return Err(count_err(
                        "int32_data (packed 4-bit)",
                        tp.int32_data.len() * 2,
                    ));
                }
                unpack4(tp.int32_data.iter().map(|&v| v as u32), n, signed)
            }
            _ => {
                if tp.int32_data.len() != n {
                    return Err(count_err("int32_data", tp.int32_data.len()));
                }
                let mut v: Vec<i64> = tp.int32_data.iter().map(|&v| v as i64).collect();
                if dtype == DType::Bool {
                    v.iter_mut().for_each(|x| *x = (*x != 0) as i64);
                }
                v
            }
        }
    };
    Tensor::from_int(dtype, &shape, vals)
}

/// Unpack 4-bit values stored two per unit (low nibble first).
fn unpack4(units: impl Iterator<Item = u32>, n: usize, signed: bool) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    for u in units {
        for nib in [u & 0xf, (u >> 4) & 0xf] {
            if out.len() < n {
                let v = nib as i64;
                out.push(if signed && v >= 8 { v - 16 } else { v });
            }
        }
    }
    out
}

/// Encode a tensor as a `TensorProto` with `raw_data` (little-endian). Fails for dtypes
/// ONNX (at opset 17) cannot express.
pub(crate) fn encode(name: &str, t: &Tensor) -> Result<TensorProto, String> {
    let code = dtype_to_onnx(t.dtype)
        .ok_or_else(|| format!("dtype {} has no ONNX (opset 17) equivalent", t.dtype))?;
    let mut raw = Vec::new();
    match &t.data {
        Data::F32(a) => {
            raw.reserve(a.len() * 4);
            for v in a.iter() {
                raw.extend_from_slice(&v.to_le_bytes());
            }
        }
        Data::Int(a) => {
            let width = match t.dtype {
                DType::U8 | DType::I8 | DType::Bool => 1,
                DType::I16 => 2,
                DType::I32 => 4,
                _ => 8,
            };
            raw.reserve(a.len() * width);
            for &v in a.iter() {
                if !t.dtype.contains(v) {
                    return Err(format!("value {v} is out of range for {}", t.dtype));
                }
                raw.extend_from_slice(&v.to_le_bytes()[..width]);
            }
        }
    }
    Ok(TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(code),
        name: Some(name.to_string()),
        raw_data: Some(raw),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_unpacks_low_nibble_first_and_sign_extends() {
        let tp = TensorProto {
            dims: vec![3],
            data_type: Some(Dt::Int4 as i32),
            raw_data: Some(vec![0x8f, 0x07]),
            ..Default::default()
        };
        let t = decode(&tp, true).unwrap();
        assert_eq!(t.to_i64_vec(), vec![-1, -8, 7]);
        assert!(decode(&tp, false).is_err());
    }

    #[test]
    fn encode_decode_round_trip() {
        let t = Tensor::from_int(DType::I16, &[2, 2], vec![-300, 0, 7, 32767]).unwrap();
        let back = decode(&encode("t", &t).unwrap(), false).unwrap();
        assert!(back.bit_eq(&t));
        let f = Tensor::from_f32(&[3], vec![-0.0, f32::NAN, 1.5]).unwrap();
        let back = decode(&encode("f", &f).unwrap(), false).unwrap();
        assert!(back.bit_eq(&f));
    }

    #[test]
    fn dims_without_data_are_rejected_before_allocation() {
        let tp = TensorProto {
            dims: vec![1 << 20, 1 << 10],
            data_type: Some(Dt::Float as i32),
            ..Default::default()
        };
        assert!(decode(&tp, false).unwrap_err().contains("float_data has 0"));
        let tp = TensorProto {
            dims: vec![1 << 40],
            ..tp
        };
        assert!(decode(&tp, false).unwrap_err().contains("exceeds"));
    }
}
