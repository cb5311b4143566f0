#!/usr/bin/env python3
"""Golden forward values for Pretext's tensor ops, checked by GoldenTests.swift.

This script generates golden_ops.json (next to it); do not edit that file by hand.
Regenerate it from the package root with:

    python3 Tests/AutogradTests/Fixtures/make_golden.py

Only NumPy (and the standard library's math.erf) is needed. Inputs are drawn as float32
from a fixed seed, so the output is the same on every run. Each reference is computed
in float64 from those float32 inputs, following PyTorch's definition of the op, and is
then rounded to float32. Numbers are written as the shortest decimal that reads back as
the same float32.

File layout:
    {"format": 1, "seed": …, "families": {family: [case, …], …}}
    case = {"name": unique, "op": op key, "inputs": {name: tensor},
            "params": {…op options…}, "expected": {name: tensor}}
    tensor = {"shape": [Int], "data": [numbers, row-major]}
Integer tensors (gather/scatter indices, argmax results) use the same form with integer
data.
"""

import math
import os

import numpy as np

SEED = 20250611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_ops.json")

rng = np.random.default_rng(SEED)
families = {}
names = set()


# MARK: - Inputs


def uniform(shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def normal(shape, mean=0.0, std=1.0):
    return (mean + std * rng.standard_normal(size=shape)).astype(np.float32)


def distinct(shape, low=-2.0, high=2.0):
    """Values with no ties (for max / argmax / max pool, where ties pick an index)."""
    n = int(np.prod(shape))
    grid = np.linspace(low, high, n)
    return rng.permutation(grid).reshape(shape).astype(np.float32)


def away_from_zero(shape, low=0.25, high=2.0):
    mag = rng.uniform(low, high, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


def f64(a):
    return np.asarray(a, dtype=np.float64)


# MARK: - Cases


def add(family, name, op, inputs, expected, **params):
    assert name not in names, f"duplicate case name {name}"
    names.add(name)
    for k, v in inputs.items():
        assert v.dtype == np.float32, f"{name}: input {k} is {v.dtype}"
    case = {
        "name": name,
        "op": op,
        "inputs": {k: tensor(v) for k, v in inputs.items()},
        "params": {k: param(v) for k, v in params.items() if v is not None},
        "expected": {k: tensor(v) for k, v in expected.items()},
    }
    families.setdefault(family, []).append(case)


def tensor(a):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return {"shape": list(a.shape), "data": IntList(a.reshape(-1).tolist())}
    a32 = a.astype(np.float32)
    assert np.all(np.isfinite(a32)), "non-finite golden value"
    return {"shape": list(a.shape), "data": FloatList(a32.reshape(-1))}


def param(v):
    if isinstance(v, np.ndarray) and v.dtype.kind in "iu":
        return tensor(v)
    if isinstance(v, float):
        assert float(np.float32(v)) == v, f"parameter {v} is not a float32 value"
    return v


class FloatList(list):
    pass


class IntList(list):
    pass


def fmt_float(x):
    """Shortest decimal that rounds back to the same float32 (also via float64 first)."""
    s = str(np.float32(x))
    assert np.float32(float(s)).tobytes() == np.float32(x).tobytes(), s
    return s


def dump(obj):
    if isinstance(obj, FloatList):
        return "[" + ",".join(fmt_float(x) for x in obj) + "]"
    if isinstance(obj, (IntList, list, tuple)):
        return "[" + ",".join(dump(x) for x in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ",".join(f'"{k}":{dump(v)}' for k, v in obj.items()) + "}"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (int, np.integer)):
        return str(int(obj))
    if isinstance(obj, float):
        return fmt_float(obj)
    if isinstance(obj, str):
        assert '"' not in obj and "\\" not in obj
        return f'"{obj}"'
    raise TypeError(type(obj))


def shape_str(s):
    return "[" + ",".join(str(d) for d in s) + "]"


# MARK: - Elementwise

EW = "elementwise"


def binary_cases():
    ops = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide,
        "maximum": np.maximum,
    }
    shapes = {
        "add": [([2, 3, 4], [4]), ([3, 4], [3, 4]), ([2, 1, 4], [3, 1]), ([], [5]), ([4], [2, 3, 4])],
        "sub": [([5], []), ([4, 1], [1, 5]), ([2, 3], [2, 3]), ([3, 1, 2], [3, 4, 1])],
        "mul": [([2, 1, 4], [3, 1]), ([3, 4], [3, 4]), ([2, 3, 4], [2, 1, 4]), ([1], [2, 2])],
        "div": [([2, 3, 4], [3, 1]), ([4], [2, 3, 4]), ([3, 5], [3, 5]), ([2, 3], [])],
        "maximum": [([2, 3, 4], [4]), ([3, 4], [3, 4]), ([2, 1, 3], [4, 1])],
    }
    for op, pairs in shapes.items():
        for sa, sb in pairs:
            a = normal(sa)
            b = away_from_zero(sb) if op == "div" else normal(sb)
            if op == "maximum" and sa == sb:
                b.reshape(-1)[::3] = a.reshape(-1)[::3]  # ties
            ref = ops[op](f64(a), f64(b))
            add(EW, f"{op} {shape_str(sa)},{shape_str(sb)}", op, {"a": a, "b": b}, {"out": ref})


def pow_cases():
    a = uniform([3, 4], 0.2, 3.0)
    b = uniform([4], -2.0, 2.5)
    add(EW, "pow positive base [3,4]^[4]", "pow", {"a": a, "b": b},
        {"out": np.power(f64(a), f64(b))})
    a = np.array([[-2.0, -1.5, 0.0, 3.0], [1.25, -0.5, 2.0, -3.0]], np.float32)
    b = np.array([[3.0], [2.0]], np.float32)
    add(EW, "pow negative base integer exponent [2,4]^[2,1]", "pow", {"a": a, "b": b},
        {"out": np.power(f64(a), f64(b))})
    for p, lo, hi in [(2.0, -3.0, 3.0), (3.0, -2.0, 2.0), (0.5, 0.0, 4.0), (-1.5, 0.3, 3.0),
                      (1.75, 0.1, 2.5)]:
        x = uniform([2, 5], lo, hi)
        add(EW, f"pow scalar p={p}", "pow_scalar", {"x": x}, {"out": np.power(f64(x), p)},
            scalar=p)


def scalar_cases():
    specs = [
        ("add_scalar", 1.5, lambda x, s: x + s),
        ("scalar_add", -0.75, lambda x, s: s + x),
        ("sub_scalar", 2.25, lambda x, s: x - s),
        ("rsub_scalar", 1.0, lambda x, s: s - x),
        ("mul_scalar", -3.5, lambda x, s: x * s),
        ("scalar_mul", 0.125, lambda x, s: s * x),
        ("div_scalar", 3.0, lambda x, s: x / s),
        ("div_scalar", -0.4000000059604645, lambda x, s: x / s),  # float32(-0.4)
    ]
    for op, s, f in specs:
        x = normal([3, 4])
        add(EW, f"{op} s={s}", op, {"x": x}, {"out": f(f64(x), s)}, scalar=s)
    x = normal([2, 3])
    add(EW, "neg [2,3]", "neg", {"x": x}, {"out": -f64(x)})


def unary_cases():
    erf = np.vectorize(math.erf)
    c = math.sqrt(2 / math.pi)
    specs = [
        ("exp", lambda: uniform([40], -20, 20), np.exp),
        ("exp", lambda: uniform([3, 5], -1, 1), np.exp),
        ("log", lambda: np.exp(uniform([30], -7, 5)).astype(np.float32), np.log),
        ("sqrt", lambda: uniform([20], 0, 50), np.sqrt),
        ("rsqrt", lambda: uniform([20], 0.01, 50), lambda x: 1 / np.sqrt(x)),
        ("abs", lambda: np.append(normal([19]), np.float32(0)), np.abs),
        ("tanh", lambda: uniform([40], -6, 6), np.tanh),
        ("tanh", lambda: uniform([20], -0.7, 0.7), np.tanh),  # the polynomial branch
        ("sigmoid", lambda: uniform([40], -12, 12), lambda x: 1 / (1 + np.exp(-x))),
        ("relu", lambda: np.append(normal([19]), np.float32(0)), lambda x: np.maximum(x, 0)),
        ("gelu_erf", lambda: uniform([50], -6, 6), lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
        ("gelu_tanh", lambda: uniform([50], -6, 6),
         lambda x: 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3)))),
    ]
    counts = {}
    for op, make, f in specs:
        x = make()
        counts[op] = counts.get(op, 0) + 1
        add(EW, f"{op} #{counts[op]} {shape_str(x.shape)}", op, {"x": x}, {"out": f(f64(x))})
    x = uniform([4, 5], -2, 2)
    for lo, hi in [(-1.0, 0.5), (-0.25, None), (None, 0.75)]:
        add(EW, f"clamp min={lo} max={hi}", "clamp", {"x": x},
            {"out": np.clip(f64(x), -np.inf if lo is None else lo, np.inf if hi is None else hi)},
            min=lo, max=hi)


