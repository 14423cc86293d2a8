#!/usr/bin/env python3
"""Independent MAC count of an ONNX model's Conv/ConvTranspose/Gemm/MatMul nodes.

    onnx_macs.py MODEL.onnx   ->  prints the total as an integer

Shapes are observed by running the model once in ONNX Runtime with every compute node's input
and output exposed, so the count is independent of lnc's shape inference.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort

COMPUTE = ("Conv", "QLinearConv", "ConvInteger", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")


def observed_shapes(model):
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    names = []
    for n in model.graph.node:
        if n.op_type in COMPUTE:
            names += [v for v in (n.input[0], n.output[0]) if v not in inits]
    existing = {o.name for o in model.graph.output}
    for v in dict.fromkeys(names):
        if v not in existing:
            model.graph.output.append(onnx.ValueInfoProto(name=v))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        dt = np.float32 if "float" in i.type else np.uint8
        feeds[i.name] = np.zeros(shape, dt)
    outs = sess.run(None, feeds)
    shapes = dict(inits)
    for o, v in zip(sess.get_outputs(), outs):
        shapes[o.name] = list(v.shape)
    return shapes


def main():
    m = onnx.load(sys.argv[1])
    shapes = observed_shapes(m)
    total = 0
    for n in m.graph.node:
        if n.op_type in ("Conv", "QLinearConv", "ConvInteger"):
            w = shapes[n.input[3] if n.op_type == "QLinearConv" else n.input[1]]
            y = shapes[n.output[0]]
            total += int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            x = shapes[n.input[0]]
            w = shapes[n.input[1]]
            total += int(np.prod(x)) * int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            a = shapes[n.input[0]]
            y = shapes[n.output[0]]
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[0] if trans_a else a[1]
            total += int(np.prod(y)) * k
        elif n.op_type in ("MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shapes[n.input[0]]
            y = shapes[n.output[0]]
            total += int(np.prod(y)) * a[-1]
    print(total)


if __name__ == "__main__":
    main()
