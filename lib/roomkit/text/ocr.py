"""Reading a plan's text: RapidOCR (PaddleOCR's PP-OCR models in ONNX) on one CPU thread.

The engine and its models install from PyPI (``rapidocr`` ships the PP-OCRv6 small detection
and recognition models inside its wheel, ``onnxruntime`` runs them); nothing is downloaded at
run time and no system package is needed. The engine is built once per process, lazily, and
shared (calls are serialized by a lock: one ONNX session per process, one thread each, so a
worker never takes more than the one core it was sized for).

Text is read once per plan, at a resolution capped by :data:`MAX_SIDE` (listing text is legible
at 600–1000 px; larger plans are read downscaled, which keeps 2-MP plans within time).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

#: Longest side the text is read at (px). Small plans are read as they are.
MAX_SIDE = 1024
#: Recognition: each batch of crops is padded to its widest crop (crops sorted by width), and
#: no narrower than REC_MIN_WIDTH px at the model's 48 px height. RapidOCR's default pads every
#: crop to 320 px in batches of 6: most plan text ("BATH", "3.2 x 4.1") is a third of that, so
#: two thirds of the recognizer's work was padding. Measured on the real development plans:
#: recognition CPU 708 → 400 ms per plan in the pipeline, type accuracy 0.855 → 0.853; on 60
#: synthetic plans 0.968 → 0.973.
REC_MIN_WIDTH = 48
REC_BATCH = 4
#: Lines the recognizer is less sure of than this are dropped.
MIN_SCORE = 0.5
#: Plans whose paper is darker than this (mean of B, G, R) are read inverted.
DARK_PAPER = 110

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_engine: Any = None
_engine_error: str | None = None


@dataclass(frozen=True)
class TextLine:
    """One line of text found on the plan; ``box`` is its quadrilateral in original pixels."""

    text: str
    box: tuple[tuple[float, float], ...]
    score: float

    @property
    def center(self) -> tuple[float, float]:
        xs = [p[0] for p in self.box]
        ys = [p[1] for p in self.box]
        return (sum(xs) / len(xs), sum(ys) / len(ys))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        xs = [p[0] for p in self.box]
        ys = [p[1] for p in self.box]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def height(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return min(x1 - x0, y1 - y0)  # rotated (vertical) lines: the short side


def available() -> bool:
    """Whether an OCR engine can be built in this environment."""
    return _get_engine() is not None


def _get_engine() -> Any:
    global _engine, _engine_error
    if _engine is not None or _engine_error is not None:
        return _engine
    with _lock:
        if _engine is None and _engine_error is None:
            try:
                from rapidocr import RapidOCR  # lazy: ~0.3 s import, onnxruntime underneath

                _engine = RapidOCR(
                    params={
                        "Global.log_level": "error",
                        "Global.use_cls": False,  # 180° text is rare on plans; saves a model run
                        "Det.limit_type": "max",
                        "Det.limit_side_len": MAX_SIDE,
                        "Rec.rec_batch_num": REC_BATCH,
                        "Rec.rec_img_shape": [3, 48, REC_MIN_WIDTH],
                        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    }
                )
            except Exception as exc:  # missing package, broken model: no text, never a failure
                _engine_error = f"{type(exc).__name__}: {exc}"
                _log.warning("OCR unavailable, rooms get no names: %s", _engine_error)
    return _engine


def _as_gray(image: np.ndarray) -> np.ndarray:
    img = image
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return img


def read_scale(height: int, width: int, max_side: int = MAX_SIDE) -> float:
    """The factor a plan of this size is read at (≤ 1)."""
    return min(1.0, max_side / float(max(height, width, 1)))


def read_text(
    image: np.ndarray, *, max_side: int = MAX_SIDE, region: np.ndarray | None = None
) -> tuple[TextLine, ...]:
    """All text lines on a plan image (H×W gray, or H×W×3 BGR read as grey), boxes in its
    pixel grid.

    The plan is reduced to ``max_side`` first and only then painted, inverted and expanded to
    the three channels the models take, so a 120-MP scan costs a 1-MP copy, not three full ones.
    ``region``: a mask of the plan (at its size or reduced to any size of the same aspect, such
    as :func:`read_scale`'s); text outside it is not read (it is painted over with the paper's
    grey first: dimension strings and titles around a building cost recognition time).
    Returns ``()`` when no engine is available or the engine fails on this image: unreadable
    text is never an error.
    """
    engine = _get_engine()
    if engine is None or image is None or image.size == 0:
        return ()
    h, w = image.shape[:2]
    scale = read_scale(h, w, max_side)
    gray = _as_gray(image)
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    else:
        gray = gray.copy()
    paper = int(np.median(gray.reshape(-1)[:: max(1, gray.size // 4096)]))
    if region is not None and region.ndim == 2 and region.size:
        if region.shape != gray.shape:
            region = cv2.resize(region.astype(np.uint8), (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
        gray[region == 0] = paper
    if paper < DARK_PAPER:
        gray = 255 - gray  # light ink on dark paper (blueprints): the models read dark on light
    img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    try:
        with _lock:
            out = engine(img)
    except Exception as exc:  # a model error on one odd image must not fail the request
        _log.warning("OCR failed on a %dx%d image: %s", w, h, exc)
        return ()
    if out is None or getattr(out, "txts", None) is None:
        return ()
    lines = []
    for box, text, score in zip(out.boxes, out.txts, out.scores):
        text = str(text).strip()
        if not text or float(score) < MIN_SCORE:
            continue
        pts = tuple((float(x) / scale, float(y) / scale) for x, y in np.asarray(box).reshape(-1, 2))
        lines.append(TextLine(text=text, box=pts, score=float(score)))
    return tuple(lines)
