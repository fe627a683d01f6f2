"""Reading room names, dimensions and areas from the plan's text (roomkit.text)."""
from __future__ import annotations

import pytest

from roomkit.text.parse import FT, M2_PER_FT2, parse_area, parse_dimensions
from roomkit.text.vocab import TYPES, room_type


# -- dimension strings ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,width,length,unit",
    [
        ("3.97 x 3.61", 3.97, 3.61, "m"),
        ("4.76x3.79", 4.76, 3.79, "m"),
        ("4.63× 3.52", 4.63, 3.52, "m"),  # OCR keeps the multiplication sign
        ("3.97m x 3.61m", 3.97, 3.61, "m"),
        ("(4.5m x 3.3m)", 4.5, 3.3, "m"),
        ("[4.7x2.9]", 4.7, 2.9, "m"),
        ("3,97 X 3,61", 3.97, 3.61, "m"),  # decimal commas, capital X
        ("1O.5 x 3.2O", 10.5, 3.2, "m"),  # O read for 0
        ("3970 x 3610 mm", 3.97, 3.61, "m"),
        ("13'0\" x 11'10\"", 13.0, 11 + 10 / 12, "ft"),
        ("15'7 x 12'5", 15 + 7 / 12, 12 + 5 / 12, "ft"),
        ("15’7 x 12’5", 15 + 7 / 12, 12 + 5 / 12, "ft"),  # typographic apostrophes
        ("157 x 125", 15 + 7 / 12, 12 + 5 / 12, "ft"),  # apostrophes lost by OCR
        ("911 x 1210", 9 + 11 / 12, 12 + 10 / 12, "ft"),
        ("15' 4°x9 7°", 15 + 4 / 12, 9 + 7 / 12, "ft"),  # inch marks read as degrees, a foot mark lost
        ("17'× 11'8", 17.0, 11 + 8 / 12, "ft"),
        ("15ft 7in x 12ft 5in", 15 + 7 / 12, 12 + 5 / 12, "ft"),
        ("14X17", 14.0, 17.0, "ft"),
        ("4.76 x 3.79m (15'7 x 12'5)", 4.76, 3.79, "m"),  # both printed: the first
        ("16'3 (4.95) max x 12'6 (3.81) max", 16.25, 12.5, "ft"),  # each side with its conversion
        ("24'8 (7.52) MAX × 9'2 (2.79) MASX", 24 + 8 / 12, 9 + 2 / 12, "ft"),  # as OCR reads it
        ("4.22M (13'10\") MAX x 3.10M (10'2\") MAX", 4.22, 3.10, "m"),
        ("195\"×83\"", 19 + 5 / 12, 8 + 3 / 12, "ft"),  # foot marks lost, inch marks kept
        ("68°×190\"", 6 + 8 / 12, 19.0, "ft"),
        ("1910\" x 110\"", 19 + 10 / 12, 11.0, "ft"),
        ("13' 10\" x 11' 4\"", 13 + 10 / 12, 11 + 4 / 12, "ft"),
        ("4.46.x 2.03", 4.46, 2.03, "m"),  # a stray point before the times sign
    ],
)
def test_dimension_strings_parse_to_sides_and_unit(text, width, length, unit):
    dims = parse_dimensions(text)
    assert dims is not None, text
    assert dims.unit == unit
    assert dims.width == pytest.approx(width, abs=1e-6) and dims.length == pytest.approx(length, abs=1e-6)
    factor = FT if unit == "ft" else 1.0
    assert dims.area_m2 == pytest.approx(width * length * factor * factor)


@pytest.mark.parametrize("text", ["Bedroom 2", "KITCHEN", "", "x", "1 x 2", "0.1 x 0.2", "999 x 999 x", "€X10", "2024"])
def test_strings_without_a_plausible_size_parse_to_none(text):
    assert parse_dimensions(text) is None


