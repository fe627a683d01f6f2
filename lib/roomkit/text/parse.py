"""Dimension and area strings as printed on floor plans, metric and imperial, OCR-damaged too.

Listing plans print a room's size as ``3.97 x 3.61``, ``3.97m x 3.61m``, ``13'0" x 11'10"``,
``15'7 x 12'5`` or ``15ft 7in x 12ft 5in``, and its area as ``130 sq ft``, ``12.4 m2`` or
``12.4 m²``. OCR reads ``×`` as ``x``, ``X``, ``*`` or Cyrillic ``х``, ``0`` as ``O``, ``1`` as
``l``/``I``, and drops apostrophes (``157 x 125`` for ``15'7 x 12'5``). :func:`parse_dimensions`
and :func:`parse_area` take one text line and return a typed value or ``None``; they never raise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FT = 0.3048  # metres per foot
M2_PER_FT2 = FT * FT

#: Plausible room sides: metres and feet. Outside these a parse is taken as a misreading.
METRES = (0.5, 40.0)
FEET = (2.0, 130.0)


@dataclass(frozen=True)
class Dimensions:
    """A room's printed size: two sides in the printed unit (``"m"`` or ``"ft"``; feet decimal)."""

    width: float
    length: float
    unit: str
    text: str

    @property
    def width_m(self) -> float:
        return self.width * (FT if self.unit == "ft" else 1.0)

    @property
    def length_m(self) -> float:
        return self.length * (FT if self.unit == "ft" else 1.0)

    @property
    def area_m2(self) -> float:
        return self.width_m * self.length_m

    def to_dict(self) -> dict:
        return {
            "width": round(self.width, 3),
            "length": round(self.length, 3),
            "unit": self.unit,
            "width_m": round(self.width_m, 3),
            "length_m": round(self.length_m, 3),
            "text": self.text,
        }


@dataclass(frozen=True)
class Area:
    """A printed floor area, kept in square metres (``unit`` says how it was printed)."""

    m2: float
    unit: str  # "m2" or "ft2"
    text: str

    @property
    def ft2(self) -> float:
        return self.m2 / M2_PER_FT2


# -- normalization ------------------------------------------------------------------------------
_TIMES = re.compile(r"\s*[x×X✕✖*хХ]\s*")
_QUOTE1 = re.compile(r"[’‘`´′]")
_QUOTE2 = re.compile(r"[”“″]|''")


def normalize(text: str) -> str:
    """Fix the usual OCR confusions in a size string: letters for digits, odd quote marks."""
    s = text.strip()
    s = _QUOTE2.sub('"', s)
    s = _QUOTE1.sub("'", s)
    # O/o, l/I/|, S and B read for digits next to digits (or a decimal point).
    for wrong, right in (("Oo", "0"), ("lI|", "1")):
        pattern = re.compile(rf"(?<=[\d.,'])[{re.escape(wrong)}]|[{re.escape(wrong)}](?=[\d.,'\"])")
        for _ in range(2):  # "1OO" needs two passes
            s = pattern.sub(right, s)
    # Inch marks read as degree signs or asterisks ("15' 4°", "3'11*"); "9 7\"" lost its foot mark.
    s = s.replace("°", '"')
    s = re.sub(r"(?<='\d)\*|(?<='\d\d)\*", '"', s)
    s = re.sub(r"(?<![\d.'])(\d{1,2})\s+(\d{1,2})\"", "\\1'\\2\"", s)
    # Only the inch mark kept ("195\"×83\"" for 19'5" x 8'3"): the foot mark goes back in.
    s = re.sub(r"(?<![\d.'\"])(?<!'\s)(\d{2,4})\"", _foot_mark, s)
    # A stray point read before the times sign or the unit ("4.46.x 2.03", "107.sq ft").
    s = re.sub(r"(?<=\d)\.(?=\s*(?:[x×X✕✖*хХ]\s*\d|s[qo]))", "", s)
    # Decimal commas between digits ("3,97") but not thousands separators ("1,234 sq ft").
    s = re.sub(r"(?<=\d),(?=\d{1,2}(?!\d))", ".", s)
    return s


def _foot_mark(m: re.Match) -> str:
    """``195"`` → ``19'5"``, ``1910"`` → ``19'10"``, ``83"`` → ``8'3"`` (left alone if no split
    gives plausible feet and inches)."""
    split = _feet_inches(m[1])
    return f"{split[0]}'{split[1]}\"" if split else m[0]


# -- dimensions -----------------------------------------------------------------------------
_NUM = r"\d{1,5}(?:\.\d{1,3})?"
_BY = r"\s*[x×X✕✖*хХ]\s*"


def _metric_side(n: str) -> str:
    return rf"(?P<{n}>{_NUM})\s*(?P<{n}u>mm|cm|m(?![a-z]))?"


def _feet_side(n: str) -> str:
    return (
        rf"(?P<{n}f>\d{{1,3}})\s*(?:'|ft\.?|feet|foot)\s*-?\s*"
        rf"(?:(?P<{n}i>\d{{1,2}}(?:\.\d)?)\s*(?:\"|in\.?|inch(?:es)?|'')?)?"
    )


_IMPERIAL = re.compile(_feet_side("a") + _BY + _feet_side("b"), re.IGNORECASE)
_PAIR = re.compile(r"(?<![\d.])" + _metric_side("a") + _BY + _metric_side("b"), re.IGNORECASE)


def _feet(f: str, i: str | None) -> float | None:
    feet = int(f)
    inches = float(i) if i else 0.0
    if inches >= 12:
        return None
    return feet + inches / 12.0


