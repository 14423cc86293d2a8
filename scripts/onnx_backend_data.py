#!/usr/bin/env python3
"""Lay out the onnx package's backend test cases as plain directories for lnc's conformance test.

    onnx_backend_data.py OUTDIR

Writes OUTDIR/<suite>/<case>/{model.onnx, test_data_set_N/{input,output}_K.pb, meta.json} for the
suites `light`, `pytorch-converted`, `pytorch-operator` (shipped as data by the onnx package) and
`node` (generated from onnx.backend.test.case.node, one case per operator test). `light` models
get the input the onnx runner itself uses (arange(n)/n) and their shipped reference output.
Idempotent: a finished OUTDIR (with a STAMP file for this onnx version) is left alone.
"""
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def write_case(out_dir, model, data_sets, rtol=1e-3, atol=1e-7):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    for i, (inputs, outputs) in enumerate(data_sets):
        d = os.path.join(out_dir, f"test_data_set_{i}")
        os.makedirs(d, exist_ok=True)
        for kind, values, infos in (("input", inputs, model.graph.input), ("output", outputs, model.graph.output)):
            for j, v in enumerate(values):
                if isinstance(v, onnx.TensorProto):
                    data = v.SerializeToString()
                elif isinstance(v, np.ndarray) or np.isscalar(v):
                    data = numpy_helper.from_array(np.asarray(v), infos[j].name if j < len(infos) else "").SerializeToString()
                else:
                    # sequences, maps, optionals: out of scope for lnc, mark the case
                    with open(os.path.join(out_dir, "UNSUPPORTED_VALUE"), "w") as f:
                        f.write(type(v).__name__)
                    continue
                with open(os.path.join(d, f"{kind}_{j}.pb"), "wb") as f:
                    f.write(data)
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump({"rtol": rtol, "atol": atol}, f)


def main():
    out = sys.argv[1]
    stamp = os.path.join(out, "STAMP")
    want = f"onnx {onnx.__version__} v2"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return
    shutil.rmtree(out, ignore_errors=True)
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")

    # Shipped directory suites.
    for suite in ("pytorch-converted", "pytorch-operator"):
        for case in sorted(os.listdir(os.path.join(data, suite))):
            src = os.path.join(data, suite, case)
            dst = os.path.join(out, suite, case)
            shutil.copytree(src, dst)
            with open(os.path.join(dst, "meta.json"), "w") as f:
                json.dump({"rtol": 1e-3, "atol": 1e-7}, f)

    # light: model + reference output, input as the onnx runner makes it.
    light = os.path.join(data, "light")
    for fname in sorted(os.listdir(light)):
        if not fname.endswith(".onnx"):
            continue
        name = fname[: -len(".onnx")]
        model = onnx.load(os.path.join(light, fname))
        inits = {i.name for i in model.graph.initializer}
        inputs = []
        for x in model.graph.input:
            if x.name in inits:
                continue
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            inputs.append((np.arange(n).reshape(shape) / n).astype(np.float32))
        outputs = []
        for i in range(len(model.graph.output)):
            p = os.path.join(light, f"{name}_output_{i}.pb")
            t = onnx.TensorProto()
            with open(p, "rb") as f:
                t.ParseFromString(f.read())
            outputs.append(t)
        # the onnx runner compares light models with rtol=1e-3, atol=1e-7 scaled by model;
        # the reference outputs were produced by onnx's ReferenceEvaluator.
        write_case(os.path.join(out, "light", name), model, [(inputs, outputs)], rtol=1e-3, atol=1e-5)

    # node: generated operator test cases.
    from onnx.backend.test.case import node as node_cases

    for case in node_cases.collect_testcases(None):
        if case.model is None or not case.data_sets:
            continue
        write_case(os.path.join(out, "node", case.name), case.model, case.data_sets, case.rtol, case.atol)

    with open(stamp, "w") as f:
        f.write(want)


if __name__ == "__main__":
    main()
