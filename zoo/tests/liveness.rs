//! Activation liveness: for a standard-normal input, the reference interpreter must see finite
//! logits whose standard deviation is within [1e-2, 1e3] for every model, and the output of
//! every batch norm must keep a standard deviation within [0.25, 4] through the whole depth
//! (the analytic calibration of the running statistics at work; the gamma are about 1).

mod common;

use lnc_ir::{interp, Graph, Op, Tensor};
use lnc_zoo::{build, ZooOptions};

/// A standard-normal `[1, 3, s, s]` input (splitmix64 + Box-Muller; the test's own stream).
fn normal_input(s: usize, seed: u64) -> Tensor {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let n = 3 * s * s;
    let values = (0..n)
        .map(|_| {
            let (u, v) = (1.0 - next(), next());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect();
    Tensor::from_f32(&[1, 3, s, s], values).expect("input tensor")
}

fn std_of(t: &Tensor) -> (f64, bool) {
    let v = t.to_f64_vec();
    let finite = v.iter().all(|x| x.is_finite());
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (var.sqrt(), finite)
}

/// What one run measured.
struct Liveness {
    logits_std: f64,
    finite: bool,
    /// Smallest and largest per-tensor std of the batch-norm outputs, and how many there are.
    bn_min: f64,
    bn_max: f64,
    bns: usize,
}

/// Run `g` with every batch-norm output exposed as an extra graph output.
fn measure(g: &Graph, input_size: usize) -> Liveness {
    let mut g = g.clone();
    let bns: Vec<_> = g
        .node_ids()
        .into_iter()
        .filter(|&id| matches!(g.node(id).op, Op::BatchNorm { .. }))
        .collect();
    for &id in &bns {
        let name = g.node(id).name.clone();
        g.add_output(&name, lnc_ir::Value { node: id, port: 0 });
    }
    let outs =
        interp::run(&g, vec![normal_input(input_size, 42)]).expect("interpreter runs the model");
    let (logits_std, mut finite) = std_of(&outs[0]);
    let (mut bn_min, mut bn_max) = (f64::INFINITY, 0.0f64);
    for t in &outs[1..] {
        let (s, f) = std_of(t);
        finite &= f;
        bn_min = bn_min.min(s);
        bn_max = bn_max.max(s);
    }
    Liveness {
        logits_std,
        finite,
        bn_min,
        bn_max,
        bns: bns.len(),
    }
}

fn check_all(opts: &ZooOptions) {
    let mut failures = Vec::new();
    for name in common::names() {
        let g = build(name, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let l = measure(&g, opts.input_size);
        let bn = match l.bns {
            0 => "no batch norms".to_string(),
            n => format!(
                "batch-norm output std in [{:.3}, {:.3}] over {n} BNs",
                l.bn_min, l.bn_max
            ),
        };
        println!("{name:20} logits std {:9.4}  {bn}", l.logits_std);
        if !l.finite {
            failures.push(format!("{name}: non-finite values"));
        }
        if !(1e-2..=1e3).contains(&l.logits_std) {
            failures.push(format!(
                "{name}: logits std {} outside [1e-2, 1e3]",
                l.logits_std
            ));
        }
        if l.bns > 0 && (l.bn_min < 0.25 || l.bn_max > 4.0) {
            failures.push(format!(
                "{name}: batch-norm output std in [{}, {}]",
                l.bn_min, l.bn_max
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tiny_models_keep_activations_alive() {
    check_all(&common::tiny());
}

#[test]
fn tiny_models_keep_activations_alive_for_other_seeds() {
    check_all(&ZooOptions {
        seed: 12345,
        ..common::tiny()
    });
}

/// The 224x224 models take minutes in the unoptimised interpreter:
/// `cargo test -p lnc-zoo --release --test liveness -- --ignored`.
#[test]
#[ignore]
fn full_size_models_keep_activations_alive() {
    check_all(&ZooOptions::default());
}