@pytest.mark.parametrize(
    "text,m2",
    [
        ("130 sq ft", 130 * M2_PER_FT2),
        ("130sqft", 130 * M2_PER_FT2),
        ("574 SQ. FT.", 574 * M2_PER_FT2),
        ("54 SO. FT.", 54 * M2_PER_FT2),  # Q read as O
        ("1,010 sq. ft.", 1010 * M2_PER_FT2),
        ("12.4 m2", 12.4),
        ("12.4 m²", 12.4),
        ("12,4 m²", 12.4),
        ("FLOOR AREA 85 sq m", 85.0),
        ("107.sq ft", 107 * M2_PER_FT2),  # a stray point before the unit
    ],
)
def test_area_strings_parse_to_square_metres(text, m2):
    area = parse_area(text)
    assert area is not None, text
    assert area.m2 == pytest.approx(m2)
    assert area.ft2 == pytest.approx(m2 / M2_PER_FT2)


@pytest.mark.parametrize("text", ["12.4", "Bedroom", "3.97 x 3.61", "12.4m?"])
def test_strings_without_an_area_parse_to_none(text):
    assert parse_area(text) is None


# -- room names -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,kind",
    [
        ("Master Bedroom", "bedroom"),
        ("BEDROOM #3", "bedroom"),
        ("MASTER BR", "bedroom"),
        ("DiningRoom", "dining"),  # glued by OCR
        ("Reception Room", "living"),
        ("RECEPTION/KITCHEN", "living"),  # the first room word decides
        ("Kitchen/Diner", "kitchen"),
        ("Family Bathroom", "bathroom"),  # a modifier does not beat a room word
        ("Family Room", "living"),
        ("W.C.", "bathroom"),
        ("En-Suite", "bathroom"),
        ("Landing", "hall"),
        ("ENTRY", "hall"),
        ("Walk-in Closet", "closet"),
        ("CL.", "closet"),
        ("Utility", "laundry"),
        ("Garage", "garage"),
        ("STUDY", "office"),
        ("Store", "storage"),
        ("PANTRY", "storage"),
        ("ROOF TERRACE", "balcony"),
        ("GAME ROOM", "other"),
        # whole words OCR misread, as read on listing plans
        ("KTHEN", "kitchen"),
        ("BEDRCOM 2", "bedroom"),
        ("BALOONY", "balcony"),
        ("TERACE", "balcony"),
        ("UTLITY", "laundry"),
        ("DIMING AREA", "dining"),
    ],
)
def test_room_names_map_to_the_vocabulary(name, kind):
    assert room_type(name) == kind
    assert kind in TYPES


@pytest.mark.parametrize("text", ["3.97 x 3.61", "FIRST FLOOR", "IN", "Interior Courtyard", "", None,
                                  "STH FLOR", "GARDEN", "SEVENTH FLOOR", "GROSS INTEMAI AREA"])
def test_text_that_names_no_room_has_no_type(text):
    assert room_type(text) is None


# -- whole plans: OCR once per plan, shared by the tests below ---------------------------------
import json  # noqa: E402
import math  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from roomkit.qa import evaluate as ev  # noqa: E402
from roomkit.detector.config import DetectorConfig  # noqa: E402
from roomkit.detector import detect_rooms  # noqa: E402
from roomkit.errors import ConfigError  # noqa: E402
from roomkit.plans.response import Detection  # noqa: E402
from roomkit.qa.synth import generate_plan  # noqa: E402
from roomkit.text.annotate import annotate  # noqa: E402
from roomkit.text.ocr import TextLine, read_text  # noqa: E402

TEXT_ON = DetectorConfig(read_text=True)  # reading text is off by default

ROOM_KEYS = {"id", "bounding_box", "polygon", "area_px", "confidence"}
RESPONSE_KEYS = {"status", "processing_time_ms", "image", "detected_rooms"}


