#!/usr/bin/env python3
"""Generate the ONNX test fixtures of lnc-frontend and their expected outputs.

Run from anywhere with onnx (1.23), onnxruntime and numpy:

    /work/venv/bin/python frontend/tests/data/make_fixtures.py

Writes `*.onnx` next to this script (good models and `bad_*.onnx` malformed ones) and
`expected.rs`: deterministic inputs and the outputs ONNX Runtime (or, where it cannot run
the model, a numpy reference) computes for them. Everything is deterministic.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))
QONNX = "qonnx.custom_op.general"
CASES = []  # (model name, [(input name, array)], [(output name, array)])


def rng(seed):
    return np.random.default_rng(seed)


def vi(name, dtype, shape):
    return h.make_tensor_value_info(name, dtype, shape)


def model(nodes, inputs, outputs, inits=(), opset=13, extra_opsets=(), ir_version=None, name="g"):
    g = h.make_graph(nodes, name, inputs, outputs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)] + list(extra_opsets))
    m.producer_name = "lnc-frontend fixtures"
    if ir_version is not None:
        m.ir_version = ir_version
    return m


def save(m, name, check=True):
    if check:
        onnx.checker.check_model(m)
    data = m.SerializeToString()
    assert len(data) < 50_000, name
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(data)


def save_raw(data, name):
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(data)


def ort_run(m, feeds):
    import onnxruntime as ort

    # Without graph optimizations: ORT would fuse DQ -> Conv -> Q into its u8s8 QLinearConv,
    # whose AVX2 kernel saturates int16 pair sums (a known ORT limitation), which is not
    # the model's meaning.
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return list(zip(names, s.run(None, feeds)))


def expect(name, m, feeds, outputs=None, atol=1e-5):
    """Record a case. `atol` is the absolute tolerance: one quantization step for models
    with requantized outputs, where a conv sum within rounding noise of a tie may land on
    either neighbour depending on the accumulation order."""
    if outputs is None:
        outputs = ort_run(m, feeds)
    CASES.append((name, list(feeds.items()), outputs, atol))


def init(name, arr):
    return nh.from_array(np.asarray(arr), name)


def f32(a):
    return np.asarray(a, dtype=np.float32)


# ----- good models ---------------------------------------------------------------------


def legacy_broadcast():
    """Opset 6: Add/Mul/Sub with broadcast=1 (axis and suffix forms); initializers also
    listed as graph inputs (IR version 3)."""
    r = rng(1)
    b = f32(r.standard_normal(3))
    c = f32(r.standard_normal((2, 2)))
    d = f32(r.standard_normal((3, 2)))
    nodes = [
        h.make_node("Add", ["x", "b"], ["t0"], name="add_axis", broadcast=1, axis=1),
        h.make_node("Mul", ["t0", "c"], ["t1"], name="mul_suffix", broadcast=1),
        h.make_node("Sub", ["t1", "d"], ["t2"], name="sub_axis", broadcast=1, axis=1),
        h.make_node("Relu", ["t2"], ["y"], name="relu"),
    ]
    inputs = [vi("x", T.FLOAT, [1, 3, 2, 2]), vi("b", T.FLOAT, [3]), vi("c", T.FLOAT, [2, 2]), vi("d", T.FLOAT, [3, 2])]
    m = model(nodes, inputs, [vi("y", T.FLOAT, [1, 3, 2, 2])], [init("b", b), init("c", c), init("d", d)], opset=6, ir_version=3)
    save(m, "legacy_broadcast_opset6")
    x = f32(r.standard_normal((1, 3, 2, 2)))
    y = np.maximum((x + b.reshape(3, 1, 1)) * c - d.reshape(3, 2, 1), 0).astype(np.float32)
    expect("legacy_broadcast_opset6", m, {"x": x}, [("y", y)])


def shufflenet_split():
    """Torch-style ShuffleNetV2 unit: channel split computed from Shape -> Gather -> Div ->
    Unsqueeze -> Slice, a branch, Concat, and a channel shuffle whose Reshape target is a
    Concat of Shape-derived dims."""
    r = rng(2)
    C = 4
    w = f32(r.standard_normal((C // 2, C // 2, 1, 1)))
    nodes = [
        h.make_node("Shape", ["x"], ["shape"], name="shape"),
        h.make_node("Gather", ["shape", "one"], ["c"], name="gather_c", axis=0),
        h.make_node("Div", ["c", "two"], ["half"], name="div_half"),
        h.make_node("Unsqueeze", ["half", "ax0"], ["half1"], name="unsq_half"),
        h.make_node("Slice", ["x", "zero1", "half1", "one1"], ["left"], name="slice_left"),
        h.make_node("Slice", ["x", "half1", "big1", "one1"], ["right"], name="slice_right"),
        h.make_node("Conv", ["right", "w"], ["rc"], name="branch_conv"),
        h.make_node("Relu", ["rc"], ["rr"], name="branch_relu"),
        h.make_node("Concat", ["left", "rr"], ["cat"], name="concat", axis=1),
        # channel shuffle: reshape to [N, 2, C/2, H, W] from Shape-derived dims
        h.make_node("Shape", ["cat"], ["s2"], name="shape2"),
        h.make_node("Gather", ["s2", "zero"], ["n"], name="gather_n", axis=0),
        h.make_node("Gather", ["s2", "hw_idx"], ["hw"], name="gather_hw", axis=0),
        h.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq_n"),
        h.make_node("Concat", ["n1", "two1", "half1", "hw"], ["shp5"], name="concat_shape", axis=0),
        h.make_node("Reshape", ["cat", "shp5"], ["r5"], name="reshape5"),
        h.make_node("Transpose", ["r5"], ["t5"], name="transpose", perm=[0, 2, 1, 3, 4]),
        h.make_node("Reshape", ["t5", "shp4"], ["y"], name="reshape4"),
    ]
    inits = [
        init("one", np.array(1, np.int64)),
        init("zero", np.array(0, np.int64)),
        init("two", np.array(2, np.int64)),
        init("ax0", np.array([0], np.int64)),
        init("zero1", np.array([0], np.int64)),
        init("one1", np.array([1], np.int64)),
        init("two1", np.array([2], np.int64)),
        init("big1", np.array([2**63 - 1], np.int64)),
        init("hw_idx", np.array([2, 3], np.int64)),
        init("shp4", np.array([1, -1, 3, 3], np.int64)),
        init("w", w),
    ]
    m = model(nodes, [vi("x", T.FLOAT, ["batch", C, 3, 3])], [vi("y", T.FLOAT, ["batch", C, 3, 3])], inits, opset=13)
    save(m, "shufflenet_split")
    x = f32(r.standard_normal((1, C, 3, 3)))
    expect("shufflenet_split", m, {"x": x})


def auto_pad():
    """auto_pad SAME_UPPER / SAME_LOWER / VALID on Conv and pooling (stride 2, odd sizes)."""
    r = rng(3)
    w = f32(r.standard_normal((3, 2, 3, 3)))
    b = f32(r.standard_normal(3))
    nodes = [
        h.make_node("Conv", ["x", "w", "b"], ["c"], name="conv_same_upper", auto_pad="SAME_UPPER", strides=[2, 2]),
        h.make_node("MaxPool", ["c"], ["p"], name="pool_same_lower", auto_pad="SAME_LOWER", kernel_shape=[2, 2]),
        h.make_node("AveragePool", ["p"], ["y"], name="avg_valid", auto_pad="VALID", kernel_shape=[2, 2]),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [1, 2, 6, 5])], [vi("y", T.FLOAT, [1, 3, 2, 2])], [init("w", w), init("b", b)], opset=11)
    save(m, "auto_pad_same_upper")
    expect("auto_pad_same_upper", m, {"x": f32(r.standard_normal((1, 2, 6, 5)))})


def qdq_conv():
    """QDQ conv: quantized activations (uint8), per-channel int8 weights, int32 bias, a
    DequantizeLinear without zero point, and a requantized output."""
    r = rng(4)
    wq = r.integers(-127, 128, size=(4, 2, 3, 3)).astype(np.int8)
    ws = f32(r.uniform(0.005, 0.02, size=4))
    bq = r.integers(-500, 500, size=4).astype(np.int32)
    xs, xz = np.float32(0.02), np.uint8(128)
    bs = f32(ws * xs)
    nodes = [
        h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q_in"),
        h.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dq_in"),
        h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dq_w", axis=0),
        h.make_node("DequantizeLinear", ["bq", "bs"], ["bd"], name="dq_b", axis=0),
        h.make_node("Conv", ["xd", "wd", "bd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c"], ["cr"], name="relu"),
        h.make_node("QuantizeLinear", ["cr", "ys", "yz"], ["yq"], name="q_out"),
        h.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dq_out"),
    ]
    inits = [
        init("xs", xs), init("xz", xz), init("wq", wq), init("ws", ws), init("wz", np.zeros(4, np.int8)),
        init("bq", bq), init("bs", bs), init("ys", np.float32(0.05)), init("yz", np.uint8(0)),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [1, 2, 4, 4])], [vi("y", T.FLOAT, [1, 4, 4, 4])], inits, opset=13)
    save(m, "qdq_conv")
    expect("qdq_conv", m, {"x": f32(r.uniform(-2, 2, size=(1, 2, 4, 4)))}, atol=0.05)


def qonnx_round(y, mode):
    return {"ROUND": np.round, "FLOOR": np.floor, "CEIL": np.ceil}[mode](y)


def qonnx_quant_ref(x, scale, zeropt, bits, signed, narrow, mode):
    y = x / scale + zeropt
    lo = (-(2 ** (bits - 1)) + (1 if narrow else 0)) if signed else 0
    hi = (2 ** (bits - 1) - 1) if signed else (2**bits - 1 - (1 if narrow else 0))
    y = np.clip(y, lo, hi)
    return ((qonnx_round(y, mode) - zeropt) * scale).astype(np.float32)


def qonnx_quant():
    """QONNX: 4-bit signed Quant of the input, narrow 3-bit Quant of the weights, MatMul,
    BipolarQuant, and a Trunc."""
    r = rng(5)
    w = f32(r.standard_normal((6, 3)))
    nodes = [
        h.make_node("Quant", ["x", "xs", "zp", "b4"], ["xq"], name="quant_x", domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"),
        h.make_node("Quant", ["w", "wsc", "zp", "b3"], ["wq"], name="quant_w", domain=QONNX, signed=1, narrow=1, rounding_mode="ROUND"),
        h.make_node("MatMul", ["xq", "wq"], ["mm"], name="matmul"),
        h.make_node("Trunc", ["mm", "ts", "zp", "b8", "b4"], ["tr"], name="trunc", domain=QONNX, rounding_mode="FLOOR"),
        h.make_node("BipolarQuant", ["mm", "bs"], ["bp"], name="bipolar", domain=QONNX),
        h.make_node("Add", ["tr", "bp"], ["y"], name="add"),
    ]
    inits = [
        init("xs", np.float32(0.25)), init("zp", np.float32(0.0)), init("b4", np.float32(4.0)),
        init("w", w), init("wsc", np.float32(0.5)), init("b3", np.float32(3.0)),
        init("ts", np.float32(0.125)), init("b8", np.float32(8.0)), init("bs", np.float32(1.5)),
    ]
    m = model(nodes, [vi("x", T.FLOAT, [2, 6])], [vi("y", T.FLOAT, [2, 3])], inits, opset=13, extra_opsets=[h.make_opsetid(QONNX, 1)])
    save(m, "qonnx_quant", check=False)
    x = f32(r.uniform(-2, 2, size=(2, 6)))
    xq = qonnx_quant_ref(x, 0.25, 0.0, 4, 1, 0, "ROUND")
    wq = qonnx_quant_ref(w, 0.5, 0.0, 3, 1, 1, "ROUND")
    mm = (xq @ wq).astype(np.float32)
    t = np.round(mm / np.float32(0.125)) / 2.0 ** (8 - 4)
    tr = (np.floor(t) * np.float32(0.125)).astype(np.float32)
    bp = np.where(mm >= 0, np.float32(1.5), np.float32(-1.5)).astype(np.float32)
    expect("qonnx_quant", m, {"x": x}, [("y", (tr + bp).astype(np.float32))])


def misc_ops():
    """Opset-14 mix: 1-D conv, BatchNorm, Clip with constant inputs, Resize by sizes,
    Split by input, Pad, Flatten, Gemm, Softmax, reductions, variadic Sum/Mean/Max,
    Gather, Expand, Cast, Dropout, ConstantOfShape, HardSwish, LeakyRelu, Squeeze."""
    r = rng(6)
    C = 4
    w1 = f32(r.standard_normal((C, 2, 3)))
    bn = [f32(r.uniform(0.5, 1.5, C)), f32(r.standard_normal(C)), f32(r.standard_normal(C)), f32(r.uniform(0.5, 2, C))]
    gw = f32(r.standard_normal((5, 12)))
    gb = f32(r.standard_normal(5))
    nodes = [
        h.make_node("Conv", ["x", "w1"], ["c1"], name="conv1d", pads=[1, 1]),
        h.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn", epsilon=1e-3),
        h.make_node("Clip", ["bn", "cmin", "cmax"], ["clip"], name="clip"),
        h.make_node("Unsqueeze", ["clip", "ax2"], ["u"], name="unsq"),
        h.make_node("Resize", ["u", "", "", "sizes"], ["rs"], name="resize", mode="nearest"),
        h.make_node("Split", ["rs", "split"], ["s0", "s1"], name="split", axis=1),
        h.make_node("HardSwish", ["s0"], ["hs"], name="hswish"),
        h.make_node("LeakyRelu", ["s1"], ["lr"], name="lrelu", alpha=0.1),
        h.make_node("Sum", ["hs", "lr", "hs"], ["sum"], name="sum3"),
        h.make_node("Mean", ["hs", "lr"], ["mean"], name="mean2"),
        h.make_node("Max", ["sum", "mean"], ["mx"], name="max2"),
        h.make_node("Pad", ["mx", "pads", "pv"], ["pd"], name="pad"),
        h.make_node("ReduceMean", ["pd"], ["rm"], name="reduce_mean", axes=[2], keepdims=0),
        h.make_node("Squeeze", ["rm", "ax0"], ["sq"], name="squeeze"),
        h.make_node("Flatten", ["sq"], ["fl"], name="flatten", axis=0),
        h.make_node("Gather", ["fl", "gidx"], ["ga"], name="gather", axis=1),
        h.make_node("Gemm", ["ga", "gw", "gb"], ["gm"], name="gemm", transB=1, alpha=0.5),
        h.make_node("Dropout", ["gm"], ["dr"], name="dropout"),
        h.make_node("ConstantOfShape", ["cshape"], ["ones"], name="const_of_shape", value=nh.from_array(np.array([1.0], np.float32))),
        h.make_node("Add", ["dr", "ones"], ["ad"], name="add_ones"),
        h.make_node("Softmax", ["ad"], ["y"], name="softmax", axis=-1),
        h.make_node("ReduceSum", ["pd", "rsax"], ["y2"], name="reduce_sum", keepdims=1),
        h.make_node("Cast", ["gidx"], ["gf"], name="cast", to=T.FLOAT),
        h.make_node("Expand", ["gf", "eshape"], ["y3"], name="expand"),
    ]
    inits = [
        init("w1", w1), init("bn_s", bn[0]), init("bn_b", bn[1]), init("bn_m", bn[2]), init("bn_v", bn[3]),
        init("cmin", np.float32(-1.0)), init("cmax", np.float32(1.5)), init("ax2", np.array([2], np.int64)),
        init("sizes", np.array([1, C, 2, 10], np.int64)), init("split", np.array([2, 2], np.int64)),
        init("pads", np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64)), init("pv", np.float32(0.5)),
        init("ax0", np.array([0], np.int64)), init("gidx", np.array([0, 2, 3, 5, 7, 8, 9, 11, 1, 4, 6, 10], np.int64)),
        init("gw", gw), init("gb", gb), init("cshape", np.array([1, 5], np.int64)),
        init("rsax", np.array([1, -1], np.int64)), init("eshape", np.array([2, 12], np.int64)),
    ]
    outputs = [vi("y", T.FLOAT, [1, 5]), vi("y2", T.FLOAT, [1, 1, 3, 1]), vi("y3", T.FLOAT, [2, 12])]
    m = model(nodes, [vi("x", T.FLOAT, [1, 2, 5])], outputs, inits, opset=14)
    save(m, "misc_ops")
    expect("misc_ops", m, {"x": f32(r.standard_normal((1, 2, 5)))})


def legacy_opset9():
    """Opset 9: Upsample with a scales input, BatchNormalization-9, 2-D coerced Softmax,
    Clip with attributes, Flatten."""
    r = rng(7)
    C = 2
    bn = [f32(r.uniform(0.5, 1.5, C)), f32(r.standard_normal(C)), f32(r.standard_normal(C)), f32(r.uniform(0.5, 2, C))]
    nodes = [
        h.make_node("Upsample", ["x", "scales"], ["up"], name="upsample", mode="nearest"),
        h.make_node("BatchNormalization", ["up", "s", "b", "m", "v"], ["bn"], name="bn"),
        h.make_node("Clip", ["bn"], ["cl"], name="clip6", min=-0.5, max=0.8),
        h.make_node("Softmax", ["cl"], ["y"], name="softmax2d", axis=1),
        h.make_node("Flatten", ["cl"], ["y2"], name="flatten"),
    ]
    inits = [init("scales", f32([1, 1, 2, 2])), init("s", bn[0]), init("b", bn[1]), init("m", bn[2]), init("v", bn[3])]
    m = model(nodes, [vi("x", T.FLOAT, [1, C, 2, 3])], [vi("y", T.FLOAT, [1, C, 4, 6]), vi("y2", T.FLOAT, [1, 48])], inits, opset=9)
    save(m, "legacy_opset9")
    expect("legacy_opset9", m, {"x": f32(r.standard_normal((1, C, 2, 3)))})


def opset18_inputs():
    """Opset 18: ReduceMean axes input, Split num_outputs (uneven), Pad with axes, Resize
    linear by sizes on selected axes, Squeeze/Unsqueeze with axes inputs."""
    r = rng(8)
    nodes = [
        h.make_node("Resize", ["x", "", "", "sizes"], ["rs"], name="resize", mode="linear", axes=[2, 3], coordinate_transformation_mode="half_pixel"),
        h.make_node("Pad", ["rs", "pads", "pv", "paxes"], ["pd"], name="pad_axes"),  # W 7 -> 8
        h.make_node("Split", ["pd"], ["a", "b", "c"], name="split3", axis=3, num_outputs=3),
        h.make_node("ReduceMean", ["a", "rax"], ["ra"], name="rmean", keepdims=1),
        h.make_node("Mul", ["ra", "c"], ["y"], name="mul"),
        h.make_node("ReduceMax", ["b", "rax2"], ["rb"], name="rmax", keepdims=0),
        h.make_node("Unsqueeze", ["rb", "uax"], ["y2"], name="unsq"),
    ]
    inits = [
        init("sizes", np.array([5, 7], np.int64)), init("pads", np.array([1, 0], np.int64)),
        init("pv", np.float32(-1.0)), init("paxes", np.array([-1], np.int64)),
        init("rax", np.array([3], np.int64)), init("rax2", np.array([-1, 1], np.int64)),
        init("uax", np.array([0, -1], np.int64)),
    ]
    outputs = [vi("y", T.FLOAT, [1, 2, 5, 2]), vi("y2", T.FLOAT, [1, 1, 5, 1])]
    m = model(nodes, [vi("x", T.FLOAT, [1, 2, 3, 4])], outputs, inits, opset=18)
    save(m, "opset18_inputs")
    expect("opset18_inputs", m, {"x": f32(r.standard_normal((1, 2, 3, 4)))})


def opset21_int4():
    """Opset 21: INT4 per-channel weights through DequantizeLinear into a MatMul, and a
    QuantizeLinear/DequantizeLinear pair with an int8 zero point."""
    r = rng(9)
    w4 = r.integers(-8, 8, size=(6, 4)).astype(np.int8)
    wt = onnx.helper.make_tensor("w4", T.INT4, [6, 4], w4.reshape(-1).tolist())
    nodes = [
        h.make_node("DequantizeLinear", ["w4", "ws"], ["wd"], name="dq_w4", axis=1),
        h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q_x"),
        h.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dq_x"),
        h.make_node("MatMul", ["xd", "wd"], ["y"], name="matmul"),
    ]
    inits = [wt, init("ws", f32(r.uniform(0.05, 0.2, 4))), init("xs", np.float32(0.05)), init("xz", np.int8(-3))]
    m = model(nodes, [vi("x", T.FLOAT, [3, 6])], [vi("y", T.FLOAT, [3, 4])], inits, opset=21)
    save(m, "opset21_int4")
    expect("opset21_int4", m, {"x": f32(r.uniform(-3, 3, size=(3, 6)))}, atol=1e-4)


def qlinear_ops():
    """Opset 13 integer ops: QLinearConv (per-channel weights, int32 bias), QLinearMatMul,
    ConvInteger and MatMulInteger without zero points, with float boundaries."""
    r = rng(10)
    # 7-bit weights: ORT's u8s8 QLinearConv kernel saturates int16 pair sums beyond that.
    w = r.integers(-63, 64, size=(3, 2, 3, 3)).astype(np.int8)
    nodes = [
        h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q_x"),
        h.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["cq"], name="qconv", pads=[1, 1, 1, 1], strides=[2, 2]),
        h.make_node("ConvInteger", ["xq", "w2"], ["ci"], name="conv_int"),
        h.make_node("Cast", ["ci"], ["cf"], name="cast_ci", to=T.FLOAT),
        h.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"], name="dq_y"),
        h.make_node("Flatten", ["cq"], ["cflat"], name="flat", axis=1),
        h.make_node("QLinearMatMul", ["cflat", "ys", "yz", "mw", "ms", "mz", "os", "oz"], ["mq"], name="qmatmul"),
        h.make_node("MatMulInteger", ["cflat", "mw2"], ["mi"], name="matmul_int"),
        h.make_node("Cast", ["mi"], ["mif"], name="cast_mi", to=T.FLOAT),
        h.make_node("DequantizeLinear", ["mq", "os", "oz"], ["y2"], name="dq_m"),
        h.make_node("Add", ["mif", "y2"], ["y3"], name="add"),
        h.make_node("ReduceSum", ["cf"], ["y4"], name="rsum", keepdims=0),
    ]
    inits = [
        init("xs", np.float32(0.03)), init("xz", np.uint8(120)), init("w", w),
        init("ws", f32(r.uniform(0.002, 0.01, 3))), init("wz", np.zeros(3, np.int8)),
        init("ys", np.float32(0.04)), init("yz", np.uint8(100)), init("b", r.integers(-300, 300, 3).astype(np.int32)),
        init("w2", r.integers(0, 255, size=(2, 2, 1, 1)).astype(np.uint8)),
        init("mw", r.integers(0, 255, size=(12, 5)).astype(np.uint8)), init("ms", np.float32(0.01)), init("mz", np.uint8(128)),
        init("os", np.float32(0.2)), init("oz", np.uint8(50)),
        init("mw2", r.integers(0, 255, size=(12, 5)).astype(np.uint8)),
    ]
    outputs = [vi("y", T.FLOAT, [1, 3, 2, 2]), vi("y3", T.FLOAT, [1, 5]), vi("y4", T.FLOAT, [])]
    m = model(nodes, [vi("x", T.FLOAT, [1, 2, 4, 4])], outputs, inits, opset=13)
    save(m, "qlinear_ops")
    expect("qlinear_ops", m, {"x": f32(r.uniform(-3, 3, size=(1, 2, 4, 4)))}, atol=0.2)


def huge_constant_of_shape():
    """A 64-byte file whose ConstantOfShape claims 2^30 elements: stays an Expand of a
    scalar instead of being materialised at import."""
    nodes = [
        h.make_node("ConstantOfShape", ["shape"], ["big"], name="big", value=nh.from_array(np.array([2.0], np.float32))),
        h.make_node("ReduceMax", ["big"], ["m"], name="max_all", keepdims=0),
        h.make_node("Mul", ["x", "m"], ["y"], name="mul"),
    ]
    inits = [init("shape", np.array([1 << 15, 1 << 15], np.int64))]
    m = model(nodes, [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])], inits, opset=13)
    save(m, "huge_constant_of_shape")


# ----- malformed and unsupported models -----------------------------------------------


def relu_model(nodes, inits=(), inputs=None, outputs=None, opset=13):
    inputs = inputs if inputs is not None else [vi("x", T.FLOAT, [1, 2])]
    outputs = outputs if outputs is not None else [vi("y", T.FLOAT, [1, 2])]
    return model(nodes, inputs, outputs, inits, opset=opset)


def bad_models():
    relu = h.make_node("Relu", ["x"], ["y"], name="relu")
    # A dims list claiming 2^40 elements without data.
    t = onnx.TensorProto(name="huge", data_type=T.FLOAT, dims=[1 << 20, 1 << 20])
    save(relu_model([relu], [t]), "bad_absurd_dims", check=False)
    # A 2^30-element claim (within the element limit) without data.
    t = onnx.TensorProto(name="big", data_type=T.FLOAT, dims=[1 << 15, 1 << 15])
    save(relu_model([relu], [t]), "bad_missing_data", check=False)
    # raw_data length disagreeing with dims.
    t = onnx.TensorProto(name="w", data_type=T.FLOAT, dims=[4], raw_data=b"\0" * 12)
    save(relu_model([relu], [t]), "bad_raw_len", check=False)
    # Negative dims.
    t = onnx.TensorProto(name="neg", data_type=T.FLOAT, dims=[-2, 2], raw_data=b"")
    save(relu_model([relu], [t]), "bad_negative_dims", check=False)
    # External data.
    t = onnx.TensorProto(name="ext", data_type=T.FLOAT, dims=[2], data_location=T.EXTERNAL)
    t.external_data.add(key="location", value="weights.bin")
    save(relu_model([relu], [t]), "bad_external_data", check=False)
    # float16 initializer.
    t = nh.from_array(np.ones(2, np.float16), "half")
    save(relu_model([h.make_node("Add", ["x", "half"], ["y"], name="add")], [t]), "bad_f16_initializer", check=False)
    # A cycle: a -> b -> a.
    nodes = [h.make_node("Add", ["x", "b"], ["a"], name="cyc_a"), h.make_node("Relu", ["a"], ["b"], name="cyc_b"), h.make_node("Relu", ["a"], ["y"], name="out")]
    save(relu_model(nodes), "bad_cycle", check=False)
    # A node reading a value no one produces.
    save(relu_model([h.make_node("Add", ["x", "ghost"], ["y"], name="reads_ghost")]), "bad_dangling", check=False)
    # Two nodes producing the same output.
    nodes = [h.make_node("Relu", ["x"], ["y"], name="first"), h.make_node("Sigmoid", ["x"], ["y"], name="second")]
    save(relu_model(nodes), "bad_duplicate_output", check=False)
    # A graph output nothing produces.
    save(relu_model([relu], outputs=[vi("y", T.FLOAT, [1, 2]), vi("nowhere", T.FLOAT, [1, 2])]), "bad_missing_output", check=False)
    # Unsupported op.
    save(relu_model([h.make_node("LpNormalization", ["x"], ["y"], name="lpnorm")]), "bad_unsupported_op", check=False)
    # Unsupported attribute value: MaxPool storage_order=1.
    n = h.make_node("MaxPool", ["x"], ["y"], name="pool_so", kernel_shape=[1, 1], storage_order=1)
    save(relu_model([n], inputs=[vi("x", T.FLOAT, [1, 1, 2, 2])], outputs=[vi("y", T.FLOAT, [1, 1, 2, 2])]), "bad_storage_order", check=False)
    # MaxPool indices used.
    n = h.make_node("MaxPool", ["x"], ["y", "idx"], name="pool_idx", kernel_shape=[1, 1])
    save(relu_model([n], inputs=[vi("x", T.FLOAT, [1, 1, 2, 2])], outputs=[vi("y", T.FLOAT, [1, 1, 2, 2]), vi("idx", T.INT64, [1, 1, 2, 2])]), "bad_maxpool_indices", check=False)
    # Dropout mask used.
    n = h.make_node("Dropout", ["x"], ["y", "mask"], name="drop")
    save(relu_model([n], outputs=[vi("y", T.FLOAT, [1, 2]), vi("mask", T.BOOL, [1, 2])]), "bad_dropout_mask", check=False)
    # Cast to float16.
    save(relu_model([h.make_node("Cast", ["x"], ["y"], name="to_half", to=T.FLOAT16)]), "bad_cast_f16", check=False)
    # 3-D conv.
    n = h.make_node("Conv", ["x", "w"], ["y"], name="conv3d")
    w = nh.from_array(np.ones((1, 1, 1, 1, 1), np.float32), "w")
    save(relu_model([n], [w], inputs=[vi("x", T.FLOAT, [1, 1, 2, 2, 2])], outputs=[vi("y", T.FLOAT, [1, 1, 2, 2, 2])]), "bad_conv3d", check=False)
    # Reshape whose shape is a graph input (not constant).
    n = h.make_node("Reshape", ["x", "s"], ["y"], name="dyn_reshape")
    save(relu_model([n], inputs=[vi("x", T.FLOAT, [1, 2]), vi("s", T.INT64, [2])]), "bad_dynamic_reshape", check=False)
    # A symbolic dimension that is not the first.
    save(relu_model([relu], inputs=[vi("x", T.FLOAT, [1, "width"])]), "bad_symbolic_dim", check=False)
    # Opset 5.
    save(relu_model([relu], opset=5), "bad_opset5", check=False)
    # An unknown domain.
    save(relu_model([h.make_node("Relu", ["x"], ["y"], name="ms_relu", domain="com.microsoft")]), "bad_domain", check=False)
    # Resize cubic.
    n = h.make_node("Resize", ["x", "", "sc"], ["y"], name="cubic", mode="cubic")
    save(relu_model([n], [nh.from_array(f32([1, 1]), "sc")]), "bad_resize_cubic", check=False)
    # Unnamed unsupported node (named <op>_<index> in errors).
    save(relu_model([relu, h.make_node("Erf", ["y"], ["z"])], outputs=[vi("z", T.FLOAT, [1, 2])]), "bad_unnamed_node", check=False)


def write_expected():
    def arr(a, kind):
        flat = np.asarray(a).reshape(-1)
        if kind == "f32":
            vals = ", ".join(np.format_float_positional(np.float32(v), unique=True, trim="0") for v in flat)
        else:
            vals = ", ".join(str(int(v)) for v in flat)
        shape = ", ".join(str(d) for d in np.asarray(a).shape)
        return f"(&[{shape}], &[{vals}])"

    lines = [
        "// @generated by make_fixtures.py: inputs and expected outputs (ONNX Runtime, or a numpy",
        "// reference for models it cannot run). Do not edit.",
        "",
        "/// One fixture: model file stem, inputs and expected outputs as (shape, values).",
        "pub struct Case {",
        "    pub model: &'static str,",
        "    pub inputs: &'static [(&'static [usize], &'static [f32])],",
        "    pub outputs: &'static [(&'static str, &'static [usize], &'static [f32])],",
        "    /// Absolute tolerance (one quantization step for requantized outputs).",
        "    pub atol: f32,",
        "}",
        "",
        "pub const CASES: &[Case] = &[",
    ]
    for name, feeds, outs, atol in CASES:
        lines.append("    Case {")
        lines.append(f'        model: "{name}",')
        lines.append("        inputs: &[" + ", ".join(arr(a, "f32") for _, a in feeds) + "],")
        outs_s = []
        for oname, a in outs:
            shape_vals = arr(a, "f32")[1:-1]
            outs_s.append(f'("{oname}", {shape_vals})')
        lines.append("        outputs: &[" + ", ".join(outs_s) + "],")
        lines.append(f"        atol: {atol!r},")
        lines.append("    },")
    lines.append("];")
    with open(os.path.join(HERE, "expected.rs"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    legacy_broadcast()
    shufflenet_split()
    auto_pad()
    qdq_conv()
    qonnx_quant()
    misc_ops()
    legacy_opset9()
    opset18_inputs()
    opset21_int4()
    qlinear_ops()
    huge_constant_of_shape()
    bad_models()
    write_expected()
    print(f"wrote {len(CASES)} cases")
