"""``roomkit detect``: run the detector on plan files and write one API response JSON per plan.

Every input is processed even when some fail; each failure is reported on stderr with the reason
(missing file, truncated image, unsupported type, ...) and the exit status is 1 if any input
failed, 0 otherwise (2 for a bad ``--config``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

ORDER = 10

#: Overlays are drawn at most this many pixels on their longest side (huge scans stay viewable).
OVERLAY_MAX_SIDE = 4000
#: Where results go without --out (every command writes under ./out/<what>).
DEFAULT_OUT = Path("out") / "detections"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "detect",
        help="detect rooms in plan images/PDFs and write <stem>.json responses",
        description=(
            "Detect the rooms of each plan and write OUT/<stem>.json (the API response: "
            "boxes and polygons normalized to 0-1000). PATH may be an image or PDF file or a "
            "folder (its PNG/JPEG/TIFF/BMP/WebP/GIF/PDF files; subfolders with --recursive, "
            "else they are named as skipped). Inputs that cannot be read are reported and "
            "skipped; the exit status is then 1."
        ),
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="plan file or folder")
    p.add_argument(
        "--out", "-o", type=Path, default=DEFAULT_OUT, metavar="DIR",
        help=f"where to write <stem>.json (default: ./{DEFAULT_OUT})",
    )
    p.add_argument("--output-dir", type=Path, dest="out", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old name, kept working
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also read the plans in the subfolders of a folder (default: only its own files)")
    p.add_argument("--config", type=Path, metavar="JSON", help="detector config.json (DetectorConfig)")
    p.add_argument("--overlay", action="store_true", help="also write <stem>.overlay.png")
    p.add_argument("--geojson", action="store_true", help="also write <stem>.geojson (pixel coordinates)")
    p.add_argument(
        "--min-confidence", type=float, default=None, metavar="X",
        help="report only rooms with confidence >= X (overrides the config's min_confidence)",
    )
    p.add_argument("--backend", choices=("rules", "learned", "hybrid"), default=None,
                   help="detector backend (overrides the config's backend; default rules)")
    p.add_argument("--model", type=Path, default=None, metavar="DIR",
                   help="model directory (model.onnx + model.json) for the learned and hybrid backends "
                        "(default: the weights shipped with roomkit)")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    path: Path
    message: str


def expand_paths(paths: Iterable[Path], *, recursive: bool = False,
                 skipped: list[Path] | None = None) -> tuple[list[Path], list[Failure]]:
    """Files as given, folders expanded to their supported image files (sorted; with
    ``recursive`` their subfolders' too). Subfolders left out are appended to ``skipped``."""
    from roomkit.plans.imageio import IMAGE_EXTENSIONS

    files: list[Path] = []
    failures: list[Failure] = []
    for path in paths:
        if path.is_dir():
            entries = path.rglob("*") if recursive else path.iterdir()
            found = sorted(
                p for p in entries
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not recursive and skipped is not None:
                skipped.extend(sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")))
            if not found:
                failures.append(Failure(path, f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in folder"
                                + ("" if recursive else " (subfolders are read with --recursive)")))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            failures.append(Failure(path, "no such file or folder"))
    return files, failures


def output_stems(files: Sequence[Path]) -> list[str]:
    """``<stem>`` per file, made unique (``plan``, ``plan-2``…) so no result overwrites another."""
    seen: dict[str, int] = {}
    stems = []
    for f in files:
        stem = f.stem or "plan"
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        stems.append(stem if n == 1 else f"{stem}-{n}")
    return stems


def load_config(path: Path | None, min_confidence: float | None, backend: str | None = None):
    from roomkit.detector.config import DetectorConfig

    config = DetectorConfig.from_json(path) if path is not None else DetectorConfig()
    if min_confidence is not None:
        config = config.with_overrides({"min_confidence": min_confidence})
    if backend is not None:
        config = config.with_overrides({"backend": backend})
    return config


def load_learned_model(config, model_dir: Path | None):
    """The model the learned / hybrid backends run, loaded once for the batch (None for rules).
    A missing or corrupt model is a :class:`~roomkit.learned.modelfile.ModelError` (exit 2)."""
    if config.backend == "rules":
        return None
    from roomkit.learned.runtime import LearnedModel

    return LearnedModel.load(model_dir)


# ---------------------------------------------------------------------------------------------
# Overlay (OpenCV only; the matplotlib QA views live in roomkit.qa.viz)
# ---------------------------------------------------------------------------------------------
def _palette(i: int) -> tuple[int, int, int]:
    """Distinct, saturated BGR colours (golden-angle hues)."""
    import cv2
    import numpy as np

    hue = int((i * 137.508) % 180)
    hsv = np.uint8([[[hue, 200, 230]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_overlay(image, detection, truth_polygons=None, *, max_side: int = OVERLAY_MAX_SIDE):
    """The plan with each room filled translucently, outlined and labelled with id and confidence
    (and, where the text was read, its name or type and its area; ``~`` marks a scaled area).

    ``truth_polygons`` (pixel polygons), when given, are drawn as thin dark-green outlines.
    Returns a BGR uint8 array, downscaled so its longest side is at most ``max_side``.
    """
    import cv2
    import numpy as np

    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    canvas = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    canvas = canvas.copy()
    fill = canvas.copy()
    line = max(1, round(max(canvas.shape[:2]) / 600))
    font_scale = max(0.4, max(canvas.shape[:2]) / 1800)

    def pts(poly) -> np.ndarray:
        return np.round(np.asarray(poly, dtype=np.float64) * scale).astype(np.int32).reshape(-1, 1, 2)

    rooms = list(detection.rooms)
    for i, room in enumerate(rooms):
        if len(room.polygon) >= 3:
            cv2.fillPoly(fill, [pts(room.polygon)], _palette(i))
    canvas = cv2.addWeighted(fill, 0.35, canvas, 0.65, 0)
    for poly in truth_polygons or ():
        if len(poly) >= 3:
            cv2.polylines(canvas, [pts(poly)], True, (0, 110, 0), max(1, line // 2), cv2.LINE_AA)
    for i, room in enumerate(rooms):
        if len(room.polygon) < 3:
            continue
        p = pts(room.polygon)
        cv2.polylines(canvas, [p], True, _palette(i), line + 1, cv2.LINE_AA)
        m = cv2.moments(p)
        if m["m00"]:
            cx, cy = int(m["m10"] / m["m00"]), int(m["m01"] / m["m00"])
        else:
            cx, cy = (int(v) for v in p.reshape(-1, 2).mean(axis=0))
        labels = [f"{room.id.removeprefix('room_')} {room.confidence:.2f}", *room_text_lines(room)]
        sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, line) for t in labels]
        step = max(th + base for (_tw, th), base in sizes) + 2
        y = cy - (step * (len(labels) - 1)) // 2
        for label, ((tw, th), base) in zip(labels, sizes):
            org = (cx - tw // 2, y + th // 2)
            cv2.rectangle(canvas, (org[0] - 2, org[1] - th - 2), (org[0] + tw + 2, org[1] + base), (255, 255, 255), -1)
            cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (20, 20, 20), line, cv2.LINE_AA)
            y += step
    return canvas


def room_text_lines(room) -> list[str]:
    """What the plan's text says about a room, for the overlay: its name (or type) and area."""
    text = getattr(room, "text", None)
    if text is None:
        return []
    lines = [(text.name or text.type)[:24]]
    if text.area:
        mark = "" if text.area.get("source") == "printed" else "~"
        lines.append(f"{mark}{float(text.area['m2']):.1f} m2")
    # The overlay font is ASCII only.
    return [ln.encode("ascii", "replace").decode("ascii") for ln in lines]


def write_png(path: Path, image) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - encoding a uint8 BGR array does not fail
        raise OSError(f"could not encode {path}")
    write_atomic(path, buf.tobytes())


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write via a temporary file and rename, so an interrupted run leaves no half-written JSON."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp.write_bytes(data)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
@dataclass
class PlanResult:
    path: Path
    stem: str
    detection: object | None = None  # roomkit.plans.response.Detection
    image: object | None = None  # the decoded array, when kept for an overlay
    error: str | None = None


def detect_file(path: Path, config, *, keep_image: bool = False, model=None) -> PlanResult:
    """Decode and detect one file; errors become ``PlanResult.error`` (never raised)."""
    from dataclasses import replace

    from roomkit.detector import detect_rooms
    from roomkit.errors import RoomkitError
    from roomkit.plans.imageio import load_image

    result = PlanResult(path=path, stem=path.stem)
    try:
        start = time.perf_counter()
        image = load_image(path, max_pixels=config.max_pixels, pdf_dpi=config.pdf_dpi)
        detection = detect_rooms(image, config, model=model)
        # Report decode + detection, as the server does for the same bytes.
        elapsed = (time.perf_counter() - start) * 1000.0
        result.detection = replace(detection, processing_time_ms=elapsed)
        if keep_image:
            result.image = image
    except RoomkitError as exc:
        result.error = exc.message
    except MemoryError:
        result.error = "out of memory while processing this plan"
    except Exception as exc:  # a detector bug on one plan must not lose the rest of the batch
        result.error = f"internal error: {type(exc).__name__}: {exc}"
    return result


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.min_confidence, args.backend)  # ConfigError → exit 2 via cli.main
    if args.model is not None and config.backend == "rules":
        print("roomkit detect: note: --model is used by the learned and hybrid backends only "
              "(this run uses rules)", file=sys.stderr)
    model = load_learned_model(config, args.model)  # ModelError → exit 2
    skipped: list[Path] = []
    files, failures = expand_paths(args.paths, recursive=args.recursive, skipped=skipped)
    if skipped:
        print(f"roomkit detect: skipped {len(skipped)} subfolder(s) ({', '.join(str(d) for d in skipped[:5])}"
              f"{', …' if len(skipped) > 5 else ''}); --recursive reads them", file=sys.stderr, flush=True)
    for f in failures:
        _report_error(f.path, f.message)
    if not files:
        print("roomkit detect: nothing to do: no readable inputs", file=sys.stderr)
        return 1
    out_dir: Path = args.out
    make_output_dir(out_dir)

    ok = 0
    n_rooms = 0
    times: list[float] = []
    for path, stem in zip(files, output_stems(files)):
        result = detect_file(path, config, keep_image=args.overlay, model=model)
        if result.error is not None:
            failures.append(Failure(path, result.error))
            _report_error(path, result.error)
            continue
        det = result.detection
        try:
            written = write_outputs(out_dir, stem, det, geojson=args.geojson,
                                    overlay=draw_overlay(result.image, det) if args.overlay else None)
        except OSError as exc:
            failures.append(Failure(path, f"cannot write results: {exc.strerror or exc}"))
            _report_error(path, failures[-1].message)
            continue
        ok += 1
        n_rooms += len(det.rooms)
        times.append(det.processing_time_ms)
        print(
            f"{path.name}: {len(det.rooms)} rooms, {det.width}x{det.height}, "
            f"{det.processing_time_ms:.1f} ms -> {', '.join(written)}",
            flush=True,
        )
    total = ok + len(failures)
    line = f"{ok}/{total} plans processed, {n_rooms} rooms, results in {out_dir}"
    if times:
        line += f", median {sorted(times)[len(times) // 2]:.1f} ms"
    print(line)
    if failures:
        print(f"roomkit detect: {len(failures)} input(s) failed", file=sys.stderr)
        return 1
    return 0


def make_output_dir(out_dir: Path) -> None:
    from roomkit.errors import RoomkitError

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RoomkitError(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from None


def write_outputs(out_dir: Path, stem: str, det, *, geojson: bool = False, overlay=None) -> list[str]:
    """``<stem>.json`` (+ ``.geojson``, ``.overlay.png``); returns the file names written."""
    json_path = out_dir / f"{stem}.json"
    write_atomic(json_path, json.dumps(det.to_response(), indent=2) + "\n")
    written = [json_path.name]
    if geojson:
        gj = out_dir / f"{stem}.geojson"
        write_atomic(gj, json.dumps(det.to_geojson()) + "\n")
        written.append(gj.name)
    if overlay is not None:
        ov = out_dir / f"{stem}.overlay.png"
        write_png(ov, overlay)
        written.append(ov.name)
    return written


def _report_error(path: Path, message: str) -> None:
    where = "" if message.startswith(str(path)) else f"{path}: "
    print(f"roomkit detect: error: {where}{message}", file=sys.stderr, flush=True)