def _generated():
    """A small generated plan printing names and sizes (metric, imperial, m² and sq ft)."""
    return generate_plan(3, "clean", room_dims=True, size=(700, 800), furniture=0.0, footprints=("rect",),
                         rooms=(4, 5), wall_vary=0.0)


@pytest.fixture(scope="module")
def generated():
    plan = _generated()
    return plan, detect_rooms(plan.image, TEXT_ON)


def _two_name_plan() -> np.ndarray:
    """One region holding two room names: a partition open over half its length between them."""
    img = np.full((600, 1000), 255, np.uint8)
    cv2.rectangle(img, (50, 50), (950, 550), 0, 12)
    # From the top and from the bottom, open 260 px between: far too wide for a doorway.
    cv2.line(img, (500, 50), (500, 170), 0, 8)
    cv2.line(img, (500, 430), (500, 550), 0, 8)
    cv2.putText(img, "KITCHEN", (170, 310), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2, cv2.LINE_AA)
    cv2.putText(img, "BEDROOM", (640, 310), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def two_names():
    img = _two_name_plan()
    return img, read_text(img), detect_rooms(img, DetectorConfig(read_text=False))


def test_a_generated_plan_gives_back_its_names_types_and_areas(generated):
    plan, det = generated
    truth = plan.truth("p")
    score = ev.score_plan(det, truth)
    assert score.f1() == 1.0
    for m in score.matches:
        printed = plan.rooms[m.truth_index]
        room = det.rooms[m.pred_index].text
        assert room.name == printed["name"]
        assert room.type == printed["type"]
        assert room.area["m2"] == pytest.approx(printed["area_m2"], rel=0.01)
        dims = parse_dimensions(printed["size_text"])
        if dims is not None:  # read as printed (the text as OCR gives it back: "x" may come as "×")
            assert room.dimensions["source"] == "printed" and room.dimensions["unit"] == dims.unit
            assert (room.dimensions["width"], room.dimensions["length"]) == (round(dims.width, 3), round(dims.length, 3))
    text = ev.score_text(score, det, truth)
    assert text.type_accuracy == 1.0 and text.area_within == 1.0
    # Both metric and imperial sizes are printed on it, and the scale follows from them.
    assert {r.text.dimensions["unit"] for r in det.rooms if r.text.dimensions} == {"m", "ft"}
    assert det.scale["source"] == "printed" and det.scale["rooms"] >= 2
    assert det.timings_ms["detect"] + det.timings_ms["text"] == pytest.approx(det.processing_time_ms)


def _line(text: str, cx: float, cy: float) -> TextLine:
    w, h = 6.0 * len(text), 12.0
    return TextLine(text, ((cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2),
                           (cx - w / 2, cy + h / 2)), 0.99)


def test_an_l_shaped_room_printing_its_bounding_rectangle_gets_its_own_area():
    """100 px per metre. Two rectangles give the scale; the L-shaped room (5 × 4 m less a
    2 × 2 m corner) prints its bounding rectangle, 5.00 x 4.00, as listing plans do."""
    from roomkit.plans.response import order_and_number

    def rect(x0, y0, x1, y1):
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], float((x1 - x0) * (y1 - y0)), 0.9

    l_shape = [(10, 10), (510, 10), (510, 210), (310, 210), (310, 410), (10, 410)]
    rooms = order_and_number([rect(10, 420, 410, 720), rect(420, 420, 720, 720), (l_shape, 160000.0, 0.9)])
    det = Detection(width=800, height=800, rooms=rooms, processing_time_ms=1.0)
    lines = [_line("BEDROOM 1", 210, 560), _line("4.00 x 3.00", 210, 580),
             _line("BEDROOM 2", 570, 560), _line("3.00 x 3.00", 570, 580),
             _line("LIVING", 160, 200), _line("5.00 x 4.00", 160, 220)]
    out = annotate(det, np.full((800, 800), 255, np.uint8), lines=lines, evidence=False)
    areas = {r.text.name: r.text.area["m2"] for r in out.rooms}
    assert out.scale["px_per_m"] == pytest.approx(100.0, rel=0.01)
    assert areas["BEDROOM 1"] == pytest.approx(12.0) and areas["BEDROOM 2"] == pytest.approx(9.0)
    assert areas["LIVING"] == pytest.approx(16.0, rel=0.03)  # not the printed 20.0


