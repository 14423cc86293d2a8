//! The `.lnir` printer. Output depends only on the graph (node order, constant pool order,
//! names), never on hash-map iteration, so equal graphs print byte-identically.

use super::attrs::{op_attrs, AttrValue};
use super::lex::{name, quote};
use super::PrintOptions;
use crate::graph::{Graph, NodeId, Value};
use crate::op::Op;
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;
use std::collections::HashSet;
use std::fmt::Write;

/// Values per line of a printed constant.
const VALUES_PER_LINE: usize = 16;
/// Bits of the canonical (positive, quiet) f32 NaN, printed as `nan`.
const CANON_NAN32: u32 = 0x7fc0_0000;
/// Bits of the canonical f64 NaN.
const CANON_NAN64: u64 = 0x7ff8_0000_0000_0000;

/// Shortest round-trip text of an `f32`; NaNs other than the canonical one print as raw
/// bits (`0x7fc00001`).
pub(crate) fn fmt_f32(out: &mut String, v: f32) {
    if v.is_nan() {
        if v.to_bits() == CANON_NAN32 {
            out.push_str("nan");
        } else {
            let _ = write!(out, "0x{:08x}", v.to_bits());
        }
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// Shortest round-trip text of an `f64` (raw bits for non-canonical NaNs).
pub(crate) fn fmt_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        if v.to_bits() == CANON_NAN64 {
            out.push_str("nan");
        } else {
            let _ = write!(out, "0x{:016x}", v.to_bits());
        }
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        let _ = write!(out, "{v:?}");
    }
}

fn fmt_list<T>(out: &mut String, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        f(out, x);
    }
    out.push(']');
}

fn fmt_attr(out: &mut String, v: &AttrValue) {
    match v {
        AttrValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        AttrValue::F32(x) => fmt_f32(out, *x),
        AttrValue::F64(x) => fmt_f64(out, *x),
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Word(w) => out.push_str(w),
        AttrValue::Ints(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{x}");
            }
            out.push(']');
        }
        AttrValue::F32s(v) => fmt_list(out, v, |o, x| fmt_f32(o, *x)),
    }
}

/// `f32[1,3,8,8]`, plus ` quant(scale=[..], zero_point=[..], axis=k)` when quantized.
pub(crate) fn fmt_type(out: &mut String, t: &TensorType) {
    let _ = write!(out, "{t}");
    if let Some(q) = &t.quant {
        out.push_str(" quant(scale=");
        fmt_list(out, &q.scale, |o, x| fmt_f32(o, *x));
        out.push_str(", zero_point=");
        fmt_list(out, &q.zero_point, |o, x| {
            let _ = write!(o, "{x}");
        });
        if let Some(a) = q.axis {
            let _ = write!(out, ", axis={a}");
        }
        out.push(')');
    }
}

fn fmt_ref(out: &mut String, g: &Graph, v: Value) {
    out.push('%');
    if !g.contains(v.node) {
        let _ = write!(
            out,
            "{}#{}",
            quote(&format!("<missing node {}>", v.node.index())),
            v.port
        );
        return;
    }
    let node = g.node(v.node);
    out.push_str(&name(&node.name));
    if node.outputs.len() != 1 || v.port != 0 {
        let _ = write!(out, "#{}", v.port);
    }
}

fn fmt_node(out: &mut String, g: &Graph, id: NodeId) {
    let node = g.node(id);
    let _ = write!(out, "  %{} = ", name(&node.name));
    match &node.op {
        Op::Input => out.push_str("input"),
        Op::Const(c) => {
            let _ = write!(out, "const @{}", c.0);
        }
        op => {
            out.push_str(op.name());
            out.push('(');
            for (i, v) in g.node_inputs(id).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                fmt_ref(out, g, v);
            }
            out.push(')');
            let attrs = op_attrs(op);
            if !attrs.is_empty() {
                out.push_str(" {");
                for (i, (k, v)) in attrs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push('=');
                    fmt_attr(out, v);
                }
                out.push('}');
            }
        }
    }
    out.push_str(" :");
    for (i, t) in node.outputs.iter().enumerate() {
        out.push_str(if i > 0 { ", " } else { " " });
        fmt_type(out, t);
    }
    out.push('\n');
}

fn fmt_const(out: &mut String, idx: usize, t: &Tensor, opts: &PrintOptions) {
    let _ = write!(out, "  @{idx} : {} = ", t.ty());
    if opts.elide_consts {
        let _ = writeln!(out, "elided fnv64:{:016x}", t.fingerprint());
        return;
    }
    let n = t.numel();
    let wrap = n > VALUES_PER_LINE;
    out.push('[');
    let item = |out: &mut String, i: usize| {
        if i > 0 {
            out.push(',');
            if wrap && i.is_multiple_of(VALUES_PER_LINE) {
                out.push_str("\n    ");
            } else {
                out.push(' ');
            }
        } else if wrap {
            out.push_str("\n    ");
        }
    };
    match &t.data {
        Data::F32(a) => {
            for (i, &v) in a.iter().enumerate() {
                item(out, i);
                fmt_f32(out, v);
            }
        }
        Data::Int(a) => {
            for (i, &v) in a.iter().enumerate() {
                item(out, i);
                let _ = write!(out, "{v}");
            }
        }
    }
    if wrap {
        out.push_str("\n  ");
    }
    out.push_str("]\n");
}

/// Print a graph (see the grammar in [`super`]).
pub(crate) fn print(g: &Graph, opts: &PrintOptions) -> String {
    let mut out = String::new();
    out.push_str("lnir 1\n");
    let _ = writeln!(out, "graph {} {{", quote(&g.name));
    let order = match g.topo_order() {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(out, "  ; warning: {e}; nodes in creation order");
            g.node_ids()
        }
    };
    let inputs: Vec<NodeId> = g
        .inputs()
        .iter()
        .copied()
        .filter(|&i| g.contains(i))
        .collect();
    let seen: HashSet<NodeId> = inputs.iter().copied().collect();
    for &id in inputs
        .iter()
        .chain(order.iter().filter(|id| !seen.contains(id)))
    {
        fmt_node(&mut out, g, id);
    }
    for o in g.outputs() {
        out.push_str("  output ");
        fmt_ref(&mut out, g, o.value);
        let implicit = g.contains(o.value.node) && {
            let n = g.node(o.value.node);
            n.name == o.name && n.outputs.len() == 1 && o.value.port == 0
        };
        if !implicit {
            let _ = write!(out, " as {}", quote(&o.name));
        }
        out.push('\n');
    }
    out.push_str("}\n");
    if !g.consts().is_empty() {
        out.push_str("consts {\n");
        for (i, t) in g.consts().iter().enumerate() {
            fmt_const(&mut out, i, t, opts);
        }
        out.push_str("}\n");
    }
    out
}
