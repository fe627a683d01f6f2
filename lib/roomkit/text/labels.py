"""Text lines → room labels: the lines printed together (name, dimensions, area) as one label.

A listing plan prints each room's label as a small stack of lines ("MASTER BEDROOM" /
"14'8 x 10'10" / "(4.5m x 3.3m)"). :func:`group_labels` joins lines stacked closely one above
the other into one :class:`Label` and reads its name, type, dimensions and area.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from roomkit.text.ocr import TextLine
from roomkit.text.parse import Area, Dimensions, parse_area, parse_dimensions
from roomkit.text.vocab import room_type

#: Lines join one label when the vertical gap between them is under this many line heights…
STACK_GAP = 0.9
#: …and their horizontal extents overlap, or their centres are this many line heights apart.
STACK_SHIFT = 2.0

_SIZE_START = re.compile(r"[\d(]")


@dataclass(frozen=True)
class Label:
    """One printed room label: its lines and what they say."""

    lines: tuple[TextLine, ...]
    name: str | None
    type: str | None
    dimensions: Dimensions | None
    area: Area | None

    @property
    def anchor(self) -> tuple[float, float]:
        """Where the label stands: the centre of its name lines (of all lines without a name)."""
        named = [ln for ln in self.lines if _name_part(ln.text)] or list(self.lines)
        x0 = min(ln.bbox[0] for ln in named)
        y0 = min(ln.bbox[1] for ln in named)
        x1 = max(ln.bbox[2] for ln in named)
        y1 = max(ln.bbox[3] for ln in named)
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (
            min(ln.bbox[0] for ln in self.lines),
            min(ln.bbox[1] for ln in self.lines),
            max(ln.bbox[2] for ln in self.lines),
            max(ln.bbox[3] for ln in self.lines),
        )

    @property
    def height(self) -> float:
        return max(ln.height for ln in self.lines)


def _name_part(text: str) -> str | None:
    """The room-name part of a line ("BEDROOM 3.2 x 4.1" → "BEDROOM"), if it names a room."""
    head = text
    for m in _SIZE_START.finditer(text):
        if _is_size(text[m.start():]):
            head = text[: m.start()]
            break
    head = head.strip(" -:,;/(")
    return head if head and room_type(head) is not None else None


def _joins(a: TextLine, b: TextLine) -> bool:
    ax0, ay0, ax1, ay1 = a.bbox
    bx0, by0, bx1, by1 = b.bbox
    h = max(a.height, b.height, 1.0)
    gap = max(by0 - ay1, ay0 - by1)
    if gap > STACK_GAP * h:
        return False
    overlap = min(ax1, bx1) - max(ax0, bx0)
    shift = abs((ax0 + ax1) - (bx0 + bx1)) / 2.0
    return overlap > 0 or shift <= STACK_SHIFT * h


def group_labels(lines: tuple[TextLine, ...] | list[TextLine]) -> list[Label]:
    """Join stacked lines into labels (union of pairwise joins), top to bottom."""
    items = sorted(lines, key=lambda ln: (ln.center[1], ln.center[0]))
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if _joins(items[i], items[j]):
                parent[find(j)] = find(i)
    groups: dict[int, list[TextLine]] = {}
    for i, ln in enumerate(items):
        groups.setdefault(find(i), []).append(ln)
    labels = []
    for members in groups.values():
        labels.extend(_split_names(members))
    labels.sort(key=lambda lb: (lb.bbox[1], lb.bbox[0]))
    return labels


def _split_names(members: list[TextLine]) -> list[Label]:
    """One label, or one per name when a stack holds names of two rooms, each with the sizes
    printed under it (two labels printed close across a thin wall)."""
    members = sorted(members, key=lambda ln: ln.bbox[1])
    runs: list[list[TextLine]] = []
    for ln in members:
        named = _name_part(ln.text) is not None
        # A new name after a size line starts the next room's label.
        if runs and named and any(_is_size(x.text) for x in runs[-1]):
            runs.append([ln])
        elif runs:
            runs[-1].append(ln)
        else:
            runs.append([ln])
    return [_label(run) for run in runs]


def _is_size(text: str) -> bool:
    return parse_dimensions(text) is not None or parse_area(text) is not None


def _label(lines: list[TextLine]) -> Label:
    names = [n for n in (_name_part(ln.text) for ln in lines) if n]
    name = " ".join(names) if names else None
    dims = next((d for d in (parse_dimensions(ln.text) for ln in lines) if d is not None), None)
    if dims is None:  # a size printed over two lines ("16'3 (4.95) max" / "x 12'6 (3.81) max")
        pairs = (f"{a.text} {b.text}" for a, b in zip(lines, lines[1:]))
        dims = next((d for d in map(parse_dimensions, pairs) if d is not None), None)
    area = next((a for a in (parse_area(ln.text) for ln in lines) if a is not None), None)
    return Label(tuple(lines), name, room_type(name), dims, area)
