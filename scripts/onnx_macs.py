#!/usr/bin/env python3
"""Independent MAC count of an ONNX model's Conv/ConvTranspose/Gemm/MatMul nodes.

    onnx_macs.py MODEL.onnx   ->  prints the total as an integer

Uses onnx's own shape inference, so it checks `lnc inspect --json`'s `macs` from outside.
"""
import sys

import numpy as np
import onnx
from onnx import shape_inference


def main():
    m = shape_inference.infer_shapes(onnx.load(sys.argv[1]))
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
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
