#!/usr/bin/env python3
"""Per-layer profile (not a timed test): lnc's generated C against ONNX Runtime, layer by layer.

    bench/layers_vs_ort.py [--model mobilenet_v2 | --onnx FILE] [--qdq [--per-channel]]
                           [--size 224] [--rounds 10] [--runs 60] [--lnc target/release/lnc]

One thread on both sides. lnc: `lnc build --threads 1`, the runner built with
`-DLNC_PROFILE` (per-step wall time). ONNX Runtime: `enable_profiling` (per-node kernel
time), all graph optimisations. The two alternate for ROUNDS rounds of RUNS runs each; a
layer's time is its fastest run (the same statistic on both sides: on a machine shared
with other load, means and even medians of single layers move by tens of percent between
rounds, minima do not).

Both sides are mapped to the convolution of the ONNX file they compute: ORT names a fused
node after its first node (`<conv>_token_N`), lnc names a step after its last one (the
QuantizeLinear or activation after the conv), which is walked back through Clip / Relu /
Quantize / Dequantize to the Conv. The table lists every convolution with its kind
(`dw` depthwise, `pw KxN` pointwise with K inputs and N outputs, `direct` anything else),
both times and the ratio lnc / ORT, then the sums per kind; steps that are not
convolutions (adds, quantizations, pooling, the classifier Gemm) are summed as `other`.
Needs numpy, onnx and onnxruntime in the running Python (e.g. /work/venv/bin/python).
"""

import argparse
import atexit
import collections
import json
import os
import shutil
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr


