"""roomkit.plans.imageio: every input kind decodes to the same H×W×3 uint8 BGR picture; every bad input
gets a typed error (never an OpenCV traceback, never silent garbage)."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from roomkit import load_image
from roomkit.errors import (
    DecodeError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    UnsupportedTypeError,
)
from roomkit.plans.imageio import (
    SUPPORTED_TYPES,
    normalize_content_type,
    read_header_size,
    sniff_type,
)

H, W = 60, 90
# Quadrant colours in BGR: top-left red, top-right green, bottom-left blue, bottom-right white.
RED, GREEN, BLUE, WHITE, BLACK = (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255), (0, 0, 0)
PROBES = {(15, 22): RED, (15, 67): GREEN, (45, 22): BLUE, (45, 67): WHITE}


def quadrants(h: int = H, w: int = W) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = RED
    img[: h // 2, w // 2 :] = GREEN
    img[h // 2 :, : w // 2] = BLUE
    img[h // 2 :, w // 2 :] = WHITE
    return img


def bw_pattern(h: int = H, w: int = W) -> np.ndarray:
    """Grey test card: black left half, white right half (survives 1-bit and grey formats)."""
    img = np.full((h, w), 255, np.uint8)
    img[:, : w // 2] = 0
    return img


def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def cv_bytes(img: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def rgb_pil(img_bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(img_bgr[:, :, ::-1]))


def assert_quadrants(out: np.ndarray, tol: int = 12) -> None:
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    for (y, x), colour in PROBES.items():
        got = out[y, x].astype(int)
        assert np.abs(got - colour).max() <= tol, f"pixel {(y, x)} = {got.tolist()}, want {colour}"


def assert_bw(out: np.ndarray) -> None:
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    assert out[:, : W // 2 - 2].max() <= 10, "left half should be black"
    assert out[:, W // 2 + 2 :].min() >= 245, "right half should be white"


def vector_pdf(w_pt: float = 612, h_pt: float = 792, rect=(72, 72, 144, 216), pages: int = 1) -> bytes:
    """A vector PDF (what CAD exports look like): a blue rectangle on a white page."""
    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        page = doc.new_page(w_pt, h_pt)
        obj = pdfium_c.FPDFPageObj_CreateNewRect(*rect)
        pdfium_c.FPDFPageObj_SetFillColor(obj, 0, 0, 255, 255)
        pdfium_c.FPDFPath_SetDrawMode(obj, pdfium_c.FPDF_FILLMODE_ALTERNATE, False)
        pdfium_c.FPDFPage_InsertObject(page.raw, obj)
        page.gen_content()
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def crafted_png(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """A syntactically valid PNG whose IHDR claims ``width×height`` (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = idat if idat is not None else zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------
# Formats and variants
# ---------------------------------------------------------------------------------------------
def _rgba_with_transparent_corner() -> np.ndarray:
    bgra = np.dstack([quadrants(), np.full((H, W), 255, np.uint8)])
    bgra[: H // 2, : W // 2, 3] = 0  # top-left fully transparent: must become white paper
    bgra[: H // 2, : W // 2, :3] = 0  # ... even though its colour channels are black
    return bgra


def _colour_variants() -> dict[str, tuple[bytes, dict]]:
    q = quadrants()
    im = rgb_pil(q)
    q16 = q.astype(np.uint16) * 257
    bgra = _rgba_with_transparent_corner()
    rgba_pil = Image.fromarray(cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA))
    exif = Image.Exif()
    exif[0x0112] = 1
    return {
        "png-rgb": (cv_bytes(q, ".png"), {}),
        "png-16bit-rgb": (cv_bytes(q16, ".png"), {}),
        "png-palette": (pil_bytes(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "PNG"), {}),
        "png-rgba": (cv_bytes(bgra, ".png"), {"transparent_tl": True}),
        "png-rgba-16bit": (cv_bytes(bgra.astype(np.uint16) * 257, ".png"), {"transparent_tl": True}),
        "jpeg": (cv_bytes(q, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]), {}),
        "jpeg-progressive": (pil_bytes(im, "JPEG", quality=95, progressive=True), {}),
        "jpeg-cmyk": (pil_bytes(im.convert("CMYK"), "JPEG", quality=95), {}),
        "jpeg-exif": (pil_bytes(im, "JPEG", quality=95, exif=exif), {}),
        "tiff": (cv_bytes(q, ".tiff"), {}),
        "tiff-lzw": (pil_bytes(im, "TIFF", compression="tiff_lzw"), {}),
        "tiff-deflate": (pil_bytes(im, "TIFF", compression="tiff_adobe_deflate"), {}),
        "tiff-jpeg": (pil_bytes(im, "TIFF", compression="jpeg", quality=95), {}),
        "tiff-16bit": (cv_bytes(q16, ".tiff"), {}),
        "tiff-multipage-first": (
            pil_bytes(im, "TIFF", save_all=True, append_images=[im.transpose(Image.Transpose.ROTATE_180)]),
            {},
        ),
        "tiff-rgba": (pil_bytes(rgba_pil, "TIFF"), {"transparent_tl": True}),
        "bmp": (cv_bytes(q, ".bmp"), {}),
        "bmp-32bit-alpha": (cv_bytes(bgra, ".bmp"), {"transparent_tl": True}),  # BITFIELDS + alpha
        "bmp-32bit-rgb": (pil_bytes(im.convert("RGBA"), "BMP"), {}),
        "bmp-palette": (pil_bytes(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "BMP"), {}),
        "webp-lossy": (pil_bytes(im, "WEBP", quality=95), {}),
        "webp-lossless": (pil_bytes(im, "WEBP", lossless=True), {}),
        "webp-alpha": (pil_bytes(rgba_pil, "WEBP", lossless=True), {"transparent_tl": True}),
        "gif": (pil_bytes(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "GIF"), {}),
    }


COLOUR_VARIANTS = _colour_variants()


@pytest.mark.parametrize("name", sorted(COLOUR_VARIANTS))
def test_colour_formats_decode_to_bgr(name):
    data, opts = COLOUR_VARIANTS[name]
    out = load_image(data)
    if opts.get("transparent_tl"):
        assert out[15, 22].tolist() == [255, 255, 255], "transparent pixels become white paper"
        probes = {k: v for k, v in PROBES.items() if v != RED}
        for (y, x), colour in probes.items():
            assert np.abs(out[y, x].astype(int) - colour).max() <= 12
        assert out.shape == (H, W, 3) and out.dtype == np.uint8
    else:
        assert_quadrants(out, tol=20 if "jpeg" in name or "lossy" in name else 2)


def _grey_variants() -> dict[str, bytes]:
    g = bw_pattern()
    im = Image.fromarray(g)
    la = np.dstack([g, np.full_like(g, 255)])
    la[:, : W // 2, 1] = 255  # opaque everywhere: the pattern must survive the alpha path
    return {
        "png-gray": cv_bytes(g, ".png"),
        "png-gray-16bit": cv_bytes(g.astype(np.uint16) * 257, ".png"),
        "png-1bit": pil_bytes(im.convert("1", dither=Image.Dither.NONE), "PNG"),
        "png-gray-alpha": pil_bytes(Image.fromarray(la, "LA"), "PNG"),
        "jpeg-gray": cv_bytes(g, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
        "tiff-gray": cv_bytes(g, ".tiff"),
        "tiff-1bit-group4": pil_bytes(im.convert("1", dither=Image.Dither.NONE), "TIFF", compression="group4"),
        "tiff-float32": pil_bytes(Image.fromarray(g.astype(np.float32) / 255.0), "TIFF"),
        "tiff-16bit-gray": pil_bytes(Image.fromarray(g.astype(np.uint16) * 257), "TIFF"),
        "bmp-1bit": pil_bytes(im.convert("1", dither=Image.Dither.NONE), "BMP"),
        "bmp-gray": cv_bytes(g, ".bmp"),
        "webp-gray": pil_bytes(im, "WEBP", lossless=True),
    }


GREY_VARIANTS = _grey_variants()


@pytest.mark.parametrize("name", sorted(GREY_VARIANTS))
def test_grey_and_bilevel_formats_expand_to_three_channels(name):
    out = load_image(GREY_VARIANTS[name])
    assert_bw(out)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()


def test_png_palette_with_transparency_becomes_white():
    p = rgb_pil(quadrants()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    red_index = p.getpixel((22, 15))
    out = load_image(pil_bytes(p, "PNG", transparency=red_index))
    assert out[15, 22].tolist() == [255, 255, 255]
    assert np.abs(out[45, 22].astype(int) - BLUE).max() <= 2


def test_gray_alpha_png_composites_onto_white():
    g = np.zeros((H, W), np.uint8)
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, : W // 2] = 0
    alpha[:, W // 2 : W // 2 + 10] = 128  # half-transparent black → mid grey
    out = load_image(pil_bytes(Image.fromarray(np.dstack([g, alpha]), "LA"), "PNG"))
    assert out[10, 5].tolist() == [255, 255, 255]
    assert 120 <= int(out[10, W // 2 + 5, 0]) <= 135
    assert out[10, W - 5].tolist() == [0, 0, 0]


def test_sixteen_bit_is_scaled_not_truncated():
    ramp = np.tile(np.linspace(0, 65535, W).astype(np.uint16), (H, 1))
    out = load_image(cv_bytes(ramp, ".png"))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    mid = int(out[0, W // 2, 0])
    assert abs(mid - round(ramp[0, W // 2] / 257)) <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_is_applied(fmt, orientation):
    from PIL import ImageOps

    im = rgb_pil(quadrants())
    exif = Image.Exif()
    exif[0x0112] = orientation
    kw = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    data = pil_bytes(im, fmt, exif=exif, **kw)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB")))[:, :, ::-1]
    out = load_image(data)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).max() <= 8
    if orientation >= 5:
        assert out.shape[:2] == (W, H)


def test_pillow_fallback_applies_tiff_orientation(monkeypatch):
    import roomkit.plans.imageio as imageio_mod

    exif = Image.Exif()
    exif[0x0112] = 6
    data = pil_bytes(rgb_pil(quadrants()), "TIFF", exif=exif)
    expected = load_image(data)
    assert expected.shape == (W, H, 3)
    monkeypatch.setattr(imageio_mod.cv2, "imdecode", lambda *a, **k: None)
    assert np.array_equal(load_image(data), expected)


def test_tiff_multipage_reads_first_page_only():
    first, second = quadrants(), np.zeros((H, W, 3), np.uint8)
    data = pil_bytes(rgb_pil(first), "TIFF", save_all=True, append_images=[rgb_pil(second)])
    assert_quadrants(load_image(data), tol=0)


@pytest.mark.parametrize(
    "name",
    ["tiff-lzw", "tiff-16bit", "tiff-rgba", "tiff-multipage-first", "gif", "webp-alpha", "bmp",
     "tiff-float32", "tiff-16bit-gray", "tiff-1bit-group4"],
)
def test_falls_back_to_pillow_when_opencv_cannot_decode(monkeypatch, name):
    """TIFF compressions (and GIF/WebP/BMP variants) OpenCV's build lacks still load via Pillow."""
    import roomkit.plans.imageio as imageio_mod

    data = COLOUR_VARIANTS[name][0] if name in COLOUR_VARIANTS else GREY_VARIANTS[name]
    expected = load_image(data)
    monkeypatch.setattr(imageio_mod.cv2, "imdecode", lambda *a, **k: None)
    out = load_image(data)
    assert out.shape == expected.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).max() <= 1
    # ... and a truncated file still fails cleanly when neither decoder can read it.
    with pytest.raises(DecodeError):
        load_image(data[: len(data) // 3])


# ---------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------
def test_vector_pdf_first_page_rendered_at_dpi():
    data = vector_pdf(pages=2)
    out = load_image(data, pdf_dpi=100)
    assert out.shape == (1100, 850, 3)  # Letter page at 100 dpi, exactly
    # The rectangle (x 72–216 pt, y 72–288 pt from the bottom) is blue, the rest white paper.
    scale = 100 / 72
    cx, cy = int(144 * scale), out.shape[0] - int(180 * scale)
    assert np.abs(out[cy, cx].astype(int) - BLUE).max() <= 2
    assert out[10, 10].tolist() == [255, 255, 255]
    assert read_header_size(data, pdf_dpi=100) == (850, 1100)
    assert read_header_size(data, "application/pdf", pdf_dpi=72) == (612, 792)


def test_raster_pdf_from_pillow():
    data = pil_bytes(rgb_pil(quadrants()), "PDF", resolution=72.0)
    out = load_image(data, pdf_dpi=72)
    assert out.shape == (H, W, 3)
    assert np.abs(out[15, 22].astype(int) - RED).max() <= 12
    assert np.abs(out[45, 22].astype(int) - BLUE).max() <= 12


def test_pdf_render_is_capped_by_max_pixels():
    data = vector_pdf(w_pt=2000, h_pt=1500)  # a large sheet: 4167×3125 px at 150 dpi
    out = load_image(data, pdf_dpi=150, max_pixels=1_000_000)
    h, w = out.shape[:2]
    assert h * w <= 1_000_000 and h * w > 900_000
    assert abs(w / h - 2000 / 1500) < 0.01


def test_pdf_errors():
    with pytest.raises(DecodeError, match="PDF"):
        load_image(b"%PDF-1.7\n1 0 obj garbage that is not a pdf\n")
    empty = io.BytesIO()
    pdfium.PdfDocument.new().save(empty)
    with pytest.raises(DecodeError, match="PDF"):
        load_image(empty.getvalue())


# ---------------------------------------------------------------------------------------------
# Sources: path, bytes-likes, arrays; content types
# ---------------------------------------------------------------------------------------------
def test_path_str_and_pathlib(tmp_path):
    data = cv_bytes(quadrants(), ".png")
    path = tmp_path / "plan.png"
    path.write_bytes(data)
    assert_quadrants(load_image(path), tol=0)
    assert_quadrants(load_image(str(path)), tol=0)
    # The extension is not trusted: a JPEG saved as .png still loads (sniffed).
    jpeg_named_png = tmp_path / "mislabelled.png"
    jpeg_named_png.write_bytes(cv_bytes(quadrants(), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]))
    assert_quadrants(load_image(jpeg_named_png), tol=20)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "plan.png"
    with pytest.raises(InputError, match="nope/plan.png") as info:
        load_image(missing)
    assert info.value.code == "file_not_found"
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_likes(wrap):
    assert_quadrants(load_image(wrap(cv_bytes(quadrants(), ".png"))), tol=0)


@pytest.mark.parametrize(
    "content_type",
    [None, "image/png", "IMAGE/PNG; charset=binary", "image/x-png", "application/x-image",
     "application/octet-stream", "binary/octet-stream", "image/*", ""],
)
def test_accepted_content_types(content_type):
    assert_quadrants(load_image(cv_bytes(quadrants(), ".png"), content_type=content_type), tol=0)


def test_content_type_aliases():
    assert normalize_content_type("image/jpg") == "image/jpeg"
    assert normalize_content_type(" Image/TIF ; x=y") == "image/tiff"
    assert normalize_content_type(None) is None
    assert set(SUPPORTED_TYPES) >= {
        "image/png", "image/jpeg", "image/tiff", "image/bmp", "image/webp", "application/pdf"}
    jpeg = cv_bytes(quadrants(), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert_quadrants(load_image(jpeg, content_type="image/jpg"), tol=20)


def test_declared_type_contradicting_magic_bytes_names_both():
    jpeg = cv_bytes(quadrants(), ".jpg")
    with pytest.raises(DecodeError) as info:
        load_image(jpeg, content_type="image/png")
    assert "image/png" in info.value.message and "image/jpeg" in info.value.message
    assert info.value.code == "content_type_mismatch" and info.value.http_status == 400
    with pytest.raises(DecodeError, match="image/tiff"):
        load_image(b"definitely not a tiff at all", content_type="image/tiff")


@pytest.mark.parametrize("content_type", ["text/plain", "image/svg+xml", "application/json", "video/mp4"])
def test_unsupported_declared_type(content_type):
    with pytest.raises(UnsupportedTypeError, match="supported") as info:
        load_image(cv_bytes(quadrants(), ".png"), content_type=content_type)
    assert info.value.http_status == 415


def test_arrays_are_normalized_like_decoded_images():
    q = quadrants()
    same = load_image(q)
    assert same is q or np.shares_memory(same, q)  # BGR uint8 is returned without a copy
    assert_bw(load_image(bw_pattern()))
    assert_bw(load_image(bw_pattern()[:, :, None]))
    assert_bw(load_image(bw_pattern() > 0))
    assert_bw(load_image(bw_pattern().astype(np.float64) / 255.0))
    assert_quadrants(load_image(q.astype(np.uint16) * 257), tol=0)
    bgra = _rgba_with_transparent_corner()
    out = load_image(bgra)
    assert out[15, 22].tolist() == [255, 255, 255] and out[45, 22].tolist() == list(BLUE)
    assert_quadrants(load_image(np.asfortranarray(q)), tol=0)


@pytest.mark.parametrize(
    "array, error",
    [
        (np.zeros((0, 10, 3), np.uint8), EmptyInputError),
        (np.zeros((10, 0), np.uint8), EmptyInputError),
        (np.zeros((10,), np.uint8), InputError),
        (np.zeros((4, 4, 5), np.uint8), InputError),
        (np.zeros((2, 2, 2, 2), np.uint8), InputError),
        (np.full((4, 4), np.nan, np.float32), InputError),
        (np.zeros((4, 4), np.complex64), InputError),
        (np.full((4, 4), -5, np.int32), InputError),
    ],
)
def test_bad_arrays(array, error):
    with pytest.raises(error):
        load_image(array)


def test_array_over_pixel_limit():
    with pytest.raises(ImageTooLargeError, match="100×100"):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=9_999)


def test_unsupported_source_type():
    with pytest.raises(InputError, match="int"):
        load_image(42)


# ---------------------------------------------------------------------------------------------
# Errors: empty, random, truncated, corrupt, zero size
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
def test_empty_input(empty):
    with pytest.raises(EmptyInputError, match="empty"):
        load_image(empty)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(EmptyInputError, match="empty.png"):
        load_image(path)


def test_random_bytes_are_refused():
    noise = np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(UnsupportedTypeError, match="unrecognized"):
        load_image(noise)
    with pytest.raises(UnsupportedTypeError):
        load_image(b"hello, this is text", content_type="application/octet-stream")


def _truncation_cases() -> dict[str, bytes]:
    noise = np.random.default_rng(3).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    im = rgb_pil(noise)
    exif = Image.Exif()
    exif[0x0112] = 1
    return {
        "png": cv_bytes(noise, ".png"),
        "jpeg": cv_bytes(noise, ".jpg"),
        "jpeg-progressive": pil_bytes(im, "JPEG", progressive=True),
        "jpeg-with-exif-thumbnail": pil_bytes(im, "JPEG", exif=exif),
        "tiff-opencv": cv_bytes(noise, ".tiff"),
        "tiff-pillow": pil_bytes(im, "TIFF"),
        "tiff-lzw": pil_bytes(im, "TIFF", compression="tiff_lzw"),
        "bmp": cv_bytes(noise, ".bmp"),
        "webp": cv_bytes(noise, ".webp"),
        "webp-lossless": pil_bytes(im, "WEBP", lossless=True),
        "gif": pil_bytes(im, "GIF"),
    }


TRUNCATION_CASES = _truncation_cases()


@pytest.mark.parametrize("name", sorted(TRUNCATION_CASES))
def test_truncated_data_never_decodes_silently(name):
    data = TRUNCATION_CASES[name]
    assert load_image(data).shape == (80, 120, 3)  # the whole file is fine
    cuts = sorted({8, 16, 30, 60, *(int(len(data) * f) for f in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)), len(data) - 2})
    for cut in cuts:
        with pytest.raises((DecodeError, UnsupportedTypeError)) as info:
            load_image(data[:cut])
        assert isinstance(info.value, InputError), f"cut at {cut}"


def test_half_png_message_says_truncated():
    data = cv_bytes(quadrants(), ".png")
    with pytest.raises(DecodeError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_corrupt_png_payload():
    noise = np.random.default_rng(5).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    data = bytearray(cv_bytes(noise, ".png"))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zero a run inside IDAT: CRC and zlib both break
    with pytest.raises(DecodeError, match="corrupt"):
        load_image(bytes(data))


def test_corrupt_jpeg_header():
    data = bytearray(cv_bytes(quadrants(), ".jpg"))
    data[4:40] = b"\x00" * 36  # destroy the marker stream after SOI and the first marker
    with pytest.raises(DecodeError, match="JPEG header"):
        load_image(bytes(data))


@pytest.mark.parametrize("width, height", [(0, 10), (10, 0), (0, 0)])
def test_zero_size_png_header(width, height):
    with pytest.raises(DecodeError, match="zero-size"):
        load_image(crafted_png(width, height))


# ---------------------------------------------------------------------------------------------
# Pixel limit from the header, before decoding
# ---------------------------------------------------------------------------------------------
def _with_size(data: bytes, media: str, width: int, height: int) -> bytes:
    """Rewrite the dimensions a small file's header declares, leaving its pixels alone."""
    b = bytearray(data)
    if media == "jpeg":
        i = 2
        while True:
            marker, length = b[i + 1], struct.unpack_from(">H", b, i + 2)[0]
            if marker in (0xC0, 0xC2):
                struct.pack_into(">HH", b, i + 5, height, width)
                return bytes(b)
            i += 2 + length
    if media == "tiff":
        bo = "<" if b[:2] == b"II" else ">"
        ifd = struct.unpack_from(bo + "I", b, 4)[0]
        for k in range(struct.unpack_from(bo + "H", b, ifd)[0]):
            e = ifd + 2 + 12 * k
            tag, typ = struct.unpack_from(bo + "HH", b, e)
            if tag in (256, 257):
                value = width if tag == 256 else height
                if typ == 3:
                    struct.pack_into(bo + "H", b, e + 8, min(value, 65535))
                else:
                    struct.pack_into(bo + "I", b, e + 8, value)
        return bytes(b)
    if media == "bmp":
        struct.pack_into("<ii", b, 18, width, height)
        return bytes(b)
    if media == "gif":
        struct.pack_into("<HH", b, 6, width, height)
        return bytes(b)
    if media == "webp-vp8x":
        assert b[12:16] == b"VP8X"
        b[24:27] = (width - 1).to_bytes(3, "little")
        b[27:30] = (height - 1).to_bytes(3, "little")
        return bytes(b)
    if media == "webp-vp8l":
        assert b[12:16] == b"VP8L"
        bits = struct.unpack_from("<I", b, 21)[0] & ~((1 << 28) - 1)
        struct.pack_into("<I", b, 21, bits | (width - 1) | ((height - 1) << 14))
        return bytes(b)
    raise AssertionError(media)


def _bomb_cases() -> dict[str, bytes]:
    q = quadrants()
    im = rgb_pil(q)
    rgba = Image.fromarray(cv2.cvtColor(_rgba_with_transparent_corner(), cv2.COLOR_BGRA2RGBA))
    return {
        "png-100000x100000": crafted_png(100_000, 100_000),
        "png-20000x20000": crafted_png(20_000, 20_000),
        "jpeg": _with_size(cv_bytes(q, ".jpg"), "jpeg", 60_000, 60_000),
        "jpeg-progressive": _with_size(pil_bytes(im, "JPEG", progressive=True), "jpeg", 30_000, 20_000),
        "tiff": _with_size(pil_bytes(im, "TIFF"), "tiff", 50_000, 50_000),
        "bmp": _with_size(cv_bytes(q, ".bmp"), "bmp", 40_000, -40_000),
        "gif": _with_size(pil_bytes(im, "GIF"), "gif", 65_000, 65_000),
        "webp-vp8x": _with_size(pil_bytes(rgba, "WEBP", quality=80, exif=b"Exif\x00\x00"), "webp-vp8x", 16_000, 16_000),
        "webp-vp8l": _with_size(pil_bytes(im, "WEBP", lossless=True), "webp-vp8l", 16_000, 16_000),
    }


BOMBS = _bomb_cases()


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_decompression_bombs_refused_from_header(name):
    data = BOMBS[name]
    assert len(data) < 100_000
    size = read_header_size(data)
    assert size is not None and size[0] * size[1] > 100_000_000
    with pytest.raises(ImageTooLargeError, match="max_pixels") as info:
        load_image(data)
    assert info.value.http_status == 413
    assert f"{size[0]}×{size[1]}" in info.value.message


def test_pixel_bomb_refused_without_allocating(tmp_path):
    """A 60 KB-ish PNG claiming 20000×20000 (1.2 GB decoded) is refused with no big allocation."""
    code = (
        "import resource, sys\n"
        "from roomkit import load_image\n"
        "from roomkit.errors import ImageTooLargeError\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    load_image(data)\n"
        "except ImageTooLargeError:\n"
        "    pass\n"
        "else:\n"
        "    sys.exit('decoded a bomb')\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(after - before)\n"
    )
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(crafted_png(20_000, 20_000, idat=zlib.compress(b"\x00" * 2_000_000, 9)))
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    grown_kib = int(proc.stdout.strip().splitlines()[-1])
    assert grown_kib < 50_000, f"peak RSS grew by {grown_kib} KiB"


def test_limit_above_opencvs_own_is_reported_as_such():
    with pytest.raises(ImageTooLargeError, match="OPENCV_IO_MAX_IMAGE_PIXELS"):
        load_image(crafted_png(40_000, 40_000), max_pixels=2_000_000_000)


def test_configurable_pixel_limit():
    data = cv_bytes(quadrants(), ".png")  # 90×60 = 5400 px
    with pytest.raises(ImageTooLargeError, match="5,400"):
        load_image(data, max_pixels=5_399)
    assert load_image(data, max_pixels=5_400).shape == (H, W, 3)


# ---------------------------------------------------------------------------------------------
# sniff_type / read_header_size
# ---------------------------------------------------------------------------------------------
HEADER_CASES = {
    "image/png": [cv_bytes(np.zeros((37, 53, 3), np.uint8), ".png")],
    "image/jpeg": [
        cv_bytes(np.zeros((37, 53, 3), np.uint8), ".jpg"),
        pil_bytes(Image.new("RGB", (53, 37)), "JPEG", progressive=True),
        pil_bytes(Image.new("RGB", (53, 37)), "JPEG", exif=Image.Exif()),
    ],
    "image/tiff": [
        cv_bytes(np.zeros((37, 53, 3), np.uint8), ".tiff"),
        pil_bytes(Image.new("RGB", (53, 37)), "TIFF"),
        pil_bytes(Image.new("RGB", (53, 37)), "TIFF", big_tiff=True),
    ],
    "image/bmp": [
        cv_bytes(np.zeros((37, 53, 3), np.uint8), ".bmp"),
        pil_bytes(Image.new("1", (53, 37)), "BMP"),
    ],
    "image/webp": [
        pil_bytes(Image.new("RGB", (53, 37)), "WEBP", quality=80),
        pil_bytes(Image.new("RGB", (53, 37)), "WEBP", lossless=True),
        pil_bytes(Image.new("RGBA", (53, 37)), "WEBP", quality=80),
    ],
    "image/gif": [pil_bytes(Image.new("P", (53, 37)), "GIF")],
    "application/pdf": [pil_bytes(Image.new("RGB", (53, 37)), "PDF", resolution=150.0)],
}


@pytest.mark.parametrize(
    "media, index", [(m, i) for m, cases in HEADER_CASES.items() for i in range(len(cases))]
)
def test_sniff_and_header_size(media, index):
    data = HEADER_CASES[media][index]
    assert sniff_type(data) == media
    assert read_header_size(data) == (53, 37)
    assert read_header_size(data, media) == (53, 37)
    if media != "application/pdf":
        assert read_header_size(data[:10]) is None or media == "image/gif"
        assert load_image(data).shape == (37, 53, 3)


def test_header_size_of_unknown_or_garbage():
    assert sniff_type(b"") is None
    assert sniff_type(b"BM" + b"\xff" * 40) is None  # 'BM' alone is not enough
    assert sniff_type(b"GIF8") is None
    assert read_header_size(b"no image here") is None
    assert read_header_size(b"\x89PNG\r\n\x1a\n\x00\x00") is None
    assert read_header_size(b"\xff\xd8\xff\xe0\x00") is None
    assert read_header_size(b"II*\x00\xff\xff\xff\x7f") is None
    assert read_header_size(b"%PDF-1.4 broken") is None
    assert read_header_size(crafted_png(100_000, 100_000)) == (100_000, 100_000)


def test_all_supported_types_have_a_decodable_sample():
    samples = {m: cases[0] for m, cases in HEADER_CASES.items()}
    assert set(samples) == set(SUPPORTED_TYPES)
    for media, data in samples.items():
        out = load_image(data, content_type=media)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


# ---------------------------------------------------------------------------------------------
# gray=True: the same picture in a third of the memory
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["png-rgb", "png-rgba", "png-16bit-rgb", "jpeg", "jpeg-cmyk", "tiff-16bit", "webp-alpha", "gif"]
)
def test_gray_output_matches_converted_colour(name):
    data, _ = COLOUR_VARIANTS[name]
    colour = load_image(data)
    grey = load_image(data, gray=True)
    assert grey.dtype == np.uint8 and grey.shape == colour.shape[:2] and grey.flags.c_contiguous
    expected = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    diff = np.abs(grey.astype(int) - expected)
    if "jpeg" in name:  # decoded straight to luma: differs only along chroma edges
        assert np.percentile(diff, 95) <= 3 and diff.mean() < 1.5
    else:
        assert diff.max() <= 1


def test_gray_output_for_grey_sources_pdf_and_arrays():
    for name in ("png-gray", "png-gray-alpha", "tiff-1bit-group4", "tiff-float32"):
        out = load_image(GREY_VARIANTS[name], gray=True)
        assert out.shape == (H, W)
        assert out[:, : W // 2 - 2].max() <= 10 and out[:, W // 2 + 2 :].min() >= 245
    pdf = load_image(vector_pdf(), pdf_dpi=72, gray=True)
    assert pdf.shape == (792, 612)
    assert pdf[10, 10] == 255 and pdf[792 - 180, 144] < 100  # the blue rectangle is dark
    bgra = _rgba_with_transparent_corner()
    out = load_image(bgra, gray=True)
    assert out.shape == (H, W) and out[15, 22] == 255
    g = bw_pattern()
    assert load_image(g, gray=True) is not None and np.array_equal(load_image(g, gray=True), g)


def test_large_transparent_image_composites_in_bands():
    """Band-wise compositing gives the same result as the one-shot formula."""
    rng = np.random.default_rng(11)
    bgra = rng.integers(0, 256, (1500, 1400, 4), dtype=np.uint8)
    out = load_image(bgra)
    a = bgra[:, :, 3:].astype(np.uint16)
    expected = ((bgra[:, :, :3].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    assert np.array_equal(out, expected)


def test_mutated_files_only_ever_raise_typed_errors():
    """Flipped bytes, overwritten runs and deleted spans in every format: either a valid
    H×W×3 uint8 image (damage inside pixel data cannot always be seen) or an InputError."""
    rng = np.random.default_rng(2024)
    cases = {**{k: v[0] for k, v in COLOUR_VARIANTS.items()}, **GREY_VARIANTS,
             "pdf": HEADER_CASES["application/pdf"][0]}
    raised = 0
    for name, data in cases.items():
        for i in range(24):
            b = bytearray(data)
            if i % 3 == 0:
                for _ in range(int(rng.integers(1, 8))):
                    b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            elif i % 3 == 1:
                pos, n = int(rng.integers(0, len(b))), int(rng.integers(1, 50))
                b[pos : pos + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            else:
                pos = int(rng.integers(min(30, len(b) - 1), len(b)))
                del b[pos : pos + int(rng.integers(1, 200))]
            try:
                out = load_image(bytes(b))
            except InputError:
                raised += 1
                continue
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.size > 0, name
    assert raised > len(cases) * 10  # most damage is caught
