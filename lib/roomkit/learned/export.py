"""Write the trained network as an ONNX graph that onnxruntime (or OpenCV's DNN) runs.

The graph is built node by node from the weights with the ``onnx`` package: the network is a
fixed U-Net (:mod:`.net`), so its graph is a handful of Conv / Relu / MaxPool / Resize / Concat
nodes with symbolic batch, height and width. (jax2onnx 0.17 was tried first: it wrote NCHW
max-pooling with a 4-D kernel that onnxruntime rejects, and could not relate the symbolic
sizes through pooling and upsampling.) :func:`check_parity` compares the file with the JAX
function it came from.
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


def build_graph(params: dict[str, Any], n_classes: int, *, doc: str = "") -> onnx.ModelProto:
    """The ONNX model of :func:`roomkit.learned.net.probabilities` for these weights."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def conv(x: str, name: str, relu: bool = True) -> str:
        w = np.asarray(params[name]["w"], np.float32)
        b = np.asarray(params[name]["b"], np.float32)
        inits.append(numpy_helper.from_array(w, f"{name}.w"))
        inits.append(numpy_helper.from_array(b, f"{name}.b"))
        k = int(w.shape[-1])
        out = f"{name}.conv"
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [out], name=name,
                                      kernel_shape=[k, k], pads=[k // 2] * 4))
        if not relu:
            return out
        nodes.append(helper.make_node("Relu", [out], [f"{name}.relu"], name=f"{name}.relu"))
        return f"{name}.relu"

    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up.scales"))
    depth = poolings(params)
    h, skips = INPUT, []
    for i in range(depth + 1):
        h = conv(conv(h, f"enc{i}a"), f"enc{i}b")
        if i < depth:
            skips.append(h)
            nodes.append(helper.make_node("MaxPool", [h], [f"pool{i}"], name=f"pool{i}", kernel_shape=[2, 2], strides=[2, 2]))
            h = f"pool{i}"
    for i in reversed(range(depth)):
        nodes.append(helper.make_node("Resize", [h, "", "up.scales"], [f"up{i}"], name=f"up{i}", mode="nearest",
                                      nearest_mode="floor", coordinate_transformation_mode="asymmetric"))
        nodes.append(helper.make_node("Concat", [f"up{i}", skips[i]], [f"cat{i}"], name=f"cat{i}", axis=1))
        h = conv(conv(f"cat{i}", f"dec{i}a"), f"dec{i}b")
    logits = conv(h, "head", relu=False)
    nodes.append(helper.make_node("Softmax", [logits], [OUTPUT], name="softmax", axis=1))
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


def check_parity(params: dict[str, Any], path: str | Path, x: np.ndarray) -> float:
    """Max absolute difference between the ONNX file's and JAX's probabilities on ``x``."""
    import jax
    import onnxruntime as ort

    from roomkit.learned.net import probabilities

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT], {INPUT: x.astype(np.float32)})[0]
    want = np.asarray(jax.jit(probabilities)(params, x.astype(np.float32)))
    return float(np.abs(got - want).max())