# MARK: - Reductions

RD = "reductions"


def reduction_cases():
    x3 = normal([3, 4, 5])
    x2 = normal([4, 6])
    for x, axes, keep in [(x3, None, False), (x3, None, True), (x3, [1], False), (x3, [-1], True),
                          (x3, [0, 2], False), (x3, [2, 0], True), (x2, [0], False),
                          (x2, [0, 1], False)]:
        ax = None if axes is None else tuple(axes)
        tag = f"{shape_str(x.shape)} axes={axes} keep={keep}"
        add(RD, f"sum {tag}", "sum", {"x": x}, {"out": np.sum(f64(x), axis=ax, keepdims=keep)},
            axes=axes, keepDims=keep)
        add(RD, f"mean {tag}", "mean", {"x": x}, {"out": np.mean(f64(x), axis=ax, keepdims=keep)},
            axes=axes, keepDims=keep)
    xv = normal([3, 4, 5], mean=2.0, std=1.5)
    for axes, corr, keep in [(None, 1, False), (None, 0, False), ([-1], 1, False), ([-1], 0, True),
                             ([0, 2], 1, True), ([1], 0, False)]:
        ax = None if axes is None else tuple(axes)
        add(RD, f"variance axes={axes} correction={corr} keep={keep}", "variance", {"x": xv},
            {"out": np.var(f64(xv), axis=ax, ddof=corr, keepdims=keep)},
            axes=axes, correction=corr, keepDims=keep)
    xm = distinct([3, 4, 5])
    for axis, keep in [(0, False), (1, True), (-1, False), (2, True)]:
        add(RD, f"max axis={axis} keep={keep}", "max", {"x": xm},
            {"out": np.max(f64(xm), axis=axis, keepdims=keep)}, axis=axis, keepDims=keep)
    add(RD, "max all [3,4,5]", "max_all", {"x": xm}, {"out": np.max(f64(xm)).reshape([])})
    for axis in [0, 1, -1]:
        add(RD, f"argmax axis={axis}", "argmax", {"x": xm},
            {"out": np.argmax(xm, axis=axis).astype(np.int64)}, axis=axis)
    ties = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [-1, 5, 0, 5]], np.float32)
    add(RD, "argmax ties pick the first", "argmax", {"x": ties},
        {"out": np.argmax(ties, axis=1).astype(np.int64)}, axis=1)
    add(RD, "argmax ties axis=0", "argmax", {"x": ties},
        {"out": np.argmax(ties, axis=0).astype(np.int64)}, axis=0)


