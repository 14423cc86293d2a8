//! Shared helpers of the pass tests: seeded random graphs and inputs, running chosen
//! rules, differential checks with the reference interpreter.

#![allow(dead_code)]

use egg::{CostFunction, Extractor, Id, Language};
use lnc_ir::{Conv2d, Graph, Op, Tensor, TensorType, Value};
use lnc_passes::egraph::{bridge, Lnir};
use lnc_passes::passes::eqsat;
use lnc_passes::EqsatOptions;
use std::collections::BTreeMap;

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn sym(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.sym()).collect()
    }
}

/// A graph under construction with seeded random constants.
pub struct B {
    pub g: Graph,
    pub rng: Rng,
}

impl B {
    pub fn new(seed: u64) -> B {
        B {
            g: Graph::new("t"),
            rng: Rng::new(seed),
        }
    }
    pub fn input(&mut self, shape: &[usize]) -> Value {
        let n = format!("x{}", self.g.inputs().len());
        self.g
            .add_input(&n, TensorType::f32(shape.to_vec()))
            .unwrap()
    }
    /// A random constant, uniform in `[lo, hi)`.
    pub fn rand(&mut self, name: &str, shape: &[usize], lo: f32, hi: f32) -> Value {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| lo + (self.rng.sym() + 1.0) * 0.5 * (hi - lo))
            .collect();
        self.g.add_const(name, Tensor::from_f32(shape, v).unwrap())
    }
    pub fn op(&mut self, name: &str, op: Op, ins: &[Value]) -> Value {
        self.g.add(name, op, ins).unwrap()
    }
    /// A conv with random weights (and bias when `bias`).
    /// A conv `[out channels, kernel, stride, groups]` with random weights (and bias).
    pub fn conv(
        &mut self,
        name: &str,
        x: Value,
        [m, k, stride, group]: [usize; 4],
        bias: bool,
    ) -> Value {
        let c = self.g.value_type(x).shape[1];
        let w = self.rand(&format!("{name}.w"), &[m, c / group, k, k], -0.5, 0.5);
        let mut ins = vec![x, w];
        if bias {
            ins.push(self.rand(&format!("{name}.b"), &[m], -0.5, 0.5));
        }
        self.op(name, Op::Conv(conv2d(k, stride, group)), &ins)
    }
    pub fn bn(&mut self, name: &str, x: Value) -> Value {
        let c = self.g.value_type(x).shape[1];
        let g = self.rand(&format!("{name}.g"), &[c], 0.5, 1.5);
        let b = self.rand(&format!("{name}.b"), &[c], -0.5, 0.5);
        let m = self.rand(&format!("{name}.m"), &[c], -0.5, 0.5);
        let v = self.rand(&format!("{name}.v"), &[c], 0.5, 2.0);
        self.op(name, Op::BatchNorm { epsilon: 1e-5 }, &[x, g, b, m, v])
    }
    pub fn finish(mut self, y: Value) -> Graph {
        self.g.add_output("y", y);
        lnc_ir::verify::verify(&self.g).unwrap();
        self.g
    }
}

pub fn conv2d(k: usize, stride: usize, group: usize) -> Conv2d {
    Conv2d {
        kernel: [k, k],
        strides: [stride, stride],
        pads: [k / 2; 4],
        dilations: [1, 1],
        group,
    }
}

/// Op histogram (inputs and constants excluded).
pub fn hist(g: &Graph) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for id in g.node_ids() {
        let op = &g.node(id).op;
        if !matches!(op, Op::Input | Op::Const(_)) {
            *h.entry(op.name().to_string()).or_default() += 1;
        }
    }
    h
}

pub fn h(items: &[(&str, usize)]) -> BTreeMap<String, usize> {
    items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Extraction cost for rule tests: every op costs 1, ops with an avoided tag 1000.
struct Avoid<'a>(&'a [&'a str]);

impl CostFunction<Lnir> for Avoid<'_> {
    type Cost = u64;
    fn cost<C: FnMut(Id) -> u64>(&mut self, n: &Lnir, mut costs: C) -> u64 {
        let own = match n {
            Lnir::Op(t, _) if self.0.contains(t) => 1000,
            Lnir::Op(..) | Lnir::Proj(..) => 1,
            _ => 0,
        };
        n.children()
            .iter()
            .fold(own, |a, &c| a.saturating_add(costs(c)))
    }
}

/// Saturate with only the named rules and extract avoiding the tags in `avoid`.
pub fn rewrite(g: &Graph, names: &[&str], avoid: &[&str]) -> Graph {
    let rules: Vec<_> = lnc_passes::rules::all()
        .into_iter()
        .filter(|r| names.contains(&r.name.as_str()))
        .collect();
    assert_eq!(rules.len(), names.len(), "unknown rule in {names:?}");
    let sat = eqsat::saturate(g, &rules, &EqsatOptions::default()).unwrap();
    let ex = Extractor::new(&sat.egraph, Avoid(avoid));
    let (out, _) = bridge::rebuild(
        &sat.egraph,
        &sat.roots,
        &sat.output_names,
        &sat.graph_name,
        |c| ex.find_best_node(c),
    )
    .unwrap();
    lnc_ir::verify::verify(&out).unwrap();
    out
}

/// Random inputs for a graph.
pub fn inputs(g: &Graph, seed: u64) -> Vec<Tensor> {
    let mut r = Rng::new(seed ^ 0xabcdef);
    g.inputs()
        .iter()
        .map(|&i| {
            let t = &g.node(i).outputs[0];
            Tensor::from_f32(&t.shape, r.vec(t.numel())).unwrap()
        })
        .collect()
}

/// Largest difference relative to the largest magnitude of the reference.
pub fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    let scale = a.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// The two graphs compute the same outputs (≤ 1e-5 relative) on random inputs.
pub fn assert_same(before: &Graph, after: &Graph, seeds: u64) {
    for s in 0..seeds {
        let ins = inputs(before, s);
        let a = lnc_ir::interp::run(before, ins.clone()).unwrap();
        let b = lnc_ir::interp::run(after, ins).unwrap();
        for (x, y) in a.iter().zip(&b) {
            let d = rel_diff(x, y);
            assert!(d <= 1e-5, "outputs differ by {d} (relative) for seed {s}");
        }
    }
}
