"""Reading room names, dimensions and areas from the plan's own text (no AWS imports).

Modules: :mod:`.ocr` (the OCR engine, read once per plan), :mod:`.parse` (dimension and area
strings, metric and imperial, OCR-damaged), :mod:`.vocab` (room names → types),
:mod:`.labels` (lines → room labels), :mod:`.evidence` (splitting a region that holds two
names), :mod:`.annotate` (all of it on a :class:`~roomkit.plans.response.Detection`; what the
detector runs when ``DetectorConfig.read_text`` is on).
May import: numpy, cv2, the OCR engine, :mod:`roomkit.plans.response`. Never boto3.
"""
from roomkit.text.parse import Area, Dimensions, parse_area, parse_dimensions
from roomkit.text.vocab import TYPES, room_type

__all__ = ["parse_dimensions", "parse_area", "Dimensions", "Area", "room_type", "TYPES"]
