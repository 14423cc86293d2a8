//! Clean-up: ops that compute their input unchanged.
//!
//! ONNX `Dropout` (inference) is imported as `identity`, so `remove-identity` removes it too.

use super::{attr, bound, ty, Rw};
use crate::egraph::EG;
use egg::{rewrite as rw, Id, Subst};
use lnc_ir::Op;

/// `?a` (an attribute) leaves `?x` unchanged.
fn noop(a: &'static str, x: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    move |eg, _, s| {
        let (Some(a), Some(x)) = (bound(s, a), bound(s, x)) else {
            return false;
        };
        let (Some(op), Some(t)) = (attr(eg, a), ty(eg, x)) else {
            return false;
        };
        match op {
            Op::Cast { to } => to == t.dtype,
            Op::Reshape { shape } | Op::Expand { shape } => shape == t.shape,
            Op::Transpose { perm } => perm.iter().enumerate().all(|(i, &p)| i == p),
            Op::Slice { axes } => axes.iter().all(|a| {
                a.step == 1
                    && a.start == 0
                    && t.shape.get(a.axis).is_some_and(|&d| a.end == d as i64)
            }),
            _ => false,
        }
    }
}

pub fn rules() -> Vec<Rw> {
    vec![
        rw!("remove-identity";       "(identity ?x)"     => "?x"),
        rw!("remove-cast-noop";      "(cast ?a ?x)"      => "?x" if noop("?a", "?x")),
        rw!("remove-reshape-noop";   "(reshape ?a ?x)"   => "?x" if noop("?a", "?x")),
        rw!("remove-transpose-noop"; "(transpose ?a ?x)" => "?x" if noop("?a", "?x")),
        rw!("remove-expand-noop";    "(expand ?a ?x)"    => "?x" if noop("?a", "?x")),
        rw!("remove-slice-noop";     "(slice ?a ?x)"     => "?x" if noop("?a", "?x")),
        rw!("remove-concat-single";  "(concat ?a ?x)"    => "?x"),
    ]
}
