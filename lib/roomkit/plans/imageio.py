"""Plan images in: bytes, a file path or an array → one H×W×3 uint8 BGR array, or a typed error.

Everything that feeds the detector (CLI, server, notebooks) goes through :func:`load_image`, so
every caller gets the same formats and the same guard rails:

* the media type is sniffed from the magic bytes and checked against a declared content type;
* the image's dimensions are read from the *header* and checked against a pixel limit before a
  single pixel is decoded (decompression bombs are refused without allocating);
* truncated or corrupt data raises :class:`~roomkit.errors.DecodeError` instead of decoding into
  a half-grey picture, and nothing leaks out as an OpenCV traceback.

Output is normalized: alpha composited onto white paper, 16-bit and float scaled to 8-bit,
grey and palette expanded to three channels (or everything reduced to grey with ``gray=True``),
EXIF orientation applied (JPEG, TIFF, PNG, WebP), the first page of a multi-page TIFF, a PDF's
first page rendered at ``pdf_dpi`` (scaled down when needed to respect ``max_pixels``).
"""
from __future__ import annotations

import math
import numbers
import os
import struct
import threading
import warnings
from pathlib import Path
from typing import Union

# OpenCV's own decoder limit is a second line behind the header check below (read lazily by
# OpenCV at first decode, so setting it here works even when cv2 was imported earlier).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from roomkit.plans.mediatypes import PNG_SIGNATURE, sniff_type  # noqa: E402
from roomkit.errors import (  # noqa: E402
    DecodeError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    UnsupportedTypeError,
)

__all__ = [
    "SUPPORTED_TYPES",
    "GENERIC_TYPES",
    "IMAGE_EXTENSIONS",
    "load_image",
    "sniff_type",
    "read_header_size",
    "normalize_content_type",
]

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, np.ndarray]

#: Media types :func:`load_image` decodes.
SUPPORTED_TYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/tiff",
    "image/bmp",
    "image/webp",
    "image/gif",
    "application/pdf",
)
#: Content types that say "some image, find out which": the format is sniffed.
#: (``binary/octet-stream`` is what S3 stores for uploads that name no type.)
GENERIC_TYPES: tuple[str, ...] = (
    "application/x-image", "application/octet-stream", "binary/octet-stream", "image/*",
)
#: File extensions of supported formats (used to expand directories in the CLI).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pdf",
)

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/tif": "image/tiff",
    "image/x-tiff": "image/tiff",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "application/x-pdf": "application/pdf",
}
_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "application/pdf": "PDF",
}