def _feet_inches(token: str) -> tuple[int, int] | None:
    """Feet and inches of digits whose marks were lost: ``157`` → (15, 7), ``1210`` → (12, 10),
    ``911`` → (9, 11); the first split with inches under 12 and plausible feet. "110" is 11'0
    rather than 1'10 (rooms are wider than 4 ft); "1205" is not 12'05 (inches are not printed so)."""
    for cut in (len(token) - 1, len(token) - 2):
        if cut < 1 or (len(token) - cut == 2 and token[cut] == "0"):
            continue
        feet, inches = int(token[:cut]), int(token[cut:])
        if inches < 12 and FEET[0] <= feet <= 60:
            return feet, inches
    return None


def _bare_imperial(token: str) -> float | None:
    """``157`` → 15'7, ``1210`` → 12'10, ``911`` → 9'11: feet and inches with the mark lost."""
    if "." in token or not 3 <= len(token) <= 4:
        return None
    split = _feet_inches(token)
    return split[0] + split[1] / 12.0 if split else None


def _in(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


#: UK listings print each side with its conversion and "max": ``16'3 (4.95) max x 12'6 (3.81)
#: max`` (OCR: "MASX", "MAXIMUM", "(MADMUM)"). The words and the bracketed single conversions are
#: dropped before parsing (a bracketed pair, ``(15'7 x 12'5)``, stays: it is a size of its own).
_MAX = re.compile(r"\(?(?<![a-z])(?:ma[a-z]{1,5}|min(?:imum)?)\.?\)?(?![a-z])", re.IGNORECASE)
_ALTERNATE = re.compile(r"\(\s*\d[\d.,'\" ]*(?:m|ft)?\s*\)", re.IGNORECASE)


def parse_dimensions(text: str) -> Dimensions | None:
    """The first width × length in ``text``, or ``None`` when there is none plausible.

    Examples: ``"3.97 x 3.61"`` → 3.97 × 3.61 m; ``"13'0\\" x 11'10\\""`` → 13.0 × 11.83 ft;
    ``"157 x 125"`` → 15.58 × 12.42 ft (apostrophes lost); ``"4.76x3.79m"``; ``"3970 x 3610 mm"``;
    ``"16'3 (4.95) max x 12'6 (3.81) max"`` → 16.25 × 12.5 ft.
    """
    if not text:
        return None
    s = _ALTERNATE.sub(" ", _MAX.sub(" ", normalize(text)))
    imperial = _imperial(s, text)
    metric = _metric(s, text)
    # Both printed ("4.76 x 3.79m (15'7 x 12'5)"): the one printed first.
    if imperial and metric:
        return imperial[1] if imperial[0] < metric[0] else metric[1]
    found = imperial or metric
    return found[1] if found else None


def _imperial(s: str, text: str) -> tuple[int, Dimensions] | None:
    for m in _IMPERIAL.finditer(s):
        a, b = _feet(m["af"], m["ai"]), _feet(m["bf"], m["bi"])
        if a is not None and b is not None and _in(a, FEET) and _in(b, FEET):
            return m.start(), Dimensions(a, b, "ft", text.strip())
    return None


def _metric(s: str, text: str) -> tuple[int, Dimensions] | None:
    for m in _PAIR.finditer(s):
        a_s, b_s = m["a"], m["b"]
        unit = (m["au"] or m["bu"] or "").lower()
        a, b = float(a_s), float(b_s)
        if unit == "mm" or (not unit and "." not in a_s + b_s and a >= 300 and b >= 300 and len(a_s) >= 4):
            a, b, unit = a / 1000.0, b / 1000.0, "m"
        elif unit == "cm":
            a, b, unit = a / 100.0, b / 100.0, "m"
        if unit == "m" or "." in a_s or "." in b_s:
            if _in(a, METRES) and _in(b, METRES):
                return m.start(), Dimensions(a, b, "m", text.strip())
            continue
        # Integers without a unit: feet with the marks lost ("157 x 125"), or whole feet.
        fa, fb = _bare_imperial(a_s), _bare_imperial(b_s)
        if fa is None and len(a_s) <= 2 and _in(a, (4.0, 60.0)):
            fa = a
        if fb is None and len(b_s) <= 2 and _in(b, (4.0, 60.0)):
            fb = b
        if fa is not None and fb is not None:
            return m.start(), Dimensions(fa, fb, "ft", text.strip())
    return None


# -- areas ----------------------------------------------------------------------------------
_AREA = re.compile(
    r"(?P<v>\d{1,3}(?:,\d{3})+|\d{1,6}(?:\.\d{1,2})?)\s*"
    r"(?:(?P<ft>s[qo0]\.?\s*f(?:ee)?t\.?|sq\.?\s*ft|s[qo0]ft|ft\s*[2²]|ft\.?\s*sq|s\.?f\.?(?![a-z])|square\s*f(?:ee|oo)t)"
    r"|(?P<m>sq\.?\s*m(?:etres|eters)?(?![a-z])|sqm|m\s*[2²](?!\d)|m\s*sq|square\s*met(?:re|er)s?))",
    re.IGNORECASE,
)
#: Plausible room areas (m²); a whole flat's printed area is above this but still parses.
AREA_M2 = (0.3, 2000.0)


def parse_area(text: str) -> Area | None:
    """The first printed area in ``text``: ``"130 sq ft"``, ``"12.4 m2"``, ``"12,4 m²"``…"""
    if not text:
        return None
    s = normalize(text)
    m = _AREA.search(s)
    if not m:
        return None
    value = float(m["v"].replace(",", ""))
    if m["ft"]:
        area = Area(value * M2_PER_FT2, "ft2", text.strip())
    else:
        area = Area(value, "m2", text.strip())
    return area if _in(area.m2, AREA_M2) else None


def has_size(text: str) -> bool:
    """Whether a text line is a size (dimensions or area) rather than a name."""
    return parse_dimensions(text) is not None or parse_area(text) is not None