def _sized(polygon, printed: str, *, turn_deg: float = 0.0):
    """A plan at 100 px per metre: two rectangles (4 × 3 m, 3 × 3 m) give the scale, and
    ``polygon`` is the room named LIVING printing ``printed``; everything turned ``turn_deg``
    about the page centre (a plan scanned askew). Returns LIVING's area."""
    from roomkit.plans.response import order_and_number

    t = math.radians(turn_deg)

    def turn(pts):
        return [(400 + (x - 400) * math.cos(t) - (y - 400) * math.sin(t),
                 400 + (x - 400) * math.sin(t) + (y - 400) * math.cos(t)) for x, y in pts]

    def room(pts):
        pts = turn(pts)
        return pts, float(cv2.contourArea(np.float32(pts))), 0.9

    def rect(x0, y0, x1, y1):
        return room([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    rooms = order_and_number([rect(10, 420, 410, 720), rect(420, 420, 720, 720), room(polygon)])
    det = Detection(width=800, height=800, rooms=rooms, processing_time_ms=1.0)
    anchors = [("BEDROOM 1", 210, 560), ("4.00 x 3.00", 210, 580), ("BEDROOM 2", 570, 560),
               ("3.00 x 3.00", 570, 580), ("LIVING", 160, 100), (printed, 160, 120)]
    lines = [_line(text, *turn([(x, y)])[0]) for text, x, y in anchors]
    out = annotate(det, np.full((800, 800), 255, np.uint8), lines=lines, evidence=False)
    assert out.scale["px_per_m"] == pytest.approx(100.0, rel=0.01)
    return next(r.text.area["m2"] for r in out.rooms if r.text.name == "LIVING")


def _source(polygon, printed: str) -> str:
    """Where LIVING's area came from in :func:`_sized`'s plan."""
    from roomkit.text.annotate import room_area
    from roomkit.text.parse import parse_area, parse_dimensions
    from roomkit.plans.response import order_and_number

    room = order_and_number([(polygon, float(cv2.contourArea(np.float32(polygon))), 0.9)])[0]
    return room_area(room, parse_area(printed), parse_dimensions(printed), 100.0)["source"]


@pytest.mark.parametrize("turn_deg", [0.0, 7.0])
def test_rooms_printing_their_bounding_rectangle_get_their_own_area(turn_deg):
    """Listing plans print the bounding rectangle of L-, T- and U-shaped rooms: the area is the
    rectangle less what the room lacks of it, also on a plan scanned askew."""
    rectangle = [(10, 10), (510, 10), (510, 410), (10, 410)]
    assert _sized(rectangle, "5.00 x 4.00", turn_deg=turn_deg) == pytest.approx(20.0)
    # T: a 1.6 × 1.2 m bite out of the middle of the top side (9.6 % of the rectangle).
    t_shape = [(10, 10), (180, 10), (180, 130), (340, 130), (340, 10), (510, 10), (510, 410), (10, 410)]
    assert _sized(t_shape, "5.00 x 4.00", turn_deg=turn_deg) == pytest.approx(18.08, rel=0.02)
    # U: 2 × 2.5 m open to the bottom.
    u_shape = [(10, 10), (510, 10), (510, 410), (360, 410), (360, 160), (160, 160), (160, 410), (10, 410)]
    assert _sized(u_shape, "5.00 x 4.00", turn_deg=turn_deg) == pytest.approx(15.0, rel=0.02)


def test_a_door_swing_the_detector_took_in_does_not_enlarge_the_printed_rectangle():
    """The L-shaped room (5 × 4 m less 2 × 2 m) with a door's quarter circle (r 0.9 m) bulging
    out of its right side, as detected regions often do: its bounding box is 5.9 m wide."""
    arc = [(510 + 90 * math.sin(a), 120 - 90 * math.cos(a)) for a in np.linspace(0, math.pi / 2, 12)]
    l_with_swing = [(10, 10), (510, 10), (510, 30), *arc, (510, 210), (310, 210), (310, 410), (10, 410)]
    assert _sized(l_with_swing, "5.00 x 4.00") == pytest.approx(16.0, rel=0.02)


def test_the_scale_comes_from_the_sides_that_agree():
    """100 px per metre. The 4 × 3 m bedroom was found joined to a 0.75 m closet along its long
    side (400 × 375 px): its area vote says 112 px/m, but its long side and both sides of the
    3 × 3 m bedroom say 100."""
    from roomkit.plans.response import order_and_number

    def rect(x0, y0, x1, y1):
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], float((x1 - x0) * (y1 - y0)), 0.9

    rooms = order_and_number([rect(10, 10, 410, 385), rect(420, 10, 720, 310)])
    det = Detection(width=800, height=800, rooms=rooms, processing_time_ms=1.0)
    lines = [_line("BEDROOM 1", 210, 150), _line("4.00 x 3.00", 210, 170),
             _line("BEDROOM 2", 570, 150), _line("3.00 x 3.00", 570, 170)]
    out = annotate(det, np.full((800, 800), 255, np.uint8), lines=lines, evidence=False)
    assert out.scale["px_per_m"] == pytest.approx(100.0, rel=0.01)


def test_a_notch_the_outline_frays_is_still_a_notch():
    """An L-shaped room (4 × 3 m less a 1.5 × 1.5 m corner) with a door's quarter circle (r 1 m)
    left out of the room where the notch's corner meets it: what the room lacks is no longer a
    block, but the notch is, and the door swing is floor of the room."""
    arc = [(260 - 100 * math.cos(a), 160 + 100 * math.sin(a)) for a in np.linspace(0, math.pi / 2, 12)]
    frayed = [(10, 10), (410, 10), (410, 160), *arc, (260, 310), (10, 310)]
    assert _sized(frayed, "4.00 x 3.00") == pytest.approx(9.75, rel=0.02)


def test_a_corner_cut_at_45_degrees_is_taken_off_the_printed_rectangle():
    """A 5 × 4 m room with one corner chamfered 1.5 m along both walls prints 5.00 x 4.00 and
    has 18.875 m² of floor."""
    chamfered = [(10, 160), (160, 10), (510, 10), (510, 410), (10, 410)]
    assert _sized(chamfered, "5.00 x 4.00") == pytest.approx(18.875, rel=0.02)


def test_a_printed_area_that_lost_its_point_gives_way_to_the_scale():
    """"20.0 m²" read as "200m²": ten times what the room measures at the plan's scale."""
    rectangle = [(10, 10), (510, 10), (510, 410), (10, 410)]
    assert _sized(rectangle, "200m²") == pytest.approx(20.0, rel=0.01)
    assert _source(rectangle, "200m²") == "scaled" and _source(rectangle, "20.0 m2") == "printed"


def test_a_room_found_a_strip_smaller_than_printed_keeps_its_printed_area():
    """A rectangle found 0.3 m short along one whole side (a wall drawn thicker than the printed
    size assumes) is still the printed 5.00 x 4.00, not 18.5 m²."""
    short = [(10, 10), (510, 10), (510, 380), (10, 380)]
    assert _sized(short, "5.00 x 4.00") == pytest.approx(20.0)


def test_a_size_printed_over_two_lines_is_read():
    """UK listings print "16'3 (4.95) max" / "x 12'6 (3.81) max" under the name: one label."""
    from roomkit.text.labels import group_labels

    labels = group_labels([_line("KITCHEN", 200, 100), _line("16'3 (4.95) max", 200, 115),
                           _line("x 12'6 (3.81) max", 200, 130)])
    assert len(labels) == 1 and labels[0].type == "kitchen"
    assert (labels[0].dimensions.width, labels[0].dimensions.length, labels[0].dimensions.unit) == (16.25, 12.5, "ft")


def test_unnamed_rooms_are_typed_from_their_size_shape_and_fixtures():
    """100 px per metre (two named bedrooms print their sizes). Unnamed: a 4 × 1 m corridor with
    stair treads drawn across it is a hall, not a bathroom, though it is small and full of ink; a
    2 × 2 m room with a bath drawn in it is a bathroom; a 1 × 1 m one a closet."""
    from roomkit.plans.response import order_and_number

    def rect(x0, y0, x1, y1):
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], float((x1 - x0) * (y1 - y0)), 0.9

    img = np.full((800, 800), 255, np.uint8)
    for x in range(30, 400, 25):  # stair treads across the corridor
        cv2.line(img, (x, 15), (x, 105), 0, 2)
    cv2.rectangle(img, (470, 30), (630, 100), 0, 2)  # a bath along the wall
    rooms = order_and_number([rect(10, 420, 410, 720), rect(420, 420, 720, 720), rect(10, 10, 410, 110),
                              rect(450, 10, 650, 210), rect(700, 10, 800, 110)])
    det = Detection(width=800, height=800, rooms=rooms, processing_time_ms=1.0)
    lines = [_line("BEDROOM 1", 210, 560), _line("4.00 x 3.00", 210, 580),
             _line("BEDROOM 2", 570, 560), _line("3.00 x 3.00", 570, 580)]
    out = annotate(det, img, lines=lines, evidence=False)
    assert out.scale["px_per_m"] == pytest.approx(100.0, rel=0.01)
    types = {tuple(map(round, r.bbox_px)): r.text.type for r in out.rooms if r.text.name is None}
    assert types == {(10, 10, 410, 110): "hall", (450, 10, 650, 210): "bathroom", (700, 10, 800, 110): "closet"}


