"""Write the trained network as an ONNX graph that onnxruntime (or OpenCV's DNN) runs.

The graph is built node by node from the weights with the ``onnx`` package: the network is a
fixed U-Net (:mod:`.net`), so its graph is a handful of Conv / Relu / MaxPool / ConvTranspose /
Add nodes with symbolic batch, height and width. (jax2onnx 0.17 was tried first: it wrote NCHW
max-pooling with a 4-D kernel that onnxruntime rejects, and could not relate the symbolic
sizes through pooling and upsampling.) :func:`check_parity` compares the file with the JAX
function it came from.

Two rewrites make the same function cheaper on onnxruntime's CPU (one core: about 30 % less time
than the literal graph, see ``benchmarks/learned.py``) and keep every trained tensor in the file
as it was trained (``<layer>.w`` / ``.b``, which fine-tuning reads back):

* The decoder's ``conv3x3(concat(up2(h), skip))`` is ``conv3x3(skip) + conv3x3(up2(h))``, and
  the second term never needs the upsampled map: each output pixel of a 3x3 conv of a
  nearest-upsampled map reads only two distinct low-resolution rows (and columns), so the four
  output phases (row, column parity) are 2x2 convs of ``h`` itself, 4/9 of the multiply-adds.
  One 2x2 Conv (pads 1) computes the four phases as channels and a grouped one-hot
  ConvTranspose (stride 2) interleaves them: no upsampled copy, no concatenation. The 2x2
  kernels are computed from the 3x3 weights inside the graph (constant nodes that onnxruntime
  folds once, at load).
* The softmax over the classes is written out (ReduceMax, Sub, Exp, ReduceSum, Div):
  onnxruntime's Softmax over axis 1 of NCHW transposes and runs per pixel: a sixth of the run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from roomkit.learned.net import poolings

OPSET = 17
INPUT = "ink"
OUTPUT = "probabilities"

#: ``PHASE_TAPS[a, p, k]``: tap ``k`` of a 3x3 kernel row falls on tap ``p`` of the 2x2 kernel of
#: output rows of parity ``a`` (low rows i-1, i for even rows 2i; i, i+1 for odd rows 2i+1); the
#: same for columns. The 2x2 kernel of output channel o, phase (a, b) is
#: ``PHASE_TAPS[a] @ w[o] @ PHASE_TAPS[b].T`` per input channel; with pads 1 its conv puts that
#: phase's pixel (2i + a, 2j + b) at (i + a, j + b).
PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)


def interleave_kernel(channels: int) -> np.ndarray:
    """The one-hot ConvTranspose kernel (group ``channels``, stride 2, pads 1) that moves phase
    ``4 * o + 2 * a + b`` at ``[i + a, j + b]`` to ``[o, 2i + a, 2j + b]``."""
    k = np.zeros((channels * 4, 1, 2, 2), np.float32)
    for o in range(channels):
        for a in (0, 1):
            for b in (0, 1):
                k[4 * o + 2 * a + b, 0, 1 - a, 1 - b] = 1.0
    return k


def build_graph(params: dict[str, Any], n_classes: int, *, doc: str = "") -> onnx.ModelProto:
    """The ONNX model of :func:`roomkit.learned.net.probabilities` for these weights."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(value: np.ndarray, name: str) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def weights(name: str) -> tuple[str, str]:
        w = const(np.asarray(params[name]["w"], np.float32), f"{name}.w")
        return w, const(np.asarray(params[name]["b"], np.float32), f"{name}.b")

    def conv(x: str, name: str, w: str, b: str | None, k: int) -> str:
        return node("Conv", [x, w] + ([b] if b else []), f"{name}.conv", kernel_shape=[k, k], pads=[k // 2] * 4)

    def conv_relu(x: str, name: str) -> str:
        w, b = weights(name)
        return node("Relu", [conv(x, name, w, b, 3)], f"{name}.relu")

    depth = poolings(params)
    # PHASE_TAPS as two matrices: rows (a*2 + p, k) and columns (l, b*2 + q).
    const(PHASE_TAPS.reshape(4, 3), "phase.rows")
    const(np.ascontiguousarray(PHASE_TAPS.reshape(4, 3).T), "phase.cols")
    h, skips = INPUT, []
    for i in range(depth + 1):
        h = conv_relu(conv_relu(h, f"enc{i}a"), f"enc{i}b")
        if i < depth:
            skips.append((h, int(np.shape(params[f"enc{i}b"]["w"])[0])))
            h = node("MaxPool", [h], f"pool{i}", kernel_shape=[2, 2], strides=[2, 2])
    for i in reversed(range(depth)):
        name, (skip, c_skip) = f"dec{i}a", skips[i]
        w, b = weights(name)
        c_out, c_in = (int(n) for n in np.shape(params[name]["w"])[:2])
        c_up = c_in - c_skip
        sizes = const(np.array([c_up, c_skip], np.int64), f"{name}.split")
        nodes.append(helper.make_node("Split", [w, sizes], [f"{name}.w_up", f"{name}.w_skip"], name=f"{name}.split", axis=1))
        # The 2x2 phase kernels from the 3x3 weights (PHASE_TAPS), folded by onnxruntime at load:
        # (o, i, k, l) @ cols -> (o, i, k, bq); rows @ -> (o, i, ap, bq);
        # -> (o, i, a, p, b, q) -> (o, a, b, i, p, q) -> (4 * o + 2a + b, i, p, q)
        k = node("MatMul", ["phase.rows", node("MatMul", [f"{name}.w_up", "phase.cols"], f"{name}.w_cols")], f"{name}.w_rows")
        k = node("Reshape", [k, const(np.array([c_out, c_up, 2, 2, 2, 2], np.int64), f"{name}.taps6")], f"{name}.w_taps6")
        k = node("Transpose", [k], f"{name}.w_phases6", perm=[0, 2, 4, 1, 3, 5])
        k = node("Reshape", [k, const(np.array([c_out * 4, c_up, 2, 2], np.int64), f"{name}.taps4")], f"{name}.w_phases")
        phases = node("Conv", [h, k], f"{name}.phases", kernel_shape=[2, 2], pads=[1, 1, 1, 1])
        up = node("ConvTranspose", [phases, const(interleave_kernel(c_out), f"{name}.interleave")], f"{name}.up",
                  kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], group=c_out)
        both = node("Add", [conv(skip, name, f"{name}.w_skip", b, 3), up], f"{name}.sum")
        h = conv_relu(node("Relu", [both], f"{name}.relu"), f"dec{i}b")
    w, b = weights("head")
    logits = conv(h, "head", w, b, 1)
    top = node("ReduceMax", [logits], "softmax.max", axes=[1], keepdims=1)
    e = node("Exp", [node("Sub", [logits, top], "softmax.shift")], "softmax.exp")
    total = node("ReduceSum", [e, const(np.array([1], np.int64), "softmax.axes")], "softmax.sum", keepdims=1)
    node("Div", [e, total], OUTPUT)
    graph = helper.make_graph(
        nodes, "roomkit_unet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", n_classes, "height", "width"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="roomkit")
    model.ir_version = 8  # readable by onnxruntime >= 1.10 and OpenCV's DNN
    model.doc_string = doc
    onnx.checker.check_model(model)
    return model


def write_onnx(params: dict[str, Any], n_classes: int, path: str | Path, *, doc: str = "") -> Path:
    path = Path(path)
    onnx.save(build_graph(params, n_classes, doc=doc), str(path))
    return path


def read_params(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """The trained tensors of an exported file (initializers ``<layer>.w`` / ``<layer>.b``), as
    :func:`build_graph` takes them: files of every graph version keep them under these names."""
    params: dict[str, dict[str, np.ndarray]] = {}
    for t in onnx.load(str(path)).graph.initializer:
        layer, _, kind = t.name.rpartition(".")
        if kind in ("w", "b") and layer:
            params.setdefault(layer, {})[kind] = numpy_helper.to_array(t)
    return params


def reexport(path: str | Path) -> Path:
    """Rewrite a model file as the current :func:`build_graph` writes its own weights (same
    tensors, same output up to float rounding), keeping its doc string."""
    path = Path(path)
    old = onnx.load(str(path))
    n_classes = int(old.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
    return write_onnx(read_params(path), n_classes, path, doc=old.doc_string)


def check_parity(params: dict[str, Any], path: str | Path, x: np.ndarray) -> float:
    """Max absolute difference between the ONNX file's and JAX's probabilities on ``x``."""
    import jax
    import onnxruntime as ort

    from roomkit.learned.net import probabilities

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT], {INPUT: x.astype(np.float32)})[0]
    want = np.asarray(jax.jit(probabilities)(params, x.astype(np.float32)))
    return float(np.abs(got - want).max())


if __name__ == "__main__":  # python -m roomkit.learned.export MODEL.onnx...: rewrite in the current graph
    import sys

    for arg in sys.argv[1:]:
        print(reexport(arg))
