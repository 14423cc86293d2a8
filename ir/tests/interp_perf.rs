//! Interpreter speed sanity check on a MobileNetV2-shaped graph (224x224, the 17
//! inverted residual blocks, random weights). Ignored by default; run in release:
//!
//! ```text
//! cargo test -p lnc-ir --release --test interp_perf -- --ignored --nocapture
//! ```

#[path = "interp_util.rs"]
mod util;

use lnc_ir::interp::run;
use lnc_ir::{BinaryOp, Conv2d, Graph, Op, TensorType, Value};
use std::time::Instant;
use util::*;

struct Builder {
    g: Graph,
    rng: Rng,
    macs: u64,
    n: usize,
}

impl Builder {
    fn name(&mut self, base: &str) -> String {
        self.n += 1;
        format!("{base}_{}", self.n)
    }

    /// Conv (+ bias) with weights scaled by 1/sqrt(fan_in), optionally followed by ReLU6.
    fn conv(
        &mut self,
        x: Value,
        cout: usize,
        k: usize,
        stride: usize,
        group: usize,
        relu6: bool,
    ) -> Value {
        let cin = self.g.value_type(x).shape[1];
        let fan_in = cin / group * k * k;
        let scale = (3.0 / fan_in as f32).sqrt();
        let w: Vec<f32> = self
            .rng
            .vec(cout * fan_in)
            .iter()
            .map(|v| v * scale)
            .collect();
        let wn = self.name("w");
        let w = self.g.add_const(&wn, f(&[cout, cin / group, k, k], &w));
        let bn = self.name("b");
        let b = self.g.add_const(
            &bn,
            f(
                &[cout],
                &self
                    .rng
                    .vec(cout)
                    .iter()
                    .map(|v| v * 0.1)
                    .collect::<Vec<_>>(),
            ),
        );
        let p = k / 2;
        let op = Conv2d {
            kernel: [k, k],
            strides: [stride, stride],
            pads: [p, p, p, p],
            dilations: [1, 1],
            group,
        };
        let cn = self.name("conv");
        let y = self.g.add(&cn, Op::Conv(op), &[x, w, b]).unwrap();
        let s = &self.g.value_type(y).shape;
        self.macs += (s[1] * s[2] * s[3] * fan_in) as u64;
        if relu6 {
            let rn = self.name("relu6");
            self.g
                .add(&rn, Op::Clip { min: 0.0, max: 6.0 }, &[y])
                .unwrap()
        } else {
            y
        }
    }

    fn inverted_residual(&mut self, x: Value, t: usize, cout: usize, stride: usize) -> Value {
        let cin = self.g.value_type(x).shape[1];
        let hidden = cin * t;
        let mut h = x;
        if t != 1 {
            h = self.conv(h, hidden, 1, 1, 1, true);
        }
        h = self.conv(h, hidden, 3, stride, hidden, true);
        h = self.conv(h, cout, 1, 1, 1, false);
        if stride == 1 && cin == cout {
            let an = self.name("add");
            h = self.g.add(&an, Op::Binary(BinaryOp::Add), &[x, h]).unwrap();
        }
        h
    }
}

fn mobilenet_v2() -> (Graph, u64) {
    let mut b = Builder {
        g: Graph::new("mobilenet_v2"),
        rng: Rng::new(2024),
        macs: 0,
        n: 0,
    };
    let x =
        b.g.add_input("input", TensorType::f32(vec![1, 3, 224, 224]))
            .unwrap();
    let mut h = b.conv(x, 32, 3, 2, 1, true);
    let settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let mut blocks = 0;
    for (t, c, n, s) in settings {
        for i in 0..n {
            h = b.inverted_residual(h, t, c, if i == 0 { s } else { 1 });
            blocks += 1;
        }
    }
    assert_eq!(blocks, 17);
    h = b.conv(h, 1280, 1, 1, 1, true);
    h = b.g.add("gap", Op::GlobalAveragePool, &[h]).unwrap();
    h =
        b.g.add(
            "flatten",
            Op::Reshape {
                shape: vec![1, 1280],
            },
            &[h],
        )
        .unwrap();
    let w: Vec<f32> = b.rng.vec(1000 * 1280).iter().map(|v| v * 0.05).collect();
    let w = b.g.add_const("fc_w", f(&[1000, 1280], &w));
    let bias = b.g.add_const("fc_b", f(&[1000], &vec![0.0; 1000]));
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    h = b.g.add("fc", gemm, &[h, w, bias]).unwrap();
    b.macs += 1280 * 1000;
    h =
        b.g.add(
            "softmax",
            Op::Softmax {
                axis: 1,
                coerce_2d: false,
                log: false,
            },
            &[h],
        )
        .unwrap();
    b.g.add_output("prob", h);
    (b.g, b.macs)
}

#[test]
#[ignore = "performance check; run in release with --ignored --nocapture"]
fn mobilenet_v2_perf() {
    let (g, macs) = mobilenet_v2();
    lnc_ir::verify::verify(&g).unwrap();
    let mut rng = Rng::new(1);
    let x = rng.tensor(&[1, 3, 224, 224]);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let out = run(&g, vec![x.clone()]).unwrap();
        times.push(t0.elapsed().as_secs_f64());
        let p = fv(&out[0]);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(|v| v.is_finite()));
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    }
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "MobileNetV2-shaped graph: {} nodes, {:.1} M MACs, run times {:?} s, best {:.3} s ({:.2} GMAC/s)",
        g.num_nodes(),
        macs as f64 / 1e6,
        times.iter().map(|t| (t * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        best,
        macs as f64 / best / 1e9
    );
    assert!(best < 2.0, "MobileNetV2 took {best:.3} s");
}
