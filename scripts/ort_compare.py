#!/usr/bin/env python3
"""Differential check of `lnc run` against ONNX Runtime on one model.

    ort_compare.py --lnc BIN --model M.onnx --workdir DIR [--seed S] [--qdq [--per-channel]]

Makes a seeded standard-normal input for every graph input, runs the model with ONNX Runtime
and with `lnc run`, and compares every output:
  * float models: max |lnc - ort| <= 1e-4 * max |ort|  (+1e-6 absolute floor)
  * --qdq (ORT runs the unfused QDQ graph): the model is first quantized with onnxruntime.quantization.quantize_static (QDQ
    format, int8 weights / uint8 activations as ORT defaults, calibrated on seeded inputs);
    outputs must agree within one quantization step of the output's DequantizeLinear.
Both sides evaluate a QDQ graph in float (DequantizeLinear -> float op -> QuantizeLinear);
float summation order differs between lnc's interpreter and ORT's kernels, so a value that lies
within float rounding of a .5 boundary can quantize one step apart (about 1 in 10^5 values per
layer). Shallow models agree exactly; deep models at 224x224 accumulate such flips, so their
callers pass a larger --qdq-steps and --per-layer, which checks every quantized tensor
teacher-forced (each layer run by lnc on ORT's values of its quantized inputs) within one step.
  * --lower: lnc runs the model after `lnc opt -p lower-cpu`; for a QDQ model that is the integer
    lowering (QLinearConv with int32 accumulation and ONNX Runtime's requantization), which rounds
    once where the float graph rounds twice: it too must be within one step per layer.
  * --ort-fused --reduce-range: ORT runs its own fused integer kernels (exact for 7-bit weights);
    with --lower and --qdq-steps 0 this checks that lnc's integer semantics are ORT's, bit for bit.
Prints one JSON line with the measured numbers; exit status 1 on a mismatch, 2 on an lnc error.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def input_specs(model):
    inits = {i.name for i in model.graph.initializer}
    specs = []
    for x in model.graph.input:
        if x.name in inits:
            continue
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in x.type.tensor_type.shape.dim]
        specs.append((x.name, shape))
    return specs


def make_inputs(specs, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in specs}


def quantize(model_path, out_path, specs, seed, per_channel, reduce_range=False):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([make_inputs(specs, seed + 1000 + i) for i in range(8)])

        def get_next(self):
            return next(self.data, None)

    pre = out_path + ".pre.onnx"
    quant_pre_process(model_path, pre, skip_symbolic_shape=True)
    quantize_static(
        pre,
        out_path,
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        reduce_range=reduce_range,
    )
    os.remove(pre)


def output_step(model, out_name):
    """Scale of the DequantizeLinear producing a graph output (one quantization step)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts = {}
    for n in model.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    n = producers.get(out_name)
    while n is not None and n.op_type in ("Identity", "Reshape", "Flatten", "Squeeze"):
        n = producers.get(n.input[0])
    if n is None or n.op_type != "DequantizeLinear":
        return None
    s = inits.get(n.input[1], consts.get(n.input[1]))
    return None if s is None else float(np.max(s))