# MARK: - Movement

MV = "movement"


def torch_gather(x, axis, index):
    out = np.empty(index.shape, x.dtype)
    for pos in np.ndindex(*index.shape):
        src = list(pos)
        src[axis] = index[pos]
        out[pos] = x[tuple(src)]
    return out


def torch_scatter(base, axis, index, source):
    out = base.copy()
    for pos in np.ndindex(*index.shape):
        dst = list(pos)
        dst[axis] = index[pos]
        out[tuple(dst)] = source[pos]
    return out


def movement_cases():
    x = normal([2, 3, 4])
    for shape in [[4, 6], [6, -1], [24], [2, 1, 12]]:
        out = f64(x).reshape(shape)
        add(MV, f"reshape {shape_str(shape)}", "reshape", {"x": x}, {"out": out}, shape=shape)
    for order in [[2, 0, 1], [1, 0, 2], [0, 2, 1]]:
        add(MV, f"permute {order}", "permute", {"x": x}, {"out": f64(x).transpose(order)},
            order=order)
    x4 = normal([2, 3, 2, 4])
    add(MV, "permute rank 4 [1,3,0,2]", "permute", {"x": x4},
        {"out": f64(x4).transpose([1, 3, 0, 2])}, order=[1, 3, 0, 2])
    add(MV, "transpose default (last two)", "transpose", {"x": x}, {"out": np.swapaxes(f64(x), -2, -1)})
    add(MV, "transpose 0,2", "transpose", {"x": x}, {"out": np.swapaxes(f64(x), 0, 2)}, axes=[0, 2])
    add(MV, "transpose -3,-2", "transpose", {"x": x4}, {"out": np.swapaxes(f64(x4), -3, -2)},
        axes=[-3, -2])

    xs = normal([3, 4, 5])
    for axis, lo, hi in [(1, 1, 3), (-1, 2, 5), (0, 0, 1), (2, 0, 5)]:
        sl = [slice(None)] * 3
        sl[axis] = slice(lo, hi)
        add(MV, f"slice axis={axis} {lo}..<{hi}", "slice", {"x": xs}, {"out": f64(xs)[tuple(sl)]},
            axis=axis, range=[lo, hi])

    for shapes, axis in [([[2, 3], [1, 3], [3, 3]], 0), ([[2, 2, 3], [2, 4, 3]], 1),
                         ([[2, 3, 1], [2, 3, 2], [2, 3, 3]], -1)]:
        parts = [normal(s) for s in shapes]
        add(MV, f"concat axis={axis} " + "+".join(shape_str(s) for s in shapes), "concat",
            {f"x{i}": p for i, p in enumerate(parts)},
            {"out": np.concatenate([f64(p) for p in parts], axis=axis)}, axis=axis)
    parts = [normal([2, 3]) for _ in range(3)]
    for axis in [0, 1, -1, 2]:
        add(MV, f"stack 3x[2,3] axis={axis}", "stack", {f"x{i}": p for i, p in enumerate(parts)},
            {"out": np.stack([f64(p) for p in parts], axis=axis)}, axis=axis)

    xg = normal([3, 4, 5])
    for axis, ishape in [(0, [2, 4, 5]), (1, [3, 6, 2]), (-1, [2, 3, 7]), (2, [3, 4, 5])]:
        a = axis % 3
        index = rng.integers(0, xg.shape[a], size=ishape)
        add(MV, f"gather axis={axis} index {shape_str(ishape)}", "gather", {"x": xg},
            {"out": torch_gather(f64(xg), a, index)}, axis=axis, index=index.astype(np.int64))

    base = normal([4, 5])
    # Distinct target rows per column, so the result does not depend on write order.
    idx = np.stack([rng.permutation(4)[:3] for _ in range(5)], axis=1)  # [3, 5]
    src = normal([3, 5])
    add(MV, "scatter axis=0 index [3,5]", "scatter", {"x": base, "source": src},
        {"out": torch_scatter(f64(base), 0, idx, f64(src))}, axis=0, index=idx.astype(np.int64))
    idx = np.stack([rng.permutation(5)[:2] for _ in range(3)], axis=0)  # [3, 2]
    src = normal([3, 2])
    add(MV, "scatter axis=1 index [3,2]", "scatter", {"x": base, "source": src},
        {"out": torch_scatter(f64(base), 1, idx, f64(src))}, axis=1, index=idx.astype(np.int64))
    base3 = normal([2, 3, 4])
    idx = np.stack([np.stack([rng.permutation(4)[:2] for _ in range(2)]) for _ in range(2)])
    src = normal([2, 2, 2])
    add(MV, "scatter axis=-1 index [2,2,2]", "scatter", {"x": base3, "source": src},
        {"out": torch_scatter(f64(base3), 2, idx, f64(src))}, axis=-1,
        index=idx.astype(np.int64))

    xp = normal([3, 4])
    for widths, value in [([[1, 2]], 0.0), ([[0, 1], [2, 0]], -1.5), ([[2, 2], [1, 3]], 0.25)]:
        full = widths + [[0, 0]] * (2 - len(widths))
        add(MV, f"pad {widths} value={value}", "pad", {"x": xp},
            {"out": np.pad(f64(xp), full, constant_values=value)}, widths=widths, value=value)
    xp3 = normal([2, 3, 2])
    add(MV, "pad rank 3, two leading axes", "pad", {"x": xp3},
        {"out": np.pad(f64(xp3), [[1, 0], [0, 2], [0, 0]], constant_values=0.5)},
        widths=[[1, 0], [0, 2]], value=0.5)

    for src_shape, target in [([3, 1], [2, 3, 4]), ([4], [3, 4]), ([1, 1], [2, 5]), ([], [2, 3]),
                              ([2, 1, 3], [2, 4, 3])]:
        xe = normal(src_shape)
        add(MV, f"expand {shape_str(src_shape)} to {shape_str(target)}", "expand", {"x": xe},
            {"out": np.broadcast_to(f64(xe), target)}, shape=target)

    xu = normal([2, 3])
    for axis in [0, 1, -1, 2]:
        add(MV, f"unsqueeze {axis}", "unsqueeze", {"x": xu},
            {"out": np.expand_dims(f64(xu), axis)}, axis=axis)
    xq = normal([2, 1, 3, 1])
    for axis in [1, -1, 3]:
        add(MV, f"squeeze {axis}", "squeeze", {"x": xq}, {"out": np.squeeze(f64(xq), axis)},
            axis=axis)
    xf = normal([2, 3, 4, 2])
    for start, end in [(None, None), (1, None), (1, 2), (0, 1), (-2, -1)]:
        s = 0 if start is None else start % 4
        e = 3 if end is None else end % 4
        shape = list(xf.shape[:s]) + [int(np.prod(xf.shape[s:e + 1]))] + list(xf.shape[e + 1:])
        add(MV, f"flatten from={start} through={end}", "flatten", {"x": xf},
            {"out": f64(xf).reshape(shape)}, **{"from": start, "through": end})


