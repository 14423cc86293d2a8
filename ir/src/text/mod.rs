//! The `.lnir` text form: a printer and a parser that round-trip exactly.
//!
//! `print(&parse(&print(g))?) == print(g)`, and the parsed graph equals the original: ops and
//! attributes, output types including quantization parameters, constants bit for bit
//! (NaN payloads and `-0.0` included), graph input and output order, node names.
//!
//! ```text
//! lnir 1
//! graph "tiny" {
//!   %input = input : f32[1,3,8,8]
//!   %"conv.w" = const @0 : f32[4,3,3,3]
//!   %conv = conv(%input, %"conv.w") {kernel=[3,3], strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} : f32[1,4,8,8]
//!   %s = split(%conv) {axis=1, sizes=[2,2]} : f32[1,2,8,8], f32[1,2,8,8]
//!   %q = quantize_linear(%s#1, %scale, %zp) : i8[1,2,8,8] quant(scale=[0.05], zero_point=[0])
//!   output %s#0 as "left"
//!   output %q
//! }
//! consts {
//!   @0 : f32[4,3,3,3] = [
//!     0.1, -0.25, nan, 0x7fc00001, -0.0, inf, ...
//!   ]
//! }
//! ```
//!
//! # Grammar
//!
//! ```text
//! file     := 'lnir' '1' graph consts?
//! graph    := 'graph' name '{' (node | output)* '}'
//! node     := VALUE '=' rhs ':' type (',' type)*       ; one type per output
//! rhs      := 'input'
//!           | 'const' AT                                ; a constant-pool entry
//!           | OPNAME '(' (ref (',' ref)*)? ')' attrs?
//! ref      := VALUE ('#' INT)?                          ; '#k' selects output k (default 0)
//! attrs    := '{' (WORD '=' value (',' WORD '=' value)* ','?)? '}'
//! value    := NUM | WORD | '[' (value (',' value)* ','?)? ']'
//! output   := 'output' ref ('as' name)?                 ; the name defaults to the node's
//! type     := DTYPE '[' (INT (',' INT)*)? ']' quant?
//! quant    := 'quant' '(' 'scale' '=' '[' NUM,* ']' ',' 'zero_point' '=' '[' INT,* ']' (',' 'axis' '=' INT)? ')'
//! consts   := 'consts' '{' (AT ':' DTYPE '[' dims ']' '=' '[' NUM,* ']')* '}'
//! name     := STRING | WORD
//! ```
//!
//! Lexical rules: `;` starts a comment to the end of the line. `VALUE` is `%` followed by
//! a bare name (`[A-Za-z0-9_.]+`) or a quoted string (ONNX names with `/`, `:`, ...).
//! `AT` is `@` plus digits; pool entries are listed in order `@0, @1, ...`. Strings are
//! double-quoted with the escapes `\" \\ \n \t \r \u{hex}`. `NUM` is a decimal integer or
//! float (`-1.5e-7`) or `0x` + hex digits, which in a float position gives the raw IEEE bits
//! (32-bit for `f32`, 64-bit for the `f64` clip bounds); floats may also be the words `nan`
//! (canonical quiet NaN), `inf` and `-inf`. `DTYPE` is a [`crate::DType`] as displayed:
//! `f32 i8 u8 i16 i32 i64 bool`, sub-byte `i1..i7 u1..u7`, `bipolar`, `ternary`, fixed
//! point `fix8_3`, `ufix16_-4`.
//!
//! Printing is canonical: graph inputs first (in graph-input order), then every other node
//! in [`Graph::topo_order`]; floats in Rust's shortest round-trip form, NaNs other than the
//! canonical one as raw bits; every attribute of an op in a fixed order (`Option` attributes
//! only when set); `#k` on references to multi-output nodes only; `as "name"` only when the
//! output name differs from the node name. Constants with more than 16 values print 16 per
//! line. The parser is more lenient (any attribute order, trailing commas, comments), but
//! checks everything: values are defined before use, every op name and attribute is known,
//! sizes are bounded, declared output types equal the inferred ones, and the graph
//! passes [`crate::verify::verify`]. Errors are [`crate::Error::Parse`] with `line:col`.

mod attrs;
mod lex;
mod parse;
mod print;

use crate::error::Result;
use crate::graph::Graph;

#[cfg(test)]
mod tests;

/// Printing options.
#[derive(Debug, Clone, Default)]
pub struct PrintOptions {
    /// Print constants as a fingerprint instead of their values (for snapshots); such text
    /// cannot be parsed back.
    pub elide_consts: bool,
}

/// Print a graph as `.lnir` text. Never fails: a graph with a cycle prints its nodes in
/// creation order with a warning comment.
pub fn print(g: &Graph, opts: &PrintOptions) -> String {
    print::print(g, opts)
}

/// Parse `.lnir` text into a verified graph.
///
/// # Errors
/// [`Error::Parse`](crate::Error::Parse) with the position of the problem, or
/// [`Error::Verify`](crate::Error::Verify) for problems only the whole-graph check finds.
pub fn parse(src: &str) -> Result<Graph> {
    parse::parse(src)
}
