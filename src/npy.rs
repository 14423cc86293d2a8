//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), C order, little-endian.
//!
//! Read and written dtypes: `<f4` (f32), `|i1`, `|u1`, `<i2`, `<i4`, `<i8`, `|b1`. Other
//! dtypes (`<f8` included), big-endian data and Fortran order are rejected with a message
//! that says what to do. Sizes are checked before anything is allocated; a malformed file is
//! an error, never a panic.
//!
//! IR dtypes NumPy has no name for are written as their raw integers in the smallest
//! fitting type: sub-byte integers, bipolar and ternary as `|i1` / `|u1`, fixed point as
//! the smallest of `|i1 |u1 <i2 <i4 <i8` that holds its raw values.

use anyhow::{bail, ensure, Context, Result};
use lnc_ir::types::checked_numel;
use lnc_ir::{DType, Data, Tensor};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Largest header accepted (NumPy itself limits headers to 10 KiB by default).
const MAX_HEADER: usize = 1 << 20;

/// Element encodings on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F4,
    I1,
    U1,
    I2,
    I4,
    I8,
    B1,
}

impl Elem {
    fn from_descr(d: &str) -> Result<Elem> {
        Ok(match d {
            "<f4" => Elem::F4,
            "|i1" | "<i1" => Elem::I1,
            "|u1" | "<u1" => Elem::U1,
            "<i2" => Elem::I2,
            "<i4" => Elem::I4,
            "<i8" => Elem::I8,
            "|b1" | "<b1" => Elem::B1,
            "<f8" => bail!(
                "float64 arrays ('<f8') are not supported; save float32 (x.astype(np.float32))"
            ),
            d if d.starts_with('>') => {
                bail!("big-endian arrays ('{d}') are not supported; save little-endian (x.astype(x.dtype.newbyteorder('<')))")
            }
            d => bail!("unsupported dtype '{d}' (supported: <f4 |i1 |u1 <i2 <i4 <i8 |b1)"),
        })
    }

    fn descr(self) -> &'static str {
        match self {
            Elem::F4 => "<f4",
            Elem::I1 => "|i1",
            Elem::U1 => "|u1",
            Elem::I2 => "<i2",
            Elem::I4 => "<i4",
            Elem::I8 => "<i8",
            Elem::B1 => "|b1",
        }
    }

    fn size(self) -> usize {
        match self {
            Elem::I1 | Elem::U1 | Elem::B1 => 1,
            Elem::I2 => 2,
            Elem::F4 | Elem::I4 => 4,
            Elem::I8 => 8,
        }
    }

    fn dtype(self) -> DType {
        match self {
            Elem::F4 => DType::F32,
            Elem::I1 => DType::I8,
            Elem::U1 => DType::U8,
            Elem::I2 => DType::I16,
            Elem::I4 => DType::I32,
            Elem::I8 => DType::I64,
            Elem::B1 => DType::Bool,
        }
    }

    /// How a tensor of `dtype` is stored.
    fn for_dtype(dtype: DType) -> Elem {
        let by_range = |lo: i64, hi: i64| {
            if lo >= 0 && hi <= u8::MAX as i64 {
                Elem::U1
            } else if lo >= i8::MIN as i64 && hi <= i8::MAX as i64 {
                Elem::I1
            } else if lo >= i16::MIN as i64 && hi <= i16::MAX as i64 {
                Elem::I2
            } else if lo >= i32::MIN as i64 && hi <= i32::MAX as i64 {
                Elem::I4
            } else {
                Elem::I8
            }
        };
        match dtype {
            DType::F32 => Elem::F4,
            DType::I8 => Elem::I1,
            DType::U8 => Elem::U1,
            DType::I16 => Elem::I2,
            DType::I32 => Elem::I4,
            DType::I64 => Elem::I8,
            DType::Bool => Elem::B1,
            DType::Bipolar | DType::Ternary => Elem::I1,
            d => {
                let (lo, hi) = d.int_range().unwrap_or((i64::MIN, i64::MAX));
                by_range(lo, hi)
            }
        }
    }
}

