#!/usr/bin/env python3
"""Make a QDQ (int8) example model with ONNX Runtime's static quantizer.

    make_qdq_example.py IN.onnx OUT.onnx [--seed S] [--per-channel] [--reduce-range]

Calibrates on 8 seeded standard-normal inputs (the same recipe as scripts/ort_compare.py:
uint8 activations, int8 weights, QDQ format). Used once to make
examples/models/mobilenet_v2_tiny_qdq.onnx from examples/models/mobilenet_v2_tiny.onnx;
needs onnx and onnxruntime (e.g. /work/venv/bin/python or .venv/bin/python).
"""
import argparse
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ort_compare import input_specs, quantize  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--reduce-range", action="store_true")
    a = ap.parse_args()
    quantize(a.src, a.dst, input_specs(onnx.load(a.src)), a.seed, a.per_channel, a.reduce_range)


if __name__ == "__main__":
    main()