def test_a_region_holding_two_names_is_split_between_them(two_names):
    img, lines, det = two_names
    assert len(det.rooms) == 1  # the detector alone sees one room
    merged = annotate(det, img, lines=lines, evidence=False)
    assert merged.rooms[0].text.name == "KITCHEN / BEDROOM" and len(merged.rooms) == 1
    split = annotate(det, img, lines=lines, evidence=True)
    assert [r.text.name for r in split.rooms] == ["KITCHEN", "BEDROOM"]
    assert [r.text.type for r in split.rooms] == ["kitchen", "bedroom"]
    assert [f["code"] for f in split.flags] == ["split_by_text"]
    # Split at the partition: each part is one half of the region.
    xs = [max(x for x, _ in r.polygon) for r in split.rooms]
    assert abs(xs[0] - 500) <= 6
    assert sum(r.area_px for r in split.rooms) == pytest.approx(det.rooms[0].area_px, rel=0.02)


def test_a_region_holding_two_names_without_a_narrowing_is_kept_and_flagged(two_names):
    img, lines, _det = two_names
    clean = img.copy()
    clean[60:540, 495:506] = 255  # no partition at all: one open room, nothing to cut along
    det = detect_rooms(clean, DetectorConfig(read_text=False))
    out = annotate(det, clean, lines=lines, evidence=True)
    assert len(out.rooms) == 1
    assert [f["code"] for f in out.flags] == ["merged_rooms"]