# MARK: - Matrix products

MM = "matmul"


def matmul_cases():
    def mt(x, t):
        return np.swapaxes(x, -1, -2) if t else x

    specs = [
        ([3, 5], [5, 4], False, False),
        ([5, 3], [5, 4], True, False),
        ([3, 5], [4, 5], False, True),
        ([5, 3], [4, 5], True, True),
        ([1, 7], [7, 1], False, False),
        ([2, 3, 5], [2, 5, 4], False, False),
        ([2, 5, 3], [2, 5, 4], True, False),
        ([2, 3, 5], [2, 4, 5], False, True),
        ([3, 5, 3], [3, 4, 5], True, True),
        ([2, 3, 5], [5, 4], False, False),
        ([2, 3, 5], [4, 5], False, True),
        ([2, 5, 3], [5, 4], True, False),
        ([2, 2, 3, 4], [2, 2, 4, 3], False, False),
    ]
    for sa, sb, ta, tb in specs:
        a = normal(sa)
        b = normal(sb)
        ref = np.matmul(mt(f64(a), ta), mt(f64(b), tb))
        add(MM, f"matmul {shape_str(sa)}{'^T' if ta else ''} x {shape_str(sb)}{'^T' if tb else ''}",
            "matmul", {"a": a, "b": b}, {"out": ref}, transposeA=ta, transposeB=tb)
    for xs, out_f, bias in [([4, 5], 3, True), ([4, 5], 3, False), ([2, 3, 6], 4, True),
                            ([5], 2, True)]:
        x = normal(xs)
        w = normal([out_f, xs[-1]], std=0.5)
        inputs = {"x": x, "weight": w}
        ref = f64(x) @ f64(w).T
        if bias:
            b = normal([out_f])
            inputs["bias"] = b
            ref = ref + f64(b)
        add(MM, f"linear {shape_str(xs)} -> {out_f} bias={bias}", "linear", inputs, {"out": ref})


