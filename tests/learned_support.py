"""Model directories for tests without training: random weights, a valid model.onnx + model.json.

Such a model finds nothing on its own (the learned backend reports no rooms; the hybrid one
mostly follows the rules), which is all serving, packaging and CLI tests need."""
from __future__ import annotations

import shutil
from pathlib import Path

SMALL_CHANNELS = (4, 8, 8, 8, 8)
_CACHE: dict[tuple, Path] = {}


def make_model_dir(dest: Path, channels: tuple[int, ...] = SMALL_CHANNELS, seed: int = 0,
                   trained_on: dict | None = None) -> Path:
    """Write ``model.onnx`` + ``model.json`` into ``dest`` (created) and return it."""
    from roomkit.learned.modelfile import ModelInfo

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    key = (tuple(channels), seed)
    cached = _CACHE.get(key)
    if cached is None or not cached.is_file():
        from roomkit.learned import export, net  # JAX + onnx: the test lock has them

        params = net.init_params(seed, tuple(channels), 4)
        export.write_onnx(params, 4, dest / "model.onnx")
        _CACHE[key] = dest / "model.onnx"
    elif cached != dest / "model.onnx":
        shutil.copyfile(cached, dest / "model.onnx")
    ModelInfo(channels=tuple(channels),
              trained_on=trained_on if trained_on is not None else {"synthetic_plans": 0, "note": "random weights"},
              ).write(dest)
    return dest
