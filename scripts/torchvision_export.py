#!/usr/bin/env python3
"""Export torchvision models the way users do, and strip them to committed skeletons.

    torchvision_export.py export OUTDIR [--size 224]    (needs torch + torchvision)
    torchvision_export.py hydrate SKELETON OUT.onnx [--seed S]

`export` writes, for each model, `torch.onnx.export` at opset 17 with constant folding (the
TorchScript exporter, as most deployed models were made) of torchvision's architecture with
random init and recalibrated BatchNorm statistics, as OUTDIR/NAME.onnx, plus a skeleton
OUTDIR/NAME.skeleton.onnx: the same graph with every large float initializer's data removed
(dims and dtype kept). Skeletons are small enough to commit; `hydrate` refills them with seeded
weights (BatchNorm variances positive) so tests need neither torch nor downloaded weights.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

MODELS = ["mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet0_5", "efficientnet_b0"]
KEEP_BELOW = 16  # initializers with fewer elements (shape constants, scalars) are kept verbatim


def export(outdir, size):
    import torch
    import torchvision

    os.makedirs(outdir, exist_ok=True)
    for name in MODELS:
        torch.manual_seed(0)
        m = getattr(torchvision.models, name)(weights=None)
        # Recalibrate BN running statistics on random data so activations stay alive.
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None
        m.train()
        with torch.no_grad():
            for _ in range(4):
                m(torch.randn(8, 3, size, size))
        m.eval()
        x = torch.randn(1, 3, size, size)
        path = os.path.join(outdir, f"{name}.onnx")
        torch.onnx.export(m, (x,), path, opset_version=17, do_constant_folding=True,
                          input_names=["input"], output_names=["output"], dynamo=False)
        model = onnx.load(path)
        skeleton(model)
        onnx.save(model, os.path.join(outdir, f"{name}.skeleton.onnx"))
        print(name, os.path.getsize(path))


def skeleton(model):
    for t in model.graph.initializer:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if t.data_type == onnx.TensorProto.FLOAT and n >= KEEP_BELOW:
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.doc_string = "lnc-skeleton"


def hydrate(src, dst, seed):
    model = onnx.load(src)
    rng = np.random.default_rng(seed)
    bn_role = {}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            for i, inp in enumerate(node.input[1:5], start=1):
                bn_role[inp] = i
    for t in model.graph.initializer:
        if t.doc_string != "lnc-skeleton":
            continue
        shape = tuple(t.dims)
        role = bn_role.get(t.name)
        if role == 1:
            a = rng.uniform(0.5, 1.5, shape)
        elif role == 4:
            a = rng.uniform(0.5, 2.0, shape)
        elif role in (2, 3):
            a = rng.normal(0.0, 0.1, shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            a = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:
            a = rng.normal(0.0, 0.1, shape)
        new = numpy_helper.from_array(a.astype(np.float32), t.name)
        t.CopyFrom(new)
    onnx.save(model, dst)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("outdir")
    e.add_argument("--size", type=int, default=224)
    h = sub.add_parser("hydrate")
    h.add_argument("skeleton")
    h.add_argument("out")
    h.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.cmd == "export":
        export(a.outdir, a.size)
    else:
        hydrate(a.skeleton, a.out, a.seed)


if __name__ == "__main__":
    sys.exit(main())