def test_light_text_on_dark_paper_is_read(two_names):
    img, lines, _det = two_names
    inverted = read_text(255 - img)  # a blueprint: white ink on dark paper
    assert [ln.text for ln in inverted] == [ln.text for ln in lines] == ["KITCHEN", "BEDROOM"]


def test_read_text_false_gives_the_rooms_alone(two_names):
    img, _lines, det = two_names
    out = det.to_response()
    assert set(out) == RESPONSE_KEYS
    assert all(set(r) == ROOM_KEYS for r in out["detected_rooms"])
    assert set(det.to_geojson()["features"][0]["properties"]) == {"id", "area_px", "confidence"}
    on = annotate(det, img, lines=(), evidence=False).to_response()
    assert [{k: r[k] for k in ROOM_KEYS} for r in on["detected_rooms"]] == out["detected_rooms"]
    with pytest.raises(ConfigError, match="read_text"):
        DetectorConfig.from_dict({"read_text": "yes"})
    with pytest.raises(ConfigError, match="text_evidence"):
        DetectorConfig.from_dict({"text_evidence": 1})


def test_unreadable_or_broken_text_never_fails(two_names):
    img, _lines, det = two_names
    nan = float("nan")
    junk = [
        TextLine("BEDROOM", ((nan, nan), (nan, 1.0), (2.0, nan), (nan, nan)), 0.9),  # a broken box
        TextLine("%%%%", ((-50.0, -50.0), (-10.0, -50.0), (-10.0, -40.0), (-50.0, -40.0)), 0.9),
        TextLine("99999 x 0.0001 sq ft", ((100.0, 100.0), (300.0, 100.0), (300.0, 120.0), (100.0, 120.0)), 0.9),
    ]
    out = annotate(det, img, lines=junk)
    assert len(out.rooms) == len(det.rooms)
    assert all(r.text is not None and r.text.name is None for r in out.rooms)
    assert json.loads(json.dumps(out.to_response()))["status"] == "success"
    # A page of noise: text read, nothing to name, no failure.
    noise = np.random.default_rng(0).integers(0, 256, (300, 400), dtype=np.uint8)
    assert detect_rooms(noise, TEXT_ON).status == "success"
    assert read_text(np.zeros((0, 0), np.uint8)) == ()