_PNG_SIG = PNG_SIGNATURE
_PDF_LOCK = threading.Lock()  # pdfium is not thread-safe


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def load_image(
    source: ImageSource,
    *,
    content_type: str | None = None,
    max_pixels: int = 120_000_000,
    pdf_dpi: int = 150,
    gray: bool = False,
) -> np.ndarray:
    """Decode a plan into an ``H×W×3`` uint8 BGR array.

    Parameters
    ----------
    source:
        Encoded bytes (``bytes``/``bytearray``/``memoryview``), a path to a file (``str`` or
        ``os.PathLike``), or an already-decoded array (``H×W``, ``H×W×1|3|4`` in OpenCV's BGR(A)
        order; uint8, uint16, bool or float in 0–1), which is validated and normalized the same
        way. A uint8 ``H×W×3`` C-contiguous array is returned as is (not copied).
    content_type:
        Declared media type (an HTTP ``Content-Type``; parameters are ignored). ``None``,
        ``application/x-image`` and ``application/octet-stream`` mean "sniff it". A declared type
        that the bytes contradict is refused.
    max_pixels:
        Largest width×height accepted, checked from the header before decoding. A PDF page is
        rendered at a lower resolution instead when ``pdf_dpi`` would exceed it.
    pdf_dpi:
        Resolution the first page of a PDF is rendered at.
    gray:
        Return an ``H×W`` uint8 grey image instead (same compositing and scaling, a third of the
        memory; JPEGs and PDFs are decoded straight to grey) — for very large scans.

    Raises
    ------
    EmptyInputError, DecodeError, UnsupportedTypeError, ImageTooLargeError, InputError
        All subclasses of :class:`roomkit.errors.InputError`, with a message that says what is
        wrong with the input.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    max_pixels = int(max_pixels)
    if isinstance(pdf_dpi, bool) or not isinstance(pdf_dpi, numbers.Real) or not 1 <= pdf_dpi <= 4800:
        raise ValueError(f"pdf_dpi must be a number between 1 and 4800, got {pdf_dpi!r}")

    if isinstance(source, np.ndarray):
        return _normalize_array(source, max_pixels=max_pixels, what="array", gray=gray)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source) if not isinstance(source, bytes) else source
        return _decode_bytes(data, content_type, max_pixels, pdf_dpi, gray, what="")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = _read_file(path)
        return _decode_bytes(data, content_type, max_pixels, pdf_dpi, gray, what=str(path))
    raise InputError(
        f"cannot load an image from {type(source).__name__}: pass bytes, a file path or a numpy array"
    )


def normalize_content_type(content_type: str | None) -> str | None:
    """``'Image/JPG; q=1'`` → ``'image/jpeg'``; ``None``/empty → ``None``."""
    if content_type is None:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return None
    return _ALIASES.get(media, media)


def read_header_size(
    data: bytes | bytearray | memoryview, media_type: str | None = None, *, pdf_dpi: int = 150
) -> tuple[int, int] | None:
    """``(width, height)`` as the file's header declares it, without decoding pixels.

    ``media_type`` defaults to the sniffed type. For a PDF it is the first page's size at
    ``pdf_dpi``. ``None`` when the header is missing, truncated or malformed.
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    media_type = normalize_content_type(media_type) or sniff_type(data)
    parser = _HEADER_PARSERS.get(media_type or "")
    if parser is None:
        return None
    try:
        if media_type == "application/pdf":
            return _pdf_size(data, pdf_dpi)
        return parser(data)
    except (struct.error, IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Bytes → array
# ---------------------------------------------------------------------------------------------
def _w(what: str) -> str:
    """Message prefix naming the input (a file path), or nothing for in-memory bytes."""
    return f"{what}: " if what else ""


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}", code="file_not_found") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not an image file") from None
    except PermissionError:
        raise InputError(f"permission denied reading {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _resolve_type(data: bytes, content_type: str | None, what: str) -> str:
    declared = normalize_content_type(content_type)
    sniffed = sniff_type(data)
    if declared is not None and declared not in GENERIC_TYPES and declared not in SUPPORTED_TYPES:
        raise UnsupportedTypeError(
            f"unsupported content type {content_type!r}; supported: "
            f"{', '.join(SUPPORTED_TYPES)} (or application/x-image, application/octet-stream "
            "to detect the format from the data)"
        )
    if declared is None or declared in GENERIC_TYPES:
        if sniffed is None:
            raise UnsupportedTypeError(
                f"{_w(what)}unrecognized image format (first bytes {data[:8]!r}); supported: "
                + ", ".join(_NAMES[t] for t in SUPPORTED_TYPES)
            )
        return sniffed
    if sniffed is None:
        raise DecodeError(
            f"{_w(what)}declared {declared} but the data is not a {_NAMES[declared]} file "
            f"(no {_NAMES[declared]} signature; first bytes {data[:8]!r})",
            code="content_type_mismatch",
        )
    if sniffed != declared:
        raise DecodeError(
            f"{_w(what)}declared {declared} but the data is {sniffed} "
            f"({_NAMES[sniffed]} signature); send the right content type or "
            "application/octet-stream",
            code="content_type_mismatch",
        )
    return declared


def _decode_bytes(
    data: bytes, content_type: str | None, max_pixels: int, pdf_dpi: int, gray: bool, *, what: str
) -> np.ndarray:
    if len(data) == 0:
        raise EmptyInputError(f"{_w(what)}empty input (0 bytes)")
    media = _resolve_type(data, content_type, what)
    name = _NAMES[media]

    if media == "application/pdf":
        return _render_pdf(data, pdf_dpi=pdf_dpi, max_pixels=max_pixels, gray=gray, what=what)

    try:
        size = _HEADER_PARSERS[media](data)
    except (struct.error, IndexError, ValueError):
        size = None
    if size is None:
        raise DecodeError(f"{_w(what)}truncated or corrupt {name} header")
    width, height = size
    if width <= 0 or height <= 0:
        raise DecodeError(f"{_w(what)}{name} header declares a zero-size image ({width}×{height})")
    _check_pixels(width, height, max_pixels, what)
    cv_limit = _opencv_pixel_limit()
    if width * height > cv_limit:
        raise ImageTooLargeError(
            f"{_w(what)}image is {width}×{height} = {width * height:,} pixels, over OpenCV's "
            f"decoder limit of {cv_limit:,} (environment variable OPENCV_IO_MAX_IMAGE_PIXELS)"
        )
    _check_complete(data, media, what)

    buf = np.frombuffer(data, dtype=np.uint8)
    if media == "image/jpeg":
        # IMREAD_COLOR applies EXIF orientation and converts CMYK/YCCK and grey to BGR.
        img = _cv_decode(buf, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    else:
        img = _cv_decode(buf, cv2.IMREAD_UNCHANGED)
        if img is None and media in ("image/tiff", "image/gif", "image/webp", "image/bmp"):
            img = _pil_decode(data, max_pixels=max_pixels)
    if img is None or img.size == 0:
        raise DecodeError(f"{_w(what)}corrupt {name} data (the decoder could not read it)")
    if media in ("image/png", "image/webp"):
        img = _apply_orientation(img, _exif_orientation(data, media))
    return _normalize_array(img, max_pixels=max_pixels, what=what, gray=gray)


def _exif_orientation(data: bytes, media: str) -> int:
    """EXIF orientation of a PNG/WebP (OpenCV applies it itself for JPEG and TIFF only)."""
    marker = b"eXIf" if media == "image/png" else b"EXIF"
    if data.find(marker) < 0:
        return 1
    try:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return int(im.getexif().get(0x0112, 1))
    except Exception:  # unreadable metadata never blocks the pixels
        return 1


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(img), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _opencv_pixel_limit() -> int:
    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    except ValueError:
        return 1 << 30


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{_w(what)}image is {width}×{height} = {width * height:,} pixels, over the limit "
            f"of {max_pixels:,} (max_pixels)"
        )


def _check_complete(data: bytes, media: str, what: str) -> None:
    """Refuse data cut short: decoders may fill the missing part with grey and say nothing."""
    name = _NAMES[media]
    truncated = False
    if media == "image/png":
        truncated = not _png_complete(data)
    elif media == "image/jpeg":
        truncated = not _jpeg_complete(data)
    elif media == "image/webp":
        riff_size = struct.unpack_from("<I", data, 4)[0]
        truncated = len(data) < 8 + riff_size
    elif media == "image/bmp":
        file_size = struct.unpack_from("<I", data, 2)[0]
        truncated = file_size > 0 and len(data) < file_size
        if not truncated:
            truncated = len(data) < _bmp_min_size(data)
    elif media == "image/gif":
        truncated = data.rstrip(b"\x00")[-1:] != b";"
    if truncated:
        raise DecodeError(f"{_w(what)}truncated {name} data ({len(data):,} bytes; the end is missing)")


def _png_complete(data: bytes) -> bool:
    """Walk the chunk list: a whole PNG reaches its IEND chunk inside the data."""
    i, n = 8, len(data)
    while i + 8 <= n:
        length = struct.unpack_from(">I", data, i)[0]
        if data[i + 4 : i + 8] == b"IEND":
            return True
        i += 12 + length
    return False


def _jpeg_complete(data: bytes) -> bool:
    """An end-of-image marker after the first scan (an EXIF thumbnail has its own, earlier EOI)."""
    sos = _jpeg_walk(data, want_sos=True)
    return sos is not None and data.find(b"\xff\xd9", sos) >= 0


def _bmp_min_size(data: bytes) -> int:
    """Bytes an uncompressed BMP needs (pixel offset + rows); 0 when compressed/unknown."""
    offset = struct.unpack_from("<I", data, 10)[0]
    dib = struct.unpack_from("<I", data, 14)[0]
    if dib == 12:
        w, h, _planes, bpp = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    else:
        w, h, _planes, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    if compression not in (0, 3, 6):  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS
        return 0
    stride = ((abs(w) * bpp + 31) // 32) * 4
    return offset + stride * abs(h)


def _cv_decode(buf: np.ndarray, flags: int) -> np.ndarray | None:
    try:
        return cv2.imdecode(buf, flags)
    except cv2.error:
        return None


def _pil_decode(data: bytes, *, max_pixels: int) -> np.ndarray | None:
    """Fallback for TIFF compressions (and the odd GIF/WebP) OpenCV's build cannot read."""
    try:
        import io

        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Truncated File Read" and friends: we raise instead
            return _pil_to_array(Image.open(io.BytesIO(data)), max_pixels)
    except Exception:  # Pillow raises many types for bad data; all mean "cannot decode"
        return None


def _pil_to_array(im, max_pixels: int) -> np.ndarray | None:
    with im:
        if im.width * im.height > max_pixels:
            return None
        im.seek(0)  # first page / frame
        from PIL import ImageOps

        im = ImageOps.exif_transpose(im) or im  # as OpenCV does on its own path
        if im.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(im.convert("I"), dtype=np.int32).astype(np.uint16)
        if im.mode == "I":
            return np.asarray(im, dtype=np.int32)
        if im.mode == "F":
            return np.asarray(im, dtype=np.float32)
        alpha = "A" in im.mode or "transparency" in im.info
        arr = np.asarray(im.convert("RGBA" if alpha else "RGB"))
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR)


# ---------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------
def _open_pdf(data: bytes, what: str):
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            raise DecodeError(f"{_w(what)}the PDF is password-protected") from None
        raise DecodeError(f"{_w(what)}corrupt or truncated PDF ({msg})") from None
    if len(doc) == 0:
        doc.close()
        raise DecodeError(f"{_w(what)}the PDF has no pages")
    return doc


def _pdf_size(data: bytes, dpi: int) -> tuple[int, int] | None:
    with _PDF_LOCK:
        try:
            doc = _open_pdf(data, "PDF")
        except DecodeError:
            return None
        try:
            page = doc[0]
            w_pt, h_pt = page.get_size()
            page.close()
        finally:
            doc.close()
    scale = _pdf_scale(dpi)
    return (math.ceil(w_pt * scale), math.ceil(h_pt * scale))


def _pdf_scale(dpi: float) -> float:
    """Points → pixels at ``dpi``, nudged down so that pdfium's ceil() of the page size gives
    the exact pixel count (480 pt at 150 dpi → 1000 px, not 1001)."""
    return dpi / 72.0 * (1.0 - 1e-6)  # page sizes are float32 inside pdfium


def _render_pdf(data: bytes, *, pdf_dpi: int, max_pixels: int, gray: bool, what: str) -> np.ndarray:
    with _PDF_LOCK:
        doc = _open_pdf(data, what)
        try:
            page = doc[0]
            try:
                w_pt, h_pt = page.get_size()
                if not (w_pt > 0 and h_pt > 0):
                    raise DecodeError(f"{_w(what)}the PDF's first page has zero size")
                scale = _pdf_scale(pdf_dpi)
                # Vector pages have no native resolution: render smaller rather than refuse.
                if (w_pt * scale) * (h_pt * scale) > max_pixels:
                    scale = (max_pixels / (w_pt * h_pt)) ** 0.5 * 0.999
                if round(w_pt * scale) < 1 or round(h_pt * scale) < 1:
                    raise DecodeError(f"{_w(what)}the PDF's first page is too small to render")
                bitmap = page.render(
                    scale=scale, fill_color=(255, 255, 255, 255), rev_byteorder=False, grayscale=gray
                )
                try:
                    arr = np.array(bitmap.to_numpy(), copy=True)
                    mode = bitmap.mode
                finally:
                    bitmap.close()
            finally:
                page.close()
        except DecodeError:
            raise
        except Exception as exc:  # pdfium errors on broken page content
            raise DecodeError(f"{_w(what)}cannot render the PDF's first page ({exc})") from None
        finally:
            doc.close()
    # pdfium bitmaps are BGR / BGRA / BGRx in memory order (rev_byteorder=False).
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3] if mode in ("BGRX", "BGRx") else arr
    limit = max(max_pixels, arr.shape[0] * arr.shape[1])  # the render was sized to fit already
    return _normalize_array(arr, max_pixels=limit, what=what, gray=gray)


