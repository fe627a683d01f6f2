"""Room detection on floor-plan images (OpenCV + NumPy, no AWS imports).

Stages, one module each: :mod:`.preprocess` (gray, polarity, scale, deskew), :mod:`.walls`
(wall mask, wall thickness), :mod:`.gaps` (door openings bridged along wall lines),
:mod:`.rooms` (enclosed free space → polygons with confidence), :mod:`.pipeline` (the whole).
"""
from roomkit.detector.pipeline import DebugResult, detect_debug, detect_rooms

__all__ = ["detect_rooms", "detect_debug", "DebugResult"]
