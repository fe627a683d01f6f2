"""Room detection on floor-plan images (OpenCV + NumPy, no AWS imports).

Stages, one module each: :mod:`.preprocess` (gray, polarity, scale, deskew), :mod:`.walls`
(wall mask, wall thickness), :mod:`.gaps` (door openings bridged along wall lines),
:mod:`.rooms` (enclosed free space → polygons with confidence), :mod:`.pipeline` (the whole);
:mod:`.config` holds ``DetectorConfig`` (pure Python: the AWS side reads it without OpenCV).
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["detect_rooms", "detect_debug", "DebugResult"]

if TYPE_CHECKING:  # pragma: no cover
    from roomkit.detector.pipeline import DebugResult, detect_debug, detect_rooms


def __getattr__(name: str) -> Any:
    # Lazy, so that importing :mod:`.config` (pure Python, read by the AWS side) loads no OpenCV.
    if name not in __all__:
        raise AttributeError(f"module 'roomkit.detector' has no attribute {name!r}")
    value = getattr(import_module("roomkit.detector.pipeline"), name)
    globals()[name] = value
    return value
