"""Augmentation that carries synthetic drawings toward real scans and listings.

Geometry (flips, quarter turns) moves image and targets together; the photometric part (paper
and ink levels, stroke weight, blur, noise, JPEG) changes the image only.
"""
from __future__ import annotations

import cv2
import numpy as np


def augment(gray: np.ndarray, target: np.ndarray, rng: np.random.Generator,
            strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A randomly transformed copy of a (gray uint8, target uint8) crop; ``strength`` 0 = none."""
    k = int(rng.integers(4))
    gray, target = np.rot90(gray, k), np.rot90(target, k)
    if rng.random() < 0.5:
        gray, target = gray[:, ::-1], target[:, ::-1]
    gray = np.ascontiguousarray(gray)
    target = np.ascontiguousarray(target)
    if strength <= 0:
        return gray, target
    g = gray
    r = rng.random()
    if r < 0.15 * strength:  # heavier strokes
        g = cv2.erode(g, np.ones((2, 2), np.uint8))
    elif r < 0.25 * strength:  # lighter strokes
        g = cv2.dilate(g, np.ones((2, 2), np.uint8))
    f = g.astype(np.float32)
    if rng.random() < 0.6 * strength:  # paper and ink levels
        paper = rng.uniform(200, 255)
        ink = rng.uniform(0, 110)
        f = ink + (paper - ink) * f / 255.0
    if rng.random() < 0.4 * strength:
        f = cv2.GaussianBlur(f, (0, 0), float(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.3 * strength:
        f = f + rng.normal(0, rng.uniform(2, 10), f.shape).astype(np.float32)
    g = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.5 * strength:
        q = int(rng.integers(25, 95))
        ok, buf = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            g = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return g, target
