#!/usr/bin/env python3
"""Benchmark (not a timed test): lnc's generated C against ONNX Runtime, side by side.

    bench/cpu_vs_ort.py [--models m1,m2] [--threads 1,2] [--size 224] [--runs 200] [--qdq]

For every zoo model (seeded weights, batch 1, SIZE x SIZE) and thread count:
- `lnc build --target cpu --threads T` (host ISA), `make liblnc_model.so`, loaded with ctypes;
- ONNX Runtime 1.x (CPUExecutionProvider, intra_op_num_threads=T, inter_op_num_threads=1,
  sequential execution, all graph optimisations) on the same .onnx file and the same input.
Both run in this one process and alternate in ROUNDS blocks of RUNS/ROUNDS timed runs, each
block after GAP_MS idle (ORT's pool threads spin after a run and would otherwise take a core
from lnc's next block) and WARMUP untimed runs (so each side runs with its own weights warm in
cache, as a deployed model does, while load from elsewhere on the machine hits both alike). The table shows the median
and minimum milliseconds of each side and the ratio lnc / ORT of the medians (< 1: lnc is
faster). It also checks that both produce the same output (1e-4 of max |ORT|).

With --qdq every zoo model is first quantized by ONNX Runtime exactly as
scripts/ort_compare.py does (`quantize_static`, QDQ format, u8 activations, i8 weights per
tensor as ORT's default or per channel with --per-channel, 8 calibration inputs) and both sides run the QDQ file (lnc: `lnc build`, whose
optimiser turns DQ -> Conv -> Q into integer convolutions). ORT's fused int8 kernels saturate
(u8 x s8 pair sums) where lnc's are exact, so lnc's output is checked against ORT without
graph optimisations (the QDQ graph's defined meaning; within 5% of max |ORT|, a few
quantization steps) while the timed ORT session has all optimisations (lnc's bit-exactness
against its own interpreter is tested in tests/cpu_backend.rs).
Needs numpy and onnxruntime in the running Python (e.g. /work/venv/bin/python).
"""

import argparse
import atexit
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