/// The parsed header dictionary.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A tiny parser for the Python dict literal of the header.
struct DictParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl DictParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        ensure!(
            self.eat(c),
            "malformed header: expected '{}' at byte {}",
            c as char,
            self.i
        );
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        self.ws();
        let q = *self
            .s
            .get(self.i)
            .context("malformed header: unexpected end")?;
        ensure!(
            q == b'\'' || q == b'"',
            "malformed header: expected a string at byte {}",
            self.i
        );
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == q)
            .context("malformed header: unterminated string")?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn word(&mut self) -> &str {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn parse(mut self) -> Result<Header> {
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        self.expect(b'{')?;
        while !self.eat(b'}') {
            let key = self.string()?;
            self.expect(b':')?;
            match key.as_str() {
                "descr" => descr = Some(self.string()?),
                "fortran_order" => {
                    fortran = Some(match self.word() {
                        "True" => true,
                        "False" => false,
                        w => bail!("malformed header: fortran_order is '{w}'"),
                    })
                }
                "shape" => {
                    self.expect(b'(')?;
                    let mut dims = Vec::new();
                    while !self.eat(b')') {
                        let w = self.word();
                        let d: usize = w.parse().map_err(|_| {
                            anyhow::anyhow!("malformed header: bad dimension '{w}'")
                        })?;
                        dims.push(d);
                        if !self.eat(b',') {
                            self.expect(b')')?;
                            break;
                        }
                    }
                    shape = Some(dims);
                }
                k => bail!("malformed header: unexpected key '{k}'"),
            }
            if !self.eat(b',') {
                self.expect(b'}')?;
                break;
            }
        }
        Ok(Header {
            descr: descr.context("malformed header: no 'descr'")?,
            fortran_order: fortran.context("malformed header: no 'fortran_order'")?,
            shape: shape.context("malformed header: no 'shape'")?,
        })
    }
}

/// Decode `.npy` bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<Tensor> {
    ensure!(
        bytes.len() >= 10 && bytes.starts_with(MAGIC),
        "not a .npy file (bad magic)"
    );
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "truncated .npy header");
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => bail!("unsupported .npy format version {major}.{minor}"),
    };
    ensure!(
        hlen <= MAX_HEADER,
        ".npy header of {hlen} bytes is too large"
    );
    let data_start = start + hlen;
    ensure!(bytes.len() >= data_start, "truncated .npy header");
    let header = DictParser {
        s: &bytes[start..data_start],
        i: 0,
    }
    .parse()?;
    ensure!(
        !header.fortran_order,
        "Fortran-order arrays are not supported; save C order (np.ascontiguousarray(x))"
    );
    let elem = Elem::from_descr(&header.descr)?;
    let n = checked_numel(&header.shape).map_err(anyhow::Error::msg)?;
    let data = &bytes[data_start..];
    let want = n * elem.size();
    ensure!(
        data.len() == want,
        "array of shape {:?} and dtype '{}' needs {want} data bytes, the file has {}",
        header.shape,
        header.descr,
        data.len()
    );
    let shape = &header.shape;
    let sz = elem.size();
    let chunks = data.chunks_exact(sz);
    let t = match elem {
        Elem::F4 => Tensor::from_f32(
            shape,
            chunks
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => {
            let mut vals = Vec::with_capacity(n);
            for c in chunks {
                let v = match elem {
                    Elem::I1 => c[0] as i8 as i64,
                    Elem::U1 => c[0] as i64,
                    Elem::B1 => {
                        ensure!(c[0] <= 1, "invalid bool byte {} in '|b1' data", c[0]);
                        c[0] as i64
                    }
                    Elem::I2 => i16::from_le_bytes([c[0], c[1]]) as i64,
                    Elem::I4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                    _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                };
                vals.push(v);
            }
            Tensor::from_int(elem.dtype(), shape, vals)
        }
    };
    t.map_err(anyhow::Error::msg)
}

/// Encode a tensor as `.npy` bytes (format 1.0, or 2.0 for very long headers).
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let elem = Elem::for_dtype(t.dtype);
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        elem.descr()
    );
    // Pad with spaces so that the data starts at a multiple of 64 bytes.
    let v1 = header.len() + 1 + 10 <= u16::MAX as usize;
    let prefix = if v1 { 10 } else { 12 };
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - prefix - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + t.numel() * elem.size());
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    match &t.data {
        Data::F32(a) => a
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Data::Int(a) => a.iter().for_each(|&v| match elem {
            Elem::I1 | Elem::U1 | Elem::B1 => out.push(v as u8),
            Elem::I2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            Elem::I4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }),
    }
    out
}

/// Read a `.npy` file.
pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes).with_context(|| format!("invalid .npy file {}", path.display()))
}

