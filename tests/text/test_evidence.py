"""The plan's text correcting the rooms (``annotate`` with ``evidence``) on drawn plans: split
regions keeping an open-plan space whole, closets parted from the named room the detector
joined them to."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from roomkit.plans.response import Detection, order_and_number
from roomkit.text.annotate import annotate
from roomkit.text.ocr import TextLine


def _line(text: str, cx: float, cy: float) -> TextLine:
    w, h = 9.0 * len(text), 16.0
    return TextLine(text, ((cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2),
                           (cx - w / 2, cy + h / 2)), 0.99)


def _rect(x0: float, y0: float, x1: float, y1: float):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _detection(img: np.ndarray, *polygons) -> Detection:
    items = [(p, float(cv2.contourArea(np.float32(p))), 0.9) for p in polygons]
    return Detection(width=img.shape[1], height=img.shape[0], rooms=order_and_number(items), processing_time_ms=1.0)


def _page(w: int = 800, h: int = 500) -> np.ndarray:
    img = np.full((h, w), 255, np.uint8)
    cv2.rectangle(img, (46, 46), (w - 46, h - 46), 0, 8)
    return img


def test_a_split_keeps_the_parts_of_an_open_plan_space_together():
    """Living room and kitchen open into each other; the bedroom beyond a narrowing is parted
    from them, the living room and kitchen stay one room."""
    img = _page(1000, 600)
    cv2.line(img, (700, 50), (700, 250), 0, 8)
    cv2.line(img, (700, 350), (700, 550), 0, 8)
    # As the detector finds it: one region, narrowing where the partition's ends stand.
    det = _detection(img, [(50, 50), (696, 50), (696, 254), (704, 254), (704, 50), (950, 50), (950, 550),
                           (704, 550), (704, 346), (696, 346), (696, 550), (50, 550)])
    lines = [_line("LIVING", 300, 150), _line("KITCHEN", 300, 450), _line("BEDROOM", 830, 300)]
    on = annotate(det, img, lines=lines, evidence=True)
    assert sorted(r.text.name for r in on.rooms) == ["BEDROOM", "LIVING / KITCHEN"]
    assert [f["code"] for f in on.flags] == ["split_by_text"]
    open_space = next(r for r in on.rooms if r.text.name == "LIVING / KITCHEN")
    assert open_space.area_px == pytest.approx(650 * 500, rel=0.03)


def _bedroom_with_closet(name: str = "BEDROOM") -> tuple[np.ndarray, Detection, list[TextLine]]:
    """A bedroom and, through a doorway in its right wall, a closet: found as one region."""
    img = _page()
    cv2.line(img, (600, 50), (600, 450), 0, 8)
    img[200:260, 594:607] = 255  # the closet's doorway
    det = _detection(img, _rect(50, 50, 750, 450))
    return img, det, [_line(name, 300, 250)]


def test_a_closet_the_detector_joined_to_a_named_bedroom_is_parted_from_it_furniture_is_not():
    img, det, lines = _bedroom_with_closet()
    assert len(annotate(det, img, lines=lines, evidence=False).rooms) == 1
    on = annotate(det, img, lines=lines, evidence=True)
    assert [f["code"] for f in on.flags] == ["carved_by_text"]
    assert len(on.rooms) == 2
    bedroom = next(r for r in on.rooms if r.text.name == "BEDROOM")
    closet = next(r for r in on.rooms if r.text.name is None)
    x0, _y0, x1, _y1 = bedroom.bbox_px
    assert x1 == pytest.approx(600, abs=8)
    assert closet.bbox_px[0] == pytest.approx(600, abs=8) and closet.area_px > 0.6 * 150 * 400
    # A wardrobe drawn as a closed box in the room, a kitchen's counter: no room to part.
    img, det, lines = _bedroom_with_closet()
    img[200:260, 594:607] = 0  # no doorway: the closet is a wardrobe drawn inside the room
    on = annotate(det, img, lines=lines, evidence=True)
    assert len(on.rooms) == 1 and on.flags == ()
    img, det, lines = _bedroom_with_closet("KITCHEN")
    on = annotate(det, img, lines=lines, evidence=True)
    assert len(on.rooms) == 1 and on.flags == ()
