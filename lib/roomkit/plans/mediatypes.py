"""Plan media types from magic bytes: one table shared by the decoder and the AWS side.

Pure Python (no OpenCV, no boto3), so ``roomkit.plans.imageio`` (decoding) and ``roomkit.aws.inputs``
(choosing the ``ContentType`` of an upload) recognize exactly the same files.
"""
from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# How many leading bytes sniff_type looks at (PDF readers accept the header anywhere in them).
SNIFF_BYTES = 1024
_BMP_DIB_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)


def sniff_type(data: bytes | bytearray | memoryview) -> str | None:
    """The canonical media type the magic bytes announce, or ``None`` if none is recognized."""
    head = bytes(data[:SNIFF_BYTES])
    if head.startswith(PNG_SIGNATURE):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:2] == b"BM" and len(head) >= 18:
        if struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_HEADER_SIZES:
            return "image/bmp"
    # Some writers prepend junk before the PDF header; readers look for it in the first KiB.
    if b"%PDF-" in head:
        return "application/pdf"
    return None