# MARK: - Convolution

CV = "conv"


def conv2d_ref(x, w, b, stride, padding, dilation, groups):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def conv_cases():
    # (name, x shape, weight shape, stride, padding, dilation, groups, bias, tuple form)
    specs = [
        ("3x3 pad 1", [2, 4, 6, 6], [5, 4, 3, 3], 1, 1, 1, 1, True, False),
        ("3x3 pad 1 no bias", [1, 3, 5, 5], [2, 3, 3, 3], 1, 1, 1, 1, False, False),
        ("3x3 no padding (defaults)", [1, 2, 5, 6], [3, 2, 3, 3], None, None, None, None, False, False),
        ("3x3 stride 2 pad 1", [1, 3, 7, 7], [4, 3, 3, 3], 2, 1, 1, 1, False, False),
        ("3x3 stride 2 pad 0 even input", [2, 2, 6, 6], [3, 2, 3, 3], 2, 0, 1, 1, True, False),
        ("3x3 dilation 2 pad 2", [1, 2, 7, 7], [3, 2, 3, 3], 1, 2, 2, 1, True, False),
        ("3x3 dilation 2 no padding", [1, 2, 7, 8], [2, 2, 3, 3], 1, 0, 2, 1, False, False),
        ("3x3 groups 2 pad 1", [2, 4, 5, 5], [6, 2, 3, 3], 1, 1, 1, 2, True, False),
        ("3x3 depthwise groups 3", [1, 3, 5, 5], [3, 1, 3, 3], 1, 1, 1, 3, False, False),
        ("1x1 with bias", [2, 4, 3, 3], [5, 4, 1, 1], 1, 0, 1, 1, True, False),
        ("1x1 no bias", [1, 6, 4, 2], [3, 6, 1, 1], 1, 0, 1, 1, False, False),
        ("1x1 stride 2", [1, 3, 5, 5], [2, 3, 1, 1], 2, 0, 1, 1, True, False),
        ("4x4 stride 4 patchify", [2, 3, 8, 8], [6, 3, 4, 4], 4, 0, 1, 1, True, False),
        ("rect stride (1,2) padding (0,1)", [1, 2, 5, 6], [3, 2, 2, 3], (1, 2), (0, 1), None, 1,
         True, True),
        ("rect stride (2,1) padding (1,2) dilation (1,2) groups 2", [1, 4, 6, 7], [4, 2, 3, 2],
         (2, 1), (1, 2), (1, 2), 2, False, True),
    ]
    for name, xs, ws, st, pd, dl, gr, bias, tup in specs:
        x = normal(xs)
        w = normal(ws, std=0.4)
        b = normal([ws[0]]) if bias else None

        def pair(v):
            return (1, 1) if v is None else (tuple(v) if isinstance(v, tuple) else (v, v))

        stride = pair(st)
        padding = (0, 0) if pd is None else pair(pd)
        dilation = pair(dl)
        groups = 1 if gr is None else gr
        ref = conv2d_ref(f64(x), f64(w), None if b is None else f64(b), stride, padding, dilation,
                         groups)
        inputs = {"x": x, "weight": w}
        if b is not None:
            inputs["bias"] = b
        if st is None and pd is None and dl is None and gr is None:
            params = {}
        else:
            params = dict(stride=list(stride), padding=list(padding), dilation=list(dilation),
                          groups=groups, tupleForm=tup)
        add(CV, f"conv2d {name}", "conv2d", inputs, {"out": ref}, **params)


