//! Helpers for the `lnc` CLI tests: running the binary, scratch directories, and a minimal
//! `.npy` encoder/decoder (independent of the binary's own, so the tests check it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Result of one `lnc` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code and stderr, for error snapshots.
    pub fn error_report(&self) -> String {
        format!("exit code: {}\n{}", self.code, self.stderr)
    }
}

/// The package root (paths in snapshots are relative to it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `lnc` with `args` in directory `cwd`.
pub fn lnc_in(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lnc"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run lnc");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `lnc` from the package root (so `tests/data/...` paths work and print stably).
pub fn lnc(args: &[&str]) -> Run {
    lnc_in(&root(), args)
}

/// A fresh, empty scratch directory for `name` under Cargo's per-target temporary
/// directory: reused (emptied) by the next run, so runs do not accumulate in `/tmp`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Encode a `.npy` (format 1.0) from a descr, a shape and raw little-endian data.
pub fn npy_raw(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b
}

pub fn npy_f32(shape: &[usize], vals: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_raw("<f4", shape, &data)
}

pub fn npy_i8(shape: &[usize], vals: &[i8]) -> Vec<u8> {
    let data: Vec<u8> = vals.iter().map(|&v| v as u8).collect();
    npy_raw("|i1", shape, &data)
}

/// Decode a `.npy` file written by `lnc`: (descr, shape, raw data).
pub fn read_npy(path: &Path) -> (String, Vec<usize>, Vec<u8>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(b.starts_with(b"\x93NUMPY\x01\x00"), "not a v1 .npy file");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "data not 64-byte aligned");
    let h = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    let descr = h
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    assert!(h.contains("'fortran_order': False"));
    let shape_txt = h
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (descr, shape, b[10 + hlen..].to_vec())
}

pub fn read_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let (descr, shape, data) = read_npy(path);
    assert_eq!(descr, "<f4");
    (
        shape,
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}