class LncModel:
    """A generated model loaded from liblnc_model.so (API in model.h)."""

    def __init__(self, so_path, threads, out_shapes):
        import numpy as np

        self.lib = ctypes.CDLL(so_path)
        self.lib.lnc_model_scratch_size.restype = ctypes.c_size_t
        self.lib.lnc_model_init.argtypes = [ctypes.c_int]
        self.threads = self.lib.lnc_model_init(threads)
        self.scratch = ctypes.create_string_buffer(self.lib.lnc_model_scratch_size())
        self.outs = [np.zeros(s, dtype=np.float32) for s in out_shapes]
        P = ctypes.POINTER(ctypes.c_float)
        self.out_ptrs = (P * len(self.outs))(*[o.ctypes.data_as(P) for o in self.outs])
        self.P = P

    def run(self, x):
        ins = (self.P * 1)(x.ctypes.data_as(self.P))
        self.lib.lnc_model_run(self.scratch, ins, self.out_ptrs)
        return self.outs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mobilenet_v2,shufflenet_v2_x1_0,squeezenet1_1,mobilenet_v3_small")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=200, help="timed runs per side")
    ap.add_argument("--rounds", type=int, default=10, help="alternating blocks per side")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs at the start of a block")
    ap.add_argument("--gap-ms", type=float, default=100.0, help="idle time before each block")
    ap.add_argument("--lnc", default=os.path.join(ROOT, "target/release/lnc"))
    ap.add_argument("--json", action="store_true", help="print one JSON object per row")
    ap.add_argument("--qdq", action="store_true", help="quantize the models (ORT QDQ) first")
    ap.add_argument("--per-channel", action="store_true", help="with --qdq: per-channel weight scales (ORT's default is per tensor)")
    ap.add_argument("--reduce-range", action="store_true", help="with --qdq: 7-bit weights (ORT's advice for AVX2, where its u8s8 kernel saturates otherwise)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (models, builds) instead of deleting it")
    a = ap.parse_args()

    import numpy as np
    import onnxruntime as ort

    lnc = a.lnc
    if not os.path.exists(lnc):
        sh(["cargo", "build", "--release", "-p", "lnc", "--quiet"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="lnc-vs-ort-")
    if a.keep:
        print(f"work directory: {work}", file=sys.stderr)
    else:
        atexit.register(shutil.rmtree, work, True)
    rows = []
    for model in a.models.split(","):
        onnx = os.path.join(work, f"{model}.onnx")
        sh([lnc, "zoo", model, "--input-size", str(a.size), "-o", onnx])
        if a.qdq:
            sys.path.insert(0, os.path.join(ROOT, "scripts"))
            import onnx as onnx_pkg
            import ort_compare

            qdq = os.path.join(work, f"{model}_qdq.onnx")
            ort_compare.quantize(onnx, qdq, ort_compare.input_specs(onnx_pkg.load(onnx)), 0, a.per_channel, a.reduce_range)
            onnx = qdq
        for t in [int(x) for x in a.threads.split(",")]:
            out = os.path.join(work, f"{model}-t{t}")
            sh([lnc, "build", onnx, "--target", "cpu", "--threads", str(t), "-o", out])
            sh(["make", "-s", "-j2", "-C", out, "liblnc_model.so"])
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])
            i = sess.get_inputs()[0]
            x = np.ascontiguousarray(np.random.RandomState(0).uniform(-1, 1, i.shape).astype(np.float32))
            feed = {i.name: x}
            ref = sess.run(None, feed)
            if a.qdq:
                so0 = ort.SessionOptions()
                so0.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                ref = ort.InferenceSession(onnx, so0, providers=["CPUExecutionProvider"]).run(None, feed)
            m = LncModel(os.path.join(out, "liblnc_model.so"), t, [r.shape for r in ref])
            got = m.run(x)
            err = max(float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-30)) for g, r in zip(got, ref))
            if err > (0.05 if a.qdq else 1e-4):
                sys.exit(f"{model}: lnc and ORT disagree (relative error {err:.2e})")
            tl, to = [], []
            per = max(1, a.runs // a.rounds)
            round_ratios = []
            for _ in range(a.rounds):
                for f, ts in ((lambda: m.run(x), tl), (lambda: sess.run(None, feed), to)):
                    # Let the other side's pool go idle first: ORT's workers spin for a while
                    # after a run and would steal a core from the next block.
                    time.sleep(a.gap_ms / 1e3)
                    for _ in range(a.warmup):
                        f()
                    for _ in range(per):
                        t0 = time.perf_counter()
                        f()
                        ts.append((time.perf_counter() - t0) * 1e3)
                # Adjacent blocks see nearly the same machine: their ratio cancels slow drifts
                # of a shared host (the spread of these is the measurement's own noise).
                round_ratios.append(statistics.median(tl[-per:]) / statistics.median(to[-per:]))
            row = dict(model=model + (("-qdq-pc" if a.per_channel else "-qdq") + ("-rr" if a.reduce_range else "") if a.qdq else ""), threads=t, lnc_ms=statistics.median(tl), lnc_min_ms=min(tl),
                       ort_ms=statistics.median(to), ort_min_ms=min(to))
            row["ratio"] = row["lnc_ms"] / row["ort_ms"]
            row["ratio_min"] = row["lnc_min_ms"] / row["ort_min_ms"]
            q = statistics.quantiles(round_ratios, n=4) if len(round_ratios) > 1 else [round_ratios[0]] * 3
            row["ratio_rounds_median"], row["ratio_rounds_q1"], row["ratio_rounds_q3"] = q[1], q[0], q[2]
            rows.append(row)
            if a.json:
                print(json.dumps(row), flush=True)
            del sess
    if not a.json:
        print(f"{'model':20} {'thr':>3} {'lnc ms':>8} {'ORT ms':>8} {'ratio':>6}   {'lnc min':>8} {'ORT min':>8} {'ratio':>6}"
              f"   {'per-round ratio (q1-q3)':>24}")
        for r in rows:
            print(f"{r['model']:20} {r['threads']:3d} {r['lnc_ms']:8.3f} {r['ort_ms']:8.3f} {r['ratio']:6.3f}"
                  f"   {r['lnc_min_ms']:8.3f} {r['ort_min_ms']:8.3f} {r['ratio_min']:6.3f}"
                  f"   {r['ratio_rounds_median']:8.3f} ({r['ratio_rounds_q1']:.3f}-{r['ratio_rounds_q3']:.3f})")
        print(f"(onnxruntime {ort.__version__}, {a.size}x{a.size}, batch 1, {a.runs} runs per side in {a.rounds} alternating blocks; "
              "ratio = lnc / ORT: of the medians, of the minimums, and the median (quartiles) of the rounds' block-median ratios)")


if __name__ == "__main__":
    main()