# MARK: - Pooling

PL = "pool"


def pool_windows(x, kernel, stride, padding, pad_value):
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kernel) // stride + 1
    ow = (w + 2 * padding - kernel) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=pad_value)
    win = np.empty((n, c, oh, ow, kernel * kernel))
    for i in range(oh):
        for j in range(ow):
            win[:, :, i, j] = xp[:, :, i * stride:i * stride + kernel,
                                 j * stride:j * stride + kernel].reshape(n, c, -1)
    return win


def adaptive_avg_ref(x, oh, ow):
    n, c, h, w = x.shape
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


def pool_cases():
    specs = [
        ("kernel 2", [2, 3, 6, 6], 2, None, 0),
        ("kernel 2 odd input 5x5", [1, 2, 5, 5], 2, None, 0),
        ("kernel 3 stride 2 pad 1", [1, 2, 7, 7], 3, 2, 1),
        ("kernel 3 stride 1 pad 1", [1, 2, 4, 5], 3, 1, 1),
        ("kernel 3 stride 1", [2, 1, 5, 5], 3, 1, 0),
        ("kernel 2 stride 1 pad 1", [1, 1, 3, 4], 2, 1, 1),
    ]
    for name, shape, k, s, p in specs:
        stride = k if s is None else s
        x = distinct(shape)
        ref = pool_windows(f64(x), k, stride, p, -np.inf).max(axis=-1)
        add(PL, f"max_pool2d {name}", "max_pool2d", {"x": x}, {"out": ref}, kernel=k, stride=s,
            padding=p if p else None)
        x = normal(shape)
        ref = pool_windows(f64(x), k, stride, p, 0.0).mean(axis=-1)  # count_include_pad
        add(PL, f"avg_pool2d {name}", "avg_pool2d", {"x": x}, {"out": ref}, kernel=k, stride=s,
            padding=p if p else None)
    x = (-np.abs(distinct([1, 2, 4, 4])) - 1).astype(np.float32)
    ref = pool_windows(f64(x), 3, 2, 1, -np.inf).max(axis=-1)
    add(PL, "max_pool2d all-negative input, padding is -inf", "max_pool2d", {"x": x}, {"out": ref},
        kernel=3, stride=2, padding=1)
    for shape, out in [([2, 3, 6, 6], (3, 3)), ([1, 2, 5, 5], (3, 3)), ([1, 2, 5, 7], (3, 4)),
                       ([2, 2, 4, 3], (1, 1)), ([1, 1, 3, 4], (5, 2)), ([1, 2, 7, 7], (7, 7))]:
        x = normal(shape)
        add(PL, f"adaptive_avg_pool2d {shape_str(shape)} to {out}", "adaptive_avg_pool2d",
            {"x": x}, {"out": adaptive_avg_ref(f64(x), *out)}, outputSize=list(out))


# MARK: - Normalization

NM = "normalization"


