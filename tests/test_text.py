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
    ],
)
def test_room_names_map_to_the_vocabulary(name, kind):
    assert room_type(name) == kind
    assert kind in TYPES


@pytest.mark.parametrize("text", ["3.97 x 3.61", "FIRST FLOOR", "IN", "Interior Courtyard", "", None])
def test_text_that_names_no_room_has_no_type(text):
    assert room_type(text) is None
