//! `lnc inspect`: a model summary as aligned text or JSON (deterministic in both forms).

use anyhow::Result;
use lnc_ir::stats::{stats, Stats};
use lnc_ir::{Graph, Quant, TensorType};
use serde::Serialize;
use std::fmt::Write;

/// A graph input or output.
#[derive(Debug, Serialize)]
pub struct Port {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<Quant>,
}

/// Everything `lnc inspect` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    #[serde(flatten)]
    pub stats: Stats,
}

fn port(name: &str, t: &TensorType) -> Port {
    Port {
        name: name.to_string(),
        dtype: t.dtype.to_string(),
        shape: t.shape.clone(),
        quant: t.quant.clone(),
    }
}

impl Report {
    pub fn new(g: &Graph) -> Result<Report> {
        Ok(Report {
            model: g.name.clone(),
            inputs: crate::driver::input_types(g)
                .iter()
                .map(|(n, t)| port(n, t))
                .collect(),
            outputs: crate::driver::output_types(g)
                .iter()
                .map(|(n, t)| port(n, t))
                .collect(),
            stats: stats(g)?,
        })
    }

    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let s = &self.stats;
        let _ = writeln!(out, "model: {}", self.model);
        for (title, ports) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            let _ = writeln!(out, "{title}:");
            let rows = ports
                .iter()
                .map(|p| vec![p.name.clone(), port_type(p)])
                .collect();
            table(&mut out, rows, &[false, false]);
        }
        let _ = writeln!(out, "params: {}", count(s.params));
        let _ = writeln!(
            out,
            "  weights of compute layers: {}",
            count(s.weight_params)
        );
        let _ = writeln!(out, "MACs: {}", count(s.macs));
        let m = &s.macs_by_kind;
        let rows = [
            ("depthwise", m.depthwise),
            ("pointwise", m.pointwise),
            ("other_conv", m.other_conv),
            ("gemm", m.gemm),
        ]
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.to_string(), percent(*v, s.macs)])
        .collect();
        table(&mut out, rows, &[false, true, true]);
        let _ = writeln!(out, "ops:");
        let rows = s
            .ops
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect();
        table(&mut out, rows, &[false, true]);
        let _ = writeln!(out, "layers:");
        let mut rows = vec![["name", "op", "kind", "output", "params", "MACs"]
            .map(String::from)
            .to_vec()];
        for l in &s.layers {
            let shapes: Vec<String> = l
                .output_dtypes
                .iter()
                .zip(&l.output_shapes)
                .map(|(d, sh)| format!("{d}{}", fmt_shape(sh)))
                .collect();
            rows.push(vec![
                l.name.clone(),
                l.op.clone(),
                l.kind.map_or("-", |k| k.name()).to_string(),
                shapes.join(" "),
                l.params.to_string(),
                l.macs.to_string(),
            ]);
        }
        table(&mut out, rows, &[false, false, false, false, true, true]);
        out
    }
}

fn fmt_shape(s: &[usize]) -> String {
    let d: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(","))
}

fn port_type(p: &Port) -> String {
    let mut s = format!("{}{}", p.dtype, fmt_shape(&p.shape));
    if let Some(q) = &p.quant {
        match q.axis {
            None => {
                let _ = write!(s, " scale={:?} zero_point={}", q.scale[0], q.zero_point[0]);
            }
            Some(a) => {
                let _ = write!(s, " per-axis quantized (axis {a})");
            }
        }
    }
    s
}

/// `1234567` -> `1.2M`.
fn human(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "T"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1_000, "K"),
    ];
    for (u, suffix) in UNITS {
        if n >= u {
            return format!("{:.1}{suffix}", n as f64 / u as f64);
        }
    }
    n.to_string()
}

/// `7840` -> `7840 (7.8K)`; small numbers alone.
fn count(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{n} ({})", human(n))
    }
}

fn percent(v: u64, total: u64) -> String {
    if total == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", v as f64 * 100.0 / total as f64)
    }
}

/// Rows indented by two spaces, columns separated by two spaces, numbers right-aligned.
fn table(out: &mut String, rows: Vec<Vec<String>>, right: &[bool]) {
    let cols = right.len();
    let mut width = vec![0; cols];
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for r in &rows {
        let mut line = String::from(" ");
        for (i, c) in r.iter().enumerate().take(cols) {
            let pad = width[i] - c.chars().count();
            line.push(' ');
            if right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            }
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(human(999), "999");
        assert_eq!(human(3_504_872), "3.5M");
        assert_eq!(human(300_774_272), "300.8M");
        assert_eq!(count(722), "722");
        assert_eq!(count(7840), "7840 (7.8K)");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "-");
    }
}
