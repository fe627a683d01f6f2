"""The network: a small U-Net in plain JAX (no layer library), NCHW, float32.

Training-side only (``roomkit[train]``): serving runs the exported ONNX file with onnxruntime.
Plain ``jax.lax`` keeps the exported graph (:mod:`.export`) to Conv / ConvTranspose / Relu /
MaxPool / Add and elementwise nodes that onnxruntime and OpenCV's DNN module execute.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Params = dict[str, Any]

#: Poolings in the encoder of the shipped network (receptive field ~140 px). A network has
#: ``len(channels) - 1`` poolings; inputs are padded to a multiple of ``2 ** poolings``.
DEPTH = 4


def _conv_init(rng: np.random.Generator, cin: int, cout: int, k: int = 3) -> dict[str, np.ndarray]:
    std = np.sqrt(2.0 / (cin * k * k))  # He init for ReLU
    return {"w": (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32),
            "b": np.zeros((cout,), np.float32)}


def init_params(seed: int, channels: Sequence[int], n_classes: int, in_channels: int = 1) -> Params:
    """Weights for :func:`apply`: ``channels`` per level (2 to 6 levels), deterministic per seed."""
    if not 2 <= len(channels) <= 6:
        raise ValueError(f"channels needs 2 to 6 levels, got {list(channels)}")
    depth = len(channels) - 1
    rng = np.random.default_rng(seed)
    p: Params = {}
    cin = in_channels
    for i, c in enumerate(channels):
        p[f"enc{i}a"] = _conv_init(rng, cin, c)
        p[f"enc{i}b"] = _conv_init(rng, c, c)
        cin = c
    for i in reversed(range(depth)):
        c = channels[i]
        p[f"dec{i}a"] = _conv_init(rng, cin + c, c)
        p[f"dec{i}b"] = _conv_init(rng, c, c)
        cin = c
    p["head"] = _conv_init(rng, cin, n_classes, k=1)
    return jax.tree_util.tree_map(jnp.asarray, p)


def _conv(x: jax.Array, layer: dict[str, jax.Array]) -> jax.Array:
    y = jax.lax.conv_general_dilated(
        x, layer["w"], window_strides=(1, 1), padding="SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")
    )
    return y + layer["b"][None, :, None, None]


def _pool(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def _up(x: jax.Array) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, 2, axis=2), 2, axis=3)


def apply(params: Params, x: jax.Array) -> jax.Array:
    """Logits (N, classes, H, W) for inputs (N, 1, H, W): ink = 1, paper = 0; H, W multiples of 2 ** poolings."""
    depth = poolings(params)
    skips = []
    h = x
    for i in range(depth + 1):
        h = jax.nn.relu(_conv(h, params[f"enc{i}a"]))
        h = jax.nn.relu(_conv(h, params[f"enc{i}b"]))
        if i < depth:
            skips.append(h)
            h = _pool(h)
    for i in reversed(range(depth)):
        h = jnp.concatenate([_up(h), skips[i]], axis=1)
        h = jax.nn.relu(_conv(h, params[f"dec{i}a"]))
        h = jax.nn.relu(_conv(h, params[f"dec{i}b"]))
    return _conv(h, params["head"])


def probabilities(params: Params, x: jax.Array) -> jax.Array:
    """Per-pixel class probabilities (softmax over axis 1): what the ONNX file outputs."""
    return jax.nn.softmax(apply(params, x), axis=1)


def poolings(params: Params) -> int:
    """How many times the network halves its input (levels - 1)."""
    return sum(1 for k in params if k.startswith("enc") and k.endswith("a")) - 1