def batch_norm_cases():
    # (name, x shape, affine, running stats, training, momentum, eps)
    specs = [
        ("train [N,C,H,W] affine", [4, 3, 3, 3], True, True, True, None, None),
        ("train [N,C] affine", [6, 5], True, True, True, None, None),
        ("train [N,C,H,W] no affine", [2, 3, 4, 4], False, True, True, None, None),
        ("train [N,C] momentum 0.25 eps 1e-3", [5, 4], True, True, True, 0.25, 0.001),
        ("train without running stats", [3, 2, 2, 3], True, False, True, None, None),
        ("eval [N,C,H,W] affine", [2, 3, 3, 3], True, True, False, None, None),
        ("eval [N,C] affine", [4, 5], True, True, False, None, None),
        ("eval [N,C,H,W] no affine", [2, 3, 2, 2], False, True, False, None, 0.001),
    ]
    for name, shape, affine, running, training, momentum, eps in specs:
        c = shape[1]
        x = normal(shape, mean=0.5, std=2.0)
        x = (x + normal([1, c] + [1] * (len(shape) - 2), std=1.0)).astype(np.float32)
        inputs = {"x": x}
        w = b = rm = rv = None
        if affine:
            w = uniform([c], 0.5, 1.5)
            b = normal([c], std=0.5)
            inputs.update(weight=w, bias=b)
        if running:
            rm = normal([c], std=0.5)
            rv = uniform([c], 0.5, 2.0)
            inputs.update(runningMean=rm, runningVar=rv)
        m = 0.1 if momentum is None else momentum
        e = 1e-5 if eps is None else eps
        axes = (0,) + tuple(range(2, len(shape)))
        bshape = [1, c] + [1] * (len(shape) - 2)
        xd = f64(x)
        expected = {}
        if training:
            mean = xd.mean(axis=axes)
            var = xd.var(axis=axes)
            count = xd.size // c
            if running:
                expected["runningMean"] = (1 - m) * f64(rm) + m * mean
                expected["runningVar"] = (1 - m) * f64(rv) + m * var * count / (count - 1)
        else:
            mean = f64(rm)
            var = f64(rv)
        out = (xd - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + f64(np.float32(e)))
        if affine:
            out = out * f64(w).reshape(bshape) + f64(b).reshape(bshape)
        expected = {"out": out, **expected}
        add(NM, f"batch_norm {name}", "batch_norm", inputs, expected, training=training,
            momentum=momentum, eps=None if eps is None else float(np.float32(eps)))


def layer_norm_cases():
    for name, shape, affine, eps in [("affine [2,3,8]", [2, 3, 8], True, None),
                                     ("no affine [4,6]", [4, 6], False, None),
                                     ("affine [5,16] eps 1e-3", [5, 16], True, 0.001),
                                     ("no affine [7]", [7], False, None)]:
        x = normal(shape, mean=1.0, std=3.0)
        d = shape[-1]
        xd = f64(x)
        e = 1e-5 if eps is None else eps
        out = (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True)
                                                          + f64(np.float32(e)))
        inputs = {"x": x}
        if affine:
            w = uniform([d], 0.5, 1.5)
            b = normal([d], std=0.5)
            inputs.update(weight=w, bias=b)
            out = out * f64(w) + f64(b)
        add(NM, f"layer_norm {name}", "layer_norm", inputs, {"out": out},
            eps=None if eps is None else float(np.float32(eps)))


# MARK: - Softmax and losses

SL = "softmaxLosses"


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def softmax_cases():
    for shape, axis, scale in [([3, 5], -1, 1.0), ([2, 4, 3], 1, 1.0), ([4, 3], 0, 1.0),
                               ([2, 3, 6], -1, 1.0), ([2, 7], -1, 30.0), ([2, 3, 2, 4], 2, 1.0)]:
        x = (normal(shape) * np.float32(scale)).astype(np.float32)
        tag = f"{shape_str(shape)} axis={axis}" + (f" large logits x{scale:g}" if scale != 1 else "")
        lsm = log_softmax(f64(x), axis)
        add(SL, f"softmax {tag}", "softmax", {"x": x}, {"out": np.exp(lsm)}, axis=axis)
        add(SL, f"log_softmax {tag}", "log_softmax", {"x": x}, {"out": lsm}, axis=axis)


def cross_entropy_ref(logits, targets, smoothing, ignore):
    lsm = log_softmax(logits, 1)
    c = logits.shape[1]
    total, count = 0.0, 0
    for i, t in enumerate(targets):
        if ignore is not None and t == ignore:
            continue
        total += (1 - smoothing) * -lsm[i, t] + smoothing * -lsm[i].sum() / c
        count += 1
    return np.array(total / count)