def conv_index(model):
    """name -> node, output value -> producer, and the kind of every Conv."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    producer = {o: n for n in model.graph.node for o in n.output}
    kinds = {}
    for n in model.graph.node:
        if n.op_type != "Conv":
            continue
        w = n.input[1]
        while w not in inits and w in producer and producer[w].op_type == "DequantizeLinear":
            w = producer[w].input[0]
        if w not in inits:
            continue
        shape = inits[w].shape  # [N, K / group, kh, kw]
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        if group > 1 and shape[1] == 1:
            kinds[n.name] = "dw"
        elif tuple(shape[2:]) == (1, 1) and group == 1:
            kinds[n.name] = f"pw {shape[1]}x{shape[0]}"
        else:
            kinds[n.name] = "direct"
    return nodes, producer, kinds


def lnc_conv_of(step, nodes, producer, kinds):
    """The Conv an lnc step computes (walking back from the step's last node), or None."""
    n = nodes.get(step)
    for _ in range(8):
        if n is None:
            return None
        if n.name in kinds:
            return n.name
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear", "Clip", "Relu"):
            return None
        n = producer.get(n.input[0])
    return None


def kind_group(kind):
    if kind.startswith("pw "):
        return "pointwise K<=32" if int(kind[3:].split("x")[0]) <= 32 else "pointwise K>32"
    return {"dw": "depthwise", "direct": "direct"}[kind]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mobilenet_v2", help="a zoo model (ignored with --onnx)")
    ap.add_argument("--onnx", help="an ONNX file instead of a zoo model")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--qdq", action="store_true", help="quantize first (ORT QDQ, as bench/cpu_vs_ort.py)")
    ap.add_argument("--per-channel", action="store_true", help="with --qdq: per-channel weight scales")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=60, help="runs per side and round")
    ap.add_argument("--lnc", default=os.path.join(ROOT, "target/release/lnc"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (models, builds) instead of deleting it")
    a = ap.parse_args()

    import numpy as np
    import onnx as onnx_pkg
    import onnxruntime as ort

    if not os.path.exists(a.lnc):
        sh(["cargo", "build", "--release", "-p", "lnc", "--quiet"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="lnc-layers-")
    if a.keep:
        print(f"work directory: {work}", file=sys.stderr)
    else:
        atexit.register(shutil.rmtree, work, True)
    path = a.onnx
    if path is None:
        path = os.path.join(work, f"{a.model}.onnx")
        sh([a.lnc, "zoo", a.model, "--input-size", str(a.size), "-o", path])
    if a.qdq:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import ort_compare

        qdq = os.path.join(work, "model_qdq.onnx")
        ort_compare.quantize(path, qdq, ort_compare.input_specs(onnx_pkg.load(path)), 0, a.per_channel)
        path = qdq
    out = os.path.join(work, "c")
    sh([a.lnc, "build", path, "--target", "cpu", "--threads", "1", "-o", out])
    sh(["make", "-s", "-j2", "-C", out, "lnc_runner", "EXTRA_CFLAGS=-DLNC_PROFILE"])

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(work, "ort")
    inp = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()[0]
    x = np.random.RandomState(0).uniform(-1, 1, [d if isinstance(d, int) else 1 for d in inp.shape]).astype(np.float32)
    xp = os.path.join(work, "x.npy")
    np.save(xp, x)

    lnc_best, ort_best = collections.defaultdict(lambda: 1e9), collections.defaultdict(lambda: 1e9)
    step_re = re.compile(r"\s*\d+\s+[\d.]+ ms\s+(\S+) \(([\w+]+)\)  min ([\d.]+) us")
    for r in range(a.rounds):
        for side in ("lnc", "ort") if r % 2 == 0 else ("ort", "lnc"):
            # Let the other side's threads go idle (ORT's spin after a run).
            time.sleep(0.2)
            if side == "lnc":
                txt = sh([os.path.join(out, "lnc_runner"), "--input", xp, "--output", os.path.join(work, "y.npy"), "--repeat", str(a.runs)])
                for m in step_re.finditer(txt):
                    key = (m[1], m[2])
                    lnc_best[key] = min(lnc_best[key], float(m[3]))
            else:
                sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                for _ in range(a.runs + 10):
                    sess.run(None, {inp.name: x})
                prof = sess.end_profiling()
                del sess
                per = collections.defaultdict(list)
                for e in json.load(open(prof)):
                    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                        per[e["name"][: -len("_kernel_time")]].append(e["dur"])
                os.remove(prof)
                for k, v in per.items():
                    ort_best[k] = min(ort_best[k], min(v[-a.runs:]))

    model = onnx_pkg.load(path)
    nodes, producer, kinds = conv_index(model)
    lnc_conv, ort_conv = collections.Counter(), collections.Counter()
    lnc_other = ort_other = 0.0
    for (step, _op), us in lnc_best.items():
        c = lnc_conv_of(step, nodes, producer, kinds)
        if c is None:
            lnc_other += us
        else:
            lnc_conv[c] += us
    for name, us in ort_best.items():
        c = re.sub(r"_token_\d+$", "", name)
        if c in kinds:
            ort_conv[c] += us
        else:
            ort_other += us

    groups = collections.defaultdict(lambda: [0.0, 0.0])
    print(f"{'convolution':40s} {'kind':12s} {'lnc us':>9s} {'ORT us':>9s}  ratio")
    for c in sorted(set(lnc_conv) | set(ort_conv), key=lambda c: -ort_conv.get(c, 0.0)):
        lt, ot = lnc_conv.get(c, 0.0), ort_conv.get(c, 0.0)
        g = groups[kind_group(kinds[c])]
        g[0] += lt
        g[1] += ot
        ratio = f"{lt / ot:6.2f}" if lt > 0 and ot > 0 else "     -"
        print(f"{c[:40]:40s} {kinds[c]:12s} {lt:9.1f} {ot:9.1f} {ratio}")
    groups["other"] = [lnc_other, ort_other]
    print()
    print(f"{'kind':16s} {'lnc ms':>8s} {'ORT ms':>8s}  ratio")
    for k in ("pointwise K<=32", "pointwise K>32", "depthwise", "direct", "other"):
        lt, ot = groups[k]
        if lt or ot:
            print(f"{k:16s} {lt / 1e3:8.3f} {ot / 1e3:8.3f} {lt / max(ot, 1e-9):6.2f}")
    lt, ot = sum(v[0] for v in groups.values()), sum(v[1] for v in groups.values())
    print(f"{'total':16s} {lt / 1e3:8.3f} {ot / 1e3:8.3f} {lt / max(ot, 1e-9):6.2f}")
    print(f"(onnxruntime {ort.__version__}, 1 thread, {a.rounds} alternating rounds of {a.runs} runs; "
          "per layer its fastest run; sums of per-layer minima, not end-to-end times)")


if __name__ == "__main__":
    main()