/// Write a `.npy` file.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    std::fs::write(path, to_bytes(t)).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(descr: &str, shape: &str, fortran: &str) -> Vec<u8> {
        let h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b
    }

    #[test]
    fn round_trips_every_dtype() {
        let cases = vec![
            Tensor::from_f32(
                &[2, 3],
                vec![0.0, -0.0, 1.5, f32::NAN, f32::INFINITY, -1e-7],
            )
            .unwrap(),
            Tensor::from_f32(&[], vec![3.0]).unwrap(),
            Tensor::from_f32(&[0, 4], vec![]).unwrap(),
            Tensor::from_int(DType::I8, &[3], vec![-128, 0, 127]).unwrap(),
            Tensor::from_int(DType::U8, &[2], vec![0, 255]).unwrap(),
            Tensor::from_int(DType::I16, &[2], vec![-32768, 32767]).unwrap(),
            Tensor::from_int(DType::I32, &[2], vec![i32::MIN as i64, i32::MAX as i64]).unwrap(),
            Tensor::from_int(DType::I64, &[2], vec![i64::MIN, i64::MAX]).unwrap(),
            Tensor::from_int(DType::Bool, &[2], vec![0, 1]).unwrap(),
        ];
        for t in cases {
            let b = to_bytes(&t);
            assert_eq!(
                (b.len() - t.numel() * Elem::for_dtype(t.dtype).size()) % 64,
                0
            );
            let back = from_bytes(&b).unwrap();
            assert!(t.bit_eq(&back), "{t:?} vs {back:?}");
        }
    }

    #[test]
    fn writes_ir_only_dtypes_as_raw_integers() {
        let t = Tensor::from_int(
            DType::Int {
                bits: 4,
                signed: true,
            },
            &[2],
            vec![-8, 7],
        )
        .unwrap();
        let back = from_bytes(&to_bytes(&t)).unwrap();
        assert_eq!((back.dtype, back.to_i64_vec()), (DType::I8, vec![-8, 7]));
        let t = Tensor::from_int(
            DType::Fixed {
                bits: 12,
                frac: 4,
                signed: false,
            },
            &[1],
            vec![4095],
        )
        .unwrap();
        assert_eq!(from_bytes(&to_bytes(&t)).unwrap().dtype, DType::I16);
    }

    #[test]
    fn reads_version_2_and_3_headers() {
        for major in [2u8, 3] {
            let h = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}\n";
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[major, 0]);
            b.extend_from_slice(&(h.len() as u32).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(&[1, 0, 0, 0, 255, 255, 255, 255]);
            assert_eq!(from_bytes(&b).unwrap().to_i64_vec(), vec![1, -1]);
        }
    }

    #[test]
    fn rejects_malformed_files_with_messages() {
        let mut f8 = header("<f8", "(1,)", "False");
        f8.extend_from_slice(&[0; 8]);
        let mut fortran = header("<f4", "(1,)", "True");
        fortran.extend_from_slice(&[0; 4]);
        let short = header("<f4", "(2, 2)", "False");
        let mut bad_bool = header("|b1", "(1,)", "False");
        bad_bool.push(7);
        let huge = header("<f4", "(100000, 100000, 100000)", "False");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("magic", b"PK\x03\x04 not npy".to_vec()),
            ("version", [MAGIC, &[9, 0, 0, 0]].concat()),
            ("f8", f8),
            ("big endian", header(">f4", "(1,)", "False")),
            ("unsupported", header("<c8", "(1,)", "False")),
            ("fortran", fortran),
            ("short data", short),
            ("bad bool", bad_bool),
            ("huge", huge),
            ("bad shape", header("<f4", "(2, x)", "False")),
            (
                "truncated header",
                header("<f4", "(1,)", "False")[..20].to_vec(),
            ),
        ];
        let mut out = String::new();
        for (name, b) in cases {
            let e = from_bytes(&b).expect_err(name);
            out.push_str(&format!("{name}: {e:#}\n"));
        }
        insta::assert_snapshot!(out);
    }

    #[test]
    fn never_panics_on_truncations() {
        let t = Tensor::from_f32(&[3, 5], (0..15).map(|i| i as f32).collect()).unwrap();
        let b = to_bytes(&t);
        for i in 0..b.len() {
            assert!(from_bytes(&b[..i]).is_err());
            let mut m = b.clone();
            m[i % 70] ^= 0x55;
            let _ = from_bytes(&m);
        }
    }
}