def loss_cases():
    specs = [
        ("plain", 6, 5, 0.0, None, []),
        ("label smoothing 0.1", 6, 5, 0.1, None, []),
        ("label smoothing 0.3", 4, 7, 0.3, None, []),
        ("ignore_index -100", 6, 4, 0.0, -100, [1, 4]),
        ("ignore_index -100 + smoothing 0.2", 6, 4, 0.2, -100, [0, 3, 5]),
        ("ignore_index 2 (a class index)", 8, 3, 0.0, 2, []),
        ("single row", 1, 10, 0.0, None, []),
    ]
    for name, n, c, eps, ignore, ignored_rows in specs:
        logits = normal([n, c], std=2.0)
        targets = [int(t) for t in rng.integers(0, c, size=n)]
        if ignore == 2:
            targets[1] = targets[5] = 2
            targets[0] = 0
        for r in ignored_rows:
            targets[r] = ignore
        eps32 = float(np.float32(eps))
        ref = cross_entropy_ref(f64(logits), targets, eps32, ignore)
        add(SL, f"cross_entropy {name}", "cross_entropy", {"logits": logits}, {"out": ref},
            targets=targets, labelSmoothing=eps32 if eps else None, ignoreIndex=ignore)
    for shape in [[3, 4], [10], [2, 3, 2]]:
        a = normal(shape)
        b = normal(shape)
        add(SL, f"mse_loss {shape_str(shape)}", "mse_loss", {"a": a, "b": b},
            {"out": np.array(np.mean((f64(a) - f64(b)) ** 2))})

    def l2n(x, axis, eps):
        norm = np.sqrt((x * x).sum(axis=axis, keepdims=True))
        return x / np.maximum(norm, eps)

    x = normal([4, 5])
    x[2] = 0  # a zero row: 0 / eps = 0
    add(SL, "l2_normalize [4,5] axis=-1 with a zero row", "l2_normalize", {"x": x},
        {"out": l2n(f64(x), -1, 1e-12)}, axis=-1)
    x = normal([4, 5])
    add(SL, "l2_normalize [4,5] axis=0", "l2_normalize", {"x": x}, {"out": l2n(f64(x), 0, 1e-12)},
        axis=0)
    x = normal([2, 3, 4])
    add(SL, "l2_normalize [2,3,4] axis=1", "l2_normalize", {"x": x},
        {"out": l2n(f64(x), 1, 1e-12)}, axis=1)
    x = normal([3, 4])
    x[1] *= np.float32(0.05)  # norm below eps: divided by eps instead
    add(SL, "l2_normalize eps=0.5 (one row below eps)", "l2_normalize", {"x": x},
        {"out": l2n(f64(x), -1, 0.5)}, axis=-1, eps=0.5)


# MARK: - Attention

AT = "attention"


def attention_ref(q, k, v, scale):
    s = np.einsum("bhqd,bhkd->bhqk", q, k) * scale
    p = np.exp(log_softmax(s, -1))
    return np.einsum("bhqk,bhkd->bhqd", p, v)


def attention_cases():
    for b, h, tq, tk, d, scale in [(2, 2, 4, 4, 8, None), (1, 2, 3, 5, 4, None),
                                   (2, 1, 6, 2, 3, None), (1, 3, 4, 4, 4, 0.30000001192092896),
                                   (1, 1, 5, 5, 16, 1.0)]:
        q = normal([b, h, tq, d])
        k = normal([b, h, tk, d])
        v = normal([b, h, tk, d])
        sc = 1 / math.sqrt(d) if scale is None else scale
        ref = attention_ref(f64(q), f64(k), f64(v), sc)
        add(AT, f"sdpa B={b} H={h} Tq={tq} Tk={tk} D={d} scale={scale}", "sdpa",
            {"q": q, "k": k, "v": v}, {"out": ref}, scale=scale)
    for b, t, h, d, scale in [(2, 5, 2, 4, None), (1, 4, 3, 2, None), (2, 3, 1, 6, None),
                              (1, 6, 2, 3, 0.5)]:
        qkv = normal([b, t, 3 * h * d])
        parts = f64(qkv).reshape(b, t, 3, h, d).transpose(2, 0, 3, 1, 4)
        sc = 1 / math.sqrt(d) if scale is None else scale
        o = attention_ref(parts[0], parts[1], parts[2], sc)  # [B, H, T, D]
        ref = o.transpose(0, 2, 1, 3).reshape(b, t, h * d)
        add(AT, f"packed B={b} T={t} H={h} D={d} scale={scale}", "packed_attention",
            {"qkv": qkv}, {"out": ref}, heads=h, scale=scale)


def main():
    binary_cases()
    pow_cases()
    scalar_cases()
    unary_cases()
    reduction_cases()
    movement_cases()
    matmul_cases()
    conv_cases()
    pool_cases()
    batch_norm_cases()
    layer_norm_cases()
    softmax_cases()
    loss_cases()
    attention_cases()
    lines = ['{"format":1,', f'"seed":{SEED},', '"families":{']
    fams = list(families.items())
    for fi, (family, cases) in enumerate(fams):
        lines.append(f'"{family}":[')
        for ci, case in enumerate(cases):
            lines.append(dump(case) + ("," if ci + 1 < len(cases) else ""))
        lines.append("]" + ("," if fi + 1 < len(fams) else ""))
    lines.append("}}")
    text = "\n".join(lines) + "\n"
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    counts = ", ".join(f"{k} {len(v)}" for k, v in families.items())
    print(f"wrote {OUT}: {sum(len(v) for v in families.values())} cases ({counts}), "
          f"{len(text.encode())} bytes")


if __name__ == "__main__":
    main()