def test_responses_carry_the_text_fields_and_read_back(generated):
    _plan, det = generated
    data = json.loads(det.to_json())
    assert set(data) >= RESPONSE_KEYS | {"processing_time_breakdown_ms", "scale", "text_flags"}
    room = data["detected_rooms"][0]
    assert {"name", "type", "dimensions", "area"} <= set(room)
    back = Detection.from_response(data)
    assert [r.text for r in back.rooms] == [
        replace(r.text, dimensions=dict(r.text.dimensions) if r.text.dimensions else None) for r in det.rooms
    ]
    assert back.to_response() == data
    props = det.to_geojson()["features"][0]["properties"]
    assert {"name", "type", "area"} <= set(props)
    assert det.type_summary() and all(not math.isnan(r.area_px) for r in det.rooms)


def test_qa_tables_and_overlays_show_names_types_and_areas(generated, tmp_path):
    from roomkit.cli.detect import draw_overlay, room_text_lines
    from roomkit.qa.viz import room_rows, rooms_html

    plan, det = generated
    rows = room_rows(det)
    assert [r["type"] for r in rows] == [r.text.type for r in det.rooms]
    assert all(r["area_m2"] and r["area_source"] == "printed" for r in rows)
    assert "MASTER BR" in rooms_html(det)
    named = next(r for r in det.rooms if r.text.name)
    assert room_text_lines(named)[0] == named.text.name and room_text_lines(named)[1].endswith(" m2")
    plain = draw_overlay(plan.image, replace(det, rooms=tuple(replace(r, text=None) for r in det.rooms)))
    assert (draw_overlay(plan.image, det) != plain).any()  # the names and areas are drawn


