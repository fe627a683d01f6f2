"""The model directory's files: ``model.onnx`` and ``model.json`` (what it is, how it was made).

Pure Python (no onnxruntime, no OpenCV): the serving side and the artifact packer read the
metadata to validate a model directory before anything loads it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from roomkit.errors import RoomkitError

ONNX_NAME = "model.onnx"
INFO_NAME = "model.json"
#: The per-pixel classes, in output-channel order.
CLASSES: tuple[str, ...] = ("outside", "wall", "opening", "room")
FORMAT = "roomkit-segmentation/1"


class ModelError(RoomkitError):
    """A learned model is missing, unreadable or not what roomkit expects."""

    code = "invalid_model"
    http_status = 503


@dataclass(frozen=True)
class ModelInfo:
    """``model.json``: enough to run the file and to say where it came from.

    ``max_side``: plans are scaled so their longer side is at most this before the network
    runs (px); ``multiple``: the network's input sides are padded to a multiple of this.
    ``trained_on``: the data, e.g. ``{"synthetic": 600, "real_plans": 0, "seed": 0}``;
    ``validation``: figures measured after training (F1@0.5 on held-out plans …).
    """

    classes: tuple[str, ...] = CLASSES
    max_side: int = 768
    multiple: int = 16
    channels: tuple[int, ...] = ()
    format: str = FORMAT
    trained_on: Mapping[str, Any] = field(default_factory=dict)
    validation: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"], d["channels"] = list(self.classes), list(self.channels)
        d["trained_on"], d["validation"], d["training"] = dict(self.trained_on), dict(self.validation), dict(self.training)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = INFO_NAME) -> "ModelInfo":
        if not isinstance(data, Mapping):
            raise ModelError(f"{source} must hold a JSON object")
        if data.get("format") != FORMAT:
            raise ModelError(f"{source}: format is {data.get('format')!r}, roomkit reads {FORMAT!r}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"{source}: unknown key(s) {', '.join(unknown)}")
        classes = tuple(data.get("classes", ()))
        if classes != CLASSES:
            raise ModelError(f"{source}: classes are {list(classes)}, this roomkit needs {list(CLASSES)}")
        for name in ("max_side", "multiple"):
            v = data.get(name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ModelError(f"{source}: {name} must be a positive integer, got {v!r}")
        return cls(
            classes=classes, max_side=int(data["max_side"]), multiple=int(data["multiple"]),
            channels=tuple(int(c) for c in data.get("channels", ())), format=FORMAT,
            trained_on=dict(data.get("trained_on", {})), validation=dict(data.get("validation", {})),
            training=dict(data.get("training", {})),
        )

    def write(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / INFO_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def read_info(model_dir: str | Path) -> ModelInfo:
    """``model.json`` of ``model_dir``, validated; :class:`ModelError` names what is wrong."""
    model_dir = Path(model_dir)
    path = model_dir / INFO_NAME
    if not (model_dir / ONNX_NAME).is_file():
        raise ModelError(f"no {ONNX_NAME} in {model_dir} (train one with `roomkit train`, or use backend 'rules')")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no {INFO_NAME} beside {ONNX_NAME} in {model_dir}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from exc
    return ModelInfo.from_dict(data, source=str(path))


def shipped_model_dir() -> Path:
    """The weights that ship inside the package (trained on roomkit.synth plans only)."""
    return Path(__file__).resolve().parent / "model"


def has_model(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ONNX_NAME).is_file()