def lowered(args, path):
    """With --lower: the model after `lnc opt -p lower-cpu` (QDQ frames become integer
    QLinearConv), else the model itself."""
    if not args.lower:
        return path
    out = path[: -len(".onnx")] + ".lowered.lnir"
    r = subprocess.run([args.lnc, "opt", "-p", "lower-cpu", path, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        print(json.dumps({"model": path, "status": "lnc-error", "stderr": r.stderr.strip()}))
        sys.exit(2)
    return out


def per_layer(args, model_path, feeds):
    """Teacher-forced check of every quantized tensor of a QDQ model.

    For each QuantizeLinear output, the sub-graph from the quantized tensors it reads (or the
    graph inputs) to it is extracted; lnc runs it on ORT's values of those tensors, and the
    result must be within one quantization step of ORT's. Returns (layers, worst steps, fails).
    """
    from onnx import shape_inference, utils

    inferred = os.path.join(args.workdir, "model_qdq_inferred.onnx")
    onnx.save(shape_inference.infer_shapes(onnx.load(model_path)), inferred)
    model = onnx.load(inferred)
    inits = {t.name for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    graph_inputs = {i.name for i in model.graph.input}
    qouts = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    qset = set(qouts)

    full = onnx.load(model_path)
    for q in qouts:
        full.graph.output.append(onnx.ValueInfoProto(name=q))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(full.SerializeToString(), so, providers=["CPUExecutionProvider"])
    vals = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    vals.update(feeds)

    layers, worst, fails = 0, 0, []
    ldir = os.path.join(args.workdir, "layers")
    os.makedirs(ldir, exist_ok=True)
    for i, q in enumerate(qouts):
        boundary, seen, stack = set(), set(), list(producer[q].input)
        while stack:
            t = stack.pop()
            if not t or t in seen or t in inits:
                continue
            seen.add(t)
            if t in qset or t in graph_inputs:
                boundary.add(t)
                continue
            n = producer.get(t)
            if n is not None:
                stack.extend(n.input)
        if not boundary:
            continue
        sub = os.path.join(ldir, f"layer_{i}.onnx")
        utils.extract_model(inferred, sub, sorted(boundary), [q], check_model=False)
        cmd = [args.lnc, "run", lowered(args, sub)]
        for j, b in enumerate(sorted(boundary)):
            bp = os.path.join(ldir, f"layer_{i}_in{j}.npy")
            np.save(bp, vals[b])
            cmd += ["--input", f"{b}={bp}"]
        op = os.path.join(ldir, f"layer_{i}_out.npy")
        cmd += ["--output", op]
        r = subprocess.run(cmd, capture_output=True, text=True)
        layers += 1
        if r.returncode != 0:
            fails.append(f"{q}: lnc error: {r.stderr.strip()}")
            continue
        got = np.load(op).astype(np.int64)
        want = vals[q].astype(np.int64)
        d = int(np.max(np.abs(got - want))) if want.size else 0
        worst = max(worst, d)
        if d > 1:
            fails.append(f"{q}: {d} steps")
    return layers, worst, fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lnc", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qdq", action="store_true")
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument(
        "--per-layer",
        action="store_true",
        help="with --qdq: also check every quantized tensor teacher-forced (within one step)",
    )
    ap.add_argument(
        "--reduce-range",
        action="store_true",
        help="with --qdq: quantize weights to 7 bits (quantize_static reduce_range=True)",
    )
    ap.add_argument(
        "--ort-fused",
        action="store_true",
        help="with --qdq: run ORT with all graph optimisations (its fused integer QLinearConv "
        "kernels; exact only with --reduce-range, as its AVX2 u8s8 kernel saturates on 8-bit weights)",
    )
    ap.add_argument(
        "--lower",
        action="store_true",
        help="run lnc on the model after `lnc opt -p lower-cpu` (with --qdq: the integer lowering)",
    )
    ap.add_argument(
        "--qdq-steps",
        type=float,
        default=1.0,
        help="allowed output difference in quantization steps (deep 224x224 models accumulate "
        "rare rounding flips of intermediate layers, see the module doc)",
    )
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    model_path = args.model
    specs = input_specs(onnx.load(model_path))
    if args.qdq:
        qpath = os.path.join(args.workdir, "model_qdq.onnx")
        quantize(model_path, qpath, specs, args.seed, args.per_channel, args.reduce_range)
        model_path = qpath
    model = onnx.load(model_path)

    feeds = make_inputs(specs, args.seed)
    in_paths = []
    for i, (name, _) in enumerate(specs):
        p = os.path.join(args.workdir, f"input_{i}.npy")
        np.save(p, feeds[name])
        in_paths.append(p)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if args.qdq and not args.ort_fused:
        # With graph optimisations ORT fuses DQ->Conv->Q into its u8s8 integer kernels, whose
        # AVX2 path saturates int16 pair sums (off by many steps); the unfused graph is the
        # QDQ model's defined meaning.
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    ref = sess.run(None, feeds)

    out_names = [o.name for o in model.graph.output]
    out_paths = [os.path.join(args.workdir, f"lnc_output_{i}.npy") for i in range(len(out_names))]
    cmd = [args.lnc, "run", lowered(args, model_path)]
    for p in in_paths:
        cmd += ["--input", p]
    for p in out_paths:
        cmd += ["--output", p]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(json.dumps({"model": args.model, "qdq": args.qdq, "status": "lnc-error", "stderr": r.stderr.strip()}))
        sys.exit(2)

    worst = {"model": args.model, "qdq": args.qdq, "status": "ok", "outputs": []}
    ok = True
    for name, p, want in zip(out_names, out_paths, ref):
        got = np.load(p)
        if got.shape != want.shape:
            ok = False
            worst["outputs"].append({"name": name, "error": f"shape {got.shape} vs {want.shape}"})
            continue
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if want.size else 0.0
        ref_max = float(np.max(np.abs(want))) if want.size else 0.0
        if args.qdq:
            step = output_step(model, name)
            tol = (step if step is not None else 1e-4 * ref_max) * args.qdq_steps * 1.0001 + 1e-6
        else:
            step = None
            tol = 1e-4 * ref_max + 1e-6
        good = diff <= tol and np.all(np.isfinite(got) == np.isfinite(want))
        ok &= bool(good)
        entry = {"name": name, "max_abs_diff": diff, "max_abs_ref": ref_max, "tol": tol, "quant_step": step, "ok": bool(good)}
        if step:
            d = np.abs(got.astype(np.float64) - want.astype(np.float64)) / step
            entry["frac_exact"] = float(np.mean(d < 0.01))
            entry["frac_within_1_step"] = float(np.mean(d < 1.01))
        worst["outputs"].append(entry)
    if args.qdq and args.per_layer:
        layers, steps, fails = per_layer(args, model_path, feeds)
        worst["per_layer"] = {"layers": layers, "worst_steps": steps, "failures": fails[:10]}
        ok &= not fails and layers > 0
    if not ok:
        worst["status"] = "mismatch"
    print(json.dumps(worst))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
