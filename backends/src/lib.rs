//! `lnc-backends`: code generators. Each target lowers to its plan and renders files as a
//! sorted map `path -> text` (deterministic: the same plan gives byte-identical files).
//!
//! - [`c`]: the CPU backend: C99 (+ AVX2/FMA, AVX-512, NEON intrinsics) from an
//!   [`lnc_ir::cpu::Plan`], with a Makefile and an `.npy` runner.

pub mod c;

/// Errors of the code generators.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ir(#[from] lnc_ir::Error),
    #[error("unknown ISA '{0}' (one of generic, x86-64-v3, x86-64-v4, aarch64, aarch64-dotprod)")]
    UnknownIsa(String),
    #[error("--threads must be between 1 and 64, got {0}")]
    Threads(usize),
    /// A step the emitter cannot render (names the node).
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        node: String,
        op: String,
        msg: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