# ---------------------------------------------------------------------------------------------
# Array normalization
# ---------------------------------------------------------------------------------------------
def _normalize_array(img: np.ndarray, *, max_pixels: int, what: str, gray: bool = False) -> np.ndarray:
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
        raise InputError(
            f"{_w(what)}expected an H×W, H×W×1, H×W×3 or H×W×4 image, got shape {img.shape}"
        )
    height, width = img.shape[:2]
    if height == 0 or width == 0:
        raise EmptyInputError(f"{_w(what)}zero-size image ({width}×{height})")
    _check_pixels(width, height, max_pixels, what)

    img = _to_uint8(img, what)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 2:  # grey + alpha
        img = _composite_white(img[:, :, 0], img[:, :, 1])
    elif img.ndim == 3 and img.shape[2] == 4:
        img = _composite_white(img[:, :, :3], img[:, :, 3])
    if img.ndim == 2:
        return np.ascontiguousarray(img) if gray else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if gray:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(img)


def _to_uint8(img: np.ndarray, what: str) -> np.ndarray:
    dtype = img.dtype
    if dtype == np.uint8:
        return img
    if dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if dtype == np.uint16:
        return cv2.convertScaleAbs(img, alpha=255.0 / 65535.0)
    if np.issubdtype(dtype, np.floating):
        f = img.astype(np.float32, copy=False)
        if not np.isfinite(f).all():
            raise InputError(f"{_w(what)}image contains NaN or infinite values")
        lo, hi = float(f.min()), float(f.max())
        if lo >= 0.0 and hi <= 1.0:
            f = f * 255.0
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        hi = int(img.max())
        if img.min() >= 0 and hi <= 255:
            return img.astype(np.uint8)
        if img.min() >= 0 and hi <= 65535:
            return cv2.convertScaleAbs(img.astype(np.uint16), alpha=255.0 / 65535.0)
        raise InputError(f"{_w(what)}integer image values outside 0–65535 ({dtype})")
    raise InputError(f"{_w(what)}unsupported pixel type {dtype}")