# -- over HTTP against the real server --------------------------------------------------------
@pytest.mark.slow
def test_server_responses_with_text_validate_against_the_openapi_document(tmp_path):
    from jsonschema import Draft202012Validator

    from roomkit.serving import OPENAPI_PATH
    from serving_support import ServerProcess, call

    spec = json.loads(OPENAPI_PATH.read_text())

    def validator(path: str, ctype: str) -> Draft202012Validator:
        schema = spec["paths"][path]["post"]["responses"]["200"]["content"][ctype]["schema"]
        return Draft202012Validator({**schema, "components": spec["components"]})

    plan = _generated()
    body = plan.encode()
    ctype = "image/png" if plan.extension == ".png" else "image/jpeg"
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"read_text": True}))  # off by default
    proc = ServerProcess.roomkit_serve(tmp_path, workers=1, model_dir=model)
    try:
        assert proc.wait_until_listening().status == 200
        reply = call(proc.port, "POST", "/invocations", body, {"Content-Type": ctype})
        assert reply.status == 200, reply.body[:500]
        data = reply.json()
        validator("/invocations", "application/json").validate(data)
        assert {r["type"] for r in data["detected_rooms"]} >= {"kitchen", "living", "dining", "bedroom"}
        assert all(r["area"]["source"] == "printed" for r in data["detected_rooms"])
        assert set(data["processing_time_breakdown_ms"]) == {"detect", "text"}
        geo = call(proc.port, "POST", "/invocations", body, {"Content-Type": ctype, "Accept": "application/geo+json"})
        assert geo.status == 200
        validator("/invocations", "application/geo+json").validate(geo.json())
        assert geo.json()["features"][0]["properties"]["type"] != "unknown"
        # Switched off per request: today's response, exactly its fields.
        off = call(proc.port, "POST", "/invocations", body,
                   {"Content-Type": ctype, "X-Amzn-SageMaker-Custom-Attributes": "config.read_text=false"})
        assert off.status == 200
        validator("/invocations", "application/json").validate(off.json())
        assert set(off.json()) == RESPONSE_KEYS
        assert all(set(r) == ROOM_KEYS for r in off.json()["detected_rooms"])
        bad = call(proc.port, "POST", "/invocations", body,
                   {"Content-Type": ctype, "X-Amzn-SageMaker-Custom-Attributes": "config.read_text=maybe"})
        assert bad.status == 400 and "read_text" in bad.json()["error"]["message"]
    finally:
        proc.stop()


def test_roomkit_eval_scores_types_and_areas(generated, tmp_path):
    import subprocess
    import sys

    plan, det = generated
    plan.save(tmp_path / "truth", "plan")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "plan.json").write_text(det.to_json())
    done = subprocess.run([sys.executable, "-m", "roomkit", "eval", "--truth", str(tmp_path / "truth"),
                           "--pred", str(tmp_path / "pred")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("F1@0.5=1.000")
    assert lines[-2].startswith("type accuracy 1.000") and "area within 5 % 1.000" in lines[-2]


@pytest.mark.slow
def test_served_text_equals_direct_text_on_colour_plans(tmp_path):
    """The server decodes to grey; ``detect_rooms`` on the same file reads the same grey, so the
    rooms, names, types and areas agree exactly (a colour JPEG and a colour PNG)."""
    from serving_support import ServerProcess, call

    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    plans = [samples / "listing.jpg", samples / "blueprint.png"]
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"read_text": True}))
    proc = ServerProcess.roomkit_serve(tmp_path, workers=1, model_dir=model)
    try:
        assert proc.wait_until_listening().status == 200
        for path in plans:
            ctype = "image/jpeg" if path.suffix == ".jpg" else "image/png"
            reply = call(proc.port, "POST", "/invocations", path.read_bytes(), {"Content-Type": ctype})
            assert reply.status == 200, reply.body[:500]
            served = reply.json()["detected_rooms"]
            direct = detect_rooms(path, DetectorConfig(read_text=True)).to_response()["detected_rooms"]
            assert served == direct, path.name
            assert sum(r.get("name") is not None for r in served) >= 3, path.name  # text was read
    finally:
        proc.stop()