def _composite_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Transparent areas become white paper, not the black OpenCV would otherwise give.

    Works in bands of rows so that a 100 MP RGBA scan needs no multi-GB temporaries.
    """
    if int(alpha.min()) == 255:
        return np.ascontiguousarray(color)
    out = np.empty(color.shape, np.uint8)
    row = int(np.prod(color.shape[1:]))
    step = max(1, (1 << 22) // row)
    for y in range(0, color.shape[0], step):
        a = alpha[y : y + step].astype(np.uint16)
        if color.ndim == 3:
            a = a[:, :, None]
        c = color[y : y + step].astype(np.uint16)
        out[y : y + step] = (c * a + 255 * (255 - a) + 127) // 255
    return out


# ---------------------------------------------------------------------------------------------
# Header parsers: (width, height) from the first bytes; None or an exception when malformed
# ---------------------------------------------------------------------------------------------
def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack_from(">II", data, 16)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    return _jpeg_walk(data, want_sos=False)


def _jpeg_walk(data: bytes, *, want_sos: bool):
    """Walk the marker segments: the frame size (SOF) or the offset of the first scan (SOS)."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return None  # lost sync: corrupt marker stream
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue  # standalone markers
        if marker == 0xD9:
            return None  # end of image before any frame header / scan
        if marker == 0xDA:
            return i if want_sos else None
        length = struct.unpack_from(">H", data, i)[0]
        if marker in _SOF_MARKERS and not want_sos:
            height, width = struct.unpack_from(">HH", data, i + 3)
            return (width, height)
        if length < 2:
            return None
        i += length
    return None


_TIFF_TYPES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    bo = "<" if data[:2] == b"II" else ">"
    magic = struct.unpack_from(bo + "H", data, 2)[0]
    if magic == 42:
        ifd = struct.unpack_from(bo + "I", data, 4)[0]
        count = struct.unpack_from(bo + "H", data, ifd)[0]
        entry0, entry_size, value_off = ifd + 2, 12, 8
    elif magic == 43:  # BigTIFF
        ifd = struct.unpack_from(bo + "Q", data, 8)[0]
        count = struct.unpack_from(bo + "Q", data, ifd)[0]
        entry0, entry_size, value_off = ifd + 8, 20, 12
    else:
        return None
    if count > 4096:
        return None
    width = height = None
    for k in range(count):
        e = entry0 + k * entry_size
        tag, typ = struct.unpack_from(bo + "HH", data, e)
        if tag in (256, 257) and typ in _TIFF_TYPES:
            fmt, _ = _TIFF_TYPES[typ]
            value = struct.unpack_from(bo + fmt, data, e + value_off)[0]
            if tag == 256:
                width = value
            else:
                height = value
    if width is None or height is None:
        return None
    return (int(width), int(height))


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    dib = struct.unpack_from("<I", data, 14)[0]
    if dib == 12:
        return struct.unpack_from("<HH", data, 18)
    w, h = struct.unpack_from("<ii", data, 18)
    return (abs(w), abs(h))


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack_from("<HH", data, 26)
        return (w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        bits = struct.unpack_from("<I", data, 21)[0]
        return (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        if len(data) < 30:
            return None
        return (w, h)
    return None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 10:
        return None
    return struct.unpack_from("<HH", data, 6)


_HEADER_PARSERS = {
    "image/png": _png_size,
    "image/jpeg": _jpeg_size,
    "image/tiff": _tiff_size,
    "image/bmp": _bmp_size,
    "image/webp": _webp_size,
    "image/gif": _gif_size,
    "application/pdf": _pdf_size,  # called with the dpi by read_header_size
}
